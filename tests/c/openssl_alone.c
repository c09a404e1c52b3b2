/* rsock_openssl.h must compile on its own, first, as C99 with -pedantic
   (built only where OpenSSL is found). */
#include "rsock_openssl.h"

int rsock_openssl_alone(void);
int rsock_openssl_alone(void) {
    BIO *b = rsock_bio_new(NULL, RSOCK_INVALID_SOCKET, BIO_NOCLOSE, RSOCK_INFINITE);
    int r = rsock_bio_set_token(b, NULL) + rsock_bio_set_timeout(b, 0);
    BIO_free(b);
    return r + (rsock_bio_method() != NULL);
}
