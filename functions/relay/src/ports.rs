//! What the relay needs from the world, as traits: the batch logic is tested with in-memory
//! adapters, and runs in Lambda with the ones in [`crate::aws`].

use async_trait::async_trait;
use serde::Serialize;

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
    pub message: String,
    /// The relay could not get credentials for the target account (AssumeRole failed).
    pub assume_role_failed: bool,
}

#[async_trait]
pub trait TargetInvoker: Send + Sync {
    async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeReply, InvokeFailure>;
}

/// A record the relay gives up on, sent to the dead-letter queue with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// `rejected_by_target` or `undeliverable` (too large for any Invoke).
    pub kind: &'static str,
    pub reason: String,
    pub partition_key: String,
    pub sequence_number: String,
    pub event_id: String,
    pub event_source_arn: String,
    /// The record's bytes, base64; `None` when they would not fit in an SQS message (the
    /// sequence number still locates the record in the stream within its retention).
    pub data_base64: Option<String>,
    pub data_bytes: usize,
    pub delivery_id: String,
}

#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String>;
}
