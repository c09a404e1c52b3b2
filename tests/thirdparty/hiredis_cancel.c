/*
 * hiredis_cancel.c: the point of the redirect mode, shown on a real client.
 *
 * Linked with hiredis 1.0.0 built unchanged but for rsock's redirect header
 * (tests/thirdparty/hiredis.sh builds it; usage: hiredis_cancel HOST PORT,
 * against a running redis-server).
 *
 * A worker thread sends BLPOP on an empty list with timeout 0: the server
 * holds the request open for ever, and hiredis's blocking API waits in
 * recv() (redirected: rsock_recv with the thread's own token). The worker
 * publishes that token (rsock_thread_token()) before it blocks; the main
 * thread, once the server reports the client blocked, waits 100 ms and
 * calls rsock_cancel on it. Printed and checked:
 *
 *   - the cancel latency: from rsock_cancel to redisCommand returning;
 *   - what hiredis reports: NULL reply, c->err == REDIS_ERR_IO, errno
 *     ECANCELED, c->errstr its strerror;
 *   - the client's documented way to carry on. hiredis's README: "Once an
 *     error is returned the context cannot be reused and you should set up
 *     a new connection"; hiredis.h: redisReconnect "reconnect[s] the given
 *     context using the saved information". The cancel is sticky, so the
 *     worker first resets its token (rsock_token_reset), then calls
 *     redisReconnect(c) and sends PING, which must answer PONG; the server
 *     no longer counts a blocked client.
 *
 * Exits 0 when all of that holds, 1 otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h> /* getpid, _exit */

#include "hiredis.h"
#include "rsock.h"

#define CANCEL_AFTER_MS 100
#define LATENCY_LIMIT_MS 1000 /* a failure, not a benchmark: typical is far below */

static const char *host;
static int port;
static char key[64];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static rsock_token *worker_token; /* published by the worker before it blocks */
static int worker_ready, worker_returned;
static double returned_at;
static int failures;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void check(int ok, const char *what) {
    printf("  %s %s\n", ok ? "ok:    " : "FAILED:", what);
    if (!ok) {
        pthread_mutex_lock(&mu);
        failures++;
        pthread_mutex_unlock(&mu);
    }
    fflush(stdout);
}

/* INFO clients' blocked_clients, or -1. */
static long blocked_clients(redisContext *c) {
    redisReply *r = redisCommand(c, "INFO clients");
    long n = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, "blocked_clients:");
        if (p)
            n = strtol(p + strlen("blocked_clients:"), NULL, 10);
    }
    freeReplyObject(r);
    return n;
}

static void *worker(void *arg) {
    (void)arg;
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) {
        printf("  FAILED: worker cannot connect: %s\n", c ? c->errstr : "out of memory");
        exit(1);
    }
    rsock_token *t = rsock_thread_token();
    if (!t) {
        printf("  FAILED: rsock_thread_token: %s\n", strerror(errno));
        exit(1);
    }
    pthread_mutex_lock(&mu);
    worker_token = t;
    worker_ready = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);

    printf("worker: redisCommand(c, \"BLPOP %s 0\") (an empty list: the server holds it open)\n", key);
    fflush(stdout);
    errno = 0;
    redisReply *r = redisCommand(c, "BLPOP %s 0", key);
    int err = errno;
    double t_ret = now_ms();
    pthread_mutex_lock(&mu);
    returned_at = t_ret;
    worker_returned = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);

    printf("worker: redisCommand returned %s; c->err = %d (REDIS_ERR_IO is %d), "
           "c->errstr = \"%s\", errno = %d (%s)\n",
           r ? "a reply" : "NULL", c->err, REDIS_ERR_IO, c->errstr, err, strerror(err));
    check(r == NULL, "redisCommand returned NULL");
    check(c->err == REDIS_ERR_IO, "c->err is REDIS_ERR_IO");
    check(err == ECANCELED, "errno is ECANCELED");
    check(strcmp(c->errstr, strerror(ECANCELED)) == 0, "c->errstr is strerror(ECANCELED)");
    freeReplyObject(r);

    /* hiredis: a context with an error cannot be reused; reconnect it. The
       thread's token is still cancelled (sticky): reset it first, or the
       reconnect's own calls fail at once. */
    printf("worker: rsock_token_reset(thread token), then redisReconnect(c) and PING\n");
    check(rsock_token_reset(t) == 0, "rsock_token_reset(thread token) returned 0");
    int rc = redisReconnect(c);
    check(rc == REDIS_OK && c->err == 0, "redisReconnect(c) returned REDIS_OK");
    if (rc != REDIS_OK)
        printf("  redisReconnect: %s\n", c->errstr);
    r = rc == REDIS_OK ? redisCommand(c, "PING") : NULL;
    check(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0, "PING answered PONG");
    if (r)
        printf("worker: PING -> %s\n", r->type == REDIS_REPLY_STATUS ? r->str : "(not a status)");
    freeReplyObject(r);

    /* The server has let go of the cancelled request (its connection is
       closed): no blocked client left, within a second. */
    long n = -1;
    for (int i = 0; i < 100 && (n = blocked_clients(c)) != 0; i++)
        sleep_ms(10);
    check(n == 0, "the server no longer holds a blocked client (blocked_clients:0)");
    redisFree(c);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    snprintf(key, sizeof key, "rsock:hiredis_cancel:%ld", (long)getpid());
    setvbuf(stdout, NULL, _IOLBF, 0);

    redisContext *mon = redisConnect(host, port);
    if (!mon || mon->err) {
        printf("FAILED: cannot connect to %s:%d: %s\n", host, port, mon ? mon->errstr : "out of memory");
        return 1;
    }
    freeReplyObject(redisCommand(mon, "DEL %s", key));

    pthread_t th;
    if (pthread_create(&th, NULL, worker, NULL) != 0) {
        printf("FAILED: pthread_create\n");
        return 1;
    }
    pthread_mutex_lock(&mu);
    while (!worker_ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);

    /* Wait until the server reports the worker's BLPOP blocked. */
    long n = -1;
    for (int i = 0; i < 500 && (n = blocked_clients(mon)) < 1; i++)
        sleep_ms(10);
    if (n < 1) {
        printf("FAILED: the server never reported the BLPOP blocked (blocked_clients: %ld)\n", n);
        return 1;
    }
    sleep_ms(CANCEL_AFTER_MS);
    pthread_mutex_lock(&mu);
    int early = worker_returned;
    pthread_mutex_unlock(&mu);
    check(!early, "the worker is still blocked in redisCommand after the server reported it blocked + 100 ms");

    printf("main: rsock_cancel(worker's thread token)\n");
    double t0 = now_ms();
    if (rsock_cancel(worker_token) != 0) {
        printf("FAILED: rsock_cancel: %s\n", strerror(errno));
        return 1;
    }
    /* The worker must come back; if it does not, fail rather than hang. */
    pthread_mutex_lock(&mu);
    while (!worker_returned && now_ms() - t0 < 5000) {
        pthread_mutex_unlock(&mu);
        sleep_ms(1);
        pthread_mutex_lock(&mu);
    }
    int back = worker_returned;
    double latency = returned_at - t0;
    pthread_mutex_unlock(&mu);
    if (!back) {
        printf("FAILED: the worker is still blocked in redisCommand 5 s after rsock_cancel\n");
        fflush(stdout);
        _exit(1);
    }
    printf("main: cancel latency (rsock_cancel -> redisCommand returned): %.3f ms\n", latency);
    check(latency < LATENCY_LIMIT_MS, "the cancel latency is under 1 s");

    pthread_join(th, NULL);
    rsock_token_unref(worker_token);
    freeReplyObject(redisCommand(mon, "DEL %s", key));
    redisFree(mon);
    printf("hiredis_cancel: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
