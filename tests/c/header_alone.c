/* rsock.h must compile on its own, first, with no other include. */
#include "rsock.h"

int rsock_header_alone(void);
int rsock_header_alone(void) {
    rsock_token *t = rsock_token_new();
    rsock_pollfd p;
    rsock_socket s = RSOCK_INVALID_SOCKET;
    p.fd = s;
    p.events = 0;
    rsock_token_unref(t);
    return RSOCK_ECANCELED + RSOCK_ETIMEDOUT + RSOCK_EINPROGRESS + RSOCK_READABLE + RSOCK_WRITABLE +
           RSOCK_INFINITE + (int)p.events;
}
