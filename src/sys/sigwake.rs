//! Signal-wake: a blocking system call that another thread can interrupt
//! without poll and without a wake descriptor (Linux, x86-64 and AArch64).
//! See `/work/shared/research/zero-overhead.md` for the measurements.
//!
//! The call goes through a small assembly stub, `rsock_sigwake_syscall`,
//! that first loads the caller's `kicked` word and returns `-ECANCELED`
//! without entering the kernel if it is set. A canceller sets the word and
//! queues a reserved real-time signal to the waiting thread
//! (`rt_tgsigqueueinfo`, `si_code = SI_QUEUE`, the record's index in
//! `si_value`: the handler needs no thread-local storage). The handler
//! (`SA_SIGINFO | SA_ONSTACK`, no `SA_RESTART`) moves an interrupted PC that
//! lies in `[stub start, the system call instruction]` to the stub's
//! cancel exit: the kernel leaves the PC there only when the call has not
//! run or is being restarted. A PC after the instruction means the call ran:
//! its result stands, or it fails with EINTR because the signal woke it.
//! As in musl's `pthread_cancel`, a signal that finds the thread in another
//! handler (which may return into the window, say to restart the call) is
//! blocked in that context and queued again; `SigWaiter::end` unblocks it.
//! `end` also makes sure no signal of ours is still on its way: a cancel
//! brackets its check and send with `busy` and counts what it sent, the
//! handler counts what it received, and `end` absorbs the difference, so a
//! late cancel never interrupts an unrelated call of the application.
//!
//! # How a wait uses it
//!
//! Only for an infinite timeout on a socket in blocking mode, with the
//! signal installed (`install`) and not blocked in the thread:
//!
//! 1. register the thread's `SigWaiter` on the token (and its ancestors),
//!    so that `rsock_cancel` calls `SigWaiter::kick` on it;
//! 2. the mask check, `signal_blocked(signo)` (one system call): if the
//!    thread blocks the signal, take the poll path instead. Make it before
//!    `begin`, or treat "blocked" after `begin` as a kick when
//!    `was_kicked()`: a kick that lands outside the stub during the wait
//!    re-raises the signal blocked (until `end`), exactly as the handler
//!    must for a kick that lands in another signal handler;
//! 3. `begin` (clears `kicked`, publishes the waiter as active);
//! 4. check the token (a cancel from here on sends the signal);
//! 5. `call` the plain blocking system call through the stub;
//! 6. `end`, always, before anything else (and before unregistering);
//! 7. then: `Ok(n)` is the result (completion wins); `Kicked` and
//!    `Interrupted` are wake-ups, not cancels: re-check the token and, if
//!    it is not cancelled, start again from 2; an `EAGAIN` from the plain
//!    call (an `O_NONBLOCK` socket, `SO_RCVTIMEO`) means: take the poll
//!    path. Finite timeouts always take the poll path. A `connect`
//!    interrupted this way goes on in the background (as after EINTR):
//!    wait for it with poll.
//!
//! `kick` returns false when the signal was needed but could not be queued
//! (`EAGAIN`: the per-user limit of queued signals, `RLIMIT_SIGPENDING`,
//! which real-time signals sent with a negative `si_code` obey): that wait
//! is not woken by this kick. The handler trusts no `si_value`: it takes
//! only `SI_QUEUE` signals whose index names a record owned by the thread
//! it runs on (one `gettid`), so a stray or forged signal of the number
//! does nothing. Known limits (from the research note): a later
//! `sigaction` of the signal by the program (its own handler, `SIG_IGN`)
//! loses wake-ups and cannot be seen without a system call per wait;
//! ThreadSanitizer (which runs handlers on a copy of the context) and
//! valgrind defeat the PC redirect; gdb stops on the signal unless told
//! `handle SIGnn nostop noprint pass`. Under qemu-user the stub works (the
//! tests pass under `qemu-aarch64`): guest signals are delivered between
//! translation blocks or at the `svc`, so they land at +0, +8 or on the
//! `svc` itself (+36), all in the window.

// Not yet used by the wait path (src/wake/wait.rs will use it).
#![allow(dead_code)]

use super::Error;
use crate::sync::atomic::{fence, AtomicU32, Ordering::SeqCst};

/// What stopped a call made through the stub, other than its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The waiter was kicked: the call did not run, or was interrupted
    /// before completing anything (nothing was consumed).
    Kicked,
    /// Another signal interrupted the call (EINTR), and no kick was seen.
    Interrupted,
    /// The system call's own error.
    Os(Error),
}

/// One thread's signal-wake record. Never freed: a canceller may still hold
/// a pointer to it after its owner moved on (a kick then is a spurious
/// wake-up of whatever the owner waits for next, or nothing).
#[repr(C)]
pub(crate) struct SigWaiter {
    /// Read by the stub before it enters the kernel (first field: the stub
    /// gets its address).
    kicked: AtomicU32,
    /// Nonzero between `begin` and `end`: kicks send the signal.
    active: AtomicU32,
    /// Cancellers inside `kick` (between their check and their send).
    busy: AtomicU32,
    /// Signals queued to the owner (by kicks and by re-raises).
    sent: AtomicU32,
    /// Signals the owner's handler took for this record.
    received: AtomicU32,
    /// Set by the handler when it blocked the signal in the interrupted
    /// context and queued it again.
    reraised: AtomicU32,
    #[cfg(not(loom))]
    os: imp::Owner,
    #[cfg(loom)]
    pub(crate) model: model::Pending,
}

impl SigWaiter {
    /// Called by a canceller (any thread, or a signal handler):
    /// async-signal-safe (atomics and one system call). Sets `kicked` and,
    /// if the owner is inside a wait, queues the signal to it. Returns false
    /// only if the signal was needed and could not be queued (the system's
    /// limit of queued signals, `RLIMIT_SIGPENDING`, is reached).
    pub(crate) fn kick(&self) -> bool {
        self.kicked.store(1, SeqCst);
        self.busy.fetch_add(1, SeqCst);
        fence(SeqCst); // pairs with `end`
        let mut ok = true;
        if self.active.load(SeqCst) != 0 {
            ok = self.send();
            if ok {
                self.sent.fetch_add(1, SeqCst);
            }
        }
        self.busy.fetch_sub(1, SeqCst);
        ok
    }

    /// The owner, before its token check: clears `kicked` and publishes the
    /// wait, so that every later kick sends the signal.
    pub(crate) fn begin(&self) {
        #[cfg(not(loom))]
        self.os.refresh_after_fork();
        self.kicked.store(0, SeqCst);
        self.active.store(1, SeqCst);
        // Active, then the caller's token check; `kick` runs after the
        // token was set: either the check sees the cancel or the kick sees
        // the waiter active (the fences say so to loom, which models SeqCst
        // accesses as AcqRel).
        fence(SeqCst);
    }

    /// The owner, leaving the wait (after any `call`): no kick sends from
    /// now on, none is still sending, and any signal sent has been taken,
    /// here or before (and none is left blocked by a re-raise). A few
    /// atomic loads when no signal was sent.
    pub(crate) fn end(&self) {
        self.active.store(0, SeqCst);
        fence(SeqCst); // pairs with `kick`
        while self.busy.load(SeqCst) != 0 {
            crate::sync::yield_now();
        }
        if self.reraised.load(SeqCst) != 0 || self.outstanding() {
            self.absorb();
        }
    }

    /// Whether a signal was sent that the handler has not taken yet.
    fn outstanding(&self) -> bool {
        (self
            .sent
            .load(SeqCst)
            .wrapping_sub(self.received.load(SeqCst)) as i32)
            > 0
    }

    /// Whether the last wait was kicked (the token should be re-checked).
    pub(crate) fn was_kicked(&self) -> bool {
        self.kicked.load(SeqCst) != 0
    }
}

#[cfg(not(loom))]
#[allow(unused_imports)] // for the wait path, which does not use it yet
pub(crate) use imp::{acquire, install, installed, release, signal_blocked};

#[cfg(not(loom))]
mod imp {
    use super::{SigWaiter, Stop};
    use crate::sys::Error;
    use libc::{c_int, c_long, c_void};
    #[cfg(test)]
    use std::sync::atomic::AtomicBool;
    use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicUsize, Ordering::SeqCst};
    use std::sync::Mutex;

    // ---- the stub -------------------------------------------------------

    // rsock_sigwake_syscall(kicked, nr, a1, a2, a3, a4, a5, a6): the window
    // is [rsock_sigwake_begin, rsock_sigwake_sc] (the address OF the system
    // call instruction, inclusive); rsock_sigwake_after is the instruction
    // after it (the call has returned); rsock_sigwake_cancel returns
    // -ECANCELED (125 on both architectures) with the stack as at entry.
    #[cfg(target_arch = "x86_64")]
    core::arch::global_asm!(
        ".pushsection .text.rsock_sigwake,\"ax\",@progbits",
        ".p2align 4",
        ".globl rsock_sigwake_syscall",
        ".hidden rsock_sigwake_syscall",
        ".type rsock_sigwake_syscall,@function",
        ".globl rsock_sigwake_begin",
        ".hidden rsock_sigwake_begin",
        ".globl rsock_sigwake_sc",
        ".hidden rsock_sigwake_sc",
        ".globl rsock_sigwake_after",
        ".hidden rsock_sigwake_after",
        ".globl rsock_sigwake_cancel",
        ".hidden rsock_sigwake_cancel",
        "rsock_sigwake_syscall:",
        "rsock_sigwake_begin:",
        "    mov eax, dword ptr [rdi]",
        "    test eax, eax",
        "    jnz rsock_sigwake_cancel",
        "    mov rax, rsi",
        "    mov rdi, rdx",
        "    mov rsi, rcx",
        "    mov rdx, r8",
        "    mov r10, r9",
        "    mov r8, qword ptr [rsp + 8]",
        "    mov r9, qword ptr [rsp + 16]",
        "rsock_sigwake_sc:",
        "    syscall",
        "rsock_sigwake_after:",
        "    ret",
        "rsock_sigwake_cancel:",
        "    mov rax, -125",
        "    ret",
        ".size rsock_sigwake_syscall, . - rsock_sigwake_syscall",
        ".popsection",
    );

    #[cfg(target_arch = "aarch64")]
    core::arch::global_asm!(
        ".pushsection .text.rsock_sigwake,\"ax\",%progbits",
        ".p2align 4",
        ".globl rsock_sigwake_syscall",
        ".hidden rsock_sigwake_syscall",
        ".type rsock_sigwake_syscall,%function",
        ".globl rsock_sigwake_begin",
        ".hidden rsock_sigwake_begin",
        ".globl rsock_sigwake_sc",
        ".hidden rsock_sigwake_sc",
        ".globl rsock_sigwake_after",
        ".hidden rsock_sigwake_after",
        ".globl rsock_sigwake_cancel",
        ".hidden rsock_sigwake_cancel",
        "rsock_sigwake_syscall:",
        "rsock_sigwake_begin:",
        "    ldr w9, [x0]",
        "    cbnz w9, rsock_sigwake_cancel",
        "    mov x8, x1",
        "    mov x0, x2",
        "    mov x1, x3",
        "    mov x2, x4",
        "    mov x3, x5",
        "    mov x4, x6",
        "    mov x5, x7",
        "rsock_sigwake_sc:",
        "    svc #0",
        "rsock_sigwake_after:",
        "    ret",
        "rsock_sigwake_cancel:",
        "    mov x0, #-125",
        "    ret",
        ".size rsock_sigwake_syscall, . - rsock_sigwake_syscall",
        ".popsection",
    );

    extern "C" {
        /// The system call `nr` with up to six arguments, unless `*kicked`
        /// is nonzero (then -ECANCELED). Returns the raw result (-errno on
        /// failure); never touches errno.
        fn rsock_sigwake_syscall(
            kicked: *const AtomicU32,
            nr: c_long,
            a1: c_long,
            a2: c_long,
            a3: c_long,
            a4: c_long,
            a5: c_long,
            a6: c_long,
        ) -> c_long;
        // Labels, not functions: only their addresses are used.
        fn rsock_sigwake_begin();
        fn rsock_sigwake_sc();
        fn rsock_sigwake_after();
        fn rsock_sigwake_cancel();
    }

    const ECANCELED: c_long = libc::ECANCELED as c_long;
    const _: () = assert!(libc::ECANCELED == 125);
    const SI_QUEUE: c_int = -1;

    // ---- raw system calls (no errno, usable in the handler) --------------

    /// A raw system call with up to four arguments: the result, or -errno.
    ///
    /// # Safety
    /// As for the system call `nr` with these arguments.
    #[inline(always)]
    unsafe fn raw4(nr: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long) -> c_long {
        let ret: c_long;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's contract; `syscall` clobbers rcx and r11.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr => ret,
                in("rdi") a1,
                in("rsi") a2,
                in("rdx") a3,
                in("r10") a4,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: the caller's contract; `svc` returns in x0.
        unsafe {
            core::arch::asm!(
                "svc #0",
                in("x8") nr,
                inlateout("x0") a1 => ret,
                in("x1") a2,
                in("x2") a3,
                in("x3") a4,
                options(nostack),
            );
        }
        ret
    }

    fn gettid() -> i32 {
        // SAFETY: gettid takes no arguments and cannot fail.
        unsafe { raw4(libc::SYS_gettid, 0, 0, 0, 0) as i32 }
    }

    fn getpid() -> i32 {
        // SAFETY: getpid takes no arguments and cannot fail.
        unsafe { raw4(libc::SYS_getpid, 0, 0, 0, 0) as i32 }
    }

    /// The kernel's signal set (64 signals): what rt_sigprocmask takes.
    fn bit(signo: c_int) -> u64 {
        1u64 << ((signo as u32).wrapping_sub(1) & 63)
    }

    /// rt_sigprocmask(how, set or none) -> the old mask.
    fn sigprocmask(how: c_int, set: Option<u64>) -> u64 {
        let mut old: u64 = 0;
        let set_ptr = set.as_ref().map_or(std::ptr::null(), |s| s as *const u64);
        // SAFETY: both pointers are valid (or null) for 8 bytes, the size
        // passed; the call cannot fail with these arguments.
        unsafe {
            raw4(
                libc::SYS_rt_sigprocmask,
                how as c_long,
                set_ptr as c_long,
                &mut old as *mut u64 as c_long,
                8,
            )
        };
        old
    }

    /// Whether the calling thread blocks `signo` (one rt_sigprocmask
    /// query). A thread that does must not use the stub: take the poll path.
    pub(crate) fn signal_blocked(signo: c_int) -> bool {
        sigprocmask(libc::SIG_BLOCK, None) & bit(signo) != 0
    }

    /// The siginfo of a queued signal (Linux's layout for `SI_QUEUE` on
    /// 64-bit targets), 128 bytes.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct QueueInfo {
        signo: c_int,
        errno: c_int,
        code: c_int,
        _pad: c_int,
        pid: c_int,
        uid: u32,
        value: usize,
        _rest: [u64; 12],
    }
    const _: () = assert!(std::mem::size_of::<QueueInfo>() == 128);

    /// Queues `signo` with `value` to thread `tid` of process `pid`;
    /// whether it was queued.
    fn queue(pid: i32, tid: i32, signo: c_int, value: usize) -> bool {
        let info = QueueInfo {
            signo,
            errno: 0,
            code: SI_QUEUE,
            _pad: 0,
            pid,
            uid: 0,
            value,
            _rest: [0; 12],
        };
        // SAFETY: `info` is a valid 128-byte siginfo with a negative
        // si_code, which any thread may send.
        unsafe {
            raw4(
                libc::SYS_rt_tgsigqueueinfo,
                pid as c_long,
                tid as c_long,
                signo as c_long,
                &info as *const QueueInfo as c_long,
            ) == 0
        }
    }

    // ---- records ----------------------------------------------------------

    /// What a record knows of its owner.
    pub(crate) struct Owner {
        pid: AtomicI32,
        tid: AtomicI32,
        generation: AtomicUsize,
        /// The record's number: what the signal carries.
        index: usize,
    }

    impl Owner {
        /// After fork() the owner has a new thread and process id.
        pub(super) fn refresh_after_fork(&self) {
            let g = FORK_GENERATION.load(SeqCst);
            if self.generation.load(SeqCst) != g {
                self.claim(g);
            }
        }

        fn claim(&self, generation: usize) {
            self.pid.store(getpid(), SeqCst);
            self.tid.store(gettid(), SeqCst);
            self.generation.store(generation, SeqCst);
        }
    }

    const CHUNK: usize = 256;
    const CHUNKS: usize = 256;
    type Chunk = [AtomicPtr<SigWaiter>; CHUNK];

    /// Every record ever made, by index (what the handler looks up).
    static DIR: [AtomicPtr<Chunk>; CHUNKS] =
        [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static POOL: Mutex<Vec<&'static SigWaiter>> = Mutex::new(Vec::new());
    static FORK_GENERATION: AtomicUsize = AtomicUsize::new(0);
    static SIGNO: AtomicI32 = AtomicI32::new(0);

    /// The record with this index, if there is one.
    fn lookup(index: usize) -> Option<&'static SigWaiter> {
        let chunk = DIR.get(index / CHUNK)?.load(SeqCst);
        if chunk.is_null() {
            return None;
        }
        // SAFETY: chunks are never freed.
        let rec = unsafe { &*chunk }.get(index % CHUNK)?.load(SeqCst);
        // SAFETY: records are never freed.
        (!rec.is_null()).then(|| unsafe { &*rec })
    }

    fn no_memory() -> Error {
        Error(libc::ENOMEM)
    }

    /// A record for the calling thread (pooled or new); the thread keeps it
    /// until it exits and then gives it back with `release`. ENOMEM if
    /// memory (or the 65,536 records) runs out.
    pub(crate) fn acquire() -> Result<&'static SigWaiter, Error> {
        register_fork_handler()?;
        let pooled = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let rec = match pooled {
            Some(rec) => rec,
            None => new_record()?,
        };
        rec.os.claim(FORK_GENERATION.load(SeqCst));
        Ok(rec)
    }

    /// Gives a record back for reuse, outside any wait (its owner exits).
    pub(crate) fn release(rec: &'static SigWaiter) {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        // Without memory to pool it, the record stays unused.
        if pool.try_reserve(1).is_ok() {
            pool.push(rec);
        }
    }

    fn new_record() -> Result<&'static SigWaiter, Error> {
        let index = NEXT.fetch_add(1, SeqCst);
        let slot = DIR.get(index / CHUNK).ok_or_else(no_memory)?;
        let mut chunk = slot.load(SeqCst);
        if chunk.is_null() {
            let fresh: Box<Chunk> =
                crate::sync::try_box(std::array::from_fn(
                    |_| AtomicPtr::new(std::ptr::null_mut()),
                ))
                .map_err(|_| no_memory())?;
            let fresh = Box::into_raw(fresh);
            match slot.compare_exchange(std::ptr::null_mut(), fresh, SeqCst, SeqCst) {
                Ok(_) => chunk = fresh,
                Err(cur) => {
                    // SAFETY: `fresh` was never shared.
                    drop(unsafe { Box::from_raw(fresh) });
                    chunk = cur;
                }
            }
        }
        let rec = SigWaiter {
            kicked: AtomicU32::new(0),
            active: AtomicU32::new(0),
            busy: AtomicU32::new(0),
            sent: AtomicU32::new(0),
            received: AtomicU32::new(0),
            reraised: AtomicU32::new(0),
            os: Owner {
                pid: AtomicI32::new(0),
                tid: AtomicI32::new(0),
                generation: AtomicUsize::new(usize::MAX),
                index,
            },
        };
        let rec: &'static SigWaiter =
            Box::leak(crate::sync::try_box(rec).map_err(|_| no_memory())?);
        // SAFETY: chunks are never freed.
        let chunk: &Chunk = unsafe { &*chunk };
        chunk[index % CHUNK].store(rec as *const SigWaiter as *mut SigWaiter, SeqCst);
        Ok(rec)
    }

    /// In a fork() child only the forking thread exists: no record is in a
    /// wait (kicks send nothing), no canceller is inside `kick`, and the
    /// forking thread's record learns its new ids at its next `begin`.
    /// Async-signal-safe.
    ///
    /// # Safety
    /// Called by the C library in a fork() child only (`pthread_atfork`).
    unsafe extern "C" fn after_fork_child() {
        FORK_GENERATION.fetch_add(1, SeqCst);
        let n = NEXT.load(SeqCst);
        for i in 0..n {
            if let Some(rec) = lookup(i) {
                rec.active.store(0, SeqCst);
                rec.busy.store(0, SeqCst);
                rec.sent.store(rec.received.load(SeqCst), SeqCst);
            }
        }
    }

    fn register_fork_handler() -> Result<(), Error> {
        static DONE: Mutex<bool> = Mutex::new(false);
        crate::sys::once_ok(&DONE, || {
            crate::sys::at_fork(None, None, Some(after_fork_child))
        })
    }

    impl SigWaiter {
        /// Queues the installed signal to the owner (`kick`'s send).
        pub(super) fn send(&self) -> bool {
            let signo = SIGNO.load(SeqCst);
            signo != 0
                && queue(
                    self.os.pid.load(SeqCst),
                    self.os.tid.load(SeqCst),
                    signo,
                    self.os.index,
                )
        }

        /// Takes every signal sent to this record and not yet received,
        /// and unblocks the signal if a re-raise left it blocked.
        #[cold]
        pub(super) fn absorb(&self) {
            let signo = SIGNO.load(SeqCst);
            if self.reraised.swap(0, SeqCst) != 0 {
                // Delivered (to the handler, which finds the record
                // inactive and only counts it) as this call returns.
                sigprocmask(libc::SIG_UNBLOCK, Some(bit(signo)));
            }
            // A signal sent (busy is zero: the send has returned) is
            // pending on this thread and delivered when it next leaves the
            // kernel; if the application blocks it, take it here.
            let mut tries = 0;
            while self.outstanding() && tries < 1000 {
                tries += 1;
                if signal_blocked(signo) {
                    let set = bit(signo);
                    let zero = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    let mut info = std::mem::MaybeUninit::<QueueInfo>::zeroed();
                    // SAFETY: the set, the siginfo buffer (128 bytes) and
                    // the timeout are valid for the call.
                    let r = unsafe {
                        raw4(
                            libc::SYS_rt_sigtimedwait,
                            &set as *const u64 as c_long,
                            info.as_mut_ptr() as c_long,
                            &zero as *const libc::timespec as c_long,
                            8,
                        )
                    };
                    if r == signo as c_long {
                        self.received.fetch_add(1, SeqCst);
                    }
                } else {
                    std::thread::yield_now();
                }
            }
        }

        /// Makes system call `nr` with `args` through the stub, unless
        /// the record was kicked since `begin`. Call only between `begin`
        /// and `end`, on the owner's thread, with the signal installed and
        /// not blocked.
        ///
        /// # Safety
        /// As for the system call `nr` with `args`.
        #[inline]
        pub(crate) unsafe fn call(&self, nr: c_long, args: [c_long; 6]) -> Result<usize, Stop> {
            // SAFETY: `kicked` is valid for reads for the call; the rest
            // is the caller's contract.
            let r = unsafe {
                rsock_sigwake_syscall(
                    &self.kicked,
                    nr,
                    args[0],
                    args[1],
                    args[2],
                    args[3],
                    args[4],
                    args[5],
                )
            };
            if r >= 0 {
                Ok(r as usize)
            } else if r == -ECANCELED {
                Err(Stop::Kicked)
            } else if r == -(libc::EINTR as c_long) {
                Err(if self.was_kicked() {
                    Stop::Kicked
                } else {
                    Stop::Interrupted
                })
            } else {
                Err(Stop::Os(Error(r.wrapping_neg() as i32)))
            }
        }
    }

    // ---- the handler --------------------------------------------------------

    /// Test switches for the negative controls (tests only).
    #[cfg(test)]
    pub(crate) static NO_REDIRECT: AtomicBool = AtomicBool::new(false);
    #[cfg(test)]
    pub(crate) static NO_RERAISE: AtomicBool = AtomicBool::new(false);

    fn no_redirect() -> bool {
        #[cfg(test)]
        return NO_REDIRECT.load(SeqCst);
        #[cfg(not(test))]
        false
    }

    fn no_reraise() -> bool {
        #[cfg(test)]
        return NO_RERAISE.load(SeqCst);
        #[cfg(not(test))]
        false
    }

    /// What the handler saw (for the tests and the report).
    pub(crate) struct Stats {
        /// Signals that found the PC in the window, by offset from its
        /// start (bytes; the last bucket counts 63 and beyond).
        pub landed: [AtomicU32; 64],
        /// Signals blocked in the interrupted context and queued again.
        pub reraised: AtomicU32,
        /// Signals for a record that had left its wait (absorbed).
        pub after_end: AtomicU32,
        /// Signals of our number that carried no record of this thread.
        pub foreign: AtomicU32,
        /// Signals that reached a record's owner after its `end` returned
        /// (the tests mark that time with `OUTSIDE`): must stay zero.
        pub stray: AtomicU32,
    }
    /// The record whose owner is outside any wait (test hook).
    #[cfg(test)]
    pub(crate) static OUTSIDE: AtomicPtr<SigWaiter> = AtomicPtr::new(std::ptr::null_mut());
    pub(crate) static STATS: Stats = Stats {
        landed: [const { AtomicU32::new(0) }; 64],
        reraised: AtomicU32::new(0),
        after_end: AtomicU32::new(0),
        foreign: AtomicU32::new(0),
        stray: AtomicU32::new(0),
    };

    /// Where the interrupted context's PC is saved.
    ///
    /// # Safety
    /// `uc` is the ucontext the kernel passed to the running handler.
    #[cfg(target_arch = "x86_64")]
    unsafe fn pc_slot(uc: *mut libc::ucontext_t) -> *mut u64 {
        // SAFETY: `uc` is valid (the caller's contract); only the place is
        // computed.
        unsafe { std::ptr::addr_of_mut!((*uc).uc_mcontext.gregs[libc::REG_RIP as usize]).cast() }
    }

    /// As for x86-64.
    ///
    /// # Safety
    /// `uc` is the ucontext the kernel passed to the running handler.
    #[cfg(target_arch = "aarch64")]
    unsafe fn pc_slot(uc: *mut libc::ucontext_t) -> *mut u64 {
        // SAFETY: as for x86-64.
        unsafe { std::ptr::addr_of_mut!((*uc).uc_mcontext.pc) }
    }

    /// The first word of the interrupted context's signal mask (the
    /// kernel's sigset: signals 1 to 64), which sigreturn restores. glibc's
    /// ucontext_t puts its 1024-bit sigset_t where the kernel's is.
    ///
    /// # Safety
    /// `uc` is the ucontext the kernel passed to the running handler.
    unsafe fn mask_slot(uc: *mut libc::ucontext_t) -> *mut u64 {
        // SAFETY: as for `pc_slot`.
        unsafe { std::ptr::addr_of_mut!((*uc).uc_sigmask).cast() }
    }

    extern "C" fn handler(signo: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
        // SAFETY: the kernel passes a valid siginfo (SA_SIGINFO).
        let info = unsafe { *info.cast::<QueueInfo>() };
        let rec = if info.code == SI_QUEUE {
            lookup(info.value)
        } else {
            None
        };
        let Some(rec) = rec.filter(|r| r.os.tid.load(SeqCst) == gettid()) else {
            STATS.foreign.fetch_add(1, SeqCst);
            return;
        };
        rec.received.fetch_add(1, SeqCst);
        #[cfg(test)]
        if std::ptr::eq(OUTSIDE.load(SeqCst), rec) {
            STATS.stray.fetch_add(1, SeqCst);
        }
        if rec.kicked.load(SeqCst) == 0 {
            return; // not a kick of ours (stray or forged): nothing to do
        }
        let uc = ctx.cast::<libc::ucontext_t>();
        // SAFETY: `ctx` is the kernel's ucontext (SA_SIGINFO).
        let pc_at = unsafe { pc_slot(uc) };
        // SAFETY: `pc_at` points into the live ucontext.
        let pc = unsafe { pc_at.read() } as usize;
        let begin = rsock_sigwake_begin as *const () as usize;
        let sc = rsock_sigwake_sc as *const () as usize;
        if pc >= begin && pc <= sc {
            if let Some(c) = STATS.landed.get((pc - begin).min(63)) {
                c.fetch_add(1, SeqCst);
            }
            if !no_redirect() {
                // SAFETY: as above; the kernel resumes the thread there.
                unsafe { pc_at.write(rsock_sigwake_cancel as *const () as usize as u64) };
                return;
            }
        }
        if rec.active.load(SeqCst) == 0 {
            STATS.after_end.fetch_add(1, SeqCst);
            return;
        }
        if pc == rsock_sigwake_after as *const () as usize {
            // The call has returned (with its result, or EINTR because
            // this signal woke it): the waiter sees `kicked` next. This
            // is the stub's own context, not a handler that could return
            // into the window: no re-raise needed.
            return;
        }
        if no_reraise() {
            return;
        }
        // The thread may be in another handler that will return into the
        // window: queue the signal again, blocked in the context this
        // handler returns to, until that context's own sigreturn (or
        // `end`) unblocks it. (It stays blocked until this handler
        // returns.)
        rec.sent.fetch_add(1, SeqCst);
        if !queue(rec.os.pid.load(SeqCst), gettid(), signo, info.value) {
            rec.sent.fetch_sub(1, SeqCst);
            return;
        }
        // SAFETY: as for `pc_slot`.
        let m = unsafe { mask_slot(uc) };
        // SAFETY: `m` points into the live ucontext.
        unsafe { m.write(m.read() | bit(signo)) };
        rec.reraised.store(1, SeqCst);
        STATS.reraised.fetch_add(1, SeqCst);
    }

    /// The installed signal, or 0.
    pub(crate) fn installed() -> c_int {
        SIGNO.load(SeqCst)
    }

    /// Installs the handler for `signo` (process-wide; one signal per
    /// process). EINVAL outside SIGRTMIN..=SIGRTMAX, EBUSY if the signal
    /// has a disposition other than the default (someone else's handler,
    /// or SIG_IGN) or another signal is installed; nothing again for the
    /// same signal.
    pub(crate) fn install(signo: c_int) -> Result<(), Error> {
        static LOCK: Mutex<()> = Mutex::new(());
        if signo < libc::SIGRTMIN() || signo > libc::SIGRTMAX() {
            return Err(Error(libc::EINVAL));
        }
        let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if SIGNO.load(SeqCst) == signo {
            return Ok(());
        }
        // SAFETY: sigaction is plain data; all-zero is a valid value.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: querying the disposition: `old` is valid for writes.
        if unsafe { libc::sigaction(signo, std::ptr::null(), &mut old) } != 0 {
            return Err(Error(crate::sys::last_error()));
        }
        if old.sa_sigaction != libc::SIG_DFL || SIGNO.load(SeqCst) != 0 {
            return Err(Error(libc::EBUSY));
        }
        // SAFETY: as above.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction =
            handler as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `sa.sa_mask` is valid for writes.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sa` is a complete sigaction for an async-signal-safe
        // handler; `signo` is a valid real-time signal.
        if unsafe { libc::sigaction(signo, &sa, std::ptr::null_mut()) } != 0 {
            return Err(Error(crate::sys::last_error()));
        }
        SIGNO.store(signo, SeqCst);
        Ok(())
    }
}

/// Under `--cfg loom`: the signal as the models see it (see
/// `sigwake_loom.rs`): a count of queued signals that the waiter's sleep
/// and `absorb` take.
#[cfg(loom)]
pub(crate) mod model {
    use crate::sync::atomic::{AtomicU32, Ordering::SeqCst};

    pub(crate) struct Pending {
        /// Signals queued to the owner and not yet taken.
        pub pending: AtomicU32,
    }

    impl super::SigWaiter {
        /// A record as `acquire` hands out, for a model (never freed).
        pub(crate) fn model_new() -> &'static super::SigWaiter {
            Box::leak(Box::new(super::SigWaiter {
                kicked: AtomicU32::new(0),
                active: AtomicU32::new(0),
                busy: AtomicU32::new(0),
                sent: AtomicU32::new(0),
                received: AtomicU32::new(0),
                reraised: AtomicU32::new(0),
                model: Pending {
                    pending: AtomicU32::new(0),
                },
            }))
        }

        /// The canceller's `rt_tgsigqueueinfo`.
        pub(super) fn send(&self) -> bool {
            self.model.pending.fetch_add(1, SeqCst);
            true
        }

        /// The owner's handler runs for one pending signal, if any (it
        /// counts it, as the real handler does).
        pub(crate) fn deliver(&self) -> bool {
            let mut n = self.model.pending.load(SeqCst);
            while n > 0 {
                match self
                    .model
                    .pending
                    .compare_exchange(n, n - 1, SeqCst, SeqCst)
                {
                    Ok(_) => {
                        self.received.fetch_add(1, SeqCst);
                        return true;
                    }
                    Err(cur) => n = cur,
                }
            }
            false
        }

        /// `end`'s absorb: a signal sent is pending on the owner (the send
        /// has returned: `busy` is zero) and delivered as it next leaves
        /// the kernel.
        pub(super) fn absorb(&self) {
            while self.outstanding() {
                if !self.deliver() {
                    crate::sync::yield_now();
                }
            }
        }

        /// The stub's load of `kicked`.
        pub(crate) fn stub_sees_kick(&self) -> bool {
            self.kicked.load(SeqCst) != 0
        }

        /// Signals sent to and taken by the owner so far.
        pub(crate) fn counts(&self) -> (u32, u32) {
            (self.sent.load(SeqCst), self.received.load(SeqCst))
        }
    }
}

#[cfg(all(test, not(loom)))]
#[path = "sigwake_tests.rs"]
mod tests;

#[cfg(all(loom, test))]
#[path = "sigwake_loom.rs"]
mod loom_models;
