//! The atomics, allocation and spinning that the wake protocol (tokens and
//! waiter records) uses: std's, or under `--cfg loom` loom's model of them,
//! so that `make loom-test` checks the protocol's own code (see
//! `src/wake/loom_models.rs`).

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

/// Moves `v` to the heap like `Box::new`, but gives it back if memory runs
/// out instead of aborting the process.
pub(crate) fn try_box<T>(v: T) -> Result<Box<T>, T> {
    let layout = std::alloc::Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(v)); // allocates nothing
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc(layout) }.cast::<T>();
    if p.is_null() {
        return Err(v);
    }
    // SAFETY: `p` is a fresh allocation of T's layout from the global
    // allocator, which is what `Box` frees with.
    unsafe {
        p.write(v);
        Ok(Box::from_raw(p))
    }
}
