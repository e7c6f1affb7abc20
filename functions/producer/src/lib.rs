//! The producer: builds the scheduled records and writes them to the stream with PutRecords.
//!
//! PutRecords is not atomic: some entries of a call can fail (throttling, internal errors)
//! while the rest are written. Only the failed entries are sent again, with exponential
//! backoff; entries that still fail after the last attempt fail the invocation with a count and
//! the error codes, so nothing is lost without a trace.

pub mod produce;
pub mod settings;
pub mod sink;

pub use produce::{ProduceError, ProduceReport, Producer};
pub use settings::ProducerSettings;
