/* rsock_connect_host: resolution, then Happy Eyeballs (RFC 8305) over
   loopback, under one timeout and one token. Names go to the stand-in
   resolver of fake_resolver.h ("localhost" is ::1 then 127.0.0.1 there).

   Each test takes one port on ::1 and 127.0.0.1 (and 127.0.0.2) and decides
   per address: a listener, a closed port (bound but not listening: refused at
   once), or a stalled listener (its accept queue is full, so the kernel
   drops new SYNs and a connect to it stays pending).

   On Windows there is no stand-in resolver and no interposed connect():
   only what numeric addresses can show runs there. */
#include "fake_resolver.h"

#ifndef _WIN32
#include <arpa/inet.h>
#include <poll.h>
#endif

enum mode { UNUSED, REFUSED, LISTENING, STALLED };

struct side {
    rsock_socket fd;     /* the bound or listening socket, or invalid */
    rsock_socket queued; /* the connection that fills a stalled accept queue */
};

/* One port on ::1, 127.0.0.1 and (if asked for) 127.0.0.2. */
struct site {
    char port[8];
    struct side v6, v4, v4b;
};

/* An address and port as a sockaddr; the family follows the address. */
static socklen_t sockaddr_of(const char *ip, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((unsigned short)port);
        return sizeof *a6;
    }
    REQUIRE(inet_pton(AF_INET, ip, &a4->sin_addr) == 1);
    a4->sin_family = AF_INET;
    a4->sin_port = htons((unsigned short)port);
    return sizeof *a4;
}

static rsock_socket bind_on(const char *ip, int port) {
    struct sockaddr_storage ss;
    socklen_t len = sockaddr_of(ip, port, &ss);
    rsock_socket s = socket(ss.ss_family, SOCK_STREAM, 0);
    REQUIRE(sock_ok(s));
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof one);
    if (ss.ss_family == AF_INET6) setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, (const char *)&one, sizeof one);
    if (bind(s, (struct sockaddr *)&ss, len) != 0) {
        close_sock(s);
        return RSOCK_INVALID_SOCKET;
    }
    return s;
}

static int port_of(rsock_socket s) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    REQUIRE(getsockname(s, (struct sockaddr *)&ss, &len) == 0);
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Whether a connection to `s` completes within 200 ms; the client is kept
   in *client if it does. */
static int connects(rsock_socket s, rsock_socket *client) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    REQUIRE(getsockname(s, (struct sockaddr *)&ss, &len) == 0);
    rsock_socket c = socket(ss.ss_family, SOCK_STREAM, 0);
    REQUIRE(sock_ok(c));
    set_nonblocking(c, 1);
    int ok = connect(c, (struct sockaddr *)&ss, len) == 0;
    if (!ok && rt_sock_error() == RT_CONNECT_PENDING) {
        rsock_pollfd p = {c, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof err;
        ok = rt_poll(&p, 1, 200) == 1 && getsockopt(c, SOL_SOCKET, SO_ERROR, (char *)&err, &el) == 0 && err == 0;
    }
    if (ok) *client = c;
    else close_sock(c);
    return ok;
}

static void set_up(struct side *sd, rsock_socket fd, enum mode m) {
    sd->fd = fd;
    sd->queued = RSOCK_INVALID_SOCKET;
    if (m == REFUSED || m == UNUSED) return;
    REQUIRE(listen(fd, m == STALLED ? 0 : 16) == 0);
    if (m == STALLED) {
        /* Backlog 0 queues one connection; after that SYNs are dropped. */
        rsock_socket spare = RSOCK_INVALID_SOCKET;
        REQUIRE(connects(fd, &sd->queued));
        REQUIRE(!connects(fd, &spare));
    }
}

static void open_site3(struct site *st, enum mode v6, enum mode v4, enum mode v4b) {
    for (int tries = 0; tries < 50; tries++) {
        rsock_socket s4 = bind_on("127.0.0.1", 0);
        REQUIRE(sock_ok(s4));
        int port = port_of(s4);
        rsock_socket s6 = bind_on("::1", port);
        rsock_socket s4b = v4b == UNUSED ? RSOCK_INVALID_SOCKET : bind_on("127.0.0.2", port);
        if (!sock_ok(s6) || (v4b != UNUSED && !sock_ok(s4b))) { /* the port is taken: try another */
            close_sock(s4);
            if (sock_ok(s6)) close_sock(s6);
            if (sock_ok(s4b)) close_sock(s4b);
            continue;
        }
        snprintf(st->port, sizeof st->port, "%d", port);
        set_up(&st->v4, s4, v4);
        set_up(&st->v6, s6, v6);
        set_up(&st->v4b, s4b, v4b);
        return;
    }
    REQUIRE(!"no port free on all loopback addresses");
}

static void open_site(struct site *st, enum mode v6, enum mode v4) { open_site3(st, v6, v4, UNUSED); }

static void close_site(struct site *st) {
    struct side *sides[] = {&st->v6, &st->v4, &st->v4b};
    for (int i = 0; i < 3; i++) {
        if (sock_ok(sides[i]->fd)) close_sock(sides[i]->fd);
        if (sock_ok(sides[i]->queued)) close_sock(sides[i]->queued);
    }
}

static int peer_family(rsock_socket s) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return getpeername(s, (struct sockaddr *)&ss, &len) == 0 ? ss.ss_family : -1;
}

#ifndef _WIN32 /* the stand-in resolver and the interposed connect() */
/* Whether a connection waits in the listener's accept queue. */
static int has_pending(int listener) {
    struct pollfd p = {listener, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

/* The returned socket is connected, blocking, close-on-exec and ours. */
static void check_returned(int s, int family, struct side *server) {
    CHECK(s >= 0);
    if (s < 0) return;
    CHECK(peer_family(s) == family);
    CHECK(!is_nonblocking(s));
    CHECK(fcntl(s, F_GETFD) & FD_CLOEXEC);
    struct pollfd p = {server->fd, POLLIN, 0};
    CHECK(poll(&p, 1, 2000) == 1);
    int a = p.revents ? accept(server->fd, NULL, NULL) : -1;
    CHECK(a >= 0);
    CHECK(send(s, "hi", 2, 0) == 2);
    char buf[2];
    CHECK(a >= 0 && recv(a, buf, 2, MSG_WAITALL) == 2);
    if (a >= 0) close(a);
    close(s);
}

/* Fault injection: the library's connect() calls come here (it is linked
   statically). reset_later() fails the attempt to one address and port
   some time after it starts, as a peer refusing late would: shutdown() of
   a socket whose connect is pending fails that connect with ECONNRESET. */
static struct sockaddr_storage reset_addr;
static atomic_int reset_fd = -1;
static double reset_after_ms, reset_at; /* reset_at: now_ms() of the shutdown */

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
    connect_fn real = (connect_fn)dlsym(RTLD_NEXT, "connect");
    int r = real(fd, addr, len), e = errno;
    if (addr && len <= sizeof reset_addr && memcmp(addr, &reset_addr, len) == 0) atomic_store(&reset_fd, fd);
    errno = e;
    return r;
}

static void *resetter(void *arg) {
    (void)arg;
    int fd = -1;
    for (int i = 0; i < 2000 && (fd = atomic_load(&reset_fd)) < 0; i++) sleep_ms(1);
    sleep_ms(reset_after_ms);
    reset_at = now_ms();
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
    return NULL;
}

/* Set up before the connect_host call; stop_resetting() after it. */
static pthread_t reset_later(const char *ip, const char *port, double after_ms) {
    atomic_store(&reset_fd, -1);
    sockaddr_of(ip, atoi(port), &reset_addr);
    reset_after_ms = after_ms;
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, resetter, NULL) == 0);
    return th;
}

static void stop_resetting(pthread_t th) {
    pthread_join(th, NULL);
    memset(&reset_addr, 0, sizeof reset_addr);
}

/* A closed port on one family: the other is tried at once, not after the
   250 ms stagger. */
static void localhost_reaches_whichever_family_listens(void) {
    int fds = fd_count();
    struct site st;
    open_site(&st, REFUSED, LISTENING);
    double t0 = now_ms();
    int s = rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 5000);
    double took = now_ms() - t0;
    check_returned(s, AF_INET, &st.v4);
    CHECK(took < 250);
    printf("     ::1 refused, 127.0.0.1 connected in %.1f ms\n", took);
    close_site(&st);

    open_site(&st, LISTENING, REFUSED);
    s = rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 5000);
    check_returned(s, AF_INET6, &st.v6);
    close_site(&st);
    CHECK(fd_count() == fds); /* nothing of the call stays open */
}

/* The resolver lists 127.0.0.1 first; IPv6 still goes first, and wins
   before the IPv4 attempt is due, so that attempt never starts. */
static void ipv6_goes_first(void) {
    struct site st;
    open_site(&st, LISTENING, LISTENING);
    int s = rsock_connect_host(NULL, "v4first.test", st.port, SOCK_STREAM, 5000);
    check_returned(s, AF_INET6, &st.v6);
    CHECK(!has_pending(st.v4.fd));
    close_site(&st);
}

/* ::1 drops the SYN: after 250 ms 127.0.0.1 is tried, connects and wins;
   the pending IPv6 attempt is closed. */
static void stalled_ipv6_loses_to_ipv4_after_the_stagger(void) {
    int fds = fd_count();
    struct site st;
    open_site(&st, STALLED, LISTENING);
    double t0 = now_ms();
    int s = rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 5000);
    double took = now_ms() - t0;
    check_returned(s, AF_INET, &st.v4);
    CHECK(took >= 250 && took < 1000);
    printf("     ::1 stalled, 127.0.0.1 connected after %.1f ms\n", took);
    close_site(&st);
    CHECK(fd_count() == fds);
}

/* Connects to `name` (on a site with ::1 stalled) while the ::1 attempt is
   reset `after_ms` after it starts, and checks that the listening address
   connects soon after the reset rather than when the stagger would have
   started it. Repeats
   (at most 3 times) when the resetter thread ran later than `latest_ms`
   after the start, which would make the timing prove nothing. */
static void check_failure_starts_next(const char *name, enum mode v4, enum mode v4b,
                                      double after_ms, double latest_ms) {
    for (int round = 0; round < 3; round++) {
        struct site st;
        open_site3(&st, STALLED, v4, v4b);
        pthread_t th = reset_later("::1", st.port, after_ms);
        double t0 = now_ms();
        int s = rsock_connect_host(NULL, name, st.port, SOCK_STREAM, 5000);
        double end = now_ms();
        stop_resetting(th);
        check_returned(s, AF_INET, v4b == LISTENING ? &st.v4b : &st.v4);
        close_site(&st);
        if (reset_at - t0 > latest_ms) continue; /* the resetter was late: again */
        CHECK(end - reset_at < 100);
        printf("     ::1 reset at %.1f ms, the next address connected %.1f ms later\n",
               reset_at - t0, end - reset_at);
        return;
    }
    CHECK(!"the resetter thread was late three times");
}

/* The ::1 attempt fails 50 ms in: 127.0.0.1 is tried at once, not when the
   250 ms stagger ends. */
static void a_failed_attempt_starts_the_next_at_once(void) {
    check_failure_starts_next("localhost", LISTENING, UNUSED, 50, 120);
}

/* 127.0.0.2 is tried 250 ms after 127.0.0.1, unless an attempt fails
   first: ::1 fails 320 ms in, while 127.0.0.1 is still pending, and
   127.0.0.2 starts then instead of at 500 ms. */
static void a_failure_among_pending_attempts_starts_the_next(void) {
    check_failure_starts_next("three.test", STALLED, LISTENING, 320, 380);
}

#endif /* the stand-in resolver and the interposed connect() */

static void all_refused_reports_the_last_error(void) {
    int fds = fd_count();
    struct site st;
    open_site(&st, REFUSED, REFUSED);
    CHECK_ERR(rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 5000), RT_ECONNREFUSED);
    close_site(&st);
#ifdef _WIN32
    printf("skip all_refused_reports_the_last_error (reset, timeout): needs the stand-in resolver "
           "and the interposed connect()\n");
#else
    /* ::1 is refused first, 127.0.0.1 is reset later: the last error wins. */
    open_site(&st, REFUSED, STALLED);
    pthread_t th = reset_later("127.0.0.1", st.port, 100);
    CHECK_ERR(rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 5000), ECONNRESET);
    stop_resetting(th);
    /* One refused, one stalled until the timeout: the timeout is reported. */
    close_site(&st);
    open_site(&st, STALLED, REFUSED);
    CHECK_ERR(rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 300), RSOCK_ETIMEDOUT);
    close_site(&st);
#endif
    CHECK(fd_count() == fds);
}

#ifdef _WIN32
static int stalls; /* whether connects to a full listener stall here */
#endif

static void timeout_and_cancel_while_connecting(void) {
#ifdef _WIN32
    if (!stalls) {
        printf("skip timeout_and_cancel_while_connecting: connects to a full listener do not stall here\n");
        return;
    }
#endif
    int fds = fd_count();
    struct site st;
    open_site(&st, STALLED, REFUSED);
    double t0 = now_ms();
    CHECK_ERR(rsock_connect_host(NULL, "::1", st.port, SOCK_STREAM, 300), RSOCK_ETIMEDOUT);
    CHECK(now_ms() - t0 >= 300 && now_ms() - t0 < 4000);

    rsock_token *t = rsock_token_new();
    struct canceller c;
    t0 = now_ms(); /* before the canceller starts its 100 ms */
    start_cancel(&c, t, 100);
    CHECK_ERR(rsock_connect_host(t, "::1", st.port, SOCK_STREAM, RSOCK_INFINITE), RSOCK_ECANCELED);
    CHECK(now_ms() - t0 >= 100 && now_ms() - t0 < 4000);
    join_cancel(&c);
    /* Already cancelled: nothing starts. */
    CHECK_ERR(rsock_connect_host(t, "127.0.0.1", st.port, SOCK_STREAM, RSOCK_INFINITE), RSOCK_ECANCELED);
    rsock_token_unref(t);
    close_site(&st);
    CHECK(fd_count() == fds);
}

#ifndef _WIN32 /* the stand-in resolver */
static void timeout_and_cancel_while_resolving(void) {
    int fds = fd_count();
    double t0 = now_ms();
    CHECK_ERR(rsock_connect_host(NULL, "a.hang.test", "80", SOCK_STREAM, 200), RSOCK_ETIMEDOUT);
    CHECK(now_ms() - t0 >= 200 && now_ms() - t0 < 4000);
    rsock_token *t = rsock_token_new();
    struct canceller c;
    start_cancel(&c, t, 100);
    CHECK_ERR(rsock_connect_host(t, "b.hang.test", "80", SOCK_STREAM, RSOCK_INFINITE), RSOCK_ECANCELED);
    join_cancel(&c);
    rsock_token_unref(t);
    /* The abandoned lookups finish in the pool, which frees their results. */
    release_hangs();
    wait_until_all_freed();
    CHECK(atomic_load(&results_freed) == atomic_load(&results_made));
    CHECK(fd_count() == fds);
}

/* The lookup takes 300 ms of a 600 ms timeout; the stalled connect gets
   what is left, not another 600 ms. */
static void one_timeout_covers_resolution_and_connection(void) {
    struct site st;
    open_site(&st, STALLED, REFUSED);
    double t0 = now_ms();
    CHECK_ERR(rsock_connect_host(NULL, "x.slow.test", st.port, SOCK_STREAM, 600), RSOCK_ETIMEDOUT);
    double took = now_ms() - t0;
    CHECK(took >= 600 && took < 900);
    printf("     300 ms lookup + stalled connect, 600 ms timeout: %.1f ms\n", took);
    close_site(&st);
}
#endif /* the stand-in resolver */

/* A datagram "connect" cannot be raced (it succeeds at once), so the
   resolver's first address is used: here 127.0.0.1, not ::1. */
static void datagram_sockets_take_the_resolvers_first_address(void) {
    struct sockaddr_in a;
    rsock_socket u = udp_bound(&a);
    char port[8];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
#ifdef _WIN32
    const char *host = "127.0.0.1"; /* no stand-in resolver: a datagram connect to a numeric host */
#else
    const char *host = "v4first.test";
#endif
    rsock_socket s = rsock_connect_host(NULL, host, port, SOCK_DGRAM, 1000);
    CHECK(sock_ok(s));
    CHECK(peer_family(s) == AF_INET);
    CHECK_MODE(s, 0);
    CHECK(send(s, "x", 1, 0) == 1);
    char c;
    CHECK(recv(u, &c, 1, 0) == 1 && c == 'x');
    close_sock(s);
    close_sock(u);
}

static void bad_input_is_einval(void) {
    CHECK_ERR(rsock_connect_host(NULL, NULL, "80", SOCK_STREAM, 1000), RT_EINVAL);
    CHECK_ERR(rsock_connect_host(NULL, "127.0.0.1", NULL, SOCK_STREAM, 1000), RT_EINVAL);
    CHECK_ERR(rsock_connect_host(NULL, "127.0.0.1", "80", SOCK_RAW, 1000), RT_EINVAL);
    CHECK_ERR(rsock_connect_host(NULL, "127.0.0.1", "80", 0, 1000), RT_EINVAL);
    CHECK_ERR(rsock_connect_host(NULL, "127.0.0.1", "80", SOCK_STREAM, -2), RT_EINVAL);
    CHECK_ERR(rsock_connect_host(NULL, "127.0.0.1", "no-such-service", SOCK_STREAM, 1000), RT_EINVAL);
#ifndef _WIN32
    CHECK_ERR(rsock_connect_host(NULL, "nxdomain.test", "80", SOCK_STREAM, 1000), EHOSTUNREACH);
#endif
    /* Port 0 names no peer. */
    CHECK_ERR(rsock_connect_host(NULL, "127.0.0.1", "0", SOCK_STREAM, 1000), RT_EINVAL);
    CHECK_ERR(rsock_connect_host(NULL, "localhost", "0", SOCK_DGRAM, 1000), RT_EINVAL);
}

#define STAND_IN "needs the stand-in resolver (interposed getaddrinfo)"
#define INTERPOSED "needs the stand-in resolver and the interposed connect()"

int main(void) {
    rt_watchdog(60);
    /* This thread's wake descriptor stays open from its first wait on. */
    rsock_socket sv[2];
    unix_pair(sv);
    CHECK_ERR(rsock_block(NULL, sv[0], RSOCK_READABLE, 0), RSOCK_ETIMEDOUT);
    close_pair(sv);
#ifdef _WIN32
    stalls = full_queue_stalls();
    settle_pending_connect_handles();
#endif
    /* And a resolver thread is running, so timings do not include its start. */
    struct addrinfo *res = NULL;
    CHECK(rsock_getaddrinfo(NULL, "localhost", NULL, NULL, &res, 5000) == 0);
    if (res) freeaddrinfo(res);
    RUN_POSIX(localhost_reaches_whichever_family_listens, STAND_IN);
    RUN_POSIX(ipv6_goes_first, STAND_IN);
    RUN_POSIX(stalled_ipv6_loses_to_ipv4_after_the_stagger, STAND_IN);
    RUN_POSIX(a_failed_attempt_starts_the_next_at_once, INTERPOSED);
    RUN_POSIX(a_failure_among_pending_attempts_starts_the_next, INTERPOSED);
    RUN(all_refused_reports_the_last_error);
    RUN(timeout_and_cancel_while_connecting);
    RUN_POSIX(timeout_and_cancel_while_resolving, STAND_IN);
    RUN_POSIX(one_timeout_covers_resolution_and_connection, STAND_IN);
    RUN(datagram_sockets_take_the_resolvers_first_address);
    RUN(bad_input_is_einval);
    return rt_finish("test_connect_host");
}
