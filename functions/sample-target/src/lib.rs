//! The sample target: validates each produced record, measures its latency and answers it, on
//! the target library ([`relay_target`]), which decodes the envelope, runs the handler, answers
//! per record, logs and counts.
//!
//! Processing here is what a real consumer would start from: parse the produced record,
//! validate it, measure its latency (`latency_ms` since the producer created it,
//! `since_arrival_ms` since Kinesis received it), and log one structured line with the record id
//! as correlation id. Redelivery is idempotent: see [`SampleHandler`].

pub mod effects;
pub mod handler;
mod memory;
pub mod settings;

pub use handler::SampleHandler;
pub use settings::TargetSettings;

/// Records of one delivery the sample runs at once, at most (the library's
/// [`relay_target::Options::concurrency`]; records of one partition key still run one after the
/// other, in order).
///
/// Each produced record has its own partition key, so a delivery of 100 records runs 16 at a time.
/// One at a time (the library's default) was too slow with the effects table on: one `UpdateItem`
/// round trip per record, about 2.5 s per 100 records in the local run, did not fit the relay's
/// deadline in `make soak`, and deliveries were deferred again and again.
pub const SAMPLE_CONCURRENCY: usize = 16;
