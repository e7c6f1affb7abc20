//! The port: write one dead letter, or say why it was not written.

use async_trait::async_trait;
use shared::dead_letter::DeadLetter;

/// Why a dead letter was not written. The relay then hands its record back to the event
/// source mapping, to be delivered again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The bucket refused the object, or did not answer.
    #[error("PutObject of s3://{bucket}/{key} failed: {cause}")]
    Put {
        /// The dead-letter bucket.
        bucket: String,
        /// The letter's object key.
        key: String,
        /// The bucket's answer, or why there was none.
        cause: String,
    },
    /// The letter could not be written as JSON.
    #[error("dead letter {key} could not be written as JSON: {cause}")]
    Encode {
        /// The letter's object key.
        key: String,
        /// The encoder's error.
        cause: String,
    },
}

/// Where the relay writes the records it gives up on: [`super::s3::S3DeadLetterBucket`] in
/// Lambda, [`super::memory::MemoryDeadLetterBucket`] in tests.
#[async_trait]
pub trait DeadLetterBucket: Send + Sync {
    /// Writes `letter` at its key ([`DeadLetter::key`]), replacing an earlier letter of the
    /// same record.
    async fn write(&self, letter: &DeadLetter) -> Result<(), WriteError>;
}
