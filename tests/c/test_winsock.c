/* rsock_winsock.h: Winsock 1.1 blocking-hook code, compiled through the
   compatibility header with the call redirection on, behaves as under
   Winsock 1.1 (and leaves sockets usable after a cancel). */
#include "rtest.h"

#define RSOCK_WINSOCK_REDIRECT_CALLS
#include "rsock_winsock.h"

static int frames, cancel_at_frame, blocking_seen, set_hook_result_null, set_hook_error,
    unhook_result, unhook_error, nested_recv_result, nested_recv_error;
static rsock_socket nested_sock = RSOCK_INVALID_SOCKET;

/* A hook as FARPROC. Win64's FARPROC returns INT_PTR, and -Wextra
   (-Wcast-function-type) accepts the cast only through void (*)(void). */
#define HOOK(f) ((FARPROC)(void (*)(void))(f))

/* A Winsock 1.1 hook: BOOL, no arguments, "pumps the UI". */
static BOOL ui_hook(void) {
    frames++;
    blocking_seen = WSAIsBlocking();
    if (sock_ok(nested_sock)) {
        char c;
        nested_recv_result = (int)recv(nested_sock, &c, 1, 0);
        nested_recv_error = WSAGetLastError();
        FARPROC r = WSASetBlockingHook(HOOK(ui_hook));
        set_hook_result_null = r == NULL;
        set_hook_error = WSAGetLastError();
        unhook_result = WSAUnhookBlockingHook();
        unhook_error = WSAGetLastError();
    }
    if (frames == cancel_at_frame) CHECK(WSACancelBlockingCall() == 0);
    return FALSE;
}

static void previous_hook_round_trips(void) {
    /* No hook yet: Winsock 1.1 returned its default hook, never NULL. */
    FARPROC old = WSASetBlockingHook(HOOK(ui_hook));
    CHECK(old != NULL);
    CHECK(WSASetBlockingHook(old) == HOOK(ui_hook));
    /* Restoring the "default" means no hook at all. */
    CHECK(rsock_set_blocking_hook(NULL) == NULL);
    CHECK(WSASetBlockingHook(HOOK(ui_hook)) == old);
    CHECK(WSAUnhookBlockingHook() == 0);
    CHECK(rsock_set_blocking_hook(NULL) == NULL);
}

static void cancel_from_hook_gives_wsaeintr(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    frames = 0;
    cancel_at_frame = 4;
    WSASetBlockingHook(HOOK(ui_hook));
    char buf[8];
    int n = (int)recv(sv[0], buf, sizeof buf, 0); /* rsock_recv with the hook */
    CHECK(n == SOCKET_ERROR && WSAGetLastError() == WSAEINTR);
    CHECK(frames == 4);
    CHECK(blocking_seen == TRUE && WSAIsBlocking() == FALSE);
    /* Unlike Winsock 1.1 the socket is still usable, and nothing was lost. */
    CHECK((send)(sv[1], "ab", 2, 0) == 2);
    CHECK(recv(sv[0], buf, 2, 0) == 2 && memcmp(buf, "ab", 2) == 0);
    /* Nothing outstanding now. */
    CHECK(WSACancelBlockingCall() == SOCKET_ERROR && WSAGetLastError() == WSAEINVAL);
    CHECK(WSAUnhookBlockingHook() == 0);
    frames = 0;
#ifdef MSG_DONTWAIT
    CHECK(recv(sv[0], buf, 1, MSG_DONTWAIT) == -1);
#else
    CHECK_ERR(rsock_recv(NULL, sv[0], buf, 1, 0, 20), RSOCK_ETIMEDOUT); /* it waits, unhooked */
#endif
    CHECK(frames == 0);
    close_pair(sv);
}

static void calls_inside_the_hook_fail_in_progress(void) {
    rsock_socket sv[2], other[2];
    unix_pair(sv);
    unix_pair(other);
    CHECK((send)(other[1], "z", 1, 0) == 1); /* the nested recv could succeed */
    nested_sock = other[0];
    frames = 0;
    cancel_at_frame = 1;
    WSASetBlockingHook(HOOK(ui_hook));
    char c;
    CHECK(recv(sv[0], &c, 1, 0) == SOCKET_ERROR && WSAGetLastError() == WSAEINTR);
    nested_sock = RSOCK_INVALID_SOCKET;
    CHECK(nested_recv_result == SOCKET_ERROR && nested_recv_error == WSAEINPROGRESS);
    CHECK(set_hook_result_null && set_hook_error == WSAEINPROGRESS);
    CHECK(unhook_result == SOCKET_ERROR && unhook_error == WSAEINPROGRESS);
    CHECK(pending(other[0]) == 1); /* the nested call consumed nothing */
    CHECK(rsock_set_blocking_hook(NULL) == (rsock_blocking_hook)ui_hook); /* still installed */
    close_pair(sv);
    close_pair(other);
}

/* accept, connect, sendto and recvfrom go through rsock too. */
static void redirected_calls_wait_with_the_hook(void) {
    struct sockaddr_in addr;
    rsock_socket lst = tcp_listener(4, &addr);
    WSASetBlockingHook(HOOK(ui_hook));
    frames = 0;
    cancel_at_frame = 2;
    CHECK(accept(lst, NULL, NULL) == RSOCK_INVALID_SOCKET && WSAGetLastError() == WSAEINTR);
    CHECK(frames == 2);

    rsock_socket c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&addr, sizeof addr) == 0);
    rsock_socket s = accept(lst, NULL, NULL);
    CHECK(sock_ok(s));
    CHECK_MODE(s, 0);
    CHECK(send(c, "hi", 2, 0) == 2);
    char buf[4];
    CHECK(recv(s, buf, sizeof buf, MSG_WAITALL | MSG_PEEK) == 2);
    close_sock(c);
    close_sock(s);
    close_sock(lst);

    struct sockaddr_in ua;
    rsock_socket u = udp_bound(&ua);
    frames = 0;
    cancel_at_frame = 3;
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    CHECK(recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) == SOCKET_ERROR &&
          WSAGetLastError() == WSAEINTR);
    CHECK(frames == 3);
    CHECK(sendto(u, "d", 1, 0, (struct sockaddr *)&ua, sizeof ua) == 1);
    fl = sizeof from;
    CHECK(recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) == 1 && buf[0] == 'd');
    CHECK(fl == sizeof from && from.sin_port == ua.sin_port);
    close_sock(u);
    WSAUnhookBlockingHook();
}

/* As in Winsock 1.1, a hook that returns TRUE ("I handled a message") is
   called again at once, until it returns FALSE. */
static int pump_pending, pump_calls;
static BOOL pumping_hook(void) {
    pump_calls++;
    if (pump_pending > 0) {
        pump_pending--;
        return TRUE;
    }
    if (pump_calls > 20) WSACancelBlockingCall();
    return FALSE;
}

static void hook_runs_again_while_it_returns_true(void) {
    rsock_socket sv[2];
    unix_pair(sv);
    pump_pending = 30; /* 30 queued messages, handled in one go */
    pump_calls = 0;
    WSASetBlockingHook(HOOK(pumping_hook));
    char c;
    double t0 = now_ms();
    CHECK(recv(sv[0], &c, 1, 0) == SOCKET_ERROR && WSAGetLastError() == WSAEINTR);
    /* 31 calls in the first round, the cancel at once: no 10 ms rounds. */
    CHECK(pump_calls == 31);
    CHECK(now_ms() - t0 < 1000);
    WSAUnhookBlockingHook();
    close_pair(sv);
}

int main(void) {
    rt_watchdog(60);
    RUN(previous_hook_round_trips);
    RUN(cancel_from_hook_gives_wsaeintr);
    RUN(calls_inside_the_hook_fail_in_progress);
    RUN(redirected_calls_wait_with_the_hook);
    RUN(hook_runs_again_while_it_returns_true);
    return rt_finish("test_winsock");
}
