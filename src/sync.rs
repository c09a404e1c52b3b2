//! The atomics, allocation and spinning that the wake protocol (tokens and
//! waiter records) uses: std's, or under `--cfg loom` loom's model of them,
//! so that `make loom-test` checks the protocol's own code (see
//! `src/loom_models.rs`).

#[cfg(loom)]
pub(crate) use loom::{
    alloc::{alloc, dealloc},
    sync::atomic,
    thread::yield_now,
};
#[cfg(not(loom))]
pub(crate) use std::{
    alloc::{alloc, dealloc},
    sync::atomic,
    thread::yield_now,
};
