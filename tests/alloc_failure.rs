//! Allocation failure inside the library: every call made from C fails
//! cleanly (`ENOMEM`, NULL, or `EAI_MEMORY`/`EAI_SYSTEM`) when memory runs
//! out, instead of aborting the process as Rust's allocations do by default,
//! and works again once memory is back.
//!
//! This binary's global allocator fails the n-th allocation made by the
//! calling thread while armed. Each scenario runs with n = 0, 1, 2, ...
//! until a run makes no n-th allocation, so every allocation the call makes
//! is failed once.

mod common;

use common::{errno, open_handles as open_fds, pair, Raw};
use rsock::ffi::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::CString;
use std::net::TcpListener;
use std::sync::{mpsc, Mutex};
use std::thread;

struct FailingAlloc;

thread_local! {
    /// Allocations left before the one to fail; negative when disarmed.
    static LEFT: Cell<i64> = const { Cell::new(-1) };
    static FAILED: Cell<bool> = const { Cell::new(false) };
}

fn should_fail() -> bool {
    LEFT.try_with(|left| match left.get() {
        n if n < 0 => false,
        0 => {
            left.set(-1);
            let _ = FAILED.try_with(|f| f.set(true));
            true
        }
        n => {
            left.set(n - 1);
            false
        }
    })
    .unwrap_or(false)
}

// SAFETY: forwards to System, or returns null (an allowed result).
unsafe impl GlobalAlloc for FailingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if should_fail() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if should_fail() {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        if should_fail() {
            return std::ptr::null_mut();
        }
        // SAFETY: `p` came from this allocator with `layout`.
        unsafe { System.realloc(p, layout, size) }
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: `p` came from this allocator with `layout`.
        unsafe { System.dealloc(p, layout) }
    }
}

#[global_allocator]
static ALLOC: FailingAlloc = FailingAlloc;

/// Runs `f` with the n-th allocation of this thread failing; returns its
/// result and whether that allocation happened.
fn with_failure<R>(n: i64, f: impl FnOnce() -> R) -> (R, bool) {
    FAILED.with(|x| x.set(false));
    LEFT.with(|x| x.set(n));
    let r = f();
    LEFT.with(|x| x.set(-1));
    (r, FAILED.with(|x| x.get()))
}

/// Calls `run(n)` for n = 0, 1, ... until it reports no injected failure;
/// returns how many allocations were failed.
fn every_failure_point(mut run: impl FnMut(i64) -> bool) -> i64 {
    for n in 0..10_000 {
        if !run(n) {
            return n;
        }
    }
    panic!("the call never stopped allocating");
}

/// One scenario at a time, in this order: descriptor counts are per
/// process, and the count in the first must not see the resolver pool's
/// threads exit (on Windows each holds a handle while it lives; they go
/// 2 s after their last lookup, in `other_calls`).
#[test]
fn allocation_failures() {
    first_wait_of_a_thread();
    wait_on_a_deep_chain();
    other_calls();
}

/// A thread's first wait (its waiter record, wake descriptor and
/// registration slots) on a fresh three-level token chain.
fn first_wait_of_a_thread() {
    let (a, _b) = pair();
    let fd = a.raw();
    let baseline = open_fds();
    // Threads stay alive (parked) until the end, so that each new one needs
    // a new waiter record instead of reusing a finished thread's.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Arc::new(Mutex::new(release_rx));
    let mut parked = Vec::new();
    let failures = every_failure_point(|n| {
        let (tx, rx) = mpsc::channel();
        let release = release_rx.clone();
        parked.push(thread::spawn(move || {
            let root = rsock_token_new();
            let mid = rsock_token_child(root);
            let leaf = rsock_token_child(mid);
            assert!(!leaf.is_null());
            let mut byte = 0u8;
            let ((rc, err), hit) = with_failure(n, || {
                let rc = rsock_recv(leaf, fd, (&mut byte as *mut u8).cast(), 1, 0, 1);
                (rc, errno())
            });
            assert_eq!(rc, -1);
            if hit {
                assert!(
                    err == common::ENOMEM || err == common::ETIMEDOUT,
                    "allocation {n} failed: errno {err}"
                );
            } else {
                assert_eq!(err, common::ETIMEDOUT);
            }
            // With memory back, the thread waits and is cancelled normally.
            rsock_cancel(root);
            let rc = rsock_recv(leaf, fd, (&mut byte as *mut u8).cast(), 1, 0, 1000);
            assert_eq!((rc, errno()), (-1, common::ECANCELED));
            for t in [leaf, mid, root] {
                rsock_token_unref(t);
            }
            tx.send(hit).expect("report");
            let _ = release.lock().map(|r| r.recv());
        }));
        rx.recv().expect("the thread reports (it did not abort)")
    });
    drop(release_tx);
    for t in parked {
        t.join().expect("thread");
    }
    assert!(failures >= 3, "a first wait allocates: {failures} failures");
    assert_eq!(open_fds(), baseline, "no wake descriptor is left behind");
}

/// Registration on a token chain deeper than the 16 tokens kept on the
/// stack, where the first waiter on each token appends a slot segment.
fn wait_on_a_deep_chain() {
    let (a, _b) = pair();
    let fd = a.raw();
    let failures = every_failure_point(|n| {
        let mut chain = vec![rsock_token_new()];
        for _ in 0..20 {
            let next = rsock_token_child(*chain.last().expect("root"));
            chain.push(next);
        }
        let leaf = *chain.last().expect("leaf");
        let ((rc, err), hit) =
            with_failure(n, || (rsock_block(leaf, fd, RSOCK_READABLE, 1), errno()));
        assert_eq!(rc, -1);
        assert!(
            err == common::ENOMEM || err == common::ETIMEDOUT,
            "errno {err}"
        );
        assert_eq!(
            err == common::ENOMEM,
            hit,
            "ENOMEM exactly when memory ran out"
        );
        // A cancel of the root still reaches a waiter on the leaf.
        let root = chain[0];
        let waiter = thread::spawn({
            let leaf = Shared(rsock_token_ref(leaf));
            move || {
                let leaf = leaf;
                let rc = rsock_block(leaf.0, fd, RSOCK_READABLE, 10_000);
                let err = errno();
                rsock_token_unref(leaf.0);
                (rc, err)
            }
        });
        thread::sleep(std::time::Duration::from_millis(5));
        rsock_cancel(root);
        assert_eq!(waiter.join().expect("waiter"), (-1, common::ECANCELED));
        for t in chain {
            rsock_token_unref(t);
        }
        hit
    });
    assert!(failures >= 21, "each token's first waiter takes a segment");
}

struct Shared(*mut rsock_token);
// SAFETY: tokens are thread-safe; the receiving thread owns this reference.
unsafe impl Send for Shared {}

/// Every other call that can allocate: tokens, the thread token, a poll
/// over more entries than fit on the stack, name resolution on the pool,
/// and connecting by name.
fn other_calls() {
    // Tokens: NULL with ENOMEM.
    let failures = every_failure_point(|n| {
        let root = rsock_token_new();
        let ((child, err), hit) = with_failure(n, || (rsock_token_child(root), errno()));
        assert_eq!(child.is_null(), hit);
        if hit {
            assert_eq!(err, common::ENOMEM);
        }
        rsock_token_unref(child);
        let ((fresh, err), hit2) = with_failure(n, || (rsock_token_new(), errno()));
        assert_eq!(fresh.is_null(), hit2);
        if hit2 {
            assert_eq!(err, common::ENOMEM);
        }
        rsock_token_unref(fresh);
        rsock_token_unref(root);
        hit || hit2
    });
    assert!(failures >= 1);

    // The thread token, on a fresh thread each time.
    let failures = every_failure_point(|n| {
        thread::spawn(move || {
            let ((t, err), hit) = with_failure(n, || (rsock_thread_token(), errno()));
            assert!(
                !hit || (t.is_null() && err == common::ENOMEM),
                "errno {err}"
            );
            assert!(hit || !t.is_null());
            rsock_token_unref(t);
            let t = rsock_thread_token();
            assert!(!t.is_null(), "works with memory back");
            rsock_token_unref(t);
            hit
        })
        .join()
        .expect("thread")
    });
    assert!(failures >= 1);

    // poll over 40 entries (the stack holds 16).
    let pairs: Vec<_> = (0..40).map(|_| pair()).collect();
    let failures = every_failure_point(|n| {
        let mut fds: Vec<rsock_pollfd> = pairs
            .iter()
            .map(|(a, _)| common::readable(a.raw()))
            .collect();
        let t = rsock_token_new();
        let ((rc, err), hit) = with_failure(n, || {
            (rsock_poll(t, fds.as_mut_ptr(), fds.len(), 1), errno())
        });
        assert_eq!(if hit { (-1, common::ENOMEM) } else { (0, err) }, (rc, err));
        rsock_token_unref(t);
        hit
    });
    assert!(failures >= 1);

    // getaddrinfo on the resolver pool: EAI_SYSTEM with ENOMEM (or the
    // system's EAI_MEMORY).
    let node = CString::new("127.0.0.1").expect("name");
    let failures = every_failure_point(|n| {
        let mut res = std::ptr::null_mut();
        let ((rc, err), hit) = with_failure(n, || {
            let rc = rsock_getaddrinfo(
                std::ptr::null_mut(),
                node.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                &mut res,
                5000,
            );
            (rc, errno())
        });
        if rc == 0 {
            // SAFETY: a list returned by rsock_getaddrinfo.
            unsafe { common::freeaddrinfo(res) };
        } else {
            assert!(hit, "failed without an allocation failure: {rc}");
            assert!(
                rc == common::EAI_MEMORY || (rc == common::EAI_SYSTEM && err == common::ENOMEM),
                "rc {rc} errno {err}"
            );
        }
        hit
    });
    assert!(failures >= 1);

    // connect by name (the name goes to the pool).
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = CString::new(listener.local_addr().expect("addr").port().to_string()).expect("port");
    let host = CString::new("localhost").expect("host");
    let failures = every_failure_point(|n| {
        let ((s, err), hit) = with_failure(n, || {
            let s = rsock_connect_host(
                std::ptr::null_mut(),
                host.as_ptr(),
                port.as_ptr(),
                common::SOCK_STREAM,
                5000,
            );
            (s, errno())
        });
        if s != common::INVALID_SOCKET {
            common::close(s);
            let _ = listener.accept();
        } else {
            assert!(hit, "failed without an allocation failure: errno {err}");
            assert_eq!(err, common::ENOMEM);
        }
        hit
    });
    assert!(failures >= 3);
}
