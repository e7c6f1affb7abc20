//! The target library: answers the relay's deliveries with a [`RecordHandler`] of one's own.

pub mod idempotency;
pub mod verdict;

pub use idempotency::{Claim, Completion, IdempotencyStore, StoreError};
pub use verdict::Verdict;
