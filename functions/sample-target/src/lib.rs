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
