//! The port: invoke the target function synchronously with one envelope, and the answer or
//! the failure that stood in the way.

use async_trait::async_trait;

/// The target function's answer to one synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeReply {
    /// Lambda's `X-Amz-Function-Error` (`Unhandled`, ...): the handler failed.
    pub function_error: Option<String>,
    /// The handler's answer (or Lambda's error document when `function_error` is set).
    pub payload: Vec<u8>,
}

/// An Invoke that did not reach the target's handler, or whose answer never came back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct InvokeFailure {
    /// Which step failed.
    pub kind: InvokeFailureKind,
    /// What failed and why, for the log line.
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

/// Invokes the target function: [`super::lambda::LambdaTarget`] in Lambda,
/// [`super::memory::MemoryTarget`] in tests.
#[async_trait]
pub trait TargetInvoker: Send + Sync {
    /// Sends one envelope (`payload`, JSON) and waits for the target's answer.
    async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeReply, InvokeFailure>;
}
