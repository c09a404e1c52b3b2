/*
 * http_get_timeout: fetches a URL path over HTTP/1.0 with a deadline, and
 * stops at once on Ctrl-C.
 *
 * Resolving the host and connecting (Happy Eyeballs over its IPv6 and
 * IPv4 addresses) must finish within the timeout; after that every send
 * and recv has the same timeout of its own. SIGINT cancels the token from
 * the signal handler, whichever of these is waiting. The reply goes to
 * stdout.
 *
 * usage: http_get_timeout HOST PORT [PATH] [TIMEOUT_MS]
 * exit:  0 done, 1 error, 2 timed out, 130 cancelled (Ctrl-C)
 */
#define _POSIX_C_SOURCE 200809L
#include "portable.h" /* what differs on Windows; includes rsock.h */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rsock_token *token;

static void on_sigint(int sig) {
    (void)sig;
    rsock_cancel(token);
}

/* Reports a failed call and gives the exit code for it. */
static int fail(const char *what) {
    int err = rsock_last_error();
    fprintf(stderr, "http_get_timeout: %s: %s\n", what, rsock_strerror(err));
    return err == RSOCK_ETIMEDOUT ? 2 : err == RSOCK_ECANCELED ? 130 : 1;
}

/* Sends the request and copies the reply to stdout; returns the exit code. */
static int get(rsock_socket s, const char *host, const char *path, int timeout_ms) {
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
    if (n < 0 || (size_t)n >= sizeof request) {
        fprintf(stderr, "http_get_timeout: path too long\n");
        return 1;
    }
    if (rsock_send(token, s, request, (size_t)n, MSG_NOSIGNAL, timeout_ms) != n) return fail("send");
    fprintf(stderr, "http_get_timeout: request sent, waiting for the reply\n");
    char buf[4096];
    long long total = 0;
    intptr_t r;
    while ((r = rsock_recv(token, s, buf, sizeof buf, 0, timeout_ms)) > 0) {
        fwrite(buf, 1, (size_t)r, stdout);
        total += r;
    }
    if (r < 0) return fail("recv");
    fflush(stdout);
    fprintf(stderr, "http_get_timeout: %lld bytes received\n", total);
    return 0;
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

    if (sockets_start() != 0) return fail("sockets_start");
    token = rsock_token_new();
    if (!token) return fail("rsock_token_new");
    catch_signal(SIGINT, on_sigint);
    ignore_sigpipe();

    /* Resolve, then connect (IPv6 and IPv4 raced), all within timeout_ms. */
    int code;
    rsock_socket s = rsock_connect_host(token, host, port, SOCK_STREAM, timeout_ms);
    if (s == RSOCK_INVALID_SOCKET) {
        code = fail(host);
    } else {
        code = get(s, host, path, timeout_ms);
        closesocket(s);
    }
    catch_signal(SIGINT, SIG_DFL); /* no handler may reach the token once it is freed */
    rsock_token_unref(token);
    sockets_stop();
    return code;
}
