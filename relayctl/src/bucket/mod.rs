//! The dead-letter bucket as relayctl uses it: the port ([`Bucket`]) and its two adapters, S3
//! with the operator's credentials ([`s3`]) and a bucket in memory for tests ([`memory`]).

pub mod memory;
pub mod port;
pub mod s3;

pub use memory::MemoryBucket;
pub use port::{Bucket, BucketError};
pub use s3::S3Bucket;
