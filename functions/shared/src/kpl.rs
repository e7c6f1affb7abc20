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
//! Lives in the shared crate because both sides of the format belong to the data path: the
//! relay reads it, and a producer that writes it (with the vectors of `tests/vectors/kpl`)
//! checks its encoder against this decoder.

use md5::{Digest, Md5};

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
