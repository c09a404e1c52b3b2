//! The Winsock 1.1 blocking-hook shim: a per-thread hook that a waiting
//! call runs (see `wake::Call::run_hook`), and the cancel of the thread's
//! one outstanding call from inside it. The state lives with the call it
//! belongs to (`wake/call.rs`); this is its API.

use crate::sys::{self, Error};
use crate::wake::{self, Hook};

/// Installs a hook for the calling thread; returns the previous one.
pub(crate) fn set_blocking_hook(hook: Option<Hook>) -> Option<Hook> {
    wake::replace_hook(hook)
}

/// Whether the calling thread is inside a blocking rsock call.
pub(crate) fn is_blocking() -> bool {
    wake::in_call()
}

/// Cancels the calling thread's outstanding call (from its hook); EINVAL
/// if it has none.
pub(crate) fn cancel_blocking_call() -> sys::Result<()> {
    if wake::request_cancel() {
        Ok(())
    } else {
        Err(Error(sys::EINVAL))
    }
}
