/*
 * echo_server: a multi-client echo server that shuts down cleanly on Ctrl-C
 * (SIGINT) or, on POSIX, SIGTERM.
 *
 * One root token for the server, a child token per connection, a thread per
 * client. The signal handler cancels the root token (rsock_cancel is
 * async-signal-safe, and callable from any thread: on Windows the C runtime
 * runs the handler on a thread of its own), and so every child: the accept
 * loop and every client's recv and send return RSOCK_ECANCELED, every
 * thread is joined, and the server prints what it served and exits 0. A
 * client idle for IDLE_MS is dropped (a per-call timeout); a child token
 * would also let the server drop one client without touching the others.
 *
 * usage: echo_server [port]    (listens on 127.0.0.1; default: any free port)
 */
#define _POSIX_C_SOURCE 200809L
#include "portable.h" /* what differs on Windows; includes rsock.h */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_MS (5 * 60 * 1000)

struct client {
    pthread_t thread;
    rsock_token *token; /* child of the root token */
    rsock_socket sock;
    long long bytes; /* echoed back */
    atomic_int done;  /* the thread has finished: join it */
};

static rsock_token *root; /* set before the signal handlers are installed */

static void on_signal(int sig) {
    (void)sig;
    rsock_cancel(root); /* async-signal-safe: no lock, no allocation */
}

static void *serve_client(void *arg) {
    struct client *c = arg;
    char buf[16384];
    for (;;) {
        intptr_t n = rsock_recv(c->token, c->sock, buf, sizeof buf, 0, IDLE_MS);
        if (n <= 0) break; /* closed by the client, cancelled, idle too long, or an error */
        intptr_t sent = rsock_send(c->token, c->sock, buf, (size_t)n, MSG_NOSIGNAL, IDLE_MS);
        if (sent > 0) c->bytes += sent; /* exact, even when cut short */
        if (sent != n) break;
    }
    closesocket(c->sock);
    atomic_store(&c->done, 1);
    return NULL;
}

/* Joins and frees finished clients (all of them with `all`); adds what they
   served to *bytes and returns how many are left in the array. */
static size_t reap(struct client **clients, size_t n, int all, long long *bytes) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        struct client *c = clients[i];
        if (!all && !atomic_load(&c->done)) {
            clients[kept++] = c;
            continue;
        }
        pthread_join(c->thread, NULL);
        *bytes += c->bytes;
        rsock_token_unref(c->token);
        free(c);
    }
    return kept;
}

int main(int argc, char **argv) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(argc > 1 ? (unsigned short)atoi(argv[1]) : 0);
    if (argc > 1 && (atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535)) {
        fprintf(stderr, "usage: %s [port]\n", argv[0]);
        return 1;
    }
    int one = 1;
    if (sockets_start() != 0) {
        fprintf(stderr, "echo_server: %s\n", rsock_strerror(rsock_last_error()));
        return 1;
    }
    rsock_socket lst = socket(AF_INET, SOCK_STREAM, 0);
    if (lst == RSOCK_INVALID_SOCKET ||
        setsockopt(lst, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof one) != 0 ||
        bind(lst, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lst, 64) != 0 ||
        getsockname(lst, (struct sockaddr *)&addr, &len) != 0) {
        fprintf(stderr, "echo_server: listen: %s\n", rsock_strerror(rsock_last_error()));
        return 1;
    }

    root = rsock_token_new();
    if (!root) {
        fprintf(stderr, "echo_server: rsock_token_new: %s\n", rsock_strerror(rsock_last_error()));
        return 1;
    }
    catch_signal(SIGINT, on_signal);
    catch_signal(SIGTERM, on_signal);
    ignore_sigpipe(); /* a client that vanishes is an error, not the end */

    printf("echo_server: listening on 127.0.0.1:%u (Ctrl-C to stop)\n", ntohs(addr.sin_port));
    fflush(stdout);

    struct client **clients = NULL;
    size_t nclients = 0, served = 0;
    long long bytes = 0;
    for (;;) {
        nclients = reap(clients, nclients, 0, &bytes);
        rsock_socket s = rsock_accept(root, lst, NULL, NULL, RSOCK_INFINITE);
        if (s == RSOCK_INVALID_SOCKET) {
            int err = rsock_last_error();
            if (err == RSOCK_ECANCELED) break; /* SIGINT or SIGTERM */
            fprintf(stderr, "echo_server: accept: %s\n", rsock_strerror(err));
            if (err != SOCK_ECONNABORTED && rsock_poll(root, NULL, 0, 100) < 0) break; /* back off, cancellably */
            continue;
        }
        struct client *c = calloc(1, sizeof *c);
        struct client **grown = realloc(clients, (nclients + 1) * sizeof *clients);
        if (c) c->token = rsock_token_child(root);
        if (!c || !grown || !c->token) {
            fprintf(stderr, "echo_server: out of memory; dropping a client\n");
            if (c) rsock_token_unref(c->token);
            free(c);
            if (grown) clients = grown;
            closesocket(s);
            continue;
        }
        clients = grown;
        c->sock = s;
        if (pthread_create(&c->thread, NULL, serve_client, c) != 0) {
            fprintf(stderr, "echo_server: cannot start a thread; dropping a client\n");
            rsock_token_unref(c->token);
            free(c);
            closesocket(s);
            continue;
        }
        clients[nclients++] = c;
        served++;
    }

    printf("echo_server: shutting down\n");
    reap(clients, nclients, 1, &bytes); /* every thread returns: its child token is cancelled */
    free(clients);
    /* No handler may reach the token once it is freed. */
    catch_signal(SIGINT, SIG_DFL);
    catch_signal(SIGTERM, SIG_DFL);
    rsock_token_unref(root);
    closesocket(lst);
    sockets_stop();
    printf("echo_server: served %zu clients, %lld bytes\n", served, bytes);
    return 0;
}
