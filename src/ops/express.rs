//! The express lane: the receives and sends that request/response code
//! makes all day (RSOCK_INFINITE, flags 0 for a receive, a root token with
//! no deadline, no blocking hook, the signal-wake fast path off for a
//! receive), with no more work than a hand-written `poll([sock, eventfd])`
//! loop beyond the token check and one registration. Anything unusual (a
//! stall, EINTR, a wake-up, a change to the token) hands the call, started
//! and with nothing consumed, to the general path (`io.rs`).

use super::io::{dont_wait, receive_waiting, WaitFirst};
use crate::sys::{self, RawSocket, Result};
use crate::wake::{wait_express, Call, Deadline, Plain, Token};

/// RSOCK_INFINITE.
const INFINITE: i32 = -1;

/// Starts a receive on the lane; None: not a case for it.
#[inline(always)]
pub(super) fn start_receive<'t>(
    token: &'t Token,
    sock: RawSocket,
    flags: i32,
    timeout_ms: i32,
) -> Option<Call<'t>> {
    if flags != 0 || timeout_ms != INFINITE || sys::is_invalid(sock) || sys::fast::signo() != 0 {
        return None;
    }
    Call::enter_express(token)
}

/// A receive started by `start_receive`, made as `io::retry_as` makes it
/// (trying first, or waiting first: see `WaitFirst`) while nothing unusual
/// happens; then the general path's.
#[inline(always)]
pub(super) fn receive(
    call: &Call,
    sock: RawSocket,
    mut attempt: impl FnMut() -> Result<usize>,
) -> Result<usize> {
    let events = sys::POLLIN | sys::POLLRDHUP;
    let wait_first = WaitFirst::now(sock);
    let waited = match wait_first {
        true => wait_express(call, sock, events),
        false => Some(Ok(0)),
    };
    match waited {
        Some(Ok(_)) => match attempt() {
            Err(e) if e.would_block() => {
                if !wait_first {
                    WaitFirst::found_nothing(sock);
                    match wait_express(call, sock, events) {
                        Some(Ok(_)) => match attempt() {
                            Err(e) if e.would_block() || e.0 == sys::EINTR => {}
                            r => return r,
                        },
                        Some(Err(e)) => return Err(ended(sock, e)),
                        None => {}
                    }
                }
            }
            Err(e) if e.0 == sys::EINTR => {}
            r => {
                WaitFirst::found_ready(sock);
                return r;
            }
        },
        Some(Err(e)) => return Err(ended(sock, e)),
        None => {}
    }
    receive_general(call, sock, attempt)
}

/// A receive that its token ended: the next one on `sock` tries first (as
/// in `io::retry_as`: the caller may close the socket and reuse its number).
#[cold]
fn ended(sock: RawSocket, e: sys::Error) -> sys::Error {
    WaitFirst::forget(sock);
    e
}

/// The rest of a receive the lane started, on the general path.
#[cold]
#[inline(never)]
fn receive_general(
    call: &Call,
    sock: RawSocket,
    attempt: impl FnMut() -> Result<usize>,
) -> Result<usize> {
    let mut dl = Deadline::new(INFINITE).on(call.token());
    receive_waiting(call, sock, 0, &mut dl, || Ok(0), attempt)
}

/// Starts a send on the lane (its first attempt is the general path's,
/// and most sends complete in it); None: not a case for it.
#[inline(always)]
pub(super) fn start_send<'t>(
    token: &'t Token,
    sock: RawSocket,
    flags: i32,
    timeout_ms: i32,
) -> Option<(Call<'t>, Deadline<'t>)> {
    if flags & !sys::SEND_FLAGS != 0 || dont_wait(flags) || sys::is_invalid(sock) {
        return None;
    }
    let dl = Deadline::check_socket(timeout_ms, sock, Plain::Send).ok()?;
    Some((Call::enter_express(token)?, dl.on(token)))
}
