//! Windows (Winsock 2) implementation of the platform layer.
//!
//! The wait is `WSAPoll` over the caller's sockets plus the thread's wake
//! socket: a UDP socket on 127.0.0.1 connected to itself, which a cancel
//! signals by sending it one byte. Why not `WSAEventSelect` with
//! `WaitForMultipleObjects` for every wait: a socket has only one event
//! selection, so a second thread waiting on the same socket (one thread
//! receiving while another sends is ordinary) would silently replace the
//! first thread's and lose its wake-up; and the selection forces the socket
//! non-blocking. Only while a blocking hook is installed, which must also
//! run when a window message arrives, does `poll_hooked` select the sockets
//! onto an event for `MsgWaitForMultipleObjectsEx`, re-checking them with
//! `WSAPoll` each time (so at most the 10 ms hook slice is lost if another
//! thread replaces the selection).
//!
//! Windows cannot report whether a socket is in non-blocking mode, and has
//! no MSG_DONTWAIT. Receives and accepts therefore never change the mode:
//! they check readiness with a zero-timeout `WSAPoll` and then make the
//! plain call (a receive asks for at most what FIONREAD says is queued), so
//! it cannot block. Sends and connects switch the socket to non-blocking
//! for the attempt and leave it in blocking mode (its default, and the only
//! mode that can be restored without knowing the old one). Attempts on one
//! socket are serialized within the process, so two rsock calls cannot
//! consume each other's readiness; a plain `recv`/`accept` by another thread
//! of the application on the same socket can, and may then block it.
//! Nothing here cancels by closing the socket, by `shutdown`, or by
//! `CancelIoEx`.

use super::{poll_entry, serialize, AddrIn, AddrOut, Error, Result, Socket};
use libc::{c_int, c_void};
use std::ptr;
use std::sync::OnceLock;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Networking::WinSock as ws;
use windows_sys::Win32::System::Threading::{
    CreateThread, FlsAlloc, FlsGetValue, FlsSetValue, GetCurrentThreadId, FLS_OUT_OF_INDEXES,
    INFINITE,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    GetQueueStatus, MsgWaitForMultipleObjectsEx, QS_ALLINPUT,
};

pub type RawSocket = ws::SOCKET;
pub type PollFd = ws::WSAPOLLFD;
/// An atomic holding a `RawSocket` (a wake socket's signal handle).
pub type AtomicSocket = crate::sync::atomic::AtomicUsize;
pub const INVALID_SOCKET: RawSocket = ws::INVALID_SOCKET;

/// The C types of addresses, as the header names them.
#[allow(non_camel_case_types)]
pub type sockaddr = ws::SOCKADDR;
#[allow(non_camel_case_types)]
pub type socklen_t = i32;
#[allow(non_camel_case_types)]
pub type addrinfo = ws::ADDRINFOA;
#[allow(non_camel_case_types)]
pub type sockaddr_in = ws::SOCKADDR_IN;
#[allow(non_camel_case_types)]
pub type sockaddr_in6 = ws::SOCKADDR_IN6;
#[allow(non_camel_case_types)]
pub type sockaddr_storage = ws::SOCKADDR_STORAGE;

/// Whether `sock` is the invalid-socket value.
pub fn is_invalid(sock: RawSocket) -> bool {
    sock == INVALID_SOCKET
}

/// Error codes, named as on POSIX, with the values Winsock reports.
pub mod codes {
    use windows_sys::Win32::Networking::WinSock as ws;
    /// What a call cancelled by WSACancelBlockingCall reported.
    pub const ECANCELED: i32 = ws::WSAEINTR;
    pub const ETIMEDOUT: i32 = ws::WSAETIMEDOUT;
    pub const EINPROGRESS: i32 = ws::WSAEINPROGRESS;
    pub const EALREADY: i32 = ws::WSAEALREADY;
    pub const EINVAL: i32 = ws::WSAEINVAL;
    /// Winsock's error for a handle that is not a socket.
    pub const EBADF: i32 = ws::WSAENOTSOCK;
    pub const ENOTSOCK: i32 = ws::WSAENOTSOCK;
    /// Windows socket calls are not interrupted by signals: matches nothing.
    pub const EINTR: i32 = i32::MIN;
    pub const EAGAIN: i32 = ws::WSAEWOULDBLOCK;
    pub const EWOULDBLOCK: i32 = ws::WSAEWOULDBLOCK;
    /// Winsock's "system call failure", for an internal fault.
    pub const ENOTRECOVERABLE: i32 = ws::WSASYSCALLFAILURE;
    /// Winsock's code for exhausted memory or buffers.
    pub const ENOMEM: i32 = ws::WSAENOBUFS;
    pub const ENOBUFS: i32 = ws::WSAENOBUFS;
    pub const EHOSTUNREACH: i32 = ws::WSAEHOSTUNREACH;
    pub const EMFILE: i32 = ws::WSAEMFILE;
    pub const ENFILE: i32 = ws::WSAEMFILE;
    pub const EFAULT: i32 = ws::WSAEFAULT;
    pub const EPIPE: i32 = ws::WSAESHUTDOWN;
    pub const ECONNREFUSED: i32 = ws::WSAECONNREFUSED;
    pub const ECONNRESET: i32 = ws::WSAECONNRESET;
    pub const ECONNABORTED: i32 = ws::WSAECONNABORTED;
    pub const ENOTCONN: i32 = ws::WSAENOTCONN;
    pub const EISCONN: i32 = ws::WSAEISCONN;
    pub const EADDRINUSE: i32 = ws::WSAEADDRINUSE;
    pub const EADDRNOTAVAIL: i32 = ws::WSAEADDRNOTAVAIL;
    pub const EAFNOSUPPORT: i32 = ws::WSAEAFNOSUPPORT;
    pub const EPROTOTYPE: i32 = ws::WSAEPROTOTYPE;
    pub const EOPNOTSUPP: i32 = ws::WSAEOPNOTSUPP;
    pub const EDESTADDRREQ: i32 = ws::WSAEDESTADDRREQ;
    pub const EMSGSIZE: i32 = ws::WSAEMSGSIZE;
    pub const ENETDOWN: i32 = ws::WSAENETDOWN;
    pub const ENETUNREACH: i32 = ws::WSAENETUNREACH;
    pub const EACCES: i32 = ws::WSAEACCES;
    pub const WSANOTINITIALISED: i32 = ws::WSANOTINITIALISED;
    pub const WSAHOST_NOT_FOUND: i32 = ws::WSAHOST_NOT_FOUND;
    pub const WSATRY_AGAIN: i32 = ws::WSATRY_AGAIN;
    pub const WSANO_RECOVERY: i32 = ws::WSANO_RECOVERY;
    pub const WSANO_DATA: i32 = ws::WSANO_DATA;
    pub const WSATYPE_NOT_FOUND: i32 = ws::WSATYPE_NOT_FOUND;
    /// getaddrinfo's EAI_MEMORY.
    pub const WSA_NOT_ENOUGH_MEMORY: i32 = ws::WSA_NOT_ENOUGH_MEMORY;
    pub const WSAESOCKTNOSUPPORT: i32 = ws::WSAESOCKTNOSUPPORT;
}
pub use codes::{
    EAGAIN, EALREADY, EBADF, ECANCELED, EHOSTUNREACH, EINPROGRESS, EINTR, EINVAL, ENOMEM,
    ENOTRECOVERABLE, ETIMEDOUT, EWOULDBLOCK,
};

/// Normal data (out-of-band data is POLLPRI, below).
pub const POLLIN: i16 = ws::POLLRDNORM;
/// Out-of-band data: Winsock reports it as POLLRDBAND.
pub const POLLPRI: i16 = ws::POLLRDBAND;
pub const POLLOUT: i16 = ws::POLLWRNORM;
pub const POLLERR: i16 = ws::POLLERR;
pub const POLLHUP: i16 = ws::POLLHUP;
/// No read-side shutdown event on Windows.
pub const POLLRDHUP: i16 = 0;

/// WSAPoll has no limit on its entries.
pub fn poll_limit() -> Option<usize> {
    None
}
pub const POLLNVAL: i16 = ws::POLLNVAL;

pub const MSG_WAITALL: c_int = ws::MSG_WAITALL;
pub const MSG_PEEK: c_int = ws::MSG_PEEK;
pub const MSG_OOB: c_int = ws::MSG_OOB;
/// Windows has no MSG_DONTWAIT or MSG_ERRQUEUE.
pub const MSG_DONTWAIT: c_int = 0;
pub const MSG_ERRQUEUE: c_int = 0;
/// The flags the receive calls accept (others are EINVAL).
pub const RECV_FLAGS: c_int = ws::MSG_OOB | ws::MSG_PEEK | ws::MSG_WAITALL;
/// The flags the send calls accept (others are EINVAL).
pub const SEND_FLAGS: c_int = ws::MSG_OOB | ws::MSG_DONTROUTE;

pub const AF_UNSPEC: c_int = ws::AF_UNSPEC as c_int;
pub const AF_INET: c_int = ws::AF_INET as c_int;
pub const AF_INET6: c_int = ws::AF_INET6 as c_int;
pub const SOCK_STREAM: c_int = ws::SOCK_STREAM;
pub const SOCK_DGRAM: c_int = ws::SOCK_DGRAM;
// Integer options, read with `sockopt_int`.
pub(super) const SO_ERROR: c_int = ws::SO_ERROR;
pub(super) const SO_TYPE: c_int = ws::SO_TYPE;

/// How often a connect wait re-reads SO_ERROR: `WSAPoll` before Windows 10
/// 2004 does not report a failed connect at all.
pub const CONNECT_RECHECK_MS: Option<u64> = Some(100);

/// The calling thread's last Winsock error.
pub fn last_error() -> i32 {
    // SAFETY: reads the thread's last-error value.
    unsafe { ws::WSAGetLastError() }
}

/// Sets the calling thread's Winsock error, as the sockets API would.
pub fn set_last_error(code: i32) {
    // SAFETY: writes the thread's last-error value.
    unsafe { ws::WSASetLastError(code) }
}

fn last() -> Error {
    Error(last_error())
}

/// Calls WSAStartup once for the library's own use (reference-counted by
/// Winsock, so the application's own WSAStartup/WSACleanup are unaffected).
fn startup() -> Result<()> {
    static RESULT: OnceLock<i32> = OnceLock::new();
    let r = *RESULT.get_or_init(|| {
        // SAFETY: WSADATA is plain data, filled in by the call.
        let mut data: ws::WSADATA = unsafe { std::mem::zeroed() };
        // SAFETY: `data` is a valid out-pointer.
        unsafe { ws::WSAStartup(0x0202, &mut data) }
    });
    match r {
        0 => Ok(()),
        e => Err(Error(e)),
    }
}

fn check(ret: i32) -> Result<usize> {
    if ret == ws::SOCKET_ERROR {
        Err(last())
    } else {
        Ok(ret as usize)
    }
}

fn ioctl(sock: RawSocket, cmd: i32, arg: u32) -> Result<u32> {
    let mut v = arg;
    // SAFETY: `v` is a valid in/out argument for FIONBIO and FIONREAD.
    check(unsafe { ws::ioctlsocket(sock, cmd, &mut v) })?;
    Ok(v)
}

/// Winsock's largest transfer per call.
fn clamp(len: usize) -> i32 {
    len.min(i32::MAX as usize) as i32
}

/// The key that picks a socket's attempt lock (see `serialize`): socket
/// handles are multiples of 4.
pub(super) fn stripe(sock: RawSocket) -> usize {
    sock >> 2
}

/// Whether `sock` has `events` now (an error or hang-up counts); WSAENOTSOCK
/// for a handle that is not a socket.
fn ready_now(sock: RawSocket, events: i16) -> Result<bool> {
    let mut p = [poll_entry(sock, events)];
    poll(&mut p, 0)?;
    if p[0].revents & POLLNVAL != 0 {
        return Err(Error(EBADF));
    }
    Ok(p[0].revents != 0)
}

/// WSAENOTSOCK if `sock` is not a socket (some handles fail other calls
/// with other errors).
fn not_a_socket(sock: RawSocket) -> Option<Error> {
    sockopt_int(sock, SO_TYPE).err()
}

/// Runs `f` with `sock` switched to non-blocking mode, then leaves it in
/// blocking mode (the old mode cannot be read; see the module comment).
fn nonblocking_attempt<T>(sock: RawSocket, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let _serial = serialize(sock);
    ioctl(sock, ws::FIONBIO, 1).map_err(|e| not_a_socket(sock).unwrap_or(e))?;
    let r = f();
    let _ = ioctl(
        sock,
        ws::FIONBIO,
        is_nonblocking(sock).unwrap_or(false) as u32,
    );
    r
}

/// The sockets known to be in non-blocking mode. Windows cannot report a
/// socket's mode, so rsock knows what `rsock_set_nonblocking` set (the
/// redirect mode routes `ioctlsocket(FIONBIO)` and `closesocket` there);
/// any other socket counts as blocking, Winsock's default.
static NONBLOCKING: std::sync::Mutex<Vec<RawSocket>> = std::sync::Mutex::new(Vec::new());

fn nonblocking_list() -> std::sync::MutexGuard<'static, Vec<RawSocket>> {
    NONBLOCKING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the socket is known to be in non-blocking mode (see NONBLOCKING).
pub fn is_nonblocking(sock: RawSocket) -> Result<bool> {
    Ok(nonblocking_list().contains(&sock))
}

/// Sets the socket's mode and remembers it (see NONBLOCKING).
pub fn set_mode(sock: RawSocket, on: bool) -> Result<()> {
    ioctl(sock, ws::FIONBIO, on as u32)?;
    let mut list = nonblocking_list();
    list.retain(|&s| s != sock);
    if on {
        list.try_reserve(1).map_err(|_| Error(ENOMEM))?;
        list.push(sock);
    }
    Ok(())
}

/// A socket's receive (`SO_RCVTIMEO`) or send (`SO_SNDTIMEO`) timeout in
/// milliseconds; `None` when unset (zero).
pub fn socket_timeout(sock: RawSocket, send: bool) -> Option<u64> {
    let opt = if send {
        ws::SO_SNDTIMEO
    } else {
        ws::SO_RCVTIMEO
    };
    match sockopt_int(sock, opt) {
        Ok(ms) if ms > 0 => Some(ms as u32 as u64),
        _ => None,
    }
}

/// A blocking `connect` on Windows is not bounded by `SO_SNDTIMEO`.
pub const CONNECT_TIMEOUT_ERROR: Option<i32> = None;
/// What a plain call reports when its socket timeout passes.
pub const SOCKET_TIMEOUT_ERROR: i32 = ws::WSAETIMEDOUT;
/// A blocking `accept` on Windows is not bounded by `SO_RCVTIMEO`.
pub const ACCEPT_USES_RCVTIMEO: bool = false;
/// A blocking send that `SO_SNDTIMEO` stops fails with WSAETIMEDOUT, even
/// after sending part of the data.
pub const SEND_TIMEOUT_FAILS: bool = true;
/// What a non-blocking `connect` reports while the connection is under way.
pub const CONNECT_PENDING: i32 = ws::WSAEWOULDBLOCK;

/// A readiness-checked plain receive (see the module comment): `call`
/// gets the flags and the length it may ask for.
fn ready_recv(
    sock: RawSocket,
    len: usize,
    flags: c_int,
    call: impl FnOnce(c_int, i32) -> i32,
) -> Result<usize> {
    // Winsock fails MSG_WAITALL with MSG_PEEK, MSG_OOB or a datagram
    // socket (the only cases that get here with it), and a readiness-checked
    // attempt takes what is queued anyway.
    let flags = flags & !MSG_WAITALL;
    let _serial = serialize(sock);
    let oob = flags & MSG_OOB != 0;
    if !ready_now(sock, if oob { POLLPRI } else { POLLIN })? {
        return Err(Error(EWOULDBLOCK));
    }
    // Queued bytes: for a stream what one recv returns at once; for
    // datagrams at least the first one's size. Zero while readable: end of
    // stream, an error, or an empty datagram, which return at once anyway.
    // (FIONREAD does not count urgent data.)
    let queued = if oob {
        0
    } else {
        ioctl(sock, ws::FIONREAD, 0)? as usize
    };
    let n = if queued > 0 { len.min(queued) } else { len };
    check(call(flags, clamp(n)))
}

/// A wake socket: readable once signalled, until drained.
pub struct WakeFd {
    sock: RawSocket,
}

impl WakeFd {
    pub fn new() -> Result<WakeFd> {
        startup()?;
        let s = Socket::new_nonblocking(AF_INET, SOCK_DGRAM, ws::IPPROTO_UDP)?;
        // SAFETY: SOCKADDR_IN is plain data; zero is its "any" value.
        let mut a: ws::SOCKADDR_IN = unsafe { std::mem::zeroed() };
        a.sin_family = ws::AF_INET;
        a.sin_addr.S_un.S_addr = ws::INADDR_LOOPBACK.to_be();
        let mut len = std::mem::size_of::<ws::SOCKADDR_IN>() as i32;
        let p = (&mut a as *mut ws::SOCKADDR_IN).cast::<ws::SOCKADDR>();
        // No other socket may bind the port with SO_REUSEADDR and take the
        // cancel's datagram.
        let one: i32 = 1;
        // SAFETY: `one`, `a` and `len` are valid locals of the sizes given.
        unsafe {
            check(ws::setsockopt(
                s.raw(),
                ws::SOL_SOCKET,
                ws::SO_EXCLUSIVEADDRUSE,
                (&one as *const i32).cast(),
                std::mem::size_of::<i32>() as i32,
            ))?;
            check(ws::bind(s.raw(), p, len))?;
            check(ws::getsockname(s.raw(), p, &mut len))?;
            check(ws::connect(s.raw(), p, len))?;
        }
        Ok(WakeFd { sock: s.into_raw() })
    }

    /// The socket to poll for readability.
    pub fn poll_fd(&self) -> RawSocket {
        self.sock
    }

    /// The value `signal` takes.
    pub fn signal_handle(&self) -> RawSocket {
        self.sock
    }

    /// Empties the socket so that it is no longer readable.
    pub fn drain(&self) {
        let mut buf = [0u8; 16];
        // SAFETY: reads into a local buffer of the given size.
        while unsafe { ws::recv(self.sock, buf.as_mut_ptr(), buf.len() as i32, 0) } >= 0 {}
    }
}

impl Drop for WakeFd {
    fn drop(&mut self) {
        // SAFETY: the socket is owned by this object and closed once.
        unsafe { ws::closesocket(self.sock) };
    }
}

/// Signals a wake socket: one `send`, the last error preserved. The caller
/// guarantees that `handle` stays open for the duration.
pub fn signal(handle: RawSocket) {
    let saved = last_error();
    let one = 1u8;
    // A full queue means it is already signalled: nothing to do.
    // SAFETY: sends one byte from a local value.
    unsafe { ws::send(handle, &one, 1, 0) };
    set_last_error(saved);
}

/// Nanoseconds on the monotonic clock (the performance counter), from an
/// arbitrary origin.
pub fn monotonic_ns() -> u64 {
    use windows_sys::Win32::System::Performance::{
        QueryPerformanceCounter, QueryPerformanceFrequency,
    };
    let (mut count, mut freq) = (0i64, 0i64);
    // SAFETY: both write one i64 to a valid local; they cannot fail on
    // Windows XP and later.
    unsafe {
        QueryPerformanceCounter(&mut count);
        QueryPerformanceFrequency(&mut freq);
    }
    let ns = count.max(0) as u128 * 1_000_000_000 / freq.max(1) as u128;
    ns.min(u64::MAX as u128) as u64
}

/// `WSAPoll`, with the error as a value.
pub fn poll(fds: &mut [PollFd], timeout_ms: c_int) -> Result<usize> {
    // SAFETY: fds is a valid, exclusively borrowed slice of WSAPOLLFD.
    check(unsafe { ws::WSAPoll(fds.as_mut_ptr(), fds.len() as u32, timeout_ms) })?;
    // As Windows documents it: entries of INVALID_SOCKET are ignored, and
    // every other entry with events counts, POLLNVAL included (Wine marks
    // the former POLLNVAL and leaves invalid sockets uncounted).
    let mut n = 0;
    for f in fds.iter_mut() {
        if f.fd == INVALID_SOCKET {
            f.revents = 0;
        } else if f.revents != 0 {
            n += 1;
        }
    }
    #[cfg(test)]
    let n = tests::like_old_wsapoll(fds, n);
    Ok(n)
}

thread_local! {
    static MSG_EVENT: MsgEvent = const { MsgEvent(std::cell::Cell::new(0)) };
}

/// The thread's event for `poll_hooked`, made on first use.
struct MsgEvent(std::cell::Cell<ws::WSAEVENT>);

impl MsgEvent {
    fn get(&self) -> Option<ws::WSAEVENT> {
        if self.0.get() == 0 {
            // SAFETY: creates a manual-reset event; NULL on failure.
            self.0.set(unsafe { ws::WSACreateEvent() });
        }
        let ev = self.0.get();
        (ev != 0).then_some(ev)
    }
}

impl Drop for MsgEvent {
    fn drop(&mut self) {
        if self.0.get() != 0 {
            // SAFETY: the event is owned by this thread's cell.
            unsafe { ws::WSACloseEvent(self.0.get()) };
        }
    }
}

/// `poll` for a thread with a blocking hook: also returns (with 0) when a
/// window message arrives for the thread. The last entry is the wake
/// socket. `WSAEventSelect` makes each socket non-blocking; afterwards the
/// caller's sockets are left in blocking mode, and any event selection the
/// application had made on them is gone.
pub fn poll_hooked(fds: &mut [PollFd], timeout_ms: c_int) -> Result<usize> {
    let Some(ev) = MSG_EVENT.try_with(MsgEvent::get).ok().flatten() else {
        return poll(fds, timeout_ms);
    };
    for f in fds.iter().filter(|f| f.fd != INVALID_SOCKET) {
        let mut mask = ws::FD_CLOSE;
        if f.events & (ws::POLLRDNORM | ws::POLLRDBAND | ws::POLLPRI) != 0 {
            mask |= ws::FD_READ | ws::FD_ACCEPT | ws::FD_OOB;
        }
        if f.events & (ws::POLLWRNORM | ws::POLLWRBAND) != 0 {
            mask |= ws::FD_WRITE | ws::FD_CONNECT;
        }
        // A failure (not a socket) is reported by WSAPoll below.
        // SAFETY: plain call on the caller's socket and our event.
        unsafe { ws::WSAEventSelect(f.fd, ev, mask as i32) };
    }
    let r = (|| {
        // SAFETY: our event.
        unsafe { ws::WSAResetEvent(ev as HANDLE) };
        let n = poll(fds, 0)?;
        if n > 0 || timeout_ms == 0 {
            return Ok(n);
        }
        // Input that came since the thread last looked at its queue (the
        // hook's PeekMessage, or this call): the hook runs at once. Looking
        // marks it seen, so input the hook leaves in the queue does not
        // end every later wait at once.
        // SAFETY: plain call on the thread's own queue.
        if unsafe { GetQueueStatus(QS_ALLINPUT) } & 0xffff != 0 {
            return Ok(0);
        }
        let ms = if timeout_ms < 0 {
            INFINITE
        } else {
            timeout_ms as u32
        };
        // SAFETY: waits on one valid event handle.
        unsafe { MsgWaitForMultipleObjectsEx(1, &(ev as HANDLE), ms, QS_ALLINPUT, 0) };
        poll(fds, 0)
    })();
    let wake = fds.len() - 1;
    for (i, f) in fds
        .iter()
        .enumerate()
        .filter(|(_, f)| f.fd != INVALID_SOCKET)
    {
        if i == wake {
            // SAFETY: plain call on the thread's wake socket.
            unsafe { ws::WSAEventSelect(f.fd, 0, 0) };
            continue;
        }
        // Under the socket's lock: switching it to blocking mode in the
        // middle of another thread's non-blocking attempt would leave that
        // thread blocked in send().
        let _serial = serialize(f.fd);
        // SAFETY: plain call on a socket selected above.
        unsafe { ws::WSAEventSelect(f.fd, 0, 0) };
        let _ = ioctl(f.fd, ws::FIONBIO, 0);
    }
    r
}

/// One `recv` attempt that never blocks, whatever the socket's mode.
pub fn recv(sock: RawSocket, buf: &mut [u8], flags: c_int) -> Result<usize> {
    let p = buf.as_mut_ptr();
    // SAFETY: buf is valid for writes of at least `n` bytes.
    ready_recv(sock, buf.len(), flags, |f, n| unsafe {
        ws::recv(sock, p, n, f)
    })
}

/// One non-blocking `send` attempt.
pub fn send(sock: RawSocket, buf: &[u8], flags: c_int) -> Result<usize> {
    nonblocking_attempt(sock, || {
        // SAFETY: buf is valid for reads of its length.
        check(unsafe { ws::send(sock, buf.as_ptr(), clamp(buf.len()), flags) })
    })
}

/// One `recvfrom` attempt that never blocks, whatever the socket's mode.
pub fn recvfrom(sock: RawSocket, buf: &mut [u8], flags: c_int, from: AddrOut) -> Result<usize> {
    let p = buf.as_mut_ptr();
    // SAFETY: buf is valid for writes of at least `n` bytes; `from` is
    // valid per AddrOut::new.
    ready_recv(sock, buf.len(), flags, |f, n| unsafe {
        ws::recvfrom(sock, p, n, f, from.addr, from.len)
    })
}

/// One non-blocking `sendto` attempt.
pub fn sendto(sock: RawSocket, buf: &[u8], flags: c_int, to: AddrIn) -> Result<usize> {
    nonblocking_attempt(sock, || {
        // SAFETY: buf is valid for reads; `to` is valid per AddrIn::new.
        check(unsafe { ws::sendto(sock, buf.as_ptr(), clamp(buf.len()), flags, to.addr, to.len) })
    })
}

/// Sets or clears non-blocking mode.
pub fn set_nonblocking(sock: RawSocket, on: bool) -> Result<()> {
    ioctl(sock, ws::FIONBIO, on as u32).map(|_| ())
}

/// One `accept` that never blocks, whatever the listener's mode (it checks
/// readiness first). The new socket is returned in blocking mode, without
/// the event selection it inherits from the listener.
pub fn try_accept(sock: RawSocket, from: AddrOut) -> Result<RawSocket> {
    let _serial = serialize(sock);
    if !ready_now(sock, POLLIN)? {
        // A socket that does not listen never becomes ready: fail as
        // accept would.
        if sockopt_int(sock, ws::SO_ACCEPTCONN)? == 0 {
            return Err(Error(EINVAL));
        }
        return Err(Error(EWOULDBLOCK));
    }
    // SAFETY: `from` is valid per AddrOut::new.
    let s = unsafe { ws::accept(sock, from.addr, from.len) };
    if s == INVALID_SOCKET {
        return Err(last());
    }
    let s = Socket(s);
    // SAFETY: plain call on the socket just accepted.
    check(unsafe { ws::WSAEventSelect(s.raw(), 0, 0) })?;
    set_nonblocking(s.raw(), false)?;
    Ok(s.into_raw())
}

/// One connect attempt that never blocks; the socket is left in blocking
/// mode (a connect under way goes on).
pub fn try_connect(sock: RawSocket, to: AddrIn) -> Result<()> {
    nonblocking_attempt(sock, || connect(sock, to))
}

/// One `connect` on a socket the caller has made non-blocking; a connect
/// under way is EINPROGRESS (Winsock says WSAEWOULDBLOCK).
pub fn connect(sock: RawSocket, to: AddrIn) -> Result<()> {
    // SAFETY: `to` is valid per AddrIn::new.
    match check(unsafe { ws::connect(sock, to.addr, to.len) }) {
        Ok(_) => Ok(()),
        Err(e) if e.0 == ws::WSAEWOULDBLOCK => Err(Error(EINPROGRESS)),
        Err(e) => Err(e),
    }
}

/// An integer `SOL_SOCKET` option.
pub(super) fn sockopt_int(sock: RawSocket, opt: i32) -> Result<i32> {
    let mut v: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as i32;
    // SAFETY: v and len are valid locals of the sizes given.
    check(unsafe {
        ws::getsockopt(
            sock,
            ws::SOL_SOCKET,
            opt,
            (&mut v as *mut i32).cast(),
            &mut len,
        )
    })?;
    Ok(v)
}

impl Socket {
    /// A new socket in non-blocking mode, not inherited by child processes.
    pub fn new_nonblocking(family: c_int, socktype: c_int, protocol: c_int) -> Result<Socket> {
        startup()?;
        // SAFETY: plain call; NULL protocol info.
        let s = unsafe {
            ws::WSASocketW(
                family,
                socktype,
                protocol,
                ptr::null(),
                0,
                ws::WSA_FLAG_OVERLAPPED | ws::WSA_FLAG_NO_HANDLE_INHERIT,
            )
        };
        if s == INVALID_SOCKET {
            return Err(last());
        }
        let s = Socket(s);
        set_nonblocking(s.0, true)?;
        Ok(s)
    }
}

/// Closes a socket the library owns.
pub(super) fn close_socket(sock: RawSocket) {
    // SAFETY: the caller owns the socket and closes it once.
    unsafe { ws::closesocket(sock) };
}

/// One `getpeername` into the buffer `to`.
pub(super) fn getpeername(sock: RawSocket, to: AddrOut) -> Result<()> {
    // SAFETY: `to` is valid per AddrOut::new.
    check(unsafe { ws::getpeername(sock, to.addr, to.len) }).map(|_| ())
}

/// No fork on Windows: nothing to register.
pub fn at_fork(
    _prepare: Option<unsafe extern "C" fn()>,
    _parent: Option<unsafe extern "C" fn()>,
    _child: Option<unsafe extern "C" fn()>,
) -> Result<()> {
    Ok(())
}

struct ThreadStart {
    start: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
}

unsafe extern "system" fn thread_main(p: *mut c_void) -> u32 {
    // SAFETY: `p` is the ThreadStart box that spawn_thread handed over.
    let s = unsafe { Box::from_raw(p.cast::<ThreadStart>()) };
    (s.start)(s.arg);
    0
}

/// Starts a detached system thread running `start(arg)`. (Windows delivers
/// no asynchronous signals to threads, so there is no mask to set.)
pub fn spawn_thread(
    start: extern "C" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> Result<()> {
    let s = crate::sync::try_box(ThreadStart { start, arg }).map_err(|_| Error(ENOMEM))?;
    let p = Box::into_raw(s);
    // SAFETY: `thread_main` takes ownership of `p`; no other pointer is
    // passed.
    let h = unsafe {
        CreateThread(
            ptr::null(),
            0,
            Some(thread_main),
            p.cast(),
            0,
            ptr::null_mut(),
        )
    };
    if h.is_null() {
        // SAFETY: the thread did not start, so `p` is still ours.
        drop(unsafe { Box::from_raw(p) });
        return Err(Error(ENOMEM));
    }
    // SAFETY: the handle is ours; closing it does not stop the thread.
    unsafe { CloseHandle(h) };
    Ok(())
}

/// Nothing to defer: Windows has no pthread_cancel.
pub struct DeferCancel;

/// What a blocking call holds against `pthread_cancel`: nothing here.
pub type CallDefer = DeferCancel;

impl DeferCancel {
    pub fn new() -> DeferCancel {
        DeferCancel
    }
}

struct KeyValue {
    dtor: unsafe extern "C" fn(*mut c_void),
    value: *mut c_void,
    thread: u32,
}

unsafe extern "system" fn run_key_dtor(p: *const c_void) {
    // SAFETY: FLS holds only KeyValue boxes made by ThreadKey::set.
    let kv = unsafe { Box::from_raw(p.cast_mut().cast::<KeyValue>()) };
    // A fiber deleted on another thread: the value is still the setting
    // thread's (in its thread-locals), so it is left alone (leaked).
    // SAFETY: plain call.
    if unsafe { GetCurrentThreadId() } != kv.thread {
        return;
    }
    // SAFETY: the destructor is the one the key was made with, run on the
    // thread that set the value.
    unsafe { (kv.dtor)(kv.value) };
}

/// A per-thread slot whose destructor runs at thread exit, on that thread
/// (fiber-local storage, whose callback Windows runs when the thread ends,
/// before the thread's thread-local destructors).
pub struct ThreadKey {
    index: u32,
    dtor: unsafe extern "C" fn(*mut c_void),
}

impl ThreadKey {
    pub fn new(dtor: unsafe extern "C" fn(*mut c_void)) -> Result<ThreadKey> {
        // SAFETY: registers a callback that lives for the program.
        let index = unsafe { FlsAlloc(Some(run_key_dtor)) };
        if index == FLS_OUT_OF_INDEXES {
            return Err(Error(ENOMEM));
        }
        Ok(ThreadKey { index, dtor })
    }

    /// Sets the calling thread's value; its destructor gets it at exit.
    pub fn set(&self, value: *mut c_void) -> Result<()> {
        let kv = crate::sync::try_box(KeyValue {
            dtor: self.dtor,
            value,
            // SAFETY: plain call.
            thread: unsafe { GetCurrentThreadId() },
        })
        .map_err(|_| Error(ENOMEM))?;
        let kv = Box::into_raw(kv);
        // SAFETY: the index is ours; the previous value, if any, is a box
        // of ours, replaced without running its destructor (as
        // pthread_setspecific does).
        unsafe {
            let old = FlsGetValue(self.index);
            if FlsSetValue(self.index, kv.cast()) == 0 {
                drop(Box::from_raw(kv));
                return Err(Error(ENOMEM));
            }
            if !old.is_null() {
                drop(Box::from_raw(old.cast::<KeyValue>()));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- resolution

/// What rsock_getaddrinfo returns with an error in WSAGetLastError()
/// (SOCKET_ERROR: Windows has no EAI_SYSTEM).
pub const EAI_SYSTEM: c_int = ws::SOCKET_ERROR;
pub const AI_NUMERICHOST: c_int = ws::AI_NUMERICHOST as c_int;
pub const AI_NUMERICSERV: c_int = ws::AI_NUMERICSERV as c_int;
pub const AI_CANONNAME: c_int = ws::AI_CANONNAME as c_int;

/// The error that best describes a failed lookup (for calls that report
/// errors in WSAGetLastError): no such name is WSAEHOSTUNREACH, a
/// temporary failure WSATRY_AGAIN, bad arguments WSAEINVAL.
pub fn lookup_errno(rc: c_int, errno: i32) -> i32 {
    use codes::*;
    match rc {
        EAI_SYSTEM => errno,
        WSATRY_AGAIN => WSATRY_AGAIN,
        WSA_NOT_ENOUGH_MEMORY => ENOMEM,
        EINVAL | EAFNOSUPPORT | WSAESOCKTNOSUPPORT | WSATYPE_NOT_FOUND => EINVAL,
        _ => EHOSTUNREACH, // WSAHOST_NOT_FOUND, WSANO_DATA, WSANO_RECOVERY, ...
    }
}

/// The system's getaddrinfo on raw hints. On failure: its error code (a
/// WSA* code), and 0; a failed WSAStartup is EAI_SYSTEM with its error.
pub(super) fn sys_getaddrinfo(
    node: Option<&std::ffi::CStr>,
    service: Option<&std::ffi::CStr>,
    hints: *const addrinfo,
) -> std::result::Result<*mut addrinfo, (c_int, i32)> {
    if let Err(e) = startup() {
        return Err((EAI_SYSTEM, e.0));
    }
    let mut res: *mut addrinfo = ptr::null_mut();
    // SAFETY: the strings are NUL-terminated or NULL, `hints` is NULL or
    // valid (the caller's), `res` a valid local.
    let rc = unsafe {
        ws::getaddrinfo(
            node.map_or(ptr::null(), |s| s.as_ptr().cast()),
            service.map_or(ptr::null(), |s| s.as_ptr().cast()),
            hints,
            &mut res,
        )
    };
    if rc != 0 {
        return Err((rc, 0));
    }
    Ok(res)
}

/// # Safety
/// `ai` came from getaddrinfo and is freed once.
pub(super) unsafe fn sys_freeaddrinfo(ai: *mut addrinfo) {
    // SAFETY: per the function's contract.
    unsafe { ws::freeaddrinfo(ai) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{getaddrinfo, Hints};
    use crate::wake::Token;
    use std::cell::Cell;
    use std::time::Instant;

    thread_local! {
        static OLD_WSAPOLL: Cell<bool> = const { Cell::new(false) };
    }

    /// With OLD_WSAPOLL set, `poll` hides failed connects as WSAPoll did
    /// before Windows 10 2004: no event at all.
    pub(super) fn like_old_wsapoll(fds: &mut [PollFd], mut n: usize) -> usize {
        if OLD_WSAPOLL.with(Cell::get) {
            for f in fds.iter_mut() {
                if f.events & POLLOUT != 0 && f.revents & (POLLERR | POLLHUP) != 0 {
                    f.revents = 0;
                    n -= 1;
                }
            }
        }
        n
    }

    /// A refused connect fails promptly even where WSAPoll never reports
    /// it: the waits re-read SO_ERROR every CONNECT_RECHECK_MS.
    #[test]
    fn failed_connects_are_seen_without_wsapoll_reporting_them() {
        // A port nothing listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let host = std::ffi::CString::new("127.0.0.1").expect("host");
        let service = std::ffi::CString::new(port.to_string()).expect("service");
        let hints = Hints {
            flags: AI_NUMERICHOST | AI_NUMERICSERV,
            family: AF_INET,
            socktype: SOCK_STREAM,
            protocol: 0,
        };
        let list = getaddrinfo(Some(&host), Some(&service), Some(&hints)).expect("address");
        let to = list.entries().expect("memory")[0].addr;
        let token = Token::new();
        OLD_WSAPOLL.with(|o| o.set(true));
        let sock = Socket::new_nonblocking(AF_INET, SOCK_STREAM, 0).expect("socket");
        let start = Instant::now();
        let r = crate::ops::connect(&token, sock.raw(), to, 5000);
        assert_eq!(r, Err(Error(ws::WSAECONNREFUSED)));
        let r = crate::ops::connect_host(&token, &host, &service, SOCK_STREAM, 5000);
        assert_eq!(r.err(), Some(Error(ws::WSAECONNREFUSED)));
        OLD_WSAPOLL.with(|o| o.set(false));
        // (Without the re-reads both would end with WSAETIMEDOUT.)
        println!("two refused connects took {:?}", start.elapsed());
    }
}
