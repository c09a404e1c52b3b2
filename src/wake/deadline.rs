//! A call's timeout as a deadline on the monotonic clock.

use crate::sys::{self, Error};
use std::time::{Duration, Instant};

/// A timeout turned into a monotonic deadline when the call first waits, so
/// that calls which never wait never read the clock.
pub(crate) struct Deadline {
    timeout_ms: i32,
    at: Option<Instant>,
}

impl Deadline {
    /// `timeout_ms` must be `-1` (infinite) or `>= 0`.
    pub(crate) fn new(timeout_ms: i32) -> Deadline {
        Deadline {
            timeout_ms,
            at: None,
        }
    }

    pub(crate) fn check(timeout_ms: i32) -> sys::Result<Deadline> {
        if timeout_ms < -1 {
            return Err(Error(sys::EINVAL));
        }
        Ok(Deadline::new(timeout_ms))
    }

    /// A deadline at most `max_ms` from now within this one; ETIMEDOUT if
    /// this one has passed.
    pub(crate) fn slice(&mut self, max_ms: u64) -> sys::Result<Deadline> {
        if self.expired() {
            return Err(Error(sys::ETIMEDOUT));
        }
        let left = self.remaining_ms();
        Ok(Deadline::new(left.map_or(max_ms, |l| l.min(max_ms)) as i32))
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(&mut self) -> bool {
        self.remaining_ms() == Some(0)
    }

    /// Milliseconds left, rounded up; `None` for an infinite wait.
    pub(crate) fn remaining_ms(&mut self) -> Option<u64> {
        if self.timeout_ms < 0 {
            return None;
        }
        let now = Instant::now();
        let at = *self
            .at
            .get_or_insert_with(|| now + Duration::from_millis(self.timeout_ms as u64));
        let left = at.saturating_duration_since(now);
        Some(left.as_nanos().div_ceil(1_000_000) as u64)
    }
}
