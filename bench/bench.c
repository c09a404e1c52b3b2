/* rsock benchmark: rsock against a raw blocking call, a hand-written
   poll([socket, eventfd]) loop and (when built with GLib) GSocket with a
   GCancellable, all in one process. Variants run alternately in blocks, so
   that drift of the machine hits all of them alike; each result is the
   median and 99th percentile over all blocks, and the ratio of medians to
   the scenario's baseline. Ping-pong and cancel-all also give the paired
   ratio: the median over blocks of the variant's block median over the
   baseline's in the same block (0 where a scenario has no blocks).

     rsock_bench [--quick] [--placement same|cross|any] [--json FILE] [--svg FILE]
                 [--only pingpong|tls|bulk|cancel|cancelall|tokens]

   Scenarios:
     pingpong  round trips of 1 B and 1 KiB over loopback TCP and AF_UNIX;
               baseline: raw blocking recv/send
     tls       (built with OpenSSL) round trips of 1 KiB records over
               loopback TCP, OpenSSL on both sides; baseline: OpenSSL's socket
               BIO; against it: the rsock BIO (include/rsock_openssl.h)
     bulk      1 GiB in 64 KiB buffers over TCP and AF_UNIX; baseline: raw
     cancel    a thread blocked on an idle socket, woken by another thread's
               cancel (always across CPUs); baseline: a condition-variable
               (futex) wake between the same threads
     cancelall 1000 threads blocked on one token, one cancel, until the last
               returns, and each thread's CPU time per wait; baseline: one
               shared eventfd
     tokens    create+cancel+destroy time, bytes and descriptors per idle
               token, descriptors while a call waits */
#define _GNU_SOURCE
#include "rsock.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <dirent.h>

#ifdef HAVE_GLIB
#include <gio/gio.h>
#endif
#ifdef HAVE_OPENSSL
#include "rsock_openssl.h"
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "rsock_bench: " __VA_ARGS__);                                              \
        fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));                              \
        exit(1);                                                                                   \
    } while (0)
#define OK(x)                                                                                      \
    do {                                                                                           \
        if (!(x)) DIE("%s failed at line %d", #x, __LINE__);                                       \
    } while (0)

/* ---- options, clock, placement ---------------------------------------- */

enum placement { SAME, CROSS, ANY };
static const char *placement_name[] = {"same", "cross", "any"};
static struct {
    int quick;
    enum placement place;
    const char *json, *svg, *only;
} opt = {0, SAME, "bench-results.json", NULL, NULL};

/* Whether to run a scenario group (--only picks one). */
static int wanted(const char *group) { return !opt.only || !strcmp(opt.only, group); }
static int ncpu;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Pins the calling thread: role 0 and 1 share CPU 0 (same), take CPUs 0 and
   1 (cross), or float (any). */
static void pin_as(enum placement p, int role) {
    if (p == ANY) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p == CROSS && ncpu > 1 ? role : 0, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void unpin(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < ncpu; i++) CPU_SET(i, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void sleep_us(double us) {
    struct timespec ts = {(time_t)(us / 1e6), (long)((us - (time_t)(us / 1e6) * 1e6) * 1e3)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    OK(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;
}

/* ---- results ------------------------------------------------------------ */

struct series {
    char scenario[64];
    const char *variant;
    const char *unit;
    int baseline; /* the scenario's reference */
    int lower_is_better;
    double *v;
    size_t n, cap;
    double median, p99;
    /* Per block (ping-pong): the block's median, for paired ratios. */
    double block[64];
    int nblocks;
    size_t block_start;
};

static struct series results[128];
static int nresults;

static struct series *series_for(const char *scenario, const char *variant, const char *unit, int baseline,
                                 int lower_is_better) {
    for (int i = 0; i < nresults; i++)
        if (!strcmp(results[i].scenario, scenario) && !strcmp(results[i].variant, variant)) return &results[i];
    OK(nresults < (int)(sizeof results / sizeof results[0]));
    struct series *s = &results[nresults++];
    memset(s, 0, sizeof *s);
    snprintf(s->scenario, sizeof s->scenario, "%s", scenario);
    s->variant = variant;
    s->unit = unit;
    s->baseline = baseline;
    s->lower_is_better = lower_is_better;
    return s;
}

static void add(struct series *s, double x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        OK(s->v);
    }
    s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *x, size_t n) {
    qsort(x, n, sizeof *x, cmp_double);
    return n ? x[n / 2] : 0;
}

/* Ends a block of samples: keeps its median (samples stay unsorted until
   finish_series). */
static void end_block(struct series *s) {
    size_t n = s->n - s->block_start;
    if (n == 0 || s->nblocks == (int)(sizeof s->block / sizeof s->block[0])) return;
    double *x = malloc(n * sizeof *x);
    OK(x);
    memcpy(x, s->v + s->block_start, n * sizeof *x);
    s->block[s->nblocks++] = median_of(x, n);
    free(x);
    s->block_start = s->n;
}

/* The paired ratio of s to r: the median over blocks of s's block median
   over r's in the same block, which drift of the machine between blocks
   does not move; 0 without blocks. */
static double paired(const struct series *s, const struct series *r) {
    if (!r || s->nblocks == 0 || s->nblocks != r->nblocks) return 0;
    double q[64];
    for (int b = 0; b < s->nblocks; b++) q[b] = s->block[b] / r->block[b];
    return median_of(q, (size_t)s->nblocks);
}

static double quantile(const struct series *s, double q) {
    if (s->n == 0) return 0;
    size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static void finish_series(void) {
    for (int i = 0; i < nresults; i++) {
        struct series *s = &results[i];
        qsort(s->v, s->n, sizeof *s->v, cmp_double);
        s->median = quantile(s, 0.5);
        s->p99 = quantile(s, 0.99);
    }
}

static const struct series *baseline_of(const struct series *s) {
    for (int i = 0; i < nresults; i++)
        if (!strcmp(results[i].scenario, s->scenario) && results[i].baseline) return &results[i];
    return NULL;
}

static const struct series *find_series(const char *scenario, const char *variant) {
    for (int i = 0; i < nresults; i++)
        if (!strcmp(results[i].scenario, scenario) && !strcmp(results[i].variant, variant)) return &results[i];
    return NULL;
}

/* ---- endpoints: one side of a connection, per variant -------------------- */

/* V_RSOCK_DL: rsock with a deadline on the token (far off: it never ends a
   call, but every wait reads it and the clock). */
/* V_RSOCK_TO: rsock with a finite (60 s) timeout on each call, the same
   timed wait in the kernel as a deadline makes; V_POLL_TO: the hand-written
   loop with that timeout, what a timed poll costs by itself. V_RSOCK_CPP: rsock through
   the C++ header (bench/bench_cpp.cpp). */
/* V_RSOCK_PLAIN: rsock with RSOCK_SOCKET_TIMEOUT (the redirect mode's
   timeout) on a blocking socket with no socket timeout set. */
/* V_RSOCK_SIG, V_RSOCK_SIG_PLAIN: rsock and rsock with RSOCK_SOCKET_TIMEOUT
   on the signal-wake fast path (rsock_use_signal_wake), which is on only
   while these run. */
enum variant {
    V_RAW,
    V_RAW_MASK,
    V_POLL,
    V_POLL_TO,
    V_POLL_REG,
    V_RSOCK,
    V_RSOCK_DL,
    V_RSOCK_TO,
    V_RSOCK_PLAIN,
    V_RSOCK_CPP,
    V_RSOCK_SIG,
    V_RSOCK_SIG_PLAIN,
    V_GLIB,
    NV
};
static const char *vname[NV] = {"raw blocking",
                                "raw blocking + mask query",
                                "poll+eventfd",
                                "poll+eventfd, 60 s timeout",
                                "poll+eventfd + token check + registration",
                                "rsock",
                                "rsock, deadline set",
                                "rsock, 60 s timeout",
                                "rsock, socket timeout",
                                "rsock C++",
                                "rsock, signal wake",
                                "rsock, socket timeout, signal wake",
                                "GLib GCancellable"};
/* The fast path's signal in the benchmark. */
#define FAST_SIGNO (SIGRTMIN + 5)

void *bench_cpp_token(rsock_token *tok);
void bench_cpp_token_free(void *t);
ssize_t bench_cpp_recv(const void *t, int fd, void *buf, size_t len);
ssize_t bench_cpp_send(const void *t, int fd, const void *buf, size_t len);
static int nvariants(void) {
#ifdef HAVE_GLIB
    return NV;
#else
    return V_GLIB;
#endif
}

/* V_POLL_REG: the hand-written loop plus only what a cancellable wait
   needs beyond it: a token check, and one registration (a waiter published
   in a slot by compare-and-swap before the check, released after the
   poll), as a cancel would find it. The floor for rsock's poll path. */
struct min_token {
    atomic_long cancels;
    _Atomic(void *) slot[8];
};

static _Thread_local char min_waiter;

/* Publishes the calling thread in a free slot; its index. */
static int min_register(struct min_token *t) {
    for (int i = 0;; i = (i + 1) % 8) {
        void *free_slot = NULL;
        if (atomic_compare_exchange_strong(&t->slot[i], &free_slot, &min_waiter)) return i;
    }
}

struct endpoint {
    enum variant v;
    int fd, efd;
    struct min_token mt;
    rsock_token *tok;
    void *cpp_tok; /* an rsock::token sharing tok (V_RSOCK_CPP) */
#ifdef HAVE_GLIB
    GSocket *gs;
    GCancellable *gc;
#endif
};

static void ep_init(struct endpoint *e, enum variant v, int fd) {
    memset(e, 0, sizeof *e);
    e->v = v;
    e->fd = fd;
    e->efd = -1;
    if (v == V_POLL || v == V_POLL_TO || v == V_POLL_REG) OK((e->efd = eventfd(0, EFD_CLOEXEC)) >= 0);
    if (v == V_RSOCK || v == V_RSOCK_DL || v == V_RSOCK_TO || v == V_RSOCK_PLAIN || v == V_RSOCK_CPP ||
        v == V_RSOCK_SIG || v == V_RSOCK_SIG_PLAIN)
        OK(e->tok = rsock_token_new());
    OK(rsock_use_signal_wake(v == V_RSOCK_SIG || v == V_RSOCK_SIG_PLAIN ? FAST_SIGNO : 0) == 0);
    if (v == V_RSOCK_CPP) OK(e->cpp_tok = bench_cpp_token(e->tok));
    if (v == V_RSOCK_DL) OK(rsock_token_set_deadline(e->tok, 1 << 30) == 0);
#ifdef HAVE_GLIB
    if (v == V_GLIB) {
        GError *err = NULL;
        e->gs = g_socket_new_from_fd(fd, &err);
        OK(e->gs);
        e->gc = g_cancellable_new();
    }
#endif
}

static void ep_free(struct endpoint *e) {
    if (e->efd >= 0) close(e->efd);
    if (e->cpp_tok) bench_cpp_token_free(e->cpp_tok);
    if (e->tok) rsock_token_unref(e->tok);
#ifdef HAVE_GLIB
    if (e->gs) {
        g_object_unref(e->gs); /* closes the descriptor */
        g_object_unref(e->gc);
        return;
    }
#endif
    close(e->fd);
}

/* One receive of up to `len` bytes; -1 if cancelled. */
static ssize_t ep_recv(struct endpoint *e, void *buf, size_t len) {
    switch (e->v) {
    case V_RAW:
        return recv(e->fd, buf, len, 0);
    case V_RAW_MASK: {
        /* What the fast path checks before each wait: one query of the
           thread's signal mask (rt_sigprocmask, the kernel's 8-byte set). */
        uint64_t mask;
        if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &mask, sizeof mask) != 0) return -1;
        return recv(e->fd, buf, len, 0);
    }
    case V_POLL:
    case V_POLL_TO:
    case V_POLL_REG:
        for (;;) {
            struct pollfd p[2] = {{e->fd, POLLIN, 0}, {e->efd, POLLIN, 0}};
            int slot = -1;
            if (e->v == V_POLL_REG) {
                slot = min_register(&e->mt);
                if (atomic_load(&e->mt.cancels) != 0) {
                    atomic_store(&e->mt.slot[slot], NULL);
                    return -1;
                }
            }
            int r = poll(p, 2, e->v == V_POLL_TO ? 60000 : -1);
            if (slot >= 0) atomic_store(&e->mt.slot[slot], NULL);
            if (r < 0) {
                if (errno == EINTR) continue;
                return -1;
            }
            if (p[1].revents) return -1;
            ssize_t n = recv(e->fd, buf, len, MSG_DONTWAIT);
            if (n >= 0 || (errno != EAGAIN && errno != EINTR)) return n;
        }
    case V_RSOCK:
    case V_RSOCK_DL:
    case V_RSOCK_SIG:
        return rsock_recv(e->tok, e->fd, buf, len, 0, RSOCK_INFINITE);
    case V_RSOCK_TO:
        return rsock_recv(e->tok, e->fd, buf, len, 0, 60000);
    case V_RSOCK_PLAIN:
    case V_RSOCK_SIG_PLAIN:
        return rsock_recv(e->tok, e->fd, buf, len, 0, RSOCK_SOCKET_TIMEOUT);
    case V_RSOCK_CPP:
        return bench_cpp_recv(e->cpp_tok, e->fd, buf, len);
#ifdef HAVE_GLIB
    case V_GLIB: {
        GError *err = NULL;
        gssize n = g_socket_receive(e->gs, buf, len, e->gc, &err);
        if (err) g_error_free(err);
        return n;
    }
#endif
    default:
        return -1;
    }
}

/* Sends all `len` bytes; -1 on failure. */
static ssize_t ep_send(struct endpoint *e, const void *buf, size_t len) {
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = -1;
        switch (e->v) {
        case V_RAW:
        case V_RAW_MASK:
            n = send(e->fd, p + done, len - done, MSG_NOSIGNAL);
            break;
        case V_POLL:
        case V_POLL_TO:
        case V_POLL_REG:
            if (e->v == V_POLL_REG && atomic_load(&e->mt.cancels) != 0) return -1;
            n = send(e->fd, p + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EAGAIN) {
                struct pollfd q[2] = {{e->fd, POLLOUT, 0}, {e->efd, POLLIN, 0}};
                if (poll(q, 2, e->v == V_POLL_TO ? 60000 : -1) < 0 && errno != EINTR) return -1;
                if (q[1].revents) return -1;
                continue;
            }
            break;
        case V_RSOCK:
        case V_RSOCK_DL:
        case V_RSOCK_SIG:
            n = rsock_send(e->tok, e->fd, p + done, len - done, MSG_NOSIGNAL, RSOCK_INFINITE);
            break;
        case V_RSOCK_TO:
            n = rsock_send(e->tok, e->fd, p + done, len - done, MSG_NOSIGNAL, 60000);
            break;
        case V_RSOCK_PLAIN:
        case V_RSOCK_SIG_PLAIN:
            n = rsock_send(e->tok, e->fd, p + done, len - done, MSG_NOSIGNAL, RSOCK_SOCKET_TIMEOUT);
            break;
        case V_RSOCK_CPP:
            n = bench_cpp_send(e->cpp_tok, e->fd, p + done, len - done);
            break;
#ifdef HAVE_GLIB
        case V_GLIB: {
            GError *err = NULL;
            n = g_socket_send(e->gs, p + done, len - done, e->gc, &err);
            if (err) g_error_free(err);
            break;
        }
#endif
        default:
            break;
        }
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return (ssize_t)len;
}

static int recv_all(struct endpoint *e, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = ep_recv(e, (char *)buf + got, len - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

static void tcp_pair(int sv[2]) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    OK(l >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    OK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0);
    OK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
    sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    OK(sv[0] >= 0 && connect(sv[0], (struct sockaddr *)&a, sizeof a) == 0);
    OK((sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
    close(l);
    int one = 1;
    setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void make_pair(int tcp, int sv[2]) {
    if (tcp) tcp_pair(sv);
    else OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
}

/* ---- ping-pong ----------------------------------------------------------- */

struct peer {
    struct endpoint ep;
    size_t size;
    long count;
    pthread_barrier_t *start;
};

static void *echo_peer(void *arg) {
    struct peer *p = arg;
    pin_as(opt.place, 1);
    char buf[1024];
    pthread_barrier_wait(p->start);
    for (long i = 0; i < p->count; i++) {
        if (recv_all(&p->ep, buf, p->size) != 0 || ep_send(&p->ep, buf, p->size) < 0) DIE("echo failed");
    }
    return NULL;
}

static void pingpong(int tcp, size_t size) {
    int blocks = opt.quick ? 2 : 24;
    long rounds = opt.quick ? 300 : 1500, warm = rounds / 10;
    char name[48];
    snprintf(name, sizeof name, "pingpong %s %s", tcp ? "tcp" : "unix", size == 1 ? "1B" : "1KiB");
    char buf[1024] = {0};
    pin_as(opt.place, 0);
    for (int b = 0; b < blocks; b++) {
        for (int k = 0; k < nvariants(); k++) {
            enum variant v = (enum variant)((b + k) % nvariants());
            struct series *s = series_for(name, vname[v], "us", v == V_RAW, 1);
            int sv[2];
            make_pair(tcp, sv);
            pthread_barrier_t start;
            pthread_barrier_init(&start, NULL, 2);
            struct peer p = {.size = size, .count = rounds, .start = &start};
            ep_init(&p.ep, v, sv[1]);
            struct endpoint me;
            ep_init(&me, v, sv[0]);
            pthread_t th;
            OK(pthread_create(&th, NULL, echo_peer, &p) == 0);
            pthread_barrier_wait(&start);
            for (long i = 0; i < rounds; i++) {
                double t0 = now_ns();
                if (ep_send(&me, buf, size) < 0 || recv_all(&me, buf, size) != 0) DIE("ping failed");
                if (i >= warm) add(s, (now_ns() - t0) / 1e3);
            }
            end_block(s);
            pthread_join(th, NULL);
            pthread_barrier_destroy(&start);
            ep_free(&me);
            ep_free(&p.ep);
        }
    }
    unpin();
}

/* ---- TLS ping-pong: OpenSSL's socket BIO against the rsock BIO ----------- */

#ifdef HAVE_OPENSSL
static SSL_CTX *tls_sctx, *tls_cctx;

/* A server context with an EC P-256 key and a self-signed certificate, and
   a client context that does not verify it (not what is measured). */
static void tls_setup(void) {
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    OK(kc && EVP_PKEY_keygen_init(kc) == 1);
    OK(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) == 1);
    OK(EVP_PKEY_keygen(kc, &key) == 1);
    EVP_PKEY_CTX_free(kc);
    X509 *cert = X509_new();
    OK(cert && X509_set_version(cert, 2) == 1);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    OK(X509_set_pubkey(cert, key) == 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"bench", -1, -1,
                               0);
    OK(X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1);
    OK(X509_sign(cert, key, EVP_sha256()) > 0);
    OK(tls_sctx = SSL_CTX_new(TLS_server_method()));
    OK(SSL_CTX_use_certificate(tls_sctx, cert) == 1 && SSL_CTX_use_PrivateKey(tls_sctx, key) == 1);
    SSL_CTX_set_num_tickets(tls_sctx, 0);
    OK(tls_cctx = SSL_CTX_new(TLS_client_method()));
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* One side: OpenSSL's socket BIO, or the rsock BIO with its own token. */
static SSL *tls_side(int server, int fd, int rsock_bio, rsock_token **tok) {
    SSL *ssl = SSL_new(server ? tls_sctx : tls_cctx);
    OK(ssl);
    BIO *bio;
    *tok = NULL;
    if (rsock_bio) {
        OK(*tok = rsock_token_new());
        bio = rsock_bio_new(*tok, fd, BIO_CLOSE, RSOCK_INFINITE);
    } else {
        bio = BIO_new_socket(fd, BIO_CLOSE);
    }
    OK(bio);
    SSL_set_bio(ssl, bio, bio);
    return ssl;
}

static int tls_read_all(SSL *ssl, char *buf, int len) {
    for (int got = 0; got < len;) {
        int n = SSL_read(ssl, buf + got, len - got);
        if (n <= 0) return -1;
        got += n;
    }
    return 0;
}

struct tls_peer {
    SSL *ssl;
    long count;
    pthread_barrier_t *start;
};

static void *tls_echo_peer(void *arg) {
    struct tls_peer *p = arg;
    pin_as(opt.place, 1);
    char buf[1024];
    if (SSL_accept(p->ssl) != 1) DIE("TLS accept failed");
    pthread_barrier_wait(p->start);
    for (long i = 0; i < p->count; i++)
        if (tls_read_all(p->ssl, buf, sizeof buf) != 0 || SSL_write(p->ssl, buf, sizeof buf) != sizeof buf)
            DIE("TLS echo failed");
    return NULL;
}

static void tls_pingpong(void) {
    OK(rsock_use_signal_wake(0) == 0); /* the ping-pong may have left it on */
    static const char *names[2] = {"socket BIO", "rsock BIO"};
    int blocks = opt.quick ? 2 : 24;
    long rounds = opt.quick ? 300 : 1500, warm = rounds / 10;
    char buf[1024] = {0};
    tls_setup();
    pin_as(opt.place, 0);
    for (int b = 0; b < blocks; b++) {
        for (int k = 0; k < 2; k++) {
            int v = (b + k) % 2;
            struct series *s = series_for("tls pingpong 1KiB", names[v], "us", v == 0, 1);
            int sv[2];
            tcp_pair(sv);
            pthread_barrier_t start;
            pthread_barrier_init(&start, NULL, 2);
            rsock_token *ptok, *mtok;
            struct tls_peer p = {.ssl = tls_side(1, sv[1], v, &ptok), .count = rounds, .start = &start};
            SSL *me = tls_side(0, sv[0], v, &mtok);
            pthread_t th;
            OK(pthread_create(&th, NULL, tls_echo_peer, &p) == 0);
            if (SSL_connect(me) != 1) DIE("TLS connect failed");
            pthread_barrier_wait(&start);
            for (long i = 0; i < rounds; i++) {
                double t0 = now_ns();
                if (SSL_write(me, buf, sizeof buf) != sizeof buf || tls_read_all(me, buf, sizeof buf) != 0)
                    DIE("TLS ping failed");
                if (i >= warm) add(s, (now_ns() - t0) / 1e3);
            }
            end_block(s);
            pthread_join(th, NULL);
            pthread_barrier_destroy(&start);
            SSL_free(me); /* closes the sockets */
            SSL_free(p.ssl);
            rsock_token_unref(mtok);
            rsock_token_unref(ptok);
        }
    }
    unpin();
    SSL_CTX_free(tls_sctx);
    SSL_CTX_free(tls_cctx);
}
#endif

/* ---- bulk ---------------------------------------------------------------- */

struct bulk_peer {
    struct endpoint ep;
    size_t total;
    pthread_barrier_t *start;
};

static void *bulk_sender(void *arg) {
    struct bulk_peer *p = arg;
    pin_as(opt.place, 1);
    static _Thread_local char buf[65536];
    pthread_barrier_wait(p->start);
    for (size_t done = 0; done < p->total; done += sizeof buf)
        if (ep_send(&p->ep, buf, sizeof buf) < 0) DIE("bulk send failed");
    return NULL;
}

static void bulk(int tcp) {
    int reps = opt.quick ? 1 : 5;
    size_t total = opt.quick ? (16u << 20) : (1u << 30);
    char name[48];
    snprintf(name, sizeof name, "bulk %s", tcp ? "tcp" : "unix");
    static char buf[65536];
    pin_as(opt.place, 0);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < nvariants(); k++) {
            enum variant v = (enum variant)((r + k) % nvariants());
            if (v == V_RAW_MASK || v == V_POLL_REG) continue; /* ping-pong only */
            struct series *s = series_for(name, vname[v], "GB/s", v == V_RAW, 0);
            int sv[2];
            make_pair(tcp, sv);
            pthread_barrier_t start;
            pthread_barrier_init(&start, NULL, 2);
            struct bulk_peer p = {.total = total, .start = &start};
            ep_init(&p.ep, v, sv[1]);
            struct endpoint me;
            ep_init(&me, v, sv[0]);
            pthread_t th;
            OK(pthread_create(&th, NULL, bulk_sender, &p) == 0);
            pthread_barrier_wait(&start);
            double t0 = now_ns();
            size_t got = 0;
            while (got < total) {
                ssize_t n = ep_recv(&me, buf, sizeof buf);
                if (n <= 0) DIE("bulk recv failed");
                got += (size_t)n;
            }
            add(s, (double)total / (now_ns() - t0)); /* bytes per ns = GB/s */
            pthread_join(th, NULL);
            pthread_barrier_destroy(&start);
            ep_free(&me);
            ep_free(&p.ep);
        }
    }
    unpin();
}

/* ---- cancel latency ------------------------------------------------------ */

/* C_RSOCK_DL: the waiter's token also has a (far) deadline. */
/* C_RSOCK_SIG: on the signal-wake fast path (rsock_use_signal_wake). */
enum cvariant { C_FLOOR, C_RSOCK, C_RSOCK_DL, C_RSOCK_SIG, C_EVENTFD, C_GLIB, NC };
static const char *cname[NC] = {"futex wake (floor)", "rsock",   "rsock, deadline set", "rsock, signal wake",
                                "eventfd",            "GLib GCancellable"};

struct canceller {
    enum cvariant v;
    int idle, efd;
    rsock_token *tok;
    pthread_mutex_t m;
    pthread_cond_t c;
    int go;
    atomic_int armed, ready, woke; /* armed: re-armed, the waiter may wait again */
    double t_woke;
    long count;
#ifdef HAVE_GLIB
    GSocket *gs;
    GCancellable *gc;
#endif
};

static void wait_flag(atomic_int *f) {
    while (!atomic_load(f)) sched_yield();
    atomic_store(f, 0);
}

static void *cancel_waiter(void *arg) {
    struct canceller *c = arg;
    pin_as(opt.place == ANY ? ANY : CROSS, 1);
    char byte;
    for (long i = 0; i < c->count; i++) {
        wait_flag(&c->armed);
        switch (c->v) {
        case C_FLOOR:
            pthread_mutex_lock(&c->m);
            atomic_store(&c->ready, 1);
            while (!c->go) pthread_cond_wait(&c->c, &c->m);
            c->go = 0;
            pthread_mutex_unlock(&c->m);
            break;
        case C_RSOCK:
        case C_RSOCK_DL:
        case C_RSOCK_SIG:
            atomic_store(&c->ready, 1);
            if (rsock_recv(c->tok, c->idle, &byte, 1, 0, RSOCK_INFINITE) != -1) DIE("rsock: not cancelled");
            break;
        case C_EVENTFD: {
            atomic_store(&c->ready, 1);
            struct pollfd p[2] = {{c->idle, POLLIN, 0}, {c->efd, POLLIN, 0}};
            while (poll(p, 2, -1) < 1) {
            }
            break;
        }
#ifdef HAVE_GLIB
        case C_GLIB: {
            atomic_store(&c->ready, 1);
            GError *err = NULL;
            if (g_socket_receive(c->gs, &byte, 1, c->gc, &err) != -1) DIE("GLib: not cancelled");
            g_error_free(err);
            break;
        }
#endif
        default:
            break;
        }
        c->t_woke = now_ns();
        atomic_store(&c->woke, 1);
    }
    return NULL;
}

static void cancel_latency(void) {
    int blocks = opt.quick ? 2 : 10;
    long per_block = opt.quick ? 30 : 200;
    int nv = nvariants() == NV ? NC : C_GLIB;
    pin_as(opt.place == ANY ? ANY : CROSS, 0);
    const char *name = "cancel latency";
    for (int b = 0; b < blocks; b++) {
        for (int k = 0; k < nv; k++) {
            enum cvariant v = (enum cvariant)((b + k) % nv);
            struct series *s = series_for(name, cname[v], "us", v == C_FLOOR, 1);
            int sv[2];
            OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
            struct canceller c = {.v = v, .idle = sv[0], .efd = -1, .count = per_block};
            pthread_mutex_init(&c.m, NULL);
            pthread_cond_init(&c.c, NULL);
            if (v == C_EVENTFD) OK((c.efd = eventfd(0, EFD_CLOEXEC)) >= 0);
            if (v == C_RSOCK || v == C_RSOCK_DL || v == C_RSOCK_SIG) OK(c.tok = rsock_token_new());
            OK(rsock_use_signal_wake(v == C_RSOCK_SIG ? FAST_SIGNO : 0) == 0);
            if (v == C_RSOCK_DL) OK(rsock_token_set_deadline(c.tok, 1 << 30) == 0);
#ifdef HAVE_GLIB
            if (v == C_GLIB) {
                c.gs = g_socket_new_from_fd(dup(sv[0]), NULL);
                c.gc = g_cancellable_new();
                OK(c.gs);
            }
#endif
            atomic_store(&c.armed, 1);
            pthread_t th;
            OK(pthread_create(&th, NULL, cancel_waiter, &c) == 0);
            for (long i = 0; i < per_block; i++) {
                wait_flag(&c.ready);
                sleep_us(300); /* until the waiter sleeps in the kernel */
                double t0;
                switch (v) {
                case C_FLOOR:
                    pthread_mutex_lock(&c.m);
                    c.go = 1;
                    t0 = now_ns();
                    pthread_cond_signal(&c.c);
                    pthread_mutex_unlock(&c.m);
                    break;
                case C_RSOCK:
                case C_RSOCK_DL:
                case C_RSOCK_SIG:
                    t0 = now_ns();
                    rsock_cancel(c.tok);
                    break;
                case C_EVENTFD:
                    t0 = now_ns();
                    OK(eventfd_write(c.efd, 1) == 0);
                    break;
#ifdef HAVE_GLIB
                case C_GLIB:
                    t0 = now_ns();
                    g_cancellable_cancel(c.gc);
                    break;
#endif
                default:
                    t0 = now_ns();
                    break;
                }
                wait_flag(&c.woke);
                add(s, (c.t_woke - t0) / 1e3);
                /* re-arm */
                if (v == C_RSOCK || v == C_RSOCK_DL || v == C_RSOCK_SIG) rsock_token_reset(c.tok);
                if (v == C_EVENTFD) {
                    eventfd_t x;
                    OK(eventfd_read(c.efd, &x) == 0);
                }
#ifdef HAVE_GLIB
                if (v == C_GLIB) g_cancellable_reset(c.gc);
#endif
                atomic_store(&c.armed, 1);
            }
            pthread_join(th, NULL);
            if (c.efd >= 0) close(c.efd);
            if (c.tok) rsock_token_unref(c.tok);
#ifdef HAVE_GLIB
            if (v == C_GLIB) {
                g_object_unref(c.gs);
                g_object_unref(c.gc);
            }
#endif
            pthread_mutex_destroy(&c.m);
            pthread_cond_destroy(&c.c);
            close(sv[0]);
            close(sv[1]);
        }
    }
    unpin();
}

/* ---- cancel-all ---------------------------------------------------------- */

/* A_EVENTFD_AA: the shared eventfd again, as a control: how far apart two
   runs of the same thing measure here. */
enum avariant { A_EVENTFD, A_RSOCK, A_EVENTFD_AA, A_GLIB, NA };
static const char *aname[NA] = {"shared eventfd", "rsock", "shared eventfd (A/A control)", "GLib GCancellable"};

/* One set of threads serves every variant: round r waits the way
   variant[r] says. */
struct crowd {
    int idle, efd;
    rsock_token *tok;
    int rounds;
    enum avariant *variant;
    atomic_int blocked, returned;
    int round;               /* guarded by m: threads park on c between rounds */
    pthread_mutex_t m;
    pthread_cond_t next;
    double *t_end, *cpu;
#ifdef HAVE_GLIB
    GCancellable *gc;
#endif
};

struct member {
    struct crowd *c;
    int i;
#ifdef HAVE_GLIB
    GSocket *gs;
#endif
};

static double thread_cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void *crowd_member(void *arg) {
    struct member *m = arg;
    struct crowd *c = m->c;
    for (int r = 0; r < c->rounds; r++) {
        /* Parked, not spinning, so that finished threads do not compete
           with the ones still waking. */
        pthread_mutex_lock(&c->m);
        while (c->round != r) pthread_cond_wait(&c->next, &c->m);
        pthread_mutex_unlock(&c->m);
        double cpu0 = thread_cpu_ns();
        atomic_fetch_add(&c->blocked, 1);
        switch (c->variant[r]) {
        case A_RSOCK:
            if (rsock_block(c->tok, c->idle, RSOCK_READABLE, RSOCK_INFINITE) != -1) DIE("rsock: not cancelled");
            break;
        case A_EVENTFD:
        case A_EVENTFD_AA: {
            struct pollfd p[2] = {{c->idle, POLLIN, 0}, {c->efd, POLLIN, 0}};
            while (poll(p, 2, -1) < 1) {
            }
            break;
        }
#ifdef HAVE_GLIB
        case A_GLIB: {
            GError *err = NULL;
            if (g_socket_condition_wait(m->gs, G_IO_IN, c->gc, &err)) DIE("GLib: not cancelled");
            g_error_free(err);
            break;
        }
#endif
        default:
            break;
        }
        c->t_end[m->i] = now_ns();
        c->cpu[m->i] = thread_cpu_ns() - cpu0;
        atomic_fetch_add(&c->returned, 1);
    }
    /* Parked until every round is measured: threads exiting (stacks
       unmapped, thread-local destructors) while others are still being
       woken made the last round of each variant twice as slow. */
    pthread_mutex_lock(&c->m);
    while (c->round != c->rounds) pthread_cond_wait(&c->next, &c->m);
    pthread_mutex_unlock(&c->m);
    return NULL;
}

/* The same n threads wait in every variant, a round each in turn, in a
   different order each cycle: no variant pays for another's threads being
   created or exiting, and a slow spell of the machine falls on all. Each
   cycle is a block, so the paired ratio is the median over cycles of the
   variant's round over the shared eventfd's in the same cycle. A second
   scenario gives the CPU time each thread spent in its wait (entry, and
   the way out once woken), the median over threads and rounds. */
static void cancel_all(void) {
    int n = opt.quick ? 100 : 1000;
    int cycles = opt.quick ? 3 : 48;
    int nv = nvariants() == NV ? NA : A_GLIB;
    int rounds = cycles * nv;
    char name[48], cpu_name[48];
    snprintf(name, sizeof name, "cancel-all %d threads", n);
    snprintf(cpu_name, sizeof cpu_name, "cancel-all %d threads, CPU per wait", n);
    int sv[2];
    OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    OK(rsock_use_signal_wake(0) == 0);
    struct crowd c = {.idle = sv[0], .rounds = rounds, .round = -1};
    c.variant = calloc((size_t)rounds, sizeof *c.variant);
    c.t_end = calloc((size_t)n, sizeof *c.t_end);
    c.cpu = calloc((size_t)n, sizeof *c.cpu);
    struct member *ms = calloc((size_t)n, sizeof *ms);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    OK(c.variant && c.t_end && c.cpu && ms && th);
    /* Orders in which each variant follows each other one equally often
       (a Williams design for four; all six orders for three): what a round
       leaves behind falls on every variant alike. */
    static const int order4[4][4] = {{0, 1, 3, 2}, {1, 2, 0, 3}, {2, 3, 1, 0}, {3, 0, 2, 1}};
    static const int order3[6][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {1, 0, 2}, {2, 1, 0}};
    for (int r = 0; r < rounds; r++) {
        int cycle = r / nv, k = r % nv;
        c.variant[r] = (enum avariant)(nv == 4 ? order4[cycle % 4][k] : order3[cycle % 6][k]);
    }
    pthread_mutex_init(&c.m, NULL);
    pthread_cond_init(&c.next, NULL);
    OK((c.efd = eventfd(0, EFD_CLOEXEC)) >= 0);
    OK(c.tok = rsock_token_new());
#ifdef HAVE_GLIB
    if (nv > A_GLIB) c.gc = g_cancellable_new();
#endif
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    for (int i = 0; i < n; i++) {
        ms[i] = (struct member){.c = &c, .i = i};
#ifdef HAVE_GLIB
        if (nv > A_GLIB) OK(ms[i].gs = g_socket_new_from_fd(dup(sv[0]), NULL));
#endif
        OK(pthread_create(&th[i], &attr, crowd_member, &ms[i]) == 0);
    }
    for (int r = 0; r < rounds; r++) {
        enum avariant v = c.variant[r];
        struct series *s = series_for(name, aname[v], "us", v == A_EVENTFD, 1);
        struct series *cs = series_for(cpu_name, aname[v], "us", v == A_EVENTFD, 1);
        atomic_store(&c.blocked, 0);
        atomic_store(&c.returned, 0);
        pthread_mutex_lock(&c.m);
        c.round = r;
        pthread_cond_broadcast(&c.next);
        pthread_mutex_unlock(&c.m);
        while (atomic_load(&c.blocked) < n) sleep_us(1000);
        sleep_us(opt.quick ? 20000 : 30000); /* all asleep in the kernel */
        double t0 = now_ns();
        switch (v) {
        case A_RSOCK:
            rsock_cancel(c.tok);
            break;
        case A_EVENTFD:
        case A_EVENTFD_AA:
            OK(eventfd_write(c.efd, 1) == 0);
            break;
#ifdef HAVE_GLIB
        case A_GLIB:
            g_cancellable_cancel(c.gc);
            break;
#endif
        default:
            break;
        }
        while (atomic_load(&c.returned) < n) sched_yield();
        double last = t0;
        for (int i = 0; i < n; i++) {
            if (c.t_end[i] > last) last = c.t_end[i];
            add(cs, c.cpu[i] / 1e3);
        }
        add(s, (last - t0) / 1e3);
        end_block(s);
        end_block(cs);
        if (v == A_RSOCK) rsock_token_reset(c.tok);
        if (v == A_EVENTFD || v == A_EVENTFD_AA) {
            eventfd_t x;
            OK(eventfd_read(c.efd, &x) == 0);
        }
#ifdef HAVE_GLIB
        if (v == A_GLIB) g_cancellable_reset(c.gc);
#endif
    }
    pthread_mutex_lock(&c.m);
    c.round = rounds;
    pthread_cond_broadcast(&c.next);
    pthread_mutex_unlock(&c.m);
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
#ifdef HAVE_GLIB
        if (ms[i].gs) g_object_unref(ms[i].gs);
#endif
    }
    pthread_attr_destroy(&attr);
    close(c.efd);
    rsock_token_unref(c.tok);
#ifdef HAVE_GLIB
    if (c.gc) g_object_unref(c.gc);
#endif
    pthread_mutex_destroy(&c.m);
    pthread_cond_destroy(&c.next);
    free(c.variant);
    free(c.t_end);
    free(c.cpu);
    free(ms);
    free(th);
    close(sv[0]);
    close(sv[1]);
}

/* ---- tokens -------------------------------------------------------------- */

static struct {
    double ns_cycle, glib_ns_cycle;
    double bytes_per_token, glib_bytes_per_cancellable;
    double fds_per_token;
    int fds_while_waiting;
} tok;

static void *idle_wait(void *arg) {
    int *fd = arg;
    char b;
    rsock_recv(NULL, *fd, &b, 1, 0, RSOCK_INFINITE); /* the thread token, cancelled below */
    return NULL;
}

static void tokens(void) {
    long n = opt.quick ? 100000 : 2000000;
    struct series *s = series_for("token create+cancel+destroy", "rsock", "ns", 1, 1);
    for (int r = 0; r < 7; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            rsock_token *t = rsock_token_new();
            rsock_cancel(t);
            rsock_token_unref(t);
        }
        add(s, (now_ns() - t0) / (double)n);
    }
    struct series *d = series_for("token create+cancel+destroy", "rsock, deadline set too", "ns", 0, 1);
    for (int r = 0; r < 7; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            rsock_token *t = rsock_token_new();
            rsock_token_set_deadline(t, 1000);
            rsock_cancel(t);
            rsock_token_unref(t);
        }
        add(d, (now_ns() - t0) / (double)n);
    }
    /* What the signal-wake fast path adds to each call that may wait: one
       query of the thread's signal mask (a system call), against another
       system call that does nothing, for scale. */
    struct series *mq = series_for("system call", "getppid", "ns", 1, 1);
    struct series *mk = series_for("system call", "rt_sigprocmask query (fast path's mask check)", "ns", 0, 1);
    for (int r = 0; r < 7; r++) {
        long m = n / 10;
        double t0 = now_ns();
        for (long i = 0; i < m; i++) syscall(SYS_getppid);
        double t1 = now_ns();
        unsigned long set;
        for (long i = 0; i < m; i++) syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &set, sizeof set);
        add(mq, (t1 - t0) / (double)m);
        add(mk, (now_ns() - t1) / (double)m);
    }
    /* rsock_cancel by itself (no waiter): a deadline on the token must not
       change what a cancel costs. */
    for (int v = 0; v < 2; v++) {
        rsock_token *t = rsock_token_new();
        OK(t);
        if (v) OK(rsock_token_set_deadline(t, 1 << 30) == 0);
        struct series *c = series_for("token cancel+reset", v ? "rsock, deadline set" : "rsock", "ns", !v, 1);
        for (int r = 0; r < 7; r++) {
            double t0 = now_ns();
            for (long i = 0; i < n; i++) {
                rsock_cancel(t);
                rsock_token_reset(t);
            }
            add(c, (now_ns() - t0) / (double)n);
        }
        rsock_token_unref(t);
    }
#ifdef HAVE_GLIB
    struct series *g = series_for("token create+cancel+destroy", "GLib GCancellable", "ns", 0, 1);
    for (int r = 0; r < 7; r++) {
        long m = n / 10;
        double t0 = now_ns();
        for (long i = 0; i < m; i++) {
            GCancellable *c = g_cancellable_new();
            g_cancellable_cancel(c);
            g_object_unref(c);
        }
        add(g, (now_ns() - t0) / (double)m);
    }
#endif
    enum { IDLE = 100000 };
    rsock_token **keep = malloc(IDLE * sizeof *keep);
    OK(keep);
    int fds0 = fd_count();
    size_t heap0 = mallinfo2().uordblks;
    for (int i = 0; i < IDLE; i++) OK(keep[i] = rsock_token_new());
    tok.bytes_per_token = (double)(mallinfo2().uordblks - heap0) / IDLE;
    tok.fds_per_token = (double)(fd_count() - fds0) / IDLE;
    for (int i = 0; i < IDLE; i++) rsock_token_unref(keep[i]);
#ifdef HAVE_GLIB
    heap0 = mallinfo2().uordblks;
    GCancellable **gk = malloc(IDLE / 10 * sizeof *gk);
    OK(gk);
    for (int i = 0; i < IDLE / 10; i++) gk[i] = g_cancellable_new();
    tok.glib_bytes_per_cancellable = (double)(mallinfo2().uordblks - heap0) / (IDLE / 10);
    for (int i = 0; i < IDLE / 10; i++) g_object_unref(gk[i]);
    free(gk);
#endif
    free(keep);
    /* A waiting call: the thread's wake descriptor. */
    int sv[2];
    OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fds0 = fd_count();
    pthread_t th;
    OK(pthread_create(&th, NULL, idle_wait, &sv[0]) == 0);
    sleep_us(50000);
    tok.fds_while_waiting = fd_count() - fds0;
    OK(send(sv[1], "x", 1, 0) == 1);
    pthread_join(th, NULL);
    close(sv[0]);
    close(sv[1]);
}

/* ---- output -------------------------------------------------------------- */

static double ratio(const struct series *s) {
    const struct series *b = baseline_of(s);
    if (!b || b->median == 0) return 0;
    return s->median / b->median;
}

static void print_table(void) {
    printf("\n%-30s %-20s %12s %12s %8s %8s\n", "scenario", "variant", "median", "p99", "ratio", "paired");
    const char *last = "";
    for (int i = 0; i < nresults; i++) {
        const struct series *s = &results[i];
        if (strcmp(last, s->scenario)) printf("\n");
        last = s->scenario;
        printf("%-30s %-20s %9.3f %-2s %9.3f %-2s %7.3fx", s->scenario, s->variant, s->median, s->unit, s->p99,
               s->unit, ratio(s));
        if (s->baseline) printf(" (baseline)\n");
        else if (s->nblocks) printf(" %7.3fx\n", paired(s, baseline_of(s)));
        else printf("\n");
    }
    /* The designs' own floors: rsock's poll path (and the loop plus only a
       token check and one registration) against the hand-written poll
       loop, the fast path against a raw call plus its mask query. */
    int shown = 0;
    for (int i = 0; i < nresults; i++) {
        const struct series *s = &results[i], *r = NULL;
        if (strncmp(s->scenario, "pingpong ", 9)) continue;
        if (!strcmp(s->variant, vname[V_RSOCK]) || !strcmp(s->variant, vname[V_POLL_REG]))
            r = find_series(s->scenario, vname[V_POLL]);
        if (!strcmp(s->variant, vname[V_RSOCK_SIG]) || !strcmp(s->variant, vname[V_RSOCK_SIG_PLAIN]))
            r = find_series(s->scenario, vname[V_RAW_MASK]);
        if (!r) continue;
        if (!shown++) printf("\nagainst each design's floor (paired):\n");
        printf("%-30s %-20s / %s: %.3fx\n", s->scenario, s->variant, r->variant, paired(s, r));
    }
    printf("\nidle token: %.1f bytes, %.3f descriptors; a waiting call: %d descriptor(s)\n", tok.bytes_per_token,
           tok.fds_per_token, tok.fds_while_waiting);
#ifdef HAVE_GLIB
    printf("idle GCancellable: %.1f bytes\n", tok.glib_bytes_per_cancellable);
#endif
}

static void write_json(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) DIE("cannot write %s", path);
    fprintf(f, "{\n  \"rsock_version\": \"%s\",\n  \"cpus\": %d,\n  \"placement\": \"%s\",\n  \"quick\": %s,\n",
            rsock_version(), ncpu, placement_name[opt.place], opt.quick ? "true" : "false");
    fprintf(f, "  \"openssl\": %s,\n",
#ifdef HAVE_OPENSSL
            "true"
#else
            "false"
#endif
    );
    fprintf(f, "  \"token\": {\"bytes\": %.1f, \"descriptors\": %.3f, \"descriptors_while_waiting\": %d",
            tok.bytes_per_token, tok.fds_per_token, tok.fds_while_waiting);
#ifdef HAVE_GLIB
    fprintf(f, ", \"glib_cancellable_bytes\": %.1f", tok.glib_bytes_per_cancellable);
#endif
    fprintf(f, "},\n  \"results\": [\n");
    for (int i = 0; i < nresults; i++) {
        const struct series *s = &results[i];
        fprintf(f,
                "    {\"scenario\": \"%s\", \"variant\": \"%s\", \"unit\": \"%s\", \"samples\": %zu, "
                "\"median\": %.4f, \"p99\": %.4f, \"ratio\": %.4f, \"paired\": %.4f, \"baseline\": %s}%s\n",
                s->scenario, s->variant, s->unit, s->n, s->median, s->p99, ratio(s),
                s->baseline ? 1.0 : paired(s, baseline_of(s)), s->baseline ? "true" : "false",
                i + 1 < nresults ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
}

/* Latency distributions as CDFs, one panel per latency scenario. */
static void write_svg(const char *path) {
    static const char *colors[] = {"#555555", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
    const char *panels[16];
    int np = 0;
    for (int i = 0; i < nresults; i++) {
        const struct series *s = &results[i];
        if (strcmp(s->unit, "us") || !strncmp(s->scenario, "cancel-all", 10)) continue;
        int seen = 0;
        for (int j = 0; j < np; j++) seen |= !strcmp(panels[j], s->scenario);
        if (!seen && np < 16) panels[np++] = s->scenario;
    }
    const int W = 760, PH = 170, top = 30;
    FILE *f = fopen(path, "w");
    if (!f) DIE("cannot write %s", path);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, top + np * PH + 10);
    fprintf(f, "<text x=\"10\" y=\"18\" font-size=\"13\">Latency distributions (CDF, 1st to 99th percentile), "
               "%s-CPU placement, %d CPUs</text>\n",
            placement_name[opt.place], ncpu);
    for (int p = 0; p < np; p++) {
        double lo = 1e300, hi = 0;
        for (int i = 0; i < nresults; i++) {
            const struct series *s = &results[i];
            if (strcmp(s->scenario, panels[p])) continue;
            if (quantile(s, 0.01) < lo) lo = quantile(s, 0.01);
            if (s->p99 > hi) hi = s->p99;
        }
        if (hi <= lo) hi = lo + 1;
        double x0 = 60, x1 = W - 190, y0 = top + p * PH + 20, y1 = y0 + PH - 45;
        fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"12\">%s</text>\n", x0, y0 - 6, panels[p]);
        fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#999\"/>\n", x0, y0,
                x1 - x0, y1 - y0);
        for (int t = 0; t <= 4; t++) {
            double x = x0 + (x1 - x0) * t / 4;
            fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%.1f us</text>\n", x, y1 + 14,
                    lo + (hi - lo) * t / 4);
        }
        fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">0.5</text>\n", x0 - 4, (y0 + y1) / 2 + 4);
        int c = 0;
        for (int i = 0; i < nresults; i++) {
            const struct series *s = &results[i];
            if (strcmp(s->scenario, panels[p])) continue;
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colors[c % 5]);
            for (int q = 1; q <= 99; q++) {
                double v = quantile(s, q / 100.0);
                double x = x0 + (x1 - x0) * (v - lo) / (hi - lo);
                if (x < x0) x = x0;
                if (x > x1) x = x1;
                fprintf(f, "%.1f,%.1f ", x, y1 - (y1 - y0) * q / 100.0);
            }
            fprintf(f, "\"/>\n<text x=\"%g\" y=\"%g\" fill=\"%s\">%s: %.2f us</text>\n", x1 + 8, y0 + 12 + 14 * c,
                    colors[c % 5], s->variant, s->median);
            c++;
        }
    }
    fprintf(f, "</svg>\n");
    fclose(f);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) opt.quick = 1;
        else if (!strcmp(argv[i], "--placement") && i + 1 < argc) {
            const char *p = argv[++i];
            opt.place = !strcmp(p, "cross") ? CROSS : !strcmp(p, "any") ? ANY : SAME;
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) opt.json = argv[++i];
        else if (!strcmp(argv[i], "--svg") && i + 1 < argc) opt.svg = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) opt.only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--placement same|cross|any] [--json FILE] [--svg FILE]\n"
                            "       [--only pingpong|tls|bulk|cancel|cancelall|tokens]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    printf("rsock %s benchmark: %d CPUs, %s-CPU placement%s%s\n", rsock_version(), ncpu, placement_name[opt.place],
           opt.quick ? ", quick run" : "",
#ifdef HAVE_GLIB
           ""
#else
           ", without GLib"
#endif
    );
    /* Tokens first: after the 1000 threads of cancel-all the allocator's
       state makes the same loop take about 28 ns instead of 18. */
    if (wanted("tokens")) tokens();
    for (int tcp = 1; tcp >= 0 && wanted("pingpong"); tcp--) {
        pingpong(tcp, 1);
        pingpong(tcp, 1024);
    }
#ifdef HAVE_OPENSSL
    if (wanted("tls")) tls_pingpong();
#endif
    if (wanted("bulk")) {
        bulk(1);
        bulk(0);
    }
    if (wanted("cancel")) cancel_latency();
    if (wanted("cancelall")) cancel_all();
    finish_series();
    print_table();
    write_json(opt.json);
    if (opt.svg) write_svg(opt.svg);
    return 0;
}
