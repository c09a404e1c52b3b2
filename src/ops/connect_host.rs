//! Connecting by name: resolve the host, then race connection attempts with
//! Happy Eyeballs (RFC 8305), all under one deadline and one token.

use super::resolve::{resolve, ResolveError};
use crate::sys::{self, AddrInfo, AddrList, Error, Hints, PollFd, RawSocket, Result, Socket};
use crate::wake::{wait, Call, Deadline, Token};
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
    // The system's resolver may reach cancellation points (see
    // sys::CallDefer); dropped last, after the call.
    let _defer = sys::DeferCancel::new();
    let (call, mut dl) = Call::start(token, timeout_ms)?;
    let list = lookup(&call, host, service, socktype, &mut dl)?;
    let entries = list.entries()?;
    if entries.iter().any(|a| a.addr.port() == Some(0)) {
        return Err(Error(sys::EINVAL)); // port 0 names no peer
    }
    // A datagram "connect" only records the peer and succeeds at once, so
    // there is nothing to race: the resolver's preferred address is used.
    let order = match socktype {
        sys::SOCK_STREAM => interleave(&entries)?,
        _ => entries,
    };
    let sock = race(&call, &order, &mut dl)?;
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
    let mut query = |hints| resolve(call, Some(host), Some(service), Some(hints), dl);
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
/// IPv6 first. (RFC 8305 section 4 starts with the family of the resolver's
/// first answer; the contract fixes IPv6 first.)
fn interleave(entries: &[AddrInfo]) -> Result<Vec<AddrInfo>> {
    let is_v6 = |a: &&AddrInfo| a.family == sys::AF_INET6;
    let mut v6 = entries.iter().filter(is_v6);
    let mut other = entries.iter().filter(|a| !is_v6(a));
    let mut out = sys::try_vec(entries.len())?;
    loop {
        match (v6.next(), other.next()) {
            (None, None) => return Ok(out),
            (a, b) => out.extend(a.into_iter().chain(b).copied()),
        }
    }
}

enum Started {
    Connected(Socket),
    Pending(Socket),
}

enum NotStarted {
    /// No socket of that family could be made (e.g. EAFNOSUPPORT): not an
    /// attempt, so it does not hide a real attempt's error.
    NoSocket(Error),
    /// connect() failed at once.
    Failed(Error),
}

/// Starts a non-blocking connect to `a`.
fn start(a: &AddrInfo) -> std::result::Result<Started, NotStarted> {
    let sock =
        Socket::new_nonblocking(a.family, a.socktype, a.protocol).map_err(NotStarted::NoSocket)?;
    match sys::connect(sock.raw(), a.addr) {
        Ok(()) => Ok(Started::Connected(sock)),
        // An interrupted connect goes on asynchronously.
        Err(e) if e.0 == sys::EINPROGRESS || e.0 == sys::EINTR => Ok(Started::Pending(sock)),
        Err(e) => Err(NotStarted::Failed(e)),
    }
}

/// The outcome of a pending attempt that poll reported.
fn finished(sock: &Socket) -> Result<()> {
    match sys::take_socket_error(sock.raw())? {
        // Some systems report a failed connect as writable with no pending
        // error once it has been read: make sure there is a peer.
        0 => sys::peer_check(sock.raw()),
        err => Err(Error(err)),
    }
}

/// Runs the attempts: the first at once, another for each one that fails,
/// and another ATTEMPT_DELAY after the last start while attempts are
/// pending. Among attempts that connect in the same round the earliest
/// started wins; the others are closed. If all fail: the last failed
/// attempt's error.
fn race(call: &Call, addrs: &[AddrInfo], dl: &mut Deadline) -> Result<Socket> {
    let mut next = addrs.iter().peekable();
    // Sized up front: nothing below allocates.
    let mut pending: Vec<Socket> = sys::try_vec(addrs.len())?;
    let mut fds: Vec<PollFd> = sys::try_vec(addrs.len() + 1)?;
    let (mut last_err, mut no_socket) = (None, None);
    let mut due = Instant::now();
    let mut start_now = 0usize; // failures not yet replaced
    loop {
        while pending.is_empty() || start_now > 0 || Instant::now() >= due {
            let Some(a) = next.next() else { break };
            start_now = start_now.saturating_sub(1);
            match start(a) {
                Ok(Started::Connected(sock)) => return won(sock),
                Ok(Started::Pending(sock)) => {
                    pending.push(sock);
                    due = Instant::now() + ATTEMPT_DELAY;
                }
                Err(NotStarted::Failed(e)) => {
                    last_err = Some(e);
                    start_now += 1;
                }
                Err(NotStarted::NoSocket(e)) => {
                    no_socket = Some(e);
                    start_now += 1;
                }
            }
        }
        start_now = 0;
        if pending.is_empty() {
            return Err(last_err.or(no_socket).unwrap_or(Error(sys::EHOSTUNREACH)));
        }
        fds.clear();
        fds.extend(
            pending
                .iter()
                .map(|s| sys::poll_entry(s.raw(), sys::POLLOUT)),
        );
        fds.push(sys::poll_entry(sys::INVALID_SOCKET, 0));
        // Wait in slices: to the next staggered start, and where poll may
        // miss a failed connect (Windows), to the next SO_ERROR check.
        let staggered = next.peek().is_some();
        let waited = if (staggered || sys::CONNECT_RECHECK_MS.is_some()) && !dl.expired() {
            let mut ms = sys::CONNECT_RECHECK_MS.unwrap_or(u64::MAX);
            if staggered {
                let left = due.saturating_duration_since(Instant::now());
                ms = ms.min(left.as_nanos().div_ceil(1_000_000) as u64);
            }
            wait(call, &mut fds, &mut dl.slice(ms)?)
        } else {
            // No more addresses, or the deadline passed: a last look (a
            // zero timeout polls once) before giving up.
            wait(call, &mut fds, dl)
        };
        let slice_ended = match waited {
            Err(e) if e.0 == sys::ETIMEDOUT && !dl.expired() => true,
            // On cancel or timeout, dropping `pending` closes them.
            r => r.map(|_| false)?,
        };
        let recheck = slice_ended && sys::CONNECT_RECHECK_MS.is_some();
        let mut i = 0;
        for fd in &fds[..pending.len()] {
            let outcome = if fd.revents != 0 {
                finished(&pending[i])
            } else if recheck {
                match sys::take_socket_error(pending[i].raw()) {
                    Ok(0) => {
                        i += 1;
                        continue;
                    }
                    Ok(err) => Err(Error(err)),
                    Err(e) => Err(e),
                }
            } else {
                i += 1;
                continue;
            };
            let sock = pending.remove(i);
            match outcome {
                Ok(()) => return won(sock),
                Err(e) => last_err = Some(e),
            }
            start_now += 1;
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
    use std::net::TcpListener;

    /// The numeric TCP address `host`:`port`, kept alive by the list.
    fn entry_for(host: &str, port: u16) -> (AddrList, AddrInfo) {
        let host = std::ffi::CString::new(host).expect("host");
        let port = std::ffi::CString::new(port.to_string()).expect("port");
        let hints = Hints {
            flags: sys::AI_NUMERICHOST | sys::AI_NUMERICSERV,
            family: sys::AF_UNSPEC,
            socktype: sys::SOCK_STREAM,
            protocol: 0,
        };
        let list = sys::getaddrinfo(Some(&host), Some(&port), Some(&hints))
            .unwrap_or_else(|e| panic!("getaddrinfo: {e:?}"));
        let entry = list.entries().expect("memory")[0];
        (list, entry)
    }

    /// Once the deadline has passed, an attempt that has connected still
    /// wins (the race looks once more before giving up), even with
    /// addresses left to try.
    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn a_passed_deadline_still_takes_a_ready_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
        let port = listener.local_addr().expect("address").port();
        let (_a, first) = entry_for("127.0.0.1", port);
        let (_b, second) = entry_for("127.0.0.1", 1);
        let token = Token::new();
        let call = Call::enter(&token).expect("enter");
        let mut dl = Deadline::new(0);
        let sock = race(&call, &[first, second], &mut dl).expect("connected");
        assert!(sys::peer_check(sock.raw()).is_ok());
        #[cfg(unix)] // Windows cannot report the mode
        assert_eq!(sys::is_nonblocking(sock.raw()), Ok(false));
    }

    #[test]
    fn families_alternate_starting_with_ipv6() {
        let (v4, v6) = (sys::AF_INET, sys::AF_INET6);
        // (family, position in the resolver's answer)
        let order = |fams: &[c_int]| -> Vec<(c_int, c_int)> {
            let entries = fams.iter().enumerate().map(|(i, &family)| AddrInfo {
                family,
                socktype: sys::SOCK_STREAM,
                protocol: i as c_int,
                addr: sys::AddrIn::NONE,
            });
            interleave(&entries.collect::<Vec<_>>())
                .expect("memory")
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
