//! The trait a target implements, and the error that fails an invocation.

use sha2::{Digest, Sha256};

use crate::record::Record;
use crate::verdict::Verdict;

/// An error that fails the whole invocation (Lambda function error); the relay then isolates the
/// record that causes it (issue 19 §3). `error_type` becomes Lambda's errorType.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct HandlerError {
    /// Lambda's `errorType` for the function error, e.g. `DatabaseUnavailable`.
    pub error_type: String,
    /// What went wrong, for Lambda's `errorMessage` and the log.
    pub message: String,
}

impl HandlerError {
    /// An error of type `error_type` with `message`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

/// What a target does with each record.
///
/// `handle` answers one record with a [`Verdict`]: `Ok` (done), `Rejected` (permanently
/// invalid: the relay dead-letters it) or `Retry` (not now: the relay delivers it again). An
/// `Err` is a failure of the whole invocation (see [`HandlerError`]).
#[async_trait::async_trait]
pub trait RecordHandler: Send + Sync {
    /// Processes one record and answers it.
    async fn handle(&self, record: &Record) -> Result<Verdict, HandlerError>;

    /// The idempotency key of a record; default: [`default_key`].
    fn idempotency_key(&self, record: &Record) -> String {
        default_key(record)
    }

    /// The application's id of a record, for its `record processed` log line (`record_id`)
    /// when the handler does not run for it: an answer from the idempotency store, or a record
    /// with the same key as an earlier one in the delivery. Default: none (the line names the
    /// partition key). A handler that calls [`Record::set_record_id`] should give the same id
    /// here, so that every line about a record names it alike.
    fn record_id(&self, _record: &Record) -> Option<String> {
        None
    }
}

/// The default idempotency key: `sha256:` and the hex SHA-256 of the record's partition key
/// (length-prefixed) and data.
///
/// Why not the envelope's identity: a dead-lettered record that `relayctl redrive` puts back on
/// the stream keeps only its partition key and data; its sequence number and event id are new.
/// This key is the same for the original and the redriven record, so the redrive does not repeat
/// the effect. The consequence: two records with the same partition key and the same bytes are
/// one effect (the second is answered like the first without running). A producer whose records
/// may legitimately repeat byte for byte puts an id in them and overrides
/// [`RecordHandler::idempotency_key`] to return it.
pub fn default_key(record: &Record) -> String {
    let mut hash = Sha256::new();
    hash.update((record.partition_key().len() as u64).to_be_bytes());
    hash.update(record.partition_key().as_bytes());
    hash.update(record.data());
    let digest = hash.finalize();
    let mut key = String::with_capacity(7 + 64);
    key.push_str("sha256:");
    for byte in digest.iter() {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}
