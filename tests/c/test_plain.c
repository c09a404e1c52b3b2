/* Plain-call semantics (RSOCK_SOCKET_TIMEOUT), through the redirect mode of
   rsock_winsock.h: each redirected call is run beside the plain system
   call on a twin socket set up the same way, and both must end the same
   way (result, error code, roughly the same time): blocking and
   non-blocking sockets, with and without SO_RCVTIMEO/SO_SNDTIMEO. Here
   `recv(...)` is the redirected call and `(recv)(...)` the plain one. */
#include "rtest.h"

#include <limits.h>

#define RSOCK_WINSOCK_REDIRECT_CALLS
#include "rsock_winsock.h"

#ifdef _WIN32
#define RT_EWOULDBLOCK WSAEWOULDBLOCK
#define RT_SOCKET_TIMEOUT_ERROR WSAETIMEDOUT
#define RT_CONNECT_PENDING_PLAIN WSAEWOULDBLOCK
#else
#define RT_EWOULDBLOCK EAGAIN
#define RT_SOCKET_TIMEOUT_ERROR EAGAIN
#define RT_CONNECT_PENDING_PLAIN EINPROGRESS
#endif

/* The mode, set the way the program would: on Windows through the
   redirected ioctlsocket (rsock learns it there). */
static void mode(rsock_socket s, int nonblocking) {
#ifdef _WIN32
    u_long v = nonblocking ? 1 : 0;
    REQUIRE(ioctlsocket(s, FIONBIO, &v) == 0);
#else
    set_nonblocking(s, nonblocking);
#endif
}

static void close_plain(rsock_socket s) {
#ifdef _WIN32
    closesocket(s); /* redirected: forgets the mode */
#else
    close(s);
#endif
}

static void timeo(rsock_socket s, int opt, int ms) {
#ifdef _WIN32
    DWORD v = (DWORD)ms;
#else
    struct timeval v = {ms / 1000, (ms % 1000) * 1000};
#endif
    REQUIRE(setsockopt(s, SOL_SOCKET, opt, (const char *)&v, sizeof v) == 0);
}

/* How a call ended: its result, its error (if it failed), how long. */
struct end {
    long long r;
    int err;
    double ms;
};

#define RUN_CALL(e, expr)                                                      \
    do {                                                                       \
        double rt_t0 = now_ms();                                               \
        rt_set_error(0);                                                       \
        (e).r = (long long)(intptr_t)(expr);                                   \
        (e).err = (e).r < 0 ? rsock_last_error() : 0;                          \
        (e).ms = now_ms() - rt_t0;                                             \
    } while (0)

/* Both ended the same way, and a wait took about as long. */
static int same(const char *what, struct end plain, struct end redirected) {
    int ok = plain.r == redirected.r && plain.err == redirected.err &&
             (plain.ms < 20 ? redirected.ms < 500 : redirected.ms > plain.ms * 0.5 && redirected.ms < plain.ms * 3 + 200);
    if (!ok)
        fprintf(stderr, "%s: plain %lld (error %d, %.1f ms), redirected %lld (error %d, %.1f ms)\n", what, plain.r,
                plain.err, plain.ms, redirected.r, redirected.err, redirected.ms);
    return ok;
}

/* Twin stream pairs: p for the plain calls, q for the redirected ones. */
struct twins {
    rsock_socket p[2], q[2];
};

static void twins_tcp(struct twins *t) {
    tcp_pair(t->p);
    tcp_pair(t->q);
}

static void twins_close(struct twins *t) {
    close_plain(t->p[0]);
    close_plain(t->p[1]);
    close_plain(t->q[0]);
    close_plain(t->q[1]);
}

static void receives(void) {
    char a[16], b[16];
    struct end pe, re;
    for (int nonblocking = 0; nonblocking < 2; nonblocking++) {
        struct twins t;
        twins_tcp(&t);
        mode(t.p[0], nonblocking);
        mode(t.q[0], nonblocking);
        if (!nonblocking) {
            timeo(t.p[0], SO_RCVTIMEO, 60);
            timeo(t.q[0], SO_RCVTIMEO, 60);
        }
        /* Nothing queued: EAGAIN at once (non-blocking) or after the
           socket's timeout. */
        RUN_CALL(pe, (recv)(t.p[0], a, sizeof a, 0));
        RUN_CALL(re, recv(t.q[0], b, sizeof b, 0));
        CHECK(same("recv, nothing queued", pe, re));
        CHECK(re.r == -1 && re.err == (nonblocking ? RT_EWOULDBLOCK : RT_SOCKET_TIMEOUT_ERROR));
        RUN_CALL(pe, (recvfrom)(t.p[0], a, sizeof a, 0, NULL, NULL));
        RUN_CALL(re, recvfrom(t.q[0], b, sizeof b, 0, NULL, NULL));
        CHECK(same("recvfrom, nothing queued", pe, re));
        /* Data queued: the same bytes. */
        REQUIRE((send)(t.p[1], "hello", 5, 0) == 5 && (send)(t.q[1], "hello", 5, 0) == 5);
        sleep_ms(20);
        RUN_CALL(pe, (recv)(t.p[0], a, 3, 0));
        RUN_CALL(re, recv(t.q[0], b, 3, 0));
        CHECK(same("recv, data queued", pe, re) && memcmp(a, b, 3) == 0);
        /* MSG_WAITALL with less than asked: what there is, when the
           timeout passes (blocking), or at once. */
        RUN_CALL(pe, (recv)(t.p[0], a, 10, MSG_WAITALL));
        RUN_CALL(re, recv(t.q[0], b, 10, MSG_WAITALL));
        CHECK(same("recv MSG_WAITALL, short", pe, re) && re.r == 2);
        /* The peer closed: 0. */
        close_plain(t.p[1]);
        close_plain(t.q[1]);
        t.p[1] = socket(AF_INET, SOCK_STREAM, 0);
        t.q[1] = socket(AF_INET, SOCK_STREAM, 0);
        RUN_CALL(pe, (recv)(t.p[0], a, sizeof a, 0));
        RUN_CALL(re, recv(t.q[0], b, sizeof b, 0));
        CHECK(same("recv, end of stream", pe, re) && re.r == 0);
        CHECK_MODE(t.q[0], nonblocking);
        twins_close(&t);
    }
}

static void datagrams(void) {
    char a[16], b[16];
    struct end pe, re;
    for (int nonblocking = 0; nonblocking < 2; nonblocking++) {
        struct sockaddr_in pa, qa, from;
        rsock_socket p = udp_bound(&pa), q = udp_bound(&qa);
        mode(p, nonblocking);
        mode(q, nonblocking);
        if (!nonblocking) {
            timeo(p, SO_RCVTIMEO, 60);
            timeo(q, SO_RCVTIMEO, 60);
        }
        RUN_CALL(pe, (recvfrom)(p, a, sizeof a, 0, NULL, NULL));
        RUN_CALL(re, recvfrom(q, b, sizeof b, 0, NULL, NULL));
        CHECK(same("udp recvfrom, nothing queued", pe, re));
        rsock_socket s = socket(AF_INET, SOCK_DGRAM, 0);
        REQUIRE((sendto)(s, "dgram", 5, 0, (struct sockaddr *)&pa, sizeof pa) == 5);
        RUN_CALL(re, sendto(s, "dgram", 5, 0, (struct sockaddr *)&qa, sizeof qa));
        CHECK(re.r == 5);
        sleep_ms(20);
        socklen_t fl = sizeof from;
        RUN_CALL(pe, (recvfrom)(p, a, sizeof a, 0, (struct sockaddr *)&from, &fl));
        fl = sizeof from;
        RUN_CALL(re, recvfrom(q, b, sizeof b, 0, (struct sockaddr *)&from, &fl));
        CHECK(same("udp recvfrom, a datagram", pe, re) && memcmp(a, b, 5) == 0 && fl == sizeof from);
        close_plain(s);
        close_plain(p);
        close_plain(q);
    }
}

static void sends(void) {
    struct end pe, re;
    size_t len = 8u << 20;
    char *big = (char *)calloc(1, len);
    REQUIRE(big);
    for (int nonblocking = 0; nonblocking < 2; nonblocking++) {
        struct twins t;
        twins_tcp(&t);
        mode(t.p[0], nonblocking);
        mode(t.q[0], nonblocking);
        if (!nonblocking) {
            timeo(t.p[0], SO_SNDTIMEO, 60);
            timeo(t.q[0], SO_SNDTIMEO, 60);
        }
        /* More than the buffers hold, the peer not reading: a partial
           count (the timeout passed, or at once), then EAGAIN. */
        RUN_CALL(pe, (send)(t.p[0], big, len, RT_NOSIGNAL));
        RUN_CALL(re, send(t.q[0], big, len, RT_NOSIGNAL));
#ifdef _WIN32
        /* Windows: a blocking send its timeout stops fails, whatever it sent. */
        if (!nonblocking) CHECK(same("send, timed out", pe, re) && re.err == WSAETIMEDOUT);
        else
#endif
        CHECK(pe.r > 0 && pe.r < (long long)len && re.r > 0 && re.r < (long long)len);
        CHECK(nonblocking ? re.ms < 500 : re.ms >= 50);
        RUN_CALL(pe, (send)(t.p[0], big, len, RT_NOSIGNAL));
        RUN_CALL(re, send(t.q[0], big, len, RT_NOSIGNAL));
        CHECK(same("send, buffers full", pe, re));
        /* (A little room may have opened: a small count then.) */
        CHECK(re.r == -1 ? re.err == (nonblocking ? RT_EWOULDBLOCK : RT_SOCKET_TIMEOUT_ERROR) : re.r < (long long)len);
        CHECK_MODE(t.q[0], nonblocking);
        twins_close(&t);
    }
    free(big);
#ifndef _WIN32
    /* A peer that is gone: EPIPE (SIGPIPE ignored here, as the plain call). */
    struct twins t;
    twins_tcp(&t);
    close_plain(t.p[1]);
    close_plain(t.q[1]);
    t.p[1] = socket(AF_INET, SOCK_STREAM, 0);
    t.q[1] = socket(AF_INET, SOCK_STREAM, 0);
    sleep_ms(20);
    (send)(t.p[0], "x", 1, 0);
    send(t.q[0], "x", 1, 0);
    sleep_ms(20);
    RUN_CALL(pe, (send)(t.p[0], "x", 1, 0));
    RUN_CALL(re, send(t.q[0], "x", 1, 0));
    CHECK(same("send, peer gone", pe, re));
    twins_close(&t);
#endif
}

static void accepts(void) {
    struct end pe, re;
    for (int nonblocking = 0; nonblocking < 2; nonblocking++) {
        struct sockaddr_in pa, qa;
        rsock_socket p = tcp_listener(4, &pa), q = tcp_listener(4, &qa);
        mode(p, nonblocking);
        mode(q, nonblocking);
        if (!nonblocking) {
            timeo(p, SO_RCVTIMEO, 60);
            timeo(q, SO_RCVTIMEO, 60);
        }
#ifdef _WIN32
        /* Windows' accept ignores SO_RCVTIMEO: the plain call would wait
           for ever. */
        if (nonblocking)
#endif
        {
            RUN_CALL(pe, (accept)(p, NULL, NULL));
            RUN_CALL(re, accept(q, NULL, NULL));
            CHECK(same("accept, nothing pending", pe, re));
            CHECK(re.r == -1 && re.err == (nonblocking ? RT_EWOULDBLOCK : RT_SOCKET_TIMEOUT_ERROR));
        }
        rsock_socket cp = socket(AF_INET, SOCK_STREAM, 0), cq = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE((connect)(cp, (struct sockaddr *)&pa, sizeof pa) == 0);
        REQUIRE((connect)(cq, (struct sockaddr *)&qa, sizeof qa) == 0);
        sleep_ms(20);
        rsock_socket sp, sq;
        RUN_CALL(pe, sp = (accept)(p, NULL, NULL));
        RUN_CALL(re, sq = accept(q, NULL, NULL));
        CHECK(sock_ok(sp) && sock_ok(sq));
        if (sock_ok(sp)) close_plain(sp);
        if (sock_ok(sq)) close_plain(sq);
        close_plain(cp);
        close_plain(cq);
        close_plain(p);
        close_plain(q);
    }
}

/* The connect of a socket taken through poll and SO_ERROR, as a program
   with a non-blocking connect does. */
static int connect_outcome(rsock_socket s) {
    rsock_pollfd pfd = {s, POLLOUT, 0};
    if (rt_poll(&pfd, 1, 2000) != 1) return -1;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &len);
    return err;
}

static void connects(void) {
    struct end pe, re;
    struct sockaddr_in a, closed;
    rsock_socket l = tcp_listener(8, &a);
    rsock_socket gone = tcp_listener(1, &closed);
    close_plain(gone); /* nothing listens there now */
    /* Non-blocking: EINPROGRESS (WSAEWOULDBLOCK) at once, and the
       connection completes on its own, as with the plain call. */
    for (int to_closed = 0; to_closed < 2; to_closed++) {
        struct sockaddr_in *to = to_closed ? &closed : &a;
        rsock_socket p = socket(AF_INET, SOCK_STREAM, 0), q = socket(AF_INET, SOCK_STREAM, 0);
        mode(p, 1);
        mode(q, 1);
        RUN_CALL(pe, (connect)(p, (struct sockaddr *)to, sizeof *to));
        RUN_CALL(re, connect(q, (struct sockaddr *)to, sizeof *to));
        CHECK(same(to_closed ? "non-blocking connect, refused" : "non-blocking connect", pe, re));
        if (re.r == -1) {
            CHECK(re.err == RT_CONNECT_PENDING_PLAIN || re.err == RT_ECONNREFUSED);
            if (re.err == RT_CONNECT_PENDING_PLAIN) CHECK(connect_outcome(p) == connect_outcome(q));
        }
        CHECK_MODE(q, 1);
        close_plain(p);
        close_plain(q);
    }
    /* Blocking: connected, or refused. */
    for (int to_closed = 0; to_closed < 2; to_closed++) {
        struct sockaddr_in *to = to_closed ? &closed : &a;
        rsock_socket p = socket(AF_INET, SOCK_STREAM, 0), q = socket(AF_INET, SOCK_STREAM, 0);
        RUN_CALL(pe, (connect)(p, (struct sockaddr *)to, sizeof *to));
        RUN_CALL(re, connect(q, (struct sockaddr *)to, sizeof *to));
        CHECK(same(to_closed ? "blocking connect, refused" : "blocking connect", pe, re));
        CHECK_MODE(q, 0);
        close_plain(p);
        close_plain(q);
    }
    close_plain(l);
#ifdef __linux__
    /* Linux bounds a blocking connect by SO_SNDTIMEO and reports
       EINPROGRESS when it passes (a listener whose queue is full drops the
       SYN, so the connect stays pending). */
    if (full_queue_stalls()) {
        struct sockaddr_in f;
        rsock_socket full = tcp_listener(0, &f), filler[2];
        for (int i = 0; i < 2; i++) {
            filler[i] = socket(AF_INET, SOCK_STREAM, 0);
            mode(filler[i], 1);
            (connect)(filler[i], (struct sockaddr *)&f, sizeof f);
        }
        sleep_ms(50);
        rsock_socket p = socket(AF_INET, SOCK_STREAM, 0), q = socket(AF_INET, SOCK_STREAM, 0);
        timeo(p, SO_SNDTIMEO, 100);
        timeo(q, SO_SNDTIMEO, 100);
        RUN_CALL(pe, (connect)(p, (struct sockaddr *)&f, sizeof f));
        RUN_CALL(re, connect(q, (struct sockaddr *)&f, sizeof f));
        CHECK(same("blocking connect, SO_SNDTIMEO passes", pe, re) && re.err == EINPROGRESS);
        close_plain(p);
        close_plain(q);
        for (int i = 0; i < 2; i++) close_plain(filler[i]);
        close_plain(full);
    }
#endif
}

/* What the plain call cannot do: a blocking call with no socket timeout
   is cancelled from another thread, nothing consumed. */
struct blocked {
    rsock_socket s;
    rsock_token *tok;
    long long r;
    int err;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int published;
};

static void *blocked_main(void *arg) {
    struct blocked *b = (struct blocked *)arg;
    pthread_mutex_lock(&b->lock);
    b->tok = rsock_thread_token();
    b->published = 1;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    char c;
    rt_set_error(0);
    b->r = recv(b->s, &c, 1, 0);
    b->err = rsock_last_error();
    return NULL;
}

static void cancellable_and_nothing_lost(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    struct blocked b;
    memset(&b, 0, sizeof b);
    b.s = sv[0];
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, blocked_main, &b) == 0);
    pthread_mutex_lock(&b.lock);
    while (!b.published) pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    sleep_ms(30);
    double t0 = now_ms();
    rsock_cancel(b.tok);
    pthread_join(th, NULL);
    CHECK(b.r == -1 && b.err == RSOCK_ECANCELED && now_ms() - t0 < 1000);
    REQUIRE((send)(sv[1], "k", 1, 0) == 1);
    char c = 0;
    CHECK((recv)(sv[0], &c, 1, 0) == 1 && c == 'k');
    rsock_token_unref(b.tok);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
    close_pair(sv);
}

static void bad_timeouts(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    char c;
    CHECK_ERR(rsock_recv(NULL, sv[0], &c, 1, 0, -3), RT_EINVAL);
    CHECK_ERR(rsock_recv(NULL, sv[0], &c, 1, 0, INT_MIN), RT_EINVAL);
    CHECK_ERR(rsock_block(NULL, sv[0], RSOCK_READABLE, RSOCK_SOCKET_TIMEOUT), RT_EINVAL);
    rsock_pollfd p = {sv[0], POLLIN, 0};
    CHECK_ERR(rsock_poll(NULL, &p, 1, RSOCK_SOCKET_TIMEOUT), RT_EINVAL);
    CHECK_ERR(rsock_connect_host(NULL, "127.0.0.1", "9", SOCK_STREAM, RSOCK_SOCKET_TIMEOUT), RT_EINVAL);
    CHECK_ERR(rsock_set_nonblocking(RSOCK_INVALID_SOCKET, 1), RT_EBADSOCK);
    close_pair(sv);
}

int main(void) {
    rt_watchdog(120);
    rt_ignore_sigpipe();
    RUN(receives);
    RUN(datagrams);
    RUN(sends);
    RUN(accepts);
    RUN(connects);
    RUN(cancellable_and_nothing_lost);
    RUN(bad_timeouts);
    return rt_finish("test_plain");
}
