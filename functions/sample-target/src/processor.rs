//! Per-record processing and the answer to one delivery.
//!
//! Idempotency: a record is identified by its id (the producer's UUID, also its partition key).
//! Processing is keyed by that id. Within a container the processor remembers the last
//! `TARGET_DEDUP_CAPACITY` ids it has answered `ok` (oldest forgotten first; 0 remembers none)
//! and answers a redelivery `ok` again without processing it twice; across containers,
//! processing is a pure function of the record (no side effect besides the log line), so a
//! redelivery gives the same answer. A consumer with side effects must make them conditional on
//! the id (for instance a conditional write).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use shared::config;
use shared::envelope::{
    DeliveryRequest, DeliveryResponse, EnvelopeError, RecordOutcome, RecordResult, RelayedRecord,
};
use shared::metrics::{target as metric, Metrics};
use shared::produced_record::ProducedRecord;

use crate::memory::Memory;
use crate::settings::TargetSettings;

/// How far in the future a record's `created_at` may be before it is refused (clock skew).
const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// Errors that fail the whole invocation (Lambda reports them as a function error, and the relay
/// retries every record of the delivery).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("invalid delivery envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error(
        "simulated function error requested by record {record_id} (fault injection is enabled)"
    )]
    Simulated { record_id: String },
}

/// Lambda reports the named `errorType`, not the Rust type name of a boxed error.
impl From<TargetError> for lambda_runtime::Diagnostic {
    fn from(error: TargetError) -> Self {
        Self {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}

impl TargetError {
    /// The `errorType` Lambda reports for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            TargetError::Envelope(_) => "InvalidEnvelope",
            TargetError::Simulated { .. } => "SimulatedFunctionError",
        }
    }
}

pub struct Processor {
    settings: TargetSettings,
    memory: Mutex<Memory>,
}

/// Counts for the invocation summary.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: usize,
    pub rejected: usize,
    pub retry: usize,
    pub duplicates: usize,
    /// Each processed record's end-to-end latency (creation by the producer to now), in ms.
    pub latencies_ms: Vec<u64>,
}

impl Tally {
    /// The delivery's metrics line ([`shared::metrics::target`]).
    pub fn metrics(&self, function_name: &str) -> Metrics {
        Metrics::new(function_name)
            .count(metric::RECORDS_OK, self.ok)
            .count(metric::RECORDS_REJECTED, self.rejected)
            .count(metric::RECORDS_RETRY, self.retry)
            .count(metric::DUPLICATES, self.duplicates)
            .values(
                metric::END_TO_END_LATENCY,
                self.latencies_ms.iter().copied(),
            )
    }

    /// Counts one record's outcome (and whether it was a redelivery): the outcome's log name.
    fn count(&mut self, outcome: &RecordOutcome, duplicate: bool) -> &'static str {
        self.duplicates += usize::from(duplicate);
        match outcome {
            RecordOutcome::Ok => {
                self.ok += 1;
                "ok"
            }
            RecordOutcome::Rejected { .. } => {
                self.rejected += 1;
                "rejected"
            }
            RecordOutcome::Retry { .. } => {
                self.retry += 1;
                "retry"
            }
        }
    }
}

/// The reason given with a `rejected` or `retry` outcome.
fn reason_of(outcome: &RecordOutcome) -> Option<&str> {
    match outcome {
        RecordOutcome::Rejected { reason } | RecordOutcome::Retry { reason } => Some(reason),
        RecordOutcome::Ok => None,
    }
}

/// The id of the first well-formed record that asks the target to fail the whole invocation.
fn first_simulated_function_error(
    parsed: &[(&RelayedRecord, Result<ProducedRecord, String>)],
) -> Option<String> {
    parsed.iter().find_map(|(_, record)| {
        let record = record.as_ref().ok()?;
        let simulate = record.body.simulate.as_ref()?;
        simulate.function_error.then(|| record.id.clone())
    })
}

impl Processor {
    pub fn new(settings: TargetSettings) -> Self {
        Self {
            memory: Mutex::new(Memory::new(settings.dedup_capacity)),
            settings,
        }
    }

    /// Answers one delivery given as bytes. `now` is a parameter so tests control latency.
    pub fn handle(
        &self,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(DeliveryResponse, Tally), TargetError> {
        self.answer(DeliveryRequest::decode(payload)?, now)
    }

    /// Answers one delivery as the Lambda runtime hands it over (already parsed JSON).
    pub fn handle_value(
        &self,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(DeliveryResponse, Tally), TargetError> {
        self.answer(DeliveryRequest::from_value(payload)?, now)
    }

    fn answer(
        &self,
        request: DeliveryRequest,
        now: DateTime<Utc>,
    ) -> Result<(DeliveryResponse, Tally), TargetError> {
        let parsed: Vec<(&RelayedRecord, Result<ProducedRecord, String>)> =
            request.records.iter().map(|r| (r, parse(r))).collect();
        if self.settings.fault_injection {
            if let Some(record_id) = first_simulated_function_error(&parsed) {
                return Err(TargetError::Simulated { record_id });
            }
        }
        let mut tally = Tally::default();
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let results = parsed
            .into_iter()
            .map(|(relayed, record)| {
                let (outcome, record_id, latency_ms, duplicate) = match record {
                    Err(reason) => (
                        RecordOutcome::Rejected { reason },
                        relayed.partition_key.clone(),
                        None,
                        false,
                    ),
                    Ok(record) => {
                        let (outcome, duplicate) =
                            self.process(&record, &relayed.event_id, now, &mut memory);
                        let latency = elapsed_ms(record.created_at, now);
                        (outcome, record.id, Some(latency), duplicate)
                    }
                };
                let status = tally.count(&outcome, duplicate);
                tally.latencies_ms.extend(latency_ms.map(|ms| ms as u64));
                tracing::info!(
                    record_id = %record_id,
                    event_id = %relayed.event_id,
                    sequence_number = %relayed.sequence_number,
                    delivery_id = %request.delivery_id,
                    outcome = status,
                    latency_ms,
                    since_arrival_ms = since_arrival_ms(relayed, now),
                    duplicate,
                    reason = reason_of(&outcome),
                    "record processed"
                );
                RecordResult {
                    sequence_number: relayed.sequence_number.clone(),
                    outcome,
                }
            })
            .collect();
        Ok((DeliveryResponse::new(results), tally))
    }

    /// How many deliveries of `record` are to be answered `retry`, if it asks for any and fault
    /// injection is enabled.
    fn simulated_retries(&self, record: &ProducedRecord) -> Option<u32> {
        let fault = record.body.simulate.as_ref()?;
        (self.settings.fault_injection && fault.retry_times > 0).then_some(fault.retry_times)
    }

    /// Validates and processes one parsed record (`event_id`: its correlation id, for the log);
    /// the flag says it was already processed.
    fn process(
        &self,
        record: &ProducedRecord,
        event_id: &str,
        now: DateTime<Utc>,
        memory: &mut Memory,
    ) -> (RecordOutcome, bool) {
        if let Some(reason) = validate(record, now) {
            return (RecordOutcome::Rejected { reason }, false);
        }
        if memory.was_answered(&record.id) {
            return (RecordOutcome::Ok, true);
        }
        if let Some(retry_times) = self.simulated_retries(record) {
            match memory.count_delivery(&record.id) {
                Some(delivery) if delivery <= retry_times => {
                    let reason = format!("simulated transient failure {delivery} of {retry_times}");
                    return (RecordOutcome::Retry { reason }, false);
                }
                Some(_) => {}
                // Answering `retry` every time would keep the record from ever succeeding.
                None => tracing::warn!(
                    record_id = %record.id,
                    event_id = %event_id,
                    "simulated transient failure ignored: {} is 0, so no delivery is counted",
                    config::TARGET_DEDUP_CAPACITY
                ),
            }
        }
        memory.answered_ok(&record.id);
        (RecordOutcome::Ok, false)
    }
}

/// Milliseconds from `since` to `now`; 0 when `since` is later, which only clock skew between
/// the host that took `since` and this one can cause.
fn elapsed_ms(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - since).num_milliseconds().max(0)
}

/// Milliseconds from the record's arrival in the stream to `now`. `None` (the field is left out
/// of the log line) when the envelope does not say when the record arrived: the field is
/// optional in the contract. An arrival later than `now` (Kinesis's clock ahead of this
/// container's) is clamped to 0, like `latency_ms`.
fn since_arrival_ms(record: &RelayedRecord, now: DateTime<Utc>) -> Option<i64> {
    Some(elapsed_ms(record.approximate_arrival()?, now))
}

fn parse(record: &RelayedRecord) -> Result<ProducedRecord, String> {
    let data = (record.data.decode()).map_err(|e| format!("data is not base64: {e}"))?;
    serde_json::from_slice(&data).map_err(|e| format!("data is not a produced record: {e}"))
}

/// Why a well-formed record is still invalid, if it is.
fn validate(record: &ProducedRecord, now: DateTime<Utc>) -> Option<String> {
    if record.id.trim().is_empty() {
        return Some("id is empty".into());
    }
    if record.body.message.trim().is_empty() {
        return Some("body.message is empty".into());
    }
    if (record.created_at - now).num_seconds() > MAX_CLOCK_SKEW_SECONDS {
        return Some(format!(
            "created_at {} is more than {MAX_CLOCK_SKEW_SECONDS} s in the future",
            record.created_at.to_rfc3339()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::envelope::{RecordData, ENVELOPE_VERSION};
    use shared::produced_record::{RecordBody, SimulatedFault};

    fn now() -> DateTime<Utc> {
        "2026-11-25T05:00:00Z".parse().unwrap()
    }

    fn produced(id: &str, simulate: Option<SimulatedFault>) -> Vec<u8> {
        serde_json::to_vec(&ProducedRecord {
            id: id.into(),
            created_at: "2026-11-25T04:59:59.750Z".parse().unwrap(),
            sequence: 1,
            producer: "p".into(),
            body: RecordBody {
                message: "hello".into(),
                padding: String::new(),
                simulate,
            },
        })
        .unwrap()
    }

    fn request(data: Vec<Vec<u8>>) -> Vec<u8> {
        let records = data
            .into_iter()
            .enumerate()
            .map(|(i, data)| RelayedRecord {
                sequence_number: i.to_string(),
                partition_key: format!("pk-{i}"),
                event_id: format!("shardId-000000000000:{i}"),
                approximate_arrival_ms: None,
                data: RecordData::encode(&data),
            })
            .collect();
        DeliveryRequest::new("d-0", records).encode()
    }

    fn processor(fault_injection: bool) -> Processor {
        remembering(100, fault_injection)
    }

    /// A simulated fault: `retry_times` answers of `retry`, or a function error.
    fn fault(retry_times: u32, function_error: bool) -> Option<SimulatedFault> {
        Some(SimulatedFault {
            retry_times,
            function_error,
        })
    }

    /// A processor that remembers `dedup_capacity` record ids.
    fn remembering(dedup_capacity: usize, fault_injection: bool) -> Processor {
        Processor::new(TargetSettings {
            dedup_capacity,
            fault_injection,
        })
    }

    fn statuses(response: &DeliveryResponse) -> Vec<String> {
        response
            .results
            .iter()
            .map(|r| match &r.outcome {
                RecordOutcome::Ok => "ok".to_string(),
                RecordOutcome::Rejected { reason } => format!("rejected: {reason}"),
                RecordOutcome::Retry { reason } => format!("retry: {reason}"),
            })
            .collect()
    }

    #[test]
    fn valid_records_are_ok_in_order() {
        let (response, tally) = processor(false)
            .handle(
                &request(vec![produced("a", None), produced("b", None)]),
                now(),
            )
            .unwrap();
        assert_eq!(statuses(&response), vec!["ok", "ok"]);
        assert_eq!(response.results[1].sequence_number, "1");
        assert_eq!(
            tally,
            Tally {
                ok: 2,
                latencies_ms: vec![250, 250],
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_delivery_gives_one_metrics_line_of_its_outcomes_and_latencies() {
        let processor = processor(true);
        let first = request(vec![
            produced("a", None),
            b"not json".to_vec(),
            produced("r", fault(1, false)),
        ]);
        let (_, tally) = processor.handle(&first, now()).unwrap();
        let line = tally.metrics("p-target").to_value(0);
        assert_eq!(line["FunctionName"], "p-target");
        for (name, value) in [
            ("RecordsOk", 1),
            ("RecordsRejected", 1),
            ("RecordsRetry", 1),
            ("DuplicatesRecognised", 0),
        ] {
            assert_eq!(line[name], value, "{name}: {line}");
        }
        // Created 250 ms before now; an unreadable record has no creation time.
        assert_eq!(line["EndToEndLatency"], serde_json::json!([250, 250]));
        let (_, again) = processor
            .handle(&request(vec![produced("a", None)]), now())
            .unwrap();
        let line = again.metrics("p-target").to_value(0);
        assert_eq!(
            (
                line["RecordsOk"].as_u64(),
                line["DuplicatesRecognised"].as_u64()
            ),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn each_record_is_logged_with_its_outcome_and_the_reason_of_a_refusal() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let (response, _) = processor(false)
            .handle(
                &request(vec![produced("a", None), b"not json".to_vec()]),
                now(),
            )
            .unwrap();
        let lines = logs.with_message("record processed");
        assert_eq!(lines.len(), 2, "{lines:?}");
        // Each line names its record by the correlation id the relay's lines and the dead
        // letters use, and its Invoke by the envelope's delivery id.
        for (line, event_id) in lines
            .iter()
            .zip(["shardId-000000000000:0", "shardId-000000000000:1"])
        {
            assert_eq!(line["event_id"], event_id, "{line}");
            assert_eq!(line["delivery_id"], "d-0", "{line}");
        }
        assert_eq!(lines[0]["outcome"], "ok");
        assert!(lines[0].get("reason").is_none(), "{}", lines[0]);
        assert_eq!(lines[1]["outcome"], "rejected");
        assert_eq!(
            format!("rejected: {}", lines[1]["reason"].as_str().unwrap()),
            statuses(&response)[1]
        );
    }

    #[test]
    fn malformed_bodies_are_rejected_with_reasons_and_neighbours_pass() {
        let mut empty_message: ProducedRecord =
            serde_json::from_slice(&produced("c", None)).unwrap();
        empty_message.body.message = " ".into();
        let mut future: ProducedRecord = serde_json::from_slice(&produced("d", None)).unwrap();
        future.created_at = "2026-11-25T06:00:00Z".parse().unwrap();
        let (response, tally) = processor(false)
            .handle(
                &request(vec![
                    b"not json".to_vec(),
                    produced("a", None),
                    br#"{"id":"x"}"#.to_vec(),
                    serde_json::to_vec(&empty_message).unwrap(),
                    serde_json::to_vec(&future).unwrap(),
                    produced("", None),
                ]),
                now(),
            )
            .unwrap();
        let s = statuses(&response);
        assert!(
            s[0].starts_with("rejected: data is not a produced record: expected ident"),
            "{}",
            s[0]
        );
        assert_eq!(s[1], "ok");
        assert!(s[2].contains("missing field `created_at`"), "{}", s[2]);
        assert_eq!(s[3], "rejected: body.message is empty");
        assert!(s[4].contains("in the future"), "{}", s[4]);
        assert_eq!(s[5], "rejected: id is empty");
        assert_eq!(tally.rejected, 5);
    }

    #[test]
    fn bad_envelopes_are_errors() {
        let p = processor(false);
        assert!(matches!(
            p.handle(b"[]", now()),
            Err(TargetError::Envelope(EnvelopeError::NoVersion(_)))
        ));
        // The whole message: what an operator reads in the target's log and in Lambda's error.
        let v2 = p.handle(br#"{"version":2,"delivery_id":"d","records":[]}"#, now());
        assert_eq!(
            v2.map(|_| ()).map_err(|e| e.to_string()),
            Err(format!(
                "invalid delivery envelope: envelope version 2 is not supported \
                 (this build speaks version {ENVELOPE_VERSION}); \
                 deploy the relay and the target from the same release"
            ))
        );
    }

    #[test]
    fn redelivery_is_recognised_and_answered_ok() {
        let p = processor(false);
        let payload = request(vec![produced("a", None)]);
        let (_, first) = p.handle(&payload, now()).unwrap();
        let (response, second) = p.handle(&payload, now()).unwrap();
        assert_eq!((first.duplicates, second.duplicates), (0, 1));
        assert_eq!(statuses(&response), vec!["ok"]);
    }

    #[test]
    fn memory_is_bounded() {
        let p = remembering(2, false);
        for id in ["a", "b", "c"] {
            p.handle(&request(vec![produced(id, None)]), now()).unwrap();
        }
        let (_, tally) = p
            .handle(
                &request(vec![produced("a", None), produced("c", None)]),
                now(),
            )
            .unwrap();
        assert_eq!(tally.duplicates, 1, "a was forgotten, c remembered");
        assert!(p.memory.lock().unwrap().ids() <= 2);
    }

    #[test]
    fn capacity_zero_remembers_nothing_per_record() {
        let p = remembering(0, false);
        for i in 0..50 {
            p.handle(&request(vec![produced(&format!("id-{i}"), None)]), now())
                .unwrap();
        }
        assert_eq!(p.memory.lock().unwrap().ids(), 0);
    }

    #[test]
    fn delivery_counts_of_records_still_failing_are_bounded() {
        let p = remembering(2, true);
        let failing = fault(5, false);
        for id in ["a", "b", "c"] {
            p.handle(&request(vec![produced(id, failing.clone())]), now())
                .unwrap();
        }
        assert!(p.memory.lock().unwrap().ids() <= 2);
    }

    #[test]
    fn capacity_zero_answers_simulated_transient_failures_ok() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let p = remembering(0, true);
        let payload = request(vec![produced("a", fault(2, false))]);
        assert_eq!(statuses(&p.handle(&payload, now()).unwrap().0), vec!["ok"]);
        assert_eq!(p.memory.lock().unwrap().ids(), 0);
        let ignored = logs.lines().into_iter().filter(|l| l["level"] == "WARN");
        let ids: Vec<_> = ignored
            .map(|l| (l["record_id"].clone(), l["event_id"].clone()))
            .collect();
        let expected = (
            serde_json::json!("a"),
            serde_json::json!("shardId-000000000000:0"),
        );
        assert_eq!(ids, [expected]);
    }

    #[test]
    fn oldest_answered_id_is_forgotten_first_and_a_redelivery_does_not_refresh_it() {
        let p = remembering(2, false);
        for id in ["a", "b", "a", "c"] {
            p.handle(&request(vec![produced(id, None)]), now()).unwrap();
        }
        let duplicate = |id: &str| {
            p.handle(&request(vec![produced(id, None)]), now())
                .unwrap()
                .1
                .duplicates
                == 1
        };
        assert!(duplicate("b"), "b is remembered");
        assert!(
            !duplicate("a"),
            "a was forgotten when c came, despite its redelivery"
        );
    }

    #[test]
    fn simulated_transient_failure_retries_then_succeeds() {
        let p = processor(true);
        let payload = request(vec![produced("a", fault(2, false))]);
        let answers: Vec<(String, Tally)> = (0..3)
            .map(|_| {
                let (response, tally) = p.handle(&payload, now()).unwrap();
                (statuses(&response).remove(0), tally)
            })
            .collect();
        let tally = |ok, retry| Tally {
            ok,
            retry,
            latencies_ms: vec![250],
            ..Default::default()
        };
        assert_eq!(
            answers,
            vec![
                (
                    "retry: simulated transient failure 1 of 2".into(),
                    tally(0, 1)
                ),
                (
                    "retry: simulated transient failure 2 of 2".into(),
                    tally(0, 1)
                ),
                ("ok".into(), tally(1, 0)),
            ]
        );
    }

    #[test]
    fn a_record_asking_for_no_failure_leaves_other_records_counts_alone() {
        // One delivery count fits: a record that asks for no retry must not take its place.
        let p = remembering(1, true);
        let fault = |retry_times| fault(retry_times, false);
        let failing = request(vec![produced("a", fault(2))]);
        let answer = |payload: &[u8]| statuses(&p.handle(payload, now()).unwrap().0).remove(0);
        assert_eq!(
            answer(&failing),
            "retry: simulated transient failure 1 of 2"
        );
        assert_eq!(answer(&request(vec![produced("b", fault(0))])), "ok");
        assert_eq!(
            answer(&failing),
            "retry: simulated transient failure 2 of 2"
        );
    }

    #[test]
    fn created_at_up_to_five_minutes_ahead_is_accepted_and_one_second_more_is_refused() {
        let at = |seconds_ahead: i64| {
            let mut record: ProducedRecord = serde_json::from_slice(&produced("a", None)).unwrap();
            record.created_at = now() + chrono::Duration::seconds(seconds_ahead);
            let payload = request(vec![serde_json::to_vec(&record).unwrap()]);
            statuses(&processor(false).handle(&payload, now()).unwrap().0).remove(0)
        };
        assert_eq!(at(300), "ok");
        assert_eq!(
            at(301),
            "rejected: created_at 2026-11-25T05:05:01+00:00 is more than 300 s in the future"
        );
    }

    #[test]
    fn latency_since_arrival_counts_from_the_arrival_in_the_stream() {
        let arriving = |approximate_arrival_ms| RelayedRecord {
            sequence_number: "1".into(),
            partition_key: "a".into(),
            event_id: "shardId-000000000000:1".into(),
            approximate_arrival_ms,
            data: RecordData::encode(b""),
        };
        let now_ms = now().timestamp_millis();
        assert_eq!(
            since_arrival_ms(&arriving(Some(now_ms - 1_234)), now()),
            Some(1_234)
        );
        assert_eq!(since_arrival_ms(&arriving(Some(now_ms)), now()), Some(0));
        assert_eq!(
            since_arrival_ms(&arriving(Some(now_ms + 500)), now()),
            Some(0),
            "an arrival in the future is clamped"
        );
        assert_eq!(
            since_arrival_ms(&arriving(None), now()),
            None,
            "absent: omitted"
        );
        assert_eq!(since_arrival_ms(&arriving(Some(i64::MAX)), now()), None);
    }

    #[test]
    fn simulated_function_error_fails_the_invocation() {
        let p = processor(true);
        let payload = request(vec![produced("a", None), produced("b", fault(0, true))]);
        let err = p.handle(&payload, now()).unwrap_err();
        assert!(err.to_string().contains("record b"), "{err}");
        assert_eq!(err.error_type(), "SimulatedFunctionError");
        let message = err.to_string();
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "SimulatedFunctionError");
        assert_eq!(diagnostic.error_message, message);
    }

    #[test]
    fn faults_are_ignored_unless_enabled() {
        let p = processor(false);
        let payload = request(vec![produced("b", fault(3, true))]);
        assert_eq!(statuses(&p.handle(&payload, now()).unwrap().0), vec!["ok"]);
    }
}
