//! Under `--cfg loom`: wake descriptors as the protocol models see them.
//! A descriptor is open or closed, and signalled or not; signalling a
//! closed one (which in the real program could hit a reused descriptor)
//! fails the model.

#![cfg_attr(not(test), allow(dead_code))] // the models are tests

use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const SIGNALLED: u8 = 2;
const MAX: usize = 8;

loom::lazy_static! {
    static ref STATE: [AtomicU8; MAX] = std::array::from_fn(|_| AtomicU8::new(CLOSED));
    static ref NEXT: AtomicUsize = AtomicUsize::new(0);
}

/// A new open, unsignalled descriptor.
pub fn open() -> i32 {
    let h = NEXT.fetch_add(1, SeqCst);
    assert!(h < MAX, "a model opened more than {MAX} descriptors");
    STATE[h].store(OPEN, SeqCst);
    h as i32
}

pub fn close(h: i32) {
    STATE[h as usize].store(CLOSED, SeqCst);
}

/// Whether `h` is open (signalled or not).
pub fn is_open(h: i32) -> bool {
    STATE[h as usize].load(SeqCst) != CLOSED
}

/// Whether `h` was signalled since it was opened.
pub fn signalled(h: i32) -> bool {
    STATE[h as usize].load(SeqCst) == SIGNALLED
}

/// The model's `signal`: the caller guarantees `h` is open.
pub fn signal(h: i32) {
    let was = STATE[h as usize].swap(SIGNALLED, SeqCst);
    assert_ne!(was, CLOSED, "a cancel signalled a closed wake descriptor");
}
