//! The dead-letter bucket's layout: which writer puts its objects under which key prefix.
//!
//! One bucket holds every record the data path gave up on. Its writers are fixed by AWS or by
//! this project, and each may write only under its own prefix (the Pulumi program's IAM
//! statements are built from these constants):
//!
//! | prefix | writer | what an object holds |
//! | --- | --- | --- |
//! | [`RELAY_PREFIX`] | the relay | one record the target rejected or that no Invoke can carry, with its data |
//! | [`MAPPING_PREFIX`] | Lambda, for the relay's event source mapping | the on-failure invocation record of a batch that kept failing, with the whole event (`payload`) |
//! | [`ASYNC_PREFIX`] | Lambda, for the producer's asynchronous invocations | the on-failure invocation record of a tick that kept failing |
//!
//! The relay's objects hold one [`DeadLetter`] each, as JSON: the relay writes it, `relayctl`
//! reads it back with the same type, and the local run and the end-to-end tests read its fields
//! by the names below.
//!
//! Lambda chooses the keys of its own objects ("Retain discarded batch records for a Kinesis
//! Data Streams event source": `aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/...`; asynchronous
//! invocations: `aws/lambda/async/<function-name>/YYYY/MM/DD/...`).

use serde::{Deserialize, Serialize};

/// Where the relay writes the records it gives up on.
pub const RELAY_PREFIX: &str = "relay/";
/// Where Lambda writes an event source mapping's on-failure records. The mapping's UUID comes
/// next, which AWS assigns when the mapping is created, so a policy cannot name it in advance.
pub const MAPPING_PREFIX: &str = "aws/lambda/";
/// Where Lambda writes the on-failure records of a function's asynchronous invocations; the
/// function's name comes next.
pub const ASYNC_PREFIX: &str = "aws/lambda/async/";
/// Where an operator's redrive moves an object once all its records are back on the stream.
pub const REDRIVEN_PREFIX: &str = "redriven/";

/// The prefixes as `name=value` pairs, for `infra --dead-letter-layout` (the local run reads
/// them from there instead of typing them again).
pub const LAYOUT: &[(&str, &str)] = &[
    ("relay_prefix", RELAY_PREFIX),
    ("mapping_prefix", MAPPING_PREFIX),
    ("async_prefix", ASYNC_PREFIX),
    ("redriven_prefix", REDRIVEN_PREFIX),
];

/// The kind `relayctl` gives Lambda's on-failure record of a batch the relay's event source
/// mapping gave up on (under [`MAPPING_PREFIX`]).
pub const FAILED_BATCH: &str = "failed_batch";
/// The kind `relayctl` gives Lambda's on-failure record of a producer invocation that kept
/// failing (under [`ASYNC_PREFIX`]).
pub const FAILED_INVOCATION: &str = "failed_invocation";

/// What the bucket holds under one prefix: a row of `docs/reference/dead-letters.md`, which
/// `make generate` prints from [`PREFIXES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The pattern of the objects' keys in parts, to be joined: one of the prefixes above,
    /// then a kind or placeholders.
    pub key: &'static [&'static str],
    /// The kind `relayctl` lists the objects as; none for the objects it has redriven.
    pub kind: Option<&'static str>,
    /// What one object holds.
    pub holds: &'static str,
}

/// Every prefix of the bucket and what an object under it holds, in the reference's order.
pub const PREFIXES: &[Prefix] = &[
    Prefix {
        key: &[
            RELAY_PREFIX,
            DeadLetterKind::RejectedByTarget.as_str(),
            RECORD_KEY,
        ],
        kind: Some(DeadLetterKind::RejectedByTarget.as_str()),
        holds: "one record the target rejected, with its reason and all its data",
    },
    Prefix {
        key: &[
            RELAY_PREFIX,
            DeadLetterKind::Undeliverable.as_str(),
            RECORD_KEY,
        ],
        kind: Some(DeadLetterKind::Undeliverable.as_str()),
        holds: "one record too large for any Invoke request",
    },
    Prefix {
        key: &[
            RELAY_PREFIX,
            DeadLetterKind::TargetFunctionError.as_str(),
            RECORD_KEY,
        ],
        kind: Some(DeadLetterKind::TargetFunctionError.as_str()),
        holds: "one record the target function failed on alone (a poison record the relay isolated by splitting its envelope), with the target's error type and message and all its data",
    },
    Prefix {
        key: &[MAPPING_PREFIX, "<mapping UUID>/<shard>/YYYY/MM/DD/..."],
        kind: Some(FAILED_BATCH),
        holds: "Lambda's on-failure record of a batch the relay kept failing, the whole event (every record's data) in `payload`",
    },
    Prefix {
        key: &[ASYNC_PREFIX, "<producer>/YYYY/MM/DD/..."],
        kind: Some(FAILED_INVOCATION),
        holds: "Lambda's on-failure record of a producer tick that kept failing: the tick's event, no records",
    },
    Prefix {
        key: &[REDRIVEN_PREFIX, "<original key>"],
        kind: None,
        holds: "an object `relayctl redrive` has put back on the stream",
    },
];

/// The end of a relay dead letter's key, after its kind (see [`relay_key`]).
const RECORD_KEY: &str = "/<shard>/<sequence>[.<sub-sequence>].json";

/// The key of the relay's dead letter for one record: `relay/<kind>/<shard>/<sequence>.json`,
/// or `.../<sequence>.<sub-sequence>.json` for a user record of a KPL aggregate (they share the
/// aggregate's sequence number). Deterministic, so writing the same record again (a retried
/// batch rejected twice) replaces the object instead of adding a second one. `event_id` is
/// Lambda's `<shard>:<sequence>`.
pub fn relay_key(kind: &str, event_id: &str, sub_sequence_number: Option<u64>) -> String {
    let path = event_id.replace(':', "/");
    match sub_sequence_number {
        None => format!("{RELAY_PREFIX}{kind}/{path}.json"),
        Some(sub) => format!("{RELAY_PREFIX}{kind}/{path}.{sub}.json"),
    }
}

/// Why the relay gave up on a record: its dead letter's `kind`, and the folder of its key.
///
/// | kind | spelling | why |
/// | --- | --- | --- |
/// | [`Self::RejectedByTarget`] | `rejected_by_target` | the target answered `rejected`: retrying cannot help |
/// | [`Self::Undeliverable`] | `undeliverable` | the record is too large for any Invoke request |
/// | [`Self::TargetFunctionError`] | `target_function_error` | the target function failed on the record alone (a poison record) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum DeadLetterKind {
    /// The target answered `rejected`: retrying cannot help.
    RejectedByTarget,
    /// The record is too large for any Invoke request.
    Undeliverable,
    /// The target function failed (`X-Amz-Function-Error`) on an envelope holding this record
    /// alone: a poison record, isolated by splitting the envelope it came in.
    TargetFunctionError,
}

impl DeadLetterKind {
    /// Every kind, in the order `relayctl list` prints them.
    pub const ALL: [Self; 3] = [
        Self::RejectedByTarget,
        Self::Undeliverable,
        Self::TargetFunctionError,
    ];

    /// The spelling in the dead letter, its key and the logs (the local run reads it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RejectedByTarget => "rejected_by_target",
            Self::Undeliverable => "undeliverable",
            Self::TargetFunctionError => "target_function_error",
        }
    }

    /// The kind spelled `value`, if the relay writes one so spelled.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

impl From<DeadLetterKind> for &'static str {
    fn from(kind: DeadLetterKind) -> Self {
        kind.as_str()
    }
}

impl TryFrom<String> for DeadLetterKind {
    type Error = UnreadableDeadLetter;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or(UnreadableDeadLetter::UnknownKind(value))
    }
}

/// A record the relay gave up on, as its object in the dead-letter bucket holds it (JSON, the
/// fields in this order): its reason, where it came from, and all its data.
///
/// Read back, only `kind`, `partition_key` and `data_base64` must be present (what a redrive
/// needs); the other fields are empty when absent, so objects written before a field existed
/// still read (before `batch_id`, `delivery_id` held the relay invocation's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WrittenDeadLetter")]
pub struct DeadLetter {
    /// Why the relay gave up on the record.
    pub kind: DeadLetterKind,
    /// The target's reason, or why no Invoke could carry the record.
    pub reason: String,
    /// The record's Kinesis partition key (the producer's record id); a user record's own.
    pub partition_key: String,
    /// A user record's explicit hash key, if its producer set one: a redrive writes it back
    /// with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
    /// The record's Kinesis sequence number (a user record's aggregate's).
    pub sequence_number: String,
    /// A user record's index within its KPL aggregate; absent for a plain record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_sequence_number: Option<u64>,
    /// The record's correlation id: Lambda's `eventID` (`<shard id>:<sequence number>`), which
    /// every log line of the relay and of the target about this record carries as `event_id`.
    pub event_id: String,
    /// The stream the record was read from.
    pub event_source_arn: String,
    /// The record's bytes, base64: all of them, so the record can be redriven after the
    /// stream has trimmed it.
    pub data_base64: String,
    /// How many bytes `data_base64` decodes to.
    pub data_bytes: usize,
    /// The relay invocation that gave up on the record (its `invocation summary` line's
    /// `batch_id`).
    pub batch_id: String,
    /// The Invoke whose answer rejected the record: the `delivery_id` of the target's line about
    /// it. Absent for a record that was never sent (too large for any Invoke).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

impl DeadLetter {
    /// The object key of this letter ([`relay_key`]).
    pub fn key(&self) -> String {
        relay_key(self.kind.as_str(), &self.event_id, self.sub_sequence_number)
    }

    /// The object's body: the letter as JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Reads an object's body back. A body that is not JSON, or that lacks a field a redrive
    /// needs, is an error that says so.
    pub fn from_json(body: &[u8]) -> Result<Self, UnreadableDeadLetter> {
        serde_json::from_slice(body).map_err(|error| {
            if error.is_data() {
                UnreadableDeadLetter::Invalid(error.to_string())
            } else {
                UnreadableDeadLetter::NotJson(error.to_string())
            }
        })
    }
}

/// Why a body is not a [`DeadLetter`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableDeadLetter {
    /// The body is not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The JSON is not a dead letter (the reason says which field is wrong).
    #[error("{0}")]
    Invalid(String),
    /// `kind` is absent.
    #[error("no `kind` the relay writes")]
    NoKind,
    /// `kind` is not one the relay writes.
    #[error("no `kind` the relay writes (`{0}`)")]
    UnknownKind(String),
    /// A field a redrive needs is absent.
    #[error("no `{0}`")]
    Missing(&'static str),
}

/// What an object may hold: every field optional, so that a missing one is named in
/// [`UnreadableDeadLetter::Missing`] rather than in serde's words.
#[derive(Deserialize)]
struct WrittenDeadLetter {
    kind: Option<DeadLetterKind>,
    #[serde(default)]
    reason: String,
    partition_key: Option<String>,
    #[serde(default)]
    explicit_hash_key: Option<String>,
    #[serde(default)]
    sequence_number: String,
    #[serde(default)]
    sub_sequence_number: Option<u64>,
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    event_source_arn: String,
    data_base64: Option<String>,
    #[serde(default)]
    data_bytes: usize,
    #[serde(default)]
    batch_id: String,
    #[serde(default)]
    delivery_id: Option<String>,
}

impl TryFrom<WrittenDeadLetter> for DeadLetter {
    type Error = UnreadableDeadLetter;

    fn try_from(written: WrittenDeadLetter) -> Result<Self, Self::Error> {
        use UnreadableDeadLetter::{Missing, NoKind};
        Ok(DeadLetter {
            kind: written.kind.ok_or(NoKind)?,
            reason: written.reason,
            partition_key: written.partition_key.ok_or(Missing("partition_key"))?,
            explicit_hash_key: written.explicit_hash_key,
            sequence_number: written.sequence_number,
            sub_sequence_number: written.sub_sequence_number,
            event_id: written.event_id,
            event_source_arn: written.event_source_arn,
            data_base64: written.data_base64.ok_or(Missing("data_base64"))?,
            data_bytes: written.data_bytes,
            batch_id: written.batch_id,
            delivery_id: written.delivery_id,
        })
    }
}

/// The prefix of the producer's asynchronous on-failure records.
pub fn async_prefix(function_name: &str) -> String {
    format!("{ASYNC_PREFIX}{function_name}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_keys_are_one_per_record_under_the_relay_prefix() {
        assert_eq!(
            relay_key("rejected_by_target", "shardId-000000000000:4959", None),
            "relay/rejected_by_target/shardId-000000000000/4959.json"
        );
        assert_eq!(
            relay_key("undeliverable", "x", None),
            "relay/undeliverable/x.json"
        );
        // The user records of one aggregate share its sequence number: one key each.
        assert_eq!(
            relay_key("rejected_by_target", "shardId-000000000000:4959", Some(0)),
            "relay/rejected_by_target/shardId-000000000000/4959.0.json"
        );
        assert_eq!(
            relay_key("rejected_by_target", "shardId-000000000000:4959", Some(12)),
            "relay/rejected_by_target/shardId-000000000000/4959.12.json"
        );
    }

    fn letter(delivery_id: Option<&str>) -> DeadLetter {
        DeadLetter {
            kind: DeadLetterKind::RejectedByTarget,
            reason: "body.message missing".into(),
            partition_key: "id-1".into(),
            explicit_hash_key: None,
            sequence_number: "42".into(),
            sub_sequence_number: None,
            event_id: "shardId-000000000000:42".into(),
            event_source_arn: "arn:aws:kinesis:eu-west-1:111111111111:stream/s".into(),
            data_base64: "aGk=".into(),
            data_bytes: 2,
            batch_id: "b0".into(),
            delivery_id: delivery_id.map(str::to_owned),
        }
    }

    #[test]
    fn a_dead_letter_is_written_with_its_fields_in_order_and_read_back_whole() {
        let sent = letter(Some("b0-0"));
        let body = String::from_utf8(sent.to_json().unwrap()).unwrap();
        assert_eq!(
            body,
            concat!(
                r#"{"kind":"rejected_by_target","reason":"body.message missing","#,
                r#""partition_key":"id-1","sequence_number":"42","#,
                r#""event_id":"shardId-000000000000:42","#,
                r#""event_source_arn":"arn:aws:kinesis:eu-west-1:111111111111:stream/s","#,
                r#""data_base64":"aGk=","data_bytes":2,"batch_id":"b0","delivery_id":"b0-0"}"#
            )
        );
        assert_eq!(DeadLetter::from_json(body.as_bytes()), Ok(sent));
        // A record never sent has no delivery to name: the field is left out, not null.
        let never_sent = letter(None);
        let body = String::from_utf8(never_sent.to_json().unwrap()).unwrap();
        assert!(body.ends_with(r#""batch_id":"b0"}"#), "{body}");
        assert_eq!(DeadLetter::from_json(body.as_bytes()), Ok(never_sent));
    }

    #[test]
    fn a_user_records_letter_keeps_its_hash_key_and_sub_sequence_number_and_has_its_own_key() {
        let user = DeadLetter {
            explicit_hash_key: Some("42".into()),
            sub_sequence_number: Some(3),
            ..letter(None)
        };
        let body = String::from_utf8(user.to_json().unwrap()).unwrap();
        assert!(
            body.contains(r#""partition_key":"id-1","explicit_hash_key":"42","sequence_number":"42","sub_sequence_number":3,"#),
            "{body}"
        );
        assert_eq!(DeadLetter::from_json(body.as_bytes()), Ok(user.clone()));
        assert_eq!(
            user.key(),
            "relay/rejected_by_target/shardId-000000000000/42.3.json"
        );
        assert_ne!(user.key(), letter(None).key());
    }

    #[test]
    fn a_dead_letter_key_is_its_kind_and_event_id() {
        assert_eq!(
            letter(None).key(),
            "relay/rejected_by_target/shardId-000000000000/42.json"
        );
        let undeliverable = DeadLetter {
            kind: DeadLetterKind::Undeliverable,
            ..letter(None)
        };
        assert_eq!(
            undeliverable.key(),
            "relay/undeliverable/shardId-000000000000/42.json"
        );
    }

    #[test]
    fn a_dead_letter_needs_only_what_a_redrive_needs() {
        let letter = DeadLetter::from_json(
            br#"{"kind": "undeliverable", "partition_key": "p", "data_base64": ""}"#,
        )
        .unwrap();
        assert_eq!(letter.kind, DeadLetterKind::Undeliverable);
        assert_eq!(letter.partition_key, "p");
        assert_eq!((letter.reason.as_str(), letter.batch_id.as_str()), ("", ""));
        assert_eq!(letter.delivery_id, None);
    }

    #[test]
    fn what_is_not_a_dead_letter_says_why() {
        let cases: [(&[u8], &str); 6] = [
            (b"{", "not JSON: "),
            (br#""a letter""#, "invalid type: string"),
            (
                br#"{"partition_key": "p", "data_base64": ""}"#,
                "no `kind` the relay writes",
            ),
            (
                br#"{"kind": "failed_batch", "partition_key": "p", "data_base64": ""}"#,
                "no `kind` the relay writes (`failed_batch`)",
            ),
            (
                br#"{"kind": "undeliverable", "data_base64": ""}"#,
                "no `partition_key`",
            ),
            (
                br#"{"kind": "undeliverable", "partition_key": "p"}"#,
                "no `data_base64`",
            ),
        ];
        for (body, needle) in cases {
            let err = DeadLetter::from_json(body).unwrap_err().to_string();
            assert!(err.starts_with(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn dead_letter_kinds_keep_their_wire_spelling() {
        for (kind, spelling) in [
            (DeadLetterKind::RejectedByTarget, "rejected_by_target"),
            (DeadLetterKind::Undeliverable, "undeliverable"),
            (DeadLetterKind::TargetFunctionError, "target_function_error"),
        ] {
            assert_eq!(kind.as_str(), spelling);
            assert_eq!(DeadLetterKind::parse(spelling), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), spelling);
        }
        assert_eq!(DeadLetterKind::parse("rejected"), None);
    }

    #[test]
    fn every_kind_is_under_one_prefix_of_the_layout() {
        let kinds: Vec<_> = PREFIXES.iter().filter_map(|p| p.kind).collect();
        let mut expected: Vec<_> = DeadLetterKind::ALL.map(DeadLetterKind::as_str).to_vec();
        expected.extend([FAILED_BATCH, FAILED_INVOCATION]);
        assert_eq!(kinds, expected);
        for prefix in PREFIXES {
            let key = prefix.key.concat();
            assert!(LAYOUT.iter().any(|(_, p)| key.starts_with(p)), "{key}");
            assert!(!prefix.holds.is_empty(), "{key}");
        }
        assert_eq!(
            PREFIXES[0].key.concat(),
            "relay/rejected_by_target/<shard>/<sequence>[.<sub-sequence>].json"
        );
        assert_eq!(
            relay_key("rejected_by_target", "<shard>:<sequence>", Some(0)),
            "relay/rejected_by_target/<shard>/<sequence>.0.json"
        );
    }

    #[test]
    fn lambda_prefixes_are_the_documented_ones() {
        assert_eq!(async_prefix("p-producer"), "aws/lambda/async/p-producer/");
        assert!(ASYNC_PREFIX.starts_with(MAPPING_PREFIX));
        assert!(!RELAY_PREFIX.starts_with(MAPPING_PREFIX));
        assert!(!REDRIVEN_PREFIX.starts_with(MAPPING_PREFIX));
    }
}
