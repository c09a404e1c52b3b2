/* The OpenSSL adapter (include/rsock_openssl.h) against real TLS peers on
   loopback: an in-process server thread with a certificate made at run
   time, and `openssl s_server` as a child process. A cancel or timeout
   under SSL_connect, SSL_read or SSL_write must give the retry result with
   RSOCK_ECANCELED/RSOCK_ETIMEDOUT, and repeating the call must carry on
   with nothing lost or repeated.

   Built with OpenSSL when the build finds it (it defines RSOCK_TEST_OPENSSL
   and links -lssl -lcrypto); otherwise it says SKIPPED and exits 77. */
#include "rtest.h"

#if !defined(RSOCK_TEST_OPENSSL) || defined(_WIN32)

int main(void) {
    printf("SKIPPED: test_tls_openssl: built without OpenSSL (POSIX with libssl-dev needed)\n");
    return 77;
}

#else

#include "rsock_openssl.h"
#include "tls_util.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/wait.h>

#define BIG (16u << 20)

static EVP_PKEY *key;
static X509 *cert;

/* An EC P-256 key and a self-signed certificate for localhost. */
static void make_credentials(void) {
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    REQUIRE(kc && EVP_PKEY_keygen_init(kc) == 1);
    REQUIRE(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) == 1);
    REQUIRE(EVP_PKEY_keygen(kc, &key) == 1);
    EVP_PKEY_CTX_free(kc);

    cert = X509_new();
    REQUIRE(cert && X509_set_version(cert, 2) == 1);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    REQUIRE(X509_set_pubkey(cert, key) == 1);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    REQUIRE(X509_set_issuer_name(cert, name) == 1);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    REQUIRE(san && X509_add_ext(cert, san, -1) == 1);
    X509_EXTENSION_free(san);
    REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
}

static SSL_CTX *server_ctx(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx);
    REQUIRE(SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1);
    /* No session tickets: after the handshake the server sends only what
       a test makes it send, so the relay's byte counts are exact. */
    SSL_CTX_set_num_tickets(ctx, 0);
    return ctx;
}

/* A client context that trusts only the test's certificate. */
static SSL_CTX *client_ctx(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    REQUIRE(ctx);
    REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* A client SSL over an rsock BIO on `s` (closed with the SSL). */
static SSL *client_ssl(SSL_CTX *ctx, rsock_token *tok, rsock_socket s, int timeout_ms) {
    SSL *ssl = SSL_new(ctx);
    REQUIRE(ssl);
    BIO *bio = rsock_bio_new(tok, s, BIO_CLOSE, timeout_ms);
    REQUIRE(bio);
    SSL_set_bio(ssl, bio, bio);
    REQUIRE(SSL_set1_host(ssl, "localhost") == 1);
    SSL_set_tlsext_host_name(ssl, "localhost");
    return ssl;
}

/* Checks that a TLS call stopped with the retry result `want` and the
   error `code`, both before and after SSL_get_error (which must leave
   rsock_last_error() alone). */
#define CHECK_RETRY(ssl, r, want, code)                                                            \
    do {                                                                                           \
        int cr_e1 = rsock_last_error();                                                            \
        int cr_se = SSL_get_error((ssl), (r));                                                     \
        int cr_e2 = rsock_last_error();                                                            \
        CHECK((r) <= 0);                                                                           \
        CHECK(cr_se == (want));                                                                    \
        CHECK(cr_e1 == (code));                                                                    \
        CHECK(cr_e2 == (code));                                                                    \
        CHECK(ERR_peek_error() == 0);                                                              \
        if (cr_se != (want) || cr_e1 != (code)) ERR_print_errors_fp(stderr);                       \
        ERR_clear_error();                                                                         \
    } while (0)

/* ---------------------------------------------------------------- server */

/* An in-process TLS server on one connection, with OpenSSL's own socket
   BIO. What it does after the handshake is the test's `run`. */
struct server {
    SSL_CTX *ctx;
    rsock_socket fd;
    SSL *ssl;
    struct gate go; /* the test lets the server take its next step */
    void (*run)(struct server *);
    int handshake_ok;
    const char *message; /* what serve_message sends */
    size_t received;     /* what serve_sink got */
    int sink_ok;
    pthread_t th;
};

static void *server_main(void *arg) {
    struct server *s = (struct server *)arg;
    s->ssl = SSL_new(s->ctx);
    SSL_set_fd(s->ssl, (int)s->fd);
    s->handshake_ok = SSL_accept(s->ssl) == 1;
    if (s->handshake_ok && s->run) s->run(s);
    SSL_shutdown(s->ssl);
    SSL_free(s->ssl);
    close_sock(s->fd);
    return NULL;
}

static void server_start(struct server *s, SSL_CTX *ctx, rsock_socket fd, void (*run)(struct server *)) {
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->fd = fd;
    s->run = run;
    gate_init(&s->go);
    REQUIRE(pthread_create(&s->th, NULL, server_main, s) == 0);
}

static void server_join(struct server *s) {
    pthread_join(s->th, NULL);
    gate_destroy(&s->go);
}

/* Echoes until the client closes. */
static void serve_echo(struct server *s) {
    char buf[4096];
    int n;
    while ((n = SSL_read(s->ssl, buf, sizeof buf)) > 0)
        if (SSL_write(s->ssl, buf, n) != n) return;
}

/* Waits for the gate, sends `message`, then reads until the client closes. */
static void serve_message(struct server *s) {
    char buf[256];
    gate_wait(&s->go, 1);
    int len = (int)strlen(s->message);
    if (SSL_write(s->ssl, s->message, len) != len) return;
    while (SSL_read(s->ssl, buf, sizeof buf) > 0) {
    }
}

/* Waits for the gate, then reads BIG bytes slowly, checking each against
   the pattern; sink_ok if exactly BIG came, then a clean close. */
static void serve_sink(struct server *s) {
    static unsigned char buf[65536];
    gate_wait(&s->go, 1);
    int good = 1, n;
    while ((n = SSL_read(s->ssl, buf, sizeof buf)) > 0) {
        for (int i = 0; i < n && good; i++) good = buf[i] == pattern_byte(s->received + (size_t)i);
        s->received += (size_t)n;
        if ((s->received & 0x3ffff) < (size_t)n) sleep_ms(1); /* a slow reader */
    }
    s->sink_ok = good && s->received == BIG && SSL_get_error(s->ssl, n) == SSL_ERROR_ZERO_RETURN;
}

/* Sends `len` bytes, then reads `len` bytes back and compares. */
static int echo_ok(SSL *ssl, const char *msg) {
    int len = (int)strlen(msg);
    char buf[256];
    if (SSL_write(ssl, msg, len) != len) return 0;
    int got = 0;
    while (got < len) {
        int n = SSL_read(ssl, buf + got, (int)sizeof buf - got);
        if (n <= 0) return 0;
        got += n;
    }
    return got == len && memcmp(buf, msg, (size_t)len) == 0;
}

static SSL_CTX *sctx, *cctx;

/* ---------------------------------------------------------------- tests */

/* The BIO as a socket BIO: fd, close flag, NULL and wrong arguments. */
static void test_bio_basics(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    struct server srv;
    server_start(&srv, sctx, sv[1], serve_echo);
    rsock_token *tok = rsock_token_new();
    SSL *ssl = client_ssl(cctx, tok, sv[0], 5000);
    CHECK(SSL_connect(ssl) == 1);
    printf("  negotiated %s\n", SSL_get_version(ssl));
    CHECK(SSL_get_verify_result(ssl) == X509_V_OK);
    CHECK(SSL_get_fd(ssl) == sv[0]);
    BIO *bio = SSL_get_rbio(ssl);
    int fd = -7;
    CHECK(BIO_get_fd(bio, &fd) == sv[0] && fd == sv[0]);
    CHECK(BIO_get_close(bio) == BIO_CLOSE);
    CHECK(BIO_flush(bio) == 1);
    CHECK(BIO_eof(bio) == 0);
    CHECK(echo_ok(ssl, "hello over rsock"));

    /* NULL token: the thread's own token, which rsock_thread_token hands
       out; a cancel of it stops the next read. */
    CHECK(rsock_bio_set_token(bio, NULL) == 0);
    CHECK(echo_ok(ssl, "with the thread token"));
    rsock_token *mine = rsock_thread_token();
    rsock_cancel(mine);
    char buf[64];
    int r = SSL_read(ssl, buf, sizeof buf);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, RSOCK_ECANCELED);
    rsock_token_reset(mine);
    rsock_token_unref(mine);
    CHECK(rsock_bio_set_token(bio, tok) == 0);
    CHECK(echo_ok(ssl, "back on the token"));
    /* The token the BIO holds is its own reference. */
    rsock_token_unref(tok);
    CHECK(echo_ok(ssl, "the caller's reference is gone"));

    /* Through a filter BIO, the controls reach the rsock BIO. */
    BIO *ssl_bio = BIO_new(BIO_f_ssl());
    BIO_set_ssl(ssl_bio, ssl, BIO_NOCLOSE);
    CHECK(rsock_bio_set_timeout(ssl_bio, 1000) == 0);
    CHECK(BIO_get_fd(ssl_bio, NULL) == sv[0]);
    BIO_free_all(ssl_bio); /* and the reference it took to the rsock BIO */

    /* Wrong arguments. */
    BIO *mem = BIO_new(BIO_s_mem());
    CHECK_ERR(rsock_bio_set_token(mem, NULL), RT_EINVAL);
    CHECK_ERR(rsock_bio_set_timeout(mem, 10), RT_EINVAL);
    BIO_free(mem);
    CHECK_ERR(rsock_bio_set_token(NULL, NULL), RT_EINVAL);
    CHECK_ERR(rsock_bio_set_timeout(bio, -5), RT_EINVAL);
    rt_set_error(0);
    CHECK(rsock_bio_new(NULL, RSOCK_INVALID_SOCKET, BIO_NOCLOSE, 0) == NULL && rsock_last_error() == RT_EINVAL);

    /* A clean close by the peer reads as the end of the stream. */
    SSL_shutdown(ssl);
    shutdown(sv[0], SHUT_WR);
    r = SSL_read(ssl, buf, sizeof buf);
    CHECK(r == 0 && SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN);
    server_join(&srv);
    CHECK(srv.handshake_ok);
    SSL_free(ssl);
    /* BIO_CLOSE: the socket went with the SSL. */
    CHECK(fcntl(sv[0], F_GETFD) == -1 && errno == EBADF);

    /* BIO_NOCLOSE and BIO_set_fd. */
    rsock_socket sp[2];
    unix_pair(sp);
    BIO *b = rsock_bio_new(NULL, sp[0], BIO_NOCLOSE, 0);
    CHECK(b && BIO_get_close(b) == BIO_NOCLOSE);
    int other = sp[1];
    CHECK(BIO_set_fd(b, other, BIO_NOCLOSE) == 1 && BIO_get_fd(b, NULL) == sp[1]);
    CHECK(BIO_write(b, "x", 1) == 1);
    CHECK(BIO_read(b, buf, 1) == -1 && BIO_should_retry(b) && BIO_should_read(b));
    CHECK(rsock_last_error() == RSOCK_ETIMEDOUT);
    CHECK(recv(sp[0], buf, 1, 0) == 1 && buf[0] == 'x');
    /* Read-ahead: what a small read received beyond its length waits in
       the BIO (BIO_pending), not in the socket. */
    CHECK(send(sp[0], "hello", 5, 0) == 5);
    CHECK(rsock_bio_set_timeout(b, 5000) == 0);
    CHECK(BIO_read(b, buf, 2) == 2 && memcmp(buf, "he", 2) == 0);
    CHECK(BIO_pending(b) == 3 && pending(sp[1]) == 0);
    CHECK(BIO_read(b, buf, sizeof buf) == 3 && memcmp(buf, "llo", 3) == 0);
    CHECK(BIO_pending(b) == 0);
    shutdown(sp[0], SHUT_WR);
    CHECK(BIO_read(b, buf, sizeof buf) == 0 && BIO_eof(b));
    BIO_free(b);
    close_pair(sp);
}

/* The server stalls in the handshake: first with nothing of its reply
   through, then in the middle of its first record. Each cancel gives
   SSL_ERROR_WANT_READ; the repeated SSL_connect finishes the handshake. */
static void handshake_stalled(int use_timeout) {
    struct relay rl;
    rsock_socket c, s;
    relay_start(&rl, &c, &s, 0);
    struct server srv;
    server_start(&srv, sctx, s, serve_echo);
    rsock_token *tok = rsock_token_new();
    SSL *ssl = client_ssl(cctx, tok, c, use_timeout ? 100 : RSOCK_INFINITE);
    int code = use_timeout ? RSOCK_ETIMEDOUT : RSOCK_ECANCELED;

    struct canceller cn;
    if (!use_timeout) start_cancel(&cn, tok, 50);
    double t0 = now_ms();
    int r = SSL_connect(ssl);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, code);
    if (use_timeout) CHECK(now_ms() - t0 >= 90);
    else join_cancel(&cn);
    CHECK(relay_forwarded(&rl) == 0);

    /* 45 bytes of the server's flight: the record header and part of the
       ServerHello. */
    rsock_token_reset(tok);
    relay_allow(&rl, 45);
    if (use_timeout) {
        while (relay_forwarded(&rl) < 45) sleep_ms(1);
        r = SSL_connect(ssl);
        CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, code);
    } else {
        struct drain_cancel dc;
        start_drain_cancel(&dc, &rl, c, tok, 20);
        r = SSL_connect(ssl);
        CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, code);
        join_drain_cancel(&dc);
        CHECK(dc.drained);
    }
    CHECK(pending(c) == 0);
    CHECK(relay_forwarded(&rl) == 45);

    rsock_token_reset(tok);
    CHECK(rsock_bio_set_timeout(SSL_get_rbio(ssl), RSOCK_INFINITE) == 0);
    relay_allow(&rl, -1);
    CHECK(SSL_connect(ssl) == 1);
    CHECK(SSL_get_verify_result(ssl) == X509_V_OK);
    CHECK(echo_ok(ssl, "after a stalled handshake"));
    SSL_shutdown(ssl);
    SSL_free(ssl);
    server_join(&srv);
    CHECK(srv.handshake_ok);
    relay_stop(&rl);
    rsock_token_unref(tok);
}

static void test_handshake_cancel(void) { handshake_stalled(0); }
static void test_handshake_timeout(void) { handshake_stalled(1); }

/* Half of a record has arrived when the read is stopped (cancel, the
   BIO's timeout, then a deadline on the token); then the rest comes and
   SSL_read returns the whole plaintext. */
static void test_half_record(void) {
    struct relay rl;
    rsock_socket c, s;
    relay_start(&rl, &c, &s, -1);
    struct server srv;
    server_start(&srv, sctx, s, serve_message);
    static char message[1000];
    for (size_t i = 0; i < sizeof message - 1; i++) message[i] = (char)('a' + i % 26);
    srv.message = message;
    rsock_token *tok = rsock_token_new();
    SSL *ssl = client_ssl(cctx, tok, c, RSOCK_INFINITE);
    CHECK(SSL_connect(ssl) == 1);

    /* The record header and 100 bytes of the body, no more. */
    long long before = relay_forwarded(&rl);
    relay_allow(&rl, 105);
    gate_set(&srv.go, 1);
    char buf[4096];
    struct drain_cancel dc;
    start_drain_cancel(&dc, &rl, c, tok, 20);
    int r = SSL_read(ssl, buf, sizeof buf);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, RSOCK_ECANCELED);
    join_drain_cancel(&dc);
    CHECK(dc.drained);
    CHECK(SSL_pending(ssl) == 0);
    rsock_token_reset(tok);

    /* The BIO's timeout, then the token's deadline, the same way. */
    CHECK(rsock_bio_set_timeout(SSL_get_rbio(ssl), 50) == 0);
    r = SSL_read(ssl, buf, sizeof buf);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, RSOCK_ETIMEDOUT);
    CHECK(rsock_bio_set_timeout(SSL_get_rbio(ssl), RSOCK_INFINITE) == 0);
    CHECK(rsock_token_set_deadline(tok, 50) == 0);
    r = SSL_read(ssl, buf, sizeof buf);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, RSOCK_ETIMEDOUT);
    CHECK(rsock_token_set_deadline(tok, RSOCK_INFINITE) == 0);
    CHECK(relay_forwarded(&rl) == before + 105);

    relay_allow(&rl, -1);
    r = SSL_read(ssl, buf, sizeof buf);
    CHECK(r == (int)strlen(message) && memcmp(buf, message, strlen(message)) == 0);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    server_join(&srv);
    relay_stop(&rl);
    rsock_token_unref(tok);
}

/* A 16 MiB SSL_write to a reader that stalls, stopped by a cancel or the
   BIO's timeout; then the reader reads slowly while a storm of cancels
   hits the writer, which resets its token and repeats the same SSL_write
   each time. The reader gets every byte once, in order. */
static void big_write(int use_timeout) {
    rsock_socket sv[2];
    tcp_pair(sv);
    small_buffers(sv[0]);
    small_buffers(sv[1]);
    struct server srv;
    server_start(&srv, sctx, sv[1], serve_sink);
    rsock_token *tok = rsock_token_new();
    SSL *ssl = client_ssl(cctx, tok, sv[0], use_timeout ? 100 : RSOCK_INFINITE);
    CHECK(SSL_connect(ssl) == 1);
    unsigned char *data = (unsigned char *)malloc(BIG);
    REQUIRE(data);
    pattern_fill(data, BIG);

    struct canceller cn;
    if (!use_timeout) start_cancel(&cn, tok, 100);
    int r = SSL_write(ssl, data, (int)BIG);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_WRITE, use_timeout ? RSOCK_ETIMEDOUT : RSOCK_ECANCELED);
    if (!use_timeout) join_cancel(&cn);
    CHECK(srv.received == 0);

    rsock_token_reset(tok);
    CHECK(rsock_bio_set_timeout(SSL_get_wbio(ssl), RSOCK_INFINITE) == 0);
    gate_set(&srv.go, 1);
    struct storm st;
    storm_start(&st, tok, 5, rt_scaled(40));
    int retries = 0;
    for (;;) {
        r = SSL_write(ssl, data, (int)BIG);
        if (r == (int)BIG) break;
        int e = rsock_last_error();
        CHECK(SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE && e == RSOCK_ECANCELED);
        if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_WRITE) break;
        rsock_token_reset(tok);
        retries++;
    }
    int cancels = storm_stop(&st);
    printf("  16 MiB written: %d cancels, %d repeated SSL_write calls\n", cancels, retries);
    rsock_token_reset(tok);
    CHECK(SSL_shutdown(ssl) >= 0);
    shutdown(sv[0], SHUT_WR);
    server_join(&srv);
    CHECK(srv.sink_ok);
    CHECK(srv.received == BIG);
    SSL_free(ssl);
    free(data);
    rsock_token_unref(tok);
}

static void test_big_write_cancel(void) { big_write(0); }
static void test_big_write_timeout(void) { big_write(1); }

/* rsock_cancel from a signal handler stops SSL_read; other signals that
   interrupt the wait do not. */
static rsock_token *signal_token;
static void on_usr1(int sig) {
    (void)sig;
    rsock_cancel(signal_token);
}
static void on_usr2(int sig) { (void)sig; }

struct signaller {
    pthread_t target, th;
};
static void *signal_later(void *arg) {
    struct signaller *s = (struct signaller *)arg;
    for (int i = 0; i < 20; i++) {
        pthread_kill(s->target, SIGUSR2);
        sleep_ms(3);
    }
    pthread_kill(s->target, SIGUSR1);
    return NULL;
}

static void test_signal_cancel(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    struct server srv;
    server_start(&srv, sctx, sv[1], serve_message);
    srv.message = "after the signal";
    signal_token = rsock_token_new();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    SSL *ssl = client_ssl(cctx, signal_token, sv[0], RSOCK_INFINITE);
    CHECK(SSL_connect(ssl) == 1);

    struct signaller sg = {pthread_self(), 0};
    REQUIRE(pthread_create(&sg.th, NULL, signal_later, &sg) == 0);
    char buf[64];
    int r = SSL_read(ssl, buf, sizeof buf);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, RSOCK_ECANCELED);
    pthread_join(sg.th, NULL);
    rsock_token_reset(signal_token);
    gate_set(&srv.go, 1);
    r = SSL_read(ssl, buf, sizeof buf);
    CHECK(r == 16 && memcmp(buf, "after the signal", 16) == 0);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    server_join(&srv);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    rsock_token_unref(signal_token);
}

/* Eight threads, each with its own connection and a child of one parent
   token, all blocked in SSL_read; one cancel of the parent stops them
   all, and after the reset each carries on. */
enum { NTHREADS = 8 };
static struct gate ready, stopped, resume;
struct worker {
    rsock_token *tok;
    rsock_socket fd;
    struct server srv;
    int cancelled_ok, resumed_ok;
    double stopped_at;
    pthread_t th;
};

static void *worker_main(void *arg) {
    struct worker *w = (struct worker *)arg;
    SSL *ssl = client_ssl(cctx, w->tok, w->fd, RSOCK_INFINITE);
    if (SSL_connect(ssl) == 1) {
        char buf[64];
        gate_add(&ready, 1);
        int r = SSL_read(ssl, buf, sizeof buf);
        int e = rsock_last_error();
        w->stopped_at = now_ms();
        w->cancelled_ok = r <= 0 && SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ && e == RSOCK_ECANCELED &&
                          rsock_last_error() == RSOCK_ECANCELED;
        gate_add(&stopped, 1);
        gate_wait(&resume, 1);
        rsock_token_reset(w->tok);
        r = SSL_read(ssl, buf, sizeof buf);
        w->resumed_ok = r == (int)strlen(w->srv.message) && memcmp(buf, w->srv.message, (size_t)r) == 0;
        SSL_shutdown(ssl);
    } else {
        gate_add(&ready, 1);
        gate_add(&stopped, 1);
    }
    SSL_free(ssl);
    return NULL;
}

static void test_many_threads(void) {
    rsock_token *parent = rsock_token_new();
    static struct worker w[NTHREADS];
    gate_init(&ready);
    gate_init(&stopped);
    gate_init(&resume);
    for (int i = 0; i < NTHREADS; i++) {
        rsock_socket sv[2];
        tcp_pair(sv);
        w[i].fd = sv[0];
        w[i].tok = rsock_token_child(parent);
        w[i].cancelled_ok = w[i].resumed_ok = 0;
        server_start(&w[i].srv, sctx, sv[1], serve_message);
        w[i].srv.message = "carry on";
        REQUIRE(pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0);
    }
    gate_wait(&ready, NTHREADS);
    sleep_ms(50);
    double t0 = now_ms();
    rsock_cancel(parent);
    gate_wait(&stopped, NTHREADS);
    /* Then the servers send, and each worker reads after its reset. */
    rsock_token_reset(parent);
    for (int i = 0; i < NTHREADS; i++) gate_set(&w[i].srv.go, 1);
    gate_set(&resume, 1);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(w[i].th, NULL);
        server_join(&w[i].srv);
        CHECK(w[i].srv.handshake_ok);
        CHECK(w[i].cancelled_ok);
        CHECK(w[i].resumed_ok);
        CHECK(w[i].stopped_at - t0 < 5000);
        rsock_token_unref(w[i].tok);
    }
    gate_destroy(&ready);
    gate_destroy(&stopped);
    gate_destroy(&resume);
    rsock_token_unref(parent);
}

/* ---------------------------------------------------------------- s_server */

/* `openssl s_server` as a child: its stdin is what it sends, its stdout
   what it received (after its own status lines). */
struct s_server {
    pid_t pid;
    int in, out;
    unsigned short port;
    char *buf; /* its stdout, collected by a thread */
    size_t len, cap;
    pthread_t th;
};

static int read_line(int fd, char *line, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0 || read(fd, &line[n], 1) != 1) return -1;
        if (line[n++] == '\n') break;
    }
    line[n] = '\0';
    return (int)n;
}

static int s_server_start(struct s_server *s, const char *dir) {
    char certf[512], keyf[512];
    snprintf(certf, sizeof certf, "%s/cert.pem", dir);
    snprintf(keyf, sizeof keyf, "%s/key.pem", dir);
    int in[2], out[2];
    REQUIRE(pipe(in) == 0 && pipe(out) == 0);
    s->pid = fork();
    REQUIRE(s->pid >= 0);
    if (s->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        close(in[1]);
        close(out[0]);
        execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", certf, "-key", keyf,
               "-naccept", "1", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->in = in[1];
    s->out = out[0];
    char line[256];
    while (read_line(s->out, line, sizeof line) > 0) {
        if (strncmp(line, "ACCEPT 127.0.0.1:", 17) == 0) {
            s->port = (unsigned short)atoi(line + 17);
            return 1;
        }
    }
    return 0;
}

static void *s_server_collect(void *arg) {
    struct s_server *s = (struct s_server *)arg;
    for (;;) {
        if (s->cap - s->len < 65536) {
            s->cap = s->cap * 2 + (1 << 20);
            s->buf = (char *)realloc(s->buf, s->cap);
            REQUIRE(s->buf);
        }
        ssize_t n = read(s->out, s->buf + s->len, s->cap - s->len - 1);
        if (n <= 0) break;
        s->len += (size_t)n;
    }
    s->buf[s->len] = '\0';
    return NULL;
}

/* The exit status, killing it if it does not go within 10 s. */
static int s_server_wait(struct s_server *s) {
    int status = -1;
    for (int i = 0; i < 1000 && waitpid(s->pid, &status, WNOHANG) == 0; i++) sleep_ms(10);
    if (waitpid(s->pid, &status, WNOHANG) == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
        return -1;
    }
    return status;
}

static int have_openssl_command(void) {
    return system("openssl version >/dev/null 2>&1") == 0;
}

static void write_pem_files(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/cert.pem", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f && PEM_write_X509(f, cert) == 1);
    fclose(f);
    snprintf(path, sizeof path, "%s/key.pem", dir);
    f = fopen(path, "w");
    REQUIRE(f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
}

/* Against s_server: a handshake stalled by SIGSTOP, cancelled, then
   finished; a read cancelled, then answered; a 16 MiB write cancelled
   while s_server is stopped, then finished, s_server printing every byte
   once, in order. */
static void test_s_server(void) {
    char dir[] = "/tmp/rsock-tls-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    write_pem_files(dir);
    struct s_server srv;
    memset(&srv, 0, sizeof srv);
    REQUIRE(s_server_start(&srv, dir));

    rsock_token *tok = rsock_token_new();
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(srv.port);
    rsock_socket fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(sock_ok(fd));
    CHECK(kill(srv.pid, SIGSTOP) == 0);
    CHECK(rsock_connect(tok, fd, (struct sockaddr *)&a, sizeof a, 5000) == 0);
    SSL *ssl = client_ssl(cctx, tok, fd, RSOCK_INFINITE);

    struct canceller cn;
    start_cancel(&cn, tok, 100);
    int r = SSL_connect(ssl);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, RSOCK_ECANCELED);
    join_cancel(&cn);
    CHECK(kill(srv.pid, SIGCONT) == 0);
    rsock_token_reset(tok);
    CHECK(SSL_connect(ssl) == 1);
    CHECK(SSL_get_verify_result(ssl) == X509_V_OK);

    /* A read with nothing to read, cancelled; then s_server sends a line. */
    char buf[256];
    start_cancel(&cn, tok, 50);
    r = SSL_read(ssl, buf, sizeof buf);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_READ, RSOCK_ECANCELED);
    join_cancel(&cn);
    rsock_token_reset(tok);
    const char line[] = "hello from s_server\n";
    CHECK(write(srv.in, line, sizeof line - 1) == (ssize_t)(sizeof line - 1));
    int got = 0;
    while (got < (int)sizeof line - 1 && (r = SSL_read(ssl, buf + got, (int)sizeof buf - got)) > 0) got += r;
    CHECK(got == (int)sizeof line - 1 && memcmp(buf, line, (size_t)got) == 0);

    /* 16 MiB between two markers, while s_server is stopped. */
    unsigned char *data = (unsigned char *)malloc(BIG);
    REQUIRE(data);
    pattern_fill(data, BIG);
    CHECK(SSL_write(ssl, "<<BEGIN>>", 9) == 9);
    CHECK(kill(srv.pid, SIGSTOP) == 0);
    REQUIRE(pthread_create(&srv.th, NULL, s_server_collect, &srv) == 0);
    start_cancel(&cn, tok, 200);
    r = SSL_write(ssl, data, (int)BIG);
    CHECK_RETRY(ssl, r, SSL_ERROR_WANT_WRITE, RSOCK_ECANCELED);
    join_cancel(&cn);
    CHECK(kill(srv.pid, SIGCONT) == 0);
    rsock_token_reset(tok);
    CHECK(SSL_write(ssl, data, (int)BIG) == (int)BIG);
    CHECK(SSL_write(ssl, "<<END>>", 7) == 7);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    /* s_server ends the connection when its stdin ends, whatever it has
       not read yet: stdin stays open until it has gone (-naccept 1). */
    pthread_join(srv.th, NULL);
    close(srv.in);
    int status = s_server_wait(&srv);
    CHECK(status != -1);
    const char *begin = (const char *)memmem(srv.buf, srv.len, "<<BEGIN>>", 9);
    CHECK(begin != NULL);
    if (begin) {
        size_t at = (size_t)(begin - srv.buf) + 9;
        CHECK(srv.len >= at + BIG + 7);
        if (srv.len < at + BIG + 7) fprintf(stderr, "s_server printed %zu bytes, data from %zu; the end: %.300s\n", srv.len, at, srv.buf + (srv.len > 300 ? srv.len - 300 : 0));
        if (srv.len >= at + BIG + 7) {
            CHECK(memcmp(srv.buf + at, data, BIG) == 0);
            CHECK(memcmp(srv.buf + at + BIG, "<<END>>", 7) == 0);
        }
    }
    close(srv.out);
    free(srv.buf);
    free(data);
    rsock_token_unref(tok);
    char path[600];
    snprintf(path, sizeof path, "%s/cert.pem", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/key.pem", dir);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    rt_watchdog(240);
    rt_ignore_sigpipe();
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    make_credentials();
    sctx = server_ctx();
    cctx = client_ctx();
    RUN(test_bio_basics);
    RUN(test_handshake_cancel);
    RUN(test_handshake_timeout);
    RUN(test_half_record);
    RUN(test_big_write_cancel);
    RUN(test_big_write_timeout);
    RUN(test_signal_cancel);
    RUN(test_many_threads);
    RUN_IF(have_openssl_command(), test_s_server, "no openssl command");
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rt_finish("test_tls_openssl");
}

#endif
