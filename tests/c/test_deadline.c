/* Deadlines on tokens: rsock_token_set_deadline and rsock_token_remaining.
   A passed deadline fails every call on the token and its descendants with
   RSOCK_ETIMEDOUT, at once and consuming nothing; moving it reaches calls
   already waiting. */
#include "rtest.h"

#include <limits.h>

static void bad_arguments(void) {
    rsock_token *t = rsock_token_new();
    REQUIRE(t);
    CHECK_ERR(rsock_token_set_deadline(NULL, 10), RT_EINVAL);
    CHECK_ERR(rsock_token_set_deadline(t, -2), RT_EINVAL);
    CHECK_ERR(rsock_token_set_deadline(t, INT_MIN), RT_EINVAL);
    rt_set_error(0);
    CHECK(rsock_token_remaining(NULL) == RSOCK_INFINITE && rsock_last_error() == RT_EINVAL);
    CHECK(rsock_token_remaining(t) == RSOCK_INFINITE);
    /* The largest timeout is fine. */
    CHECK(rsock_token_set_deadline(t, INT_MAX) == 0);
    CHECK(rsock_token_remaining(t) > INT_MAX - 1000);
    rsock_token_unref(t);
}

static void remaining_follows_the_chain(void) {
    rsock_token *root = rsock_token_new();
    rsock_token *child = rsock_token_child(root);
    rsock_token *grand = rsock_token_child(child);
    REQUIRE(root && child && grand);
    CHECK(rsock_token_set_deadline(child, 5000) == 0);
    int r = rsock_token_remaining(grand);
    CHECK(r > 4000 && r <= 5000);
    CHECK(rsock_token_remaining(root) == RSOCK_INFINITE);
    /* The earliest along the chain counts, whichever token carries it. */
    CHECK(rsock_token_set_deadline(root, 2000) == 0);
    r = rsock_token_remaining(grand);
    CHECK(r > 1000 && r <= 2000);
    CHECK(rsock_token_set_deadline(grand, 100000) == 0);
    r = rsock_token_remaining(grand);
    CHECK(r > 1000 && r <= 2000);
    CHECK(rsock_token_set_deadline(root, 0) == 0);
    CHECK(rsock_token_remaining(grand) == 0 && rsock_token_remaining(child) == 0);
    /* Cleared, the next earliest counts. */
    CHECK(rsock_token_set_deadline(root, RSOCK_INFINITE) == 0);
    r = rsock_token_remaining(grand);
    CHECK(r > 4000 && r <= 5000);
    /* Not a cancel, and a reset does not clear it. */
    CHECK(rsock_is_cancelled(grand) == 0);
    CHECK(rsock_token_reset(child) == 0);
    CHECK(rsock_token_remaining(child) > 4000);
    rsock_token_unref(grand);
    rsock_token_unref(child);
    rsock_token_unref(root);
}

/* A passed deadline fails every call at once, even with data, a
   connection or a lookup ready, and consumes nothing. */
static void passed_deadline_fails_everything_and_consumes_nothing(void) {
    rsock_token *root = rsock_token_new();
    rsock_token *t = rsock_token_child(root);
    REQUIRE(root && t);
    rsock_socket sv[2];
    tcp_pair(sv);
    struct sockaddr_in a;
    rsock_socket l = tcp_listener(4, &a);
    rsock_socket c = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(sock_ok(c) && connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    REQUIRE(send(sv[1], "abc", 3, 0) == 3);
    rsock_pollfd p = {sv[0], POLLIN, 0};
    REQUIRE(rt_poll(&p, 1, 1000) == 1);

    CHECK(rsock_token_set_deadline(root, 0) == 0);
    char buf[8];
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, 0), RSOCK_ETIMEDOUT);
    CHECK_ERR(rsock_recvfrom(t, sv[0], buf, sizeof buf, 0, NULL, NULL, 1000), RSOCK_ETIMEDOUT);
    CHECK_ERR(rsock_send(t, sv[0], "x", 1, 0, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    CHECK_ERR(rsock_block(t, sv[0], RSOCK_READABLE, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    CHECK_ERR(rsock_accept(t, l, NULL, NULL, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    rsock_socket fresh = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(sock_ok(fresh));
    CHECK_ERR(rsock_connect(t, fresh, (struct sockaddr *)&a, sizeof a, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    close_sock(fresh);
    p.revents = 77;
    CHECK(rsock_poll(t, &p, 1, RSOCK_INFINITE) == 0 && p.revents == 0);
    CHECK(rsock_poll(t, NULL, 0, RSOCK_INFINITE) == 0);
    struct addrinfo *res = NULL;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_family = AF_INET;
    rt_set_error(0);
    CHECK(rsock_getaddrinfo(t, "127.0.0.1", "80", &hints, &res, RSOCK_INFINITE) == RT_EAI_SYSTEM &&
          rsock_last_error() == RSOCK_ETIMEDOUT && res == NULL);
    CHECK_ERR(rsock_connect_host(t, "127.0.0.1", "9", SOCK_STREAM, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    CHECK(rsock_is_cancelled(t) == 0);
    /* The token itself is unaffected: a reset does not clear the deadline. */
    CHECK(rsock_token_reset(t) == 0 && rsock_token_reset(root) == 0);
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, 0), RSOCK_ETIMEDOUT);

    /* Cleared: everything is still there. */
    CHECK(rsock_token_set_deadline(root, RSOCK_INFINITE) == 0);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, MSG_WAITALL, 1000) == 3 && memcmp(buf, "abc", 3) == 0);
    rsock_socket s = rsock_accept(t, l, NULL, NULL, 1000);
    CHECK(sock_ok(s));
    if (sock_ok(s)) close_sock(s);
    close_sock(c);
    close_sock(l);
    close_pair(sv);
    rsock_token_unref(t);
    rsock_token_unref(root);
}

/* The point of a deadline: a conversation of many calls, each with a
   generous timeout, ends when the deadline passes. */
struct dribble {
    rsock_socket sock;
    int count;
    double gap_ms;
};

static void *dribble_main(void *arg) {
    struct dribble *d = (struct dribble *)arg;
    for (int i = 0; i < d->count; i++) {
        sleep_ms(d->gap_ms);
        if (send(d->sock, "x", 1, RT_NOSIGNAL) != 1) break;
    }
    return NULL;
}

static void deadline_bounds_a_conversation(void) {
    rsock_token *t = rsock_token_new();
    REQUIRE(t);
    rsock_socket sv[2];
    tcp_pair(sv);
    struct dribble d = {sv[1], 100, 10};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, dribble_main, &d) == 0);
    CHECK(rsock_token_set_deadline(t, 200) == 0);
    double start = now_ms();
    int got = 0;
    intptr_t n;
    char c;
    while ((n = rsock_recv(t, sv[0], &c, 1, 0, 5000)) == 1) got++;
    double took = now_ms() - start;
    CHECK(n == -1 && rsock_last_error() == RSOCK_ETIMEDOUT);
    /* Some bytes came, the deadline (not the 5 s per-call timeout, nor the
       1 s the whole stream takes) ended it. */
    CHECK(got > 0 && got < 100);
    CHECK(took >= 195 && took < 900);
    CHECK(rsock_token_remaining(t) == 0);
    pthread_join(th, NULL);
    /* Every byte not received is still there. */
    CHECK(rsock_token_set_deadline(t, RSOCK_INFINITE) == 0);
    int rest = 0;
    while (rest + got < 100 && rsock_recv(t, sv[0], &c, 1, 0, 2000) == 1) rest++;
    CHECK(got + rest == 100);
    close_pair(sv);
    rsock_token_unref(t);
}

/* A call's own timeout and the deadline: whichever comes first. */
static void own_timeout_and_deadline(void) {
    rsock_token *t = rsock_token_new();
    REQUIRE(t);
    rsock_socket sv[2];
    unix_pair(sv);
    char c;
    CHECK(rsock_token_set_deadline(t, 5000) == 0);
    double start = now_ms();
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 50), RSOCK_ETIMEDOUT);
    CHECK(now_ms() - start < 2000);
    CHECK(rsock_token_set_deadline(t, 50) == 0);
    start = now_ms();
    CHECK_ERR(rsock_recv(t, sv[0], &c, 1, 0, 5000), RSOCK_ETIMEDOUT);
    double took = now_ms() - start;
    CHECK(took >= 45 && took < 2000);
    /* rsock_poll's timeout is 0, as poll's. */
    rsock_pollfd p = {sv[0], POLLIN, 0};
    CHECK(rsock_poll(t, &p, 1, 5000) == 0 && p.revents == 0);
    close_pair(sv);
    rsock_token_unref(t);
}

/* A call waiting while another thread moves the deadline. */
struct waiting_call {
    rsock_token *tok;
    rsock_socket sock;
    int timeout_ms;
    intptr_t result;
    int error;
    double took_ms;
    int done; /* read under `lock` */
    pthread_mutex_t lock;
    pthread_t th;
};

static void *waiting_call_main(void *arg) {
    struct waiting_call *w = (struct waiting_call *)arg;
    char c;
    double start = now_ms();
    w->result = rsock_recv(w->tok, w->sock, &c, 1, 0, w->timeout_ms);
    w->error = rsock_last_error();
    w->took_ms = now_ms() - start;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void start_waiting(struct waiting_call *w, rsock_token *tok, rsock_socket sock) {
    memset(w, 0, sizeof *w);
    w->tok = tok;
    w->sock = sock;
    w->timeout_ms = RSOCK_INFINITE;
    pthread_mutex_init(&w->lock, NULL);
    REQUIRE(pthread_create(&w->th, NULL, waiting_call_main, w) == 0);
}

static int is_done(struct waiting_call *w) {
    pthread_mutex_lock(&w->lock);
    int d = w->done;
    pthread_mutex_unlock(&w->lock);
    return d;
}

static void finish_waiting(struct waiting_call *w) {
    pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->lock);
}

static void moving_the_deadline_reaches_waiting_calls(void) {
    rsock_token *root = rsock_token_new();
    rsock_token *grand = rsock_token_child(root);
    rsock_token *tmp = grand;
    grand = rsock_token_child(tmp);
    rsock_token_unref(tmp);
    REQUIRE(root && grand);
    rsock_socket sv[2];
    unix_pair(sv);
    struct waiting_call w;

    /* No deadline, then one that has passed: the waiting call ends. */
    start_waiting(&w, grand, sv[0]);
    sleep_ms(50);
    CHECK(!is_done(&w));
    CHECK(rsock_token_set_deadline(root, 0) == 0);
    finish_waiting(&w);
    CHECK(w.result == -1 && w.error == RSOCK_ETIMEDOUT);
    CHECK(w.took_ms < 40 + 2000);

    /* Far, then moved earlier. */
    CHECK(rsock_token_set_deadline(root, 60000) == 0);
    start_waiting(&w, grand, sv[0]);
    sleep_ms(30);
    CHECK(rsock_token_set_deadline(root, 50) == 0);
    finish_waiting(&w);
    CHECK(w.result == -1 && w.error == RSOCK_ETIMEDOUT);
    CHECK(w.took_ms >= 75 && w.took_ms < 2000);

    /* Near, then moved later: the call keeps waiting past the old one. */
    CHECK(rsock_token_set_deadline(root, 100) == 0);
    start_waiting(&w, grand, sv[0]);
    sleep_ms(20);
    CHECK(rsock_token_set_deadline(root, 400) == 0);
    sleep_ms(200);
    CHECK(!is_done(&w));
    finish_waiting(&w);
    CHECK(w.result == -1 && w.error == RSOCK_ETIMEDOUT);
    CHECK(w.took_ms >= 395);

    /* Near, then cleared: it waits until data (or a cancel) comes. */
    CHECK(rsock_token_set_deadline(root, 100) == 0);
    start_waiting(&w, grand, sv[0]);
    sleep_ms(20);
    CHECK(rsock_token_set_deadline(root, RSOCK_INFINITE) == 0);
    sleep_ms(200);
    CHECK(!is_done(&w));
    REQUIRE(send(sv[1], "y", 1, 0) == 1);
    finish_waiting(&w);
    CHECK(w.result == 1);

    /* A deadline on the waiting token itself, moved earlier. */
    CHECK(rsock_token_set_deadline(grand, 60000) == 0);
    start_waiting(&w, grand, sv[0]);
    sleep_ms(20);
    CHECK(rsock_token_set_deadline(grand, 10) == 0);
    finish_waiting(&w);
    CHECK(w.result == -1 && w.error == RSOCK_ETIMEDOUT);
    CHECK(w.took_ms < 2000);
    CHECK(rsock_token_set_deadline(grand, RSOCK_INFINITE) == 0);

    close_pair(sv);
    rsock_token_unref(grand);
    rsock_token_unref(root);
}

/* A connect left pending (a listener whose queue is full) ends at the
   deadline, with rsock_connect and with rsock_connect_host (which also
   re-checks pending connects in slices on Windows). */
static void deadline_ends_a_pending_connect(void) {
    if (!full_queue_stalls()) {
        printf("skip deadline_ends_a_pending_connect: a full queue refuses connects here\n");
        return;
    }
    struct sockaddr_in a;
    rsock_socket l = tcp_listener(0, &a), filler[2];
    for (int i = 0; i < 2; i++) {
        filler[i] = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(sock_ok(filler[i]));
        set_nonblocking(filler[i], 1);
        connect(filler[i], (struct sockaddr *)&a, sizeof a);
    }
    sleep_ms(50);
    rsock_token *t = rsock_token_new();
    REQUIRE(t);
    rsock_socket c = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(sock_ok(c));
    CHECK(rsock_token_set_deadline(t, 100) == 0);
    double start = now_ms();
    CHECK_ERR(rsock_connect(t, c, (struct sockaddr *)&a, sizeof a, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    double took = now_ms() - start;
    CHECK(took >= 95 && took < 3000);
    close_sock(c);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    CHECK(rsock_token_set_deadline(t, 100) == 0);
    start = now_ms();
    CHECK_ERR(rsock_connect_host(t, "127.0.0.1", port, SOCK_STREAM, 60000), RSOCK_ETIMEDOUT);
    took = now_ms() - start;
    CHECK(took >= 95 && took < 3000);
    rsock_token_unref(t);
    for (int i = 0; i < 2; i++) close_sock(filler[i]);
    close_sock(l);
}

/* A send cut short by the deadline reports its exact partial count. */
static void partial_send_count_is_exact(void) {
    rsock_token *t = rsock_token_new();
    REQUIRE(t);
    rsock_socket sv[2];
    tcp_pair(sv);
    size_t len = 16u << 20;
    char *big = (char *)malloc(len);
    REQUIRE(big);
    for (size_t i = 0; i < len; i++) big[i] = (char)(i * 7);
    CHECK(rsock_token_set_deadline(t, 100) == 0);
    rt_set_error(0);
    intptr_t sent = rsock_send(t, sv[0], big, len, RT_NOSIGNAL, RSOCK_INFINITE);
    CHECK(sent > 0 && (size_t)sent < len && rsock_last_error() == RSOCK_ETIMEDOUT);
    CHECK(rsock_token_set_deadline(t, RSOCK_INFINITE) == 0);
    shutdown(sv[0], SHUT_WR);
    char *got = (char *)malloc(len);
    REQUIRE(got);
    size_t total = 0;
    intptr_t n;
    while ((n = rsock_recv(t, sv[1], got + total, len - total, 0, 5000)) > 0) total += (size_t)n;
    CHECK(total == (size_t)sent && memcmp(got, big, total) == 0);
    free(got);
    free(big);
    close_pair(sv);
    rsock_token_unref(t);
}

/* Many threads, each waiting on its own child of one parent, all ended by
   the parent's deadline; repeated with the deadline landing at random
   moments around the calls' start (no wake-up lost). */
#define WAITERS 8
static void one_deadline_ends_many_waiters(void) {
    rsock_token *root = rsock_token_new();
    REQUIRE(root);
    unsigned seed = 12345;
    int rounds = rt_scaled(50);
    for (int round = 0; round < rounds; round++) {
        rsock_socket sv[WAITERS][2];
        rsock_token *kids[WAITERS];
        struct waiting_call w[WAITERS];
        for (int i = 0; i < WAITERS; i++) {
            unix_pair(sv[i]);
            kids[i] = rsock_token_child(root);
            REQUIRE(kids[i]);
            start_waiting(&w[i], kids[i], sv[i][0]);
        }
        spin_us(rt_rand(&seed) % 300);
        CHECK(rsock_token_set_deadline(root, (int)(rt_rand(&seed) % 3)) == 0);
        for (int i = 0; i < WAITERS; i++) {
            finish_waiting(&w[i]);
            CHECK(w[i].result == -1 && w[i].error == RSOCK_ETIMEDOUT);
            rsock_token_unref(kids[i]);
            close_pair(sv[i]);
        }
        CHECK(rsock_token_set_deadline(root, RSOCK_INFINITE) == 0);
    }
    rsock_token_unref(root);
}

#ifndef _WIN32
/* The POSIX calls too: a read waiting on a pipe ends at the deadline; a
   passed deadline fails recvmsg with data queued, consuming nothing. */
static void deadline_reaches_the_posix_calls(void) {
    rsock_token *t = rsock_token_new();
    REQUIRE(t);
    int p[2];
    REQUIRE(pipe(p) == 0);
    char buf[8];
    CHECK(rsock_token_set_deadline(t, 50) == 0);
    double start = now_ms();
    CHECK_ERR(rsock_read(t, p[0], buf, sizeof buf, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    CHECK(now_ms() - start >= 45);
    CHECK_ERR(rsock_write(t, p[1], "x", 1, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    rsock_socket sv[2];
    unix_pair(sv);
    REQUIRE(send(sv[1], "abc", 3, 0) == 3);
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    CHECK_ERR(rsock_recvmsg(t, sv[0], &m, 0, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    CHECK_ERR(rsock_sendmsg(t, sv[0], &m, 0, RSOCK_INFINITE), RSOCK_ETIMEDOUT);
    CHECK(rsock_token_set_deadline(t, RSOCK_INFINITE) == 0);
    CHECK(rsock_recvmsg(t, sv[0], &m, 0, 1000) == 3);
    close_pair(sv);
    close(p[0]);
    close(p[1]);
    rsock_token_unref(t);
}

static rsock_token *alarm_token;
static void set_deadline_on_alarm(int sig) {
    (void)sig;
    rsock_token_set_deadline(alarm_token, 0);
}

/* From a signal handler: async-signal-safe, and errno is preserved. */
static void deadline_from_a_signal_handler(void) {
    alarm_token = rsock_token_new();
    REQUIRE(alarm_token);
    rsock_socket sv[2];
    unix_pair(sv);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = set_deadline_on_alarm;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
    struct waiting_call w;
    start_waiting(&w, alarm_token, sv[0]);
    sleep_ms(30);
    pthread_kill(w.th, SIGUSR1);
    finish_waiting(&w);
    CHECK(w.result == -1 && w.error == RSOCK_ETIMEDOUT);
    errno = 1234;
    raise(SIGUSR1);
    CHECK(errno == 1234);
    sigaction(SIGUSR1, &old, NULL);
    close_pair(sv);
    rsock_token_unref(alarm_token);
}
#endif

int main(void) {
    rt_ignore_sigpipe();
    rt_watchdog(120);
    RUN(bad_arguments);
    RUN(remaining_follows_the_chain);
    RUN(passed_deadline_fails_everything_and_consumes_nothing);
    RUN(deadline_bounds_a_conversation);
    RUN(own_timeout_and_deadline);
    RUN(moving_the_deadline_reaches_waiting_calls);
    RUN(deadline_ends_a_pending_connect);
    RUN(partial_send_count_is_exact);
    RUN(one_deadline_ends_many_waiters);
    RUN_POSIX(deadline_reaches_the_posix_calls, "POSIX calls");
    RUN_POSIX(deadline_from_a_signal_handler, "no signals");
    return rt_finish("test_deadline");
}
