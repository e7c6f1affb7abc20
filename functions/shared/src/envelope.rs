//! The versioned contract between the relay (source account) and the target (target account).
//!
//! The relay sends one [`DeliveryRequest`] per synchronous invocation; the target answers with
//! a [`DeliveryResponse`] that holds one [`RecordResult`] per record. Records are keyed by
//! their [`RecordIdentity`]: the Kinesis sequence number, which is unique within a batch (one
//! batch = one shard), and for a user record of a KPL aggregate (see [`crate::kpl`]) its
//! sub-sequence number, its index within the aggregate (the user records of one aggregate share
//! its sequence number).
//!
//! Both sides read the `version` field first, so a version mismatch during a rolling deploy
//! is a clear error and not a confusing missing-field message.
//!
//! The version changes when a side of this version could misread a document of the other.
//! Optional fields, absent when empty, do not change it: `sub_sequence_number` and
//! `explicit_hash_key` (KPL de-aggregation) are absent from every plain record, so a request
//! without aggregates is the same document as before they existed, and a plain stream keeps
//! flowing while a relay and a target of different releases are deployed one after the other.
//! A target that predates them answers a user record without its sub-sequence number; the
//! relay matches no record to that answer, retries the aggregate's user records (the target's
//! idempotency makes the repeat harmless) and logs that the target predates de-aggregation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

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

/// One Kinesis record as the relay forwards it: a plain record, or one user record of a KPL
/// aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedRecord {
    /// The Kinesis sequence number (an aggregate's, shared by its user records).
    pub sequence_number: String,
    /// A user record's index within its KPL aggregate (the KCL's sub-sequence number); absent
    /// for a plain record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_sequence_number: Option<u64>,
    /// The record's partition key: a user record's own, not its aggregate's.
    pub partition_key: String,
    /// A user record's explicit hash key, if its producer set one (the Kinesis event does not
    /// carry a plain record's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
    /// Shard and stream the record came from (the event's `eventID` / `eventSourceARN`).
    pub event_id: String,
    /// When Kinesis received the record, in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_arrival_ms: Option<i64>,
    /// The record's bytes, base64 in JSON (Kinesis data is arbitrary bytes).
    pub data: RecordData,
}

/// A record's bytes as the envelope carries them: standard base64 text (Kinesis data is
/// arbitrary bytes). Kept as the JSON string it arrived as, so that the relay forwards the Kinesis
/// event's own base64 without decoding it, encoding it again or escaping it: serde_json writes it
/// out as it was read (those three steps took about a third of the relay's CPU). Only the target
/// decodes it.
///
/// Checked whenever it is read: standard alphabet, padded, canonical, which is exactly what
/// [`RecordData::decode`] accepts.
#[derive(Debug, Clone)]
pub struct RecordData(Box<RawValue>);

/// Why a text is not the base64 of a record's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("its length {0} is not a multiple of 4 (standard base64 is padded with '=')")]
    Length(usize),
    #[error("byte {at} ({byte:#04x}) is not a symbol of the standard base64 alphabet")]
    Symbol { at: usize, byte: u8 },
    #[error("its last symbol has bits set that encode no byte (not canonical base64)")]
    TrailingBits,
}

/// What the target answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryResponse {
    pub version: u32,
    pub results: Vec<RecordResult>,
}

/// The target's verdict on one record, named by the record's [`RecordIdentity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordResult {
    pub sequence_number: String,
    /// The record's `sub_sequence_number`, for a user record of an aggregate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_sequence_number: Option<u64>,
    #[serde(flatten)]
    pub outcome: RecordOutcome,
}

/// What names a record within one delivery: its sequence number, and for a user record of a
/// KPL aggregate its sub-sequence number. Shown (in the relay's reasons and log lines) as
/// `<sequence number>` or `<sequence number>/<sub-sequence number>`: a sequence number is all
/// digits, and `1002.0` would read as a decimal number. A dead letter's key writes the pair
/// `<sequence number>.<sub-sequence number>` instead ([`crate::dead_letter::relay_key`]), as in
/// an S3 key a `/` would make each aggregate a folder of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordIdentity<'a> {
    /// The Kinesis record's sequence number (an aggregate's, for its user records).
    pub sequence_number: &'a str,
    /// The user record's index in its aggregate; `None` for a plain record.
    pub sub_sequence_number: Option<u64>,
}

impl std::fmt::Display for RecordIdentity<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sub_sequence_number {
            None => f.write_str(self.sequence_number),
            Some(sub) => write!(f, "{}/{sub}", self.sequence_number),
        }
    }
}

impl RecordResult {
    /// The verdict `outcome` on `record`, named as the record is.
    pub fn answering(record: &RelayedRecord, outcome: RecordOutcome) -> Self {
        Self {
            sequence_number: record.sequence_number.clone(),
            sub_sequence_number: record.sub_sequence_number,
            outcome,
        }
    }

    /// The record this verdict is about.
    pub fn identity(&self) -> RecordIdentity<'_> {
        RecordIdentity {
            sequence_number: &self.sequence_number,
            sub_sequence_number: self.sub_sequence_number,
        }
    }
}

/// `ok`: processed. `rejected`: permanently invalid, retrying cannot help (the relay sends it to
/// the dead-letter bucket). `retry`: not processed now, deliver again later.
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
    /// What names the record in a delivery and in its verdict.
    pub fn identity(&self) -> RecordIdentity<'_> {
        RecordIdentity {
            sequence_number: &self.sequence_number,
            sub_sequence_number: self.sub_sequence_number,
        }
    }

    /// When Kinesis received the record, if the relay said so and it is a representable time.
    pub fn approximate_arrival(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.approximate_arrival_ms?)
    }

    /// Bytes this record adds to an encoded [`DeliveryRequest`], separator included. Counted
    /// without writing anything (the data's JSON is only measured).
    pub fn encoded_len(&self) -> usize {
        json_len(self).saturating_add(1)
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

impl RecordData {
    /// The base64 of `bytes`.
    pub fn encode(bytes: &[u8]) -> Self {
        Self::encoded(&STANDARD.encode(bytes))
    }

    /// Takes base64 text as it is, once checked (see the type's docs).
    pub fn from_base64(text: &str) -> Result<Self, DataError> {
        check_base64(text.as_bytes())?;
        Ok(Self::encoded(text))
    }

    /// Checked base64 text as a JSON string (it needs no escaping).
    fn encoded(text: &str) -> Self {
        let json = format!("\"{text}\"");
        Self(RawValue::from_string(json).expect("base64 between quotes is a JSON string"))
    }

    /// From a JSON value as the document held it: a string of base64, which is taken as it is
    /// when it holds no escape (the JSON of base64 never needs one), else unescaped first.
    fn from_json(raw: Box<RawValue>) -> Result<Self, String> {
        let json = raw.get();
        if let Some(text) = json.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
            if check_base64(text.as_bytes()).is_ok() {
                return Ok(Self(raw));
            }
        }
        let text: String = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Self::from_base64(&text).map_err(|e| e.to_string())
    }

    pub fn as_base64(&self) -> &str {
        let json = self.0.get();
        &json[1..json.len() - 1]
    }

    /// The record's bytes. Cannot fail for a checked text; the error is the decoder's own.
    pub fn decode(&self) -> Result<Vec<u8>, base64::DecodeError> {
        STANDARD.decode(self.as_base64())
    }

    /// How many bytes [`Self::decode`] gives, counted from the text.
    pub fn decoded_len(&self) -> usize {
        let text = self.as_base64();
        let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
        text.len() / 4 * 3 - padding
    }
}

impl PartialEq for RecordData {
    fn eq(&self, other: &Self) -> bool {
        self.as_base64() == other.as_base64()
    }
}

impl Eq for RecordData {}

/// The value of a standard base64 symbol, `None` for any other byte.
fn symbol_value(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Whether `text` is what the standard engine decodes: a multiple of 4 long, symbols of the
/// alphabet, then at most two `=`, and no bits set after the last encoded byte.
fn check_base64(text: &[u8]) -> Result<(), DataError> {
    if !text.len().is_multiple_of(4) {
        return Err(DataError::Length(text.len()));
    }
    let padding = text
        .iter()
        .rev()
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    let symbols = &text[..text.len() - padding];
    // One pass without an early exit, which the compiler vectorises; the position is looked
    // for only once the text is known to be bad.
    let all_symbols = symbols
        .iter()
        .fold(true, |ok, &b| ok & symbol_value(b).is_some());
    if !all_symbols {
        let at = symbols.iter().position(|&b| symbol_value(b).is_none());
        let at = at.unwrap_or_default();
        return Err(DataError::Symbol {
            at,
            byte: symbols[at],
        });
    }
    // Two `=` leave 4 bits of the last symbol unused, one `=` leaves 2.
    let unused_bits = 2 * padding as u32;
    let last = symbols.last().copied().and_then(symbol_value).unwrap_or(0);
    if last & ((1u8 << unused_bits) - 1) != 0 {
        return Err(DataError::TrailingBits);
    }
    Ok(())
}

impl Serialize for RecordData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RecordData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_json(Box::<RawValue>::deserialize(d)?)
            .map_err(|e| serde::de::Error::custom(format!("record data is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: &str, data: &[u8]) -> RelayedRecord {
        RelayedRecord {
            sequence_number: seq.into(),
            sub_sequence_number: None,
            partition_key: "pk".into(),
            explicit_hash_key: None,
            event_id: format!("shardId-000000000000:{seq}"),
            approximate_arrival_ms: Some(1_700_000_000_000),
            data: RecordData::encode(data),
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
                sub_sequence_number: None,
                outcome: RecordOutcome::Ok,
            },
            RecordResult {
                sequence_number: "2".into(),
                sub_sequence_number: None,
                outcome: RecordOutcome::Rejected {
                    reason: "body is not JSON".into(),
                },
            },
            RecordResult {
                sequence_number: "3".into(),
                sub_sequence_number: None,
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
    fn a_user_record_carries_its_sub_sequence_number_and_hash_key_and_a_plain_one_neither() {
        let plain = record("7", b"{}");
        let text = String::from_utf8(DeliveryRequest::new("d", vec![plain.clone()]).encode());
        let text = text.unwrap();
        assert!(!text.contains("sub_sequence_number"), "{text}");
        assert!(!text.contains("explicit_hash_key"), "{text}");
        let user = RelayedRecord {
            sub_sequence_number: Some(3),
            explicit_hash_key: Some("170141183460469231731687303715884105728".into()),
            ..record("7", b"{}")
        };
        let request = DeliveryRequest::new("d", vec![plain.clone(), user.clone()]);
        let encoded = request.encode();
        assert_eq!(encoded.len(), request.encoded_len());
        let text = String::from_utf8(encoded.clone()).unwrap();
        assert!(
            text.contains(r#""sequence_number":"7","sub_sequence_number":3,"partition_key":"pk","explicit_hash_key":"170141183460469231731687303715884105728""#),
            "{text}"
        );
        assert_eq!(DeliveryRequest::decode(&encoded).unwrap(), request);
        // Both are named apart, and each verdict names its record the same way.
        assert_eq!(plain.identity().to_string(), "7");
        assert_eq!(user.identity().to_string(), "7/3");
        assert_ne!(plain.identity(), user.identity());
        let answer = RecordResult::answering(&user, RecordOutcome::Ok);
        assert_eq!(answer.identity(), user.identity());
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            json,
            r#"{"sequence_number":"7","sub_sequence_number":3,"status":"ok"}"#
        );
        let json = serde_json::to_string(&RecordResult::answering(&plain, RecordOutcome::Ok));
        assert_eq!(json.unwrap(), r#"{"sequence_number":"7","status":"ok"}"#);
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

    #[test]
    fn record_data_keeps_the_text_and_decodes_to_the_bytes() {
        let data = RecordData::from_base64("eyJhIjoxfQ==").unwrap();
        assert_eq!(data.as_base64(), "eyJhIjoxfQ==");
        assert_eq!(data.decode().unwrap(), br#"{"a":1}"#);
        assert_eq!(data, RecordData::encode(br#"{"a":1}"#));
        assert_ne!(data, RecordData::encode(br#"{"a":2}"#));
        // On the wire: the text between quotes, as the event had it.
        let json = serde_json::to_string(&data).unwrap();
        assert_eq!(json, r#""eyJhIjoxfQ==""#);
        assert_eq!(serde_json::from_str::<RecordData>(&json).unwrap(), data);
    }

    #[test]
    fn record_data_with_escapes_or_of_another_type_is_read_or_refused() {
        // `\/` is JSON for `/`: read, unescaped, and written out plainly.
        let data: RecordData = serde_json::from_str(r#""QUJD\/w==""#).unwrap();
        assert_eq!(data.as_base64(), "QUJD/w==");
        assert_eq!(serde_json::to_string(&data).unwrap(), r#""QUJD/w==""#);
        assert_eq!(data.decode().unwrap(), b"ABC\xff");
        let err = serde_json::from_str::<RecordData>("5")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "record data is not base64: invalid type: integer `5`, expected a string"
            ),
            "{err}"
        );
        let err = serde_json::from_str::<RecordData>(r#""QUJD\/w=""#).unwrap_err();
        assert!(err.to_string().contains("its length 7"), "{err}");
        // Through serde_json's Value too (the target reads its event as one).
        let value = serde_json::json!({"d": "QUJD"});
        let read: RecordData = serde_json::from_value(value["d"].clone()).unwrap();
        assert_eq!(read.as_base64(), "QUJD");
    }

    #[test]
    fn decoded_len_counts_the_bytes_without_decoding() {
        for n in 0..10 {
            let bytes = vec![0xA5u8; n];
            let data = RecordData::encode(&bytes);
            assert_eq!(data.decoded_len(), n, "{}", data.as_base64());
        }
    }

    #[test]
    fn a_bad_text_is_refused_with_what_is_wrong() {
        let refused = |text: &str| RecordData::from_base64(text).unwrap_err();
        assert_eq!(refused("abc"), DataError::Length(3));
        assert_eq!(refused("ab%d"), DataError::Symbol { at: 2, byte: b'%' });
        assert_eq!(refused("ab\"d"), DataError::Symbol { at: 2, byte: b'"' });
        assert_eq!(refused("A==="), DataError::Symbol { at: 1, byte: b'=' });
        assert_eq!(refused("AB=="), DataError::TrailingBits);
        assert_eq!(refused("AAB="), DataError::TrailingBits);
        assert_eq!(
            refused("ab%d").to_string(),
            "byte 2 (0x25) is not a symbol of the standard base64 alphabet"
        );
        let err = serde_json::from_str::<RecordData>(r#""AB==""#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("record data is not base64: its last symbol"),
            "{err}"
        );
    }

    #[test]
    fn each_symbol_has_its_base64_value_and_no_other_byte_has_one() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (value, &symbol) in (0u8..).zip(alphabet) {
            assert_eq!(symbol_value(symbol), Some(value), "{}", symbol as char);
        }
        let others = (0..=255u8).filter(|b| !alphabet.contains(b));
        assert!(others.map(symbol_value).all(|v| v.is_none()));
    }

    /// The check accepts exactly what the decoder accepts: every text of up to 8 bytes drawn
    /// from symbols whose low four bits differ (A 0, B 1, E 4, I 8, Q 16, ...), padding, and
    /// bytes outside the alphabet.
    #[test]
    fn the_check_agrees_with_the_decoder() {
        let alphabet = b"ABEIQgw+/=%a9_";
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        let mut all = Vec::new();
        for _ in 0..4 {
            texts = (texts.iter())
                .flat_map(|t| alphabet.iter().map(move |&b| [t.as_slice(), &[b]].concat()))
                .collect();
            all.extend(texts.iter().cloned());
        }
        // Eight bytes: a valid group in front of every four-byte text.
        let four: Vec<Vec<u8>> = all.iter().filter(|t| t.len() == 4).cloned().collect();
        all.extend(four.iter().map(|t| [&b"QUJD"[..], t].concat()));
        for text in all {
            let checked = check_base64(&text).is_ok();
            let decoded = STANDARD.decode(&text).is_ok();
            assert_eq!(checked, decoded, "{:?}", String::from_utf8_lossy(&text));
        }
    }
}
