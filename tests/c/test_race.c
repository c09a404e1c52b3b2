/* Races for real: cancel against every phase of a call, cancel storms with
   exact byte accounting, many waiters, signal handlers, thread churn. Every
   test is bounded by the watchdog: a lost wake-up fails instead of hanging. */
#include "rtest.h"

#include <sched.h>
#include <stdatomic.h>
#ifdef __linux__
#include <fcntl.h>
#include <sys/syscall.h>
#endif

/* ---- cancel racing with the start, the wait and the end of a call ---- */

enum { KIND_RECV, KIND_BLOCK, KIND_POLL, KIND_ACCEPT, KIND_CHILD, KIND_COUNT };

static struct {
    atomic_int go;   /* iteration number the worker may start */
    atomic_int done; /* iteration number the worker finished */
    rsock_token *root, *child;
    rsock_socket sock, listener;
    int bad; /* iterations that did not end in ECANCELED */
} race;

static void *race_worker(void *arg) {
    int iters = *(int *)arg;
    for (int i = 1; i <= iters; i++) {
        while (atomic_load(&race.go) < i) sched_yield();
        int kind = i % KIND_COUNT;
        long r;
        char c;
        rsock_pollfd p = {race.sock, POLLIN, 0};
        switch (kind) {
        case KIND_RECV: r = rsock_recv(race.root, race.sock, &c, 1, 0, RSOCK_INFINITE); break;
        case KIND_BLOCK: r = rsock_block(race.root, race.sock, RSOCK_READABLE, RSOCK_INFINITE); break;
        case KIND_POLL: r = rsock_poll(race.root, &p, 1, RSOCK_INFINITE); break;
        case KIND_ACCEPT: r = rsock_accept(race.root, race.listener, NULL, NULL, RSOCK_INFINITE); break;
        default: r = rsock_recv(race.child, race.sock, &c, 1, 0, RSOCK_INFINITE); break;
        }
        if (r != -1 || rsock_last_error() != RSOCK_ECANCELED) race.bad++;
        atomic_store(&race.done, i);
    }
    return NULL;
}

static void no_lost_wakeup_in_any_interleaving(void) {
    int iters = rt_scaled(20000);
    rsock_socket sv[2];
    unix_pair(sv);
    race.sock = sv[0];
    race.listener = tcp_listener(4, NULL);
    race.root = rsock_token_new();
    race.child = rsock_token_child(race.root);
    pthread_t th;
    pthread_create(&th, NULL, race_worker, &iters);
    unsigned seed = 12345;
    for (int i = 1; i <= iters; i++) {
        rsock_token_reset(race.root);
        rsock_token_reset(race.child);
        atomic_store(&race.go, i);
        /* 0-60 us: before the call starts, while it registers, or while it waits. */
        spin_us(rt_rand(&seed) % 60);
        rsock_cancel(race.root);
        while (atomic_load(&race.done) < i) sched_yield();
    }
    pthread_join(th, NULL);
    CHECK(race.bad == 0);
    close_pair(sv);
    close_sock(race.listener);
    rsock_token_unref(race.child);
    rsock_token_unref(race.root);
}

/* ---- cancel storm against a byte stream ---- */

static unsigned char pattern(long i) { return (unsigned char)((i * 7 + (i >> 11)) % 251); }

struct stream {
    rsock_socket fd;
    long total; /* the writer sends at least this much, and goes on until `stop` */
    rsock_token *tok;
    atomic_int finished, stop;
    long sent, got;
    long mismatches;
    long cancels_seen;
};

static void *stream_writer(void *arg) {
    struct stream *s = arg;
    unsigned char buf[65536];
    unsigned seed = 99;
    long off = 0;
    while (off < s->total || !atomic_load(&s->stop)) {
        long len = 1 + rt_rand(&seed) % sizeof buf;
        for (long k = 0; k < len; k++) buf[k] = pattern(off + k);
        intptr_t n = rsock_send(s->tok, s->fd, buf, (size_t)len, 0, RSOCK_INFINITE);
        if (n > 0) off += n;
        if (n < len) {
            if (n < 0 && rsock_last_error() != RSOCK_ECANCELED) break;
            rsock_token_reset(s->tok);
        }
    }
    s->sent = off;
    shutdown(s->fd, SHUT_WR);
    return NULL;
}

static void *stream_reader(void *arg) {
    struct stream *s = arg;
    unsigned char buf[65536];
    unsigned seed = 7;
    for (;;) {
        size_t len = 1 + rt_rand(&seed) % sizeof buf;
        intptr_t n = rsock_recv(s->tok, s->fd, buf, len, 0, RSOCK_INFINITE);
        if (n == 0) break;
        if (n < 0) {
            if (rsock_last_error() != RSOCK_ECANCELED) break;
            s->cancels_seen++;
            rsock_token_reset(s->tok);
            continue;
        }
        for (intptr_t k = 0; k < n; k++)
            if (buf[k] != pattern(s->got + k)) s->mismatches++;
        s->got += n;
    }
    atomic_store(&s->finished, 1);
    return NULL;
}

static void storm(int use_tcp) {
    rsock_socket sv[2];
    if (use_tcp) tcp_pair(sv);
    else unix_pair(sv);
    long total = (long)rt_scaled(64) << 20;
    struct stream w = {sv[0], total, rsock_token_new(), 0, 0, 0, 0, 0, 0};
    struct stream r = {sv[1], total, rsock_token_new(), 0, 0, 0, 0, 0, 0};
    pthread_t tw, tr;
    pthread_create(&tw, NULL, stream_writer, &w);
    pthread_create(&tr, NULL, stream_reader, &r);
    unsigned seed = 4242;
    long cancels = 0;
    while (!atomic_load(&r.finished)) {
        spin_us(rt_rand(&seed) % 200);
        rsock_cancel((rt_rand(&seed) & 1) ? r.tok : w.tok);
        if (++cancels >= 100) atomic_store(&w.stop, 1); /* enough races: the writer may end */
        sched_yield(); /* let the stream move on a serialized scheduler (valgrind) */
    }
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    CHECK(r.got == w.sent && r.got >= total);
    CHECK(r.mismatches == 0);
    CHECK(cancels >= 100 && r.cancels_seen >= 2); /* the races really happened */
    printf("     %s: %ld bytes, %ld cancels sent, %ld seen by the reader\n", use_tcp ? "tcp" : "unix", r.got,
           cancels, r.cancels_seen);
    close_pair(sv);
    rsock_token_unref(w.tok);
    rsock_token_unref(r.tok);
}

static void cancel_storm_loses_no_byte(void) {
#ifndef _WIN32
    storm(0); /* (on Windows unix_pair is TCP too) */
#endif
    storm(1);
}

/* ---- one cancel wakes every waiter, including grandchildren's ---- */

struct waiter {
    rsock_token *tok;
    rsock_socket fd;
    long result;
    int err;
    atomic_int *started;
    int hooked;
};

/* Counts the threads that have reached their wait: the blocking hook runs
   only once a call is registered on its token and has to wait. */
static atomic_int in_wait;
static __thread int counted;
static int count_arrival(void) {
    if (!counted) atomic_fetch_add(&in_wait, 1);
    counted = 1;
    return 0;
}

static void *wait_forever(void *arg) {
    struct waiter *w = arg;
    char c;
    atomic_fetch_add(w->started, 1);
    if (w->hooked) rsock_set_blocking_hook(count_arrival);
    w->result = rsock_recv(w->tok, w->fd, &c, 1, 0, RSOCK_INFINITE);
    w->err = rsock_last_error();
    return NULL;
}

static void many_waiters(int reset_at_once) {
    enum { N = 64 };
    atomic_store(&in_wait, 0);
    rsock_token *root = rsock_token_new();
    rsock_token *child = rsock_token_child(root);
    rsock_token *grand = rsock_token_child(child);
    struct waiter ws[N];
    pthread_t th[N];
    rsock_socket pairs[N][2];
    atomic_int started = 0;
    for (int i = 0; i < N; i++) {
        unix_pair(pairs[i]);
        ws[i] = (struct waiter){i % 3 == 0 ? root : i % 3 == 1 ? child : grand, pairs[i][0], 0, 0, &started,
                                reset_at_once};
        pthread_create(&th[i], NULL, wait_forever, &ws[i]);
    }
    while (atomic_load(&started) < N) sched_yield();
    if (reset_at_once) {
        /* A waiter that started after the reset would rightly wait for ever:
           make sure every one is inside its wait first. (The hook makes the
           waits sliced, but a slice boundary only re-checks the token, which
           the reset has re-armed: only the cancel epoch can fail them.) */
        while (atomic_load(&in_wait) < N) sched_yield();
    } else {
        sleep_ms(100); /* a late waiter still fails: the cancel is sticky */
    }
    double t0 = now_ms();
    rsock_cancel(root);
    if (reset_at_once) rsock_token_reset(root); /* before the waiters even wake */
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    double el = now_ms() - t0;
    int ok = 0;
    for (int i = 0; i < N; i++) ok += ws[i].result == -1 && ws[i].err == RSOCK_ECANCELED;
    CHECK(ok == N);
    printf("     %d waiters woken in %.2f ms%s\n", ok, el, reset_at_once ? " (cancel, then reset at once)" : "");
    if (reset_at_once) {
        /* The reset re-armed the token for later calls. */
        CHECK(rsock_is_cancelled(root) == 0);
        char c;
        CHECK_ERR(rsock_recv(root, pairs[0][0], &c, 1, 0, 1), RSOCK_ETIMEDOUT);
    }
    for (int i = 0; i < N; i++) close_pair(pairs[i]);
    rsock_token_unref(grand);
    rsock_token_unref(child);
    rsock_token_unref(root);
}

static void sixty_four_waiters_one_cancel(void) { many_waiters(0); }

/* A cancel that lands while calls wait fails them even if the token is reset
   before they wake up. */
static void cancel_then_reset_still_fails_waiting_calls(void) { many_waiters(1); }

/* The same for calls that wait without a blocking hook, on a root token
   that has had a waiter before: rsock's leanest wait (src/ops/express.rs),
   which hands a woken call to the general path. The cancel still fails
   them after the reset. */
struct plain_waiter {
    rsock_token *tok;
    rsock_socket fd;
    int cpu;
    atomic_int tid;
    long result;
    int err;
};

static void *plain_wait(void *arg) {
    struct plain_waiter *w = arg;
    char c;
#ifdef __linux__
    /* On the canceller's CPU, in SCHED_IDLE, which never preempts it: the
       waiters wake only once the canceller has also reset the token. */
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(w->cpu, &one);
    struct sched_param idle = {0};
    REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0);
    REQUIRE(pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle) == 0);
    atomic_store(&w->tid, (int)syscall(SYS_gettid));
#else
    atomic_store(&w->tid, 1);
#endif
    w->result = rsock_recv(w->tok, w->fd, &c, 1, 0, RSOCK_INFINITE);
    w->err = rsock_last_error();
    return NULL;
}

/* Returns once thread `tid` sleeps (Linux, also under qemu-user, whose
   guest threads are host threads; elsewhere after 200 ms). The waiters
   publish their id just before the call and nothing before the call's start
   sleeps: a sleeping waiter has started its call, which is what a cancel
   must fail. */
static void wait_until_asleep(int tid) {
#ifdef __linux__
    for (;;) {
        char path[64], buf[256] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        const char *end = n > 0 ? strrchr(buf, ')') : NULL; /* after the name */
        if (end && end[1] == ' ' && end[2] == 'S') return;
        sleep_ms(1);
    }
#else
    (void)tid;
    sleep_ms(200);
#endif
}

static void cancel_then_reset_fails_calls_without_a_hook(void) {
    enum { N = 6 }; /* the token's own slots (a crowd beyond 8 is tested below) */
    rsock_token *t = rsock_token_new();
    rsock_socket pairs[N][2];
    struct plain_waiter ws[N];
    pthread_t th[N];
    char c;
    int cpu = 0;
#ifdef __linux__
    cpu_set_t saved, one;
    REQUIRE(pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0);
    cpu = sched_getcpu();
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0);
#endif
    for (int i = 0; i < N; i++) unix_pair(pairs[i]);
    /* A first wait makes the token's slots: later ones take the lean wait. */
    CHECK_ERR(rsock_recv(t, pairs[0][0], &c, 1, 0, 1), RSOCK_ETIMEDOUT);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            ws[i] = (struct plain_waiter){t, pairs[i][0], cpu, 0, 0, 0};
            pthread_create(&th[i], NULL, plain_wait, &ws[i]);
        }
        for (int i = 0; i < N; i++) {
            while (atomic_load(&ws[i].tid) == 0) sched_yield();
            wait_until_asleep(atomic_load(&ws[i].tid));
        }
        rsock_cancel(t);
        rsock_token_reset(t); /* before the waiters even wake */
        int ok = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            ok += ws[i].result == -1 && ws[i].err == RSOCK_ECANCELED;
        }
        CHECK(ok == N);
        CHECK(rsock_is_cancelled(t) == 0);
    }
#ifdef __linux__
    REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof saved, &saved) == 0);
#endif
    for (int i = 0; i < N; i++) close_pair(pairs[i]);
    rsock_token_unref(t);
}

/* Many threads on one token share one wake descriptor (a crowd, beyond
   the token's first 8 waiters): rounds of 40 waiters, each ended by one
   cancel and followed by a reset, then a round ended by a deadline set while
   they wait. Every waiter ends every round, with the round's error. */
static void crowds_come_back_after_resets_and_deadlines(void) {
    enum { N = 40, ROUNDS = 4 };
    rsock_token *t = rsock_token_new();
    rsock_socket sv[2];
    unix_pair(sv);
    for (int round = 0; round < ROUNDS; round++) {
        int by_deadline = round == ROUNDS - 1;
        struct waiter ws[N];
        pthread_t th[N];
        atomic_int started = 0;
        for (int i = 0; i < N; i++) {
            ws[i] = (struct waiter){t, sv[0], 0, 0, &started, 0};
            pthread_create(&th[i], NULL, wait_forever, &ws[i]);
        }
        while (atomic_load(&started) < N) sched_yield();
        sleep_ms(50); /* all inside their waits */
        double t0 = now_ms();
        if (by_deadline) CHECK(rsock_token_set_deadline(t, 30) == 0);
        else rsock_cancel(t);
        for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
        double el = now_ms() - t0;
        int want = by_deadline ? RSOCK_ETIMEDOUT : RSOCK_ECANCELED, ok = 0;
        for (int i = 0; i < N; i++) ok += ws[i].result == -1 && ws[i].err == want;
        CHECK(ok == N);
        CHECK(el < 2000);
        rsock_token_reset(t);
    }
    close_pair(sv);
    rsock_token_unref(t);
}

#ifndef _WIN32
/* ---- rsock_cancel from a signal handler ---- */

static rsock_token *volatile sig_tok;
static void on_cancel_signal(int sig) {
    (void)sig;
    int saved = errno;
    rsock_cancel(sig_tok);
    if (errno != saved) abort(); /* rsock_cancel preserves errno */
}

static struct {
    atomic_int go, done;
    int sock;
    int bad;
} sigrace;

static void *sig_worker(void *arg) {
    int iters = *(int *)arg;
    for (int i = 1; i <= iters; i++) {
        while (atomic_load(&sigrace.go) < i) sched_yield();
        char c;
        long r = rsock_recv(sig_tok, sigrace.sock, &c, 1, 0, RSOCK_INFINITE);
        if (r != -1 || rsock_last_error() != RSOCK_ECANCELED) sigrace.bad++;
        atomic_store(&sigrace.done, i);
    }
    return NULL;
}

static void *idle_thread(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void cancel_from_signal_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cancel_signal;
    sigaction(SIGUSR2, &sa, NULL);
    sig_tok = rsock_token_new();
    int sv[2];
    unix_pair(sv);
    sigrace.sock = sv[0];
    int iters = rt_scaled(3000);
    pthread_t worker, bystander;
    pthread_create(&worker, NULL, sig_worker, &iters);
    pthread_create(&bystander, NULL, idle_thread, NULL);
    unsigned seed = 1;
    for (int i = 1; i <= iters; i++) {
        rsock_token_reset(sig_tok);
        atomic_store(&sigrace.go, i);
        spin_us(rt_rand(&seed) % 80);
        /* The handler runs on the waiting thread itself, or on another.
           ThreadSanitizer defers a handler until its thread enters an
           intercepted libc call; rsock waits in raw system calls, so a
           handler aimed at the worker may never run there. */
#ifdef RT_TSAN
        pthread_kill(bystander, SIGUSR2);
#else
        pthread_kill(i % 2 ? worker : bystander, SIGUSR2);
#endif
        while (atomic_load(&sigrace.done) < i) sched_yield();
    }
    pthread_join(worker, NULL);
    pthread_cancel(bystander);
    pthread_join(bystander, NULL);
    CHECK(sigrace.bad == 0);
    close_pair(sv);
    rsock_token_unref(sig_tok);
    signal(SIGUSR2, SIG_DFL);
}
#endif

/* ---- 2,000 short-lived threads: descriptors come back ---- */

static rsock_socket churn_sock;
static void *short_lived(void *arg) {
    intptr_t i = (intptr_t)arg;
    char c;
    if (i % 2) {
        rsock_token *t = rsock_token_new();
        if (rsock_recv(t, churn_sock, &c, 1, 0, 1) != -1 || rsock_last_error() != RSOCK_ETIMEDOUT) return (void *)1;
        rsock_token_unref(t);
    } else {
        /* The thread's own token (NULL), freed when the thread exits. */
        if (rsock_block(NULL, churn_sock, RSOCK_READABLE, 1) != -1) return (void *)1;
    }
    return NULL;
}

static void thread_churn_returns_descriptors(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    churn_sock = sv[0];
    int before = fd_count();
    int failures = 0, peak = 0;
    enum { TOTAL = 2000, BATCH = 50 };
    for (int b = 0; b < rt_scaled(TOTAL / BATCH); b++) {
        pthread_t th[BATCH];
        for (intptr_t i = 0; i < BATCH; i++) REQUIRE(pthread_create(&th[i], NULL, short_lived, (void *)i) == 0);
        int n = fd_count();
        if (n > peak) peak = n;
        for (int i = 0; i < BATCH; i++) {
            void *r;
            pthread_join(th[i], &r);
            failures += r != NULL;
        }
    }
    CHECK(failures == 0);
    CHECK(fd_count() == before);
#ifndef _WIN32
    CHECK(peak <= before + BATCH); /* (Windows threads hold handles of their own) */
#endif
    printf("     descriptors: %d before, peak %d, %d after\n", before, peak, fd_count());
    close_pair(sv);
}

int main(void) {
    rt_watchdog(240);
    rt_ignore_sigpipe();
    RUN(no_lost_wakeup_in_any_interleaving);
    RUN(cancel_storm_loses_no_byte);
    RUN(sixty_four_waiters_one_cancel);
    RUN(cancel_then_reset_still_fails_waiting_calls);
    RUN(cancel_then_reset_fails_calls_without_a_hook);
    RUN(crowds_come_back_after_resets_and_deadlines);
    RUN_POSIX(cancel_from_signal_handler, "needs signals (pthread_kill)");
    RUN(thread_churn_returns_descriptors);
    return rt_finish("test_race");
}
