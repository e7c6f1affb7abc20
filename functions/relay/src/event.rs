//! The Kinesis event as the event source mapping sends it, read for what the relay forwards.
//!
//! `aws_lambda_events`' `KinesisEvent` decodes every record's data from base64 into bytes (and
//! keeps eight more strings per record); the envelope would only encode the bytes again. Here
//! the data stays the event's own base64 text ([`RecordData`], checked as it is read), and the
//! fields the relay does not use are skipped unread.

use std::fmt;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use shared::envelope::{RecordData, RelayedRecord};

/// The event as the handler receives it: a batch, or why it is not one.
///
/// lambda_runtime reads the event before the handler runs, and reports an event it cannot read
/// with the type name of its own error (`&lambda_runtime::deserializer::DeserializeError`).
/// Reading into this type never fails there: the handler gets the reason and reports it as an
/// [`UnreadableEvent`], named like the relay's other errors. The batch is read in the same one
/// pass as before.
#[derive(Debug)]
pub struct RelayEvent(Result<KinesisBatch, UnreadableEvent>);

impl RelayEvent {
    /// The batch, or why the event is not one.
    pub fn into_batch(self) -> Result<KinesisBatch, UnreadableEvent> {
        self.0
    }
}

impl<'de> Deserialize<'de> for RelayEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let batch = KinesisBatch::deserialize(d).map_err(|error| UnreadableEvent {
            reason: error.to_string(),
        });
        Ok(Self(batch))
    }
}

/// An event that is not a Kinesis batch the relay can read: the invocation fails as a whole
/// (a function error; the event source mapping retries the batch, bisects it, and finally
/// writes it to the on-failure destination).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event is not a Kinesis batch the relay can read: {reason}")]
pub struct UnreadableEvent {
    reason: String,
}

impl UnreadableEvent {
    /// The `errorType` Lambda reports for it.
    pub const ERROR_TYPE: &'static str = "UnreadableEvent";
}

/// Lambda reports the named `errorType`, not a Rust type name.
impl From<UnreadableEvent> for lambda_runtime::Diagnostic {
    fn from(error: UnreadableEvent) -> Self {
        Self {
            error_type: UnreadableEvent::ERROR_TYPE.to_string(),
            error_message: error.to_string(),
        }
    }
}

/// One batch of records of one shard.
#[derive(Debug, Clone, Deserialize)]
pub struct KinesisBatch {
    #[serde(rename = "Records", deserialize_with = "numbered")]
    pub records: Vec<EventRecord>,
}

/// The records, read like any list; a record that cannot be read is named by its index.
fn numbered<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EventRecord>, D::Error> {
    struct Records;

    impl<'de> Visitor<'de> for Records {
        type Value = Vec<EventRecord>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of Kinesis records")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut records = Vec::new();
            loop {
                match seq.next_element() {
                    Ok(Some(record)) => records.push(record),
                    Ok(None) => return Ok(records),
                    Err(error) => {
                        let at = records.len();
                        return Err(A::Error::custom(format_args!("Records[{at}]: {error}")));
                    }
                }
            }
        }
    }

    d.deserialize_seq(Records)
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventRecord {
    pub kinesis: KinesisRecord,
    /// `shardId-...:<sequence number>`.
    #[serde(rename = "eventID", default)]
    pub event_id: Option<String>,
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisRecord {
    #[serde(default)]
    pub partition_key: String,
    #[serde(default)]
    pub sequence_number: String,
    pub data: RecordData,
    /// When Kinesis received the record, in milliseconds since the epoch (the event gives
    /// seconds with a fraction).
    #[serde(deserialize_with = "seconds_as_millis")]
    pub approximate_arrival_timestamp: i64,
}

/// Seconds since the epoch with a fraction (`1764045097.123`), in milliseconds. Rounded:
/// `1764045097.123` is `1764045097122.9999...` once multiplied as a float.
fn seconds_as_millis<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let seconds = f64::deserialize(d)?;
    // A float beyond i64 saturates; JSON has no NaN or infinity.
    Ok((seconds * 1000.0).round() as i64)
}

impl EventRecord {
    /// The record as the target gets it, and the stream it came from (the envelope does not
    /// carry it, a dead letter does).
    pub fn into_relayed(self) -> (String, RelayedRecord) {
        let kinesis = self.kinesis;
        let relayed = RelayedRecord {
            sequence_number: kinesis.sequence_number,
            sub_sequence_number: None,
            partition_key: kinesis.partition_key,
            explicit_hash_key: None,
            event_id: self.event_id.unwrap_or_default(),
            approximate_arrival_ms: Some(kinesis.approximate_arrival_timestamp),
            data: kinesis.data,
        };
        (self.event_source_arn.unwrap_or_default(), relayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of the event source mapping, with every field Lambda sends.
    fn record(arrival: &str, data: &str) -> String {
        format!(
            r#"{{"kinesis": {{"kinesisSchemaVersion": "1.0", "partitionKey": "k-1",
                "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                "data": "{data}", "approximateArrivalTimestamp": {arrival}}},
              "eventSource": "aws:kinesis", "eventVersion": "1.0",
              "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
              "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::111111111111:role/relay",
              "awsRegion": "eu-west-1", "eventSourceARN": "arn:aws:kinesis:eu-west-1:111111111111:stream/s"}}"#
        )
    }

    fn batch(records: &[String]) -> Result<KinesisBatch, serde_json::Error> {
        serde_json::from_str(&format!(r#"{{"Records": [{}]}}"#, records.join(",")))
    }

    #[test]
    fn a_record_keeps_the_events_base64_and_what_the_envelope_needs() {
        let event = batch(&[record("1545084650.987", "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==")]).unwrap();
        let [record] = <[EventRecord; 1]>::try_from(event.records).unwrap();
        let (stream, relayed) = record.into_relayed();
        assert_eq!(stream, "arn:aws:kinesis:eu-west-1:111111111111:stream/s");
        assert_eq!(relayed.partition_key, "k-1");
        assert_eq!(
            relayed.sequence_number,
            "49590338271490256608559692538361571095921575989136588898"
        );
        assert_eq!(
            relayed.event_id,
            "shardId-000000000006:49590338271490256608559692538361571095921575989136588898"
        );
        assert_eq!(relayed.approximate_arrival_ms, Some(1_545_084_650_987));
        assert_eq!(relayed.data.as_base64(), "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==");
        assert_eq!(relayed.data.decode().unwrap(), b"Hello, this is a test.");
    }

    #[test]
    fn arrival_seconds_become_milliseconds_rounded() {
        for (seconds, millis) in [
            ("1764045097.5", 1_764_045_097_500),
            ("1764045097.123", 1_764_045_097_123),
            ("1764045097", 1_764_045_097_000),
            ("1764045097.0004", 1_764_045_097_000),
            ("1764045097.0006", 1_764_045_097_001),
        ] {
            let event = batch(&[record(seconds, "")]).unwrap();
            let arrival = event.records[0].kinesis.approximate_arrival_timestamp;
            assert_eq!(arrival, millis, "{seconds}");
        }
    }

    #[test]
    fn an_event_whose_data_is_not_base64_is_refused_naming_it() {
        let err = batch(&[record("1.0", "SGk="), record("1.0", "not base64!")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Records[1]: record data is not base64: its length 11"),
            "{err}"
        );
    }

    #[test]
    fn an_unreadable_event_is_the_relays_named_error_and_never_a_deserializer_error() {
        let read =
            |text: &str| serde_json::from_str::<RelayEvent>(text).map(RelayEvent::into_batch);
        let good = read(&format!(r#"{{"Records": [{}]}}"#, record("1.0", "SGk=")));
        assert_eq!(good.unwrap().unwrap().records.len(), 1);
        for (event, reason) in [
            (
                r#"{"Records": "none"}"#.to_string(),
                "invalid type: string \"none\", expected a list of Kinesis records",
            ),
            (r#"{"records": []}"#.to_string(), "missing field `Records`"),
            (
                format!(
                    r#"{{"Records": [{}, {{"kinesis": {{}}}}]}}"#,
                    record("1.0", "SGk=")
                ),
                "Records[1]: missing field `data`",
            ),
        ] {
            let error = read(&event).unwrap().unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!(
                    "the event is not a Kinesis batch the relay can read: {reason}"
                )),
                "{message}"
            );
            let diagnostic = lambda_runtime::Diagnostic::from(error);
            assert_eq!(diagnostic.error_type, "UnreadableEvent");
            assert_eq!(diagnostic.error_message, message);
        }
    }

    #[test]
    fn missing_event_fields_are_empty_as_lambda_events_read_them() {
        let event: KinesisBatch = serde_json::from_str(
            r#"{"Records": [{"kinesis": {"data": "", "approximateArrivalTimestamp": 1}}]}"#,
        )
        .unwrap();
        let (stream, relayed) = event.records.into_iter().next().unwrap().into_relayed();
        assert_eq!(
            (stream.as_str(), relayed.event_id.as_str()),
            ("", ""),
            "no eventSourceARN, no eventID"
        );
        assert_eq!(relayed.sequence_number, "");
        let err =
            serde_json::from_str::<KinesisBatch>(r#"{"Records": [{"kinesis": {"data": ""}}]}"#)
                .unwrap_err();
        assert!(
            err.to_string().contains("approximateArrivalTimestamp"),
            "{err}"
        );
    }
}
