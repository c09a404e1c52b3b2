/* Smallest useful program against an installed rsock: a cancelled token
   makes a receive fail at once with RSOCK_ECANCELED. */
#include <rsock.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 2;
    rsock_token *t = rsock_token_new();
    rsock_cancel(t);
    char c;
    long r = rsock_recv(t, sv[0], &c, 1, 0, RSOCK_INFINITE);
    int ok = r == -1 && rsock_last_error() == RSOCK_ECANCELED;
    printf("consumer: %s\n", ok ? "cancelled as expected" : "unexpected result");
    rsock_token_unref(t);
    close(sv[0]);
    close(sv[1]);
    return ok ? 0 : 1;
}
