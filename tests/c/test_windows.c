/* Windows-only behaviour: the blocking hook runs when a window message
   arrives, and what the calls do to a socket's blocking mode (which
   Windows cannot report, so rsock restores blocking mode where it had to
   change it). Elsewhere this program only says it skipped. */
#include "rtest.h"

#ifdef _WIN32
#include <windows.h>

/* Whether `s` is in blocking mode, read the only way Windows allows: a
   receive with a short SO_RCVTIMEO times out on a blocking socket and
   fails with WSAEWOULDBLOCK at once on a non-blocking one. Needs an empty
   receive queue. */
static int blocking_mode(SOCKET s) {
    DWORD ms = 30, none = 0;
    char c;
    REQUIRE(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms) == 0);
    int r = recv(s, &c, 1, 0);
    int e = WSAGetLastError();
    REQUIRE(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&none, sizeof none) == 0);
    REQUIRE(r == SOCKET_ERROR && (e == WSAETIMEDOUT || e == WSAEWOULDBLOCK));
    return e == WSAETIMEDOUT;
}

/* The same for a listener: a plain accept with nothing pending fails at
   once if it is non-blocking; if it blocks, a connection made 300 ms later
   ends it. */
struct late_connect {
    struct sockaddr_in to;
};

static DWORD WINAPI connect_late(void *arg) {
    struct late_connect *lc = (struct late_connect *)arg;
    Sleep(300);
    SOCKET c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (struct sockaddr *)&lc->to, sizeof lc->to);
    Sleep(50);
    closesocket(c);
    return 0;
}

static int listener_blocking(SOCKET l, struct sockaddr_in to) {
    struct late_connect lc = {to};
    HANDLE th = CreateThread(NULL, 0, connect_late, &lc, 0, NULL);
    REQUIRE(th != NULL);
    SOCKET s = accept(l, NULL, NULL);
    int e = WSAGetLastError();
    WaitForSingleObject(th, INFINITE);
    CloseHandle(th);
    if (s != INVALID_SOCKET) closesocket(s);
    REQUIRE(s != INVALID_SOCKET || e == WSAEWOULDBLOCK);
    if (s == INVALID_SOCKET) { /* take the late connection off the queue */
        fd_set r;
        FD_ZERO(&r);
        FD_SET(l, &r);
        struct timeval tv = {2, 0};
        if (select(0, &r, NULL, NULL, &tv) == 1) closesocket(accept(l, NULL, NULL));
    }
    return s != INVALID_SOCKET;
}

static void set_mode(SOCKET s, int nonblocking) {
    u_long on = (u_long)nonblocking;
    REQUIRE(ioctlsocket(s, FIONBIO, &on) == 0);
}

/* ---- the hook and window messages */

#define MESSAGES 300
static volatile LONG seen;   /* messages the hook removed from the queue */
static volatile LONG hook_calls;

static int CALLBACK pump_hook(void) {
    MSG m;
    InterlockedIncrement(&hook_calls);
    while (PeekMessage(&m, NULL, 0, 0, PM_REMOVE))
        if (m.message == WM_APP) InterlockedIncrement(&seen);
    return 0;
}

struct poster {
    DWORD target;
    rsock_token *tok;
    int posted;
};

/* Posts MESSAGES thread messages one at a time, each after the hook has
   taken the previous one, then cancels the call. */
static DWORD WINAPI post_messages(void *arg) {
    struct poster *p = (struct poster *)arg;
    for (int k = 0; k < MESSAGES; k++) {
        if (!PostThreadMessage(p->target, WM_APP, (WPARAM)k, 0)) break;
        p->posted++;
        double give_up = now_ms() + 5000;
        while (seen <= k && now_ms() < give_up) Sleep(0);
        if (seen <= k) break;
    }
    rsock_cancel(p->tok);
    return 0;
}

/* The hook runs as soon as a message arrives, not only every 10 ms: 300
   messages handled one after another take far less than the 1 s timeout
   (at the 10 ms interval alone they would take about 1.5 s). */
static void hook_runs_when_a_message_arrives(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    MSG m;
    PeekMessage(&m, NULL, 0, 0, PM_NOREMOVE); /* gives this thread a queue */
    rsock_token *t = rsock_token_new();
    struct poster p = {GetCurrentThreadId(), t, 0};
    seen = 0;
    hook_calls = 0;
    rsock_set_blocking_hook(pump_hook);
    HANDLE th = CreateThread(NULL, 0, post_messages, &p, 0, NULL);
    REQUIRE(th != NULL);
    double t0 = now_ms();
    CHECK_ERR(rsock_block(t, sv[0], RSOCK_READABLE, 1000), RSOCK_ECANCELED);
    double took = now_ms() - t0;
    WaitForSingleObject(th, INFINITE);
    CloseHandle(th);
    rsock_unhook_blocking_hook();
    CHECK(p.posted == MESSAGES);
    CHECK(seen == MESSAGES);
    CHECK(took < 1000);
    printf("  %d messages handled by the hook in %.0f ms (%ld hook calls)\n", (int)seen, took,
           (long)hook_calls);
    rsock_token_unref(t);
    closesocket(sv[0]);
    closesocket(sv[1]);
}

/* A hook that leaves a message in the queue is not called over and over
   for it: 300 ms of waiting calls it about every 10 ms (without the care
   in poll_hooked, Wine ended every wait at once: 420 calls). */
static volatile LONG lazy_calls;
static int CALLBACK lazy_hook(void) {
    InterlockedIncrement(&lazy_calls);
    return 0;
}

static void a_message_left_queued_does_not_spin(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    MSG m;
    PeekMessage(&m, NULL, 0, 0, PM_NOREMOVE);
    REQUIRE(PostThreadMessage(GetCurrentThreadId(), WM_APP, 0, 0));
    lazy_calls = 0;
    rsock_set_blocking_hook(lazy_hook);
    char buf[4];
    CHECK_ERR(rsock_recv(NULL, sv[0], buf, sizeof buf, 0, 300), RSOCK_ETIMEDOUT);
    rsock_unhook_blocking_hook();
    CHECK(lazy_calls >= 2 && lazy_calls <= 90);
    printf("  %ld hook calls in 300 ms with a message left queued\n", (long)lazy_calls);
    while (PeekMessage(&m, NULL, 0, 0, PM_REMOVE)) {
    }
    closesocket(sv[0]);
    closesocket(sv[1]);
}

/* With a hook, a call still completes when data arrives and is cancelled
   from the hook; the socket is left in blocking mode (WSAEventSelect made
   it non-blocking while the call waited). */
static int cancel_from_hook_after;
static int CALLBACK cancelling_hook(void) {
    if (--cancel_from_hook_after == 0) rsock_cancel_blocking_call();
    return 0;
}

static void hook_calls_leave_the_socket_blocking(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    char buf[8];
    cancel_from_hook_after = 3;
    rsock_set_blocking_hook(cancelling_hook);
    set_mode(sv[0], 1);
    CHECK_ERR(rsock_recv(NULL, sv[0], buf, sizeof buf, 0, 5000), RSOCK_ECANCELED);
    rsock_unhook_blocking_hook();
    CHECK(blocking_mode(sv[0]));
    /* Nothing was consumed, and the socket still works. */
    CHECK(send(sv[1], "hi", 2, 0) == 2);
    CHECK(rsock_recv(NULL, sv[0], buf, sizeof buf, 0, 5000) == 2);
    closesocket(sv[0]);
    closesocket(sv[1]);
}

/* ---- blocking mode without a hook */

static void modes_on_windows(void) {
    rsock_token *t = rsock_token_new();
    rsock_socket sv[2];
    tcp_pair(sv);
    char buf[8];

    /* Receives only look at readiness: the mode stays as it was. */
    set_mode(sv[0], 1);
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, 20), RSOCK_ETIMEDOUT);
    CHECK(!blocking_mode(sv[0]));
    CHECK(send(sv[1], "a", 1, 0) == 1);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, 1000) == 1);
    CHECK(!blocking_mode(sv[0]));
    set_mode(sv[0], 0);
    CHECK(send(sv[1], "b", 1, 0) == 1);
    CHECK(rsock_recv(t, sv[0], buf, sizeof buf, 0, 1000) == 1);
    CHECK(blocking_mode(sv[0]));
    CHECK(rsock_block(t, sv[0], RSOCK_WRITABLE, 1000) == RSOCK_WRITABLE);
    CHECK(blocking_mode(sv[0]));

    /* Sends switch to non-blocking for each attempt and leave the socket
       blocking, the one mode they can restore without reading it. */
    CHECK(rsock_send(t, sv[0], "c", 1, 0, 1000) == 1);
    CHECK(blocking_mode(sv[0]));
    set_mode(sv[0], 1);
    CHECK(rsock_send(t, sv[0], "d", 1, 0, 1000) == 1);
    CHECK(blocking_mode(sv[0]));
    CHECK(rsock_recv(t, sv[1], buf, 2, MSG_WAITALL, 1000) == 2 && memcmp(buf, "cd", 2) == 0);

    /* An accepted socket is blocking even from a non-blocking listener. */
    SOCKET l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int len = sizeof a;
    REQUIRE(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 4) == 0);
    REQUIRE(getsockname(l, (struct sockaddr *)&a, &len) == 0);
    set_mode(l, 1);
    SOCKET c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(rsock_connect(t, c, (struct sockaddr *)&a, sizeof a, 2000) == 0);
    CHECK(blocking_mode(c));
    SOCKET s = rsock_accept(t, l, NULL, NULL, 2000);
    CHECK(s != INVALID_SOCKET);
    if (s != INVALID_SOCKET) {
        CHECK(blocking_mode(s));
        closesocket(s);
    }
    CHECK(!listener_blocking(l, a));
    set_mode(l, 0);
    CHECK(rsock_accept(t, l, NULL, NULL, 20) == INVALID_SOCKET);
    CHECK(listener_blocking(l, a));
    closesocket(c);
    closesocket(l);
    closesocket(sv[0]);
    closesocket(sv[1]);
    rsock_token_unref(t);
}

/* Two threads on one socket at once, one receiving and one sending (which
   WSAEventSelect could not do: a socket has one event selection): both
   complete, and a cancel still wakes the receiver. */
struct sender {
    SOCKET s;
    int sent;
};

static DWORD WINAPI send_loop(void *arg) {
    struct sender *x = (struct sender *)arg;
    static char block[1 << 16];
    for (int i = 0; i < 64; i++) {
        intptr_t n = rsock_send(NULL, x->s, block, sizeof block, 0, 10000);
        if (n != (intptr_t)sizeof block) break;
        x->sent += (int)n;
    }
    return 0;
}

static void receive_and_send_on_one_socket(void) {
    rsock_socket sv[2];
    tcp_pair(sv);
    struct sender x = {sv[0], 0};
    HANDLE th = CreateThread(NULL, 0, send_loop, &x, 0, NULL);
    REQUIRE(th != NULL);
    rsock_token *t = rsock_token_new();
    /* sv[0] also receives: nothing comes, and the cancel below ends it. */
    struct canceller c;
    start_cancel(&c, t, 200);
    char buf[8];
    CHECK_ERR(rsock_recv(t, sv[0], buf, sizeof buf, 0, 10000), RSOCK_ECANCELED);
    join_cancel(&c);
    /* Meanwhile the other side drains what the sender sends. */
    static char sink[1 << 16];
    long got = 0;
    while (got < 64L << 16) {
        intptr_t n = rsock_recv(NULL, sv[1], sink, sizeof sink, 0, 10000);
        if (n <= 0) break;
        got += (long)n;
    }
    WaitForSingleObject(th, INFINITE);
    CloseHandle(th);
    CHECK(x.sent == 64 << 16);
    CHECK(got == 64L << 16);
    rsock_token_unref(t);
    closesocket(sv[0]);
    closesocket(sv[1]);
}

/* A thread waiting with a hook on a socket while another sends on it:
   the hook wait's clean-up (back to blocking mode) must not land inside
   the sender's non-blocking attempt, or the sender blocks in send() where
   no cancel reaches it. The peer reads nothing, so every send is one
   attempt that times out at once; then the sender's token is cancelled. */
static rsock_socket race_sv[2];
static volatile LONG race_stop, race_sends;
static rsock_token *race_tok;

static int CALLBACK idle_hook(void) { return 0; }

static DWORD WINAPI hooked_poller(void *arg) {
    (void)arg;
    rsock_token *t = rsock_token_new();
    rsock_set_blocking_hook(idle_hook);
    while (!race_stop) rsock_block(t, race_sv[0], RSOCK_READABLE, 0);
    rsock_unhook_blocking_hook();
    rsock_token_unref(t);
    return 0;
}

static DWORD WINAPI busy_sender(void *arg) {
    (void)arg;
    static char block[1 << 20];
    for (;;) {
        intptr_t n = rsock_send(race_tok, race_sv[0], block, sizeof block, 0, 0);
        InterlockedIncrement(&race_sends);
        if (n < 0 && rsock_last_error() == RSOCK_ECANCELED) return 0;
    }
}

static void hook_waits_do_not_block_a_sender(void) {
    tcp_pair(race_sv);
    race_tok = rsock_token_new();
    race_stop = 0;
    race_sends = 0;
    HANDLE h = CreateThread(NULL, 0, hooked_poller, NULL, 0, NULL);
    HANDLE s = CreateThread(NULL, 0, busy_sender, NULL, 0, NULL);
    REQUIRE(h != NULL && s != NULL);
    Sleep(500);
    rsock_cancel(race_tok);
    DWORD w = WaitForSingleObject(s, 3000);
    CHECK(w == WAIT_OBJECT_0); /* else the sender is stuck inside send() */
    race_stop = 1;
    WaitForSingleObject(h, INFINITE);
    printf("  %ld sends beside a hooked wait; the cancel %s\n", (long)race_sends,
           w == WAIT_OBJECT_0 ? "ended them" : "did NOT end them");
    CloseHandle(h);
    if (w != WAIT_OBJECT_0) return; /* leave the stuck thread and its sockets */
    CloseHandle(s);
    closesocket(race_sv[0]);
    closesocket(race_sv[1]);
    rsock_token_unref(race_tok);
}

int main(void) {
    rt_watchdog(60);
    RUN(hook_runs_when_a_message_arrives);
    RUN(a_message_left_queued_does_not_spin);
    RUN(hook_calls_leave_the_socket_blocking);
    RUN(modes_on_windows);
    RUN(receive_and_send_on_one_socket);
    RUN(hook_waits_do_not_block_a_sender);
    return rt_finish("test_windows");
}

#else

int main(void) {
    printf("skip test_windows: Windows-only behaviour (window messages, Winsock modes)\n");
    return 0;
}

#endif
