//! What the relay needs from the world, as traits: the batch logic is tested with in-memory
//! adapters, and runs in Lambda with the ones in [`crate::aws`].

use async_trait::async_trait;
pub use shared::dead_letter::{DeadLetter, DeadLetterKind};

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

/// Where dead letters go (the S3 dead-letter bucket in Lambda, see [`crate::s3`]).
#[async_trait]
pub trait DeadLetterQueue: Send + Sync {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String>;
}
