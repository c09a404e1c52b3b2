/* Bounded stress. Byte lanes: a writer and a reader thread stream bytes
   through a socket pair (AF_UNIX or TCP loopback, a new pair and new
   threads every round) with random sizes, timeouts and flags; some rounds
   the reader hangs up early. Connection lanes: a connector makes
   connections (blocking or non-blocking sockets) to a listener and sends
   each one's number; an acceptor accepts them and waits for the number
   with rsock_block or rsock_poll. Meanwhile a chaos thread cancels and
   resets the lanes' tokens, the lane's token and the root, and churns
   child tokens.

   Checked all along: every byte arrives exactly once and in order (a
   prefix of what was sent when the reader hangs up); every connection that
   connect reported is accepted exactly once; every call ends as the
   contract says (done, cancelled, timed out on time, or EAGAIN/EPIPE where
   those apply); a call that reports ECANCELED was cancelled (its token is
   still cancelled when it returns, or a reset ran meanwhile); no call
   outlives its timeout by more than a margin. At the end: every thread
   joined, the descriptor count back where it started, and the heap in use
   back near it (leaks are also checked by the valgrind and sanitizer runs
   of this test).

   RSOCK_STRESS_SECONDS sets the duration (default 5). */
#include "rtest.h"

#include <stdatomic.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

enum { LANES = 6, CONN_LANES = 2, ALL_LANES = LANES + CONN_LANES, CONNS = 40 };

static atomic_int stop;
static rsock_token *root;
static double margin_ms;
/* Resets of the root and of each lane's token are counted before (begun)
   and after (done) they run. */
struct resets {
    atomic_long begun, done;
};
static struct resets root_resets;

static void counted_reset(rsock_token *t, struct resets *r) {
    atomic_fetch_add(&r->begun, 1);
    rsock_token_reset(t);
    atomic_fetch_add(&r->done, 1);
}

/* What a call's checks need from its start. */
struct call_start {
    double t0;
    long resets_done; /* of the call's ancestors: its lane's token and the root */
};

struct lane {
    int id;
    rsock_token *group;     /* child of root; the round's tokens are its children */
    rsock_token *wtok, *rtok;
    rsock_socket fd[2];     /* fd[0] writer side, fd[1] reader side */
    unsigned round_seed;
    int hang_up_after;      /* the reader stops after this many bytes (-1: never) */
    long sent, got;
    long rounds, bytes, cancels_seen, timeouts, unexpected, mismatches;
    double worst_overshoot;
    pthread_mutex_t lock;   /* guards wtok/rtok against the chaos thread */
    /* connection lanes: wtok connects, rtok accepts */
    rsock_socket listener;
    struct sockaddr_in addr;
    atomic_int connected[CONNS], accepted[CONNS], connector_done;
    long connections, orphans, lost;
    struct resets group_resets;
};

static struct call_start call_start(struct lane *l) {
    struct call_start c = {now_ms(), atomic_load(&l->group_resets.done) + atomic_load(&root_resets.done)};
    rt_set_error(0);
    return c;
}

static struct lane lanes[ALL_LANES];

static unsigned char pattern(unsigned seed, long i) { return (unsigned char)((i * 7 + (i >> 11) + seed) % 251); }

static int pick_timeout(unsigned *seed) {
    unsigned r = rt_rand(seed) % 10;
    if (r < 4) return RSOCK_INFINITE;
    if (r == 4) return 0;
    return 1 + (int)(rt_rand(seed) % 60);
}

static int allowed_end(struct lane *l, rsock_token *tok, int err, int timeout, struct call_start c);

/* Records how a call that did not complete ended; returns 0 (and reports
   it) if that end is not one the contract allows. */
static int account(struct lane *l, const char *call, size_t len, intptr_t n, rsock_token *tok, int err,
                   int timeout, struct call_start c) {
    if (allowed_end(l, tok, err, timeout, c)) return 1;
    fprintf(stderr, "lane %d: %s(%zu, timeout %d) returned %ld: %s\n", l->id, call, len, timeout, (long)n,
            rsock_strerror(err));
    l->unexpected++;
    return 0;
}

/* Any call, however it ended, returns within its timeout and the margin. */
static void check_time(struct lane *l, const char *call, int timeout, struct call_start c) {
    double over = now_ms() - c.t0 - timeout;
    if (timeout < 0 || over <= 0) return;
    pthread_mutex_lock(&l->lock);
    if (over > l->worst_overshoot) l->worst_overshoot = over;
    pthread_mutex_unlock(&l->lock);
    if (over > margin_ms) {
        fprintf(stderr, "lane %d: %s overshot its %d ms timeout by %.1f ms\n", l->id, call, timeout, over);
        l->unexpected++;
    }
}

static int allowed_end(struct lane *l, rsock_token *tok, int err, int timeout, struct call_start c) {
    if (err == RSOCK_ECANCELED) {
        /* A real cancel: the token is still cancelled, or an ancestor's
           reset ran after the call started (one that began before it and
           ended after it counts too). The token's own resets are made by
           its thread, between its calls. */
        long begun = atomic_load(&l->group_resets.begun) + atomic_load(&root_resets.begun);
        int real = rsock_is_cancelled(tok) || begun > c.resets_done;
        __atomic_add_fetch(&l->cancels_seen, 1, __ATOMIC_RELAXED);
        rsock_token_reset(tok);
        /* Still cancelled: an ancestor is, until the chaos thread resets it. */
        if (rsock_is_cancelled(tok)) sleep_ms(1);
        if (!real) fprintf(stderr, "lane %d: ECANCELED without a cancel\n", l->id);
        return real;
    }
    if (err == RSOCK_ETIMEDOUT && timeout >= 0) {
        __atomic_add_fetch(&l->timeouts, 1, __ATOMIC_RELAXED);
        return now_ms() - c.t0 >= timeout - 0.01;
    }
    return 0;
}

static void *writer(void *arg) {
    struct lane *l = arg;
    unsigned seed = l->round_seed * 31 + 1;
    static _Thread_local unsigned char buf[65536];
    long target = 1 + (long)(rt_rand(&seed) % (2u << 20));
    long off = 0;
    while (off < target && !atomic_load(&stop)) {
        size_t len = 1 + rt_rand(&seed) % sizeof buf;
        if ((long)len > target - off) len = (size_t)(target - off);
        for (size_t k = 0; k < len; k++) buf[k] = pattern(l->round_seed, off + (long)k);
        int timeout = pick_timeout(&seed);
#ifdef MSG_DONTWAIT
        int dontwait = rt_rand(&seed) % 10 == 0;
        int flags = MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0);
#else
        int dontwait = 0, flags = 0; /* Windows has neither flag */
#endif
        struct call_start c = call_start(l);
        intptr_t n = rsock_send(l->wtok, l->fd[0], buf, len, flags, timeout);
        int err = rsock_last_error();
        check_time(l, "send", timeout, c);
        if (n > 0) off += n;
        /* MSG_DONTWAIT: what was queued, or EAGAIN when nothing could be. */
        if (n == (intptr_t)len || (dontwait && (n >= 0 || err == EAGAIN || err == EWOULDBLOCK))) continue;
        if (rt_peer_gone(err)) {
            if (l->hang_up_after < 0) l->unexpected++; /* the reader never hangs up then */
            break;
        }
        if (!account(l, "send", len, n, l->wtok, err, timeout, c)) break;
    }
    l->sent = off;
    shutdown(l->fd[0], SHUT_WR);
    return NULL;
}

static void *reader(void *arg) {
    struct lane *l = arg;
    unsigned seed = l->round_seed * 17 + 3;
    static _Thread_local unsigned char buf[65536];
    long got = 0;
    for (;;) {
        if (l->hang_up_after >= 0 && got >= l->hang_up_after) break;
        size_t len = 1 + rt_rand(&seed) % sizeof buf;
        int timeout = pick_timeout(&seed);
        int flags = rt_rand(&seed) % 8 == 0 ? MSG_WAITALL : 0;
        struct call_start c = call_start(l);
        intptr_t n = rsock_recv(l->rtok, l->fd[1], buf, len, flags, timeout);
        int err = rsock_last_error();
        check_time(l, "recv", timeout, c);
        for (intptr_t k = 0; k < n; k++)
            if (buf[k] != pattern(l->round_seed, got + k)) l->mismatches++;
        if (n > 0) got += n;
        if (n == 0) break; /* end of stream */
        /* Short without MSG_WAITALL, or at the end of the stream with it
           (no error then): fine. */
        if (n == (intptr_t)len || (n > 0 && (!(flags & MSG_WAITALL) || err == 0))) continue;
        if (atomic_load(&stop) && err == RSOCK_ECANCELED) break; /* the end: root cancelled for good */
        if (!account(l, "recv", len, n, l->rtok, err, timeout, c)) break;
    }
    l->got = got;
    if (l->hang_up_after >= 0) shutdown(l->fd[1], SHUT_RDWR); /* the writer gets EPIPE */
    return NULL;
}


/* Makes CONNS connections, each sending its number once connected. A
   cancelled or timed-out connect's socket is closed, as the contract asks. */
static void *connector(void *arg) {
    struct lane *l = arg;
    unsigned seed = l->round_seed * 13 + 5;
    for (int i = 0; i < CONNS && !atomic_load(&stop); i++) {
        rsock_socket s = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(sock_ok(s));
        if (rt_rand(&seed) % 2) set_nonblocking(s, 1);
        int timeout = pick_timeout(&seed);
        struct call_start c = call_start(l);
        int r = rsock_connect(l->wtok, s, (struct sockaddr *)&l->addr, sizeof l->addr, timeout);
        int err = rsock_last_error();
        check_time(l, "connect", timeout, c);
        if (r == 0) {
            atomic_store(&l->connected[i], 1);
            set_nonblocking(s, 0);
            REQUIRE(send(s, (const char *)&i, sizeof i, RT_NOSIGNAL) == sizeof i);
        } else {
            account(l, "connect", 0, r, l->wtok, err, timeout, c);
        }
        close_sock(s);
    }
    atomic_store(&l->connector_done, 1);
    return NULL;
}

/* Waits for an accepted connection's number with rsock_block or
   rsock_poll (retrying after cancels), then reads it. */
static void take_number(struct lane *l, rsock_socket fd, unsigned *seed) {
    for (;;) {
        int timeout = pick_timeout(seed);
        struct call_start c = call_start(l);
        int r;
        if (rt_rand(seed) % 2) {
            r = rsock_block(l->rtok, fd, RSOCK_READABLE, timeout);
        } else {
            rsock_pollfd p = {fd, POLLIN, 0};
            r = rsock_poll(l->rtok, &p, 1, timeout);
            if (r == 0) {
                r = -1;
                rt_set_error(RSOCK_ETIMEDOUT);
            }
        }
        int err = rsock_last_error();
        check_time(l, r > 0 ? "block/poll" : "block/poll (failed)", timeout, c);
        if (r > 0) break;
        if (atomic_load(&stop)) return;
        if (!account(l, "block/poll", 0, r, l->rtok, err, timeout, c)) return;
    }
    int id = -1;
    intptr_t n = recv(fd, (char *)&id, sizeof id, MSG_WAITALL);
    if (n == 0) {
        l->orphans++; /* a connect that reported failure but had connected */
    } else if (n != sizeof id || id < 0 || id >= CONNS || !atomic_load(&l->connected[id]) ||
               atomic_fetch_add(&l->accepted[id], 1) != 0) {
        fprintf(stderr, "lane %d: bad or repeated connection number %d\n", l->id, id);
        l->unexpected++;
    }
}

/* Accepts until the connector is done and the queue stays empty. */
static void *acceptor(void *arg) {
    struct lane *l = arg;
    unsigned seed = l->round_seed * 19 + 7;
    while (!atomic_load(&stop)) {
        int done = atomic_load(&l->connector_done);
        if (done) {
            /* Finished once the queue stays empty (plain poll: the chaos
               cannot cut this look short). */
            rsock_pollfd p = {l->listener, POLLIN, 0};
            if (rt_poll(&p, 1, 50) == 0) break;
        }
        int timeout = pick_timeout(&seed);
        struct call_start c = call_start(l);
        rsock_socket s = rsock_accept(l->rtok, l->listener, NULL, NULL, timeout);
        int err = rsock_last_error();
        check_time(l, "accept", timeout, c);
        if (sock_ok(s)) {
            take_number(l, s, &seed);
            close_sock(s);
            continue;
        }
        if (!account(l, "accept", 0, s, l->rtok, err, timeout, c)) break;
    }
    return NULL;
}

/* One round of a connection lane; checks that nothing was lost. */
static void connection_round(struct lane *l) {
    l->listener = tcp_listener(8, &l->addr);
    for (int i = 0; i < CONNS; i++) {
        atomic_store(&l->connected[i], 0);
        atomic_store(&l->accepted[i], 0);
    }
    atomic_store(&l->connector_done, 0);
    pthread_t tc, ta;
    REQUIRE(pthread_create(&tc, NULL, connector, l) == 0);
    REQUIRE(pthread_create(&ta, NULL, acceptor, l) == 0);
    pthread_join(tc, NULL);
    pthread_join(ta, NULL);
    if (!atomic_load(&stop)) {
        for (int i = 0; i < CONNS; i++) {
            if (atomic_load(&l->connected[i])) l->connections++;
            if (atomic_load(&l->connected[i]) && !atomic_load(&l->accepted[i])) {
                fprintf(stderr, "lane %d: connection %d was never accepted\n", l->id, i);
                l->lost++;
            }
        }
    }
    close_sock(l->listener);
}

/* Releases the round's tokens (under the lock the chaos thread takes). */
static void end_round(struct lane *l) {
    pthread_mutex_lock(&l->lock);
    rsock_token_unref(l->wtok);
    rsock_token_unref(l->rtok);
    l->wtok = l->rtok = NULL;
    pthread_mutex_unlock(&l->lock);
}

static void *lane_main(void *arg) {
    struct lane *l = arg;
    unsigned seed = 1000 + (unsigned)l->id;
    while (!atomic_load(&stop)) {
        l->round_seed = rt_rand(&seed);
        pthread_mutex_lock(&l->lock);
        l->wtok = rsock_token_child(l->group);
        l->rtok = rsock_token_child(l->group);
        pthread_mutex_unlock(&l->lock);
        REQUIRE(l->wtok && l->rtok);
        if (l->id >= LANES) {
            connection_round(l);
            l->rounds++;
            end_round(l);
            continue;
        }
        if (l->round_seed % 2) unix_pair(l->fd);
        else tcp_pair(l->fd);
        l->hang_up_after = rt_rand(&seed) % 8 == 0 ? (int)(rt_rand(&seed) % 100000) : -1;
        pthread_t tw, tr;
        REQUIRE(pthread_create(&tw, NULL, writer, l) == 0);
        REQUIRE(pthread_create(&tr, NULL, reader, l) == 0);
        pthread_join(tw, NULL);
        pthread_join(tr, NULL);
        if (l->hang_up_after < 0 && !atomic_load(&stop)) {
            if (l->got != l->sent) {
                fprintf(stderr, "lane %d: sent %ld, received %ld\n", l->id, l->sent, l->got);
                l->unexpected++;
            }
        } else if (l->got > l->sent) {
            l->unexpected++;
        }
        l->bytes += l->got;
        l->rounds++;
        end_round(l);
        close_pair(l->fd);
    }
    return NULL;
}

static long chaos_actions;

static void *chaos(void *arg) {
    (void)arg;
    unsigned seed = 99;
    while (!atomic_load(&stop)) {
        spin_us(rt_rand(&seed) % 2000);
        struct lane *l = &lanes[rt_rand(&seed) % ALL_LANES];
        unsigned r = rt_rand(&seed) % 100;
        pthread_mutex_lock(&l->lock);
        if (r < 60) {
            rsock_token *t = r % 2 ? l->wtok : l->rtok;
            if (t) rsock_cancel(t);
        } else if (r < 75) {
            rsock_cancel(l->group);
        } else if (r < 80) {
            counted_reset(l->group, &l->group_resets);
        } else if (r < 82) {
            rsock_cancel(root);
        } else if (r < 84) {
            counted_reset(root, &root_resets);
        } else if (l->rtok) {
            /* A child that lives briefly, cancelled or not. */
            rsock_token *c = rsock_token_child(l->rtok);
            if (c) {
                if (r % 2) rsock_cancel(c);
                rsock_token_unref(c);
            }
        }
        pthread_mutex_unlock(&l->lock);
        chaos_actions++;
    }
    return NULL;
}

int main(void) {
    const char *s = getenv("RSOCK_STRESS_SECONDS");
    double seconds = s ? atof(s) : 5;
    margin_ms = rt_memory_tool() ? 2000 : 250;
    rt_watchdog((unsigned)seconds + 120);
    rt_ignore_sigpipe();
#ifdef _WIN32
    settle_pending_connect_handles(); /* connects get cancelled here */
#endif
    int fds = fd_count();
#ifdef __GLIBC__
    size_t heap = mallinfo2().uordblks;
#endif
    root = rsock_token_new();
    for (int i = 0; i < ALL_LANES; i++) {
        lanes[i].id = i;
        lanes[i].group = rsock_token_child(root);
        pthread_mutex_init(&lanes[i].lock, NULL);
    }
    pthread_t lt[ALL_LANES], ct;
    for (int i = 0; i < ALL_LANES; i++) REQUIRE(pthread_create(&lt[i], NULL, lane_main, &lanes[i]) == 0);
    REQUIRE(pthread_create(&ct, NULL, chaos, NULL) == 0);
    sleep_ms(seconds * 1000);
    atomic_store(&stop, 1);
    pthread_join(ct, NULL); /* first, so that no reset of the root follows: */
    rsock_cancel(root);     /* this wakes everything for good */
    for (int i = 0; i < ALL_LANES; i++) pthread_join(lt[i], NULL);

    long rounds = 0, bytes = 0, cancels = 0, timeouts = 0, unexpected = 0, mismatches = 0;
    long connections = 0, orphans = 0, lost = 0;
    double worst = 0;
    for (int i = 0; i < ALL_LANES; i++) {
        struct lane *l = &lanes[i];
        connections += l->connections;
        orphans += l->orphans;
        lost += l->lost;
        rounds += l->rounds;
        bytes += l->bytes;
        cancels += l->cancels_seen;
        timeouts += l->timeouts;
        unexpected += l->unexpected;
        mismatches += l->mismatches;
        if (l->worst_overshoot > worst) worst = l->worst_overshoot;
        rsock_token_unref(l->group);
        pthread_mutex_destroy(&l->lock);
    }
    rsock_token_unref(root);
    printf("     %.0f s: %ld rounds, %ld bytes, %ld connections (%ld more after a failed connect),\n"
           "     %ld chaos actions, %ld cancels and %ld timeouts seen, worst overshoot %.1f ms (margin %.0f)\n",
           seconds, rounds, bytes, connections, orphans, chaos_actions, cancels, timeouts, worst, margin_ms);
    CHECK(mismatches == 0);
    CHECK(lost == 0);
    CHECK(connections > 0);
    CHECK(unexpected == 0);
    /* The storm really happened (a memory tool slows it too much to count
       on timeouts). */
    CHECK(bytes > 0 && cancels > 0 && (timeouts > 0 || rt_memory_tool()));
    CHECK(fd_count() == fds);
#ifdef __GLIBC__
    /* Heap in use is back near where it started: what stays is one pooled
       waiter record per thread that ever waited at once, and the C
       library's own (a fixed 42 KB here). A debug build of the library
       also keeps its last 4096 freed tokens (about 330 KB) to catch use
       after unref, hence the room. A leak per call (hundreds of thousands
       of calls) exceeds it many times over. (Memory tools replace malloc;
       they check leaks themselves.) */
    long grown = (long)mallinfo2().uordblks - (long)heap;
    printf("     heap in use grew by %ld bytes\n", grown);
    CHECK(rt_memory_tool() || grown < 512 * 1024);
#endif
    return rt_finish("test_stress");
}
