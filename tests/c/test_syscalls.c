/* System-call economy and clocks, observed by interposing the calls rsock
   makes: this program defines poll/eventfd/pipe/write/close/clock_gettime
   itself, and syscall (on Linux the library makes its socket calls, polls,
   reads, writes and closes as raw system calls), so the statically linked
   library's calls land here and are counted, then forwarded. On Windows the library imports its calls from
   system DLLs, which a program cannot interpose this way: there only the
   handle count of steady-state waits is checked. */
#include "rtest.h"

#include <stdatomic.h>

#ifndef _WIN32 /* interposition */
#include <dlfcn.h>
#include <stdarg.h>
#include <sys/syscall.h>

static __thread int counting;
static __thread int n_poll, n_fdops, n_write, n_recv, n_send, n_send_eagain, n_monotonic, n_realtime;
static int realtime_jumps; /* make the wall clock jump on every read */
static int fail_writes;    /* make write() fail with EIO */

/* The C library's syscall(), which the forwarders below use. */
static long real_syscall(long n, long a, long b, long c, long d, long e, long f) {
    static long (*real)(long, ...);
    if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(n, a, b, c, d, e, f);
}
#define FWD6(n, a, b, c, d, e, f) real_syscall(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static void count_start(void) {
    n_poll = n_fdops = n_write = n_recv = n_send = n_send_eagain = 0;
    counting = 1;
}
static void count_stop(void) { counting = 0; }

/* Both clocks are read through here; the wall clock can be made to jump. */
int clock_gettime(clockid_t id, struct timespec *ts) {
    int r = (int)FWD6(SYS_clock_gettime, id, ts, 0, 0, 0, 0);
    if (counting) {
        if (id == CLOCK_MONOTONIC) n_monotonic++;
        if (id == CLOCK_REALTIME) n_realtime++;
    }
    if (id == CLOCK_REALTIME && realtime_jumps) ts->tv_sec += (n_realtime % 2) ? 3600 : -3600;
    return r;
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    static int (*real)(struct pollfd *, nfds_t, int);
    if (!real) real = (int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT, "poll");
    if (counting) n_poll++;
    return real(fds, n, timeout);
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    if (counting) n_recv++;
    return FWD6(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    ssize_t r = FWD6(SYS_sendto, fd, buf, len, flags, NULL, 0);
    if (counting) {
        n_send++;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) n_send_eagain++;
    }
    return r;
}

int eventfd(unsigned int initval, int flags) {
    if (counting) n_fdops++;
    return (int)FWD6(SYS_eventfd2, initval, flags, 0, 0, 0, 0);
}

int pipe(int fds[2]) {
    if (counting) n_fdops++;
    return (int)FWD6(SYS_pipe2, fds, 0, 0, 0, 0, 0);
}

int close(int fd) {
    if (counting) n_fdops++;
    return (int)FWD6(SYS_close, fd, 0, 0, 0, 0, 0);
}

ssize_t write(int fd, const void *buf, size_t len) {
    if (counting) n_write++;
    if (fail_writes) {
        errno = EIO;
        return -1;
    }
    return FWD6(SYS_write, fd, buf, len, 0, 0, 0);
}

#ifdef __linux__
/* The library's raw system calls: counted as the C library's functions
   above count them, then made. */
long syscall(long n, ...) {
    va_list ap;
    va_start(ap, n);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    switch (n) {
#ifdef SYS_poll
    case SYS_poll:
#endif
    case SYS_ppoll:
        if (counting) n_poll++;
        break;
    case SYS_recvfrom:
        if (counting) n_recv++;
        break;
    case SYS_sendto: {
        long r = real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
        if (counting) {
            n_send++;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) n_send_eagain++;
        }
        return r;
    }
    case SYS_close:
        if (counting) n_fdops++;
        break;
    case SYS_write:
        if (counting) n_write++;
        if (fail_writes) {
            errno = EIO;
            return -1;
        }
        break;
    }
    return real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
#endif

struct delayed {
    int fd;
    double ms;
};
static void *send_later(void *arg) {
    struct delayed *d = arg;
    sleep_ms(d->ms);
    if (send(d->fd, "late", 4, 0) != 4) abort();
    return NULL;
}

static void try_first_poll_only_when_needed(void) {
    rsock_token *t = rsock_token_new();
    int sv[2];
    unix_pair(sv);
    char buf[8];
    CHECK(send(sv[1], "now", 3, 0) == 3);
    count_start();
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, 1000) == 3);
    CHECK(rsock_send(t, sv[0], "out", 3, 0, 1000) == 3);
    count_stop();
    CHECK(n_poll == 0); /* data was there, the buffer had room: no poll */

    /* Warm up this thread's wake descriptor, then one wait = one poll. */
    CHECK_ERR(rsock_recv(t, sv[0], buf, 1, MSG_PEEK, 0), RSOCK_ETIMEDOUT);
    struct delayed d = {sv[1], 30};
    pthread_t th;
    pthread_create(&th, NULL, send_later, &d);
    count_start();
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, 5000) == 4);
    count_stop();
    pthread_join(th, NULL);
    CHECK(n_poll == 1);
    CHECK(n_fdops == 0);
    close_pair(sv);
    rsock_token_unref(t);
}

struct drip {
    int fd, n;
    double gap_ms;
};
static void *drip_bytes(void *arg) {
    struct drip *d = arg;
    for (int i = 0; i < d->n; i++) {
        sleep_ms(d->gap_ms);
        if (send(d->fd, "d", 1, 0) != 1) abort();
    }
    return NULL;
}

/* A receive that finds nothing costs three system calls (attempt, poll,
   attempt); so once a receive on a socket found nothing, later ones on it
   wait first (two), trying first again on the 8th call, and half as often
   after each such probe that finds nothing (16, 32, then every 64 calls).
   A reader that then finds data ready each time goes back to one call per
   receive. */
static void receives_that_keep_waiting_poll_first(void) {
    rsock_token *t = rsock_token_new();
    int sv[2];
    unix_pair(sv);
    char c;
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 0), RSOCK_ETIMEDOUT); /* wake descriptor made */
    struct drip d = {sv[1], 40, 3};
    pthread_t th;
    pthread_create(&th, NULL, drip_bytes, &d);
    count_start();
    for (int i = 0; i < d.n; i++) CHECK(rsock_recv(t, sv[0], &c, 1, 0, 5000) == 1);
    count_stop();
    pthread_join(th, NULL);
    printf("     40 receives that each waited: %d recv, %d poll\n", n_recv, n_poll);
    CHECK(n_poll == 40);
    /* The first call's attempt and the probes on the 9th and 25th call
       found nothing (probing every 8th call would make 5). */
    CHECK(n_recv <= 40 + 3);

    /* Now the data is always there: back to one recv each, within the
       probe interval (now 32 calls). */
    char many[64];
    memset(many, 'm', sizeof many);
    CHECK(send(sv[1], many, sizeof many, 0) == (ssize_t)sizeof many);
    count_start();
    for (int i = 0; i < 64; i++) CHECK(rsock_recv(t, sv[0], &c, 1, 0, 5000) == 1);
    count_stop();
    printf("     64 receives with data ready: %d recv, %d poll\n", n_recv, n_poll);
    CHECK(n_recv == 64);
    CHECK(n_poll <= 32);
    close_pair(sv);
    rsock_token_unref(t);
}

static void *slow_reader(void *arg) {
    int fd = *(int *)arg;
    static char buf[4096];
    long got = 0;
    while (got < (1 << 20)) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got += n;
        if (got % (64 << 10) < (long)sizeof buf) sleep_ms(1);
    }
    return NULL;
}

/* A send that queued only part of the buffer filled the socket's buffer:
   the next attempt waits first instead of failing with EAGAIN. */
static void short_sends_wait_before_trying_again(void) {
    int sv[2];
    unix_pair(sv);
    static char big[1 << 20];
    pthread_t th;
    pthread_create(&th, NULL, slow_reader, &sv[1]);
    rsock_token *t = rsock_token_new();
    count_start();
    CHECK(rsock_send(t, sv[0], big, sizeof big, MSG_NOSIGNAL, 10000) == (intptr_t)sizeof big);
    count_stop();
    pthread_join(th, NULL);
    printf("     1 MiB through a slow reader: %d send attempts, %d failed with EAGAIN, %d polls\n", n_send,
           n_send_eagain, n_poll);
    CHECK(n_send >= 3); /* the buffer did fill */
    CHECK(n_send_eagain <= 1);
    close_pair(sv);
    rsock_token_unref(t);
}

static void token_lifecycle_makes_no_system_call(void) {
    count_start();
    rsock_token *t = rsock_token_new();
    rsock_token *c = rsock_token_child(t);
    rsock_token *r = rsock_token_ref(c);
    rsock_cancel(t);
    rsock_cancel(c);
    (void)rsock_is_cancelled(c);
    rsock_token_reset(t);
    rsock_token_unref(r);
    rsock_token_unref(c);
    rsock_token_unref(t);
    count_stop();
    CHECK(n_poll == 0 && n_fdops == 0 && n_write == 0);
}

#endif /* interposition */

static void steady_state_waits_open_nothing(void) {
    rsock_token *t = rsock_token_new();
    rsock_socket sv[2];
    unix_pair(sv);
    char c;
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 1), RSOCK_ETIMEDOUT); /* first wait on this thread */
    int before = fd_count();
#ifndef _WIN32
    count_start();
#endif
    for (int i = 0; i < 200; i++) CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, i % 2), RSOCK_ETIMEDOUT);
#ifndef _WIN32
    count_stop();
    CHECK(n_fdops == 0);
#endif
    CHECK(fd_count() == before);
    close_pair(sv);
    rsock_token_unref(t);
}

#ifndef _WIN32 /* interposition */
/* When no wake descriptor can be had, a call that must wait fails with
   EMFILE at once; one that need not wait still works. */
struct emfile_result {
    int sock;
    long r_wait, r_ready;
    int e_wait;
    double elapsed;
};
static void *emfile_thread(void *arg) {
    struct emfile_result *e = arg;
    char c;
    double t0 = now_ms();
    e->r_wait = rsock_recv(NULL, e->sock, &c, 1, 0, 2000);
    e->e_wait = rsock_last_error();
    e->elapsed = now_ms() - t0;
    return NULL;
}

static void descriptor_exhaustion_fails_with_emfile(void) {
    int sv[2];
    unix_pair(sv);
    struct rlimit old, lim;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    lim = old;
    lim.rlim_cur = 64;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    int dups[64], nd = 0;
    int d;
    while (nd < 64 && (d = dup(0)) >= 0) dups[nd++] = d;
    struct emfile_result e = {sv[0], 0, 0, 0, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, emfile_thread, &e) == 0);
    pthread_join(th, NULL);
    CHECK(e.r_wait == -1 && e.e_wait == EMFILE);
    CHECK(e.elapsed < 1000);
    for (int i = 0; i < nd; i++) close(dups[i]);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
    close_pair(sv);
}

/* Timeouts run on the monotonic clock: a wall clock that jumps back and
   forth an hour changes nothing. */
static void timeouts_use_the_monotonic_clock(void) {
    rsock_token *t = rsock_token_new();
    int sv[2];
    unix_pair(sv);
    char c;
    struct timespec a, b;
    realtime_jumps = 1;
    FWD6(SYS_clock_gettime, CLOCK_MONOTONIC, &a, 0, 0, 0, 0);
    count_start();
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 80), RSOCK_ETIMEDOUT);
    count_stop();
    FWD6(SYS_clock_gettime, CLOCK_MONOTONIC, &b, 0, 0, 0, 0);
    realtime_jumps = 0;
    double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    CHECK(ms >= 80 && ms < 2000);
    CHECK(n_monotonic >= 1);
    CHECK(n_realtime == 0);
    close_pair(sv);
    rsock_token_unref(t);
}

/* A timed wait makes one poll per wait, not a spin of zero-timeout polls
   as its deadline nears. */
static void timed_waits_do_not_spin(void) {
    rsock_token *t = rsock_token_new();
    int sv[2];
    unix_pair(sv);
    char c;
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 0), RSOCK_ETIMEDOUT);
    count_start();
    for (int i = 0; i < 5; i++) CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 7), RSOCK_ETIMEDOUT);
    count_stop();
    CHECK(n_poll <= 5 * 2); /* one each, plus slack for a stale wake-up */
    close_pair(sv);
    rsock_token_unref(t);
}

/* rsock_cancel keeps errno even when its wake-up write fails. */
struct sleeper {
    rsock_token *tok;
    int fd;
    atomic_int started;
};
static void *sleep_on_token(void *arg) {
    struct sleeper *s = arg;
    char c;
    atomic_store(&s->started, 1);
    rsock_recv(s->tok, s->fd, &c, 1, 0, RSOCK_INFINITE);
    return NULL;
}

static void cancel_preserves_errno(void) {
    int sv[2];
    unix_pair(sv);
    struct sleeper s = {rsock_token_new(), sv[0], 0};
    pthread_t th;
    pthread_create(&th, NULL, sleep_on_token, &s);
    while (!atomic_load(&s.started)) sleep_ms(1);
    sleep_ms(30);
    fail_writes = 1;
    errno = 4242;
    rsock_cancel(s.tok);
    int after = errno;
    fail_writes = 0;
    CHECK(after == 4242);
    rsock_cancel(s.tok); /* this one wakes the sleeper */
    pthread_join(th, NULL);
    close_pair(sv);
    rsock_token_unref(s.tok);
}
#endif /* interposition */

#define INTERPOSED "counts the library's system calls by interposing them"

int main(void) {
    rt_watchdog(60);
    RUN_POSIX(try_first_poll_only_when_needed, INTERPOSED);
    RUN_POSIX(receives_that_keep_waiting_poll_first, INTERPOSED);
    RUN_POSIX(short_sends_wait_before_trying_again, INTERPOSED);
    RUN_POSIX(token_lifecycle_makes_no_system_call, INTERPOSED);
    RUN(steady_state_waits_open_nothing);
    RUN_POSIX(descriptor_exhaustion_fails_with_emfile, "needs RLIMIT_NOFILE to run out of descriptors");
    RUN_POSIX(timeouts_use_the_monotonic_clock, "interposes clock_gettime to make the wall clock jump");
    RUN_POSIX(timed_waits_do_not_spin, INTERPOSED);
    RUN_POSIX(cancel_preserves_errno, "interposes write() to make the wake-up fail");
    return rt_finish("test_syscalls");
}
