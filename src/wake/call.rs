//! One blocking call, and the per-thread state around it: the one
//! outstanding call a thread may have, and the thread's Winsock-1.1-style
//! blocking hook, which the call's wait runs.

use super::deadline::{token_deadline_passed, Plain};
use super::{Deadline, Token};
use crate::sys::{self, Error};
use std::cell::Cell;

/// A blocking hook: called repeatedly while a call on its thread waits.
pub(crate) type Hook = unsafe extern "C" fn() -> std::ffi::c_int;

struct CallState {
    hook: Cell<Option<Hook>>,
    in_call: Cell<bool>,
    cancel_requested: Cell<bool>,
}

thread_local! {
    static STATE: CallState = const {
        CallState {
            hook: Cell::new(None),
            in_call: Cell::new(false),
            cancel_requested: Cell::new(false),
        }
    };
}

/// Installs the calling thread's blocking hook; returns the previous one.
pub(crate) fn replace_hook(hook: Option<Hook>) -> Option<Hook> {
    STATE.with(|s| s.hook.replace(hook))
}

/// Whether the calling thread is inside a blocking call.
pub(crate) fn in_call() -> bool {
    STATE.with(|s| s.in_call.get())
}

/// Makes the calling thread's outstanding call fail with ECANCELED at its
/// next check; false if it has none.
pub(crate) fn request_cancel() -> bool {
    STATE.with(|s| {
        s.cancel_requested.set(s.in_call.get());
        s.in_call.get()
    })
}

/// One blocking call on `token`; marks the thread as inside it while alive.
pub(crate) struct Call<'t> {
    token: &'t Token,
    /// The token's cancel epoch when the call started: a cancel during the
    /// call is seen even if the token was reset before the call woke up.
    epoch: u64,
    _defer_cancel: sys::CallDefer,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<'t> Call<'t> {
    /// Starts a call: EINPROGRESS if the thread already has one outstanding
    /// (a call made from inside the blocking hook), ECANCELED if the token
    /// is cancelled.
    #[inline]
    pub(crate) fn enter(token: &'t Token) -> sys::Result<Call<'t>> {
        STATE.with(|s| {
            if s.in_call.get() {
                return Err(Error(sys::EINPROGRESS));
            }
            s.in_call.set(true);
            s.cancel_requested.set(false);
            Ok(())
        })?;
        let call = Call {
            token,
            epoch: token.epoch(),
            _defer_cancel: sys::CallDefer::new(),
            _not_send: std::marker::PhantomData,
        };
        call.check()?;
        Ok(call)
    }

    /// Starts a call on the express lane (`ops::express`), where nothing
    /// but the token's cancel can end it: a root token with no deadline,
    /// not cancelled, on a thread with no blocking hook and no call
    /// outstanding. None: start the call as usual, which says why not.
    #[inline(always)]
    pub(crate) fn enter_express(token: &'t Token) -> Option<Call<'t>> {
        let epoch = token.root_plain_epoch()?;
        STATE.with(|s| {
            if s.in_call.get() || s.hook.get().is_some() {
                return None;
            }
            s.in_call.set(true);
            s.cancel_requested.set(false);
            Some(())
        })?;
        Some(Call {
            token,
            epoch,
            _defer_cancel: sys::CallDefer::new(),
            _not_send: std::marker::PhantomData,
        })
    }

    /// Starts a call with a timeout: EINVAL for a timeout below -1, then
    /// as `enter`. The wait ends at the earlier of the timeout and the
    /// token's deadline.
    pub(crate) fn start(
        token: &'t Token,
        timeout_ms: i32,
    ) -> sys::Result<(Call<'t>, Deadline<'t>)> {
        let dl = Deadline::check(timeout_ms)?.on(token);
        Ok((Call::enter(token)?, dl))
    }

    /// As `start`, for a call on `sock` that also takes
    /// RSOCK_SOCKET_TIMEOUT (the plain call's own bound, as `kind` says).
    pub(crate) fn start_socket(
        token: &'t Token,
        timeout_ms: i32,
        sock: sys::RawSocket,
        kind: Plain,
    ) -> sys::Result<(Call<'t>, Deadline<'t>)> {
        let dl = Deadline::check_socket(timeout_ms, sock, kind)?.on(token);
        Ok((Call::enter(token)?, dl))
    }

    pub(crate) fn token(&self) -> &'t Token {
        self.token
    }

    /// Fails with ECANCELED if the token was cancelled before or during the
    /// call, or the thread's hook cancelled it; with ETIMEDOUT if a deadline
    /// of the token's chain has passed (even with data ready, as for a
    /// cancel).
    #[inline(always)]
    pub(crate) fn check(&self) -> sys::Result<()> {
        // The common case inline (the same reads as `check_all`).
        if self.unchanged() {
            return Ok(());
        }
        self.check_all()
    }

    /// Whether the token is a root with no deadline, not cancelled, nor
    /// cancelled since the call began, and no hook cancelled the call
    /// (false says nothing).
    #[inline(always)]
    pub(crate) fn unchanged(&self) -> bool {
        self.token.root_plain_epoch() == Some(self.epoch)
            && !STATE.with(|s| s.cancel_requested.get())
    }

    #[inline(never)]
    fn check_all(&self) -> sys::Result<()> {
        if self.token.cancelled_since(self.epoch) || STATE.with(|s| s.cancel_requested.get()) {
            return Err(Error(sys::ECANCELED));
        }
        if token_deadline_passed(self.token) {
            return Err(Error(sys::ETIMEDOUT));
        }
        Ok(())
    }

    /// Whether a hook is installed on this thread.
    #[inline]
    pub(crate) fn has_hook(&self) -> bool {
        STATE.with(|s| s.hook.get().is_some())
    }

    /// Calls the hook, if any, and again at once while it returns nonzero
    /// (a message pump that handled a message), as Winsock 1.1 did; at most
    /// MAX_HOOK_RUN times in a row, and not after a cancel request.
    pub(crate) fn run_hook(&self) {
        const MAX_HOOK_RUN: usize = 64;
        for _ in 0..MAX_HOOK_RUN {
            let Some(hook) = STATE.with(|s| s.hook.get()) else {
                return;
            };
            let more = {
                // The application's code may reach a cancellation point: a
                // pthread_cancel must not act inside it (see sys::CallDefer).
                let _defer = sys::DeferCancel::new();
                // SAFETY: the hook is a C function the application installed
                // for this thread; it takes no arguments. A C function cannot
                // unwind into us.
                (unsafe { hook() }) != 0
            };
            if !more || STATE.with(|s| s.cancel_requested.get()) || self.token.is_cancelled() {
                return;
            }
        }
    }
}

impl Drop for Call<'_> {
    #[inline]
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| {
            s.in_call.set(false);
            s.cancel_requested.set(false);
        });
    }
}
