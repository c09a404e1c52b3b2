/*
 * https_get: fetches a URL path over HTTPS (HTTP/1.0 over TLS with
 * OpenSSL) within one deadline, and stops at once on Ctrl-C.
 *
 * Resolving, connecting, the TLS handshake, the request and the reply all
 * run under one token with a deadline (rsock_token_set_deadline), so the
 * timeout bounds them together, and the calls themselves wait without a
 * limit of their own. OpenSSL does its socket I/O through an rsock BIO
 * (rsock_openssl.h), so SIGINT, which cancels the token from the signal
 * handler, stops whichever stage is waiting, TLS included. The server's
 * certificate is checked against CA_FILE (default: the system's trust
 * store) and the host name. The reply goes to stdout.
 *
 * usage: https_get HOST PORT [PATH] [TIMEOUT_MS] [CA_FILE]
 * exit:  0 done, 1 error, 2 timed out, 130 cancelled (Ctrl-C)
 */
#define _POSIX_C_SOURCE 200809L
#include "portable.h" /* what differs on Windows; includes rsock.h */

#include <rsock_openssl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rsock_token *token;

static void on_sigint(int sig) {
    (void)sig;
    rsock_cancel(token);
}

/* Reports a failed rsock call and gives the exit code for it. */
static int fail(const char *what) {
    int err = rsock_last_error();
    fprintf(stderr, "https_get: %s: %s\n", what, rsock_strerror(err));
    return err == RSOCK_ETIMEDOUT ? 2 : err == RSOCK_ECANCELED ? 130 : 1;
}

/* Reports a failed TLS call (result r) and gives the exit code for it. */
static int tls_fail(SSL *ssl, int r, const char *what) {
    int e = SSL_get_error(ssl, r);
    /* A retry result: the token stopped the call (cancel or deadline), and
       rsock_last_error() says which. */
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return fail(what);
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return fail(what);
    unsigned long code = ERR_get_error();
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    fprintf(stderr, "https_get: %s: %s\n", what, code ? text : "the connection ended");
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) fprintf(stderr, "https_get: certificate: %s\n", X509_verify_cert_error_string(verify));
    return 1;
}

/* The TLS handshake, the request, the reply to stdout; the exit code. */
static int get(SSL_CTX *ctx, rsock_socket s, const char *host, const char *path) {
    SSL *ssl = SSL_new(ctx);
    /* No timeout of its own: the token's deadline bounds every read and
       write. BIO_CLOSE: freeing the SSL closes the socket. */
    BIO *bio = ssl ? rsock_bio_new(token, s, BIO_CLOSE, RSOCK_INFINITE) : NULL;
    if (!bio) {
        fprintf(stderr, "https_get: out of memory\n");
        SSL_free(ssl);
        closesocket(s);
        return 1;
    }
    SSL_set_bio(ssl, bio, bio);
    SSL_set1_host(ssl, host);            /* the certificate must name the host */
    SSL_set_tlsext_host_name(ssl, host); /* SNI */

    int code = 0, r;
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
    fprintf(stderr, "https_get: connected, TLS handshake\n");
    if ((r = SSL_connect(ssl)) != 1) {
        code = tls_fail(ssl, r, "handshake");
    } else if (n < 0 || (size_t)n >= sizeof request) {
        fprintf(stderr, "https_get: path too long\n");
        code = 1;
    } else if ((r = SSL_write(ssl, request, n)) != n) {
        code = tls_fail(ssl, r, "send");
    } else {
        fprintf(stderr, "https_get: request sent, waiting for the reply\n");
        char buf[4096];
        long long total = 0;
        while ((r = SSL_read(ssl, buf, sizeof buf)) > 0) {
            fwrite(buf, 1, (size_t)r, stdout);
            total += r;
        }
        int e = SSL_get_error(ssl, r);
        /* The end: close_notify, or (OpenSSL 1.1.1) the stream ending. */
        int ended = e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0 && ERR_peek_error() == 0);
        if (!ended) {
            code = tls_fail(ssl, r, "reply");
        } else {
            fflush(stdout);
            fprintf(stderr, "https_get: %lld bytes received\n", total);
            SSL_shutdown(ssl);
        }
    }
    SSL_free(ssl);
    return code;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST PORT [PATH] [TIMEOUT_MS] [CA_FILE]\n", argv[0]);
        return 1;
    }
    const char *host = argv[1], *port = argv[2];
    const char *path = argc > 3 ? argv[3] : "/";
    int timeout_ms = argc > 4 ? atoi(argv[4]) : 5000;
    const char *ca_file = argc > 5 ? argv[5] : NULL;
    if (timeout_ms <= 0) {
        fprintf(stderr, "https_get: TIMEOUT_MS must be a positive number\n");
        return 1;
    }

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !(ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx))) {
        fprintf(stderr, "https_get: cannot load the trusted certificates\n");
        SSL_CTX_free(ctx);
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* HTTP/1.0 ends the reply by closing; many servers skip close_notify. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif

    if (sockets_start() != 0) return fail("sockets_start");
    token = rsock_token_new();
    if (!token) return fail("rsock_token_new");
    rsock_token_set_deadline(token, timeout_ms); /* the whole exchange */
    catch_signal(SIGINT, on_sigint);
    ignore_sigpipe();

    int code;
    rsock_socket s = rsock_connect_host(token, host, port, SOCK_STREAM, RSOCK_INFINITE);
    if (s == RSOCK_INVALID_SOCKET) code = fail(host);
    else code = get(ctx, s, host, path);

    catch_signal(SIGINT, SIG_DFL); /* no handler may reach the token once it is freed */
    rsock_token_unref(token);
    SSL_CTX_free(ctx);
    sockets_stop();
    return code;
}
