//! `recvmsg` and `sendmsg`, cancellable (POSIX): the rules of `recv` and
//! `send` (src/ops/io.rs), with scatter/gather through the iovecs.
//!
//! The caller's `msghdr` and iovec array are never modified except through
//! what `recvmsg` itself writes (`msg_namelen`, `msg_controllen`,
//! `msg_flags`): each attempt works on a copy, and a transfer that goes on
//! after a partial one advances a private copy of the iovecs.

// msg_controllen and msg_iovlen are size_t on some systems, not on others.
#![allow(clippy::unnecessary_cast)]

use super::io::{
    receive_waiting, start_receive, start_send, transfer, transfer_all, Piece, RecvPlan, Transfer,
};
use crate::sys::{self, Error, IoVec, MsgHdr, RawSocket, Result};
use crate::wake::{Call, Deadline, Token};

/// Iovec arrays up to this long are copied on the stack.
const SMALL: usize = 8;

/// A private, advancing copy of the caller's iovecs.
struct Cursor<'a> {
    iov: &'a mut [IoVec],
    start: usize,
}

impl Cursor<'_> {
    /// Moves past `n` bytes (never past the end).
    fn advance(&mut self, mut n: usize) {
        while n > 0 && self.start < self.iov.len() {
            let v = &mut self.iov[self.start];
            if n < v.iov_len {
                // The base is only ever handed back to the kernel.
                v.iov_base = v.iov_base.cast::<u8>().wrapping_add(n).cast();
                v.iov_len -= n;
                return;
            }
            n -= v.iov_len;
            self.start += 1;
        }
        // Skip empty ones, so that a finished transfer has none left.
        while self.iov.get(self.start).is_some_and(|v| v.iov_len == 0) {
            self.start += 1;
        }
    }

    /// Points `m` at what is left.
    fn describe(&mut self, m: &mut MsgHdr) {
        let rest = &mut self.iov[self.start..];
        m.msg_iov = rest.as_mut_ptr();
        m.msg_iovlen = rest.len() as _;
    }
}

/// Runs `f` with a private copy of `iov` (on the stack when small).
fn with_copy<R>(iov: &[IoVec], f: impl FnOnce(Cursor) -> Result<R>) -> Result<R> {
    const NONE: IoVec = IoVec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let mut small = [NONE; SMALL];
    let mut large;
    let copy: &mut [IoVec] = if iov.len() <= SMALL {
        &mut small[..iov.len()]
    } else {
        large = sys::try_vec(iov.len())?;
        large.extend_from_slice(iov);
        &mut large
    };
    copy.copy_from_slice(iov);
    let mut c = Cursor {
        iov: copy,
        start: 0,
    };
    c.advance(0);
    f(c)
}

/// The total length the iovecs describe; EINVAL past `isize::MAX`, as from
/// the system.
fn total(iov: &[IoVec]) -> Result<usize> {
    iov.iter()
        .try_fold(0usize, |t, v| t.checked_add(v.iov_len))
        .filter(|&t| t <= isize::MAX as usize)
        .ok_or(Error(sys::EINVAL))
}

/// What recvmsg writes back: name length, control length, flags.
type Written = (sys::socklen_t, usize, i32);

/// One `recvmsg` attempt on a copy of `orig`; records what it wrote.
fn attempt(sock: RawSocket, orig: &MsgHdr, flags: i32, out: &mut Written) -> Result<usize> {
    let mut m = *orig;
    // SAFETY: `m` is the caller's msghdr, whose buffers the caller vouches
    // for (a bad one is the kernel's EFAULT).
    let n = unsafe { sys::recvmsg(sock, &mut m, flags)? };
    *out = (m.msg_namelen, m.msg_controllen as usize, m.msg_flags);
    Ok(n)
}

/// `recvmsg`, cancellable. `iov` is `msg`'s iovec array (checked by the
/// caller). A cancelled or timed-out call consumed nothing, ancillary data
/// included. MSG_WAITALL on a stream gathers across the iovecs (`gather`).
pub fn recvmsg(
    token: &Token,
    sock: RawSocket,
    msg: &mut MsgHdr,
    iov: &[IoVec],
    flags: i32,
    timeout_ms: i32,
) -> Result<Transfer> {
    let len = total(iov)?;
    // MSG_CMSG_CLOEXEC: checked here, passed to every attempt.
    let only = flags & sys::RECVMSG_FLAGS;
    let orig = *msg;
    let mut out: Written = (0, 0, 0);
    let r = start_receive(
        token,
        sock,
        flags & !only,
        timeout_ms,
        true,
        |call, dl, plan| match plan {
            RecvPlan::Once => attempt(sock, &orig, flags, &mut out).map(Transfer::all),
            RecvPlan::Wait => receive_waiting(
                call,
                sock,
                flags & !only,
                dl,
                || Ok(0),
                || attempt(sock, &orig, flags, &mut out),
            )
            .map(Transfer::all),
            RecvPlan::Gather(flags) => with_copy(iov, |cur| {
                gather(call, dl, sock, &orig, cur, len, flags | only, &mut out)
            }),
        },
    );
    if r.is_ok() {
        msg.msg_namelen = out.0;
        msg.msg_controllen = out.1 as _;
        msg.msg_flags = out.2;
    }
    r
}

/// MSG_WAITALL on a stream: pieces into what is left of the iovecs, each
/// piece's ancillary data after the previous pieces' in the control buffer
/// (CMSG-aligned, as the kernel leaves it). The gather ends after the
/// first piece that carries any (or whose control data was truncated), so
/// none is overwritten or lost.
#[allow(clippy::too_many_arguments)]
fn gather(
    call: &Call,
    dl: &mut Deadline,
    sock: RawSocket,
    orig: &MsgHdr,
    mut cur: Cursor,
    len: usize,
    flags: i32,
    out: &mut Written,
) -> Result<Transfer> {
    let base = orig.msg_control.cast::<u8>();
    let room = orig.msg_controllen as usize;
    // Control bytes used, and where the next piece's go.
    let (mut used, mut next) = (0, 0);
    transfer(call, sock, sys::POLLIN, len, dl, false, |_| {
        let mut m = *orig;
        cur.describe(&mut m);
        m.msg_control = if next < room {
            base.wrapping_add(next).cast()
        } else {
            std::ptr::null_mut()
        };
        m.msg_controllen = room.saturating_sub(next) as _;
        // SAFETY: as in `attempt`; the iovecs and control space are parts
        // of the caller's.
        let n = unsafe { sys::recvmsg(sock, &mut m, flags)? };
        cur.advance(n);
        let got = m.msg_controllen as usize;
        if got > 0 {
            used = next + got;
            next = sys::cmsg_align(used).min(room);
        }
        *out = (m.msg_namelen, used, out.2 | m.msg_flags);
        Ok(Piece {
            n,
            last: got > 0 || m.msg_flags & sys::MSG_CTRUNC != 0,
        })
    })
}

/// `sendmsg`, cancellable: returns once everything the iovecs describe is
/// queued, or the exact partial count if cancelled, timed out or failed
/// after some was. Ancillary data goes once, with the first bytes: the
/// rest of a partial send goes without it.
pub fn sendmsg(
    token: &Token,
    sock: RawSocket,
    msg: &MsgHdr,
    iov: &[IoVec],
    flags: i32,
    timeout_ms: i32,
) -> Result<Transfer> {
    let len = total(iov)?;
    start_send(token, sock, flags, timeout_ms, |call, dl, once| {
        if once {
            // SAFETY: the caller's msghdr, whose buffers the caller vouches for.
            return unsafe { sys::sendmsg(sock, msg, flags) }.map(Transfer::all);
        }
        with_copy(iov, |mut cur| {
            transfer_all(call, sock, sys::POLLOUT, len, dl, |done| {
                let mut m = *msg;
                cur.describe(&mut m);
                if done > 0 {
                    m.msg_control = std::ptr::null_mut();
                    m.msg_controllen = 0;
                }
                // SAFETY: as above; the iovecs are parts of the caller's.
                let n = unsafe { sys::sendmsg(sock, &m, flags)? };
                cur.advance(n);
                Ok(n)
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::io::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn iov(buf: &mut [u8]) -> IoVec {
        IoVec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        }
    }

    fn msg(v: &mut [IoVec]) -> MsgHdr {
        // SAFETY: msghdr is plain data; all-zero is an empty header.
        let mut m: MsgHdr = unsafe { std::mem::zeroed() };
        m.msg_iov = v.as_mut_ptr();
        m.msg_iovlen = v.len() as _;
        m
    }

    #[test]
    fn cursor_advances_across_iovecs_and_skips_empty_ones() {
        let (mut a, mut b, mut c) = ([0u8; 3], [0u8; 0], [0u8; 4]);
        let v = [iov(&mut a), iov(&mut b), iov(&mut c)];
        with_copy(&v, |mut cur| {
            cur.advance(2);
            assert_eq!((cur.start, cur.iov[0].iov_len), (0, 1));
            cur.advance(1);
            assert_eq!(cur.start, 2, "the empty iovec is skipped");
            cur.advance(3);
            assert_eq!((cur.start, cur.iov[2].iov_len), (2, 1));
            cur.advance(5);
            assert_eq!(cur.start, 3);
            Ok(())
        })
        .unwrap();
        assert_eq!(v[0].iov_len, 3, "the caller's array is untouched");
        assert_eq!(total(&v), Ok(7));
        let huge = [IoVec {
            iov_base: std::ptr::null_mut(),
            iov_len: usize::MAX,
        }];
        assert_eq!(total(&huge), Err(Error(sys::EINVAL)));
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn gather_and_partial_send_over_many_iovecs() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let t = Token::new();
        // More iovecs than the stack copy holds.
        let mut bufs = [[0u8; 2]; 12];
        let mut v: Vec<IoVec> = bufs.iter_mut().map(|b| iov(b)).collect();
        let mut m = msg(&mut v);
        let writer = std::thread::spawn(move || {
            for chunk in (b'a'..b'a' + 24).collect::<Vec<u8>>().chunks(5) {
                b.write_all(chunk).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            b
        });
        let r = recvmsg(
            &t,
            a.as_raw_fd(),
            &mut m,
            &v.clone(),
            sys::MSG_WAITALL,
            5000,
        );
        assert_eq!(r, Ok(Transfer::all(24)));
        let got: Vec<u8> = bufs.concat();
        assert_eq!(got, (b'a'..b'a' + 24).collect::<Vec<u8>>());
        let mut b = writer.join().unwrap();

        // A send stopped by its timeout: exactly the count arrives.
        let mut big = vec![7u8; 1 << 20];
        let mut parts: Vec<IoVec> = big.chunks_mut(100_000).map(iov).collect();
        let m = msg(&mut parts);
        let sent = sendmsg(&t, a.as_raw_fd(), &m, &parts.clone(), 0, 30).unwrap();
        assert!(sent.n > 0 && sent.n < 1 << 20);
        assert_eq!(
            sent.short,
            Some(crate::ops::Short::Stopped(Error(sys::ETIMEDOUT)))
        );
        drop(a);
        let mut all = Vec::new();
        b.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), sent.n);
    }
}
