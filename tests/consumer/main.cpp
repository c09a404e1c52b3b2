// The C++ interface against an installed rsock: a cancelled token makes a
// receive fail at once with std::errc::operation_canceled.
#include <rsock.hpp>

#include <cstdio>
#include <sys/socket.h>
#include <unistd.h>

int main() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 2;
    rsock::token t;
    t.cancel();
    char c;
    std::error_code ec;
    rsock::recv(t, sv[0], &c, 1, rsock::infinite, 0, ec);
    bool ok = ec == std::errc::operation_canceled;
    std::printf("consumer (C++): %s\n", ok ? "cancelled as expected" : "unexpected result");
    close(sv[0]);
    close(sv[1]);
    return ok ? 0 : 1;
}
