/*
 * worker_cancel: legacy_hook migrated to a worker thread. The network code
 * runs on the worker with no blocking hook; the main thread is the UI. When
 * the user presses Enter (or, when stdin is not a terminal, after a short
 * timer) the UI cancels the worker's call through the worker's thread token.
 * That is race-free: a cancel that lands before the worker blocks is not
 * lost, because a cancelled token stays cancelled.
 */
#define _POSIX_C_SOURCE 200809L
#include "demo_server.h" /* a stand-in server on a thread */

#include <stdio.h>

struct worker {
    struct sockaddr_in server;
    pthread_mutex_t lock;
    pthread_cond_t published;
    rsock_token *token; /* the worker's thread token, for the UI */
    int published_ok;   /* token set (NULL if it could not be had) */
    int cancelled;
};

/* Reads one line with the thread's own token (NULL): 1, 0 at end of
   stream, or -1 with the error in rsock_last_error(). */
static int read_line(rsock_socket s, char *line, int size) {
    int n = 0;
    while (n + 1 < size) {
        intptr_t r = rsock_recv(NULL, s, &line[n], 1, 0, RSOCK_INFINITE);
        if (r <= 0) return (int)r;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    return 1;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;

    /* Hand this thread's token to the UI: cancelling it cancels every
       NULL-token call this thread makes, now or later. */
    pthread_mutex_lock(&w->lock);
    w->token = rsock_thread_token();
    w->published_ok = 1;
    pthread_cond_signal(&w->published);
    pthread_mutex_unlock(&w->lock);
    if (!w->token) {
        printf("worker: no thread token: %s\n", rsock_strerror(rsock_last_error()));
        return NULL;
    }

    char line[64];
    const char *step = "connect";
    int ok = 0;
    rsock_socket s = socket(AF_INET, SOCK_STREAM, 0);
    if (rsock_connect(NULL, s, (struct sockaddr *)&w->server, sizeof w->server, 5000) == 0) {
        step = "recv greeting";
        if (read_line(s, line, sizeof line) > 0) {
            printf("worker: server says: %s\n", line);
            step = "send";
            if (rsock_send(NULL, s, "TIME\n", 5, MSG_NOSIGNAL, 5000) == 5) {
                printf("worker: asked for the time (the server never answers)\n");
                step = "recv reply";
                ok = read_line(s, line, sizeof line);
                if (ok > 0) printf("worker: got %s\n", line);
            }
        }
    }
    if (ok <= 0) {
        int err = ok == 0 ? 0 : rsock_last_error();
        w->cancelled = err == RSOCK_ECANCELED;
        if (w->cancelled)
            printf("worker: cancelled in %s\n", step);
        else
            printf("worker: %s failed: %s\n", step, err ? rsock_strerror(err) : "connection closed");
    }
    closesocket(s);
    return NULL;
}

int main(void) {
    struct demo_server server;
    if (sockets_start() != 0 || demo_server_start(&server) != 0) {
        printf("demo server: %s\n", rsock_strerror(rsock_last_error()));
        return 1;
    }
    stdout_by_line();

    struct worker w = {server.addr, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0};
    pthread_t th;
    if (pthread_create(&th, NULL, worker_main, &w) != 0) {
        perror("pthread_create");
        return 1;
    }
    pthread_mutex_lock(&w.lock);
    while (!w.published_ok) pthread_cond_wait(&w.published, &w.lock);
    pthread_mutex_unlock(&w.lock);

    /* The UI: wait for the user (or a timer). */
    if (stdin_is_terminal()) {
        printf("ui: press Enter to cancel the worker\n");
        getchar();
    } else {
        printf("ui: stdin is not a terminal; cancelling in 300 ms\n");
        sleep_ms(300);
    }
    printf("ui: cancelling the worker\n");
    rsock_cancel(w.token); /* from any thread; even a signal handler */

    pthread_join(th, NULL);
    rsock_token_unref(w.token); /* NULL-safe */
    demo_server_stop(&server);
    sockets_stop();
    printf("ui: worker finished cleanly\n");
    return w.cancelled ? 0 : 1;
}
