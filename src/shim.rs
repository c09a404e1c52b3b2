//! Per-thread state: the thread's own token, the Winsock-1.1-style blocking
//! hook, and the one outstanding blocking call a thread may have.

use crate::sys::{self, Error};
use crate::token::Token;
use std::cell::{Cell, OnceCell};

/// A blocking hook: called repeatedly while a call on its thread waits.
pub type Hook = unsafe extern "C" fn() -> libc::c_int;

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
    static THREAD_TOKEN: OnceCell<Token> = const { OnceCell::new() };
}

/// The calling thread's own token (what a NULL token means). During thread
/// teardown, a fresh token that nobody else can reach.
pub fn thread_token() -> Token {
    THREAD_TOKEN
        .try_with(|t| t.get_or_init(Token::new).clone())
        .unwrap_or_default()
}

/// Installs a hook for the calling thread; returns the previous one.
pub fn set_blocking_hook(hook: Option<Hook>) -> Option<Hook> {
    STATE.with(|s| s.hook.replace(hook))
}

/// Whether the calling thread is inside a blocking rsock call.
pub fn is_blocking() -> bool {
    STATE.with(|s| s.in_call.get())
}

/// Cancels the calling thread's outstanding call (from its hook).
pub fn cancel_blocking_call() -> sys::Result<()> {
    STATE.with(|s| {
        if s.in_call.get() {
            s.cancel_requested.set(true);
            Ok(())
        } else {
            Err(Error(sys::EINVAL))
        }
    })
}

/// Marks the calling thread as inside a blocking call for its lifetime.
pub(crate) struct Call {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Call {
    /// Starts a call; EINPROGRESS if the thread already has one outstanding
    /// (a call made from inside the blocking hook).
    pub(crate) fn enter() -> sys::Result<Call> {
        STATE.with(|s| {
            if s.in_call.get() {
                return Err(Error(sys::EINPROGRESS));
            }
            s.in_call.set(true);
            s.cancel_requested.set(false);
            Ok(Call {
                _not_send: std::marker::PhantomData,
            })
        })
    }

    /// Whether `rsock_cancel_blocking_call` was called for this call.
    pub(crate) fn cancel_requested(&self) -> bool {
        STATE.with(|s| s.cancel_requested.get())
    }

    /// Whether a hook is installed on this thread.
    pub(crate) fn has_hook(&self) -> bool {
        STATE.with(|s| s.hook.get().is_some())
    }

    /// Calls the hook, if any.
    pub(crate) fn run_hook(&self) {
        let Some(hook) = STATE.with(|s| s.hook.get()) else {
            return;
        };
        // SAFETY: the hook is a C function the application installed for this
        // thread; it takes no arguments. A C function cannot unwind into us.
        unsafe { hook() };
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| {
            s.in_call.set(false);
            s.cancel_requested.set(false);
        });
    }
}
