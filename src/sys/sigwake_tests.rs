//! Race tests of the signal wake, for real: a waiter thread loops { begin;
//! blocking recv through the stub; end } while a canceller kicks it at
//! random moments, a watchdog fails (and rescues) any wait not ended within
//! its limit of the kick, data may flow (sequence-checked, counted), and
//! another thread may pelt the waiter with SIGUSR1 (a 3 µs handler, with
//! and without SA_RESTART). Each test is bounded in time (shorter with `CI`
//! set, and under an emulator: RSOCK_TEST_EMULATED). Two negative controls
//! switch off the PC redirect or the re-raise and must lose wake-ups.
//! The tests run one at a time (they share the process's signal state).
//! `cargo test --release --lib sigwake -- --nocapture` prints the numbers.

use super::imp::{self, NO_REDIRECT, NO_RERAISE, OUTSIDE, STATS};
use super::{SigWaiter, Stop};
use libc::{c_int, c_long};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn signo() -> c_int {
    libc::SIGRTMAX() - 2
}

fn installed() -> c_int {
    let s = signo();
    imp::install(s).expect("install the wake signal");
    s
}

fn emulated() -> bool {
    std::env::var_os("RSOCK_TEST_EMULATED").is_some()
}

/// The time budget of one race test.
fn budget() -> Duration {
    if std::env::var_os("CI").is_some() {
        Duration::from_secs(3)
    } else if emulated() {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(5)
    }
}

fn now_ns() -> u64 {
    crate::sys::monotonic_ns()
}

/// xorshift64*: the tests' randomness.
struct Rng(u64);
impl Rng {
    fn new(salt: u64) -> Rng {
        Rng((now_ns() ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn spin_ns(ns: u64) {
    let end = now_ns() + ns;
    while now_ns() < end {
        std::hint::spin_loop();
    }
}

fn gettid() -> i32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sock {
    Unix,
    Tcp,
}

/// A connected pair: (the waiter's end, the peer's end).
fn pair(kind: Sock) -> (c_int, c_int) {
    match kind {
        Sock::Unix => {
            let mut fds = [0 as c_int; 2];
            // SAFETY: `fds` has room for two descriptors.
            let r = unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    0,
                    fds.as_mut_ptr(),
                )
            };
            assert_eq!(r, 0, "socketpair");
            (fds[0], fds[1])
        }
        Sock::Tcp => {
            use std::os::unix::io::IntoRawFd;
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
            let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let (a, _) = l.accept().expect("accept");
            c.set_nodelay(true).expect("nodelay");
            (a.into_raw_fd(), c.into_raw_fd())
        }
    }
}

fn close(fd: c_int) {
    // SAFETY: the test owns `fd`.
    unsafe { libc::close(fd) };
}

fn send_bytes(fd: c_int, bytes: &[u8]) {
    // SAFETY: `bytes` is valid for reads of its length.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    assert_eq!(n, bytes.len() as isize, "send");
}

/// How long the noise handler spins: 3 µs, longer in the negative
/// controls (so that the kick often lands inside it).
static NOISE_SPIN_NS: AtomicU64 = AtomicU64::new(3_000);

/// Set while the noise handler runs.
static IN_NOISE: AtomicBool = AtomicBool::new(false);

/// The noise handler: spins (clock_gettime is async-signal-safe).
extern "C" fn noise_handler(_: c_int) {
    IN_NOISE.store(true, SeqCst);
    spin_ns(NOISE_SPIN_NS.load(SeqCst));
    IN_NOISE.store(false, SeqCst);
}

fn install_noise(restart: bool) {
    // SAFETY: sigaction is plain data; all-zero is valid.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = noise_handler as extern "C" fn(c_int) as usize;
    sa.sa_flags = if restart { libc::SA_RESTART } else { 0 };
    // SAFETY: a complete sigaction with an async-signal-safe handler.
    let r = unsafe {
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut())
    };
    assert_eq!(r, 0, "sigaction(SIGUSR1)");
}

#[derive(Clone, Copy, Debug)]
struct Cfg {
    name: &'static str,
    sock: Sock,
    /// The canceller sends 1-4 bytes before or after some kicks.
    data: bool,
    /// SIGUSR1 noise: None, or Some(SA_RESTART?).
    noise: Option<bool>,
    /// Random 0-3 µs delay between the token check and the call in half
    /// the trials.
    delay: bool,
    /// At most this many trials (and at most the time budget).
    trials: u64,
    /// The noise thread's longest pause between two signals.
    noise_gap_ns: u64,
    /// How long the noise handler spins.
    noise_spin_ns: u64,
    /// With noise: the percentage of (non-immediate) kicks made while the
    /// waiter runs the noise handler.
    kick_in_noise_pct: u64,
    watchdog: Duration,
}

#[derive(Default, Debug)]
struct Outcome {
    trials: u64,
    lost: u64,
    kicked: u64,
    interrupted: u64,
    saw_token_first: u64,
    bytes_sent: u64,
    bytes_received: u64,
    out_of_sequence: u64,
    eintr_after_end: u64,
    landed: u64,
    reraised: u64,
    stray: u64,
    foreign: u64,
    landed_offsets: Vec<(usize, u32)>,
    secs: f64,
}

struct Shared {
    started: AtomicU64,
    token: AtomicU64,
    kick_at: AtomicU64,
    ended: AtomicU64,
    kicked_done: AtomicU64,
    stop: AtomicBool,
    lost: AtomicU64,
    tid: AtomicI32,
    bytes_sent: AtomicU64,
}

fn wait_until(f: impl Fn() -> bool, stop: &AtomicBool) -> bool {
    let mut spins = 0u32;
    while !f() {
        if stop.load(SeqCst) {
            return false;
        }
        spins += 1;
        if spins < 200 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    true
}

const RESCUE: u8 = 0xFF;

fn snapshot() -> [u64; 4] {
    let landed: u64 = STATS.landed.iter().map(|c| c.load(SeqCst) as u64).sum();
    [
        landed,
        STATS.reraised.load(SeqCst) as u64,
        STATS.stray.load(SeqCst) as u64,
        STATS.foreign.load(SeqCst) as u64,
    ]
}

/// Runs one race; returns what happened (the caller asserts).
fn race(cfg: Cfg) -> Outcome {
    let signo = installed();
    if let Some(restart) = cfg.noise {
        NOISE_SPIN_NS.store(cfg.noise_spin_ns, SeqCst);
        install_noise(restart);
    }
    let (wfd, pfd) = pair(cfg.sock);
    let sh = Arc::new(Shared {
        started: AtomicU64::new(0),
        token: AtomicU64::new(0),
        kick_at: AtomicU64::new(0),
        ended: AtomicU64::new(0),
        kicked_done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        lost: AtomicU64::new(0),
        tid: AtomicI32::new(0),
        bytes_sent: AtomicU64::new(0),
    });
    let before = snapshot();
    let landed_before: Vec<u32> = STATS.landed.iter().map(|c| c.load(SeqCst)).collect();
    let deadline = Instant::now() + budget();
    let t0 = Instant::now();

    // The waiter.
    let waiter = {
        let sh = Arc::clone(&sh);
        std::thread::spawn(move || {
            let rec = imp::acquire().expect("record");
            RECORD.store(rec as *const SigWaiter as *mut SigWaiter, SeqCst);
            sh.tid.store(gettid(), SeqCst);
            OUTSIDE.store(rec as *const SigWaiter as *mut SigWaiter, SeqCst);
            let mut rng = Rng::new(1);
            let mut out = Outcome::default();
            let mut expect: u8 = 0;
            let mut buf = [0u8; 64];
            let (idle_r, idle_w) = {
                let mut p = [0 as c_int; 2];
                // SAFETY: room for two descriptors.
                assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
                (p[0], p[1])
            };
            let mut k = 0u64;
            while k < cfg.trials && Instant::now() < deadline {
                k += 1;
                if !wait_until(|| sh.kicked_done.load(SeqCst) + 1 >= k, &sh.stop) {
                    break;
                }
                sh.started.store(k, SeqCst);
                loop {
                    assert!(!imp::signal_blocked(signo), "the wake signal is blocked");
                    OUTSIDE.store(std::ptr::null_mut(), SeqCst);
                    rec.begin();
                    if sh.token.load(SeqCst) >= k {
                        rec.end();
                        OUTSIDE.store(rec as *const SigWaiter as *mut SigWaiter, SeqCst);
                        out.saw_token_first += 1;
                        break;
                    }
                    if cfg.delay && rng.below(2) == 0 {
                        spin_ns(rng.below(3_000));
                    }
                    let args = [
                        wfd as c_long,
                        buf.as_mut_ptr() as c_long,
                        buf.len() as c_long,
                        0,
                        0,
                        0,
                    ];
                    // SAFETY: recvfrom into `buf`, which outlives the call.
                    let r = unsafe { rec.call(libc::SYS_recvfrom, args) };
                    rec.end();
                    OUTSIDE.store(rec as *const SigWaiter as *mut SigWaiter, SeqCst);
                    match r {
                        Ok(0) => panic!("{}: unexpected end of stream", cfg.name),
                        Ok(n) => {
                            for &b in &buf[..n] {
                                if b == RESCUE {
                                    continue;
                                }
                                if b != expect {
                                    out.out_of_sequence += 1;
                                }
                                expect = if b >= 250 { 0 } else { b + 1 };
                                out.bytes_received += 1;
                            }
                        }
                        Err(Stop::Kicked) => {
                            out.kicked += 1;
                            if sh.token.load(SeqCst) >= k {
                                break;
                            }
                        }
                        Err(Stop::Interrupted) => out.interrupted += 1,
                        Err(Stop::Os(e)) => panic!("{}: recvfrom failed: {e:?}", cfg.name),
                    }
                }
                sh.ended.store(k, SeqCst);
                // Nothing of ours may interrupt a later plain call: a
                // blocking poll with a short timeout must not see EINTR
                // (without noise, which would).
                if cfg.noise.is_none() && k % 16 == 0 {
                    let mut p = libc::pollfd {
                        fd: idle_r,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    let ts = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 100_000,
                    };
                    // SAFETY: one valid pollfd, a valid timeout, no mask.
                    let r = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
                    if r < 0 && crate::sys::last_error() == libc::EINTR {
                        out.eintr_after_end += 1;
                    }
                }
            }
            out.trials = k;
            sh.stop.store(true, SeqCst);
            // Whatever is still queued: read it without waiting.
            if cfg.data {
                let mut quiet = 0;
                while quiet < 20 {
                    // SAFETY: recv into `buf`.
                    let n = unsafe {
                        libc::recv(wfd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT)
                    };
                    if n > 0 {
                        quiet = 0;
                        for &b in &buf[..n as usize] {
                            if b == RESCUE {
                                continue;
                            }
                            if b != expect {
                                out.out_of_sequence += 1;
                            }
                            expect = if b >= 250 { 0 } else { b + 1 };
                            out.bytes_received += 1;
                        }
                    } else {
                        quiet += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            OUTSIDE.store(std::ptr::null_mut(), SeqCst);
            close(idle_r);
            close(idle_w);
            imp::release(rec);
            out
        })
    };

    // Wait for the waiter's record.
    while RECORD.load(SeqCst).is_null() || sh.tid.load(SeqCst) == 0 {
        std::thread::yield_now();
    }
    // SAFETY: records are never freed.
    let rec: &'static SigWaiter = unsafe { &*RECORD.swap(std::ptr::null_mut(), SeqCst) };

    // The canceller.
    let canceller = {
        let sh = Arc::clone(&sh);
        std::thread::spawn(move || {
            let mut rng = Rng::new(2);
            let mut seq: u8 = 0;
            let mut next_bytes = |rng: &mut Rng| {
                let n = 1 + rng.below(4) as usize;
                let mut v = [0u8; 4];
                for b in v.iter_mut().take(n) {
                    *b = seq;
                    seq = if seq >= 250 { 0 } else { seq + 1 };
                }
                (v, n)
            };
            let mut k = 0u64;
            loop {
                k += 1;
                if !wait_until(|| sh.started.load(SeqCst) >= k, &sh.stop) {
                    break;
                }
                if rng.below(8) != 0 {
                    // After the waiter published its wait, a random spin.
                    if !wait_until(
                        || rec.active.load(SeqCst) != 0 || sh.ended.load(SeqCst) >= k,
                        &sh.stop,
                    ) {
                        break;
                    }
                    spin_ns(rng.below(2_000));
                    // With noise, in part of the trials: kick while the
                    // waiter runs the noise handler (the nested case),
                    // giving up after 2 ms.
                    if cfg.noise.is_some() && rng.below(100) < cfg.kick_in_noise_pct {
                        let until = now_ns() + 2_000_000;
                        while !IN_NOISE.load(SeqCst) && now_ns() < until {
                            std::hint::spin_loop();
                        }
                    }
                }
                let when = rng.below(3);
                if cfg.data && when == 0 {
                    let (v, n) = next_bytes(&mut rng);
                    send_bytes(pfd, &v[..n]);
                    sh.bytes_sent.fetch_add(n as u64, SeqCst);
                }
                sh.kick_at.store(now_ns(), SeqCst);
                sh.token.store(k, SeqCst);
                assert!(rec.kick(), "the signal could not be queued");
                if cfg.data && when == 1 {
                    let (v, n) = next_bytes(&mut rng);
                    send_bytes(pfd, &v[..n]);
                    sh.bytes_sent.fetch_add(n as u64, SeqCst);
                }
                sh.kicked_done.store(k, SeqCst);
            }
        })
    };

    // The watchdog: a wait not ended within the limit of its kick is lost;
    // a byte the waiter skips rescues it.
    let watchdog = {
        let sh = Arc::clone(&sh);
        std::thread::spawn(move || {
            let mut rescued = 0u64;
            while !sh.stop.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
                let t = sh.token.load(SeqCst);
                let at = sh.kick_at.load(SeqCst);
                if t > rescued
                    && sh.ended.load(SeqCst) < t
                    && sh.token.load(SeqCst) == t
                    && now_ns().saturating_sub(at) > cfg.watchdog.as_nanos() as u64
                {
                    rescued = t;
                    sh.lost.fetch_add(1, SeqCst);
                    send_bytes(pfd, &[RESCUE]);
                }
            }
        })
    };

    // The noise: SIGUSR1 to the waiter, as fast as it goes, with short
    // random pauses.
    let noise = cfg.noise.map(|_| {
        let sh = Arc::clone(&sh);
        std::thread::spawn(move || {
            let mut rng = Rng::new(3);
            // SAFETY: getpid cannot fail.
            let pid = unsafe { libc::getpid() };
            let tid = sh.tid.load(SeqCst);
            while !sh.stop.load(SeqCst) {
                // SAFETY: tgkill to a live thread of this process (the
                // waiter stops the loop before it exits).
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
                spin_ns(rng.below(cfg.noise_gap_ns));
            }
        })
    });

    let mut out = waiter.join().expect("waiter");
    sh.stop.store(true, SeqCst);
    canceller.join().expect("canceller");
    watchdog.join().expect("watchdog");
    if let Some(n) = noise {
        n.join().expect("noise");
    }
    close(wfd);
    close(pfd);
    let after = snapshot();
    out.secs = t0.elapsed().as_secs_f64();
    out.lost = sh.lost.load(SeqCst);
    out.bytes_sent = sh.bytes_sent.load(SeqCst);
    out.landed = after[0] - before[0];
    out.reraised = after[1] - before[1];
    out.stray = after[2] - before[2];
    out.foreign = after[3] - before[3];
    out.landed_offsets = STATS
        .landed
        .iter()
        .zip(landed_before)
        .enumerate()
        .filter_map(|(i, (c, b))| {
            let d = c.load(SeqCst) - b;
            (d > 0).then_some((i, d))
        })
        .collect();
    eprintln!("sigwake race {}: {:?}", cfg.name, out);
    out
}

static RECORD: std::sync::atomic::AtomicPtr<SigWaiter> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

fn trials() -> u64 {
    if emulated() {
        100_000
    } else {
        200_000
    }
}

fn cfg(name: &'static str) -> Cfg {
    Cfg {
        name,
        sock: Sock::Unix,
        data: false,
        noise: None,
        delay: false,
        trials: trials(),
        noise_gap_ns: 5_000,
        noise_spin_ns: 3_000,
        kick_in_noise_pct: 50,
        watchdog: Duration::from_secs(1),
    }
}

fn assert_clean(o: &Outcome) {
    assert!(o.trials >= 100, "too few trials: {o:?}");
    assert_eq!(o.lost, 0, "lost wake-ups: {o:?}");
    assert_eq!(o.stray, 0, "signals after end: {o:?}");
    assert_eq!(o.eintr_after_end, 0, "EINTR after end: {o:?}");
    assert_eq!(o.out_of_sequence, 0, "bytes out of sequence: {o:?}");
    assert_eq!(o.bytes_sent, o.bytes_received, "bytes lost: {o:?}");
}

#[test]
fn install_refuses_and_is_idempotent() {
    let _g = serial();
    assert_eq!(
        imp::install(libc::SIGUSR1),
        Err(crate::sys::Error(libc::EINVAL))
    );
    assert_eq!(imp::install(0), Err(crate::sys::Error(libc::EINVAL)));
    assert_eq!(
        imp::install(libc::SIGRTMAX() + 1),
        Err(crate::sys::Error(libc::EINVAL))
    );
    // A signal with another disposition (here SIG_IGN) is not taken.
    let other = libc::SIGRTMAX() - 5;
    // SAFETY: ignoring a real-time signal nobody else uses in the tests.
    unsafe { libc::signal(other, libc::SIG_IGN) };
    assert_eq!(imp::install(other), Err(crate::sys::Error(libc::EBUSY)));
    let s = installed();
    assert_eq!(imp::install(s), Ok(()));
    assert_eq!(imp::installed(), s);
    // One signal per process.
    assert_eq!(imp::install(s - 1), Err(crate::sys::Error(libc::EBUSY)));
}

#[test]
fn kick_before_the_call_and_during_it() {
    let _g = serial();
    let signo = installed();
    let (a, b) = pair(Sock::Unix);
    let rec = imp::acquire().expect("record");
    let mut buf = [0u8; 8];
    let args = [a as c_long, buf.as_mut_ptr() as c_long, 8, 0, 0, 0];
    // Kicked before the call: the stub does not enter the kernel, and the
    // queued byte stays.
    send_bytes(b, b"x");
    rec.begin();
    assert!(rec.kick());
    // SAFETY: recvfrom into `buf`.
    assert_eq!(
        unsafe { rec.call(libc::SYS_recvfrom, args) },
        Err(Stop::Kicked)
    );
    rec.end();
    // SAFETY: as above.
    let n = unsafe { libc::recv(a, buf.as_mut_ptr().cast(), 8, 0) };
    assert_eq!(n, 1);
    // Kicked while blocked: returns within a second.
    rec.begin();
    let p = rec as *const SigWaiter as usize;
    let kicker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: records are never freed.
        assert!(unsafe { &*(p as *const SigWaiter) }.kick());
    });
    let t = Instant::now();
    // SAFETY: as above.
    let r = unsafe { rec.call(libc::SYS_recvfrom, args) };
    rec.end();
    kicker.join().expect("kicker");
    assert_eq!(r, Err(Stop::Kicked));
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(
        !imp::signal_blocked(signo),
        "end leaves the signal unblocked"
    );
    // Data still flows; a later blocking call is not interrupted.
    send_bytes(b, b"yz");
    rec.begin();
    // SAFETY: as above.
    assert_eq!(unsafe { rec.call(libc::SYS_recvfrom, args) }, Ok(2));
    rec.end();
    imp::release(rec);
    close(a);
    close(b);
}

#[test]
fn blocked_signal_is_reported() {
    let _g = serial();
    let signo = installed();
    assert!(!imp::signal_blocked(signo));
    // SAFETY: sigset operations on a local set; the mask is restored.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signo);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        assert!(imp::signal_blocked(signo));
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    assert!(!imp::signal_blocked(signo));
}

#[test]
fn race_silent_unix() {
    let _g = serial();
    assert_clean(&race(cfg("silent AF_UNIX")));
}

#[test]
fn race_silent_delay_unix() {
    let _g = serial();
    assert_clean(&race(Cfg {
        delay: true,
        ..cfg("silent AF_UNIX + 0-3 us delay")
    }));
}

#[test]
fn race_data_unix() {
    let _g = serial();
    let o = race(Cfg {
        data: true,
        ..cfg("data AF_UNIX")
    });
    assert_clean(&o);
    assert!(o.bytes_received > 0);
}

#[test]
fn race_data_tcp() {
    let _g = serial();
    let o = race(Cfg {
        data: true,
        sock: Sock::Tcp,
        ..cfg("data TCP")
    });
    assert_clean(&o);
    assert!(o.bytes_received > 0);
}

#[test]
fn race_noise_restart() {
    let _g = serial();
    assert_clean(&race(Cfg {
        noise: Some(true),
        data: true,
        ..cfg("data AF_UNIX + SIGUSR1 noise with SA_RESTART")
    }));
}

#[test]
fn race_noise_no_restart() {
    let _g = serial();
    assert_clean(&race(Cfg {
        noise: Some(false),
        data: true,
        ..cfg("data AF_UNIX + SIGUSR1 noise without SA_RESTART")
    }));
}

/// Restores a test switch when dropped.
struct Switch(&'static AtomicBool);
impl Drop for Switch {
    fn drop(&mut self) {
        self.0.store(false, SeqCst);
    }
}

fn negative(name: &'static str, switch: &'static AtomicBool) -> Outcome {
    let _g = serial();
    switch.store(true, SeqCst);
    let _s = Switch(switch);
    race(Cfg {
        noise: Some(true),
        trials: 300,
        noise_gap_ns: 500,
        noise_spin_ns: 20_000,
        kick_in_noise_pct: 100,
        watchdog: Duration::from_millis(50),
        ..cfg(name)
    })
}

/// Negative control: without the PC redirect, SA_RESTART noise loses
/// wake-ups (the test can fail).
#[test]
fn negative_no_redirect_loses_wakeups() {
    let o = negative("NEGATIVE: no redirect, SA_RESTART noise", &NO_REDIRECT);
    assert!(
        o.lost > 0,
        "expected lost wake-ups without the redirect: {o:?}"
    );
}

/// Negative control: without the re-raise, SA_RESTART noise loses
/// wake-ups.
#[test]
fn negative_no_reraise_loses_wakeups() {
    let o = negative("NEGATIVE: no re-raise, SA_RESTART noise", &NO_RERAISE);
    assert!(
        o.lost > 0,
        "expected lost wake-ups without the re-raise: {o:?}"
    );
}

#[test]
fn nonblocking_socket_reports_eagain() {
    let _g = serial();
    installed();
    let (a, b) = pair(Sock::Unix);
    // SAFETY: fcntl on a descriptor the test owns.
    unsafe {
        let fl = libc::fcntl(a, libc::F_GETFL);
        libc::fcntl(a, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let rec = imp::acquire().expect("record");
    let mut buf = [0u8; 8];
    let args = [a as c_long, buf.as_mut_ptr() as c_long, 8, 0, 0, 0];
    rec.begin();
    // SAFETY: recvfrom into `buf`.
    let r = unsafe { rec.call(libc::SYS_recvfrom, args) };
    rec.end();
    assert_eq!(r, Err(Stop::Os(crate::sys::Error(libc::EAGAIN))));
    imp::release(rec);
    close(a);
    close(b);
}

/// The record a SIGUSR2 handler kicks (the waiter's own, from a handler
/// that interrupted its wait: `rsock_cancel` is async-signal-safe).
static SELF_KICK: std::sync::atomic::AtomicPtr<SigWaiter> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

extern "C" fn self_kick_handler(_: c_int) {
    let p = SELF_KICK.load(SeqCst);
    if !p.is_null() {
        // SAFETY: records are never freed.
        let _ = unsafe { &*p }.kick();
    }
}

/// A cancel from a signal handler that interrupted the wait itself (with
/// and without SA_RESTART): our signal arrives inside that handler, is
/// re-raised, and lands on the restarted system call (or the call fails
/// with EINTR): the wait ends, every time.
#[test]
fn kick_from_a_handler_that_interrupted_the_wait() {
    let _g = serial();
    let signo = installed();
    let rounds = if emulated() { 50 } else { 200 };
    for restart in [true, false] {
        // SAFETY: sigaction is plain data; all-zero is valid.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = self_kick_handler as extern "C" fn(c_int) as usize;
        sa.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        // SAFETY: a complete sigaction with an async-signal-safe handler.
        assert_eq!(
            unsafe {
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut())
            },
            0
        );
        let (a, b) = pair(Sock::Unix);
        let before = snapshot();
        let tid = Arc::new(AtomicI32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (tid, stop) = (Arc::clone(&tid), Arc::clone(&stop));
            std::thread::spawn(move || {
                let rec = imp::acquire().expect("record");
                SELF_KICK.store(rec as *const SigWaiter as *mut SigWaiter, SeqCst);
                let mut buf = [0u8; 8];
                let args = [a as c_long, buf.as_mut_ptr() as c_long, 8, 0, 0, 0];
                let mut kicked = 0;
                for _ in 0..rounds {
                    rec.begin();
                    tid.store(gettid(), SeqCst);
                    // SAFETY: recvfrom into `buf`.
                    let r = unsafe { rec.call(libc::SYS_recvfrom, args) };
                    tid.store(0, SeqCst);
                    rec.end();
                    assert!(!imp::signal_blocked(signo));
                    match r {
                        Err(Stop::Kicked) => kicked += 1,
                        other => panic!("restart={restart}: {other:?}"),
                    }
                }
                stop.store(true, SeqCst);
                SELF_KICK.store(std::ptr::null_mut(), SeqCst);
                imp::release(rec);
                kicked
            })
        };
        // SAFETY: getpid cannot fail.
        let pid = unsafe { libc::getpid() };
        let t0 = Instant::now();
        while !stop.load(SeqCst) {
            let t = tid.load(SeqCst);
            if t != 0 {
                // Let it block first, sometimes.
                spin_ns(now_ns() % 20_000);
                // SAFETY: tgkill to a thread of this process that is alive
                // until `stop`; a signal after its wait is harmless.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, t, libc::SIGUSR2) };
                std::thread::sleep(Duration::from_micros(200));
            } else {
                std::thread::yield_now();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "restart={restart}: a wait was not woken"
            );
        }
        let kicked = waiter.join().expect("waiter");
        let after = snapshot();
        eprintln!(
            "sigwake self-kick restart={restart}: {kicked}/{rounds} kicked, {} window landings, {} re-raises, {} stray",
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        );
        assert_eq!(kicked, rounds);
        close(a);
        close(b);
    }
}
