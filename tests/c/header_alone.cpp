// rsock.h must compile on its own as C++ (extern "C" linkage included), and
// rsock_winsock.h after it.
#include "rsock.h"
#include "rsock_winsock.h"

int rsock_header_alone_cxx();
int rsock_header_alone_cxx() {
    rsock_token *t = rsock_token_new();
    rsock_blocking_hook previous = rsock_set_blocking_hook(nullptr);
    rsock_set_blocking_hook(previous);
    rsock_token_unref(t);
    FARPROC old = WSASetBlockingHook(nullptr);
    WSASetBlockingHook(old);
    return RSOCK_ECANCELED + WSAIsBlocking();
}
