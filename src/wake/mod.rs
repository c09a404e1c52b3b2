//! The wake protocol: how a blocked call learns, without a lock and
//! without losing a wake-up, that its token was cancelled.
//!
//! The handshake has two sides:
//!
//! - **The waiter** (`wait.rs`): a call that has to wait registers its
//!   thread's waiter record in a slot of its token and of every ancestor
//!   (`Token::register`), *then* checks the token (`Call::check`), and only
//!   then sleeps in `poll` on its sockets plus the record's wake descriptor.
//! - **The canceller** (`Token::cancel`): bumps the token's cancel count,
//!   *then* scans the token's slots and signals each record found
//!   (`Waiter::wake`). Moving a token's deadline earlier
//!   (`Token::set_deadline`) is the same: store the deadline, then scan.
//!
//! Both sides write, fence (SeqCst), then read what the other wrote: either
//! the waiter's check sees the new count (or its wait's length is computed
//! from the new deadline), or the canceller's scan sees the waiter's slot. `make loom-test` checks this in every interleaving
//! (`loom_models.rs`).
//!
//! The pieces:
//! - `token.rs`: the token (counters, parent link, waiter slots) and cancel;
//!   `token.rs` and `waiter.rs` are the handshake's two halves and refer to
//!   each other.
//! - `waiter.rs`: per-thread waiter records and their wake descriptors,
//!   which outlive any slot that may point at them.
//! - `crowd.rs`: one wake descriptor shared by the many waiters of one
//!   token, so that a cancel wakes them all with one write.
//! - `call.rs`: one blocking call on a thread: its cancel epoch, the
//!   one-call-per-thread rule and the thread's blocking hook.
//! - `wait.rs`: the wait itself (register, check, poll, drain, repeat).
//! - `deadline.rs`: when a wait ends: the call's timeout on the monotonic
//!   clock, or the earliest deadline of its token's chain.
//! - `thread_token.rs`: the calling thread's own token (a NULL token).

mod call;
mod crowd;
mod deadline;
#[cfg(all(loom, test))]
mod loom_models;
mod thread_token;
mod token;
mod wait;
mod waiter;

pub(crate) use call::{in_call, replace_hook, request_cancel, Call, Hook};
pub(crate) use deadline::{token_deadline, token_remaining_ms, Deadline, Plain};
pub(crate) use thread_token::thread_token;
pub(crate) use token::Token;
pub(crate) use wait::{fast, wait, wait_express, wait_one};

#[cfg(test)]
pub(crate) use waiter::records_created;
