//! Debug builds report a token used after its last `rsock_token_unref`
//! (and abort) instead of touching freed memory. The misuse runs in a child
//! process: this test binary, re-run with RSOCK_MISUSE set.

#![cfg(debug_assertions)]

use rsock::ffi::{rsock_cancel, rsock_is_cancelled, rsock_token_new, rsock_token_unref};
use std::process::Command;

const MISUSE: &str = "RSOCK_MISUSE";

/// Runs `name` in a child with the misuse switched on; returns its stderr
/// and whether it succeeded.
fn run_child(name: &str) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary");
    // A cross-built test runs under an emulator (tests/cross.sh: qemu-user),
    // which the child needs too: RSOCK_TEST_RUNNER names it, with its
    // arguments.
    let runner = std::env::var("RSOCK_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let out = cmd
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(MISUSE, "1")
        .output()
        .expect("child runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cancel_after_the_last_unref_is_reported() {
    if std::env::var_os(MISUSE).is_some() {
        let t = rsock_token_new();
        rsock_token_unref(t);
        rsock_cancel(t); // the misuse: aborts here
        return;
    }
    let (ok, stderr) = run_child("cancel_after_the_last_unref_is_reported");
    assert!(!ok, "the misuse must not go on");
    assert!(
        stderr.contains("a token was used after its last rsock_token_unref"),
        "stderr: {stderr}"
    );
}

#[test]
fn live_tokens_pass_the_check() {
    let t = rsock_token_new();
    assert_eq!(rsock_cancel(t), 0);
    assert_eq!(rsock_is_cancelled(t), 1);
    rsock_token_unref(t);
}
