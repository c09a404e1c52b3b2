//! An API sequence fuzzer: random sequences of token and socket calls
//! through the C ABI, checked against a model of the contract, with calls
//! that block in other threads and are woken by a cancel (of their token or
//! an ancestor) or by data.
//!
//! The model: each token has a flag, set by a cancel of the token or of an
//! ancestor, cleared by its own reset, and set at birth if the parent is
//! cancelled. A token is cancelled if its flag is set or its parent is
//! cancelled. Calls on a cancelled token fail with ECANCELED before doing
//! anything; on a live one they do what the socket call does.
//!
//! Bounded: RSOCK_FUZZ_RUNS sequences (default 300) of 60 steps; the seed
//! of a failing sequence is printed, and RSOCK_FUZZ_SEED replays one.

mod common;

use common::{pair, Raw, Stream};
use rsock::ffi::*;
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Model {
    parent: Option<usize>,
    flag: bool,
    handle: *mut rsock_token,
}

struct World {
    toks: Vec<Model>,
    rng: Rng,
    a: Stream,
    b: Stream,
}

/// A token pointer that another thread may use while the owner keeps its
/// reference (the thread takes its own).
struct Shared(*mut rsock_token);
// SAFETY: tokens are thread-safe; the receiving thread holds a reference.
unsafe impl Send for Shared {}

impl World {
    fn cancelled(&self, i: usize) -> bool {
        let t = &self.toks[i];
        t.flag || t.parent.is_some_and(|p| self.cancelled(p))
    }

    fn descendants_and_self(&self, i: usize) -> Vec<usize> {
        (0..self.toks.len())
            .filter(|&j| {
                let mut k = Some(j);
                while let Some(x) = k {
                    if x == i {
                        return true;
                    }
                    k = self.toks[x].parent;
                }
                false
            })
            .collect()
    }

    fn cancel(&mut self, i: usize) {
        assert_eq!(rsock_cancel(self.toks[i].handle), 0);
        for j in self.descendants_and_self(i) {
            self.toks[j].flag = true;
        }
    }

    fn check_states(&self, step: &str) {
        for (i, t) in self.toks.iter().enumerate() {
            assert_eq!(
                rsock_is_cancelled(t.handle) == 1,
                self.cancelled(i),
                "token {i} after {step}"
            );
        }
    }

    /// A call with timeout 0 on token `i`: ECANCELED if the model says
    /// cancelled, otherwise the socket call's own result.
    fn quick_call(&mut self, i: usize) {
        let h = self.toks[i].handle;
        let fd = self.b.raw();
        let mut byte = [0u8; 1];
        let with_data = self.rng.below(2) == 0;
        if with_data {
            self.a.write_all(b"x").expect("send");
        }
        let r = match self.rng.below(3) {
            0 => rsock_recv(h, fd, byte.as_mut_ptr().cast(), 1, 0, 0) as i64,
            1 => rsock_block(h, fd, RSOCK_READABLE, 0) as i64,
            _ => {
                let mut p = common::readable(fd);
                rsock_poll(h, &mut p, 1, 0) as i64
            }
        };
        let err = rsock_last_error();
        if self.cancelled(i) {
            assert_eq!(
                (r, err),
                (-1, common::ECANCELED),
                "call on cancelled token {i}"
            );
        } else if with_data {
            assert_eq!(r, 1, "call on live token {i} with data ready");
        } else {
            assert!(
                (r == -1 && err == common::ETIMEDOUT) || r == 0,
                "call on live token {i}, no data: {r}, error {err}"
            );
        }
        // Leave the socket empty.
        let mut drain = [0u8; 16];
        while rsock_recv(
            std::ptr::null_mut(),
            fd,
            drain.as_mut_ptr().cast(),
            16,
            0,
            0,
        ) > 0
        {}
    }

    /// Another thread blocks on token `i`; this one wakes it with a cancel
    /// of `i` or an ancestor, or with data.
    fn blocked_call(&mut self, i: usize) {
        let mut chain = vec![i];
        while let Some(p) = self.toks[*chain.last().expect("non-empty")].parent {
            chain.push(p);
        }
        if self.cancelled(i) {
            return; // covered by quick_call: it would not block
        }
        let fd = self.b.raw();
        let tok = Shared(rsock_token_ref(self.toks[i].handle));
        let waiter = thread::spawn(move || {
            let tok = tok;
            let mut byte = [0u8; 1];
            let start = Instant::now();
            let r = rsock_recv(tok.0, fd, byte.as_mut_ptr().cast(), 1, 0, 10_000);
            let err = rsock_last_error();
            rsock_token_unref(tok.0);
            (r, err, start.elapsed())
        });
        thread::sleep(Duration::from_micros(self.rng.below(3000) as u64));
        let by_data = self.rng.below(3) == 0;
        if by_data {
            self.a.write_all(b"y").expect("send");
        } else {
            let target = chain[self.rng.below(chain.len())];
            self.cancel(target);
        }
        let (r, err, took) = waiter.join().expect("waiter");
        assert!(took < Duration::from_secs(5), "woken late: {took:?}");
        if by_data {
            assert_eq!(r, 1, "data wakes the call on token {i}");
        } else {
            assert_eq!(
                (r, err),
                (-1, common::ECANCELED),
                "cancel wakes the call on token {i}"
            );
        }
    }

    fn step(&mut self) -> String {
        let n = self.toks.len();
        let i = self.rng.below(n);
        match self.rng.below(10) {
            0 if n < 12 => {
                let handle = rsock_token_new();
                assert!(!handle.is_null());
                self.toks.push(Model {
                    parent: None,
                    flag: false,
                    handle,
                });
                "new".into()
            }
            1 | 2 if n < 12 => {
                let handle = rsock_token_child(self.toks[i].handle);
                assert!(!handle.is_null());
                let flag = self.cancelled(i);
                self.toks.push(Model {
                    parent: Some(i),
                    flag,
                    handle,
                });
                format!("child of {i}")
            }
            3 => {
                self.cancel(i);
                format!("cancel {i}")
            }
            4 | 5 => {
                assert_eq!(rsock_token_reset(self.toks[i].handle), 0);
                self.toks[i].flag = false;
                format!("reset {i}")
            }
            6 => {
                // An extra reference, released at once: the token lives on.
                let extra = rsock_token_ref(self.toks[i].handle);
                rsock_token_unref(extra);
                format!("ref/unref {i}")
            }
            7 | 8 => {
                self.quick_call(i);
                format!("call on {i}")
            }
            _ => {
                self.blocked_call(i);
                format!("blocked call on {i}")
            }
        }
    }
}

fn run(seed: u64) {
    let (a, b) = pair();
    let root = rsock_token_new();
    let mut w = World {
        toks: vec![Model {
            parent: None,
            flag: false,
            handle: root,
        }],
        rng: Rng(seed | 1),
        a,
        b,
    };
    for _ in 0..60 {
        let step = w.step();
        w.check_states(&step);
    }
    // Children hold their parents: release in any order.
    for t in w.toks.drain(..) {
        rsock_token_unref(t.handle);
    }
}

#[test]
fn random_api_sequences_follow_the_model() {
    if let Some(seed) = std::env::var("RSOCK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed);
        return;
    }
    let runs: u64 = std::env::var("RSOCK_FUZZ_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for k in 0..runs {
        let seed = 0x5eed_0000 + k;
        if std::panic::catch_unwind(|| run(seed)).is_err() {
            panic!("sequence failed (see above); replay with RSOCK_FUZZ_SEED={seed}");
        }
    }
}
