// The benchmark's C++ variant: the same receive and send through
// include/rsock.hpp (the error_code forms), called from bench.c with an
// rsock::token the endpoint holds.
#include "rsock.hpp"

#include <sys/types.h>

extern "C" {
void *bench_cpp_token(rsock_token *tok);
void bench_cpp_token_free(void *t);
ssize_t bench_cpp_recv(const void *t, int fd, void *buf, size_t len);
ssize_t bench_cpp_send(const void *t, int fd, const void *buf, size_t len);
}

// A new rsock::token sharing `tok` (a reference of its own).
void *bench_cpp_token(rsock_token *tok) {
    return new (std::nothrow) rsock::token(rsock::token::adopt(rsock_token_ref(tok)));
}

void bench_cpp_token_free(void *t) { delete static_cast<rsock::token *>(t); }

ssize_t bench_cpp_recv(const void *t, int fd, void *buf, size_t len) {
    std::error_code ec;
    std::size_t n = rsock::recv(*static_cast<const rsock::token *>(t), fd, buf, len, rsock::infinite, 0, ec);
    return ec ? -1 : static_cast<ssize_t>(n);
}

ssize_t bench_cpp_send(const void *t, int fd, const void *buf, size_t len) {
    std::error_code ec;
    std::size_t n =
        rsock::send(*static_cast<const rsock::token *>(t), fd, buf, len, rsock::infinite, MSG_NOSIGNAL, ec);
    return ec && n == 0 ? -1 : static_cast<ssize_t>(n);
}
