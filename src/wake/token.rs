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
//! A token may also carry a deadline (`deadline`, an instant on the
//! monotonic clock): calls on it and its descendants end at the earliest
//! deadline along the chain. It is independent of the counts: reset does
//! not clear it and it does not make the token cancelled.
//!
//! Waiters register on the token they wait on and on every ancestor, so that
//! cancelling a token, or moving its deadline earlier, wakes the waiters of
//! all its descendants without any parent-to-child links. Registration uses slots in segments that are only
//! ever appended and are freed with the token, so a concurrent cancel can scan
//! them without a lock.

use super::crowd::Crowd;
use super::waiter::Waiter;
use crate::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use crate::sync::{alloc, dealloc, try_box};
use std::alloc::Layout;
use std::ffi::c_void;
use std::ptr::{self, NonNull};

/// Slots per segment. The loom models use tiny segments so that they also
/// cover appending a segment.
pub(crate) const SLOTS: usize = if cfg!(loom) { 1 } else { 8 };

struct Segment {
    slots: [AtomicPtr<Waiter>; SLOTS],
    next: AtomicPtr<Segment>,
    /// In the first segment: the token's crowd, made when the segment
    /// first filled up (see crowd.rs). Kept here rather than in the token,
    /// so that a token nobody waited on stays six words.
    crowd: AtomicPtr<Crowd>,
}

impl Segment {
    fn new() -> Segment {
        Segment {
            slots: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            next: AtomicPtr::new(ptr::null_mut()),
            crowd: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let c = self.crowd.load(Relaxed); // exclusive: the token is gone
        if !c.is_null() {
            // SAFETY: published by `crowd_or_new` from a Box, freed once.
            drop(unsafe { Box::from_raw(c) });
        }
    }
}

/// A token's deadline when it has none.
pub(crate) const NO_DEADLINE: u64 = u64::MAX;

struct Inner {
    refs: AtomicUsize,
    cancels: AtomicU64,
    base: AtomicU64,
    /// This token's own deadline (`sys::monotonic_ns` time), or NO_DEADLINE.
    deadline: AtomicU64,
    parent: Option<Token>,
    waiters: AtomicPtr<Segment>,
    #[cfg(all(debug_assertions, not(loom)))]
    magic: std::sync::atomic::AtomicU32,
}

/// Debug builds mark tokens live or dead and keep the memory of the most
/// recently freed ones, so that a token used after its last unref is
/// reported (see `Token::is_live`) instead of corrupting memory.
#[cfg(all(debug_assertions, not(loom)))]
mod quarantine {
    use super::Inner;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    pub(super) const LIVE: u32 = 0x7273_6f6b;
    pub(super) const DEAD: u32 = 0xdead_0b0e;
    const KEEP: usize = 4096;

    /// Freed token memory, owned here alone.
    struct Freed(*mut Inner);

    // SAFETY: nothing else refers to the memory once it is here.
    unsafe impl Send for Freed {}

    /// Freed tokens, oldest first.
    static FREED: Mutex<VecDeque<Freed>> = Mutex::new(VecDeque::new());

    /// Keeps `p`; returns the token memory that may now really be freed.
    pub(super) fn keep(p: *mut Inner) -> Option<*mut Inner> {
        let mut freed = FREED.lock().unwrap_or_else(|e| e.into_inner());
        if freed.try_reserve(1).is_err() {
            return Some(p); // no memory to remember it: free it now
        }
        freed.push_back(Freed(p));
        (freed.len() > KEEP)
            .then(|| freed.pop_front())
            .flatten()
            .map(|f| f.0)
    }
}

/// A reference-counted cancellation token. (Counted by hand rather than with
/// `Arc` so that running out of memory is an error, not an abort.)
pub(crate) struct Token(NonNull<Inner>);

// SAFETY: all shared state in Inner is atomic; the parent link is immutable.
unsafe impl Send for Token {}
// SAFETY: as above.
unsafe impl Sync for Token {}

impl Clone for Token {
    fn clone(&self) -> Token {
        if self.inner().refs.fetch_add(1, Relaxed) > isize::MAX as usize {
            std::process::abort(); // as Arc does on reference-count overflow
        }
        Token(self.0)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        // Unwind long parent chains iteratively instead of recursively.
        let mut next = Some(self.0);
        while let Some(p) = next {
            // SAFETY: `p` is live while we hold the reference being released.
            // AcqRel rather than Release and a fence, which ThreadSanitizer
            // does not model.
            if unsafe { p.as_ref() }.refs.fetch_sub(1, AcqRel) != 1 {
                return;
            }
            // SAFETY: that was the last reference: nobody else can reach `p`.
            unsafe {
                let inner = p.as_ptr();
                next = (*inner)
                    .parent
                    .take()
                    .map(std::mem::ManuallyDrop::new)
                    .map(|t| t.0);
                #[cfg(all(debug_assertions, not(loom)))]
                let inner = {
                    (*inner).magic.store(quarantine::DEAD, SeqCst);
                    ptr::drop_in_place(inner);
                    match quarantine::keep(inner) {
                        Some(old) => old,
                        None => continue,
                    }
                };
                #[cfg(not(all(debug_assertions, not(loom))))]
                ptr::drop_in_place(inner);
                dealloc(inner.cast(), Layout::new::<Inner>());
            }
        }
    }
}

/// A registration slot held by a waiting thread; cleared by `Slot::release`.
pub(crate) struct Slot(*const AtomicPtr<Waiter>);

impl Slot {
    #[inline]
    pub(crate) fn release(self) {
        // SAFETY: the slot lives in a segment of a token the waiter holds a
        // reference to for the whole wait; segments are freed only with it.
        // Release: a canceller that still finds the record wakes it for
        // nothing, which every waiter allows for.
        unsafe { (*self.0).store(ptr::null_mut(), Release) }
    }
}

impl Default for Token {
    fn default() -> Self {
        Token::new()
    }
}

impl Token {
    fn inner(&self) -> &Inner {
        // SAFETY: the token holds a reference, so the allocation is live.
        unsafe { self.0.as_ref() }
    }

    fn try_alloc(cancels: u64, base: u64, parent: Option<Token>) -> Option<Token> {
        let layout = Layout::new::<Inner>();
        // SAFETY: Inner has a non-zero size.
        let p = NonNull::new(unsafe { alloc(layout) }.cast::<Inner>())?;
        let inner = Inner {
            refs: AtomicUsize::new(1),
            cancels: AtomicU64::new(cancels),
            base: AtomicU64::new(base),
            deadline: AtomicU64::new(NO_DEADLINE),
            parent,
            waiters: AtomicPtr::new(ptr::null_mut()),
            #[cfg(all(debug_assertions, not(loom)))]
            magic: std::sync::atomic::AtomicU32::new(quarantine::LIVE),
        };
        // SAFETY: `p` is a fresh allocation of Inner's layout.
        unsafe { p.as_ptr().write(inner) };
        Some(Token(p))
    }

    /// A new, uncancelled token; `None` if memory runs out. Makes no system
    /// call beyond what the allocator does.
    pub fn try_new() -> Option<Token> {
        Token::try_alloc(0, 0, None)
    }

    /// A new, uncancelled token. Aborts if memory runs out.
    pub fn new() -> Token {
        Token::try_new().unwrap_or_else(|| std::alloc::handle_alloc_error(Layout::new::<Inner>()))
    }

    /// A child: cancelled whenever this token (or an ancestor) is; born
    /// cancelled if this token is cancelled now. `None` if memory runs out.
    pub fn try_child(&self) -> Option<Token> {
        let base = self.effective_count();
        let born_cancelled = self.is_cancelled();
        Token::try_alloc(born_cancelled as u64, base, Some(self.clone()))
    }

    /// As `try_child`, aborting if memory runs out.
    #[cfg(test)]
    pub fn child(&self) -> Token {
        self.try_child()
            .unwrap_or_else(|| std::alloc::handle_alloc_error(Layout::new::<Inner>()))
    }

    /// Cancels the token and wakes every thread waiting on it or on a
    /// descendant. Async-signal-safe: atomics and one `write` per waiter.
    pub fn cancel(&self) {
        self.inner().cancels.fetch_add(1, SeqCst);
        self.wake_waiters();
    }

    /// Sets this token's own deadline to `at` (`sys::monotonic_ns` time;
    /// NO_DEADLINE clears it). Moved earlier, it wakes every thread waiting
    /// on the token or a descendant, so that each waits again until the new
    /// earliest deadline; moved later (or cleared), waiters need no wake-up:
    /// one that wakes at the old deadline finds it has not passed and waits
    /// on. Async-signal-safe: atomics and one `write` per waiter.
    pub fn set_deadline(&self, at: u64) {
        let old = self.inner().deadline.swap(at, SeqCst);
        if at < old {
            self.wake_waiters();
        }
    }

    /// The earliest deadline of this token and its ancestors, or
    /// NO_DEADLINE.
    #[inline]
    pub fn deadline(&self) -> u64 {
        let inner = self.inner();
        if inner.parent.is_none() {
            return inner.deadline.load(SeqCst); // a root: no chain to walk
        }
        self.chain_deadline()
    }

    fn chain_deadline(&self) -> u64 {
        let mut earliest = NO_DEADLINE;
        let mut t = Some(self);
        while let Some(tok) = t {
            earliest = earliest.min(tok.inner().deadline.load(SeqCst));
            t = tok.inner().parent.as_ref();
        }
        earliest
    }

    /// Signals every waiter registered on this token (so, waiting on it or
    /// on a descendant), after the caller changed what waiters check.
    fn wake_waiters(&self) {
        // The other half of the fence in `register`: either this scan finds
        // a waiter's slot, or that waiter's check finds the change.
        fence(SeqCst);
        // The token's own crowd first: one write wakes most waiters. Its
        // record is then skipped in the scan: if this wake found it closed,
        // any member of a crowd started since joins after the change, and
        // its check sees it.
        let crowd = self.crowd().map_or(ptr::null(), |c| {
            c.record().wake();
            c.record() as *const Waiter
        });
        let mut seg = self.inner().waiters.load(SeqCst);
        while !seg.is_null() {
            // SAFETY: segments are freed only when the token is, and `self`
            // holds a reference.
            let s = unsafe { &*seg };
            for slot in &s.slots {
                let w = slot.load(SeqCst);
                if !w.is_null() && w.cast_const() != crowd {
                    // SAFETY: waiter records are never freed (see waiter.rs).
                    unsafe { &*w }.wake();
                }
            }
            seg = s.next.load(SeqCst);
        }
    }

    /// Re-arms the token. A child whose parent is still cancelled stays
    /// cancelled. Linearisable with cancels and other resets: effective
    /// counts only grow, so `base` only grows too, and a reset that read
    /// the count before a cancel cannot store it over a later reset's.
    pub fn reset(&self) {
        self.inner().base.fetch_max(self.effective_count(), SeqCst);
    }

    /// (segments, occupied slots) of this token's waiter list, for tests.
    #[cfg(test)]
    pub(crate) fn slot_usage(&self) -> (usize, usize) {
        self.inner().slot_usage()
    }

    /// A number that changes whenever this token or an ancestor is cancelled.
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        let inner = self.inner();
        if inner.parent.is_none() {
            return inner.cancels.load(SeqCst);
        }
        self.effective_count()
    }

    /// A root token with no deadline that is not cancelled: its cancel
    /// count (None says nothing).
    #[inline(always)]
    pub(crate) fn root_plain_epoch(&self) -> Option<u64> {
        let inner = self.inner();
        if inner.parent.is_some() {
            return None;
        }
        let c = inner.cancels.load(SeqCst);
        (c == inner.base.load(SeqCst) && inner.deadline.load(SeqCst) == NO_DEADLINE).then_some(c)
    }

    /// Whether a call that started at `epoch` must end cancelled: the token
    /// is cancelled, or was cancelled since (even if reset again).
    #[inline]
    pub(crate) fn cancelled_since(&self, epoch: u64) -> bool {
        let inner = self.inner();
        if inner.parent.is_none() {
            // A root: its own count is its effective count (one read).
            let c = inner.cancels.load(SeqCst);
            return c != inner.base.load(SeqCst) || c != epoch;
        }
        self.is_cancelled() || self.effective_count() != epoch
    }

    fn effective_count(&self) -> u64 {
        let mut sum = 0u64;
        let mut t = Some(self);
        while let Some(tok) = t {
            sum = sum.wrapping_add(tok.inner().cancels.load(SeqCst));
            t = tok.inner().parent.as_ref();
        }
        sum
    }

    /// Whether calls on this token fail with ECANCELED.
    pub fn is_cancelled(&self) -> bool {
        let inner = self.inner();
        match &inner.parent {
            None => inner.cancels.load(SeqCst) != inner.base.load(SeqCst),
            Some(_) => self.chain_cancelled(),
        }
    }

    /// cancelled(T) = any ancestor-or-self A with S(A) != base(A), where
    /// S(A) sums the counts from A up to the root. With `total` the sum over
    /// the whole chain and `below(A)` the sum under A, S(A) = total -
    /// below(A): so T is cancelled unless base(A) + below(A) is the same for
    /// every A and equals `total`. One pass from T up, then the total read
    /// again; no allocation.
    fn chain_cancelled(&self) -> bool {
        let mut below = 0u64;
        let mut key = None;
        let mut t = Some(self);
        while let Some(tok) = t {
            let node = tok.inner();
            let k = node.base.load(SeqCst).wrapping_add(below);
            if *key.get_or_insert(k) != k {
                return true;
            }
            below = below.wrapping_add(node.cancels.load(SeqCst));
            t = node.parent.as_ref();
        }
        // Not cancelled only if no count moved during the pass (counts only
        // grow, so an unchanged total means unchanged counts): a cancel and
        // a reset elsewhere in the chain between two reads could otherwise
        // cancel each other out in the sums.
        key != Some(below) || self.effective_count() != below
    }

    /// The token's crowd, if one was ever made.
    #[inline]
    pub(crate) fn crowd(&self) -> Option<&Crowd> {
        let seg = self.inner().waiters.load(SeqCst);
        if seg.is_null() {
            return None;
        }
        // SAFETY: segments live as long as the token, and so does the
        // crowd published in the first one.
        unsafe { (*seg).crowd.load(SeqCst).as_ref() }
    }

    /// The token's crowd, made now if it has none; `None` if memory runs
    /// out (or nobody ever waited on the token).
    pub(crate) fn crowd_or_new(&self) -> Option<&Crowd> {
        if let Some(c) = self.crowd() {
            return Some(c);
        }
        let seg = self.inner().waiters.load(SeqCst);
        // SAFETY: as in `crowd`.
        let link = &unsafe { seg.as_ref() }?.crowd;
        let fresh = Box::into_raw(try_box(Crowd::new().ok()?).ok()?);
        match link.compare_exchange(ptr::null_mut(), fresh, SeqCst, SeqCst) {
            // SAFETY: published; freed with the segment.
            Ok(_) => Some(unsafe { &*fresh }),
            Err(cur) => {
                // SAFETY: `fresh` was never published; `cur` was.
                drop(unsafe { Box::from_raw(fresh) });
                Some(unsafe { &*cur })
            }
        }
    }

    /// Whether `own`, this token's slot from `register`, lies beyond the
    /// first segment: so many wait on the token that they should crowd.
    #[inline]
    pub(crate) fn crowded(&self, own: &Slot) -> bool {
        let seg = self.inner().waiters.load(SeqCst);
        if seg.is_null() {
            return false;
        }
        // SAFETY: as in `crowd`.
        let first = unsafe { &(*seg).slots };
        !first.as_ptr_range().contains(&own.0)
    }

    /// The express lane's registration (`wait_express`), for a root token:
    /// a slot in its first segment, if it has one and no crowd (which the
    /// general `register` handles, as it makes the segment). Followed by a
    /// check, as for `register`.
    #[inline(always)]
    pub(crate) fn register_express(&self, w: &'static Waiter) -> Option<Slot> {
        let seg = self.inner().waiters.load(SeqCst);
        if seg.is_null() {
            return None;
        }
        // SAFETY: published segments live as long as the token.
        let s = unsafe { &*seg };
        if !s.crowd.load(SeqCst).is_null() {
            return None;
        }
        let wp = w as *const Waiter as *mut Waiter;
        let slot = s.slots.iter().find(|slot| {
            slot.load(Relaxed).is_null()
                && slot
                    .compare_exchange(ptr::null_mut(), wp, SeqCst, SeqCst)
                    .is_ok()
        })?;
        // As in `register`.
        #[cfg(loom)]
        fence(SeqCst);
        Some(Slot(slot))
    }

    /// Registers `w` on this token and every ancestor: returns this
    /// token's slot and appends the ancestors' to `ancestors` (nothing for a
    /// root, the common case: no vector is touched). Must be followed by a
    /// check of `is_cancelled` and a read of `deadline`. Fails, with some
    /// ancestors' slots possibly appended (this token's is released), only
    /// if memory runs out.
    #[inline]
    pub(crate) fn register(
        &self,
        w: &'static Waiter,
        ancestors: &mut Vec<Slot>,
    ) -> Result<Slot, ()> {
        let wp = w as *const Waiter as *mut Waiter;
        let own = self.inner().claim_slot(wp)?;
        if let Some(parent) = &self.inner().parent {
            if parent.register_chain(wp, ancestors).is_err() {
                own.release();
                return Err(());
            }
        }
        // Slots written, then counts read (by the caller's check); `cancel`
        // writes its count, then reads slots. SeqCst operations alone forbid
        // both sides reading stale values (they have one total order, in
        // which each side's write comes before its read); the claim's
        // compare-and-swap and the check's loads are SeqCst, so this side
        // needs no fence. Loom models SeqCst accesses as AcqRel: there the
        // fence says it, and is what it checks.
        #[cfg(loom)]
        fence(SeqCst);
        Ok(own)
    }

    /// Registers `wp` on this token and every ancestor, appending the slots.
    fn register_chain(&self, wp: *mut Waiter, out: &mut Vec<Slot>) -> Result<(), ()> {
        let mut depth = 0;
        let mut t = Some(self);
        while let Some(tok) = t {
            depth += 1;
            t = tok.inner().parent.as_ref();
        }
        out.try_reserve(depth).map_err(|_| ())?;
        let mut t = Some(self);
        while let Some(tok) = t {
            out.push(tok.inner().claim_slot(wp)?);
            t = tok.inner().parent.as_ref();
        }
        Ok(())
    }

    /// Debug builds: whether `p` (a pointer the C caller passed as a token)
    /// is a live token rather than one whose last reference was released.
    ///
    /// # Safety
    /// `p` must be a token pointer from `into_raw`, live or released: debug
    /// builds keep the memory of the last 4096 released tokens allocated.
    #[cfg(all(debug_assertions, not(loom)))]
    pub(crate) unsafe fn is_live(p: *const c_void) -> bool {
        // SAFETY: per the function's contract the memory is still allocated.
        unsafe { (*p.cast::<Inner>()).magic.load(SeqCst) == quarantine::LIVE }
    }

    /// The raw pointer handed to C; owns one reference.
    pub(crate) fn into_raw(self) -> *const c_void {
        std::mem::ManuallyDrop::new(self)
            .0
            .as_ptr()
            .cast_const()
            .cast()
    }

    /// # Safety
    /// `p` must come from `into_raw` and own a reference, which is taken over.
    pub(crate) unsafe fn from_raw(p: *const c_void) -> Token {
        // SAFETY: per the function's contract `p` is a live, non-null token.
        Token(unsafe { NonNull::new_unchecked(p.cast::<Inner>().cast_mut()) })
    }

    /// # Safety
    /// `p` must come from `into_raw` and still be referenced.
    pub(crate) unsafe fn clone_raw(p: *const c_void) -> Token {
        // SAFETY: per the function's contract.
        unsafe { Token::with_raw(p, Token::clone) }
    }

    /// Runs `f` on a borrowed raw token without touching its count.
    ///
    /// # Safety
    /// `p` must come from `into_raw` and still be referenced.
    pub(crate) unsafe fn with_raw<R>(p: *const c_void, f: impl FnOnce(&Token) -> R) -> R {
        // SAFETY: per the function's contract.
        f(&*unsafe { Token::borrow_raw(p) })
    }

    /// A raw token, borrowed: its count is not touched.
    ///
    /// # Safety
    /// `p` must come from `into_raw` and stay referenced while the result
    /// lives.
    #[inline]
    pub(crate) unsafe fn borrow_raw(p: *const c_void) -> std::mem::ManuallyDrop<Token> {
        // SAFETY: per the function's contract; ManuallyDrop keeps the count.
        std::mem::ManuallyDrop::new(unsafe { Token::from_raw(p) })
    }
}

impl Inner {
    /// (segments, occupied slots), for tests.
    #[cfg(test)]
    fn slot_usage(&self) -> (usize, usize) {
        let (mut segs, mut used) = (0, 0);
        let mut seg = self.waiters.load(SeqCst);
        while !seg.is_null() {
            // SAFETY: segments live as long as the token.
            let s = unsafe { &*seg };
            segs += 1;
            used += s.slots.iter().filter(|p| !p.load(SeqCst).is_null()).count();
            seg = s.next.load(SeqCst);
        }
        (segs, used)
    }

    /// A free slot holding `w`; a new segment is appended if all are taken
    /// (`Err` if memory for it runs out).
    fn claim_slot(&self, w: *mut Waiter) -> Result<Slot, ()> {
        let mut link = &self.waiters;
        loop {
            let mut seg = link.load(SeqCst);
            if seg.is_null() {
                let fresh = Box::into_raw(try_box(Segment::new()).map_err(|_| ())?);
                match link.compare_exchange(ptr::null_mut(), fresh, SeqCst, SeqCst) {
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
                        .compare_exchange(ptr::null_mut(), w, SeqCst, SeqCst)
                        .is_ok()
                {
                    return Ok(Slot(slot));
                }
            }
            link = &s.next;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut seg = self.waiters.load(Relaxed); // exclusive: no other reference
        while !seg.is_null() {
            // SAFETY: we own the list exclusively now; each segment came from
            // Box::into_raw and is freed once.
            let b = unsafe { Box::from_raw(seg) };
            seg = b.next.load(Relaxed);
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
        // Deep enough that a recursive drop would overflow the stack; Miri,
        // which interprets slowly, checks a shorter chain for UB.
        for _ in 0..if cfg!(miri) { 200 } else { 10_000 } {
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
        // 48 bytes in release builds: six words.
        assert!(std::mem::size_of::<Inner>() <= 56);
    }

    #[test]
    fn deadlines_take_the_earliest_along_the_chain() {
        let root = Token::new();
        let child = root.child();
        assert_eq!(child.deadline(), NO_DEADLINE);
        root.set_deadline(500);
        child.set_deadline(700);
        assert_eq!(child.deadline(), 500);
        assert_eq!(root.deadline(), 500);
        child.set_deadline(300);
        assert_eq!((child.deadline(), root.deadline()), (300, 500));
        root.set_deadline(NO_DEADLINE);
        child.set_deadline(NO_DEADLINE);
        assert_eq!(child.deadline(), NO_DEADLINE);
        // Independent of cancellation and reset.
        root.set_deadline(100);
        assert!(!child.is_cancelled());
        child.cancel();
        child.reset();
        assert_eq!(child.deadline(), 100);
    }
}
