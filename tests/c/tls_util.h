/* What the TLS adapter tests share (POSIX): a gate between threads, a
   relay that holds back what the server sends, the byte pattern of the big
   writes, and a canceller that waits for the client to drain the relay.
   Included by tests/c/test_tls_*.c after rtest.h. */
#ifndef TLS_UTIL_H
#define TLS_UTIL_H

#include "rtest.h"

/* A counter that threads wait on: gate_wait(g, n) until it reaches n. */
struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    int value;
};

static inline void gate_init(struct gate *g) {
    pthread_mutex_init(&g->m, NULL);
    pthread_cond_init(&g->c, NULL);
    g->value = 0;
}

static inline void gate_destroy(struct gate *g) {
    pthread_mutex_destroy(&g->m);
    pthread_cond_destroy(&g->c);
}

static inline void gate_set(struct gate *g, int v) {
    pthread_mutex_lock(&g->m);
    g->value = v;
    pthread_cond_broadcast(&g->c);
    pthread_mutex_unlock(&g->m);
}

static inline void gate_add(struct gate *g, int d) {
    pthread_mutex_lock(&g->m);
    g->value += d;
    pthread_cond_broadcast(&g->c);
    pthread_mutex_unlock(&g->m);
}

static inline void gate_wait(struct gate *g, int v) {
    pthread_mutex_lock(&g->m);
    while (g->value < v) pthread_cond_wait(&g->c, &g->m);
    pthread_mutex_unlock(&g->m);
}

/* Byte `i` of the big writes: no period shorter than the data, so a lost
   or repeated chunk shows. */
static inline unsigned char pattern_byte(size_t i) {
    uint32_t x = (uint32_t)i * 2654435761u;
    x ^= (uint32_t)(i >> 13) * 40503u;
    return (unsigned char)(x >> 24);
}

static inline void pattern_fill(unsigned char *buf, size_t len) {
    for (size_t i = 0; i < len; i++) buf[i] = pattern_byte(i);
}

/* A thread between the client (side a) and the server (side b). It
   passes everything the client sends; of what the server sends it passes
   only `budget` bytes in all (-1: everything), so a test can stop the
   server's bytes at any point, e.g. in the middle of a record. */
struct relay {
    rsock_socket a, b;
    pthread_mutex_t m;
    long long budget, forwarded;
    int stop;
    pthread_t th;
};

static inline void relay_send_all(rsock_socket s, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(s, p, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static inline void *relay_main(void *arg) {
    struct relay *r = (struct relay *)arg;
    char buf[16384];
    int a_open = 1, b_open = 1;
    while (a_open || b_open) {
        pthread_mutex_lock(&r->m);
        long long room = r->budget < 0 ? (long long)sizeof buf : r->budget - r->forwarded;
        int stop = r->stop;
        pthread_mutex_unlock(&r->m);
        if (stop) break;
        struct pollfd p[2] = {{r->a, (short)(a_open ? POLLIN : 0), 0},
                              {r->b, (short)(b_open && room > 0 ? POLLIN : 0), 0}};
        if (poll(p, 2, 5) <= 0) continue; /* 5 ms: looks at the budget again */
        if (p[0].revents) {
            ssize_t n = recv(r->a, buf, sizeof buf, 0);
            if (n > 0) relay_send_all(r->b, buf, (size_t)n);
            else {
                a_open = 0;
                shutdown(r->b, SHUT_WR);
            }
        }
        if (p[1].revents) {
            /* The budget again, under the lock, which also makes the
               count exact whenever a test reads it (a relayed handshake
               fits in the socket buffers, so this send does not block). */
            pthread_mutex_lock(&r->m);
            room = r->budget < 0 ? (long long)sizeof buf : r->budget - r->forwarded;
            ssize_t n = room <= 0 ? 1 : recv(r->b, buf, room < (long long)sizeof buf ? (size_t)room : sizeof buf, 0);
            if (room > 0 && n > 0) {
                relay_send_all(r->a, buf, (size_t)n);
                r->forwarded += n;
            }
            pthread_mutex_unlock(&r->m);
            if (n <= 0) {
                b_open = 0;
                shutdown(r->a, SHUT_WR);
            }
        }
    }
    return NULL;
}

/* Client end in client_side, server end in server_side; the relay owns
   the two sockets in the middle. */
static inline void relay_start(struct relay *r, rsock_socket *client_side, rsock_socket *server_side,
                               long long budget) {
    rsock_socket c[2], s[2];
    tcp_pair(c);
    tcp_pair(s);
    *client_side = c[0];
    *server_side = s[1];
    r->a = c[1];
    r->b = s[0];
    r->budget = budget;
    r->forwarded = 0;
    r->stop = 0;
    pthread_mutex_init(&r->m, NULL);
    REQUIRE(pthread_create(&r->th, NULL, relay_main, r) == 0);
}

static inline long long relay_forwarded(struct relay *r) {
    pthread_mutex_lock(&r->m);
    long long f = r->forwarded;
    pthread_mutex_unlock(&r->m);
    return f;
}

/* Lets `more` further bytes through (-1: everything from now on). */
static inline void relay_allow(struct relay *r, long long more) {
    pthread_mutex_lock(&r->m);
    r->budget = more < 0 ? -1 : r->forwarded + more;
    pthread_mutex_unlock(&r->m);
}

static inline void relay_stop(struct relay *r) {
    pthread_mutex_lock(&r->m);
    r->stop = 1;
    pthread_mutex_unlock(&r->m);
    pthread_join(r->th, NULL);
    pthread_mutex_destroy(&r->m);
    close_sock(r->a);
    close_sock(r->b);
}

/* Cancels `tok` once the relay has passed its whole budget and the client
   has read all of it (so the client is waiting for the held-back bytes),
   `delay_ms` later: start_drain_cancel, then join_drain_cancel. */
struct drain_cancel {
    struct relay *r;
    rsock_socket client;
    rsock_token *tok;
    double delay_ms;
    int drained; /* 1 if the client had read everything before the cancel */
    pthread_t th;
};

static inline void *drain_cancel_main(void *arg) {
    struct drain_cancel *d = (struct drain_cancel *)arg;
    double give_up = now_ms() + 10000;
    for (;;) {
        pthread_mutex_lock(&d->r->m);
        int passed = d->r->budget >= 0 && d->r->forwarded >= d->r->budget;
        pthread_mutex_unlock(&d->r->m);
        if (passed && pending(d->client) == 0) {
            d->drained = 1;
            break;
        }
        if (now_ms() > give_up) break;
        sleep_ms(1);
    }
    sleep_ms(d->delay_ms);
    rsock_cancel(d->tok);
    return NULL;
}

static inline void start_drain_cancel(struct drain_cancel *d, struct relay *r, rsock_socket client, rsock_token *tok,
                                      double delay_ms) {
    d->r = r;
    d->client = client;
    d->tok = tok;
    d->delay_ms = delay_ms;
    d->drained = 0;
    REQUIRE(pthread_create(&d->th, NULL, drain_cancel_main, d) == 0);
}

static inline void join_drain_cancel(struct drain_cancel *d) { pthread_join(d->th, NULL); }

/* A thread that cancels `tok` at random intervals of 1 to `max_ms` ms
   until stopped or `limit` cancels are made: storm_start, storm_stop. */
struct storm {
    rsock_token *tok;
    int max_ms, limit, count;
    pthread_mutex_t m;
    int stop;
    pthread_t th;
};

static inline void *storm_main(void *arg) {
    struct storm *s = (struct storm *)arg;
    unsigned seed = 12345;
    for (;;) {
        sleep_ms(1 + (double)(rt_rand(&seed) % (unsigned)s->max_ms));
        pthread_mutex_lock(&s->m);
        int stop = s->stop || s->count >= s->limit;
        if (!stop) s->count++;
        pthread_mutex_unlock(&s->m);
        if (stop) return NULL;
        rsock_cancel(s->tok);
    }
}

static inline void storm_start(struct storm *s, rsock_token *tok, int max_ms, int limit) {
    s->tok = tok;
    s->max_ms = max_ms;
    s->limit = limit;
    s->count = 0;
    s->stop = 0;
    pthread_mutex_init(&s->m, NULL);
    REQUIRE(pthread_create(&s->th, NULL, storm_main, s) == 0);
}

static inline int storm_stop(struct storm *s) {
    pthread_mutex_lock(&s->m);
    s->stop = 1;
    pthread_mutex_unlock(&s->m);
    pthread_join(s->th, NULL);
    pthread_mutex_destroy(&s->m);
    return s->count;
}

/* Shrinks a socket's buffers so that a big write stalls early. */
static inline void small_buffers(rsock_socket s) {
    int size = 32 * 1024;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, (const char *)&size, sizeof size);
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, (const char *)&size, sizeof size);
}

#endif
