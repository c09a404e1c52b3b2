/*
 * stdin_cancel: a worker thread reads lines from standard input with
 * rsock_read; Ctrl-C (a SIGINT handler calling rsock_cancel) or a timer
 * (the first argument, in seconds; default 5) cancels the read wherever it
 * is blocked. Standard input may be a terminal, a pipe or a file, in
 * either mode; rsock_read leaves its mode as it found it.
 *
 *   ./stdin_cancel 10        type lines; Ctrl-C or 10 s ends it
 *
 * POSIX only: Windows has no rsock_read (this program says so there).
 */
#define _POSIX_C_SOURCE 200809L
#include "portable.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef RSOCK_POSIX /* defined by rsock.h where rsock_read exists */
#include <pthread.h>

static rsock_token *reader_token; /* cancelled to stop the reader */
static rsock_token *timer_token;  /* cancelled to end the timer early */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
    rsock_cancel(reader_token); /* async-signal-safe */
}

/* Prints each complete line of buf[0..len); returns what is left. */
static size_t print_lines(char *buf, size_t len, int *lines) {
    char *start = buf, *nl;
    while ((nl = memchr(start, '\n', len - (size_t)(start - buf))) != NULL) {
        *nl = '\0';
        printf("line %d: %s\n", ++*lines, start);
        start = nl + 1;
    }
    len -= (size_t)(start - buf);
    memmove(buf, start, len);
    return len;
}

static void *reader_main(void *arg) {
    (void)arg;
    char buf[256];
    size_t len = 0;
    int lines = 0;
    intptr_t n;
    while ((n = rsock_read(reader_token, STDIN_FILENO, buf + len, sizeof buf - 1 - len, RSOCK_INFINITE)) > 0) {
        len = print_lines(buf, len + (size_t)n, &lines);
        if (len == sizeof buf - 1) { /* a line longer than the buffer: in pieces */
            buf[len++] = '\n';
            len = print_lines(buf, len, &lines);
        }
    }
    int err = n < 0 ? rsock_last_error() : 0; /* before printf changes it */
    if (len > 0) { /* a last line without a newline */
        buf[len++] = '\n';
        print_lines(buf, len, &lines);
    }
    const char *plural = lines == 1 ? "" : "s";
    if (n == 0)
        printf("reader: end of input after %d line%s\n", lines, plural);
    else if (err == RSOCK_ECANCELED)
        printf("reader: cancelled after %d line%s\n", lines, plural);
    else
        printf("reader: %s\n", rsock_strerror(err));
    rsock_cancel(timer_token); /* the main thread need not wait any longer */
    return NULL;
}

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 5;
    stdout_by_line();
    reader_token = rsock_token_new();
    timer_token = rsock_token_new();
    if (!reader_token || !timer_token) {
        printf("rsock_token_new: %s\n", rsock_strerror(rsock_last_error()));
        return 1;
    }
    catch_signal(SIGINT, on_sigint);
    printf("main: reading standard input for %d s (Ctrl-C stops it sooner)\n", seconds);
    pthread_t th;
    if (pthread_create(&th, NULL, reader_main, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }

    /* The timer: rsock_poll on no descriptors is a cancellable sleep; it
       returns 0 when the time is up, -1 when the reader ends it. */
    if (rsock_poll(timer_token, NULL, 0, seconds * 1000) == 0) {
        printf("main: %d s passed; cancelling the reader\n", seconds);
        rsock_cancel(reader_token);
    }
    pthread_join(th, NULL);
    if (interrupted) printf("main: stopped by Ctrl-C\n");
    catch_signal(SIGINT, SIG_DFL); /* before the token goes */
    rsock_token_unref(reader_token);
    rsock_token_unref(timer_token);
    printf("main: done\n");
    return 0;
}

#else

int main(void) {
    printf("stdin_cancel: rsock_read is POSIX only; nothing to show on this system\n");
    return 0;
}

#endif
