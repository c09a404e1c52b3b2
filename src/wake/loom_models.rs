//! Model checks of the wake protocol with loom (`make loom-test`). Each
//! model runs the real token and waiter-record code in every interleaving
//! of its threads (the two-thread models exhaustively; the three-thread one
//! up to 3 preemptions). Wake descriptors are modelled by
//! `sys::model`: signalling a closed one fails the model. Token memory goes
//! through loom's allocator, which fails a model that leaks or frees twice.

use super::crowd::Crowd;
use super::token::{Slot, Token};
use super::waiter::{model_record, Waiter};
use crate::sys::model;
use loom::thread;

/// A waiter as a blocking call runs it: the call's epoch is read when the
/// call starts; then the thread opens its descriptor, registers on the
/// token and its ancestors, makes the call's cancel check
/// (`Token::cancelled_since`, as `Call::check` does) and reads the chain's
/// deadline (as `Call::check` and `Deadline::remaining_ms` do, to choose
/// how long poll may sleep) before it would sleep in poll.
struct Sleeper {
    rec: &'static Waiter,
    fd: i32,
    slots: Vec<Slot>,
    /// The token's epoch when the call started.
    epoch: u64,
    /// Whether the check after registering saw a cancel.
    saw_cancel: bool,
    /// The chain's deadline read after registering.
    deadline: u64,
}

impl Sleeper {
    fn start(t: &Token) -> Sleeper {
        let epoch = t.epoch();
        let rec = model_record();
        let fd = model::open();
        rec.open(fd);
        let mut slots = Vec::new();
        let own = t.register(rec, &mut slots).expect("memory");
        slots.push(own);
        let saw_cancel = t.cancelled_since(epoch);
        let deadline = t.deadline();
        Sleeper {
            rec,
            fd,
            slots,
            epoch,
            saw_cancel,
            deadline,
        }
    }

    /// The deadline property: a deadline moved to `at` (earlier than the
    /// waiter would otherwise sleep until) after the call started is never
    /// missed: the waiter's read saw it (or an earlier one), or its
    /// descriptor was signalled, so poll returns and the wait reads again.
    fn assert_deadline_not_missed(&self, at: u64) {
        assert!(
            self.deadline <= at || model::signalled(self.fd),
            "missed a deadline moved earlier"
        );
    }

    /// The property every model checks: a cancel that came after the call
    /// started is never lost: the call saw it, or its descriptor (which
    /// poll watches) was signalled.
    fn assert_not_lost(&self) {
        assert!(
            self.epoch > 0 || self.saw_cancel || model::signalled(self.fd),
            "lost wake-up"
        );
    }

    /// Leaves as a thread does: releases its slots, closes the record to
    /// cancellers and waits for any inside `wake`, then closes the
    /// descriptor.
    fn leave(self) {
        for s in self.slots {
            s.release();
        }
        self.rec.retire();
        model::close(self.fd);
    }
}

/// Proves: a cancel racing with a waiter's registration is seen by the
/// waiter's check or wakes it.
#[test]
fn cancel_racing_registration() {
    loom::model(|| {
        let t = Token::new();
        let t2 = t.clone();
        let canceller = thread::spawn(move || t2.cancel());
        let s = Sleeper::start(&t);
        canceller.join().expect("canceller");
        s.assert_not_lost();
        s.leave();
    });
}

/// Proves: the express lane's wait (`wait::wait_express`) loses no cancel,
/// even one followed at once by a reset or a deadline: its registration
/// (`register_express`, a slot in the first segment) comes before its check
/// (`Call::unchanged`: still a plain root at the call's epoch), which sees
/// the change, or the change's scan signals it.
#[test]
fn cancel_racing_express_registration() {
    for then in [0, 1, 2] {
        loom::model(move || {
            let t = Token::new();
            // An earlier waiter made the segment, which the lane needs.
            let mut none = Vec::new();
            t.register(model_record(), &mut none)
                .expect("memory")
                .release();
            let t2 = t.clone();
            let other = thread::spawn(move || match then {
                0 => t2.cancel(),
                1 => {
                    t2.cancel();
                    t2.reset();
                }
                _ => t2.set_deadline(5),
            });
            // The call starts on the lane only on a plain root.
            if let Some(epoch) = t.root_plain_epoch() {
                let rec = model_record();
                let fd = model::open();
                rec.open(fd);
                let slot = t.register_express(rec).expect("a free slot");
                let unchanged = t.root_plain_epoch() == Some(epoch);
                other.join().expect("other");
                // A cancel (and reset) before the call started: nothing to
                // see. (A deadline set before it keeps it off the lane.)
                let before = epoch > 0;
                assert!(before || !unchanged || model::signalled(fd), "lost wake-up");
                slot.release();
                rec.retire();
                model::close(fd);
            } else {
                other.join().expect("other");
            }
        });
    }
}

/// Proves: a cancel followed at once by a reset, racing with a waiter, is
/// still seen by a call that started before the cancel (the epoch moved),
/// and the reset leaves the token usable (not cancelled).
#[test]
fn cancel_racing_reset() {
    loom::model(|| {
        let t = Token::new();
        let t2 = t.clone();
        let other = thread::spawn(move || {
            t2.cancel();
            t2.reset();
        });
        let s = Sleeper::start(&t);
        other.join().expect("canceller");
        s.assert_not_lost();
        assert!(
            !t.is_cancelled(),
            "reset after the cancel re-arms the token"
        );
        s.leave();
    });
}

/// Proves: resets are linearisable with a cancel and with each other. One
/// thread cancels and then resets; another resets once, racing with both.
/// Whatever the interleaving, the token ends up not cancelled: the early
/// reset may read the count before the cancel, but cannot store it over
/// the later reset (before the fix it could, re-cancelling the token).
#[test]
fn two_resets_racing_a_cancel() {
    loom::model(|| {
        let t = Token::new();
        let t2 = t.clone();
        let t3 = t.clone();
        let early = thread::spawn(move || t2.reset());
        let canceller = thread::spawn(move || {
            t3.cancel();
            t3.reset();
        });
        early.join().expect("resetter");
        canceller.join().expect("canceller");
        assert!(!t.is_cancelled(), "a reset after the last cancel re-arms");
    });
}

/// Proves: the same for a child token, whose count is summed along its
/// chain, with the canceller cancelling the parent.
#[test]
fn two_resets_of_a_child_racing_a_parent_cancel() {
    loom::model(|| {
        let parent = Token::new();
        let child = parent.child();
        let c2 = child.clone();
        let c3 = child.clone();
        let p2 = parent.clone();
        let early = thread::spawn(move || c2.reset());
        let canceller = thread::spawn(move || {
            p2.cancel();
            p2.reset();
            c3.reset();
        });
        early.join().expect("resetter");
        canceller.join().expect("canceller");
        assert!(
            !child.is_cancelled(),
            "a reset after the last cancel re-arms"
        );
        assert!(!parent.is_cancelled());
    });
}

/// Proves: a cancel through one reference racing with the release of the
/// last other reference frees the token exactly once (loom's allocator
/// checks), and never signals a waiter that has left.
#[test]
fn cancel_racing_last_unref() {
    loom::model(|| {
        let t = Token::new();
        let t2 = t.clone();
        let s = Sleeper::start(&t);
        let canceller = thread::spawn(move || {
            t2.cancel();
            drop(t2);
        });
        s.leave();
        drop(t);
        canceller.join().expect("canceller");
    });
}

/// Proves: a child created while its parent is being cancelled ends up
/// cancelled in its own right (it stays cancelled when the parent is then
/// reset: born before the cancel, the cancel reached it; born after, it
/// was born cancelled), and a waiter on that child is not lost.
#[test]
fn parent_cancel_racing_child_creation() {
    loom::model(|| {
        let parent = Token::new();
        let p2 = parent.clone();
        let canceller = thread::spawn(move || p2.cancel());
        let child = parent.child();
        let s = Sleeper::start(&child);
        canceller.join().expect("canceller");
        s.assert_not_lost();
        parent.reset();
        assert!(
            child.is_cancelled(),
            "the parent's cancel reaches the child"
        );
        s.leave();
    });
}

/// Proves: a cancel and a reset of one token from two threads, racing with
/// a waiter's registration, never lose the waiter's wake-up, and leave the
/// token's counts consistent (a later reset re-arms it, a later cancel
/// cancels it).
#[test]
fn cancel_and_reset_from_two_threads() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let t = Token::new();
        let (t2, t3) = (t.clone(), t.clone());
        let canceller = thread::spawn(move || t2.cancel());
        let resetter = thread::spawn(move || t3.reset());
        let s = Sleeper::start(&t);
        canceller.join().expect("canceller");
        resetter.join().expect("resetter");
        s.assert_not_lost();
        t.reset();
        assert!(!t.is_cancelled(), "a reset re-arms the token");
        t.cancel();
        assert!(t.is_cancelled(), "a cancel cancels it");
        s.leave();
    });
}

/// Proves: `is_cancelled` never reports a token that stays cancelled
/// throughout as not cancelled, even while one cancel and one reset
/// elsewhere in its chain change the sums it reads (here the token is
/// cancelled through its parent, then by itself, as the parent is reset).
#[test]
fn is_cancelled_while_counts_move() {
    loom::model(|| {
        let parent = Token::new();
        let child = parent.child();
        parent.cancel();
        child.reset(); // still cancelled: the parent is
        let (p2, c2) = (parent.clone(), child.clone());
        let other = thread::spawn(move || {
            c2.cancel();
            p2.reset();
        });
        assert!(child.is_cancelled(), "cancelled before, during and after");
        other.join().expect("other");
        assert!(child.is_cancelled());
    });
}

/// Proves: a waiter leaving (releasing its slots and closing its
/// descriptor) while a cancel is signalling it never has its descriptor
/// signalled after it is closed.
#[test]
fn waiter_leaving_during_cancel() {
    loom::model(|| {
        let t = Token::new();
        let t2 = t.clone();
        let s = Sleeper::start(&t);
        let canceller = thread::spawn(move || t2.cancel());
        s.leave();
        canceller.join().expect("canceller");
    });
}

/// Proves: two waiters registering at once (segments of one slot, so one of
/// them appends a segment) are both reached by a cancel.
#[test]
fn concurrent_registrations_are_both_reached() {
    // Three threads: exhaustive search does not finish; every schedule with
    // up to 3 preemptions is checked (loom's advice is 2 to 3).
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let t = Token::new();
        let (t2, t3) = (t.clone(), t.clone());
        let other = thread::spawn(move || {
            let s = Sleeper::start(&t2);
            // What the check needs, without the (thread-bound) slots: the
            // waiter stays registered until the token goes.
            (s.epoch, s.saw_cancel, s.fd)
        });
        let canceller = thread::spawn(move || t3.cancel());
        let mine = Sleeper::start(&t);
        canceller.join().expect("canceller");
        let (epoch, saw_cancel, fd) = other.join().expect("waiter");
        assert!(
            epoch > 0 || saw_cancel || model::signalled(fd),
            "lost wake-up"
        );
        mine.assert_not_lost();
        mine.leave();
    });
}

/// Proves: a deadline set while a waiter registers is read by the waiter
/// (which then sleeps no longer than it) or wakes it.
#[test]
fn deadline_racing_registration() {
    loom::model(|| {
        let t = Token::new();
        let t2 = t.clone();
        let setter = thread::spawn(move || t2.set_deadline(100));
        let s = Sleeper::start(&t);
        setter.join().expect("setter");
        s.assert_deadline_not_missed(100);
        s.leave();
    });
}

/// Proves: a parent's deadline moved earlier while a waiter on its child
/// registers reaches the waiter; and moving it later needs no wake-up
/// (the waiter read the earlier value, so it wakes then and reads again).
#[test]
fn parent_deadline_moved_racing_a_child_waiter() {
    loom::model(|| {
        let parent = Token::new();
        parent.set_deadline(500);
        let child = parent.child();
        let p2 = parent.clone();
        let setter = thread::spawn(move || {
            p2.set_deadline(50);
            p2.set_deadline(200);
        });
        let s = Sleeper::start(&child);
        setter.join().expect("setter");
        // Whatever the waiter read, it wakes no later than the latest
        // deadline it must honour (200), and sees 50 or a wake-up if it
        // read 500 before the first move.
        assert!(
            s.deadline <= 200 || model::signalled(s.fd),
            "missed a deadline"
        );
        assert_eq!(child.deadline(), 200);
        s.leave();
    });
}

/// Proves: a deadline set racing with a cancel and a reset of the same
/// token, and with a waiter's registration, loses neither wake-up; the
/// reset leaves the deadline in place and the token not cancelled.
#[test]
fn deadline_racing_cancel_and_reset() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let t = Token::new();
        let (t2, t3) = (t.clone(), t.clone());
        let canceller = thread::spawn(move || {
            t2.cancel();
            t2.reset();
        });
        let setter = thread::spawn(move || t3.set_deadline(100));
        let s = Sleeper::start(&t);
        canceller.join().expect("canceller");
        setter.join().expect("setter");
        s.assert_not_lost();
        s.assert_deadline_not_missed(100);
        assert_eq!(t.deadline(), 100, "a reset leaves the deadline");
        assert!(!t.is_cancelled(), "a deadline is not a cancel");
        s.leave();
    });
}

/// A crowd member as a blocking call runs it once the token's first
/// segment is full: joins (or starts) the crowd, then makes the call's
/// check before it would sleep in poll on the crowd's descriptor.
struct Member<'t> {
    crowd: &'t Crowd,
    fd: i32,
    epoch: u64,
    saw_cancel: bool,
}

impl<'t> Member<'t> {
    /// None if the crowd could not be joined (the caller would wait alone).
    fn start(t: &'t Token) -> Option<Member<'t>> {
        let epoch = t.epoch();
        let crowd = t.crowd_or_new().expect("crowd");
        if !crowd.join_or_activate(t) {
            return None;
        }
        let fd = crowd.poll_fd();
        let saw_cancel = t.cancelled_since(epoch);
        Some(Member {
            crowd,
            fd,
            epoch,
            saw_cancel,
        })
    }

    fn assert_not_lost(&self) {
        assert!(
            self.epoch > 0 || self.saw_cancel || model::signalled(self.fd),
            "lost wake-up in a crowd"
        );
    }

    /// Leaves; the last member closes the crowd's descriptor (the model
    /// fails if a cancel signals it after that).
    fn leave(self) {
        self.crowd.leave();
    }
}

/// A token whose one slot (the models' segments have one) is taken by a
/// lone waiter, so that the next waiter crowds; and that waiter.
fn crowded_token() -> (Token, Sleeper) {
    let t = Token::new();
    let alone = Sleeper::start(&t);
    (t, alone)
}

/// Proves: a cancel racing with the first member starting the crowd
/// (opening its descriptor, registering its record) is seen by the
/// member's check or wakes it through the crowd's descriptor.
#[test]
fn cancel_racing_a_crowd_starting() {
    loom::model(|| {
        let (t, alone) = crowded_token();
        let t2 = t.clone();
        let canceller = thread::spawn(move || t2.cancel());
        let m = Member::start(&t).expect("joined");
        canceller.join().expect("canceller");
        m.assert_not_lost();
        m.leave();
        alone.leave();
    });
}

/// Proves: the last member leaving (releasing the crowd's slots, closing
/// its descriptor) while a cancel scans the token never has the
/// descriptor signalled after it is closed.
#[test]
fn crowd_ending_during_a_cancel() {
    loom::model(|| {
        let (t, alone) = crowded_token();
        let m = Member::start(&t).expect("joined");
        let t2 = t.clone();
        let canceller = thread::spawn(move || t2.cancel());
        m.leave();
        canceller.join().expect("canceller");
        alone.leave();
    });
}

/// Proves: a parent's cancel reaches a crowd on its child (the crowd's
/// record is registered on every ancestor), racing with its start.
#[test]
fn parent_cancel_racing_a_childs_crowd() {
    loom::model(|| {
        let parent = Token::new();
        let (child, alone) = {
            let c = parent.child();
            let s = Sleeper::start(&c);
            (c, s)
        };
        let p2 = parent.clone();
        let canceller = thread::spawn(move || p2.cancel());
        let m = Member::start(&child).expect("joined");
        canceller.join().expect("canceller");
        m.assert_not_lost();
        m.leave();
        alone.leave();
    });
}

/// Proves: while another member joins and leaves (so either may start
/// the crowd, either may end it, and it may start again), a cancel
/// racing them reaches a member that stays, and no descriptor is
/// signalled after it is closed.
#[test]
fn members_coming_and_going_racing_a_cancel() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let (t, alone) = crowded_token();
        let (t2, t3) = (t.clone(), t.clone());
        let other = thread::spawn(move || {
            if let Some(m) = Member::start(&t2) {
                m.leave();
            }
        });
        let canceller = thread::spawn(move || t3.cancel());
        let m = Member::start(&t);
        canceller.join().expect("canceller");
        if let Some(m) = &m {
            m.assert_not_lost();
        }
        other.join().expect("member");
        if let Some(m) = m {
            m.leave();
        }
        alone.leave();
    });
}

/// Proves: a crowd woken before a reset is not joined after it (it stays
/// readable until its members leave, and would wake a newcomer at once);
/// the newcomer waits in a fresh crowd with an unsignalled descriptor (or
/// alone), and a later cancel reaches it.
#[test]
fn no_one_joins_a_crowd_woken_before_a_reset() {
    loom::model(|| {
        let (t, alone) = crowded_token();
        let early = Member::start(&t).expect("joined");
        let t2 = t.clone();
        let other = thread::spawn(move || {
            t2.cancel();
            t2.reset();
        });
        other.join().expect("canceller");
        // `early` was woken and has not left yet; a new call arrives.
        let epoch = t.epoch();
        let late = Member::start(&t);
        if let Some(m) = &late {
            assert!(!model::signalled(m.fd), "joined a readable crowd");
        }
        early.leave();
        t.cancel();
        if let Some(m) = late {
            assert!(
                t.cancelled_since(epoch) && model::signalled(m.fd),
                "the next cancel reaches the new member"
            );
            m.leave();
        }
        alone.leave();
    });
}

/// Proves: the last member leaving while another joins and, finding the
/// crowd signalled, leaves again at once, ends the crowd exactly once:
/// afterwards its record is closed to cancellers and its descriptor
/// closed (before the fix, the count could reach 0 with the crowd still
/// open, so a later start overwrote it and closed the descriptor under a
/// canceller).
#[test]
fn last_member_leaving_while_another_joins() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let (t, alone) = crowded_token();
        let last = Member::start(&t).expect("joined");
        let fd = last.fd;
        t.cancel(); // signalled: a newcomer joins and leaves at once
        let t2 = t.clone();
        let newcomer = thread::spawn(move || {
            if let Some(m) = Member::start(&t2) {
                m.leave();
            }
        });
        last.leave();
        newcomer.join().expect("newcomer");
        let crowd = t.crowd().expect("crowd");
        assert!(!crowd.is_active(), "a crowd with no members left open");
        assert!(!model::is_open(fd), "descriptor left open");
        alone.leave();
    });
}
