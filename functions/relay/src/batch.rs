//! The handler: a Kinesis batch in, `batchItemFailures` out, every record accounted for.
//!
//! Each record ends in exactly one of three places:
//! - delivered: the target answered `ok`;
//! - dead-lettered: the target answered `rejected` (or the record is too large for any Invoke),
//!   and the dead-letter queue accepted it — it is not reported as failed, so it cannot block
//!   its shard;
//! - failed: anything else (target said `retry`, Invoke or AssumeRole failed, function error,
//!   unreadable answer, dead-letter queue unavailable) — returned in `batchItemFailures`, so the
//!   event source mapping delivers it again.
//!
//! A record is known by its position (its index in the batch) from start to end: plan
//! ([`chunk::plan`]) → deliver (one Invoke per envelope) → dead-letter → respond, each step
//! handing the next its records with their positions.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use base64::Engine as _;
use futures::StreamExt as _;
use serde::Serialize;
use shared::envelope::{
    DeliveryRequest, DeliveryResponse, EnvelopeError, RecordOutcome, RelayedRecord,
};

use crate::chunk::{self, Envelope, Oversized};
use crate::ports::{
    DeadLetter, DeadLetterKind, DeadLetterQueue, InvokeFailure, InvokeFailureKind, InvokeReply,
    TargetInvoker,
};

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    DeadLetter {
        kind: DeadLetterKind,
        reason: String,
    },
    Retry {
        reason: String,
    },
}

/// Counts for the invocation's summary line; `delivered + dead_lettered + failed = records`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    pub records: usize,
    pub delivered: usize,
    pub dead_lettered: usize,
    pub failed: usize,
    pub invocations: usize,
    pub assume_role_failures: usize,
}

pub struct Relay<T, D> {
    target: T,
    dead_letters: D,
    max_concurrency: usize,
    max_payload_bytes: usize,
}

/// A record with its outcome, and its position in the batch.
#[derive(Debug)]
struct Settled {
    position: usize,
    record: RelayedRecord,
    outcome: DeliveryOutcome,
}

/// The target's answer to one envelope: its verdict on each record, in the envelope's order
/// (`None`: no verdict for that record), or why the whole envelope failed.
type Answer = Result<Vec<Option<RecordOutcome>>, EnvelopeFailure>;

/// An envelope back from the target, with its answer.
struct Answered {
    envelope: Envelope,
    answer: Answer,
}

/// Why a whole envelope failed; each of its records is retried with this as the reason.
#[derive(Debug, thiserror::Error)]
enum EnvelopeFailure {
    #[error(transparent)]
    Invoke(InvokeFailure),
    #[error("target function error ({kind}): {quoted}")]
    FunctionError { kind: String, quoted: String },
    #[error("target answer unreadable: {0}")]
    Unreadable(EnvelopeError),
}

/// Longest function-error text quoted in a log line.
const QUOTE_LIMIT: usize = 512;

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(QUOTE_LIMIT).collect()
}

impl<T: TargetInvoker, D: DeadLetterQueue> Relay<T, D> {
    pub fn new(
        target: T,
        dead_letters: D,
        max_concurrency: usize,
        max_payload_bytes: usize,
    ) -> Self {
        Self {
            target,
            dead_letters,
            max_concurrency: max_concurrency.max(1),
            max_payload_bytes,
        }
    }

    /// Handles one batch. Never fails: every problem becomes a per-record outcome.
    pub async fn handle(&self, event: KinesisEvent) -> (KinesisEventResponse, BatchReport) {
        let started = Instant::now();
        let batch_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        // The records travel to the target; the stream each came from stays here, by position.
        let (streams, records): (Vec<String>, Vec<RelayedRecord>) =
            event.records.into_iter().map(split).unzip();
        if let Some(refusal) = refuse_twins(&batch_id, &records) {
            return refusal;
        }

        // Kept by position so that every record can still be reported, whatever happens below.
        let sequence_numbers: Vec<String> =
            records.iter().map(|r| r.sequence_number.clone()).collect();
        let plan = chunk::plan(&batch_id, records, self.max_payload_bytes);
        let invocations = plan.envelopes.len();
        let answered = self.deliver(plan.envelopes).await;
        let assume_role_failures = answered.iter().map(Answered::assume_role_failures).sum();
        let mut settled: Vec<Settled> = self
            .set_aside(plan.oversized)
            .chain(answered.into_iter().flat_map(Answered::settle))
            .collect();
        settled.sort_unstable_by_key(|s| s.position);
        let unsettled = unsettled(&batch_id, &settled, &sequence_numbers);
        self.dead_letter(&batch_id, &streams, &mut settled).await;
        let (response, tally) = respond(settled, unsettled);

        let report = BatchReport {
            records: streams.len(),
            invocations,
            assume_role_failures,
            ..tally
        };
        log_summary(&batch_id, &report, started);
        (response, report)
    }

    /// Records too large for any Invoke: dead letters, without a call to the target.
    fn set_aside(&self, oversized: Vec<Oversized>) -> impl Iterator<Item = Settled> + '_ {
        oversized.into_iter().map(|oversized| {
            let reason = format!(
                "record needs a {}-byte Invoke request, over the {}-byte limit",
                oversized.size, self.max_payload_bytes
            );
            let kind = DeadLetterKind::Undeliverable;
            Settled {
                position: oversized.position,
                record: oversized.record,
                outcome: DeliveryOutcome::DeadLetter { kind, reason },
            }
        })
    }

    /// Sends the envelopes, up to `max_concurrency` at a time.
    async fn deliver(&self, envelopes: Vec<Envelope>) -> Vec<Answered> {
        futures::stream::iter(envelopes)
            .map(|envelope| async move {
                let answer = self.invoke(&envelope.request).await;
                Answered { envelope, answer }
            })
            .buffer_unordered(self.max_concurrency)
            .collect()
            .await
    }

    /// Invokes the target with one envelope.
    async fn invoke(&self, request: &DeliveryRequest) -> Answer {
        let answer = match self.target.invoke(request.encode()).await {
            Ok(reply) => read(request, reply),
            Err(failure) => Err(EnvelopeFailure::Invoke(failure)),
        };
        if let Err(failure) = &answer {
            failure.log(request);
        }
        answer
    }

    /// Sends the dead letters, up to `max_concurrency` at a time. A record leaves the batch only
    /// once the queue has accepted it: a refused letter turns its record into a retry.
    async fn dead_letter(&self, batch_id: &str, streams: &[String], settled: &mut [Settled]) {
        let letters: Vec<(usize, DeadLetter)> = settled
            .iter()
            .enumerate()
            .filter_map(|(at, s)| Some((at, s.letter(batch_id, &streams[s.position])?)))
            .collect();
        let refused: Vec<(usize, String)> = futures::stream::iter(letters)
            .map(|(at, letter)| async move { self.send(&letter).await.err().map(|e| (at, e)) })
            .buffer_unordered(self.max_concurrency)
            .filter_map(std::future::ready)
            .collect()
            .await;
        for (at, error) in refused {
            let reason = format!("dead-letter queue refused the record: {error}");
            settled[at].outcome = DeliveryOutcome::Retry { reason };
        }
    }

    async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        self.dead_letters.send(letter).await?;
        tracing::warn!(
            record_id = %letter.partition_key,
            sequence_number = %letter.sequence_number,
            kind = letter.kind.as_str(),
            reason = %letter.reason,
            "record sent to the dead-letter queue"
        );
        Ok(())
    }
}

/// The record as the target gets it, and the stream it came from (the envelope does not carry
/// it, the dead-letter queue does).
fn split(record: KinesisEventRecord) -> (String, RelayedRecord) {
    let kinesis = record.kinesis;
    let relayed = RelayedRecord {
        sequence_number: kinesis.sequence_number,
        partition_key: kinesis.partition_key,
        event_id: record.event_id.unwrap_or_default(),
        approximate_arrival_ms: Some(kinesis.approximate_arrival_timestamp.0.timestamp_millis()),
        data: kinesis.data.0,
    };
    (record.event_source_arn.unwrap_or_default(), relayed)
}

/// Kinesis never repeats a sequence number in a batch, and the target answers per sequence
/// number. If a batch ever did, every record is failed rather than risk dead-lettering one twin
/// on the other's verdict.
fn refuse_twins(
    batch_id: &str,
    records: &[RelayedRecord],
) -> Option<(KinesisEventResponse, BatchReport)> {
    let distinct: HashSet<&str> = records.iter().map(|r| r.sequence_number.as_str()).collect();
    if distinct.len() == records.len() {
        return None;
    }
    tracing::error!(
        batch_id = %batch_id,
        records = records.len(),
        distinct_sequence_numbers = distinct.len(),
        "batch repeats a sequence number; every record reported as failed"
    );
    let mut response = KinesisEventResponse::default();
    for record in records {
        response.add_failure(record.sequence_number.clone());
    }
    let report = BatchReport {
        records: records.len(),
        failed: records.len(),
        ..Default::default()
    };
    Some((response, report))
}

/// The target's reply to an envelope: a function error, an unreadable document, or verdicts.
fn read(request: &DeliveryRequest, reply: InvokeReply) -> Answer {
    if let Some(kind) = reply.function_error {
        let quoted = quote(&reply.payload);
        return Err(EnvelopeFailure::FunctionError { kind, quoted });
    }
    let response = DeliveryResponse::decode(&reply.payload).map_err(EnvelopeFailure::Unreadable)?;
    Ok(in_request_order(request, response))
}

/// The target's verdicts, which it keys by sequence number, in the order of the request's
/// records.
fn in_request_order(
    request: &DeliveryRequest,
    response: DeliveryResponse,
) -> Vec<Option<RecordOutcome>> {
    let index: HashMap<&str, usize> = (request.records.iter().enumerate())
        .map(|(at, r)| (r.sequence_number.as_str(), at))
        .collect();
    let mut verdicts = vec![None; request.records.len()];
    for result in response.results {
        let Some(&at) = index.get(result.sequence_number.as_str()) else {
            tracing::warn!(
                delivery_id = %request.delivery_id,
                sequence_number = %result.sequence_number,
                "target answered for a record it was not sent; ignored"
            );
            continue;
        };
        verdicts[at] = Some(result.outcome);
    }
    verdicts
}

impl EnvelopeFailure {
    fn log(&self, request: &DeliveryRequest) {
        let delivery_id = &request.delivery_id;
        let records = request.records.len();
        match self {
            Self::Invoke(failure) => tracing::error!(
                delivery_id = %delivery_id,
                records,
                assume_role_failed = failure.kind == InvokeFailureKind::AssumeRole,
                error = %failure.message,
                "target invocation failed"
            ),
            Self::FunctionError { .. } => {
                tracing::error!(delivery_id = %delivery_id, records, error = %self, "target failed");
            }
            Self::Unreadable(_) => tracing::error!(
                delivery_id = %delivery_id,
                records,
                error = %self,
                "target answer unreadable"
            ),
        }
    }
}

impl Answered {
    /// Records of this envelope that failed because the relay could not assume the target role.
    fn assume_role_failures(&self) -> usize {
        match &self.answer {
            Err(EnvelopeFailure::Invoke(InvokeFailure {
                kind: InvokeFailureKind::AssumeRole,
                ..
            })) => self.envelope.positions.len(),
            _ => 0,
        }
    }

    /// Each record of the envelope with its outcome, matched by position.
    fn settle(self) -> impl Iterator<Item = Settled> {
        let Envelope { positions, request } = self.envelope;
        let outcomes: Vec<DeliveryOutcome> = match self.answer {
            Ok(verdicts) => verdicts.into_iter().map(outcome).collect(),
            Err(failure) => {
                let reason = failure.to_string();
                vec![DeliveryOutcome::Retry { reason }; positions.len()]
            }
        };
        (positions.into_iter().zip(request.records).zip(outcomes)).map(
            |((position, record), outcome)| Settled {
                position,
                record,
                outcome,
            },
        )
    }
}

/// A record's outcome from the target's verdict on it.
fn outcome(verdict: Option<RecordOutcome>) -> DeliveryOutcome {
    match verdict {
        Some(RecordOutcome::Ok) => DeliveryOutcome::Delivered,
        Some(RecordOutcome::Rejected { reason }) => DeliveryOutcome::DeadLetter {
            kind: DeadLetterKind::RejectedByTarget,
            reason,
        },
        Some(RecordOutcome::Retry { reason }) => DeliveryOutcome::Retry {
            reason: format!("target asked for a retry: {reason}"),
        },
        None => DeliveryOutcome::Retry {
            reason: "target answered without a result for this record".into(),
        },
    }
}

impl Settled {
    /// The record's letter for the dead-letter queue, if its outcome is to be dead-lettered.
    fn letter(&self, batch_id: &str, event_source_arn: &str) -> Option<DeadLetter> {
        let DeliveryOutcome::DeadLetter { kind, reason } = &self.outcome else {
            return None;
        };
        let record = &self.record;
        Some(DeadLetter {
            kind: *kind,
            reason: reason.clone(),
            partition_key: record.partition_key.clone(),
            sequence_number: record.sequence_number.clone(),
            event_id: record.event_id.clone(),
            event_source_arn: event_source_arn.to_owned(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(&record.data),
            data_bytes: record.data.len(),
            delivery_id: batch_id.to_owned(),
        })
    }
}

/// Sequence numbers of the records that no step settled. Every record is planned into exactly
/// one envelope or set aside, so this is empty; should a change ever break that, the records
/// are reported as failed (retried by the event source mapping) instead of silently dropped.
fn unsettled(batch_id: &str, settled: &[Settled], sequence_numbers: &[String]) -> Vec<String> {
    let mut seen = vec![false; sequence_numbers.len()];
    for s in settled {
        seen[s.position] = true;
    }
    let missing: Vec<String> = seen
        .iter()
        .zip(sequence_numbers)
        .filter(|(seen, _)| !**seen)
        .map(|(_, sequence_number)| sequence_number.clone())
        .collect();
    if !missing.is_empty() {
        tracing::error!(
            batch_id = %batch_id,
            records = missing.len(),
            "records without an outcome (a bug in the relay); reported as failed"
        );
    }
    missing
}

/// The answer to the event source mapping: the records to deliver again, in the batch's order
/// (the `unsettled` ones last), and the counts of where every record ended.
fn respond(settled: Vec<Settled>, unsettled: Vec<String>) -> (KinesisEventResponse, BatchReport) {
    let mut response = KinesisEventResponse::default();
    let mut tally = BatchReport::default();
    for (record, outcome) in settled.into_iter().map(|s| (s.record, s.outcome)) {
        match outcome {
            DeliveryOutcome::Delivered => tally.delivered += 1,
            DeliveryOutcome::DeadLetter { .. } => tally.dead_lettered += 1,
            DeliveryOutcome::Retry { reason } => {
                tally.failed += 1;
                tracing::warn!(
                    record_id = %record.partition_key,
                    sequence_number = %record.sequence_number,
                    reason = %reason,
                    "record reported as failed; the event source mapping will retry it"
                );
                response.add_failure(record.sequence_number);
            }
        }
    }
    tally.failed += unsettled.len();
    for sequence_number in unsettled {
        response.add_failure(sequence_number);
    }
    (response, tally)
}

fn log_summary(batch_id: &str, report: &BatchReport, started: Instant) {
    tracing::info!(
        batch_id = %batch_id,
        records = report.records,
        delivered = report.delivered,
        dead_lettered = report.dead_lettered,
        failed = report.failed,
        invocations = report.invocations,
        assume_role_failures = report.assume_role_failures,
        duration_ms = started.elapsed().as_millis() as u64,
        "invocation summary"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use shared::envelope::RecordResult;
    use shared::telemetry::CapturedLogs;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    type Behaviour = dyn Fn(&DeliveryRequest) -> Result<InvokeReply, InvokeFailure> + Send + Sync;

    /// A target that answers per record from the record's data: `ok`, `bad` → rejected,
    /// `later` → retry, `skip` → no result; `boom` anywhere → function error.
    fn by_data(request: &DeliveryRequest) -> Result<InvokeReply, InvokeFailure> {
        if request.records.iter().any(|r| r.data == b"boom") {
            return Ok(InvokeReply {
                function_error: Some("Unhandled".into()),
                payload: br#"{"errorMessage":"boom"}"#.to_vec(),
            });
        }
        let results = request
            .records
            .iter()
            .filter(|r| r.data != b"skip")
            .map(|r| RecordResult {
                sequence_number: r.sequence_number.clone(),
                outcome: match r.data.as_slice() {
                    b"bad" => RecordOutcome::Rejected {
                        reason: "body is not JSON".into(),
                    },
                    b"later" => RecordOutcome::Retry {
                        reason: "downstream busy".into(),
                    },
                    _ => RecordOutcome::Ok,
                },
            })
            .collect();
        Ok(InvokeReply {
            function_error: None,
            payload: serde_json::to_vec(&DeliveryResponse::new(results)).unwrap(),
        })
    }

    #[derive(Clone)]
    struct FakeTarget {
        behaviour: Arc<Behaviour>,
        payload_sizes: Arc<Mutex<Vec<usize>>>,
        in_flight: Arc<AtomicUsize>,
        max_in_flight: Arc<AtomicUsize>,
    }

    impl FakeTarget {
        fn new(
            behaviour: impl Fn(&DeliveryRequest) -> Result<InvokeReply, InvokeFailure>
                + Send
                + Sync
                + 'static,
        ) -> Self {
            Self {
                behaviour: Arc::new(behaviour),
                payload_sizes: Arc::default(),
                in_flight: Arc::default(),
                max_in_flight: Arc::default(),
            }
        }
    }

    #[async_trait]
    impl TargetInvoker for FakeTarget {
        async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeReply, InvokeFailure> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            self.payload_sizes.lock().unwrap().push(payload.len());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let request =
                DeliveryRequest::decode(&payload).expect("the relay sends valid envelopes");
            let reply = (self.behaviour)(&request);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            reply
        }
    }

    #[derive(Clone, Default)]
    struct FakeQueue {
        letters: Arc<Mutex<Vec<DeadLetter>>>,
        refuse: bool,
    }

    #[async_trait]
    impl DeadLetterQueue for FakeQueue {
        async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
            if self.refuse {
                return Err("AccessDenied".into());
            }
            self.letters.lock().unwrap().push(letter.clone());
            Ok(())
        }
    }

    fn event(data: &[&[u8]]) -> KinesisEvent {
        let records: Vec<serde_json::Value> = data
            .iter()
            .enumerate()
            .map(|(i, d)| {
                serde_json::json!({
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": format!("id-{i}"),
                        "sequenceNumber": format!("{}", 1000 + i),
                        "data": base64::engine::general_purpose::STANDARD.encode(d),
                        "approximateArrivalTimestamp": 1764045097.5
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": format!("shardId-000000000000:{}", 1000 + i),
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::111111111111:role/relay",
                    "awsRegion": "eu-west-1",
                    "eventSourceARN": "arn:aws:kinesis:eu-west-1:111111111111:stream/s"
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    fn failures(response: &KinesisEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap_or_default())
            .collect()
    }

    fn assert_accounted(report: &BatchReport) {
        assert_eq!(
            report.delivered + report.dead_lettered + report.failed,
            report.records,
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn all_ok_reports_no_failures() {
        let queue = FakeQueue::default();
        let relay = Relay::new(FakeTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay.handle(event(&[b"ok", b"ok", b"ok"])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.invocations), (3, 1));
        assert!(queue.letters.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn rejected_goes_to_the_queue_and_retry_to_batch_item_failures() {
        let queue = FakeQueue::default();
        let relay = Relay::new(FakeTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay
            .handle(event(&[b"ok", b"bad", b"later", b"ok", b"skip"]))
            .await;
        assert_eq!(failures(&response), vec!["1002", "1004"]);
        let letters = queue.letters.lock().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].sequence_number, "1001");
        assert_eq!(letters[0].partition_key, "id-1");
        assert_eq!(letters[0].kind.as_str(), "rejected_by_target");
        assert_eq!(letters[0].reason, "body is not JSON");
        assert_eq!(letters[0].data_base64, "YmFk");
        assert_eq!(
            letters[0].event_source_arn,
            "arn:aws:kinesis:eu-west-1:111111111111:stream/s"
        );
        assert_eq!(
            (report.delivered, report.dead_lettered, report.failed),
            (2, 1, 2)
        );
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn function_error_fails_only_its_own_envelope() {
        let queue = FakeQueue::default();
        // Each envelope holds about one record at this size.
        let relay = Relay::new(FakeTarget::new(by_data), queue, 4, 250);
        let (response, report) = relay.handle(event(&[b"ok", b"boom", b"ok"])).await;
        assert_eq!(report.invocations, 3);
        assert_eq!(failures(&response), vec!["1001"]);
        assert_eq!(report.delivered, 2);
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn invoke_and_assume_role_failures_fail_the_batch_as_retryable() {
        let target = FakeTarget::new(|_| {
            Err(InvokeFailure {
                kind: InvokeFailureKind::AssumeRole,
                message: "AssumeRole of arn:aws:iam::222222222222:role/x failed: AccessDenied"
                    .into(),
            })
        });
        let relay = Relay::new(target, FakeQueue::default(), 4, 6 << 20);
        let (response, report) = relay.handle(event(&[b"ok", b"bad"])).await;
        assert_eq!(failures(&response), vec!["1000", "1001"]);
        assert_eq!(report.assume_role_failures, 2);
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn unreadable_or_wrong_version_answers_are_retried() {
        for payload in [
            &b"not json"[..],
            br#"{"version":9,"results":[]}"#,
            br#"{"version":1}"#,
        ] {
            let body = payload.to_vec();
            let target = FakeTarget::new(move |_| {
                Ok(InvokeReply {
                    function_error: None,
                    payload: body.clone(),
                })
            });
            let relay = Relay::new(target, FakeQueue::default(), 4, 6 << 20);
            let (response, report) = relay.handle(event(&[b"ok", b"ok"])).await;
            assert_eq!(
                failures(&response),
                vec!["1000", "1001"],
                "{}",
                String::from_utf8_lossy(payload)
            );
            assert_accounted(&report);
        }
    }

    #[tokio::test]
    async fn a_dead_letter_queue_failure_keeps_the_record_in_the_stream() {
        let queue = FakeQueue {
            refuse: true,
            ..Default::default()
        };
        let relay = Relay::new(FakeTarget::new(by_data), queue, 4, 6 << 20);
        let (response, report) = relay.handle(event(&[b"ok", b"bad"])).await;
        assert_eq!(failures(&response), vec!["1001"]);
        assert_eq!(
            (report.delivered, report.dead_lettered, report.failed),
            (1, 0, 1)
        );
    }

    #[tokio::test]
    async fn batch_over_six_megabytes_is_chunked_and_delivered() {
        let target = FakeTarget::new(by_data);
        let sizes = target.payload_sizes.clone();
        let relay = Relay::new(
            target,
            FakeQueue::default(),
            4,
            shared::config::MAX_INVOKE_REQUEST_BYTES,
        );
        let big = vec![b'o'; 1024 * 1024];
        let data: Vec<&[u8]> = (0..8).map(|_| big.as_slice()).collect();
        let (response, report) = relay.handle(event(&data)).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(report.delivered, 8);
        let sizes = sizes.lock().unwrap();
        assert!(sizes.len() >= 2, "{sizes:?}");
        assert!(
            sizes
                .iter()
                .all(|s| *s < shared::limits::LAMBDA_SYNC_PAYLOAD_LIMIT),
            "{sizes:?}"
        );
        assert!(sizes.iter().sum::<usize>() > shared::limits::LAMBDA_SYNC_PAYLOAD_LIMIT);
    }

    #[tokio::test]
    async fn invocations_run_concurrently_up_to_the_limit() {
        let target = FakeTarget::new(by_data);
        let max = target.max_in_flight.clone();
        let relay = Relay::new(target, FakeQueue::default(), 3, 250);
        let data: Vec<&[u8]> = (0..12).map(|_| &b"ok"[..]).collect();
        let (_, report) = relay.handle(event(&data)).await;
        assert_eq!(report.invocations, 12);
        assert_eq!(max.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_record_too_large_for_any_invoke_is_dead_lettered() {
        let queue = FakeQueue::default();
        let relay = Relay::new(FakeTarget::new(by_data), queue.clone(), 4, 4096);
        let big = vec![b'x'; 8000];
        let (response, report) = relay.handle(event(&[b"ok", &big])).await;
        assert!(response.batch_item_failures.is_empty());
        let letters = queue.letters.lock().unwrap();
        assert_eq!(letters[0].kind.as_str(), "undeliverable");
        assert!(
            letters[0].reason.contains("over the 4096-byte limit"),
            "{}",
            letters[0].reason
        );
        assert_eq!((report.delivered, report.dead_lettered), (1, 1));
    }

    #[tokio::test]
    async fn a_repeated_sequence_number_fails_the_whole_batch() {
        let mut event = event(&[b"bad", b"ok"]);
        let twin = event.records[0].kinesis.sequence_number.clone();
        event.records[1].kinesis.sequence_number = twin;
        let queue = FakeQueue::default();
        let relay = Relay::new(FakeTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay.handle(event).await;
        assert_eq!(response.batch_item_failures.len(), 2);
        assert_eq!((report.records, report.failed), (2, 2));
        assert_accounted(&report);
        assert!(queue.letters.lock().unwrap().is_empty());
    }

    #[test]
    fn a_record_no_step_settled_is_reported_as_failed() {
        let (logs, _guard) = CapturedLogs::start();
        let record = |n: &str| RelayedRecord {
            sequence_number: n.into(),
            partition_key: "k".into(),
            event_id: String::new(),
            approximate_arrival_ms: None,
            data: Vec::new(),
        };
        let settled = vec![Settled {
            position: 1,
            record: record("2"),
            outcome: DeliveryOutcome::Delivered,
        }];
        let numbers = vec!["1".to_string(), "2".to_string(), "3".to_string()];
        let missing = unsettled("b", &settled, &numbers);
        assert_eq!(missing, vec!["1", "3"]);
        let lines = logs.with_message(UNSETTLED);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["batch_id"], "b");
        assert_eq!(lines[0]["records"], 2);
        let (response, report) = respond(settled, missing);
        assert_eq!(failures(&response), vec!["1", "3"]);
        assert_eq!((report.delivered, report.failed), (1, 2));
    }

    const UNSETTLED: &str = "records without an outcome (a bug in the relay); reported as failed";

    #[tokio::test]
    async fn each_batch_ends_with_one_summary_line_of_its_counts() {
        let (logs, _guard) = CapturedLogs::start();
        let relay = Relay::new(FakeTarget::new(by_data), FakeQueue::default(), 4, 6 << 20);
        relay.handle(event(&[b"ok", b"bad", b"later"])).await;
        let summary = logs.with_message("invocation summary");
        assert_eq!(summary.len(), 1, "{summary:?}");
        for (field, value) in [
            ("records", 3),
            ("delivered", 1),
            ("dead_lettered", 1),
            ("failed", 1),
            ("invocations", 1),
            ("assume_role_failures", 0),
        ] {
            assert_eq!(summary[0][field], value, "{field}");
        }
        assert!(logs.with_message(UNSETTLED).is_empty());
    }

    #[tokio::test]
    async fn a_failed_envelope_is_logged_once_with_its_cause() {
        let (logs, _guard) = CapturedLogs::start();
        let denied = FakeTarget::new(|_| {
            Err(InvokeFailure {
                kind: InvokeFailureKind::AssumeRole,
                message: "AssumeRole of arn:aws:iam::222222222222:role/x failed: AccessDenied"
                    .into(),
            })
        });
        Relay::new(denied, FakeQueue::default(), 4, 6 << 20)
            .handle(event(&[b"ok", b"ok"]))
            .await;
        let lines = logs.with_message("target invocation failed");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["assume_role_failed"], true);
        assert_eq!(lines[0]["records"], 2);
        assert_eq!(
            lines[0]["error"],
            "AssumeRole of arn:aws:iam::222222222222:role/x failed: AccessDenied"
        );

        // A function error quotes what the target said, up to 512 characters.
        let long = format!(r#"{{"errorMessage":"{}"}}"#, "x".repeat(600));
        let quoted: String = long.chars().take(512).collect();
        let failing = FakeTarget::new(move |_| {
            Ok(InvokeReply {
                function_error: Some("Unhandled".into()),
                payload: long.clone().into_bytes(),
            })
        });
        Relay::new(failing, FakeQueue::default(), 4, 6 << 20)
            .handle(event(&[b"ok"]))
            .await;
        let lines = logs.with_message("target failed");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(
            lines[0]["error"],
            format!("target function error (Unhandled): {quoted}")
        );

        let unreadable = FakeTarget::new(|_| {
            Ok(InvokeReply {
                function_error: None,
                payload: b"not json".to_vec(),
            })
        });
        Relay::new(unreadable, FakeQueue::default(), 4, 6 << 20)
            .handle(event(&[b"ok"]))
            .await;
        let lines = logs.with_message("target answer unreadable");
        assert_eq!(lines.len(), 1, "{lines:?}");
        let error = lines[0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("target answer unreadable: envelope is not valid JSON"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_empty_batch_is_a_no_op() {
        let relay = Relay::new(FakeTarget::new(by_data), FakeQueue::default(), 4, 6 << 20);
        let (response, report) = relay.handle(event(&[])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(report.invocations, 0);
    }
}
