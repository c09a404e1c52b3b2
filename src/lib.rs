//! rsock: blocking socket calls that any thread can cancel.
//!
//! The library's API is the C ABI in [`ffi`], described by
//! `include/rsock.h`; the crate has no Rust API of its own (the rlib exists
//! so that the Rust tests can call the C functions). Layers, each using
//! only the ones below it:
//!
//! - `ffi`: the C layer: checks and converts arguments, calls one
//!   operation, maps its result to a return value and errno.
//! - `ops`: the operations (socket calls, name resolution, the blocking
//!   hook shim).
//! - `wake`: the wake protocol: tokens, waiter records, the wait, the call.
//! - `error`: error codes and their descriptions.
//! - `sys`: the platform (POSIX or Winsock 2).

#![deny(unsafe_op_in_unsafe_fn)]

mod error;
pub mod ffi;
mod ops;
mod sync;
mod sys;
mod wake;
