// A tiny harness and socket helpers for the C++ tests (POSIX and Windows).
#ifndef CPPTEST_HPP
#define CPPTEST_HPP

#include "rsock.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <unistd.h>
#endif

namespace cpptest {

inline int failures = 0;
inline int checks = 0;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        ++cpptest::checks;                                                                                             \
        if (!(cond)) {                                                                                                 \
            ++cpptest::failures;                                                                                       \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                             \
        }                                                                                                              \
    } while (0)

#define REQUIRE(cond)                                                                                                  \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            std::fprintf(stderr, "%s:%d: required: %s\n", __FILE__, __LINE__, #cond);                                 \
            std::exit(2);                                                                                              \
        }                                                                                                              \
    } while (0)

#define RUN(fn)                                                                                                        \
    do {                                                                                                               \
        const char *only = std::getenv("RSOCK_TEST_ONLY");                                                             \
        if (only && std::strcmp(only, #fn) != 0) break;                                                                \
        int before = cpptest::failures;                                                                                \
        fn();                                                                                                          \
        std::printf("%s %s\n", cpptest::failures == before ? "ok  " : "FAIL", #fn);                                   \
        std::fflush(stdout);                                                                                           \
    } while (0)

inline int finish(const char *suite) {
    std::printf("%s: %d checks, %d failed\n", suite, checks, failures);
    return failures ? 1 : 0;
}

/* Starts Winsock (Windows) and a watchdog that ends a hung test. */
inline void start(unsigned seconds) {
#ifdef _WIN32
    WSADATA d;
    REQUIRE(WSAStartup(MAKEWORD(2, 2), &d) == 0);
#else
    signal(SIGPIPE, SIG_IGN);
#endif
    std::thread([seconds] {
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        std::fprintf(stderr, "watchdog: a test hung (lost wake-up?)\n");
        std::_Exit(3);
    }).detach();
}

inline void close_sock(rsock_socket s) {
#ifdef _WIN32
    closesocket(s);
#else
    close(s);
#endif
}

/* A TCP listener on loopback; its address in `a`. */
inline rsock_socket listener(sockaddr_in &a, int backlog = 4) {
    rsock_socket l = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(l != RSOCK_INVALID_SOCKET);
    std::memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(l, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    REQUIRE(listen(l, backlog) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(l, reinterpret_cast<sockaddr *>(&a), &len) == 0);
    return l;
}

/* A connected TCP pair: s[0] client, s[1] server side. */
struct pair {
    rsock_socket s[2];
    pair() {
        sockaddr_in a;
        rsock_socket l = listener(a);
        s[0] = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(s[0] != RSOCK_INVALID_SOCKET);
        REQUIRE(::connect(s[0], reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        s[1] = ::accept(l, nullptr, nullptr);
        REQUIRE(s[1] != RSOCK_INVALID_SOCKET);
        close_sock(l);
    }
    ~pair() {
        close_sock(s[0]);
        close_sock(s[1]);
    }
    pair(const pair &) = delete;
    pair &operator=(const pair &) = delete;
};

inline double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

} // namespace cpptest

#endif
