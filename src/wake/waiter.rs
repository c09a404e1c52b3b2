//! Per-thread waiters and their wake descriptors.
//!
//! A thread that has to wait takes a `Waiter` record with a wake descriptor
//! (eventfd or pipe), creates it on its first wait and keeps it until it
//! exits, so that steady-state waits create and close no descriptor and idle
//! tokens hold none. Descriptors in use are bounded by the threads that have
//! waited and are still alive.
//!
//! `rsock_cancel` may find a record in a token's slot after the thread left
//! it, so records are never freed (exiting threads return them to a pool for
//! reuse), and a record's descriptor is closed only after `closed` is set and
//! no canceller is inside `wake` (`busy` is zero). A wake that lands on a
//! record after its owner moved on is spurious and harmless: every waiter
//! re-checks its token after a wake.
//!
//! After `fork()` the child shares its inherited wake descriptors with the
//! parent, so the child marks every record closed and replaces the forking
//! thread's descriptor on its next wait.

// Under loom, records come from `model_record`: the pool and the fork
// handlers go unused.
#![cfg_attr(loom, allow(dead_code))]

use super::crowd::Crowd;
use super::token::{Slot, Token};
use crate::sync::atomic::{fence, AtomicBool, AtomicUsize};
use crate::sync::try_box;
use crate::sys;
use std::cell::{Cell, UnsafeCell};
use std::ptr;
// The process-wide lists stay on std atomics (statics); the records' own
// fields, which cancellers touch, are what the loom models check.
use std::sync::atomic as process;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::SeqCst};
use std::sync::OnceLock;

pub(crate) struct Waiter {
    busy: AtomicUsize,
    closed: AtomicBool,
    /// Whether a wake reached the descriptor since `open` (what tells a
    /// crowd's joiners that it is readable for good).
    signalled: AtomicBool,
    /// While the owner waits on the signal-wake fast path: its record
    /// there, which a wake kicks instead of signalling `handle`.
    sig: AtomicPtr<sys::fast::SigWaiter>,
    handle: sys::AtomicSocket,
    /// Link in the list of every record ever made (for the fork handler).
    next_all: AtomicPtr<Waiter>,
}

impl Waiter {
    /// A record, closed, with no descriptor.
    fn closed() -> Waiter {
        Waiter {
            busy: AtomicUsize::new(0),
            closed: AtomicBool::new(true),
            signalled: AtomicBool::new(false),
            sig: AtomicPtr::new(ptr::null_mut()),
            handle: sys::AtomicSocket::new(sys::INVALID_SOCKET),
            next_all: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Opens the record to cancellers, who will signal `handle`.
    pub(crate) fn open(&self, handle: sys::RawSocket) {
        self.handle.store(handle, SeqCst);
        self.signalled.store(false, SeqCst);
        self.closed.store(false, SeqCst);
    }

    /// Whether the record is closed to cancellers.
    #[cfg(test)]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Whether a wake reached the descriptor since `open`.
    #[inline]
    pub(crate) fn is_signalled(&self) -> bool {
        self.signalled.load(SeqCst)
    }

    /// Signals the owner's wake descriptor if it is still open.
    /// Async-signal-safe: atomics and one `write`.
    pub(crate) fn wake(&self) {
        self.busy.fetch_add(1, SeqCst);
        fence(SeqCst); // pairs with `retire`: see Token::register
        if !self.closed.load(SeqCst) {
            self.signalled.store(true, SeqCst);
            let sig = self.sig.load(SeqCst);
            if sig.is_null() {
                sys::signal(self.handle.load(SeqCst));
            } else {
                // SAFETY: signal-wake records are never freed.
                unsafe { &*sig }.kick();
            }
        }
        self.busy.fetch_sub(1, SeqCst);
    }

    /// Closes the record to cancellers and waits until none is inside
    /// `wake`: from then on the descriptor may be closed.
    pub(crate) fn retire(&self) {
        self.closed.store(true, SeqCst);
        fence(SeqCst); // pairs with `wake`
        while self.busy.load(SeqCst) != 0 {
            crate::sync::yield_now();
        }
    }
}

/// A record for a model, never freed (as records never are).
#[cfg(loom)]
pub(crate) fn model_record() -> &'static Waiter {
    Box::leak(Box::new(Waiter::closed()))
}

/// A closed record for a crowd (from the pool, or new), or ENOMEM.
#[cfg(not(loom))]
pub(crate) fn take_record() -> sys::Result<&'static Waiter> {
    match POOL.with(|free| free.pop()) {
        Some(rec) => Ok(rec),
        None => new_record(),
    }
}

#[cfg(loom)]
pub(crate) fn take_record() -> sys::Result<&'static Waiter> {
    Ok(model_record())
}

/// Returns a closed record that no slot names any more to the pool.
pub(crate) fn give_back_record(rec: &'static Waiter) {
    // Without memory to pool it, the record stays unused (but on ALL).
    POOL.with(|free| {
        if free.try_reserve(1).is_ok() {
            free.push(rec);
        }
    });
}

/// Bumped in a fork() child: what was made before belongs to threads that
/// do not exist there.
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(SeqCst)
}

/// Things free for reuse (records; crowds' spare descriptors). A spin lock
/// with no per-thread state: it is taken by the thread-exit destructor,
/// which may run after the thread's thread-local destructors (POSIX),
/// where such state would never be freed. Held only to push or pop.
pub(crate) struct FreeList<T> {
    locked: process::AtomicBool,
    records: UnsafeCell<Vec<T>>,
}

// SAFETY: `records` is only touched with `locked` held.
unsafe impl<T: Send> Sync for FreeList<T> {}

impl<T> FreeList<T> {
    pub(crate) const fn new() -> FreeList<T> {
        FreeList {
            locked: process::AtomicBool::new(false),
            records: UnsafeCell::new(Vec::new()),
        }
    }

    fn lock(&self) {
        while self
            .locked
            .compare_exchange_weak(false, true, SeqCst, SeqCst)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    fn unlock(&self) {
        self.locked.store(false, SeqCst);
    }

    fn with<R>(&self, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        self.lock();
        // SAFETY: the lock is held; `f` cannot reach the list again.
        let r = f(unsafe { &mut *self.records.get() });
        self.unlock();
        r
    }

    /// `with`, or None at once if another thread holds the lock (or held
    /// it at a fork: the list is then never used again in the child).
    pub(crate) fn try_with<R>(&self, f: impl FnOnce(&mut Vec<T>) -> R) -> Option<R> {
        self.locked
            .compare_exchange(false, true, SeqCst, SeqCst)
            .ok()?;
        // SAFETY: the lock is held; `f` cannot reach the list again.
        let r = f(unsafe { &mut *self.records.get() });
        self.unlock();
        Some(r)
    }
}

static POOL: FreeList<&'static Waiter> = FreeList::new();
static ALL: AtomicPtr<Waiter> = AtomicPtr::new(ptr::null_mut());
static CREATED: process::AtomicUsize = process::AtomicUsize::new(0);
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// How many waiter records were ever allocated (records are recycled).
#[cfg(test)]
pub(crate) fn records_created() -> usize {
    CREATED.load(SeqCst)
}

unsafe extern "C" fn before_fork() {
    POOL.lock();
}

unsafe extern "C" fn after_fork_parent() {
    POOL.unlock(); // locked by before_fork in this thread
}

/// In the child: only the forking thread exists, and every inherited wake
/// descriptor is shared with the parent. Close all records to cancellers
/// (no canceller thread survived the fork, so `busy` is stale) and bump the
/// generation so the forking thread's handle is replaced. Async-signal-safe.
unsafe extern "C" fn after_fork_child() {
    POOL.unlock(); // locked by before_fork in this (the only) thread
    FORK_GENERATION.fetch_add(1, SeqCst);
    let mut rec = ALL.load(SeqCst);
    while !rec.is_null() {
        // SAFETY: records are never freed.
        let r = unsafe { &*rec };
        r.closed.store(true, SeqCst);
        r.busy.store(0, SeqCst);
        rec = r.next_all.load(SeqCst);
    }
}

/// A new record, or ENOMEM.
fn new_record() -> sys::Result<&'static Waiter> {
    static FORK_HANDLERS: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    sys::once_ok(&FORK_HANDLERS, || {
        sys::at_fork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        )
    })?;
    let rec: &'static Waiter = Box::leak(try_box(Waiter::closed()).map_err(|_| no_memory())?);
    CREATED.fetch_add(1, SeqCst);
    let me = rec as *const Waiter as *mut Waiter;
    let mut head = ALL.load(SeqCst);
    loop {
        rec.next_all.store(head, SeqCst);
        match ALL.compare_exchange(head, me, SeqCst, SeqCst) {
            Ok(_) => return Ok(rec),
            Err(cur) => head = cur,
        }
    }
}

/// A thread's claim on a waiter record and its wake descriptor.
pub(crate) struct WaiterHandle {
    rec: &'static Waiter,
    wake: Option<sys::WakeFd>,
    /// The thread's signal-wake record, once it has used the fast path.
    sig: Option<&'static sys::fast::SigWaiter>,
    slots: Vec<Slot>,
    generation: u64,
}

impl WaiterHandle {
    fn new() -> sys::Result<WaiterHandle> {
        let wake = sys::WakeFd::new()?;
        let rec = take_record()?;
        rec.open(wake.signal_handle());
        Ok(WaiterHandle {
            rec,
            wake: Some(wake),
            sig: None,
            slots: Vec::new(),
            generation: FORK_GENERATION.load(SeqCst),
        })
    }

    /// The descriptor to poll alongside the sockets.
    #[inline]
    pub(crate) fn poll_fd(&self) -> sys::RawSocket {
        self.wake
            .as_ref()
            .map_or(sys::INVALID_SOCKET, |w| w.poll_fd())
    }

    /// The thread's waiter record.
    #[inline]
    pub(crate) fn record(&self) -> &'static Waiter {
        self.rec
    }

    #[inline]
    pub(crate) fn drain(&self) {
        if let Some(w) = &self.wake {
            w.drain();
        }
    }

    /// Registers on `token` and its ancestors until the guard is dropped
    /// (alone, or as a member of the token's crowd once many wait on it,
    /// unless `alone`); ENOMEM if memory for the registration runs out.
    #[inline]
    pub(crate) fn register<'a>(
        &'a mut self,
        token: &'a Token,
        alone: bool,
    ) -> sys::Result<Registration<'a>> {
        let mut reg = Registration {
            handle: self,
            own: None,
            crowd: None,
            token,
            kicked: false,
        };
        if alone {
            reg.register_alone()?;
            return Ok(reg);
        }
        if let Some(c) = token.crowd() {
            if c.join() {
                reg.crowd = Some(c);
                return Ok(reg);
            }
        }
        reg.register_alone()?;
        if !reg.own.as_ref().is_some_and(|s| token.crowded(s)) {
            return Ok(reg);
        }
        // The token's first segment is full: join (or start) its crowd.
        if let Some(c) = token.crowd_or_new() {
            if c.join_or_activate(token) {
                reg.release_alone();
                reg.crowd = Some(c);
            }
        }
        Ok(reg)
    }
}

impl WaiterHandle {
    /// The thread's signal-wake record, taken on first use.
    pub(crate) fn sig_waiter(&mut self) -> sys::Result<&'static sys::fast::SigWaiter> {
        match self.sig {
            Some(s) => Ok(s),
            None => Ok(*self.sig.insert(sys::fast::acquire()?)),
        }
    }

    /// Registers on `token` and its ancestors, alone, with cancels kicking
    /// `sig` (the fast path) instead of signalling the wake descriptor.
    pub(crate) fn register_kicked<'a>(
        &'a mut self,
        token: &'a Token,
        sig: &'static sys::fast::SigWaiter,
    ) -> sys::Result<Registration<'a>> {
        // Before the slots: a canceller that finds one reads this.
        self.rec.sig.store(ptr::from_ref(sig).cast_mut(), SeqCst);
        let mut reg = Registration {
            handle: self,
            own: None,
            crowd: None,
            token,
            kicked: true,
        };
        reg.register_alone()?;
        Ok(reg)
    }
}

impl WaiterHandle {
    /// In a fork() child: lets go of the wake descriptor without closing it
    /// (the handle is then dropped as usual), which the child may have closed and reused for a
    /// descriptor of its own (daemons close everything after fork). rsock
    /// never closes a number it does not own at that moment; the inherited
    /// descriptor, if still open, is close-on-exec.
    fn discard_inherited(&mut self) {
        std::mem::forget(self.wake.take());
    }
}

impl Drop for WaiterHandle {
    fn drop(&mut self) {
        self.rec.retire();
        drop(self.wake.take());
        give_back_record(self.rec);
        if let Some(sig) = self.sig.take() {
            sys::fast::release(sig);
        }
    }
}

/// A waiter registered on a token; unregisters when dropped.
pub(crate) struct Registration<'a> {
    handle: &'a mut WaiterHandle,
    /// The slot in the token itself (the ancestors' are in `handle.slots`).
    own: Option<Slot>,
    /// The token's crowd, when the waiter is one of its members instead.
    crowd: Option<&'a Crowd>,
    token: &'a Token,
    /// Made by `register_kicked`: the record points at the signal-wake
    /// record until the registration ends (so that other waits need not
    /// read the record to know).
    kicked: bool,
}

impl Registration<'_> {
    /// The descriptor to poll alongside the sockets.
    #[inline]
    pub(crate) fn poll_fd(&self) -> sys::RawSocket {
        match self.crowd {
            Some(c) => c.poll_fd(),
            None => self.handle.poll_fd(),
        }
    }

    /// After poll found `poll_fd` readable: empties the thread's own
    /// descriptor. Returns false for a crowd's, which stays readable for
    /// every member: if the call goes on waiting after its next check, it
    /// must `wait_alone` first.
    #[inline]
    pub(crate) fn drain(&self) -> bool {
        if self.crowd.is_some() {
            return false;
        }
        self.handle.drain();
        true
    }

    /// Leaves the crowd and registers alone (a member woken for a call
    /// that goes on waiting); the caller checks the token again before it
    /// sleeps.
    #[cold]
    pub(crate) fn wait_alone(&mut self) -> sys::Result<()> {
        if let Some(c) = self.crowd.take() {
            c.leave();
        }
        self.register_alone()
    }

    fn register_alone(&mut self) -> sys::Result<()> {
        // On failure, dropping the registration releases the ancestors'
        // slots already taken (`Token::register` releases the token's own).
        self.own = Some(
            self.token
                .register(self.handle.rec, &mut self.handle.slots)
                .map_err(|()| no_memory())?,
        );
        Ok(())
    }

    fn release_alone(&mut self) {
        if let Some(s) = self.own.take() {
            s.release();
        }
        if !self.handle.slots.is_empty() {
            for s in self.handle.slots.drain(..) {
                s.release();
            }
        }
    }
}

impl Drop for Registration<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(c) = self.crowd.take() {
            // A member holds no slot of its own (the thread's record, and
            // so its slots, are not touched: they are cold in a thread woken
            // with a thousand others).
            debug_assert!(self.own.is_none() && self.handle.slots.is_empty() && !self.kicked);
            c.leave();
            return;
        }
        self.release_alone();
        if self.kicked {
            // A cancel that found a slot before its release may still kick
            // (or, from now on, signal the descriptor): a spurious wake-up.
            self.handle.rec.sig.store(ptr::null_mut(), SeqCst);
        }
    }
}

// The thread's handle lives in a const thread-local (usable at any point of
// thread teardown) and is freed by a thread-exit destructor (a pthread key's,
// or on Windows a fiber-local-storage callback, which runs before the
// thread's thread-local destructors). A wait after that, from a later
// destructor, uses a handle of its own that it closes when it returns.
thread_local! {
    static CURRENT: Cell<*mut WaiterHandle> = const { Cell::new(ptr::null_mut()) };
    static IN_USE: Cell<bool> = const { Cell::new(false) };
    static EXITED: Cell<bool> = const { Cell::new(false) };
}

unsafe extern "C" fn free_thread_waiter(p: *mut std::ffi::c_void) {
    EXITED.with(|e| e.set(true));
    CURRENT.with(|c| c.set(ptr::null_mut()));
    // SAFETY: `p` is the Box this thread leaked in `thread_handle`.
    drop(unsafe { Box::from_raw(p.cast::<WaiterHandle>()) });
}

fn no_memory() -> sys::Error {
    sys::Error(sys::ENOMEM)
}

fn thread_key() -> Option<&'static sys::ThreadKey> {
    static KEY: OnceLock<Option<sys::ThreadKey>> = OnceLock::new();
    KEY.get_or_init(|| sys::ThreadKey::new(free_thread_waiter).ok())
        .as_ref()
}

/// The calling thread's handle, created (or, after fork, replaced) as needed.
#[inline(always)]
fn thread_handle() -> sys::Result<*mut WaiterHandle> {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: a non-null CURRENT is this thread's live handle.
    if !p.is_null() && unsafe { (*p).generation } == FORK_GENERATION.load(SeqCst) {
        return Ok(p);
    }
    new_thread_handle(p)
}

/// `thread_handle` on the thread's first wait, or its first after fork()
/// (`p`: the stale handle, or null).
#[cold]
fn new_thread_handle(p: *mut WaiterHandle) -> sys::Result<*mut WaiterHandle> {
    let key = thread_key().ok_or_else(no_memory)?;
    let fresh = Box::into_raw(try_box(WaiterHandle::new()?).map_err(|_| no_memory())?);
    if !p.is_null() {
        // SAFETY: the stale handle from before fork() is ours alone; its
        // record was closed by the fork handler, so dropping cannot spin.
        let mut stale = unsafe { Box::from_raw(p) };
        stale.discard_inherited();
    }
    if let Err(e) = key.set(fresh.cast()) {
        // Without the key its exit destructor would never run.
        // SAFETY: `fresh` was never shared.
        drop(unsafe { Box::from_raw(fresh) });
        CURRENT.with(|c| c.set(ptr::null_mut()));
        return Err(e);
    }
    CURRENT.with(|c| c.set(fresh));
    Ok(fresh)
}

/// Runs `f` with the calling thread's waiter, creating it on first use.
/// (`f` is called in one place only, so that it is inlined.)
#[inline(always)]
pub(crate) fn with_waiter<R>(
    f: impl FnOnce(&mut WaiterHandle) -> sys::Result<R>,
) -> sys::Result<R> {
    let mut temp = None;
    // Not once the thread's exit destructor has run (a handle stored now
    // would never be freed), nor re-entered (not reachable through the
    // API, which allows one call per thread): then a temporary waiter.
    let claimed = !EXITED.with(|e| e.get()) && !IN_USE.with(|u| u.replace(true));
    let handle = if claimed {
        match thread_handle() {
            // SAFETY: the handle belongs to this thread and IN_USE
            // guarantees no other reference to it exists while `f` runs.
            Ok(p) => unsafe { &mut *p },
            Err(e) => {
                IN_USE.with(|u| u.set(false));
                return Err(e);
            }
        }
    } else {
        temp.insert(WaiterHandle::new()?)
    };
    let r = f(handle);
    if claimed {
        IN_USE.with(|u| u.set(false));
    }
    r
}

#[cfg(test)]
mod exit_order_tests {
    use crate::wake::{wait_one, Call, Token};
    use std::cell::RefCell;

    /// One wait that finds nothing, as a call with timeout 0 makes.
    fn wait_once(sock: crate::sys::RawSocket) {
        let t = Token::new();
        let (call, mut dl) = Call::start(&t, 0).expect("call");
        let _ = wait_one(&call, sock, crate::sys::POLLIN, &mut dl);
    }

    /// Waits once when dropped: at thread exit, after the thread's own
    /// exit destructor may have run (on Windows it runs first).
    struct WaitsOnDrop(crate::sys::RawSocket);

    impl Drop for WaitsOnDrop {
        fn drop(&mut self) {
            wait_once(self.0);
        }
    }

    thread_local! {
        static AT_EXIT: RefCell<Option<WaitsOnDrop>> = const { RefCell::new(None) };
    }

    /// A wait from a thread-local destructor leaves nothing behind: 20
    /// threads that wait and then wait again at exit reuse their records
    /// (under Wine, before the fix, each leaked one with its wake socket).
    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn waits_in_thread_local_destructors_leak_nothing() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
        #[cfg(unix)]
        let s = std::os::unix::io::AsRawFd::as_raw_fd(&sock);
        #[cfg(windows)]
        let s = std::os::windows::io::AsRawSocket::as_raw_socket(&sock) as crate::sys::RawSocket;
        let run = || {
            std::thread::spawn(move || {
                wait_once(s);
                AT_EXIT.with(|d| *d.borrow_mut() = Some(WaitsOnDrop(s)));
            })
            .join()
            .expect("thread")
        };
        run();
        let before = super::records_created();
        for _ in 0..20 {
            run();
        }
        let made = super::records_created() - before;
        assert!(made <= 2, "20 exiting threads made {made} new records");
    }
}
