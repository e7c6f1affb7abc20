//! CloudWatch metrics in Embedded Metric Format (EMF): each invocation prints one JSON line
//! whose `_aws` member tells CloudWatch Logs which of its fields are metrics. CloudWatch
//! extracts them from the log group; no `PutMetricData` call, nothing added to the invocation's
//! latency. The names here are the one definition: the functions emit them, the Pulumi program's
//! alarms and the local run's summary read them from here.
//!
//! One namespace, one dimension (the function's name, never a record's): the metric count stays
//! fixed however many records flow.

use serde_json::{json, Map, Value};

use crate::config::{self, Source};

/// The namespace of every metric this project emits.
pub const NAMESPACE: &str = "CrossAccountRelay";

/// The one dimension: the Lambda function's name (`AWS_LAMBDA_FUNCTION_NAME`).
pub const DIMENSION: &str = "FunctionName";

/// Lambda sets this in every function's environment.
pub const FUNCTION_NAME_VARIABLE: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// EMF takes at most 100 values of one metric in one line.
pub const MAX_VALUES: usize = 100;

mod metric;
pub use metric::{Metric, Unit};

/// The relay's metrics, one line per batch.
pub mod relay {
    use crate::metrics::metric::{count, milliseconds, Metric};
    /// Records in the batch, a KPL aggregate counted as its user records.
    pub const RECORDS_RECEIVED: Metric = count(
        "RecordsReceived",
        "records in the batch: plain Kinesis records plus the user records of each KPL aggregate (an aggregate itself is not counted)",
    );
    /// Records (plain or user records) the target answered `ok` for.
    pub const RECORDS_DELIVERED: Metric = count(
        "RecordsDelivered",
        "records (plain or user records) the target answered `ok` for",
    );
    /// Records (plain or user records) written to the dead-letter bucket, one object each.
    pub const RECORDS_DEAD_LETTERED: Metric = count(
        "RecordsDeadLettered",
        "records (plain or user records) written to the dead-letter bucket, one object each (rejected, undeliverable, poison)",
    );
    /// Records (plain or user records) to be retried by the event source mapping. Its
    /// `batchItemFailures` names a Kinesis record once, so this can exceed that list's length.
    pub const RECORDS_FAILED: Metric = count(
        "RecordsFailed",
        "records (plain or user records) to be retried by the mapping; `batchItemFailures` names each Kinesis record once, so an aggregate with any such user record is one entry there, and the mapping delivers all its user records again",
    );
    /// Invoke calls made to the target.
    pub const TARGET_INVOCATIONS: Metric = count("TargetInvocations", "Invoke calls to the target");
    /// Wall time of each Invoke call.
    pub const INVOKE_LATENCY: Metric = milliseconds("InvokeLatency", "one sample per Invoke call");
    /// Invoke calls that failed because the target role could not be assumed.
    pub const ASSUME_ROLE_FAILURES: Metric = count(
        "AssumeRoleFailures",
        "Invoke calls that failed because the cross-account role could not be assumed",
    );
    /// Now minus the oldest record's arrival in the stream.
    pub const BATCH_AGE: Metric = milliseconds(
        "BatchAge",
        "now − the oldest record's arrival in the stream",
    );
    /// Records (plain or user records) to be retried because the invocation's time ran out
    /// before they were delivered (or before their dead letter was written); a part of
    /// `RecordsFailed`.
    pub const RECORDS_DEADLINE_DEFERRED: Metric = count("RecordsDeadlineDeferred", "records (plain or user records) to be retried because the invocation's time ran out (a part of `RecordsFailed`; see the relay's deadline)");
    pub const POISON_SPLIT_INVOCATIONS: Metric = count("PoisonSplitInvocations", "Invoke calls the relay made to isolate poison records: the halves of envelopes the target function failed (a part of `TargetInvocations`; see `relayPoisonSplitDepth`)");
    pub const ALL: &[Metric] = &[
        RECORDS_RECEIVED,
        RECORDS_DELIVERED,
        RECORDS_DEAD_LETTERED,
        RECORDS_FAILED,
        TARGET_INVOCATIONS,
        INVOKE_LATENCY,
        ASSUME_ROLE_FAILURES,
        BATCH_AGE,
        RECORDS_DEADLINE_DEFERRED,
        POISON_SPLIT_INVOCATIONS,
    ];
}

/// The target's metrics, one line per delivery.
pub mod target {
    use crate::metrics::metric::{count, milliseconds, Metric};
    pub const RECORDS_OK: Metric = count("RecordsOk", "records it answered `ok`");
    pub const RECORDS_REJECTED: Metric = count("RecordsRejected", "records it answered `rejected`");
    pub const RECORDS_RETRY: Metric = count("RecordsRetry", "records it answered `retry`");
    /// Records answered without running the handler again: answered earlier (the idempotency
    /// store, the same key earlier in the delivery, or the handler's own memory).
    pub const DUPLICATES: Metric = count(
        "DuplicatesRecognised",
        "redeliveries answered without processing again (idempotency store, same key earlier in the delivery, or the handler's own memory)",
    );
    /// From the record's creation by the producer to its processing, per record.
    pub const END_TO_END_LATENCY: Metric = milliseconds(
        "EndToEndLatency",
        "one sample per record: producer's `created_at` → processed",
    );
    /// Deliveries whose claim on the idempotency store failed (every record answered `retry`).
    pub const IDEMPOTENCY_CLAIM_FAILURES: Metric = count(
        "IdempotencyClaimFailures",
        "deliveries whose idempotency claim failed (every record answered `retry`, nothing run)",
    );
    /// Deliveries whose answers could not be stored in the idempotency store after running.
    pub const IDEMPOTENCY_COMPLETE_FAILURES: Metric = count(
        "IdempotencyCompleteFailures",
        "deliveries whose answers the idempotency store did not take after running (a redelivery after the claims expire runs them again)",
    );
    /// Records whose idempotency claim another invocation had taken over by completion time.
    pub const IDEMPOTENCY_LOST_CLAIMS: Metric = count(
        "IdempotencyLostClaims",
        "records whose idempotency claim expired and was taken over before their answer was stored",
    );
    pub const ALL: &[Metric] = &[
        RECORDS_OK,
        RECORDS_REJECTED,
        RECORDS_RETRY,
        DUPLICATES,
        END_TO_END_LATENCY,
        IDEMPOTENCY_CLAIM_FAILURES,
        IDEMPOTENCY_COMPLETE_FAILURES,
        IDEMPOTENCY_LOST_CLAIMS,
    ];
}

/// The producer's metrics, one line per invocation.
pub mod producer {
    use crate::metrics::metric::{count, Metric};
    /// Records the stream accepted.
    pub const RECORDS_WRITTEN: Metric = count("RecordsWritten", "records the stream accepted");
    /// PutRecords entries sent again after a partial failure.
    pub const RETRIED_ENTRIES: Metric = count("RetriedEntries", "PutRecords entries sent again after a partial failure (left out of a failed invocation's line)");
    /// Records the invocation did not write (it fails; Lambda retries it, then dead-letters it).
    pub const RECORDS_FAILED: Metric = count(
        "RecordsFailed",
        "records a failed invocation did not write (Lambda retries it, then dead-letters it)",
    );
    pub const ALL: &[Metric] = &[RECORDS_WRITTEN, RETRIED_ENTRIES, RECORDS_FAILED];
}

/// Every name above, keyed for other languages (`infra --metric-names` prints them; the local
/// run's summary reads the EMF lines with them): `<function>_<metric>` in snake case.
pub const NAMES: &[(&str, &str)] = &[
    ("namespace", NAMESPACE),
    ("dimension", DIMENSION),
    ("relay_records_received", relay::RECORDS_RECEIVED.name),
    ("relay_records_delivered", relay::RECORDS_DELIVERED.name),
    (
        "relay_records_dead_lettered",
        relay::RECORDS_DEAD_LETTERED.name,
    ),
    ("relay_records_failed", relay::RECORDS_FAILED.name),
    ("relay_target_invocations", relay::TARGET_INVOCATIONS.name),
    ("relay_invoke_latency", relay::INVOKE_LATENCY.name),
    (
        "relay_assume_role_failures",
        relay::ASSUME_ROLE_FAILURES.name,
    ),
    ("relay_batch_age", relay::BATCH_AGE.name),
    (
        "relay_records_deadline_deferred",
        relay::RECORDS_DEADLINE_DEFERRED.name,
    ),
    (
        "relay_poison_split_invocations",
        relay::POISON_SPLIT_INVOCATIONS.name,
    ),
    ("target_records_ok", target::RECORDS_OK.name),
    ("target_records_rejected", target::RECORDS_REJECTED.name),
    ("target_records_retry", target::RECORDS_RETRY.name),
    ("target_duplicates", target::DUPLICATES.name),
    ("target_end_to_end_latency", target::END_TO_END_LATENCY.name),
    (
        "target_idempotency_claim_failures",
        target::IDEMPOTENCY_CLAIM_FAILURES.name,
    ),
    (
        "target_idempotency_complete_failures",
        target::IDEMPOTENCY_COMPLETE_FAILURES.name,
    ),
    (
        "target_idempotency_lost_claims",
        target::IDEMPOTENCY_LOST_CLAIMS.name,
    ),
    ("producer_records_written", producer::RECORDS_WRITTEN.name),
    ("producer_retried_entries", producer::RETRIED_ENTRIES.name),
    ("producer_records_failed", producer::RECORDS_FAILED.name),
];

/// One invocation's metrics, printed as one EMF line.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    function_name: String,
    entries: Vec<(Metric, Value)>,
}

impl Metrics {
    pub fn new(function_name: impl Into<String>) -> Self {
        Self {
            function_name: function_name.into(),
            entries: Vec::new(),
        }
    }

    /// A count (0 included: an alarm then sees a zero, not missing data).
    pub fn count(mut self, metric: Metric, n: usize) -> Self {
        self.entries.push((metric, json!(n)));
        self
    }

    /// Samples, such as one latency per call; none, and the metric is left out of the line.
    /// More than [`MAX_VALUES`] are thinned to that many quantiles of them (smallest and
    /// largest kept), so percentiles stay close while the line stays within EMF's limit.
    pub fn values(mut self, metric: Metric, values: impl IntoIterator<Item = u64>) -> Self {
        let mut values: Vec<u64> = values.into_iter().collect();
        if values.is_empty() {
            return self;
        }
        if values.len() > MAX_VALUES {
            values.sort_unstable();
            let last = values.len() - 1;
            let steps = MAX_VALUES - 1;
            values = (0..MAX_VALUES).map(|i| values[i * last / steps]).collect();
        }
        self.entries.push((metric, json!(values)));
        self
    }

    /// The EMF document, timestamped `timestamp_ms` (milliseconds since the Unix epoch).
    pub fn to_value(&self, timestamp_ms: i64) -> Value {
        let definitions: Vec<Value> = (self.entries.iter())
            .map(|(m, _)| json!({ "Name": m.name, "Unit": m.unit.as_str() }))
            .collect();
        let mut document = Map::new();
        document.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": definitions,
                }],
            }),
        );
        document.insert(DIMENSION.into(), json!(self.function_name));
        for (metric, value) in &self.entries {
            document.insert(metric.name.into(), value.clone());
        }
        Value::Object(document)
    }

    /// Writes the document as one line with `level` (see [`line_level`]) and the same instant
    /// as an RFC 3339 `timestamp` ([`crate::telemetry::timestamp`]), in one write (so it never
    /// interleaves with a log line). Lambda's log-level filtering reads a line without a valid
    /// `timestamp` as INFO, whatever its `level`, and drops it at a `logLevel` above INFO: EMF's
    /// own `_aws.Timestamp` (milliseconds) is not what it reads.
    pub fn write_line(
        &self,
        out: &mut impl std::io::Write,
        timestamp_ms: i64,
        level: &str,
    ) -> std::io::Result<()> {
        let mut document = self.to_value(timestamp_ms);
        let at = chrono::DateTime::from_timestamp_millis(timestamp_ms).unwrap_or_default();
        document["timestamp"] = json!(crate::telemetry::timestamp(at));
        document["level"] = json!(level);
        out.write_all(format!("{document}\n").as_bytes())
    }

    /// Prints the line on stdout, where Lambda sends it to the function's log group. A failed
    /// write is ignored like a log line's: metrics never fail an invocation.
    pub fn emit(&self, timestamp_ms: i64, level: &str) {
        let _ = self.write_line(&mut std::io::stdout().lock(), timestamp_ms, level);
    }
}

/// The `level` of a metrics line. Lambda's log-level filtering keeps a JSON line whose `level`
/// is at or above the function's application log level (`AWS_LAMBDA_LOG_LEVEL`, from the stack
/// key `logLevel`) and counts a line without one, or without a valid `timestamp`, as INFO
/// ([`Metrics::write_line`] writes both). So that no level drops the metrics
/// (and the alarms on them), a line carries INFO, or the function's own level when that is
/// above INFO.
pub fn line_level(source: &dyn Source) -> &'static str {
    let levels = config::APPLICATION_LOG_LEVELS.map(|(name, _)| name);
    let Some(info) = levels.iter().position(|name| *name == "INFO") else {
        return "INFO";
    };
    let configured = source.get(config::AWS_LAMBDA_LOG_LEVEL).and_then(|raw| {
        levels
            .iter()
            .position(|name| name.eq_ignore_ascii_case(raw.trim()))
    });
    levels[configured.unwrap_or(info).max(info)]
}

/// Milliseconds since the Unix epoch: a line's timestamp, and what a batch's age is taken from.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The function's name as Lambda sets it in `source` (the process environment); empty if unset.
pub fn function_name(source: &dyn Source) -> String {
    source.get(FUNCTION_NAME_VARIABLE).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_the_documented_emf_document() {
        let line = Metrics::new("p-relay")
            .count(relay::RECORDS_RECEIVED, 3)
            .count(relay::RECORDS_FAILED, 0)
            .values(relay::INVOKE_LATENCY, [12, 7])
            .to_value(1_700_000_000_123);
        let expected = json!({
            "_aws": {
                "Timestamp": 1_700_000_000_123i64,
                "CloudWatchMetrics": [{
                    "Namespace": "CrossAccountRelay",
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [
                        { "Name": "RecordsReceived", "Unit": "Count" },
                        { "Name": "RecordsFailed", "Unit": "Count" },
                        { "Name": "InvokeLatency", "Unit": "Milliseconds" },
                    ],
                }],
            },
            "FunctionName": "p-relay",
            "RecordsReceived": 3,
            "RecordsFailed": 0,
            "InvokeLatency": [12, 7],
        });
        assert_eq!(line, expected);
    }

    #[test]
    fn a_line_is_written_whole_with_a_newline() {
        let mut out = Vec::new();
        let metrics = Metrics::new("f").count(producer::RECORDS_WRITTEN, 2);
        metrics
            .write_line(&mut out, 1_764_045_097_125, "WARN")
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let (line, rest) = text.split_once('\n').unwrap();
        assert_eq!(rest, "", "one line, written whole");
        let mut expected = metrics.to_value(1_764_045_097_125);
        expected["level"] = json!("WARN");
        // What Lambda's log-level filtering needs besides the level: an RFC 3339 timestamp.
        expected["timestamp"] = json!("2025-11-25T04:31:37.125Z");
        assert_eq!(serde_json::from_str::<Value>(line).unwrap(), expected);
    }

    #[test]
    fn a_line_carries_info_or_the_functions_level_when_above_it() {
        let level = |value: &str| {
            let env = std::collections::HashMap::from([(config::AWS_LAMBDA_LOG_LEVEL, value)]);
            line_level(&env)
        };
        for (configured, expected) in [
            ("TRACE", "INFO"),
            ("debug", "INFO"),
            ("INFO", "INFO"),
            ("WARN", "WARN"),
            ("error", "ERROR"),
            (" FATAL ", "FATAL"),
            ("LOUD", "INFO"),
        ] {
            assert_eq!(level(configured), expected, "{configured}");
        }
        assert_eq!(line_level(&std::collections::HashMap::new()), "INFO");
    }

    #[test]
    fn the_function_name_is_lambdas_variable_or_empty() {
        let env = std::collections::HashMap::from([(FUNCTION_NAME_VARIABLE, "p-relay")]);
        assert_eq!(function_name(&env), "p-relay");
        assert_eq!(function_name(&std::collections::HashMap::new()), "");
    }

    #[test]
    fn now_is_milliseconds_since_the_epoch() {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let system = system.as_millis() as i64;
        assert!(
            (now_ms() - system).abs() < 60_000,
            "{} vs {system}",
            now_ms()
        );
    }

    #[test]
    fn no_samples_leave_the_metric_out() {
        let line = Metrics::new("f")
            .values(target::END_TO_END_LATENCY, [])
            .to_value(0);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"], json!([]));
        assert!(line.get("EndToEndLatency").is_none(), "{line}");
    }

    #[test]
    fn up_to_the_limit_the_samples_are_kept_as_they_are() {
        let samples: Vec<u64> = (0..MAX_VALUES as u64).rev().collect();
        let line = Metrics::new("f")
            .values(target::END_TO_END_LATENCY, samples.clone())
            .to_value(0);
        assert_eq!(line["EndToEndLatency"], json!(samples));
    }

    #[test]
    fn more_samples_than_the_limit_become_evenly_spaced_quantiles() {
        // 0..=990 in reverse: the quantiles are every tenth value, smallest and largest kept.
        let samples: Vec<u64> = (0..=990).rev().collect();
        let line = Metrics::new("f")
            .values(target::END_TO_END_LATENCY, samples)
            .to_value(0);
        let expected: Vec<u64> = (0..MAX_VALUES as u64).map(|i| i * 10).collect();
        assert_eq!(line["EndToEndLatency"], json!(expected));
        // One more than the limit: the middle sample is the one left out.
        let samples: Vec<u64> = (0..=MAX_VALUES as u64).collect();
        let line = Metrics::new("f")
            .values(target::END_TO_END_LATENCY, samples)
            .to_value(0);
        let kept = line["EndToEndLatency"].as_array().unwrap();
        assert_eq!(kept.len(), MAX_VALUES);
        assert_eq!(kept.first(), Some(&json!(0)));
        assert_eq!(kept.last(), Some(&json!(MAX_VALUES)));
    }

    #[test]
    fn the_names_for_other_languages_hold_every_metric_once() {
        let named: Vec<(&str, &str)> = (relay::ALL.iter().map(|m| ("relay", m.name)))
            .chain(target::ALL.iter().map(|m| ("target", m.name)))
            .chain(producer::ALL.iter().map(|m| ("producer", m.name)))
            .collect();
        assert_eq!(NAMES.len(), named.len() + 2);
        for (function, name) in named {
            let found = NAMES.iter().filter(|(key, value)| {
                *value == name
                    && key
                        .strip_prefix(function)
                        .is_some_and(|k| k.starts_with('_'))
            });
            assert_eq!(found.count(), 1, "{function} {name}");
        }
        assert!(
            NAMES.contains(&("namespace", NAMESPACE)) && NAMES.contains(&("dimension", DIMENSION))
        );
    }

    #[test]
    fn every_metric_says_what_it_means() {
        for metric in [relay::ALL, target::ALL, producer::ALL].concat() {
            assert!(!metric.meaning.trim().is_empty(), "{}", metric.name);
        }
    }

    #[test]
    fn every_metric_name_is_distinct_within_its_function() {
        for all in [relay::ALL, target::ALL, producer::ALL] {
            let names: std::collections::HashSet<&str> = all.iter().map(|m| m.name).collect();
            assert_eq!(names.len(), all.len());
        }
    }
}
