//! One dead-letter object, read: its kind, why it failed, when, and the records it holds.
//!
//! The bucket's layout is `shared::dead_letter`'s: the relay's own objects under `relay/`,
//! Lambda's on-failure records of the event source mapping under `aws/lambda/<uuid>/` (with the
//! whole event in `payload`) and of the producer's asynchronous invocations under
//! `aws/lambda/async/<function>/`.

use base64::Engine;
use serde::Deserialize;
use shared::dead_letter::{
    DeadLetter, DeadLetterKind, ASYNC_PREFIX, FAILED_BATCH, FAILED_INVOCATION, MAPPING_PREFIX,
    RELAY_PREFIX,
};

/// Why an object is in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The target answered `rejected` (the relay's object, one record).
    RejectedByTarget,
    /// Too large for any Invoke request (the relay's object, one record).
    Undeliverable,
    /// The target function failed on the record alone (the relay's object, one poison record).
    TargetFunctionError,
    /// A batch the event source mapping gave up on (Lambda's object, the whole batch).
    FailedBatch,
    /// A producer invocation that kept failing (Lambda's object, no records: the tick's event).
    FailedInvocation,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::RejectedByTarget,
        Kind::Undeliverable,
        Kind::TargetFunctionError,
        Kind::FailedBatch,
        Kind::FailedInvocation,
    ];

    /// The spelling `--kind` takes and `list` prints (the relay's kinds are spelled as the
    /// relay writes them).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RejectedByTarget => DeadLetterKind::RejectedByTarget.as_str(),
            Kind::Undeliverable => DeadLetterKind::Undeliverable.as_str(),
            Kind::TargetFunctionError => DeadLetterKind::TargetFunctionError.as_str(),
            Kind::FailedBatch => FAILED_BATCH,
            Kind::FailedInvocation => FAILED_INVOCATION,
        }
    }

    /// The kind spelled `value`, if any.
    pub fn parse(value: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

impl From<DeadLetterKind> for Kind {
    fn from(kind: DeadLetterKind) -> Self {
        match kind {
            DeadLetterKind::RejectedByTarget => Kind::RejectedByTarget,
            DeadLetterKind::Undeliverable => Kind::Undeliverable,
            DeadLetterKind::TargetFunctionError => Kind::TargetFunctionError,
        }
    }
}

/// A record to put back on the stream: a user record of a KPL aggregate goes back as itself,
/// with its own partition key and explicit hash key, not as its aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition_key: String,
    /// The user record's explicit hash key, if its producer set one.
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
}

/// A dead-letter object, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub key: String,
    pub kind: Kind,
    pub reason: String,
    /// Seconds since the Unix epoch when S3 last wrote the object.
    pub written_at: i64,
    pub records: Vec<Record>,
}

/// An object relayctl cannot read as a dead letter: listed as such, never moved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("s3 object {key} is not a dead letter relayctl can read: {reason}")]
pub struct Unreadable {
    pub key: String,
    pub reason: String,
}

fn decode(data: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("data is not base64: {e}"))
}

/// Parses `body` as a `T`, saying "not JSON" when it is not JSON at all.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            e.to_string()
        } else {
            format!("not JSON: {e}")
        }
    })
}

/// Reads the object at `key` written at `written_at` with content `body`.
pub fn read(key: &str, written_at: i64, body: &[u8]) -> Result<Letter, Unreadable> {
    let unreadable = |reason: String| Unreadable {
        key: key.to_string(),
        reason,
    };
    let (kind, reason, records) = if key.starts_with(RELAY_PREFIX) {
        relay_letter(body)
    } else if key.starts_with(ASYNC_PREFIX) {
        parse::<InvocationRecord>(body)
            .map(|record| (Kind::FailedInvocation, record.reason(), Vec::new()))
    } else if key.starts_with(MAPPING_PREFIX) {
        mapping_letter(body)
    } else {
        Err(format!(
            "its key is under none of {RELAY_PREFIX}, {MAPPING_PREFIX}"
        ))
    }
    .map_err(unreadable)?;
    Ok(Letter {
        key: key.to_string(),
        kind,
        reason,
        written_at,
        records,
    })
}

/// The relay's own object: one [`DeadLetter`], read with the type the relay writes it with.
fn relay_letter(body: &[u8]) -> Result<(Kind, String, Vec<Record>), String> {
    let letter = DeadLetter::from_json(body).map_err(|e| e.to_string())?;
    let record = Record {
        data: decode(&letter.data_base64)?,
        partition_key: letter.partition_key,
        explicit_hash_key: letter.explicit_hash_key,
    };
    Ok((letter.kind.into(), letter.reason, vec![record]))
}

/// Lambda's on-failure invocation record, as far as relayctl reads it (AWS's format: "Retain
/// discarded batch records" and asynchronous invocation destinations).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvocationRecord {
    #[serde(default)]
    request_context: RequestContext,
    #[serde(default)]
    response_context: ResponseContext,
    /// The whole event, as JSON text: only in an S3 destination's records.
    payload: Option<String>,
}

#[derive(Default, Deserialize)]
struct RequestContext {
    condition: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseContext {
    function_error: Option<String>,
}

impl InvocationRecord {
    /// Lambda's reason: the condition (`RetryAttemptsExhausted`, `RecordAgeExceeded`, ...) and
    /// the function error, if any.
    fn reason(&self) -> String {
        let condition = (self.request_context.condition.as_deref()).unwrap_or("unknown condition");
        match &self.response_context.function_error {
            Some(error) => format!("{condition} ({error})"),
            None => condition.to_string(),
        }
    }
}

/// The Kinesis event of a failed batch, as far as a redrive needs it.
#[derive(Deserialize)]
struct FailedEvent {
    #[serde(rename = "Records")]
    records: Option<Vec<FailedRecord>>,
}

#[derive(Deserialize)]
struct FailedRecord {
    #[serde(default)]
    kinesis: FailedKinesisRecord,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailedKinesisRecord {
    partition_key: Option<String>,
    data: Option<String>,
}

fn mapping_letter(body: &[u8]) -> Result<(Kind, String, Vec<Record>), String> {
    let record: InvocationRecord = parse(body)?;
    let payload =
        (record.payload.as_deref()).ok_or("no `payload` (only an S3 destination has one)")?;
    let event: FailedEvent =
        serde_json::from_str(payload).map_err(|e| format!("`payload` is not JSON: {e}"))?;
    let records = event
        .records
        .ok_or("`payload` has no `Records`")?
        .into_iter()
        .map(|r| {
            let partition_key = (r.kinesis.partition_key).ok_or("a record has no partitionKey")?;
            let data = decode(&r.kinesis.data.ok_or("a record has no data")?)?;
            // The Kinesis record as it was: an aggregate goes back whole, and is de-aggregated
            // again when the relay reads it.
            Ok(Record {
                partition_key,
                explicit_hash_key: None,
                data,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((Kind::FailedBatch, record.reason(), records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The letter in an object at `key` whose body is `body`, which must be readable.
    fn readable(key: &str, written_at: i64, body: &serde_json::Value) -> Letter {
        read(key, written_at, body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_relay_dead_letter_holds_its_one_record() {
        let body = json!({"kind": "rejected_by_target", "reason": "body.message missing",
            "partition_key": "id-1", "data_base64": "aGk=", "sequence_number": "7"});
        let letter = readable("relay/rejected_by_target/s/7.json", 5, &body);
        assert_eq!(letter.kind, Kind::RejectedByTarget);
        assert_eq!(letter.reason, "body.message missing");
        assert_eq!(letter.written_at, 5);
        assert_eq!(
            letter.records,
            vec![Record {
                partition_key: "id-1".into(),
                explicit_hash_key: None,
                data: b"hi".to_vec()
            }]
        );
        // A user record of a KPL aggregate: redriven as itself, with its explicit hash key.
        let user = json!({"kind": "rejected_by_target", "reason": "bad", "partition_key": "u-2",
            "explicit_hash_key": "42", "sequence_number": "7", "sub_sequence_number": 1,
            "data_base64": "aGk="});
        let letter = readable("relay/rejected_by_target/s/7.1.json", 5, &user);
        assert_eq!(
            letter.records,
            vec![Record {
                partition_key: "u-2".into(),
                explicit_hash_key: Some("42".into()),
                data: b"hi".to_vec()
            }]
        );
        let undeliverable = json!({"kind": "undeliverable", "reason": "too large",
            "partition_key": "id-2", "data_base64": ""});
        let letter = readable("relay/undeliverable/s/8.json", 0, &undeliverable);
        assert_eq!(letter.kind, Kind::Undeliverable);
        let poison = json!({"kind": "target_function_error",
            "reason": "target function error on this record alone (Unhandled): boom",
            "partition_key": "id-3", "data_base64": "aGk="});
        let letter = readable("relay/target_function_error/s/9.json", 0, &poison);
        assert_eq!(letter.kind, Kind::TargetFunctionError);
        assert_eq!(letter.records[0].data, b"hi");
    }

    #[test]
    fn relay_letters_read_alike_before_and_after_they_named_their_batch_and_delivery() {
        // Before: `delivery_id` held the relay's batch id. Since: `batch_id` holds it, and
        // `delivery_id` the Invoke that rejected the record (left out when it was never sent).
        let key = "relay/rejected_by_target/shardId-000000000000/7.json";
        let record = json!({"kind": "rejected_by_target", "reason": "body.message missing",
            "partition_key": "id-1", "data_base64": "aGk=", "sequence_number": "7",
            "event_id": "shardId-000000000000:7"});
        let with = |fields: serde_json::Value| {
            let mut body = record.clone();
            body.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            readable(key, 5, &body)
        };
        let old = with(json!({"delivery_id": "0f1e2d3c4b5a"}));
        let new = with(json!({"batch_id": "0f1e2d3c4b5a", "delivery_id": "0f1e2d3c4b5a-0"}));
        let never_sent = with(json!({"batch_id": "0f1e2d3c4b5a"}));
        assert_eq!(old, new);
        assert_eq!(new, never_sent);
        assert_eq!(new.records[0].partition_key, "id-1");
        assert_eq!(new.records[0].data, b"hi");
    }

    #[test]
    fn a_failed_batch_holds_every_record_of_its_event() {
        let event = json!({"Records": [
            {"kinesis": {"partitionKey": "a", "data": "YQ=="}},
            {"kinesis": {"partitionKey": "b", "data": "Yg=="}}]});
        let body = json!({"requestContext": {"condition": "RetryAttemptsExhausted"},
            "responseContext": {"functionError": "Unhandled"},
            "KinesisBatchInfo": {"batchSize": 2}, "payload": event.to_string()});
        let key = "aws/lambda/0f1e/shardId-000000000000/2026/11/25/2026-11-25T16.00.00-x";
        let letter = readable(key, 0, &body);
        assert_eq!(letter.kind, Kind::FailedBatch);
        assert_eq!(letter.reason, "RetryAttemptsExhausted (Unhandled)");
        let keys: Vec<_> = letter
            .records
            .iter()
            .map(|r| r.partition_key.as_str())
            .collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(letter.records[1].data, b"b");
    }

    #[test]
    fn a_failed_invocation_has_a_reason_and_no_records() {
        let body =
            json!({"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": {}});
        let letter = readable("aws/lambda/async/p-producer/2026/x", 0, &body);
        assert_eq!(letter.kind, Kind::FailedInvocation);
        assert_eq!(letter.reason, "RetriesExhausted");
        assert!(letter.records.is_empty());
    }

    #[test]
    fn what_is_not_a_dead_letter_is_refused_with_why() {
        let cases: [(&str, &[u8], &str); 6] = [
            ("relay/x.json", b"{", "not JSON"),
            (
                "relay/x.json",
                br#"{"kind": "failed_batch"}"#,
                "no `kind` the relay writes",
            ),
            (
                "relay/x.json",
                br#"{"kind": "undeliverable", "data_base64": "AA=="}"#,
                "no `partition_key`",
            ),
            (
                "relay/x.json",
                br#"{"kind": "undeliverable", "partition_key": "p", "data_base64": "*"}"#,
                "not base64",
            ),
            (
                "aws/lambda/u/s/x",
                br#"{"requestContext": {}}"#,
                "no `payload`",
            ),
            ("redriven/relay/x.json", b"{}", "under none of"),
        ];
        for (key, body, needle) in cases {
            let err = read(key, 0, body).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.reason.contains(needle), "{key}: {err}");
        }
    }

    #[test]
    fn kinds_parse_their_own_spelling_only() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("rejected"), None);
    }
}
