//! Errors: the OS error code type (`sys::Error`), how the calling thread's
//! error is read and set (errno, or WSAGetLastError on Windows), and the
//! static descriptions of codes (`rsock_strerror`).

use std::ffi::CStr;

pub(crate) use crate::sys::{last_error, set_last_error, Error, Result};
/// The codes the C layer reports itself.
pub(crate) use crate::sys::{EINVAL, ENOMEM, ENOTRECOVERABLE};

macro_rules! table {
    ($code:expr, $($name:ident => $text:literal),* $(,)?) => {
        match $code {
            0 => c"success",
            $(c if c == crate::sys::codes::$name => $text,)*
            _ => c"unknown error",
        }
    };
}

/// A static, NUL-terminated description of an OS error code. Never fails.
pub fn describe_c(code: i32) -> &'static CStr {
    platform(code).unwrap_or_else(|| common(code))
}

/// Codes only Winsock has: the resolver's, and a missing WSAStartup.
#[cfg(windows)]
fn platform(code: i32) -> Option<&'static CStr> {
    use crate::sys::codes::*;
    Some(match code {
        WSAHOST_NOT_FOUND => c"host not found",
        WSATRY_AGAIN => c"temporary failure in name resolution",
        WSANO_RECOVERY => c"non-recoverable failure in name resolution",
        WSANO_DATA => c"no address for this name",
        WSATYPE_NOT_FOUND => c"service not found",
        WSANOTINITIALISED => c"Winsock is not initialised (call WSAStartup)",
        _ => return None,
    })
}

#[cfg(not(windows))]
fn platform(_code: i32) -> Option<&'static CStr> {
    None
}

fn common(code: i32) -> &'static CStr {
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

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (os error {})", describe(self.0), self.0)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    #[test]
    fn known_and_unknown_codes() {
        assert_eq!(
            super::describe(crate::sys::ECANCELED),
            "operation cancelled"
        );
        assert_eq!(super::describe(-12345), "unknown error");
    }
}
