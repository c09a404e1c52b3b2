//! The calling thread's own token: what a NULL token means, and what
//! `rsock_thread_token` hands out so another thread can cancel this one.

use super::Token;
use crate::sys::{self, Error};
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::OnceLock;

thread_local! {
    // Owns one reference, released by a thread-exit destructor (a raw
    // pointer, so Rust registers no TLS destructor: usable at any point of
    // thread teardown, including from other libraries' key destructors).
    static THREAD_TOKEN: Cell<*const c_void> = const { Cell::new(std::ptr::null()) };
    // Set once that destructor has run: a token stored after it would
    // never be released.
    static TOKEN_RELEASED: Cell<bool> = const { Cell::new(false) };
}

unsafe extern "C" fn release_thread_token(_: *mut c_void) {
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
pub(crate) fn thread_token() -> sys::Result<Token> {
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
    if let Err(e) = key.set(owned.cast_mut()) {
        // Without the key the reference would never be released at exit.
        // SAFETY: `owned` is the reference just made, shared with no one.
        drop(unsafe { Token::from_raw(owned) });
        return Err(e);
    }
    THREAD_TOKEN.with(|t| t.set(owned));
    Ok(token)
}
