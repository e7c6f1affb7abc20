//! Invoking the target function: the port ([`TargetInvoker`]) and its two adapters, the target
//! account's Lambda client ([`lambda`]) and a target in memory for tests ([`memory`]).

pub mod lambda;
pub mod memory;
pub mod port;

pub use lambda::{target_lambda_client, LambdaTarget};
pub use memory::MemoryTarget;
pub use port::{InvokeFailure, InvokeFailureKind, InvokeReply, TargetInvoker};
