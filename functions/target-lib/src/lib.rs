//! The target library: answers the relay's deliveries with a [`RecordHandler`] of one's own.
//!
//! A target implements [`RecordHandler::handle`] (one [`Record`] in, one [`Verdict`] out) and
//! calls [`run`] from `main`. The library does the rest: it decodes the relay's envelope and
//! refuses a version it does not speak, decodes each record's data, runs the handler (records of
//! one partition key in order; different keys concurrently if allowed, see
//! [`Runner::concurrency`]), answers per record in the records' order, logs one
//! `record processed` line per record and one metrics line per delivery, and reports a
//! [`HandlerError`] as a Lambda function error with its `errorType`.
//!
//! With an [`IdempotencyStore`] (the environment variable `IDEMPOTENCY_TABLE` in a deployed
//! target), each record's effect runs once per idempotency key, however often the record is
//! delivered: see `docs/target-library.md` for the algorithm, its guarantees and its limits.
//!
//! ```
//! use std::sync::Arc;
//! use relay_target::{Invocation, MemoryStore, Record, RecordHandler, HandlerError, Runner, Verdict};
//! use shared::envelope::{DeliveryRequest, RecordData, RecordOutcome, RelayedRecord};
//!
//! /// Accepts records that are UTF-8 text, rejects the others.
//! struct Text;
//!
//! #[async_trait::async_trait]
//! impl RecordHandler for Text {
//!     async fn handle(&self, record: &Record) -> Result<Verdict, HandlerError> {
//!         Ok(match std::str::from_utf8(record.data()) {
//!             Ok(_) => Verdict::Ok,
//!             Err(e) => Verdict::Rejected(format!("not UTF-8: {e}")),
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let runner = Runner::new(Text).store(Arc::new(MemoryStore::new()));
//! let record = |sequence_number: &str, data: &[u8]| RelayedRecord {
//!     sequence_number: sequence_number.into(),
//!     sub_sequence_number: None,
//!     partition_key: "key".into(),
//!     explicit_hash_key: None,
//!     event_id: format!("shardId-000000000000:{sequence_number}"),
//!     approximate_arrival_ms: None,
//!     data: RecordData::encode(data),
//! };
//! let delivery = DeliveryRequest::new("d-1", vec![record("1", b"hello"), record("2", &[0xff])]);
//! let now = chrono::Utc::now();
//! let invocation = Invocation::new("request-1", now, now + chrono::Duration::seconds(30));
//! let answer = runner.answer_request(delivery, &invocation).await.unwrap();
//! assert_eq!(answer.response.results[0].outcome, RecordOutcome::Ok);
//! assert!(matches!(answer.response.results[1].outcome, RecordOutcome::Rejected { .. }));
//! # });
//! ```

mod delivery;
pub mod handler;
pub mod idempotency;
pub mod record;
mod serve;
pub mod verdict;

pub use delivery::{
    Answer, DeliveryError, Invocation, Runner, Tally, CLAIM_MARGIN_SECONDS, DEFAULT_CONCURRENCY,
    MAX_INVOCATION_SECONDS,
};
pub use handler::{default_key, HandlerError, RecordHandler};
pub use idempotency::memory::MemoryStore;
pub use idempotency::{Claim, Completion, IdempotencyStore, StoreError};
pub use record::Record;
pub use serve::{run, run_configured, run_with, store_from_env, Options, Settings};
pub use verdict::Verdict;
