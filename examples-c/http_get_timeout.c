/*
 * http_get_timeout: fetches a URL path over HTTP/1.0 with a deadline, and
 * stops at once on Ctrl-C.
 *
 * Connecting (to each address of the host in turn) must finish within the
 * timeout; after that every send and recv has the same timeout of its own.
 * SIGINT cancels the token from the signal handler. The reply goes to
 * stdout.
 *
 * usage: http_get_timeout HOST PORT [PATH] [TIMEOUT_MS]
 * exit:  0 done, 1 error, 2 timed out, 130 cancelled (Ctrl-C)
 *
 * (getaddrinfo itself cannot be cancelled or timed out yet.)
 */
#define _POSIX_C_SOURCE 200809L
#include <rsock.h>

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* where it does not exist, SIGPIPE is ignored below */
#endif

static rsock_token *token;

static void on_sigint(int sig) {
    (void)sig;
    rsock_cancel(token);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Reports a failed call and gives the exit code for it. */
static int fail(const char *what) {
    int err = rsock_last_error();
    fprintf(stderr, "http_get_timeout: %s: %s\n", what, rsock_strerror(err));
    return err == RSOCK_ETIMEDOUT ? 2 : err == RSOCK_ECANCELED ? 130 : 1;
}

/* Connects to one of the host's addresses before `deadline`. */
static int connect_before(const char *host, const char *port, long long deadline, int *code) {
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "http_get_timeout: %s: %s\n", host, gai_strerror(rc));
        *code = 1;
        return -1;
    }
    int s = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        long long left = deadline - now_ms();
        s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (s < 0) continue;
        if (rsock_connect(token, s, ai->ai_addr, ai->ai_addrlen, left > 0 ? (int)left : 0) == 0)
            break;
        *code = fail("connect");
        close(s); /* after a failed or cancelled connect, the socket is done */
        s = -1;
        if (*code != 1) break; /* cancelled or out of time: no other address */
    }
    freeaddrinfo(res);
    return s;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST PORT [PATH] [TIMEOUT_MS]\n", argv[0]);
        return 1;
    }
    const char *host = argv[1], *port = argv[2];
    const char *path = argc > 3 ? argv[3] : "/";
    int timeout_ms = argc > 4 ? atoi(argv[4]) : 5000;
    if (timeout_ms <= 0) {
        fprintf(stderr, "http_get_timeout: TIMEOUT_MS must be a positive number\n");
        return 1;
    }

    token = rsock_token_new();
    if (!token) {
        perror("http_get_timeout: rsock_token_new");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int code = 1;
    int s = connect_before(host, port, now_ms() + timeout_ms, &code);
    if (s < 0) return code;

    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
    if (n < 0 || (size_t)n >= sizeof request) {
        fprintf(stderr, "http_get_timeout: path too long\n");
        return 1;
    }
    long long total = 0;
    if (rsock_send(token, s, request, (size_t)n, MSG_NOSIGNAL, timeout_ms) != n) {
        code = fail("send");
    } else {
        fprintf(stderr, "http_get_timeout: request sent, waiting for the reply\n");
        char buf[4096];
        intptr_t r;
        while ((r = rsock_recv(token, s, buf, sizeof buf, 0, timeout_ms)) > 0) {
            fwrite(buf, 1, (size_t)r, stdout);
            total += r;
        }
        code = r < 0 ? fail("recv") : 0;
    }
    close(s);
    sa.sa_handler = SIG_DFL; /* no handler may reach the token once it is freed */
    sigaction(SIGINT, &sa, NULL);
    rsock_token_unref(token);
    fflush(stdout);
    if (code == 0) fprintf(stderr, "http_get_timeout: %lld bytes received\n", total);
    return code;
}
