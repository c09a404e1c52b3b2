// The TLS adapter headers must compile on their own as C++ (each built
// only where its library is found: RSOCK_CHECK_OPENSSL, RSOCK_CHECK_MBEDTLS).
#ifdef RSOCK_CHECK_OPENSSL
#include "rsock_openssl.h"
int rsock_openssl_alone_cxx();
int rsock_openssl_alone_cxx() {
    BIO *b = rsock_bio_new(nullptr, RSOCK_INVALID_SOCKET, BIO_NOCLOSE, RSOCK_INFINITE);
    int r = rsock_bio_set_token(b, nullptr) + rsock_bio_set_timeout(b, 0);
    BIO_free(b);
    return r;
}
#endif
#ifdef RSOCK_CHECK_MBEDTLS
#include "rsock_mbedtls.h"
int rsock_mbedtls_alone_cxx();
int rsock_mbedtls_alone_cxx() {
    rsock_mbedtls_io io = {nullptr, RSOCK_INVALID_SOCKET, RSOCK_INFINITE};
    mbedtls_ssl_send_t *send_cb = rsock_mbedtls_send;
    mbedtls_ssl_recv_timeout_t *recv_cb = rsock_mbedtls_recv_timeout;
    return (send_cb != nullptr) + (recv_cb != nullptr) + io.timeout_ms;
}
#endif
