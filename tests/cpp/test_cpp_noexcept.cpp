// The C++ interface built with -fno-exceptions: only the error_code forms
// (and the std::nothrow token constructor) are used.
#include "cpptest.hpp"

using namespace std::chrono_literals;
using cpptest::pair;

namespace {

// Run first: the first error_code a process makes initialises the error
// category, which on Windows may clear the thread's last error (once read
// after it, the code was lost: a cancelled poll reported success).
void first_error_keeps_its_code() {
    rsock::token tok(std::nothrow);
    REQUIRE(tok);
    tok.cancel();
    std::error_code ec;
    CHECK(rsock::poll(tok, nullptr, 0, 1s, ec) == 0 && ec == std::errc::operation_canceled);
}

void error_code_forms() {
    rsock::token tok(std::nothrow);
    REQUIRE(tok);
    std::error_code ec;
    rsock::token child = tok.child(ec);
    CHECK(!ec && child);
    pair p;
    char buf[4];
    CHECK(rsock::send(child, p.s[1], "abc", 3, 1s, 0, ec) == 3 && !ec);
    CHECK(rsock::recv(child, p.s[0], buf, 3, 1s, MSG_WAITALL, ec) == 3 && !ec);
    CHECK(rsock::recv(child, p.s[0], buf, 1, 10ms, 0, ec) == 0 && ec == std::errc::timed_out);
    tok.cancel();
    CHECK(rsock::recv(child, p.s[0], buf, 1, rsock::infinite, 0, ec) == 0 && ec == std::errc::operation_canceled);
    CHECK(rsock::block(child, p.s[0], RSOCK_WRITABLE, 1s, ec) == 0 && ec == std::errc::operation_canceled);
    child.reset(ec);
    CHECK(!ec);
    tok.reset(ec);
    CHECK(!ec && !child.cancelled());
    child.set_deadline(0ms, ec);
    CHECK(!ec && child.remaining() == 0ms);
    rsock_pollfd fds[1];
    fds[0].fd = p.s[0];
    fds[0].events = POLLIN;
    fds[0].revents = 0;
    CHECK(rsock::poll(child, fds, 1, 1s, ec) == 0 && !ec);
    child.set_deadline(rsock::infinite, ec);
    CHECK(rsock::accept(child, p.s[0], 0ms, ec) == RSOCK_INVALID_SOCKET && ec);
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_family = AF_INET;
    rsock::addrinfo_ptr ai = rsock::getaddrinfo(child, "127.0.0.1", "80", &hints, 1s, ec);
    CHECK(ai && !ec);
    // A send stopped short: the count and the reason.
    static char big[8 << 20];
    std::size_t n = rsock::send(child, p.s[0], big, sizeof big, 50ms, 0, ec);
    CHECK(n > 0 && n < sizeof big && ec == std::errc::timed_out);
}

} // namespace

int main() {
    cpptest::start(60);
    RUN(first_error_keeps_its_code);
    RUN(error_code_forms);
    return cpptest::finish("test_cpp_noexcept");
}
