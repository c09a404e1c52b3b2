/* What differs between POSIX and Windows (Winsock 2, MinGW-w64) for the C
   tests: headers, error codes, closing sockets, the watchdog, counting
   open descriptors or handles. Included by rtest.h, after rsock.h. */
#ifndef RPORT_H
#define RPORT_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _WIN32

#include <windows.h>
#include <winternl.h>

/* Error codes as rsock_last_error() reports them. */
#define RT_EINVAL WSAEINVAL
#define RT_EBADSOCK WSAENOTSOCK /* an invalid or closed socket: EBADF on POSIX */
#define RT_ENOTSOCK WSAENOTSOCK
#define RT_ECONNREFUSED WSAECONNREFUSED
#define RT_ECONNRESET WSAECONNRESET
#define RT_ENOTCONN WSAENOTCONN
#define RT_EHOSTUNREACH WSAEHOSTUNREACH
/* A send on a connection the peer reset: Windows goes on reporting the
   reset where Linux says EPIPE. */
#define RT_EPIPE WSAECONNRESET
/* What rsock_getaddrinfo returns with the error in rsock_last_error(). */
#define RT_EAI_SYSTEM SOCKET_ERROR
/* What a non-blocking connect that is still in progress reports. */
#define RT_CONNECT_PENDING WSAEWOULDBLOCK
/* MSG_NOSIGNAL where it exists (Windows has no SIGPIPE to avoid). */
#define RT_NOSIGNAL 0
/* What WSAPoll sets in revents for a socket with data to read. */
#define RT_POLLIN_REVENTS POLLRDNORM

#ifndef SHUT_RD
#define SHUT_RD SD_RECEIVE
#define SHUT_WR SD_SEND
#define SHUT_RDWR SD_BOTH
#endif

/* The error of the calling thread's last socket call, and setting it. */
static inline int rt_sock_error(void) { return WSAGetLastError(); }
static inline void rt_set_error(int e) { WSASetLastError(e); }
static inline const char *rt_error_text(int e) { return rsock_strerror(e); }

/* A send or receive error that means the peer has gone (reset or shut
   down; Wine reports Linux's EPIPE as WSAESHUTDOWN). */
static inline int rt_peer_gone(int e) { return e == WSAECONNRESET || e == WSAECONNABORTED || e == WSAESHUTDOWN; }

static inline int sock_ok(rsock_socket s) { return s != INVALID_SOCKET; }
static inline int close_sock(rsock_socket s) { return closesocket(s); }
static inline int rt_poll(rsock_pollfd *p, unsigned long n, int timeout_ms) { return WSAPoll(p, n, timeout_ms); }

static _Thread_local int rt_tls_touched;
static inline void *rt_warm_up_thread(void *arg) {
    rt_tls_touched = 1;
    Sleep(10);
    return arg;
}

/* Winsock must be started before any socket call. And the thread runtime
   opens handles that it keeps for good on the first threads, when several
   exit at once, and on the first use of a thread-local variable: that
   happens here, before any test counts handles. */
__attribute__((constructor)) static void rt_winsock_start(void) {
    WSADATA d;
    pthread_t th[16];
    /* No error dialog for a crash: fail as a test, not hang on a window. */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    if (WSAStartup(MAKEWORD(2, 2), &d) != 0) {
        fprintf(stderr, "WSAStartup failed\n");
        exit(2);
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 16; i++) {
            if (pthread_create(&th[i], NULL, rt_warm_up_thread, NULL) != 0) {
                fprintf(stderr, "pthread_create failed\n");
                exit(2);
            }
        }
        for (int i = 0; i < 16; i++) pthread_join(th[i], NULL);
    }
}

static inline DWORD WINAPI rt_watchdog_main(LPVOID arg) {
    static const char msg[] = "watchdog: a test hung (lost wake-up?)\n";
    DWORD n;
    Sleep((DWORD)(uintptr_t)arg * 1000);
    WriteFile(GetStdHandle(STD_ERROR_HANDLE), msg, sizeof msg - 1, &n, NULL);
    TerminateProcess(GetCurrentProcess(), 3);
    return 0;
}

/* Kills the process if a test hangs: a lost wake-up must fail, not stall.
   (No SIGALRM on Windows: a thread does it.) */
static inline void rt_watchdog(unsigned seconds) {
    HANDLE h = CreateThread(NULL, 0, rt_watchdog_main, (LPVOID)(uintptr_t)seconds, 0, NULL);
    if (!h) {
        fprintf(stderr, "watchdog: CreateThread failed\n");
        exit(2);
    }
    CloseHandle(h);
}

static inline void rt_ignore_sigpipe(void) {}

static inline void sleep_ms(double ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)((ms - ts.tv_sec * 1000.0) * 1e6);
    nanosleep(&ts, NULL);
}

/* Entries of NtQuerySystemInformation(SystemExtendedHandleInformation). */
struct rt_handle_entry {
    PVOID object;
    ULONG_PTR pid, handle;
    ULONG access;
    USHORT backtrace, type;
    ULONG attributes, reserved;
};
struct rt_handle_table {
    ULONG_PTR count, reserved;
    struct rt_handle_entry entries[1];
};

/* The system's handle table (the caller frees it), or NULL where this
   process may not read it. */
static inline struct rt_handle_table *rt_handle_table(void) {
    for (ULONG size = 1 << 16;; size *= 2) {
        struct rt_handle_table *t = (struct rt_handle_table *)malloc(size);
        if (!t) {
            fprintf(stderr, "fd_count: out of memory\n");
            exit(2);
        }
        NTSTATUS st = NtQuerySystemInformation((SYSTEM_INFORMATION_CLASS)64, t, size, NULL);
        if (st == 0) return t;
        free(t);
        if (st != (NTSTATUS)0xC0000004L) return NULL; /* not STATUS_INFO_LENGTH_MISMATCH */
    }
}

/* The object type number of events in the handle table, or -1. */
static inline int rt_event_type(void) {
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL);
    struct rt_handle_table *t = rt_handle_table();
    int type = -1;
    for (ULONG_PTR i = 0; t && e && i < t->count; i++)
        if (t->entries[i].pid == GetCurrentProcessId() && t->entries[i].handle == (ULONG_PTR)e)
            type = t->entries[i].type;
    free(t);
    if (e) CloseHandle(e);
    return type;
}

/* Number of handles open in this process, events not counted. The
   runtime makes events lazily and keeps them: winpthreads the first time
   one of its internal locks is contended, Wine's ws2_32 one for each
   thread that resolved a name (the resolver pool's, until they exit
   idle). rsock's own handles are sockets, and one event per thread that
   waits with a blocking hook, which no test that counts handles uses.
   Where the handle table cannot be read, every handle is counted. */
static inline int fd_count(void) {
    static int event_type = -2;
    if (event_type == -2) event_type = rt_event_type();
    struct rt_handle_table *t = rt_handle_table();
    if (!t || event_type < 0) {
        DWORD n = 0;
        free(t);
        if (!GetProcessHandleCount(GetCurrentProcess(), &n) || n == 0) {
            fprintf(stderr, "fd_count: cannot count this process's handles\n");
            exit(2);
        }
        return (int)n;
    }
    int mine = 0;
    for (ULONG_PTR i = 0; i < t->count; i++)
        mine += t->entries[i].pid == GetCurrentProcessId() && t->entries[i].type != event_type;
    free(t);
    return mine;
}

/* Windows cannot report a socket's blocking mode, only set it. */
static inline int rt_set_nonblocking(rsock_socket s, int on) {
    u_long v = on ? 1 : 0;
    return ioctlsocket(s, FIONBIO, &v);
}

/* Whether a child process would inherit the socket. */
static inline int rt_inheritable(rsock_socket s) {
    DWORD flags = 0;
    return GetHandleInformation((HANDLE)s, &flags) && (flags & HANDLE_FLAG_INHERIT);
}

/* Bytes waiting to be read on a socket, without consuming them. */
static inline int pending(rsock_socket s) {
    u_long n = 0;
    return ioctlsocket(s, FIONREAD, &n) == 0 ? (int)n : 0;
}

/* Two handles that are not sockets (a pipe's ends); rt_pipe_close. */
static inline int rt_pipe(rsock_socket p[2]) {
    HANDLE r, w;
    if (!CreatePipe(&r, &w, NULL, 0)) return -1;
    p[0] = (rsock_socket)r;
    p[1] = (rsock_socket)w;
    return 0;
}
static inline void rt_pipe_close(rsock_socket p) { CloseHandle((HANDLE)p); }

#else /* POSIX */

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RT_EINVAL EINVAL
#define RT_EBADSOCK EBADF
#define RT_ENOTSOCK ENOTSOCK
#define RT_ECONNREFUSED ECONNREFUSED
#define RT_ECONNRESET ECONNRESET
#define RT_ENOTCONN ENOTCONN
#define RT_EHOSTUNREACH EHOSTUNREACH
#define RT_EPIPE EPIPE
#define RT_EAI_SYSTEM EAI_SYSTEM
#define RT_CONNECT_PENDING EINPROGRESS
#define RT_NOSIGNAL MSG_NOSIGNAL
#define RT_POLLIN_REVENTS POLLIN

static inline int rt_sock_error(void) { return errno; }
static inline void rt_set_error(int e) { errno = e; }
static inline const char *rt_error_text(int e) { return strerror(e); }
static inline int rt_peer_gone(int e) { return e == EPIPE || e == ECONNRESET; }

static inline int sock_ok(rsock_socket s) { return s >= 0; }
static inline int close_sock(rsock_socket s) { return close(s); }
static inline int rt_poll(rsock_pollfd *p, unsigned long n, int timeout_ms) { return poll(p, (nfds_t)n, timeout_ms); }

static inline void rt_on_alarm(int sig) {
    static const char msg[] = "watchdog: a test hung (lost wake-up?)\n";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) _exit(3);
    _exit(3);
}

/* Kills the process if a test hangs: a lost wake-up must fail, not stall. */
static inline void rt_watchdog(unsigned seconds) {
    signal(SIGALRM, rt_on_alarm);
    alarm(seconds);
}

static inline void rt_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

static inline void sleep_ms(double ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)((ms - ts.tv_sec * 1000.0) * 1e6);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Number of open descriptors in this process. */
static inline int fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) d = opendir("/dev/fd");
    if (!d) {
        perror("fd_count: opendir");
        exit(2);
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static inline int is_nonblocking(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

static inline int rt_set_nonblocking(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Whether a child process would inherit the descriptor (no FD_CLOEXEC). */
static inline int rt_inheritable(int fd) { return !(fcntl(fd, F_GETFD) & FD_CLOEXEC); }

/* Bytes waiting to be read on a socket, without consuming them. */
static inline int pending(int fd) {
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 ? 0 : (int)n;
}

static inline int rt_pipe(int p[2]) { return pipe(p); }
static inline void rt_pipe_close(int p) { close(p); }

#endif

#endif
