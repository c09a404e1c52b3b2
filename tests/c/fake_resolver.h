/* A stand-in resolver for the name-resolution tests. A test program that
   includes this header defines getaddrinfo and freeaddrinfo itself, so the
   library (linked statically) calls these; no machine configuration is
   touched, and the counters show how many lookups run at once and that
   every result is freed. Names it answers itself:

     *.hang.test    never answers until release_hangs(), like a resolver
                    whose DNS server is silent; then 127.0.0.1
     *.slow.test    answers ::1 after 300 ms
     localhost      ::1 then 127.0.0.1, whatever /etc/hosts says
     v4first.test   127.0.0.1 then ::1
     three.test     ::1, 127.0.0.1, 127.0.0.2
     nxdomain.test  EAI_NONAME

   Everything else, and every lookup with AI_NUMERICHOST, goes to the
   system's getaddrinfo.

   On Windows the library imports getaddrinfo from ws2_32.dll, so a
   definition here would never be called: there is no stand-in, and the
   tests that need one are skipped. */
#ifndef FAKE_RESOLVER_H
#define FAKE_RESOLVER_H

#include "rtest.h"

#ifndef _WIN32
#include <dlfcn.h>
#include <netdb.h>
#include <stdatomic.h>

static pthread_mutex_t hang_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hang_cv = PTHREAD_COND_INITIALIZER;
static int hangs_released;
static atomic_int running, max_running, results_made, results_freed;

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
typedef void (*fai_fn)(struct addrinfo *);

static int ends_with(const char *s, const char *suffix) {
    size_t n = s ? strlen(s) : 0, k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The system's answers for a NULL-terminated list of numeric addresses,
   chained (glibc frees a list node by node, so one freeaddrinfo frees all).
   AI_NUMERICHOST and no AI_ADDRCONFIG: nothing but parsing happens. */
static int answer_all(gai_fn real, const char *const *addrs, const char *service,
                      const struct addrinfo *hints, struct addrinfo **res) {
    struct addrinfo h, *head = NULL, **tail = &head;
    if (hints) h = *hints; else memset(&h, 0, sizeof h);
    h.ai_flags |= AI_NUMERICHOST;
    int rc = EAI_NONAME;
    for (; *addrs; addrs++) {
        struct addrinfo *part = NULL;
        rc = real(*addrs, service, &h, &part);
        if (rc != 0) continue;
        *tail = part;
        while (*tail) tail = &(*tail)->ai_next;
    }
    *res = head;
    return head ? 0 : rc;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    int now = atomic_fetch_add(&running, 1) + 1;
    for (int m = atomic_load(&max_running); now > m && !atomic_compare_exchange_weak(&max_running, &m, now);) {
    }
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    int rc;
    if (hints && (hints->ai_flags & AI_NUMERICHOST)) {
        rc = real(node, service, hints, res); /* no name service involved */
    } else if (ends_with(node, ".hang.test")) {
        pthread_mutex_lock(&hang_lock);
        while (!hangs_released) pthread_cond_wait(&hang_cv, &hang_lock);
        pthread_mutex_unlock(&hang_lock);
        static const char *const v4[] = {"127.0.0.1", NULL};
        rc = answer_all(real, v4, service, hints, res);
    } else if (ends_with(node, ".slow.test")) {
        sleep_ms(300);
        static const char *const v6[] = {"::1", NULL};
        rc = answer_all(real, v6, service, hints, res);
    } else if (node && strcmp(node, "localhost") == 0) {
        static const char *const both[] = {"::1", "127.0.0.1", NULL};
        rc = answer_all(real, both, service, hints, res);
    } else if (node && strcmp(node, "v4first.test") == 0) {
        static const char *const v4first[] = {"127.0.0.1", "::1", NULL};
        rc = answer_all(real, v4first, service, hints, res);
    } else if (node && strcmp(node, "three.test") == 0) {
        static const char *const three[] = {"::1", "127.0.0.1", "127.0.0.2", NULL};
        rc = answer_all(real, three, service, hints, res);
    } else if (node && strcmp(node, "nxdomain.test") == 0) {
        rc = EAI_NONAME;
    } else {
        rc = real(node, service, hints, res);
    }
    if (rc == 0) atomic_fetch_add(&results_made, 1);
    atomic_fetch_sub(&running, 1);
    return rc;
}

void freeaddrinfo(struct addrinfo *ai) {
    if (ai) atomic_fetch_add(&results_freed, 1);
    fai_fn real = (fai_fn)dlsym(RTLD_NEXT, "freeaddrinfo");
    real(ai);
}

static void release_hangs(void) {
    pthread_mutex_lock(&hang_lock);
    hangs_released = 1;
    pthread_cond_broadcast(&hang_cv);
    pthread_mutex_unlock(&hang_lock);
}

/* Waits (up to 5 s) until no lookup runs and every result is freed. */
static void wait_until_all_freed(void) {
    for (int i = 0; i < 500 && (atomic_load(&running) > 0 || atomic_load(&results_freed) != atomic_load(&results_made)); i++)
        sleep_ms(10);
}
#endif

#endif
