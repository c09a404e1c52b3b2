/* Hostile use: fork() while another thread is inside a call, dup()ed
   listeners, sockets shut down under a wait, receivers whose queue is full,
   pthread_cancel inside rsock_cancel, daemons that close every inherited
   descriptor, racing resets, and poll sets at the descriptor limit. Each
   test reproduces a defect that used to hang, spin or lose a wake-up; the
   spin cases also check that a 300 ms wait costs almost no CPU. */
#include "rtest.h"

#include <sched.h>
#include <stdatomic.h>
#ifndef _WIN32
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>
#endif

/* Most CPU a call that waits 300 ms may use (a spinning call uses ~300). */
#define CPU_BUDGET_MS 15.0

#ifndef _WIN32
static double thread_cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time is not meaningful under valgrind or a sanitizer. */
static void check_cpu(const char *what, double cpu_ms) {
    printf("     %s: %.2f ms of CPU\n", what, cpu_ms);
    if (!rt_memory_tool()) CHECK(cpu_ms <= CPU_BUDGET_MS);
}

/* An AF_UNIX socket of `type` bound to a fresh abstract (Linux) or
   temporary path name; the address is in *addr. */
static int unix_bound(int type, struct sockaddr_un *addr, socklen_t *len) {
    static atomic_int seq;
    int s = socket(AF_UNIX, type, 0);
    REQUIRE(s >= 0);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
#ifdef __linux__
    snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1, "rsock-hostile-%d-%d", (int)getpid(),
             atomic_fetch_add(&seq, 1));
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr->sun_path + 1));
#else
    snprintf(addr->sun_path, sizeof addr->sun_path, "/tmp/rsock-hostile-%d-%d", (int)getpid(),
             atomic_fetch_add(&seq, 1));
    unlink(addr->sun_path);
    *len = sizeof *addr;
#endif
    REQUIRE(bind(s, (struct sockaddr *)addr, *len) == 0);
    return s;
}

/* ---- 1. fork() while another thread is inside an accept attempt */

struct looper {
    rsock_token *tok;
    int listener;
    atomic_int stop;
    long rounds;
};
static void *accept_zero_loop(void *arg) {
    struct looper *l = arg;
    while (!atomic_load(&l->stop)) {
        int s = rsock_accept(l->tok, l->listener, NULL, NULL, 0);
        if (s >= 0) close(s);
        l->rounds++;
    }
    return NULL;
}

/* The child's own accept must keep its timeout: no lock left held by a
   thread that does not exist in the child. (The listener is non-blocking:
   processes that share a blocking one race on its mode, see rsock_accept.) */
static void fork_during_accept_attempts(void) {
    struct sockaddr_in addr;
    int l = tcp_listener(8, &addr);
    set_nonblocking(l, 1);
    struct looper lp = {rsock_token_new(), l, 0, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, accept_zero_loop, &lp) == 0);
    int forks = rt_scaled(30), hung = 0, bad = 0;
    for (int i = 0; i < forks; i++) {
        sleep_ms(1 + i % 3);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            signal(SIGALRM, SIG_DFL);
            alarm(3); /* a hung child dies of SIGALRM */
            rsock_token *t = rsock_token_new();
            /* Times out, or takes a connection an earlier child made that
               the parent's loop has not taken yet (under load it lags):
               either way the call was not stuck on a lock. */
            int s = rsock_accept(t, l, NULL, NULL, 50);
            int ok = s >= 0 || rsock_last_error() == RSOCK_ETIMEDOUT;
            if (s >= 0) close(s);
            struct sockaddr_in a = addr;
            int c = socket(AF_INET, SOCK_STREAM, 0);
            ok = ok && rsock_connect(t, c, (struct sockaddr *)&a, sizeof a, 1000) == 0;
            close(c);
            rsock_token_unref(t);
            rsock_token_unref(lp.tok); /* the child's copy */
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) hung++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bad++;
    }
    atomic_store(&lp.stop, 1);
    pthread_join(th, NULL);
    printf("     %d forks during %ld accept attempts: %d children hung, %d failed\n", forks, lp.rounds, hung,
           bad);
    CHECK(hung == 0);
    CHECK(bad == 0);
    close(l);
    rsock_token_unref(lp.tok);
}

/* ---- 2. dup()ed descriptors of one listener */

struct timed_acceptor {
    rsock_token *tok;
    int fd;
    atomic_int *stop;
    double worst_ms;
    long rounds;
};
static void *accept_timed_loop(void *arg) {
    struct timed_acceptor *a = arg;
    while (!atomic_load(a->stop)) {
        double t0 = now_ms();
        int s = rsock_accept(a->tok, a->fd, NULL, NULL, 0);
        double took = now_ms() - t0;
        if (s >= 0) close(s);
        if (took > a->worst_ms) a->worst_ms = took;
        a->rounds++;
    }
    return NULL;
}

/* O_NONBLOCK belongs to the open file description that dup() shares: an
   accept on one descriptor must not sleep in the kernel because another
   thread put the shared description back in blocking mode. */
static void dup_listeners_keep_their_timeouts(void) {
    struct sockaddr_in addr;
    int l = tcp_listener(64, &addr);
    int d = dup(l);
    REQUIRE(d >= 0);
    rsock_token *t = rsock_token_new();
    atomic_int stop = 0;
    enum { N = 4 };
    struct timed_acceptor acc[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        acc[i] = (struct timed_acceptor){t, i % 2 ? d : l, &stop, 0, 0};
        REQUIRE(pthread_create(&th[i], NULL, accept_timed_loop, &acc[i]) == 0);
    }
    sleep_ms(rt_scaled(1500));
    atomic_store(&stop, 1);
    /* Rescue threads stuck in the kernel's accept(), so the test ends. */
    for (int i = 0; i < 2 * N; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        connect(c, (struct sockaddr *)&addr, sizeof addr);
        close(c);
    }
    double worst = 0;
    long rounds = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (acc[i].worst_ms > worst) worst = acc[i].worst_ms;
        rounds += acc[i].rounds;
    }
    printf("     %ld accepts with timeout 0 on two dup()ed descriptors: slowest %.1f ms\n", rounds,
           worst);
    CHECK(worst < 500);
    CHECK_MODE(l, 0);
    close(d);
    close(l);
    rsock_token_unref(t);
}

/* ---- 3. a shut-down AF_UNIX listener */

static void shut_down_listener_of(int type) {
    struct sockaddr_un a;
    socklen_t alen;
    int l = unix_bound(type, &a, &alen);
    REQUIRE(listen(l, 4) == 0);
    REQUIRE(shutdown(l, SHUT_RDWR) == 0);
    /* What the plain blocking call says. */
    errno = 0;
    int plain = accept(l, NULL, NULL);
    int plain_err = errno;
    rsock_token *t = rsock_token_new();
    double c0 = thread_cpu_ms(), t0 = now_ms();
    int s = rsock_accept(t, l, NULL, NULL, 300);
    int e = rsock_last_error();
    double cpu = thread_cpu_ms() - c0, took = now_ms() - t0;
    check_cpu(type == SOCK_STREAM ? "accept on a shut-down stream listener"
                                  : "accept on a shut-down seqpacket listener",
              cpu);
    CHECK(plain == -1);
    CHECK(s == -1);
#ifdef __linux__
    /* Linux: the plain call fails at once with EINVAL, and so does rsock. */
    CHECK(plain_err == EINVAL);
    CHECK(e == EINVAL);
    CHECK(took < 100);
#else
    (void)plain_err;
    CHECK(e == EINVAL || e == RSOCK_ETIMEDOUT);
    (void)took;
#endif
    close(l);
    rsock_token_unref(t);
}

static void shut_down_unix_listener_does_not_spin(void) {
    shut_down_listener_of(SOCK_STREAM);
    shut_down_listener_of(SOCK_SEQPACKET);
}

struct shutter {
    int fd;
    double after_ms;
};
static void *shut_later(void *arg) {
    struct shutter *s = arg;
    sleep_ms(s->after_ms);
    shutdown(s->fd, SHUT_RDWR);
    return NULL;
}

/* The idiom: another thread shuts the listener down to end an accept
   loop. The waiting accept returns promptly instead of spinning. */
static void shutdown_from_another_thread_ends_accept(void) {
    struct sockaddr_un a;
    socklen_t alen;
    int l = unix_bound(SOCK_STREAM, &a, &alen);
    REQUIRE(listen(l, 4) == 0);
    rsock_token *t = rsock_token_new();
    struct shutter sh = {l, 50};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, shut_later, &sh) == 0);
    double c0 = thread_cpu_ms(), t0 = now_ms();
    int s = rsock_accept(t, l, NULL, NULL, 400);
    double cpu = thread_cpu_ms() - c0, took = now_ms() - t0;
    pthread_join(th, NULL);
    CHECK(s == -1);
    check_cpu("accept while another thread shuts the listener down", cpu);
#ifdef __linux__
    CHECK(rsock_last_error() == EINVAL);
    CHECK(took < 300);
#else
    (void)took;
#endif
    close(l);
    rsock_token_unref(t);
}

/* ---- 4. a datagram socket after shutdown(SHUT_RD) */

static void check_dgram_after_shut_rd(int a, const char *what) {
    REQUIRE(shutdown(a, SHUT_RD) == 0);
    char buf[16];
    errno = 0;
    long plain = recv(a, buf, sizeof buf, 0);
    rsock_token *t = rsock_token_new();
    double c0 = thread_cpu_ms();
    long r = rsock_recv(t, a, buf, sizeof buf, 0, 300);
    long rf = rsock_recvfrom(t, a, buf, sizeof buf, 0, NULL, NULL, 300);
    double cpu = thread_cpu_ms() - c0;
    check_cpu(what, cpu);
    /* As the plain blocking call: 0 at once. */
    CHECK(plain == 0);
    CHECK(r == plain);
    CHECK(rf == plain);
    rsock_token_unref(t);
}

static void shut_down_datagram_recv_returns_like_recv(void) {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    check_dgram_after_shut_rd(sv[0], "two receives on a shut-down AF_UNIX datagram socket");
    close_pair(sv);

    struct sockaddr_in a1, a2;
    int u1 = udp_bound(&a1), u2 = udp_bound(&a2);
    REQUIRE(connect(u1, (struct sockaddr *)&a2, sizeof a2) == 0);
    check_dgram_after_shut_rd(u1, "two receives on a shut-down connected UDP socket");
    close(u1);
    close(u2);
}

/* ---- 5. sendto an AF_UNIX datagram receiver whose queue is full */

struct drainer {
    int fd;
    double after_ms;
};
static void *drain_later(void *arg) {
    struct drainer *d = arg;
    sleep_ms(d->after_ms);
    char buf[64];
    while (recv(d->fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    return NULL;
}

static void sendto_full_unix_receiver_waits_without_spinning(void) {
    struct sockaddr_un ra;
    socklen_t ralen;
    int r = unix_bound(SOCK_DGRAM, &ra, &ralen);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    REQUIRE(s >= 0);
    int queued = 0;
    while (sendto(s, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&ra, ralen) == 1) queued++;
    REQUIRE(errno == EAGAIN || errno == EWOULDBLOCK);
    rsock_token *t = rsock_token_new();
    double c0 = thread_cpu_ms(), t0 = now_ms();
    CHECK_ERR(rsock_sendto(t, s, "y", 1, 0, (struct sockaddr *)&ra, ralen, 300), RSOCK_ETIMEDOUT);
    double cpu = thread_cpu_ms() - c0, took = now_ms() - t0;
    check_cpu("sendto a full receiver for 300 ms", cpu);
    CHECK(took >= 290);
    /* Once the receiver drains, the waiting sendto goes through. */
    struct drainer dr = {r, 100};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, drain_later, &dr) == 0);
    t0 = now_ms();
    CHECK(rsock_sendto(t, s, "z", 1, 0, (struct sockaddr *)&ra, ralen, 2000) == 1);
    took = now_ms() - t0;
    pthread_join(th, NULL);
    printf("     %d datagrams filled the queue; sendto went through %.1f ms after the drain\n", queued,
           took - 100);
    CHECK(took < 1000);
    /* And a cancel ends the wait at once. */
    while (sendto(s, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&ra, ralen) == 1) {
    }
    struct canceller cc;
    start_cancel(&cc, t, 50);
    t0 = now_ms();
    CHECK_ERR(rsock_sendto(t, s, "y", 1, 0, (struct sockaddr *)&ra, ralen, 5000), RSOCK_ECANCELED);
    CHECK(now_ms() - t0 < 1000);
    join_cancel(&cc);
    close(s);
    close(r);
    rsock_token_unref(t);
}

/* ---- 6. pthread_cancel acting inside rsock_cancel */

struct cancel_victim {
    rsock_token *tok;
    atomic_int go;
};
static void *cancel_then_testcancel(void *arg) {
    struct cancel_victim *v = arg;
    while (!atomic_load(&v->go)) {
        /* spin: no cancellation point, so the pending cancel waits */
    }
    rsock_cancel(v->tok); /* the first cancellation point, if it had one */
    pthread_testcancel();
    return NULL;
}

struct inf_waiter {
    rsock_token *tok;
    int fd;
    atomic_int in_call, returned;
    long result;
    int err;
};
static void *wait_forever(void *arg) {
    struct inf_waiter *w = arg;
    char c;
    atomic_store(&w->in_call, 1);
    w->result = rsock_recv(w->tok, w->fd, &c, 1, 0, RSOCK_INFINITE);
    w->err = rsock_last_error();
    atomic_store(&w->returned, 1);
    return NULL;
}

/* A pthread_cancel pending on the cancelling thread must not act inside
   rsock_cancel, between its count and its wake-ups. */
static void pthread_cancel_inside_rsock_cancel(void) {
    int rounds = rt_scaled(20), lost = 0;
    for (int i = 0; i < rounds; i++) {
        int sv[2];
        unix_pair(sv);
        struct inf_waiter w = {rsock_token_new(), sv[0], 0, 0, 0, 0};
        pthread_t wt, ct;
        REQUIRE(pthread_create(&wt, NULL, wait_forever, &w) == 0);
        while (!atomic_load(&w.in_call)) sched_yield();
        sleep_ms(5); /* registered and asleep */
        struct cancel_victim v = {w.tok, 0};
        REQUIRE(pthread_create(&ct, NULL, cancel_then_testcancel, &v) == 0);
        REQUIRE(pthread_cancel(ct) == 0);
        atomic_store(&v.go, 1);
        void *ret = NULL;
        pthread_join(ct, &ret);
        /* The waiter must be awake: give it a second. */
        double end = now_ms() + 1000;
        while (now_ms() < end && !atomic_load(&w.returned)) sleep_ms(1);
        CHECK(ret == PTHREAD_CANCELED);
        if (atomic_load(&w.returned)) {
            pthread_join(wt, NULL);
            CHECK(w.result == -1 && w.err == RSOCK_ECANCELED);
            close_pair(sv);
            rsock_token_unref(w.tok);
        } else {
            /* Lost: the waiter sleeps for ever (and its exit would spin on
               the canceller's raised count); leave it behind. */
            lost++;
            pthread_detach(wt);
        }
    }
    printf("     %d cancels by threads cancelled at their first cancellation point: %d wake-ups lost\n", rounds,
           lost);
    CHECK(lost == 0);
}

/* ---- 7. a fork child that closes every inherited descriptor */

static void fork_child_closing_inherited_descriptors_keeps_its_own(void) {
    int sv[2];
    unix_pair(sv);
    rsock_token *t = rsock_token_new();
    char c;
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 1), RSOCK_ETIMEDOUT); /* this thread's wake descriptor exists */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        alarm(5);
        /* A daemon: close everything inherited, then open its own. */
        for (int fd = 3; fd < 256; fd++) close(fd);
        enum { N = 16 };
        int mine[N];
        for (int i = 0; i < N; i += 2)
            if (socketpair(AF_UNIX, SOCK_STREAM, 0, &mine[i]) != 0) _exit(2);
        rsock_token *ct = rsock_token_new();
        /* Its first waits (the inherited wake descriptor is replaced). */
        for (int i = 0; i < N; i += 2)
            if (rsock_recv(ct, mine[i], &c, 1, 0, 1) != -1 || rsock_last_error() != RSOCK_ETIMEDOUT) _exit(3);
        int closed = 0;
        for (int i = 0; i < N; i++)
            if (fcntl(mine[i], F_GETFD) == -1) closed++;
        for (int i = 0; i < N; i += 2)
            if (!closed && (send(mine[i + 1], "k", 1, 0) != 1 || rsock_recv(ct, mine[i], &c, 1, 0, 1000) != 1))
                _exit(4);
        for (int i = 0; i < N; i++) close(mine[i]);
        rsock_token_unref(ct);
        rsock_token_unref(t); /* the child's copy */
        _exit(closed ? 10 + closed : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) > 10)
        printf("     the child found %d of its own sockets closed\n", WEXITSTATUS(status) - 10);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close_pair(sv);
    rsock_token_unref(t);
}

/* ---- 9. rsock_poll with nfds at RLIMIT_NOFILE */

static void poll_at_the_descriptor_limit(void) {
    struct rlimit old;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    int sv[2];
    unix_pair(sv);
    REQUIRE(send(sv[1], "r", 1, 0) == 1);
    rsock_token *t = rsock_token_new();
    char c;
    CHECK_ERR(rsock_recv(t, sv[1], &c, 1, 0, 0), RSOCK_ETIMEDOUT); /* wake descriptor made */
    enum { LIMIT = 64 };
    static int many[LIMIT]; /* opened while the limit allows */
    for (int i = 0; i < LIMIT; i += 2) REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, &many[i]) == 0);
    struct rlimit low = {LIMIT, old.rlim_max};
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    static struct pollfd fds[LIMIT], ref[LIMIT];
    /* The same socket over and over; entries poll ignores (-1) too. */
    for (int i = 0; i < LIMIT; i++) fds[i] = (struct pollfd){i % 3 == 2 ? -1 : sv[0], POLLIN, 0};
    memcpy(ref, fds, sizeof fds);
    int want = poll(ref, LIMIT, 0);
    CHECK(want == LIMIT - LIMIT / 3);
    CHECK(rsock_poll(t, fds, LIMIT, 100) == want);
    int same = 1;
    for (int i = 0; i < LIMIT; i++) same &= fds[i].revents == ref[i].revents;
    CHECK(same);
    /* Nothing ready: it waits, and a cancel still wakes it. */
    for (int i = 0; i < LIMIT; i++) fds[i] = (struct pollfd){i % 2 ? -1 : sv[1], POLLIN, 0};
    CHECK(rsock_poll(t, fds, LIMIT, 30) == 0);
    struct canceller cc;
    start_cancel(&cc, t, 30);
    CHECK_ERR(rsock_poll(t, fds, LIMIT, 5000), RSOCK_ECANCELED);
    join_cancel(&cc);
    rsock_token_reset(t);
    /* Waiting 300 ms costs no CPU. */
    double c0 = thread_cpu_ms();
    CHECK(rsock_poll(t, fds, LIMIT, 300) == 0);
    check_cpu("rsock_poll of RLIMIT_NOFILE entries for 300 ms", thread_cpu_ms() - c0);
    /* As many distinct open descriptors as the limit: no room to merge. */
    for (int i = 0; i < LIMIT; i++) fds[i] = (struct pollfd){many[i], POLLIN, 0};
    c0 = thread_cpu_ms();
    CHECK(rsock_poll(t, fds, LIMIT, 300) == 0);
    check_cpu("rsock_poll of as many distinct descriptors as RLIMIT_NOFILE for 300 ms", thread_cpu_ms() - c0);
    REQUIRE(send(many[1], "m", 1, 0) == 1);
    CHECK(rsock_poll(t, fds, LIMIT, 1000) == 1);
    CHECK(fds[0].revents == POLLIN);
    CHECK(recv(many[0], &c, 1, 0) == 1);
    start_cancel(&cc, t, 30);
    double t0 = now_ms();
    CHECK_ERR(rsock_poll(t, fds, LIMIT, 5000), RSOCK_ECANCELED);
    CHECK(now_ms() - t0 < 1000);
    join_cancel(&cc);
    rsock_token_reset(t);
    for (int i = 0; i < LIMIT; i++) close(many[i]);
    /* One more than the limit: poll's own EINVAL. */
    static struct pollfd over[LIMIT + 1];
    for (int i = 0; i <= LIMIT; i++) over[i] = (struct pollfd){sv[0], POLLIN, 0};
    CHECK(poll(over, LIMIT + 1, 0) == -1 && errno == EINVAL);
    CHECK_ERR(rsock_poll(t, over, LIMIT + 1, 0), EINVAL);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
    close_pair(sv);
    rsock_token_unref(t);
}
#endif /* POSIX */

/* ---- 8. concurrent resets */

struct reset_race {
    rsock_token *tok;
    atomic_int stop;
    long resets;
};

static void *reset_loop(void *arg) {
    struct reset_race *r = arg;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        rsock_token_reset(r->tok);
        r->resets++;
    }
    return NULL;
}

/* Resets are linearisable with cancels and with each other. This thread
   is the only canceller: once its own reset after its cancel has returned,
   nothing may leave the token cancelled, however another thread's resets
   interleave (a reset that read the count before the cancel must not
   store it after). */
static void concurrent_resets_never_recancel(void) {
    struct reset_race r = {rsock_token_new(), 0, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, reset_loop, &r) == 0);
    long rounds = 0, bad = 0;
    double end = now_ms() + rt_scaled(500);
    while (now_ms() < end) {
        for (int i = 0; i < 1000; i++) {
            rsock_cancel(r.tok);
            rsock_token_reset(r.tok);
            for (int k = 0; k < 4; k++)
                if (rsock_is_cancelled(r.tok)) {
                    bad++;
                    break;
                }
            rounds++;
        }
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    printf("     %ld cancel+reset rounds against %ld resets from another thread: %ld re-cancelled\n", rounds,
           r.resets, bad);
    CHECK(bad == 0);
    CHECK(r.resets > 0);
    rsock_token_unref(r.tok);
}

int main(void) {
    rt_watchdog(240);
    rt_ignore_sigpipe();
#ifndef _WIN32
    /* qemu-user forks a threaded process unreliably (a child can hang in
       the emulator's own locks), as test_stress notes for its children. */
    RUN_IF(!getenv("RSOCK_TEST_EMULATED"), fork_during_accept_attempts, "fork beside threads under qemu-user");
#else
    RUN_POSIX(fork_during_accept_attempts, "no fork()");
#endif
    RUN_POSIX(dup_listeners_keep_their_timeouts, "no dup() of sockets");
    RUN_POSIX(shut_down_unix_listener_does_not_spin, "no AF_UNIX listeners here");
    RUN_POSIX(shutdown_from_another_thread_ends_accept, "no AF_UNIX listeners here");
    RUN_POSIX(shut_down_datagram_recv_returns_like_recv, "no AF_UNIX datagrams here");
    RUN_POSIX(sendto_full_unix_receiver_waits_without_spinning, "no AF_UNIX datagrams here");
    RUN_POSIX(pthread_cancel_inside_rsock_cancel, "no pthread_cancel");
    RUN_POSIX(fork_child_closing_inherited_descriptors_keeps_its_own, "no fork()");
    RUN(concurrent_resets_never_recancel);
#ifdef _WIN32
    RUN_POSIX(poll_at_the_descriptor_limit, "no RLIMIT_NOFILE");
#else
    /* valgrind keeps RLIMIT_NOFILE to itself: poll would not see it. */
    RUN_IF(!rt_memory_tool(), poll_at_the_descriptor_limit, "RLIMIT_NOFILE is emulated under a memory tool");
#endif
    return rt_finish("test_hostile");
}
