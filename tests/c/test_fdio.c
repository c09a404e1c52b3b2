/* The POSIX-only calls: rsock_recvmsg and rsock_sendmsg (scatter/gather,
   ancillary data, nothing consumed on cancel, exact partial counts) and
   rsock_read and rsock_write on pipes, FIFOs, terminals, eventfds, regular
   files and standard input, in blocking and non-blocking mode. Elsewhere
   this program only says it skipped. */
#include "rtest.h"

#ifndef _WIN32
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#define BIG (4 << 20)

/* ---------------------------------------------------------------- helpers */

static int flags_of(int fd) { return fcntl(fd, F_GETFL); }

/* The byte at `off` of every stream these tests send. */
static unsigned char pattern(size_t off) { return (unsigned char)(off * 7 + off / 251); }

/* Sends one byte and `fd` in an SCM_RIGHTS message. */
static void send_fd(int sock, char byte, int fd) {
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec v = {&byte, 1};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_control = ctl.space;
    m.msg_controllen = sizeof ctl.space;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    REQUIRE(sendmsg(sock, &m, 0) == 1);
}

/* The descriptors an SCM_RIGHTS message in `m` carried (at most `max`). */
static int fds_in(struct msghdr *m, int *fds, int max) {
    int n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k && n < max; i++) memcpy(&fds[n++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    return n;
}

/* A pipe whose read end `p[0]` tells whether it is the one sent: writing
   to p[1] makes the received copy readable. */
static int same_pipe(int received, int write_end) {
    char c = 'q';
    if (write(write_end, &c, 1) != 1) return 0;
    return read(received, &c, 1) == 1 && c == 'q';
}

/* A pseudo-terminal in raw mode: master and slave (opened O_NOCTTY). */
static void open_pty(int *master, int *slave) {
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(*master >= 0);
    REQUIRE(grantpt(*master) == 0 && unlockpt(*master) == 0);
    const char *name = ptsname(*master);
    REQUIRE(name != NULL);
    *slave = open(name, O_RDWR | O_NOCTTY);
    REQUIRE(*slave >= 0);
    struct termios tio;
    REQUIRE(tcgetattr(*slave, &tio) == 0);
    cfmakeraw(&tio);
    REQUIRE(tcsetattr(*slave, TCSANOW, &tio) == 0);
}

/* A FIFO in a fresh temporary directory: its read and write ends. */
static void open_fifo(int *r, int *w, char dir[64]) {
    strcpy(dir, "/tmp/rsock-fifo-XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
    char path[96];
    snprintf(path, sizeof path, "%s/f", dir);
    REQUIRE(mkfifo(path, 0600) == 0);
    *r = open(path, O_RDONLY | O_NONBLOCK);
    REQUIRE(*r >= 0);
    *w = open(path, O_WRONLY);
    REQUIRE(*w >= 0);
    set_nonblocking(*r, 0);
}

static void remove_fifo(const char dir[64]) {
    char path[96];
    snprintf(path, sizeof path, "%s/f", dir);
    unlink(path);
    rmdir(dir);
}

/* Reads whatever `fd` yields until it has been quiet for 200 ms (or ends),
   checking it against the pattern from `*off` on; returns the count. */
static size_t drain_checking(int fd, size_t *off) {
    static unsigned char buf[65536];
    size_t total = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) != 1) break;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(*off + (size_t)i)) {
                fprintf(stderr, "byte %zu out of order\n", *off + (size_t)i);
                rt_failures++;
                *off += (size_t)n;
                return total + (size_t)n;
            }
        *off += (size_t)n;
        total += (size_t)n;
    }
    return total;
}

static unsigned char *pattern_buf(size_t len) {
    unsigned char *b = malloc(len);
    REQUIRE(b != NULL);
    for (size_t i = 0; i < len; i++) b[i] = pattern(i);
    return b;
}

/* A thread that writes `len` bytes of `msg` to `fd` after `delay_ms`. */
struct late_write {
    int fd;
    const void *msg;
    size_t len;
    double delay_ms;
    pthread_t th;
};

static void *late_write_main(void *arg) {
    struct late_write *w = arg;
    sleep_ms(w->delay_ms);
    if (write(w->fd, w->msg, w->len) != (ssize_t)w->len) perror("late write");
    return NULL;
}

static void start_late_write(struct late_write *w, int fd, const void *msg, size_t len, double delay_ms) {
    w->fd = fd;
    w->msg = msg;
    w->len = len;
    w->delay_ms = delay_ms;
    REQUIRE(pthread_create(&w->th, NULL, late_write_main, w) == 0);
}

/* Reads exactly `len` bytes with rsock_read (a terminal may split them). */
static int read_exact(rsock_token *t, int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        intptr_t n = rsock_read(t, fd, (char *)buf + got, len - got, 5000);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

/* ---------------------------------------------------------------- rsock_read, rsock_write */

/* rsock_read on `rfd` (in the mode `nonblock`), fed through `wfd` with
   `msg`: a blocked read cancelled from another thread, a timeout, data
   arriving while it waits, and a cancelled token with data queued; the
   mode unchanged throughout. */
static void check_read(const char *what, int rfd, int wfd, const void *msg, size_t len, int nonblock) {
    int before = rt_failures;
    set_nonblocking(rfd, nonblock);
    int fl = flags_of(rfd);
    rsock_token *t = rsock_token_new();
    char buf[64];
    struct canceller c;
    start_cancel(&c, t, 50);
    double t0 = now_ms();
    CHECK_ERR(rsock_read(t, rfd, buf, sizeof buf, 10000), RSOCK_ECANCELED);
    double took = now_ms() - t0;
    join_cancel(&c);
    CHECK(took >= 40 && took < 5000);
    CHECK(flags_of(rfd) == fl);

    CHECK(rsock_token_reset(t) == 0);
    t0 = now_ms();
    CHECK_ERR(rsock_read(t, rfd, buf, sizeof buf, 40), RSOCK_ETIMEDOUT);
    CHECK(now_ms() - t0 >= 39);
    CHECK_ERR(rsock_read(t, rfd, buf, sizeof buf, 0), RSOCK_ETIMEDOUT);

    struct late_write w;
    start_late_write(&w, wfd, msg, len, 30);
    CHECK(read_exact(t, rfd, buf, len) == 0 && memcmp(buf, msg, len) == 0);
    pthread_join(w.th, NULL);

    /* A cancelled token fails the call and consumes nothing. */
    REQUIRE(write(wfd, msg, len) == (ssize_t)len);
    sleep_ms(10);
    rsock_cancel(t);
    CHECK_ERR(rsock_read(t, rfd, buf, sizeof buf, 1000), RSOCK_ECANCELED);
    CHECK(rsock_token_reset(t) == 0);
    CHECK(read_exact(t, rfd, buf, len) == 0 && memcmp(buf, msg, len) == 0);
    CHECK(flags_of(rfd) == fl);
    if (rt_failures != before) fprintf(stderr, "  (%s, %s)\n", what, nonblock ? "non-blocking" : "blocking");
    rsock_token_unref(t);
}

/* rsock_write of a large buffer to `wfd` (mode `nonblock`) whose reader
   `rfd` reads nothing: cancelled, then timed out, part-way; the reader
   gets exactly the returned counts, in order. */
static void check_write_partial(const char *what, int wfd, int rfd, int nonblock) {
    int before = rt_failures;
    set_nonblocking(wfd, nonblock);
    int fl = flags_of(wfd);
    unsigned char *big = pattern_buf(BIG);
    rsock_token *t = rsock_token_new();
    size_t off = 0;

    struct canceller c;
    start_cancel(&c, t, 100);
    rt_set_error(0);
    intptr_t n = rsock_write(t, wfd, big, BIG, 10000);
    int e = rsock_last_error();
    join_cancel(&c);
    CHECK(n > 0 && n < BIG && e == RSOCK_ECANCELED);
    CHECK(flags_of(wfd) == fl);
    size_t got = drain_checking(rfd, &off);
    CHECK(n > 0 && got == (size_t)n);

    /* Timed out part-way: the rest goes on from where the count says. */
    rsock_token_reset(t);
    rt_set_error(0);
    intptr_t m = rsock_write(t, wfd, big + off, BIG - off, 60);
    e = rsock_last_error();
    CHECK(m > 0 && (size_t)m < BIG - off && e == RSOCK_ETIMEDOUT);
    got = drain_checking(rfd, &off);
    CHECK(m > 0 && got == (size_t)m);
    CHECK(flags_of(wfd) == fl);
    if (rt_failures != before) fprintf(stderr, "  (%s, %s)\n", what, nonblock ? "non-blocking" : "blocking");
    rsock_token_unref(t);
    free(big);
}

static void pipe_read_write(void) {
    for (int nb = 0; nb < 2; nb++) {
        int p[2];
        REQUIRE(pipe(p) == 0);
        check_read("pipe", p[0], p[1], "ping", 4, nb);
        check_write_partial("pipe", p[1], p[0], nb);
        close(p[0]);
        close(p[1]);
    }
}

static void fifo_read_write(void) {
    for (int nb = 0; nb < 2; nb++) {
        int r, w;
        char dir[64];
        open_fifo(&r, &w, dir);
        check_read("fifo", r, w, "ping", 4, nb);
        check_write_partial("fifo", w, r, nb);
        close(r);
        close(w);
        remove_fifo(dir);
    }
}

static void pty_read_write(void) {
    for (int nb = 0; nb < 2; nb++) {
        int m, s;
        open_pty(&m, &s);
        /* The slave is what a program sees as its terminal. */
        check_read("pty slave", s, m, "ping", 4, nb);
        check_write_partial("pty slave", s, m, nb);
        close(s);
        close(m);
    }
}

static void socket_read_write(void) {
    for (int nb = 0; nb < 2; nb++) {
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        check_read("socket", sv[0], sv[1], "ping", 4, nb);
        check_write_partial("socket", sv[1], sv[0], nb);
        close_pair(sv);
    }
}

#ifdef __linux__
static void eventfd_read_write(void) {
    for (int nb = 0; nb < 2; nb++) {
        int e = eventfd(0, 0);
        REQUIRE(e >= 0);
        uint64_t five = 5;
        check_read("eventfd", e, e, &five, sizeof five, nb);
        /* A write that would overflow the counter blocks until a read. */
        uint64_t most = UINT64_MAX - 1, one = 1, v;
        REQUIRE(write(e, &most, sizeof most) == sizeof most);
        int fl = flags_of(e);
        rsock_token *t = rsock_token_new();
        struct canceller c;
        start_cancel(&c, t, 50);
        CHECK_ERR(rsock_write(t, e, &one, sizeof one, 10000), RSOCK_ECANCELED);
        join_cancel(&c);
        CHECK_ERR(rsock_write(t, e, &one, sizeof one, 10000), RSOCK_ECANCELED);
        rsock_token_reset(t);
        CHECK_ERR(rsock_write(t, e, &one, sizeof one, 30), RSOCK_ETIMEDOUT);
        CHECK(flags_of(e) == fl);
        /* Nothing was added: the counter reads as it was, and then a
           write goes through. */
        CHECK(rsock_read(t, e, &v, sizeof v, 1000) == sizeof v && v == most);
        CHECK(rsock_write(t, e, &one, sizeof one, 1000) == sizeof one);
        CHECK(rsock_read(t, e, &v, sizeof v, 1000) == sizeof v && v == 1);
        CHECK(flags_of(e) == fl);
        rsock_token_unref(t);
        close(e);
    }
}
#endif

static void regular_file_and_devices(void) {
    char path[] = "/tmp/rsock-file-XXXXXX";
    int f = mkstemp(path);
    REQUIRE(f >= 0);
    unlink(path);
    unsigned char *big = pattern_buf(1 << 20);
    unsigned char *back = malloc(1 << 20);
    REQUIRE(back != NULL);
    rsock_token *t = rsock_token_new();
    for (int nb = 0; nb < 2; nb++) {
        set_nonblocking(f, nb);
        int fl = flags_of(f);
        REQUIRE(lseek(f, 0, SEEK_SET) == 0 && ftruncate(f, 0) == 0);
        CHECK(rsock_write(t, f, big, 1 << 20, RSOCK_INFINITE) == 1 << 20);
        CHECK(lseek(f, 0, SEEK_SET) == 0);
        CHECK(rsock_read(t, f, back, 1 << 20, 0) == 1 << 20 && memcmp(back, big, 1 << 20) == 0);
        CHECK(rsock_read(t, f, back, 1 << 20, RSOCK_INFINITE) == 0); /* end of file at once */
        /* A cancelled token: no effect on the file or its offset. */
        rsock_cancel(t);
        CHECK_ERR(rsock_write(t, f, big, 10, 0), RSOCK_ECANCELED);
        CHECK_ERR(rsock_read(t, f, back, 10, 0), RSOCK_ECANCELED);
        CHECK(lseek(f, 0, SEEK_CUR) == 1 << 20);
        rsock_token_reset(t);
        CHECK(flags_of(f) == fl);
    }
    close(f);
    /* Character devices that are always ready. */
    int z = open("/dev/zero", O_RDONLY), n = open("/dev/null", O_WRONLY);
    REQUIRE(z >= 0 && n >= 0);
    back[0] = 1;
    CHECK(rsock_read(t, z, back, 4096, 1000) == 4096 && back[0] == 0);
    CHECK(rsock_write(t, n, big, 1 << 20, 1000) == 1 << 20);
    CHECK(!is_nonblocking(z) && !is_nonblocking(n));
    close(z);
    close(n);
    rsock_token_unref(t);
    free(big);
    free(back);
}

/* A pipe and a socket whose reader is slow: rsock_write (and
   rsock_sendmsg, through several iovecs and with a descriptor attached)
   cancelled or timed out part-way; the reader gets exactly the count, in
   order. */
struct slow_reader {
    int fd;
    int sock; /* read with recvmsg, counting descriptors */
    size_t total;
    int fds;
    int bad_order;
    pthread_t th;
};

static void *slow_reader_main(void *arg) {
    struct slow_reader *r = arg;
    static unsigned char buf[4096];
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    for (;;) {
        sleep_ms(1);
        ssize_t n;
        if (r->sock) {
            struct iovec v = {buf, sizeof buf};
            struct msghdr m;
            memset(&m, 0, sizeof m);
            m.msg_iov = &v;
            m.msg_iovlen = 1;
            m.msg_control = ctl.space;
            m.msg_controllen = sizeof ctl.space;
            n = recvmsg(r->fd, &m, 0);
            int fds[4];
            int k = n > 0 ? fds_in(&m, fds, 4) : 0;
            for (int i = 0; i < k; i++) close(fds[i]);
            r->fds += k;
        } else {
            n = read(r->fd, buf, sizeof buf);
        }
        if (n <= 0) return NULL;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(r->total + (size_t)i)) r->bad_order = 1;
        r->total += (size_t)n;
    }
}

static void slow_readers_get_exact_counts(void) {
    unsigned char *big = pattern_buf(BIG);
    rsock_token *t = rsock_token_new();
    for (int round = 0; round < 4; round++) {
        int cancel = round % 2 == 0, sock = round >= 2, p[2], before = rt_failures;
        if (sock)
            REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0);
        else
            REQUIRE(pipe(p) == 0);
        struct slow_reader r = {p[0], sock, 0, 0, 0, 0};
        REQUIRE(pthread_create(&r.th, NULL, slow_reader_main, &r) == 0);
        struct canceller c;
        if (cancel) start_cancel(&c, t, 100);
        rt_set_error(0);
        intptr_t n;
        int spare[2];
        REQUIRE(pipe(spare) == 0);
        if (sock) {
            /* Four iovecs in separate buffers (one empty), a descriptor attached. */
            size_t cut[4] = {1000, 0, 300000, BIG - 301000};
            unsigned char *parts[4];
            struct iovec v[4];
            size_t at = 0;
            for (int i = 0; i < 4; i++) {
                parts[i] = malloc(cut[i] + 1);
                REQUIRE(parts[i] != NULL);
                memcpy(parts[i], big + at, cut[i]);
                v[i].iov_base = parts[i];
                v[i].iov_len = cut[i];
                at += cut[i];
            }
            struct iovec saved[4];
            memcpy(saved, v, sizeof v);
            union {
                struct cmsghdr h;
                char space[CMSG_SPACE(sizeof(int))];
            } ctl;
            memset(&ctl, 0, sizeof ctl);
            struct msghdr m;
            memset(&m, 0, sizeof m);
            m.msg_iov = v;
            m.msg_iovlen = 4;
            m.msg_control = ctl.space;
            m.msg_controllen = sizeof ctl.space;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &spare[0], sizeof(int));
            n = rsock_sendmsg(t, p[1], &m, MSG_NOSIGNAL, cancel ? 10000 : 100);
            CHECK(memcmp(saved, v, sizeof v) == 0); /* the caller's iovecs untouched */
            for (int i = 0; i < 4; i++) free(parts[i]);
        } else {
            n = rsock_write(t, p[1], big, BIG, cancel ? 10000 : 100);
        }
        int e = rsock_last_error();
        if (cancel) join_cancel(&c);
        CHECK(n > 0 && n < BIG && e == (cancel ? RSOCK_ECANCELED : RSOCK_ETIMEDOUT));
        close(p[1]);
        pthread_join(r.th, NULL);
        CHECK(n > 0 && r.total == (size_t)n && !r.bad_order);
        if (sock) CHECK(r.fds == 1);
        if (rt_failures != before) fprintf(stderr, "  (round %d: sent %ld, read %zu)\n", round, (long)n, r.total);
        close(p[0]);
        close(spare[0]);
        close(spare[1]);
        rsock_token_reset(t);
    }
    rsock_token_unref(t);
    free(big);
}

/* ---------------------------------------------------------------- rsock_recvmsg */

static struct msghdr one_buffer(struct iovec *v, void *buf, size_t len, void *ctl, size_t ctllen) {
    struct msghdr m;
    memset(&m, 0, sizeof m);
    v->iov_base = buf;
    v->iov_len = len;
    m.msg_iov = v;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = ctllen;
    return m;
}

struct recvmsg_call {
    rsock_token *t;
    int sock;
    struct msghdr *m;
    int timeout_ms;
    intptr_t r;
    int err;
    pthread_t th;
};

static void *recvmsg_main(void *arg) {
    struct recvmsg_call *c = arg;
    c->r = rsock_recvmsg(c->t, c->sock, c->m, 0, c->timeout_ms);
    c->err = rsock_last_error();
    return NULL;
}

/* Data with SCM_RIGHTS pending, and calls cancelled before and while
   waiting: nothing consumed, the descriptor arrives exactly once, none
   leaked. Then a real race of cancel against arrival. */
static void recvmsg_cancel_keeps_rights(void) {
    int sv[2], p[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    REQUIRE(pipe(p) == 0);
    rsock_token *t = rsock_token_new();
    char byte;
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct iovec v;
    struct msghdr m = one_buffer(&v, &byte, 1, ctl.space, sizeof ctl.space);

    /* Cancelled while waiting (nothing there yet). */
    struct recvmsg_call rc = {t, sv[0], &m, 10000, 0, 0, 0};
    REQUIRE(pthread_create(&rc.th, NULL, recvmsg_main, &rc) == 0);
    sleep_ms(50);
    rsock_cancel(t);
    pthread_join(rc.th, NULL);
    CHECK(rc.r == -1 && rc.err == RSOCK_ECANCELED);
    /* The count to compare with, once this thread has waited (its wake
       descriptor stays open for its next calls). */
    rsock_token *warm = rsock_token_new();
    CHECK_ERR(rsock_recvmsg(warm, sv[0], &m, 0, 0), RSOCK_ETIMEDOUT);
    rsock_token_unref(warm);
    int base = fd_count();

    /* Sent now, while the token is still cancelled: still nothing consumed. */
    send_fd(sv[1], 'x', p[0]);
    CHECK_ERR(rsock_recvmsg(t, sv[0], &m, 0, 1000), RSOCK_ECANCELED);
    CHECK(pending(sv[0]) == 1 && fd_count() == base);
    rsock_token_reset(t);
    m = one_buffer(&v, &byte, 1, ctl.space, sizeof ctl.space);
#ifdef MSG_CMSG_CLOEXEC
    int cloexec = MSG_CMSG_CLOEXEC; /* recvmsg's own flag: accepted, passed on */
#else
    int cloexec = 0;
#endif
    CHECK(rsock_recvmsg(t, sv[0], &m, cloexec, 1000) == 1 && byte == 'x');
    int got[4];
    CHECK(fds_in(&m, got, 4) == 1 && !(m.msg_flags & MSG_CTRUNC));
    CHECK(fd_count() == base + 1 && same_pipe(got[0], p[1]));
    CHECK(!cloexec || !rt_inheritable(got[0]));
    close(got[0]);
    /* Exactly once: nothing more, and a timeout consumes nothing either. */
    m = one_buffer(&v, &byte, 1, ctl.space, sizeof ctl.space);
    CHECK_ERR(rsock_recvmsg(t, sv[0], &m, 0, 30), RSOCK_ETIMEDOUT);
    CHECK(fd_count() == base);

    /* Cancel and arrival racing: each descriptor arrives exactly once,
       whichever wins. */
    int rounds = rt_scaled(200), received = 0, cancelled = 0;
    for (int i = 0; i < rounds; i++) {
        rsock_token_reset(t);
        m = one_buffer(&v, &byte, 1, ctl.space, sizeof ctl.space);
        struct recvmsg_call c2 = {t, sv[0], &m, 10000, 0, 0, 0};
        REQUIRE(pthread_create(&c2.th, NULL, recvmsg_main, &c2) == 0);
        spin_us(i % 50 * 10);
        send_fd(sv[1], 'y', p[0]);
        rsock_cancel(t);
        pthread_join(c2.th, NULL);
        if (c2.r == 1) {
            received++;
        } else {
            CHECK(c2.r == -1 && c2.err == RSOCK_ECANCELED);
            cancelled++;
            rsock_token_reset(t);
            m = one_buffer(&v, &byte, 1, ctl.space, sizeof ctl.space);
            CHECK(rsock_recvmsg(t, sv[0], &m, 0, 1000) == 1);
        }
        CHECK(byte == 'y' && fds_in(&m, got, 4) == 1);
        if (fds_in(&m, got, 4) == 1) close(got[0]);
        CHECK(pending(sv[0]) == 0);
    }
    CHECK(fd_count() == base);
    printf("  race: %d received, %d cancelled first\n", received, cancelled);
    rsock_token_unref(t);
    close(p[0]);
    close(p[1]);
    close_pair(sv);
}

struct later_send {
    int sock, fd;
};

static void *send_later(void *arg) {
    struct later_send *l = arg;
    sleep_ms(30);
    send_fd(l->sock, '3', l->fd);
    sleep_ms(20);
    if (write(l->sock, "4", 1) != 1) perror("write");
    return NULL;
}

static void recvmsg_scatter_and_gather(void) {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rsock_token *t = rsock_token_new();
    char a[3], b[1], c[4], d[5];
    struct iovec v[4] = {{a, 3}, {b, 0}, {c, 4}, {d, 5}}, saved[4];
    memcpy(saved, v, sizeof v);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = v;
    m.msg_iovlen = 4;

    /* Scatter: one call fills the iovecs in order. */
    REQUIRE(write(sv[1], "abcdefghijkl", 12) == 12);
    CHECK(rsock_recvmsg(t, sv[0], &m, MSG_PEEK, 1000) == 12);
    CHECK(rsock_recvmsg(t, sv[0], &m, 0, 1000) == 12);
    CHECK(memcmp(a, "abc", 3) == 0 && memcmp(c, "defg", 4) == 0 && memcmp(d, "hijkl", 5) == 0);

    /* MSG_WAITALL gathers pieces arriving over time across the iovecs. */
    struct late_write w[3];
    start_late_write(&w[0], sv[1], "AB", 2, 20);
    start_late_write(&w[1], sv[1], "CDEFG", 5, 60);
    start_late_write(&w[2], sv[1], "HIJKL", 5, 100);
    double t0 = now_ms();
    rt_set_error(0);
    CHECK(rsock_recvmsg(t, sv[0], &m, MSG_WAITALL, 5000) == 12);
    CHECK(now_ms() - t0 >= 90);
    for (int i = 0; i < 3; i++) pthread_join(w[i].th, NULL);
    CHECK(memcmp(a, "ABC", 3) == 0 && memcmp(c, "DEFG", 4) == 0 && memcmp(d, "HIJKL", 5) == 0);
    CHECK(memcmp(saved, v, sizeof v) == 0);

    /* Cancelled part-way: the partial count, errno the reason; the rest
       is still there. */
    REQUIRE(write(sv[1], "xyzw", 4) == 4);
    struct canceller k;
    start_cancel(&k, t, 50);
    rt_set_error(0);
    CHECK(rsock_recvmsg(t, sv[0], &m, MSG_WAITALL, 5000) == 4);
    CHECK(rsock_last_error() == RSOCK_ECANCELED);
    join_cancel(&k);
    CHECK(memcmp(a, "xyz", 3) == 0 && c[0] == 'w' && memcmp(saved, v, sizeof v) == 0);
    rsock_token_reset(t);
    rt_set_error(0);
    CHECK(rsock_recvmsg(t, sv[0], &m, MSG_WAITALL, 50) == -1 && rsock_last_error() == RSOCK_ETIMEDOUT);

    /* Ancillary data ends the gathering: the bytes before and with it,
       the descriptor once, errno 0; the rest comes next. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    m.msg_control = ctl.space;
    m.msg_controllen = sizeof ctl.space;
    struct late_write w2;
    REQUIRE(write(sv[1], "12", 2) == 2);
    start_late_write(&w2, sv[1], "56789abcdef", 11, 80);
    int base = fd_count();
    /* "3" with the descriptor arrives 30 ms into the call, "4" after it. */
    pthread_t th;
    struct later_send later = {sv[1], p[0]};
    REQUIRE(pthread_create(&th, NULL, send_later, &later) == 0);
    rt_set_error(0);
    intptr_t r = rsock_recvmsg(t, sv[0], &m, MSG_WAITALL, 5000);
    int e = rsock_last_error();
    pthread_join(th, NULL);
    CHECK(r == 3 && e == 0 && memcmp(a, "123", 3) == 0);
    int got[4];
    CHECK(m.msg_controllen > 0 && fds_in(&m, got, 4) == 1 && fd_count() == base + 1);
    if (fd_count() == base + 1) close(got[0]);
    m.msg_controllen = sizeof ctl.space;
    CHECK(rsock_recvmsg(t, sv[0], &m, MSG_WAITALL, 5000) == 12);
    CHECK(memcmp(a, "456", 3) == 0 && memcmp(c, "789a", 4) == 0 && memcmp(d, "bcdef", 5) == 0);
    pthread_join(w2.th, NULL);
    CHECK(m.msg_controllen == 0 && fd_count() == base);
    close(p[0]);
    close(p[1]);
    close_pair(sv);
    rsock_token_unref(t);
}

static void recvmsg_udp_with_control(void) {
    struct sockaddr_in addr;
    int u = udp_bound(&addr), s = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(s >= 0);
    int one = 1;
    REQUIRE(setsockopt(u, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof one) == 0);
    rsock_token *t = rsock_token_new();
    char buf[32];
    union {
        struct cmsghdr h;
        char space[256];
    } ctl;
    struct sockaddr_in from;
    struct iovec v;
    struct msghdr m = one_buffer(&v, buf, sizeof buf, ctl.space, sizeof ctl.space);
    m.msg_name = &from;
    m.msg_namelen = sizeof from;

    /* Cancelled while waiting, then timed out: nothing to consume yet. */
    struct recvmsg_call rc = {t, u, &m, 10000, 0, 0, 0};
    REQUIRE(pthread_create(&rc.th, NULL, recvmsg_main, &rc) == 0);
    sleep_ms(50);
    rsock_cancel(t);
    pthread_join(rc.th, NULL);
    CHECK(rc.r == -1 && rc.err == RSOCK_ECANCELED);
    CHECK(m.msg_namelen == sizeof from && m.msg_controllen == sizeof ctl.space); /* untouched */

    /* A datagram queued under a cancelled token stays queued. */
    REQUIRE(sendto(s, "dgram", 5, 0, (struct sockaddr *)&addr, sizeof addr) == 5);
    sleep_ms(10);
    CHECK_ERR(rsock_recvmsg(t, u, &m, 0, 1000), RSOCK_ECANCELED);
    CHECK(pending(u) == 5);
    rsock_token_reset(t);
    CHECK(rsock_recvmsg(t, u, &m, 0, 1000) == 5 && memcmp(buf, "dgram", 5) == 0);
    CHECK(m.msg_namelen == sizeof from && from.sin_family == AF_INET);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    CHECK(c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP);
    CHECK(!(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)));

    /* Timeout: nothing consumed, then a datagram larger than the buffer
       is truncated (MSG_TRUNC), as by recvmsg. */
    m.msg_controllen = sizeof ctl.space;
    CHECK_ERR(rsock_recvmsg(t, u, &m, 0, 30), RSOCK_ETIMEDOUT);
    char large[64];
    memset(large, 'L', sizeof large);
    REQUIRE(sendto(s, large, sizeof large, 0, (struct sockaddr *)&addr, sizeof addr) == sizeof large);
    m.msg_namelen = sizeof from;
    CHECK(rsock_recvmsg(t, u, &m, 0, 1000) == sizeof buf && (m.msg_flags & MSG_TRUNC));
    /* MSG_DONTWAIT: one attempt. */
    CHECK_ERR(rsock_recvmsg(t, u, &m, MSG_DONTWAIT, 1000), EAGAIN);
    close(u);
    close(s);
    rsock_token_unref(t);
}

/* ---------------------------------------------------------------- standard input */

static rsock_token *sig_token;

static void cancel_on_signal(int sig) {
    (void)sig;
    rsock_cancel(sig_token); /* async-signal-safe */
}

struct stdin_read {
    rsock_token *t;
    intptr_t r;
    int err;
    double took;
    pthread_t th;
};

static void *stdin_read_main(void *arg) {
    struct stdin_read *s = arg;
    char buf[64];
    double t0 = now_ms();
    s->r = rsock_read(s->t, STDIN_FILENO, buf, sizeof buf, 10000);
    s->err = rsock_last_error();
    s->took = now_ms() - t0;
    return NULL;
}

/* In a child process: a pty slave as standard input; a thread blocked
   reading it, cancelled from another thread, from a signal handler on the
   main thread (SIGALRM) and from one on the reading thread (SIGUSR1). */
static void stdin_child(int nonblock) {
    int m, s;
    open_pty(&m, &s);
    REQUIRE(dup2(s, STDIN_FILENO) == STDIN_FILENO);
    close(s);
    set_nonblocking(STDIN_FILENO, nonblock);
    int fl = flags_of(STDIN_FILENO);
    sig_token = rsock_token_new();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cancel_on_signal;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGALRM, &sa, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0);

    /* From another thread. */
    struct stdin_read r = {sig_token, 0, 0, 0, 0};
    REQUIRE(pthread_create(&r.th, NULL, stdin_read_main, &r) == 0);
    sleep_ms(50);
    rsock_cancel(sig_token);
    pthread_join(r.th, NULL);
    CHECK(r.r == -1 && r.err == RSOCK_ECANCELED && r.took >= 40 && r.took < 5000);

    /* Nothing consumed: typed input goes to the next read. */
    REQUIRE(write(m, "line\n", 5) == 5);
    sleep_ms(10);
    CHECK_ERR(rsock_read(sig_token, STDIN_FILENO, (char[8]){0}, 8, 1000), RSOCK_ECANCELED);
    rsock_token_reset(sig_token);
    char buf[8];
    CHECK(read_exact(sig_token, STDIN_FILENO, buf, 5) == 0 && memcmp(buf, "line\n", 5) == 0);

    /* From a SIGALRM handler, the blocked thread being the main one. */
    struct itimerval it = {{0, 0}, {0, 50000}};
    REQUIRE(setitimer(ITIMER_REAL, &it, NULL) == 0);
    double t0 = now_ms();
    CHECK_ERR(rsock_read(sig_token, STDIN_FILENO, buf, sizeof buf, 10000), RSOCK_ECANCELED);
    CHECK(now_ms() - t0 < 5000);
    rsock_token_reset(sig_token);

    /* From a SIGUSR1 handler running on the blocked thread itself. */
    struct stdin_read r2 = {sig_token, 0, 0, 0, 0};
    REQUIRE(pthread_create(&r2.th, NULL, stdin_read_main, &r2) == 0);
    sleep_ms(50);
    pthread_kill(r2.th, SIGUSR1);
    pthread_join(r2.th, NULL);
    CHECK(r2.r == -1 && r2.err == RSOCK_ECANCELED && r2.took < 5000);
    CHECK(flags_of(STDIN_FILENO) == fl);
    rsock_token_unref(sig_token);
    close(m);
}

static void stdin_read_cancelled(void) {
    for (int nb = 0; nb < 2; nb++) {
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            stdin_child(nb);
            _exit(rt_failures ? 1 : 0);
        }
        int status = -1;
        double t0 = now_ms();
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (now_ms() - t0 > 30000) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                fprintf(stderr, "stdin child hung; killed\n");
                break;
            }
            sleep_ms(5);
        }
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

/* ---------------------------------------------------------------- bad input */

static void bad_input(void) {
    rsock_token *t = rsock_token_new();
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char buf[8];
    struct iovec v = {buf, sizeof buf};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    CHECK_ERR(rsock_recvmsg(t, sv[0], NULL, 0, 0), EINVAL);
    CHECK_ERR(rsock_sendmsg(t, sv[0], NULL, 0, 0), EINVAL);
    m.msg_iovlen = 1; /* msg_iov NULL */
    CHECK_ERR(rsock_recvmsg(t, sv[0], &m, 0, 0), EINVAL);
    CHECK_ERR(rsock_sendmsg(t, sv[0], &m, 0, 0), EINVAL);
#ifdef IOV_MAX
    long iov_max = IOV_MAX;
#else
    long iov_max = sysconf(_SC_IOV_MAX);
#endif
    m.msg_iov = &v; /* never read past the count check */
    m.msg_iovlen = (size_t)iov_max + 1;
    CHECK_ERR(rsock_recvmsg(t, sv[0], &m, 0, 0), EMSGSIZE);
    CHECK_ERR(rsock_sendmsg(t, sv[0], &m, 0, 0), EMSGSIZE);
    m.msg_iovlen = 1;
    CHECK_ERR(rsock_recvmsg(t, sv[0], &m, 0x10000, 0), EINVAL);
    CHECK_ERR(rsock_sendmsg(t, sv[0], &m, 0x10000, 0), EINVAL);
    CHECK_ERR(rsock_recvmsg(t, -1, &m, 0, 0), EBADF);
    CHECK_ERR(rsock_sendmsg(t, -1, &m, 0, 0), EBADF);
    CHECK_ERR(rsock_recvmsg(t, sv[0], &m, 0, -5), EINVAL);
    /* A NULL base with a length: the kernel's EFAULT, never ours to touch
       (memory tools flag the system call itself, so not under them). */
    struct iovec nullv = {NULL, 4};
    m.msg_iov = &nullv;
    if (!rt_memory_tool()) {
        CHECK_ERR(rsock_sendmsg(t, sv[1], &m, 0, 1000), EFAULT);
        REQUIRE(write(sv[1], "data", 4) == 4);
        CHECK_ERR(rsock_recvmsg(t, sv[0], &m, 0, 1000), EFAULT);
    }

    CHECK_ERR(rsock_read(t, -1, buf, sizeof buf, 0), EBADF);
    CHECK_ERR(rsock_write(t, -1, buf, sizeof buf, 0), EBADF);
    CHECK_ERR(rsock_read(t, sv[0], NULL, 4, 0), EINVAL);
    CHECK_ERR(rsock_write(t, sv[0], NULL, 4, 0), EINVAL);
    CHECK(rsock_read(t, sv[0], NULL, 0, 0) == 0);
    CHECK(rsock_write(t, sv[0], NULL, 0, 0) == 0);
    int p[2];
    REQUIRE(pipe(p) == 0);
    close(p[1]);
    CHECK(rsock_read(t, p[0], buf, sizeof buf, 1000) == 0); /* end of file */
    close(p[0]);
    CHECK_ERR(rsock_read(t, p[0], buf, sizeof buf, 1000), EBADF); /* closed */
    int dir = open("/tmp", O_RDONLY);
    REQUIRE(dir >= 0);
    CHECK_ERR(rsock_read(t, dir, buf, sizeof buf, 1000), EISDIR);
    CHECK_ERR(rsock_write(t, dir, buf, sizeof buf, 1000), EBADF);
    set_nonblocking(dir, 1);
    CHECK_ERR(rsock_read(t, dir, buf, sizeof buf, 1000), EISDIR);
    close(dir);
    close_pair(sv);
    rsock_token_unref(t);
}

int main(void) {
    rt_watchdog(240);
    rt_ignore_sigpipe();
    RUN(recvmsg_cancel_keeps_rights);
    RUN(recvmsg_scatter_and_gather);
    RUN(recvmsg_udp_with_control);
    RUN(slow_readers_get_exact_counts);
    RUN(pipe_read_write);
    RUN(fifo_read_write);
    RUN(pty_read_write);
    RUN(socket_read_write);
#ifdef __linux__
    RUN(eventfd_read_write);
#endif
    RUN(regular_file_and_devices);
    RUN(stdin_read_cancelled);
    RUN(bad_input);
    return rt_finish("test_fdio");
}

#else

int main(void) {
    printf("skip test_fdio: rsock_recvmsg, rsock_sendmsg, rsock_read and rsock_write are POSIX only\n");
    return 0;
}

#endif
