//! The real dead-letter bucket: S3, with the operator's credentials (relayctl reads, copies and
//! deletes objects, which no role of the stacks may do).

use async_trait::async_trait;
use aws_smithy_types::error::display::DisplayErrorContext;
use shared::dead_letter::REDRIVEN_PREFIX;

use crate::bucket::port::{Bucket, BucketError};

/// The dead-letter bucket in S3.
pub struct S3Bucket {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Bucket {
    /// The bucket named `bucket`, called with `client`.
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> Self {
        Self { client, bucket }
    }
}

/// The error's whole chain, as one line.
fn cause(e: impl std::error::Error) -> String {
    DisplayErrorContext(e).to_string()
}

/// CopyObject's `x-amz-copy-source`: `bucket/key`, the key URL-encoded (S3 requires it; `/`
/// stays as it is).
fn copy_source(bucket: &str, key: &str) -> String {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{bucket}/{encoded}")
}

#[async_trait]
impl Bucket for S3Bucket {
    async fn list(&self) -> Result<Vec<(String, i64)>, BucketError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| BucketError::List {
                bucket: self.bucket.clone(),
                cause: cause(e),
            })?;
            for object in page.contents() {
                let key = object.key().unwrap_or_default().to_string();
                let written_at = object.last_modified().map(|t| t.secs()).unwrap_or(0);
                objects.push((key, written_at));
            }
        }
        Ok(objects)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, BucketError> {
        let failed = |cause| BucketError::Get {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            cause,
        };
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| failed(cause(e)))?;
        let body = object.body.collect().await.map_err(|e| failed(cause(e)))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn move_to_redriven(&self, key: &str) -> Result<(), BucketError> {
        let target = format!("{REDRIVEN_PREFIX}{key}");
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(&target)
            .copy_source(copy_source(&self.bucket, key))
            .send()
            .await
            .map_err(|e| BucketError::Copy {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                cause: cause(e),
            })?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| BucketError::Delete {
                bucket: self.bucket.clone(),
                key: key.to_string(),
                cause: cause(e),
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_copy_source_encodes_the_key_but_its_slashes() {
        assert_eq!(
            super::copy_source("b", "aws/lambda/u/shardId-0/2026-11-25T16.00.00-x y:z+é"),
            "b/aws/lambda/u/shardId-0/2026-11-25T16.00.00-x%20y%3Az%2B%C3%A9"
        );
    }
}
