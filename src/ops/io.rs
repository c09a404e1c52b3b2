//! Cancellable socket operations: try the call without blocking, and wait
//! (cancellably, with a deadline) only when it would block.

use super::express;
use crate::sys::fast::{SigWaiter, Stop};
use crate::sys::{self, AddrIn, AddrOut, Error, PollFd, RawSocket, Result};
use crate::wake::{fast, wait, wait_one, Call, Deadline, Plain, Token};

/// `rsock_block` event bits.
pub const READABLE: i32 = 1;
/// `rsock_block` event bits.
pub const WRITABLE: i32 = 2;

/// Puts `sock` in non-blocking or blocking mode (and, where the system
/// cannot report it, remembers it: see `sys::set_mode`).
pub fn set_mode(sock: RawSocket, nonblocking: bool) -> Result<()> {
    check_sock(sock)?;
    sys::set_mode(sock, nonblocking)
}

fn check_sock(sock: RawSocket) -> Result<()> {
    if sys::is_invalid(sock) {
        return Err(Error(sys::EBADF));
    }
    Ok(())
}

/// Common prologue: argument checks, the one-call-per-thread rule, and the
/// cancel check that makes a cancel landing before the call win.
fn begin(token: &Token, sock: RawSocket, timeout_ms: i32) -> Result<(Call<'_>, Deadline<'_>)> {
    check_sock(sock)?;
    Call::start(token, timeout_ms)
}

/// `begin` for a call that replaces a system call, which also takes
/// RSOCK_SOCKET_TIMEOUT: the plain call's behaviour on this socket (its
/// mode, and the socket timeout that `kind` names), plus cancellation.
fn begin_socket(
    token: &Token,
    sock: RawSocket,
    timeout_ms: i32,
    kind: Plain,
) -> Result<(Call<'_>, Deadline<'_>)> {
    check_sock(sock)?;
    Call::start_socket(token, timeout_ms, sock, kind)
}

/// Waits until `sock` is ready for `events` (READABLE | WRITABLE); returns
/// the ready subset. An error or hang-up counts as every requested event.
pub fn block(token: &Token, sock: RawSocket, events: i32, timeout_ms: i32) -> Result<i32> {
    if events == 0 || events & !(READABLE | WRITABLE) != 0 {
        return Err(Error(sys::EINVAL));
    }
    let (call, mut dl) = begin(token, sock, timeout_ms)?;
    let mut ev = 0;
    if events & READABLE != 0 {
        ev |= sys::POLLIN;
    }
    if events & WRITABLE != 0 {
        ev |= sys::POLLOUT;
    }
    let rev = wait_one(&call, sock, ev, &mut dl)?;
    if rev & sys::POLLNVAL != 0 {
        return Err(Error(sys::EBADF));
    }
    if rev & (sys::POLLERR | sys::POLLHUP) != 0 {
        return Ok(events);
    }
    let mut ready = 0;
    if rev & sys::POLLIN != 0 {
        ready |= READABLE;
    }
    if rev & sys::POLLOUT != 0 {
        ready |= WRITABLE;
    }
    Ok(ready & events)
}

/// `poll` over the caller's descriptors, cancellable. Returns the number of
/// entries with events, 0 on timeout (as `poll` does), including when the
/// token's deadline has passed.
pub fn poll(token: &Token, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize> {
    match poll_once(token, fds, timeout_ms) {
        Err(e) if e.0 == sys::ETIMEDOUT => {
            for f in fds.iter_mut() {
                f.revents = 0;
            }
            Ok(0)
        }
        r => r,
    }
}

fn poll_once(token: &Token, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize> {
    let (call, mut dl) = Call::start(token, timeout_ms)?;
    // The caller's entries plus one for the wake descriptor: on the stack
    // for small sets.
    const NONE: PollFd = sys::poll_entry(sys::INVALID_SOCKET, 0);
    let mut small = [NONE; 16];
    let mut large;
    let all: &mut [PollFd] = if fds.len() < small.len() {
        &mut small[..=fds.len()]
    } else {
        large = sys::try_vec(fds.len() + 1)?;
        large.resize(fds.len() + 1, NONE);
        &mut large
    };
    for (dst, src) in all.iter_mut().zip(fds.iter()) {
        dst.fd = src.fd;
        dst.events = src.events;
    }
    let n = match wait(&call, all, &mut dl) {
        // poll's own limit, RLIMIT_NOFILE entries, which the caller's set
        // alone meets but not with the wake entry.
        Err(e) if e.0 == sys::EINVAL && sys::poll_limit().is_some_and(|l| fds.len() <= l) => {
            return poll_merged(&call, fds, &mut dl);
        }
        r => r?,
    };
    for (dst, src) in fds.iter_mut().zip(all.iter()) {
        dst.revents = src.revents;
    }
    Ok(n)
}

/// `poll` for a set as large as poll's limit allows: each descriptor is
/// polled once however often it is listed, and negative ones (which poll
/// ignores) not at all; each entry then gets its descriptor's events that
/// it asked for (and errors and hang-ups), as from poll. If that leaves no
/// room for the wake entry either (as many distinct descriptors as the
/// limit), the set is polled alone in slices of at most 10 ms, with a
/// cancel check between them.
fn poll_merged(call: &Call, fds: &mut [PollFd], dl: &mut Deadline) -> Result<usize> {
    const SLICE_MS: u64 = 10;
    let mut order = sys::try_vec(fds.len())?;
    order.extend((0..fds.len()).filter(|&i| !sys::is_invalid(fds[i].fd)));
    order.sort_unstable_by_key(|&i| fds[i].fd);
    let mut merged = sys::try_vec(order.len() + 1)?;
    let mut slot = sys::try_vec(fds.len())?;
    slot.resize(fds.len(), usize::MAX);
    for &i in &order {
        if merged.last().map_or(true, |m: &PollFd| m.fd != fds[i].fd) {
            merged.push(sys::poll_entry(fds[i].fd, 0));
        }
        let k = merged.len() - 1;
        merged[k].events |= fds[i].events;
        slot[i] = k;
    }
    if sys::poll_limit().is_some_and(|l| merged.len() < l) {
        merged.push(sys::poll_entry(sys::INVALID_SOCKET, 0));
        wait(call, &mut merged, dl)?;
    } else {
        loop {
            call.check()?;
            let ms = dl.remaining_ms().map_or(SLICE_MS, |l| l.min(SLICE_MS));
            match sys::poll(&mut merged, ms as i32) {
                Err(e) if e.0 == sys::EINTR => {}
                Err(e) => return Err(e),
                Ok(0) if !dl.expired() => {}
                Ok(_) => break,
            }
        }
    }
    let always = sys::POLLERR | sys::POLLHUP | sys::POLLNVAL;
    let mut n = 0;
    for (f, &k) in fds.iter_mut().zip(&slot) {
        f.revents = match merged.get(k) {
            Some(m) => m.revents & (f.events | always),
            None => 0,
        };
        n += usize::from(f.revents != 0);
    }
    Ok(n)
}

/// Repeats a non-blocking attempt until it completes, waiting for `events`
/// whenever it would block.
pub(super) fn retry<T>(
    call: &Call,
    sock: RawSocket,
    events: i16,
    dl: &mut Deadline,
    attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    retry_as(call, sock, events, dl, false, None, attempt)
}

/// What the plain blocking call reports on a socket whose read side is
/// shut down, where the non-blocking attempt says it would block (Linux:
/// datagram receives return 0, an AF_UNIX listener's accept EINVAL).
type ReadShut<T> = Option<fn() -> Result<T>>;

/// Consecutive waits that were ready at once while the attempt still
/// would block, before the retry backs off (see `retry_as`).
const STALLS_BEFORE_BACKOFF: u32 = 2;
/// The longest back-off between two such attempts.
const MAX_BACKOFF_MS: u64 = 32;

/// `retry`, and with `adaptive` (a receive) it may wait before the first
/// attempt on a socket whose last receive on this thread found nothing (see
/// `WaitFirst`). With `read_shut`, a wait that reports the read side shut
/// down (POLLRDHUP) while the attempt would block ends the call with what
/// the plain call reports.
///
/// No rsock call spins: where poll says ready and the attempt keeps saying
/// it would block (an unconnected AF_UNIX datagram sender whose receiver's
/// queue is full: poll sees only the sender's buffer), the retry backs off,
/// sleeping 1, 2, 4 ... 32 ms between attempts (a cancel still ends the
/// sleep at once), instead of polling and failing in a loop.
fn retry_as<T>(
    call: &Call,
    sock: RawSocket,
    events: i16,
    dl: &mut Deadline,
    adaptive: bool,
    read_shut: ReadShut<T>,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    let events = if read_shut.is_some() {
        events | sys::POLLRDHUP
    } else {
        events
    };
    let mut first = true;
    let mut revents = 0;
    let mut stalls = 0u32;
    let r = (|| {
        if adaptive && WaitFirst::now(sock) {
            revents = match wait_one(call, sock, events, dl) {
                // A non-blocking socket under RSOCK_SOCKET_TIMEOUT: the
                // attempt says what the plain call would.
                Err(e) if e.would_block() && dl.is_plain() => 0,
                r => r?,
            };
        }
        loop {
            match attempt() {
                Err(e) if e.would_block() && !first && dl.expired() => {
                    return Err(dl.timeout_error());
                }
                Err(e) if e.would_block() => {}
                Err(e) if e.0 == sys::EINTR => continue,
                r => {
                    if adaptive && first {
                        WaitFirst::found_ready(sock);
                    }
                    return r;
                }
            }
            if adaptive && first {
                WaitFirst::found_nothing(sock);
            }
            // Ready by poll, yet the attempt would block.
            let stalled = !first || revents != 0;
            if stalled && read_side_shut(revents) {
                if let Some(plain) = read_shut {
                    return plain();
                }
            }
            if stalls >= STALLS_BEFORE_BACKOFF {
                let ms = 1u64 << (stalls - STALLS_BEFORE_BACKOFF).min(5);
                pause(call, dl, ms.min(MAX_BACKOFF_MS))?;
            }
            first = false;
            // Only after a stall: was the socket ready again at once?
            let since = stalled.then(std::time::Instant::now);
            revents = wait_one(call, sock, events, dl)?;
            stalls = match since {
                Some(t) if t.elapsed() < std::time::Duration::from_millis(1) => stalls + 1,
                _ => 0,
            };
        }
    })();
    if adaptive
        && matches!(&r, Err(e) if e.0 == sys::ETIMEDOUT || e.0 == sys::ECANCELED || e.would_block())
    {
        // A caller that gives up on a socket may close it and reuse its
        // number: start the next receive on it by trying first.
        WaitFirst::forget(sock);
    }
    r
}

/// Whether a wait reported the read side shut down (never where the
/// system has no such event).
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    allow(clippy::bad_bit_mask)
)]
fn read_side_shut(revents: i16) -> bool {
    revents & sys::POLLRDHUP != 0
}

/// Sleeps up to `ms` within the deadline; a cancel ends it at once (as
/// ECANCELED), the deadline with ETIMEDOUT.
fn pause(call: &Call, dl: &mut Deadline, ms: u64) -> Result<()> {
    let mut slice = dl.slice(ms)?;
    let mut only_wake = [sys::poll_entry(sys::INVALID_SOCKET, 0)];
    match wait(call, &mut only_wake, &mut slice) {
        Err(e) if e.0 == sys::ETIMEDOUT && dl.expired() => Err(dl.timeout_error()),
        Err(e) if e.0 == sys::ETIMEDOUT => Ok(()),
        r => r.map(|_| ()),
    }
}

/// The receive-side wait path. A receive normally tries the call first and
/// waits only if it would block: one system call when data is there, three
/// (attempt, poll, attempt) when it is not. A thread that is ahead of its
/// peer (request/response traffic) finds nothing almost every time, so
/// after a receive on a socket found nothing, the next ones on that socket
/// wait first (poll, then the call: two system calls). Every 8th call in that
/// mode tries first again, and leaves the mode if it finds data ready, so a
/// reader that falls behind a fast stream soon stops paying for the poll;
/// each probe that finds nothing doubles the interval, up to 64 calls, so
/// that steady request/response traffic hardly pays for the probes.
/// A receive that times out or is cancelled leaves the mode, so that a
/// socket given up on, closed and its number reused starts by trying. (A
/// number reused for something recv cannot use, such as a listener or a
/// pipe, after a receive that completed still waits for it to be readable
/// before failing with ENOTCONN or ENOTSOCK.)
/// Per thread, for the socket it received on last.
pub(super) struct WaitFirst;

#[derive(Clone, Copy)]
struct WaitFirstState {
    sock: RawSocket,
    on: bool,
    since_probe: u8,
    /// Calls between probes: FIRST_PROBE << shift.
    shift: u8,
}

const WAIT_FIRST_OFF: WaitFirstState = WaitFirstState {
    sock: sys::INVALID_SOCKET,
    on: false,
    since_probe: 0,
    shift: 0,
};

thread_local! {
    static WAIT_FIRST: std::cell::Cell<WaitFirstState> = const {
        std::cell::Cell::new(WAIT_FIRST_OFF)
    };
}

impl WaitFirst {
    const FIRST_PROBE: u8 = 8;
    const MAX_SHIFT: u8 = 3;

    /// Whether this receive should wait before its first attempt.
    #[inline]
    pub(super) fn now(sock: RawSocket) -> bool {
        WAIT_FIRST
            .try_with(|c| {
                let mut st = c.get();
                if st.sock != sock || !st.on {
                    return false;
                }
                st.since_probe += 1;
                let probe = st.since_probe >= Self::FIRST_PROBE << st.shift;
                if probe {
                    st.since_probe = 0;
                }
                c.set(st);
                !probe
            })
            .unwrap_or(false)
    }

    #[inline]
    pub(super) fn forget(sock: RawSocket) {
        let _ = WAIT_FIRST.try_with(|c| {
            if c.get().sock == sock {
                c.set(WAIT_FIRST_OFF);
            }
        });
    }

    /// A first attempt (try-first, or a probe) that found nothing.
    #[inline]
    pub(super) fn found_nothing(sock: RawSocket) {
        let _ = WAIT_FIRST.try_with(|c| {
            let st = c.get();
            // A probe in the mode found nothing: probe half as often.
            let shift = match st.sock == sock && st.on {
                true => (st.shift + 1).min(Self::MAX_SHIFT),
                false => 0,
            };
            c.set(WaitFirstState {
                sock,
                on: true,
                since_probe: 0,
                shift,
            })
        });
    }

    /// A first attempt (try-first, or a probe) that completed at once.
    #[inline]
    pub(super) fn found_ready(sock: RawSocket) {
        let _ = WAIT_FIRST.try_with(|c| {
            let st = c.get();
            if st.sock == sock && st.on && st.since_probe == 0 {
                c.set(WaitFirstState {
                    on: false,
                    shift: 0,
                    ..st
                });
            }
        });
    }
}

/// A caller's MSG_DONTWAIT means what it means to the system call: one
/// attempt, failing with EAGAIN/EWOULDBLOCK if it would block (send returns
/// what was queued). So does MSG_ERRQUEUE: reading the error queue never
/// waits, in the kernel either (wait for POLLERR with rsock_poll).
#[cfg_attr(windows, allow(clippy::bad_bit_mask))] // Windows has neither flag
pub(super) fn dont_wait(flags: i32) -> bool {
    flags & (sys::MSG_DONTWAIT | sys::MSG_ERRQUEUE) != 0
}

/// Flags outside `known` (the call's flags on this system) are EINVAL
/// rather than passed on, since some systems silently ignore unknown bits.
fn check_flags(flags: i32, known: i32) -> Result<()> {
    if flags & !known != 0 {
        return Err(Error(sys::EINVAL));
    }
    Ok(())
}

/// What a receive waits for: urgent data for MSG_OOB (waiting for ordinary
/// data would spin while only ordinary data is queued), otherwise data.
fn recv_events(flags: i32) -> i16 {
    if flags & sys::MSG_OOB != 0 {
        sys::POLLPRI
    } else {
        sys::POLLIN
    }
}

/// The count of a call that may stop short of its length (a send, or a
/// receive with MSG_WAITALL) and, if it did, why. A short count is a
/// success, as from a blocking call interrupted part-way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub n: usize,
    pub short: Option<Short>,
}

/// Why a transfer stopped short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Short {
    /// The peer ended the stream.
    EndOfStream,
    /// Cancelled, timed out or failed after some progress.
    Stopped(Error),
}

impl Transfer {
    pub(super) fn all(n: usize) -> Transfer {
        Transfer { n, short: None }
    }
}

/// Transfers until `len` bytes are done (send, or recv with MSG_WAITALL on a
/// stream). A cancel, timeout or error after some progress returns the
/// count so far, as a blocking call interrupted part-way does.
pub(super) fn transfer_all(
    call: &Call,
    sock: RawSocket,
    events: i16,
    len: usize,
    dl: &mut Deadline,
    mut attempt: impl FnMut(usize) -> Result<usize>,
) -> Result<Transfer> {
    transfer(call, sock, events, len, dl, false, |done| {
        attempt(done).map(Piece::more)
    })
}

/// What one attempt of a `transfer` moved, and whether the transfer is
/// complete after it however much is left (a gathering recvmsg after
/// ancillary data, as Linux's own MSG_WAITALL stops after SCM_RIGHTS).
pub(super) struct Piece {
    pub n: usize,
    pub last: bool,
}

impl Piece {
    pub(super) fn more(n: usize) -> Piece {
        Piece { n, last: false }
    }
}

/// `transfer_all`, for attempts that may end the transfer early
/// (`Piece::last`), and with `wait_first` for a descriptor in blocking
/// mode, where an attempt is made only once a wait says it is ready.
pub(super) fn transfer(
    call: &Call,
    sock: RawSocket,
    events: i16,
    len: usize,
    dl: &mut Deadline,
    wait_first: bool,
    mut attempt: impl FnMut(usize) -> Result<Piece>,
) -> Result<Transfer> {
    let mut done = 0;
    loop {
        // After a short transfer the buffer is full (send) or drained
        // (recv): an attempt now would only fail with EAGAIN, so wait first
        // (unless a blocking hook is installed: it runs only when a call
        // has to wait).
        let step = if wait_first || (done > 0 && !call.has_hook()) {
            wait_one(call, sock, events, dl)
                .and_then(|_| retry(call, sock, events, dl, || attempt(done)))
        } else {
            retry(call, sock, events, dl, || attempt(done))
        };
        let short = match step {
            Ok(p) if p.n == 0 && len > 0 => Short::EndOfStream,
            Ok(p) => {
                done += p.n;
                if done >= len || p.last {
                    return Ok(Transfer::all(done));
                }
                continue;
            }
            Err(e) if done > 0 => Short::Stopped(e),
            Err(e) => return Err(e),
        };
        return Ok(Transfer {
            n: done,
            short: Some(short),
        });
    }
}

/// `recv`, cancellable. A cancelled or timed-out call consumed nothing.
// Inlined, with `receive`, into the C entry: the express lane in one frame.
#[inline(always)]
pub fn recv(
    token: &Token,
    sock: RawSocket,
    buf: &mut [u8],
    flags: i32,
    timeout_ms: i32,
) -> Result<Transfer> {
    receive(
        token,
        sock,
        buf,
        flags,
        timeout_ms,
        true,
        |buf, flags| sys::recv(sock, buf, flags),
        |sw, buf, flags| sys::fast::recv(sw, sock, buf, flags, AddrOut::NONE),
    )
}

/// `recvfrom`, cancellable. A cancelled or timed-out call consumed nothing.
pub fn recvfrom(
    token: &Token,
    sock: RawSocket,
    buf: &mut [u8],
    flags: i32,
    from: AddrOut,
    timeout_ms: i32,
) -> Result<usize> {
    receive(
        token,
        sock,
        buf,
        flags,
        timeout_ms,
        false,
        |buf, flags| sys::recvfrom(sock, buf, flags, from),
        |sw, buf, flags| sys::fast::recv(sw, sock, buf, flags, from),
    )
    .map(|t| t.n)
}

/// How a receive goes on once started.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RecvPlan {
    /// MSG_DONTWAIT or MSG_ERRQUEUE: one attempt.
    Once,
    /// MSG_WAITALL on a stream: gather a full buffer (flags without
    /// MSG_WAITALL); not when peeking, as a peek consumes nothing.
    Gather(i32),
    /// Attempts, waiting whenever one would block (`receive_waiting`).
    Wait,
}

/// The common start of a receive: the flag check, `begin`, and the plan,
/// which `body` then carries out. Only `gather` calls gather.
pub(super) fn start_receive<R>(
    token: &Token,
    sock: RawSocket,
    flags: i32,
    timeout_ms: i32,
    gather: bool,
    body: impl FnOnce(&Call, &mut Deadline, RecvPlan) -> Result<R>,
) -> Result<R> {
    check_flags(flags, sys::RECV_FLAGS)?;
    let (call, mut dl) = begin_socket(token, sock, timeout_ms, Plain::Receive)?;
    let waitall = flags & sys::MSG_WAITALL != 0 && flags & sys::MSG_PEEK == 0;
    let plan = if dont_wait(flags) {
        RecvPlan::Once
    } else if gather && waitall && sys::is_stream(sock) {
        RecvPlan::Gather(flags & !sys::MSG_WAITALL)
    } else {
        RecvPlan::Wait
    };
    body(&call, &mut dl, plan)
}

/// A receive's attempts, waiting whenever one would block (`RecvPlan::Wait`).
pub(super) fn receive_waiting<T>(
    call: &Call,
    sock: RawSocket,
    flags: i32,
    dl: &mut Deadline,
    read_shut: fn() -> Result<T>,
    attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    // Not with a blocking hook installed: it runs only when a call waits.
    let events = recv_events(flags);
    let adaptive = events == sys::POLLIN && !call.has_hook();
    retry_as(call, sock, events, dl, adaptive, Some(read_shut), attempt)
}

/// A receive made of non-blocking `attempt`s; with `gather`, MSG_WAITALL
/// on a stream gathers a full buffer (see `start_receive`). Or, on the
/// signal-wake fast path (`wake::fast`), one `blocking` call.
#[allow(clippy::too_many_arguments)] // the two forms of the one call
#[inline(always)]
fn receive(
    token: &Token,
    sock: RawSocket,
    buf: &mut [u8],
    flags: i32,
    timeout_ms: i32,
    gather: bool,
    mut attempt: impl FnMut(&mut [u8], i32) -> Result<usize>,
    blocking: impl FnMut(&SigWaiter, &mut [u8], i32) -> std::result::Result<usize, Stop>,
) -> Result<Transfer> {
    if let Some(call) = express::start_receive(token, sock, flags, timeout_ms) {
        return express::receive(&call, sock, || attempt(buf, 0)).map(Transfer::all);
    }
    receive_general(
        token, sock, buf, flags, timeout_ms, gather, attempt, blocking,
    )
}

/// `receive` off the express lane.
#[allow(clippy::too_many_arguments)] // as `receive`
#[inline(never)]
fn receive_general(
    token: &Token,
    sock: RawSocket,
    buf: &mut [u8],
    flags: i32,
    timeout_ms: i32,
    gather: bool,
    mut attempt: impl FnMut(&mut [u8], i32) -> Result<usize>,
    mut blocking: impl FnMut(&SigWaiter, &mut [u8], i32) -> std::result::Result<usize, Stop>,
) -> Result<Transfer> {
    start_receive(
        token,
        sock,
        flags,
        timeout_ms,
        gather,
        |call, dl, plan| match plan {
            RecvPlan::Once => attempt(buf, flags).map(Transfer::all),
            RecvPlan::Gather(flags) => {
                let len = buf.len();
                transfer_all(call, sock, sys::POLLIN, len, dl, |done| {
                    attempt(&mut buf[done..], flags)
                })
            }
            RecvPlan::Wait => {
                if let Some(r) = fast(call, dl, |sw| blocking(sw, buf, flags)) {
                    return r.map(Transfer::all);
                }
                receive_waiting(call, sock, flags, dl, || Ok(0), || attempt(buf, flags))
                    .map(Transfer::all)
            }
        },
    )
}

/// `send`, cancellable: returns once all of `buf` is queued, or the partial
/// count if cancelled, timed out or failed after some bytes were queued.
// As for `recv`.
#[inline(always)]
pub fn send(
    token: &Token,
    sock: RawSocket,
    buf: &[u8],
    flags: i32,
    timeout_ms: i32,
) -> Result<Transfer> {
    transmit(
        token,
        sock,
        buf,
        flags,
        timeout_ms,
        |rest| sys::send(sock, rest, flags),
        |sw, rest| sys::fast::send(sw, sock, rest, flags, AddrIn::NONE),
    )
}

/// `sendto`, cancellable (datagrams go whole or not at all; on a stream it
/// behaves like `send`).
pub fn sendto(
    token: &Token,
    sock: RawSocket,
    buf: &[u8],
    flags: i32,
    to: AddrIn,
    timeout_ms: i32,
) -> Result<Transfer> {
    transmit(
        token,
        sock,
        buf,
        flags,
        timeout_ms,
        |rest| sys::sendto(sock, rest, flags, to),
        |sw, rest| sys::fast::send(sw, sock, rest, flags, to),
    )
}

/// The common start of a send: the flag check and `begin`, then `body`,
/// told whether to make one attempt only (MSG_DONTWAIT).
pub(super) fn start_send<R>(
    token: &Token,
    sock: RawSocket,
    flags: i32,
    timeout_ms: i32,
    body: impl FnOnce(&Call, &mut Deadline, bool) -> Result<R>,
) -> Result<R> {
    check_flags(flags, sys::SEND_FLAGS)?;
    let (call, mut dl) = begin_socket(token, sock, timeout_ms, Plain::Send)?;
    body(&call, &mut dl, dont_wait(flags))
}

/// A send made of non-blocking `attempt`s, each given what is left; or,
/// on the signal-wake fast path (`wake::fast`), of `blocking` calls.
#[inline(always)]
fn transmit(
    token: &Token,
    sock: RawSocket,
    buf: &[u8],
    flags: i32,
    timeout_ms: i32,
    mut attempt: impl FnMut(&[u8]) -> Result<usize>,
    blocking: impl FnMut(&SigWaiter, &[u8]) -> std::result::Result<usize, Stop>,
) -> Result<Transfer> {
    if let Some((call, mut dl)) = express::start_send(token, sock, flags, timeout_ms) {
        return transmit_waiting(&call, sock, &mut dl, buf, attempt, blocking);
    }
    start_send(token, sock, flags, timeout_ms, |call, dl, once| {
        if once {
            return attempt(buf).map(Transfer::all);
        }
        transmit_waiting(call, sock, dl, buf, attempt, blocking)
    })
}

/// A send that may wait: first one attempt that does not block (most sends
/// go through, and the fast path's mask check is then not needed), then
/// the fast path's blocking calls or the poll path's attempts and waits.
#[inline(always)]
fn transmit_waiting(
    call: &Call,
    sock: RawSocket,
    dl: &mut Deadline,
    buf: &[u8],
    mut attempt: impl FnMut(&[u8]) -> Result<usize>,
    blocking: impl FnMut(&SigWaiter, &[u8]) -> std::result::Result<usize, Stop>,
) -> Result<Transfer> {
    let (done, full) = match attempt(buf) {
        Ok(n) if n >= buf.len() => return Ok(Transfer::all(n)),
        Ok(n) => (n, true),
        Err(e) if e.would_block() => (0, true),
        Err(e) if e.0 == sys::EINTR => (0, false),
        Err(e) => return Err(e),
    };
    transmit_rest(call, sock, dl, buf, done, full, attempt, blocking)
}

/// `transmit_waiting` after its first attempt, which sent `done` bytes
/// and found the buffer `full`, or was interrupted.
#[allow(clippy::too_many_arguments)] // the state of the send so far
#[inline(never)]
fn transmit_rest(
    call: &Call,
    sock: RawSocket,
    dl: &mut Deadline,
    buf: &[u8],
    mut done: usize,
    full: bool,
    mut attempt: impl FnMut(&[u8]) -> Result<usize>,
    mut blocking: impl FnMut(&SigWaiter, &[u8]) -> std::result::Result<usize, Stop>,
) -> Result<Transfer> {
    // The kernel's blocking send returns what it queued when a cancel
    // interrupts it; the next round's check then ends the call.
    let mut fast_send = |done: usize| match full {
        true => fast(call, dl, |sw| blocking(sw, &buf[done..])),
        false => None,
    };
    while let Some(r) = fast_send(done) {
        match r {
            Ok(n) => {
                done += n;
                if done >= buf.len() {
                    return Ok(Transfer::all(done));
                }
                if dl.is_plain() && dl.unbounded() {
                    // The plain call's count, cut short by its socket
                    // timeout or mode (or a signal), unless a cancel
                    // did it.
                    let why = call
                        .check()
                        .err()
                        .unwrap_or(Error(sys::SOCKET_TIMEOUT_ERROR));
                    return Ok(Transfer {
                        n: done,
                        short: Some(Short::Stopped(why)),
                    });
                }
            }
            Err(e) if done > 0 => {
                return Ok(Transfer {
                    n: done,
                    short: Some(Short::Stopped(e)),
                })
            }
            Err(e) => return Err(e),
        }
    }
    // The poll path (after an attempt that found the buffer full, it
    // waits first).
    let rest = &buf[done..];
    let sent = transfer(call, sock, sys::POLLOUT, rest.len(), dl, full, |more| {
        attempt(&rest[more..]).map(Piece::more)
    })
    .map(|t| Transfer { n: done + t.n, ..t });
    let sent = match sent {
        Err(e) if done > 0 => Transfer {
            n: done,
            short: Some(Short::Stopped(e)),
        },
        r => r?,
    };
    match sent.short {
        // As the plain call on Windows: a send its socket timeout
        // stopped fails, whatever it sent.
        Some(Short::Stopped(e)) if sys::SEND_TIMEOUT_FAILS && dl.socket_timeout_ended() => Err(e),
        _ => Ok(sent),
    }
}

/// `accept`, cancellable. A cancelled or timed-out call leaves the pending
/// connection queued. The new socket is in blocking mode. Each attempt
/// never blocks, whatever the listener's mode (see `sys::try_accept`).
pub fn accept(token: &Token, sock: RawSocket, from: AddrOut, timeout_ms: i32) -> Result<RawSocket> {
    // The C library's accept and connect are cancellation points (see
    // sys::CallDefer); dropped last, after the call.
    let _defer = sys::DeferCancel::new();
    let (call, mut dl) = begin_socket(token, sock, timeout_ms, Plain::Accept)?;
    let read_shut: ReadShut<RawSocket> = Some(|| Err(Error(sys::EINVAL)));
    retry_as(&call, sock, sys::POLLIN, &mut dl, false, read_shut, || {
        sys::try_accept(sock, from)
    })
}

/// `connect`, cancellable. After a cancel or timeout the socket must be
/// closed. The socket's blocking mode is restored in every case.
pub fn connect(token: &Token, sock: RawSocket, to: AddrIn, timeout_ms: i32) -> Result<()> {
    // As for accept.
    let _defer = sys::DeferCancel::new();
    let (call, mut dl) = begin_socket(token, sock, timeout_ms, Plain::Connect)?;
    if dl.is_plain() && sys::is_nonblocking(sock)? {
        // The plain call on a non-blocking socket: one attempt, and a
        // connect under way goes on (EINPROGRESS; WSAEWOULDBLOCK).
        return match sys::connect(sock, to) {
            Err(e) if e.0 == sys::EINPROGRESS => Err(Error(sys::CONNECT_PENDING)),
            r => r,
        };
    }
    loop {
        match sys::try_connect(sock, to) {
            Ok(()) => return Ok(()),
            Err(e) if e.0 == sys::EINTR => continue,
            Err(e) if e.0 == sys::EINPROGRESS || e.0 == sys::EALREADY => loop {
                // Where poll may miss a failed connect (Windows), re-read
                // SO_ERROR now and then.
                let mut slice;
                let d = match sys::CONNECT_RECHECK_MS {
                    Some(ms) if !dl.expired() => {
                        slice = dl.slice(ms)?;
                        &mut slice
                    }
                    _ => &mut dl,
                };
                let rev = match wait_one(&call, sock, sys::POLLOUT, d) {
                    Err(e) if e.0 == sys::ETIMEDOUT && dl.expired() => {
                        return Err(dl.timeout_error())
                    }
                    Err(e) if e.0 == sys::ETIMEDOUT => 0,
                    r => r?,
                };
                if rev & sys::POLLNVAL != 0 {
                    return Err(Error(sys::EBADF));
                }
                match sys::take_socket_error(sock)? {
                    0 if rev == 0 => continue,
                    0 => return Ok(()),
                    err => return Err(Error(err)),
                }
            },
            // A local (AF_UNIX) listener with a full backlog refuses a
            // non-blocking connect instead of queueing it: retry shortly.
            Err(e) if e.would_block() => pause(&call, &mut dl, 10)?,
            Err(e) => return Err(e),
        }
    }
}

// The socket pair the integration tests use too.
#[cfg(test)]
#[path = "../../tests/common/pair.rs"]
mod test_pair;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    use super::test_pair::{pair, Raw};

    fn err(r: Result<impl std::fmt::Debug>) -> i32 {
        r.expect_err("call should fail").0
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn recv_ready_then_timeout_then_cancel() {
        let (a, mut b) = pair();
        let t = Token::new();
        let mut buf = [0u8; 8];
        b.write_all(b"hi").unwrap();
        assert_eq!(recv(&t, a.raw(), &mut buf, 0, 10_000), Ok(Transfer::all(2)));
        let start = Instant::now();
        assert_eq!(err(recv(&t, a.raw(), &mut buf, 0, 30)), sys::ETIMEDOUT);
        assert!(start.elapsed() >= Duration::from_millis(30));

        let t2 = t.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            t2.cancel();
        });
        assert_eq!(err(recv(&t, a.raw(), &mut buf, 0, 10_000)), sys::ECANCELED);
        canceller.join().unwrap();
        // Sticky, and nothing consumed.
        b.write_all(b"x").unwrap();
        assert_eq!(err(recv(&t, a.raw(), &mut buf, 0, 10_000)), sys::ECANCELED);
        t.reset();
        assert_eq!(recv(&t, a.raw(), &mut buf, 0, 10_000), Ok(Transfer::all(1)));
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn grandchild_waiter_woken_by_root_cancel() {
        let (a, _b) = pair();
        let root = Token::new();
        let grand = root.child().child();
        let fd = a.raw();
        let waiter = std::thread::spawn(move || block(&grand, fd, READABLE, 10_000));
        std::thread::sleep(Duration::from_millis(20));
        root.cancel();
        assert_eq!(waiter.join().unwrap(), Err(Error(sys::ECANCELED)));
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn send_reports_exact_partial_count() {
        let (a, b) = pair();
        let t = Token::new();
        let big = vec![7u8; 4 << 20];
        let sent = send(&t, a.raw(), &big, 0, 20).expect("partial count");
        assert_eq!(sent.short, Some(Short::Stopped(Error(sys::ETIMEDOUT))));
        let sent = sent.n;
        assert!(sent > 0 && sent < big.len());
        drop(a);
        let mut total = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match recv(&t, b.raw(), &mut buf, 0, 1000).map(|r| r.n) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => panic!("recv: {e}"),
            }
        }
        assert_eq!(total, sent);
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn waits_release_their_slots() {
        let (a, _b) = pair();
        let root = Token::new();
        let child = root.child();
        for _ in 0..100 {
            assert_eq!(
                block(&child, a.raw(), READABLE, 0),
                Err(Error(sys::ETIMEDOUT))
            );
        }
        // Registered on the token and its parent during each wait, released after.
        assert_eq!(child.slot_usage(), (1, 0));
        assert_eq!(root.slot_usage(), (1, 0));
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn bad_arguments() {
        let t = Token::new();
        let mut buf = [0u8; 1];
        assert_eq!(
            err(recv(&t, sys::INVALID_SOCKET, &mut buf, 0, 0)),
            sys::EBADF
        );
        let (a, _b) = pair();
        assert_eq!(err(recv(&t, a.raw(), &mut buf, 0, -3)), sys::EINVAL);
        assert_eq!(err(block(&t, a.raw(), READABLE, -2)), sys::EINVAL);
        assert_eq!(err(block(&t, a.raw(), 0, 0)), sys::EINVAL);
        assert_eq!(err(block(&t, a.raw(), 4, 0)), sys::EINVAL);
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn waiter_records_are_reused_across_threads() {
        let (a, _b) = pair();
        let fd = a.raw();
        for _ in 0..200 {
            std::thread::spawn(move || {
                let t = Token::new();
                assert_eq!(block(&t, fd, READABLE, 0), Err(Error(sys::ETIMEDOUT)));
            })
            .join()
            .unwrap();
        }
        // Sequential threads reuse one record instead of leaking 200.
        assert!(crate::wake::records_created() < 20);
    }
}
