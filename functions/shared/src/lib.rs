//! What the three functions of the data path share.
//!
//! - [`config`]: the environment variable names every function reads (defined once, so the
//!   Pulumi program in `infra/` sets exactly these names) and typed parsing with errors that
//!   name the variable.
//! - [`dead_letter`]: the dead-letter bucket's layout (which writer uses which key prefix).
//! - [`envelope`]: the versioned JSON contract between the relay and the target.
//! - [`metrics`]: CloudWatch metrics in Embedded Metric Format, and their names.
//! - [`kpl`]: the KPL aggregation format, read and written: the user records packed into one Kinesis record.
//! - [`limits`]: the AWS service limits the data path respects, written once.
//! - [`produced_record`]: the record the producer writes to the stream and the target validates.
//! - [`telemetry`]: structured JSON logs, set up in one place.

pub mod config;
pub mod dead_letter;
pub mod envelope;
pub mod kpl;
pub mod limits;
pub mod metrics;
pub mod produced_record;
pub mod telemetry;
