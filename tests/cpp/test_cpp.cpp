// The C++ interface (include/rsock.hpp): tokens, both forms of every call,
// errors, timeouts, and (C++20) std::stop_token / std::jthread.
#include "cpptest.hpp"

#include <string>
#include <vector>

using namespace std::chrono_literals;
using cpptest::now_ms;
using cpptest::pair;

namespace {

bool is_canceled(const std::error_code &ec) { return ec == std::errc::operation_canceled; }
bool is_timeout(const std::error_code &ec) { return ec == std::errc::timed_out; }

void errors_compare_with_portable_conditions() {
    std::error_code c(RSOCK_ECANCELED, rsock::category());
    std::error_code t(RSOCK_ETIMEDOUT, rsock::category());
    CHECK(c == std::errc::operation_canceled);
    CHECK(t == std::errc::timed_out);
    CHECK(c != std::errc::timed_out);
    CHECK(std::string(rsock::category().name()) == "rsock");
    CHECK(!c.message().empty());
    // The same through a real call.
    rsock::token tok;
    tok.cancel();
    pair p;
    char b;
    std::error_code ec;
    rsock::recv(tok, p.s[0], &b, 1, rsock::infinite, 0, ec);
    CHECK(is_canceled(ec) && ec.category() == rsock::category());
    CHECK(ec.value() == RSOCK_ECANCELED);
}

void timeouts_convert_rounding_up() {
    CHECK(rsock::timeout(rsock::infinite).ms() == RSOCK_INFINITE);
    CHECK(rsock::timeout(rsock::socket_timeout).ms() == RSOCK_SOCKET_TIMEOUT);
    CHECK(rsock::timeout(0ms).ms() == 0);
    CHECK(rsock::timeout(1500us).ms() == 2);
    CHECK(rsock::timeout(1ns).ms() == 1);
    CHECK(rsock::timeout(2s).ms() == 2000);
    CHECK(rsock::timeout(std::chrono::duration<double>(0.0001)).ms() == 1);
    CHECK(rsock::timeout(std::chrono::hours(1000000)).ms() == INT_MAX);
    CHECK(rsock::timeout(std::chrono::hours::max()).ms() == INT_MAX);
    CHECK(rsock::timeout(std::chrono::hours::min()).ms() == INT_MIN);
    CHECK(rsock::timeout(std::chrono::nanoseconds::max()).ms() == INT_MAX);
    CHECK(rsock::timeout(std::chrono::microseconds(-1000)).ms() == RSOCK_INFINITE);
    CHECK(rsock::timeout(std::chrono::microseconds(-999)).ms() == INT_MIN);
    // Negative durations other than infinite are EINVAL.
    pair p;
    rsock::token tok;
    char b;
    std::error_code ec;
    rsock::recv(tok, p.s[0], &b, 1, -1s, 0, ec);
    CHECK(ec == std::errc::invalid_argument);
    rsock::recv(tok, p.s[0], &b, 1, -3ms, 0, ec);
    CHECK(ec == std::errc::invalid_argument);
    tok.set_deadline(-5ms, ec);
    CHECK(ec == std::errc::invalid_argument);
#ifdef RSOCK_HPP_EXCEPTIONS
    bool threw = false;
    try {
        rsock::recv(tok, p.s[0], &b, 1, -1s);
    } catch (const std::system_error &e) {
        threw = e.code() == std::errc::invalid_argument;
    }
    CHECK(threw);
#endif
    // Zero checks once; a timeout ends the wait with timed_out.
    double t0 = now_ms();
    rsock::recv(tok, p.s[0], &b, 1, 30ms, 0, ec);
    CHECK(is_timeout(ec) && now_ms() - t0 >= 29);
    rsock::recv(tok, p.s[0], &b, 1, 0ms, 0, ec);
    CHECK(is_timeout(ec));
}

void token_copies_share_one_token() {
    rsock::token a;
    rsock::token b = a;
    CHECK(a.native() == b.native());
    b.cancel();
    CHECK(a.cancelled() && b.cancelled());
    a.reset();
    CHECK(!b.cancelled());
    rsock::token moved = std::move(b);
    CHECK(!b && moved.native() == a.native());
    // A copy in another thread outlives the original.
    std::thread th;
    {
        rsock::token local;
        th = std::thread([copy = local] {
            std::this_thread::sleep_for(20ms);
            copy.cancel();
            CHECK(copy.cancelled());
        });
    }
    th.join();
    // Copies cancelled from many threads at once, one shared count.
    rsock::token shared;
    std::vector<std::thread> ts;
    for (int i = 0; i < 8; i++) ts.emplace_back([shared] { shared.cancel(); });
    for (auto &t : ts) t.join();
    CHECK(shared.cancelled());
    rsock::token none(std::nothrow);
    CHECK(static_cast<bool>(none));
    rsock::token adopted = rsock::token::adopt(rsock_token_ref(none.native()));
    CHECK(adopted.native() == none.native());
    rsock::token thread_tok = rsock::token::thread_token();
    CHECK(static_cast<bool>(thread_tok));
}

void children_and_deadlines() {
    rsock::token parent;
    rsock::token child = parent.child();
    std::error_code ec;
    rsock::token child2 = parent.child(ec);
    CHECK(!ec && child2);
    parent.cancel();
    CHECK(child.cancelled() && child2.cancelled());
    parent.reset();
    child.reset();
    CHECK(child.remaining() == rsock::infinite);
    parent.set_deadline(5s);
    CHECK(child.remaining() > 4s && child.remaining() <= 5s);
    parent.set_deadline(0ms);
    CHECK(child.remaining() == 0ms);
    pair p;
    char b;
    rsock::recv(child, p.s[0], &b, 1, rsock::infinite, 0, ec);
    CHECK(is_timeout(ec));
    parent.set_deadline(rsock::infinite);
    CHECK(child.remaining() == rsock::infinite);
}

// Every call's two forms: success, then failure.
void every_call_both_forms() {
    rsock::token tok;
    pair p;
    std::error_code ec;
    char buf[16];

    // send / recv
    CHECK(rsock::send(tok, p.s[1], "hello", 5) == 5);
    CHECK(rsock::block(tok, p.s[0], RSOCK_READABLE, 1s) == RSOCK_READABLE);
    CHECK(rsock::recv(tok, p.s[0], buf, 5, 1s, MSG_WAITALL) == 5 && std::memcmp(buf, "hello", 5) == 0);
    CHECK(rsock::send(tok, p.s[1], "ab", 2, 1s, 0, ec) == 2 && !ec);
    CHECK(rsock::recv(tok, p.s[0], buf, 2, 1s, MSG_WAITALL, ec) == 2 && !ec);
    CHECK(rsock::block(tok, p.s[0], RSOCK_WRITABLE, 0ms, ec) == RSOCK_WRITABLE && !ec);
    CHECK(rsock::block(tok, p.s[0], RSOCK_READABLE, 0ms, ec) == 0 && is_timeout(ec));
    CHECK(rsock::block(tok, p.s[0], 0, 0ms, ec) == 0 && ec == std::errc::invalid_argument);

    // poll
    rsock_pollfd fds[1];
    fds[0].fd = p.s[0];
    fds[0].events = POLLOUT;
    fds[0].revents = 0;
    CHECK(rsock::poll(tok, fds, 1, 1s) == 1 && (fds[0].revents & POLLOUT));
    fds[0].events = POLLIN;
    CHECK(rsock::poll(tok, fds, 1, 10ms, ec) == 0 && !ec); // a timeout is 0, as poll
    CHECK(rsock::poll(tok, nullptr, 1, 0ms, ec) == 0 && ec == std::errc::invalid_argument);

    // recvfrom / sendto on a stream
    CHECK(rsock::sendto(tok, p.s[1], "xy", 2, nullptr, 0, 1s) == 2);
    sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    CHECK(rsock::recvfrom(tok, p.s[0], buf, 2, reinterpret_cast<sockaddr *>(&from), &fromlen, 1s, MSG_WAITALL) == 2);
    CHECK(rsock::recvfrom(tok, p.s[0], buf, 2, nullptr, nullptr, 0ms, 0, ec) == 0 && is_timeout(ec));
    CHECK(rsock::sendto(tok, p.s[1], "z", 1, nullptr, 0, 1s, 0, ec) == 1 && !ec);
    CHECK(rsock::recv(tok, p.s[0], buf, 1, 1s) == 1);

    // accept / connect
    sockaddr_in a;
    rsock_socket l = cpptest::listener(a);
    rsock_socket c = socket(AF_INET, SOCK_STREAM, 0);
    rsock::connect(tok, c, reinterpret_cast<sockaddr *>(&a), sizeof a, 2s);
    rsock_socket s = rsock::accept(tok, l, 2s);
    CHECK(s != RSOCK_INVALID_SOCKET);
    cpptest::close_sock(s);
    cpptest::close_sock(c);
    c = socket(AF_INET, SOCK_STREAM, 0);
    rsock::connect(tok, c, reinterpret_cast<sockaddr *>(&a), sizeof a, 2s, ec);
    CHECK(!ec);
    sockaddr_in peer;
    socklen_t peerlen = sizeof peer;
    s = rsock::accept(tok, l, reinterpret_cast<sockaddr *>(&peer), &peerlen, 2s, ec);
    CHECK(s != RSOCK_INVALID_SOCKET && !ec && peer.sin_family == AF_INET);
    cpptest::close_sock(s);
    cpptest::close_sock(c);
    CHECK(rsock::accept(tok, l, 0ms, ec) == RSOCK_INVALID_SOCKET && is_timeout(ec));
    c = socket(AF_INET, SOCK_STREAM, 0);
    rsock::connect(tok, c, nullptr, 0, 1s, ec);
    CHECK(ec == std::errc::invalid_argument);
    cpptest::close_sock(c);

    // connect_host / getaddrinfo
    std::string port = std::to_string(ntohs(a.sin_port));
    c = rsock::connect_host(tok, "127.0.0.1", port.c_str(), 2s);
    CHECK(c != RSOCK_INVALID_SOCKET);
    cpptest::close_sock(c);
    s = rsock::accept(tok, l, 2s);
    cpptest::close_sock(s);
    c = rsock::connect_host(tok, "127.0.0.1", port.c_str(), 2s, SOCK_STREAM, ec);
    CHECK(c != RSOCK_INVALID_SOCKET && !ec);
    cpptest::close_sock(c);
    cpptest::close_sock(l);
    CHECK(rsock::connect_host(tok, nullptr, "80", 1s, SOCK_STREAM, ec) == RSOCK_INVALID_SOCKET &&
          ec == std::errc::invalid_argument);

    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_flags = AI_NUMERICHOST;
    rsock::addrinfo_ptr ai = rsock::getaddrinfo(tok, "127.0.0.1", "80", &hints, 1s);
    CHECK(ai && ai->ai_family == AF_INET);
    ai = rsock::getaddrinfo(tok, "127.0.0.1", "80", &hints, 1s, ec);
    CHECK(ai && !ec);
    ai = rsock::getaddrinfo(tok, "not an address", "80", &hints, 1s, ec);
    CHECK(!ai && ec);
#ifndef _WIN32
    CHECK(ec.category() == rsock::resolver_category() && ec.value() == EAI_NONAME);
#endif
    tok.cancel();
    ai = rsock::getaddrinfo(tok, "127.0.0.1", "80", &hints, 1s, ec);
    CHECK(!ai && is_canceled(ec));
    tok.reset();

#ifdef RSOCK_HPP_EXCEPTIONS
    // The throwing forms throw std::system_error with the same code.
    tok.cancel();
    int thrown = 0;
    auto expect_cancel = [&](auto f) {
        try {
            f();
        } catch (const std::system_error &e) {
            thrown += is_canceled(e.code());
        }
    };
    expect_cancel([&] { rsock::recv(tok, p.s[0], buf, 1); });
    expect_cancel([&] { rsock::send(tok, p.s[0], buf, 1); });
    expect_cancel([&] { rsock::recvfrom(tok, p.s[0], buf, 1, nullptr, nullptr); });
    expect_cancel([&] { rsock::sendto(tok, p.s[0], buf, 1, nullptr, 0); });
    expect_cancel([&] { rsock::block(tok, p.s[0], RSOCK_READABLE); });
    expect_cancel([&] { rsock::poll(tok, fds, 1); });
    expect_cancel([&] { rsock::accept(tok, p.s[0]); });
    expect_cancel([&] {
        rsock_socket x = socket(AF_INET, SOCK_STREAM, 0);
        struct closer {
            rsock_socket x;
            ~closer() { cpptest::close_sock(x); }
        } cl{x};
        rsock::connect(tok, x, reinterpret_cast<sockaddr *>(&a), sizeof a);
    });
    expect_cancel([&] { rsock::connect_host(tok, "127.0.0.1", "9"); });
    expect_cancel([&] { rsock::getaddrinfo(tok, "127.0.0.1", "80", &hints); });
    CHECK(thrown == 10);
    tok.reset();
#endif
}

// Cancelled and timed-out calls consume nothing; a stopped send reports
// its exact count.
void nothing_lost() {
    rsock::token tok;
    pair p;
    std::error_code ec;
    char b = 0;
    CHECK(rsock::send(tok, p.s[1], "q", 1) == 1);
    tok.cancel();
    CHECK(rsock::recv(tok, p.s[0], &b, 1, rsock::infinite, 0, ec) == 0 && is_canceled(ec));
    tok.reset();
    CHECK(rsock::recv(tok, p.s[0], &b, 1, 1s) == 1 && b == 'q');

    std::vector<char> big(8u << 20, 'x');
    for (std::size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>(i * 13);
    std::size_t sent = 0;
#ifdef RSOCK_HPP_EXCEPTIONS
    try {
        rsock::send(tok, p.s[0], big.data(), big.size(), 100ms);
        CHECK(!"a send to a reader that never reads completed");
    } catch (const rsock::transfer_error &e) {
        CHECK(is_timeout(e.code()));
        sent = e.transferred();
    }
#else
    sent = rsock::send(tok, p.s[0], big.data(), big.size(), 100ms, 0, ec);
    CHECK(is_timeout(ec));
#endif
    CHECK(sent > 0 && sent < big.size());
    // The error_code form reports the same way.
    std::size_t more = rsock::send(tok, p.s[0], big.data() + sent, big.size() - sent, 50ms, 0, ec);
    CHECK(is_timeout(ec) && more < big.size() - sent);
    sent += more;
    // The reader gets exactly what was reported, in order.
    std::vector<char> got(sent);
    CHECK(rsock::recv(tok, p.s[1], got.data(), got.size(), 10s, MSG_WAITALL) == sent);
    CHECK(std::memcmp(got.data(), big.data(), sent) == 0);
    CHECK(rsock::recv(tok, p.s[1], got.data(), 1, 50ms, 0, ec) == 0 && is_timeout(ec));

    // MSG_WAITALL stopped short: the count, and why.
    CHECK(rsock::send(tok, p.s[1], "abc", 3) == 3);
    char three[8];
    CHECK(rsock::recv(tok, p.s[0], three, 8, 50ms, MSG_WAITALL, ec) == 3 && is_timeout(ec));
}

#ifndef _WIN32
// recvmsg / sendmsg / read / write (POSIX): both forms, a cancel, a
// stopped write's exact count.
void posix_io_both_forms() {
    rsock::token tok;
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char a[] = "ab", b[] = "cd";
    iovec out[2] = {{a, 2}, {b, 2}};
    msghdr m{};
    m.msg_iov = out;
    m.msg_iovlen = 2;
    CHECK(rsock::sendmsg(tok, sv[0], &m, 1s) == 4);
    char x[2], y[2];
    iovec in[2] = {{x, 2}, {y, 2}};
    msghdr r{};
    r.msg_iov = in;
    r.msg_iovlen = 2;
    CHECK(rsock::recvmsg(tok, sv[1], &r, 1s, MSG_WAITALL) == 4 && std::memcmp(y, "cd", 2) == 0);
    std::error_code ec;
    CHECK(rsock::recvmsg(tok, sv[1], &r, 0ms, 0, ec) == 0 && is_timeout(ec));
    CHECK(rsock::sendmsg(tok, sv[0], &m, 1s, 0, ec) == 4 && !ec);
    CHECK(rsock::recvmsg(tok, sv[1], &r, 1s, MSG_WAITALL, ec) == 4 && !ec);
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(rsock::write(tok, p[1], "pipe", 4) == 4);
    char buf[8];
    CHECK(rsock::read(tok, p[0], buf, sizeof buf, 1s) == 4);
    CHECK(rsock::read(tok, p[0], buf, sizeof buf, 10ms, ec) == 0 && is_timeout(ec));
    // Non-blocking pipe, plain-call semantics: one attempt.
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    CHECK(rsock::read(tok, p[0], buf, sizeof buf, rsock::socket_timeout, ec) == 0 &&
          ec == std::errc::resource_unavailable_try_again);
    tok.cancel();
    CHECK(rsock::read(tok, p[0], buf, sizeof buf, rsock::infinite, ec) == 0 && is_canceled(ec));
    tok.reset();
    // A pipe nobody reads: the write stops with its exact count.
    std::vector<char> big(1 << 20, 'w');
    bool threw = false;
    try {
        rsock::write(tok, p[1], big.data(), big.size(), 30ms);
    } catch (const rsock::transfer_error &e) {
        threw = is_timeout(e.code()) && e.transferred() > 0 && e.transferred() < big.size();
    }
    CHECK(threw);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}
#endif

#if defined(__cpp_lib_jthread)
// A jthread blocked in rsock::recv, stopped by request_stop().
void jthread_request_stop() {
    pair p;
    std::atomic<int> result{-1};
    std::atomic<double> ended{0};
    std::jthread worker([&](std::stop_token st) {
        rsock::token tok(st);
        char b;
        std::error_code ec;
        rsock::recv(tok, p.s[0], &b, 1, rsock::infinite, 0, ec);
        ended = now_ms();
        result = is_canceled(ec) ? 1 : 0;
    });
    std::this_thread::sleep_for(30ms);
    CHECK(result == -1);
    double t0 = now_ms();
    worker.request_stop();
    worker.join();
    CHECK(result == 1);
    CHECK(ended - t0 < 1000);
    // Nothing consumed: a byte sent now is the next one read.
    rsock::token tok;
    CHECK(rsock::send(tok, p.s[1], "n", 1) == 1);
    char b = 0;
    CHECK(rsock::recv(tok, p.s[0], &b, 1, 1s) == 1 && b == 'n');
}

// The jthread's destructor requests the stop.
void jthread_destructor_stops() {
    pair p;
    std::atomic<bool> canceled{false};
    {
        std::jthread worker([&](std::stop_token st) {
            rsock::token tok(st);
            char b;
            std::error_code ec;
            rsock::recv(tok, p.s[0], &b, 1, rsock::infinite, 0, ec);
            canceled = is_canceled(ec);
        });
        std::this_thread::sleep_for(20ms);
    }
    CHECK(canceled);
}

void stop_requested_before_construction() {
    std::stop_source src;
    src.request_stop();
    rsock::token tok(src.get_token());
    CHECK(tok.cancelled());
    pair p;
    char b;
    std::error_code ec;
    rsock::recv(tok, p.s[0], &b, 1, rsock::infinite, 0, ec);
    CHECK(is_canceled(ec));
}

void stop_source_or_token_gone_first() {
    pair p;
    // The stop_source goes first: the token still works and is never
    // cancelled.
    rsock::token tok(std::nothrow);
    {
        std::stop_source src;
        tok = rsock::token(src.get_token());
    }
    CHECK(!tok.cancelled());
    std::error_code ec;
    char b;
    rsock::recv(tok, p.s[0], &b, 1, 10ms, 0, ec);
    CHECK(is_timeout(ec));
    // The token goes first (copies included): a later stop reaches nothing.
    std::stop_source src;
    rsock_token *raw = nullptr;
    {
        rsock::token linked(src.get_token());
        rsock::token copy = linked;
        raw = rsock_token_ref(copy.native());
    }
    src.request_stop();
    CHECK(rsock_is_cancelled(raw) == 0);
    rsock_token_unref(raw);
    // A child of a stop-linked token follows the stop.
    std::stop_source src2;
    rsock::token parent(src2.get_token());
    rsock::token child = parent.child();
    src2.request_stop();
    CHECK(child.cancelled());
}

// Stops racing with the calls starting: each ends cancelled, never lost.
void stops_racing_calls() {
    pair p;
    for (int i = 0; i < 200; i++) {
        std::atomic<bool> ok{false};
        std::jthread worker([&](std::stop_token st) {
            rsock::token tok(st);
            char b;
            std::error_code ec;
            rsock::recv(tok, p.s[0], &b, 1, rsock::infinite, 0, ec);
            ok = is_canceled(ec);
        });
        if (i % 3) std::this_thread::sleep_for(std::chrono::microseconds(i * 5));
        worker.request_stop();
        worker.join();
        CHECK(ok);
    }
}
#endif

#if defined(__cpp_lib_span)
void span_buffers() {
    rsock::token tok;
    pair p;
    std::byte out[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
    CHECK(rsock::send(tok, p.s[1], std::span<const std::byte>(out), 1s) == 3);
    std::byte in[3] = {};
    CHECK(rsock::recv(tok, p.s[0], std::span<std::byte>(in), 1s, MSG_WAITALL) == 3);
    CHECK(std::memcmp(in, out, 3) == 0);
    std::error_code ec;
    CHECK(rsock::recv(tok, p.s[0], std::span<std::byte>(in), 0ms, 0, ec) == 0 && is_timeout(ec));
    rsock_pollfd fds[1];
    fds[0].fd = p.s[0];
    fds[0].events = POLLOUT;
    fds[0].revents = 0;
    CHECK(rsock::poll(tok, std::span<rsock_pollfd>(fds), 1s) == 1);
}
#endif

} // namespace

int main() {
    cpptest::start(120);
    RUN(errors_compare_with_portable_conditions);
    RUN(timeouts_convert_rounding_up);
    RUN(token_copies_share_one_token);
    RUN(children_and_deadlines);
    RUN(every_call_both_forms);
    RUN(nothing_lost);
#ifndef _WIN32
    RUN(posix_io_both_forms);
#endif
#if defined(__cpp_lib_jthread)
    RUN(jthread_request_stop);
    RUN(jthread_destructor_stops);
    RUN(stop_requested_before_construction);
    RUN(stop_source_or_token_gone_first);
    RUN(stops_racing_calls);
#else
    std::printf("skip the std::stop_token tests: C++17 (or no std::jthread)\n");
#endif
#if defined(__cpp_lib_span)
    RUN(span_buffers);
#endif
    return cpptest::finish(__cplusplus >= 202002L ? "test_cpp (C++20)" : "test_cpp (C++17)");
}
