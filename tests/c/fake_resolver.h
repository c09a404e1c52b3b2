/* A stand-in resolver for the name-resolution tests. A test program that
   includes this header replaces getaddrinfo and freeaddrinfo for the
   library, so no machine configuration is touched, and the counters show
   how many lookups run at once and that every result is freed. Names it
   answers itself:

     *.hang.test       never answers until release_hangs(), like a resolver
                       whose DNS server is silent; then 127.0.0.1
     *.slow.test       answers ::1 after 300 ms
     localhost         ::1 then 127.0.0.1, whatever the system says (Wine's
                       resolver, for one, gives 127.0.0.1 alone)
     v4first.test      127.0.0.1 then ::1
     three.test        ::1, 127.0.0.1, 127.0.0.2
     unreachable.test  ff02::1 (a multicast address: a TCP connect to it
                       fails at once with ENETUNREACH), then 127.0.0.1
     nxdomain.test     EAI_NONAME

   Everything else, and every lookup with AI_NUMERICHOST, goes to the
   system's getaddrinfo.

   How the library's calls get here:
   - POSIX: the test program defines getaddrinfo and freeaddrinfo; the
     library, linked statically, calls those, and they reach the C
     library's with dlsym(RTLD_NEXT).
   - Windows (MinGW-w64): the library imports them from ws2_32.dll, so the
     program is linked with GNU ld's --wrap=getaddrinfo and
     --wrap=freeaddrinfo (each test that includes this header says so in
     its "mingw-wrap:" line, which both builds read): the
     library's calls go to __wrap_getaddrinfo and __wrap_freeaddrinfo,
     defined here, which reach ws2_32's as __real_getaddrinfo and
     __real_freeaddrinfo. The test's own calls go through the import
     pointer, which --wrap does not touch: macros at the end of this
     header send them here too, so that results the test frees itself are
     counted like the library's.
   The rest is the same on both but for the locks (see fake_lock). */
#ifndef FAKE_RESOLVER_H
#define FAKE_RESOLVER_H

#include "rtest.h"

#include <stdatomic.h>

#ifdef _WIN32
#define FAKE_API WSAAPI
#define FAKE_GETADDRINFO __wrap_getaddrinfo
#define FAKE_FREEADDRINFO __wrap_freeaddrinfo
int WSAAPI __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                              struct addrinfo **res);
void WSAAPI __real_freeaddrinfo(struct addrinfo *ai);
int WSAAPI __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                              struct addrinfo **res);
void WSAAPI __wrap_freeaddrinfo(struct addrinfo *ai);

static int real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res) {
    return __real_getaddrinfo(node, service, hints, res);
}

static void real_freeaddrinfo(struct addrinfo *ai) { __real_freeaddrinfo(ai); }
#else
#include <dlfcn.h>
#include <netdb.h>

#define FAKE_API
#define FAKE_GETADDRINFO getaddrinfo
#define FAKE_FREEADDRINFO freeaddrinfo

static int real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res) {
    typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    return real(node, service, hints, res);
}

static void real_freeaddrinfo(struct addrinfo *ai) {
    typedef void (*fai_fn)(struct addrinfo *);
    fai_fn real = (fai_fn)dlsym(RTLD_NEXT, "freeaddrinfo");
    real(ai);
}
#endif

/* The stand-in's locks. On Windows, SRW locks and condition variables:
   they open no handle. winpthreads' would give each resolver thread (the
   library's, not created by winpthreads) handles of its own, open until
   the thread exits, which the tests' handle counts would see. */
#ifdef _WIN32
typedef SRWLOCK fake_lock;
typedef CONDITION_VARIABLE fake_cond;
#define FAKE_LOCK_INIT SRWLOCK_INIT
#define FAKE_COND_INIT CONDITION_VARIABLE_INIT
static void fake_lock_take(fake_lock *l) { AcquireSRWLockExclusive(l); }
static void fake_lock_give(fake_lock *l) { ReleaseSRWLockExclusive(l); }
static void fake_cond_wait(fake_cond *c, fake_lock *l) { SleepConditionVariableSRW(c, l, INFINITE, 0); }
static void fake_cond_broadcast(fake_cond *c) { WakeAllConditionVariable(c); }
#else
typedef pthread_mutex_t fake_lock;
typedef pthread_cond_t fake_cond;
#define FAKE_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
#define FAKE_COND_INIT PTHREAD_COND_INITIALIZER
static void fake_lock_take(fake_lock *l) { pthread_mutex_lock(l); }
static void fake_lock_give(fake_lock *l) { pthread_mutex_unlock(l); }
static void fake_cond_wait(fake_cond *c, fake_lock *l) { pthread_cond_wait(c, l); }
static void fake_cond_broadcast(fake_cond *c) { pthread_cond_broadcast(c); }
#endif

static fake_lock hang_lock = FAKE_LOCK_INIT;
static fake_cond hang_cv = FAKE_COND_INIT;
static int hangs_released;
static atomic_int running, max_running, results_made, results_freed;

static int ends_with(const char *s, const char *suffix) {
    size_t n = s ? strlen(s) : 0, k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The stand-in's own answers: each list is one allocation, which
   freeaddrinfo knows by its place in `answers` and frees itself. (The
   system's results for several addresses cannot just be chained into one
   list: glibc's freeaddrinfo frees node by node, but Wine's frees the
   first result's block alone, all its nodes being in that block.) */
struct answer {
    struct answer *next;
    struct answer_node {
        struct addrinfo ai; /* first: the list's head is the answer's address */
        struct sockaddr_storage addr;
    } nodes[];
};

static fake_lock answers_lock = FAKE_LOCK_INIT;
static struct answer *answers; /* given out, not yet freed */

/* Whether `ai` is one of the stand-in's answers; if so it is freed. */
static int free_answer(struct addrinfo *ai) {
    fake_lock_take(&answers_lock);
    struct answer **p = &answers;
    while (*p && &(*p)->nodes[0].ai != ai) p = &(*p)->next;
    struct answer *a = *p;
    if (a) *p = a->next;
    fake_lock_give(&answers_lock);
    free(a);
    return a != NULL;
}

/* The system's answers for a NULL-terminated list of numeric addresses,
   copied into one list of the stand-in's own. AI_NUMERICHOST and no
   AI_ADDRCONFIG: nothing but parsing happens. */
static int answer_all(const char *const *addrs, const char *service, const struct addrinfo *hints,
                      struct addrinfo **res) {
    struct addrinfo h, *parts[4] = {NULL};
    if (hints) h = *hints; else memset(&h, 0, sizeof h);
    h.ai_flags |= AI_NUMERICHOST;
    int rc = EAI_NONAME, n = 0, k = 0;
    for (; *addrs && k < 4; addrs++) {
        struct addrinfo *part = NULL;
        rc = real_getaddrinfo(*addrs, service, &h, &part);
        if (rc != 0) continue;
        parts[k++] = part;
        for (; part; part = part->ai_next) n++;
    }
    *res = NULL;
    if (n == 0) return rc;
    struct answer *a = calloc(1, sizeof *a + (size_t)n * sizeof a->nodes[0]);
    REQUIRE(a != NULL);
    int i = 0;
    for (int j = 0; j < k; j++) {
        for (struct addrinfo *ai = parts[j]; ai; ai = ai->ai_next, i++) {
            REQUIRE(ai->ai_addrlen <= sizeof a->nodes[i].addr);
            a->nodes[i].ai = *ai;
            a->nodes[i].ai.ai_canonname = NULL;
            memcpy(&a->nodes[i].addr, ai->ai_addr, ai->ai_addrlen);
            a->nodes[i].ai.ai_addr = (struct sockaddr *)&a->nodes[i].addr;
            a->nodes[i].ai.ai_next = i + 1 < n ? &a->nodes[i + 1].ai : NULL;
        }
        real_freeaddrinfo(parts[j]);
    }
    fake_lock_take(&answers_lock);
    a->next = answers;
    answers = a;
    fake_lock_give(&answers_lock);
    *res = &a->nodes[0].ai;
    return 0;
}

/* The thread of the latest lookup, to tell the caller's from a resolver's. */
#ifdef _WIN32
static atomic_ulong last_lookup_thread;
static unsigned long this_thread_id(void) { return GetCurrentThreadId(); }
#else
static _Atomic(pthread_t) last_lookup_thread;
static pthread_t this_thread_id(void) { return pthread_self(); }
#endif

int FAKE_API FAKE_GETADDRINFO(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res) {
    atomic_store(&last_lookup_thread, this_thread_id());
    int now = atomic_fetch_add(&running, 1) + 1;
    for (int m = atomic_load(&max_running); now > m && !atomic_compare_exchange_weak(&max_running, &m, now);) {
    }
    int rc;
    if (hints && (hints->ai_flags & AI_NUMERICHOST)) {
        rc = real_getaddrinfo(node, service, hints, res); /* no name service involved */
    } else if (ends_with(node, ".hang.test")) {
        fake_lock_take(&hang_lock);
        while (!hangs_released) fake_cond_wait(&hang_cv, &hang_lock);
        fake_lock_give(&hang_lock);
        static const char *const v4[] = {"127.0.0.1", NULL};
        rc = answer_all(v4, service, hints, res);
    } else if (ends_with(node, ".slow.test")) {
        sleep_ms(300);
        static const char *const v6[] = {"::1", NULL};
        rc = answer_all(v6, service, hints, res);
    } else if (node && strcmp(node, "localhost") == 0) {
        static const char *const both[] = {"::1", "127.0.0.1", NULL};
        rc = answer_all(both, service, hints, res);
    } else if (node && strcmp(node, "v4first.test") == 0) {
        static const char *const v4first[] = {"127.0.0.1", "::1", NULL};
        rc = answer_all(v4first, service, hints, res);
    } else if (node && strcmp(node, "three.test") == 0) {
        static const char *const three[] = {"::1", "127.0.0.1", "127.0.0.2", NULL};
        rc = answer_all(three, service, hints, res);
    } else if (node && strcmp(node, "unreachable.test") == 0) {
        static const char *const unreachable[] = {"ff02::1", "127.0.0.1", NULL};
        rc = answer_all(unreachable, service, hints, res);
    } else if (node && strcmp(node, "nxdomain.test") == 0) {
        rc = EAI_NONAME;
    } else {
        rc = real_getaddrinfo(node, service, hints, res);
    }
    if (rc == 0) atomic_fetch_add(&results_made, 1);
    atomic_fetch_sub(&running, 1);
    return rc;
}

void FAKE_API FAKE_FREEADDRINFO(struct addrinfo *ai) {
    if (ai) atomic_fetch_add(&results_freed, 1);
    if (!ai || !free_answer(ai)) real_freeaddrinfo(ai);
}

#ifdef _WIN32
/* The test's own calls: to the stand-in too (after every system header). */
#define getaddrinfo __wrap_getaddrinfo
#define freeaddrinfo __wrap_freeaddrinfo
#endif

static inline void release_hangs(void) {
    fake_lock_take(&hang_lock);
    hangs_released = 1;
    fake_cond_broadcast(&hang_cv);
    fake_lock_give(&hang_lock);
}

/* Waits (up to 5 s) until no lookup runs and every result is freed. */
static inline void wait_until_all_freed(void) {
    for (int i = 0; i < 500 && (atomic_load(&running) > 0 || atomic_load(&results_freed) != atomic_load(&results_made)); i++)
        sleep_ms(10);
}

#endif
