//! The AWS service limits the data path is built around, each written once as a literal next
//! to where AWS documents it. Everything else (the functions, the Pulumi program, the local
//! run through `infra --limits`) reads them from here.

/// Lambda, synchronous invocation: the request payload must be *smaller than* 6 MB
/// ("Request must be smaller than 6291456 bytes for the InvokeFunction operation";
/// Lambda quotas, "Invocation payload (request and response)": 6 MB each for synchronous).
pub const LAMBDA_SYNC_PAYLOAD_LIMIT: usize = 6_291_456;

/// Kinesis Data Streams: the largest data blob of one record, partition key included, on a
/// stream of the default maximum record size ("The maximum size of a data blob (the data payload
/// before Base64-encoding) is up to 1 MiB"; "The default maximum record size for existing, and
/// newly created streams is set to 1 MiB"). A stream can be set larger
/// ([`KINESIS_MAX_RECORD_SIZE_KIB_RANGE`]).
pub const KINESIS_MAX_RECORD_BYTES: usize = 1_048_576;

/// Kinesis Data Streams: the values a stream's maximum record size takes, in KiB
/// (`MaxRecordSizeInKiB` of CreateStream and UpdateMaxRecordSize: minimum 1024, maximum 10240;
/// "Handle large records": records up to 10 MiB).
pub const KINESIS_MAX_RECORD_SIZE_KIB_RANGE: std::ops::RangeInclusive<usize> = 1_024..=10_240;

/// An upper bound on the bytes one Kinesis record's event entry takes besides its base64 data,
/// in the event an event source mapping invokes a function with: the field names and fixed
/// values (about 330 bytes), the partition key (256 characters at most, each at most 6 bytes
/// once escaped in JSON: 1,536), the sequence number twice (in `sequenceNumber` and `eventID`,
/// at most 128 digits each), the shard id, the stream's ARN and the function's execution role
/// ARN (`invokeIdentityArn`, at most 2,048), the region. They come to about 4.5 KiB; 8 KiB
/// leaves room.
pub const ESM_EVENT_RECORD_OVERHEAD_BYTES: usize = 8_192;

/// The largest maximum record size, in KiB, of a stream whose every record can reach a Lambda
/// function through an event source mapping. The mapping invokes synchronously, so an event is
/// smaller than [`LAMBDA_SYNC_PAYLOAD_LIMIT`] even when it holds one record ("the batch reaches
/// the payload limit of 6 MB"), and a record's data is base64 in it (4 bytes for every 3). Above
/// this, a record can be written to the stream that no invocation can carry: 4,601 KiB, not
/// Kinesis's 10 MiB, is the largest record the relay can receive, and so the largest this
/// project delivers end to end. The test below derives it: the room an event leaves for one
/// record's base64 data, ([`LAMBDA_SYNC_PAYLOAD_LIMIT`] − 1 − `{"Records":[]}` −
/// [`ESM_EVENT_RECORD_OVERHEAD_BYTES`]) / 4 × 3, in whole KiB.
pub const LAMBDA_CONSUMER_MAX_RECORD_KIB: usize = 4_601;

/// [`LAMBDA_CONSUMER_MAX_RECORD_KIB`] in bytes: the largest record, data and partition key, a
/// stream of this project's may be set to take.
pub const LAMBDA_CONSUMER_MAX_RECORD_BYTES: usize = LAMBDA_CONSUMER_MAX_RECORD_KIB * 1024;

/// Kinesis PutRecords: at most 500 records per call ("Each PutRecords request can support up
/// to 500 records").
pub const KINESIS_MAX_RECORDS_PER_PUT: usize = 500;

/// Kinesis PutRecords: at most 5 MiB per call, partition keys included ("up to a limit of
/// 5 MiB for the entire request, including partition keys").
pub const KINESIS_MAX_BYTES_PER_PUT: usize = 5_242_880;

/// The limits as `name=value` pairs, for `infra --limits` (the local run and its tests read
/// them from there instead of typing them again).
pub const ALL: &[(&str, usize)] = &[
    ("lambda_sync_payload_limit", LAMBDA_SYNC_PAYLOAD_LIMIT),
    ("kinesis_max_record_bytes", KINESIS_MAX_RECORD_BYTES),
    ("kinesis_max_records_per_put", KINESIS_MAX_RECORDS_PER_PUT),
    ("kinesis_max_bytes_per_put", KINESIS_MAX_BYTES_PER_PUT),
    (
        "lambda_consumer_max_record_bytes",
        LAMBDA_CONSUMER_MAX_RECORD_BYTES,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// The event entry of a record of the largest size, with every other field at its longest,
    /// written as Lambda writes it: the event stays under the payload limit, and the bound
    /// wastes less than 8 KiB (8 KiB more of data would not fit).
    #[test]
    fn the_largest_record_fits_one_event_and_8_kib_more_does_not() {
        let event_of = |data_bytes: usize| {
            let data = base64::engine::general_purpose::STANDARD.encode(vec![0u8; data_bytes]);
            let sequence = "9".repeat(128);
            let record = serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "\u{1}".repeat(256),
                    "sequenceNumber": sequence,
                    "data": data,
                    "approximateArrivalTimestamp": 1_765_000_000.123_f64,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": format!("arn:aws:iam::111111111111:role/{}", "r".repeat(2_000)),
                "awsRegion": "ap-southeast-5",
                "eventSourceARN": format!("arn:aws:kinesis:ap-southeast-5:111111111111:stream/{}", "s".repeat(128)),
            });
            serde_json::to_vec(&serde_json::json!({ "Records": [record] }))
                .unwrap()
                .len()
        };
        let room = LAMBDA_SYNC_PAYLOAD_LIMIT
            - 1
            - "{\"Records\":[]}".len()
            - ESM_EVENT_RECORD_OVERHEAD_BYTES;
        assert_eq!(LAMBDA_CONSUMER_MAX_RECORD_KIB, room / 4 * 3 / 1024);
        assert!(event_of(LAMBDA_CONSUMER_MAX_RECORD_BYTES) < LAMBDA_SYNC_PAYLOAD_LIMIT);
        assert!(event_of(LAMBDA_CONSUMER_MAX_RECORD_BYTES + 8 * 1024) >= LAMBDA_SYNC_PAYLOAD_LIMIT);
        assert!(KINESIS_MAX_RECORD_SIZE_KIB_RANGE.contains(&LAMBDA_CONSUMER_MAX_RECORD_KIB));
    }

    /// What the relay receives it can send on: the largest record, with the longest key and
    /// sequence number, is one Invoke request to the target, as the relay writes it.
    #[test]
    fn the_largest_record_fits_one_request_to_the_target() {
        use crate::envelope::{DeliveryRequest, RecordData, RelayedRecord};
        let key = "\u{1}".repeat(256);
        let record = RelayedRecord {
            sequence_number: "9".repeat(128),
            sub_sequence_number: None,
            explicit_hash_key: None,
            event_id: format!("shardId-000000000000:{}", "9".repeat(128)),
            approximate_arrival_ms: Some(1_765_000_000_123),
            data: RecordData::encode(&vec![0u8; LAMBDA_CONSUMER_MAX_RECORD_BYTES - key.len()]),
            partition_key: key,
        };
        let request = DeliveryRequest::new(format!("{}-99999", "b".repeat(64)), vec![record]);
        assert_eq!(request.encode().len(), request.encoded_len());
        assert!(request.encoded_len() <= crate::config::MAX_INVOKE_REQUEST_BYTES);
        assert_eq!(
            *KINESIS_MAX_RECORD_SIZE_KIB_RANGE.start() * 1024,
            KINESIS_MAX_RECORD_BYTES
        );
    }
}
