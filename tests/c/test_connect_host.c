/* rsock_connect_host: resolution, then Happy Eyeballs (RFC 8305) over
   loopback, under one timeout and one token. Names go to the stand-in
   resolver of fake_resolver.h ("localhost" is ::1 then 127.0.0.1 there),
   and the library's connect() calls to the fault injection below.

   Each test takes one port on ::1 and 127.0.0.1 (and 127.0.0.2) and decides
   per address: a listener, a closed port (bound but not listening: refused at
   once), or a stalled listener (its accept queue is full, so the kernel
   drops new SYNs and a connect to it stays pending).

   On Windows, whether ::1 takes connections and whether a connect to a full
   listener stalls are probed first: the tests that need them say so and
   skip where they do not hold. */
#include "fake_resolver.h"

/* What the MinGW link wraps (GNU ld --wrap): the resolver for
   fake_resolver.h, connect for the fault injection below. The Makefile and
   tests/c/CMakeLists.txt read the next line. */
/* mingw-wrap: getaddrinfo freeaddrinfo connect */

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

/* An address and port as a sockaddr, zero but for them (fail_later
   compares it bytewise); the family follows the address. (inet_pton goes
   to a local first: Wine's writes to its output when it fails.) */
static socklen_t sockaddr_of(const char *ip, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct in6_addr v6;
    if (inet_pton(AF_INET6, ip, &v6) == 1) {
        a6->sin6_addr = v6;
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

/* Whether a connection waits in the listener's accept queue. */
static int has_pending(rsock_socket listener) {
    rsock_pollfd p = {listener, POLLIN, 0};
    return rt_poll(&p, 1, 0) == 1;
}

/* The returned socket is connected, blocking, not inherited by child
   processes, and ours. */
static void check_returned(rsock_socket s, int family, struct side *server) {
    CHECK(sock_ok(s));
    if (!sock_ok(s)) return;
    CHECK(peer_family(s) == family);
    CHECK_MODE(s, 0);
    CHECK(!rt_inheritable(s));
    rsock_pollfd p = {server->fd, POLLIN, 0};
    CHECK(rt_poll(&p, 1, 2000) == 1);
    rsock_socket a = p.revents ? accept(server->fd, NULL, NULL) : RSOCK_INVALID_SOCKET;
    CHECK(sock_ok(a));
    CHECK(send(s, "hi", 2, 0) == 2);
    char buf[2];
    CHECK(sock_ok(a) && recv(a, buf, 2, MSG_WAITALL) == 2);
    if (sock_ok(a)) close_sock(a);
    close_sock(s);
}

/* Fault injection: the library's connect() calls come here. fail_later()
   fails the attempt to one address and port some time after it starts, as
   a peer refusing late would.
   - POSIX: the program defines connect(), which the library (linked
     statically) calls. The connect is made, and shutdown() of the socket
     while it is pending fails it with ECONNRESET.
   - Windows: the program is linked with --wrap=connect, so the library's
     calls come to __wrap_connect. Winsock ends a pending connect only when
     the socket is closed (shutdown() fails with WSAENOTCONN and leaves it
     pending), so the connect is held back instead: it reports
     WSAEWOULDBLOCK, as a pending one does, and leaves the socket
     unconnected, which WSAPoll reports nothing for either (so it is under
     Wine). When the failure is due, the socket connects to a port where
     nothing listens: the refusal, WSAECONNREFUSED, comes as a pending
     connect's failure does.
   The test's own connects do not come here on Windows; none of them is to
   the failing address. */
#ifdef _WIN32
#define LATE_FAILURE RT_ECONNREFUSED
#else
#define LATE_FAILURE RT_ECONNRESET
#endif
static struct sockaddr_storage fail_addr;
static _Atomic rsock_socket fail_sock = RSOCK_INVALID_SOCKET;
static double fail_after_ms, failed_at; /* failed_at: now_ms() of the failure */
static int fail_seen; /* whether the attempt came to the fault injection */

static int is_fail_addr(const struct sockaddr *addr, socklen_t len) {
    return addr && len > 0 && (size_t)len <= sizeof fail_addr && memcmp(addr, &fail_addr, (size_t)len) == 0;
}

#ifdef _WIN32
int WSAAPI __real_connect(SOCKET s, const struct sockaddr *addr, int len);
int WSAAPI __wrap_connect(SOCKET s, const struct sockaddr *addr, int len);

static rsock_socket refuser = RSOCK_INVALID_SOCKET; /* bound, not listening */
static struct sockaddr_storage refuser_addr;
static socklen_t refuser_len;

int WSAAPI __wrap_connect(SOCKET s, const struct sockaddr *addr, int len) {
    if (!is_fail_addr(addr, len)) return __real_connect(s, addr, len);
    atomic_store(&fail_sock, s);
    WSASetLastError(WSAEWOULDBLOCK);
    return SOCKET_ERROR;
}

static void fail_now(rsock_socket s) { __real_connect(s, (struct sockaddr *)&refuser_addr, refuser_len); }
#else
int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
    connect_fn real = (connect_fn)dlsym(RTLD_NEXT, "connect");
    int r = real(fd, addr, len), e = errno;
    if (is_fail_addr(addr, len)) atomic_store(&fail_sock, fd);
    errno = e;
    return r;
}

static void fail_now(int fd) { shutdown(fd, SHUT_RDWR); }
#endif

static void *failer(void *arg) {
    (void)arg;
    rsock_socket s = RSOCK_INVALID_SOCKET;
    for (int i = 0; i < 2000 && !sock_ok(s = atomic_load(&fail_sock)); i++) sleep_ms(1);
    fail_seen = sock_ok(s);
    if (!fail_seen) return NULL;
    sleep_ms(fail_after_ms);
    failed_at = now_ms();
    fail_now(s);
    return NULL;
}

/* Set up before the connect_host call; stop_failing() after it. */
static pthread_t fail_later(const char *ip, const char *port, double after_ms) {
    atomic_store(&fail_sock, RSOCK_INVALID_SOCKET);
    fail_seen = 0;
    sockaddr_of(ip, atoi(port), &fail_addr);
    fail_after_ms = after_ms;
#ifdef _WIN32
    refuser = bind_on(ip, 0);
    REQUIRE(sock_ok(refuser));
    refuser_len = sizeof refuser_addr;
    REQUIRE(getsockname(refuser, (struct sockaddr *)&refuser_addr, &refuser_len) == 0);
#endif
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, failer, NULL) == 0);
    return th;
}

static void stop_failing(pthread_t th) {
    pthread_join(th, NULL);
    memset(&fail_addr, 0, sizeof fail_addr);
#ifdef _WIN32
    close_sock(refuser);
    refuser = RSOCK_INVALID_SOCKET;
#endif
}

/* A closed port on one family: the other is tried at once, not after the
   250 ms stagger. */
static void localhost_reaches_whichever_family_listens(void) {
    int fds = fd_count();
    struct site st;
    open_site(&st, REFUSED, LISTENING);
    double t0 = now_ms();
    rsock_socket s = rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 5000);
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
    rsock_socket s = rsock_connect_host(NULL, "v4first.test", st.port, SOCK_STREAM, 5000);
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
    rsock_socket s = rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 5000);
    double took = now_ms() - t0;
    check_returned(s, AF_INET, &st.v4);
    CHECK(took >= 250 && took < 1000);
    printf("     ::1 stalled, 127.0.0.1 connected after %.1f ms\n", took);
    close_site(&st);
    CHECK(fd_count() == fds);
}

/* Connects to `name` (on a site with ::1 stalled) while the ::1 attempt
   fails `after_ms` after it starts, and checks that the listening address
   connects soon after the failure rather than when the stagger would have
   started it. Repeats (at most 3 times) when the failing thread ran later
   than `latest_ms` after the start, which would make the timing prove
   nothing. */
static void check_failure_starts_next(const char *name, enum mode v4, enum mode v4b,
                                      double after_ms, double latest_ms) {
    for (int round = 0; round < 3; round++) {
        struct site st;
        open_site3(&st, STALLED, v4, v4b);
        pthread_t th = fail_later("::1", st.port, after_ms);
        double t0 = now_ms();
        rsock_socket s = rsock_connect_host(NULL, name, st.port, SOCK_STREAM, 5000);
        double end = now_ms();
        stop_failing(th);
        check_returned(s, AF_INET, v4b == LISTENING ? &st.v4b : &st.v4);
        close_site(&st);
        if (!fail_seen) {
            CHECK(!"no connect() to ::1 came to the fault injection");
            return;
        }
        if (failed_at - t0 > latest_ms) continue; /* the failing thread was late: again */
        CHECK(end - failed_at < 100);
        printf("     ::1 failed at %.1f ms, the next address connected %.1f ms later\n",
               failed_at - t0, end - failed_at);
        return;
    }
    CHECK(!"the failing thread was late three times");
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

static int stalls = 1; /* whether connects to a full listener stall here */

static void all_refused_reports_the_last_error(void) {
    int fds = fd_count();
    struct site st;
    open_site(&st, REFUSED, REFUSED);
    CHECK_ERR(rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 5000), RT_ECONNREFUSED);
    close_site(&st);
    if (!stalls) {
        printf("skip all_refused_reports_the_last_error (late failure, timeout): "
               "connects to a full listener do not stall here\n");
        CHECK(fd_count() == fds);
        return;
    }
    /* ff02::1 fails at once (ENETUNREACH), 127.0.0.1 fails later: the last
       error wins. */
    open_site(&st, REFUSED, STALLED);
    pthread_t th = fail_later("127.0.0.1", st.port, 100);
    double t0 = now_ms();
    CHECK_ERR(rsock_connect_host(NULL, "unreachable.test", st.port, SOCK_STREAM, 5000), LATE_FAILURE);
    CHECK(now_ms() - t0 >= 100);
    stop_failing(th);
    CHECK(fail_seen);
    /* One refused, one stalled until the timeout: the timeout is reported. */
    close_site(&st);
    open_site(&st, STALLED, REFUSED);
    CHECK_ERR(rsock_connect_host(NULL, "localhost", st.port, SOCK_STREAM, 300), RSOCK_ETIMEDOUT);
    close_site(&st);
    CHECK(fd_count() == fds);
}

static void timeout_and_cancel_while_connecting(void) {
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

/* A datagram "connect" cannot be raced (it succeeds at once), so the
   resolver's first address is used: here 127.0.0.1, not ::1. */
static void datagram_sockets_take_the_resolvers_first_address(void) {
    struct sockaddr_in a;
    rsock_socket u = udp_bound(&a);
    char port[8];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    rsock_socket s = rsock_connect_host(NULL, "v4first.test", port, SOCK_DGRAM, 1000);
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
    CHECK_ERR(rsock_connect_host(NULL, "nxdomain.test", "80", SOCK_STREAM, 1000), RT_EHOSTUNREACH);
    /* Port 0 names no peer. */
    CHECK_ERR(rsock_connect_host(NULL, "127.0.0.1", "0", SOCK_STREAM, 1000), RT_EINVAL);
    CHECK_ERR(rsock_connect_host(NULL, "localhost", "0", SOCK_DGRAM, 1000), RT_EINVAL);
}

static int ipv6 = 1; /* whether ::1 takes connections here */

/* Why a test that uses ::1 (and, if `stalling`, connects that stall)
   cannot run here, or NULL. */
static const char *lacking(int stalling) {
    if (!ipv6) return "::1 takes no connections here";
    if (stalling && !stalls) return "connects to a full listener do not stall here";
    return NULL;
}

#define RUN_NEEDING(stalling, fn) RUN_IF(!lacking(stalling), fn, lacking(stalling))

int main(void) {
    rt_watchdog(60);
    /* This thread's wake descriptor stays open from its first wait on. */
    rsock_socket sv[2];
    unix_pair(sv);
    CHECK_ERR(rsock_block(NULL, sv[0], RSOCK_READABLE, 0), RSOCK_ETIMEDOUT);
    close_pair(sv);
#ifdef _WIN32
    /* What Linux always does, Windows and Wine may not. */
    stalls = full_queue_stalls();
    ipv6 = ipv6_loopback_connects();
    settle_pending_connect_handles();
#endif
    /* And a resolver thread is running, so timings do not include its start. */
    struct addrinfo *res = NULL;
    CHECK(rsock_getaddrinfo(NULL, "localhost", NULL, NULL, &res, 5000) == 0);
    if (res) freeaddrinfo(res);
    RUN_NEEDING(0, localhost_reaches_whichever_family_listens);
    RUN_NEEDING(0, ipv6_goes_first);
    RUN_NEEDING(1, stalled_ipv6_loses_to_ipv4_after_the_stagger);
    RUN_NEEDING(1, a_failed_attempt_starts_the_next_at_once);
    RUN_NEEDING(1, a_failure_among_pending_attempts_starts_the_next);
    RUN_NEEDING(0, all_refused_reports_the_last_error);
    RUN_NEEDING(1, timeout_and_cancel_while_connecting);
    RUN(timeout_and_cancel_while_resolving);
    RUN_NEEDING(1, one_timeout_covers_resolution_and_connection);
    RUN(datagram_sockets_take_the_resolvers_first_address);
    RUN(bad_input_is_einval);
    return rt_finish("test_connect_host");
}
