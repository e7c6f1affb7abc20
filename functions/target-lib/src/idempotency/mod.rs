//! The idempotency store: remembers, per idempotency key, that a delivery is running a record
//! (a claim with an owner and an expiry) or has answered it (its final verdict), so a
//! redelivered record is answered without running its effect again.
//!
//! The port ([`port`]: [`IdempotencyStore`], [`Claim`], [`Completion`], [`StoreError`],
//! re-exported here) and its adapters: [`memory::MemoryStore`] for tests and examples, and
//! [`dynamodb::DynamoDbStore`], the durable one `run` builds when `IDEMPOTENCY_TABLE` is set.

pub mod dynamodb;
pub mod memory;
pub mod port;

pub use port::{Claim, Completion, IdempotencyStore, StoreError};
