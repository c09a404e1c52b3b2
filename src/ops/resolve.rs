//! Cancellable name resolution. The system's getaddrinfo runs on a small
//! pool of resolver threads; the caller waits, cancellably and with a
//! deadline, on a wake descriptor of its own lookup. A lookup the caller
//! gives up on finishes in the pool, which frees its result.

use crate::sync::try_box;
use crate::sys::{self, AddrList, Error, Hints, WakeFd};
use crate::wake::{wait, Call, Deadline, Token};
use libc::{c_int, c_void};
use std::collections::VecDeque;
use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex, MutexGuard};
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

/// The pool's threads are plain system threads with no thread-local state
/// of ours (std's Mutex and Condvar keep none), so a fork() child, in which
/// they do not exist, has nothing of theirs to leak. A panic cannot happen
/// while these are held; if one did, the data is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Job {
    /// The names, each with its terminating NUL.
    node: Option<Vec<u8>>,
    service: Option<Vec<u8>>,
    hints: Option<Hints>,
    shared: Mutex<Shared>,
}

/// A copy of `s` with its NUL, or ENOMEM (where `to_owned` would abort).
fn try_copy(s: &CStr) -> sys::Result<Vec<u8>> {
    let bytes = s.to_bytes_with_nul();
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len())
        .map_err(|_| Error(sys::ENOMEM))?;
    v.extend_from_slice(bytes);
    Ok(v)
}

fn as_cstr(v: &Option<Vec<u8>>) -> Option<&CStr> {
    v.as_deref().and_then(|b| CStr::from_bytes_with_nul(b).ok())
}

/// A job shared by its caller and the pool. Counted by hand rather than
/// with `Arc` so that running out of memory is an error, not an abort.
struct JobRef(NonNull<Counted>);

struct Counted {
    refs: AtomicUsize,
    job: Job,
}

// SAFETY: the job's mutable state is behind its Mutex; the rest is read-only.
unsafe impl Send for JobRef {}

impl JobRef {
    fn new(job: Job) -> sys::Result<JobRef> {
        let counted = try_box(Counted {
            refs: AtomicUsize::new(1),
            job,
        })
        .map_err(|_| Error(sys::ENOMEM))?;
        Ok(JobRef(NonNull::from(Box::leak(counted))))
    }

    fn share(&self) -> JobRef {
        // SAFETY: `self` holds a reference, so the job is live.
        unsafe { self.0.as_ref() }.refs.fetch_add(1, Relaxed);
        JobRef(self.0)
    }

    fn same(&self, other: &JobRef) -> bool {
        self.0 == other.0
    }
}

impl std::ops::Deref for JobRef {
    type Target = Job;
    fn deref(&self) -> &Job {
        // SAFETY: `self` holds a reference, so the job is live.
        &unsafe { self.0.as_ref() }.job
    }
}

impl Drop for JobRef {
    fn drop(&mut self) {
        // AcqRel rather than Release and a fence, which ThreadSanitizer
        // does not model.
        // SAFETY: `self` holds a reference, so the job is live.
        if unsafe { self.0.as_ref() }.refs.fetch_sub(1, AcqRel) == 1 {
            // SAFETY: that was the last reference; the box came from `new`.
            drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        }
    }
}

struct Shared {
    state: State,
    /// Signalled when the result is in. The caller takes it out (and closes
    /// it) when it stops waiting, so the descriptor never outlives the call.
    done: Option<WakeFd>,
}

impl Job {
    fn run(&self) {
        {
            let mut sh = lock(&self.shared);
            if matches!(sh.state, State::Abandoned) {
                return; // never started: nothing to do
            }
            sh.state = State::Running;
        }
        let outcome = sys::getaddrinfo(
            as_cstr(&self.node),
            as_cstr(&self.service),
            self.hints.as_ref(),
        );
        let mut sh = lock(&self.shared);
        if matches!(sh.state, State::Abandoned) {
            drop(sh);
            drop(outcome); // frees the list
        } else {
            sh.state = State::Done(outcome);
            if let Some(done) = &sh.done {
                sys::signal(done.signal_handle());
            }
        }
    }
}

struct Queue {
    jobs: VecDeque<JobRef>,
    threads: usize,
    busy: usize,
}

struct Pool {
    queue: Mutex<Queue>,
    work: Condvar,
    /// The pool this process inherited through fork(), kept reachable.
    _inherited: AtomicPtr<Pool>,
}

/// The pool; replaced by a new one in a fork() child.
static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());
/// A fork() child's inherited pool, until the child starts its own.
static INHERITED: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

/// In a fork() child no resolver thread exists: the child starts a new pool
/// on its next lookup and leaves the old one (possibly locked) untouched.
/// The old one cannot be freed safely; the new one keeps it reachable.
unsafe extern "C" fn forget_pool_in_child() {
    let old = POOL.swap(std::ptr::null_mut(), SeqCst);
    if !old.is_null() {
        INHERITED.store(old, SeqCst);
    }
}

fn pool() -> sys::Result<&'static Pool> {
    static FORK_HANDLER: Mutex<bool> = Mutex::new(false);
    sys::once_ok(&FORK_HANDLER, || {
        sys::at_fork(None, None, Some(forget_pool_in_child))
    })?;
    let p = POOL.load(SeqCst);
    if !p.is_null() {
        // SAFETY: pools are never freed.
        return Ok(unsafe { &*p });
    }
    let new = Box::into_raw(
        try_box(Pool {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                threads: 0,
                busy: 0,
            }),
            work: Condvar::new(),
            _inherited: AtomicPtr::new(INHERITED.load(SeqCst)),
        })
        .map_err(|_| Error(sys::ENOMEM))?,
    );
    match POOL.compare_exchange(std::ptr::null_mut(), new, SeqCst, SeqCst) {
        // SAFETY: just published, never freed.
        Ok(_) => Ok(unsafe { &*new }),
        Err(current) => {
            // SAFETY: `new` was never shared.
            drop(unsafe { Box::from_raw(new) });
            // SAFETY: pools are never freed.
            Ok(unsafe { &*current })
        }
    }
}

impl Pool {
    fn submit(&'static self, job: JobRef) -> sys::Result<()> {
        let mut q = lock(&self.queue);
        q.jobs.try_reserve(1).map_err(|_| Error(sys::ENOMEM))?;
        q.jobs.push_back(job);
        let free = q.threads - q.busy;
        if q.jobs.len() > free && q.threads < MAX_THREADS {
            match sys::spawn_thread(serve_thread, (self as *const Pool).cast_mut().cast()) {
                Ok(()) => q.threads += 1,
                Err(e) if q.threads == 0 => {
                    q.jobs.pop_back();
                    return Err(e);
                }
                Err(_) => {} // the running threads will get to it
            }
        }
        self.work.notify_one();
        Ok(())
    }

    /// Takes an abandoned job out of the queue, if still there, so that it
    /// holds no memory and no later lookup waits behind it.
    fn withdraw(&self, job: &JobRef) {
        lock(&self.queue).jobs.retain(|j| !j.same(job));
    }

    fn serve(&'static self) {
        let mut q = lock(&self.queue);
        loop {
            if let Some(job) = q.jobs.pop_front() {
                q.busy += 1;
                drop(q);
                job.run();
                drop(job);
                q = lock(&self.queue);
                q.busy -= 1;
            } else {
                let (guard, waited) = self
                    .work
                    .wait_timeout(q, IDLE_EXIT)
                    .unwrap_or_else(|e| e.into_inner());
                q = guard;
                if waited.timed_out() && q.jobs.is_empty() {
                    q.threads -= 1;
                    return;
                }
            }
        }
    }
}

/// A resolver thread's body.
extern "C" fn serve_thread(pool: *mut c_void) -> *mut c_void {
    // SAFETY: `pool` is the `&'static Pool` passed by `submit`.
    let pool: &'static Pool = unsafe { &*pool.cast::<Pool>() };
    // No panic may unwind out of a thread start routine.
    let _ = std::panic::catch_unwind(|| pool.serve());
    std::ptr::null_mut()
}

/// A numeric host and (if any) numeric service need no name service, so the
/// lookup runs on the caller's thread: with AI_NUMERICHOST (and
/// AI_NUMERICSERV), or when the host is an IPv4 or IPv6 address literal (as
/// `inet_pton` takes it) and the service a port number, unless a canonical
/// name is asked for.
fn cannot_block(node: Option<&CStr>, service: Option<&CStr>, hints: Option<&Hints>) -> bool {
    let flags = hints.map_or(0, |h| h.flags);
    let numeric_host = flags & sys::AI_NUMERICHOST != 0
        || (flags & sys::AI_CANONNAME == 0
            && node.is_some_and(|n| {
                n.to_str()
                    .is_ok_and(|n| n.parse::<std::net::IpAddr>().is_ok())
            }));
    let numeric_service = service.map_or(true, |s| {
        flags & sys::AI_NUMERICSERV != 0
            || (!s.is_empty()
                && s.to_bytes().len() <= 5
                && s.to_bytes().iter().all(u8::is_ascii_digit))
    });
    numeric_host && numeric_service
}

/// `getaddrinfo`, cancellable, with a timeout.
pub fn getaddrinfo(
    token: &Token,
    node: Option<&CStr>,
    service: Option<&CStr>,
    hints: Option<Hints>,
    timeout_ms: i32,
) -> Result<AddrList, ResolveError> {
    // The system's resolver may reach cancellation points (see
    // sys::CallDefer); dropped last, after the call.
    let _defer = sys::DeferCancel::new();
    let (call, mut dl) = Call::start(token, timeout_ms)?;
    resolve(&call, node, service, hints, &mut dl)
}

/// getaddrinfo, cancellable by `call`'s token and bounded by `dl`.
pub(crate) fn resolve(
    call: &Call,
    node: Option<&CStr>,
    service: Option<&CStr>,
    hints: Option<Hints>,
    dl: &mut Deadline,
) -> Result<AddrList, ResolveError> {
    call.check()?;
    if cannot_block(node, service, hints.as_ref()) {
        return sys::getaddrinfo(node, service, hints.as_ref())
            .map_err(|(rc, errno)| ResolveError::Lookup(rc, errno));
    }
    let done = WakeFd::new()?;
    let done_fd = done.poll_fd();
    let job = JobRef::new(Job {
        node: node.map(try_copy).transpose()?,
        service: service.map(try_copy).transpose()?,
        hints,
        shared: Mutex::new(Shared {
            state: State::Queued,
            done: Some(done),
        }),
    })?;
    let pool = pool()?;
    pool.submit(job.share())?;
    loop {
        let mut fds = [
            sys::poll_entry(done_fd, sys::POLLIN),
            sys::poll_entry(sys::INVALID_SOCKET, 0),
        ];
        let waited = wait(call, &mut fds, dl);
        let sh = lock(&job.shared);
        if let Err(e) = waited {
            // A result that arrived meanwhile is freed here; a running lookup
            // is left to the pool, which frees its result; a queued one is
            // taken out of the queue.
            if matches!(abandon(sh), State::Queued) {
                pool.withdraw(&job);
            }
            return Err(e.into());
        }
        if matches!(sh.state, State::Done(_)) {
            if let State::Done(outcome) = abandon(sh) {
                return outcome.map_err(|(rc, errno)| ResolveError::Lookup(rc, errno));
            }
        }
    }
}

/// The caller stops waiting: the job is abandoned and its descriptor closed
/// (the pool signals it only under the lock, and never once abandoned).
/// Returns the state it was in.
fn abandon(mut sh: MutexGuard<'_, Shared>) -> State {
    let state = std::mem::replace(&mut sh.state, State::Abandoned);
    let done = sh.done.take();
    drop(sh);
    drop(done);
    state
}

/// Resolver threads alive now (for tests).
#[cfg(test)]
pub(crate) fn threads() -> usize {
    pool().map_or(0, |p| lock(&p.queue).threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn threads_start_on_demand_and_exit_when_idle() {
        let token = Token::new();
        let call = Call::enter(&token).expect("enter");
        let mut dl = Deadline::new(5000);
        let list = resolve(&call, Some(c"localhost"), None, None, &mut dl).expect("lookup");
        drop(list);
        assert!(threads() >= 1);
        let start = std::time::Instant::now();
        while threads() > 0 && start.elapsed() < IDLE_EXIT * 5 {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(threads(), 0, "idle resolver threads exit");
    }
}
