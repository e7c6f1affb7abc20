//! KPL de-aggregation: a Kinesis record that is a KPL aggregate ([`shared::kpl`]) becomes its
//! user records, each delivered as a record of its own.
//!
//! A user record keeps the aggregate's sequence number, `event_id` and arrival time, and has its
//! own partition key, explicit hash key (if its producer set one) and sub-sequence number (its
//! index within the aggregate). Everything after this step (packing, key-ordered lanes, verdicts,
//! dead letters) works on these records; only the answer to the event source mapping goes back
//! to Kinesis records, whose sequence numbers it names (see [`crate::batch`]).
//!
//! What is not an aggregate stays one record, as it came:
//! - a record without the magic bytes, or whose MD5 digest does not match (the format's rule:
//!   a record that merely starts with the magic bytes is ordinary data);
//! - an aggregate whose digest matches but whose content cannot be read
//!   ([`shared::kpl::InvalidAggregate`]: a truncated field, an index outside a key table, a
//!   required field missing, no user records). Delivered as an ordinary record, so that nothing
//!   is dropped and the target decides (a target that reads only its own format rejects it, and
//!   the relay dead-letters it with all its bytes); the relay logs a warning naming the record
//!   and exactly what is wrong with it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use shared::envelope::{RecordData, RelayedRecord};
use shared::kpl::{self, Decoded};

/// A batch's records after de-aggregation, with the stream of each (by position), and counts.
#[derive(Debug, Default)]
pub struct Deaggregated {
    /// The stream each record came from, by position.
    pub streams: Vec<String>,
    /// Plain records and user records, in the batch's order (an aggregate's user records in
    /// their order, where the aggregate was).
    pub records: Vec<RelayedRecord>,
    /// Kinesis records that were aggregates (and were de-aggregated).
    pub aggregates: usize,
    /// User records the aggregates held (a part of `records`).
    pub user_records: usize,
    /// Records with the magic bytes and a matching digest whose content could not be read,
    /// delivered as plain records.
    pub invalid_aggregates: usize,
}

/// De-aggregates a batch of `(stream, record)` pairs (see the module docs).
pub fn batch(
    batch_id: &str,
    records: impl IntoIterator<Item = (String, RelayedRecord)>,
) -> Deaggregated {
    let mut out = Deaggregated::default();
    for (stream, record) in records {
        let expanded = match user_records(&record) {
            Expansion::Plain => vec![record],
            Expansion::Aggregate(users) => {
                out.aggregates += 1;
                out.user_records += users.len();
                users
            }
            Expansion::Invalid(error) => {
                out.invalid_aggregates += 1;
                tracing::warn!(
                    batch_id = %batch_id,
                    record_id = %record.partition_key,
                    event_id = %record.event_id,
                    sequence_number = %record.sequence_number,
                    error = %error,
                    "record has the KPL magic bytes and a matching digest, but its content cannot be read: delivered as a plain record"
                );
                vec![record]
            }
        };
        out.streams
            .extend(std::iter::repeat_n(stream, expanded.len()));
        out.records.extend(expanded);
    }
    out
}

/// What one Kinesis record is.
#[derive(Debug, PartialEq, Eq)]
enum Expansion {
    Plain,
    Aggregate(Vec<RelayedRecord>),
    Invalid(kpl::InvalidAggregate),
}

/// The base64 of the magic bytes' first three: every aggregate's text starts with it.
const MAGIC_BASE64: &str = "84ma";

/// The user records of `record` if it is an aggregate. The record's data is decoded only when
/// its text starts like an aggregate's: plain records pass as the event's base64, untouched
/// (one too short to be an aggregate is decoded, and [`kpl::decode`] answers plain).
fn user_records(record: &RelayedRecord) -> Expansion {
    let text = record.data.as_base64();
    if !text.starts_with(MAGIC_BASE64) {
        return Expansion::Plain;
    }
    // Checked base64 (RecordData), so this cannot fail; if it ever did, the record stays plain.
    let Ok(bytes) = STANDARD.decode(text) else {
        return Expansion::Plain;
    };
    let users = match kpl::decode(&bytes) {
        Ok(Decoded::Plain) => return Expansion::Plain,
        Ok(Decoded::Aggregate(users)) => users,
        Err(error) => return Expansion::Invalid(error),
    };
    let records = (users.iter().zip(0u64..))
        .map(|(user, sub)| RelayedRecord {
            sequence_number: record.sequence_number.clone(),
            sub_sequence_number: Some(sub),
            partition_key: user.partition_key.to_owned(),
            explicit_hash_key: user.explicit_hash_key.map(str::to_owned),
            event_id: record.event_id.clone(),
            approximate_arrival_ms: record.approximate_arrival_ms,
            data: RecordData::encode(user.data),
        })
        .collect();
    Expansion::Aggregate(records)
}

#[cfg(test)]
mod tests {
    use md5::{Digest as _, Md5};
    use shared::kpl::MAGIC;

    use super::*;

    /// Partition keys `a`, `b`; hash key `42`; records (a, "one"), (b, "two", 42), (a, "").
    fn aggregate() -> Vec<u8> {
        let record = |pk: u8, ehk: Option<u8>, data: &[u8]| {
            let mut fields = vec![0x08, pk];
            if let Some(ehk) = ehk {
                fields.extend([0x10, ehk]);
            }
            fields.extend([0x1A, data.len() as u8]);
            fields.extend(data);
            [&[0x1A, fields.len() as u8][..], &fields].concat()
        };
        let message = [
            &[0x0A, 1, b'a', 0x0A, 1, b'b', 0x12, 2, b'4', b'2'][..],
            &record(0, None, b"one"),
            &record(1, Some(0), b"two"),
            &record(0, None, b""),
        ]
        .concat();
        [&MAGIC[..], &message, Md5::digest(&message).as_slice()].concat()
    }

    fn relayed(sequence_number: &str, data: &[u8]) -> RelayedRecord {
        RelayedRecord {
            sequence_number: sequence_number.into(),
            sub_sequence_number: None,
            partition_key: "outer".into(),
            explicit_hash_key: None,
            event_id: format!("shardId-000000000000:{sequence_number}"),
            approximate_arrival_ms: Some(1_764_045_097_125),
            data: RecordData::encode(data),
        }
    }

    #[test]
    fn the_magics_base64_is_what_an_aggregate_starts_with() {
        assert_eq!(&STANDARD.encode(MAGIC)[..4], MAGIC_BASE64);
    }

    #[test]
    fn an_aggregate_becomes_its_user_records_with_their_keys_and_numbers() {
        let Expansion::Aggregate(users) = user_records(&relayed("9", &aggregate())) else {
            panic!("not de-aggregated");
        };
        let seen: Vec<_> = (users.iter())
            .map(|u| {
                let data = u.data.decode().unwrap();
                let ehk = u.explicit_hash_key.as_deref();
                (u.sub_sequence_number, u.partition_key.as_str(), ehk, data)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (Some(0), "a", None, b"one".to_vec()),
                (Some(1), "b", Some("42"), b"two".to_vec()),
                (Some(2), "a", None, Vec::new()),
            ]
        );
        for user in &users {
            assert_eq!(user.sequence_number, "9");
            assert_eq!(user.event_id, "shardId-000000000000:9");
            assert_eq!(user.approximate_arrival_ms, Some(1_764_045_097_125));
        }
    }

    #[test]
    fn a_wrong_digest_or_no_magic_leaves_the_record_as_it_came() {
        let mut corrupt = aggregate();
        *corrupt.last_mut().unwrap() ^= 1;
        for data in [corrupt, b"{\"id\":1}".to_vec(), MAGIC.to_vec(), Vec::new()] {
            assert_eq!(user_records(&relayed("9", &data)), Expansion::Plain);
        }
    }

    #[test]
    fn a_batch_keeps_its_order_and_counts_and_an_unreadable_aggregate_stays_plain() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let empty = [&MAGIC[..], Md5::digest([]).as_slice()].concat();
        let pairs = [
            ("s1", relayed("1", b"plain")),
            ("s2", relayed("2", &aggregate())),
            ("s3", relayed("3", &empty)),
        ]
        .map(|(stream, record)| (stream.to_string(), record));
        let out = batch("b-1", pairs);
        let named: Vec<String> = (out.records.iter())
            .map(|r| r.identity().to_string())
            .collect();
        assert_eq!(named, ["1", "2/0", "2/1", "2/2", "3"]);
        assert_eq!(out.streams, ["s1", "s2", "s2", "s2", "s3"]);
        assert_eq!(
            (out.aggregates, out.user_records, out.invalid_aggregates),
            (1, 3, 1)
        );
        assert_eq!(out.records[4], relayed("3", &empty));
        let warnings = logs.with_message(
            "record has the KPL magic bytes and a matching digest, but its content cannot be read: delivered as a plain record",
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0]["event_id"], "shardId-000000000000:3");
        assert_eq!(warnings[0]["error"], "the aggregate holds no user records");
    }
}
