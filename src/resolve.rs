//! Cancellable name resolution. The system's getaddrinfo runs on a small
//! pool of resolver threads; the caller waits, cancellably and with a
//! deadline, on a wake descriptor of its own lookup. A lookup the caller
//! gives up on finishes in the pool, which frees its result.

use crate::shim::Call;
use crate::sys::{self, AddrList, Error, Hints, PollFd, WakeFd};
use crate::wait::{wait, Deadline};
use libc::c_int;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering::SeqCst};
use std::sync::{Arc, Once};
use std::time::Duration;

/// Most lookups running at once; later ones wait in a queue.
pub const MAX_THREADS: usize = 4;
/// A resolver thread with nothing to do exits after this long.
const IDLE_EXIT: Duration = Duration::from_secs(2);

/// Why a resolution failed.
#[derive(Debug)]
pub enum ResolveError {
    /// getaddrinfo's EAI_* code (with errno for EAI_SYSTEM).
    Lookup(c_int, i32),
    /// Cancelled, timed out, or no resources to run the lookup.
    Sys(Error),
}

impl From<Error> for ResolveError {
    fn from(e: Error) -> Self {
        ResolveError::Sys(e)
    }
}

type Outcome = std::result::Result<AddrList, (c_int, i32)>;

enum State {
    Queued,
    Running,
    Done(Outcome),
    /// The caller gave up; whoever holds the result frees it.
    Abandoned,
}

struct Job {
    node: Option<CString>,
    service: Option<CString>,
    hints: Option<Hints>,
    state: Mutex<State>,
    done: WakeFd,
}

impl Job {
    fn run(&self) {
        {
            let mut st = self.state.lock();
            if matches!(*st, State::Abandoned) {
                return; // never started: nothing to do
            }
            *st = State::Running;
        }
        let outcome = sys::getaddrinfo(
            self.node.as_deref(),
            self.service.as_deref(),
            self.hints.as_ref(),
        );
        let mut st = self.state.lock();
        if matches!(*st, State::Abandoned) {
            drop(outcome); // frees the list
        } else {
            *st = State::Done(outcome);
            // The descriptor is open: this thread holds the job.
            sys::signal(self.done.signal_handle());
        }
    }
}

struct Queue {
    jobs: VecDeque<Arc<Job>>,
    threads: usize,
    busy: usize,
}

struct Pool {
    queue: Mutex<Queue>,
    work: Condvar,
}

/// The pool; replaced by a new one in a fork() child.
static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

unsafe extern "C" fn fork_noop() {}

/// In a fork() child no resolver thread exists: the child starts a new pool
/// on its next lookup and leaves the old one (possibly locked) untouched.
unsafe extern "C" fn forget_pool_in_child() {
    POOL.store(std::ptr::null_mut(), SeqCst);
}

fn pool() -> &'static Pool {
    static FORK_HANDLER: Once = Once::new();
    FORK_HANDLER.call_once(|| sys::at_fork(fork_noop, fork_noop, forget_pool_in_child));
    let p = POOL.load(SeqCst);
    if !p.is_null() {
        // SAFETY: pools are never freed.
        return unsafe { &*p };
    }
    let new = Box::into_raw(Box::new(Pool {
        queue: Mutex::new(Queue {
            jobs: VecDeque::new(),
            threads: 0,
            busy: 0,
        }),
        work: Condvar::new(),
    }));
    match POOL.compare_exchange(std::ptr::null_mut(), new, SeqCst, SeqCst) {
        // SAFETY: just published, never freed.
        Ok(_) => unsafe { &*new },
        Err(current) => {
            // SAFETY: `new` was never shared.
            drop(unsafe { Box::from_raw(new) });
            // SAFETY: pools are never freed.
            unsafe { &*current }
        }
    }
}

impl Pool {
    fn submit(&'static self, job: Arc<Job>) -> sys::Result<()> {
        let mut q = self.queue.lock();
        q.jobs.push_back(job);
        let free = q.threads - q.busy;
        if q.jobs.len() > free && q.threads < MAX_THREADS {
            let spawned = std::thread::Builder::new()
                .name("rsock-resolver".into())
                .spawn(move || self.serve());
            match spawned {
                Ok(_) => q.threads += 1,
                Err(_) if q.threads == 0 => {
                    q.jobs.pop_back();
                    return Err(Error(sys::EAGAIN));
                }
                Err(_) => {} // the running threads will get to it
            }
        }
        self.work.notify_one();
        Ok(())
    }

    fn serve(&'static self) {
        let mut q = self.queue.lock();
        loop {
            if let Some(job) = q.jobs.pop_front() {
                q.busy += 1;
                drop(q);
                job.run();
                drop(job);
                q = self.queue.lock();
                q.busy -= 1;
            } else if self.work.wait_for(&mut q, IDLE_EXIT).timed_out() && q.jobs.is_empty() {
                q.threads -= 1;
                return;
            }
        }
    }
}

/// A numeric host and (if any) numeric service need no name service, so the
/// lookup runs on the caller's thread.
fn cannot_block(has_service: bool, hints: Option<&Hints>) -> bool {
    hints.is_some_and(|h| {
        h.flags & sys::AI_NUMERICHOST != 0 && (!has_service || h.flags & sys::AI_NUMERICSERV != 0)
    })
}

/// getaddrinfo, cancellable by `call`'s token and bounded by `dl`.
pub(crate) fn resolve(
    call: &Call,
    node: Option<CString>,
    service: Option<CString>,
    hints: Option<Hints>,
    dl: &mut Deadline,
) -> Result<AddrList, ResolveError> {
    call.check()?;
    if cannot_block(service.is_some(), hints.as_ref()) {
        return sys::getaddrinfo(node.as_deref(), service.as_deref(), hints.as_ref())
            .map_err(|(rc, errno)| ResolveError::Lookup(rc, errno));
    }
    let job = Arc::new(Job {
        node,
        service,
        hints,
        state: Mutex::new(State::Queued),
        done: WakeFd::new()?,
    });
    pool().submit(job.clone())?;
    loop {
        let mut fds = [
            PollFd {
                fd: job.done.poll_fd(),
                events: sys::POLLIN,
                revents: 0,
            },
            PollFd {
                fd: -1,
                events: 0,
                revents: 0,
            },
        ];
        let waited = wait(call, &mut fds, dl);
        let mut st = job.state.lock();
        if let Err(e) = waited {
            // A result that arrived meanwhile is freed here; a lookup still
            // queued or running is left to the pool.
            *st = State::Abandoned;
            return Err(e.into());
        }
        if matches!(*st, State::Done(_)) {
            if let State::Done(outcome) = std::mem::replace(&mut *st, State::Abandoned) {
                return outcome.map_err(|(rc, errno)| ResolveError::Lookup(rc, errno));
            }
        }
    }
}

/// Resolver threads alive now (for tests).
#[cfg(test)]
pub(crate) fn threads() -> usize {
    pool().queue.lock().threads
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Token;

    #[test]
    fn threads_start_on_demand_and_exit_when_idle() {
        let token = Token::new();
        let call = Call::enter(&token).expect("enter");
        let node = CString::new("127.0.0.1").ok();
        let mut dl = Deadline::new(5000);
        let list = resolve(&call, node, None, None, &mut dl).expect("numeric lookup");
        drop(list);
        assert!(threads() >= 1);
        let start = std::time::Instant::now();
        while threads() > 0 && start.elapsed() < IDLE_EXIT * 5 {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(threads(), 0, "idle resolver threads exit");
    }
}
