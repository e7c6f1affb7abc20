//! The versioned contract between the relay (source account) and the target (target account).
//!
//! The relay sends one [`DeliveryRequest`] per synchronous invocation; the target answers with
//! a [`DeliveryResponse`] that holds one [`RecordResult`] per record. Records are keyed by
//! their Kinesis sequence number, which is unique within a batch (one batch = one shard).
//!
//! Both sides read the `version` field first, so a version mismatch during a rolling deploy
//! is a clear error and not a confusing missing-field message.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The only version this build speaks.
pub const ENVELOPE_VERSION: u32 = 1;

/// What the relay sends to the target in one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRequest {
    pub version: u32,
    /// Correlates the relay's and the target's logs for one invocation.
    pub delivery_id: String,
    pub records: Vec<RelayedRecord>,
}

/// One Kinesis record as the relay forwards it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedRecord {
    pub sequence_number: String,
    pub partition_key: String,
    /// Shard and stream the record came from (the event's `eventID` / `eventSourceARN`).
    pub event_id: String,
    /// When Kinesis received the record, in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_arrival_ms: Option<i64>,
    /// The record's bytes, base64 in JSON (Kinesis data is arbitrary bytes).
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

/// What the target answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryResponse {
    pub version: u32,
    pub results: Vec<RecordResult>,
}

/// The target's verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordResult {
    pub sequence_number: String,
    #[serde(flatten)]
    pub outcome: RecordOutcome,
}

/// `ok`: processed. `rejected`: permanently invalid, retrying cannot help (the relay sends it to
/// the dead-letter queue). `retry`: not processed now, deliver again later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RecordOutcome {
    Ok,
    Rejected { reason: String },
    Retry { reason: String },
}

/// Why a document is not an envelope this build understands.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is not valid JSON or has no numeric \"version\" field: {0}")]
    NoVersion(serde_json::Error),
    #[error("envelope version {found} is not supported (this build speaks version {supported}); deploy the relay and the target from the same release")]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("envelope version {version} is malformed: {source}")]
    Malformed {
        version: u32,
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

fn check_version(probe: Result<VersionProbe, serde_json::Error>) -> Result<(), EnvelopeError> {
    let probe = probe.map_err(EnvelopeError::NoVersion)?;
    if probe.version != u64::from(ENVELOPE_VERSION) {
        return Err(EnvelopeError::UnsupportedVersion {
            found: probe.version,
            supported: ENVELOPE_VERSION,
        });
    }
    Ok(())
}

fn malformed(source: serde_json::Error) -> EnvelopeError {
    EnvelopeError::Malformed {
        version: ENVELOPE_VERSION,
        source,
    }
}

fn decode_versioned<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, EnvelopeError> {
    check_version(serde_json::from_slice(bytes))?;
    serde_json::from_slice(bytes).map_err(malformed)
}

impl DeliveryRequest {
    pub fn new(delivery_id: impl Into<String>, records: Vec<RelayedRecord>) -> Self {
        Self {
            version: ENVELOPE_VERSION,
            delivery_id: delivery_id.into(),
            records,
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        decode_versioned(bytes)
    }

    /// Like [`Self::decode`], for a document already parsed as JSON.
    pub fn from_value(value: serde_json::Value) -> Result<Self, EnvelopeError> {
        check_version(VersionProbe::deserialize(&value))?;
        serde_json::from_value(value).map_err(malformed)
    }

    /// The request as JSON, written into a buffer of its exact size: envelopes reach 6 MB, and
    /// a buffer left to grow would be copied about twenty times on the way.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        serde_json::to_writer(&mut out, self).expect("a DeliveryRequest always serializes");
        out
    }

    /// The length of [`Self::encode`]: the request without records, plus each record's bytes
    /// (each counts a separator; the first record has none).
    pub fn encoded_len(&self) -> usize {
        let records: usize = self.records.iter().map(RelayedRecord::encoded_len).sum();
        empty_request_len(&self.delivery_id) + records.saturating_sub(1)
    }
}

impl DeliveryResponse {
    pub fn new(results: Vec<RecordResult>) -> Self {
        Self {
            version: ENVELOPE_VERSION,
            results,
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        decode_versioned(bytes)
    }
}

impl RelayedRecord {
    /// When Kinesis received the record, if the relay said so and it is a representable time.
    pub fn approximate_arrival(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.approximate_arrival_ms?)
    }

    /// Bytes this record adds to an encoded [`DeliveryRequest`], separator included. Measured
    /// without encoding the data: base64 is 4 characters per 3 bytes and never needs escaping.
    pub fn encoded_len(&self) -> usize {
        let fields = RelayedRecord {
            sequence_number: self.sequence_number.clone(),
            partition_key: self.partition_key.clone(),
            event_id: self.event_id.clone(),
            approximate_arrival_ms: self.approximate_arrival_ms,
            data: Vec::new(),
        };
        json_len(&fields).saturating_add(self.data.len().div_ceil(3) * 4) + 1
    }
}

/// Bytes of an encoded [`DeliveryRequest`] with this id and no records.
pub fn empty_request_len(delivery_id: &str) -> usize {
    json_len(&DeliveryRequest::new(delivery_id, Vec::new()))
}

/// The length of `value` as JSON, counted without writing it anywhere.
fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        // Nothing the envelope holds fails to serialize; never taken as small enough to send.
        Err(_) => usize::MAX,
    }
}

mod base64_bytes {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    /// Encoded straight into the output, without a string per record on the way.
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&base64::display::Base64Display::new(bytes, &STANDARD))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("record data is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: &str, data: &[u8]) -> RelayedRecord {
        RelayedRecord {
            sequence_number: seq.into(),
            partition_key: "pk".into(),
            event_id: format!("shardId-000000000000:{seq}"),
            approximate_arrival_ms: Some(1_700_000_000_000),
            data: data.to_vec(),
        }
    }

    #[test]
    fn request_round_trips() {
        let request = DeliveryRequest::new(
            "d-1",
            vec![record("1", b"{\"a\":1}"), record("2", &[0, 255, 7])],
        );
        let decoded = DeliveryRequest::decode(&request.encode()).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn response_round_trips_every_outcome() {
        let response = DeliveryResponse::new(vec![
            RecordResult {
                sequence_number: "1".into(),
                outcome: RecordOutcome::Ok,
            },
            RecordResult {
                sequence_number: "2".into(),
                outcome: RecordOutcome::Rejected {
                    reason: "body is not JSON".into(),
                },
            },
            RecordResult {
                sequence_number: "3".into(),
                outcome: RecordOutcome::Retry {
                    reason: "busy".into(),
                },
            },
        ]);
        let bytes = serde_json::to_vec(&response).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(
                r#"{"sequence_number":"2","status":"rejected","reason":"body is not JSON"}"#
            ),
            "{text}"
        );
        assert_eq!(DeliveryResponse::decode(&bytes).unwrap(), response);
    }

    #[test]
    fn from_value_checks_like_decode() {
        let request = DeliveryRequest::new("d-1", vec![record("1", b"{}")]);
        let value: serde_json::Value = serde_json::from_slice(&request.encode()).unwrap();
        assert_eq!(DeliveryRequest::from_value(value).unwrap(), request);
        let err = DeliveryRequest::from_value(serde_json::json!({"version": 3, "records": []}))
            .unwrap_err();
        assert!(
            matches!(err, EnvelopeError::UnsupportedVersion { found: 3, .. }),
            "{err}"
        );
        let err = DeliveryRequest::from_value(serde_json::json!([])).unwrap_err();
        assert!(matches!(err, EnvelopeError::NoVersion(_)), "{err}");
    }

    #[test]
    fn unknown_version_is_named() {
        let err = DeliveryRequest::decode(br#"{"version":2,"delivery_id":"x","records":[]}"#)
            .unwrap_err();
        assert!(matches!(
            err,
            EnvelopeError::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        ));
        assert!(
            err.to_string().contains("version 2 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn missing_version_and_malformed_body_are_distinct_errors() {
        assert!(matches!(
            DeliveryRequest::decode(br#"{"records":[]}"#),
            Err(EnvelopeError::NoVersion(_))
        ));
        assert!(matches!(
            DeliveryRequest::decode(b"not json"),
            Err(EnvelopeError::NoVersion(_))
        ));
        let err = DeliveryRequest::decode(
            br#"{"version":1,"delivery_id":"x","records":[{"sequence_number":"1"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(err, EnvelopeError::Malformed { .. }), "{err}");
        let err = DeliveryRequest::decode(
            br#"{"version":1,"delivery_id":"x","records":[{"sequence_number":"1","partition_key":"p","event_id":"e","data":"%%"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
    }

    #[test]
    fn approximate_arrival_is_milliseconds_since_the_epoch() {
        let arrival = record("1", b"").approximate_arrival().unwrap();
        assert_eq!(arrival.to_rfc3339(), "2023-11-14T22:13:20+00:00");
        let absent = RelayedRecord {
            approximate_arrival_ms: None,
            ..record("1", b"")
        };
        assert_eq!(absent.approximate_arrival(), None);
    }

    #[test]
    fn encoded_len_adds_up_to_the_encoded_request() {
        let records = vec![
            record("1", &[1; 100]),
            record("22", &[2; 3000]),
            record("333", b""),
        ];
        let expected: usize = empty_request_len("d")
            + records
                .iter()
                .map(RelayedRecord::encoded_len)
                .sum::<usize>()
            - 1;
        let request = DeliveryRequest::new("d", records);
        let encoded = request.encode();
        assert_eq!(encoded.len(), expected);
        assert_eq!(request.encoded_len(), expected);
        // Written into a buffer of its exact size, never grown.
        assert_eq!(encoded.capacity(), expected);
        let empty = DeliveryRequest::new("d", Vec::new());
        assert_eq!(empty.encoded_len(), empty.encode().len());
        assert_eq!(
            empty.encoded_len(),
            br#"{"version":1,"delivery_id":"d","records":[]}"#.len()
        );
        assert_eq!(empty_request_len("d"), empty.encoded_len());
    }
}
