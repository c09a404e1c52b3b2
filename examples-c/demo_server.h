/*
 * demo_server.h: a stand-in server for the client examples, so that they run
 * on their own: a thread that demo_server_stop can always stop (its
 * accept and recv wait on a token that stop cancels).
 *
 * It listens on 127.0.0.1 (an ephemeral port), serves one client, and speaks
 * a line protocol:
 *   on connect  ->  "hello from the demo server\n"
 *   "QUIT\n"    ->  "bye\n", then it closes
 *   any other line (such as "TIME\n") is never answered: a slow server.
 */
#ifndef DEMO_SERVER_H
#define DEMO_SERVER_H

#include "portable.h" /* what differs on Windows; includes rsock.h */

#include <pthread.h>
#include <string.h>

struct demo_server {
    rsock_socket listener;
    struct sockaddr_in addr; /* where it listens */
    pthread_t thread;
    rsock_token *stop;
};

static int demo_server_read_line(struct demo_server *srv, rsock_socket s, char *line, size_t size) {
    size_t n = 0;
    char c;
    while (n + 1 < size && rsock_recv(srv->stop, s, &c, 1, 0, RSOCK_INFINITE) == 1) {
        if (c == '\n') {
            line[n] = '\0';
            return 0;
        }
        line[n++] = c;
    }
    return -1;
}

static void *demo_server_run(void *arg) {
    struct demo_server *srv = arg;
    rsock_socket s = rsock_accept(srv->stop, srv->listener, NULL, NULL, RSOCK_INFINITE);
    if (s == RSOCK_INVALID_SOCKET) return NULL; /* stopped before a client came */
    const char hello[] = "hello from the demo server\n";
    send(s, hello, sizeof hello - 1, MSG_NOSIGNAL);
    char line[64];
    while (demo_server_read_line(srv, s, line, sizeof line) == 0) {
        if (strcmp(line, "QUIT") == 0) {
            send(s, "bye\n", 4, MSG_NOSIGNAL);
            break;
        }
    }
    closesocket(s);
    return NULL;
}

/* 0 on success, -1 on failure (a socket call's error is in
   rsock_last_error()). Winsock must be started first. */
static int demo_server_start(struct demo_server *srv) {
    socklen_t len = sizeof srv->addr;
    memset(&srv->addr, 0, sizeof srv->addr);
    srv->addr.sin_family = AF_INET;
    srv->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->stop = rsock_token_new();
    srv->listener = socket(AF_INET, SOCK_STREAM, 0);
    if (!srv->stop || srv->listener == RSOCK_INVALID_SOCKET) return -1;
    if (bind(srv->listener, (struct sockaddr *)&srv->addr, sizeof srv->addr) != 0 ||
        listen(srv->listener, 1) != 0 ||
        getsockname(srv->listener, (struct sockaddr *)&srv->addr, &len) != 0 ||
        pthread_create(&srv->thread, NULL, demo_server_run, srv) != 0) {
        closesocket(srv->listener);
        return -1;
    }
    return 0;
}

/* Stops the server, whether or not a client came, and cleans up. */
static void demo_server_stop(struct demo_server *srv) {
    rsock_cancel(srv->stop);
    pthread_join(srv->thread, NULL);
    rsock_token_unref(srv->stop);
    closesocket(srv->listener);
}

#endif /* DEMO_SERVER_H */
