/*
 * rsock_winsock.h: the Winsock 1.1 blocking-hook functions on top of rsock.
 *
 * Hand-written (not generated). Include it after <winsock2.h> on Windows, or
 * on its own on POSIX, and Winsock-1.1-era code that uses
 *
 *     WSASetBlockingHook    WSAUnhookBlockingHook
 *     WSAIsBlocking         WSACancelBlockingCall
 *
 * compiles unchanged and behaves as it did under Winsock 1.1, for the calls
 * that go through rsock:
 *
 * - The hook is per thread. While an rsock call on that thread waits, the
 *   hook is called repeatedly (at least every 10 ms, and on Windows as soon
 *   as a window message arrives for the thread).
 * - WSACancelBlockingCall() from the hook makes the waiting call fail with
 *   WSAEINTR. With no call outstanding it fails with WSAEINVAL.
 * - A blocking call made from inside the hook fails with WSAEINPROGRESS, as
 *   do WSASetBlockingHook and WSAUnhookBlockingHook.
 * - Unlike Winsock 1.1, a cancelled call leaves the socket usable (only a
 *   cancelled connect needs the socket closed).
 *
 * Winsock 1.1 called the hook from inside the plain blocking calls. Here only
 * rsock calls wait with the hook, so the blocking calls must go through rsock:
 * either replace `recv(s, b, n, f)` by `rsock_recv(NULL, s, b, n, f,
 * RSOCK_SOCKET_TIMEOUT)` and so on, or define RSOCK_WINSOCK_REDIRECT_CALLS
 * before including this header, which does exactly that for recv, recvfrom,
 * send, sendto, accept and connect (as function-like macros, so only calls
 * are affected; include the system's socket headers first).
 *
 * What the redirect mode changes: the calls' waits can be cancelled (a
 * cancel of the thread's token, rsock_cancel_blocking_call from the hook)
 * and run the blocking hook. What it keeps: everything else, because the
 * calls pass RSOCK_SOCKET_TIMEOUT: a non-blocking socket gets one attempt
 * (EAGAIN/EWOULDBLOCK; a non-blocking connect returns EINPROGRESS, on
 * Windows WSAEWOULDBLOCK, and goes on); a blocking socket waits as long as
 * its SO_RCVTIMEO/SO_SNDTIMEO allow (for ever when unset), and their
 * expiry is reported as the system reports it (EAGAIN; EINPROGRESS from a
 * Linux connect; WSAETIMEDOUT on Windows); flags, partial counts, errors
 * and SIGPIPE are the plain call's. (Define RSOCK_WINSOCK_NO_SIGPIPE to add
 * MSG_NOSIGNAL to send and sendto, as Winsock-era code expects.) On
 * Windows, which cannot report a socket's mode, ioctlsocket(FIONBIO) and
 * closesocket are redirected too, so that rsock knows which sockets are
 * non-blocking (rsock_set_nonblocking).
 *
 * To force the header into every file of a program that is compiled with
 * strict feature macros (-std=c99 with _XOPEN_SOURCE or _POSIX_C_SOURCE
 * defined in its own headers), pass the same macros on the command line,
 * before the -include: the header's system includes come first, and would
 * otherwise be read without them. For example
 *   cc -std=c99 -D_XOPEN_SOURCE=600 -D_POSIX_C_SOURCE=200112L \
 *      -DRSOCK_WINSOCK_REDIRECT_CALLS -include rsock_winsock.h ...
 *
 * On POSIX this header also provides the Winsock names that code needs:
 * FARPROC, BOOL, TRUE, FALSE, SOCKET_ERROR, WSAGetLastError(), WSAEINTR,
 * WSAEINPROGRESS and WSAEINVAL, each only where not already defined.
 * WSAEINTR is RSOCK_ECANCELED there (ECANCELED), so code that tests for
 * WSAEINTR after a cancel keeps working; a system call interrupted by a
 * signal still reports EINTR.
 *
 * Include order: on Windows, after <winsock2.h> and before <windows.h> (or
 * define WIN32_LEAN_AND_MEAN). On POSIX, after any header of your own that
 * defines Winsock names, or define RSOCK_WINSOCK_NO_POSIX_NAMES to get none
 * of them (FARPROC must then come from your headers). Only the names above are provided: SOCKET, closesocket,
 * WSAStartup and the rest are yours to map.
 *
 * The redirect macros replace every later use of those six names followed
 * by "(": define RSOCK_WINSOCK_REDIRECT_CALLS only in the .c files that hold
 * the old calls, after all other includes, never in a header. A
 * redirected send that is cancelled after queuing part of the data returns
 * that count, not SOCKET_ERROR: compare it with the length.
 *
 * See docs/MIGRATING.md for moving such code to a worker thread.
 */
#ifndef RSOCK_WINSOCK_H
#define RSOCK_WINSOCK_H

#ifdef _WIN32
#include <winsock2.h>
#endif
#include "rsock.h"

#ifndef _WIN32
#include <errno.h>
#endif

#if !defined(_WIN32) && !defined(RSOCK_WINSOCK_NO_POSIX_NAMES)

#ifndef FARPROC
/* Winsock 1.1's type for the hook (a macro here, so that it is defined only
   where absent). */
typedef int (*rsock_winsock_farproc)(void);
#define FARPROC rsock_winsock_farproc
#endif
#ifndef BOOL
#define BOOL int
#endif
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#ifndef SOCKET_ERROR
#define SOCKET_ERROR (-1)
#endif
#ifndef WSAEINTR
#define WSAEINTR RSOCK_ECANCELED
#endif
#ifndef WSAEINPROGRESS
#define WSAEINPROGRESS RSOCK_EINPROGRESS
#endif
#ifndef WSAEINVAL
#define WSAEINVAL EINVAL
#endif
#ifndef WSAGetLastError
#define WSAGetLastError() rsock_last_error()
#endif
#endif /* POSIX names */

#ifdef __cplusplus
extern "C" {
#endif

static inline void rsock_winsock_set_error_(int code) {
#ifdef _WIN32
    WSASetLastError(code);
#else
    errno = code;
#endif
}

/* What WSASetBlockingHook returns when no hook was installed: Winsock 1.1
   returned its default hook, never NULL on success, and code that saves the
   previous hook and restores it later expects that. The marker is the
   address of rsock_is_blocking (one address in the whole program; harmless
   if called); installing it means "no hook". */
#define RSOCK_WINSOCK_DEFAULT_HOOK_ ((rsock_blocking_hook)rsock_is_blocking)

/* Function pointer casts go through void (*)(void), the generic function
   pointer type, which compilers accept without -Wcast-function-type noise
   (Windows' FARPROC returns INT_PTR). */
#define RSOCK_WINSOCK_CAST_(type, f) ((type)(void (*)(void))(f))

static inline FARPROC rsock_winsock_set_blocking_hook(FARPROC hook) {
    rsock_blocking_hook prev;
    if (rsock_is_blocking()) {
        rsock_winsock_set_error_(RSOCK_EINPROGRESS);
        return (FARPROC)0;
    }
    /* Winsock 1.1 hooks are BOOL (PASCAL FAR *)(void): called with no
       arguments, and their result is ignored here. */
    if (hook == RSOCK_WINSOCK_CAST_(FARPROC, RSOCK_WINSOCK_DEFAULT_HOOK_))
        prev = rsock_set_blocking_hook((rsock_blocking_hook)0);
    else
        prev = rsock_set_blocking_hook(RSOCK_WINSOCK_CAST_(rsock_blocking_hook, hook));
    if (!prev)
        return RSOCK_WINSOCK_CAST_(FARPROC, RSOCK_WINSOCK_DEFAULT_HOOK_);
    return RSOCK_WINSOCK_CAST_(FARPROC, prev);
}

static inline int rsock_winsock_unhook_blocking_hook(void) {
    if (rsock_is_blocking()) {
        rsock_winsock_set_error_(RSOCK_EINPROGRESS);
        return -1;
    }
    return rsock_unhook_blocking_hook();
}

static inline int rsock_winsock_is_blocking(void) {
    return rsock_is_blocking() ? 1 : 0;
}

static inline int rsock_winsock_cancel_blocking_call(void) {
    return rsock_cancel_blocking_call() == 0 ? 0 : -1; /* SOCKET_ERROR */
}

#ifdef __cplusplus
}
#endif

/* Function-like macros: they replace calls only, after any declaration of
   the same names in the system headers included above. */
#define WSASetBlockingHook(hook) rsock_winsock_set_blocking_hook(hook)
#define WSAUnhookBlockingHook() rsock_winsock_unhook_blocking_hook()
#define WSAIsBlocking() rsock_winsock_is_blocking()
#define WSACancelBlockingCall() rsock_winsock_cancel_blocking_call()

#ifdef RSOCK_WINSOCK_REDIRECT_CALLS
/* RSOCK_SOCKET_TIMEOUT: each call behaves as the plain call would on that
   socket (its mode, its SO_RCVTIMEO/SO_SNDTIMEO), plus cancellation. */
#if defined(RSOCK_WINSOCK_NO_SIGPIPE) && defined(MSG_NOSIGNAL)
#define RSOCK_WINSOCK_NOSIGNAL_ MSG_NOSIGNAL
#else
#define RSOCK_WINSOCK_NOSIGNAL_ 0
#endif
#define recv(s, buf, len, flags) rsock_recv(NULL, (s), (buf), (len), (flags), RSOCK_SOCKET_TIMEOUT)
#define send(s, buf, len, flags) \
    rsock_send(NULL, (s), (buf), (len), (flags) | RSOCK_WINSOCK_NOSIGNAL_, RSOCK_SOCKET_TIMEOUT)
#define recvfrom(s, buf, len, flags, from, fromlen) \
    rsock_recvfrom(NULL, (s), (buf), (len), (flags), (from), (fromlen), RSOCK_SOCKET_TIMEOUT)
#define sendto(s, buf, len, flags, to, tolen) \
    rsock_sendto(NULL, (s), (buf), (len), (flags) | RSOCK_WINSOCK_NOSIGNAL_, (to), (tolen), RSOCK_SOCKET_TIMEOUT)
#define accept(s, addr, addrlen) rsock_accept(NULL, (s), (addr), (addrlen), RSOCK_SOCKET_TIMEOUT)
#define connect(s, addr, addrlen) rsock_connect(NULL, (s), (addr), (addrlen), RSOCK_SOCKET_TIMEOUT)
#ifdef _WIN32
/* Windows cannot report a socket's mode: rsock learns it from
   ioctlsocket(FIONBIO), and forgets it when the socket is closed. */
static inline int rsock_winsock_ioctlsocket(SOCKET s, long cmd, u_long *argp) {
    if (cmd == (long)FIONBIO && argp) return rsock_set_nonblocking(s, *argp != 0) == 0 ? 0 : SOCKET_ERROR;
    return ioctlsocket(s, cmd, argp);
}
static inline int rsock_winsock_closesocket(SOCKET s) {
    rsock_set_nonblocking(s, 0);
    return closesocket(s);
}
#define ioctlsocket(s, cmd, argp) rsock_winsock_ioctlsocket((s), (cmd), (argp))
#define closesocket(s) rsock_winsock_closesocket(s)
#endif
#endif

#endif /* RSOCK_WINSOCK_H */
