/* rsock_openssl.h against an installed rsock, linked through
   rsock::openssl: a cancelled token makes a BIO read a retry, with
   RSOCK_ECANCELED. */
#include <rsock_openssl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 2;
    rsock_token *t = rsock_token_new();
    BIO *b = rsock_bio_new(t, sv[0], BIO_CLOSE, RSOCK_INFINITE);
    rsock_cancel(t);
    char c;
    int ok = b && BIO_read(b, &c, 1) == -1 && BIO_should_retry(b) && rsock_last_error() == RSOCK_ECANCELED;
    printf("consumer_openssl: %s\n", ok ? "cancelled as expected" : "unexpected result");
    BIO_free(b);
    rsock_token_unref(t);
    close(sv[1]);
    return ok ? 0 : 1;
}
