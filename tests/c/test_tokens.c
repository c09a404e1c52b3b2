/* Tokens: lifetime, NULL handling, stickiness, children, and cost. */
#include "rtest.h"

static void null_arguments(void) {
    CHECK(rsock_token_child(NULL) == NULL && rsock_last_error() == RT_EINVAL);
    rt_set_error(0);
    CHECK(rsock_token_ref(NULL) == NULL && rsock_last_error() == RT_EINVAL);
    CHECK_ERR(rsock_cancel(NULL), RT_EINVAL);
    CHECK_ERR(rsock_token_reset(NULL), RT_EINVAL);
    CHECK(rsock_is_cancelled(NULL) == 0);
    rsock_token_unref(NULL); /* no-op */
}

static void sticky_until_reset(void) {
    rsock_token *t = rsock_token_new();
    REQUIRE(t);
    rsock_socket sv[2];
    unix_pair(sv);
    CHECK(rsock_is_cancelled(t) == 0);
    CHECK(rsock_cancel(t) == 0);
    CHECK(rsock_is_cancelled(t) == 1);
    char c;
    for (int i = 0; i < 3; i++) CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, RSOCK_INFINITE), RSOCK_ECANCELED);
    CHECK_ERR(rsock_block(t, sv[0], RSOCK_WRITABLE, 0), RSOCK_ECANCELED);
    CHECK(rsock_cancel(t) == 0); /* cancelling twice is fine */
    CHECK(rsock_token_reset(t) == 0);
    CHECK(rsock_is_cancelled(t) == 0);
    CHECK(rsock_block(t, sv[0], RSOCK_WRITABLE, 0) == RSOCK_WRITABLE);
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 0), RSOCK_ETIMEDOUT);
    close_pair(sv);
    rsock_token_unref(t);
}

static void references(void) {
    rsock_token *t = rsock_token_new();
    rsock_token *r = rsock_token_ref(t);
    CHECK(r == t);
    rsock_token_unref(t);
    CHECK(rsock_cancel(r) == 0); /* still alive through the second reference */
    CHECK(rsock_is_cancelled(r) == 1);
    rsock_token_unref(r);
}

static void children_and_grandchildren(void) {
    rsock_token *root = rsock_token_new();
    rsock_token *child = rsock_token_child(root);
    rsock_token *grand = rsock_token_child(child);
    REQUIRE(child && grand);

    CHECK(rsock_cancel(grand) == 0);
    CHECK(rsock_is_cancelled(grand) == 1);
    CHECK(rsock_is_cancelled(child) == 0 && rsock_is_cancelled(root) == 0);
    CHECK(rsock_token_reset(grand) == 0);

    CHECK(rsock_cancel(root) == 0);
    CHECK(rsock_is_cancelled(child) == 1 && rsock_is_cancelled(grand) == 1);

    /* A child of a cancelled parent is born cancelled. */
    rsock_token *late = rsock_token_child(child);
    CHECK(rsock_is_cancelled(late) == 1);

    /* Resetting a child whose parent is still cancelled leaves it cancelled. */
    CHECK(rsock_token_reset(child) == 0);
    CHECK(rsock_is_cancelled(child) == 1);

    /* The parent's reset does not undo what descendants saw: each is sticky
       until its own reset. */
    CHECK(rsock_token_reset(root) == 0);
    CHECK(rsock_is_cancelled(root) == 0);
    CHECK(rsock_is_cancelled(grand) == 1);
    CHECK(rsock_is_cancelled(late) == 1);
    CHECK(rsock_token_reset(grand) == 0 && rsock_is_cancelled(grand) == 0);
    CHECK(rsock_token_reset(late) == 0 && rsock_is_cancelled(late) == 0);

    /* Children keep their parent alive. */
    rsock_token_unref(root);
    rsock_token_unref(child);
    CHECK(rsock_is_cancelled(grand) == 0);
    rsock_token_unref(grand);
    rsock_token_unref(late);
}

/* Creating, cancelling and freeing tokens opens no descriptor. */
static void idle_tokens_hold_no_descriptor(void) {
    enum { N = 1000 };
    static rsock_token *toks[N];
    int before = fd_count();
    for (int i = 0; i < N; i++) toks[i] = i % 2 ? rsock_token_child(toks[i - 1]) : rsock_token_new();
    CHECK(fd_count() == before);
    for (int i = 0; i < N; i++) rsock_cancel(toks[i]);
    CHECK(fd_count() == before);
    for (int i = 0; i < N; i++) rsock_token_unref(toks[i]);
    CHECK(fd_count() == before);
}

/* 100,000 live tokens under a 128-descriptor limit, and calls still work.
   (Windows has no such limit to set; the handle count still shows that the
   tokens hold none.) */
static void many_tokens_few_descriptors(void) {
#ifndef _WIN32
    struct rlimit old, lim;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    lim = old;
    lim.rlim_cur = 128;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &lim) == 0);
#endif
    enum { N = 100000 };
    rsock_token **toks = calloc(N, sizeof *toks);
    REQUIRE(toks);
    int before = fd_count();
    for (int i = 0; i < N; i++) {
        toks[i] = rsock_token_new();
        if (!toks[i]) break;
    }
    CHECK(toks[N - 1] != NULL);
    CHECK(fd_count() == before);
    rsock_socket sv[2];
    unix_pair(sv);
    char c = 'x';
    CHECK(send(sv[1], &c, 1, 0) == 1);
    CHECK(rsock_recv(toks[N / 2], sv[0], &c, 1, 0, 1000) == 1);
    CHECK_ERR(rsock_recv(toks[N - 1], sv[0], &c, 1, 0, 20), RSOCK_ETIMEDOUT);
    for (int i = 0; i < N; i++) rsock_cancel(toks[i]);
    CHECK_ERR(rsock_recv(toks[7], sv[0], &c, 1, 0, RSOCK_INFINITE), RSOCK_ECANCELED);
    for (int i = 0; i < N; i++) rsock_token_unref(toks[i]);
    close_pair(sv);
    free(toks);
#ifndef _WIN32
    REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
#endif
}

static void strerror_is_static_and_total(void) {
    CHECK(strcmp(rsock_strerror(RSOCK_ECANCELED), "operation cancelled") == 0);
    CHECK(strcmp(rsock_strerror(RSOCK_ETIMEDOUT), "operation timed out") == 0);
    CHECK(rsock_strerror(-77) != NULL && rsock_strerror(123456) != NULL);
    rt_set_error(RT_EBADSOCK);
    CHECK(rsock_last_error() == RT_EBADSOCK);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", RSOCK_VERSION_MAJOR, RSOCK_VERSION_MINOR, RSOCK_VERSION_PATCH);
    CHECK(strcmp(rsock_version(), v) == 0);
}

#ifndef _WIN32
/* Out of memory: NULL with ENOMEM, never an abort. Runs last: it caps the
   address space of this process. */
static void out_of_memory_is_enomem(void) {
    enum { MAX = 1 << 22 };
    if (rt_memory_tool()) {
        printf("     skipped: a memory tool owns the address space\n");
        return;
    }
    rsock_token **toks = calloc(MAX, sizeof *toks);
    REQUIRE(toks);
    struct rlimit lim;
    REQUIRE(getrlimit(RLIMIT_AS, &lim) == 0);
    /* Room for about 64 MiB more than is mapped now; the tokens need more. */
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    REQUIRE(f && fscanf(f, "%lu", &pages) == 1);
    fclose(f);
    struct rlimit small = lim;
    small.rlim_cur = pages * (unsigned long)sysconf(_SC_PAGESIZE) + (64UL << 20);
    REQUIRE(setrlimit(RLIMIT_AS, &small) == 0);
    int n = 0, err = 0;
    rsock_token *parent = rsock_token_new();
    while (n < MAX) {
        toks[n] = n % 2 ? rsock_token_new() : rsock_token_child(parent);
        if (!toks[n]) {
            err = errno;
            break;
        }
        n++;
    }
    for (int i = 0; i < n; i++) rsock_token_unref(toks[i]);
    rsock_token_unref(parent);
    REQUIRE(setrlimit(RLIMIT_AS, &lim) == 0);
    CHECK(n < MAX && err == ENOMEM);
    free(toks);
}
#endif

int main(void) {
    rt_watchdog(60);
    RUN(null_arguments);
    RUN(sticky_until_reset);
    RUN(references);
    RUN(children_and_grandchildren);
    RUN(idle_tokens_hold_no_descriptor);
    RUN(many_tokens_few_descriptors);
    RUN(strerror_is_static_and_total);
    RUN_POSIX(out_of_memory_is_enomem, "needs RLIMIT_AS and /proc to run out of memory");
    return rt_finish("test_tokens");
}
