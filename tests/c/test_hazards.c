/* Hazards around the calls: fork(), pthread_cancel, several threads on one
   blocking listener, peeking with MSG_WAITALL. */
#include "rtest.h"

#include <sched.h>
#include <stdatomic.h>
#ifndef _WIN32
#include <sys/wait.h>
#endif

#ifndef _WIN32 /* fork() and pthread_cancel: POSIX only */
/* A forked child must not share the parent's wake descriptors: if it did,
   its waits would drain wake-ups meant for the parent. */
static void fork_child_does_not_steal_wakeups(void) {
    rsock_token *t = rsock_token_new();
    int sv[2];
    unix_pair(sv);
    char c;
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 1), RSOCK_ETIMEDOUT); /* this thread's wake fd exists */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* Child: wait over and over, as a busy worker would. */
        rsock_token *mine = rsock_token_new();
        double end = now_ms() + 1500;
        int bad = 0;
        while (now_ms() < end)
            if (rsock_recv(mine, sv[0], &c, 1, MSG_PEEK, 1) != -1 || rsock_last_error() != RSOCK_ETIMEDOUT) bad++;
        /* A cancel in the child still works on its own descriptors. */
        rsock_cancel(mine);
        if (rsock_recv(mine, sv[0], &c, 1, 0, RSOCK_INFINITE) != -1) bad++;
        rsock_token_unref(mine);
        rsock_token_unref(t);
        _exit(bad ? 1 : 0);
    }
    int missed = 0;
    unsigned seed = 5;
    double end = now_ms() + 1000;
    int rounds = 0;
    while (now_ms() < end) {
        struct canceller cc;
        start_cancel(&cc, t, (rt_rand(&seed) % 20) / 10.0);
        /* A wake-up drained by the child would leave this call asleep until
           its next timed check: count slow returns as missed. */
        double t0 = now_ms();
        long r = rsock_recv(t, sv[0], &c, 1, 0, 3000);
        if (r != -1 || rsock_last_error() != RSOCK_ECANCELED || now_ms() - t0 > 400) missed++;
        join_cancel(&cc);
        rsock_token_reset(t);
        rounds++;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(missed == 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("     %d cancels in the parent while the child waited, %d missed\n", rounds, missed);
    close_pair(sv);
    rsock_token_unref(t);
}

struct inherited_waiter {
    rsock_token *tok;
    int fd, result, err;
    double took;
};

static void *wait_inherited(void *arg) {
    struct inherited_waiter *w = arg;
    char c;
    double t0 = now_ms();
    w->result = (int)rsock_recv(w->tok, w->fd, &c, 1, 0, 5000);
    w->err = rsock_last_error();
    w->took = now_ms() - t0;
    return NULL;
}

/* A fork() child gets a copy of every token: it may use, cancel, reset and
   release them, and make children of them, like its own. Cancelling one
   wakes the child's waiters and not the parent's: the two copies are
   separate from the fork on. */
static void fork_child_uses_inherited_tokens(void) {
    rsock_token *root = rsock_token_new();
    rsock_token *tok = rsock_token_child(root);
    int sv[2];
    unix_pair(sv);
    struct inherited_waiter pw = {tok, sv[0], 0, 0, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, wait_inherited, &pw) == 0); /* parent waits on tok */
    sleep_ms(20);
    /* The child reports through a pipe: under valgrind its exit status is
       valgrind's, whose leak check in a child counts the per-thread state
       of the parent's waiting thread, inherited without the thread. */
    int report[2];
    REQUIRE(pipe(report) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        char c;
        if (rsock_is_cancelled(tok)) bad |= 1;
        /* A waiter in the child, woken by a cancel of the inherited root. */
        struct inherited_waiter cw = {tok, sv[0], 0, 0, 0};
        pthread_t cth;
        if (pthread_create(&cth, NULL, wait_inherited, &cw) != 0) _exit(100);
        sleep_ms(50);
        rsock_cancel(root);
        pthread_join(cth, NULL);
        if (cw.result != -1 || cw.err != RSOCK_ECANCELED || cw.took > 2000) bad |= 2;
        if (rsock_recv(tok, sv[0], &c, 1, 0, 0) != -1 || rsock_last_error() != RSOCK_ECANCELED) bad |= 4;
        /* Reset and children work on the copies. */
        rsock_token *kid = rsock_token_child(root);
        if (!kid || !rsock_is_cancelled(kid)) bad |= 8;
        rsock_token_reset(root);
        rsock_token_reset(tok);
        if (rsock_is_cancelled(tok) || !rsock_is_cancelled(kid)) bad |= 16;
        if (rsock_recv(tok, sv[0], &c, 1, 0, 20) != -1 || rsock_last_error() != RSOCK_ETIMEDOUT) bad |= 32;
        rsock_token_unref(kid);
        rsock_token_unref(tok);
        rsock_token_unref(root);
        _exit(write(report[1], &bad, sizeof bad) == sizeof bad ? 0 : 1);
    }
    close(report[1]);
    int bad = -1;
    CHECK(read(report[0], &bad, sizeof bad) == sizeof bad);
    close(report[0]);
    waitpid(pid, NULL, 0);
    CHECK(bad == 0);
    if (bad) printf("     child failures: %#x\n", bad);
    /* The child's cancel did not reach the parent's copy or its waiter. */
    CHECK(!rsock_is_cancelled(root) && !rsock_is_cancelled(tok));
    rsock_cancel(tok);
    pthread_join(th, NULL);
    CHECK(pw.result == -1 && pw.err == RSOCK_ECANCELED && pw.took > 70);
    rsock_token_unref(tok);
    rsock_token_unref(root);
    close_pair(sv);
}

/* pthread_cancel of a thread inside an rsock call does not tear through the
   library: the cancel takes effect at the thread's next cancellation point
   after the call returns. */
struct victim {
    rsock_token *tok;
    int fd;
    atomic_int in_call;
    long result;
};
static void *victim_main(void *arg) {
    struct victim *v = arg;
    char c;
    atomic_store(&v->in_call, 1);
    v->result = rsock_recv(v->tok, v->fd, &c, 1, 0, RSOCK_INFINITE);
    pthread_testcancel();
    return NULL;
}

/* pthread_cancel of `th`, which is inside an rsock call on `tok`; `ms`
   later a cancel of `tok` ends that call, and the thread must then exit
   cancelled, at its next cancellation point. */
static void cancel_thread_then_token(pthread_t th, rsock_token *tok, unsigned ms) {
    CHECK(pthread_cancel(th) == 0);
    sleep_ms(ms);
    rsock_cancel(tok);
    void *ret = NULL;
    pthread_join(th, &ret);
    CHECK(ret == PTHREAD_CANCELED);
}

static void pthread_cancel_is_deferred_past_the_call(void) {
    int sv[2];
    unix_pair(sv);
    struct victim v = {rsock_token_new(), sv[0], 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, victim_main, &v);
    while (!atomic_load(&v.in_call)) sched_yield();
    sleep_ms(30);
    cancel_thread_then_token(th, v.tok, 30);
    CHECK(v.result == -1);
    close_pair(sv);
    rsock_token_unref(v.tok);
}

/* With a pthread_cancel pending (and cancellation enabled), every kind of
   rsock call still runs to its end, waits included: none reaches a
   cancellation point (on Linux their system calls are raw, elsewhere the
   calls defer cancellation). The victim makes only rsock calls until its
   pthread_testcancel; `step` says how far it got. */
struct pending_victim {
    rsock_token *tok;
    int sv[2], pipe[2];
    rsock_socket listener, accepted, client;
    struct sockaddr_in addr;
    atomic_int ready;
    atomic_int step;
};
static void *pending_victim_main(void *arg) {
    struct pending_victim *v = arg;
    char c = 'x', buf[8];
    atomic_store(&v->ready, 1);
    if (rsock_recv(v->tok, v->sv[0], &c, 1, 0, RSOCK_INFINITE) != -1) return NULL; /* cancelled by rsock_cancel */
    atomic_store(&v->step, 1);
    rsock_token_reset(v->tok);
    if (rsock_recv(v->tok, v->sv[0], buf, 1, 0, 20) != -1) return NULL; /* waits, times out */
    atomic_store(&v->step, 2);
    if (rsock_send(v->tok, v->sv[1], "ab", 2, MSG_NOSIGNAL, RSOCK_INFINITE) != 2) return NULL;
    if (rsock_recv(v->tok, v->sv[0], buf, 2, MSG_WAITALL, RSOCK_INFINITE) != 2) return NULL;
    if (rsock_recv(v->tok, v->sv[0], buf, 1, 0, RSOCK_SOCKET_TIMEOUT) != -1) return NULL; /* SO_RCVTIMEO: 20 ms */
    atomic_store(&v->step, 3);
    if (rsock_block(v->tok, v->sv[0], RSOCK_READABLE, 10) != -1) return NULL;
    struct pollfd p = {v->sv[0], POLLIN, 0};
    if (rsock_poll(v->tok, &p, 1, 10) != 0) return NULL;
    atomic_store(&v->step, 4);
    struct iovec iov = {buf, 1};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (rsock_sendmsg(v->tok, v->sv[1], &m, MSG_NOSIGNAL, RSOCK_INFINITE) != 1) return NULL;
    if (rsock_recvmsg(v->tok, v->sv[0], &m, 0, RSOCK_INFINITE) != 1) return NULL;
    if (rsock_write(v->tok, v->pipe[1], "y", 1, RSOCK_INFINITE) != 1) return NULL;
    if (rsock_read(v->tok, v->pipe[0], buf, 1, RSOCK_INFINITE) != 1) return NULL;
    if (rsock_read(v->tok, v->pipe[0], buf, 1, 10) != -1) return NULL; /* waits, times out */
    atomic_store(&v->step, 5);
    if (rsock_connect(v->tok, v->client, (struct sockaddr *)&v->addr, sizeof v->addr, RSOCK_INFINITE) != 0) return NULL;
    v->accepted = rsock_accept(v->tok, v->listener, NULL, NULL, RSOCK_INFINITE);
    if (v->accepted < 0) return NULL;
    if (rsock_accept(v->tok, v->listener, NULL, NULL, 10) != -1) return NULL; /* waits, times out */
    atomic_store(&v->step, 6);
    pthread_testcancel();
    atomic_store(&v->step, 7); /* not reached */
    return NULL;
}

static void pthread_cancel_pending_through_every_call(void) {
    struct pending_victim v;
    memset(&v, 0, sizeof v);
    v.tok = rsock_token_new();
    unix_pair(v.sv);
    struct timeval tv = {0, 20000};
    REQUIRE(setsockopt(v.sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    REQUIRE(pipe(v.pipe) == 0);
    v.listener = tcp_listener(4, &v.addr);
    v.client = socket(AF_INET, SOCK_STREAM, 0);
    v.accepted = -1;
    REQUIRE(sock_ok(v.client));
    pthread_t th;
    pthread_create(&th, NULL, pending_victim_main, &v);
    while (!atomic_load(&v.ready)) sched_yield();
    sleep_ms(30);
    cancel_thread_then_token(th, v.tok, 10);
    CHECK(atomic_load(&v.step) == 6);
    if (atomic_load(&v.step) != 6) printf("     the victim stopped after step %d\n", atomic_load(&v.step));
    if (v.accepted >= 0) close(v.accepted);
    close(v.client);
    close(v.listener);
    close(v.pipe[0]);
    close(v.pipe[1]);
    close_pair(v.sv);
    rsock_token_unref(v.tok);
}
#endif /* fork() and pthread_cancel */

/* Several threads accepting on one blocking listener: none may end up
   blocked in the kernel where a cancel cannot reach it. */
struct acceptor {
    rsock_token *tok;
    rsock_socket listener;
    int timeout;
    long rounds;
    int unexpected;
};
static void *accept_loop(void *arg) {
    struct acceptor *a = arg;
    for (;;) {
        rsock_socket s = rsock_accept(a->tok, a->listener, NULL, NULL, a->timeout);
        if (sock_ok(s)) {
            close_sock(s);
            continue;
        }
        int e = rsock_last_error();
        if (e == RSOCK_ECANCELED) return NULL;
        if (e != RSOCK_ETIMEDOUT) a->unexpected++;
        a->rounds++;
    }
}

static void threads_sharing_a_blocking_listener(void) {
    struct sockaddr_in addr;
    rsock_socket l = tcp_listener(16, &addr);
    rsock_token *t = rsock_token_new();
    enum { N = 4 };
    struct acceptor acc[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        acc[i] = (struct acceptor){t, l, i % 2 ? 1 : 0, 0, 0};
        pthread_create(&th[i], NULL, accept_loop, &acc[i]);
    }
    for (int i = 0; i < 20; i++) { /* a few real connections too */
        rsock_socket c = socket(AF_INET, SOCK_STREAM, 0);
        connect(c, (struct sockaddr *)&addr, sizeof addr);
        close_sock(c);
        sleep_ms(10);
    }
    sleep_ms(100);
    rsock_cancel(t);
    long rounds = 0;
    int unexpected = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL); /* a thread stuck in accept() hangs here */
        rounds += acc[i].rounds;
        unexpected += acc[i].unexpected;
    }
    CHECK(unexpected == 0);
    CHECK(rounds > 100);
    CHECK_MODE(l, 0);
    close_sock(l);
    rsock_token_unref(t);
}

static void peek_with_waitall_returns_what_is_queued(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    rsock_token *t = rsock_token_new();
    CHECK(send(sv[1], "abc", 3, 0) == 3);
    char buf[8] = {0};
    CHECK(rsock_recv(t, sv[0], buf, 6, MSG_PEEK | MSG_WAITALL, 100) == 3);
    CHECK(memcmp(buf, "abc\0", 4) == 0);
    CHECK(pending(sv[0]) == 3);
    close_pair(sv);
    rsock_token_unref(t);
}

/* Calls made while a thread exits (from a pthread key destructor that runs
   after the library's own thread-local cleanup) work and leak nothing. */
static pthread_key_t late_key;
static atomic_int late_ok, late_bad;
static void late_calls(void *arg) {
    rsock_socket fd = *(rsock_socket *)arg;
    rsock_pollfd p = {fd, POLLIN, 0};
    char c;
    int ok = rsock_poll(NULL, &p, 1, 1) == 0;
    ok = ok && rsock_recv(NULL, fd, &c, 1, 0, 1) == -1 && rsock_last_error() == RSOCK_ETIMEDOUT;
    rsock_token *t = rsock_thread_token();
    ok = ok && t != NULL;
    rsock_token_unref(t);
    atomic_fetch_add(ok ? &late_ok : &late_bad, 1);
}
static void *exit_with_late_calls(void *arg) {
    pthread_setspecific(late_key, arg);
    return NULL;
}

static void calls_during_thread_exit(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    REQUIRE(pthread_key_create(&late_key, late_calls) == 0);
    int before = fd_count();
    for (int i = 0; i < 50; i++) {
        pthread_t th;
        pthread_create(&th, NULL, exit_with_late_calls, &sv[0]);
        pthread_join(th, NULL);
    }
    CHECK(atomic_load(&late_ok) == 50 && atomic_load(&late_bad) == 0);
    CHECK(fd_count() == before);
    pthread_key_delete(late_key);
    close_pair(sv);
}

int main(void) {
    rt_watchdog(60);
    RUN_POSIX(fork_child_does_not_steal_wakeups, "no fork() on Windows");
    RUN_POSIX(fork_child_uses_inherited_tokens, "no fork() on Windows");
    RUN_POSIX(pthread_cancel_is_deferred_past_the_call, "pthread_cancel is POSIX (winpthreads only emulates it)");
    RUN_POSIX(pthread_cancel_pending_through_every_call, "pthread_cancel is POSIX (winpthreads only emulates it)");
    RUN(threads_sharing_a_blocking_listener);
    RUN(peek_with_waitall_returns_what_is_queued);
    RUN(calls_during_thread_exit);
    return rt_finish("test_hazards");
}
