/* rsock_mbedtls.h must compile on its own, first, as C99 with -pedantic
   (built only where Mbed TLS is found). */
#include "rsock_mbedtls.h"

int rsock_mbedtls_alone(void);
int rsock_mbedtls_alone(void) {
    rsock_mbedtls_io io = {NULL, RSOCK_INVALID_SOCKET, RSOCK_INFINITE};
    mbedtls_ssl_send_t *send_cb = rsock_mbedtls_send;
    mbedtls_ssl_recv_t *recv_cb = rsock_mbedtls_recv;
    mbedtls_ssl_recv_timeout_t *recv_timeout_cb = rsock_mbedtls_recv_timeout;
    return (send_cb != NULL) + (recv_cb != NULL) + (recv_timeout_cb != NULL) + io.timeout_ms;
}
