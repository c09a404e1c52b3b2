//! Model checks of the signal-wake handshake with loom (`make loom-test`):
//! the real `SigWaiter::kick`, `begin` and `end`, with the signal modelled
//! as a count of queued signals (`sigwake::model`) that the waiter's sleep
//! in the kernel and `end`'s absorb take. The token is a flag. Each model
//! checks, in every interleaving (the three-thread one up to 3
//! preemptions):
//!
//! - no lost wake-up: a waiter that goes to sleep in the kernel (its token
//!   check saw no cancel and the stub's load of `kicked` read 0) has a
//!   signal queued to it by a canceller that cancelled after it started;
//! - no stray signal: once `end` has returned (and the cancellers are
//!   done) no signal is queued to the waiter, and every signal sent was
//!   taken while the waiter was inside its wait.

use super::SigWaiter;
use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The token check after `begin` saw the cancel.
    SawToken,
    /// The stub's load saw `kicked`: it did not enter the kernel.
    StubSawKick,
    /// It slept in the kernel and a signal woke it.
    Woken,
    /// It slept in the kernel and nothing woke it: a lost wake-up.
    Lost,
}

/// A canceller as `rsock_cancel` runs it: sets the token, then kicks the
/// record it found registered on the token. `done` counts cancellers that
/// have finished.
fn cancel(token: &AtomicBool, rec: &SigWaiter, done: &AtomicU32) {
    token.store(true, SeqCst);
    assert!(rec.kick(), "the model's send cannot fail");
    done.fetch_add(1, SeqCst);
}

/// A waiter, registered on the token before this: begin, check the token,
/// the stub's load, then sleep until a signal arrives (or, every canceller
/// being done with none queued, report the loss), then end.
fn wait(token: &AtomicBool, rec: &SigWaiter, done: &AtomicU32, cancellers: u32) -> Ended {
    rec.begin();
    let ended = if token.load(SeqCst) {
        Ended::SawToken
    } else if rec.stub_sees_kick() {
        Ended::StubSawKick
    } else {
        loop {
            if rec.deliver() {
                break Ended::Woken;
            }
            if done.load(SeqCst) == cancellers {
                // Nothing can be sent any more: one last look.
                break if rec.deliver() {
                    Ended::Woken
                } else {
                    Ended::Lost
                };
            }
            thread::yield_now();
        }
    };
    rec.end();
    ended
}

/// After `end` and the cancellers: nothing queued, nothing unaccounted.
fn assert_no_stray(rec: &SigWaiter) {
    assert_eq!(
        rec.model.pending.load(SeqCst),
        0,
        "a signal is queued to the waiter after end"
    );
    let (sent, received) = rec.counts();
    assert_eq!(sent, received, "a signal sent was not taken in the wait");
}

/// Proves: one cancel racing one wait (before `begin`, between `begin`
/// and the token check, between the check and the stub's load, while it
/// sleeps, during or after `end`) never loses the wake-up and leaves no
/// signal behind.
#[test]
fn sigwake_kick_racing_a_wait() {
    loom::model(|| {
        let token = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU32::new(0));
        let rec = SigWaiter::model_new();
        let (t2, d2) = (token.clone(), done.clone());
        let canceller = thread::spawn(move || cancel(&t2, rec, &d2));
        let ended = wait(&token, rec, &done, 1);
        canceller.join().expect("canceller");
        assert_ne!(ended, Ended::Lost, "lost wake-up");
        assert_no_stray(rec);
    });
}

/// Proves: the same with two cancellers (say a token and its parent),
/// whose kicks may both send: both signals are taken before `end`
/// returns, and none is lost.
#[test]
fn sigwake_two_kicks_racing_a_wait() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let token = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU32::new(0));
        let rec = SigWaiter::model_new();
        let spawn = || {
            let (t, d) = (token.clone(), done.clone());
            thread::spawn(move || cancel(&t, rec, &d))
        };
        let (a, b) = (spawn(), spawn());
        let ended = wait(&token, rec, &done, 2);
        a.join().expect("canceller");
        b.join().expect("canceller");
        assert_ne!(ended, Ended::Lost, "lost wake-up");
        assert_no_stray(rec);
    });
}

/// Proves: a kick of an earlier wait that arrives late (its canceller
/// found the record before the waiter moved on) at most wakes the next
/// wait spuriously: the second wait, whose token is never cancelled,
/// either sleeps with nothing queued (no signal in its future) or is
/// woken, and nothing is left queued after it ends.
#[test]
fn sigwake_late_kick_and_the_next_wait() {
    loom::model(|| {
        let first = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU32::new(0));
        let rec = SigWaiter::model_new();
        let (t2, d2) = (first.clone(), done.clone());
        let canceller = thread::spawn(move || cancel(&t2, rec, &d2));
        let ended = wait(&first, rec, &done, 1);
        assert_ne!(ended, Ended::Lost, "lost wake-up");
        // The next wait, on a token nobody cancels: it may see the late
        // kick (stub or signal) but must not hang on a queued signal
        // after end.
        let second = AtomicBool::new(false);
        let _ = wait(&second, rec, &done, 1);
        canceller.join().expect("canceller");
        assert_no_stray(rec);
    });
}
