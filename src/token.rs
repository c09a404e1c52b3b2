//! Cancellation tokens.
//!
//! State is kept in monotonic counters so that cancel needs nothing but
//! atomics: `cancels` counts this token's own cancels, and a token's
//! *effective* count is the sum of its own and all its ancestors' counts.
//! `base` is the effective count at the last reset (or at birth). A token is
//! cancelled when its effective count moved past `base` (it or an ancestor was
//! cancelled since its last reset), or when its parent is cancelled now (so a
//! reset child of a still-cancelled parent stays cancelled).
//!
//! Waiters register on the token they wait on and on every ancestor, so that
//! cancelling a token wakes the waiters of all its descendants without any
//! parent-to-child links. Registration uses slots in segments that are only
//! ever appended and are freed with the token, so a concurrent cancel can scan
//! them without a lock.

use crate::waiter::Waiter;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};
use std::sync::Arc;

const SLOTS: usize = 8;

struct Segment {
    slots: [AtomicPtr<Waiter>; SLOTS],
    next: AtomicPtr<Segment>,
}

impl Segment {
    fn new() -> Segment {
        Segment {
            slots: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

pub(crate) struct Inner {
    cancels: AtomicU64,
    base: AtomicU64,
    parent: Option<Token>,
    waiters: AtomicPtr<Segment>,
}

/// A reference-counted cancellation token.
#[derive(Clone)]
pub struct Token(Arc<Inner>);

/// A registration slot held by a waiting thread; cleared by `Slot::release`.
pub(crate) struct Slot(*const AtomicPtr<Waiter>);

impl Slot {
    pub(crate) fn release(self) {
        // SAFETY: the slot lives in a segment of a token the waiter holds a
        // reference to for the whole wait; segments are freed only with it.
        unsafe { (*self.0).store(ptr::null_mut(), SeqCst) }
    }
}

impl Default for Token {
    fn default() -> Self {
        Token::new()
    }
}

impl Token {
    /// A new, uncancelled token. Makes no system call.
    pub fn new() -> Token {
        Token(Arc::new(Inner {
            cancels: AtomicU64::new(0),
            base: AtomicU64::new(0),
            parent: None,
            waiters: AtomicPtr::new(ptr::null_mut()),
        }))
    }

    /// A child: cancelled whenever this token (or an ancestor) is; born
    /// cancelled if this token is cancelled now.
    pub fn child(&self) -> Token {
        let base = self.effective_count();
        let born_cancelled = self.is_cancelled();
        Token(Arc::new(Inner {
            cancels: AtomicU64::new(born_cancelled as u64),
            base: AtomicU64::new(base),
            parent: Some(self.clone()),
            waiters: AtomicPtr::new(ptr::null_mut()),
        }))
    }

    /// Cancels the token and wakes every thread waiting on it or on a
    /// descendant. Async-signal-safe: atomics and one `write` per waiter.
    pub fn cancel(&self) {
        self.0.cancels.fetch_add(1, SeqCst);
        let mut seg = self.0.waiters.load(SeqCst);
        while !seg.is_null() {
            // SAFETY: segments are freed only when the token is, and `self`
            // holds a reference.
            let s = unsafe { &*seg };
            for slot in &s.slots {
                let w = slot.load(SeqCst);
                if !w.is_null() {
                    // SAFETY: waiter records are never freed (see waiter.rs).
                    unsafe { &*w }.wake();
                }
            }
            seg = s.next.load(SeqCst);
        }
    }

    /// Re-arms the token. A child whose parent is still cancelled stays
    /// cancelled.
    pub fn reset(&self) {
        self.0.base.store(self.effective_count(), SeqCst);
    }

    fn effective_count(&self) -> u64 {
        let mut sum = 0u64;
        let mut t = Some(self);
        while let Some(tok) = t {
            sum = sum.wrapping_add(tok.0.cancels.load(SeqCst));
            t = tok.0.parent.as_ref();
        }
        sum
    }

    /// Whether calls on this token fail with ECANCELED.
    pub fn is_cancelled(&self) -> bool {
        let inner = &*self.0;
        match &inner.parent {
            None => inner.cancels.load(SeqCst) != inner.base.load(SeqCst),
            Some(_) => self.chain_cancelled(),
        }
    }

    /// cancelled(T) = any ancestor-or-self A with sum of counts from A up to
    /// the root != base(A). Evaluated root-first with one read of each count.
    fn chain_cancelled(&self) -> bool {
        let mut near: [&Inner; 16] = [&self.0; 16];
        let mut far: Vec<&Inner> = Vec::new();
        let mut n = 0;
        let mut t = Some(self);
        while let Some(tok) = t {
            if n < near.len() {
                near[n] = &tok.0;
            } else {
                far.push(&tok.0);
            }
            n += 1;
            t = tok.0.parent.as_ref();
        }
        let mut sum = 0u64;
        let root_first = far
            .iter()
            .rev()
            .chain(near[..n.min(near.len())].iter().rev());
        for node in root_first {
            sum = sum.wrapping_add(node.cancels.load(SeqCst));
            if sum != node.base.load(SeqCst) {
                return true;
            }
        }
        false
    }

    /// Registers `w` on this token and every ancestor, appending the slots
    /// to `out`. Must be followed by a check of `is_cancelled`.
    pub(crate) fn register(&self, w: &'static Waiter, out: &mut Vec<Slot>) {
        let wp = w as *const Waiter as *mut Waiter;
        let mut t = Some(self);
        while let Some(tok) = t {
            out.push(tok.0.claim_slot(wp));
            t = tok.0.parent.as_ref();
        }
    }

    /// The raw pointer handed to C; owns one reference.
    pub(crate) fn into_raw(self) -> *const Inner {
        Arc::into_raw(self.0)
    }

    /// # Safety
    /// `p` must come from `into_raw` and own a reference, which is taken over.
    pub(crate) unsafe fn from_raw(p: *const Inner) -> Token {
        // SAFETY: per the function's contract.
        Token(unsafe { Arc::from_raw(p) })
    }

    /// # Safety
    /// `p` must come from `into_raw` and still be referenced.
    pub(crate) unsafe fn clone_raw(p: *const Inner) -> Token {
        // SAFETY: per the function's contract the count is at least 1.
        unsafe {
            Arc::increment_strong_count(p);
            Token(Arc::from_raw(p))
        }
    }

    /// Runs `f` on a borrowed raw token without touching its count.
    ///
    /// # Safety
    /// `p` must come from `into_raw` and still be referenced.
    pub(crate) unsafe fn with_raw<R>(p: *const Inner, f: impl FnOnce(&Token) -> R) -> R {
        // SAFETY: per the function's contract; ManuallyDrop keeps the count.
        let t = std::mem::ManuallyDrop::new(Token(unsafe { Arc::from_raw(p) }));
        f(&t)
    }
}

impl Inner {
    fn claim_slot(&self, w: *mut Waiter) -> Slot {
        let mut link = &self.waiters;
        loop {
            let mut seg = link.load(Acquire);
            if seg.is_null() {
                let fresh = Box::into_raw(Box::new(Segment::new()));
                match link.compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire) {
                    Ok(_) => seg = fresh,
                    Err(cur) => {
                        // SAFETY: `fresh` was never published.
                        drop(unsafe { Box::from_raw(fresh) });
                        seg = cur;
                    }
                }
            }
            // SAFETY: published segments live as long as the token.
            let s = unsafe { &*seg };
            for slot in &s.slots {
                if slot.load(Relaxed).is_null()
                    && slot
                        .compare_exchange(ptr::null_mut(), w, SeqCst, Relaxed)
                        .is_ok()
                {
                    return Slot(slot);
                }
            }
            link = &s.next;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut seg = *self.waiters.get_mut();
        while !seg.is_null() {
            // SAFETY: we own the list exclusively now; each segment came from
            // Box::into_raw and is freed once.
            let b = unsafe { Box::from_raw(seg) };
            seg = b.next.load(Relaxed);
        }
        // Unwind long parent chains iteratively instead of recursively.
        let mut parent = self.parent.take();
        while let Some(p) = parent {
            parent = match Arc::into_inner(p.0) {
                Some(mut inner) => inner.parent.take(),
                None => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_is_sticky_until_reset() {
        let t = Token::new();
        assert!(!t.is_cancelled());
        t.cancel();
        assert!(t.is_cancelled());
        assert!(t.is_cancelled());
        t.reset();
        assert!(!t.is_cancelled());
    }

    #[test]
    fn children_follow_ancestors() {
        let root = Token::new();
        let child = root.child();
        let grand = child.child();
        child.cancel();
        assert!(!root.is_cancelled());
        assert!(child.is_cancelled() && grand.is_cancelled());
        child.reset();
        assert!(!child.is_cancelled());
        // The grandchild saw the cancel and keeps it until its own reset.
        assert!(grand.is_cancelled());
        grand.reset();
        assert!(!grand.is_cancelled());
        root.cancel();
        assert!(child.is_cancelled() && grand.is_cancelled());
    }

    #[test]
    fn child_born_cancelled_and_reset_under_cancelled_parent() {
        let root = Token::new();
        root.cancel();
        let child = root.child();
        assert!(child.is_cancelled());
        child.reset();
        assert!(child.is_cancelled(), "parent still cancelled");
        root.reset();
        assert!(!child.is_cancelled());
        let born = {
            root.cancel();
            let c = root.child();
            root.reset();
            c
        };
        assert!(born.is_cancelled(), "born cancelled is sticky");
    }

    #[test]
    fn deep_chain_and_iterative_drop() {
        let root = Token::new();
        let mut t = root.clone();
        for _ in 0..10_000 {
            t = t.child();
        }
        assert!(!t.is_cancelled());
        root.cancel();
        assert!(t.is_cancelled());
        drop(root);
        drop(t);
    }

    #[test]
    fn idle_token_is_small() {
        assert!(std::mem::size_of::<Inner>() + 16 <= 64);
    }
}
