//! The relay: one Kinesis batch in, synchronous invocations of the target account's function
//! out, and an exact account of every record.
//!
//! - [`settings`]: the relay's configuration, read once per container.
//! - [`event`]: the Kinesis event, read with each record's data left as the event's base64.
//! - [`deaggregate`]: KPL aggregates turned into their user records, each delivered on its own.
//! - [`deadline`]: the time an invocation has left, and how much of it each stage may use.
//! - [`packing`]: splits a batch into envelopes that each fit one Invoke request, or into lanes by
//!   partition key for key-ordered delivery.
//! - [`invoke`]: the port to the target function, with its adapters: the Lambda client with
//!   assumed-role credentials, and a target in memory for tests.
//! - [`dead_letters`]: the port to the dead-letter bucket, with its adapters: S3 (one object per
//!   record), and a bucket in memory for tests.
//! - [`batch`]: the handler: records → envelopes → outcomes → `batchItemFailures`.

pub mod batch;
pub mod dead_letters;
pub mod deadline;
pub mod deaggregate;
pub mod event;
pub mod invoke;
pub mod packing;
pub mod settings;

pub use batch::{BatchReport, Relay};
pub use deadline::Deadline;
pub use settings::RelaySettings;
