//! Static descriptions of error codes (`rsock_strerror`).

use std::ffi::CStr;

macro_rules! table {
    ($code:expr, $($name:ident => $text:literal),* $(,)?) => {
        match $code {
            0 => c"success",
            $(c if c == libc::$name => $text,)*
            _ => c"unknown error",
        }
    };
}

/// A static, NUL-terminated description of an OS error code. Never fails.
pub fn describe_c(code: i32) -> &'static CStr {
    table!(code,
        ECANCELED => c"operation cancelled",
        ETIMEDOUT => c"operation timed out",
        EINPROGRESS => c"a blocking call is already in progress on this thread",
        EALREADY => c"operation already in progress",
        EINVAL => c"invalid argument",
        EBADF => c"bad socket descriptor",
        ENOTSOCK => c"descriptor is not a socket",
        EINTR => c"interrupted by a signal",
        EAGAIN => c"resource temporarily unavailable",
        EMFILE => c"too many open files in this process",
        ENFILE => c"too many open files in the system",
        ENOMEM => c"out of memory",
        ENOBUFS => c"no buffer space available",
        EFAULT => c"bad address",
        EPIPE => c"broken pipe",
        ECONNREFUSED => c"connection refused",
        ECONNRESET => c"connection reset by peer",
        ECONNABORTED => c"connection aborted",
        ENOTCONN => c"socket is not connected",
        EISCONN => c"socket is already connected",
        EADDRINUSE => c"address already in use",
        EADDRNOTAVAIL => c"address not available",
        EAFNOSUPPORT => c"address family not supported",
        EPROTOTYPE => c"wrong protocol type for socket",
        EOPNOTSUPP => c"operation not supported on socket",
        EDESTADDRREQ => c"destination address required",
        EMSGSIZE => c"message too long",
        ENETDOWN => c"network is down",
        ENETUNREACH => c"network is unreachable",
        EHOSTUNREACH => c"host is unreachable",
        EACCES => c"permission denied",
        ENOTRECOVERABLE => c"internal error in rsock",
    )
}

/// The description as a Rust string.
pub fn describe(code: i32) -> &'static str {
    describe_c(code).to_str().unwrap_or("unknown error")
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_and_unknown_codes() {
        assert_eq!(super::describe(libc::ECANCELED), "operation cancelled");
        assert_eq!(super::describe(-12345), "unknown error");
    }
}
