/* The Mbed TLS adapter (include/rsock_mbedtls.h) against a real TLS peer
   on loopback: an in-process Mbed TLS server thread with a certificate
   made at run time. A cancel or timeout under mbedtls_ssl_handshake,
   mbedtls_ssl_read or mbedtls_ssl_write must give the retry result with
   RSOCK_ECANCELED/RSOCK_ETIMEDOUT, and repeating the call must carry on
   with nothing lost or repeated.

   Built with Mbed TLS when the build finds it (it defines
   RSOCK_TEST_MBEDTLS and links -lmbedtls -lmbedx509 -lmbedcrypto);
   otherwise it says SKIPPED and exits 77. */
#include "rtest.h"

#if !defined(RSOCK_TEST_MBEDTLS) || defined(_WIN32)

int main(void) {
    printf("SKIPPED: test_tls_mbedtls: built without Mbed TLS (POSIX with libmbedtls-dev needed)\n");
    return 77;
}

#else

#include "rsock_mbedtls.h"
#include "tls_util.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <psa/crypto.h>
#endif

#define BIG (16u << 20)

static mbedtls_pk_context key;
static mbedtls_x509_crt cert;

/* One side of a connection: its own random generator, configuration and
   SSL context. */
struct side {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
};

static void side_init(struct side *s, int server) {
    mbedtls_entropy_init(&s->entropy);
    mbedtls_ctr_drbg_init(&s->drbg);
    mbedtls_ssl_config_init(&s->conf);
    mbedtls_ssl_init(&s->ssl);
    REQUIRE(mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy, NULL, 0) == 0);
    REQUIRE(mbedtls_ssl_config_defaults(&s->conf, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT) == 0);
    mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
    if (server) {
        REQUIRE(mbedtls_ssl_conf_own_cert(&s->conf, &cert, &key) == 0);
    } else {
        mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&s->conf, &cert, NULL);
    }
    REQUIRE(mbedtls_ssl_setup(&s->ssl, &s->conf) == 0);
    if (!server) REQUIRE(mbedtls_ssl_set_hostname(&s->ssl, "localhost") == 0);
}

static void side_free(struct side *s) {
    mbedtls_ssl_free(&s->ssl);
    mbedtls_ssl_config_free(&s->conf);
    mbedtls_ctr_drbg_free(&s->drbg);
    mbedtls_entropy_free(&s->entropy);
}

/* An EC P-256 key and a self-signed certificate for localhost. */
static void make_credentials(void) {
    struct side rng;
    mbedtls_entropy_init(&rng.entropy);
    mbedtls_ctr_drbg_init(&rng.drbg);
    REQUIRE(mbedtls_ctr_drbg_seed(&rng.drbg, mbedtls_entropy_func, &rng.entropy, NULL, 0) == 0);
    mbedtls_pk_init(&key);
    REQUIRE(mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0);
    REQUIRE(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), mbedtls_ctr_drbg_random, &rng.drbg) == 0);

    mbedtls_x509write_cert w;
    mbedtls_x509write_crt_init(&w);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, &key);
    mbedtls_x509write_crt_set_issuer_key(&w, &key);
    REQUIRE(mbedtls_x509write_crt_set_subject_name(&w, "CN=localhost") == 0);
    REQUIRE(mbedtls_x509write_crt_set_issuer_name(&w, "CN=localhost") == 0);
#if MBEDTLS_VERSION_NUMBER >= 0x03040000
    unsigned char serial[] = {1};
    REQUIRE(mbedtls_x509write_crt_set_serial_raw(&w, serial, sizeof serial) == 0);
#else
    mbedtls_mpi serial;
    mbedtls_mpi_init(&serial);
    REQUIRE(mbedtls_mpi_lset(&serial, 1) == 0);
    REQUIRE(mbedtls_x509write_crt_set_serial(&w, &serial) == 0);
    mbedtls_mpi_free(&serial);
#endif
    REQUIRE(mbedtls_x509write_crt_set_validity(&w, "20200101000000", "20991231235959") == 0);
    REQUIRE(mbedtls_x509write_crt_set_basic_constraints(&w, 1, -1) == 0);
    static unsigned char der[4096];
    int len = mbedtls_x509write_crt_der(&w, der, sizeof der, mbedtls_ctr_drbg_random, &rng.drbg);
    REQUIRE(len > 0);
    mbedtls_x509_crt_init(&cert);
    REQUIRE(mbedtls_x509_crt_parse_der(&cert, der + sizeof der - len, (size_t)len) == 0);
    mbedtls_x509write_crt_free(&w);
    mbedtls_ctr_drbg_free(&rng.drbg);
    mbedtls_entropy_free(&rng.entropy);
}

/* A client over the adapter on `fd`, which it closes in client_free. */
struct client {
    struct side side;
    rsock_mbedtls_io io;
};

static void client_init(struct client *c, rsock_token *tok, rsock_socket fd, int timeout_ms, int with_recv_timeout) {
    side_init(&c->side, 0);
    c->io.token = tok;
    c->io.sock = fd;
    c->io.timeout_ms = timeout_ms;
    mbedtls_ssl_set_bio(&c->side.ssl, &c->io, rsock_mbedtls_send, rsock_mbedtls_recv,
                        with_recv_timeout ? rsock_mbedtls_recv_timeout : NULL);
}

static void client_free(struct client *c) {
    side_free(&c->side);
    close_sock(c->io.sock);
}

/* The handshake, repeated while Mbed TLS asks for it (nothing cancels). */
static int handshake(mbedtls_ssl_context *ssl) {
    int r;
    while ((r = mbedtls_ssl_handshake(ssl)) == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
    }
    return r;
}

/* Checks a TLS call's result and rsock_last_error(). */
#define CHECK_RESULT(r, want, code)                                                                \
    do {                                                                                           \
        int cr_r = (r);                                                                            \
        int cr_e = rsock_last_error();                                                             \
        CHECK(cr_r == (want));                                                                     \
        CHECK(cr_e == (code));                                                                     \
        if (cr_r != (want)) fprintf(stderr, "  result -0x%04x, expected -0x%04x\n", -cr_r, -(want)); \
    } while (0)

/* ---------------------------------------------------------------- server */

/* An in-process Mbed TLS server on one connection, with Mbed TLS's own
   socket calls (mbedtls_net_send/recv). */
struct server {
    struct side side;
    mbedtls_net_context net;
    struct gate go;
    void (*run)(struct server *);
    int handshake_ok;
    const char *message;
    size_t received;
    int sink_ok;
    pthread_t th;
};

static void *server_main(void *arg) {
    struct server *s = (struct server *)arg;
    mbedtls_ssl_set_bio(&s->side.ssl, &s->net, mbedtls_net_send, mbedtls_net_recv, NULL);
    s->handshake_ok = handshake(&s->side.ssl) == 0;
    if (s->handshake_ok && s->run) s->run(s);
    mbedtls_ssl_close_notify(&s->side.ssl);
    mbedtls_net_free(&s->net);
    return NULL;
}

static void server_start(struct server *s, rsock_socket fd, void (*run)(struct server *)) {
    memset(s, 0, sizeof *s);
    side_init(&s->side, 1);
    mbedtls_net_init(&s->net);
    s->net.fd = fd;
    s->run = run;
    gate_init(&s->go);
    REQUIRE(pthread_create(&s->th, NULL, server_main, s) == 0);
}

static void server_join(struct server *s) {
    pthread_join(s->th, NULL);
    gate_destroy(&s->go);
    side_free(&s->side);
}

static int write_all(mbedtls_ssl_context *ssl, const unsigned char *p, size_t len) {
    while (len > 0) {
        int n = mbedtls_ssl_write(ssl, p, len);
        if (n <= 0) return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

static void serve_echo(struct server *s) {
    unsigned char buf[4096];
    int n;
    while ((n = mbedtls_ssl_read(&s->side.ssl, buf, sizeof buf)) > 0)
        if (!write_all(&s->side.ssl, buf, (size_t)n)) return;
}

static void serve_message(struct server *s) {
    unsigned char buf[256];
    gate_wait(&s->go, 1);
    if (!write_all(&s->side.ssl, (const unsigned char *)s->message, strlen(s->message))) return;
    while (mbedtls_ssl_read(&s->side.ssl, buf, sizeof buf) > 0) {
    }
}

static void serve_sink(struct server *s) {
    static unsigned char buf[16384];
    gate_wait(&s->go, 1);
    int good = 1, n;
    while ((n = mbedtls_ssl_read(&s->side.ssl, buf, sizeof buf)) > 0) {
        for (int i = 0; i < n && good; i++) good = buf[i] == pattern_byte(s->received + (size_t)i);
        s->received += (size_t)n;
        if ((s->received & 0x3ffff) < (size_t)n) sleep_ms(1);
    }
    s->sink_ok = good && s->received == BIG && n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY;
}

static int echo_ok(mbedtls_ssl_context *ssl, const char *msg) {
    size_t len = strlen(msg), got = 0;
    unsigned char buf[256];
    if (!write_all(ssl, (const unsigned char *)msg, len)) return 0;
    while (got < len) {
        int n = mbedtls_ssl_read(ssl, buf + got, sizeof buf - got);
        if (n <= 0) return 0;
        got += (size_t)n;
    }
    return got == len && memcmp(buf, msg, len) == 0;
}

/* ---------------------------------------------------------------- tests */

/* The callbacks on their own: results and errors as mbedtls_net_* give. */
static void test_callbacks(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    rsock_token *tok = rsock_token_new();
    rsock_mbedtls_io io = {tok, sv[0], RSOCK_INFINITE};
    unsigned char buf[16];
    CHECK(rsock_mbedtls_send(&io, (const unsigned char *)"abc", 3) == 3);
    CHECK(recv(sv[1], (char *)buf, sizeof buf, 0) == 3);
    CHECK(send(sv[1], "xyz", 3, 0) == 3);
    CHECK(rsock_mbedtls_recv(&io, buf, sizeof buf) == 3 && memcmp(buf, "xyz", 3) == 0);

    rsock_cancel(tok);
    CHECK_RESULT(rsock_mbedtls_recv(&io, buf, sizeof buf), MBEDTLS_ERR_SSL_WANT_READ, RSOCK_ECANCELED);
    CHECK_RESULT(rsock_mbedtls_recv_timeout(&io, buf, sizeof buf, 10), MBEDTLS_ERR_SSL_WANT_READ, RSOCK_ECANCELED);
    CHECK_RESULT(rsock_mbedtls_send(&io, buf, 1), MBEDTLS_ERR_SSL_WANT_WRITE, RSOCK_ECANCELED);
    rsock_token_reset(tok);

    /* Timeouts: the io's own, Mbed TLS's, the smaller of the two. */
    io.timeout_ms = 30;
    CHECK_RESULT(rsock_mbedtls_recv(&io, buf, sizeof buf), MBEDTLS_ERR_SSL_WANT_READ, RSOCK_ETIMEDOUT);
    CHECK_RESULT(rsock_mbedtls_recv_timeout(&io, buf, sizeof buf, 0), MBEDTLS_ERR_SSL_TIMEOUT, RSOCK_ETIMEDOUT);
    io.timeout_ms = RSOCK_INFINITE;
    double t0 = now_ms();
    CHECK_RESULT(rsock_mbedtls_recv_timeout(&io, buf, sizeof buf, 30), MBEDTLS_ERR_SSL_TIMEOUT, RSOCK_ETIMEDOUT);
    CHECK(now_ms() - t0 >= 25);
    io.timeout_ms = 5000;
    t0 = now_ms();
    CHECK_RESULT(rsock_mbedtls_recv_timeout(&io, buf, sizeof buf, 30), MBEDTLS_ERR_SSL_TIMEOUT, RSOCK_ETIMEDOUT);
    CHECK(now_ms() - t0 < 4000);
    CHECK(rsock_token_set_deadline(tok, 0) == 0);
    CHECK_RESULT(rsock_mbedtls_recv(&io, buf, sizeof buf), MBEDTLS_ERR_SSL_WANT_READ, RSOCK_ETIMEDOUT);
    CHECK(rsock_token_set_deadline(tok, RSOCK_INFINITE) == 0);

    /* NULL token: the thread's own. */
    io.token = NULL;
    rsock_token *mine = rsock_thread_token();
    rsock_cancel(mine);
    CHECK_RESULT(rsock_mbedtls_recv(&io, buf, sizeof buf), MBEDTLS_ERR_SSL_WANT_READ, RSOCK_ECANCELED);
    rsock_token_reset(mine);
    rsock_token_unref(mine);
    io.token = tok;

    /* NULL io, a closed peer, a reset peer. */
    CHECK(rsock_mbedtls_recv(NULL, buf, sizeof buf) == MBEDTLS_ERR_NET_INVALID_CONTEXT);
    CHECK(rsock_mbedtls_send(NULL, buf, 1) == MBEDTLS_ERR_NET_INVALID_CONTEXT);
    shutdown(sv[1], SHUT_WR);
    CHECK(rsock_mbedtls_recv(&io, buf, sizeof buf) == 0);
    struct linger lg = {1, 0};
    setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close_sock(sv[1]);
    sleep_ms(20);
    int r = rsock_mbedtls_send(&io, buf, 1);
    if (r == 1) r = rsock_mbedtls_send(&io, buf, 1);
    CHECK(r == MBEDTLS_ERR_NET_CONN_RESET);
    close_sock(sv[0]);
    rsock_token_unref(tok);
}

/* A handshake and an echo through the adapter, then the peer's close. */
static void test_basics(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    struct server srv;
    server_start(&srv, sv[1], serve_echo);
    rsock_token *tok = rsock_token_new();
    struct client c;
    client_init(&c, tok, sv[0], 5000, 1);
    CHECK(handshake(&c.side.ssl) == 0);
    printf("  negotiated %s\n", mbedtls_ssl_get_version(&c.side.ssl));
    CHECK(mbedtls_ssl_get_verify_result(&c.side.ssl) == 0);
    CHECK(echo_ok(&c.side.ssl, "hello over rsock"));
    CHECK(mbedtls_ssl_close_notify(&c.side.ssl) == 0);
    shutdown(sv[0], SHUT_WR);
    unsigned char buf[16];
    CHECK(mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf) == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
    server_join(&srv);
    CHECK(srv.handshake_ok);
    client_free(&c);
    rsock_token_unref(tok);
}

/* The server stalls in the handshake, before and then in the middle of
   its first record. mode 0: cancel; 1: the io's timeout; 2: Mbed TLS's
   read timeout through rsock_mbedtls_recv_timeout. */
static void handshake_stalled(int mode) {
    struct relay rl;
    rsock_socket cs, ss;
    relay_start(&rl, &cs, &ss, 0);
    struct server srv;
    server_start(&srv, ss, serve_echo);
    rsock_token *tok = rsock_token_new();
    struct client c;
    client_init(&c, tok, cs, mode == 1 ? 100 : RSOCK_INFINITE, mode == 2);
    if (mode == 2) mbedtls_ssl_conf_read_timeout(&c.side.conf, 100);
    int want = mode == 2 ? MBEDTLS_ERR_SSL_TIMEOUT : MBEDTLS_ERR_SSL_WANT_READ;
    int code = mode ? RSOCK_ETIMEDOUT : RSOCK_ECANCELED;

    struct canceller cn;
    if (mode == 0) start_cancel(&cn, tok, 50);
    double t0 = now_ms();
    int r = mbedtls_ssl_handshake(&c.side.ssl);
    CHECK_RESULT(r, want, code);
    if (mode) CHECK(now_ms() - t0 >= 90);
    else join_cancel(&cn);
    CHECK(relay_forwarded(&rl) == 0);

    rsock_token_reset(tok);
    relay_allow(&rl, 45);
    if (mode) {
        while (relay_forwarded(&rl) < 45) sleep_ms(1);
        r = mbedtls_ssl_handshake(&c.side.ssl);
        CHECK_RESULT(r, want, code);
    } else {
        struct drain_cancel dc;
        start_drain_cancel(&dc, &rl, cs, tok, 20);
        r = mbedtls_ssl_handshake(&c.side.ssl);
        CHECK_RESULT(r, want, code);
        join_drain_cancel(&dc);
        CHECK(dc.drained);
    }
    CHECK(pending(cs) == 0);
    CHECK(relay_forwarded(&rl) == 45);

    rsock_token_reset(tok);
    c.io.timeout_ms = RSOCK_INFINITE;
    mbedtls_ssl_conf_read_timeout(&c.side.conf, 0);
    relay_allow(&rl, -1);
    CHECK(handshake(&c.side.ssl) == 0);
    CHECK(mbedtls_ssl_get_verify_result(&c.side.ssl) == 0);
    CHECK(echo_ok(&c.side.ssl, "after a stalled handshake"));
    mbedtls_ssl_close_notify(&c.side.ssl);
    shutdown(cs, SHUT_WR);
    server_join(&srv);
    CHECK(srv.handshake_ok);
    client_free(&c);
    relay_stop(&rl);
    rsock_token_unref(tok);
}

static void test_handshake_cancel(void) { handshake_stalled(0); }
static void test_handshake_timeout(void) { handshake_stalled(1); }
static void test_handshake_read_timeout(void) { handshake_stalled(2); }

/* Half of a record has arrived when the read is stopped: a cancel, the
   io's timeout, Mbed TLS's read timeout, a deadline on the token. Then
   the rest comes and mbedtls_ssl_read returns the whole plaintext. */
static void test_half_record(void) {
    struct relay rl;
    rsock_socket cs, ss;
    relay_start(&rl, &cs, &ss, -1);
    struct server srv;
    server_start(&srv, ss, serve_message);
    static char message[1000];
    for (size_t i = 0; i < sizeof message - 1; i++) message[i] = (char)('a' + i % 26);
    srv.message = message;
    rsock_token *tok = rsock_token_new();
    struct client c;
    client_init(&c, tok, cs, RSOCK_INFINITE, 1);
    CHECK(handshake(&c.side.ssl) == 0);

    long long before = relay_forwarded(&rl);
    relay_allow(&rl, 105);
    gate_set(&srv.go, 1);
    unsigned char buf[4096];
    struct drain_cancel dc;
    start_drain_cancel(&dc, &rl, cs, tok, 20);
    int r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
    CHECK_RESULT(r, MBEDTLS_ERR_SSL_WANT_READ, RSOCK_ECANCELED);
    join_drain_cancel(&dc);
    CHECK(dc.drained);
    CHECK(mbedtls_ssl_get_bytes_avail(&c.side.ssl) == 0);
    rsock_token_reset(tok);

    c.io.timeout_ms = 50;
    r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
    CHECK_RESULT(r, MBEDTLS_ERR_SSL_TIMEOUT, RSOCK_ETIMEDOUT);
    c.io.timeout_ms = RSOCK_INFINITE;
    mbedtls_ssl_conf_read_timeout(&c.side.conf, 50);
    r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
    CHECK_RESULT(r, MBEDTLS_ERR_SSL_TIMEOUT, RSOCK_ETIMEDOUT);
    mbedtls_ssl_conf_read_timeout(&c.side.conf, 0);
    mbedtls_ssl_set_bio(&c.side.ssl, &c.io, rsock_mbedtls_send, rsock_mbedtls_recv, NULL);
    CHECK(rsock_token_set_deadline(tok, 50) == 0);
    r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
    CHECK_RESULT(r, MBEDTLS_ERR_SSL_WANT_READ, RSOCK_ETIMEDOUT);
    CHECK(rsock_token_set_deadline(tok, RSOCK_INFINITE) == 0);
    CHECK(relay_forwarded(&rl) == before + 105);

    relay_allow(&rl, -1);
    r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
    CHECK(r == (int)strlen(message) && memcmp(buf, message, strlen(message)) == 0);
    mbedtls_ssl_close_notify(&c.side.ssl);
    shutdown(cs, SHUT_WR);
    server_join(&srv);
    client_free(&c);
    relay_stop(&rl);
    rsock_token_unref(tok);
}

/* 16 MiB written record by record (mbedtls_ssl_write takes at most one
   record a call) to a reader that stalls, stopped by a cancel or the io's
   timeout; then under a storm of cancels while the reader reads slowly.
   After each retry result the same call is repeated. */
static void big_write(int use_timeout) {
    rsock_socket sv[2];
    tcp_pair(sv);
    small_buffers(sv[0]);
    small_buffers(sv[1]);
    struct server srv;
    server_start(&srv, sv[1], serve_sink);
    rsock_token *tok = rsock_token_new();
    struct client c;
    client_init(&c, tok, sv[0], use_timeout ? 100 : RSOCK_INFINITE, 0);
    CHECK(handshake(&c.side.ssl) == 0);
    unsigned char *data = (unsigned char *)malloc(BIG);
    REQUIRE(data);
    pattern_fill(data, BIG);

    size_t off = 0;
    struct canceller cn;
    if (!use_timeout) start_cancel(&cn, tok, 100);
    int r;
    while ((r = mbedtls_ssl_write(&c.side.ssl, data + off, BIG - off)) > 0) off += (size_t)r;
    CHECK_RESULT(r, MBEDTLS_ERR_SSL_WANT_WRITE, use_timeout ? RSOCK_ETIMEDOUT : RSOCK_ECANCELED);
    if (!use_timeout) join_cancel(&cn);
    CHECK(off < BIG);
    CHECK(srv.received == 0);

    rsock_token_reset(tok);
    c.io.timeout_ms = RSOCK_INFINITE;
    gate_set(&srv.go, 1);
    struct storm st;
    storm_start(&st, tok, 5, rt_scaled(40));
    int retries = 0;
    while (off < BIG) {
        r = mbedtls_ssl_write(&c.side.ssl, data + off, BIG - off);
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        int e = rsock_last_error();
        CHECK(r == MBEDTLS_ERR_SSL_WANT_WRITE && e == RSOCK_ECANCELED);
        if (r != MBEDTLS_ERR_SSL_WANT_WRITE) break;
        rsock_token_reset(tok);
        retries++;
    }
    int cancels = storm_stop(&st);
    printf("  16 MiB written: %d cancels, %d repeated mbedtls_ssl_write calls\n", cancels, retries);
    rsock_token_reset(tok);
    CHECK(off == BIG);
    while ((r = mbedtls_ssl_close_notify(&c.side.ssl)) == MBEDTLS_ERR_SSL_WANT_WRITE) {
    }
    CHECK(r == 0);
    shutdown(sv[0], SHUT_WR);
    server_join(&srv);
    CHECK(srv.sink_ok);
    CHECK(srv.received == BIG);
    client_free(&c);
    free(data);
    rsock_token_unref(tok);
}

static void test_big_write_cancel(void) { big_write(0); }
static void test_big_write_timeout(void) { big_write(1); }

/* rsock_cancel from a signal handler stops mbedtls_ssl_read; other
   signals that interrupt the wait do not. */
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
    server_start(&srv, sv[1], serve_message);
    srv.message = "after the signal";
    signal_token = rsock_token_new();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    struct client c;
    client_init(&c, signal_token, sv[0], RSOCK_INFINITE, 1);
    CHECK(handshake(&c.side.ssl) == 0);

    struct signaller sg = {pthread_self(), 0};
    REQUIRE(pthread_create(&sg.th, NULL, signal_later, &sg) == 0);
    unsigned char buf[64];
    int r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
    CHECK_RESULT(r, MBEDTLS_ERR_SSL_WANT_READ, RSOCK_ECANCELED);
    pthread_join(sg.th, NULL);
    rsock_token_reset(signal_token);
    gate_set(&srv.go, 1);
    r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
    CHECK(r == 16 && memcmp(buf, "after the signal", 16) == 0);
    mbedtls_ssl_close_notify(&c.side.ssl);
    shutdown(sv[0], SHUT_WR);
    server_join(&srv);
    client_free(&c);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    rsock_token_unref(signal_token);
}

/* Eight threads, each with its own connection and a child of one parent
   token, all blocked in mbedtls_ssl_read; one cancel of the parent stops
   them all, and after the reset each carries on. */
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
    struct client c;
    client_init(&c, w->tok, w->fd, RSOCK_INFINITE, 0);
    int ok = handshake(&c.side.ssl) == 0;
    gate_add(&ready, 1);
    if (ok) {
        unsigned char buf[64];
        int r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
        w->stopped_at = now_ms();
        w->cancelled_ok = r == MBEDTLS_ERR_SSL_WANT_READ && rsock_last_error() == RSOCK_ECANCELED;
        gate_add(&stopped, 1);
        gate_wait(&resume, 1);
        rsock_token_reset(w->tok);
        r = mbedtls_ssl_read(&c.side.ssl, buf, sizeof buf);
        w->resumed_ok = r == (int)strlen(w->srv.message) && memcmp(buf, w->srv.message, (size_t)r) == 0;
        mbedtls_ssl_close_notify(&c.side.ssl);
        shutdown(w->fd, SHUT_WR);
    } else {
        gate_add(&stopped, 1);
    }
    client_free(&c);
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
        server_start(&w[i].srv, sv[1], serve_message);
        w[i].srv.message = "carry on";
        REQUIRE(pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0);
    }
    gate_wait(&ready, NTHREADS);
    sleep_ms(50);
    double t0 = now_ms();
    rsock_cancel(parent);
    gate_wait(&stopped, NTHREADS);
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

int main(void) {
    rt_watchdog(240);
    rt_ignore_sigpipe();
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    REQUIRE(psa_crypto_init() == PSA_SUCCESS);
#endif
    /* The headers' version, and the library's (they differ if the
       program picked up another copy's headers or library). */
#ifdef MBEDTLS_VERSION_C
    char linked[18];
    mbedtls_version_get_string(linked);
    printf("Mbed TLS %s (run time %s)\n", MBEDTLS_VERSION_STRING, linked);
#else
    printf("Mbed TLS %s\n", MBEDTLS_VERSION_STRING);
#endif
    make_credentials();
    RUN(test_callbacks);
    RUN(test_basics);
    RUN(test_handshake_cancel);
    RUN(test_handshake_timeout);
    RUN(test_handshake_read_timeout);
    RUN(test_half_record);
    RUN(test_big_write_cancel);
    RUN(test_big_write_timeout);
    RUN(test_signal_cancel);
    RUN(test_many_threads);
    mbedtls_x509_crt_free(&cert);
    mbedtls_pk_free(&key);
    return rt_finish("test_tls_mbedtls");
}

#endif
