//! The relay: one Kinesis batch in, synchronous invocations of the target account's function
//! out, and an exact account of every record.
//!
//! - [`settings`]: the relay's configuration, read once per container.
//! - [`event`]: the Kinesis event, read with each record's data left as the event's base64.
//! - [`deadline`]: the time an invocation has left, and how much of it each stage may use.
//! - [`packing`]: splits a batch into envelopes that each fit one Invoke request, or into lanes by
//!   partition key for key-ordered delivery.
//! - [`ports`]: what the relay needs from the world (invoke the target, dead-letter a record),
//!   as traits, so the batch logic runs in tests without a network.
//! - [`aws`]: the real target adapter: the Lambda client with assumed-role credentials.
//! - [`s3`]: the real dead-letter adapter: one object per record in the dead-letter bucket.
//! - [`batch`]: the handler: records → envelopes → outcomes → `batchItemFailures`.

pub mod aws;
pub mod batch;
pub mod deadline;
pub mod event;
pub mod packing;
pub mod ports;
pub mod s3;
pub mod settings;

pub use batch::{BatchReport, Relay};
pub use deadline::Deadline;
pub use settings::RelaySettings;
