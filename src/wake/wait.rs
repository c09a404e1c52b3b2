//! The cancellable wait: poll the caller's sockets plus the thread's wake
//! descriptor until a socket is ready, the token is cancelled, or the
//! deadline passes.

use super::token::NO_DEADLINE;
use super::waiter::{with_waiter, WaiterHandle};
use super::{Call, Deadline};
use crate::sys::fast::{SigWaiter, Stop};
use crate::sys::{self, PollFd};

/// Longest wait between two calls of a blocking hook.
const HOOK_INTERVAL_MS: u64 = 10;

/// Waits on `fds[..n-1]`; the last entry is filled with the wake descriptor.
/// Returns the number of caller entries with events (> 0), or ECANCELED,
/// ETIMEDOUT (or the plain call's error for a socket timeout, and for a
/// non-blocking socket at once: see `Deadline::resolve`), or the error of
/// `poll`. EINTR resumes with the time left.
#[inline]
pub(crate) fn wait(call: &Call, fds: &mut [PollFd], dl: &mut Deadline) -> sys::Result<usize> {
    dl.resolve()?;
    with_waiter(|w| wait_with(call, fds, dl, w))
}

/// `wait` with the thread's waiter (a function rather than the closure's
/// body, so that it is inlined into the wait).
#[inline(always)]
fn wait_with(
    call: &Call,
    fds: &mut [PollFd],
    dl: &mut Deadline,
    w: &mut WaiterHandle,
) -> sys::Result<usize> {
    let last = fds.len() - 1;
    // On Windows a socket has one event selection, which a hook's wait
    // sets on the descriptor it polls: a shared one would be fought over.
    let mut reg = w.register(call.token(), cfg!(windows) && call.has_hook())?;
    fds[last] = sys::poll_entry(reg.poll_fd(), sys::POLLIN);
    let mut crowd_woke = false;
    loop {
        // Registered before this check: a cancel from here on signals us.
        call.check()?;
        if crowd_woke {
            // Woken through the token's crowd, and the call goes on: the
            // crowd's descriptor stays readable, so wait alone.
            reg.wait_alone()?;
            fds[last] = sys::poll_entry(reg.poll_fd(), sys::POLLIN);
            crowd_woke = false;
            continue;
        }
        let left = dl.remaining_ms();
        let mut slice = left;
        let hooked = call.has_hook();
        if hooked {
            call.run_hook();
            call.check()?;
            slice = Some(left.map_or(HOOK_INTERVAL_MS, |l| l.min(HOOK_INTERVAL_MS)));
        }
        let ms = slice.map_or(-1, |s| s.min(i32::MAX as u64) as i32);
        // With a hook, a window message for the thread also ends the
        // slice (Windows), so that the hook runs at once.
        let polled = if hooked {
            sys::poll_hooked(fds, ms)
        } else {
            sys::poll(fds, ms)
        };
        match polled {
            Err(e) if e.0 == sys::EINTR => continue,
            Err(e) => return Err(e),
            Ok(0) => {
                // Timed out, unless a hook slice ended before the
                // deadline (or a window message arrived).
                if left == Some(0) || dl.remaining_ms() == Some(0) {
                    return Err(dl.timeout_error());
                }
            }
            Ok(mut n) => {
                if fds[last].revents != 0 {
                    crowd_woke = !reg.drain();
                    fds[last].revents = 0;
                    n -= 1;
                }
                if n > 0 {
                    return Ok(n);
                }
            }
        }
    }
}

/// Waits for one socket; returns its `revents`.
#[inline]
pub(crate) fn wait_one(
    call: &Call,
    sock: sys::RawSocket,
    events: i16,
    dl: &mut Deadline,
) -> sys::Result<i16> {
    let mut fds = [
        PollFd {
            fd: sock,
            events,
            revents: 0,
        },
        sys::poll_entry(sys::INVALID_SOCKET, 0),
    ];
    wait(call, &mut fds, dl)?;
    Ok(fds[0].revents)
}

/// The express lane's wait (`ops::express`): `sock` alone, no timeout, no
/// hook, for a call that `Call::enter_express` started. Returns the
/// socket's `revents`, or the call's end (ECANCELED, or ETIMEDOUT for a
/// deadline that has passed) when a wake-up came from its token; None
/// where the general `wait` must take over, with nothing consumed: any
/// other wake-up or change to the token, EINTR, or any failure.
#[inline(always)]
pub(crate) fn wait_express(
    call: &Call,
    sock: sys::RawSocket,
    events: i16,
) -> Option<sys::Result<i16>> {
    let r = with_waiter(
        #[inline(always)]
        |w| {
            let Some(slot) = call.token().register_express(w.record()) else {
                return Ok(None);
            };
            // Registered before this check: a change from here on wakes us.
            if !call.unchanged() {
                slot.release();
                return Ok(None);
            }
            let mut fds = [
                PollFd {
                    fd: sock,
                    events,
                    revents: 0,
                },
                sys::poll_entry(w.poll_fd(), sys::POLLIN),
            ];
            let r = match sys::poll(&mut fds, -1) {
                Ok(_) if fds[1].revents == 0 => Some(Ok(fds[0].revents)),
                Ok(_) => {
                    w.drain();
                    // A cancel ends the call here, at once.
                    call.check().err().map(Err)
                }
                Err(_) => None,
            };
            slot.release();
            Ok(r)
        },
    );
    r.ok().flatten()
}

/// The signal-wake fast path (`sys::fast`): `op`, the plain blocking call
/// through the stub, which a cancel interrupts with a signal. `None` where
/// it does not apply, and the caller takes the poll path: the fast path is
/// off, the thread has a hook or blocks the signal, the wait is bounded (a
/// timeout, or a deadline on the token's chain, also one set during the
/// call), or the call would not block in the kernel (EAGAIN from a
/// non-blocking socket, unless the call asked for the plain call's
/// behaviour, whose answer that is). A signal of the program's own (EINTR)
/// resumes the call.
#[inline]
pub(crate) fn fast<T>(
    call: &Call,
    dl: &Deadline,
    op: impl FnMut(&SigWaiter) -> Result<T, Stop>,
) -> Option<sys::Result<T>> {
    let signo = sys::fast::signo();
    if signo == 0 || !dl.unbounded() || call.has_hook() {
        return None;
    }
    match with_waiter(|w| Ok(fast_with(call, dl, signo, w, op))) {
        Ok(r) => r,
        Err(e) => Some(Err(e)),
    }
}

fn fast_with<T>(
    call: &Call,
    dl: &Deadline,
    signo: std::ffi::c_int,
    w: &mut WaiterHandle,
    mut op: impl FnMut(&SigWaiter) -> Result<T, Stop>,
) -> Option<sys::Result<T>> {
    let sw = w.sig_waiter().ok()?;
    // Before `begin`: after it, a kick's re-raise may block the signal.
    if sys::fast::signal_blocked(signo) {
        return None;
    }
    let _reg = match w.register_kicked(call.token(), sw) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    loop {
        sw.begin();
        // Registered and begun before this check: a cancel (or a deadline
        // set) from here on kicks us.
        if let Err(e) = call.check() {
            sw.end();
            return Some(Err(e));
        }
        if call.token().deadline() != NO_DEADLINE {
            sw.end();
            return None;
        }
        let r = op(sw);
        sw.end();
        match r {
            Ok(v) => return Some(Ok(v)),
            Err(Stop::Kicked | Stop::Interrupted) => continue,
            Err(Stop::Os(e)) if e.would_block() && !dl.is_plain() => return None,
            Err(Stop::Os(e)) => return Some(Err(e)),
        }
    }
}
