//! The operations: one for each C entry point that does more than touch a
//! token. Each validates what the C layer could not, starts a `Call` on the
//! token (the one-call-per-thread rule, the cancel check, the deadline),
//! and returns its result as a value: errors as `Error`, a short transfer
//! as a `Transfer` with its reason, a failed lookup as a `ResolveError`.
//! The C layer turns those into return values and errno.

mod blocking_hook;
mod connect_host;
mod express;
#[cfg(unix)]
mod fdio;
mod io;
#[cfg(unix)]
mod msg;
mod resolve;

pub(crate) use blocking_hook::{cancel_blocking_call, is_blocking, set_blocking_hook};
pub(crate) use connect_host::connect_host;
#[cfg(unix)]
pub(crate) use fdio::{read, write};
pub(crate) use io::{
    accept, block, connect, poll, recv, recvfrom, send, sendto, set_mode, Short, Transfer,
    READABLE, WRITABLE,
};
#[cfg(unix)]
pub(crate) use msg::{recvmsg, sendmsg};
pub(crate) use resolve::{getaddrinfo, ResolveError};

/// What the operations take and give besides tokens and errors.
pub(crate) use crate::sys::{
    addrinfo, sockaddr, socklen_t, AddrIn, AddrOut, Hints, PollFd, RawSocket, EAI_SYSTEM,
    INVALID_SOCKET,
};
#[cfg(unix)]
pub(crate) use crate::sys::{iov_max, IoVec, MsgHdr, EMSGSIZE};
