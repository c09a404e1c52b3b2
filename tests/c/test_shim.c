/* The migration shim: the thread's own token, blocking hooks, one
   outstanding call per thread. */
#include "rtest.h"

#include <stdatomic.h>

static int hook_calls;
static double hook_last, hook_max_gap;
static int hook_cancel_at; /* cancel the outstanding call on this hook call */
static int nested_result, nested_error, blocking_in_hook;

static int counting_hook(void) {
    double now = now_ms();
    if (hook_calls > 0 && now - hook_last > hook_max_gap) hook_max_gap = now - hook_last;
    hook_last = now;
    hook_calls++;
    blocking_in_hook = rsock_is_blocking();
    if (hook_calls == hook_cancel_at) CHECK(rsock_cancel_blocking_call() == 0);
    return 1;
}

static void reset_hook_stats(int cancel_at) {
    hook_calls = 0;
    hook_max_gap = 0;
    hook_cancel_at = cancel_at;
}

static void hook_runs_while_waiting(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    CHECK(rsock_set_blocking_hook(counting_hook) == NULL);
    reset_hook_stats(0);
    char c;
    CHECK_ERR(rsock_recv(NULL, sv[0], &c, 1, 0, 200), RSOCK_ETIMEDOUT);
    CHECK(hook_calls >= 14); /* every 10 ms: 20 expected; slack for a busy machine */
    CHECK(blocking_in_hook == 1);
    CHECK(rsock_is_blocking() == 0);
    printf("     %d hook calls in 200 ms, longest gap %.1f ms\n", hook_calls, hook_max_gap);

    /* Not called when the call need not wait. */
    reset_hook_stats(0);
    CHECK(send(sv[1], "x", 1, 0) == 1);
    CHECK(rsock_recv(NULL, sv[0], &c, 1, 0, 200) == 1);
    CHECK(hook_calls == 0);
    CHECK(rsock_set_blocking_hook(NULL) == counting_hook);
    CHECK(rsock_set_blocking_hook(NULL) == NULL);
    close_pair(sv);
}

static void cancel_blocking_call_from_hook(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    rsock_set_blocking_hook(counting_hook);
    reset_hook_stats(3);
    char c;
    rsock_token *t = rsock_token_new();
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, RSOCK_INFINITE), RSOCK_ECANCELED);
    CHECK(hook_calls == 3);
    /* That call only: no token was cancelled and the next call waits again. */
    CHECK(rsock_is_cancelled(t) == 0);
    reset_hook_stats(0);
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 30), RSOCK_ETIMEDOUT);
    CHECK(hook_calls > 0);
    /* With the thread's own token too. */
    reset_hook_stats(1);
    CHECK_ERR(rsock_accept(NULL, tcp_listener(1, NULL), NULL, NULL, RSOCK_INFINITE), RSOCK_ECANCELED);
    CHECK(rsock_unhook_blocking_hook() == 0);
    CHECK(rsock_set_blocking_hook(NULL) == NULL);
    /* Nothing outstanding. */
    CHECK_ERR(rsock_cancel_blocking_call(), RT_EINVAL);
    rsock_token_unref(t);
    close_pair(sv);
}

static rsock_socket nested_sock;
static int nesting_hook(void) {
    char c;
    nested_result = (int)rsock_recv(NULL, nested_sock, &c, 1, 0, 0);
    nested_error = rsock_last_error();
    rsock_cancel_blocking_call();
    return 0;
}

static void calls_from_hook_fail_in_progress(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    nested_sock = sv[0];
    CHECK(send(sv[1], "z", 1, 0) == 1); /* the nested call would succeed */
    rsock_socket other[2];
    unix_pair(other);
    rsock_set_blocking_hook(nesting_hook);
    char c;
    CHECK_ERR(rsock_recv(NULL, other[0], &c, 1, 0, 1000), RSOCK_ECANCELED);
    CHECK(nested_result == -1 && nested_error == RSOCK_EINPROGRESS);
    CHECK(pending(sv[0]) == 1);
    rsock_unhook_blocking_hook();
    close_pair(sv);
    close_pair(other);
}

/* The hook belongs to the thread that set it. */
static atomic_int other_thread_hook_calls;
static int other_hook(void) {
    atomic_fetch_add(&other_thread_hook_calls, 1);
    return 0;
}
static void *wait_without_hook(void *arg) {
    char c;
    rsock_recv(NULL, *(rsock_socket *)arg, &c, 1, 0, 50);
    return NULL;
}

static void hook_is_per_thread(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    rsock_set_blocking_hook(other_hook);
    pthread_t th;
    pthread_create(&th, NULL, wait_without_hook, &sv[0]);
    pthread_join(th, NULL);
    CHECK(atomic_load(&other_thread_hook_calls) == 0);
    rsock_unhook_blocking_hook();
    close_pair(sv);
}

/* A UI thread cancels a worker's NULL-token call through its thread token. */
struct worker {
    rsock_socket fd;
    rsock_token *published;
    atomic_int ready;
    long r1, r2, r3;
    int e1, e2, e3;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    w->published = rsock_thread_token();
    atomic_store(&w->ready, 1);
    char c;
    w->r1 = rsock_recv(NULL, w->fd, &c, 1, 0, 10000);
    w->e1 = rsock_last_error();
    w->r2 = rsock_recv(NULL, w->fd, &c, 1, 0, 10000); /* sticky */
    w->e2 = rsock_last_error();
    rsock_token *mine = rsock_thread_token();
    rsock_token_reset(mine);
    rsock_token_unref(mine);
    w->r3 = rsock_recv(NULL, w->fd, &c, 1, 0, 20);
    w->e3 = rsock_last_error();
    return NULL;
}

static void thread_token_cancelled_from_another_thread(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    struct worker w = {sv[0], NULL, 0, 0, 0, 0, 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, worker_main, &w);
    while (!atomic_load(&w.ready)) sleep_ms(1);
    sleep_ms(30);
    CHECK(rsock_cancel(w.published) == 0);
    pthread_join(th, NULL);
    CHECK(w.r1 == -1 && w.e1 == RSOCK_ECANCELED);
    CHECK(w.r2 == -1 && w.e2 == RSOCK_ECANCELED);
    CHECK(w.r3 == -1 && w.e3 == RSOCK_ETIMEDOUT);
    /* The token outlives its thread while referenced. */
    CHECK(rsock_cancel(w.published) == 0);
    rsock_token_unref(w.published);

    /* Each thread has its own token; the main thread's is unaffected. */
    rsock_token *mine = rsock_thread_token();
    rsock_token *again = rsock_thread_token();
    CHECK(mine == again && mine != w.published);
    CHECK(rsock_is_cancelled(mine) == 0);
    rsock_token_unref(mine);
    rsock_token_unref(again);
    close_pair(sv);
}

int main(void) {
    rt_watchdog(60);
    RUN(hook_runs_while_waiting);
    RUN(cancel_blocking_call_from_hook);
    RUN(calls_from_hook_fail_in_progress);
    RUN(hook_is_per_thread);
    RUN(thread_token_cancelled_from_another_thread);
    return rt_finish("test_shim");
}
