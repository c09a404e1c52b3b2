//! The C ABI: thin wrappers that check pointers, convert arguments, catch
//! panics and report failure through `errno` as the sockets API does.
//! Doc comments here become the documentation in `include/rsock.h`.

#![allow(non_camel_case_types)]
// These functions are called from C, which has no `unsafe`: pointer validity
// is the caller's side of the contract documented on each function.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use crate::error::{self, Error, Result, EINVAL, ENOMEM, ENOTRECOVERABLE};
#[cfg(unix)]
use crate::ops::MsgHdr as msghdr;
use crate::ops::{self, addrinfo, sockaddr, socklen_t, AddrIn, AddrOut, Hints, ResolveError};
use crate::ops::{Short, Transfer, EAI_SYSTEM, INVALID_SOCKET};
use crate::wake::{self, thread_token, Token};
use libc::{c_char, c_int, c_void, intptr_t, size_t};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A cancellation token. Opaque; reference-counted; create it with
/// `rsock_token_new` or `rsock_token_child` and release each reference with
/// `rsock_token_unref`. All token functions may be called from any thread.
pub struct rsock_token {
    _opaque: [u8; 0],
}

/// A socket: `int` on POSIX, `SOCKET` on Windows (defined in the header).
pub type rsock_socket = ops::RawSocket;

/// `struct pollfd` on POSIX, `WSAPOLLFD` on Windows (defined in the header).
pub type rsock_pollfd = ops::PollFd;

/// A Winsock-1.1-style blocking hook: called on the waiting thread while one
/// of its rsock calls waits. Nonzero means "call me again at once" (it
/// handled a message), as in Winsock 1.1.
pub type rsock_blocking_hook = Option<unsafe extern "C" fn() -> c_int>;

/// `rsock_block` event: the socket is readable (or has a pending connection).
pub const RSOCK_READABLE: c_int = 1;
/// `rsock_block` event: the socket is writable (or a connect finished).
pub const RSOCK_WRITABLE: c_int = 2;
/// Timeout value that waits for ever (the header defines it as `(-1)`).
pub const RSOCK_INFINITE: c_int = -1;
/// Timeout value for the calls that replace a system call (recv, send,
/// recvfrom, sendto, accept, connect, and on POSIX recvmsg, sendmsg, read
/// and write) that makes a call behave exactly as the system call it
/// replaces would on that descriptor, plus cancellation: on a non-blocking
/// socket one attempt (EAGAIN/EWOULDBLOCK; EINPROGRESS, on Windows
/// WSAEWOULDBLOCK, from rsock_connect, whose connection goes on); on a
/// blocking socket a wait bounded by the socket's SO_RCVTIMEO (receives,
/// accept) or SO_SNDTIMEO (sends; connect on Linux), for ever when unset,
/// whose expiry is reported as the system reports it (EAGAIN on POSIX,
/// EINPROGRESS from a Linux connect, WSAETIMEDOUT on Windows). A token
/// deadline still ends the call with RSOCK_ETIMEDOUT. The mode and the
/// socket timeout are looked up only when the call has to wait (fcntl and
/// getsockopt). Windows cannot report a socket's mode: there a socket is
/// non-blocking for this only if rsock_set_nonblocking made it so (the
/// redirect mode of rsock_winsock.h routes ioctlsocket(FIONBIO) there).
/// Other calls (rsock_block, rsock_poll, rsock_getaddrinfo,
/// rsock_connect_host) reject it with EINVAL.
pub const RSOCK_SOCKET_TIMEOUT: c_int = -2;

/// Major version of the library this header belongs to.
pub const RSOCK_VERSION_MAJOR: c_int = 0;
/// Minor version.
pub const RSOCK_VERSION_MINOR: c_int = 1;
/// Patch version.
pub const RSOCK_VERSION_PATCH: c_int = 0;

/// Runs `body` behind the panic boundary; on error sets errno and returns
/// `fail`.
fn guard<T>(fail: T, body: impl FnOnce() -> Result<T>) -> T {
    guard_errno(fail, || body().map(|v| (v, None)))
}

/// As `guard`, for a success that sets errno too (why a count is short, or
/// EAI_SYSTEM's error). errno is set last, after everything the call
/// dropped: on Windows, clean-up may clear the last error.
fn guard_errno<T>(fail: T, body: impl FnOnce() -> Result<(T, Option<i32>)>) -> T {
    match catch_unwind(AssertUnwindSafe(body)).unwrap_or(Err(Error(ENOTRECOVERABLE))) {
        Ok((v, code)) => {
            if let Some(code) = code {
                error::set_last_error(code);
            }
            v
        }
        Err(e) => {
            error::set_last_error(e.0);
            fail
        }
    }
}

fn inval<T>() -> Result<T> {
    Err(Error(EINVAL))
}

fn raw(t: *const rsock_token) -> *const c_void {
    // SAFETY: a non-NULL token from the caller came from into_raw (anything
    // else is the caller's undefined behaviour, which this cannot catch).
    #[cfg(all(debug_assertions, not(loom)))]
    if !t.is_null() && !unsafe { Token::is_live(t.cast()) } {
        eprintln!("rsock: a token was used after its last rsock_token_unref (debug build check)");
        std::process::abort();
    }
    t.cast()
}

/// Runs `f` with the token `t`, or the thread's own token for NULL.
/// (`f` is called in one place, so that one copy of it is inlined.)
fn with_token<R>(t: *mut rsock_token, f: impl FnOnce(&Token) -> Result<R>) -> Result<R> {
    let own;
    let borrowed;
    let token = if t.is_null() {
        own = thread_token()?;
        &own
    } else {
        // SAFETY: a non-NULL token passed by the caller is a live reference
        // (using a released token is undefined, as documented).
        borrowed = unsafe { Token::borrow_raw(raw(t)) };
        &*borrowed
    };
    f(token)
}

/// A token the caller must pass (NULL is EINVAL).
fn with_some_token<R>(t: *const rsock_token, f: impl FnOnce(&Token) -> Result<R>) -> Result<R> {
    if t.is_null() {
        return inval();
    }
    // SAFETY: as in with_token.
    unsafe { Token::with_raw(raw(t), f) }
}

/// A count for C, with errno saying why it is short: the error that
/// stopped it, else 0 (complete, or the end of a stream), so that a caller
/// (the C++ wrapper too) can tell a stopped transfer from a complete one.
fn count(r: Result<Transfer>) -> Result<(intptr_t, Option<i32>)> {
    let t = r?;
    let code = match t.short {
        Some(Short::Stopped(e)) => e.0,
        Some(Short::EndOfStream) | None => 0,
    };
    Ok((t.n as intptr_t, Some(code)))
}

/// # Safety
/// `buf` valid for writes of `len` bytes unless `len` is 0.
unsafe fn buf_mut<'a>(buf: *mut c_void, len: size_t) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() || len > isize::MAX as usize {
        return inval();
    }
    // SAFETY: per the function's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.cast(), len) })
}

/// # Safety
/// `buf` valid for reads of `len` bytes unless `len` is 0.
unsafe fn buf_ref<'a>(buf: *const c_void, len: size_t) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if buf.is_null() || len > isize::MAX as usize {
        return inval();
    }
    // SAFETY: per the function's contract.
    Ok(unsafe { std::slice::from_raw_parts(buf.cast(), len) })
}

/// # Safety
/// If `addr` is non-NULL, `addrlen` must point at its size.
unsafe fn addr_out(addr: *mut sockaddr, addrlen: *mut socklen_t) -> Result<AddrOut> {
    if addr.is_null() {
        return Ok(AddrOut::NONE);
    }
    if addrlen.is_null() {
        return inval();
    }
    // SAFETY: per the function's contract.
    Ok(unsafe { AddrOut::new(addr, addrlen) })
}

// ---------------------------------------------------------------- tokens

/// Creates a cancellation token with one reference, owned by the caller.
/// Holds no file descriptor and makes no system call. Any thread may use,
/// cancel and release it. Returns NULL with `ENOMEM` if memory runs out.
///
/// Returns: the new token, or NULL with ENOMEM.
#[no_mangle]
pub extern "C" fn rsock_token_new() -> *mut rsock_token {
    guard(std::ptr::null_mut(), || {
        let t = Token::try_new().ok_or(Error(ENOMEM))?;
        Ok(t.into_raw().cast_mut().cast())
    })
}

/// Creates a child of `parent` with one reference, owned by the caller. The
/// child is cancelled whenever `parent` or any of its ancestors is cancelled
/// (and stays so until the child itself is reset); cancelling the child
/// leaves the parent alone. A child of a cancelled parent is born cancelled.
/// The child keeps its parent alive. NULL `parent`: returns NULL with EINVAL;
/// out of memory: NULL with ENOMEM.
///
/// Parameters:
/// - `parent`: the token the child follows (the child holds a reference to
///   it).
///
/// Returns: the new child token, or NULL with EINVAL or ENOMEM.
#[no_mangle]
pub extern "C" fn rsock_token_child(parent: *mut rsock_token) -> *mut rsock_token {
    guard(std::ptr::null_mut(), || {
        with_some_token(parent, |p| {
            let c = p.try_child().ok_or(Error(ENOMEM))?;
            Ok(c.into_raw().cast_mut().cast())
        })
    })
}

/// Adds a reference to `token` and returns it; the caller owns the new
/// reference (hand it to another thread, which releases it). Thread-safe.
/// NULL: returns NULL with EINVAL.
///
/// Parameters:
/// - `token`: a token the caller holds a reference to.
///
/// Returns: `token`, or NULL with EINVAL.
#[no_mangle]
pub extern "C" fn rsock_token_ref(token: *mut rsock_token) -> *mut rsock_token {
    guard(std::ptr::null_mut(), || {
        if token.is_null() {
            return inval();
        }
        // SAFETY: the caller holds a reference to `token`.
        let extra = unsafe { Token::clone_raw(raw(token)) };
        Ok(extra.into_raw().cast_mut().cast())
    })
}

/// Releases one reference; the last one frees the token. Threads still
/// blocked on the token must hold their own reference. Using a token after
/// releasing its last reference is undefined; a debug build of the library
/// catches it for the 4096 most recently freed tokens, printing a message
/// and aborting. NULL does nothing.
///
/// Parameters:
/// - `token`: the token whose reference is released, or NULL.
#[no_mangle]
pub extern "C" fn rsock_token_unref(token: *mut rsock_token) {
    guard((), || {
        if !token.is_null() {
            // SAFETY: the caller gives up one reference it owns.
            drop(unsafe { Token::from_raw(raw(token)) });
        }
        Ok(())
    })
}

/// Cancels `token` and all its descendants: every call waiting on them
/// fails at once with RSOCK_ECANCELED, and so does every later call until
/// `rsock_token_reset`. Callable from any thread and from a signal handler
/// (async-signal-safe: no lock, no allocation; errno is preserved).
/// Returns 0, or -1 with EINVAL for NULL.
///
/// Parameters:
/// - `token`: the token to cancel.
///
/// Returns: 0, or -1 with EINVAL.
#[no_mangle]
pub extern "C" fn rsock_cancel(token: *mut rsock_token) -> c_int {
    if token.is_null() {
        error::set_last_error(EINVAL);
        return -1;
    }
    // SAFETY: the caller holds a reference; cancel uses only atomics and write().
    unsafe { Token::with_raw(raw(token), |t| t.cancel()) };
    0
}

/// Returns 1 if calls on `token` would fail with RSOCK_ECANCELED (it or an
/// ancestor was cancelled and it was not reset since), else 0. NULL: 0.
/// Thread-safe; the answer may be stale by the time it is read.
///
/// Parameters:
/// - `token`: the token to test, or NULL.
///
/// Returns: 1 if cancelled, else 0.
#[no_mangle]
pub extern "C" fn rsock_is_cancelled(token: *const rsock_token) -> c_int {
    guard(0, || {
        if token.is_null() {
            return Ok(0);
        }
        with_some_token(token, |t| Ok(t.is_cancelled() as c_int))
    })
}

/// Re-arms a cancelled token for reuse. A child whose parent is still
/// cancelled stays cancelled. A call that was in progress when the token
/// was cancelled still fails with RSOCK_ECANCELED, even if the reset comes
/// before it wakes; calls started after the reset are not affected.
/// Thread-safe.
/// Returns 0, or -1 with EINVAL for NULL.
///
/// Parameters:
/// - `token`: the token to re-arm.
///
/// Returns: 0, or -1 with EINVAL.
#[no_mangle]
pub extern "C" fn rsock_token_reset(token: *mut rsock_token) -> c_int {
    guard(-1, || {
        with_some_token(token, |t| {
            t.reset();
            Ok(0)
        })
    })
}

/// Sets a deadline on `token`, `timeout_ms` from now (0: already passed;
/// RSOCK_INFINITE clears it). Once it passes, every call made with `token`
/// or any of its descendants fails with RSOCK_ETIMEDOUT (rsock_poll returns
/// 0), calls already waiting included, and consumes nothing, even if data is
/// queued; a call's own timeout still applies, whichever comes first ending
/// the wait. Setting, moving or clearing the deadline takes effect at once
/// for calls already waiting. A deadline is not a cancel: rsock_is_cancelled
/// is unaffected and rsock_token_reset leaves it in place. Callable from any
/// thread and from a signal handler (no lock, no allocation, no descriptor,
/// no thread; errno is preserved on success).
/// Returns 0, or -1 with EINVAL for NULL or a `timeout_ms` below -1.
///
/// Parameters:
/// - `token`: the token that gets the deadline.
/// - `timeout_ms`: milliseconds from now (0: already passed; RSOCK_INFINITE:
///   clears the deadline).
///
/// Returns: 0, or -1 with EINVAL.
#[no_mangle]
pub extern "C" fn rsock_token_set_deadline(token: *mut rsock_token, timeout_ms: c_int) -> c_int {
    let at = match (token.is_null(), wake::token_deadline(timeout_ms)) {
        (false, Ok(at)) => at,
        _ => {
            error::set_last_error(EINVAL);
            return -1;
        }
    };
    // SAFETY: the caller holds a reference; set_deadline uses only atomics,
    // the clock and write().
    unsafe { Token::with_raw(raw(token), |t| t.set_deadline(at)) };
    0
}

/// Milliseconds until the earliest deadline of `token` and its ancestors,
/// rounded up: 0 once it has passed, RSOCK_INFINITE if none is set (and for
/// NULL, which also sets EINVAL). Thread-safe and async-signal-safe.
///
/// Parameters:
/// - `token`: the token whose chain of deadlines is read.
///
/// Returns: milliseconds left, 0, or RSOCK_INFINITE.
#[no_mangle]
pub extern "C" fn rsock_token_remaining(token: *const rsock_token) -> c_int {
    if token.is_null() {
        error::set_last_error(EINVAL);
        return RSOCK_INFINITE;
    }
    // SAFETY: the caller holds a reference; this reads atomics and the clock.
    unsafe { Token::with_raw(raw(token), wake::token_remaining_ms) }
}

// ---------------------------------------------------------------- waits

/// Waits until `sock` is ready for `events` (RSOCK_READABLE and/or
/// RSOCK_WRITABLE), `token` is cancelled, or `timeout_ms` passes
/// (RSOCK_INFINITE: no limit; 0: check once). Returns the ready subset (> 0);
/// an error or hang-up on the socket counts as ready for every requested
/// event. Otherwise -1 with RSOCK_ECANCELED, RSOCK_ETIMEDOUT, EBADF for an
/// invalid socket, EINVAL for bad `events` or `timeout_ms`, or the system's
/// error. NULL `token`: the calling thread's own token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `sock`: the socket to wait on.
/// - `events`: RSOCK_READABLE, RSOCK_WRITABLE or both.
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: the ready events (> 0), or -1 with the error.
#[no_mangle]
pub extern "C" fn rsock_block(
    token: *mut rsock_token,
    sock: rsock_socket,
    events: c_int,
    timeout_ms: c_int,
) -> c_int {
    guard(-1, || {
        with_token(token, |t| ops::block(t, sock, events, timeout_ms))
    })
}

/// `poll()` over `nfds` entries of `fds`, cancellable: returns the number of
/// entries with events (their `revents` set, as `poll` does), 0 when
/// `timeout_ms` passes, or -1 with RSOCK_ECANCELED or the system's error.
/// `fds` may be NULL when `nfds` is 0 (a cancellable sleep); otherwise NULL
/// is EINVAL. Any `nfds` that `poll` takes works (up to RLIMIT_NOFILE,
/// though rsock polls one descriptor of its own too). NULL `token`: the
/// calling thread's own token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `fds`: the entries, as for `poll` (NULL only when `nfds` is 0).
/// - `nfds`: the number of entries.
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: the number of entries with events, 0 on timeout, or -1 with the
///   error.
#[no_mangle]
pub extern "C" fn rsock_poll(
    token: *mut rsock_token,
    fds: *mut rsock_pollfd,
    nfds: size_t,
    timeout_ms: c_int,
) -> c_int {
    guard(-1, || {
        let fds: &mut [rsock_pollfd] = if nfds == 0 {
            &mut []
        } else if fds.is_null()
            || nfds > (isize::MAX as usize) / std::mem::size_of::<rsock_pollfd>()
        {
            return inval();
        } else {
            // SAFETY: the caller passes `nfds` valid entries.
            unsafe { std::slice::from_raw_parts_mut(fds, nfds) }
        };
        with_token(token, |t| ops::poll(t, fds, timeout_ms)).map(|n| n as c_int)
    })
}

// ---------------------------------------------------------------- socket calls

/// Puts `sock` in non-blocking (`nonblocking` nonzero) or blocking mode, as
/// fcntl(O_NONBLOCK) or ioctlsocket(FIONBIO) do. On Windows, which cannot
/// report a socket's mode, rsock also remembers it, for calls made with
/// RSOCK_SOCKET_TIMEOUT (and puts it back after the calls that must
/// switch modes to make an attempt); set it back to blocking before
/// closing such a socket so that a later socket with the same handle is
/// not taken for non-blocking. Returns 0, or -1 with the system's error.
/// Thread-safe.
///
/// Parameters:
/// - `sock`: the socket.
/// - `nonblocking`: nonzero for non-blocking mode, 0 for blocking.
///
/// Returns: 0, or -1 with the error.
#[no_mangle]
pub extern "C" fn rsock_set_nonblocking(sock: rsock_socket, nonblocking: c_int) -> c_int {
    guard(-1, || ops::set_mode(sock, nonblocking != 0).map(|()| 0))
}

/// Turns on the signal-wake fast path (Linux x86-64 and AArch64): a
/// receive or send (`rsock_recv`, `rsock_recvfrom`, `rsock_send`,
/// `rsock_sendto`) made with RSOCK_INFINITE or RSOCK_SOCKET_TIMEOUT, on a
/// token with no deadline, by a thread without a blocking hook that does
/// not block `signo`, makes the plain blocking system call, and a cancel
/// interrupts it by sending `signo` to the thread: no `poll`, so it costs
/// what the plain call costs, plus one `sigprocmask` query per call.
/// Everything else, and any call where that does not hold, takes the usual
/// path; the contract is the same on both. rsock installs a handler for
/// `signo` for the life of the process: the program must not use the
/// signal, nor change its handler or ignore it; a debugger stops on it
/// unless told not to. `signo` 0 turns the fast path off (the handler
/// stays). The environment variable `RSOCK_WAKE_SIGNAL`, read at the first
/// call that could use it, does the same for a program that cannot be
/// changed. Not thread-safe with itself; call it before the calls it
/// should speed up.
///
/// Parameters:
/// - `signo`: a real-time signal (`SIGRTMIN` to `SIGRTMAX`) the program
///   does not use, or 0 for off.
///
/// Returns: 0, or -1 with EINVAL (not a real-time signal), EBUSY (the
/// signal has a handler, or is ignored, or another signal was chosen
/// before) or EOPNOTSUPP (no fast path on this system).
#[no_mangle]
pub extern "C" fn rsock_use_signal_wake(signo: c_int) -> c_int {
    guard(-1, || crate::sys::fast::enable(signo).map(|()| 0))
}

/// `recv()`, cancellable, with a timeout. Returns the byte count (0 at end
/// of stream), or -1 with RSOCK_ECANCELED, RSOCK_ETIMEDOUT or the system's
/// error. A cancelled or timed-out call has consumed nothing. Works on
/// blocking and non-blocking sockets and leaves the mode unchanged. With
/// MSG_WAITALL on a stream it waits for `len` bytes; if cancelled, timed out
/// or failing after some arrived, it returns that partial count and sets
/// errno to the reason (0 if the stream ended; with MSG_PEEK it returns
/// what is queued). With MSG_DONTWAIT it does not wait: EAGAIN if nothing
/// is queued, as `recv`. MSG_OOB waits for urgent data where the system
/// waits for it (Linux fails at once with EINVAL when none is pending, and
/// so does this call). `flags` are
/// MSG_OOB, MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT, MSG_TRUNC, MSG_NOSIGNAL
/// (ignored) and, on Linux, MSG_ERRQUEUE (one attempt, as `recv` makes:
/// wait for POLLERR with rsock_poll); any other bit is EINVAL (on Windows
/// the flags are MSG_OOB, MSG_PEEK and MSG_WAITALL).
/// `buf` may be NULL only when `len` is 0. NULL `token`: the thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `sock`: the socket.
/// - `buf`: where the data goes (NULL only when `len` is 0).
/// - `len`: the size of `buf` in bytes.
/// - `flags`: `recv` flags (see above).
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: the byte count (0 at end of stream), or -1 with the error.
#[no_mangle]
pub extern "C" fn rsock_recv(
    token: *mut rsock_token,
    sock: rsock_socket,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    timeout_ms: c_int,
) -> intptr_t {
    guard_errno(-1, || {
        // SAFETY: the caller passes a buffer of `len` bytes.
        let buf = unsafe { buf_mut(buf, len)? };
        with_token(token, |t| count(ops::recv(t, sock, buf, flags, timeout_ms)))
    })
}

/// `send()`, cancellable, with a timeout: returns once all `len` bytes are
/// queued, like a blocking `send`. If cancelled, timed out or failing after
/// some bytes were queued it returns that partial count and sets errno to
/// the reason (RSOCK_ECANCELED, RSOCK_ETIMEDOUT or the system's error); with
/// nothing queued it returns -1 with that error.
/// `flags` (add MSG_NOSIGNAL to avoid SIGPIPE) are MSG_OOB, MSG_DONTWAIT,
/// MSG_NOSIGNAL, MSG_EOR, MSG_DONTROUTE and, on Linux, MSG_MORE,
/// MSG_CONFIRM, MSG_ZEROCOPY and MSG_FASTOPEN; any other bit is EINVAL (on
/// Windows the flags are MSG_OOB and MSG_DONTROUTE). With
/// MSG_DONTWAIT it makes one attempt, as `send` does. `buf` may be
/// NULL only when `len` is 0. NULL `token`: the thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `sock`: the socket.
/// - `buf`: the data (NULL only when `len` is 0).
/// - `len`: the number of bytes to send.
/// - `flags`: `send` flags (see above).
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: the byte count (`len`, or less when stopped after a partial
///   send), or -1 with the error.
#[no_mangle]
pub extern "C" fn rsock_send(
    token: *mut rsock_token,
    sock: rsock_socket,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    timeout_ms: c_int,
) -> intptr_t {
    guard_errno(-1, || {
        // SAFETY: the caller passes a buffer of `len` bytes.
        let buf = unsafe { buf_ref(buf, len)? };
        with_token(token, |t| count(ops::send(t, sock, buf, flags, timeout_ms)))
    })
}

/// `recvfrom()`, cancellable, with a timeout. `from` and `fromlen` as for
/// `recvfrom` (both may be NULL; `from` without `fromlen` is EINVAL). A
/// cancelled or timed-out call has consumed nothing: the datagram is still
/// queued. Flags and errors as for `rsock_recv`. NULL `token`: the
/// thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `sock`: the socket.
/// - `buf`: where the data goes (NULL only when `len` is 0).
/// - `len`: the size of `buf` in bytes.
/// - `flags`: flags as for rsock_recv.
/// - `from`: receives the sender's address, or NULL.
/// - `fromlen`: in: the size of `from`; out: the address's length (NULL when
///   `from` is).
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: the byte count, or -1 with the error.
#[no_mangle]
pub extern "C" fn rsock_recvfrom(
    token: *mut rsock_token,
    sock: rsock_socket,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    from: *mut sockaddr,
    fromlen: *mut socklen_t,
    timeout_ms: c_int,
) -> intptr_t {
    guard(-1, || {
        // SAFETY: the caller passes a buffer of `len` bytes and an address buffer.
        let (buf, from) = unsafe { (buf_mut(buf, len)?, addr_out(from, fromlen)?) };
        with_token(token, |t| {
            ops::recvfrom(t, sock, buf, flags, from, timeout_ms).map(|n| n as intptr_t)
        })
    })
}

/// `sendto()`, cancellable, with a timeout. A datagram is sent whole or not
/// at all; on a stream socket it behaves like `rsock_send`. `to` may be NULL
/// (connected socket) only with `tolen` 0. `flags` as for `rsock_send`.
/// NULL `token`: the thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `sock`: the socket.
/// - `buf`: the data (NULL only when `len` is 0).
/// - `len`: the number of bytes to send.
/// - `flags`: flags as for rsock_send.
/// - `to`: the destination address, or NULL on a connected socket.
/// - `tolen`: the size of `to` (0 when `to` is NULL).
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: the byte count, or -1 with the error.
#[no_mangle]
pub extern "C" fn rsock_sendto(
    token: *mut rsock_token,
    sock: rsock_socket,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    to: *const sockaddr,
    tolen: socklen_t,
    timeout_ms: c_int,
) -> intptr_t {
    guard_errno(-1, || {
        if to.is_null() && tolen != 0 {
            return inval();
        }
        // SAFETY: the caller passes a buffer of `len` bytes and an address of `tolen` bytes.
        let (buf, to) = unsafe { (buf_ref(buf, len)?, AddrIn::new(to, tolen)) };
        with_token(token, |t| {
            count(ops::sendto(t, sock, buf, flags, to, timeout_ms))
        })
    })
}

/// `accept()`, cancellable, with a timeout. Returns the new socket (in
/// blocking mode, without FD_CLOEXEC as from `accept`, owned by the caller), or RSOCK_INVALID_SOCKET with
/// RSOCK_ECANCELED, RSOCK_ETIMEDOUT or the system's error. A cancelled or
/// timed-out call leaves the pending connection queued. `addr`/`addrlen` as
/// for `accept` (both may be NULL). On POSIX a blocking listener is
/// switched to non-blocking mode only for the instant of each attempt
/// (serialized within the process per socket, dup()ed descriptors
/// included; another process using the same listener, such as a fork
/// child, may see EAGAIN from a plain `accept` at that instant, or block
/// in the kernel in its own rsock_accept, so make listeners shared across
/// processes non-blocking); on Windows the mode is left alone (see the
/// conventions at the top). A listener shut down under the call (AF_UNIX
/// on Linux) fails it at once with EINVAL, as `accept` does.
/// NULL `token`: the thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `sock`: the listening socket.
/// - `addr`: receives the peer's address, or NULL.
/// - `addrlen`: in: the size of `addr`; out: the address's length (NULL when
///   `addr` is).
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: the accepted socket, or RSOCK_INVALID_SOCKET with the error.
#[no_mangle]
pub extern "C" fn rsock_accept(
    token: *mut rsock_token,
    sock: rsock_socket,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
    timeout_ms: c_int,
) -> rsock_socket {
    guard(INVALID_SOCKET, || {
        // SAFETY: the caller passes an address buffer or NULL.
        let addr = unsafe { addr_out(addr, addrlen)? };
        with_token(token, |t| ops::accept(t, sock, addr, timeout_ms))
    })
}

/// `connect()`, cancellable, with a timeout. Returns 0 once connected, or -1
/// with RSOCK_ECANCELED, RSOCK_ETIMEDOUT or the system's error (e.g.
/// ECONNREFUSED; never the system's EINPROGRESS: the call waits for the
/// connection). The socket's blocking mode is restored. After a cancelled
/// or timed-out connect the socket's state is unspecified: close it (as
/// after a cancelled connect in Winsock 1.1). `addr` NULL: EINVAL.
/// NULL `token`: the thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `sock`: the socket to connect.
/// - `addr`: the address to connect to.
/// - `addrlen`: the size of `addr`.
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: 0, or -1 with the error.
#[no_mangle]
pub extern "C" fn rsock_connect(
    token: *mut rsock_token,
    sock: rsock_socket,
    addr: *const sockaddr,
    addrlen: socklen_t,
    timeout_ms: c_int,
) -> c_int {
    guard(-1, || {
        if addr.is_null() {
            return inval();
        }
        // SAFETY: the caller passes an address of `addrlen` bytes.
        let to = unsafe { AddrIn::new(addr, addrlen) };
        with_token(token, |t| ops::connect(t, sock, to, timeout_ms)).map(|()| 0)
    })
}

// ---------------------------------------------------------------- POSIX I/O

/// The iovec array of `msg`: EMSGSIZE past IOV_MAX, EINVAL for a NULL
/// array with a nonzero count.
///
/// # Safety
/// `msg.msg_iov` points at `msg.msg_iovlen` iovecs unless NULL.
#[cfg(unix)]
#[allow(clippy::useless_conversion)] // msg_iovlen is size_t or int by system
unsafe fn iovecs<'a>(msg: &ops::MsgHdr) -> Result<&'a [ops::IoVec]> {
    let n = usize::try_from(msg.msg_iovlen).map_err(|_| Error(ops::EMSGSIZE))?;
    if n > ops::iov_max() {
        return Err(Error(ops::EMSGSIZE));
    }
    if n == 0 {
        return Ok(&[]);
    }
    if msg.msg_iov.is_null() {
        return inval();
    }
    // SAFETY: per the function's contract.
    Ok(unsafe { std::slice::from_raw_parts(msg.msg_iov, n) })
}

/// `recvmsg()`, cancellable, with a timeout (POSIX only). Returns the byte
/// count (0 at end of stream), or -1 with RSOCK_ECANCELED, RSOCK_ETIMEDOUT
/// or the system's error; `msg_namelen`, `msg_controllen` and `msg_flags`
/// are set as by `recvmsg` (and left alone on failure). The rules of
/// rsock_recv apply: a cancelled or timed-out call has consumed nothing,
/// ancillary data (such as SCM_RIGHTS descriptors) included; same flags;
/// MSG_DONTWAIT makes one attempt. MSG_WAITALL on a stream fills every
/// iovec: if cancelled, timed out or failing after some bytes arrived it
/// returns that partial count with errno set to the reason (0 if the
/// stream ended). Ancillary data ends the gathering (as Linux's own
/// MSG_WAITALL does after SCM_RIGHTS): the call then returns what it has,
/// as a complete call, with `msg_controllen` and `msg_flags` describing
/// everything received. The caller owns `msg`, its iovecs, buffers and control
/// buffer; the iovec array is never modified. `msg` NULL, or a NULL
/// `msg_iov` with a nonzero `msg_iovlen`: EINVAL; `msg_iovlen` over IOV_MAX:
/// EMSGSIZE; a bad buffer is the system's EFAULT. NULL `token`: the
/// thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the call's token; NULL: the calling thread's own token.
/// - `sock`: the socket to receive from.
/// - `msg`: as for `recvmsg`: the iovecs to fill, and optionally the
///   address and control buffers, which the call fills in.
/// - `flags`: `recvmsg` flags, as listed above.
/// - `timeout_ms`: milliseconds; RSOCK_INFINITE, 0 (check once), or
///   RSOCK_SOCKET_TIMEOUT.
///
/// Returns: the byte count (0 at end of stream), or -1 with the error.
#[cfg(unix)]
#[no_mangle]
pub extern "C" fn rsock_recvmsg(
    token: *mut rsock_token,
    sock: rsock_socket,
    msg: *mut msghdr,
    flags: c_int,
    timeout_ms: c_int,
) -> intptr_t {
    guard_errno(-1, || {
        if msg.is_null() {
            return inval();
        }
        // SAFETY: a non-NULL `msg` is the caller's valid msghdr, whose
        // iovec array has `msg_iovlen` entries.
        let (msg, iov) = unsafe { (&mut *msg, iovecs(&*msg)?) };
        with_token(token, |t| {
            count(ops::recvmsg(t, sock, msg, iov, flags, timeout_ms))
        })
    })
}

/// `sendmsg()`, cancellable, with a timeout (POSIX only): returns once
/// everything the iovecs describe is queued, like a blocking `sendmsg`.
/// The rules of rsock_send apply: if cancelled, timed out or failing after
/// some bytes were queued it returns that exact partial count with errno
/// set to the reason; with nothing queued, -1 with that error; same flags
/// (add MSG_NOSIGNAL to avoid SIGPIPE); MSG_DONTWAIT makes one attempt.
/// Ancillary data goes once, with the first bytes (the rest of a stream
/// send that had to wait goes without it). A datagram goes whole or not at
/// all. The caller owns `msg` and everything it points to; nothing in it
/// is modified. `msg` NULL, or a NULL `msg_iov` with a nonzero
/// `msg_iovlen`: EINVAL; `msg_iovlen` over IOV_MAX: EMSGSIZE.
/// NULL `token`: the thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the call's token; NULL: the calling thread's own token.
/// - `sock`: the socket to send on.
/// - `msg`: as for `sendmsg`: the iovecs to send, and optionally the
///   address and the ancillary data.
/// - `flags`: `sendmsg` flags, as listed above.
/// - `timeout_ms`: milliseconds; RSOCK_INFINITE, 0 (check once), or
///   RSOCK_SOCKET_TIMEOUT.
///
/// Returns: the byte count (all of it, or the exact partial count with
/// errno saying why), or -1 with the error.
#[cfg(unix)]
#[no_mangle]
pub extern "C" fn rsock_sendmsg(
    token: *mut rsock_token,
    sock: rsock_socket,
    msg: *const msghdr,
    flags: c_int,
    timeout_ms: c_int,
) -> intptr_t {
    guard_errno(-1, || {
        if msg.is_null() {
            return inval();
        }
        // SAFETY: as in rsock_recvmsg.
        let (msg, iov) = unsafe { (&*msg, iovecs(&*msg)?) };
        with_token(token, |t| {
            count(ops::sendmsg(t, sock, msg, iov, flags, timeout_ms))
        })
    })
}

/// `read()`, cancellable, with a timeout (POSIX only), on any descriptor
/// `poll` can wait on: pipe, FIFO, terminal, socket, eventfd, character
/// device; a regular file is read at once. Returns the byte count (0 at end
/// of file), or -1 with RSOCK_ECANCELED, RSOCK_ETIMEDOUT or the system's
/// error (EBADF for a negative descriptor, EISDIR for a directory). A
/// cancelled or timed-out call has consumed nothing. Works in blocking and
/// non-blocking mode and never changes the mode; each call reads it first
/// (one `fcntl`, plus an `fstat` for a blocking descriptor). A blocking
/// descriptor is read once `poll` says it is readable, which does not block
/// while this is its only reader: make a descriptor that another thread or
/// process reads at the same time non-blocking (a blocking socket is read
/// with MSG_DONTWAIT and never blocks). So a thread blocked reading
/// standard input or a pipe can be cancelled like a socket call. `buf` may
/// be NULL only when `len` is 0. NULL `token`: the thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the call's token; NULL: the calling thread's own token.
/// - `fd`: the descriptor to read.
/// - `buf`: where the bytes go (NULL only when `len` is 0).
/// - `len`: the most bytes to read.
/// - `timeout_ms`: milliseconds; RSOCK_INFINITE, 0 (check once), or
///   RSOCK_SOCKET_TIMEOUT.
///
/// Returns: the byte count (0 at end of file), or -1 with the error.
#[cfg(unix)]
#[no_mangle]
pub extern "C" fn rsock_read(
    token: *mut rsock_token,
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    timeout_ms: c_int,
) -> intptr_t {
    guard_errno(-1, || {
        // SAFETY: the caller passes a buffer of `len` bytes.
        let buf = unsafe { buf_mut(buf, len)? };
        with_token(token, |t| count(ops::read(t, fd, buf, timeout_ms)))
    })
}

/// `write()`, cancellable, with a timeout (POSIX only), on the descriptors
/// rsock_read takes: returns once all `len` bytes are written, like a
/// blocking `write`. If cancelled, timed out or failing after some bytes
/// were written it returns that exact partial count with errno set to the
/// reason; with nothing written, -1 with that error. A regular file or
/// block device is written at once. Works in blocking and non-blocking
/// mode and leaves the mode as it was (one `fcntl` per call, plus an
/// `fstat` for a blocking descriptor). On a blocking descriptor: a socket
/// is written with MSG_DONTWAIT; a pipe or FIFO, once `poll` says it is
/// writable, PIPE_BUF bytes at a time (which then does not block); anything
/// else (a terminal, an eventfd, a character device), once `poll` says it
/// is writable, with O_NONBLOCK set for the instant of each write and put
/// back at once (serialized within the process; another process sharing
/// the open file may see it). SIGPIPE as from `write`. `buf` may be NULL
/// only when `len` is 0. NULL `token`: the thread's token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the call's token; NULL: the calling thread's own token.
/// - `fd`: the descriptor to write.
/// - `buf`: the bytes to write (NULL only when `len` is 0).
/// - `len`: how many.
/// - `timeout_ms`: milliseconds; RSOCK_INFINITE, 0 (check once), or
///   RSOCK_SOCKET_TIMEOUT.
///
/// Returns: the byte count (all of it, or the exact partial count with
/// errno saying why), or -1 with the error.
#[cfg(unix)]
#[no_mangle]
pub extern "C" fn rsock_write(
    token: *mut rsock_token,
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    timeout_ms: c_int,
) -> intptr_t {
    guard_errno(-1, || {
        // SAFETY: the caller passes a buffer of `len` bytes.
        let buf = unsafe { buf_ref(buf, len)? };
        with_token(token, |t| count(ops::write(t, fd, buf, timeout_ms)))
    })
}

// ---------------------------------------------------------------- names

/// `getaddrinfo()`, cancellable, with a timeout. Returns what `getaddrinfo`
/// returns: 0 with the list in `*res` (free it with `freeaddrinfo`), or an
/// EAI_* code (see `gai_strerror`; with EAI_SYSTEM the error is in errno).
/// When cancelled or timed out it returns EAI_SYSTEM with RSOCK_ECANCELED or
/// RSOCK_ETIMEDOUT. `*res` is NULL whenever it fails. `res` NULL, or a
/// timeout below -1: EAI_SYSTEM with EINVAL. `node`, `service` and `hints`
/// as for `getaddrinfo` (copied: they may be freed once this returns).
/// Threads: the lookup runs on a pool of at most 4 resolver threads, shared
/// by the process, which start on demand, exit after 2 s idle, and block
/// every signal but SIGSEGV, SIGBUS, SIGFPE and SIGILL. More concurrent
/// lookups queue for a free thread (their timeout runs meanwhile, so a
/// resolver that hangs for 4 lookups makes the next ones time out queued).
/// A cancelled or timed-out lookup goes on in its pool thread, which frees
/// the result (or, if it was still queued, is dropped); the caller never
/// waits for it, and no descriptor of the call stays open once it returns.
/// A lookup that cannot block (AI_NUMERICHOST, and AI_NUMERICSERV or no
/// `service`) runs on the calling thread. Cancellable from any thread or
/// signal handler like the other calls; NULL `token`: the thread's token.
/// A call from inside this thread's blocking hook fails (EAI_SYSTEM) with
/// RSOCK_EINPROGRESS. After fork() the child starts a pool of its own (the
/// child of a multithreaded process may call it where the C library allows
/// getaddrinfo there, as glibc does).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `node`: host name or address, or NULL (as for `getaddrinfo`).
/// - `service`: service name or port number, or NULL.
/// - `hints`: the `getaddrinfo` hints, or NULL.
/// - `res`: receives the result list (NULL on failure).
/// - `timeout_ms`: the limit in milliseconds (RSOCK_INFINITE: none; 0: one
///   check).
///
/// Returns: 0, or an EAI_* code.
#[no_mangle]
pub extern "C" fn rsock_getaddrinfo(
    token: *mut rsock_token,
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
    timeout_ms: c_int,
) -> c_int {
    guard_errno(EAI_SYSTEM, || {
        if res.is_null() {
            return inval();
        }
        // SAFETY: `res` is a valid pointer to the caller's result variable.
        unsafe { *res = std::ptr::null_mut() };
        // SAFETY: NULL or NUL-terminated strings, NULL or a valid addrinfo,
        // as for getaddrinfo.
        let (node, service, hints) = unsafe {
            (
                (!node.is_null()).then(|| CStr::from_ptr(node)),
                (!service.is_null()).then(|| CStr::from_ptr(service)),
                Hints::from_raw(hints),
            )
        };
        with_token(token, |t| {
            match ops::getaddrinfo(t, node, service, hints, timeout_ms) {
                Ok(list) => {
                    // SAFETY: checked non-NULL above.
                    unsafe { *res = list.into_raw() };
                    Ok((0, None))
                }
                Err(ResolveError::Lookup(rc, errno)) => {
                    Ok((rc, (rc == EAI_SYSTEM).then_some(errno)))
                }
                Err(ResolveError::Sys(e)) => Err(e),
            }
        })
    })
}

/// Resolves `host` and connects to it: the cancellable, timed equivalent of
/// getaddrinfo plus a connect loop. Returns a connected socket of type
/// `socktype` (SOCK_STREAM or SOCK_DGRAM) in blocking mode with FD_CLOEXEC
/// set, owned by the caller; or RSOCK_INVALID_SOCKET with RSOCK_ECANCELED,
/// RSOCK_ETIMEDOUT, or the error of the last failed attempt (e.g.
/// ECONNREFUSED, ENETUNREACH). `timeout_ms` covers resolution and connection
/// together. SOCK_STREAM addresses are tried with Happy Eyeballs (RFC 8305,
/// except that IPv6 always goes first where the RFC follows the resolver's
/// first answer): the resolver's order within each family, the families
/// alternating; a new attempt starts for each one that fails, and 250 ms
/// after the last start while attempts are pending; the first to connect
/// (the earliest started, if several connect at once) wins and the others
/// are closed. A SOCK_DGRAM connect only records the peer, so the resolver's
/// first address is used. A numeric `host` with a numeric `service` is
/// parsed on the calling thread; anything else is looked up as by
/// rsock_getaddrinfo (resolver pool, AF_UNSPEC, no AI_ADDRCONFIG).
/// Errors besides the attempts': a failed lookup gives EHOSTUNREACH (no
/// such name, no address, or a permanent resolver failure), EAGAIN (a
/// temporary one), EINVAL (unknown service), ENOMEM, or the system's error
/// (call rsock_getaddrinfo for the exact EAI_* code); when no socket of any
/// resolved family can be made, that error (e.g. EAFNOSUPPORT, EMFILE).
/// `host` or `service` NULL, a service that resolves to port 0, another
/// `socktype`, or a timeout below -1: EINVAL. NULL `token`: the thread's
/// token.
/// Threads: as for every blocking call (see the top of this header).
///
/// Parameters:
/// - `token`: the token whose cancel or passed deadline ends the call; NULL:
///   the calling thread's own token.
/// - `host`: host name or numeric address.
/// - `service`: service name or port number.
/// - `socktype`: SOCK_STREAM or SOCK_DGRAM.
/// - `timeout_ms`: the limit in milliseconds for resolution and connection
///   together (RSOCK_INFINITE: none).
///
/// Returns: the connected socket, or RSOCK_INVALID_SOCKET with the error.
#[no_mangle]
pub extern "C" fn rsock_connect_host(
    token: *mut rsock_token,
    host: *const c_char,
    service: *const c_char,
    socktype: c_int,
    timeout_ms: c_int,
) -> rsock_socket {
    guard(INVALID_SOCKET, || {
        if host.is_null() || service.is_null() {
            return inval();
        }
        // SAFETY: non-NULL arguments are NUL-terminated strings.
        let (host, service) = unsafe { (CStr::from_ptr(host), CStr::from_ptr(service)) };
        with_token(token, |t| {
            ops::connect_host(t, host, service, socktype, timeout_ms)
        })
    })
}

// ---------------------------------------------------------------- errors

/// The version of the linked library as "major.minor.patch" (static string;
/// compare with the RSOCK_VERSION_* macros of the header you compiled with).
///
/// Returns: the version string (static).
#[no_mangle]
pub extern "C" fn rsock_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The calling thread's last error code: `errno` on POSIX,
/// `WSAGetLastError()` on Windows. Per thread, like errno.
///
/// Returns: the error code.
#[no_mangle]
pub extern "C" fn rsock_last_error() -> c_int {
    error::last_error()
}

/// A static, NUL-terminated description of an error code; never NULL, never
/// to be freed. Unknown codes give "unknown error". Thread-safe.
///
/// Parameters:
/// - `code`: an error code (errno value, or a Winsock code on Windows).
///
/// Returns: the description (static).
#[no_mangle]
pub extern "C" fn rsock_strerror(code: c_int) -> *const c_char {
    crate::error::describe_c(code).as_ptr()
}

// ---------------------------------------------------------------- migration shim

/// Installs `hook` as the calling thread's blocking hook and returns the
/// previous one (NULL if none). While an rsock call on this thread waits,
/// the hook is called repeatedly, at least every 10 ms, and again at once
/// while it returns nonzero (up to 64 times in a row, stopping at a cancel
/// request), as Winsock 1.1 looped on its hook. From inside the hook,
/// `rsock_cancel_blocking_call` cancels the waiting call, and any other
/// blocking rsock call fails at once with RSOCK_EINPROGRESS. NULL removes
/// the hook. Affects only the calling thread. The hook must return normally
/// (no longjmp, pthread_exit or C++ exception out of it).
///
/// Parameters:
/// - `hook`: the new hook, or NULL for none.
///
/// Returns: the previous hook, or NULL.
#[no_mangle]
pub extern "C" fn rsock_set_blocking_hook(hook: rsock_blocking_hook) -> rsock_blocking_hook {
    ops::set_blocking_hook(hook)
}

/// Removes the calling thread's blocking hook (other threads' hooks stay).
/// Returns 0.
///
/// Returns: 0.
#[no_mangle]
pub extern "C" fn rsock_unhook_blocking_hook() -> c_int {
    ops::set_blocking_hook(None);
    0
}

/// Returns 1 while the calling thread is inside a blocking rsock call (so:
/// from its blocking hook, or a signal handler on that thread), else 0.
/// Async-signal-safe.
///
/// Returns: 1 or 0.
#[no_mangle]
pub extern "C" fn rsock_is_blocking() -> c_int {
    ops::is_blocking() as c_int
}

/// Cancels the calling thread's outstanding rsock call (call it from the
/// blocking hook, not from a signal handler: there, use `rsock_cancel` on the
/// thread's token): that call fails with RSOCK_ECANCELED as soon as the hook
/// returns. Affects that one call only; no token is cancelled. Returns 0, or
/// -1 with EINVAL when no call is outstanding on this thread. To cancel a
/// thread's call from another thread, use `rsock_cancel(rsock_thread_token())`
/// obtained on that thread.
///
/// Returns: 0, or -1 with EINVAL.
#[no_mangle]
pub extern "C" fn rsock_cancel_blocking_call() -> c_int {
    guard(-1, || ops::cancel_blocking_call().map(|()| 0))
}

/// Returns a new reference (owned by the caller; release it with
/// `rsock_token_unref`) to the calling thread's own token: the token that
/// calls made with a NULL token on this thread use. Another thread may
/// `rsock_cancel` it; that cancel is sticky like any other, so reset it with
/// `rsock_token_reset` before the thread's next NULL-token call. The token
/// outlives the thread while references remain. NULL with ENOMEM if the
/// token cannot be created.
///
/// Returns: a new reference to the thread's token, or NULL with ENOMEM.
#[no_mangle]
pub extern "C" fn rsock_thread_token() -> *mut rsock_token {
    guard(std::ptr::null_mut(), || {
        Ok(thread_token()?.into_raw().cast_mut().cast())
    })
}

const _: () = assert!(RSOCK_READABLE == ops::READABLE && RSOCK_WRITABLE == ops::WRITABLE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors_at_the_boundary() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r: c_int = guard(-1, || panic!("bug"));
        std::panic::set_hook(prev);
        assert_eq!(r, -1);
        assert_eq!(error::last_error(), ENOTRECOVERABLE);
    }

    #[test]
    fn null_token_arguments() {
        assert!(rsock_token_child(std::ptr::null_mut()).is_null());
        assert_eq!(error::last_error(), EINVAL);
        assert_eq!(rsock_cancel(std::ptr::null_mut()), -1);
        assert_eq!(rsock_is_cancelled(std::ptr::null()), 0);
        rsock_token_unref(std::ptr::null_mut());
    }
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn version_macros_match_the_crate() {
        let v = format!(
            "{}.{}.{}",
            super::RSOCK_VERSION_MAJOR,
            super::RSOCK_VERSION_MINOR,
            super::RSOCK_VERSION_PATCH
        );
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        assert_eq!(super::VERSION.trim_end_matches('\0'), v);
    }
}
