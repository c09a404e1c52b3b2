/*
 * rsock_mbedtls.h: cancellable I/O callbacks for Mbed TLS (2.28 and 3.x).
 * Header-only: rsock itself links no TLS library; a program that includes
 * this header links -lmbedtls -lmbedx509 -lmbedcrypto besides rsock.
 * Tested with Mbed TLS 2.28 (`make test` on Debian 12) and 3.6.5 (`make
 * tls-compat-test`, tests/tls_compat.sh).
 *
 *     rsock_mbedtls_io io = {token, sock, RSOCK_INFINITE};
 *     mbedtls_ssl_set_bio(&ssl, &io, rsock_mbedtls_send, rsock_mbedtls_recv,
 *                         rsock_mbedtls_recv_timeout);   // or NULL
 *     int r = mbedtls_ssl_read(&ssl, buf, len);          // another thread: rsock_cancel(token)
 *     if (r == MBEDTLS_ERR_SSL_WANT_READ && rsock_last_error() == RSOCK_ECANCELED) {
 *         // cancelled; after rsock_token_reset, mbedtls_ssl_read again
 *         // carries on where it stopped
 *     }
 *
 * The callbacks are rsock_recv and rsock_send (MSG_NOSIGNAL where it
 * exists) with the io's token and timeout, and report as mbedtls_net_recv,
 * mbedtls_net_send and mbedtls_net_recv_timeout do:
 *
 * - A cancel, a timeout or a passed deadline gives MBEDTLS_ERR_SSL_WANT_READ
 *   or MBEDTLS_ERR_SSL_WANT_WRITE (as would-block does), except that a
 *   timeout in rsock_mbedtls_recv_timeout gives MBEDTLS_ERR_SSL_TIMEOUT;
 *   rsock_last_error() gives RSOCK_ECANCELED or RSOCK_ETIMEDOUT. Mbed TLS
 *   passes these results up from mbedtls_ssl_handshake, mbedtls_ssl_read,
 *   mbedtls_ssl_write and mbedtls_ssl_close_notify with the connection
 *   intact: once the token is usable again (rsock_token_reset, or a new
 *   deadline), make the same call again with the same arguments, as Mbed
 *   TLS requires after these results. Nothing is lost: a record that
 *   arrived in part stays in the SSL context, a record that went out in
 *   part goes out first on the next call (mbedtls_ssl_write then returns
 *   the length it accepted before).
 * - The end of the stream gives 0; a reset or a broken pipe gives
 *   MBEDTLS_ERR_NET_CONN_RESET; any other error MBEDTLS_ERR_NET_RECV_FAILED
 *   or MBEDTLS_ERR_NET_SEND_FAILED, the error in rsock_last_error().
 * - rsock_mbedtls_recv_timeout waits at most the smaller of Mbed TLS's
 *   read timeout (`timeout_ms` there, 0 for none: mbedtls_ssl_conf_read_timeout)
 *   and the io's own.
 *
 * Ownership and threads: the io struct is the caller's and must outlive
 * the SSL context's use of it; the callbacks take no reference to the
 * token. A NULL token means the token of whichever thread does the I/O
 * (rsock_thread_token). The SSL context and its io are used by one thread
 * at a time; other threads (and signal handlers) stop it with
 * rsock_cancel(token) or a deadline on the token. Several threads each
 * with its own SSL context share Mbed TLS's crypto layer: that needs a
 * build with MBEDTLS_THREADING_C (Debian's has it; the stock config of
 * 3.x does not).
 */
#ifndef RSOCK_MBEDTLS_H
#define RSOCK_MBEDTLS_H

#include "rsock.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the callbacks use: set the fields, pass its address as the `p_bio`
   of mbedtls_ssl_set_bio. `token` NULL: the I/O thread's own token;
   `timeout_ms`: for each send and receive (RSOCK_INFINITE, 0 for one
   check, or milliseconds). */
typedef struct rsock_mbedtls_io {
    rsock_token *token;
    rsock_socket sock;
    int timeout_ms;
} rsock_mbedtls_io;

/* Internal: maps a failed rsock call to Mbed TLS's result. */
static inline int rsock_mbedtls_error_(int want, int failed) {
    int e = rsock_last_error();
#ifdef _WIN32
    if (e == RSOCK_ECANCELED || e == RSOCK_ETIMEDOUT || e == WSAEWOULDBLOCK) return want;
    if (e == WSAECONNRESET || e == WSAECONNABORTED || e == WSAESHUTDOWN) return MBEDTLS_ERR_NET_CONN_RESET;
#else
    if (e == RSOCK_ECANCELED || e == RSOCK_ETIMEDOUT || e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
        return want;
    if (e == EPIPE || e == ECONNRESET) return MBEDTLS_ERR_NET_CONN_RESET;
#endif
    return failed;
}

static inline int rsock_mbedtls_flags_(void) {
#ifdef MSG_NOSIGNAL
    return MSG_NOSIGNAL;
#else
    return 0;
#endif
}

/*
 * The send callback (mbedtls_ssl_send_t): `io` is an rsock_mbedtls_io.
 * Returns the bytes queued (all of `len`, or fewer when cancelled or timed
 * out part-way; Mbed TLS sends the rest with the next call), or an error
 * as above.
 */
static inline int rsock_mbedtls_send(void *io, const unsigned char *buf, size_t len) {
    rsock_mbedtls_io *p = (rsock_mbedtls_io *)io;
    intptr_t n;
    if (p == NULL) return MBEDTLS_ERR_NET_INVALID_CONTEXT;
    if (len > INT_MAX) len = INT_MAX;
    n = rsock_send(p->token, p->sock, buf, len, rsock_mbedtls_flags_(), p->timeout_ms);
    if (n > 0 || (n == 0 && len == 0)) return (int)n;
    return rsock_mbedtls_error_(MBEDTLS_ERR_SSL_WANT_WRITE, MBEDTLS_ERR_NET_SEND_FAILED);
}

/* Internal: a receive with the given timeout; `timeout_result` for a timeout. */
static inline int rsock_mbedtls_recv_for_(rsock_mbedtls_io *p, unsigned char *buf, size_t len, int timeout_ms,
                                         int timeout_result) {
    intptr_t n;
    if (p == NULL) return MBEDTLS_ERR_NET_INVALID_CONTEXT;
    if (len > INT_MAX) len = INT_MAX;
    n = rsock_recv(p->token, p->sock, buf, len, 0, timeout_ms);
    if (n >= 0) return (int)n;
    if (rsock_last_error() == RSOCK_ETIMEDOUT) return timeout_result;
    return rsock_mbedtls_error_(MBEDTLS_ERR_SSL_WANT_READ, MBEDTLS_ERR_NET_RECV_FAILED);
}

/*
 * The receive callback (mbedtls_ssl_recv_t): `io` is an rsock_mbedtls_io.
 * Returns the bytes received, 0 at the end of the stream, or an error as
 * above (a timeout: MBEDTLS_ERR_SSL_WANT_READ).
 */
static inline int rsock_mbedtls_recv(void *io, unsigned char *buf, size_t len) {
    rsock_mbedtls_io *p = (rsock_mbedtls_io *)io;
    return rsock_mbedtls_recv_for_(p, buf, len, p ? p->timeout_ms : 0, MBEDTLS_ERR_SSL_WANT_READ);
}

/*
 * The receive callback with a timeout (mbedtls_ssl_recv_timeout_t):
 * waits at most `timeout_ms` (0: no limit) and at most the io's timeout.
 * A timeout gives MBEDTLS_ERR_SSL_TIMEOUT (RSOCK_ETIMEDOUT in
 * rsock_last_error()); otherwise as rsock_mbedtls_recv.
 */
static inline int rsock_mbedtls_recv_timeout(void *io, unsigned char *buf, size_t len, uint32_t timeout_ms) {
    rsock_mbedtls_io *p = (rsock_mbedtls_io *)io;
    int t = p ? p->timeout_ms : 0;
    if (timeout_ms > 0) {
        int limit = timeout_ms > (uint32_t)INT_MAX ? INT_MAX : (int)timeout_ms;
        if (t < 0 || t > limit) t = limit;
    }
    return rsock_mbedtls_recv_for_(p, buf, len, t, MBEDTLS_ERR_SSL_TIMEOUT);
}

#ifdef __cplusplus
}
#endif

#endif /* RSOCK_MBEDTLS_H */
