//! A dead-letter bucket in memory, for tests: its objects by key, and a switch that makes every
//! move fail.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use shared::dead_letter::REDRIVEN_PREFIX;

use crate::bucket::port::{Bucket, BucketError};

/// The name the bucket gives in its errors.
const BUCKET: &str = "memory";

/// A bucket in memory: key -> (written at, body).
#[derive(Debug, Default)]
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, (i64, Vec<u8>)>>,
    refuse_moves: bool,
}

impl MemoryBucket {
    /// Puts `body` at `key`, written at `written_at` (seconds since the Unix epoch).
    pub fn insert(&self, key: &str, written_at: i64, body: impl Into<Vec<u8>>) {
        self.lock()
            .insert(key.to_string(), (written_at, body.into()));
    }

    /// The same objects, in a bucket that refuses every move with `AccessDenied`.
    pub fn refusing_moves(self) -> Self {
        Self {
            refuse_moves: true,
            ..self
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, (i64, Vec<u8>)>> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Bucket for MemoryBucket {
    async fn list(&self) -> Result<Vec<(String, i64)>, BucketError> {
        Ok(self
            .lock()
            .iter()
            .map(|(key, (written_at, _))| (key.clone(), *written_at))
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, BucketError> {
        let objects = self.lock();
        let (_, body) = objects.get(key).ok_or_else(|| BucketError::Get {
            bucket: BUCKET.into(),
            key: key.into(),
            cause: "NoSuchKey".into(),
        })?;
        Ok(body.clone())
    }

    async fn move_to_redriven(&self, key: &str) -> Result<(), BucketError> {
        let copy_failed = |cause: &str| BucketError::Copy {
            bucket: BUCKET.into(),
            key: key.into(),
            cause: cause.into(),
        };
        if self.refuse_moves {
            return Err(copy_failed("AccessDenied"));
        }
        let mut objects = self.lock();
        let object = objects
            .remove(key)
            .ok_or_else(|| copy_failed("NoSuchKey"))?;
        objects.insert(format!("{REDRIVEN_PREFIX}{key}"), object);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_object_is_an_error_that_names_it() {
        let bucket = MemoryBucket::default();
        let err = bucket.get("relay/x.json").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "GetObject of s3://memory/relay/x.json failed: NoSuchKey"
        );
        let err = bucket.move_to_redriven("relay/x.json").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "CopyObject of s3://memory/relay/x.json failed: NoSuchKey"
        );
    }
}
