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
//! Lambda chooses the keys of its own objects ("Retain discarded batch records for a Kinesis
//! Data Streams event source": `aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/...`; asynchronous
//! invocations: `aws/lambda/async/<function-name>/YYYY/MM/DD/...`).

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

/// The key of the relay's dead letter for one record: `relay/<kind>/<shard>/<sequence>.json`.
/// Deterministic, so writing the same record again (a retried batch rejected twice) replaces
/// the object instead of adding a second one. `event_id` is Lambda's `<shard>:<sequence>`.
pub fn relay_key(kind: &str, event_id: &str) -> String {
    let path = event_id.replace(':', "/");
    format!("{RELAY_PREFIX}{kind}/{path}.json")
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
            relay_key("rejected_by_target", "shardId-000000000000:4959"),
            "relay/rejected_by_target/shardId-000000000000/4959.json"
        );
        assert_eq!(
            relay_key("undeliverable", "x"),
            "relay/undeliverable/x.json"
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
