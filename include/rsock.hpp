/*
 * rsock.hpp: the C++ interface to rsock, header-only over rsock.h.
 *
 * C++17; with C++20 also std::stop_token tokens and std::span buffers.
 *
 * - rsock::token shares one rsock_token: copies refer to the same token,
 *   and the last copy releases it. Any thread may cancel it; cancel() is
 *   lock-free and async-signal-safe, so it is safe in a std::stop_callback.
 * - Every call comes in two forms: one that throws std::system_error (with
 *   rsock::category()), and a noexcept one taking a trailing
 *   std::error_code &. Only the second is usable with -fno-exceptions
 *   (where the throwing forms abort instead of throwing).
 * - Errors compare equal to the portable conditions:
 *   std::errc::operation_canceled for a cancel (WSAEINTR on Windows) and
 *   std::errc::timed_out for a timeout or a passed deadline.
 * - A transfer that had to be whole (send, sendto on a stream, sendmsg,
 *   write, recv with MSG_WAITALL) and stopped short throws
 *   rsock::transfer_error, whose transferred() is the exact count; the
 *   error_code form returns that count and sets the error_code.
 * - Timeouts are any std::chrono::duration, rounded up to milliseconds;
 *   rsock::infinite waits for ever, zero checks once,
 *   rsock::socket_timeout behaves as the plain call (RSOCK_SOCKET_TIMEOUT),
 *   other negative durations are EINVAL.
 */
#ifndef RSOCK_HPP
#define RSOCK_HPP

#include "rsock.h"

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <utility>

#if defined(__has_include)
#if __has_include(<version>)
#include <version>
#endif
#endif
#if defined(__cpp_lib_jthread)
#include <stop_token>
#endif
#if defined(__cpp_lib_span)
#include <span>
#endif

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define RSOCK_HPP_EXCEPTIONS 1
#endif

namespace rsock {

/** Waits for ever. */
inline constexpr std::chrono::milliseconds infinite{-1};
/** As the plain system call would on that socket (RSOCK_SOCKET_TIMEOUT):
    its mode and SO_RCVTIMEO/SO_SNDTIMEO, plus cancellation. */
inline constexpr std::chrono::milliseconds socket_timeout{-2};

/** The category of rsock's errors: errno values on POSIX, Winsock codes
    on Windows, as rsock_last_error() returns them. */
class error_category_t final : public std::error_category {
public:
    const char *name() const noexcept override { return "rsock"; }
    std::string message(int code) const override { return rsock_strerror(code); }
    std::error_condition default_error_condition(int code) const noexcept override {
#ifdef _WIN32
        switch (code) {
        case WSAEINTR: return std::errc::operation_canceled; /* RSOCK_ECANCELED */
        case WSAETIMEDOUT: return std::errc::timed_out;
        case WSAEINVAL: return std::errc::invalid_argument;
        case WSAEWOULDBLOCK: return std::errc::operation_would_block;
        case WSAEINPROGRESS: return std::errc::operation_in_progress;
        case WSAEALREADY: return std::errc::connection_already_in_progress;
        case WSAENOTSOCK: return std::errc::not_a_socket;
        case WSAEBADF: return std::errc::bad_file_descriptor;
        case WSAEFAULT: return std::errc::bad_address;
        case WSAEACCES: return std::errc::permission_denied;
        case WSAEMFILE: return std::errc::too_many_files_open;
        case WSAEMSGSIZE: return std::errc::message_size;
        case WSAEAFNOSUPPORT: return std::errc::address_family_not_supported;
        case WSAEADDRINUSE: return std::errc::address_in_use;
        case WSAEADDRNOTAVAIL: return std::errc::address_not_available;
        case WSAENETDOWN: return std::errc::network_down;
        case WSAENETUNREACH: return std::errc::network_unreachable;
        case WSAENETRESET: return std::errc::network_reset;
        case WSAECONNABORTED: return std::errc::connection_aborted;
        case WSAECONNRESET: return std::errc::connection_reset;
        case WSAENOBUFS: return std::errc::no_buffer_space;
        case WSAEISCONN: return std::errc::already_connected;
        case WSAENOTCONN: return std::errc::not_connected;
        case WSAECONNREFUSED: return std::errc::connection_refused;
        case WSAEHOSTUNREACH: return std::errc::host_unreachable;
        case WSAEOPNOTSUPP: return std::errc::operation_not_supported;
        default: return std::error_condition(code, *this);
        }
#else
        return std::generic_category().default_error_condition(code);
#endif
    }
};

/** rsock's error category (see error_category_t). */
inline const std::error_category &category() noexcept {
    static const error_category_t c;
    return c;
}

#ifndef _WIN32
/** The category of getaddrinfo's EAI_* codes (POSIX; on Windows they are
    Winsock codes, in category()). */
class resolver_category_t final : public std::error_category {
public:
    const char *name() const noexcept override { return "rsock.getaddrinfo"; }
    std::string message(int code) const override { return gai_strerror(code); }
};

inline const std::error_category &resolver_category() noexcept {
    static const resolver_category_t c;
    return c;
}
#endif

/** The calling thread's last rsock error, as a std::error_code. */
inline std::error_code last_error() noexcept {
    int e = rsock_last_error(); /* first: category()'s first call may clear it (Windows) */
    return std::error_code(e, category());
}

/** A transfer that had to be whole and stopped short: transferred() bytes
    went through before code() stopped it. */
class transfer_error : public std::system_error {
public:
    transfer_error(std::error_code ec, std::size_t transferred, const char *what)
        : std::system_error(ec, what), transferred_(transferred) {}
    std::size_t transferred() const noexcept { return transferred_; }

private:
    std::size_t transferred_;
};

namespace detail {

[[noreturn]] inline void fail(std::error_code ec, const char *what) {
#ifdef RSOCK_HPP_EXCEPTIONS
    throw std::system_error(ec, what);
#else
    (void)ec;
    (void)what;
    std::abort();
#endif
}

[[noreturn]] inline void fail_transfer(std::error_code ec, std::size_t n, const char *what) {
#ifdef RSOCK_HPP_EXCEPTIONS
    throw transfer_error(ec, n, what);
#else
    (void)ec;
    (void)n;
    (void)what;
    std::abort();
#endif
}

[[noreturn]] inline void fail_alloc() {
#ifdef RSOCK_HPP_EXCEPTIONS
    throw std::bad_alloc();
#else
    std::abort();
#endif
}

/** A count from a C call that sets errno with it (0, or why it is short). */
inline std::size_t counted(intptr_t n, std::error_code &ec) noexcept {
    int e = rsock_last_error();
    if (n < 0) {
        ec = std::error_code(e, category());
        return 0;
    }
    if (e != 0) ec = std::error_code(e, category());
    else ec.clear();
    return static_cast<std::size_t>(n);
}

/** A count from a C call whose success says nothing in errno. */
inline std::size_t plain_count(intptr_t n, std::error_code &ec) noexcept {
    if (n < 0) {
        ec = last_error();
        return 0;
    }
    ec.clear();
    return static_cast<std::size_t>(n);
}

inline void status(int r, std::error_code &ec) noexcept {
    if (r < 0) ec = last_error();
    else ec.clear();
}

/** A value or throws (through the error_code form's result). */
template <class T> T checked(T v, const std::error_code &ec, const char *what) {
    if (ec) fail(ec, what);
    return v;
}

inline std::size_t checked_transfer(std::size_t n, const std::error_code &ec, const char *what) {
    if (ec) fail_transfer(ec, n, what);
    return n;
}

} // namespace detail

/** A timeout: any std::chrono::duration, rounded up to whole milliseconds
    (implicitly converted where a call takes one). */
class timeout {
public:
    template <class Rep, class Period>
    constexpr timeout(std::chrono::duration<Rep, Period> d) noexcept : ms_(convert(d)) {}

    /** Milliseconds for the C calls: RSOCK_INFINITE, 0..INT_MAX, or INT_MIN
        for an invalid (negative) duration, which the C calls reject with
        EINVAL. */
    constexpr int ms() const noexcept { return ms_; }

private:
    template <class Rep, class Period> static constexpr int convert(std::chrono::duration<Rep, Period> d) noexcept {
        /* Compared as floating-point milliseconds: converting hours::max()
           to integer milliseconds would overflow. */
        double ms = std::chrono::duration<double, std::milli>(d).count();
        if (ms == -1.0) return RSOCK_INFINITE;
        if (ms == -2.0) return RSOCK_SOCKET_TIMEOUT;
        if (ms < 0) return INT_MIN;
        if (ms >= static_cast<double>(INT_MAX)) return INT_MAX;
        return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(d).count());
    }
    int ms_;
};

/** A cancellation token, shared: copies refer to the same rsock_token,
    and the last one releases it. All members may be used from any thread. */
class token {
public:
    /** A new token (std::bad_alloc if memory runs out). */
    token() : t_(rsock_token_new()) {
        if (!t_) detail::fail_alloc();
    }

    /** A new token; empty (false) if memory runs out. */
    explicit token(std::nothrow_t) noexcept : t_(rsock_token_new()) {}

    /** Takes over a reference the caller owns (NULL: an empty token). */
    static token adopt(rsock_token *t) noexcept { return token(t, adopt_tag{}); }

    /** A new reference to the calling thread's own token: what a NULL token
        means to the C calls. Another thread may cancel it. */
    static token thread_token() {
        token t(rsock_thread_token(), adopt_tag{});
        if (!t) detail::fail_alloc();
        return t;
    }

#if defined(__cpp_lib_jthread)
    /** A new token cancelled when a stop is requested on `st` (at once if
        it was requested already). The link ends when the last copy of this
        token goes, whether the std::stop_source is gone or not. */
    explicit token(std::stop_token st) : token() {
        link_ = std::make_shared<stop_link>(t_, std::move(st));
    }
#endif

    token(const token &o) noexcept : t_(o.t_ ? rsock_token_ref(o.t_) : nullptr), link_(o.link_) {}
    token(token &&o) noexcept : t_(std::exchange(o.t_, nullptr)), link_(std::move(o.link_)) {}
    token &operator=(const token &o) noexcept {
        if (this != &o) *this = token(o);
        return *this;
    }
    token &operator=(token &&o) noexcept {
        if (this != &o) {
            release();
            t_ = std::exchange(o.t_, nullptr);
            link_ = std::move(o.link_);
        }
        return *this;
    }
    ~token() { release(); }

    /** A child: cancelled whenever this token (or an ancestor) is, and
        bounded by their deadlines (std::bad_alloc if memory runs out). */
    token child() const {
        std::error_code ec;
        token c = child(ec);
        if (ec == std::errc::not_enough_memory || (ec && !c)) {
            if (ec == std::errc::not_enough_memory) detail::fail_alloc();
            detail::fail(ec, "rsock::token::child");
        }
        return c;
    }
    token child(std::error_code &ec) const noexcept {
        token c(rsock_token_child(t_), adopt_tag{});
        if (!c) ec = last_error();
        else ec.clear();
        return c;
    }

    /** Cancels the token and its descendants: every call waiting on them
        ends with operation_canceled, and so does every later call until
        reset(). Lock-free and async-signal-safe. */
    void cancel() const noexcept { rsock_cancel(t_); }

    /** Re-arms the token after a cancel. */
    void reset() const {
        std::error_code ec;
        reset(ec);
        if (ec) detail::fail(ec, "rsock::token::reset");
    }
    void reset(std::error_code &ec) const noexcept { detail::status(rsock_token_reset(t_), ec); }

    /** Whether calls on the token would fail with operation_canceled. */
    bool cancelled() const noexcept { return rsock_is_cancelled(t_) == 1; }

    /** Sets the token's deadline `from_now` (rsock::infinite clears it):
        once passed, every call on the token or a descendant ends with
        timed_out. Lock-free and async-signal-safe. */
    void set_deadline(timeout from_now) const {
        std::error_code ec;
        set_deadline(from_now, ec);
        if (ec) detail::fail(ec, "rsock::token::set_deadline");
    }
    void set_deadline(timeout from_now, std::error_code &ec) const noexcept {
        detail::status(rsock_token_set_deadline(t_, from_now.ms()), ec);
    }

    /** Time to the earliest deadline of the token and its ancestors
        (zero once passed; rsock::infinite if none). */
    std::chrono::milliseconds remaining() const noexcept {
        return std::chrono::milliseconds(rsock_token_remaining(t_));
    }

    /** The C token, for the C calls; this object keeps its reference. */
    rsock_token *native() const noexcept { return t_; }

    /** False for an empty token (a failed std::nothrow construction, or
        moved from). */
    explicit operator bool() const noexcept { return t_ != nullptr; }

private:
    struct adopt_tag {};
    token(rsock_token *t, adopt_tag) noexcept : t_(t) {}

    void release() noexcept {
        link_.reset(); /* the stop callback goes before the last reference */
        if (t_) rsock_token_unref(std::exchange(t_, nullptr));
    }

#if defined(__cpp_lib_jthread)
    struct canceller {
        rsock_token *t;
        void operator()() const noexcept { rsock_cancel(t); }
    };
    /* Its own reference, released after the callback is unregistered (the
       members go in reverse order). */
    struct reference {
        rsock_token *t;
        explicit reference(rsock_token *p) noexcept : t(rsock_token_ref(p)) {}
        reference(const reference &) = delete;
        reference &operator=(const reference &) = delete;
        ~reference() { rsock_token_unref(t); }
    };
    struct stop_link {
        reference ref;
        std::stop_callback<canceller> cb;
        stop_link(rsock_token *t, std::stop_token st) : ref(t), cb(std::move(st), canceller{t}) {}
    };
#endif

    rsock_token *t_;
    std::shared_ptr<void> link_;
};

/* ---- waits --------------------------------------------------------------- */

/** rsock_block: the ready subset of `events` (RSOCK_READABLE,
    RSOCK_WRITABLE). */
inline int block(const token &t, rsock_socket s, int events, timeout to, std::error_code &ec) noexcept {
    int r = rsock_block(t.native(), s, events, to.ms());
    detail::status(r, ec);
    return r < 0 ? 0 : r;
}
inline int block(const token &t, rsock_socket s, int events, timeout to = infinite) {
    std::error_code ec;
    int r = block(t, s, events, to, ec);
    return detail::checked(r, ec, "rsock::block");
}

/** rsock_poll: the number of entries with events; 0 on timeout (or a
    passed deadline), as poll. */
inline std::size_t poll(const token &t, rsock_pollfd *fds, std::size_t nfds, timeout to,
                        std::error_code &ec) noexcept {
    return detail::plain_count(rsock_poll(t.native(), fds, nfds, to.ms()), ec);
}
inline std::size_t poll(const token &t, rsock_pollfd *fds, std::size_t nfds, timeout to = infinite) {
    std::error_code ec;
    std::size_t n = poll(t, fds, nfds, to, ec);
    return detail::checked(n, ec, "rsock::poll");
}

/* ---- socket calls -------------------------------------------------------- */

/** rsock_recv. With MSG_WAITALL a receive stopped short throws
    transfer_error (the error_code form returns the count and sets ec). */
inline std::size_t recv(const token &t, rsock_socket s, void *buf, std::size_t len, timeout to, int flags,
                        std::error_code &ec) noexcept {
    return detail::counted(rsock_recv(t.native(), s, buf, len, flags, to.ms()), ec);
}
inline std::size_t recv(const token &t, rsock_socket s, void *buf, std::size_t len, timeout to = infinite,
                        int flags = 0) {
    std::error_code ec;
    std::size_t n = recv(t, s, buf, len, to, flags, ec);
    return detail::checked_transfer(n, ec, "rsock::recv");
}

/** rsock_send: returns once all `len` bytes are queued; stopped short, it
    throws transfer_error with the exact count (the error_code form returns
    the count and sets ec). */
inline std::size_t send(const token &t, rsock_socket s, const void *buf, std::size_t len, timeout to, int flags,
                        std::error_code &ec) noexcept {
    return detail::counted(rsock_send(t.native(), s, buf, len, flags, to.ms()), ec);
}
inline std::size_t send(const token &t, rsock_socket s, const void *buf, std::size_t len, timeout to = infinite,
                        int flags = 0) {
    std::error_code ec;
    std::size_t n = send(t, s, buf, len, to, flags, ec);
    return detail::checked_transfer(n, ec, "rsock::send");
}

/** rsock_recvfrom (`from` and `fromlen` may be null). */
inline std::size_t recvfrom(const token &t, rsock_socket s, void *buf, std::size_t len, struct sockaddr *from,
                            socklen_t *fromlen, timeout to, int flags, std::error_code &ec) noexcept {
    return detail::plain_count(rsock_recvfrom(t.native(), s, buf, len, flags, from, fromlen, to.ms()), ec);
}
inline std::size_t recvfrom(const token &t, rsock_socket s, void *buf, std::size_t len, struct sockaddr *from,
                            socklen_t *fromlen, timeout to = infinite, int flags = 0) {
    std::error_code ec;
    std::size_t n = recvfrom(t, s, buf, len, from, fromlen, to, flags, ec);
    return detail::checked(n, ec, "rsock::recvfrom");
}

/** rsock_sendto (a datagram goes whole or not at all; on a stream as
    send). */
inline std::size_t sendto(const token &t, rsock_socket s, const void *buf, std::size_t len, const struct sockaddr *to_addr,
                          socklen_t tolen, timeout to, int flags, std::error_code &ec) noexcept {
    return detail::counted(rsock_sendto(t.native(), s, buf, len, flags, to_addr, tolen, to.ms()), ec);
}
inline std::size_t sendto(const token &t, rsock_socket s, const void *buf, std::size_t len, const struct sockaddr *to_addr,
                          socklen_t tolen, timeout to = infinite, int flags = 0) {
    std::error_code ec;
    std::size_t n = sendto(t, s, buf, len, to_addr, tolen, to, flags, ec);
    return detail::checked_transfer(n, ec, "rsock::sendto");
}

/** rsock_accept: the new socket (blocking mode), owned by the caller. */
inline rsock_socket accept(const token &t, rsock_socket s, struct sockaddr *addr, socklen_t *addrlen, timeout to,
                           std::error_code &ec) noexcept {
    rsock_socket r = rsock_accept(t.native(), s, addr, addrlen, to.ms());
    if (r == RSOCK_INVALID_SOCKET) ec = last_error();
    else ec.clear();
    return r;
}
inline rsock_socket accept(const token &t, rsock_socket s, struct sockaddr *addr, socklen_t *addrlen,
                           timeout to = infinite) {
    std::error_code ec;
    rsock_socket r = accept(t, s, addr, addrlen, to, ec);
    return detail::checked(r, ec, "rsock::accept");
}
inline rsock_socket accept(const token &t, rsock_socket s, timeout to, std::error_code &ec) noexcept {
    return accept(t, s, nullptr, nullptr, to, ec);
}
inline rsock_socket accept(const token &t, rsock_socket s, timeout to = infinite) {
    return accept(t, s, nullptr, nullptr, to);
}

/** rsock_connect (after a cancel or timeout, close the socket). */
inline void connect(const token &t, rsock_socket s, const struct sockaddr *addr, socklen_t addrlen, timeout to,
                    std::error_code &ec) noexcept {
    detail::status(rsock_connect(t.native(), s, addr, addrlen, to.ms()), ec);
}
inline void connect(const token &t, rsock_socket s, const struct sockaddr *addr, socklen_t addrlen,
                    timeout to = infinite) {
    std::error_code ec;
    connect(t, s, addr, addrlen, to, ec);
    if (ec) detail::fail(ec, "rsock::connect");
}

/** rsock_connect_host: a connected socket (blocking mode), owned by the
    caller; the timeout covers resolution and connection. */
inline rsock_socket connect_host(const token &t, const char *host, const char *service, timeout to, int socktype,
                                 std::error_code &ec) noexcept {
    rsock_socket r = rsock_connect_host(t.native(), host, service, socktype, to.ms());
    if (r == RSOCK_INVALID_SOCKET) ec = last_error();
    else ec.clear();
    return r;
}
inline rsock_socket connect_host(const token &t, const char *host, const char *service, timeout to = infinite,
                                 int socktype = SOCK_STREAM) {
    std::error_code ec;
    rsock_socket r = connect_host(t, host, service, to, socktype, ec);
    return detail::checked(r, ec, "rsock::connect_host");
}

/** The list rsock_getaddrinfo returns, freed with freeaddrinfo. */
struct addrinfo_deleter {
    void operator()(struct addrinfo *a) const noexcept { freeaddrinfo(a); }
};
using addrinfo_ptr = std::unique_ptr<struct addrinfo, addrinfo_deleter>;

/** rsock_getaddrinfo. A lookup error is in resolver_category() (POSIX;
    Winsock codes on Windows); a cancel, timeout or system error in
    category(). */
inline addrinfo_ptr getaddrinfo(const token &t, const char *node, const char *service, const struct addrinfo *hints,
                                timeout to, std::error_code &ec) noexcept {
    struct addrinfo *res = nullptr;
    int rc = rsock_getaddrinfo(t.native(), node, service, hints, &res, to.ms());
#ifdef _WIN32
    if (rc == SOCKET_ERROR) ec = last_error();
    else if (rc != 0) ec = std::error_code(rc, category());
#else
    if (rc == EAI_SYSTEM) ec = last_error();
    else if (rc != 0) ec = std::error_code(rc, resolver_category());
#endif
    else ec.clear();
    return addrinfo_ptr(rc == 0 ? res : nullptr);
}
inline addrinfo_ptr getaddrinfo(const token &t, const char *node, const char *service,
                                const struct addrinfo *hints = nullptr, timeout to = infinite) {
    std::error_code ec;
    addrinfo_ptr r = getaddrinfo(t, node, service, hints, to, ec);
    if (ec) detail::fail(ec, "rsock::getaddrinfo");
    return r;
}

#if defined(RSOCK_POSIX)
/* ---- the rest of the POSIX blocking I/O surface -------------------------- */

/** rsock_recvmsg (scatter/gather, ancillary data). With MSG_WAITALL a
    receive stopped short throws transfer_error. */
inline std::size_t recvmsg(const token &t, rsock_socket s, struct msghdr *msg, timeout to, int flags,
                           std::error_code &ec) noexcept {
    return detail::counted(rsock_recvmsg(t.native(), s, msg, flags, to.ms()), ec);
}
inline std::size_t recvmsg(const token &t, rsock_socket s, struct msghdr *msg, timeout to = infinite,
                           int flags = 0) {
    std::error_code ec;
    std::size_t n = recvmsg(t, s, msg, to, flags, ec);
    return detail::checked_transfer(n, ec, "rsock::recvmsg");
}

/** rsock_sendmsg: stopped short, it throws transfer_error with the exact
    count. */
inline std::size_t sendmsg(const token &t, rsock_socket s, const struct msghdr *msg, timeout to, int flags,
                           std::error_code &ec) noexcept {
    return detail::counted(rsock_sendmsg(t.native(), s, msg, flags, to.ms()), ec);
}
inline std::size_t sendmsg(const token &t, rsock_socket s, const struct msghdr *msg, timeout to = infinite,
                           int flags = 0) {
    std::error_code ec;
    std::size_t n = sendmsg(t, s, msg, to, flags, ec);
    return detail::checked_transfer(n, ec, "rsock::sendmsg");
}

/** rsock_read, on any descriptor poll can wait on (0 at end of file). */
inline std::size_t read(const token &t, int fd, void *buf, std::size_t len, timeout to,
                        std::error_code &ec) noexcept {
    return detail::counted(rsock_read(t.native(), fd, buf, len, to.ms()), ec);
}
inline std::size_t read(const token &t, int fd, void *buf, std::size_t len, timeout to = infinite) {
    std::error_code ec;
    std::size_t n = read(t, fd, buf, len, to, ec);
    return detail::checked(n, ec, "rsock::read");
}

/** rsock_write: stopped short, it throws transfer_error with the exact
    count. */
inline std::size_t write(const token &t, int fd, const void *buf, std::size_t len, timeout to,
                         std::error_code &ec) noexcept {
    return detail::counted(rsock_write(t.native(), fd, buf, len, to.ms()), ec);
}
inline std::size_t write(const token &t, int fd, const void *buf, std::size_t len, timeout to = infinite) {
    std::error_code ec;
    std::size_t n = write(t, fd, buf, len, to, ec);
    return detail::checked_transfer(n, ec, "rsock::write");
}
#endif

#if defined(__cpp_lib_span)
/* ---- std::span buffers (C++20) ------------------------------------------- */

inline std::size_t recv(const token &t, rsock_socket s, std::span<std::byte> buf, timeout to, int flags,
                        std::error_code &ec) noexcept {
    return recv(t, s, buf.data(), buf.size(), to, flags, ec);
}
inline std::size_t recv(const token &t, rsock_socket s, std::span<std::byte> buf, timeout to = infinite,
                        int flags = 0) {
    return recv(t, s, buf.data(), buf.size(), to, flags);
}
inline std::size_t send(const token &t, rsock_socket s, std::span<const std::byte> buf, timeout to, int flags,
                        std::error_code &ec) noexcept {
    return send(t, s, buf.data(), buf.size(), to, flags, ec);
}
inline std::size_t send(const token &t, rsock_socket s, std::span<const std::byte> buf, timeout to = infinite,
                        int flags = 0) {
    return send(t, s, buf.data(), buf.size(), to, flags);
}
inline std::size_t poll(const token &t, std::span<rsock_pollfd> fds, timeout to, std::error_code &ec) noexcept {
    return poll(t, fds.data(), fds.size(), to, ec);
}
inline std::size_t poll(const token &t, std::span<rsock_pollfd> fds, timeout to = infinite) {
    return poll(t, fds.data(), fds.size(), to);
}
#endif

} // namespace rsock

#endif /* RSOCK_HPP */
