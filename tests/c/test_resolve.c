/* rsock_getaddrinfo: cancellable, bounded by a timeout, on a bounded pool
   of resolver threads, freeing abandoned results. The lookups go to the
   stand-in resolver of fake_resolver.h. */
#include "fake_resolver.h"

/* What the MinGW link wraps (GNU ld --wrap, see fake_resolver.h); the
   Makefile and tests/c/CMakeLists.txt read the next line. */
/* mingw-wrap: getaddrinfo freeaddrinfo */

#ifdef _WIN32
/* Bytes in use on the process heap, where the library's allocations are
   (Rust's allocator takes its memory there). */
static long long heap_in_use(void) {
    HANDLE heap = GetProcessHeap();
    PROCESS_HEAP_ENTRY e;
    long long used = 0;
    e.lpData = NULL;
    REQUIRE(HeapLock(heap));
    while (HeapWalk(heap, &e))
        if (e.wFlags & PROCESS_HEAP_ENTRY_BUSY) used += (long long)e.cbData;
    DWORD end = GetLastError();
    HeapUnlock(heap);
    REQUIRE(end == ERROR_NO_MORE_ITEMS);
    return used;
}
#else
#include <sys/wait.h>
#ifdef __GLIBC__
#include <malloc.h>

/* Bytes in use on the heap. */
static long long heap_in_use(void) { return (long long)mallinfo2().uordblks; }
#else
/* No heap statistics (musl): the check that uses it passes trivially
   there; valgrind and the sanitizers check leaks with glibc. */
static long long heap_in_use(void) { return 0; }
#endif
#endif

static void resolves_like_getaddrinfo(void) {
    struct addrinfo hints, *res = (struct addrinfo *)1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    CHECK(rsock_getaddrinfo(NULL, "127.0.0.1", "8080", &hints, &res, 1000) == 0);
    REQUIRE(res != NULL);
    struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
    CHECK(res->ai_family == AF_INET && ntohs(sin->sin_port) == 8080 &&
          sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    freeaddrinfo(res);
    /* getaddrinfo's own failures come back as they are, *res NULL. */
    res = (struct addrinfo *)1;
    CHECK(rsock_getaddrinfo(NULL, "not a number", NULL, &hints, &res, 1000) == EAI_NONAME);
    CHECK(res == NULL);
    CHECK(rsock_getaddrinfo(NULL, NULL, NULL, NULL, &res, 1000) == EAI_NONAME);
    /* Bad arguments. */
    CHECK(rsock_getaddrinfo(NULL, "127.0.0.1", NULL, NULL, NULL, 1000) == RT_EAI_SYSTEM &&
          rsock_last_error() == RT_EINVAL);
    CHECK(rsock_getaddrinfo(NULL, "127.0.0.1", NULL, NULL, &res, -2) == RT_EAI_SYSTEM &&
          rsock_last_error() == RT_EINVAL);
}

/* A lookup that needs no name service runs on the calling thread: an
   address literal and a port number, with or without AI_NUMERICHOST; a
   name, or a canonical name asked for, goes to a resolver thread. */
static void numeric_lookups_stay_on_the_caller(void) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    const char *literals[] = {"127.0.0.1", "::1", "10.1.2.3"};
    for (int i = 0; i < 3; i++) {
        CHECK(rsock_getaddrinfo(NULL, literals[i], "80", &hints, &res, 1000) == 0 && res);
        CHECK(atomic_load(&last_lookup_thread) == this_thread_id());
        if (res) freeaddrinfo(res);
        res = NULL;
    }
    CHECK(rsock_getaddrinfo(NULL, "127.0.0.1", NULL, &hints, &res, 1000) == 0 && res);
    CHECK(atomic_load(&last_lookup_thread) == this_thread_id());
    if (res) freeaddrinfo(res);
    res = NULL;
    /* A service name, a host name, AI_CANONNAME: the resolver's thread. */
    CHECK(rsock_getaddrinfo(NULL, "127.0.0.1", "http", &hints, &res, 5000) == 0 && res);
    CHECK(atomic_load(&last_lookup_thread) != this_thread_id());
    if (res) freeaddrinfo(res);
    res = NULL;
    CHECK(rsock_getaddrinfo(NULL, "v4first.test", "80", &hints, &res, 5000) == 0 && res);
    CHECK(atomic_load(&last_lookup_thread) != this_thread_id());
    if (res) freeaddrinfo(res);
    res = NULL;
    hints.ai_flags = AI_CANONNAME;
    CHECK(rsock_getaddrinfo(NULL, "127.0.0.1", "80", &hints, &res, 5000) == 0 && res);
    CHECK(atomic_load(&last_lookup_thread) != this_thread_id());
    if (res) freeaddrinfo(res);
}

/* Already cancelled: fails before any lookup starts. */
static void cancelled_token_fails_before_the_lookup(void) {
    rsock_token *t = rsock_token_new();
    struct addrinfo *res = NULL;
    rsock_cancel(t);
    CHECK(rsock_getaddrinfo(t, "127.0.0.1", NULL, NULL, &res, RSOCK_INFINITE) == RT_EAI_SYSTEM &&
          rsock_last_error() == RSOCK_ECANCELED);
    rsock_token_unref(t);
}

static void timeout_and_cancel_abandon_the_lookup(void) {
    struct addrinfo *res = (struct addrinfo *)1;
    int fds = fd_count();
    double t0 = now_ms();
    CHECK(rsock_getaddrinfo(NULL, "a.hang.test", "80", NULL, &res, 100) == RT_EAI_SYSTEM &&
          rsock_last_error() == RSOCK_ETIMEDOUT);
    CHECK(now_ms() - t0 >= 100 && now_ms() - t0 < 5000);
    CHECK(res == NULL);
    CHECK(fd_count() == fds); /* the hung lookup goes on, holding no descriptor */

    rsock_token *t = rsock_token_new();
    struct canceller c;
    start_cancel(&c, t, 50);
    CHECK(rsock_getaddrinfo(t, "b.hang.test", "80", NULL, &res, RSOCK_INFINITE) == RT_EAI_SYSTEM &&
          rsock_last_error() == RSOCK_ECANCELED);
    join_cancel(&c);
    rsock_token_unref(t);
}

struct lookup {
    pthread_t th;
    int rc, err;
};

static void *hanging_lookup(void *arg) {
    struct lookup *l = arg;
    struct addrinfo *res = NULL;
    l->rc = rsock_getaddrinfo(NULL, "c.hang.test", "80", NULL, &res, 200);
    l->err = rsock_last_error();
    if (res) freeaddrinfo(res);
    return NULL;
}

/* Twelve callers at once: at most 4 lookups run, every caller returns on
   time, and once the resolver answers every abandoned result is freed. */
static void pool_is_bounded_and_frees_abandoned_results(void) {
    enum { N = 12 };
    struct lookup l[N];
    for (int i = 0; i < N; i++) pthread_create(&l[i].th, NULL, hanging_lookup, &l[i]);
    for (int i = 0; i < N; i++) {
        pthread_join(l[i].th, NULL);
        CHECK(l[i].rc == RT_EAI_SYSTEM && l[i].err == RSOCK_ETIMEDOUT);
    }
    CHECK(atomic_load(&max_running) >= 1 && atomic_load(&max_running) <= 4);
    printf("     at most %d lookups ran at once\n", atomic_load(&max_running));
    /* Lookups that give up while queued behind them leave nothing queued:
       2000 of them do not add up in memory. */
    long long before = heap_in_use();
    int gave_up = 0;
    for (int i = 0; i < 2000; i++) {
        struct addrinfo *r = NULL;
        gave_up += rsock_getaddrinfo(NULL, "g.hang.test", "80", NULL, &r, 0) == RT_EAI_SYSTEM;
    }
    CHECK(gave_up == 2000);
    long long grew = heap_in_use() - before;
    CHECK(grew < 64 * 1024);
    printf("     2000 lookups abandoned in the queue: heap grew %lld bytes\n", grew);
    /* Every resolver thread is stuck, yet a lookup that cannot block runs
       at once, on the caller's thread. */
    struct addrinfo hints, *num = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    CHECK(rsock_getaddrinfo(NULL, "::1", "80", &hints, &num, 100) == 0 && num != NULL);
    if (num) freeaddrinfo(num);
    int fds = fd_count();
    release_hangs();
    wait_until_all_freed();
    CHECK(atomic_load(&running) == 0);
    CHECK(atomic_load(&results_made) > 0);
    CHECK(atomic_load(&results_freed) == atomic_load(&results_made));
    CHECK(fd_count() == fds);
    /* And the pool still works. */
    struct addrinfo *res = NULL;
    CHECK(rsock_getaddrinfo(NULL, "d.hang.test", "80", NULL, &res, 5000) == 0 && res != NULL);
    freeaddrinfo(res);
}

#ifndef _WIN32 /* fork() */
static void *slow_lookup(void *arg) {
    struct addrinfo *res = NULL;
    *(int *)arg = rsock_getaddrinfo(NULL, "f.slow.test", "1", NULL, &res, 5000);
    if (res) freeaddrinfo(res);
    return NULL;
}

/* fork() while every resolver thread is busy: the child, which has none of
   them, must start a pool of its own (the inherited one would look full);
   the parent's lookups complete. */
static void works_after_fork(void) {
    enum { N = 4 };
    int parent_rc[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        parent_rc[i] = -1;
        REQUIRE(pthread_create(&th[i], NULL, slow_lookup, &parent_rc[i]) == 0);
    }
    for (int i = 0; i < 1000 && atomic_load(&running) < N; i++) sleep_ms(1);
    CHECK(atomic_load(&running) == N);
    /* The child reports through a pipe: under valgrind its exit status
       also counts the per-thread memory of the parent's other threads,
       which the child inherits without the threads. */
    int report[2];
    REQUIRE(pipe(report) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct addrinfo *r = NULL;
        int rc = rsock_getaddrinfo(NULL, "localhost", "2", NULL, &r, 2000);
        if (rc != 0) fprintf(stderr, "child: rsock_getaddrinfo returned %d, error %d\n", rc, rsock_last_error());
        char ok = rc == 0 && r ? 'y' : 'n';
        if (write(report[1], &ok, 1) != 1) _exit(1);
        _exit(0);
    }
    close(report[1]);
    char ok = 0;
    CHECK(read(report[0], &ok, 1) == 1 && ok == 'y');
    close(report[0]);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK(parent_rc[i] == 0);
    }
}
#endif /* fork() */

int main(void) {
    rt_watchdog(60);
    RUN(resolves_like_getaddrinfo);
    RUN(numeric_lookups_stay_on_the_caller);
    RUN(cancelled_token_fails_before_the_lookup);
    RUN(timeout_and_cancel_abandon_the_lookup);
    RUN(pool_is_bounded_and_frees_abandoned_results);
    RUN_POSIX(works_after_fork, "no fork() on Windows");
    release_hangs();
    return rt_finish("test_resolve");
}
