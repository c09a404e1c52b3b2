//! When a call's wait must end: the earlier of the call's own timeout and
//! the deadline of its token's chain (read afresh each time, so a deadline
//! set or moved during the call counts at once).

use super::token::{Token, NO_DEADLINE};
use crate::sys::{self, Error};

const NS_PER_MS: u64 = 1_000_000;

/// A timeout turned into an instant on the monotonic clock when the call
/// first waits, so that calls which never wait never read the clock.
pub(crate) struct Deadline<'t> {
    timeout_ms: i32,
    at: Option<u64>,
    token: Option<&'t Token>,
}

impl<'t> Deadline<'t> {
    /// `timeout_ms` must be `-1` (infinite) or `>= 0`. No token deadline.
    pub(crate) fn new(timeout_ms: i32) -> Deadline<'t> {
        Deadline {
            timeout_ms,
            at: None,
            token: None,
        }
    }

    /// EINVAL for a timeout below -1.
    pub(crate) fn check(timeout_ms: i32) -> sys::Result<Deadline<'t>> {
        if timeout_ms < -1 {
            return Err(Error(sys::EINVAL));
        }
        Ok(Deadline::new(timeout_ms))
    }

    /// This deadline, ended also by the deadlines of `token`'s chain.
    pub(crate) fn on(self, token: &'t Token) -> Deadline<'t> {
        Deadline {
            token: Some(token),
            ..self
        }
    }

    /// A deadline at most `max_ms` from now within this one (the token's
    /// chain still counts); ETIMEDOUT if this one has passed.
    pub(crate) fn slice(&mut self, max_ms: u64) -> sys::Result<Deadline<'t>> {
        if self.expired() {
            return Err(Error(sys::ETIMEDOUT));
        }
        let left = self.remaining_ms();
        Ok(Deadline {
            timeout_ms: left.map_or(max_ms, |l| l.min(max_ms)) as i32,
            at: None,
            token: self.token,
        })
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(&mut self) -> bool {
        self.remaining_ms() == Some(0)
    }

    /// Milliseconds left, rounded up; `None` for an infinite wait.
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
pub(crate) fn token_deadline_passed(token: &Token) -> bool {
    match token.deadline() {
        NO_DEADLINE => false,
        at => sys::monotonic_ns() >= at,
    }
}
