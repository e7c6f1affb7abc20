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

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use base64::Engine as _;
use futures::StreamExt as _;
use serde::Serialize;
use shared::envelope::{DeliveryRequest, DeliveryResponse, RecordOutcome, RelayedRecord};

use crate::chunk;
use crate::ports::{DeadLetter, DeadLetterQueue, InvokeReply, TargetInvoker};

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    DeadLetter { kind: &'static str, reason: String },
    Retry { reason: String },
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

    /// Relays one batch. Never fails: every problem becomes a per-record outcome.
    pub async fn relay(&self, event: KinesisEvent) -> (KinesisEventResponse, BatchReport) {
        let started = Instant::now();
        let batch_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let mut report = BatchReport {
            records: event.records.len(),
            ..Default::default()
        };
        // The records move into the envelopes and come back with their outcomes; only these
        // small keys are kept to answer in the event's order.
        let mut order: Vec<(String, String)> = Vec::with_capacity(event.records.len());
        let mut source_arns: HashMap<String, String> = HashMap::new();
        let records: Vec<RelayedRecord> = event
            .records
            .into_iter()
            .map(|r| {
                let record = to_relayed(r.kinesis, r.event_id);
                order.push((record.sequence_number.clone(), record.partition_key.clone()));
                source_arns.insert(
                    record.sequence_number.clone(),
                    r.event_source_arn.unwrap_or_default(),
                );
                record
            })
            .collect();
        if source_arns.len() != order.len() {
            // Records are tracked by sequence number, and Kinesis never repeats one in a batch.
            // If it ever did, fail the batch rather than risk dead-lettering one twin for both.
            tracing::error!(
                batch_id = %batch_id,
                records = order.len(),
                distinct_sequence_numbers = source_arns.len(),
                "batch repeats a sequence number; every record reported as failed"
            );
            let mut response = KinesisEventResponse::default();
            for (sequence, _) in &order {
                response.add_failure(sequence.clone());
            }
            report.failed = order.len();
            return (response, report);
        }

        let plan = chunk::plan(&batch_id, records, self.max_payload_bytes);
        let mut settled: Vec<(RelayedRecord, DeliveryOutcome)> = plan
            .oversized
            .into_iter()
            .map(|(record, size)| {
                let reason = format!(
                    "record needs a {size}-byte Invoke request, over the {}-byte limit",
                    self.max_payload_bytes
                );
                let outcome = DeliveryOutcome::DeadLetter {
                    kind: "undeliverable",
                    reason,
                };
                (record, outcome)
            })
            .collect();
        report.invocations = plan.requests.len();
        let delivered_chunks: Vec<Vec<(RelayedRecord, DeliveryOutcome, bool)>> =
            futures::stream::iter(plan.requests)
                .map(|request| self.deliver(request))
                .buffer_unordered(self.max_concurrency)
                .collect()
                .await;
        for (record, outcome, assume_role_failed) in delivered_chunks.into_iter().flatten() {
            report.assume_role_failures += usize::from(assume_role_failed);
            settled.push((record, outcome));
        }

        // Dead letters: a record leaves the batch only once the queue has accepted it.
        let mut outcomes: HashMap<String, DeliveryOutcome> = HashMap::new();
        let mut letters: Vec<DeadLetter> = Vec::new();
        for (record, outcome) in settled {
            if let DeliveryOutcome::DeadLetter { kind, reason } = &outcome {
                letters.push(DeadLetter {
                    kind,
                    reason: reason.clone(),
                    data_bytes: record.data.len(),
                    data_base64: Some(
                        base64::engine::general_purpose::STANDARD.encode(&record.data),
                    ),
                    event_source_arn: source_arns
                        .get(&record.sequence_number)
                        .cloned()
                        .unwrap_or_default(),
                    partition_key: record.partition_key,
                    sequence_number: record.sequence_number.clone(),
                    event_id: record.event_id,
                    delivery_id: batch_id.clone(),
                });
            }
            outcomes.insert(record.sequence_number, outcome);
        }
        let sent: Vec<(String, Result<(), String>)> = futures::stream::iter(letters)
            .map(|letter| async move {
                let result = self.dead_letters.send(&letter).await;
                if result.is_ok() {
                    tracing::warn!(
                        record_id = %letter.partition_key,
                        sequence_number = %letter.sequence_number,
                        kind = letter.kind,
                        reason = %letter.reason,
                        "record sent to the dead-letter queue"
                    );
                }
                (letter.sequence_number, result)
            })
            .buffer_unordered(self.max_concurrency)
            .collect()
            .await;
        for (sequence, result) in sent {
            if let Err(error) = result {
                outcomes.insert(
                    sequence,
                    DeliveryOutcome::Retry {
                        reason: format!("dead-letter queue refused the record: {error}"),
                    },
                );
            }
        }

        let mut response = KinesisEventResponse::default();
        for (sequence, partition_key) in order {
            let outcome = outcomes
                .remove(&sequence)
                .unwrap_or(DeliveryOutcome::Retry {
                    reason: "the relay lost track of this record (bug)".into(),
                });
            match outcome {
                DeliveryOutcome::Delivered => report.delivered += 1,
                DeliveryOutcome::DeadLetter { .. } => report.dead_lettered += 1,
                DeliveryOutcome::Retry { reason } => {
                    report.failed += 1;
                    tracing::warn!(
                        record_id = %partition_key,
                        sequence_number = %sequence,
                        reason = %reason,
                        "record reported as failed; the event source mapping will retry it"
                    );
                    response.add_failure(sequence);
                }
            }
        }
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
        (response, report)
    }

    /// Sends one envelope and hands its records back with their outcomes. The flag says whether
    /// the failure was getting credentials for the target account.
    async fn deliver(
        &self,
        request: DeliveryRequest,
    ) -> Vec<(RelayedRecord, DeliveryOutcome, bool)> {
        let verdicts = self.verdicts(&request).await;
        request
            .records
            .into_iter()
            .map(|record| match &verdicts {
                Err((reason, assume_role_failed)) => {
                    let outcome = DeliveryOutcome::Retry {
                        reason: reason.clone(),
                    };
                    (record, outcome, *assume_role_failed)
                }
                Ok(verdicts) => {
                    let outcome = match verdicts.get(&record.sequence_number).cloned() {
                        Some(RecordOutcome::Ok) => DeliveryOutcome::Delivered,
                        Some(RecordOutcome::Rejected { reason }) => DeliveryOutcome::DeadLetter {
                            kind: "rejected_by_target",
                            reason,
                        },
                        Some(RecordOutcome::Retry { reason }) => DeliveryOutcome::Retry {
                            reason: format!("target asked for a retry: {reason}"),
                        },
                        None => DeliveryOutcome::Retry {
                            reason: "target answered without a result for this record".into(),
                        },
                    };
                    (record, outcome, false)
                }
            })
            .collect()
    }

    /// Invokes the target with one envelope: its verdict per sequence number, or why the whole
    /// envelope failed (and whether AssumeRole was the cause).
    async fn verdicts(
        &self,
        request: &DeliveryRequest,
    ) -> Result<HashMap<String, RecordOutcome>, (String, bool)> {
        let records = request.records.len();
        let InvokeReply {
            function_error,
            payload,
        } = match self.target.invoke(request.encode()).await {
            Ok(reply) => reply,
            Err(failure) => {
                tracing::error!(
                    delivery_id = %request.delivery_id,
                    records,
                    assume_role_failed = failure.assume_role_failed,
                    error = %failure.message,
                    "target invocation failed"
                );
                return Err((failure.message, failure.assume_role_failed));
            }
        };
        if let Some(kind) = function_error {
            let reason = format!("target function error ({kind}): {}", quote(&payload));
            tracing::error!(delivery_id = %request.delivery_id, records, error = %reason, "target failed");
            return Err((reason, false));
        }
        let response = DeliveryResponse::decode(&payload).map_err(|error| {
            let reason = format!("target answer unreadable: {error}");
            tracing::error!(delivery_id = %request.delivery_id, records, error = %reason, "target answer unreadable");
            (reason, false)
        })?;
        let sent: HashSet<&str> = request
            .records
            .iter()
            .map(|r| r.sequence_number.as_str())
            .collect();
        let mut verdicts = HashMap::new();
        for result in response.results {
            if !sent.contains(result.sequence_number.as_str()) {
                tracing::warn!(
                    delivery_id = %request.delivery_id,
                    sequence_number = %result.sequence_number,
                    "target answered for a record it was not sent; ignored"
                );
                continue;
            }
            verdicts.insert(result.sequence_number, result.outcome);
        }
        Ok(verdicts)
    }
}

fn to_relayed(kinesis: KinesisRecord, event_id: Option<String>) -> RelayedRecord {
    RelayedRecord {
        sequence_number: kinesis.sequence_number,
        partition_key: kinesis.partition_key,
        event_id: event_id.unwrap_or_default(),
        approximate_arrival_ms: Some(kinesis.approximate_arrival_timestamp.0.timestamp_millis()),
        data: kinesis.data.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::InvokeFailure;
    use async_trait::async_trait;
    use shared::envelope::RecordResult;
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
        let (response, report) = relay.relay(event(&[b"ok", b"ok", b"ok"])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.invocations), (3, 1));
        assert!(queue.letters.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn rejected_goes_to_the_queue_and_retry_to_batch_item_failures() {
        let queue = FakeQueue::default();
        let relay = Relay::new(FakeTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay
            .relay(event(&[b"ok", b"bad", b"later", b"ok", b"skip"]))
            .await;
        assert_eq!(failures(&response), vec!["1002", "1004"]);
        let letters = queue.letters.lock().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].sequence_number, "1001");
        assert_eq!(letters[0].partition_key, "id-1");
        assert_eq!(letters[0].kind, "rejected_by_target");
        assert_eq!(letters[0].reason, "body is not JSON");
        assert_eq!(letters[0].data_base64.as_deref(), Some("YmFk"));
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
        let (response, report) = relay.relay(event(&[b"ok", b"boom", b"ok"])).await;
        assert_eq!(report.invocations, 3);
        assert_eq!(failures(&response), vec!["1001"]);
        assert_eq!(report.delivered, 2);
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn invoke_and_assume_role_failures_fail_the_batch_as_retryable() {
        let target = FakeTarget::new(|_| {
            Err(InvokeFailure {
                message: "AssumeRole of arn:aws:iam::222222222222:role/x failed: AccessDenied"
                    .into(),
                assume_role_failed: true,
            })
        });
        let relay = Relay::new(target, FakeQueue::default(), 4, 6 << 20);
        let (response, report) = relay.relay(event(&[b"ok", b"bad"])).await;
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
            let (response, report) = relay.relay(event(&[b"ok", b"ok"])).await;
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
        let (response, report) = relay.relay(event(&[b"ok", b"bad"])).await;
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
        let (response, report) = relay.relay(event(&data)).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(report.delivered, 8);
        let sizes = sizes.lock().unwrap();
        assert!(sizes.len() >= 2, "{sizes:?}");
        assert!(
            sizes
                .iter()
                .all(|s| *s < shared::config::LAMBDA_SYNC_PAYLOAD_LIMIT),
            "{sizes:?}"
        );
        assert!(sizes.iter().sum::<usize>() > shared::config::LAMBDA_SYNC_PAYLOAD_LIMIT);
    }

    #[tokio::test]
    async fn invocations_run_concurrently_up_to_the_limit() {
        let target = FakeTarget::new(by_data);
        let max = target.max_in_flight.clone();
        let relay = Relay::new(target, FakeQueue::default(), 3, 250);
        let data: Vec<&[u8]> = (0..12).map(|_| &b"ok"[..]).collect();
        let (_, report) = relay.relay(event(&data)).await;
        assert_eq!(report.invocations, 12);
        assert_eq!(max.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_record_too_large_for_any_invoke_is_dead_lettered() {
        let queue = FakeQueue::default();
        let relay = Relay::new(FakeTarget::new(by_data), queue.clone(), 4, 4096);
        let big = vec![b'x'; 8000];
        let (response, report) = relay.relay(event(&[b"ok", &big])).await;
        assert!(response.batch_item_failures.is_empty());
        let letters = queue.letters.lock().unwrap();
        assert_eq!(letters[0].kind, "undeliverable");
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
        let (response, report) = relay.relay(event).await;
        assert_eq!(response.batch_item_failures.len(), 2);
        assert_eq!(report.failed, 2);
        assert!(queue.letters.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_empty_batch_is_a_no_op() {
        let relay = Relay::new(FakeTarget::new(by_data), FakeQueue::default(), 4, 6 << 20);
        let (response, report) = relay.relay(event(&[])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(report.invocations, 0);
    }
}
