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

use crate::sys;
use crate::token::{Slot, Token};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::SeqCst};

pub(crate) struct Waiter {
    busy: AtomicUsize,
    closed: AtomicBool,
    handle: AtomicI32,
}

impl Waiter {
    /// Signals the owner's wake descriptor if it is still open.
    /// Async-signal-safe: atomics and one `write`.
    pub(crate) fn wake(&self) {
        self.busy.fetch_add(1, SeqCst);
        if !self.closed.load(SeqCst) {
            sys::signal(self.handle.load(SeqCst));
        }
        self.busy.fetch_sub(1, SeqCst);
    }
}

static POOL: Mutex<Vec<&'static Waiter>> = Mutex::new(Vec::new());
static CREATED: AtomicUsize = AtomicUsize::new(0);

/// How many waiter records were ever allocated (records are recycled).
#[cfg(test)]
pub(crate) fn records_created() -> usize {
    CREATED.load(SeqCst)
}

/// A thread's claim on a waiter record and its wake descriptor.
pub(crate) struct WaiterHandle {
    rec: &'static Waiter,
    wake: Option<sys::WakeFd>,
    slots: Vec<Slot>,
}

impl WaiterHandle {
    fn new() -> sys::Result<WaiterHandle> {
        let wake = sys::WakeFd::new()?;
        let rec = POOL.lock().pop().unwrap_or_else(|| {
            CREATED.fetch_add(1, SeqCst);
            Box::leak(Box::new(Waiter {
                busy: AtomicUsize::new(0),
                closed: AtomicBool::new(true),
                handle: AtomicI32::new(-1),
            }))
        });
        rec.handle.store(wake.signal_handle(), SeqCst);
        rec.closed.store(false, SeqCst);
        Ok(WaiterHandle {
            rec,
            wake: Some(wake),
            slots: Vec::new(),
        })
    }

    /// The descriptor to poll alongside the sockets.
    pub(crate) fn poll_fd(&self) -> sys::RawSocket {
        self.wake.as_ref().map_or(-1, |w| w.poll_fd())
    }

    pub(crate) fn drain(&self) {
        if let Some(w) = &self.wake {
            w.drain();
        }
    }

    /// Registers on `token` and its ancestors until the guard is dropped.
    pub(crate) fn register<'a>(&'a mut self, token: &'a Token) -> Registration<'a> {
        token.register(self.rec, &mut self.slots);
        Registration {
            handle: self,
            _token: token,
        }
    }
}

impl Drop for WaiterHandle {
    fn drop(&mut self) {
        self.rec.closed.store(true, SeqCst);
        while self.rec.busy.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        drop(self.wake.take());
        POOL.lock().push(self.rec);
    }
}

/// A waiter registered on a token; unregisters when dropped.
pub(crate) struct Registration<'a> {
    handle: &'a mut WaiterHandle,
    _token: &'a Token,
}

impl Registration<'_> {
    pub(crate) fn poll_fd(&self) -> sys::RawSocket {
        self.handle.poll_fd()
    }
    pub(crate) fn drain(&self) {
        self.handle.drain()
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        for s in self.handle.slots.drain(..) {
            s.release();
        }
    }
}

thread_local! {
    static WAITER: RefCell<Option<WaiterHandle>> = const { RefCell::new(None) };
}

/// Runs `f` with the calling thread's waiter, creating it on first use.
/// During thread teardown (or on re-entry) a temporary waiter is used.
pub(crate) fn with_waiter<R>(
    f: impl FnOnce(&mut WaiterHandle) -> sys::Result<R>,
) -> sys::Result<R> {
    let mut f = Some(f);
    let res = WAITER.try_with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return None;
        };
        if slot.is_none() {
            match WaiterHandle::new() {
                Ok(h) => *slot = Some(h),
                Err(e) => return Some(Err(e)),
            }
        }
        let h = slot.as_mut()?;
        let f = f.take()?;
        Some(f(h))
    });
    match (res, f.take()) {
        (Ok(Some(r)), _) => r,
        (_, Some(f)) => f(&mut WaiterHandle::new()?),
        (_, None) => Err(sys::Error(sys::ENOTRECOVERABLE)),
    }
}
