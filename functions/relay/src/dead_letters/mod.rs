//! Writing the records the relay gives up on: the port ([`DeadLetterBucket`]) and its two
//! adapters, the S3 dead-letter bucket ([`s3`]) and a bucket in memory for tests ([`memory`]).
//! The letter itself is [`shared::dead_letter::DeadLetter`], which `relayctl` reads back.

pub mod memory;
pub mod port;
pub mod s3;

pub use memory::MemoryDeadLetterBucket;
pub use port::{DeadLetterBucket, WriteError};
pub use s3::S3DeadLetterBucket;
