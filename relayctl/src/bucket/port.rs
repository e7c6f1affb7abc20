//! The port: list, read and move the bucket's objects, and why a call failed.

use async_trait::async_trait;

/// A bucket call that failed, with the object it was about and the bucket's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    /// Listing the objects failed.
    #[error("ListObjectsV2 of s3://{bucket}/ failed: {cause}")]
    List {
        /// The bucket.
        bucket: String,
        /// The bucket's answer, or why there was none.
        cause: String,
    },
    /// Reading an object failed.
    #[error("GetObject of s3://{bucket}/{key} failed: {cause}")]
    Get {
        /// The bucket.
        bucket: String,
        /// The object's key.
        key: String,
        /// The bucket's answer, or why there was none.
        cause: String,
    },
    /// Copying an object under `redriven/` failed: the object is where it was.
    #[error("CopyObject of s3://{bucket}/{key} failed: {cause}")]
    Copy {
        /// The bucket.
        bucket: String,
        /// The key of the object copied.
        key: String,
        /// The bucket's answer, or why there was none.
        cause: String,
    },
    /// Deleting an object once copied failed: it is both where it was and under `redriven/`.
    #[error("DeleteObject of s3://{bucket}/{key} failed: {cause}")]
    Delete {
        /// The bucket.
        bucket: String,
        /// The key of the object deleted.
        key: String,
        /// The bucket's answer, or why there was none.
        cause: String,
    },
}

/// The dead-letter bucket, as relayctl uses it: [`super::s3::S3Bucket`] on an operator's
/// workstation, [`super::memory::MemoryBucket`] in tests.
#[async_trait]
pub trait Bucket: Send + Sync {
    /// Every object's key and when it was last written (seconds since the Unix epoch).
    async fn list(&self) -> Result<Vec<(String, i64)>, BucketError>;
    /// The object's body.
    async fn get(&self, key: &str) -> Result<Vec<u8>, BucketError>;
    /// Copies the object to `redriven/<key>`, then deletes it.
    async fn move_to_redriven(&self, key: &str) -> Result<(), BucketError>;
}
