//! What the Rust integration tests need from the platform: a connected
//! stream pair, raw sockets, error codes and a count of open handles.

#![allow(dead_code)] // each test binary uses part of it

use rsock::ffi::{rsock_last_error, rsock_pollfd, rsock_socket};

mod pair;
#[allow(unused_imports)] // each test binary uses part of it
pub use pair::{pair, Raw, Stream};

/// The calling thread's last error, as rsock reports it.
pub fn errno() -> i32 {
    rsock_last_error()
}

/// A poll entry for readability.
pub fn readable(sock: rsock_socket) -> rsock_pollfd {
    rsock_pollfd {
        fd: sock,
        events: POLLIN,
        revents: 0,
    }
}

#[cfg(unix)]
mod codes {
    pub const ECANCELED: i32 = libc::ECANCELED;
    pub const ETIMEDOUT: i32 = libc::ETIMEDOUT;
    pub const ENOMEM: i32 = libc::ENOMEM;
    pub const POLLIN: i16 = libc::POLLIN;
    pub const EAI_MEMORY: i32 = libc::EAI_MEMORY;
    pub const EAI_SYSTEM: i32 = libc::EAI_SYSTEM;
    pub const SOCK_STREAM: i32 = libc::SOCK_STREAM;
    pub const INVALID_SOCKET: rsock::ffi::rsock_socket = -1;
}

#[cfg(windows)]
mod codes {
    use windows_sys::Win32::Networking::WinSock as ws;
    pub const ECANCELED: i32 = ws::WSAEINTR;
    pub const ETIMEDOUT: i32 = ws::WSAETIMEDOUT;
    pub const ENOMEM: i32 = ws::WSAENOBUFS;
    pub const POLLIN: i16 = ws::POLLRDNORM;
    pub const EAI_MEMORY: i32 = ws::WSA_NOT_ENOUGH_MEMORY;
    pub const EAI_SYSTEM: i32 = ws::SOCKET_ERROR;
    pub const SOCK_STREAM: i32 = ws::SOCK_STREAM;
    pub const INVALID_SOCKET: rsock::ffi::rsock_socket = ws::INVALID_SOCKET;
}

pub use codes::*;

/// Frees a list from rsock_getaddrinfo.
///
/// # Safety
/// `res` is such a list, not yet freed.
pub unsafe fn freeaddrinfo<T>(res: *mut T) {
    #[cfg(unix)]
    // SAFETY: per the function's contract.
    unsafe {
        libc::freeaddrinfo(res.cast())
    };
    #[cfg(windows)]
    // SAFETY: per the function's contract.
    unsafe {
        windows_sys::Win32::Networking::WinSock::freeaddrinfo(res.cast())
    };
}

/// Closes a socket the test owns.
pub fn close(sock: rsock_socket) {
    #[cfg(unix)]
    // SAFETY: the caller owns the descriptor.
    unsafe {
        libc::close(sock)
    };
    #[cfg(windows)]
    // SAFETY: the caller owns the socket.
    unsafe {
        windows_sys::Win32::Networking::WinSock::closesocket(sock)
    };
}

/// Open descriptors (POSIX) or handles (Windows) of this process.
#[cfg(unix)]
pub fn open_handles() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .or_else(|_| std::fs::read_dir("/dev/fd"))
        .map_or(0, |d| d.count())
}

#[cfg(windows)]
pub fn open_handles() -> usize {
    use windows_sys::Win32::System::Threading::{
        GetCurrentProcess, GetCurrentProcessId, GetProcessHandleCount,
    };
    let mut n = 0u32;
    // SAFETY: queries this process's own handle count into a local.
    if unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut n) } != 0 && n > 0 {
        return n as usize;
    }
    // Wine's GetProcessHandleCount says 0: count this process's entries in
    // the system handle table (SystemExtendedHandleInformation) instead.
    #[repr(C)]
    struct Entry {
        object: *mut std::ffi::c_void,
        pid: usize,
        handle: usize,
        access: u32,
        backtrace: u16,
        object_type: u16,
        attributes: u32,
        reserved: u32,
    }
    #[link(name = "ntdll")]
    extern "system" {
        fn NtQuerySystemInformation(class: u32, buf: *mut u8, len: u32, out: *mut u32) -> i32;
    }
    let header = 2 * std::mem::size_of::<usize>();
    let mut buf = vec![0usize; 1 << 14];
    loop {
        let len = buf.len() * std::mem::size_of::<usize>();
        // SAFETY: `buf` is writable for `len` bytes.
        let st = unsafe {
            NtQuerySystemInformation(
                64,
                buf.as_mut_ptr().cast(),
                len as u32,
                std::ptr::null_mut(),
            )
        };
        if st == 0xC000_0004_u32 as i32 {
            buf.resize(buf.len() * 2, 0); // STATUS_INFO_LENGTH_MISMATCH
            continue;
        }
        assert_eq!(st, 0, "NtQuerySystemInformation");
        let count = buf[0].min((len - header) / std::mem::size_of::<Entry>());
        // SAFETY: the call filled `count` entries after the two-word header.
        let entries = unsafe {
            std::slice::from_raw_parts(buf.as_ptr().cast::<u8>().add(header).cast::<Entry>(), count)
        };
        // SAFETY: plain call.
        let me = unsafe { GetCurrentProcessId() } as usize;
        return entries.iter().filter(|e| e.pid == me).count();
    }
}
