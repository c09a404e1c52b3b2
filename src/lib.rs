//! rsock: blocking socket calls that any thread can cancel.
//!
//! The safe core is [`Token`] and the operations in [`ops`]; [`ffi`] is the
//! C ABI described in `include/rsock.h`. Platform code lives in `sys`.

#![deny(unsafe_op_in_unsafe_fn)]

mod connect_host;
pub mod error;
pub mod ffi;
#[cfg(all(loom, test))]
mod loom_models;
pub mod ops;
mod resolve;
mod shim;
mod sync;
mod sys;
mod token;
mod wait;
mod waiter;

pub use shim::{cancel_blocking_call, is_blocking, set_blocking_hook, thread_token};
pub use sys::{Error, RawSocket};
pub use token::Token;
