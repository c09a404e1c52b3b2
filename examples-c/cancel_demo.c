/*
 * cancel_demo: a worker thread blocks in rsock_recv; the main thread cancels
 * it and measures how long the worker took to return. Then, on the same
 * socket, a call times out and a normal transfer goes through: a cancel
 * loses nothing and leaves the socket usable.
 */
#define _POSIX_C_SOURCE 200809L
#include "portable.h" /* what differs on Windows; includes rsock.h */

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

struct job {
    rsock_token *token;
    rsock_socket sock;
    double returned_at;
    long result;
    int error;
};

static void *worker(void *arg) {
    struct job *job = arg;
    char buf[64];
    /* Blocks until data arrives or the token is cancelled: no timeout. */
    job->result = rsock_recv(job->token, job->sock, buf, sizeof buf, 0, RSOCK_INFINITE);
    job->error = rsock_last_error();
    job->returned_at = now_us();
    return NULL;
}

int main(void) {
    rsock_socket sv[2];
    if (sockets_start() != 0 || socket_pair(sv) != 0) {
        fprintf(stderr, "socket pair: %s\n", rsock_strerror(rsock_last_error()));
        return 1;
    }
    rsock_token *token = rsock_token_new();
    if (!token) {
        fprintf(stderr, "rsock_token_new: %s\n", rsock_strerror(rsock_last_error()));
        return 1;
    }

    /* 1. Cancel a blocked receive from another thread. */
    struct job job = {token, sv[0], 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, worker, &job);
    sleep_ms(100); /* let the worker block */
    printf("worker is blocked in rsock_recv; cancelling it\n");
    double cancelled_at = now_us();
    rsock_cancel(token);
    pthread_join(th, NULL);
    if (job.result == -1 && job.error == RSOCK_ECANCELED)
        printf("worker returned: %s (cancel latency %.1f us)\n", rsock_strerror(job.error),
               job.returned_at - cancelled_at);
    else
        printf("unexpected: worker returned %ld (%s)\n", job.result, rsock_strerror(job.error));

    /* Cancellation is sticky: re-arm the token before reusing it. */
    rsock_token_reset(token);

    /* 2. A timeout on the same socket. */
    char buf[64];
    long n = rsock_recv(token, sv[0], buf, sizeof buf, 0, 50);
    printf("recv with a 50 ms timeout: %s\n", n == -1 ? rsock_strerror(rsock_last_error()) : "data?");

    /* 3. A normal transfer: the socket is still usable. */
    const char msg[] = "hello after cancel";
    rsock_send(token, sv[1], msg, sizeof msg - 1, 0, 1000);
    n = rsock_recv(token, sv[0], buf, sizeof buf - 1, 0, 1000);
    buf[n > 0 ? n : 0] = '\0';
    printf("recv after the cancel and the timeout: %ld bytes: \"%s\"\n", n, buf);

    rsock_token_unref(token);
    closesocket(sv[0]);
    closesocket(sv[1]);
    sockets_stop();
    return (job.error == RSOCK_ECANCELED && n == (long)(sizeof msg - 1)) ? 0 : 1;
}
