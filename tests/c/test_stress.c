/* Bounded stress: lanes of writer/reader threads stream bytes through
   socket pairs (AF_UNIX and TCP loopback, a new pair and new threads every
   round) with random sizes, timeouts and flags, while a chaos thread
   cancels and resets their tokens, their lane's token and the root, and
   churns child tokens. Some rounds the reader hangs up early.

   Checked all along: every byte arrives exactly once and in order (a
   prefix of what was sent when the reader hangs up); every call ends as
   the contract says (done, cancelled, timed out on time, or EAGAIN/EPIPE
   where those apply); no timed-out call outlives its timeout by more than a
   margin. At the end: every thread joined and the descriptor count back
   where it started (memory is checked by the valgrind and sanitizer runs
   of this test).

   RSOCK_STRESS_SECONDS sets the duration (default 5). */
#include "rtest.h"

#include <stdatomic.h>

enum { LANES = 6 };

static atomic_int stop;
static rsock_token *root;
static double margin_ms;

struct lane {
    int id;
    rsock_token *group;     /* child of root; the round's tokens are its children */
    rsock_token *wtok, *rtok;
    int fd[2];              /* fd[0] writer side, fd[1] reader side */
    unsigned round_seed;
    int hang_up_after;      /* the reader stops after this many bytes (-1: never) */
    long sent, got;
    long rounds, bytes, cancels_seen, timeouts, unexpected, mismatches;
    double worst_overshoot;
    pthread_mutex_t lock;   /* guards wtok/rtok against the chaos thread */
};

static struct lane lanes[LANES];

static unsigned char pattern(unsigned seed, long i) { return (unsigned char)((i * 7 + (i >> 11) + seed) % 251); }

static int pick_timeout(unsigned *seed) {
    unsigned r = rt_rand(seed) % 10;
    if (r < 4) return RSOCK_INFINITE;
    if (r == 4) return 0;
    return 1 + (int)(rt_rand(seed) % 60);
}

static int allowed_end(struct lane *l, rsock_token *tok, int err, int timeout, double elapsed);

/* Records how a call that did not complete ended; returns 0 (and reports
   it) if that end is not one the contract allows. */
static int account(struct lane *l, const char *call, size_t len, intptr_t n, rsock_token *tok, int err,
                   int timeout, double elapsed) {
    if (allowed_end(l, tok, err, timeout, elapsed)) return 1;
    fprintf(stderr, "lane %d: %s(%zu, timeout %d) returned %ld: %s\n", l->id, call, len, timeout, (long)n,
            rsock_strerror(err));
    l->unexpected++;
    return 0;
}

static int allowed_end(struct lane *l, rsock_token *tok, int err, int timeout, double elapsed) {
    if (err == RSOCK_ECANCELED) {
        __atomic_add_fetch(&l->cancels_seen, 1, __ATOMIC_RELAXED);
        rsock_token_reset(tok);
        /* Still cancelled: an ancestor is, until the chaos thread resets it. */
        if (rsock_is_cancelled(tok)) sleep_ms(1);
        return 1;
    }
    if (err == RSOCK_ETIMEDOUT && timeout >= 0) {
        __atomic_add_fetch(&l->timeouts, 1, __ATOMIC_RELAXED);
        double over = elapsed - timeout;
        pthread_mutex_lock(&l->lock);
        if (over > l->worst_overshoot) l->worst_overshoot = over;
        pthread_mutex_unlock(&l->lock);
        return elapsed >= timeout - 0.01 && over <= margin_ms;
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
        int dontwait = rt_rand(&seed) % 10 == 0;
        int flags = MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0);
        double t0 = now_ms();
        errno = 0;
        intptr_t n = rsock_send(l->wtok, l->fd[0], buf, len, flags, timeout);
        int err = rsock_last_error();
        double el = now_ms() - t0;
        if (n > 0) off += n;
        /* MSG_DONTWAIT: what was queued, or EAGAIN when nothing could be. */
        if (n == (intptr_t)len || (dontwait && (n >= 0 || err == EAGAIN || err == EWOULDBLOCK))) continue;
        if (err == EPIPE || err == ECONNRESET) {
            if (l->hang_up_after < 0) l->unexpected++; /* the reader never hangs up then */
            break;
        }
        if (!account(l, "send", len, n, l->wtok, err, timeout, el)) break;
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
        double t0 = now_ms();
        errno = 0;
        intptr_t n = rsock_recv(l->rtok, l->fd[1], buf, len, flags, timeout);
        int err = rsock_last_error();
        double el = now_ms() - t0;
        for (intptr_t k = 0; k < n; k++)
            if (buf[k] != pattern(l->round_seed, got + k)) l->mismatches++;
        if (n > 0) got += n;
        if (n == 0) break; /* end of stream */
        /* Short without MSG_WAITALL, or at the end of the stream with it
           (no error then): fine. */
        if (n == (intptr_t)len || (n > 0 && (!(flags & MSG_WAITALL) || err == 0))) continue;
        if (atomic_load(&stop) && err == RSOCK_ECANCELED) break; /* the end: root cancelled for good */
        if (!account(l, "recv", len, n, l->rtok, err, timeout, el)) break;
    }
    l->got = got;
    if (l->hang_up_after >= 0) shutdown(l->fd[1], SHUT_RDWR); /* the writer gets EPIPE */
    return NULL;
}

static void *lane_main(void *arg) {
    struct lane *l = arg;
    unsigned seed = 1000 + (unsigned)l->id;
    while (!atomic_load(&stop)) {
        l->round_seed = rt_rand(&seed);
        if (l->round_seed % 2) unix_pair(l->fd);
        else tcp_pair(l->fd);
        l->hang_up_after = rt_rand(&seed) % 8 == 0 ? (int)(rt_rand(&seed) % 100000) : -1;
        pthread_mutex_lock(&l->lock);
        l->wtok = rsock_token_child(l->group);
        l->rtok = rsock_token_child(l->group);
        pthread_mutex_unlock(&l->lock);
        REQUIRE(l->wtok && l->rtok);
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
        pthread_mutex_lock(&l->lock);
        rsock_token_unref(l->wtok);
        rsock_token_unref(l->rtok);
        l->wtok = l->rtok = NULL;
        pthread_mutex_unlock(&l->lock);
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
        struct lane *l = &lanes[rt_rand(&seed) % LANES];
        unsigned r = rt_rand(&seed) % 100;
        pthread_mutex_lock(&l->lock);
        if (r < 60) {
            rsock_token *t = r % 2 ? l->wtok : l->rtok;
            if (t) rsock_cancel(t);
        } else if (r < 75) {
            rsock_cancel(l->group);
        } else if (r < 80) {
            rsock_token_reset(l->group);
        } else if (r < 82) {
            rsock_cancel(root);
        } else if (r < 84) {
            rsock_token_reset(root);
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
    signal(SIGPIPE, SIG_IGN);
    int fds = fd_count();
    root = rsock_token_new();
    for (int i = 0; i < LANES; i++) {
        lanes[i].id = i;
        lanes[i].group = rsock_token_child(root);
        pthread_mutex_init(&lanes[i].lock, NULL);
    }
    pthread_t lt[LANES], ct;
    for (int i = 0; i < LANES; i++) REQUIRE(pthread_create(&lt[i], NULL, lane_main, &lanes[i]) == 0);
    REQUIRE(pthread_create(&ct, NULL, chaos, NULL) == 0);
    sleep_ms(seconds * 1000);
    atomic_store(&stop, 1);
    pthread_join(ct, NULL); /* first, so that no reset of the root follows: */
    rsock_cancel(root);     /* this wakes everything for good */
    for (int i = 0; i < LANES; i++) pthread_join(lt[i], NULL);

    long rounds = 0, bytes = 0, cancels = 0, timeouts = 0, unexpected = 0, mismatches = 0;
    double worst = 0;
    for (int i = 0; i < LANES; i++) {
        struct lane *l = &lanes[i];
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
    printf("     %.0f s: %ld rounds, %ld bytes, %ld chaos actions, %ld cancels and %ld timeouts seen,\n"
           "     worst timeout overshoot %.1f ms (margin %.0f)\n",
           seconds, rounds, bytes, chaos_actions, cancels, timeouts, worst, margin_ms);
    CHECK(mismatches == 0);
    CHECK(unexpected == 0);
    /* The storm really happened (a memory tool slows it too much to count
       on timeouts). */
    CHECK(bytes > 0 && cancels > 0 && (timeouts > 0 || rt_memory_tool()));
    CHECK(fd_count() == fds);
    return rt_finish("test_stress");
}
