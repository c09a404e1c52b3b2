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
use crate::wake::{wait_one, Call, Token};

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
pub fn read(token: &Token, fd: RawSocket, buf: &mut [u8], timeout_ms: i32) -> Result<usize> {
    let kind = kind(fd)?;
    if kind == Some(FileKind::Socket) && !buf.is_empty() {
        return recv(token, fd, buf, 0, timeout_ms).map(|t| t.n);
    }
    let (call, mut dl) = Call::start(token, timeout_ms)?;
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
    let (call, mut dl) = Call::start(token, timeout_ms)?;
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
