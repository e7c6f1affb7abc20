//! The target: validates the envelope, processes each record, answers per record.
//!
//! Processing here is what a real consumer would start from: parse the produced record,
//! validate it, measure its latency (`latency_ms` since the producer created it,
//! `since_arrival_ms` since Kinesis received it), and log one structured line with the record id
//! as correlation id. Redelivery is idempotent: see [`Processor`].

mod memory;
pub mod processor;
pub mod settings;

pub use processor::{Processor, TargetError};
pub use settings::TargetSettings;
