//! The signal-wake fast path's switch and its blocking calls (see
//! `sigwake.rs`), on Linux x86-64 and AArch64; elsewhere the same names,
//! always off.
//!
//! The program turns it on with `rsock_use_signal_wake(signo)`, or, if it
//! cannot be changed, with the environment variable `RSOCK_WAKE_SIGNAL`
//! (a signal number, read once, at the first call that could use it).

use super::{AddrIn, AddrOut, Error, RawSocket};
use std::ffi::{c_int, c_long};
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(loom)
))]
mod imp {
    pub(crate) use super::super::sigwake::{
        acquire, install, release, signal_blocked, SigWaiter, Stop,
    };
    use std::ffi::c_long;
    pub(crate) const AVAILABLE: bool = true;
    pub(crate) const RECVFROM: c_long = libc::SYS_recvfrom;
    pub(crate) const SENDTO: c_long = libc::SYS_sendto;

    /// # Safety
    /// As for the system call `nr` with `args`.
    pub(crate) unsafe fn call(
        sw: &SigWaiter,
        nr: c_long,
        args: [c_long; 6],
    ) -> Result<usize, Stop> {
        // SAFETY: the caller's contract.
        unsafe { sw.call(nr, args) }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    not(miri),
    not(loom)
)))]
mod imp {
    use super::Error;
    use std::ffi::c_int;

    pub(crate) const AVAILABLE: bool = false;
    pub(crate) const RECVFROM: std::ffi::c_long = 0;
    pub(crate) const SENDTO: std::ffi::c_long = 0;

    /// # Safety
    /// None needed: there is no record to call with.
    pub(crate) unsafe fn call(
        sw: &SigWaiter,
        _nr: std::ffi::c_long,
        _args: [std::ffi::c_long; 6],
    ) -> Result<usize, Stop> {
        match *sw {}
    }

    /// Never made here.
    pub(crate) enum SigWaiter {}

    impl SigWaiter {
        pub(crate) fn kick(&self) -> bool {
            match *self {}
        }
        pub(crate) fn begin(&self) {
            match *self {}
        }
        pub(crate) fn end(&self) {
            match *self {}
        }
    }

    #[allow(dead_code)] // matched, never made: there is no fast path here
    pub(crate) enum Stop {
        Kicked,
        Interrupted,
        Os(Error),
    }

    pub(crate) fn acquire() -> Result<&'static SigWaiter, Error> {
        Err(Error(crate::sys::ENOMEM))
    }
    pub(crate) fn release(rec: &'static SigWaiter) {
        match *rec {}
    }
    pub(crate) fn install(_signo: c_int) -> Result<(), Error> {
        Err(Error(crate::sys::codes::EOPNOTSUPP))
    }
    pub(crate) fn signal_blocked(_signo: c_int) -> bool {
        true
    }
}

pub(crate) use imp::{acquire, release, signal_blocked, SigWaiter, Stop};

/// The environment variable not read yet.
const UNREAD: c_int = -1;
/// The signal waits use, 0 when off, or UNREAD.
static SIGNO: AtomicI32 = AtomicI32::new(UNREAD);

/// The signal of the fast path, or 0 when it is off.
#[inline]
pub(crate) fn signo() -> c_int {
    if !imp::AVAILABLE {
        return 0;
    }
    match SIGNO.load(SeqCst) {
        UNREAD => from_environment(),
        s => s,
    }
}

#[cold]
fn from_environment() -> c_int {
    let wanted = std::env::var("RSOCK_WAKE_SIGNAL")
        .ok()
        .and_then(|v| v.trim().parse::<c_int>().ok())
        .filter(|&s| s > 0);
    let on = match wanted {
        Some(s) if imp::install(s).is_ok() => s,
        _ => 0,
    };
    // A program's own call to `enable` meanwhile wins.
    let _ = SIGNO.compare_exchange(UNREAD, on, SeqCst, SeqCst);
    SIGNO.load(SeqCst)
}

/// Turns the fast path on with `signo` (0: off; waits under way end on the
/// path they took). EINVAL outside SIGRTMIN..=SIGRTMAX; EBUSY if the signal
/// already has a disposition, or another signal was chosen before (the
/// handler stays installed for the life of the process); EOPNOTSUPP where
/// there is no fast path.
pub(crate) fn enable(signo: c_int) -> Result<(), Error> {
    if signo == 0 {
        SIGNO.store(0, SeqCst);
        return Ok(());
    }
    if !imp::AVAILABLE {
        return Err(Error(crate::sys::codes::EOPNOTSUPP));
    }
    imp::install(signo)?;
    SIGNO.store(signo, SeqCst);
    Ok(())
}

/// A blocking `recvfrom` through the stub (`from` may be empty).
pub(crate) fn recv(
    sw: &SigWaiter,
    sock: RawSocket,
    buf: &mut [u8],
    flags: c_int,
    from: AddrOut,
) -> Result<usize, Stop> {
    let args = [
        sock as c_long,
        buf.as_mut_ptr() as c_long,
        buf.len() as c_long,
        flags as c_long,
        from.addr as c_long,
        from.len as c_long,
    ];
    // SAFETY: `buf` is valid for writes of its length; `from` is valid per
    // AddrOut::new (or null); the call is a plain recvfrom.
    unsafe { imp::call(sw, imp::RECVFROM, args) }
}

/// A blocking `sendto` through the stub (`to` may be empty).
pub(crate) fn send(
    sw: &SigWaiter,
    sock: RawSocket,
    buf: &[u8],
    flags: c_int,
    to: AddrIn,
) -> Result<usize, Stop> {
    let args = [
        sock as c_long,
        buf.as_ptr() as c_long,
        buf.len() as c_long,
        flags as c_long,
        to.addr as c_long,
        to.len as c_long,
    ];
    // SAFETY: `buf` is valid for reads of its length; `to` is valid per
    // AddrIn::new (or null); the call is a plain sendto.
    unsafe { imp::call(sw, imp::SENDTO, args) }
}
