//! A crowd: one wake descriptor shared by the many waiters of one token.
//!
//! Alone, each waiter registers its own record in a slot of the token, and
//! a cancel writes each record's descriptor: with a thousand waiters, a
//! thousand writes. Once a token's first segment of slots is full, further
//! waiters instead join the token's crowd: a record of its own, registered
//! on the token and every ancestor like one waiter, whose descriptor all
//! members poll. A cancel of the token or of an ancestor then wakes them
//! all with one write.
//!
//! - **Lazy, and no descriptor when idle.** The first member activates the
//!   crowd (creates its descriptor, registers its record); the last one to
//!   leave deactivates it (releases the slots, closes the record to
//!   cancellers, gives the descriptor back: emptied, it is kept for the
//!   next crowd, at most `SPARES` in the process, or closed). `members` counts them; it moves
//!   between 0 and 1 only under `lock`, held by waiters only, never by
//!   cancellers, so `cancel` stays lock-free. Other joins and leaves are
//!   one compare-and-swap between non-zero counts.
//! - **Never drained.** A signalled crowd stays readable for every member
//!   (draining it could hide the wake-up from a member that has checked
//!   the token but not yet polled). A member that wakes and finds its call
//!   must go on waiting (a deadline moved, or a wake-up from before a
//!   reset) leaves the crowd and waits alone; nobody joins a crowd whose
//!   record was signalled. So a stale crowd empties, and the next crowd
//!   starts with an empty descriptor.
//! - **Fork.** In a child, a crowd made before the fork is never joined
//!   again (its count and lock belong to threads that do not exist there)
//!   and its inherited descriptor is never closed by rsock.

use super::token::{Slot, Token};
use super::waiter::{fork_generation, give_back_record, take_record, Waiter};
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use crate::sys;
use std::cell::UnsafeCell;

/// The crowd's descriptor: a real wake descriptor, or under loom the
/// model's.
#[cfg(not(loom))]
struct Fd(sys::WakeFd);

/// Descriptors of crowds that ended, for the next crowd: where the number
/// of waiters hovers around the crowd's threshold, crowds start and end
/// often. At most SPARES, held by no token; each with the fork generation
/// it was made in (an inherited one is shared with the parent, and may have
/// been closed and its number reused by the child: it is let go of).
#[cfg(not(loom))]
static SPARE: super::waiter::FreeList<(u64, sys::WakeFd)> = super::waiter::FreeList::new();
#[cfg(not(loom))]
const SPARES: usize = 4;

#[cfg(not(loom))]
impl Fd {
    fn open() -> sys::Result<Fd> {
        while let Some((generation, fd)) = SPARE.try_with(|v| v.pop()).flatten() {
            if generation == fork_generation() {
                return Ok(Fd(fd));
            }
            std::mem::forget(fd);
        }
        sys::WakeFd::new().map(Fd)
    }

    /// Keeps the descriptor of a crowd that ended for the next one
    /// (emptied first if it was signalled), or closes it.
    fn spare(self, signalled: bool) {
        if signalled {
            self.0.drain();
        }
        let mut fd = Some(self.0);
        SPARE.try_with(|v| {
            if v.len() < SPARES && v.try_reserve(1).is_ok() {
                v.extend(fd.take().map(|fd| (fork_generation(), fd)));
            }
        });
    }
    fn poll_fd(&self) -> sys::RawSocket {
        self.0.poll_fd()
    }
    fn signal_handle(&self) -> sys::RawSocket {
        self.0.signal_handle()
    }
}

#[cfg(loom)]
struct Fd(i32);

#[cfg(loom)]
impl Fd {
    fn open() -> sys::Result<Fd> {
        Ok(Fd(sys::model::open()))
    }
    fn spare(self, _signalled: bool) {}
    fn poll_fd(&self) -> i32 {
        self.0
    }
    fn signal_handle(&self) -> i32 {
        self.0
    }
}

#[cfg(loom)]
impl Drop for Fd {
    fn drop(&mut self) {
        sys::model::close(self.0);
    }
}

/// What an active crowd holds; touched only with `lock` held.
struct Active {
    fd: Option<Fd>,
    own: Option<Slot>,
    ancestors: Vec<Slot>,
}

pub(crate) struct Crowd {
    rec: &'static Waiter,
    members: AtomicUsize,
    /// 0 when free, else the holder's fork generation + 1 (a lock held
    /// by a thread that did not survive a fork is never taken again).
    lock: AtomicU64,
    /// The fork generation in which the crowd was last activated.
    generation: AtomicU64,
    /// The descriptor members poll (valid while `members` > 0).
    poll_fd: sys::AtomicSocket,
    active: UnsafeCell<Active>,
}

// SAFETY: `active` is only touched with `lock` held; the rest is atomic.
unsafe impl Sync for Crowd {}
// SAFETY: as above; the slots point into tokens that outlive the crowd's
// activation (its members hold references to the token).
unsafe impl Send for Crowd {}

impl Crowd {
    /// A new, inactive crowd (no descriptor), or ENOMEM.
    pub(crate) fn new() -> sys::Result<Crowd> {
        Ok(Crowd {
            rec: take_record()?,
            members: AtomicUsize::new(0),
            lock: AtomicU64::new(0),
            generation: AtomicU64::new(fork_generation()),
            poll_fd: sys::AtomicSocket::new(sys::INVALID_SOCKET),
            active: UnsafeCell::new(Active {
                fd: None,
                own: None,
                ancestors: Vec::new(),
            }),
        })
    }

    /// The crowd's waiter record (the token's for as long as it lives).
    #[inline]
    pub(crate) fn record(&self) -> &'static Waiter {
        self.rec
    }

    /// The descriptor a member polls.
    #[inline]
    pub(crate) fn poll_fd(&self) -> sys::RawSocket {
        self.poll_fd.load(SeqCst)
    }

    /// Joins the crowd if it is active, made in this process and not yet
    /// signalled. The caller then checks its token and polls `poll_fd`,
    /// and must `leave` afterwards.
    #[inline]
    pub(crate) fn join(&self) -> bool {
        self.join_with(false)
    }

    fn join_with(&self, locked: bool) -> bool {
        let mut m = self.members.load(SeqCst);
        loop {
            if m == 0 {
                return false;
            }
            match self.members.compare_exchange_weak(m, m + 1, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(cur) => m = cur,
            }
        }
        // A signalled crowd stays readable: joining it would spin.
        if self.rec.is_signalled() || self.generation.load(SeqCst) != fork_generation() {
            self.leave_with(locked);
            return false;
        }
        true
    }

    /// Joins, activating the crowd on `token` if it has no members; false
    /// if it cannot be joined (signalled, made before a fork, or out of
    /// descriptors or memory): the caller waits alone.
    pub(crate) fn join_or_activate(&self, token: &Token) -> bool {
        if self.join() {
            return true;
        }
        if self.members.load(SeqCst) != 0 && self.rec.is_signalled() {
            return false; // signalled and not yet empty: not joinable
        }
        if !self.lock() {
            return false;
        }
        let joined = if self.members.load(SeqCst) == 0 {
            self.activate(token).is_ok()
        } else {
            self.join_with(true)
        };
        self.unlock();
        joined
    }

    /// Leaves; the last member out deactivates the crowd.
    #[inline]
    pub(crate) fn leave(&self) {
        self.leave_with(false)
    }

    fn leave_with(&self, locked: bool) {
        // A guess rather than a load: a failed compare-and-swap reads the
        // count too, with its cache line already held for writing (a load
        // first would fetch a line shared with many leavers twice).
        let mut m = 2;
        while m > 1 {
            match self.members.compare_exchange_weak(m, m - 1, SeqCst, SeqCst) {
                Ok(_) => return,
                Err(cur) => m = cur,
            }
        }
        // Possibly the last: 1 -> 0 only with the lock held, so that no
        // one activates the crowd while it is being deactivated.
        if !locked && !self.lock() {
            // Held since before a fork: the crowd is abandoned anyway.
            self.members.fetch_sub(1, SeqCst);
            return;
        }
        // With the lock held the count cannot rise from 0, and the
        // lock-free paths never take it to 0: whoever takes it to 0 here
        // is the last, however many joined and left since it was read.
        if self.members.fetch_sub(1, SeqCst) == 1 {
            self.deactivate();
        }
        if !locked {
            self.unlock();
        }
    }

    /// Takes the lock; false if a thread that did not survive a fork
    /// holds it.
    fn lock(&self) -> bool {
        let me = fork_generation() + 1;
        loop {
            match self.lock.compare_exchange_weak(0, me, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(0) => {}
                Err(holder) if holder != me => return false,
                Err(_) => crate::sync::yield_now(),
            }
        }
    }

    fn unlock(&self) {
        self.lock.store(0, SeqCst);
    }

    /// With the lock held and no members: opens a descriptor, registers
    /// the record on the token chain and becomes the first member.
    fn activate(&self, token: &Token) -> sys::Result<()> {
        // SAFETY: the lock is held.
        let a = unsafe { &mut *self.active.get() };
        debug_assert!(a.fd.is_none() && a.own.is_none() && a.ancestors.is_empty());
        let fd = Fd::open()?;
        self.rec.open(fd.signal_handle());
        match token.register(self.rec, &mut a.ancestors) {
            Ok(own) => a.own = Some(own),
            Err(()) => {
                for s in a.ancestors.drain(..) {
                    s.release();
                }
                self.rec.retire();
                return Err(sys::Error(sys::ENOMEM));
            }
        }
        self.poll_fd.store(fd.poll_fd(), SeqCst);
        a.fd = Some(fd);
        self.generation.store(fork_generation(), SeqCst);
        // Registered before anyone can join: a member's check after joining
        // comes after the registration, as a lone waiter's does.
        self.members.store(1, SeqCst);
        Ok(())
    }

    /// With the lock held and the last member gone: unregisters, waits
    /// until no canceller is inside the record's `wake`, gives the
    /// descriptor back.
    fn deactivate(&self) {
        // SAFETY: the lock is held.
        let a = unsafe { &mut *self.active.get() };
        if let Some(s) = a.own.take() {
            s.release();
        }
        for s in a.ancestors.drain(..) {
            s.release();
        }
        self.rec.retire();
        if let Some(fd) = a.fd.take() {
            fd.spare(self.rec.is_signalled());
        }
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        // Members hold the token, so none is left when the token (and so
        // its crowd) goes, except in a fork child for a crowd active (or
        // being started or ended, its lock held) at the fork: its
        // descriptor is inherited (and maybe closed and reused by the
        // child), and slots of surviving ancestors may still name its
        // record. Leave both alone.
        let held = self.lock.load(SeqCst) != 0;
        if held || self.members.load(SeqCst) != 0 || self.active.get_mut().fd.is_some() {
            std::mem::forget(self.active.get_mut().fd.take());
            return;
        }
        give_back_record(self.rec);
    }
}

#[cfg(test)]
impl Crowd {
    /// Whether the crowd holds a descriptor (or members) now: its record is
    /// open to cancellers until it is ended.
    pub(crate) fn is_active(&self) -> bool {
        self.members.load(SeqCst) != 0 || !self.rec.is_closed()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::sys;
    use crate::wake::{wait_one, Call, Token};
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const CROWD: usize = 40;

    /// A socket nobody writes to.
    fn silent() -> (std::net::UdpSocket, sys::RawSocket) {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
        #[cfg(unix)]
        let s = std::os::unix::io::AsRawFd::as_raw_fd(&sock);
        #[cfg(windows)]
        let s = std::os::windows::io::AsRawSocket::as_raw_socket(&sock) as sys::RawSocket;
        (sock, s)
    }

    /// `CROWD` threads waiting on `t` for ever (or until `timeout_ms`);
    /// returns once all are registered, with their results to come.
    fn crowd_on(t: &Token, s: sys::RawSocket, timeout_ms: i32) -> Vec<Waiter> {
        let started = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..CROWD)
            .map(|_| {
                let (t, started) = (t.clone(), started.clone());
                std::thread::spawn(move || {
                    let (call, mut dl) = Call::start(&t, timeout_ms).expect("call");
                    started.fetch_add(1, SeqCst);
                    let r = wait_one(&call, s, sys::POLLIN, &mut dl);
                    (r, thread_cpu_ms())
                })
            })
            .collect();
        while started.load(SeqCst) < CROWD {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Registered: 8 alone, the rest in the crowd.
        let crowd = loop {
            if let Some(c) = t.crowd() {
                if c.members.load(SeqCst) == CROWD - super::super::token::SLOTS {
                    break c;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(crowd.is_active() && !crowd.rec.is_signalled());
        threads
    }

    /// A waiting thread: its call's result, and the CPU time it used.
    type Waiter = std::thread::JoinHandle<(Result<i16, sys::Error>, u64)>;

    fn results(threads: Vec<Waiter>) -> Vec<i32> {
        results_and_cpu(threads).0
    }

    /// The errors the calls ended with, and the CPU ms the threads used.
    fn results_and_cpu(threads: Vec<Waiter>) -> (Vec<i32>, u64) {
        let mut cpu = 0;
        let errs = threads
            .into_iter()
            .map(|h| {
                let (r, ms) = h.join().expect("waiter");
                cpu += ms;
                r.expect_err("woken").0
            })
            .collect();
        (errs, cpu)
    }

    /// CPU time the calling thread used, in ms (0 where not measured).
    fn thread_cpu_ms() -> u64 {
        #[cfg(unix)]
        {
            // SAFETY: clock_gettime fills the struct it is given.
            let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
        }
        #[cfg(not(unix))]
        0
    }

    /// One cancel wakes every waiter; the crowd's one write reached most
    /// of them, they took 9 slots of the token rather than 40, and the
    /// crowd holds no descriptor once they have gone.
    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn one_cancel_wakes_a_crowd_and_leaves_no_descriptor() {
        let (_sock, s) = silent();
        let t = Token::new();
        for round in 0..3 {
            let threads = crowd_on(&t, s, -1);
            // 8 alone, and the crowd's record for the other 32 (the last
            // to join may not have let go of its own slot yet).
            let until = Instant::now() + Duration::from_secs(2);
            while t.slot_usage().1 > super::super::token::SLOTS + 1 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(t.slot_usage().1, super::super::token::SLOTS + 1);
            t.cancel();
            assert!(results(threads).iter().all(|&e| e == sys::ECANCELED));
            let c = t.crowd().expect("crowd");
            assert!(
                c.rec.is_signalled(),
                "round {round}: woken through the crowd"
            );
            assert!(!c.is_active(), "round {round}: descriptor closed");
            assert_eq!(t.slot_usage().1, 0);
            t.reset();
        }
    }

    /// A crowd on a child is woken by a cancel of its parent.
    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn a_parent_cancel_reaches_a_childs_crowd() {
        let (_sock, s) = silent();
        let parent = Token::new();
        let child = parent.child();
        let threads = crowd_on(&child, s, -1);
        parent.cancel();
        assert!(results(threads).iter().all(|&e| e == sys::ECANCELED));
        assert!(child.crowd().expect("crowd").rec.is_signalled());
    }

    /// A deadline moved earlier wakes the crowd; its members, whose calls
    /// go on, wait alone until the new deadline.
    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn a_deadline_moved_earlier_reaches_a_crowd() {
        let (_sock, s) = silent();
        let t = Token::new();
        let threads = crowd_on(&t, s, -1);
        let start = Instant::now();
        t.set_deadline(sys::monotonic_ns() + 50_000_000);
        assert!(results(threads).iter().all(|&e| e == sys::ETIMEDOUT));
        assert!(start.elapsed() >= Duration::from_millis(45));
        assert!(!t.crowd().expect("crowd").is_active());
    }

    /// After a cancel and a reset, a new crowd does not inherit the old,
    /// readable descriptor: its members sleep (no spinning) and the next
    /// cancel wakes them. Members still in a crowd woken before the reset
    /// (a moved deadline leaves it readable) make newcomers wait alone.
    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn a_new_crowd_after_a_reset_sleeps() {
        let (_sock, s) = silent();
        let t = Token::new();
        let threads = crowd_on(&t, s, -1);
        t.cancel();
        results(threads);
        t.reset();
        let threads = crowd_on(&t, s, -1);
        std::thread::sleep(Duration::from_millis(300));
        t.cancel();
        let (errs, used) = results_and_cpu(threads);
        assert!(errs.iter().all(|&e| e == sys::ECANCELED));
        assert!(
            used < 100,
            "{CROWD} waiters used {used} ms of CPU in 300 ms"
        );
    }

    /// Waiters come and go (short random timeouts make the crowd start
    /// and end again and again) while a cancel lands at a random moment:
    /// every waiter ends with ECANCELED within a second of it, every round.
    #[test]
    #[cfg_attr(miri, ignore = "sockets, poll and threads Miri does not model")]
    fn cancels_racing_crowds_that_come_and_go() {
        let (_sock, s) = silent();
        let rounds = if std::env::var_os("CI").is_some() {
            20
        } else {
            40
        };
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut crowded = 0;
        for round in 0..rounds {
            let t = Token::new();
            let threads: Vec<_> = (0..24u64)
                .map(|i| {
                    let t = t.clone();
                    let mut r = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                    std::thread::spawn(move || loop {
                        r ^= r << 13;
                        r ^= r >> 7;
                        r ^= r << 17;
                        let (call, mut dl) = match Call::start(&t, (r % 3) as i32) {
                            Ok(c) => c,
                            Err(e) => return e.0,
                        };
                        match wait_one(&call, s, sys::POLLIN, &mut dl) {
                            Err(e) if e.0 == sys::ETIMEDOUT => continue,
                            Err(e) => return e.0,
                            Ok(_) => return 0,
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_micros(next() % 5000));
            t.cancel();
            let cancelled = Instant::now();
            for h in threads {
                assert_eq!(h.join().expect("waiter"), sys::ECANCELED, "round {round}");
            }
            let took = cancelled.elapsed();
            assert!(took < Duration::from_secs(1), "round {round}: {took:?}");
            if let Some(c) = t.crowd() {
                assert!(!c.is_active(), "round {round}: crowd left open");
                crowded += c.rec.is_signalled() as usize;
            }
        }
        // The crowd's write woke some of them in at least one round.
        assert!(crowded > 0, "no round had a crowd when the cancel came");
        println!("{crowded} of {rounds} rounds cancelled a crowd");
    }
}
