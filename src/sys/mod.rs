//! The platform layer: everything that touches the operating system.
//!
//! The rest of the crate sees only this small interface: the socket type and
//! error codes, a wake descriptor (a per-thread object that `rsock_cancel`
//! signals), `poll`, and attempts of the socket calls that never block.
//! `unix.rs` implements it for POSIX systems, `windows.rs` for Winsock 2.

mod addr;
pub use addr::*;
use std::sync::atomic::{AtomicBool, Ordering::*};
#[cfg(loom)]
pub mod model;
// The signal-wake fast path's mechanism (issue 20, item 2): assembly
// stubs, so neither other architectures nor Miri.
pub(crate) mod fast;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri)
))]
pub(crate) mod sigwake;
#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// An OS error code (`errno` on POSIX).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(pub i32);

impl Error {
    /// Whether a non-blocking attempt failed only because it would block.
    pub fn would_block(self) -> bool {
        self.0 == EAGAIN || self.0 == EWOULDBLOCK
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// An empty vector with room for `n` items, or ENOMEM (where growing a
/// vector would abort).
pub fn try_vec<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error(ENOMEM))?;
    Ok(v)
}

/// Runs `register` (which installs fork handlers) until it succeeds once;
/// its error until then. `done` is the caller's record of success.
pub fn once_ok(done: &std::sync::Mutex<bool>, register: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
    if !*done {
        register()?;
        *done = true;
    }
    Ok(())
}

/// A poll entry for `fd` asking for `events`, with no results yet.
/// (`libc::pollfd` and `WSAPOLLFD` have the same fields; only the type of
/// `fd` differs.)
pub const fn poll_entry(fd: RawSocket, events: i16) -> PollFd {
    PollFd {
        fd,
        events,
        revents: 0,
    }
}

/// One lock per stripe of sockets; see `serialize`. A flag rather than a
/// mutex, so that a fork() child can free the ones held by threads that do
/// not exist in it (`free_attempt_locks`). Holders make a few system calls
/// that never block, so a waiter spins briefly, then yields.
static ATTEMPT_LOCKS: [AtomicBool; 64] = [const { AtomicBool::new(false) }; 64];

/// A held attempt lock; released when dropped.
pub(crate) struct AttemptGuard(&'static AtomicBool);

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        self.0.store(false, Release);
    }
}

/// Serializes attempts on one socket within the process: the switch to
/// non-blocking mode around an attempt, so that two rsock threads on one
/// blocking socket cannot see each other's temporary mode (and then block
/// in the kernel), and on Windows the readiness check before a receive or
/// accept. Each backend's `stripe` picks the lock.
fn serialize(sock: RawSocket) -> AttemptGuard {
    fork_frees_attempt_locks();
    let lock = &ATTEMPT_LOCKS[stripe(sock) % ATTEMPT_LOCKS.len()];
    let mut spins = 0u32;
    while lock
        .compare_exchange_weak(false, true, Acquire, Relaxed)
        .is_err()
    {
        if spins < 100 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    AttemptGuard(lock)
}

/// In a fork() child only the forking thread exists, and it is in fork(),
/// not in an attempt: every attempt lock is free. Async-signal-safe.
unsafe extern "C" fn free_attempt_locks() {
    for lock in &ATTEMPT_LOCKS {
        lock.store(false, Relaxed);
    }
}

/// Registers `free_attempt_locks` as a fork child handler, once (tried
/// again on the next attempt if registering fails). Two threads may both
/// register it: running it twice in a child is harmless.
fn fork_frees_attempt_locks() {
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    if !REGISTERED.load(Relaxed) && at_fork(None, None, Some(free_attempt_locks)).is_ok() {
        REGISTERED.store(true, Relaxed);
    }
}

/// The pending error of a socket (`SO_ERROR`), which reading clears.
pub fn take_socket_error(sock: RawSocket) -> Result<i32> {
    sockopt_int(sock, SO_ERROR)
}

/// Whether `sock` is a stream socket (partial transfers are possible).
pub fn is_stream(sock: RawSocket) -> bool {
    sockopt_int(sock, SO_TYPE) == Ok(SOCK_STREAM)
}

/// Ok if `sock` has a peer; otherwise the error that says why not.
pub fn peer_check(sock: RawSocket) -> Result<()> {
    // SAFETY: sockaddr_storage is plain data, large enough for any address.
    let mut ss: sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<sockaddr_storage>() as socklen_t;
    // SAFETY: ss is valid for writes of len bytes, len for reads and
    // writes, both for as long as `to` is used.
    let to = unsafe { AddrOut::new((&mut ss as *mut sockaddr_storage).cast(), &mut len) };
    getpeername(sock, to)
}

/// A socket this library created and owns until handed to the caller;
/// closed on drop. (Each platform adds `new_nonblocking`.)
pub struct Socket(RawSocket);

impl Socket {
    pub fn raw(&self) -> RawSocket {
        self.0
    }

    /// Gives up ownership: the caller closes it.
    pub fn into_raw(self) -> RawSocket {
        let s = self.0;
        std::mem::forget(self);
        s
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        close_socket(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(w: &WakeFd) -> bool {
        let mut p = [poll_entry(w.poll_fd(), POLLIN)];
        poll(&mut p, 0) == Ok(1)
    }

    /// Many signals (on POSIX more than a pipe's buffer holds) and one drain.
    pub(super) fn signal_and_drain(w: WakeFd) {
        let signals = if cfg!(windows) { 10_000 } else { 100_000 };
        assert!(!readable(&w));
        for _ in 0..signals {
            signal(w.signal_handle());
        }
        assert!(readable(&w));
        w.drain();
        assert!(!readable(&w));
        signal(w.signal_handle());
        assert!(readable(&w));
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn wake_descriptor_signals_and_drains() {
        signal_and_drain(WakeFd::new().expect("wake descriptor"));
    }
}
