//! What the relay needs from the world, as traits: the batch logic is tested with in-memory
//! adapters, and runs in Lambda with the ones in [`crate::aws`].

use async_trait::async_trait;
use serde::{Serialize, Serializer};

/// The target function's answer to one synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeReply {
    /// Lambda's `X-Amz-Function-Error` (`Unhandled`, ...): the handler failed.
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
}

/// An Invoke that did not reach the target's handler, or whose answer never came back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct InvokeFailure {
    pub kind: InvokeFailureKind,
    pub message: String,
}

/// Which step stood between the relay and the target's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeFailureKind {
    /// The relay could not get credentials for the target account (AssumeRole failed).
    AssumeRole,
    /// The Invoke call itself failed, or its answer never came back.
    Invoke,
}

#[async_trait]
pub trait TargetInvoker: Send + Sync {
    async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeReply, InvokeFailure>;
}

/// A record the relay gives up on, written to the dead-letter bucket with its reason and data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub kind: DeadLetterKind,
    pub reason: String,
    pub partition_key: String,
    pub sequence_number: String,
    /// The record's correlation id: Lambda's `eventID` (`<shard id>:<sequence number>`), which
    /// every log line of the relay and of the target about this record carries as `event_id`.
    pub event_id: String,
    pub event_source_arn: String,
    /// The record's bytes, base64: all of them, so the record can be redriven after the
    /// stream has trimmed it.
    pub data_base64: String,
    pub data_bytes: usize,
    /// The relay invocation that gave up on the record (its `invocation summary` line's
    /// `batch_id`).
    pub batch_id: String,
    /// The Invoke whose answer rejected the record: the `delivery_id` of the target's line about
    /// it. Absent for a record that was never sent (too large for any Invoke).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

/// Why the relay gave up on a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterKind {
    /// The target answered `rejected`: retrying cannot help.
    RejectedByTarget,
    /// The record is too large for any Invoke request.
    Undeliverable,
}

impl DeadLetterKind {
    /// The spelling in the dead-letter message and the logs (the local harness reads it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RejectedByTarget => "rejected_by_target",
            Self::Undeliverable => "undeliverable",
        }
    }
}

impl Serialize for DeadLetterKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Where dead letters go (the S3 dead-letter bucket in Lambda, see [`crate::s3`]).
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_kinds_keep_their_wire_spelling() {
        for (kind, spelling) in [
            (DeadLetterKind::RejectedByTarget, "rejected_by_target"),
            (DeadLetterKind::Undeliverable, "undeliverable"),
        ] {
            assert_eq!(kind.as_str(), spelling);
            assert_eq!(serde_json::to_value(kind).unwrap(), spelling);
        }
    }
}
