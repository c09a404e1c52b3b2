/*
 * rsock_openssl.h: a cancellable OpenSSL BIO over an rsock socket
 * (OpenSSL 1.1.1 and 3.x). Header-only: rsock itself links no TLS library;
 * a program that includes this header links -lssl -lcrypto (CMake:
 * rsock::openssl) besides rsock. Tested with OpenSSL 3.0 (`make test` on
 * Debian 12) and 1.1.1w (`make tls-compat-test`, tests/tls_compat.sh).
 *
 *     BIO *bio = rsock_bio_new(token, sock, BIO_CLOSE, RSOCK_INFINITE);
 *     SSL_set_bio(ssl, bio, bio);          // the SSL object owns the BIO
 *     int r = SSL_read(ssl, buf, len);     // another thread: rsock_cancel(token)
 *     if (r <= 0 && SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ &&
 *         rsock_last_error() == RSOCK_ECANCELED) {
 *         // cancelled; the connection is intact: after rsock_token_reset,
 *         // SSL_read again carries on where it stopped
 *     }
 *
 * Reads and writes are rsock_recv and rsock_send (MSG_NOSIGNAL where it
 * exists) with the BIO's token and timeout, so OpenSSL's calls on this BIO
 * (SSL_connect, SSL_accept, SSL_do_handshake, SSL_read, SSL_write,
 * SSL_shutdown, ...) are cancellable and bounded in time:
 *
 * - A cancel, a timeout or a passed deadline makes the TLS call fail with
 *   the retry result: SSL_get_error() gives SSL_ERROR_WANT_READ or
 *   SSL_ERROR_WANT_WRITE (BIO_should_retry() is set on the BIO), and
 *   rsock_last_error() gives RSOCK_ECANCELED or RSOCK_ETIMEDOUT. (EAGAIN on
 *   a non-blocking socket is a retry too, as for OpenSSL's socket BIO.)
 *   Nothing is lost: bytes of a record that arrived before the cancel stay
 *   in the SSL object, bytes that were not yet received stay in the socket.
 * - To carry on, make the same call again once the token is usable
 *   (rsock_token_reset, or a new deadline): OpenSSL requires this for every
 *   retry result. For SSL_write that means the same buffer and length: the
 *   records it had already sent count, and the repeated call returns the
 *   whole length once everything is out. (SSL_MODE_ENABLE_PARTIAL_WRITE
 *   makes SSL_write return after each record; SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
 *   lets the repeat pass the same bytes at another address.) A write that
 *   is cancelled part-way through a record keeps the rest of the record in
 *   the SSL object; it goes out first on the next call.
 * - The peer closing the connection reads as 0 (end of stream), as with
 *   OpenSSL's socket BIO; any other error fails with -1 and no retry
 *   (SSL_ERROR_SYSCALL, the error in rsock_last_error()).
 * - BIO_get_fd() and SSL_get_fd() return the socket (as an int, as
 *   OpenSSL's socket BIO does); BIO_set_fd() replaces it.
 * - The BIO reads ahead: a read of less than a record receives up to a
 *   whole record (about 18 KiB) and keeps what OpenSSL did not ask for yet,
 *   which saves a wait per record. So received bytes can be waiting in the
 *   BIO rather than in the socket: a program that polls the socket itself
 *   checks SSL_has_pending(ssl) and BIO_pending(SSL_get_rbio(ssl)) first.
 *
 * Ownership: the BIO holds a reference to its token (released when the BIO
 * is freed or given another token). With BIO_CLOSE, freeing the BIO closes
 * the socket; with BIO_NOCLOSE the socket stays the caller's.
 *
 * Threads: like the SSL object it serves, a BIO is used by one thread at a
 * time; rsock_bio_set_token and rsock_bio_set_timeout must not run while
 * another thread does I/O on it. Cancelling is what other threads (and
 * signal handlers) do: rsock_cancel(token), or a deadline on the token.
 *
 * The BIO_METHOD is created on first use, once (CRYPTO_THREAD_run_once),
 * and kept for the life of the process. Its state lives in static
 * variables of inline functions, so each translation unit that creates
 * rsock BIOs has a method of its own (one BIO type index from
 * BIO_get_new_index(), of which OpenSSL has about a hundred). BIOs of
 * different units work together: rsock_bio_set_token and
 * rsock_bio_set_timeout go through BIO_ctrl, so they also reach an rsock
 * BIO under a filter BIO (an SSL BIO or a buffer BIO) that passes controls
 * down.
 */
#ifndef RSOCK_OPENSSL_H
#define RSOCK_OPENSSL_H

#include "rsock.h"

#include <limits.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "rsock_openssl.h needs OpenSSL 1.1.1 or later"
#endif

#ifndef _WIN32
#include <unistd.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Internal: the smallest timeout rsock takes. */
#ifdef RSOCK_SOCKET_TIMEOUT
#define RSOCK_BIO_MIN_TIMEOUT_ RSOCK_SOCKET_TIMEOUT
#else
#define RSOCK_BIO_MIN_TIMEOUT_ RSOCK_INFINITE
#endif

/* BIO_ctrl commands of rsock BIOs (outside OpenSSL's numbers). */
#define RSOCK_BIO_C_SET_TOKEN 0x7273
#define RSOCK_BIO_C_SET_TIMEOUT 0x7274

/* Internal: the size of the read-ahead buffer (a full TLS record). */
#define RSOCK_BIO_READ_AHEAD_ (16384 + 2048 + 5)

/* Internal: the state of one rsock BIO. */
struct rsock_bio_state_ {
    rsock_token *token; /* a reference, or NULL: the I/O thread's own token */
    rsock_socket sock;
    int timeout_ms;
    int eof;            /* the peer closed the stream */
    unsigned char *ahead; /* read ahead, not yet handed to OpenSSL: */
    size_t ahead_at, ahead_end; /* ahead[ahead_at..ahead_end) */
};

static inline void rsock_bio_set_error_(int code) {
#ifdef _WIN32
    WSASetLastError(code);
#else
    errno = code;
#endif
}

/* Internal: whether a failed rsock_recv/rsock_send is worth repeating. */
static inline int rsock_bio_retryable_(int e) {
#ifdef _WIN32
    return e == RSOCK_ECANCELED || e == RSOCK_ETIMEDOUT || e == WSAEWOULDBLOCK;
#else
    return e == RSOCK_ECANCELED || e == RSOCK_ETIMEDOUT || e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
#endif
}

/* OpenSSL reads a record's header, then its body: two reads, each an
   rsock_recv (a poll and a receive once it has had to wait). So a small
   read receives up to a whole record into the BIO's buffer, and the next
   read takes the rest from there. A cancelled read received nothing, so
   the buffer only ever holds bytes that arrived. */
static inline int rsock_bio_read_(BIO *b, char *buf, int len) {
    struct rsock_bio_state_ *st = (struct rsock_bio_state_ *)BIO_get_data(b);
    size_t want = (size_t)len;
    intptr_t n;
    BIO_clear_retry_flags(b);
    if (buf == NULL || len <= 0) return 0;
    if (st->ahead_at < st->ahead_end) {
        size_t have = st->ahead_end - st->ahead_at;
        if (want > have) want = have;
        memcpy(buf, st->ahead + st->ahead_at, want);
        st->ahead_at += want;
        return (int)want;
    }
    if (want < RSOCK_BIO_READ_AHEAD_ && st->ahead == NULL)
        st->ahead = (unsigned char *)OPENSSL_malloc(RSOCK_BIO_READ_AHEAD_);
    if (want < RSOCK_BIO_READ_AHEAD_ && st->ahead != NULL) {
        n = rsock_recv(st->token, st->sock, st->ahead, RSOCK_BIO_READ_AHEAD_, 0, st->timeout_ms);
        if (n > 0) {
            if (want > (size_t)n) want = (size_t)n;
            memcpy(buf, st->ahead, want);
            st->ahead_at = want;
            st->ahead_end = (size_t)n;
            return (int)want;
        }
    } else {
        n = rsock_recv(st->token, st->sock, buf, want, 0, st->timeout_ms);
        if (n > 0) return (int)n;
    }
    if (n == 0) {
        st->eof = 1;
        return 0;
    }
    if (rsock_bio_retryable_(rsock_last_error())) BIO_set_retry_read(b);
    return -1;
}

static inline int rsock_bio_write_(BIO *b, const char *buf, int len) {
    struct rsock_bio_state_ *st = (struct rsock_bio_state_ *)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (buf == NULL || len <= 0) return 0;
#ifdef MSG_NOSIGNAL
    int flags = MSG_NOSIGNAL;
#else
    int flags = 0;
#endif
    /* A partial count (cancelled after some bytes were queued) is returned
       as it is: OpenSSL writes the rest with the next call. */
    intptr_t n = rsock_send(st->token, st->sock, buf, (size_t)len, flags, st->timeout_ms);
    if (n > 0) return (int)n;
    if (n < 0 && rsock_bio_retryable_(rsock_last_error())) BIO_set_retry_write(b);
    return -1;
}

static inline int rsock_bio_puts_(BIO *b, const char *str) {
    size_t n = strlen(str);
    return rsock_bio_write_(b, str, n > INT_MAX ? INT_MAX : (int)n);
}

static inline void rsock_bio_close_socket_(rsock_socket s) {
#ifdef _WIN32
    closesocket(s);
#else
    close(s);
#endif
}

static inline long rsock_bio_ctrl_(BIO *b, int cmd, long num, void *ptr) {
    struct rsock_bio_state_ *st = (struct rsock_bio_state_ *)BIO_get_data(b);
    switch (cmd) {
    case BIO_C_SET_FD:
        if (ptr == NULL) return 0;
        if (BIO_get_shutdown(b) && BIO_get_init(b)) rsock_bio_close_socket_(st->sock);
        st->sock = (rsock_socket) * (int *)ptr;
        st->eof = 0;
        st->ahead_at = st->ahead_end = 0; /* the old socket's */
        BIO_set_shutdown(b, (int)num);
        BIO_set_init(b, 1);
        return 1;
    case BIO_C_GET_FD:
        if (!BIO_get_init(b)) return -1;
        if (ptr != NULL) *(int *)ptr = (int)st->sock;
        return (long)(int)st->sock;
    case BIO_CTRL_GET_CLOSE:
        return BIO_get_shutdown(b);
    case BIO_CTRL_SET_CLOSE:
        BIO_set_shutdown(b, (int)num);
        return 1;
    case BIO_CTRL_EOF:
        return st->eof && st->ahead_at == st->ahead_end;
    case BIO_CTRL_PENDING: /* read ahead, not yet taken */
        return (long)(st->ahead_end - st->ahead_at);
    case BIO_CTRL_FLUSH: /* nothing is buffered here */
    case BIO_CTRL_DUP:
        return 1;
    case RSOCK_BIO_C_SET_TOKEN: {
        rsock_token *t = (rsock_token *)ptr;
        if (t != NULL && rsock_token_ref(t) == NULL) return 0;
        rsock_token_unref(st->token);
        st->token = t;
        return 1;
    }
    case RSOCK_BIO_C_SET_TIMEOUT:
        st->timeout_ms = (int)num;
        return 1;
    default: /* BIO_CTRL_PUSH, BIO_CTRL_POP, kTLS queries, ...: no */
        return 0;
    }
}

static inline int rsock_bio_create_(BIO *b) {
    struct rsock_bio_state_ *st = (struct rsock_bio_state_ *)OPENSSL_zalloc(sizeof *st);
    if (st == NULL) return 0;
    st->token = NULL;
    st->sock = RSOCK_INVALID_SOCKET;
    st->timeout_ms = RSOCK_INFINITE;
    BIO_set_data(b, st);
    BIO_set_init(b, 0);
    return 1;
}

static inline int rsock_bio_destroy_(BIO *b) {
    struct rsock_bio_state_ *st;
    if (b == NULL) return 0;
    st = (struct rsock_bio_state_ *)BIO_get_data(b);
    if (st == NULL) return 1;
    if (BIO_get_shutdown(b) && BIO_get_init(b)) rsock_bio_close_socket_(st->sock);
    rsock_token_unref(st->token);
    OPENSSL_free(st->ahead);
    OPENSSL_free(st);
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

/* Internal: this translation unit's BIO_METHOD, or NULL. */
static inline BIO_METHOD **rsock_bio_method_slot_(void) {
    static BIO_METHOD *method;
    return &method;
}

static inline void rsock_bio_method_init_(void) {
    int index = BIO_get_new_index();
    BIO_METHOD *m;
    if (index == -1) return;
    m = BIO_meth_new(index | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "rsock socket");
    if (m == NULL) return;
    if (!BIO_meth_set_write(m, rsock_bio_write_) || !BIO_meth_set_read(m, rsock_bio_read_) ||
        !BIO_meth_set_puts(m, rsock_bio_puts_) || !BIO_meth_set_ctrl(m, rsock_bio_ctrl_) ||
        !BIO_meth_set_create(m, rsock_bio_create_) || !BIO_meth_set_destroy(m, rsock_bio_destroy_)) {
        BIO_meth_free(m);
        return;
    }
    *rsock_bio_method_slot_() = m;
}

/*
 * The rsock BIO_METHOD (created on the first call, thread-safely; never
 * freed), or NULL if OpenSSL could not create it. BIO_new() on it gives a
 * BIO with no socket (BIO_set_fd gives it one) and the calling thread's
 * own token at each I/O (rsock_bio_set_token), timeout RSOCK_INFINITE.
 */
static inline const BIO_METHOD *rsock_bio_method(void) {
    static CRYPTO_ONCE once = CRYPTO_ONCE_STATIC_INIT;
    if (!CRYPTO_THREAD_run_once(&once, rsock_bio_method_init_)) return NULL;
    return *rsock_bio_method_slot_();
}

/*
 * A BIO that reads and writes `sock` with rsock_recv/rsock_send under
 * `token` and `timeout_ms` (each read or write: RSOCK_INFINITE, 0 for one
 * check, or milliseconds; a deadline on the token bounds them all).
 * `token`: the BIO takes a reference of its own (the caller keeps its
 * own); NULL: the token of whichever thread does the I/O (see
 * rsock_thread_token). `close_flag`: BIO_CLOSE closes `sock` when the BIO
 * is freed, BIO_NOCLOSE leaves it open. Returns NULL with EINVAL for an
 * invalid socket or a negative timeout rsock does not know, or with ENOMEM
 * (WSAENOBUFS on Windows) if OpenSSL cannot allocate.
 */
static inline BIO *rsock_bio_new(rsock_token *token, rsock_socket sock, int close_flag, int timeout_ms) {
    const BIO_METHOD *m;
    BIO *b;
    struct rsock_bio_state_ *st;
#ifdef _WIN32
    int nomem = WSAENOBUFS, inval = WSAEINVAL;
#else
    int nomem = ENOMEM, inval = EINVAL;
#endif
    if (sock == RSOCK_INVALID_SOCKET || timeout_ms < RSOCK_BIO_MIN_TIMEOUT_) {
        rsock_bio_set_error_(inval);
        return NULL;
    }
    m = rsock_bio_method();
    b = m ? BIO_new(m) : NULL;
    if (b == NULL) {
        rsock_bio_set_error_(nomem);
        return NULL;
    }
    st = (struct rsock_bio_state_ *)BIO_get_data(b);
    if (token != NULL && (st->token = rsock_token_ref(token)) == NULL) {
        BIO_free(b);
        rsock_bio_set_error_(inval);
        return NULL;
    }
    st->sock = sock;
    st->timeout_ms = timeout_ms;
    BIO_set_shutdown(b, close_flag ? BIO_CLOSE : BIO_NOCLOSE);
    BIO_set_init(b, 1);
    return b;
}

/*
 * Gives the rsock BIO `bio` (or the rsock BIO under a filter BIO that
 * passes controls down) another token: it takes a reference to `token`
 * and drops its reference to the previous one. NULL: each read or write
 * uses the token of the thread doing it. Returns 0, or -1 with EINVAL if
 * `bio` is NULL or has no rsock BIO. Not while another thread does I/O on
 * the BIO.
 */
static inline int rsock_bio_set_token(BIO *bio, rsock_token *token) {
    if (bio != NULL && BIO_ctrl(bio, RSOCK_BIO_C_SET_TOKEN, 0, token) == 1) return 0;
#ifdef _WIN32
    rsock_bio_set_error_(WSAEINVAL);
#else
    rsock_bio_set_error_(EINVAL);
#endif
    return -1;
}

/*
 * Sets the timeout of each later read and write of the rsock BIO `bio`
 * (as for rsock_bio_new). Returns 0, or -1 with EINVAL if `bio` is NULL,
 * has no rsock BIO, or `timeout_ms` is negative and not a value rsock
 * knows (RSOCK_INFINITE). Not while
 * another thread does I/O on the BIO.
 */
static inline int rsock_bio_set_timeout(BIO *bio, int timeout_ms) {
    if (bio != NULL && timeout_ms >= RSOCK_BIO_MIN_TIMEOUT_ &&
        BIO_ctrl(bio, RSOCK_BIO_C_SET_TIMEOUT, timeout_ms, NULL) == 1)
        return 0;
#ifdef _WIN32
    rsock_bio_set_error_(WSAEINVAL);
#else
    rsock_bio_set_error_(EINVAL);
#endif
    return -1;
}

#ifdef __cplusplus
}
#endif

#endif /* RSOCK_OPENSSL_H */
