//! The AWS service limits the data path is built around, each written once as a literal next
//! to where AWS documents it. Everything else (the functions, the Pulumi program, the local
//! run through `infra --limits`) reads them from here.

/// Lambda, synchronous invocation: the request payload must be *smaller than* 6 MB
/// ("Request must be smaller than 6291456 bytes for the InvokeFunction operation";
/// Lambda quotas, "Invocation payload (request and response)": 6 MB each for synchronous).
pub const LAMBDA_SYNC_PAYLOAD_LIMIT: usize = 6_291_456;

/// Kinesis Data Streams: the largest data blob of one record, partition key included
/// ("The maximum size of a data blob (the data payload before Base64-encoding) is up to 1 MiB").
pub const KINESIS_MAX_RECORD_BYTES: usize = 1_048_576;

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
];
