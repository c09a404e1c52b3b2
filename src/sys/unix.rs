//! POSIX implementation of the platform layer. Linux uses `eventfd` for wake
//! descriptors; other Unix systems use a non-blocking pipe.

use super::{serialize, AddrIn, AddrOut, Error, Result, Socket};
use libc::{c_int, c_void};

pub type RawSocket = c_int;
pub type PollFd = libc::pollfd;
/// An atomic holding a `RawSocket` (a wake descriptor's signal handle).
pub type AtomicSocket = crate::sync::atomic::AtomicI32;
pub const INVALID_SOCKET: RawSocket = -1;
/// Error codes by their POSIX names (the error descriptions use them).
pub use libc as codes;
pub use libc::{addrinfo, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_storage, socklen_t};

/// Whether `sock` cannot be a descriptor.
pub fn is_invalid(sock: RawSocket) -> bool {
    sock < 0
}

/// POSIX `poll` reports a failed connect: no need to re-read SO_ERROR.
pub const CONNECT_RECHECK_MS: Option<u64> = None;

pub const ECANCELED: i32 = libc::ECANCELED;
pub const ETIMEDOUT: i32 = libc::ETIMEDOUT;
pub const EINPROGRESS: i32 = libc::EINPROGRESS;
pub const EALREADY: i32 = libc::EALREADY;
pub const EINVAL: i32 = libc::EINVAL;
pub const EBADF: i32 = libc::EBADF;
pub const EINTR: i32 = libc::EINTR;
pub const EAGAIN: i32 = libc::EAGAIN;
pub const EWOULDBLOCK: i32 = libc::EWOULDBLOCK;
pub const ENOTRECOVERABLE: i32 = libc::ENOTRECOVERABLE;
pub const ENOMEM: i32 = libc::ENOMEM;
pub const EHOSTUNREACH: i32 = libc::EHOSTUNREACH;

pub const POLLIN: i16 = libc::POLLIN;
pub const POLLPRI: i16 = libc::POLLPRI;
pub const POLLOUT: i16 = libc::POLLOUT;
pub const POLLERR: i16 = libc::POLLERR;
pub const POLLHUP: i16 = libc::POLLHUP;
/// The read side was shut down (Linux; elsewhere no such event).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const POLLRDHUP: i16 = libc::POLLRDHUP;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const POLLRDHUP: i16 = 0;
pub const POLLNVAL: i16 = libc::POLLNVAL;

pub const MSG_WAITALL: c_int = libc::MSG_WAITALL;
pub const MSG_PEEK: c_int = libc::MSG_PEEK;
pub const MSG_DONTWAIT: c_int = libc::MSG_DONTWAIT;
pub const MSG_OOB: c_int = libc::MSG_OOB;
/// MSG_ERRQUEUE where the system has it (Linux), else no flag.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const MSG_ERRQUEUE: c_int = libc::MSG_ERRQUEUE;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const MSG_ERRQUEUE: c_int = 0;

/// The flags the receive calls accept (others are EINVAL): the portable ones,
/// MSG_NOSIGNAL (meaningless for a receive, but often passed to every
/// call), and on Linux MSG_ERRQUEUE.
pub const RECV_FLAGS: c_int = libc::MSG_OOB
    | libc::MSG_PEEK
    | libc::MSG_WAITALL
    | libc::MSG_DONTWAIT
    | libc::MSG_TRUNC
    | libc::MSG_NOSIGNAL
    | LINUX_RECV_FLAGS;
/// The flags the send calls accept (others are EINVAL).
pub const SEND_FLAGS: c_int = libc::MSG_OOB
    | libc::MSG_DONTWAIT
    | libc::MSG_NOSIGNAL
    | libc::MSG_EOR
    | libc::MSG_DONTROUTE
    | LINUX_SEND_FLAGS;
#[cfg(any(target_os = "linux", target_os = "android"))]
const LINUX_RECV_FLAGS: c_int = libc::MSG_ERRQUEUE;
#[cfg(any(target_os = "linux", target_os = "android"))]
const LINUX_SEND_FLAGS: c_int =
    libc::MSG_MORE | libc::MSG_CONFIRM | libc::MSG_ZEROCOPY | libc::MSG_FASTOPEN;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const LINUX_RECV_FLAGS: c_int = 0;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const LINUX_SEND_FLAGS: c_int = 0;

pub const AF_UNSPEC: c_int = libc::AF_UNSPEC;
pub const AF_INET: c_int = libc::AF_INET;
pub const AF_INET6: c_int = libc::AF_INET6;
pub const SOCK_STREAM: c_int = libc::SOCK_STREAM;
pub const SOCK_DGRAM: c_int = libc::SOCK_DGRAM;
// Integer options, read with `sockopt_int`.
pub(super) const SO_ERROR: c_int = libc::SO_ERROR;
pub(super) const SO_TYPE: c_int = libc::SO_TYPE;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "emscripten"))]
fn errno_ptr() -> *mut c_int {
    // SAFETY: returns the calling thread's errno slot; always valid.
    unsafe { libc::__errno_location() }
}
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn errno_ptr() -> *mut c_int {
    // SAFETY: returns the calling thread's errno slot; always valid.
    unsafe { libc::__error() }
}
#[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
fn errno_ptr() -> *mut c_int {
    // SAFETY: returns the calling thread's errno slot; always valid.
    unsafe { libc::__errno() }
}

/// The calling thread's last OS error.
pub fn last_error() -> i32 {
    // SAFETY: errno_ptr() points at this thread's errno.
    unsafe { *errno_ptr() }
}

/// Sets the calling thread's OS error, as the sockets API would.
pub fn set_last_error(code: i32) {
    // SAFETY: errno_ptr() points at this thread's errno.
    unsafe { *errno_ptr() = code }
}

#[inline]
fn check(ret: isize) -> Result<usize> {
    if ret < 0 {
        Err(Error(last_error()))
    } else {
        Ok(ret as usize)
    }
}

/// The system calls a blocking call makes on its hot path, without the C
/// library's cancellation points. On Linux each is the raw system call
/// (`syscall` is not a cancellation point in glibc or musl), so a
/// `pthread_cancel` cannot act inside an rsock call and calls need no
/// `pthread_setcancelstate` pair (see `CallDefer`); it saves the C
/// library's per-call switch to asynchronous cancellation too. Elsewhere
/// they are the C library's functions, and calls defer cancellation
/// instead. (`accept` and `connect`, once per connection, stay the C
/// library's, and those calls defer cancellation.) Arguments go to
/// `syscall` as `c_long`, the width the kernel reads.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod nc {
    use libc::{c_int, c_long, c_void, msghdr, pollfd, sockaddr, socklen_t, syscall};

    // SAFETY (every function): as for the C library function of the same
    // name, whose system call each makes with the same arguments.

    pub unsafe fn recvfrom(
        fd: c_int,
        buf: *mut c_void,
        len: usize,
        flags: c_int,
        addr: *mut sockaddr,
        alen: *mut socklen_t,
    ) -> isize {
        // SAFETY: per the module's contract.
        unsafe {
            syscall(
                libc::SYS_recvfrom,
                fd as c_long,
                buf,
                len,
                flags as c_long,
                addr,
                alen,
            ) as isize
        }
    }

    pub unsafe fn sendto(
        fd: c_int,
        buf: *const c_void,
        len: usize,
        flags: c_int,
        addr: *const sockaddr,
        alen: socklen_t,
    ) -> isize {
        // SAFETY: per the module's contract.
        unsafe {
            syscall(
                libc::SYS_sendto,
                fd as c_long,
                buf,
                len,
                flags as c_long,
                addr,
                alen as c_long,
            ) as isize
        }
    }

    pub unsafe fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> isize {
        // SAFETY: per the module's contract.
        unsafe { syscall(libc::SYS_recvmsg, fd as c_long, msg, flags as c_long) as isize }
    }

    pub unsafe fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> isize {
        // SAFETY: per the module's contract.
        unsafe { syscall(libc::SYS_sendmsg, fd as c_long, msg, flags as c_long) as isize }
    }

    pub unsafe fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
        // SAFETY: per the module's contract.
        unsafe { syscall(libc::SYS_read, fd as c_long, buf, len) as isize }
    }

    pub unsafe fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
        // SAFETY: per the module's contract.
        unsafe { syscall(libc::SYS_write, fd as c_long, buf, len) as isize }
    }

    /// `poll`: the `poll` system call where the architecture has one (as
    /// the C libraries do), else `ppoll` with no signal mask.
    pub unsafe fn poll(fds: *mut pollfd, n: libc::nfds_t, timeout_ms: c_int) -> c_int {
        #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "arm"))]
        // SAFETY: per the module's contract.
        unsafe {
            syscall(libc::SYS_poll, fds, n as c_long, timeout_ms as c_long) as c_int
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "arm")))]
        {
            let ts = libc::timespec {
                tv_sec: (timeout_ms / 1000) as _,
                tv_nsec: ((timeout_ms % 1000) * 1_000_000) as _,
            };
            let tsp: *const libc::timespec = if timeout_ms < 0 {
                std::ptr::null()
            } else {
                &ts
            };
            // The kernel's signal set size (_NSIG / 8); unused without a mask.
            const SIGSET_SIZE: c_long = 8;
            // SAFETY: per the module's contract; `ts` outlives the call.
            unsafe {
                syscall(
                    libc::SYS_ppoll,
                    fds,
                    n as c_long,
                    tsp,
                    std::ptr::null::<c_void>(),
                    SIGSET_SIZE,
                ) as c_int
            }
        }
    }
}

/// Elsewhere the C library's functions (cancellation points, deferred by
/// the call's `CallDefer`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod nc {
    pub use libc::{poll, read, recvfrom, recvmsg, sendmsg, sendto, write};
}

/// Nanoseconds on the monotonic clock, from an arbitrary origin.
/// Async-signal-safe (`clock_gettime`).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC exists on
    // every supported system, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// A wake descriptor: readable once signalled, until drained.
pub struct WakeFd {
    read: c_int,
    write: c_int,
}

impl WakeFd {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn new() -> Result<WakeFd> {
        // SAFETY: plain system call with constant flags.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error(last_error()));
        }
        Ok(WakeFd {
            read: fd,
            write: fd,
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub fn new() -> Result<WakeFd> {
        WakeFd::new_pipe()
    }

    /// The portable implementation: a non-blocking, close-on-exec pipe
    /// (tested on Linux too).
    #[cfg(any(test, not(any(target_os = "linux", target_os = "android"))))]
    pub fn new_pipe() -> Result<WakeFd> {
        let mut fds = [-1 as c_int; 2];
        // SAFETY: fds has room for the two descriptors pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
            return Err(Error(last_error()));
        }
        let w = WakeFd {
            read: fds[0],
            write: fds[1],
        };
        for fd in fds {
            // SAFETY: fd was just returned by pipe() and is owned by `w`.
            let ok = unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0
                    && libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) == 0
            };
            if !ok {
                return Err(Error(last_error()));
            }
        }
        Ok(w)
    }

    /// The descriptor to poll for readability.
    pub fn poll_fd(&self) -> c_int {
        self.read
    }

    /// The value `signal` takes.
    pub fn signal_handle(&self) -> c_int {
        self.write
    }

    /// Empties the descriptor so that it is no longer readable.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a local buffer of the given size.
            let n = unsafe { nc::read(self.read, buf.as_mut_ptr().cast(), buf.len()) };
            // eventfd empties in one read of 8 bytes; a pipe may need more.
            if n <= 0 || (self.read == self.write) || (n as usize) < buf.len() {
                if n < 0 && last_error() == EINTR {
                    continue;
                }
                return;
            }
        }
    }
}

impl Drop for WakeFd {
    fn drop(&mut self) {
        // SAFETY: the descriptors are owned by this object and closed once.
        unsafe {
            libc::close(self.read);
            if self.write != self.read {
                libc::close(self.write);
            }
        }
    }
}

/// Signals a wake descriptor. Async-signal-safe: one `write`, errno
/// preserved, and no cancellation point (a `pthread_cancel` acting here,
/// after the cancel count moved and before the wake-up, would lose it).
/// The caller guarantees that `handle` stays open for the duration.
#[cfg(not(loom))]
pub fn signal(handle: c_int) {
    let saved = last_error();
    let one: u64 = 1;
    // A full pipe or counter means it is already signalled: nothing to do.
    // SAFETY: writes 8 bytes from a local value.
    unsafe { write_nocancel(handle, (&one as *const u64).cast(), 8) };
    set_last_error(saved);
}

/// `write` without the cancellation point that the C library's `write` is:
/// the raw system call (Linux: `syscall` is not a cancellation point), or
/// the C library's own non-cancelling entry where it exports one.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[cfg_attr(loom, allow(unused_imports))] // the models replace `signal`
use nc::write as write_nocancel;

#[cfg(any(target_os = "macos", target_os = "ios"))]
extern "C" {
    #[link_name = "write$NOCANCEL"]
    fn write_nocancel(fd: c_int, buf: *const c_void, len: usize) -> isize;
}

#[cfg(target_os = "freebsd")]
extern "C" {
    #[link_name = "__sys_write"]
    fn write_nocancel(fd: c_int, buf: *const c_void, len: usize) -> isize;
}

/// Elsewhere the plain `write` (a cancellation point there; untested).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
use libc::write as write_nocancel;

#[cfg(loom)]
pub use super::model::signal;

/// `poll`, with the error as a value. EINTR is returned to the caller.
#[inline(always)]
pub fn poll(fds: &mut [PollFd], timeout_ms: c_int) -> Result<usize> {
    // SAFETY: fds is a valid, exclusively borrowed slice of pollfd.
    let n = unsafe { nc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    check(n as isize)
}

/// The most entries `poll` takes (RLIMIT_NOFILE); `None` for no limit.
pub fn poll_limit() -> Option<usize> {
    let mut rl = std::mem::MaybeUninit::<libc::rlimit>::uninit();
    // SAFETY: `rl` has room for the rlimit structure getrlimit writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, rl.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: getrlimit succeeded, so it filled `rl`.
    let cur = unsafe { rl.assume_init() }.rlim_cur;
    (cur != libc::RLIM_INFINITY).then(|| usize::try_from(cur).unwrap_or(usize::MAX))
}

/// `poll` for a thread with a blocking hook (on Windows it also returns
/// when a window message arrives).
pub fn poll_hooked(fds: &mut [PollFd], timeout_ms: c_int) -> Result<usize> {
    poll(fds, timeout_ms)
}

/// One non-blocking `recv` attempt (MSG_DONTWAIT: the socket's mode is untouched).
#[inline]
pub fn recv(sock: RawSocket, buf: &mut [u8], flags: c_int) -> Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    let n = unsafe {
        nc::recvfrom(
            sock,
            buf.as_mut_ptr().cast::<c_void>(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    check(n)
}

/// One non-blocking `send` attempt.
#[inline]
pub fn send(sock: RawSocket, buf: &[u8], flags: c_int) -> Result<usize> {
    // SAFETY: buf is valid for reads of buf.len() bytes.
    let n = unsafe {
        nc::sendto(
            sock,
            buf.as_ptr().cast::<c_void>(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    check(n)
}

/// One non-blocking `recvfrom` attempt.
pub fn recvfrom(sock: RawSocket, buf: &mut [u8], flags: c_int, from: AddrOut) -> Result<usize> {
    // SAFETY: buf is valid for writes; `from` is valid per AddrOut::new.
    let n = unsafe {
        nc::recvfrom(
            sock,
            buf.as_mut_ptr().cast::<c_void>(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
            from.addr,
            from.len,
        )
    };
    check(n)
}

/// One non-blocking `sendto` attempt.
pub fn sendto(sock: RawSocket, buf: &[u8], flags: c_int, to: AddrIn) -> Result<usize> {
    // SAFETY: buf is valid for reads; `to` is valid per AddrIn::new.
    let n = unsafe {
        nc::sendto(
            sock,
            buf.as_ptr().cast::<c_void>(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
            to.addr,
            to.len,
        )
    };
    check(n)
}

// ---------------------------------------------------------------- msghdr and descriptors

pub type MsgHdr = libc::msghdr;
pub type IoVec = libc::iovec;
pub const EMSGSIZE: i32 = libc::EMSGSIZE;
pub const MSG_CTRUNC: c_int = libc::MSG_CTRUNC;
/// The flags only `recvmsg` takes, besides the receive flags: on Linux and
/// FreeBSD MSG_CMSG_CLOEXEC (received descriptors close-on-exec).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub const RECVMSG_FLAGS: c_int = libc::MSG_CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
pub const RECVMSG_FLAGS: c_int = 0;
pub const O_NONBLOCK: c_int = libc::O_NONBLOCK;
/// The most bytes a pipe write takes whole (POSIX: at least 512), so that
/// after POLLOUT a write of at most this much does not block.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const PIPE_BUF: usize = libc::PIPE_BUF;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const PIPE_BUF: usize = 512;

/// The most iovecs a call takes (`IOV_MAX`; 1024 where unknown).
pub fn iov_max() -> usize {
    // SAFETY: sysconf takes no pointer.
    let n = unsafe { libc::sysconf(libc::_SC_IOV_MAX) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1024)
}

/// `n` rounded up as the kernel aligns control messages (CMSG_ALIGN).
pub fn cmsg_align(n: usize) -> usize {
    let Ok(n32) = u32::try_from(n) else {
        return n;
    };
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let (with, without) = unsafe { (libc::CMSG_SPACE(n32), libc::CMSG_SPACE(0)) };
    (with - without) as usize
}

/// One non-blocking `recvmsg` attempt (MSG_DONTWAIT).
///
/// # Safety
/// `msg` is valid and describes buffers valid for writes (or that the
/// kernel rejects with EFAULT).
pub unsafe fn recvmsg(sock: RawSocket, msg: &mut MsgHdr, flags: c_int) -> Result<usize> {
    // SAFETY: per the function's contract.
    check(unsafe { nc::recvmsg(sock, msg, flags | libc::MSG_DONTWAIT) })
}

/// One non-blocking `sendmsg` attempt (MSG_DONTWAIT).
///
/// # Safety
/// `msg` is valid and describes buffers valid for reads (or that the
/// kernel rejects with EFAULT).
pub unsafe fn sendmsg(sock: RawSocket, msg: &MsgHdr, flags: c_int) -> Result<usize> {
    // SAFETY: per the function's contract.
    check(unsafe { nc::sendmsg(sock, msg, flags | libc::MSG_DONTWAIT) })
}

/// One `read`, in the descriptor's own mode.
pub fn read(fd: c_int, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    check(unsafe { nc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// One `write`, in the descriptor's own mode.
pub fn write(fd: c_int, buf: &[u8]) -> Result<usize> {
    // SAFETY: buf is valid for reads of buf.len() bytes.
    check(unsafe { nc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// The file status flags (`F_GETFL`).
pub fn file_flags(fd: c_int) -> Result<c_int> {
    // SAFETY: F_GETFL takes no pointer argument.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return Err(Error(last_error()));
    }
    Ok(fl)
}

/// What kind of file a blocking descriptor is, for `rsock_read`/`rsock_write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Socket,
    Fifo,
    /// A regular file, block device or directory: read and written at once.
    AtOnce,
    /// A terminal, character device, eventfd and the like.
    Other,
}

/// The kind of file `fd` is (`fstat`).
pub fn file_kind(fd: c_int) -> Result<FileKind> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` has room for the stat structure fstat writes.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return Err(Error(last_error()));
    }
    // SAFETY: fstat succeeded, so it filled `st`.
    let mode = unsafe { st.assume_init() }.st_mode & libc::S_IFMT;
    Ok(match mode {
        libc::S_IFSOCK => FileKind::Socket,
        libc::S_IFIFO => FileKind::Fifo,
        libc::S_IFREG | libc::S_IFBLK | libc::S_IFDIR => FileKind::AtOnce,
        _ => FileKind::Other,
    })
}

/// Puts back a descriptor's status flags when dropped.
struct RestoreFlags(c_int, c_int);

impl Drop for RestoreFlags {
    fn drop(&mut self) {
        // SAFETY: F_SETFL takes an integer argument.
        unsafe { libc::fcntl(self.0, libc::F_SETFL, self.1) };
    }
}

/// One `write` that never blocks: a blocking descriptor is switched to
/// non-blocking mode for the instant of the write (serialized per file
/// within the process, as for accept) and switched back, whatever happens.
pub fn write_nonblocking(fd: c_int, buf: &[u8]) -> Result<usize> {
    let _serial = serialize(fd);
    let fl = file_flags(fd)?;
    if fl & libc::O_NONBLOCK != 0 {
        return write(fd, buf);
    }
    // SAFETY: F_SETFL takes an integer argument.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        return Err(Error(last_error()));
    }
    let _restore = RestoreFlags(fd, fl);
    write(fd, buf)
}

/// Whether the descriptor is in non-blocking mode.
pub fn is_nonblocking(sock: RawSocket) -> Result<bool> {
    // SAFETY: F_GETFL takes no pointer argument.
    let fl = unsafe { libc::fcntl(sock, libc::F_GETFL) };
    if fl < 0 {
        return Err(Error(last_error()));
    }
    Ok(fl & libc::O_NONBLOCK != 0)
}

/// A socket's receive (`SO_RCVTIMEO`) or send (`SO_SNDTIMEO`) timeout in
/// milliseconds, rounded up; `None` when unset (zero) or not a socket.
pub fn socket_timeout(sock: RawSocket, send: bool) -> Option<u64> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as socklen_t;
    let opt = if send {
        libc::SO_SNDTIMEO
    } else {
        libc::SO_RCVTIMEO
    };
    // SAFETY: tv and len are valid locals of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            sock,
            libc::SOL_SOCKET,
            opt,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    let us = (tv.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000)
        .saturating_add(tv.tv_usec.max(0) as u64);
    (r == 0 && us > 0).then(|| us.div_ceil(1000))
}

/// Whether a blocking `connect` is bounded by `SO_SNDTIMEO` (Linux), and
/// the error it reports when that passes.
pub const CONNECT_TIMEOUT_ERROR: Option<i32> =
    if cfg!(any(target_os = "linux", target_os = "android")) {
        Some(libc::EINPROGRESS)
    } else {
        None
    };
/// What a plain call reports when its socket timeout passes.
pub const SOCKET_TIMEOUT_ERROR: i32 = libc::EAGAIN;
/// Whether a blocking `accept` is bounded by `SO_RCVTIMEO`.
pub const ACCEPT_USES_RCVTIMEO: bool = true;
/// Whether a blocking send that its socket timeout stops after sending
/// part of the data fails (Windows) rather than returning the count.
pub const SEND_TIMEOUT_FAILS: bool = false;
/// What a non-blocking `connect` reports while the connection is under way.
pub const CONNECT_PENDING: i32 = libc::EINPROGRESS;

/// Sets or clears non-blocking mode (`rsock_set_nonblocking`).
pub fn set_mode(sock: RawSocket, on: bool) -> Result<()> {
    set_nonblocking(sock, on)
}

/// Sets or clears non-blocking mode.
pub fn set_nonblocking(sock: RawSocket, on: bool) -> Result<()> {
    // SAFETY: F_GETFL/F_SETFL take no pointer argument.
    unsafe {
        let fl = libc::fcntl(sock, libc::F_GETFL);
        if fl < 0 {
            return Err(Error(last_error()));
        }
        let new = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        if new != fl && libc::fcntl(sock, libc::F_SETFL, new) < 0 {
            return Err(Error(last_error()));
        }
    }
    Ok(())
}

/// The key that picks a descriptor's attempt lock (see `serialize`): the
/// socket's inode, not the descriptor number, because O_NONBLOCK belongs to
/// the open file description that dup()ed descriptors share.
pub(super) fn stripe(sock: RawSocket) -> usize {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` has room for the stat structure fstat writes.
    if unsafe { libc::fstat(sock, st.as_mut_ptr()) } != 0 {
        return sock as usize; // the attempt will fail with the same error
    }
    // SAFETY: fstat succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    (st.st_ino as usize) ^ (st.st_dev as usize).rotate_left(16)
}

/// Runs `f` with `sock` in non-blocking mode, then puts back the mode it
/// had; serialized per socket within the process.
fn nonblocking_attempt<T>(sock: RawSocket, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let _serial = serialize(sock);
    if is_nonblocking(sock)? {
        return f();
    }
    set_nonblocking(sock, true)?;
    let r = f();
    let _ = set_nonblocking(sock, false);
    r
}

/// One accept attempt that never blocks, whatever the listener's mode: a
/// blocking listener is switched to non-blocking mode only for the instant
/// of the attempt. The new socket is in blocking mode.
pub fn try_accept(sock: RawSocket, from: AddrOut) -> Result<RawSocket> {
    nonblocking_attempt(sock, || accept(sock, from))
}

/// One connect attempt that never blocks, whatever the socket's mode, which
/// is put back (a connect under way goes on in blocking mode too).
pub fn try_connect(sock: RawSocket, to: AddrIn) -> Result<()> {
    nonblocking_attempt(sock, || connect(sock, to))
}

/// One `accept` on a socket the caller has made non-blocking. The new
/// socket is returned in blocking mode on every system.
fn accept(sock: RawSocket, from: AddrOut) -> Result<RawSocket> {
    // SAFETY: `from` is valid per AddrOut::new.
    let fd = unsafe { libc::accept(sock, from.addr, from.len) };
    if fd < 0 {
        return Err(Error(last_error()));
    }
    // BSD-derived systems let the new socket inherit O_NONBLOCK; Linux does not.
    if cfg!(not(any(target_os = "linux", target_os = "android"))) {
        if let Err(e) = set_nonblocking(fd, false) {
            // SAFETY: fd was just accepted and is owned here.
            unsafe { libc::close(fd) };
            return Err(e);
        }
    }
    Ok(fd)
}

/// One `connect` on a socket the caller has made non-blocking.
pub fn connect(sock: RawSocket, to: AddrIn) -> Result<()> {
    // SAFETY: `to` is valid per AddrIn::new.
    let r = unsafe { libc::connect(sock, to.addr, to.len) };
    if r < 0 {
        return Err(Error(last_error()));
    }
    Ok(())
}

/// An integer `SOL_SOCKET` option.
pub(super) fn sockopt_int(sock: RawSocket, opt: i32) -> Result<i32> {
    let mut v: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: v and len are valid locals of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            sock,
            libc::SOL_SOCKET,
            opt,
            (&mut v as *mut c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(Error(last_error()));
    }
    Ok(v)
}

impl Socket {
    /// A new socket in non-blocking mode, close-on-exec.
    pub fn new_nonblocking(family: c_int, socktype: c_int, protocol: c_int) -> Result<Socket> {
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        let sock = {
            // SAFETY: plain system call.
            let fd = unsafe { libc::socket(family, socktype, protocol) };
            if fd < 0 {
                return Err(Error(last_error()));
            }
            let sock = Socket(fd);
            // SAFETY: F_SETFD takes an integer argument.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
                return Err(Error(last_error()));
            }
            set_nonblocking(fd, true)?;
            sock
        };
        #[cfg(not(any(target_os = "macos", target_os = "ios")))]
        let sock = {
            let ty = socktype | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: plain system call.
            let fd = unsafe { libc::socket(family, ty, protocol) };
            if fd < 0 {
                return Err(Error(last_error()));
            }
            Socket(fd)
        };
        Ok(sock)
    }
}

/// Closes a socket the library owns.
pub(super) fn close_socket(sock: RawSocket) {
    // SAFETY: the caller owns the descriptor and closes it once.
    unsafe { libc::close(sock) };
}

/// One `getpeername` into the buffer `to`.
pub(super) fn getpeername(sock: RawSocket, to: AddrOut) -> Result<()> {
    // SAFETY: `to` is valid per AddrOut::new.
    if unsafe { libc::getpeername(sock, to.addr, to.len) } < 0 {
        return Err(Error(last_error()));
    }
    Ok(())
}

extern "C" {
    // Not exported by the libc crate for every target.
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> c_int;
    fn pthread_setcancelstate(state: c_int, oldstate: *mut c_int) -> c_int;
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
const PTHREAD_CANCEL_DISABLE: c_int = 0;
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
const PTHREAD_CANCEL_DISABLE: c_int = 1;

/// Registers fork handlers (see `pthread_atfork`).
pub fn at_fork(
    prepare: Option<unsafe extern "C" fn()>,
    parent: Option<unsafe extern "C" fn()>,
    child: Option<unsafe extern "C" fn()>,
) -> Result<()> {
    // SAFETY: the handlers are plain functions that live for the program.
    match unsafe { pthread_atfork(prepare, parent, child) } {
        0 => Ok(()),
        e => Err(Error(e)),
    }
}

/// Starts a detached system thread running `start(arg)` with every signal
/// blocked but those a fault raises (SIGSEGV, SIGBUS, SIGFPE, SIGILL), so
/// that signals go to the application's own threads and a crash still
/// reaches the application's handler.
pub fn spawn_thread(
    start: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> Result<()> {
    // SAFETY: attr, the signal sets and the thread id are valid locals,
    // initialised by the calls that take them; `start` and `arg` are the
    // caller's, which guarantees `arg` outlives the thread.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        let r = libc::pthread_attr_init(&mut attr);
        if r != 0 {
            return Err(Error(r));
        }
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL] {
            libc::sigdelset(&mut all, sig);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut thread: libc::pthread_t = std::mem::zeroed();
        let r = libc::pthread_create(&mut thread, &attr, start, arg);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        if r != 0 {
            return Err(Error(r));
        }
    }
    Ok(())
}

/// Defers `pthread_cancel` of the calling thread while alive: a forced
/// unwind must not cross Rust frames. A pending cancel acts at the thread's
/// next cancellation point after the rsock call returns.
pub struct DeferCancel(c_int);

/// What a blocking call holds against `pthread_cancel` for its length. On
/// Linux nothing: no function a call reaches is a cancellation point (its
/// system calls are raw: see `nc`; `fcntl` is one only for `F_SETLKW`), so
/// a cancel cannot act before the call returns. Name resolution, which
/// calls the C library's resolver, and a thread's blocking hook (the
/// application's code) defer cancellation themselves. Elsewhere the C
/// library's calls are cancellation points: a `DeferCancel`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub struct CallDefer;

#[cfg(any(target_os = "linux", target_os = "android"))]
impl CallDefer {
    #[inline]
    pub fn new() -> CallDefer {
        CallDefer
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub type CallDefer = DeferCancel;

impl DeferCancel {
    pub fn new() -> DeferCancel {
        let mut old = 0;
        // SAFETY: `old` is a valid out-pointer.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
        DeferCancel(old)
    }
}

impl Drop for DeferCancel {
    fn drop(&mut self) {
        let mut ignored = 0;
        // SAFETY: restores the state saved by `new`.
        unsafe { pthread_setcancelstate(self.0, &mut ignored) };
    }
}

/// A per-thread slot whose destructor runs at thread exit, even for values
/// set while the thread is already exiting (POSIX repeats key destructors).
pub struct ThreadKey(libc::pthread_key_t);

impl ThreadKey {
    pub fn new(dtor: unsafe extern "C" fn(*mut c_void)) -> Result<ThreadKey> {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer; `dtor` lives for the program.
        let r = unsafe { libc::pthread_key_create(&mut key, Some(dtor)) };
        if r != 0 {
            return Err(Error(r));
        }
        Ok(ThreadKey(key))
    }

    /// Sets the calling thread's value; its destructor gets it at exit.
    pub fn set(&self, value: *mut c_void) -> Result<()> {
        // SAFETY: the key was created by `new` and is never deleted.
        match unsafe { libc::pthread_setspecific(self.0, value) } {
            0 => Ok(()),
            e => Err(Error(e)),
        }
    }
}

// ---------------------------------------------------------------- resolution

pub const EAI_SYSTEM: c_int = libc::EAI_SYSTEM;
pub const AI_NUMERICHOST: c_int = libc::AI_NUMERICHOST;
pub const AI_NUMERICSERV: c_int = libc::AI_NUMERICSERV;
pub const AI_CANONNAME: c_int = libc::AI_CANONNAME;

/// The errno that best describes a failed lookup (for calls that report
/// errors in errno): no such name is EHOSTUNREACH, a temporary failure
/// EAGAIN, bad arguments EINVAL.
pub fn lookup_errno(rc: c_int, errno: i32) -> i32 {
    match rc {
        libc::EAI_SYSTEM => errno,
        libc::EAI_AGAIN => libc::EAGAIN,
        libc::EAI_MEMORY => libc::ENOMEM,
        libc::EAI_BADFLAGS | libc::EAI_FAMILY | libc::EAI_SOCKTYPE | libc::EAI_SERVICE => {
            libc::EINVAL
        }
        _ => libc::EHOSTUNREACH, // EAI_NONAME, EAI_NODATA, EAI_FAIL, ...
    }
}

/// The system's getaddrinfo on raw hints. On failure: its EAI_* code, and
/// the errno that goes with EAI_SYSTEM.
pub(super) fn sys_getaddrinfo(
    node: Option<&std::ffi::CStr>,
    service: Option<&std::ffi::CStr>,
    hints: *const addrinfo,
) -> std::result::Result<*mut addrinfo, (c_int, i32)> {
    let mut res: *mut addrinfo = std::ptr::null_mut();
    // SAFETY: the strings are NUL-terminated or NULL, `hints` is NULL or
    // valid (the caller's), `res` a valid local.
    let rc = unsafe {
        libc::getaddrinfo(
            node.map_or(std::ptr::null(), |s| s.as_ptr()),
            service.map_or(std::ptr::null(), |s| s.as_ptr()),
            hints,
            &mut res,
        )
    };
    if rc != 0 {
        return Err((rc, if rc == EAI_SYSTEM { last_error() } else { 0 }));
    }
    Ok(res)
}

/// # Safety
/// `ai` came from getaddrinfo and is freed once.
pub(super) unsafe fn sys_freeaddrinfo(ai: *mut addrinfo) {
    // SAFETY: per the function's contract.
    unsafe { libc::freeaddrinfo(ai) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn pipe_fallback_signals_and_drains() {
        crate::sys::tests::signal_and_drain(WakeFd::new_pipe().expect("pipe"));
    }
}
