/* A tiny test harness and socket helpers shared by the C tests. */
#ifndef RTEST_H
#define RTEST_H

#define _GNU_SOURCE
#include "rsock.h"

#include "rport.h"

static int rt_failures;
static int rt_checks;

#define CHECK(cond)                                                            \
    do {                                                                       \
        rt_checks++;                                                           \
        if (!(cond)) {                                                         \
            rt_failures++;                                                     \
            int rt_e = rt_sock_error();                                        \
            fprintf(stderr, "%s:%d: check failed: %s (errno %d: %s)\n",        \
                    __FILE__, __LINE__, #cond, rt_e, rt_error_text(rt_e));     \
        }                                                                      \
    } while (0)

/* A call that must fail with -1 and the given error. */
#define CHECK_ERR(expr, code)                                                  \
    do {                                                                       \
        rt_set_error(0);                                                       \
        long long rt_r = (long long)(intptr_t)(expr);                          \
        int rt_e = rsock_last_error();                                         \
        rt_checks++;                                                           \
        if (rt_r != -1 || rt_e != (code)) {                                    \
            rt_failures++;                                                     \
            fprintf(stderr, "%s:%d: %s returned %lld, error %d (%s); "         \
                    "expected -1, error %d (%s)\n", __FILE__, __LINE__, #expr, \
                    rt_r, rt_e, rsock_strerror(rt_e), (int)(code),             \
                    rsock_strerror(code));                                     \
        }                                                                      \
    } while (0)

/* Fatal: the test cannot go on (setup failure). */
#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            int rt_e = rt_sock_error();                                        \
            fprintf(stderr, "%s:%d: required: %s (errno %d: %s)\n", __FILE__,  \
                    __LINE__, #cond, rt_e, rt_error_text(rt_e));               \
            exit(2);                                                           \
        }                                                                      \
    } while (0)

/* RSOCK_TEST_ONLY=name runs only the test of that name. */
#define RUN(fn)                                                                \
    do {                                                                       \
        const char *rt_only = getenv("RSOCK_TEST_ONLY");                       \
        if (rt_only && strcmp(rt_only, #fn) != 0) break;                       \
        int rt_before = rt_failures;                                           \
        fn();                                                                  \
        printf("%s %s\n", rt_failures == rt_before ? "ok  " : "FAIL", #fn);    \
        fflush(stdout);                                                        \
    } while (0)

static inline int rt_finish(const char *suite) {
    printf("%s: %d checks, %d failed\n", suite, rt_checks, rt_failures);
    return rt_failures ? 1 : 0;
}

/* Iteration counts scale with RSOCK_TEST_SCALE (e.g. 0.05 under valgrind,
   10 for a longer soak); never below 1. */
static inline int rt_scaled(int n) {
    const char *e = getenv("RSOCK_TEST_SCALE");
    double f = e ? atof(e) : 1.0;
    long v = (long)(n * (f > 0 ? f : 1.0));
    return v < 1 ? 1 : (int)v;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RT_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define RT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RT_TSAN 1
#endif
#endif

/* Whether a memory tool (valgrind, or a sanitizer built in) or an
   emulator (qemu-user: tests/cross.sh sets RSOCK_TEST_EMULATED) owns this
   process's address space, so that RLIMIT_AS means nothing useful and
   everything runs slower. */
static inline int rt_memory_tool(void) {
#ifdef RT_SANITIZED
    return 1;
#else
    if (getenv("RSOCK_TEST_EMULATED")) return 1;
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload") != NULL;
#endif
}

static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline void set_nonblocking(rsock_socket fd, int on) { REQUIRE(rt_set_nonblocking(fd, on) == 0); }

/* A check of a socket's blocking mode: POSIX only (Windows cannot report
   the mode). */
#ifdef _WIN32
#define CHECK_MODE(fd, nonblocking) ((void)0)
#else
#define CHECK_MODE(fd, nonblocking) CHECK(is_nonblocking(fd) == (nonblocking))
#endif

/* Runs a test that cannot exist on Windows, or says there why not. */
#ifdef _WIN32
#define RUN_POSIX(fn, reason)                                                  \
    do {                                                                       \
        printf("skip %s: %s\n", #fn, reason);                                  \
        fflush(stdout);                                                        \
    } while (0)
#else
#define RUN_POSIX(fn, reason) RUN(fn)
#endif

/* Runs a test if `cond` holds, or says why not (`reason`). */
#define RUN_IF(cond, fn, reason)                                               \
    do {                                                                       \
        if (cond) {                                                            \
            RUN(fn);                                                           \
        } else {                                                               \
            printf("skip %s: %s\n", #fn, (reason));                            \
            fflush(stdout);                                                    \
        }                                                                      \
    } while (0)

/* A UDP socket bound to 127.0.0.1 on an ephemeral port; fills `addr`. */
static inline rsock_socket udp_bound(struct sockaddr_in *addr) {
    rsock_socket u = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(sock_ok(u));
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(u, (struct sockaddr *)addr, sizeof *addr) == 0);
    socklen_t len = sizeof *addr;
    REQUIRE(getsockname(u, (struct sockaddr *)addr, &len) == 0);
    return u;
}

/* A listening TCP socket on 127.0.0.1 with an ephemeral port. */
static inline rsock_socket tcp_listener(int backlog, struct sockaddr_in *addr) {
    rsock_socket l = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(sock_ok(l));
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    REQUIRE(listen(l, backlog) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(l, (struct sockaddr *)&a, &len) == 0);
    if (addr) *addr = a;
    return l;
}

/* A connected TCP pair over loopback: sv[0] client, sv[1] server side. */
static inline void tcp_pair(rsock_socket sv[2]) {
    struct sockaddr_in a;
    rsock_socket l = tcp_listener(1, &a);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(sock_ok(sv[0]));
    REQUIRE(connect(sv[0], (struct sockaddr *)&a, sizeof a) == 0);
    sv[1] = accept(l, NULL, NULL);
    REQUIRE(sock_ok(sv[1]));
    int one = 1;
    setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    close_sock(l);
}

/* A connected stream pair: AF_UNIX where there is socketpair, else TCP. */
static inline void unix_pair(rsock_socket sv[2]) {
#ifdef _WIN32
    tcp_pair(sv);
#else
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
#endif
}

static inline void close_pair(rsock_socket sv[2]) {
    close_sock(sv[0]);
    close_sock(sv[1]);
}

/* Whether a connect to a loopback listener whose accept queue is full
   stays pending, as on Linux (which drops the SYN); a system may refuse
   it instead. */
static inline int full_queue_stalls(void) {
    struct sockaddr_in a;
    rsock_socket l = tcp_listener(0, &a), c[2];
    int stalls = 0;
    for (int i = 0; i < 2; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(sock_ok(c[i]));
        set_nonblocking(c[i], 1);
        connect(c[i], (struct sockaddr *)&a, sizeof a);
        rsock_pollfd p = {c[i], POLLOUT, 0};
        stalls = rt_poll(&p, 1, i == 0 ? 1000 : 200) == 0;
    }
    close_sock(c[0]);
    close_sock(c[1]);
    close_sock(l);
    return stalls;
}

/* Whether a receive on a connection the peer reset reports the reset
   (Wine reports the end of the stream instead). */
static inline int resets_reported(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    struct linger lg = {1, 0};
    REQUIRE(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg) == 0);
    close_sock(sv[1]);
    rsock_pollfd p = {sv[0], POLLIN, 0};
    rt_poll(&p, 1, 1000);
    char c;
    int reported = recv(sv[0], &c, 1, 0) < 0 && rt_sock_error() == RT_ECONNRESET;
    close_sock(sv[0]);
    return reported;
}

/* Whether ::1 takes connections: a listener there accepts a connect to it
   within a second. */
static inline int ipv6_loopback_connects(void) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, "::1", &a.sin6_addr) != 1) return 0;
    rsock_socket l = socket(AF_INET6, SOCK_STREAM, 0), c = RSOCK_INVALID_SOCKET, s = RSOCK_INVALID_SOCKET;
    socklen_t len = sizeof a;
    int ok = sock_ok(l) && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
             getsockname(l, (struct sockaddr *)&a, &len) == 0;
    if (ok) {
        c = socket(AF_INET6, SOCK_STREAM, 0);
        ok = sock_ok(c) && rt_set_nonblocking(c, 1) == 0;
    }
    if (ok && connect(c, (struct sockaddr *)&a, sizeof a) != 0) {
        rsock_pollfd p = {c, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof err;
        ok = rt_sock_error() == RT_CONNECT_PENDING && rt_poll(&p, 1, 1000) == 1 &&
             getsockopt(c, SOL_SOCKET, SO_ERROR, (char *)&err, &el) == 0 && err == 0;
    }
    if (ok) {
        s = accept(l, NULL, NULL);
        ok = sock_ok(s);
    }
    if (sock_ok(s)) close_sock(s);
    if (sock_ok(c)) close_sock(c);
    if (sock_ok(l)) close_sock(l);
    return ok;
}

#ifdef _WIN32
/* Wine opens two handles, and keeps them, the first time a socket with a
   connect pending is closed: a test that counts handles and makes such
   connects does this first. */
static inline void settle_pending_connect_handles(void) {
    (void)full_queue_stalls();
    sleep_ms(100);
}
#endif

/* A thread that cancels a token after a delay: start_cancel, then join_cancel. */
struct canceller {
    rsock_token *tok;
    double delay_ms;
    pthread_t th;
};

static inline void *rt_cancel_later(void *arg) {
    struct canceller *c = (struct canceller *)arg;
    sleep_ms(c->delay_ms);
    rsock_cancel(c->tok);
    return NULL;
}

static inline void start_cancel(struct canceller *c, rsock_token *tok, double delay_ms) {
    c->tok = tok;
    c->delay_ms = delay_ms;
    REQUIRE(pthread_create(&c->th, NULL, rt_cancel_later, c) == 0);
}

static inline void join_cancel(struct canceller *c) { pthread_join(c->th, NULL); }

static inline unsigned rt_rand(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return (*state >> 8) & 0xffffff;
}

/* Busy-waits for about `us` microseconds (finer than sleeping). */
static inline void spin_us(double us) {
    double end = now_ms() + us / 1000.0;
    while (now_ms() < end) {
    }
}

#ifndef _WIN32
/* A thread that sends `sig` to the calling thread every `interval_us`
   until stopped: start_pester, then stop_pester. (POSIX: signals.) */
struct pester {
    pthread_t target, th;
    int sig;
    double interval_us;
    int stop;
    pthread_mutex_t lock;
};

static inline void *rt_pester_main(void *arg) {
    struct pester *p = (struct pester *)arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop) return NULL;
        pthread_kill(p->target, p->sig);
        if (p->interval_us >= 1000) sleep_ms(p->interval_us / 1000.0);
        else spin_us(p->interval_us);
    }
}

static inline void start_pester(struct pester *p, int sig, double interval_us) {
    p->target = pthread_self();
    p->sig = sig;
    p->interval_us = interval_us;
    p->stop = 0;
    pthread_mutex_init(&p->lock, NULL);
    REQUIRE(pthread_create(&p->th, NULL, rt_pester_main, p) == 0);
}

static inline void stop_pester(struct pester *p) {
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->th, NULL);
    pthread_mutex_destroy(&p->lock);
}
#endif

#endif
