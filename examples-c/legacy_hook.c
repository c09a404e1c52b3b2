/*
 * legacy_hook: a Winsock 1.1-style client. Its blocking hook keeps the "UI"
 * running while a call waits, and cancels the call when the user asks.
 *
 * The client is written as for Winsock 1.1: WSASetBlockingHook,
 * WSACancelBlockingCall, WSAEINTR and plain connect/send/recv. It compiles
 * unchanged because it includes rsock_winsock.h, with
 * RSOCK_WINSOCK_REDIRECT_CALLS so that those calls wait through rsock (with
 * the calling thread's token) and run the hook while they wait. On Windows
 * it starts Winsock itself, as it always did; on POSIX, portable.h (through
 * demo_server.h) supplies closesocket.
 *
 * The user is simulated: they press Cancel on the 5th UI frame.
 */
#define _POSIX_C_SOURCE 200809L
#include "demo_server.h" /* a stand-in server on a thread */

#include <stdio.h>

#define RSOCK_WINSOCK_REDIRECT_CALLS
#include <rsock_winsock.h>

#define CANCEL_AT_FRAME 5

static int ui_frames;

/* The blocking hook, called while a call waits (at least every 10 ms). A
   real one pumps window messages; this one draws a frame and sees whether
   the user pressed Cancel. */
static BOOL ui_hook(void) {
    ui_frames++;
    printf("  ui frame %d\n", ui_frames);
    if (ui_frames == CANCEL_AT_FRAME) {
        printf("  user pressed Cancel\n");
        WSACancelBlockingCall(); /* the waiting call fails with WSAEINTR */
    }
    return FALSE;
}

/* Reads one line; SOCKET_ERROR (see WSAGetLastError) or 0 at end of stream. */
static int read_line(rsock_socket s, char *line, int size) {
    int n = 0;
    while (n + 1 < size) {
        int r = recv(s, &line[n], 1, 0);
        if (r <= 0) return r;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    return 1;
}

int main(void) {
#ifdef _WIN32
    /* First, as before (a 1.1 program asked for 1.1; with winsock2.h, 2.2). */
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
        printf("WSAStartup failed\n");
        return 1;
    }
#endif
    struct demo_server server;
    if (demo_server_start(&server) != 0) {
        printf("demo server: %s\n", rsock_strerror(WSAGetLastError()));
        return 1;
    }
    stdout_by_line();

    char line[64];
    rsock_socket s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&server.addr, sizeof server.addr) == SOCKET_ERROR ||
        read_line(s, line, sizeof line) <= 0) {
        printf("cannot talk to the server: %s\n", rsock_strerror(WSAGetLastError()));
        return 1;
    }
    printf("server: %s\n", line);

    /* The cast goes through void (*)(void): Win64's FARPROC returns INT_PTR,
       and GCC warns about a direct cast from a BOOL function. */
    FARPROC old_hook = WSASetBlockingHook((FARPROC)(void (*)(void))ui_hook);
    printf("asking for the time (the server never answers)\n");
    send(s, "TIME\n", 5, 0);
    int r = read_line(s, line, sizeof line);
    int cancelled = r == SOCKET_ERROR && WSAGetLastError() == WSAEINTR;
    if (cancelled)
        printf("recv failed with WSAEINTR after %d ui frames: cancelled\n", ui_frames);
    else
        printf("unexpected: read_line returned %d (%s)\n", r, rsock_strerror(WSAGetLastError()));
    WSASetBlockingHook(old_hook);

    /* Winsock 1.1 allowed only closesocket() after a cancelled recv. With
       rsock the socket is still usable and nothing was lost. */
    send(s, "QUIT\n", 5, 0);
    if (read_line(s, line, sizeof line) > 0) printf("server: %s\n", line);
    closesocket(s);
    demo_server_stop(&server);
#ifdef _WIN32
    WSACleanup();
#endif
    return cancelled ? 0 : 1;
}
