//! `read` and `write`, cancellable (POSIX), on any descriptor `poll` can
//! wait on, in either mode; the mode is left as it was found.
//!
//! Each call reads the mode once (`F_GETFL`). A non-blocking descriptor is
//! tried, with a wait whenever it would block. A blocking one cannot be
//! tried without risking an uncancellable block, so a blocking descriptor
//! also costs an `fstat` and then:
//! - a socket goes through `recv`/`send` (MSG_DONTWAIT, flags 0);
//! - a regular file, block device or directory is read or written at once;
//! - any other is read once `poll` says it is readable (with a single
//!   reader that read does not block);
//! - a pipe or FIFO is written, once `poll` says it is writable, at most
//!   PIPE_BUF bytes at a time (POSIX: such a write then does not block);
//! - anything else (terminal, eventfd, character device) is written, once
//!   `poll` says it is writable, with O_NONBLOCK set on the open file
//!   description for the instant of that write (POLLOUT promises no amount
//!   there, and a slow pty reader would otherwise block the write).

use super::io::{recv, retry, send, transfer, transfer_all, Piece, Transfer};
use crate::sys::{self, Error, FileKind, RawSocket, Result};
use crate::wake::{wait_one, Call, Plain, Token};

/// The kind of a blocking descriptor; None for a non-blocking one.
fn kind(fd: RawSocket) -> Result<Option<FileKind>> {
    if fd < 0 {
        return Err(Error(sys::EBADF));
    }
    if sys::file_flags(fd)? & sys::O_NONBLOCK != 0 {
        return Ok(None);
    }
    sys::file_kind(fd).map(Some)
}

/// One attempt, repeated if a signal interrupts it.
fn once<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        match attempt() {
            Err(e) if e.0 == sys::EINTR => continue,
            r => return r,
        }
    }
}

/// `read`, cancellable. A cancelled or timed-out call consumed nothing.
/// (A `Transfer` only so that the C layer reports it as it does `recv`.)
pub fn read(token: &Token, fd: RawSocket, buf: &mut [u8], timeout_ms: i32) -> Result<Transfer> {
    read_bytes(token, fd, buf, timeout_ms).map(Transfer::all)
}

fn read_bytes(token: &Token, fd: RawSocket, buf: &mut [u8], timeout_ms: i32) -> Result<usize> {
    let kind = kind(fd)?;
    if kind == Some(FileKind::Socket) && !buf.is_empty() {
        return recv(token, fd, buf, 0, timeout_ms).map(|t| t.n);
    }
    let (call, mut dl) = Call::start_socket(token, timeout_ms, fd, Plain::Receive)?;
    match kind {
        // A read of nothing returns at once, as from `read`.
        _ if buf.is_empty() => once(|| sys::read(fd, buf)),
        None => retry(&call, fd, sys::POLLIN, &mut dl, || sys::read(fd, buf)),
        Some(FileKind::AtOnce) => once(|| sys::read(fd, buf)),
        Some(_) => {
            wait_one(&call, fd, sys::POLLIN, &mut dl)?;
            retry(&call, fd, sys::POLLIN, &mut dl, || sys::read(fd, buf))
        }
    }
}

/// `write`, cancellable: returns once all of `buf` is written, or the
/// exact partial count if cancelled, timed out or failed after some was.
pub fn write(token: &Token, fd: RawSocket, buf: &[u8], timeout_ms: i32) -> Result<Transfer> {
    let kind = kind(fd)?;
    if kind == Some(FileKind::Socket) && !buf.is_empty() {
        return send(token, fd, buf, 0, timeout_ms);
    }
    let (call, mut dl) = Call::start_socket(token, timeout_ms, fd, Plain::Send)?;
    let len = buf.len();
    let rest = |done: usize, max: usize| {
        let rest = &buf[done..];
        &rest[..rest.len().min(max)]
    };
    match kind {
        // A write of nothing returns at once, as from `write`.
        _ if len == 0 => once(|| sys::write(fd, buf)).map(Transfer::all),
        None | Some(FileKind::AtOnce) => {
            transfer_all(&call, fd, sys::POLLOUT, len, &mut dl, |done| {
                sys::write(fd, rest(done, len))
            })
        }
        Some(FileKind::Fifo) => transfer(&call, fd, sys::POLLOUT, len, &mut dl, true, |done| {
            sys::write(fd, rest(done, sys::PIPE_BUF)).map(Piece::more)
        }),
        Some(_) => transfer(&call, fd, sys::POLLOUT, len, &mut dl, true, |done| {
            sys::write_nonblocking(fd, rest(done, len)).map(Piece::more)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::io::AsRawFd;

    fn pipe() -> (std::fs::File, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors pipe() writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        use std::os::unix::io::FromRawFd;
        // SAFETY: both descriptors were just created and are owned here.
        unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "pipes, poll and threads Miri does not model")]
    fn pipe_in_both_modes() {
        for nonblocking in [false, true] {
            let (rf, wf) = pipe();
            let (r, w) = (rf.as_raw_fd(), wf.as_raw_fd());
            sys::set_nonblocking(r, nonblocking).unwrap();
            sys::set_nonblocking(w, nonblocking).unwrap();
            let t = Token::new();
            let mut buf = [0u8; 8];
            assert_eq!(read(&t, r, &mut buf, 20), Err(Error(sys::ETIMEDOUT)));
            assert_eq!(write(&t, w, b"abc", 1000), Ok(Transfer::all(3)));
            t.cancel();
            assert_eq!(read(&t, r, &mut buf, 1000), Err(Error(sys::ECANCELED)));
            t.reset();
            assert_eq!(read(&t, r, &mut buf, 1000), Ok(Transfer::all(3)));
            // A full pipe: the partial count, then nothing at all.
            let big = vec![1u8; 1 << 20];
            let n = write(&t, w, &big, 20).unwrap();
            assert!(n.n > 0 && n.n < big.len());
            assert_eq!(write(&t, w, &big, 20), Err(Error(sys::ETIMEDOUT)));
            assert_eq!(
                sys::file_flags(r).unwrap() & sys::O_NONBLOCK != 0,
                nonblocking
            );
            assert_eq!(
                sys::file_flags(w).unwrap() & sys::O_NONBLOCK != 0,
                nonblocking
            );
        }
        assert_eq!(
            read(&Token::new(), -1, &mut [0u8; 1], 0),
            Err(Error(sys::EBADF))
        );
    }
}
