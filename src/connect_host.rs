//! Connecting by name: resolve the host, then race connection attempts with
//! Happy Eyeballs (RFC 8305), all under one deadline and one token.

use crate::resolve::{resolve, ResolveError};
use crate::shim::Call;
use crate::sys::{self, AddrInfo, AddrList, Error, Hints, PollFd, RawSocket, Result, Socket};
use crate::token::Token;
use crate::wait::{wait, Deadline};
use libc::c_int;
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// RFC 8305's Connection Attempt Delay: while attempts are pending, the next
/// address is tried this long after the last one started.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Resolves `host`/`service` and connects to one of its addresses; returns
/// the connected socket in blocking mode, close-on-exec.
pub fn connect_host(
    token: &Token,
    host: &CStr,
    service: &CStr,
    socktype: c_int,
    timeout_ms: i32,
) -> Result<RawSocket> {
    if socktype != sys::SOCK_STREAM && socktype != sys::SOCK_DGRAM {
        return Err(Error(sys::EINVAL));
    }
    let mut dl = Deadline::check(timeout_ms)?;
    let call = Call::enter(token)?;
    let list = lookup(&call, host, service, socktype, &mut dl)?;
    let sock = race(&call, &interleave(list.entries()), &mut dl)?;
    Ok(sock.into_raw())
}

/// A numeric address is parsed on this thread; a name goes to the resolver
/// pool. No AI_ADDRCONFIG: an unusable family fails fast and the race moves
/// on, while AI_ADDRCONFIG would hide ::1 on hosts without global IPv6.
fn lookup(
    call: &Call,
    host: &CStr,
    service: &CStr,
    socktype: c_int,
    dl: &mut Deadline,
) -> Result<AddrList> {
    let mut hints = Hints {
        flags: sys::AI_NUMERICHOST | sys::AI_NUMERICSERV,
        family: sys::AF_UNSPEC,
        socktype,
        protocol: 0,
    };
    let mut query = |hints| {
        resolve(
            call,
            Some(host.into()),
            Some(service.into()),
            Some(hints),
            dl,
        )
    };
    let found = match query(hints) {
        Err(ResolveError::Lookup(..)) => {
            hints.flags = 0;
            query(hints)
        }
        r => r,
    };
    found.map_err(|e| match e {
        ResolveError::Lookup(rc, errno) => Error(sys::lookup_errno(rc, errno)),
        ResolveError::Sys(e) => e,
    })
}

/// The resolver's order within each family, the families alternating and
/// IPv6 first (RFC 8305 section 4).
fn interleave(entries: Vec<AddrInfo>) -> Vec<AddrInfo> {
    let (v6, other): (Vec<_>, Vec<_>) =
        entries.into_iter().partition(|a| a.family == sys::AF_INET6);
    let (mut v6, mut other) = (v6.into_iter(), other.into_iter());
    let mut out = Vec::new();
    loop {
        match (v6.next(), other.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

enum Started {
    Connected(Socket),
    Pending(Socket),
}

/// Starts a non-blocking connect to `a`.
fn start(a: &AddrInfo) -> Result<Started> {
    let sock = Socket::new_nonblocking(a.family, a.socktype, a.protocol)?;
    match sys::connect(sock.raw(), a.addr) {
        Ok(()) => Ok(Started::Connected(sock)),
        // An interrupted connect goes on asynchronously.
        Err(e) if e.0 == sys::EINPROGRESS || e.0 == sys::EINTR => Ok(Started::Pending(sock)),
        Err(e) => Err(e),
    }
}

/// Runs the attempts: the first at once, the next one when an attempt fails
/// or ATTEMPT_DELAY after the last start, whichever comes first. The first
/// to connect wins and the others are closed; if all fail, the last
/// failure's error.
fn race(call: &Call, addrs: &[AddrInfo], dl: &mut Deadline) -> Result<Socket> {
    let mut next = addrs.iter().peekable();
    let mut pending: Vec<Socket> = Vec::new();
    let mut fds: Vec<PollFd> = Vec::new();
    let mut last_err = Error(sys::EHOSTUNREACH);
    let mut due = Instant::now();
    loop {
        while pending.is_empty() || Instant::now() >= due {
            let Some(a) = next.next() else { break };
            match start(a) {
                Ok(Started::Connected(sock)) => return won(sock),
                Ok(Started::Pending(sock)) => {
                    pending.push(sock);
                    due = Instant::now() + ATTEMPT_DELAY;
                }
                Err(e) => last_err = e,
            }
        }
        if pending.is_empty() {
            return Err(last_err);
        }
        fds.clear();
        fds.extend(pending.iter().map(|s| PollFd {
            fd: s.raw(),
            events: sys::POLLOUT,
            revents: 0,
        }));
        fds.push(PollFd {
            fd: -1,
            events: 0,
            revents: 0,
        });
        let waited = if next.peek().is_some() {
            let left = due.saturating_duration_since(Instant::now());
            let ms = left.as_nanos().div_ceil(1_000_000) as u64;
            match wait(call, &mut fds, &mut dl.slice(ms)?) {
                // The stagger ended, not the caller's deadline.
                Err(e) if e.0 == sys::ETIMEDOUT && !dl.expired() => continue,
                r => r,
            }
        } else {
            wait(call, &mut fds, dl)
        };
        waited?; // on cancel or timeout, dropping `pending` closes them
        for i in (0..pending.len()).rev() {
            if fds[i].revents == 0 {
                continue;
            }
            let sock = pending.swap_remove(i);
            match sys::take_socket_error(sock.raw()) {
                Ok(0) => return won(sock),
                Ok(err) => last_err = Error(err),
                Err(e) => last_err = e,
            }
            due = Instant::now(); // a failure starts the next attempt at once
        }
    }
}

fn won(sock: Socket) -> Result<Socket> {
    sys::set_nonblocking(sock.raw(), false)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_alternate_starting_with_ipv6() {
        let (v4, v6) = (libc::AF_INET, sys::AF_INET6);
        // (family, position in the resolver's answer)
        let order = |fams: &[c_int]| -> Vec<(c_int, c_int)> {
            let entries = fams.iter().enumerate().map(|(i, &family)| AddrInfo {
                family,
                socktype: sys::SOCK_STREAM,
                protocol: i as c_int,
                addr: sys::AddrIn::NONE,
            });
            interleave(entries.collect())
                .iter()
                .map(|a| (a.family, a.protocol))
                .collect()
        };
        assert_eq!(
            order(&[v4, v4, v4, v6]),
            [(v6, 3), (v4, 0), (v4, 1), (v4, 2)]
        );
        assert_eq!(
            order(&[v4, v6, v4, v6]),
            [(v6, 1), (v4, 0), (v6, 3), (v4, 2)]
        );
        assert_eq!(order(&[v6, v6, v4]), [(v6, 0), (v4, 2), (v6, 1)]);
        assert_eq!(order(&[v4]), [(v4, 0)]);
        assert!(order(&[]).is_empty());
    }
}
