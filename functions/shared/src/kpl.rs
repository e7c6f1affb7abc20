//! The KPL aggregation format: many user records packed into one Kinesis record.
//!
//! The Kinesis Producer Library (and the libraries compatible with it, such as
//! `aws-kinesis-agg`) writes an aggregated record as 4 magic bytes ([`MAGIC`]), the protobuf
//! bytes of an `AggregatedRecord`, and the 16-byte MD5 of those protobuf bytes:
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;
//! }
//! ```
//!
//! [`decode`] tells the three cases apart:
//! - [`Decoded::Plain`]: an ordinary record. No magic, too short for the magic and the digest,
//!   or a digest that does not match: a record that merely starts with the magic bytes is a
//!   producer's own data (the format's documented rule, which the KCL follows).
//! - [`Decoded::Aggregate`]: the user records, in the aggregate's order; a user record's index
//!   in it is its sub-sequence number.
//! - `Err(`[`InvalidAggregate`]`)`: the digest matches, so a KPL-compatible producer wrote it,
//!   but its content cannot be read (a length past the end, an index outside a key table, a
//!   required field missing, no user records at all). The caller decides what becomes of it;
//!   the error names the field and the byte offset.
//!
//! Unknown fields are skipped, as protobuf requires (`tags` among them: nothing here reads
//! them). Decoding never panics and borrows the keys and data from the input.
//!
//! [`encode`] (or an [`Aggregator`], which tells the size before a user record is added)
//! writes the format: key tables de-duplicated in first-seen order, the user records in the
//! order given, fields in field-number order, as the KPL and `aws-kinesis-agg` write it (the
//! tests reproduce the independent library's vectors byte for byte).
//!
//! Lives in the shared crate because both sides of the format belong to the data path: the
//! relay reads it, and the producer's aggregated mode writes it.

use std::collections::HashMap;

use md5::{Digest, Md5};

use crate::limits::KINESIS_MAX_RECORD_BYTES;

/// The 4 bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Length of the MD5 digest that ends an aggregated record.
pub const DIGEST_LEN: usize = 16;

/// One user record of an aggregate, borrowed from the aggregate's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRecord<'a> {
    /// The user record's own partition key (from the aggregate's key table).
    pub partition_key: &'a str,
    /// The user record's explicit hash key, if its producer gave one.
    pub explicit_hash_key: Option<&'a str>,
    /// The user record's bytes.
    pub data: &'a [u8],
}

/// What a Kinesis record's bytes are (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// An ordinary record: deliver its bytes as they are.
    Plain,
    /// An aggregate's user records, in order (index = sub-sequence number). Never empty.
    Aggregate(Vec<UserRecord<'a>>),
}

/// Why an aggregate whose digest matches cannot be read. Offsets count from the first byte
/// of the protobuf message (just after the magic bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAggregate {
    /// A varint (a field's tag, a length or an index) is cut off by the end of its message, or
    /// longer than a 64-bit number can be.
    #[error("the varint at byte {at} runs past the end of its message or beyond 64 bits")]
    Varint {
        /// Where the varint starts.
        at: usize,
    },
    /// A length-delimited field declares more bytes than its message has left.
    #[error("field {field} at byte {at} declares {declared} bytes, but only {left} are left")]
    Truncated {
        /// The field's number.
        field: u64,
        /// Where the field's tag starts.
        at: usize,
        /// The length the field declares.
        declared: u64,
        /// The bytes left in its message after the length.
        left: usize,
    },
    /// A field has a wire type the format does not allow for it, or one no reader can skip.
    #[error("field {field} at byte {at} has wire type {wire_type}, which {reason}")]
    WireType {
        /// The field's number.
        field: u64,
        /// Where the field's tag starts.
        at: usize,
        /// The wire type its tag gives (the tag's low three bits).
        wire_type: u8,
        /// What is wrong with it, worded to follow "which".
        reason: &'static str,
    },
    /// A key table's entry is not UTF-8 (partition and explicit hash keys are text).
    #[error("entry {index} of the {table} table is not UTF-8 text")]
    NotText {
        /// The table the entry is in.
        table: Table,
        /// The entry's index in that table.
        index: usize,
    },
    /// A user record lacks a field the format requires.
    #[error("user record {record} has no {field} (a required field)")]
    Missing {
        /// The user record's index in the aggregate (its sub-sequence number).
        record: usize,
        /// The missing field's name.
        field: &'static str,
    },
    /// A user record's key index points past the end of its key table.
    #[error("user record {record} names {table} {index}, but the {table} table has {len} entries")]
    IndexOutOfTable {
        /// The user record's index in the aggregate (its sub-sequence number).
        record: usize,
        /// The table the index points into.
        table: Table,
        /// The index the user record gives.
        index: u64,
        /// How many entries the table has.
        len: usize,
    },
    /// The aggregate's message has no user record at all.
    #[error("the aggregate holds no user records")]
    Empty,
    /// Never returned by this decoder as written: a guard, so that a defect in the reader that
    /// stopped it moving (or moved it back) ends the decoding instead of looping forever.
    #[error("the decoder read a field without moving past it (a defect of the decoder)")]
    Stalled,
}

/// The key tables of an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The partition keys (field 1 of the aggregate's message), indexed by each user record.
    PartitionKey,
    /// The explicit hash keys (field 2), indexed by user records whose producer set one.
    ExplicitHashKey,
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PartitionKey => "partition key",
            Self::ExplicitHashKey => "explicit hash key",
        })
    }
}

/// Whether `bytes` start with the magic bytes; [`decode`] then checks the digest.
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Reads a Kinesis record's bytes (see the module docs for the three outcomes).
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, InvalidAggregate> {
    if !has_magic(bytes) || bytes.len() < MAGIC.len() + DIGEST_LEN {
        return Ok(Decoded::Plain);
    }
    let (message, digest) = bytes[MAGIC.len()..].split_at(bytes.len() - MAGIC.len() - DIGEST_LEN);
    if Md5::digest(message).as_slice() != digest {
        return Ok(Decoded::Plain);
    }
    read_aggregate(message).map(Decoded::Aggregate)
}

/// Why user records cannot be written as one aggregate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// No user records were given: the format holds at least one (the decoder refuses an
    /// aggregate without any, [`InvalidAggregate::Empty`]).
    #[error("nothing to aggregate: an aggregate holds at least one user record")]
    Empty,
    /// The aggregate and its Kinesis partition key (the first user record's) are over Kinesis's
    /// record limit ([`KINESIS_MAX_RECORD_BYTES`]): put fewer or smaller user records in it.
    #[error("the aggregate of {records} user records is {bytes} bytes with its partition key, over Kinesis's {limit}-byte record limit; put fewer or smaller user records in it")]
    TooLarge {
        /// The user records it would hold.
        records: usize,
        /// Its bytes plus its partition key's, as Kinesis counts them.
        bytes: usize,
        /// Kinesis's record limit.
        limit: usize,
    },
}

/// Builds one aggregate a user record at a time, knowing its size before each is added.
///
/// The Kinesis record's partition key is the first user record's ([`Aggregator::partition_key`],
/// the KPL's rule); each user record keeps its own key in the aggregate.
#[derive(Debug, Default, Clone)]
pub struct Aggregator<'a> {
    partition_keys: KeyTable<'a>,
    hash_keys: KeyTable<'a>,
    /// Each user record: its partition key's index, its explicit hash key's, its data.
    records: Vec<(u64, Option<u64>, &'a [u8])>,
    /// Bytes of the protobuf message so far.
    message_len: usize,
}

/// A key table: its keys in first-seen order, and each key's index.
#[derive(Debug, Default, Clone)]
struct KeyTable<'a> {
    keys: Vec<&'a str>,
    index: HashMap<&'a str, u64>,
}

impl<'a> KeyTable<'a> {
    /// The key's index, and whether it is new to the table.
    fn lookup(&self, key: &str) -> (u64, bool) {
        match self.index.get(key) {
            Some(&index) => (index, false),
            None => (self.keys.len() as u64, true),
        }
    }

    fn insert(&mut self, key: &'a str) -> u64 {
        let (index, new) = self.lookup(key);
        if new {
            self.keys.push(key);
            self.index.insert(key, index);
        }
        index
    }
}

impl<'a> Aggregator<'a> {
    /// An empty aggregate.
    pub fn new() -> Self {
        Self::default()
    }

    /// User records added so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no user record was added yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The Kinesis record's partition key: the first user record's (`None` while empty).
    pub fn partition_key(&self) -> Option<&'a str> {
        self.partition_keys.keys.first().copied()
    }

    /// What Kinesis would count for the aggregate as it is: its bytes (magic, message,
    /// digest) plus its partition key's.
    pub fn billed_bytes(&self) -> usize {
        let key = self.partition_key().map_or(0, str::len);
        MAGIC.len() + self.message_len + DIGEST_LEN + key
    }

    /// [`Aggregator::billed_bytes`] once `record` is added (nothing is added).
    pub fn billed_bytes_with(&self, record: &UserRecord<'_>) -> usize {
        let key = self.partition_key().unwrap_or(record.partition_key).len();
        MAGIC.len() + self.message_len + self.growth(record) + DIGEST_LEN + key
    }

    /// Bytes the message grows by when `record` is added.
    fn growth(&self, record: &UserRecord<'_>) -> usize {
        let mut growth = 0;
        let (pk_index, new) = self.partition_keys.lookup(record.partition_key);
        if new {
            growth += field_len(record.partition_key.len());
        }
        let mut inner = 1 + varint_len(pk_index);
        if let Some(key) = record.explicit_hash_key {
            let (index, new) = self.hash_keys.lookup(key);
            if new {
                growth += field_len(key.len());
            }
            inner += 1 + varint_len(index);
        }
        inner += field_len(record.data.len());
        growth + field_len(inner)
    }

    /// Adds `record` (the caller checks the size first with [`Aggregator::billed_bytes_with`];
    /// [`Aggregator::finish`] refuses an aggregate over the limit).
    pub fn push(&mut self, record: UserRecord<'a>) {
        self.message_len += self.growth(&record);
        let pk_index = self.partition_keys.insert(record.partition_key);
        let hk_index = (record.explicit_hash_key).map(|key| self.hash_keys.insert(key));
        self.records.push((pk_index, hk_index, record.data));
    }

    /// The Kinesis record's bytes: the magic, the protobuf message, its MD5.
    pub fn finish(self) -> Result<Vec<u8>, EncodeError> {
        if self.records.is_empty() {
            return Err(EncodeError::Empty);
        }
        let billed = self.billed_bytes();
        if billed > KINESIS_MAX_RECORD_BYTES {
            return Err(EncodeError::TooLarge {
                records: self.records.len(),
                bytes: billed,
                limit: KINESIS_MAX_RECORD_BYTES,
            });
        }
        let mut out = Vec::with_capacity(MAGIC.len() + self.message_len + DIGEST_LEN);
        out.extend_from_slice(&MAGIC);
        for key in &self.partition_keys.keys {
            put_bytes(&mut out, 1, key.as_bytes());
        }
        for key in &self.hash_keys.keys {
            put_bytes(&mut out, 2, key.as_bytes());
        }
        let mut inner = Vec::new();
        for &(pk_index, hk_index, data) in &self.records {
            inner.clear();
            put_varint(&mut inner, 1 << 3);
            put_varint(&mut inner, pk_index);
            if let Some(index) = hk_index {
                put_varint(&mut inner, 2 << 3);
                put_varint(&mut inner, index);
            }
            put_bytes(&mut inner, 3, data);
            put_bytes(&mut out, 3, &inner);
        }
        let digest = Md5::digest(&out[MAGIC.len()..]);
        out.extend_from_slice(&digest);
        Ok(out)
    }
}

/// One aggregate of `records`, in their order (see [`Aggregator`]).
pub fn encode(records: &[UserRecord<'_>]) -> Result<Vec<u8>, EncodeError> {
    let mut aggregator = Aggregator::new();
    for record in records {
        aggregator.push(*record);
    }
    aggregator.finish()
}

/// Bytes of `value` as a protobuf varint.
fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

/// The most bytes a varint of a `u64` takes (64 bits, 7 a byte).
const MAX_VARINT_BYTES: usize = 10;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    // Bounded, not `while value >= 0x80`: a mutant of an unbounded loop's condition pushes bytes
    // until memory runs out, where this one writes a wrong varint that the tests catch.
    for _ in 0..MAX_VARINT_BYTES {
        if value < 0x80 {
            out.push(value as u8);
            return;
        }
        // The low seven bits (the cast keeps eight), and the bit that says more follow.
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
}

/// Bytes of a length-delimited field of `len` bytes (field numbers 1 to 15: a one-byte key).
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | u64::from(LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The wire types of protobuf's encoding this decoder reads or skips.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// One field of a message: its number, where it starts, and its value.
struct Field<'a> {
    number: u64,
    at: usize,
    wire_type: u8,
    value: Value<'a>,
}

enum Value<'a> {
    Varint(u64),
    /// A length-delimited value, and the offset of its first byte.
    Bytes(&'a [u8], usize),
    /// A fixed-width value (nothing here reads one; skipped).
    Fixed,
}

/// The fields of one message, in order. `base` is the message's offset in the aggregate, for
/// the errors.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }

    fn varint(&mut self) -> Result<u64, InvalidAggregate> {
        let at = self.base + self.pos;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let &byte = (self.bytes.get(self.pos)).ok_or(InvalidAggregate::Varint { at })?;
            self.pos += 1;
            let bits = u64::from(byte & 0x7F);
            // The tenth byte may carry only the top bit of a u64.
            if shift == 63 && bits > 1 {
                return Err(InvalidAggregate::Varint { at });
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(InvalidAggregate::Varint { at })
    }

    fn take(&mut self, field: u64, at: usize, declared: u64) -> Result<&'a [u8], InvalidAggregate> {
        let left = self.bytes.len() - self.pos;
        let truncated = InvalidAggregate::Truncated {
            field,
            at,
            declared,
            left,
        };
        let len = usize::try_from(declared).map_err(|_| truncated.clone())?;
        if len > left {
            return Err(truncated);
        }
        let taken = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(taken)
    }

    fn next_field(&mut self) -> Option<Result<Field<'a>, InvalidAggregate>> {
        if self.pos == self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let field = self.read_field();
        // Every field has a key of one byte or more: a reader that did not move past a field
        // (or moved back) would read it forever.
        if self.pos <= start {
            return Some(Err(InvalidAggregate::Stalled));
        }
        Some(field)
    }

    fn read_field(&mut self) -> Result<Field<'a>, InvalidAggregate> {
        let at = self.base + self.pos;
        let key = self.varint()?;
        let number = key >> 3;
        let wire_type = (key & 7) as u8;
        let value = match wire_type {
            VARINT => Value::Varint(self.varint()?),
            LEN => {
                let declared = self.varint()?;
                let start = self.base + self.pos;
                Value::Bytes(self.take(number, at, declared)?, start)
            }
            FIXED64 => {
                self.take(number, at, 8)?;
                Value::Fixed
            }
            FIXED32 => {
                self.take(number, at, 4)?;
                Value::Fixed
            }
            _ => {
                return Err(InvalidAggregate::WireType {
                    field: number,
                    at,
                    wire_type,
                    reason: "is a deprecated group or no wire type at all",
                })
            }
        };
        Ok(Field {
            number,
            at,
            wire_type,
            value,
        })
    }
}

impl Field<'_> {
    fn wrong_type(&self, expected: &'static str) -> InvalidAggregate {
        InvalidAggregate::WireType {
            field: self.number,
            at: self.at,
            wire_type: self.wire_type,
            reason: expected,
        }
    }
}

/// A user record as its message holds it: indexes into the key tables.
struct RawRecord<'a> {
    partition_key_index: Option<u64>,
    explicit_hash_key_index: Option<u64>,
    data: Option<&'a [u8]>,
}

fn read_aggregate<'a>(message: &'a [u8]) -> Result<Vec<UserRecord<'a>>, InvalidAggregate> {
    let mut partition_keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw = Vec::new();
    let mut fields = Fields::new(message, 0);
    while let Some(field) = fields.next_field() {
        let field = field?;
        let (bytes, start) = match (field.number, &field.value) {
            (1..=3, Value::Bytes(bytes, start)) => (*bytes, *start),
            (1..=3, _) => return Err(field.wrong_type("is not the length-delimited one expected")),
            _ => continue,
        };
        match field.number {
            1 => partition_keys.push(text(bytes, Table::PartitionKey, partition_keys.len())?),
            2 => hash_keys.push(text(bytes, Table::ExplicitHashKey, hash_keys.len())?),
            _ => raw.push(read_record(bytes, start)?),
        }
    }
    if raw.is_empty() {
        return Err(InvalidAggregate::Empty);
    }
    let lookup = |record: usize, table: Table, keys: &[&'a str], index: u64| {
        let found = usize::try_from(index)
            .ok()
            .and_then(|i| keys.get(i).copied());
        found.ok_or(InvalidAggregate::IndexOutOfTable {
            record,
            table,
            index,
            len: keys.len(),
        })
    };
    (raw.into_iter().enumerate())
        .map(|(record, raw)| {
            let missing = |field| InvalidAggregate::Missing { record, field };
            let index = raw
                .partition_key_index
                .ok_or(missing("partition_key_index"))?;
            let partition_key = lookup(record, Table::PartitionKey, &partition_keys, index)?;
            let explicit_hash_key = (raw.explicit_hash_key_index)
                .map(|index| lookup(record, Table::ExplicitHashKey, &hash_keys, index))
                .transpose()?;
            let data = raw.data.ok_or(missing("data"))?;
            Ok(UserRecord {
                partition_key,
                explicit_hash_key,
                data,
            })
        })
        .collect()
}

fn text(bytes: &[u8], table: Table, index: usize) -> Result<&str, InvalidAggregate> {
    std::str::from_utf8(bytes).map_err(|_| InvalidAggregate::NotText { table, index })
}

fn read_record(message: &[u8], base: usize) -> Result<RawRecord<'_>, InvalidAggregate> {
    let mut record = RawRecord {
        partition_key_index: None,
        explicit_hash_key_index: None,
        data: None,
    };
    let mut fields = Fields::new(message, base);
    while let Some(field) = fields.next_field() {
        let field = field?;
        match (field.number, &field.value) {
            (1, Value::Varint(index)) => record.partition_key_index = Some(*index),
            (2, Value::Varint(index)) => record.explicit_hash_key_index = Some(*index),
            (3, Value::Bytes(data, _)) => record.data = Some(data),
            (1 | 2, _) => return Err(field.wrong_type("is not the varint expected")),
            (3, _) => return Err(field.wrong_type("is not the length-delimited one expected")),
            // Tags (4) and any field of a later version.
            _ => {}
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::Deserialize;

    use super::*;

    /// `tests/vectors/kpl/vectors.json`, built by `tests/vectors/kpl_vectors.py` with AWS's
    /// `aws-kinesis-agg`, an implementation independent of this one.
    const VECTORS: &str = include_str!("../../../tests/vectors/kpl/vectors.json");

    #[derive(Deserialize)]
    struct Vectors {
        vectors: Vec<Vector>,
    }

    #[derive(Deserialize)]
    struct Vector {
        name: String,
        data_base64: String,
        expected: String,
        #[serde(default)]
        user_records: Vec<ExpectedRecord>,
        #[serde(default)]
        error: Option<String>,
    }

    #[derive(Deserialize)]
    struct ExpectedRecord {
        sub_sequence_number: usize,
        partition_key: String,
        explicit_hash_key: Option<String>,
        data_base64: String,
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str::<Vectors>(VECTORS).unwrap().vectors
    }

    #[test]
    fn every_vector_of_the_independent_implementation_decodes_as_expected() {
        let vectors = vectors();
        let mut seen = (0, 0, 0);
        for vector in &vectors {
            let bytes = STANDARD.decode(&vector.data_base64).unwrap();
            let decoded = decode(&bytes);
            match vector.expected.as_str() {
                "aggregate" => {
                    seen.0 += 1;
                    let Ok(Decoded::Aggregate(records)) = decoded else {
                        panic!("{}: {decoded:?}", vector.name);
                    };
                    assert_eq!(records.len(), vector.user_records.len(), "{}", vector.name);
                    for (at, (got, want)) in records.iter().zip(&vector.user_records).enumerate() {
                        assert_eq!(at, want.sub_sequence_number, "{}", vector.name);
                        assert_eq!(got.partition_key, want.partition_key, "{}", vector.name);
                        assert_eq!(
                            got.explicit_hash_key,
                            want.explicit_hash_key.as_deref(),
                            "{} record {at}",
                            vector.name
                        );
                        let data = STANDARD.decode(&want.data_base64).unwrap();
                        assert_eq!(got.data, data.as_slice(), "{} record {at}", vector.name);
                    }
                }
                "plain" => {
                    seen.1 += 1;
                    assert_eq!(decoded, Ok(Decoded::Plain), "{}", vector.name);
                }
                "invalid" => {
                    seen.2 += 1;
                    let error = decoded.expect_err(&vector.name);
                    assert_eq!(Some(error.to_string()), vector.error, "{}", vector.name);
                }
                other => panic!("{}: unknown expectation {other}", vector.name),
            }
        }
        assert!(seen.0 >= 7 && seen.1 >= 5 && seen.2 >= 5, "{seen:?}");
    }

    /// A valid aggregate from the vectors, and its protobuf message.
    fn sample() -> (Vec<u8>, Vec<u8>) {
        let vector = (vectors().into_iter())
            .find(|v| v.name == "explicit hash keys")
            .unwrap();
        let bytes = STANDARD.decode(vector.data_base64).unwrap();
        let message = bytes[MAGIC.len()..bytes.len() - DIGEST_LEN].to_vec();
        (bytes, message)
    }

    /// The magic, `message` and its digest.
    fn aggregate(message: &[u8]) -> Vec<u8> {
        [&MAGIC[..], message, Md5::digest(message).as_slice()].concat()
    }

    #[test]
    fn a_record_with_the_magic_is_plain_unless_its_digest_matches() {
        let (bytes, message) = sample();
        assert!(matches!(decode(&bytes), Ok(Decoded::Aggregate(_))));
        // The digest of other bytes, the magic cut short, or the digest cut off: plain data.
        let mut other = bytes.clone();
        other[MAGIC.len()] ^= 0x80;
        assert_eq!(decode(&other), Ok(Decoded::Plain));
        assert_eq!(decode(&bytes[1..]), Ok(Decoded::Plain));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), Ok(Decoded::Plain));
        assert_eq!(decode(&message), Ok(Decoded::Plain));
        assert_eq!(decode(&MAGIC[..3]), Ok(Decoded::Plain));
        assert_eq!(decode(&[]), Ok(Decoded::Plain));
        // Exactly the magic and the digest of nothing: an aggregate without records.
        assert_eq!(decode(&aggregate(&[])), Err(InvalidAggregate::Empty));
    }

    #[test]
    fn only_the_four_magic_bytes_are_the_magic() {
        assert!(has_magic(&MAGIC));
        assert!(has_magic(&[&MAGIC[..], b"more"].concat()));
        assert!(!has_magic(&MAGIC[..3]));
        assert!(!has_magic(b"\xF3\x89\x9A\xC3 plain"));
        assert!(!has_magic(&[]));
        // A message and its digest behind four other bytes: plain, digest or not.
        let (_, message) = sample();
        let disguised = [&b"abcd"[..], &message, Md5::digest(&message).as_slice()].concat();
        assert_eq!(decode(&disguised), Ok(Decoded::Plain));
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let (_, message) = sample();
        let original = aggregate(&message);
        let expected = decode(&original).unwrap();
        // Field 9 as a varint, fixed64, length-delimited and fixed32, before the known fields.
        let unknown = [
            &[9 << 3, 0x96, 0x01][..],
            &[(9 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8],
            &[(9 << 3) | 2, 3, b'a', b'b', b'c'],
            &[(9 << 3) | 5, 1, 2, 3, 4],
        ]
        .concat();
        let extended = [unknown.as_slice(), &message].concat();
        assert_eq!(decode(&aggregate(&extended)).unwrap(), expected);
        // Tags and an unknown field inside a user record: field 3's first record, rebuilt.
        let record = [
            &[1 << 3, 0][..],
            &[(4 << 3) | 2, 3, 0x0A, 1, b'k'],
            &[15 << 3, 7],
            &[(3 << 3) | 2, 2, b'h', b'i'],
        ]
        .concat();
        let message = [
            &[0x0A, 1, b'p', (3 << 3) | 2, record.len() as u8][..],
            &record,
        ]
        .concat();
        let rebuilt = aggregate(&message);
        let Decoded::Aggregate(records) = decode(&rebuilt).unwrap() else {
            panic!("not an aggregate");
        };
        let hi = UserRecord {
            partition_key: "p",
            explicit_hash_key: None,
            data: b"hi",
        };
        assert_eq!(records, vec![hi]);
    }

    #[test]
    fn invalid_content_is_named_with_its_field_and_offset() {
        let invalid = |message: &[u8]| decode(&aggregate(message)).unwrap_err();
        // A length past the end: field 1 declares 5 bytes, 2 are left.
        assert_eq!(
            invalid(&[0x0A, 5, b'a', b'b']),
            InvalidAggregate::Truncated {
                field: 1,
                at: 0,
                declared: 5,
                left: 2
            }
        );
        // A varint that never ends, and one beyond 64 bits.
        assert_eq!(invalid(&[0x0A, 0x80]), InvalidAggregate::Varint { at: 1 });
        let long = [&[9 << 3][..], &[0xFF; 9], &[0x02]].concat();
        assert_eq!(invalid(&long), InvalidAggregate::Varint { at: 1 });
        // The largest u64 is read (as an unknown field, skipped), then no records.
        let max = [&[9 << 3][..], &[0xFF; 9], &[0x01]].concat();
        assert_eq!(invalid(&max), InvalidAggregate::Empty);
        // A known field of the wrong wire type, and a group.
        let error = invalid(&[0x08, 1]);
        assert_eq!(
            error.to_string(),
            "field 1 at byte 0 has wire type 0, which is not the length-delimited one expected"
        );
        assert!(matches!(
            invalid(&[(7 << 3) | 3]),
            InvalidAggregate::WireType { wire_type: 3, .. }
        ));
        // A record's field of the wrong type, its offset counted in the whole message.
        let error = invalid(&[0x0A, 1, b'p', 0x1A, 2, 0x0A, 0]);
        assert_eq!(
            error.to_string(),
            "field 1 at byte 5 has wire type 2, which is not the varint expected"
        );
        // A record's data (field 3) as a varint, not bytes.
        let error = invalid(&[0x0A, 1, b'p', 0x1A, 4, 0x08, 0, 0x18, 7]);
        assert_eq!(
            error.to_string(),
            "field 3 at byte 7 has wire type 0, which is not the length-delimited one expected"
        );
        // A partition key that is not text.
        assert_eq!(
            invalid(&[0x0A, 1, 0xFF, 0x1A, 4, 0x08, 0, 0x1A, 0]),
            InvalidAggregate::NotText {
                table: Table::PartitionKey,
                index: 0
            }
        );
        // An index beyond usize on any platform stays an error, not a panic.
        let huge = [
            &[0x0A, 1, b'p', 0x1A, 13, 0x08][..],
            &[0xFF; 9],
            &[0x01, 0x1A, 0],
        ]
        .concat();
        assert!(matches!(
            invalid(&huge),
            InvalidAggregate::IndexOutOfTable {
                index: u64::MAX,
                ..
            }
        ));
    }

    /// The user records of a vector, owned.
    fn user_records(vector: &Vector) -> Vec<(String, Option<String>, Vec<u8>)> {
        (vector.user_records.iter())
            .map(|r| {
                let data = STANDARD.decode(&r.data_base64).unwrap();
                (r.partition_key.clone(), r.explicit_hash_key.clone(), data)
            })
            .collect()
    }

    fn borrowed(owned: &[(String, Option<String>, Vec<u8>)]) -> Vec<UserRecord<'_>> {
        (owned.iter())
            .map(|(pk, ehk, data)| UserRecord {
                partition_key: pk,
                explicit_hash_key: ehk.as_deref(),
                data,
            })
            .collect()
    }

    /// An independent writer's output, reproduced: every aggregate `aws-kinesis-agg` built for
    /// the vectors is what the encoder writes for the same user records, byte for byte (so
    /// any reader of the library's aggregates reads ours).
    #[test]
    fn the_encoder_writes_the_independent_librarys_aggregates_byte_for_byte() {
        let mut checked = 0;
        for vector in vectors().iter().filter(|v| v.expected == "aggregate") {
            let owned = user_records(vector);
            let encoded = encode(&borrowed(&owned)).unwrap();
            let expected = STANDARD.decode(&vector.data_base64).unwrap();
            assert_eq!(encoded, expected, "{}", vector.name);
            checked += 1;
        }
        assert!(checked >= 7, "{checked}");
    }

    /// Random user records (repeated keys, some explicit hash keys, data of every size up to
    /// a few kB) come back from the decoder as they went in; the size the aggregator predicts
    /// before each record is the size it has after it, and the finished record's.
    #[test]
    fn random_user_records_round_trip_and_every_size_is_predicted_exactly() {
        let mut random = Random(0x2545_F491_4F6C_DD1D);
        for round in 0..200 {
            let count = 1 + random.below(40);
            let owned: Vec<(String, Option<String>, Vec<u8>)> = (0..count)
                .map(|_| {
                    let pk = format!("key-{}", random.below(1 + round % 9));
                    let ehk = (random.below(3) == 0).then(|| random.next().to_string());
                    let len = [0, 1, 127, 128, 300, 16_383, 16_384][random.below(7)];
                    let data = (0..len).map(|_| random.next() as u8).collect();
                    (pk, ehk, data)
                })
                .collect();
            let records = borrowed(&owned);
            let mut aggregator = Aggregator::new();
            for record in &records {
                let predicted = aggregator.billed_bytes_with(record);
                aggregator.push(*record);
                assert_eq!(aggregator.billed_bytes(), predicted, "round {round}");
            }
            assert_eq!(aggregator.len(), count);
            assert_eq!(aggregator.partition_key(), Some(records[0].partition_key));
            let billed = aggregator.billed_bytes();
            let bytes = aggregator.finish().unwrap();
            assert_eq!(bytes.len() + records[0].partition_key.len(), billed);
            assert_eq!(
                decode(&bytes),
                Ok(Decoded::Aggregate(records)),
                "round {round}"
            );
        }
    }

    /// Key indexes past 127 take two varint bytes: 300 keys, each with its own explicit hash
    /// key, sized exactly and read back.
    #[test]
    fn key_indexes_of_two_varint_bytes_are_sized_and_read_back() {
        let owned: Vec<(String, Option<String>, Vec<u8>)> = (0..300)
            .map(|i| (format!("k{i}"), Some(format!("{i}")), vec![i as u8]))
            .collect();
        let records = borrowed(&owned);
        let mut aggregator = Aggregator::new();
        for record in &records {
            let predicted = aggregator.billed_bytes_with(record);
            aggregator.push(*record);
            assert_eq!(aggregator.billed_bytes(), predicted);
        }
        let billed = aggregator.billed_bytes();
        let bytes = aggregator.finish().unwrap();
        assert_eq!(bytes.len() + "k0".len(), billed);
        assert_eq!(decode(&bytes), Ok(Decoded::Aggregate(records)));
    }

    #[test]
    fn an_empty_aggregator_has_no_key_and_nothing_to_write() {
        let aggregator = Aggregator::new();
        assert!(aggregator.is_empty());
        assert_eq!(aggregator.len(), 0);
        assert_eq!(aggregator.partition_key(), None);
        assert_eq!(aggregator.billed_bytes(), MAGIC.len() + DIGEST_LEN);
        assert_eq!(aggregator.finish(), Err(EncodeError::Empty));
        assert_eq!(encode(&[]), Err(EncodeError::Empty));
        let one = UserRecord {
            partition_key: "k",
            explicit_hash_key: None,
            data: b"d",
        };
        let mut aggregator = Aggregator::new();
        aggregator.push(one);
        assert!(!aggregator.is_empty());
    }

    /// An aggregate billed exactly Kinesis's record limit is written; one byte more is refused,
    /// with the sizes.
    #[test]
    fn an_aggregate_of_exactly_the_record_limit_is_written_and_one_byte_more_is_refused() {
        let key = "pk";
        fn of(data: &[u8]) -> Aggregator<'_> {
            let record = UserRecord {
                partition_key: "pk",
                explicit_hash_key: None,
                data,
            };
            let mut aggregator = Aggregator::new();
            aggregator.push(record);
            aggregator
        }
        // The overhead around the data: magic, digest, key table, record framing, the key.
        let overhead = of(&[]).billed_bytes();
        let mut data = vec![7u8; KINESIS_MAX_RECORD_BYTES - overhead];
        // The data's length varint is longer than an empty one's: shrink until it fits.
        while of(&data).billed_bytes() > KINESIS_MAX_RECORD_BYTES {
            data.pop();
        }
        let exact = of(&data);
        assert_eq!(exact.billed_bytes(), KINESIS_MAX_RECORD_BYTES);
        let bytes = exact.finish().unwrap();
        assert_eq!(bytes.len() + key.len(), KINESIS_MAX_RECORD_BYTES);
        data.push(7);
        assert_eq!(
            of(&data).finish(),
            Err(EncodeError::TooLarge {
                records: 1,
                bytes: KINESIS_MAX_RECORD_BYTES + 1,
                limit: KINESIS_MAX_RECORD_BYTES,
            })
        );
        assert_eq!(
            EncodeError::Empty.to_string(),
            "nothing to aggregate: an aggregate holds at least one user record"
        );
    }

    #[test]
    fn varints_take_the_bytes_protobuf_gives_them_and_read_back() {
        for (value, len) in [
            (0, 1),
            (1, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::from(u32::MAX), 5),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(value), len, "{value}");
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), len, "{value}");
            assert_eq!(Fields::new(&out, 0).varint(), Ok(value), "{value}");
        }
        assert_eq!(field_len(3), 5);
        assert_eq!(field_len(128), 131);
    }

    /// A small deterministic generator (xorshift), so that a failure names its seed.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Never a panic: random messages, and a real aggregate's message cut, flipped, or with
    /// bytes inserted, each given its right digest so that the decoder reads it. Every user
    /// record it returns lies within the input.
    #[test]
    fn no_input_makes_the_decoder_panic() {
        let (_, message) = sample();
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        let mut outcomes = (0, 0);
        for _ in 0..20_000 {
            let mut bytes = if random.below(2) == 0 {
                let len = random.below(64);
                (0..len).map(|_| random.next() as u8).collect()
            } else {
                message.clone()
            };
            for _ in 0..=random.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = random.below(bytes.len());
                match random.below(3) {
                    0 => bytes.truncate(at),
                    1 => bytes[at] ^= 1 << random.below(8),
                    _ => bytes.insert(at, random.next() as u8),
                }
            }
            let input = aggregate(&bytes);
            match decode(&input) {
                Ok(Decoded::Aggregate(records)) => {
                    outcomes.0 += 1;
                    let range = input.as_ptr_range();
                    assert!(records
                        .iter()
                        .all(|r| range.contains(&r.data.as_ptr()) || r.data.is_empty()));
                }
                Ok(Decoded::Plain) => panic!("a matching digest is never plain"),
                Err(_) => outcomes.1 += 1,
            }
        }
        // Both outcomes were reached: the mutations exercised the decoder, not only its refusal.
        assert!(outcomes.0 > 100 && outcomes.1 > 100, "{outcomes:?}");
    }
}
