/*
 * Runs a C example the way a user would and checks what it prints and how
 * it exits; for the servers and clients it plays the other side.
 *
 * usage: driver [--wine] NAME PROGRAM
 *   NAME: cancel_demo, legacy_hook, worker_cancel, echo_server,
 *   http_get_timeout, jthread_client or https_get; PROGRAM: the built example.
 *   --wine: PROGRAM is a Windows build, run with $WINE (default: wine;
 *   WINEPREFIX as set). Its sockets are the host's, so the driver talks to
 *   it as to a native one; checks that cannot work there are skipped, with
 *   a "skip" line saying why.
 *   NAME may also be stdin_cancel, whose standard input the driver feeds
 *   from a pipe.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static const char *wine; /* the Wine command with --wine, else NULL */

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
            failures++;                                                             \
        }                                                                           \
    } while (0)

/* A running example, its stdout and stderr captured together. */
struct proc {
    pid_t pid;
    int out;
    char buf[1 << 16];
    size_t len;
};

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Starts PROGRAM with stdin from `in` (-1: /dev/null, not a terminal: the
   examples run unattended). */
static void spawn_with_stdin(struct proc *p, char *const argv[], int in) {
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    p->len = 0;
    p->buf[0] = '\0';
    p->pid = fork();
    if (p->pid < 0) {
        perror("fork");
        exit(2);
    }
    if (p->pid == 0) {
        if (in < 0) in = open("/dev/null", O_RDONLY);
        dup2(in, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        signal(SIGPIPE, SIG_DFL); /* the examples get the default, as from a shell */
        if (wine) {
            /* wine execs the program's process (same pid): signals reach it. */
            char *wargv[16] = {(char *)wine};
            for (int i = 0; argv[i] && i < 14; i++) wargv[i + 1] = argv[i];
            execvp(wine, wargv);
            perror(wine);
        } else {
            execv(argv[0], argv);
            perror(argv[0]);
        }
        _exit(127);
    }
    close(fds[1]);
    p->out = fds[0];
}

static void spawn(struct proc *p, char *const argv[]) { spawn_with_stdin(p, argv, -1); }

/* Reads output until `needle` shows (1), or end of output or `timeout_ms` (0). */
static int read_until(struct proc *p, const char *needle, int timeout_ms) {
    long long deadline = now_ms() + timeout_ms;
    while (!(needle && strstr(p->buf, needle))) {
        long long left = deadline - now_ms();
        struct pollfd pfd = {p->out, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) return 0;
        ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (n <= 0) return 0;
        p->len += (size_t)n;
        p->buf[p->len] = '\0';
    }
    return 1;
}

/* Collects the rest of the output and the exit status (128 + signal if
   killed; -1, after killing it, if it does not exit in time). */
static int finish(struct proc *p, int timeout_ms) {
    long long deadline = now_ms() + timeout_ms;
    read_until(p, NULL, timeout_ms);
    close(p->out);
    int status;
    while (waitpid(p->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            fprintf(stderr, "FAIL: still running after %d ms; killed\n", timeout_ms);
            return -1;
        }
        usleep(10 * 1000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Checks that each of the NULL-terminated `needles` appears, in order. */
static void expect_output(const struct proc *p, const char *const *needles) {
    const char *at = p->buf;
    for (; *needles; needles++) {
        const char *hit = strstr(at, *needles);
        if (!hit) {
            fprintf(stderr, "FAIL: expected \"%s\" (in this order) in the output\n", *needles);
            failures++;
            return;
        }
        at = hit + strlen(*needles);
    }
}

static int run_simple(char *prog, const char *const *needles, const char *absent) {
    struct proc p;
    char *argv[] = {prog, NULL};
    spawn(&p, argv);
    int status = finish(&p, 30000);
    CHECK(status == 0);
    expect_output(&p, needles);
    if (absent) CHECK(strstr(p.buf, absent) == NULL);
    printf("%s", p.buf);
    return status;
}

/* ---------------------------------------------------------------- stdin_cancel */

/* Runs stdin_cancel with `seconds` and a pipe on its stdin that gets
   `input` and stays open (closed at once with `close_input`); with
   `sigint_after`, a SIGINT once that text shows. Returns the exit status. */
static int run_stdin(char *prog, const char *seconds, const char *input, int close_input,
                     const char *sigint_after, struct proc *p) {
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0) { /* the program's copy of the write end would hide the end */
        perror("pipe");
        exit(2);
    }
    char *argv[] = {prog, (char *)seconds, NULL};
    spawn_with_stdin(p, argv, in[0]);
    close(in[0]);
    CHECK(write(in[1], input, strlen(input)) == (ssize_t)strlen(input));
    if (close_input) close(in[1]);
    if (sigint_after) {
        CHECK(read_until(p, sigint_after, 10000));
        CHECK(kill(p->pid, SIGINT) == 0);
    }
    int status = finish(p, 30000);
    if (!close_input) close(in[1]);
    printf("%s", p->buf);
    fflush(stdout);
    return status;
}

static void check_stdin_cancel(char *prog) {
    struct proc p;
    if (wine) {
        const char *want[] = {"POSIX only", NULL};
        run_simple(prog, want, NULL);
        return;
    }
    printf("-- two lines on a pipe that stays open, 1 s timer\n");
    long long t0 = now_ms();
    CHECK(run_stdin(prog, "1", "alpha\nbeta\n", 0, NULL, &p) == 0);
    CHECK(now_ms() - t0 >= 1000);
    const char *timer[] = {"line 1: alpha", "line 2: beta", "main: 1 s passed; cancelling the reader",
                           "reader: cancelled after 2 lines", "main: done", NULL};
    expect_output(&p, timer);

    printf("-- Ctrl-C while it waits for more\n");
    t0 = now_ms();
    CHECK(run_stdin(prog, "60", "gamma\n", 0, "line 1: gamma", &p) == 0);
    CHECK(now_ms() - t0 < 20000);
    const char *sigint[] = {"line 1: gamma", "reader: cancelled after 1 line", "main: stopped by Ctrl-C",
                            "main: done", NULL};
    expect_output(&p, sigint);

    printf("-- input that ends\n");
    t0 = now_ms();
    CHECK(run_stdin(prog, "60", "delta\nlast", 1, NULL, &p) == 0);
    CHECK(now_ms() - t0 < 20000);
    const char *eof[] = {"line 1: delta", "line 2: last", "reader: end of input after 2 lines", "main: done", NULL};
    expect_output(&p, eof);
}

/* ---------------------------------------------------------------- echo_server */

static int connect_to(unsigned short port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0}; /* a lost reply fails the test instead of hanging it */
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        close(s);
        return -1;
    }
    return s;
}

static unsigned short start_echo_server(struct proc *p, char *prog) {
    char *argv[] = {prog, NULL};
    spawn(p, argv);
    const char *tag = "listening on 127.0.0.1:";
    if (!read_until(p, tag, 10000)) {
        fprintf(stderr, "FAIL: echo_server did not start:\n%s\n", p->buf);
        kill(p->pid, SIGKILL);
        exit(1);
    }
    return (unsigned short)atoi(strstr(p->buf, tag) + strlen(tag));
}

static void check_echo_server(char *prog) {
    enum { CLIENTS = 4 };
    struct proc p;
    unsigned short port = start_echo_server(&p, prog);

    /* Four clients, all connected at once; each sends (i+1) KB and reads
       it back. */
    int socks[CLIENTS];
    long long expected = 0;
    static char out[8192], in[8192];
    for (int i = 0; i < CLIENTS; i++) socks[i] = connect_to(port);
    for (int i = 0; i < CLIENTS; i++) {
        size_t n = (size_t)(i + 1) * 1000;
        for (size_t k = 0; k < n; k++) out[k] = (char)('a' + (k + (size_t)i) % 26);
        CHECK(socks[i] >= 0 && send(socks[i], out, n, 0) == (ssize_t)n);
        CHECK(recv(socks[i], in, n, MSG_WAITALL) == (ssize_t)n && memcmp(in, out, n) == 0);
        expected += (long long)n;
    }
    /* The first leaves; the others stay connected and idle, so their
       server threads are blocked in recv when the signal comes. */
    close(socks[0]);
    CHECK(kill(p.pid, SIGINT) == 0);
    int status = finish(&p, 10000);
    CHECK(status == 0);
    char summary[96];
    snprintf(summary, sizeof summary, "served %d clients, %lld bytes", CLIENTS, expected);
    const char *want[] = {"shutting down", summary, NULL};
    expect_output(&p, want);
    /* The server closed the idle connections on its way out (it exited:
       this checks only that the clients see a clean end of stream). */
    for (int i = 1; i < CLIENTS; i++) {
        CHECK(recv(socks[i], in, 1, 0) == 0);
        close(socks[i]);
    }
    printf("%s", p.buf);

    /* SIGTERM with no client at all (on Windows, which has no SIGTERM from
       outside, Ctrl-C again). */
    start_echo_server(&p, prog);
    if (wine) printf("skip echo_server SIGTERM: Windows has no SIGTERM from outside; SIGINT (Ctrl-C) instead\n");
    CHECK(kill(p.pid, wine ? SIGINT : SIGTERM) == 0);
    CHECK(finish(&p, 10000) == 0);
    const char *none[] = {"served 0 clients, 0 bytes", NULL};
    expect_output(&p, none);
    printf("%s", p.buf);
}

/* ---------------------------------------------------------------- http_get_timeout */

struct http_server {
    int listener;
    unsigned short port;
    int answer; /* 0: read the request and never answer */
    char request[1024];
    pthread_t thread;
};

static void *http_serve(void *arg) {
    struct http_server *srv = arg;
    int s = accept(srv->listener, NULL, NULL);
    if (s < 0) return NULL;
    struct timeval tv = {30, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t len = 0;
    ssize_t n;
    while (!strstr(srv->request, "\r\n\r\n") && len + 1 < sizeof srv->request &&
           (n = recv(s, srv->request + len, sizeof srv->request - 1 - len, 0)) > 0) {
        len += (size_t)n;
        srv->request[len] = '\0';
    }
    if (srv->answer) {
        const char reply[] = "HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nhello, rsock\n";
        send(s, reply, sizeof reply - 1, MSG_NOSIGNAL);
    } else {
        char c;
        while (recv(s, &c, 1, 0) > 0) { /* until the client goes */
        }
    }
    close(s);
    return NULL;
}

static void http_server_start(struct http_server *srv, int answer) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(srv, 0, sizeof *srv);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* IPv4 only: "localhost" may try ::1 first */
    srv->answer = answer;
    srv->listener = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(srv->listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(srv->listener, 4) != 0 ||
        getsockname(srv->listener, (struct sockaddr *)&a, &len) != 0) {
        perror("http server");
        exit(2);
    }
    srv->port = ntohs(a.sin_port);
    pthread_create(&srv->thread, NULL, http_serve, srv);
}

static void http_server_stop(struct http_server *srv) {
    pthread_join(srv->thread, NULL);
    close(srv->listener);
}

static int run_http(char *prog, const char *host, struct http_server *srv, const char *timeout_ms,
                    int sigint_when_waiting, struct proc *p) {
    char port[16];
    snprintf(port, sizeof port, "%u", srv->port);
    char *argv[] = {prog, (char *)host, port, "/hello", (char *)timeout_ms, NULL};
    spawn(p, argv);
    if (sigint_when_waiting) {
        CHECK(read_until(p, "waiting for the reply", 10000));
        CHECK(kill(p->pid, SIGINT) == 0);
    }
    int status = finish(p, 30000);
    printf("%s", p->buf);
    fflush(stdout);
    http_server_stop(srv);
    return status;
}

static void check_http_get_timeout(char *prog) {
    struct http_server srv;
    struct proc p;

    printf("-- a server that answers\n");
    http_server_start(&srv, 1);
    CHECK(run_http(prog, "localhost", &srv, "5000", 0, &p) == 0);
    CHECK(strncmp(srv.request, "GET /hello HTTP/1.0\r\n", 21) == 0);
    const char *ok[] = {"HTTP/1.0 200 OK", "hello, rsock", "52 bytes received", NULL};
    expect_output(&p, ok);

    printf("-- a server that never answers, 300 ms timeout\n");
    http_server_start(&srv, 0);
    long long t0 = now_ms();
    CHECK(run_http(prog, "127.0.0.1", &srv, "300", 0, &p) == 2);
    CHECK(now_ms() - t0 >= 300);
    const char *timed_out[] = {"waiting for the reply", "recv: operation timed out", NULL};
    expect_output(&p, timed_out);

    printf("-- nothing listening on the port\n");
    http_server_start(&srv, 0);
    shutdown(srv.listener, SHUT_RDWR); /* stops listening, keeps the port; accept fails */
    CHECK(run_http(prog, "localhost", &srv, "5000", 0, &p) == 1);
    const char *refused[] = {"localhost: connection refused", NULL};
    expect_output(&p, refused);

    printf("-- a server that never answers, then Ctrl-C\n");
    http_server_start(&srv, 0);
    CHECK(run_http(prog, "127.0.0.1", &srv, "60000", 1, &p) == 130);
    const char *cancelled[] = {"waiting for the reply", "recv: operation cancelled", NULL};
    expect_output(&p, cancelled);
}

/* ---------------------------------------------------------------- jthread_client */

static void check_jthread_client(char *prog) {
    struct proc p;
    printf("-- stopped by the timer\n");
    char *timer[] = {prog, "300", NULL};
    spawn(&p, timer);
    CHECK(finish(&p, 30000) == 0);
    const char *by_timer[] = {"worker: server says: hello", "worker: asked for the time",
                              "main: 300 ms passed, stopping the worker", "worker: stopped in recv reply",
                              "main: worker finished cleanly", NULL};
    expect_output(&p, by_timer);
    printf("%s", p.buf);

    printf("-- stopped by Ctrl-C\n");
    char *ctrl_c[] = {prog, "60000", NULL};
    spawn(&p, ctrl_c);
    CHECK(read_until(&p, "worker: asked for the time", 10000));
    CHECK(kill(p.pid, SIGINT) == 0);
    CHECK(finish(&p, 30000) == 0);
    const char *by_sigint[] = {"worker: asked for the time", "main: Ctrl-C, stopping the worker",
                               "worker: stopped in recv reply", "main: worker finished cleanly", NULL};
    expect_output(&p, by_sigint);
    printf("%s", p.buf);
}

/* ---------------------------------------------------------------- https_get */

/* `openssl s_server` on 127.0.0.1 (an ephemeral port), with a certificate
   for localhost that make_cert made in `dir`. -www: it answers GET with a
   status page; otherwise it completes the handshake and never answers.
   Its stdin is a pipe the driver holds open (at the end of its stdin,
   s_server drops the connection). */
struct tls_server {
    pid_t pid;
    int in, out;
    unsigned short port;
};

static int make_cert(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             dir, dir);
    return system(cmd) == 0;
}

static void tls_server_start(struct tls_server *t, const char *dir, int www) {
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) {
        perror("pipe");
        exit(2);
    }
    t->pid = fork();
    if (t->pid < 0) {
        perror("fork");
        exit(2);
    }
    if (t->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        close(in[1]);
        close(out[0]);
        execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key,
               www ? "-www" : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    t->in = in[1];
    t->out = out[0];
    struct proc p = {.pid = t->pid, .out = t->out, .len = 0};
    p.buf[0] = '\0';
    const char *tag = "ACCEPT 127.0.0.1:";
    if (!read_until(&p, tag, 10000) || !strchr(strstr(p.buf, tag), '\n')) {
        read_until(&p, "\n", 2000);
        if (!strstr(p.buf, tag)) {
            fprintf(stderr, "FAIL: openssl s_server did not start:\n%s\n", p.buf);
            kill(t->pid, SIGKILL);
            exit(1);
        }
    }
    t->port = (unsigned short)atoi(strstr(p.buf, tag) + strlen(tag));
}

static void tls_server_stop(struct tls_server *t) {
    close(t->in);
    kill(t->pid, SIGTERM);
    waitpid(t->pid, NULL, 0);
    close(t->out);
}

static int run_https(char *prog, const char *host, unsigned short port, const char *timeout_ms, const char *ca_file,
                     const char *sigint_after, struct proc *p) {
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%u", port);
    char *argv[] = {prog, (char *)host, port_s, "/hello", (char *)timeout_ms, (char *)ca_file, NULL};
    spawn(p, argv);
    if (sigint_after) {
        CHECK(read_until(p, sigint_after, 10000));
        usleep(50 * 1000); /* into the wait that follows */
        CHECK(kill(p->pid, SIGINT) == 0);
    }
    int status = finish(p, 30000);
    printf("%s", p->buf);
    fflush(stdout);
    return status;
}

static void check_https_get(char *prog) {
    if (wine || system("openssl version >/dev/null 2>&1") != 0) {
        printf("skip https_get: %s\n", wine ? "no OpenSSL in the Windows build" : "no openssl command");
        return;
    }
    char dir[] = "/tmp/rsock-https-XXXXXX", ca[600];
    if (!mkdtemp(dir) || !make_cert(dir)) {
        fprintf(stderr, "FAIL: cannot make a certificate with the openssl command\n");
        failures++;
        return;
    }
    snprintf(ca, sizeof ca, "%s/cert.pem", dir);
    struct proc p;
    struct tls_server ts;

    printf("-- openssl s_server -www, its certificate trusted\n");
    tls_server_start(&ts, dir, 1);
    CHECK(run_https(prog, "localhost", ts.port, "5000", ca, NULL, &p) == 0);
    const char *ok[] = {"TLS handshake", "waiting for the reply", "HTTP/1.0 200 ok", "bytes received", NULL};
    expect_output(&p, ok);

    printf("-- the same server, its certificate not trusted\n");
    CHECK(run_https(prog, "localhost", ts.port, "5000", NULL, NULL, &p) == 1);
    const char *untrusted[] = {"TLS handshake", "certificate verify failed", NULL};
    expect_output(&p, untrusted);
    tls_server_stop(&ts);

    printf("-- a server that never answers the handshake, 300 ms timeout\n");
    struct http_server srv;
    http_server_start(&srv, 0);
    long long t0 = now_ms();
    CHECK(run_https(prog, "127.0.0.1", srv.port, "300", ca, NULL, &p) == 2);
    CHECK(now_ms() - t0 >= 300);
    http_server_stop(&srv);
    const char *hs_timeout[] = {"TLS handshake", "handshake: operation timed out", NULL};
    expect_output(&p, hs_timeout);

    printf("-- a server that never answers the handshake, then Ctrl-C\n");
    http_server_start(&srv, 0);
    CHECK(run_https(prog, "127.0.0.1", srv.port, "60000", ca, "TLS handshake", &p) == 130);
    http_server_stop(&srv);
    const char *hs_cancel[] = {"TLS handshake", "handshake: operation cancelled", NULL};
    expect_output(&p, hs_cancel);

    printf("-- openssl s_server that never answers the request, then Ctrl-C; then a 1 s timeout\n");
    tls_server_start(&ts, dir, 0);
    CHECK(run_https(prog, "localhost", ts.port, "60000", ca, "waiting for the reply", &p) == 130);
    const char *reply_cancel[] = {"waiting for the reply", "reply: operation cancelled", NULL};
    expect_output(&p, reply_cancel);
    CHECK(run_https(prog, "localhost", ts.port, "1000", ca, NULL, &p) == 2);
    const char *reply_timeout[] = {"waiting for the reply", "reply: operation timed out", NULL};
    expect_output(&p, reply_timeout);
    tls_server_stop(&ts);

    char path[700];
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--wine") == 0) {
        wine = getenv("WINE") && *getenv("WINE") ? getenv("WINE") : "wine";
        argc--;
        argv++;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s [--wine] NAME PROGRAM\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    alarm(100); /* a hang fails the test (before ctest's 120 s timeout) */
    const char *name = argv[1];
    char *prog = argv[2];
    if (strcmp(name, "stdin_cancel") == 0) { /* POSIX: rsock_read on its stdin */
        check_stdin_cancel(prog);
    } else if (strcmp(name, "cancel_demo") == 0) {
        const char *want[] = {"worker returned: operation cancelled", "recv with a 50 ms timeout: operation timed out",
                              "18 bytes: \"hello after cancel\"", NULL};
        run_simple(prog, want, NULL);
    } else if (strcmp(name, "legacy_hook") == 0) {
        const char *want[] = {"server: hello from the demo server", "ui frame 1", "ui frame 5", "user pressed Cancel",
                              "recv failed with WSAEINTR after 5 ui frames: cancelled", "server: bye", NULL};
        run_simple(prog, want, "ui frame 6");
    } else if (strcmp(name, "worker_cancel") == 0) {
        const char *want[] = {"worker: asked for the time", "ui: cancelling the worker",
                              "worker: cancelled in recv reply", "ui: worker finished cleanly", NULL};
        run_simple(prog, want, NULL);
    } else if (strcmp(name, "echo_server") == 0) {
        check_echo_server(prog);
    } else if (strcmp(name, "http_get_timeout") == 0) {
        check_http_get_timeout(prog);
    } else if (strcmp(name, "jthread_client") == 0) {
        check_jthread_client(prog);
    } else if (strcmp(name, "https_get") == 0) {
        check_https_get(prog);
    } else {
        fprintf(stderr, "unknown example %s\n", name);
        return 2;
    }
    printf("%s: %s\n", name, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
