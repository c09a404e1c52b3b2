/*
 * jthread_client: a client whose network worker is a std::jthread (C++20).
 * The worker's rsock::token is tied to the jthread's std::stop_token, so
 * request_stop() (or the jthread's destructor) wakes whatever call the
 * worker is blocked in, with nothing lost and no lock taken.
 *
 * The worker connects to a stand-in server (a thread here) that greets it
 * and then never answers. The main thread stops the worker on Ctrl-C or
 * after a timer:  jthread_client [milliseconds]   (default 500).
 */
#include "portable.h" /* what differs on Windows; includes rsock.h */

#include <rsock.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

using namespace std::chrono_literals;

static rsock_token *interrupt; /* cancelled by Ctrl-C */

static void on_sigint(int) { rsock_cancel(interrupt); } /* async-signal-safe */

/* The stand-in server: greets one client, then reads until it goes. */
static void serve(rsock_socket listener) {
    rsock::token tok;
    std::error_code ec;
    rsock_socket s = rsock::accept(tok, listener, 10s, ec);
    if (ec) return;
    rsock::send(tok, s, "hello\n", 6, 10s, MSG_NOSIGNAL, ec);
    char c;
    while (rsock::recv(tok, s, &c, 1, 60s, 0, ec) == 1) {
    }
    closesocket(s);
}

/* Reads a line; false if the call failed (ec says why) or the peer left. */
static bool read_line(const rsock::token &tok, rsock_socket s, std::string &line, std::error_code &ec) {
    line.clear();
    char c;
    while (rsock::recv(tok, s, &c, 1, rsock::infinite, 0, ec) == 1) {
        if (c == '\n') return true;
        line += c;
    }
    return false;
}

static void worker(std::stop_token stop, std::string port) {
    rsock::token tok(stop); /* cancelled when a stop is requested */
    std::error_code ec;
    std::string line;
    const char *step = "connect";
    rsock_socket s = rsock::connect_host(tok, "127.0.0.1", port.c_str(), 5s, SOCK_STREAM, ec);
    if (!ec) {
        step = "recv greeting";
        if (read_line(tok, s, line, ec)) {
            std::printf("worker: server says: %s\n", line.c_str());
            step = "send";
            rsock::send(tok, s, "TIME\n", 5, 5s, MSG_NOSIGNAL, ec);
            if (!ec) {
                std::printf("worker: asked for the time (the server never answers)\n");
                step = "recv reply";
                if (read_line(tok, s, line, ec)) std::printf("worker: got %s\n", line.c_str());
            }
        }
        closesocket(s);
    }
    if (ec == std::errc::operation_canceled)
        std::printf("worker: stopped in %s\n", step);
    else if (ec)
        std::printf("worker: %s failed: %s\n", step, ec.message().c_str());
}

int main(int argc, char **argv) {
    int ms = argc > 1 ? std::atoi(argv[1]) : 500;
    stdout_by_line();
    ignore_sigpipe();
    if (sockets_start() != 0) return 1;
    rsock::token ctrl_c;
    interrupt = ctrl_c.native();
    catch_signal(SIGINT, on_sigint);

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    rsock_socket listener = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        std::printf("server: %s\n", rsock_strerror(rsock_last_error()));
        return 1;
    }
    std::thread server(serve, listener);

    {
        std::jthread net(worker, std::to_string(ntohs(addr.sin_port)));
        /* A cancellable sleep: Ctrl-C cancels it, else the timer ends it. */
        std::error_code ec;
        rsock::poll(ctrl_c, nullptr, 0, std::chrono::milliseconds(ms), ec);
        if (ec == std::errc::operation_canceled)
            std::printf("main: Ctrl-C, stopping the worker\n");
        else
            std::printf("main: %d ms passed, stopping the worker\n", ms);
        net.request_stop(); /* the jthread's destructor would too */
    }
    std::printf("main: worker finished cleanly\n");

    server.join();
    closesocket(listener);
    catch_signal(SIGINT, SIG_DFL);
    sockets_stop();
    return 0;
}
