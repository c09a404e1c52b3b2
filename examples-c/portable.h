/*
 * portable.h: what the examples do differently on POSIX and on Windows
 * (Winsock 2, built with MinGW-w64). Everything else in them is the same.
 *
 * Threads are POSIX threads on both: MinGW-w64 provides them
 * (winpthreads). With MSVC, use Win32 threads (CreateThread) instead.
 */
#ifndef PORTABLE_H
#define PORTABLE_H

#include <rsock.h> /* brings winsock2.h and ws2tcpip.h, or the POSIX socket headers */

#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifdef _WIN32

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* Windows has no SIGPIPE to avoid */
#endif
#define SOCK_ECONNABORTED WSAECONNABORTED

/* Winsock must be started before the first socket call. 0, or -1 with the
   error in rsock_last_error(). */
static inline int sockets_start(void) {
    WSADATA wsa;
    int err = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (err) WSASetLastError(err);
    return err ? -1 : 0;
}
static inline void sockets_stop(void) { WSACleanup(); }

/* Calls `handler` on `sig` (SIG_DFL: no longer). The C runtime calls it on
   a thread of its own: SIGINT for Ctrl-C, SIGBREAK for Ctrl-Break. Nothing
   sends SIGTERM from outside. */
static inline void catch_signal(int sig, void (*handler)(int)) { signal(sig, handler); }
static inline void ignore_sigpipe(void) {}

static inline void sleep_ms(unsigned ms) { Sleep(ms); }

/* Each line out as it is printed. The C runtime takes _IOLBF for full
   buffering, so: no buffering. */
static inline void stdout_by_line(void) { setvbuf(stdout, NULL, _IONBF, 0); }

/* Is stdin a console (someone to press Enter)? */
static inline int stdin_is_terminal(void) {
    DWORD mode;
    return GetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), &mode) != 0;
}

#else /* POSIX */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* where it does not exist, the examples ignore SIGPIPE */
#endif
#define SOCK_ECONNABORTED ECONNABORTED

static inline int sockets_start(void) { return 0; }
static inline void sockets_stop(void) {}

/* Winsock's name for closing a socket. */
static inline int closesocket(rsock_socket s) { return close(s); }

static inline void catch_signal(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}
/* A peer that vanishes is an error, not the end of the program. */
static inline void ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

static inline void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static inline void stdout_by_line(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

static inline int stdin_is_terminal(void) { return isatty(STDIN_FILENO); }

#endif

/* A connected pair of stream sockets: socketpair() on POSIX, a loopback
   TCP connection on Windows. 0, or -1 with the error in rsock_last_error(). */
static inline int socket_pair(rsock_socket sv[2]) {
#ifdef _WIN32
    struct sockaddr_in addr;
    int len = sizeof addr, err = 0;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rsock_socket lst = socket(AF_INET, SOCK_STREAM, 0);
    sv[0] = sv[1] = RSOCK_INVALID_SOCKET;
    if (lst != RSOCK_INVALID_SOCKET && bind(lst, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        listen(lst, 1) == 0 && getsockname(lst, (struct sockaddr *)&addr, &len) == 0 &&
        (sv[1] = socket(AF_INET, SOCK_STREAM, 0)) != RSOCK_INVALID_SOCKET &&
        connect(sv[1], (struct sockaddr *)&addr, sizeof addr) == 0)
        sv[0] = accept(lst, NULL, NULL);
    if (sv[0] == RSOCK_INVALID_SOCKET) err = WSAGetLastError();
    if (lst != RSOCK_INVALID_SOCKET) closesocket(lst);
    if (!err) return 0;
    if (sv[1] != RSOCK_INVALID_SOCKET) closesocket(sv[1]);
    WSASetLastError(err);
    return -1;
#else
    return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
#endif
}

#endif /* PORTABLE_H */
