//! The sample's record handler: what a real consumer would start from.
//!
//! It parses the produced record, validates it, measures its latency (`latency_ms` since the
//! producer created it; the library adds `since_arrival_ms` since Kinesis received it) and answers
//! it; the target library ([`relay_target`]) does the rest (envelope, log lines, metrics,
//! idempotency).
//!
//! Redelivery: a record is identified by its id (the producer's UUID, also its partition key).
//! Within a container the handler remembers the last `TARGET_DEDUP_CAPACITY` ids it has answered
//! `ok` (oldest forgotten first; 0 remembers none) and answers a redelivery `ok` again without
//! processing it twice (marked as a duplicate); across containers, processing is a pure function
//! of the record (no side effect besides the log line), so a redelivery gives the same answer.
//! With the library's idempotency store (`IDEMPOTENCY_TABLE`), a redelivery is answered from the
//! store before it reaches the handler.
//!
//! Fault injection (`TARGET_FAULT_INJECTION`), for the local run and the soak: a record's
//! `body.simulate` asks for `retry_times` answers of `retry` before `ok`, or for a function error
//! (a [`HandlerError`] of type `SimulatedFunctionError`), or for the process to end right after
//! the record's effect first ran (`kill_after_effect`, see below).
//!
//! Effect (`SAMPLE_EFFECTS_TABLE`, a test device): a record answered `ok` after running (not a
//! rejected or retried one, not a redelivery the memory answers) is counted in the effects table
//! ([`crate::effects`]) under its delivery id; a failed count answers `retry` with the error, so
//! nothing is lost. With fault injection, a record asking for `kill_after_effect` whose count
//! says its effect ran for the first time aborts the process after a log line: the container
//! dies after the effect and before the library stores the record's completion.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use relay_target::{HandlerError, Record, RecordHandler, Verdict};
use shared::config;
use shared::produced_record::ProducedRecord;

use crate::effects::{DynamoDbEffects, Effects};
use crate::memory::Memory;
use crate::settings::TargetSettings;

/// How far in the future a record's `created_at` may be before it is refused (clock skew).
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// The `errorType` of a simulated function error.
pub const SIMULATED_FUNCTION_ERROR: &str = "SimulatedFunctionError";

/// The log message of a process ended on purpose after a record's effect (`kill_after_effect`).
pub const KILLED_AFTER_EFFECT: &str = "simulated kill after the record's effect";

/// Ends the process after a record's effect (`kill_after_effect`); tests replace it.
type Kill = Box<dyn Fn(&str) + Send + Sync>;

/// The sample's [`RecordHandler`].
pub struct SampleHandler {
    settings: TargetSettings,
    memory: Mutex<Memory>,
    clock: fn() -> DateTime<Utc>,
    effects: Option<Arc<dyn Effects>>,
    kill: Kill,
}

impl SampleHandler {
    /// A handler with `settings`, on the system clock; it counts its effects in the settings'
    /// effects table, if any.
    pub fn new(settings: TargetSettings) -> Self {
        let effects = (settings.effects_table.clone())
            .map(|table| Arc::new(DynamoDbEffects::new(table)) as Arc<dyn Effects>);
        Self::with_clock(settings, Utc::now).effects(effects)
    }

    /// A handler whose latencies and clock-skew check use `clock` (tests control it), without
    /// effects.
    pub fn with_clock(settings: TargetSettings, clock: fn() -> DateTime<Utc>) -> Self {
        Self {
            memory: Mutex::new(Memory::new(settings.dedup_capacity)),
            settings,
            clock,
            effects: None,
            kill: Box::new(|_| std::process::abort()),
        }
    }

    /// The handler counting its effects in `effects` (`None`: no effect).
    pub fn effects(mut self, effects: Option<Arc<dyn Effects>>) -> Self {
        self.effects = effects;
        self
    }

    /// Whether `record` asks the process to end after its first effect, and may.
    fn kill_after_effect(&self, record: &ProducedRecord) -> bool {
        let asks = (record.body.simulate.as_ref()).is_some_and(|fault| fault.kill_after_effect);
        self.settings.fault_injection && asks
    }

    /// Runs `produced`'s effect under `record`'s delivery, if the handler has one: `ok`, or
    /// `retry` when it could not be counted. Ends the process when the record asks for it and
    /// this was the effect's first run.
    async fn run_effect(&self, produced: &ProducedRecord, record: &Record) -> Verdict {
        let Some(effects) = &self.effects else {
            return Verdict::Ok;
        };
        let applied = match effects.apply(&produced.id, record.delivery_id()).await {
            Ok(applied) => applied,
            Err(error) => return Verdict::Retry(error),
        };
        if applied == 1 && self.kill_after_effect(produced) {
            tracing::error!(
                record_id = %produced.id,
                event_id = %record.event_id(),
                delivery_id = %record.delivery_id(),
                "{KILLED_AFTER_EFFECT}: ending the process before its completion is stored"
            );
            (self.kill)(&produced.id);
            return Verdict::Retry(format!("{KILLED_AFTER_EFFECT} (the process survived)"));
        }
        Verdict::Ok
    }

    /// How many deliveries of `record` are to be answered `retry`, if it asks for any and fault
    /// injection is enabled.
    fn simulated_retries(&self, record: &ProducedRecord) -> Option<u32> {
        let fault = record.body.simulate.as_ref()?;
        (self.settings.fault_injection && fault.retry_times > 0).then_some(fault.retry_times)
    }

    /// Whether `record` asks the target to fail the whole invocation, and may.
    fn simulated_function_error(&self, record: &ProducedRecord) -> bool {
        let asks = (record.body.simulate.as_ref()).is_some_and(|fault| fault.function_error);
        self.settings.fault_injection && asks
    }

    /// Validates one parsed record and decides whether it runs (`event_id`: its correlation id,
    /// for the log); the flag says it was already processed. `ok` unflagged: run its effect, then
    /// remember it ([`Self::answered_ok`]).
    fn process(
        &self,
        record: &ProducedRecord,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> (Verdict, bool) {
        if let Some(reason) = validate(record, now) {
            return (Verdict::Rejected(reason), false);
        }
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if memory.was_answered(&record.id) {
            return (Verdict::Ok, true);
        }
        if let Some(retry_times) = self.simulated_retries(record) {
            match memory.count_delivery(&record.id) {
                Some(delivery) if delivery <= retry_times => {
                    let reason = format!("simulated transient failure {delivery} of {retry_times}");
                    return (Verdict::Retry(reason), false);
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
        (Verdict::Ok, false)
    }

    /// Remembers that `id` was answered `ok` after running.
    fn answered_ok(&self, id: &str) {
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        memory.answered_ok(id);
    }
}

#[async_trait::async_trait]
impl RecordHandler for SampleHandler {
    /// The produced record's id, as `handle` names it, for a record answered without running.
    fn record_id(&self, record: &Record) -> Option<String> {
        parse(record.data()).ok().map(|produced| produced.id)
    }

    async fn handle(&self, record: &Record) -> Result<Verdict, HandlerError> {
        let now = (self.clock)();
        let produced = match parse(record.data()) {
            Ok(produced) => produced,
            Err(reason) => return Ok(Verdict::Rejected(reason)),
        };
        record.set_record_id(produced.id.clone());
        record.set_end_to_end_latency_ms(elapsed_ms(produced.created_at, now) as u64);
        if self.simulated_function_error(&produced) {
            return Err(HandlerError::new(
                SIMULATED_FUNCTION_ERROR,
                format!(
                    "simulated function error requested by record {} (fault injection is enabled)",
                    produced.id
                ),
            ));
        }
        match self.process(&produced, record.event_id(), now) {
            (verdict, true) => {
                record.mark_duplicate();
                Ok(verdict)
            }
            (Verdict::Ok, false) => {
                let verdict = self.run_effect(&produced, record).await;
                if verdict == Verdict::Ok {
                    self.answered_ok(&produced.id);
                }
                Ok(verdict)
            }
            (verdict, false) => Ok(verdict),
        }
    }
}

/// Milliseconds from `since` to `now`; 0 when `since` is later, which only clock skew between
/// the host that took `since` and this one can cause.
fn elapsed_ms(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - since).num_milliseconds().max(0)
}

fn parse(data: &[u8]) -> Result<ProducedRecord, String> {
    serde_json::from_slice(data).map_err(|e| format!("data is not a produced record: {e}"))
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

    use relay_target::{Answer, DeliveryError, Invocation, Runner, Tally};
    use shared::envelope::{
        DeliveryRequest, DeliveryResponse, EnvelopeError, RecordData, RecordOutcome, RelayedRecord,
        ENVELOPE_VERSION,
    };
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
                sub_sequence_number: None,
                partition_key: format!("pk-{i}"),
                explicit_hash_key: None,
                event_id: format!("shardId-000000000000:{i}"),
                approximate_arrival_ms: None,
                data: RecordData::encode(&data),
            })
            .collect();
        DeliveryRequest::new("d-0", records).encode()
    }

    type Processor = Runner<SampleHandler>;

    /// Answers one delivery given as bytes, in an invocation that starts at [`now`].
    async fn handle(
        p: &Processor,
        payload: &[u8],
    ) -> Result<(DeliveryResponse, Tally), DeliveryError> {
        let invocation = Invocation::new("r", now(), now() + chrono::Duration::seconds(30));
        let Answer { response, tally } = p.answer_bytes(payload, &invocation).await?;
        Ok((response, tally))
    }

    fn memory_ids(p: &Processor) -> usize {
        p.handler().memory.lock().unwrap().ids()
    }

    fn processor(fault_injection: bool) -> Processor {
        remembering(100, fault_injection)
    }

    /// A simulated fault: `retry_times` answers of `retry`, or a function error.
    fn fault(retry_times: u32, function_error: bool) -> Option<SimulatedFault> {
        Some(SimulatedFault {
            retry_times,
            function_error,
            kill_after_effect: false,
        })
    }

    /// A processor that remembers `dedup_capacity` record ids.
    fn remembering(dedup_capacity: usize, fault_injection: bool) -> Processor {
        Runner::new(SampleHandler::with_clock(
            TargetSettings {
                dedup_capacity,
                fault_injection,
                effects_table: None,
            },
            now,
        ))
    }

    #[tokio::test]
    async fn a_record_answered_from_the_store_is_named_by_its_produced_id() {
        let store = std::sync::Arc::new(relay_target::idempotency::memory::MemoryStore::default());
        let p = remembering(0, false).store(store);
        let payload = request(vec![produced("r-42", None), b"not json".to_vec()]);
        handle(&p, &payload).await.unwrap();
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let (response, tally) = handle(&p, &payload).await.unwrap();
        assert_eq!(statuses(&response)[0], "ok");
        assert_eq!(tally.duplicates, 1, "answered from the store, not run");
        let ids: Vec<String> = (logs.with_message("record processed").iter())
            .map(|l| l["record_id"].as_str().unwrap_or_default().to_string())
            .collect();
        // The produced record by its id; the unreadable one by its partition key.
        assert_eq!(ids, ["r-42", "pk-1"]);
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

    #[tokio::test]
    async fn valid_records_are_ok_in_order() {
        let (response, tally) = handle(
            &processor(false),
            &request(vec![produced("a", None), produced("b", None)]),
        )
        .await
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

    #[tokio::test]
    async fn a_delivery_gives_one_metrics_line_of_its_outcomes_and_latencies() {
        let processor = processor(true);
        let first = request(vec![
            produced("a", None),
            b"not json".to_vec(),
            produced("r", fault(1, false)),
        ]);
        let (_, tally) = handle(&processor, &first).await.unwrap();
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
        let (_, again) = handle(&processor, &request(vec![produced("a", None)]))
            .await
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

    #[tokio::test]
    async fn each_record_is_logged_with_its_outcome_and_the_reason_of_a_refusal() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let (response, _) = handle(
            &processor(false),
            &request(vec![produced("a", None), b"not json".to_vec()]),
        )
        .await
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

    #[tokio::test]
    async fn malformed_bodies_are_rejected_with_reasons_and_neighbours_pass() {
        let mut empty_message: ProducedRecord =
            serde_json::from_slice(&produced("c", None)).unwrap();
        empty_message.body.message = " ".into();
        let mut future: ProducedRecord = serde_json::from_slice(&produced("d", None)).unwrap();
        future.created_at = "2026-11-25T06:00:00Z".parse().unwrap();
        let (response, tally) = handle(
            &processor(false),
            &request(vec![
                b"not json".to_vec(),
                produced("a", None),
                br#"{"id":"x"}"#.to_vec(),
                serde_json::to_vec(&empty_message).unwrap(),
                serde_json::to_vec(&future).unwrap(),
                produced("", None),
            ]),
        )
        .await
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

    #[tokio::test]
    async fn bad_envelopes_are_errors() {
        let p = processor(false);
        assert!(matches!(
            handle(&p, b"[]").await,
            Err(DeliveryError::Envelope(EnvelopeError::NoVersion(_)))
        ));
        // The whole message: what an operator reads in the target's log and in Lambda's error.
        let v2 = handle(&p, br#"{"version":2,"delivery_id":"d","records":[]}"#).await;
        assert_eq!(
            v2.map(|_| ()).map_err(|e| e.to_string()),
            Err(format!(
                "invalid delivery envelope: envelope version 2 is not supported \
                 (this build speaks version {ENVELOPE_VERSION}); \
                 deploy the relay and the target from the same release"
            ))
        );
    }

    #[tokio::test]
    async fn redelivery_is_recognised_and_answered_ok() {
        let p = processor(false);
        let payload = request(vec![produced("a", None)]);
        let (_, first) = handle(&p, &payload).await.unwrap();
        let (response, second) = handle(&p, &payload).await.unwrap();
        assert_eq!((first.duplicates, second.duplicates), (0, 1));
        assert_eq!(statuses(&response), vec!["ok"]);
    }

    #[tokio::test]
    async fn memory_is_bounded() {
        let p = remembering(2, false);
        for id in ["a", "b", "c"] {
            handle(&p, &request(vec![produced(id, None)]))
                .await
                .unwrap();
        }
        let (_, tally) = handle(&p, &request(vec![produced("a", None), produced("c", None)]))
            .await
            .unwrap();
        assert_eq!(tally.duplicates, 1, "a was forgotten, c remembered");
        assert!(memory_ids(&p) <= 2);
    }

    #[tokio::test]
    async fn capacity_zero_remembers_nothing_per_record() {
        let p = remembering(0, false);
        for i in 0..50 {
            handle(&p, &request(vec![produced(&format!("id-{i}"), None)]))
                .await
                .unwrap();
        }
        assert_eq!(memory_ids(&p), 0);
    }

    #[tokio::test]
    async fn delivery_counts_of_records_still_failing_are_bounded() {
        let p = remembering(2, true);
        let failing = fault(5, false);
        for id in ["a", "b", "c"] {
            handle(&p, &request(vec![produced(id, failing.clone())]))
                .await
                .unwrap();
        }
        assert!(memory_ids(&p) <= 2);
    }

    #[tokio::test]
    async fn capacity_zero_answers_simulated_transient_failures_ok() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let p = remembering(0, true);
        let payload = request(vec![produced("a", fault(2, false))]);
        assert_eq!(statuses(&handle(&p, &payload).await.unwrap().0), vec!["ok"]);
        assert_eq!(memory_ids(&p), 0);
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

    #[tokio::test]
    async fn oldest_answered_id_is_forgotten_first_and_a_redelivery_does_not_refresh_it() {
        let p = remembering(2, false);
        for id in ["a", "b", "a", "c"] {
            handle(&p, &request(vec![produced(id, None)]))
                .await
                .unwrap();
        }
        let duplicate = |id: &'static str| {
            let p = &p;
            async move {
                let payload = request(vec![produced(id, None)]);
                handle(p, &payload).await.unwrap().1.duplicates == 1
            }
        };
        assert!(duplicate("b").await, "b is remembered");
        assert!(
            !duplicate("a").await,
            "a was forgotten when c came, despite its redelivery"
        );
    }

    #[tokio::test]
    async fn simulated_transient_failure_retries_then_succeeds() {
        let p = processor(true);
        let payload = request(vec![produced("a", fault(2, false))]);
        let mut answers: Vec<(String, Tally)> = Vec::new();
        for _ in 0..3 {
            let (response, tally) = handle(&p, &payload).await.unwrap();
            answers.push((statuses(&response).remove(0), tally));
        }
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

    #[tokio::test]
    async fn a_record_asking_for_no_failure_leaves_other_records_counts_alone() {
        // One delivery count fits: a record that asks for no retry must not take its place.
        let p = remembering(1, true);
        let fault = |retry_times| fault(retry_times, false);
        let failing = request(vec![produced("a", fault(2))]);
        let answer = |payload: Vec<u8>| {
            let p = &p;
            async move { statuses(&handle(p, &payload).await.unwrap().0).remove(0) }
        };
        assert_eq!(
            answer(failing.clone()).await,
            "retry: simulated transient failure 1 of 2"
        );
        assert_eq!(answer(request(vec![produced("b", fault(0))])).await, "ok");
        assert_eq!(
            answer(failing).await,
            "retry: simulated transient failure 2 of 2"
        );
    }

    #[tokio::test]
    async fn created_at_up_to_five_minutes_ahead_is_accepted_and_one_second_more_is_refused() {
        let at = |seconds_ahead: i64| async move {
            let mut record: ProducedRecord = serde_json::from_slice(&produced("a", None)).unwrap();
            record.created_at = now() + chrono::Duration::seconds(seconds_ahead);
            let payload = request(vec![serde_json::to_vec(&record).unwrap()]);
            statuses(&handle(&processor(false), &payload).await.unwrap().0).remove(0)
        };
        assert_eq!(at(300).await, "ok");
        assert_eq!(
            at(301).await,
            "rejected: created_at 2026-11-25T05:05:01+00:00 is more than 300 s in the future"
        );
    }

    #[tokio::test]
    async fn simulated_function_error_fails_the_invocation() {
        let p = processor(true);
        let payload = request(vec![produced("a", None), produced("b", fault(0, true))]);
        let err = handle(&p, &payload).await.unwrap_err();
        assert!(err.to_string().contains("record b"), "{err}");
        assert_eq!(err.error_type(), "SimulatedFunctionError");
        let message = err.message();
        assert_eq!(
            message,
            "simulated function error requested by record b (fault injection is enabled)"
        );
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "SimulatedFunctionError");
        assert_eq!(diagnostic.error_message, message);
    }

    #[tokio::test]
    async fn faults_are_ignored_unless_enabled() {
        let p = processor(false);
        let payload = request(vec![produced("b", fault(3, true))]);
        assert_eq!(statuses(&handle(&p, &payload).await.unwrap().0), vec!["ok"]);
    }

    /// A processor counting its effects in `effects`, whose kills are recorded in `kills`
    /// instead of ending the test process.
    fn with_effects(
        effects: &Arc<crate::effects::fake::FakeEffects>,
        kills: &Arc<Mutex<Vec<String>>>,
        fault_injection: bool,
    ) -> Processor {
        let kills = Arc::clone(kills);
        let mut handler = SampleHandler::with_clock(
            TargetSettings {
                dedup_capacity: 100,
                fault_injection,
                effects_table: None,
            },
            now,
        )
        .effects(Some(Arc::clone(effects) as Arc<dyn Effects>));
        handler.kill = Box::new(move |id| kills.lock().unwrap().push(id.to_string()));
        Runner::new(handler)
    }

    fn kill_marked() -> Option<SimulatedFault> {
        Some(SimulatedFault {
            retry_times: 0,
            function_error: false,
            kill_after_effect: true,
        })
    }

    fn request_in(delivery_id: &str, data: Vec<Vec<u8>>) -> Vec<u8> {
        let mut envelope: DeliveryRequest = serde_json::from_slice(&request(data)).unwrap();
        envelope.delivery_id = delivery_id.into();
        envelope.encode()
    }

    #[tokio::test]
    async fn an_ok_record_runs_its_effect_once_under_its_delivery_and_others_run_none() {
        let effects = Arc::default();
        let kills = Arc::default();
        let p = with_effects(&effects, &kills, true);
        let mut future: ProducedRecord = serde_json::from_slice(&produced("f", None)).unwrap();
        future.created_at = "2026-11-25T06:00:00Z".parse().unwrap();
        let payload = request_in(
            "d-1",
            vec![
                produced("a", None),
                produced("r", fault(1, false)),
                serde_json::to_vec(&future).unwrap(),
            ],
        );
        let (response, _) = handle(&p, &payload).await.unwrap();
        assert_eq!(
            statuses(&response)[..2],
            ["ok", "retry: simulated transient failure 1 of 1"]
        );
        assert_eq!(effects.of("a"), ["d-1"]);
        assert!(effects.of("r").is_empty(), "a retried record has no effect");
        assert!(
            effects.of("f").is_empty(),
            "a rejected record has no effect"
        );
        // The redelivery: the memory answers a, which runs nothing; r now runs.
        let again = request_in(
            "d-2",
            vec![produced("a", None), produced("r", fault(1, false))],
        );
        let (response, tally) = handle(&p, &again).await.unwrap();
        assert_eq!(statuses(&response), ["ok", "ok"]);
        assert_eq!(tally.duplicates, 1);
        assert_eq!(
            (effects.of("a"), effects.of("r")),
            (vec!["d-1".to_string()], vec!["d-2".to_string()])
        );
        assert!(kills.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_effect_answers_retry_with_the_error_and_is_not_remembered() {
        let effects = Arc::new(crate::effects::fake::FakeEffects {
            fail: true,
            ..Default::default()
        });
        let p = with_effects(&effects, &Arc::default(), false);
        let payload = request(vec![produced("a", None)]);
        for _ in 0..2 {
            let (response, tally) = handle(&p, &payload).await.unwrap();
            assert_eq!(
                statuses(&response),
                ["retry: counting the effect of record a failed: throttled"]
            );
            assert_eq!(
                (tally.retry, tally.duplicates),
                (1, 0),
                "not answered from memory"
            );
        }
    }

    #[tokio::test]
    async fn a_kill_marked_record_ends_the_process_after_its_first_effect_only() {
        let effects = Arc::default();
        let kills = Arc::default();
        let p = with_effects(&effects, &kills, true);
        let payload = request_in("d-1", vec![produced("k", kill_marked())]);
        let (response, _) = handle(&p, &payload).await.unwrap();
        assert_eq!(kills.lock().unwrap().as_slice(), ["k"]);
        assert_eq!(effects.of("k"), ["d-1"], "the effect ran before the kill");
        assert!(
            statuses(&response)[0].starts_with("retry: "),
            "{:?}",
            statuses(&response)
        );
        // A later delivery (a new container: nothing remembered) runs it again and proceeds.
        let p = with_effects(&effects, &kills, true);
        let (response, _) = handle(&p, &request_in("d-2", vec![produced("k", kill_marked())]))
            .await
            .unwrap();
        assert_eq!(statuses(&response), ["ok"]);
        assert_eq!(effects.of("k"), ["d-1", "d-2"]);
        assert_eq!(kills.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_kill_mark_is_ignored_without_fault_injection() {
        let effects = Arc::default();
        let kills = Arc::default();
        let p = with_effects(&effects, &kills, false);
        let (response, _) = handle(&p, &request(vec![produced("k", kill_marked())]))
            .await
            .unwrap();
        assert_eq!(statuses(&response), ["ok"]);
        assert!(kills.lock().unwrap().is_empty());
        assert_eq!(effects.of("k").len(), 1);
    }
}
