//! When a call's wait must end: the earlier of the call's own timeout and
//! the deadline of its token's chain (read afresh each time, so a deadline
//! set or moved during the call counts at once). With RSOCK_SOCKET_TIMEOUT
//! the call's own timeout is the socket's, as the plain call would have it.

use super::token::{Token, NO_DEADLINE};
use crate::sys::{self, Error, RawSocket};

const NS_PER_MS: u64 = 1_000_000;

/// The timeout argument that asks for the plain call's behaviour.
pub(crate) const SOCKET_TIMEOUT: i32 = -2;

/// What a socket call is, for RSOCK_SOCKET_TIMEOUT: which socket timeout
/// bounds it and what the plain call reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Plain {
    /// Bounded by `SO_RCVTIMEO` (receives).
    Receive,
    /// Bounded by `SO_RCVTIMEO` where the system's accept is (POSIX).
    Accept,
    /// Bounded by `SO_SNDTIMEO` (sends).
    Send,
    /// Bounded by `SO_SNDTIMEO` where the system's connect is (Linux).
    Connect,
}

/// The socket-timeout state of a call made with RSOCK_SOCKET_TIMEOUT.
#[derive(Clone, Copy)]
struct PlainCall {
    sock: RawSocket,
    kind: Plain,
    /// Looked up at the first wait: whether the call may wait (false on a
    /// non-blocking socket).
    waits: Option<bool>,
}

/// A timeout turned into an instant on the monotonic clock when the call
/// first waits, so that calls which never wait never read the clock (nor,
/// with RSOCK_SOCKET_TIMEOUT, look at the socket's mode and timeouts).
pub(crate) struct Deadline<'t> {
    timeout_ms: i32,
    at: Option<u64>,
    token: Option<&'t Token>,
    plain: Option<PlainCall>,
}

impl<'t> Deadline<'t> {
    /// `timeout_ms` must be `-1` (infinite) or `>= 0`. No token deadline.
    pub(crate) fn new(timeout_ms: i32) -> Deadline<'t> {
        Deadline {
            timeout_ms,
            at: None,
            token: None,
            plain: None,
        }
    }

    /// EINVAL for a timeout below -1.
    pub(crate) fn check(timeout_ms: i32) -> sys::Result<Deadline<'t>> {
        if timeout_ms < -1 {
            return Err(Error(sys::EINVAL));
        }
        Ok(Deadline::new(timeout_ms))
    }

    /// As `check`, for a call on `sock` of the given kind, which also takes
    /// RSOCK_SOCKET_TIMEOUT.
    pub(crate) fn check_socket(
        timeout_ms: i32,
        sock: RawSocket,
        kind: Plain,
    ) -> sys::Result<Deadline<'t>> {
        if timeout_ms != SOCKET_TIMEOUT {
            return Deadline::check(timeout_ms);
        }
        Ok(Deadline {
            plain: Some(PlainCall {
                sock,
                kind,
                waits: None,
            }),
            ..Deadline::new(-1)
        })
    }

    /// This deadline, ended also by the deadlines of `token`'s chain.
    pub(crate) fn on(self, token: &'t Token) -> Deadline<'t> {
        Deadline {
            token: Some(token),
            ..self
        }
    }

    /// Whether the call was made with RSOCK_SOCKET_TIMEOUT.
    pub(crate) fn is_plain(&self) -> bool {
        self.plain.is_some()
    }

    /// Whether only the kernel would bound the call: RSOCK_INFINITE (or
    /// RSOCK_SOCKET_TIMEOUT, not yet looked up: the plain call applies it
    /// itself), and no deadline on the token's chain.
    #[inline]
    pub(crate) fn unbounded(&self) -> bool {
        let open = match &self.plain {
            None => self.timeout_ms < 0,
            Some(p) => p.waits.is_none(),
        };
        open && self.token.map_or(true, |t| t.deadline() == NO_DEADLINE)
    }

    /// Before a wait: with RSOCK_SOCKET_TIMEOUT, looks up (once) the
    /// socket's mode and timeout. A non-blocking socket does not wait: the
    /// error is what the plain call reports when it would block.
    #[inline]
    pub(crate) fn resolve(&mut self) -> sys::Result<()> {
        if self.plain.is_none() {
            return Ok(());
        }
        self.resolve_plain()
    }

    fn resolve_plain(&mut self) -> sys::Result<()> {
        let Some(p) = &mut self.plain else {
            return Ok(());
        };
        let waits = match p.waits {
            Some(w) => w,
            None => {
                let w = !sys::is_nonblocking(p.sock).unwrap_or(false);
                if w {
                    let bound = match p.kind {
                        Plain::Receive => sys::socket_timeout(p.sock, false),
                        Plain::Accept if sys::ACCEPT_USES_RCVTIMEO => {
                            sys::socket_timeout(p.sock, false)
                        }
                        Plain::Accept => None,
                        Plain::Send => sys::socket_timeout(p.sock, true),
                        Plain::Connect => sys::CONNECT_TIMEOUT_ERROR
                            .and_then(|_| sys::socket_timeout(p.sock, true)),
                    };
                    self.timeout_ms = bound.map_or(-1, |ms| ms.min(i32::MAX as u64) as i32);
                }
                p.waits = Some(w);
                w
            }
        };
        match (waits, p.kind) {
            (true, _) => Ok(()),
            (false, Plain::Connect) => Err(Error(sys::CONNECT_PENDING)),
            (false, _) => Err(Error(sys::EWOULDBLOCK)),
        }
    }

    /// The error for a wait that ran out: ETIMEDOUT, or, when the socket's
    /// own timeout (RSOCK_SOCKET_TIMEOUT) ended it, what the plain call
    /// reports then.
    pub(crate) fn timeout_error(&mut self) -> Error {
        let chain_passed = self.token.is_some_and(token_deadline_passed);
        match self.plain {
            Some(p) if !chain_passed => Error(match p.kind {
                Plain::Connect => sys::CONNECT_TIMEOUT_ERROR.unwrap_or(sys::ETIMEDOUT),
                _ => sys::SOCKET_TIMEOUT_ERROR,
            }),
            _ => Error(sys::ETIMEDOUT),
        }
    }

    /// Whether the socket's own timeout (RSOCK_SOCKET_TIMEOUT), not a token
    /// deadline, ended the call.
    pub(crate) fn socket_timeout_ended(&self) -> bool {
        let chain_passed = self.token.is_some_and(token_deadline_passed);
        self.plain.is_some() && !chain_passed && self.at.is_some_and(|at| sys::monotonic_ns() >= at)
    }

    /// A deadline at most `max_ms` from now within this one (the token's
    /// chain still counts); this one's timeout error if it has passed.
    pub(crate) fn slice(&mut self, max_ms: u64) -> sys::Result<Deadline<'t>> {
        self.resolve()?;
        if self.expired() {
            return Err(self.timeout_error());
        }
        let left = self.remaining_ms();
        Ok(Deadline {
            timeout_ms: left.map_or(max_ms, |l| l.min(max_ms)) as i32,
            at: None,
            token: self.token,
            plain: None,
        })
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(&mut self) -> bool {
        self.remaining_ms() == Some(0)
    }

    /// Milliseconds left, rounded up; `None` for an infinite wait (and for
    /// a socket timeout not yet looked up: see `resolve`).
    #[inline]
    pub(crate) fn remaining_ms(&mut self) -> Option<u64> {
        let chain = self.token.map_or(NO_DEADLINE, Token::deadline);
        if self.timeout_ms < 0 && chain == NO_DEADLINE {
            return None;
        }
        let now = sys::monotonic_ns();
        let own = match self.timeout_ms {
            t if t < 0 => NO_DEADLINE,
            t => *self
                .at
                .get_or_insert_with(|| now.saturating_add(t as u64 * NS_PER_MS)),
        };
        Some(own.min(chain).saturating_sub(now).div_ceil(NS_PER_MS))
    }
}

/// The token deadline `timeout_ms` from now (RSOCK_INFINITE: none).
pub(crate) fn token_deadline(timeout_ms: i32) -> sys::Result<u64> {
    match timeout_ms {
        -1 => Ok(NO_DEADLINE),
        t if t < 0 => Err(Error(sys::EINVAL)),
        t => Ok(sys::monotonic_ns().saturating_add(t as u64 * NS_PER_MS)),
    }
}

/// Milliseconds until `token`'s earliest deadline, rounded up (0 once
/// passed); -1 if its chain has none.
pub(crate) fn token_remaining_ms(token: &Token) -> i32 {
    match token.deadline() {
        NO_DEADLINE => -1,
        at => at
            .saturating_sub(sys::monotonic_ns())
            .div_ceil(NS_PER_MS)
            .min(i32::MAX as u64) as i32,
    }
}

/// Whether `token`'s chain has a deadline that has passed.
#[inline]
pub(crate) fn token_deadline_passed(token: &Token) -> bool {
    match token.deadline() {
        NO_DEADLINE => false,
        at => sys::monotonic_ns() >= at,
    }
}
