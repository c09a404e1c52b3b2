/* The signal-wake fast path (rsock_use_signal_wake): a receive or send with
   no bound but the kernel's makes the plain blocking system call, and a
   cancel interrupts it with a signal. Each test checks that the call took
   the path it should (the system call the thread is blocked in, from
   /proc/self/task/TID/syscall) and that the contract holds on it. `make
   test` also runs the race, call, plain-call, deadline, hazard and hostile
   suites with RSOCK_WAKE_SIGNAL set. Linux x86-64 and AArch64; skipped
   (exit 77) elsewhere. */
#include "rtest.h"

#ifdef __linux__
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int fast_signo;

/* What a blocked call's thread is in: its system call number, or -1. */
static long blocked_in(pid_t tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    return strtol(buf, NULL, 10);
}

/* A receive on `sock` in another thread: the call's result, its error and
   the system call the thread sat in while blocked. */
struct blocked {
    rsock_token *tok;
    rsock_socket sock;
    int timeout;
    int block_signal; /* the thread blocks the fast path's signal */
    int peer_signals; /* the thread installs a SIGUSR1 handler (no SA_RESTART) */
    atomic_int tid;
    long r;
    int err;
    char byte;
    pthread_t th;
};

static void *blocked_main(void *arg) {
    struct blocked *b = (struct blocked *)arg;
    if (b->block_signal) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, fast_signo);
        pthread_sigmask(SIG_BLOCK, &s, NULL);
    }
    atomic_store(&b->tid, (int)syscall(SYS_gettid));
    b->r = rsock_recv(b->tok, b->sock, &b->byte, 1, 0, b->timeout);
    b->err = b->r < 0 ? rsock_last_error() : 0;
    return NULL;
}

/* Starts the receive; returns once it sits in a system call (or 1 s). */
static long start_blocked(struct blocked *b) {
    atomic_store(&b->tid, 0);
    REQUIRE(pthread_create(&b->th, NULL, blocked_main, b) == 0);
    while (atomic_load(&b->tid) == 0) sleep_ms(1);
    sleep_ms(30);
    return blocked_in(atomic_load(&b->tid));
}

/* The system call a receive waits in on the poll path (fast path off). */
static long poll_path_syscall(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    REQUIRE(rsock_use_signal_wake(0) == 0);
    struct blocked b = {.tok = rsock_token_new(), .sock = sv[0], .timeout = RSOCK_INFINITE};
    long nr = start_blocked(&b);
    rsock_cancel(b.tok);
    pthread_join(b.th, NULL);
    REQUIRE(rsock_use_signal_wake(fast_signo) == 0);
    rsock_token_unref(b.tok);
    close_pair(sv);
    return nr;
}

static long poll_nr;

static void switching_it_on_and_off(void) {
    CHECK_ERR(rsock_use_signal_wake(SIGUSR1), EINVAL);
    CHECK_ERR(rsock_use_signal_wake(SIGRTMAX + 1), EINVAL);
    CHECK_ERR(rsock_use_signal_wake(-3), EINVAL);
    /* A signal the program handles is refused, and so is a second one. */
    int theirs = fast_signo + 1;
    signal(theirs, SIG_IGN);
    CHECK_ERR(rsock_use_signal_wake(theirs), EBUSY);
    signal(theirs, SIG_DFL);
    CHECK(rsock_use_signal_wake(fast_signo) == 0);
    CHECK(rsock_use_signal_wake(fast_signo) == 0);
    CHECK_ERR(rsock_use_signal_wake(theirs), EBUSY);
    CHECK(rsock_use_signal_wake(0) == 0);
    CHECK(rsock_use_signal_wake(fast_signo) == 0);
}

/* A cancel ends a receive blocked in the plain call at once; nothing is
   consumed, and the next receive gets the byte. TCP and AF_UNIX. */
static void cancel_ends_the_plain_call(void) {
    for (int tcp = 0; tcp < 2; tcp++) {
        rsock_socket sv[2];
        if (tcp) tcp_pair(sv);
        else unix_pair(sv);
        struct blocked b = {.tok = rsock_token_new(), .sock = sv[0], .timeout = RSOCK_INFINITE};
        long nr = start_blocked(&b);
        CHECK(nr >= 0 && nr != poll_nr); /* in recvfrom, not poll */
        double t0 = now_ms();
        rsock_cancel(b.tok);
        pthread_join(b.th, NULL);
        double ms = now_ms() - t0;
        CHECK(b.r == -1 && b.err == RSOCK_ECANCELED);
        CHECK(ms < 500);
        printf("     %s: cancelled in %.3f ms\n", tcp ? "TCP" : "AF_UNIX", ms);
        REQUIRE(send(sv[1], "z", 1, 0) == 1);
        rsock_token_reset(b.tok);
        char c = 0;
        CHECK(rsock_recv(b.tok, sv[0], &c, 1, 0, RSOCK_INFINITE) == 1 && c == 'z');
        /* Sticky: a cancelled token fails the next call at once. */
        rsock_cancel(b.tok);
        CHECK_ERR(rsock_recv(b.tok, sv[0], &c, 1, 0, RSOCK_INFINITE), RSOCK_ECANCELED);
        rsock_token_unref(b.tok);
        close_pair(sv);
    }
}

static atomic_int usr1_seen;
static void on_usr1(int sig) {
    (void)sig;
    atomic_fetch_add(&usr1_seen, 1);
}

/* The program's own signals interrupt the plain call with EINTR: the call
   resumes (no EINTR to the caller), then completes or is cancelled. */
static void own_signals_resume(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, NULL);
    rsock_socket sv[2];
    unix_pair(sv);
    struct blocked b = {.tok = rsock_token_new(), .sock = sv[0], .timeout = RSOCK_INFINITE};
    CHECK(start_blocked(&b) != poll_nr);
    for (int i = 0; i < 20; i++) {
        pthread_kill(b.th, SIGUSR1);
        sleep_ms(2);
    }
    CHECK(atomic_load(&usr1_seen) >= 20);
    REQUIRE(send(sv[1], "q", 1, 0) == 1);
    pthread_join(b.th, NULL);
    CHECK(b.r == 1 && b.byte == 'q');
    signal(SIGUSR1, SIG_DFL);
    rsock_token_unref(b.tok);
    close_pair(sv);
}

/* A thread that blocks the signal takes the poll path, and is cancelled. */
static void a_thread_blocking_the_signal_polls(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    struct blocked b = {.tok = rsock_token_new(), .sock = sv[0], .timeout = RSOCK_INFINITE, .block_signal = 1};
    CHECK(start_blocked(&b) == poll_nr);
    rsock_cancel(b.tok);
    pthread_join(b.th, NULL);
    CHECK(b.r == -1 && b.err == RSOCK_ECANCELED);
    rsock_token_unref(b.tok);
    close_pair(sv);
}

/* Bounded waits take the poll path; a deadline set during a fast wait
   moves the call to it, and ends it on time. */
static void bounds_take_the_poll_path(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    struct blocked b = {.tok = rsock_token_new(), .sock = sv[0], .timeout = 5000};
    CHECK(start_blocked(&b) == poll_nr);
    rsock_cancel(b.tok);
    pthread_join(b.th, NULL);
    CHECK(b.err == RSOCK_ECANCELED);
    rsock_token_reset(b.tok);
    b.timeout = RSOCK_INFINITE;
    CHECK(start_blocked(&b) != poll_nr);
    double t0 = now_ms();
    CHECK(rsock_token_set_deadline(b.tok, 50) == 0);
    pthread_join(b.th, NULL);
    double ms = now_ms() - t0;
    CHECK(b.r == -1 && b.err == RSOCK_ETIMEDOUT);
    CHECK(ms >= 45 && ms < 1000);
    rsock_token_unref(b.tok);
    close_pair(sv);
}

/* RSOCK_SOCKET_TIMEOUT on the fast path: the kernel applies the socket's
   mode and timeout itself. */
static void plain_calls_on_the_fast_path(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    rsock_token *t = rsock_token_new();
    struct timeval tv = {0, 50000};
    REQUIRE(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    char c;
    double t0 = now_ms();
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, RSOCK_SOCKET_TIMEOUT), EAGAIN);
    double ms = now_ms() - t0;
    CHECK(ms >= 45 && ms < 1000);
    set_nonblocking(sv[0], 1);
    t0 = now_ms();
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, RSOCK_SOCKET_TIMEOUT), EAGAIN);
    CHECK(now_ms() - t0 < 40);
    /* RSOCK_INFINITE on a non-blocking socket still waits (poll path). */
    struct canceller k;
    start_cancel(&k, t, 30);
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, RSOCK_INFINITE), RSOCK_ECANCELED);
    join_cancel(&k);
    rsock_token_unref(t);
    close_pair(sv);
}

/* A send blocked in the kernel (the peer not reading) that is cancelled
   returns exactly what the kernel queued: the peer reads that much. */
struct reader {
    rsock_socket sock;
    long got;
};
static void *read_to_eof(void *arg) {
    struct reader *r = (struct reader *)arg;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(r->sock, buf, sizeof buf, 0);
        if (n <= 0) return NULL;
        r->got += n;
    }
}

static void a_cancelled_send_counts_exactly(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    size_t len = 16u << 20;
    char *big = (char *)calloc(1, len);
    REQUIRE(big);
    rsock_token *t = rsock_token_new();
    struct canceller k;
    start_cancel(&k, t, 60);
    long n = rsock_send(t, sv[0], big, len, MSG_NOSIGNAL, RSOCK_INFINITE);
    int err = rsock_last_error();
    join_cancel(&k);
    CHECK(n > 0 && n < (long)len && err == RSOCK_ECANCELED);
    shutdown(sv[0], SHUT_WR);
    struct reader r = {sv[1], 0};
    read_to_eof(&r);
    CHECK(r.got == n);
    printf("     sent %ld of %zu bytes before the cancel; the peer read %ld\n", n, len, r.got);
    free(big);
    rsock_token_unref(t);
    close_pair(sv);
}

/* No signal of rsock's is left for the thread after a call returns: a
   plain wait that follows is not interrupted. */
static void no_signal_after_the_call(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    rsock_token *t = rsock_token_new();
    unsigned seed = 7;
    int interrupted = 0;
    for (int i = 0; i < rt_scaled(300); i++) {
        rsock_token_reset(t);
        struct canceller k;
        start_cancel(&k, t, (rt_rand(&seed) % 1000) / 1000.0);
        char c;
        rsock_recv(t, sv[0], &c, 1, 0, RSOCK_INFINITE);
        join_cancel(&k);
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, fast_signo)) interrupted++;
        struct pollfd p = {sv[0], POLLIN, 0};
        if (poll(&p, 1, 1) < 0 && errno == EINTR) interrupted++;
    }
    CHECK(interrupted == 0);
    rsock_token_unref(t);
    close_pair(sv);
}

/* A fork child uses the fast path on its own. */
static void after_fork(void) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        rsock_socket sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) _exit(2);
        rsock_token *t = rsock_token_new();
        struct blocked b = {.tok = t, .sock = sv[0], .timeout = RSOCK_INFINITE};
        if (start_blocked(&b) == poll_nr) _exit(3);
        rsock_cancel(t);
        pthread_join(b.th, NULL);
        _exit(b.r == -1 && b.err == RSOCK_ECANCELED ? 0 : 4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
    rt_watchdog(120);
    rt_ignore_sigpipe();
    fast_signo = SIGRTMIN + 6;
#ifdef RT_TSAN
    /* ThreadSanitizer runs signal handlers deferred, on a copy of the
       context: the redirect cannot work (docs/DESIGN.md). */
    printf("test_fastpath: not under ThreadSanitizer (skipped)\n");
    return 77;
#endif
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) {
        printf("test_fastpath: not under valgrind (skipped)\n");
        return 77;
    }
    if (rsock_use_signal_wake(fast_signo) != 0) {
        CHECK(rsock_last_error() == EOPNOTSUPP);
        printf("test_fastpath: no signal-wake fast path here (skipped)\n");
        return rt_failures ? 1 : 77;
    }
    poll_nr = poll_path_syscall();
    RUN(switching_it_on_and_off);
    RUN(cancel_ends_the_plain_call);
    RUN(own_signals_resume);
    RUN(a_thread_blocking_the_signal_polls);
    RUN(bounds_take_the_poll_path);
    RUN(plain_calls_on_the_fast_path);
    RUN(a_cancelled_send_counts_exactly);
    RUN(no_signal_after_the_call);
    if (!rt_memory_tool()) RUN(after_fork);
    return rt_finish("test_fastpath");
}
#else
int main(void) {
    CHECK(rsock_use_signal_wake(0) == 0);
    printf("test_fastpath: no signal-wake fast path here (skipped)\n");
    return rt_failures ? 1 : 77;
}
#endif
