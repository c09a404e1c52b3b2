//! Per-thread state: the thread's own token, the Winsock-1.1-style blocking
//! hook, and the one outstanding blocking call a thread may have.

use crate::sys::{self, Error};
use crate::token::{Inner, Token};
use std::cell::Cell;
use std::sync::OnceLock;

/// A blocking hook: called repeatedly while a call on its thread waits.
pub type Hook = unsafe extern "C" fn() -> std::ffi::c_int;

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
    // Owns one reference, released by a thread-exit destructor (a raw
    // pointer, so Rust registers no TLS destructor: usable at any point of
    // thread teardown, including from other libraries' key destructors).
    static THREAD_TOKEN: Cell<*const Inner> = const { Cell::new(std::ptr::null()) };
    // Set once that destructor has run: a token stored after it would
    // never be released.
    static TOKEN_RELEASED: Cell<bool> = const { Cell::new(false) };
}

unsafe extern "C" fn release_thread_token(_: *mut std::ffi::c_void) {
    TOKEN_RELEASED.with(|r| r.set(true));
    let p = THREAD_TOKEN.with(|t| t.replace(std::ptr::null()));
    if !p.is_null() {
        // SAFETY: THREAD_TOKEN owned this reference.
        drop(unsafe { Token::from_raw(p) });
    }
}

fn thread_token_key() -> Option<&'static sys::ThreadKey> {
    static KEY: OnceLock<Option<sys::ThreadKey>> = OnceLock::new();
    KEY.get_or_init(|| sys::ThreadKey::new(release_thread_token).ok())
        .as_ref()
}

/// The calling thread's own token (what a NULL token means). ENOMEM if it
/// cannot be created.
pub fn thread_token() -> sys::Result<Token> {
    let p = THREAD_TOKEN.with(|t| t.get());
    if !p.is_null() {
        // SAFETY: THREAD_TOKEN holds a reference to `p`.
        return Ok(unsafe { Token::clone_raw(p) });
    }
    let token = Token::try_new().ok_or(Error(sys::ENOMEM))?;
    if TOKEN_RELEASED.with(|r| r.get()) {
        return Ok(token); // the thread is exiting: a token for this call
    }
    let key = thread_token_key().ok_or(Error(sys::ENOMEM))?;
    let owned = token.clone().into_raw();
    if let Err(e) = key.set(owned as *mut std::ffi::c_void) {
        // Without the key the reference would never be released at exit.
        // SAFETY: `owned` is the reference just made, shared with no one.
        drop(unsafe { Token::from_raw(owned) });
        return Err(e);
    }
    THREAD_TOKEN.with(|t| t.set(owned));
    Ok(token)
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

/// One blocking call on `token`; marks the thread as inside it while alive.
pub(crate) struct Call<'t> {
    token: &'t Token,
    /// The token's cancel epoch when the call started: a cancel during the
    /// call is seen even if the token was reset before the call woke up.
    epoch: u64,
    _defer_cancel: sys::DeferCancel,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<'t> Call<'t> {
    /// Starts a call: EINPROGRESS if the thread already has one outstanding
    /// (a call made from inside the blocking hook), ECANCELED if the token
    /// is cancelled.
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
            _defer_cancel: sys::DeferCancel::new(),
            _not_send: std::marker::PhantomData,
        };
        call.check()?;
        Ok(call)
    }

    pub(crate) fn token(&self) -> &'t Token {
        self.token
    }

    /// Fails with ECANCELED if the token was cancelled before or during the
    /// call, or the thread's hook cancelled it.
    pub(crate) fn check(&self) -> sys::Result<()> {
        if self.token.cancelled_since(self.epoch) || STATE.with(|s| s.cancel_requested.get()) {
            return Err(Error(sys::ECANCELED));
        }
        Ok(())
    }

    /// Whether a hook is installed on this thread.
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
            // SAFETY: the hook is a C function the application installed for
            // this thread; it takes no arguments. A C function cannot unwind
            // into us.
            let more = unsafe { hook() } != 0;
            if !more || STATE.with(|s| s.cancel_requested.get()) || self.token.is_cancelled() {
                return;
            }
        }
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| {
            s.in_call.set(false);
            s.cancel_requested.set(false);
        });
    }
}
