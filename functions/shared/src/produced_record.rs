//! The record the producer writes to the stream: what the target expects in each record's data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One produced record. `id` is also the Kinesis partition key and the correlation id in every
/// log line about the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducedRecord {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// Position in the producer's output: invocation-independent, increasing per container.
    pub sequence: u64,
    /// The producer container that made it (sequence numbers are per container).
    pub producer: String,
    pub body: RecordBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordBody {
    pub message: String,
    /// Filler to reach a configured record size; empty by default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub padding: String,
    /// Asks the target to fail on purpose; honoured only where the target enables fault
    /// injection (demo and tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulate: Option<SimulatedFault>,
}

/// Failures a record can ask for, to exercise the failure paths end to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct SimulatedFault {
    /// Answer `retry` for this many deliveries before answering `ok`.
    #[serde(default)]
    pub retry_times: u32,
    /// Fail the whole invocation (a function error) every time this record is in it.
    #[serde(default)]
    pub function_error: bool,
    /// End the target's process right after this record's effect first ran, before the target
    /// library stores its completion (the soak's `handler_killed_after_effect`): the one case
    /// the idempotency store cannot cover. Later deliveries of the record proceed normally.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kill_after_effect: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_omits_empty_fields() {
        let record = ProducedRecord {
            id: "0b8c".into(),
            created_at: "2026-11-25T04:31:37.123Z".parse().unwrap(),
            sequence: 7,
            producer: "p-1".into(),
            body: RecordBody {
                message: "hello".into(),
                padding: String::new(),
                simulate: None,
            },
        };
        let text = serde_json::to_string(&record).unwrap();
        assert!(
            !text.contains("padding") && !text.contains("simulate"),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<ProducedRecord>(&text).unwrap(),
            record
        );
    }

    #[test]
    fn unknown_fault_is_refused() {
        let err = serde_json::from_str::<SimulatedFault>(r#"{"explode":true}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
