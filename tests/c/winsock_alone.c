/* rsock_winsock.h must compile on its own, first, as C99 with -pedantic. */
#define RSOCK_WINSOCK_REDIRECT_CALLS
#include "rsock_winsock.h"

static BOOL old_style_hook(void) { return FALSE; }

int rsock_winsock_alone(void);
int rsock_winsock_alone(void) {
    /* Through void (*)(void): Windows declares FARPROC as returning INT_PTR. */
    FARPROC previous = WSASetBlockingHook((FARPROC)(void (*)(void))old_style_hook);
    int r = WSAIsBlocking() + WSACancelBlockingCall() + WSAUnhookBlockingHook();
    WSASetBlockingHook(previous);
    if (r == SOCKET_ERROR) return WSAGetLastError();
    return WSAEINTR + WSAEINPROGRESS + WSAEINVAL + TRUE;
}
