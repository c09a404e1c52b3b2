/* Bounded stress. Byte lanes: a writer and a reader thread stream bytes
   through a socket pair (AF_UNIX or TCP loopback, a new pair and new
   threads every round) with random sizes, timeouts and flags; some rounds
   the reader hangs up early. Connection lanes: a connector makes
   connections (blocking or non-blocking sockets) to a listener and sends
   each one's number; an acceptor accepts them and waits for the number
   with rsock_block or rsock_poll. Meanwhile a chaos thread cancels and
   resets the lanes' tokens, the lane's token and the root, sets deadlines
   on them (clearing each once it has passed), and churns child tokens.

   POSIX adds: every other connection round accepts through the listener
   and a dup() of it at once, from two threads (one open file description,
   blocking listener or not); and the chaos thread forks a child a few
   times a second while the other threads are inside calls. The child (on
   a watchdog of its own) makes calls of its own and exits; each must exit
   with 0. Linux adds shutdowns: half the connection rounds use an AF_UNIX
   listener, some byte rounds an AF_UNIX datagram pair (an empty datagram
   ends the stream), and the chaos thread now and then shuts a round's
   socket down (the reader's side, or the AF_UNIX listener; SHUT_RD or
   SHUT_RDWR) under its waiting calls.

   Checked all along: every byte arrives exactly once and in order (a
   prefix of what was sent when the reader hangs up); every connection that
   connect reported is accepted exactly once (through either descriptor;
   what a shut-down listener still held is taken with a plain accept); every
   call ends as the contract says (done, cancelled, timed out on time or
   by a deadline, or EAGAIN/EPIPE where those apply; in a round whose socket was shut down
   also what the plain call reports then: the end of the stream or a reset
   for the reader, EPIPE/ECONNRESET for the writer, EINVAL from accept,
   ECONNREFUSED from connect); a call that reports ECANCELED was cancelled
   (its token is still cancelled when it returns, or a reset ran
   meanwhile), and one that reports ETIMEDOUT before its own timeout met a
   deadline (one has passed on its chain when it returns, or the chaos
   thread moved one meanwhile); no call outlives its timeout by more than a margin, and none
   on a shut-down socket outlives the shutdown by more than a short bound
   (it must neither wait for its timeout nor spin until a cancel); every
   fork child exits with 0. At the end: every thread joined, every child
   reaped, the descriptor count back where it started, and the heap in use
   back near it (leaks are also checked by the valgrind and sanitizer runs
   of this test). The summary prints the process's CPU time beside the wall
   time (the byte lanes are CPU-bound by design, so no ratio is asserted).

   RSOCK_STRESS_SECONDS sets the duration (default 5). */
#include "rtest.h"

#include <stdatomic.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifndef _WIN32
#include <sys/wait.h>
#endif
#ifdef __linux__
#include <sys/un.h>
#endif

enum { LANES = 6, CONN_LANES = 2, ALL_LANES = LANES + CONN_LANES, CONNS = 40 };

static atomic_int stop;
static rsock_token *root;
static double margin_ms;
/* The longest a call on a socket that was shut down may last after the
   shutdown (it must end at once: not wait, not spin until a cancel). */
static double prompt_ms;
/* Resets of the root and of each lane's token are counted before (begun)
   and after (done) they run. */
struct resets {
    atomic_long begun, done;
};
static struct resets root_resets;
/* Deadlines the chaos thread sets or clears, counted the same way. */
static struct resets deadline_moves;
static atomic_long deadline_timeouts;

static void counted_reset(rsock_token *t, struct resets *r) {
    atomic_fetch_add(&r->begun, 1);
    rsock_token_reset(t);
    atomic_fetch_add(&r->done, 1);
}

/* What a call's checks need from its start. */
struct call_start {
    double t0;
    long resets_done; /* of the call's ancestors: its lane's token and the root */
    long deadline_moves_done;
};

struct lane {
    int id;
    rsock_token *group;     /* child of root; the round's tokens are its children */
    rsock_token *wtok, *rtok;
    rsock_socket fd[2];     /* fd[0] writer side, fd[1] reader side */
    int dgram;              /* this round's pair is AF_UNIX datagram (Linux) */
    unsigned round_seed;
    int hang_up_after;      /* the reader stops after this many bytes (-1: never) */
    long sent, got;
    long rounds, bytes, cancels_seen, timeouts, unexpected, mismatches;
    double worst_overshoot;
    pthread_mutex_t lock;   /* guards wtok/rtok against the chaos thread */
    /* connection lanes: wtok connects, rtok accepts, and dtok accepts
       through dup_listener (a dup() of the listener) in dup rounds */
    rsock_socket listener, dup_listener;
    rsock_token *dtok;
    int family;             /* AF_INET, or AF_UNIX (Linux) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    atomic_int connected[CONNS], accepted[CONNS], connector_done;
    long connections, orphans, lost, dup_rounds;
    struct resets group_resets;
    /* Shutdowns (Linux): the chaos thread may shut shut_fd down (guarded
       by lock; invalid when the round has none). shut is 1 from just
       before the shutdown, 2 once it is done (at shut_done). */
    rsock_socket shut_fd;
    atomic_int shut;
    double shut_done;
    double worst_after_shutdown;
    long shutdowns, dgram_rounds;
};

static struct call_start call_start(struct lane *l) {
    struct call_start c = {now_ms(), atomic_load(&l->group_resets.done) + atomic_load(&root_resets.done),
                           atomic_load(&deadline_moves.done)};
    rt_set_error(0);
    return c;
}

static struct lane lanes[ALL_LANES];

/* Counts a failure (two acceptor threads may report at once). */
static void note_unexpected(struct lane *l) { __atomic_add_fetch(&l->unexpected, 1, __ATOMIC_RELAXED); }

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
    note_unexpected(l);
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
        note_unexpected(l);
    }
}

/* A call on the round's socket after the chaos thread shut it down ends
   within prompt_ms of the shutdown (or of its own start, if later), however
   it ends: the plain call would not wait then, so neither a wait for its
   timeout nor a spin until a cancel ends it. */
static void check_after_shutdown(struct lane *l, const char *call, intptr_t n, int err, int timeout,
                                 struct call_start c) {
    if (atomic_load(&l->shut) != 2) return;
    double end = now_ms(), from = c.t0 > l->shut_done ? c.t0 : l->shut_done;
    double after = end - from;
    pthread_mutex_lock(&l->lock);
    if (after > l->worst_after_shutdown) l->worst_after_shutdown = after;
    pthread_mutex_unlock(&l->lock);
    if (after > prompt_ms) {
        fprintf(stderr, "lane %d: %s(timeout %d) returned %ld (%s) %.1f ms after a shutdown\n", l->id, call, timeout,
                (long)n, rsock_strerror(err), after);
        note_unexpected(l);
    }
}

static int allowed_end(struct lane *l, rsock_token *tok, int err, int timeout, struct call_start c) {
    if (err == RSOCK_ECANCELED) {
        /* A real cancel: the token is still cancelled, or an ancestor's
           reset ran after the call started (one that began before it and
           ended after it counts too). The token's own resets are made by
           its thread, between its calls. */
        /* The token first, then the resets: a reset that un-cancels it
           between the two reads has begun by the second. */
        int cancelled = rsock_is_cancelled(tok);
        long begun = atomic_load(&l->group_resets.begun) + atomic_load(&root_resets.begun);
        int real = cancelled || begun > c.resets_done;
        __atomic_add_fetch(&l->cancels_seen, 1, __ATOMIC_RELAXED);
        rsock_token_reset(tok);
        /* Still cancelled: an ancestor is, until the chaos thread resets it. */
        if (rsock_is_cancelled(tok)) sleep_ms(1);
        if (!real) fprintf(stderr, "lane %d: ECANCELED without a cancel\n", l->id);
        return real;
    }
    if (err == RSOCK_ETIMEDOUT && timeout >= 0 && now_ms() - c.t0 >= timeout - 0.01) {
        __atomic_add_fetch(&l->timeouts, 1, __ATOMIC_RELAXED);
        return 1;
    }
    if (err == RSOCK_ETIMEDOUT) {
        /* A deadline: one has passed on the chain, or the chaos thread
           moved one since the call started (the deadline first, as for a
           cancel). The token's own deadline is cleared by its thread. */
        int passed = rsock_token_remaining(tok) == 0;
        int real = passed || atomic_load(&deadline_moves.begun) > c.deadline_moves_done;
        atomic_fetch_add(&deadline_timeouts, 1);
        rsock_token_set_deadline(tok, RSOCK_INFINITE);
        /* Still passed: an ancestor's, until the chaos thread clears it. */
        if (rsock_token_remaining(tok) == 0) sleep_ms(1);
        if (!real) fprintf(stderr, "lane %d: ETIMEDOUT before the timeout without a deadline\n", l->id);
        return real;
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
        /* A datagram is sent whole and received whole: small ones. */
        size_t len = 1 + rt_rand(&seed) % (l->dgram ? 4096 : sizeof buf);
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
            /* The reader never hangs up then, nor is its side shut down. */
            if (l->hang_up_after < 0 && !atomic_load(&l->shut)) note_unexpected(l);
            break;
        }
        if (!account(l, "send", len, n, l->wtok, err, timeout, c)) break;
    }
    l->sent = off;
#ifdef __linux__
    if (l->dgram) {
        /* A datagram pair has no end of stream: an empty datagram marks it
           (EPIPE if the reader is gone). */
        while (send(l->fd[0], (const char *)buf, 0, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EAGAIN &&
               !atomic_load(&stop))
            sleep_ms(1);
        return NULL;
    }
#endif
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
        if (l->dgram) {
            len = sizeof buf; /* room for any datagram */
            flags = 0;
        }
        struct call_start c = call_start(l);
        intptr_t n = rsock_recv(l->rtok, l->fd[1], buf, len, flags, timeout);
        int err = rsock_last_error();
        check_time(l, "recv", timeout, c);
        check_after_shutdown(l, "recv", n, err, timeout, c);
        for (intptr_t k = 0; k < n; k++)
            if (buf[k] != pattern(l->round_seed, got + k)) l->mismatches++;
        if (n > 0) got += n;
        if (n == 0) break; /* end of stream, or the reader's side shut down */
        /* Short without MSG_WAITALL, or at the end of the stream with it
           (no error then): fine. */
        if (n == (intptr_t)len || (n > 0 && (!(flags & MSG_WAITALL) || err == 0))) continue;
        if (atomic_load(&stop) && err == RSOCK_ECANCELED) break; /* the end: root cancelled for good */
        /* Shut down for reading and writing: the writer's data met a reset. */
        if (atomic_load(&l->shut) && rt_peer_gone(err)) break;
        if (!account(l, "recv", len, n, l->rtok, err, timeout, c)) break;
    }
    l->got = got;
    /* The writer gets EPIPE. (shut is set before the chaos thread's
       shutdown begins, so a reader that it stopped sees it here.) */
    if (l->hang_up_after >= 0 || atomic_load(&l->shut)) shutdown(l->fd[1], SHUT_RDWR);
    return NULL;
}


/* Makes CONNS connections, each sending its number once connected. A
   cancelled or timed-out connect's socket is closed, as the contract asks. */
static void *connector(void *arg) {
    struct lane *l = arg;
    unsigned seed = l->round_seed * 13 + 5;
    for (int i = 0; i < CONNS && !atomic_load(&stop); i++) {
        rsock_socket s = socket(l->family, SOCK_STREAM, 0);
        REQUIRE(sock_ok(s));
        if (rt_rand(&seed) % 2) set_nonblocking(s, 1);
        int timeout = pick_timeout(&seed);
        struct call_start c = call_start(l);
        int r = rsock_connect(l->wtok, s, (struct sockaddr *)&l->addr, l->addrlen, timeout);
        int err = rsock_last_error();
        check_time(l, "connect", timeout, c);
        if (r == 0) {
            atomic_store(&l->connected[i], 1);
            set_nonblocking(s, 0);
            REQUIRE(send(s, (const char *)&i, sizeof i, RT_NOSIGNAL) == sizeof i);
        } else if (!(err == RT_ECONNREFUSED && atomic_load(&l->shut))) { /* refused: the listener is shut down */
            account(l, "connect", 0, r, l->wtok, err, timeout, c);
        }
        close_sock(s);
    }
    atomic_store(&l->connector_done, 1);
    return NULL;
}

/* Waits for an accepted connection's number with rsock_block or
   rsock_poll (retrying after cancels), then reads it. */
static void take_number(struct lane *l, rsock_socket fd, rsock_token *tok, unsigned *seed) {
    for (;;) {
        int timeout = pick_timeout(seed);
        struct call_start c = call_start(l);
        int r;
        if (rt_rand(seed) % 2) {
            r = rsock_block(tok, fd, RSOCK_READABLE, timeout);
        } else {
            rsock_pollfd p = {fd, POLLIN, 0};
            r = rsock_poll(tok, &p, 1, timeout);
            if (r == 0) {
                r = -1;
                rt_set_error(RSOCK_ETIMEDOUT);
            }
        }
        int err = rsock_last_error();
        check_time(l, r > 0 ? "block/poll" : "block/poll (failed)", timeout, c);
        if (r > 0) break;
        if (atomic_load(&stop)) return;
        if (!account(l, "block/poll", 0, r, tok, err, timeout, c)) return;
    }
    int id = -1;
    intptr_t n = recv(fd, (char *)&id, sizeof id, MSG_WAITALL);
    if (n == 0) {
        /* a connect that reported failure but had connected */
        __atomic_add_fetch(&l->orphans, 1, __ATOMIC_RELAXED);
    } else if (n != sizeof id || id < 0 || id >= CONNS || !atomic_load(&l->connected[id]) ||
               atomic_fetch_add(&l->accepted[id], 1) != 0) {
        fprintf(stderr, "lane %d: bad or repeated connection number %d\n", l->id, id);
        note_unexpected(l);
    }
}

/* One acceptor thread: the listener (or a dup() of it) and the token it
   uses (its own: each acceptor resets its token after a cancel). */
struct acceptor_side {
    struct lane *l;
    rsock_socket fd;
    rsock_token *tok;
    unsigned seed;
};

/* Accepts until the connector is done and the queue stays empty, or the
   listener is shut down. */
static void *acceptor(void *arg) {
    struct acceptor_side *a = arg;
    struct lane *l = a->l;
    while (!atomic_load(&stop)) {
        int done = atomic_load(&l->connector_done);
        if (done) {
            /* Finished once the queue stays empty (plain poll: the chaos
               cannot cut this look short). */
            rsock_pollfd p = {a->fd, POLLIN, 0};
            if (rt_poll(&p, 1, 50) == 0) break;
        }
        int timeout = pick_timeout(&a->seed);
        struct call_start c = call_start(l);
        rsock_socket s = rsock_accept(a->tok, a->fd, NULL, NULL, timeout);
        int err = rsock_last_error();
        check_time(l, "accept", timeout, c);
        check_after_shutdown(l, "accept", sock_ok(s) ? 0 : -1, err, timeout, c);
        if (sock_ok(s)) {
            take_number(l, s, a->tok, &a->seed);
            close_sock(s);
            continue;
        }
        if (err == RT_EINVAL && atomic_load(&l->shut)) break; /* as accept says on a shut-down AF_UNIX listener */
        if (!account(l, "accept", 0, s, a->tok, err, timeout, c)) break;
    }
    return NULL;
}

#ifdef __linux__
/* A listening AF_UNIX stream socket with a fresh abstract name; the
   address goes to the lane. (Its backlog exceeds CONNS: a non-blocking
   AF_UNIX connect to a full queue fails with EAGAIN.) */
static rsock_socket unix_listener(struct lane *l) {
    static atomic_int seq;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "rsock-stress-%d-%d", (int)getpid(), atomic_fetch_add(&seq, 1));
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1));
    rsock_socket s = socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(sock_ok(s));
    REQUIRE(bind(s, (struct sockaddr *)&a, len) == 0);
    REQUIRE(listen(s, 2 * CONNS) == 0);
    memcpy(&l->addr, &a, len);
    l->addrlen = len;
    return s;
}
#endif

/* One round of a connection lane; checks that nothing was lost. Rounds
   alternate (with the lane's number) between TCP and AF_UNIX listeners
   (Linux), and every other one also accepts through a dup() of the
   listener from a second thread (POSIX); a quarter of the listeners are
   non-blocking. */
static void connection_round(struct lane *l) {
    unsigned seed = l->round_seed * 23 + 11;
    l->family = AF_INET;
#ifdef __linux__
    if ((l->rounds + l->id) % 2) l->family = AF_UNIX;
#endif
    if (l->family == AF_INET) {
        struct sockaddr_in a;
        l->listener = tcp_listener(8, &a);
        memcpy(&l->addr, &a, sizeof a);
        l->addrlen = sizeof a;
    }
#ifdef __linux__
    else {
        l->listener = unix_listener(l);
    }
#endif
    if (rt_rand(&seed) % 4 == 0) set_nonblocking(l->listener, 1);
    l->dup_listener = RSOCK_INVALID_SOCKET;
#ifndef _WIN32
    if (l->rounds % 2 == 0) {
        l->dup_listener = dup(l->listener);
        REQUIRE(sock_ok(l->dup_listener));
        l->dup_rounds++;
    }
#endif
    for (int i = 0; i < CONNS; i++) {
        atomic_store(&l->connected[i], 0);
        atomic_store(&l->accepted[i], 0);
    }
    atomic_store(&l->connector_done, 0);
    atomic_store(&l->shut, 0);
    pthread_mutex_lock(&l->lock);
    if (l->family != AF_INET) l->shut_fd = l->listener;
    pthread_mutex_unlock(&l->lock);
    struct acceptor_side sides[2] = {{l, l->listener, l->rtok, l->round_seed * 19 + 7},
                                     {l, l->dup_listener, l->dtok, l->round_seed * 29 + 3}};
    int acceptors = sock_ok(l->dup_listener) ? 2 : 1;
    pthread_t tc, ta[2];
    REQUIRE(pthread_create(&tc, NULL, connector, l) == 0);
    for (int i = 0; i < acceptors; i++) REQUIRE(pthread_create(&ta[i], NULL, acceptor, &sides[i]) == 0);
    pthread_join(tc, NULL);
    for (int i = 0; i < acceptors; i++) pthread_join(ta[i], NULL);
    pthread_mutex_lock(&l->lock);
    l->shut_fd = RSOCK_INVALID_SOCKET;
    pthread_mutex_unlock(&l->lock);
#ifdef __linux__
    if (atomic_load(&l->shut) && !atomic_load(&stop)) {
        /* The acceptors stopped at EINVAL; what was queued before the
           shutdown is still there for a plain accept. */
        set_nonblocking(l->listener, 1);
        rsock_socket s;
        while (sock_ok(s = accept(l->listener, NULL, NULL))) {
            take_number(l, s, l->rtok, &seed);
            close_sock(s);
        }
    }
#endif
    if (!atomic_load(&stop)) {
        for (int i = 0; i < CONNS; i++) {
            if (atomic_load(&l->connected[i])) l->connections++;
            if (atomic_load(&l->connected[i]) && !atomic_load(&l->accepted[i])) {
                fprintf(stderr, "lane %d: connection %d was never accepted\n", l->id, i);
                l->lost++;
            }
        }
    }
    if (sock_ok(l->dup_listener)) close_sock(l->dup_listener);
    close_sock(l->listener);
}

/* Releases the round's tokens (under the lock the chaos thread takes). */
static void end_round(struct lane *l) {
    pthread_mutex_lock(&l->lock);
    rsock_token_unref(l->wtok);
    rsock_token_unref(l->rtok);
    rsock_token_unref(l->dtok);
    l->wtok = l->rtok = l->dtok = NULL;
    pthread_mutex_unlock(&l->lock);
}

/* The round's pair: AF_UNIX stream or TCP, or (Linux) AF_UNIX datagram. */
static void byte_pair(struct lane *l) {
    l->dgram = 0;
#ifdef __linux__
    if (l->round_seed % 8 == 2) {
        REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM, 0, l->fd) == 0);
        l->dgram = 1;
        l->dgram_rounds++;
        return;
    }
#endif
    if (l->round_seed % 2) unix_pair(l->fd);
    else tcp_pair(l->fd);
}

static void *lane_main(void *arg) {
    struct lane *l = arg;
    unsigned seed = 1000 + (unsigned)l->id;
    while (!atomic_load(&stop)) {
        l->round_seed = rt_rand(&seed);
        pthread_mutex_lock(&l->lock);
        l->wtok = rsock_token_child(l->group);
        l->rtok = rsock_token_child(l->group);
        if (l->id >= LANES) l->dtok = rsock_token_child(l->group);
        pthread_mutex_unlock(&l->lock);
        REQUIRE(l->wtok && l->rtok && (l->id < LANES || l->dtok));
        if (l->id >= LANES) {
            connection_round(l);
            l->rounds++;
            end_round(l);
            continue;
        }
        byte_pair(l);
        l->hang_up_after = rt_rand(&seed) % 8 == 0 ? (int)(rt_rand(&seed) % 100000) : -1;
        atomic_store(&l->shut, 0);
        pthread_mutex_lock(&l->lock);
        l->shut_fd = l->fd[1];
        pthread_mutex_unlock(&l->lock);
        pthread_t tw, tr;
        REQUIRE(pthread_create(&tw, NULL, writer, l) == 0);
        REQUIRE(pthread_create(&tr, NULL, reader, l) == 0);
        pthread_join(tw, NULL);
        pthread_join(tr, NULL);
        pthread_mutex_lock(&l->lock);
        l->shut_fd = RSOCK_INVALID_SOCKET;
        pthread_mutex_unlock(&l->lock);
        if (l->hang_up_after < 0 && !atomic_load(&l->shut) && !atomic_load(&stop)) {
            if (l->got != l->sent) {
                fprintf(stderr, "lane %d: sent %ld, received %ld\n", l->id, l->sent, l->got);
                note_unexpected(l);
            }
        } else if (l->got > l->sent) {
            note_unexpected(l); /* a hang-up or a shutdown: a prefix of what was sent */
        }
        l->bytes += l->got;
        l->rounds++;
        end_round(l);
        close_pair(l->fd);
    }
    return NULL;
}

static long chaos_actions;

#ifdef __linux__
/* Shuts the lane's round socket down under its calls (called with the
   lane's lock held, so that the descriptor is open); a connection lane's
   listener less often, as its round is long. Returns 0 if it did not. */
static int shut_down(struct lane *l, unsigned *seed) {
    if (!sock_ok(l->shut_fd) || atomic_load(&l->shut) || (l->id >= LANES && rt_rand(seed) % 6)) return 0;
    atomic_store(&l->shut, 1);
    shutdown(l->shut_fd, rt_rand(seed) % 2 ? SHUT_RD : SHUT_RDWR);
    l->shut_done = now_ms();
    atomic_store(&l->shut, 2);
    l->shutdowns++;
    return 1;
}
#endif

#ifndef _WIN32
/* fork() children: each makes calls of its own while the parent's threads
   are inside theirs, and must exit with 0. */
static rsock_socket fork_listener; /* nobody connects to it */
static long forks, fork_failures;
enum { MAX_CHILDREN = 16 };
static pid_t children[MAX_CHILDREN];
static int nchildren;

static void *cancel_soon(void *arg) {
    sleep_ms(5);
    rsock_cancel(arg);
    return NULL;
}

/* The child's calls; returns its exit status (a bit per failed step). */
static int child_calls(void) {
    signal(SIGALRM, SIG_DFL);
    alarm(5); /* a hung child dies of SIGALRM */
    int bad = 0, sv[2];
    char c = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 100;
    rsock_token *t = rsock_token_new(), *t2 = rsock_token_new();
    if (!t || !t2) return 101;
    if (rsock_recv(t, sv[0], &c, 1, 0, 20) != -1 || rsock_last_error() != RSOCK_ETIMEDOUT) bad |= 1;
    if (send(sv[1], "x", 1, 0) != 1 || rsock_recv(t, sv[0], &c, 1, 0, 1000) != 1 || c != 'x') bad |= 2;
    /* Accepts on the inherited listener, also at the number of each
       listener the parent's acceptors were using (the child's copy is
       replaced by it), so that nothing the parent's threads held at the
       fork blocks it. */
    for (int fd = 0; fd < 256; fd++) {
        int on = 0;
        socklen_t len = sizeof on;
        if (fd != fork_listener &&
            (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0 || !on || dup2(fork_listener, fd) != fd))
            continue;
        rsock_socket s = rsock_accept(t, fd, NULL, NULL, 0);
        if (sock_ok(s)) close_sock(s);
        else if (rsock_last_error() != RSOCK_ETIMEDOUT) bad |= 4;
    }
    /* A cancel from another thread wakes a receive. */
    pthread_t th;
    if (pthread_create(&th, NULL, cancel_soon, t2) != 0) return 102;
    if (rsock_recv(t2, sv[0], &c, 1, 0, RSOCK_INFINITE) != -1 || rsock_last_error() != RSOCK_ECANCELED) bad |= 8;
    pthread_join(th, NULL);
    /* Its copy of the root is its own: cancelling it wakes nobody in the
       parent (whose ECANCELED checks would see that). */
    rsock_cancel(root);
    if (!rsock_is_cancelled(root)) bad |= 16;
    rsock_token_unref(t);
    rsock_token_unref(t2);
    close_pair(sv);
    return bad;
}

/* Reaps the children that have exited (with `wait`, all of them). */
static void reap_children(int wait) {
    for (int i = 0; i < nchildren;) {
        int status = 0;
        pid_t r;
        while ((r = waitpid(children[i], &status, wait ? 0 : WNOHANG)) < 0 && errno == EINTR) {
        }
        if (r == 0) {
            i++;
            continue;
        }
        if (r != children[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (r != children[i]) fprintf(stderr, "fork child %d: waitpid failed\n", (int)children[i]);
            else if (WIFSIGNALED(status)) fprintf(stderr, "fork child %d: killed by signal %d (hung?)\n", (int)r, WTERMSIG(status));
            else fprintf(stderr, "fork child %d: exit status %d\n", (int)r, WEXITSTATUS(status));
            fork_failures++;
        }
        children[i] = children[--nchildren];
    }
}

static void fork_child(void) {
    /* qemu-user cannot fork a process whose other threads are running
       guest code (the child can hang in the emulator's own locks). */
    if (getenv("RSOCK_TEST_EMULATED")) return;
    if (nchildren == MAX_CHILDREN) reap_children(1);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int status = child_calls();
        /* Under valgrind a child's exit reports as leaked the records of
           the parent's threads that were inside calls (the child has not
           their stacks): it ends by exec instead, which is not checked. */
        if (rt_memory_tool()) {
            char cmd[16];
            snprintf(cmd, sizeof cmd, "exit %d", status);
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        }
        _exit(status);
    }
    children[nchildren++] = pid;
    forks++;
}
#endif

/* Sets or clears a deadline, counted for allowed_end. */
static void move_deadline(rsock_token *t, int timeout_ms) {
    atomic_fetch_add(&deadline_moves.begun, 1);
    rsock_token_set_deadline(t, timeout_ms);
    atomic_fetch_add(&deadline_moves.done, 1);
}

static void *chaos(void *arg) {
    (void)arg;
    unsigned seed = 99;
#ifndef _WIN32
    double next_fork = now_ms() + 100;
#endif
    while (!atomic_load(&stop)) {
        spin_us(rt_rand(&seed) % 2000);
#ifndef _WIN32
        /* About 4 forks a second, the children reaped as they exit. */
        if (now_ms() >= next_fork) {
            fork_child();
            next_fork = now_ms() + 150 + rt_rand(&seed) % 200;
        }
        if (nchildren) reap_children(0);
#endif
        struct lane *l = &lanes[rt_rand(&seed) % ALL_LANES];
        unsigned r = rt_rand(&seed) % 100;
        pthread_mutex_lock(&l->lock);
        /* A passed deadline on the root or a lane's group stays only until
           the chaos thread comes by. */
        if (rsock_token_remaining(root) == 0) move_deadline(root, RSOCK_INFINITE);
        if (rsock_token_remaining(l->group) == 0) move_deadline(l->group, RSOCK_INFINITE);
        if (r < 60) {
            /* A connection lane's second acceptor has a token too. */
            rsock_token *t = r % 2 ? l->wtok : r % 4 == 0 && l->dtok ? l->dtok : l->rtok;
            if (t) rsock_cancel(t);
        } else if (r < 75) {
            rsock_cancel(l->group);
        } else if (r < 80) {
            counted_reset(l->group, &l->group_resets);
        } else if (r < 82) {
            rsock_cancel(root);
        } else if (r < 84) {
            counted_reset(root, &root_resets);
#ifdef __linux__
        } else if (r < 87 && shut_down(l, &seed)) {
#endif
        } else if (r >= 87 && r < 93) {
            /* A deadline 0-29 ms away: on the root, the lane's group, or
               one of its round's tokens. */
            rsock_token *t = r == 87 ? root : r < 90 ? l->group : r % 2 ? l->wtok : l->rtok;
            if (t) move_deadline(t, (int)(rt_rand(&seed) % 30));
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
#ifndef _WIN32
    reap_children(1);
#endif
    return NULL;
}

/* CPU time of this process (all its threads), in seconds. */
static double cpu_seconds(void) {
#ifdef _WIN32
    FILETIME created, exited, kernel, user;
    if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user)) return 0;
    ULARGE_INTEGER k = {{kernel.dwLowDateTime, kernel.dwHighDateTime}},
                   u = {{user.dwLowDateTime, user.dwHighDateTime}};
    return (double)(k.QuadPart + u.QuadPart) / 1e7;
#else
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
#endif
}

int main(void) {
    const char *s = getenv("RSOCK_STRESS_SECONDS");
    double seconds = s ? atof(s) : 5;
    margin_ms = rt_memory_tool() ? 2000 : 250;
    prompt_ms = rt_memory_tool() ? 1000 : 100; /* seen: under 5 ms; spinning until a cancel or the timeout took 40-350 */
    rt_watchdog((unsigned)seconds + 120);
    rt_ignore_sigpipe();
#ifdef _WIN32
    settle_pending_connect_handles(); /* connects get cancelled here */
#endif
    int fds = fd_count();
#ifdef __GLIBC__
    size_t heap = mallinfo2().uordblks;
#endif
#ifndef _WIN32
    fork_listener = tcp_listener(1, NULL);
    set_nonblocking(fork_listener, 1); /* shared across processes (see rsock_accept) */
#endif
    root = rsock_token_new();
    for (int i = 0; i < ALL_LANES; i++) {
        lanes[i].id = i;
        lanes[i].group = rsock_token_child(root);
        lanes[i].shut_fd = RSOCK_INVALID_SOCKET;
        pthread_mutex_init(&lanes[i].lock, NULL);
    }
    double wall0 = now_ms(), cpu0 = cpu_seconds();
    pthread_t lt[ALL_LANES], ct;
    for (int i = 0; i < ALL_LANES; i++) REQUIRE(pthread_create(&lt[i], NULL, lane_main, &lanes[i]) == 0);
    REQUIRE(pthread_create(&ct, NULL, chaos, NULL) == 0);
    sleep_ms(seconds * 1000);
    atomic_store(&stop, 1);
    pthread_join(ct, NULL); /* first, so that no reset of the root follows: */
    rsock_cancel(root);     /* this wakes everything for good */
    for (int i = 0; i < ALL_LANES; i++) pthread_join(lt[i], NULL);
    double wall = (now_ms() - wall0) / 1000, cpu = cpu_seconds() - cpu0;
#ifndef _WIN32
    close_sock(fork_listener);
#else
    long forks = 0, fork_failures = 0;
#endif

    long rounds = 0, bytes = 0, cancels = 0, timeouts = 0, unexpected = 0, mismatches = 0;
    long connections = 0, orphans = 0, lost = 0, dup_rounds = 0, shutdowns = 0, dgram_rounds = 0;
    double worst = 0, worst_after_shutdown = 0;
    for (int i = 0; i < ALL_LANES; i++) {
        struct lane *l = &lanes[i];
        dup_rounds += l->dup_rounds;
        shutdowns += l->shutdowns;
        dgram_rounds += l->dgram_rounds;
        if (l->worst_after_shutdown > worst_after_shutdown) worst_after_shutdown = l->worst_after_shutdown;
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
    printf("     %ld forks (%ld children failed), %ld dup()ed-listener rounds, %ld datagram rounds,\n"
           "     %ld shutdowns (latest end after one %.1f ms, bound %.0f), %ld deadline moves and\n"
           "     %ld calls ended by one, CPU %.1f s in %.1f s\n",
           forks, fork_failures, dup_rounds, dgram_rounds, shutdowns, worst_after_shutdown, prompt_ms,
           (long)atomic_load(&deadline_moves.done), (long)atomic_load(&deadline_timeouts), cpu, wall);
    CHECK(mismatches == 0);
    CHECK(lost == 0);
    CHECK(connections > 0);
    CHECK(unexpected == 0);
    /* The storm really happened (a memory tool slows it too much to count
       on timeouts). */
    CHECK(bytes > 0 && cancels > 0 && (timeouts > 0 || rt_memory_tool()));
    CHECK(atomic_load(&deadline_timeouts) > 0);
    CHECK(fork_failures == 0);
#ifndef _WIN32
    CHECK((forks > 0 || getenv("RSOCK_TEST_EMULATED")) && dup_rounds > 0);
#endif
#ifdef __linux__
    CHECK(shutdowns > 0 || rt_memory_tool());
#endif
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
