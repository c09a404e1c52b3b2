//! Addresses and getaddrinfo lists, the same on every platform: each one
//! supplies the C types (`sockaddr`, `socklen_t`, `addrinfo`,
//! `sockaddr_in`, `sockaddr_in6`), `AF_INET`/`AF_INET6`, and
//! `sys_getaddrinfo`/`sys_freeaddrinfo`.

use super::{
    addrinfo, sockaddr, sockaddr_in, sockaddr_in6, socklen_t, sys_freeaddrinfo, sys_getaddrinfo,
    Result, AF_INET, AF_INET6,
};
use libc::c_int;
use std::ptr;

/// An address buffer handed in by the caller (`struct sockaddr *` + length),
/// either both NULL or both valid.
#[derive(Clone, Copy)]
pub struct AddrOut {
    pub(super) addr: *mut sockaddr,
    pub(super) len: *mut socklen_t,
}

impl AddrOut {
    pub const NONE: AddrOut = AddrOut {
        addr: ptr::null_mut(),
        len: ptr::null_mut(),
    };

    /// # Safety
    /// `addr` must be valid for writes of `*len` bytes and `len` valid for
    /// reads and writes, or `addr` NULL.
    pub unsafe fn new(addr: *mut sockaddr, len: *mut socklen_t) -> AddrOut {
        AddrOut { addr, len }
    }
}

/// An address handed in by the caller (`const struct sockaddr *` + length).
#[derive(Clone, Copy)]
pub struct AddrIn {
    pub(super) addr: *const sockaddr,
    pub(super) len: socklen_t,
}

impl AddrIn {
    pub const NONE: AddrIn = AddrIn {
        addr: ptr::null(),
        len: 0,
    };

    /// # Safety
    /// `addr` must be valid for reads of `len` bytes, or NULL.
    pub unsafe fn new(addr: *const sockaddr, len: socklen_t) -> AddrIn {
        AddrIn { addr, len }
    }

    /// The port of an IPv4 or IPv6 address; None for other families.
    pub fn port(&self) -> Option<u16> {
        if self.addr.is_null() {
            return None;
        }
        let len = self.len as usize;
        // SAFETY: `addr` is valid for `len` bytes (AddrIn::new), and the
        // family says which structure it holds.
        unsafe {
            match c_int::from((*self.addr).sa_family) {
                AF_INET if len >= std::mem::size_of::<sockaddr_in>() => {
                    Some(u16::from_be((*self.addr.cast::<sockaddr_in>()).sin_port))
                }
                AF_INET6 if len >= std::mem::size_of::<sockaddr_in6>() => {
                    Some(u16::from_be((*self.addr.cast::<sockaddr_in6>()).sin6_port))
                }
                _ => None,
            }
        }
    }
}

/// The fields of `struct addrinfo` a caller may set in getaddrinfo's hints.
#[derive(Clone, Copy)]
pub struct Hints {
    pub flags: c_int,
    pub family: c_int,
    pub socktype: c_int,
    pub protocol: c_int,
}

impl Hints {
    /// # Safety
    /// `ai` must be NULL or point to a readable `struct addrinfo`.
    pub unsafe fn from_raw(ai: *const addrinfo) -> Option<Hints> {
        // SAFETY: per the function's contract.
        let ai = unsafe { ai.as_ref()? };
        Some(Hints {
            flags: ai.ai_flags,
            family: ai.ai_family,
            socktype: ai.ai_socktype,
            protocol: ai.ai_protocol,
        })
    }
}

/// A getaddrinfo result list, owned: freed with freeaddrinfo on drop.
pub struct AddrList(*mut addrinfo);

// SAFETY: the list is heap memory that this value owns alone.
unsafe impl Send for AddrList {}

/// One entry of a getaddrinfo result.
#[derive(Clone, Copy)]
pub struct AddrInfo {
    pub family: c_int,
    pub socktype: c_int,
    pub protocol: c_int,
    pub addr: AddrIn,
}

impl AddrList {
    /// The entries, in the resolver's order. The addresses point into the
    /// list: use them only while it lives.
    pub fn entries(&self) -> Result<Vec<AddrInfo>> {
        let mut n = 0;
        let mut p = self.0;
        // SAFETY: as below.
        while let Some(ai) = unsafe { p.as_ref() } {
            n += 1;
            p = ai.ai_next;
        }
        let mut out = super::try_vec(n)?;
        let mut p = self.0;
        // SAFETY: a getaddrinfo list: each node valid until freed, ended by
        // a NULL ai_next; ai_addr holds ai_addrlen bytes.
        while let Some(ai) = unsafe { p.as_ref() } {
            #[allow(clippy::unnecessary_cast)] // a size_t on Windows
            let len = ai.ai_addrlen as socklen_t;
            out.push(AddrInfo {
                family: ai.ai_family,
                socktype: ai.ai_socktype,
                protocol: ai.ai_protocol,
                // SAFETY: see above.
                addr: unsafe { AddrIn::new(ai.ai_addr, len) },
            });
            p = ai.ai_next;
        }
        Ok(out)
    }

    /// Hands the list to the caller, who frees it with freeaddrinfo.
    pub fn into_raw(self) -> *mut addrinfo {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

impl Drop for AddrList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the list came from getaddrinfo and is freed once.
            unsafe { sys_freeaddrinfo(self.0) };
        }
    }
}

/// The system's getaddrinfo, blocking. On failure: its error code, and the
/// error that goes with EAI_SYSTEM (0 otherwise).
pub fn getaddrinfo(
    node: Option<&std::ffi::CStr>,
    service: Option<&std::ffi::CStr>,
    hints: Option<&Hints>,
) -> std::result::Result<AddrList, (c_int, i32)> {
    // SAFETY: addrinfo is plain data; zero is its "unset" value.
    let mut h: addrinfo = unsafe { std::mem::zeroed() };
    if let Some(hints) = hints {
        h.ai_flags = hints.flags;
        h.ai_family = hints.family;
        h.ai_socktype = hints.socktype;
        h.ai_protocol = hints.protocol;
    }
    let h = if hints.is_some() { &h } else { ptr::null() };
    sys_getaddrinfo(node, service, h).map(AddrList)
}
