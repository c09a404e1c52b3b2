/* The cancellable socket calls: results, errors, nothing lost, modes. */
#include "rtest.h"

#ifndef _WIN32
#include <arpa/inet.h>
#endif

static void recv_ready_timeout_and_zero(void) {
    rsock_token *t = rsock_token_new();
    rsock_socket sv[2];
    unix_pair(sv);
    char buf[16];
    CHECK(send(sv[1], "hello", 5, 0) == 5);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, RSOCK_INFINITE) == 5 && memcmp(buf, "hello", 5) == 0);

    double t0 = now_ms();
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, 50), RSOCK_ETIMEDOUT);
    CHECK(now_ms() - t0 >= 50);
    /* Timeout 0 checks once. */
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, 0), RSOCK_ETIMEDOUT);
    CHECK(send(sv[1], "x", 1, 0) == 1);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, 0) == 1);
    /* End of stream. */
    close_sock(sv[1]);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, 1000) == 0);
    close_sock(sv[0]);
    rsock_token_unref(t);
}

static void recv_cancel_consumes_nothing(void) {
    rsock_token *t = rsock_token_new();
    rsock_socket sv[2];
    tcp_pair(sv);
    char buf[16];
    struct canceller c;
    start_cancel(&c, t, 30);
    double t0 = now_ms();
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, 5000), RSOCK_ECANCELED);
    CHECK(now_ms() - t0 < 2000);
    join_cancel(&c);
    CHECK(send(sv[1], "abc", 3, 0) == 3);
    sleep_ms(20);
    /* A cancel that landed before the call: fails, and the bytes stay queued. */
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, 1000), RSOCK_ECANCELED);
    CHECK(pending(sv[0]) == 3);
    CHECK(rsock_token_reset(t) == 0);
    /* MSG_PEEK is honoured: peeking consumes nothing either. */
    CHECK(rsock_recv(t, sv[0], buf, 1, MSG_PEEK, 1000) == 1 && buf[0] == 'a');
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, 1000) == 3 && memcmp(buf, "abc", 3) == 0);
    close_pair(sv);
    rsock_token_unref(t);
}

static void *shut_down_later(void *arg) {
    sleep_ms(50);
    shutdown(*(rsock_socket *)arg, SHUT_WR);
    return NULL;
}

static void recv_waitall_gathers_a_full_buffer(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    rsock_token *t = rsock_token_new();
    CHECK(send(sv[1], "12345", 5, 0) == 5);
    CHECK(send(sv[1], "67890", 5, 0) == 5);
    char buf[10];
    CHECK(rsock_recv(t, sv[0], buf, 10, MSG_WAITALL, 1000) == 10 && memcmp(buf, "1234567890", 10) == 0);
    /* A cancel part-way returns what arrived, with errno saying why. */
    struct canceller c;
    start_cancel(&c, t, 50);
    CHECK(send(sv[1], "ab", 2, 0) == 2);
    double t0 = now_ms();
    rt_set_error(0);
    CHECK(rsock_recv(t, sv[0], buf, 10, MSG_WAITALL, 5000) == 2);
    CHECK(rsock_last_error() == RSOCK_ECANCELED && now_ms() - t0 < 4000);
    join_cancel(&c);
    rsock_token_reset(t);
    /* End of stream part-way (the peer shuts down while the call waits):
       the partial count with errno 0, not the EAGAIN of the attempt made
       before waiting; then 0. */
    CHECK(send(sv[1], "xy", 2, 0) == 2);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, shut_down_later, &sv[1]) == 0);
    rt_set_error(EINTR);
    CHECK(rsock_recv(t, sv[0], buf, 10, MSG_WAITALL, 2000) == 2 && memcmp(buf, "xy", 2) == 0);
    CHECK(rsock_last_error() == 0);
    pthread_join(th, NULL);
    CHECK(rsock_recv(t, sv[0], buf, 10, MSG_WAITALL, 2000) == 0);
    close_pair(sv);
    rsock_token_unref(t);
}

#ifndef _WIN32
/* Every call leaves the socket's blocking mode as it found it. */
static void modes_left_as_found(void) {
    rsock_token *t = rsock_token_new();
    for (int nb = 0; nb <= 1; nb++) {
        int sv[2];
        tcp_pair(sv);
        set_nonblocking(sv[0], nb);
        char buf[4];
        CHECK_ERR(rsock_recv(t, sv[0], buf, 4, 0, 0), RSOCK_ETIMEDOUT);
        CHECK(is_nonblocking(sv[0]) == nb);
        CHECK(rsock_send(t, sv[0], "ab", 2, 0, 1000) == 2);
        CHECK(is_nonblocking(sv[0]) == nb);
        CHECK(rsock_recv(t, sv[1], buf, 4, 0, 1000) == 2);
        CHECK(rsock_block(t, sv[0], RSOCK_WRITABLE, 0) == RSOCK_WRITABLE);
        CHECK(is_nonblocking(sv[0]) == nb);
        close_pair(sv);

        struct sockaddr_in a;
        int l = tcp_listener(8, &a);
        set_nonblocking(l, nb);
        CHECK_ERR(rsock_accept(t, l, NULL, NULL, 0), RSOCK_ETIMEDOUT);
        CHECK(is_nonblocking(l) == nb);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        set_nonblocking(c, nb);
        CHECK(rsock_connect(t, c, (struct sockaddr *)&a, sizeof a, 1000) == 0);
        CHECK(is_nonblocking(c) == nb);
        int s = rsock_accept(t, l, NULL, NULL, 1000);
        CHECK(s >= 0);
        CHECK(is_nonblocking(l) == nb);
        CHECK(s >= 0 && is_nonblocking(s) == 0); /* accepted sockets are blocking */
        close(s);
        close(c);
        close(l);
    }
    rsock_token_unref(t);
}
#endif

/* MSG_WAITALL where it cannot gather (with MSG_PEEK, or on a datagram
   socket) returns what is there, on every system (Winsock itself would
   fail both with WSAEOPNOTSUPP). */
static void waitall_with_peek_or_datagrams(void) {
    rsock_token *t = rsock_token_new();
    rsock_socket sv[2];
    tcp_pair(sv);
    char buf[16];
    CHECK(send(sv[1], "abc", 3, 0) == 3);
    sleep_ms(20);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, MSG_PEEK | MSG_WAITALL, 1000) == 3);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, 1000) == 3 && memcmp(buf, "abc", 3) == 0);
    close_pair(sv);
    struct sockaddr_in a;
    rsock_socket u = udp_bound(&a);
    rsock_socket c = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(sock_ok(c));
    CHECK(sendto(c, "dgram", 5, 0, (struct sockaddr *)&a, sizeof a) == 5);
    CHECK(rsock_recv(t, u, buf, sizeof buf, MSG_WAITALL, 1000) == 5 && memcmp(buf, "dgram", 5) == 0);
    close_sock(c);
    close_sock(u);
    rsock_token_unref(t);
}

static void udp_recvfrom_sendto(void) {
    rsock_token *t = rsock_token_new();
    rsock_socket a = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr;
    rsock_socket b = udp_bound(&addr);

    char buf[64];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    CHECK_ERR(rsock_recvfrom(t, b, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen, 20), RSOCK_ETIMEDOUT);
    CHECK(rsock_sendto(t, a, "dgram", 5, 0, (struct sockaddr *)&addr, sizeof addr, 1000) == 5);
    sleep_ms(10);
    rsock_cancel(t);
    CHECK_ERR(rsock_recvfrom(t, b, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen, 1000), RSOCK_ECANCELED);
    rsock_token_reset(t);
    flen = sizeof from;
    CHECK(rsock_recvfrom(t, b, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen, 1000) == 5);
    CHECK(memcmp(buf, "dgram", 5) == 0 && flen == sizeof from && from.sin_family == AF_INET);
    /* Addresses are optional, as for recvfrom. */
    CHECK(rsock_sendto(t, a, "x", 1, 0, (struct sockaddr *)&addr, sizeof addr, 1000) == 1);
    CHECK(rsock_recvfrom(t, b, buf, sizeof buf, 0, NULL, NULL, 1000) == 1);
    CHECK_ERR(rsock_recvfrom(t, b, buf, sizeof buf, 0, (struct sockaddr *)&from, NULL, 0), RT_EINVAL);
    CHECK_ERR(rsock_sendto(t, a, "x", 1, 0, NULL, 4, 0), RT_EINVAL);
    close_sock(a);
    close_sock(b);
    rsock_token_unref(t);
}

static void accept_cancel_leaves_connection_queued(void) {
    rsock_token *t = rsock_token_new();
    struct sockaddr_in a;
    rsock_socket l = tcp_listener(8, &a);
    struct canceller c;
    start_cancel(&c, t, 30);
    CHECK(rsock_accept(t, l, NULL, NULL, 5000) == RSOCK_INVALID_SOCKET && rsock_last_error() == RSOCK_ECANCELED);
    join_cancel(&c);
    rsock_socket cl = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(cl, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(rsock_accept(t, l, NULL, NULL, 1000) == RSOCK_INVALID_SOCKET && rsock_last_error() == RSOCK_ECANCELED);
    rsock_token_reset(t);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    rsock_socket s = rsock_accept(t, l, (struct sockaddr *)&peer, &plen, 1000);
    CHECK(sock_ok(s) && peer.sin_family == AF_INET);
    CHECK(rsock_accept(t, l, NULL, NULL, 0) == RSOCK_INVALID_SOCKET && rsock_last_error() == RSOCK_ETIMEDOUT);
    close_sock(s);
    close_sock(cl);
    close_sock(l);
    rsock_token_unref(t);
}

/* A loopback address whose connects hang: its accept queue is full, so the
   kernel drops further SYNs. Returns the listener; fills `a`. */
static rsock_socket hanging_listener(struct sockaddr_in *a, rsock_socket fillers[4]) {
    rsock_socket l = tcp_listener(0, a);
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM, 0);
        set_nonblocking(fillers[i], 1);
        connect(fillers[i], (struct sockaddr *)a, sizeof *a);
    }
    sleep_ms(50);
    return l;
}

static void connect_results(void) {
    rsock_token *t = rsock_token_new();
    struct sockaddr_in a;
    rsock_socket l = tcp_listener(8, &a);
    close_sock(l); /* nobody listens there now */
    rsock_socket c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_ERR(rsock_connect(t, c, (struct sockaddr *)&a, sizeof a, 1000), RT_ECONNREFUSED);
    close_sock(c);

#ifdef _WIN32
    if (!full_queue_stalls()) {
        printf("skip connect_results (timeout, cancel): connects to a full listener do not stall here\n");
        rsock_token_unref(t);
        return;
    }
#endif
    rsock_socket fill[4];
    l = hanging_listener(&a, fill);
    c = socket(AF_INET, SOCK_STREAM, 0);
    double t0 = now_ms();
    CHECK_ERR(rsock_connect(t, c, (struct sockaddr *)&a, sizeof a, 100), RSOCK_ETIMEDOUT);
    CHECK(now_ms() - t0 >= 100);
    CHECK_MODE(c, 0);
    close_sock(c);
    c = socket(AF_INET, SOCK_STREAM, 0);
    struct canceller cc;
    start_cancel(&cc, t, 30);
    CHECK_ERR(rsock_connect(t, c, (struct sockaddr *)&a, sizeof a, 5000), RSOCK_ECANCELED);
    join_cancel(&cc);
    close_sock(c);
    for (int i = 0; i < 4; i++) close_sock(fill[i]);
    close_sock(l);
    CHECK_ERR(rsock_connect(t, (rsock_socket)3000, (struct sockaddr *)&a, sizeof a, 0), RSOCK_ECANCELED);
    rsock_token_unref(t);
}

/* rsock_send returns the exact count queued when it stops part-way. */
static void send_partial_counts_are_exact(void) {
    rsock_token *t = rsock_token_new();
    enum { BIG = 8 << 20 };
    char *buf = malloc(BIG);
    REQUIRE(buf);
    memset(buf, 'z', BIG);
    for (int round = 0; round < 2; round++) {
        rsock_socket sv[2];
        tcp_pair(sv);
        intptr_t n;
        int why;
        rt_set_error(0);
        if (round == 0) {
            n = rsock_send(t, sv[0], buf, BIG, 0, 100); /* times out part-way */
            why = rsock_last_error();
            CHECK(why == RSOCK_ETIMEDOUT);
        } else {
            struct canceller c;
            start_cancel(&c, t, 50);
            n = rsock_send(t, sv[0], buf, BIG, 0, RSOCK_INFINITE);
            why = rsock_last_error();
            CHECK(why == RSOCK_ECANCELED);
            join_cancel(&c);
            rsock_token_reset(t);
        }
        CHECK(n > 0 && n < BIG);
        shutdown(sv[0], SHUT_WR);
        long total = 0;
        intptr_t r;
        while ((r = rsock_recv(t, sv[1], buf, BIG, 0, 2000)) > 0) total += r;
        CHECK(r == 0);
        CHECK(total == n);
        close_pair(sv);
    }
    /* Nothing queued yet and cancelled: -1, not 0. */
    rsock_socket sv[2];
    unix_pair(sv);
    rsock_cancel(t);
    CHECK_ERR(rsock_send(t, sv[0], "x", 1, 0, 1000), RSOCK_ECANCELED);
    close_pair(sv);
    free(buf);
    rsock_token_unref(t);
}

#ifndef _WIN32
/* A caller's MSG_DONTWAIT means one attempt, whatever the timeout. */
static void dontwait_makes_one_attempt(void) {
    rsock_token *t = rsock_token_new();
    int sv[2];
    tcp_pair(sv);
    char buf[8];
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, MSG_DONTWAIT, RSOCK_INFINITE), EAGAIN);
    CHECK_ERR(rsock_recvfrom(t, sv[0], buf, sizeof buf, MSG_DONTWAIT, NULL, NULL, RSOCK_INFINITE),
              EAGAIN);
    CHECK(send(sv[1], "abc", 3, 0) == 3);
    for (int i = 0; i < 200 && pending(sv[0]) < 3; i++) sleep_ms(1);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, MSG_DONTWAIT, RSOCK_INFINITE) == 3);
    /* A full send buffer: one send queues what fits and returns. */
    enum { BIG = 16 << 20 };
    char *big = calloc(1, BIG);
    REQUIRE(big);
    intptr_t n = rsock_send(t, sv[0], big, BIG, MSG_DONTWAIT, RSOCK_INFINITE);
    CHECK(n > 0 && n < BIG);
    CHECK_ERR(rsock_send(t, sv[0], big, BIG, MSG_DONTWAIT, RSOCK_INFINITE), EAGAIN);
    CHECK(is_nonblocking(sv[0]) == 0);
    /* A cancel still wins. */
    rsock_cancel(t);
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, MSG_DONTWAIT, 0), RSOCK_ECANCELED);
    free(big);
    close_pair(sv);
    rsock_token_unref(t);
}
#endif

struct reader {
    rsock_socket fd;
    long total;
};

static void *drain_all(void *arg) {
    struct reader *r = arg;
    char buf[65536];
    int n;
    while ((n = (int)recv(r->fd, buf, sizeof buf, 0)) > 0) r->total += n;
    return NULL;
}

static void send_blocks_until_all_queued(void) {
    rsock_token *t = rsock_token_new();
    enum { BIG = 16 << 20 };
    char *buf = calloc(1, BIG);
    rsock_socket sv[2];
    tcp_pair(sv);
    set_nonblocking(sv[0], 1); /* also on a non-blocking socket */
    struct reader r = {sv[1], 0};
    pthread_t th;
    pthread_create(&th, NULL, drain_all, &r);
    CHECK(rsock_send(t, sv[0], buf, BIG, 0, RSOCK_INFINITE) == BIG);
    CHECK_MODE(sv[0], 1);
    shutdown(sv[0], SHUT_WR);
    pthread_join(th, NULL);
    CHECK(r.total == BIG);
    close_pair(sv);
    free(buf);
    rsock_token_unref(t);
}

#ifndef _WIN32
static volatile sig_atomic_t usr1_count;
static void on_usr1(int sig) {
    (void)sig;
    usr1_count++;
}

/* A signal during a wait is not a cancellation: the wait resumes with the
   time left. */
static void eintr_resumes_with_remaining_time(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: poll fails with EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    rsock_token *t = rsock_token_new();
    int sv[2];
    unix_pair(sv);
    struct pester p;
    usr1_count = 0;
    start_pester(&p, SIGUSR1, 2000);
    char c;
    double t0 = now_ms();
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 300), RSOCK_ETIMEDOUT);
    double el = now_ms() - t0;
    CHECK(el >= 300 && el < 3000);
    stop_pester(&p);
    CHECK(usr1_count > 10);
    close_pair(sv);
    rsock_token_unref(t);
    signal(SIGUSR1, SIG_DFL);
}
#endif

#ifdef _WIN32
/* Whether this system reports an ICMP port unreachable to a connected UDP
   socket (Wine does not); `dead` has no listener. */
static int udp_errors_reported(struct sockaddr_in *dead) {
    rsock_socket u = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(connect(u, (struct sockaddr *)dead, sizeof *dead) == 0);
    CHECK(send(u, "?", 1, 0) == 1);
    rsock_pollfd p = {u, POLLIN, 0};
    int r = rt_poll(&p, 1, 200);
    close_sock(u);
    return r == 1;
}
#endif

static void block_events(void) {
#ifdef _WIN32
    int resets = resets_reported();
#endif
    rsock_token *t = rsock_token_new();
    rsock_socket sv[2];
    unix_pair(sv);
    CHECK(rsock_block(t, sv[0], RSOCK_WRITABLE, 1000) == RSOCK_WRITABLE);
    CHECK(rsock_block(t, sv[0], RSOCK_READABLE | RSOCK_WRITABLE, 1000) == RSOCK_WRITABLE);
    CHECK_ERR(rsock_block(t, sv[0], RSOCK_READABLE, 20), RSOCK_ETIMEDOUT);
    CHECK(send(sv[1], "q", 1, 0) == 1);
    CHECK(rsock_block(t, sv[0], RSOCK_READABLE | RSOCK_WRITABLE, 1000) == (RSOCK_READABLE | RSOCK_WRITABLE));
    CHECK(rsock_block(t, sv[0], RSOCK_READABLE, 1000) == RSOCK_READABLE);
    CHECK(pending(sv[0]) == 1);
    close_pair(sv);

    /* A reset connection counts as ready for every requested event, and the
       next call reports the error. */
    tcp_pair(sv);
    struct linger lg = {1, 0};
    setsockopt(sv[1], SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg);
    close_sock(sv[1]);
    sleep_ms(20);
    CHECK(rsock_block(t, sv[0], RSOCK_READABLE, 1000) == RSOCK_READABLE);
    char c;
#ifdef _WIN32
    if (!resets) {
        printf("     (this system reports a reset as the end of the stream)\n");
        CHECK(rsock_recv(t, sv[0], &c, 1, 0, 1000) == 0);
    } else
#endif
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 1000), RT_ECONNRESET);
    close_sock(sv[0]);

    /* A pending error with no data (ICMP port unreachable on a connected UDP
       socket) counts as readable, and the next call reports it. */
    {
        struct sockaddr_in dead;
        close_sock(udp_bound(&dead)); /* nothing listens on that port now */
#ifdef _WIN32
        if (!udp_errors_reported(&dead)) {
            printf("skip block_events (UDP error): this system does not report ICMP errors on UDP\n");
        } else
#endif
        {
            rsock_socket u = socket(AF_INET, SOCK_DGRAM, 0);
            REQUIRE(connect(u, (struct sockaddr *)&dead, sizeof dead) == 0);
            CHECK(send(u, "?", 1, 0) == 1);
            sleep_ms(20);
            CHECK(rsock_block(t, u, RSOCK_READABLE, 1000) == RSOCK_READABLE);
#ifdef _WIN32
            /* Windows reports a port unreachable as a reset (Wine as Linux does). */
            rt_set_error(0);
            long r = (long)rsock_recv(t, u, &c, 1, 0, 1000);
            int e = rsock_last_error();
            CHECK(r == -1 && (e == WSAECONNRESET || e == WSAECONNREFUSED));
#else
            CHECK_ERR(rsock_recv(t, u, &c, 1, 0, 1000), ECONNREFUSED);
#endif
            close_sock(u);
        }
    }

    /* Hang-up while waiting only for writability of a full socket. */
    unix_pair(sv);
    set_nonblocking(sv[0], 1);
    char junk[4096] = {0};
    while (send(sv[0], junk, sizeof junk, 0) > 0) {
    }
    CHECK_ERR(rsock_block(t, sv[0], RSOCK_WRITABLE, 0), RSOCK_ETIMEDOUT);
    close_sock(sv[1]);
    CHECK(rsock_block(t, sv[0], RSOCK_WRITABLE, 1000) == RSOCK_WRITABLE);
    close_sock(sv[0]);

    struct canceller cc;
    unix_pair(sv);
    start_cancel(&cc, t, 30);
    CHECK_ERR(rsock_block(t, sv[0], RSOCK_READABLE, RSOCK_INFINITE), RSOCK_ECANCELED);
    join_cancel(&cc);
    close_pair(sv);
    rsock_token_unref(t);
}

static void poll_many(void) {
    rsock_token *t = rsock_token_new();
    rsock_socket a[2], b[2];
    unix_pair(a);
    unix_pair(b);
    rsock_pollfd fds[3] = {{a[0], POLLIN, 0}, {RSOCK_INVALID_SOCKET, POLLIN, 0}, {b[0], POLLIN, 0}};
    CHECK(rsock_poll(t, fds, 3, 20) == 0); /* timeout: 0, as poll() */
    CHECK(send(b[1], "p", 1, 0) == 1);
    fds[2].revents = 77;
    CHECK(rsock_poll(t, fds, 3, 1000) == 1);
    CHECK(fds[0].revents == 0 && fds[1].revents == 0 && fds[2].revents == RT_POLLIN_REVENTS);
    double t0 = now_ms();
    CHECK(rsock_poll(t, NULL, 0, 30) == 0); /* a cancellable sleep */
    CHECK(now_ms() - t0 >= 30);
    CHECK_ERR(rsock_poll(t, NULL, 2, 0), RT_EINVAL);
    /* Small and large sets (the library keeps small ones on the stack). */
    for (int n = 14; n <= 18; n++) {
        rsock_pollfd many[18];
        for (int i = 0; i < n; i++) many[i] = (rsock_pollfd){i == n - 1 ? b[0] : a[0], POLLIN, 0};
        CHECK(rsock_poll(t, many, (size_t)n, 1000) == 1 && many[n - 1].revents == RT_POLLIN_REVENTS);
    }
    struct canceller cc;
    start_cancel(&cc, t, 30);
    fds[2].fd = a[1];
    fds[2].events = POLLIN;
    CHECK_ERR(rsock_poll(t, fds, 3, RSOCK_INFINITE), RSOCK_ECANCELED);
    join_cancel(&cc);
    close_pair(a);
    close_pair(b);
    rsock_token_unref(t);
}

static void bad_arguments(void) {
    rsock_token *t = rsock_token_new();
    rsock_socket sv[2];
    unix_pair(sv);
    char buf[4];
    struct sockaddr_in a = {0};
    socklen_t al = sizeof a;
    const rsock_socket bad = RSOCK_INVALID_SOCKET, closed = (rsock_socket)4000;
    CHECK_ERR(rsock_recv(t, bad, buf, 4, 0, 0), RT_EBADSOCK);
    CHECK_ERR(rsock_send(t, bad, buf, 4, 0, 0), RT_EBADSOCK);
    CHECK_ERR(rsock_recvfrom(t, bad, buf, 4, 0, NULL, NULL, 0), RT_EBADSOCK);
    CHECK_ERR(rsock_sendto(t, bad, buf, 4, 0, NULL, 0, 0), RT_EBADSOCK);
    CHECK_ERR(rsock_accept(t, bad, NULL, NULL, 0), RT_EBADSOCK);
    CHECK_ERR(rsock_connect(t, bad, (struct sockaddr *)&a, sizeof a, 0), RT_EBADSOCK);
    CHECK_ERR(rsock_block(t, bad, RSOCK_READABLE, 0), RT_EBADSOCK);
    CHECK_ERR(rsock_recv(t, closed, buf, 4, 0, 0), RT_EBADSOCK); /* closed descriptor */
    CHECK_ERR(rsock_block(t, closed, RSOCK_READABLE, 0), RT_EBADSOCK);
    CHECK_ERR(rsock_recv(t, sv[0], NULL, 4, 0, 0), RT_EINVAL);
    CHECK_ERR(rsock_send(t, sv[0], NULL, 4, 0, 0), RT_EINVAL);
    CHECK_ERR(rsock_recv(t, sv[0], buf, (size_t)-1, 0, 0), RT_EINVAL);
    CHECK_ERR(rsock_recv(t, sv[0], buf, 4, 0, -3), RT_EINVAL);
    CHECK_ERR(rsock_block(t, sv[0], 0, 0), RT_EINVAL);
    CHECK_ERR(rsock_block(t, sv[0], 8, 0), RT_EINVAL);
    CHECK_ERR(rsock_block(t, sv[0], RSOCK_READABLE, -5), RT_EINVAL);
    CHECK_ERR(rsock_poll(t, NULL, 0, -9), RT_EINVAL);
    CHECK_ERR(rsock_connect(t, sv[0], NULL, 0, 0), RT_EINVAL);
    CHECK_ERR(rsock_accept(t, sv[0], (struct sockaddr *)&a, NULL, 0), RT_EINVAL);
    /* Errors from the system pass through unchanged. */
    rsock_socket p[2];
    REQUIRE(rt_pipe(p) == 0);
    CHECK_ERR(rsock_recv(t, p[0], buf, 4, 0, 0), RT_ENOTSOCK);
    CHECK_ERR(rsock_accept(t, sv[0], (struct sockaddr *)&a, &al, 0), RT_EINVAL); /* not listening */
    rt_pipe_close(p[0]);
    rt_pipe_close(p[1]);
    close_pair(sv);
    rsock_token_unref(t);
}

int main(void) {
    rt_watchdog(120);
    rt_ignore_sigpipe();
    RUN(recv_ready_timeout_and_zero);
    RUN(recv_cancel_consumes_nothing);
    RUN(recv_waitall_gathers_a_full_buffer);
    RUN_POSIX(modes_left_as_found, "Windows cannot report a socket's blocking mode");
    RUN(udp_recvfrom_sendto);
    RUN(waitall_with_peek_or_datagrams);
    RUN(accept_cancel_leaves_connection_queued);
    RUN(connect_results);
    RUN(send_partial_counts_are_exact);
    RUN(send_blocks_until_all_queued);
    RUN_POSIX(dontwait_makes_one_attempt, "Windows has no MSG_DONTWAIT");
    RUN_POSIX(eintr_resumes_with_remaining_time, "needs signals (EINTR)");
    RUN(block_events);
    RUN(poll_many);
    RUN(bad_arguments);
    return rt_finish("test_calls");
}
