//! The handler: a Kinesis batch in, `batchItemFailures` out, every record accounted for.
//!
//! Each record ends in exactly one of three places:
//! - delivered: the target answered `ok`;
//! - dead-lettered: the target answered `rejected`, the record is too large for any Invoke, or
//!   the target function failed on it alone (a poison record, below), and the dead-letter bucket
//!   accepted it — it is not reported as failed, so it cannot block its shard;
//! - failed: anything else (target said `retry`, Invoke or AssumeRole failed, function error,
//!   unreadable answer, dead-letter bucket unavailable) — returned in `batchItemFailures`, so the
//!   event source mapping delivers it again.
//!
//! KPL aggregates ([`crate::deaggregate`]) are first turned into their user records: from then
//! on a "record" is a plain Kinesis record or one user record, each named by its
//! [`RecordIdentity`] (sequence number, and a user record's sub-sequence number), each with its
//! own outcome and dead letter. Only the answer goes back to Kinesis records: Lambda checkpoints
//! by sequence number, so an aggregate is reported in `batchItemFailures` (once) if any of its
//! user records is to be retried, and the event source mapping then delivers all of its user
//! records again, those already delivered or dead-lettered too; a repeated dead letter replaces
//! its object (same key). The target recognises a user record it already completed only with
//! the target library's idempotency store configured and a key that tells user records apart
//! (the default key, the partition key and data, does; one of the target's own must include the
//! sub-sequence number): otherwise it processes the record again (at least once).
//!
//! A record is known by its position (its index in the batch) from start to end: plan
//! ([`packing::plan`] or [`packing::lanes`]) → deliver (one Invoke per envelope) → dead-letter →
//! respond, each step handing the next its records with their positions.
//!
//! A record is known to people by its `event_id` (Lambda's `eventID`, `<shard id>:<sequence
//! number>`): every log line about one record carries it, the envelope takes it to the target,
//! whose line about the record carries it too, and a dead letter holds it.
//!
//! The invocation's deadline bounds all of it ([`crate::deadline`]): an Invoke or a dead-letter
//! write is started only with enough time left in its stage and abandoned when the stage ends;
//! a record not delivered (or whose dead letter was not written) in time is handed back in
//! `batchItemFailures` with the reason, counted as `deadline_deferred`. An abandoned Invoke may
//! still have been processed by the target: its records can be delivered twice (at least once).
//!
//! Delivery has two modes:
//! - by default, the batch is packed in order into as few envelopes as fit the Invoke limit
//!   (almost always one), sent up to `max_concurrency` at a time;
//! - key-ordered ([`Relay::with_max_records_per_invocation`]): envelopes of at most that many
//!   records, records of one partition key in order, different keys concurrently. The batch is
//!   sorted into at most `max_concurrency` lanes ([`packing::lanes`]), every record of a key in
//!   one lane, in batch order. Lanes run concurrently; within a lane, an envelope is built and
//!   sent only once the one before it has been answered and its answer read. A record that is
//!   not delivered (`retry`, no verdict, a failed Invoke or function error: anything but `ok`
//!   or `rejected`) stops its key: before the lane builds its next envelope, it takes out every
//!   remaining record of a stopped key and reports it for retry, naming the earlier record it
//!   waits for. So no later record of a key reaches the target in this batch before an earlier
//!   one is settled; the event source mapping redelivers the key's records from the earliest
//!   failed one, in order. Within one envelope the target gets a key's records in order, and
//!   answers for each.
//!
//! Poison records ([`Relay::with_poison_split_depth`]): an envelope the target function fails
//! (`X-Amz-Function-Error`) is halved and the halves sent again, one after the other, a half
//! that fails too halved in turn, up to the depth (`Relay::isolate`). A record that fails
//! alone is dead-lettered as [`DeadLetterKind::TargetFunctionError`]; a part still failing with
//! no halving left is retried. If the target answered for no record of the envelope at all, it
//! is failing everything, not a record, and the whole envelope is retried (`Relay::send`).
//! A poison record counts as settled, like a rejected one. In both modes the second half's
//! records of a key the first half did not settle are held back (reported for retry), so
//! isolation never sends the target a record of a key before an earlier one of that key that
//! it was not sent: the event source mapping redelivers from the earlier record, which comes
//! before the whole second half, so holding them back costs nothing.

use std::collections::{HashMap, HashSet};

use aws_lambda_events::event::streams::KinesisEventResponse;
use futures::StreamExt as _;
use serde::Serialize;
use shared::envelope::{
    DeliveryRequest, DeliveryResponse, EnvelopeError, RecordIdentity, RecordOutcome, RecordResult,
    RelayedRecord,
};
use shared::metrics::{relay as metric, Metrics};
use tokio::time::Instant;

use crate::dead_letters::{DeadLetterBucket, WriteError};
use crate::deadline::{Deadline, OutOfTime, Stage};
use crate::deaggregate::{self, Deaggregated};
use crate::event::{EventRecord, KinesisBatch};
use crate::invoke::{InvokeFailure, InvokeFailureKind, InvokeReply, TargetInvoker};
use crate::packing::{self, Envelope, HeldBack, Lane, Oversized};
use shared::dead_letter::{DeadLetter, DeadLetterKind};

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
    /// Handed back because the invocation's time ran out (see [`crate::deadline`]): retried by
    /// the event source mapping, like [`Self::Retry`].
    Deferred {
        reason: String,
    },
}

/// Counts for the invocation's summary line; `delivered + dead_lettered + failed = records`,
/// and `deadline_deferred` is the part of `failed` handed back because time ran out. A record
/// is a plain Kinesis record or a user record of an aggregate.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    pub records: usize,
    /// Kinesis records of the batch that were KPL aggregates.
    pub aggregates: usize,
    /// User records those aggregates held (a part of `records`).
    pub user_records: usize,
    /// Kinesis records with the KPL magic bytes and a matching digest whose content could not
    /// be read: each delivered as one plain record (a part of `records`, not of `aggregates`).
    pub invalid_aggregates: usize,
    pub delivered: usize,
    pub dead_lettered: usize,
    pub failed: usize,
    pub deadline_deferred: usize,
    pub invocations: usize,
    pub assume_role_failures: usize,
    /// Invoke calls made to isolate poison records (a part of `invocations`).
    pub poison_split_invocations: usize,
    /// Wall time of each Invoke call, in milliseconds.
    pub invoke_latencies_ms: Vec<u64>,
    /// The earliest `approximateArrivalTimestamp` of the batch's records, in ms since the epoch.
    pub oldest_arrival_ms: Option<i64>,
}

impl BatchReport {
    /// The batch's metrics line ([`shared::metrics::relay`]); `now_ms` gives the batch's age.
    pub fn metrics(&self, function_name: &str, now_ms: i64) -> Metrics {
        let age =
            (self.oldest_arrival_ms).map(|oldest| now_ms.saturating_sub(oldest).max(0) as u64);
        Metrics::new(function_name)
            .count(metric::RECORDS_RECEIVED, self.records)
            .count(metric::RECORDS_DELIVERED, self.delivered)
            .count(metric::RECORDS_DEAD_LETTERED, self.dead_lettered)
            .count(metric::RECORDS_FAILED, self.failed)
            .count(metric::TARGET_INVOCATIONS, self.invocations)
            .count(metric::ASSUME_ROLE_FAILURES, self.assume_role_failures)
            .count(metric::RECORDS_DEADLINE_DEFERRED, self.deadline_deferred)
            .count(
                metric::POISON_SPLIT_INVOCATIONS,
                self.poison_split_invocations,
            )
            .values(
                metric::INVOKE_LATENCY,
                self.invoke_latencies_ms.iter().copied(),
            )
            .values(metric::BATCH_AGE, age)
    }
}

pub struct Relay<T, D> {
    target: T,
    dead_letters: D,
    max_concurrency: usize,
    max_payload_bytes: usize,
    /// `Some`: key-ordered delivery with at most this many records per envelope.
    max_records_per_invocation: Option<usize>,
    /// How many times an envelope the target function failed is halved (0: never).
    poison_split_depth: usize,
}

/// A record with its outcome, its position in the batch, and the Invoke that carried it (`None`:
/// never sent).
#[derive(Debug)]
struct Settled {
    position: usize,
    record: RelayedRecord,
    outcome: DeliveryOutcome,
    delivery_id: Option<String>,
}

/// The target's answer to one envelope: its verdict on each record, in the envelope's order
/// (`None`: no verdict for that record), or why the whole envelope failed.
type Answer = Result<Vec<Option<RecordOutcome>>, EnvelopeFailure>;

/// An envelope back from the target, with its answer.
struct Answered {
    envelope: Envelope,
    answer: Answer,
    /// How long the Invoke took, in ms (`None`: not sent).
    latency_ms: Option<u64>,
    /// Sent as a part of an envelope the target function failed (see [`Relay::isolate`]).
    split: bool,
}

/// Why a whole envelope failed; each of its records is retried with this as the reason.
#[derive(Debug, thiserror::Error)]
enum EnvelopeFailure {
    #[error(transparent)]
    Invoke(InvokeFailure),
    #[error("target function error ({kind}): {quoted}")]
    FunctionError { kind: String, quoted: String },
    /// A function error on an envelope of this one record, once the relay split the envelope
    /// it came in: a poison record, dead-lettered.
    #[error("target function error on this record alone ({kind}): {quoted}")]
    Poison { kind: String, quoted: String },
    #[error("target answer unreadable: {0}")]
    Unreadable(EnvelopeError),
    /// Never sent (key-ordered delivery): an earlier record of its key was not delivered.
    #[error("not sent: the earlier record {behind} of its partition key was not delivered, and a key's records reach the target in order")]
    HeldBack { behind: String },
    /// Not sent, or abandoned, because the invocation's time ran out.
    #[error("{}", out_of_time(.0))]
    OutOfTime(OutOfTime),
}

impl From<OutOfTime> for EnvelopeFailure {
    fn from(late: OutOfTime) -> Self {
        Self::OutOfTime(late)
    }
}

/// The reason given for the records of an Invoke the deadline stopped.
fn out_of_time(late: &OutOfTime) -> String {
    match late {
        OutOfTime::NotStarted { .. } => format!("Invoke {late}"),
        OutOfTime::Abandoned { .. } => format!(
            "Invoke {late}; the target may still process these records, so they can be delivered twice"
        ),
    }
}

/// Longest function-error text quoted in a log line.
const QUOTE_LIMIT: usize = 512;

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(QUOTE_LIMIT).collect()
}

impl<T: TargetInvoker, D: DeadLetterBucket> Relay<T, D> {
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
            max_records_per_invocation: None,
            poison_split_depth: 0,
        }
    }

    /// How many times an envelope the target function failed is halved to isolate its poison
    /// records (see the module docs); 0, the default here: never, the envelope is retried.
    pub fn with_poison_split_depth(mut self, depth: usize) -> Self {
        self.poison_split_depth = depth;
        self
    }

    /// `Some(n)`: key-ordered delivery, at most `n` records per Invoke (see the module docs);
    /// `None`: the default, as many records as fit one Invoke.
    pub fn with_max_records_per_invocation(mut self, max_records: Option<usize>) -> Self {
        self.max_records_per_invocation = max_records;
        self
    }

    /// Handles one batch by `deadline`. Never fails: every problem becomes a per-record
    /// outcome.
    pub async fn handle(
        &self,
        event: KinesisBatch,
        deadline: &Deadline,
    ) -> (KinesisEventResponse, BatchReport) {
        let started = Instant::now();
        let batch_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        // The records travel to the target; the stream each came from stays here, by position.
        let relayed = event.records.into_iter().map(EventRecord::into_relayed);
        let Deaggregated {
            streams,
            records,
            aggregates,
            user_records,
            invalid_aggregates,
        } = deaggregate::batch(&batch_id, relayed);
        let received = BatchReport {
            records: records.len(),
            aggregates,
            user_records,
            invalid_aggregates,
            ..BatchReport::default()
        };
        if let Some(refusal) = refuse_twins(&batch_id, &records, received.clone()) {
            log_summary(&batch_id, &refusal.1, started);
            return refusal;
        }

        // Kept by position so that every record can still be reported, whatever happens below.
        let sequence_numbers: Vec<String> =
            records.iter().map(|r| r.sequence_number.clone()).collect();
        let oldest_arrival_ms = records
            .iter()
            .filter_map(|r| r.approximate_arrival_ms)
            .min();
        let (answered, oversized) = self.deliver(&batch_id, records, deadline).await;
        let invoke_latencies_ms: Vec<u64> = answered.iter().filter_map(|a| a.latency_ms).collect();
        let assume_role_failures = answered.iter().map(Answered::assume_role_failures).sum();
        let poison_split_invocations = (answered.iter())
            .filter(|a| a.split && a.latency_ms.is_some())
            .count();
        let mut settled: Vec<Settled> = self
            .set_aside(oversized)
            .chain(answered.into_iter().flat_map(Answered::settle))
            .collect();
        settled.sort_unstable_by_key(|s| s.position);
        let unsettled = unsettled(&batch_id, &settled, &sequence_numbers);
        self.dead_letter(&batch_id, &streams, &mut settled, deadline)
            .await;
        let (response, tally) = respond(settled, unsettled);

        let report = BatchReport {
            invocations: invoke_latencies_ms.len(),
            assume_role_failures,
            poison_split_invocations,
            invoke_latencies_ms,
            oldest_arrival_ms,
            delivered: tally.delivered,
            dead_lettered: tally.dead_lettered,
            failed: tally.failed,
            deadline_deferred: tally.deadline_deferred,
            ..received
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
                delivery_id: None,
            }
        })
    }

    /// Sends the batch's records to the target in the configured mode (see the module docs):
    /// the envelopes with their answers, and the records too large for any Invoke.
    async fn deliver(
        &self,
        batch_id: &str,
        records: Vec<RelayedRecord>,
        deadline: &Deadline,
    ) -> (Vec<Answered>, Vec<Oversized>) {
        let max_bytes = self.max_payload_bytes;
        let Some(max_records) = self.max_records_per_invocation else {
            let plan = packing::plan(batch_id, records, max_bytes);
            let answered = self.deliver_all(plan.envelopes, deadline).await;
            return (answered, plan.oversized);
        };
        let plan = packing::lanes(
            batch_id,
            records,
            max_bytes,
            max_records,
            self.max_concurrency,
        );
        let answered = futures::stream::iter(plan.lanes)
            .map(|lane| self.deliver_lane(lane, deadline))
            .buffer_unordered(self.max_concurrency)
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        (answered, plan.oversized)
    }

    /// Sends a lane's envelopes one after another, each once the one before it is answered.
    /// After each answer, the remaining records of every key with an undelivered record are
    /// held back, so a later record of a key never overtakes an earlier one; once too little
    /// time is left for another Invoke, every remaining record is handed back for the deadline.
    async fn deliver_lane(&self, mut lane: Lane, deadline: &Deadline) -> Vec<Answered> {
        let mut answered = Vec::new();
        // Each stopped key, with its first record that was not delivered.
        let mut stopped: HashMap<String, String> = HashMap::new();
        loop {
            if let Err(late) = deadline.can_start(Stage::Delivery) {
                let rest = lane.hold_back(|_| true).into_iter();
                answered.extend(rest.map(|held| Answered::unsent(held, late.into())));
                break;
            }
            let Some(envelope) = lane.next_envelope() else {
                break;
            };
            for sent in self.send(envelope, deadline).await {
                for (key, sequence_number) in sent.undelivered() {
                    stopped.entry(key).or_insert(sequence_number);
                }
                answered.push(sent);
            }
            if deadline.can_start(Stage::Delivery).is_ok() {
                for held in lane.hold_back(|key| stopped.contains_key(key)) {
                    let behind = stopped[&held.record.partition_key].clone();
                    answered.push(Answered::unsent(held, EnvelopeFailure::HeldBack { behind }));
                }
            }
        }
        answered
    }

    /// Sends the envelopes, up to `max_concurrency` at a time.
    async fn deliver_all(&self, envelopes: Vec<Envelope>, deadline: &Deadline) -> Vec<Answered> {
        futures::stream::iter(envelopes)
            .map(|envelope| self.send(envelope, deadline))
            .buffer_unordered(self.max_concurrency)
            .flat_map(futures::stream::iter)
            .collect()
            .await
    }

    /// Sends one envelope. If the target function fails it (and splitting is on), isolates its
    /// poison records ([`Self::isolate`]); if the target then answered for none of its records,
    /// it is failing everything rather than a poison record (a bad deploy, a timeout), and the
    /// envelope is retried whole, as with splitting off, its records not dead-lettered.
    async fn send(&self, envelope: Envelope, deadline: &Deadline) -> Vec<Answered> {
        let sent = self.send_once(envelope, false, deadline).await;
        if self.poison_split_depth == 0 || !sent.function_failed() {
            return vec![sent];
        }
        let mut answered = self.isolate(sent, self.poison_split_depth, deadline).await;
        if !answered.iter().any(Answered::read_by_target) {
            answered.iter_mut().for_each(Answered::pardon);
        }
        answered
    }

    /// Sends one envelope, and its answer.
    async fn send_once(&self, envelope: Envelope, split: bool, deadline: &Deadline) -> Answered {
        let (answer, latency_ms) = self.invoke(&envelope.request, deadline).await;
        Answered {
            envelope,
            answer,
            latency_ms,
            split,
        }
    }

    /// An envelope the target function failed: one record alone is poison (dead-lettered);
    /// more, with `depth` halvings left, are split in two halves sent one after the other (so
    /// no more Invokes are in flight than without splitting), each isolated in turn if it fails
    /// too; with none left, the envelope is retried. In both modes, the second half's records
    /// of a key the first half did not settle are held back, as a lane does, so that no record
    /// of a key is delivered while an earlier one of that key is not. Held back, they cost
    /// nothing: the event source mapping redelivers from the first half's unsettled record,
    /// which comes before every record of the second half. Each half is an Invoke like any
    /// other: it starts only with time left in the delivery stage, and is deferred otherwise.
    fn isolate<'a>(
        &'a self,
        failed: Answered,
        depth: usize,
        deadline: &'a Deadline,
    ) -> futures::future::BoxFuture<'a, Vec<Answered>> {
        Box::pin(async move {
            if failed.envelope.positions.len() == 1 {
                return vec![failed.poisoned()];
            }
            if depth == 0 {
                return vec![failed];
            }
            let (spent, first, second) = failed.halve();
            let mut answered = vec![spent];
            let first = self.retry_part(first, depth - 1, deadline).await;
            let stopped: HashMap<String, String> =
                first.iter().flat_map(Answered::undelivered).rev().collect();
            answered.extend(first);
            let (held, second) = hold_back(second, |key| stopped.get(key).cloned());
            answered.extend(held.into_iter().map(|(held, behind)| {
                Answered::unsent(held, EnvelopeFailure::HeldBack { behind })
            }));
            if let Some(second) = second {
                answered.extend(self.retry_part(second, depth - 1, deadline).await);
            }
            answered
        })
    }

    /// Sends a part of a failed envelope, isolating its poison records if it fails too.
    async fn retry_part(&self, part: Envelope, depth: usize, deadline: &Deadline) -> Vec<Answered> {
        let sent = self.send_once(part, true, deadline).await;
        if !sent.function_failed() {
            return vec![sent];
        }
        self.isolate(sent, depth, deadline).await
    }

    /// Invokes the target with one envelope, within the deadline's delivery stage: its answer,
    /// and how long the call took in ms (`None`: not sent, too little time was left).
    async fn invoke(
        &self,
        request: &DeliveryRequest,
        deadline: &Deadline,
    ) -> (Answer, Option<u64>) {
        let started = Instant::now();
        let call = async { self.target.invoke(request.encode()).await };
        let reply = deadline.run(Stage::Delivery, call).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let sent = !matches!(reply, Err(OutOfTime::NotStarted { .. }));
        let answer = match reply {
            Ok(Ok(reply)) => read(request, reply),
            Ok(Err(failure)) => Err(EnvelopeFailure::Invoke(failure)),
            Err(late) => Err(late.into()),
        };
        if let Err(failure) = &answer {
            failure.log(request);
        }
        (answer, sent.then_some(latency_ms))
    }

    /// Sends the dead letters, up to `max_concurrency` at a time, within the deadline's
    /// dead-letter stage. A record leaves the batch only once the bucket has accepted it: a
    /// refused letter turns its record into a retry, one not written in time into a deferral.
    async fn dead_letter(
        &self,
        batch_id: &str,
        streams: &[String],
        settled: &mut [Settled],
        deadline: &Deadline,
    ) {
        let letters: Vec<(usize, DeadLetter)> = settled
            .iter()
            .enumerate()
            .filter_map(|(at, s)| Some((at, s.letter(batch_id, &streams[s.position])?)))
            .collect();
        let unsent: Vec<(usize, DeliveryOutcome)> = futures::stream::iter(letters)
            .map(|(at, letter)| async move {
                let sent = deadline.run(Stage::DeadLetters, self.write(&letter)).await;
                let outcome = match sent {
                    Ok(Ok(())) => return None,
                    Ok(Err(error)) => DeliveryOutcome::Retry {
                        reason: format!("dead-letter bucket refused the record: {error}"),
                    },
                    Err(late) => DeliveryOutcome::Deferred {
                        reason: format!(
                            "dead letter not written before the relay's deadline: {late}"
                        ),
                    },
                };
                Some((at, outcome))
            })
            .buffer_unordered(self.max_concurrency)
            .filter_map(std::future::ready)
            .collect()
            .await;
        for (at, outcome) in unsent {
            settled[at].outcome = outcome;
        }
    }

    async fn write(&self, letter: &DeadLetter) -> Result<(), WriteError> {
        self.dead_letters.write(letter).await?;
        tracing::warn!(
            record_id = %letter.partition_key,
            event_id = %letter.event_id,
            sequence_number = %letter.sequence_number,
            sub_sequence_number = letter.sub_sequence_number,
            batch_id = %letter.batch_id,
            delivery_id = letter.delivery_id.as_deref(),
            kind = letter.kind.as_str(),
            reason = %letter.reason,
            "record written to the dead-letter bucket"
        );
        Ok(())
    }
}

/// The records of `envelope` whose key is stopped, each with the record it waits for
/// (`behind(key)`), and the envelope of the others (`None`: none left).
fn hold_back(
    envelope: Envelope,
    behind: impl Fn(&str) -> Option<String>,
) -> (Vec<(HeldBack, String)>, Option<Envelope>) {
    let Envelope { positions, request } = envelope;
    let mut held = Vec::new();
    let mut kept = (Vec::new(), Vec::new());
    for (position, record) in positions.into_iter().zip(request.records) {
        match behind(&record.partition_key) {
            Some(earlier) => held.push((HeldBack { position, record }, earlier)),
            None => {
                kept.0.push(position);
                kept.1.push(record);
            }
        }
    }
    let (positions, records) = kept;
    let kept = (!positions.is_empty()).then(|| Envelope {
        positions,
        request: DeliveryRequest::new(request.delivery_id, records),
    });
    (held, kept)
}

/// Kinesis never repeats a sequence number in a batch (nor a de-aggregated aggregate a
/// sub-sequence number), and the target answers per record identity. If a batch ever did,
/// every record is failed rather than risk dead-lettering one twin on the other's verdict.
/// `received` holds the batch's counts (records, aggregates, user records); the answer's report
/// is them with every record failed.
fn refuse_twins(
    batch_id: &str,
    records: &[RelayedRecord],
    received: BatchReport,
) -> Option<(KinesisEventResponse, BatchReport)> {
    let distinct: HashSet<RecordIdentity> = records.iter().map(RelayedRecord::identity).collect();
    if distinct.len() == records.len() {
        return None;
    }
    tracing::error!(
        batch_id = %batch_id,
        records = records.len(),
        distinct_identities = distinct.len(),
        "batch repeats a record identity (a sequence number, with its sub-sequence number for a user record); every record reported as failed"
    );
    let mut failures = Failures::default();
    records
        .iter()
        .for_each(|r| failures.name(&r.sequence_number));
    let report = BatchReport {
        failed: records.len(),
        ..received
    };
    Some((failures.response, report))
}

/// The `batchItemFailures` of a batch, each Kinesis record named once however many of its user
/// records are to be retried (Lambda checkpoints before the lowest sequence number named).
#[derive(Default)]
struct Failures {
    response: KinesisEventResponse,
    named: HashSet<String>,
}

impl Failures {
    fn name(&mut self, sequence_number: &str) {
        if self.named.insert(sequence_number.to_owned()) {
            self.response.add_failure(sequence_number.to_owned());
        }
    }
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

/// Whether an answer that names no record of `request` is a target's from before
/// de-aggregation: it answered user records of an aggregate by their sequence number alone.
fn predates_deaggregation(request: &DeliveryRequest, result: &RecordResult) -> bool {
    result.sub_sequence_number.is_none()
        && (request.records.iter()).any(|r| r.sequence_number == result.sequence_number)
}

/// The target's verdicts, which it keys by record identity, in the order of the request's
/// records.
fn in_request_order(
    request: &DeliveryRequest,
    response: DeliveryResponse,
) -> Vec<Option<RecordOutcome>> {
    let index: HashMap<RecordIdentity, usize> = (request.records.iter().enumerate())
        .map(|(at, r)| (r.identity(), at))
        .collect();
    let mut verdicts = vec![None; request.records.len()];
    for result in response.results {
        let Some(&at) = index.get(&result.identity()) else {
            if predates_deaggregation(request, &result) {
                tracing::warn!(
                    delivery_id = %request.delivery_id,
                    sequence_number = %result.sequence_number,
                    "target answered for user records of a KPL aggregate without their sub-sequence numbers: it predates de-aggregation; the records are retried until the target is deployed from the relay's release"
                );
            } else {
                tracing::warn!(
                    delivery_id = %request.delivery_id,
                    sequence_number = %result.identity().to_string(),
                    "target answered for a record it was not sent; ignored"
                );
            }
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
            Self::FunctionError { .. } | Self::Poison { .. } => {
                tracing::error!(delivery_id = %delivery_id, records, error = %self, "target failed");
            }
            Self::Unreadable(_) => tracing::error!(
                delivery_id = %delivery_id,
                records,
                error = %self,
                "target answer unreadable"
            ),
            Self::OutOfTime(_) => tracing::warn!(
                delivery_id = %delivery_id,
                records,
                error = %self,
                "target invocation cut short by the relay's deadline"
            ),
            // Never sent: each such record is logged with this reason when it is reported.
            Self::HeldBack { .. } => {}
        }
    }
}

impl Answered {
    /// A record a lane did not send (held back behind its key, or out of time), answered for
    /// with `failure` without an Invoke.
    fn unsent(held: HeldBack, failure: EnvelopeFailure) -> Self {
        let HeldBack { position, record } = held;
        let envelope = Envelope {
            positions: vec![position],
            request: DeliveryRequest::new(String::new(), vec![record]),
        };
        let answer = Err(failure);
        Self {
            envelope,
            answer,
            latency_ms: None,
            split: false,
        }
    }

    /// Whether the target function failed the whole envelope.
    fn function_failed(&self) -> bool {
        matches!(self.answer, Err(EnvelopeFailure::FunctionError { .. }))
    }

    /// Whether the target answered for the envelope's records (whatever its verdicts).
    fn read_by_target(&self) -> bool {
        self.answer.is_ok() && !self.envelope.positions.is_empty()
    }

    /// This envelope of one record, which the target function failed, as poison.
    fn poisoned(mut self) -> Self {
        if let Err(EnvelopeFailure::FunctionError { kind, quoted }) = self.answer {
            self.answer = Err(EnvelopeFailure::Poison { kind, quoted });
        }
        self
    }

    /// A poison record back to a function error, retried (see [`Relay::send`]).
    fn pardon(&mut self) {
        if let Err(EnvelopeFailure::Poison { kind, quoted }) = &mut self.answer {
            let (kind, quoted) = (std::mem::take(kind), std::mem::take(quoted));
            self.answer = Err(EnvelopeFailure::FunctionError { kind, quoted });
        }
    }

    /// A failed envelope in two halves, `<its delivery id>/1` and `/2`, and what is left of
    /// it: its Invoke (counted, its latency kept) answering for no record, since the halves
    /// answer for them all.
    fn halve(self) -> (Self, Envelope, Envelope) {
        let Envelope {
            mut positions,
            request,
        } = self.envelope;
        let DeliveryRequest {
            delivery_id,
            mut records,
            ..
        } = request;
        let middle = positions.len() / 2;
        let part = |n: usize, positions: Vec<usize>, records: Vec<RelayedRecord>| Envelope {
            positions,
            request: DeliveryRequest::new(format!("{delivery_id}/{n}"), records),
        };
        let second = part(2, positions.split_off(middle), records.split_off(middle));
        let first = part(1, positions, records);
        let spent = Self {
            envelope: Envelope {
                positions: Vec::new(),
                request: DeliveryRequest::new(delivery_id, Vec::new()),
            },
            answer: Ok(Vec::new()),
            latency_ms: self.latency_ms,
            split: self.split,
        };
        (spent, first, second)
    }

    /// The partition key and identity of each record of the envelope that was neither
    /// delivered nor rejected by the target, in the envelope's order.
    fn undelivered(&self) -> Vec<(String, String)> {
        let records = self.envelope.request.records.iter();
        let settled_by_target = |verdict: &Option<RecordOutcome>| {
            matches!(
                verdict,
                Some(RecordOutcome::Ok | RecordOutcome::Rejected { .. })
            )
        };
        let failed: Vec<&RelayedRecord> = match &self.answer {
            Ok(verdicts) => (records.zip(verdicts))
                .filter(|(_, verdict)| !settled_by_target(verdict))
                .map(|(record, _)| record)
                .collect(),
            Err(EnvelopeFailure::Poison { .. }) => Vec::new(),
            Err(_) => records.collect(),
        };
        (failed.into_iter())
            .map(|r| (r.partition_key.clone(), r.identity().to_string()))
            .collect()
    }

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
        let sent = self.latency_ms.is_some();
        let Envelope { positions, request } = self.envelope;
        let delivery_id = sent.then_some(request.delivery_id);
        let outcomes: Vec<DeliveryOutcome> = match self.answer {
            Ok(verdicts) => verdicts.into_iter().map(outcome).collect(),
            Err(failure) => {
                let reason = failure.to_string();
                let outcome = match failure {
                    EnvelopeFailure::OutOfTime(_) => DeliveryOutcome::Deferred { reason },
                    EnvelopeFailure::Poison { .. } => DeliveryOutcome::DeadLetter {
                        kind: DeadLetterKind::TargetFunctionError,
                        reason,
                    },
                    _ => DeliveryOutcome::Retry { reason },
                };
                vec![outcome; positions.len()]
            }
        };
        (positions.into_iter().zip(request.records).zip(outcomes)).map(
            move |((position, record), outcome)| Settled {
                position,
                record,
                outcome,
                delivery_id: delivery_id.clone(),
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
    /// The record's letter for the dead-letter bucket, if its outcome is to be dead-lettered.
    fn letter(&self, batch_id: &str, event_source_arn: &str) -> Option<DeadLetter> {
        let DeliveryOutcome::DeadLetter { kind, reason } = &self.outcome else {
            return None;
        };
        let record = &self.record;
        Some(DeadLetter {
            kind: *kind,
            reason: reason.clone(),
            partition_key: record.partition_key.clone(),
            explicit_hash_key: record.explicit_hash_key.clone(),
            sequence_number: record.sequence_number.clone(),
            sub_sequence_number: record.sub_sequence_number,
            event_id: record.event_id.clone(),
            event_source_arn: event_source_arn.to_owned(),
            data_base64: record.data.as_base64().to_owned(),
            data_bytes: record.data.decoded_len(),
            batch_id: batch_id.to_owned(),
            delivery_id: self.delivery_id.clone(),
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
///
/// A Kinesis record is named once, however many of its user records are to be retried.
fn respond(settled: Vec<Settled>, unsettled: Vec<String>) -> (KinesisEventResponse, BatchReport) {
    let mut failures = Failures::default();
    let mut tally = BatchReport::default();
    for (record, outcome) in settled.into_iter().map(|s| (s.record, s.outcome)) {
        let deferred = matches!(outcome, DeliveryOutcome::Deferred { .. });
        match outcome {
            DeliveryOutcome::Delivered => tally.delivered += 1,
            DeliveryOutcome::DeadLetter { .. } => tally.dead_lettered += 1,
            DeliveryOutcome::Retry { reason } | DeliveryOutcome::Deferred { reason } => {
                tally.failed += 1;
                tally.deadline_deferred += usize::from(deferred);
                tracing::warn!(
                    record_id = %record.partition_key,
                    event_id = %record.event_id,
                    sequence_number = %record.sequence_number,
                    sub_sequence_number = record.sub_sequence_number,
                    reason = %reason,
                    "record reported as failed; the event source mapping will retry it"
                );
                failures.name(&record.sequence_number);
            }
        }
    }
    tally.failed += unsettled.len();
    unsettled.iter().for_each(|s| failures.name(s));
    (failures.response, tally)
}

fn log_summary(batch_id: &str, report: &BatchReport, started: Instant) {
    tracing::info!(
        batch_id = %batch_id,
        records = report.records,
        aggregates = report.aggregates,
        user_records = report.user_records,
        invalid_aggregates = report.invalid_aggregates,
        delivered = report.delivered,
        dead_lettered = report.dead_lettered,
        failed = report.failed,
        deadline_deferred = report.deadline_deferred,
        invocations = report.invocations,
        assume_role_failures = report.assume_role_failures,
        poison_split_invocations = report.poison_split_invocations,
        duration_ms = started.elapsed().as_millis() as u64,
        "invocation summary"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letters::MemoryDeadLetterBucket;
    use crate::deadline::Deadline;
    use crate::invoke::MemoryTarget;
    use shared::envelope::{RecordData, RecordResult};
    use shared::telemetry::CapturedLogs;
    use std::sync::{Arc, Mutex};

    /// A target that answers per record from the record's data: `ok`, `bad` → rejected,
    /// `later` → retry, `skip` → no result; `boom` anywhere → function error.
    fn by_data(request: &DeliveryRequest) -> Result<InvokeReply, InvokeFailure> {
        let data = |r: &RelayedRecord| r.data.decode().expect("the relay forwards valid base64");
        if request.records.iter().any(|r| data(r) == b"boom") {
            return Ok(InvokeReply {
                function_error: Some("Unhandled".into()),
                payload: br#"{"errorMessage":"boom"}"#.to_vec(),
            });
        }
        let results = request
            .records
            .iter()
            .filter(|r| data(r) != b"skip")
            .map(|r| {
                let outcome = match data(r).as_slice() {
                    b"bad" => RecordOutcome::Rejected {
                        reason: "body is not JSON".into(),
                    },
                    b"later" => RecordOutcome::Retry {
                        reason: "downstream busy".into(),
                    },
                    _ => RecordOutcome::Ok,
                };
                RecordResult::answering(r, outcome)
            })
            .collect();
        Ok(InvokeReply {
            function_error: None,
            payload: serde_json::to_vec(&DeliveryResponse::new(results)).unwrap(),
        })
    }

    #[test]
    fn only_an_answer_by_an_aggregates_sequence_number_alone_predates_deaggregation() {
        let user = |sub: Option<u64>| RelayedRecord {
            sequence_number: "7".into(),
            sub_sequence_number: sub,
            partition_key: "k".into(),
            explicit_hash_key: None,
            event_id: "shardId-000000000000:7".into(),
            approximate_arrival_ms: None,
            data: RecordData::encode(b"x"),
        };
        let request = DeliveryRequest::new("d", vec![user(Some(0)), user(Some(1))]);
        let answer = |seq: &str, sub: Option<u64>| RecordResult {
            sequence_number: seq.into(),
            sub_sequence_number: sub,
            outcome: RecordOutcome::Ok,
        };
        assert!(predates_deaggregation(&request, &answer("7", None)));
        // An answer with a sub-sequence number the request lacks, or for a record never sent.
        assert!(!predates_deaggregation(&request, &answer("7", Some(5))));
        assert!(!predates_deaggregation(&request, &answer("8", None)));
    }

    fn event(data: &[&[u8]]) -> KinesisBatch {
        let keys: Vec<String> = (0..data.len()).map(|i| format!("id-{i}")).collect();
        let keyed: Vec<(&str, &[u8])> = keys
            .iter()
            .map(String::as_str)
            .zip(data.iter().copied())
            .collect();
        keyed_event(&keyed)
    }

    /// A batch of (partition key, data) records, sequence numbers 1000, 1001, ...
    fn keyed_event(records: &[(&str, &[u8])]) -> KinesisBatch {
        let records: Vec<serde_json::Value> = records
            .iter()
            .enumerate()
            .map(|(i, (key, d))| {
                serde_json::json!({
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": key,
                        "sequenceNumber": format!("{}", 1000 + i),
                        "data": RecordData::encode(d),
                        "approximateArrivalTimestamp": 1764045097.125
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
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay
            .handle(event(&[b"ok", b"ok", b"ok"]), &Deadline::none())
            .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.invocations), (3, 1));
        assert!(queue.letters().is_empty());
    }

    #[tokio::test]
    async fn rejected_goes_to_the_queue_and_retry_to_batch_item_failures() {
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay
            .handle(
                event(&[b"ok", b"bad", b"later", b"ok", b"skip"]),
                &Deadline::none(),
            )
            .await;
        assert_eq!(failures(&response), vec!["1002", "1004"]);
        let letters = queue.letters();
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
    async fn each_line_and_letter_about_a_record_carries_its_event_id() {
        let (logs, _guard) = CapturedLogs::start();
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&deliveries);
        let target = MemoryTarget::new(move |request| {
            seen.lock().unwrap().push(request.delivery_id.clone());
            by_data(request)
        });
        let queue = MemoryDeadLetterBucket::default();
        // The first three records go in one envelope; the fourth fits none.
        let relay = Relay::new(target, queue.clone(), 4, 4096);
        let big = vec![b'x'; 8000];
        relay
            .handle(event(&[b"ok", b"bad", b"later", &big]), &Deadline::none())
            .await;
        let delivery_id = deliveries.lock().unwrap().clone();
        assert_eq!(delivery_id.len(), 1, "{delivery_id:?}");
        let batch_id = logs.with_message("invocation summary")[0]["batch_id"].clone();

        let letters = queue.letters();
        let letter_of = |kind| letters.iter().find(|l| l.kind == kind).unwrap();
        let rejected = letter_of(DeadLetterKind::RejectedByTarget);
        assert_eq!(rejected.event_id, "shardId-000000000000:1001");
        assert_eq!(rejected.delivery_id.as_ref(), Some(&delivery_id[0]));
        assert_eq!(rejected.batch_id, batch_id);
        let too_large = letter_of(DeadLetterKind::Undeliverable);
        assert_eq!(too_large.event_id, "shardId-000000000000:1003");
        assert_eq!(
            (too_large.delivery_id.as_ref(), &too_large.batch_id),
            (None, &rejected.batch_id)
        );

        let mut dead = logs.with_message("record written to the dead-letter bucket");
        dead.sort_by_key(|l| l["event_id"].as_str().unwrap_or_default().to_string());
        let fields = |l: &serde_json::Value| {
            let text = |field: &str| l.get(field).and_then(|v| v.as_str()).map(str::to_string);
            (text("event_id"), text("delivery_id"), text("batch_id"))
        };
        let batch = batch_id.as_str().map(str::to_string);
        assert_eq!(
            dead.iter().map(fields).collect::<Vec<_>>(),
            [
                (
                    Some(rejected.event_id.clone()),
                    Some(delivery_id[0].clone()),
                    batch.clone()
                ),
                (Some(too_large.event_id.clone()), None, batch),
            ]
        );
        let failed =
            logs.with_message("record reported as failed; the event source mapping will retry it");
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0]["event_id"], "shardId-000000000000:1002");
    }

    #[tokio::test]
    async fn function_error_fails_only_its_own_envelope() {
        let queue = MemoryDeadLetterBucket::default();
        // Each envelope holds about one record at this size.
        let relay = Relay::new(MemoryTarget::new(by_data), queue, 4, 250);
        let (response, report) = relay
            .handle(event(&[b"ok", b"boom", b"ok"]), &Deadline::none())
            .await;
        assert_eq!(report.invocations, 3);
        assert_eq!(failures(&response), vec!["1001"]);
        assert_eq!(report.delivered, 2);
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn invoke_and_assume_role_failures_fail_the_batch_as_retryable() {
        let target = MemoryTarget::new(|_| {
            Err(InvokeFailure {
                kind: InvokeFailureKind::AssumeRole,
                message: "AssumeRole of arn:aws:iam::222222222222:role/x failed: AccessDenied"
                    .into(),
            })
        });
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 4, 6 << 20);
        let (response, report) = relay
            .handle(event(&[b"ok", b"bad"]), &Deadline::none())
            .await;
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
            let target = MemoryTarget::new(move |_| {
                Ok(InvokeReply {
                    function_error: None,
                    payload: body.clone(),
                })
            });
            let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 4, 6 << 20);
            let (response, report) = relay
                .handle(event(&[b"ok", b"ok"]), &Deadline::none())
                .await;
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
    async fn a_dead_letter_bucket_failure_keeps_the_record_in_the_stream() {
        let queue = MemoryDeadLetterBucket::refusing();
        let relay = Relay::new(MemoryTarget::new(by_data), queue, 4, 6 << 20);
        let (response, report) = relay
            .handle(event(&[b"ok", b"bad"]), &Deadline::none())
            .await;
        assert_eq!(failures(&response), vec!["1001"]);
        assert_eq!(
            (report.delivered, report.dead_lettered, report.failed),
            (1, 0, 1)
        );
    }

    #[tokio::test]
    async fn batch_over_six_megabytes_is_chunked_and_delivered() {
        let target = MemoryTarget::new(by_data);
        let probe = target.clone();
        let relay = Relay::new(
            target,
            MemoryDeadLetterBucket::default(),
            4,
            shared::config::MAX_INVOKE_REQUEST_BYTES,
        );
        let big = vec![b'o'; 1024 * 1024];
        let data: Vec<&[u8]> = (0..8).map(|_| big.as_slice()).collect();
        let (response, report) = relay.handle(event(&data), &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(report.delivered, 8);
        let sizes = probe.payload_sizes();
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
        let target = MemoryTarget::new(by_data);
        let probe = target.clone();
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 3, 250);
        let data: Vec<&[u8]> = (0..12).map(|_| &b"ok"[..]).collect();
        let (_, report) = relay.handle(event(&data), &Deadline::none()).await;
        assert_eq!(report.invocations, 12);
        assert_eq!(probe.max_in_flight(), 3);
    }

    #[tokio::test]
    async fn a_record_too_large_for_any_invoke_is_dead_lettered() {
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 4096);
        let big = vec![b'x'; 8000];
        let (response, report) = relay.handle(event(&[b"ok", &big]), &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        let letters = queue.letters();
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
        event.records[1].kinesis.sequence_number = twin.clone();
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay.handle(event, &Deadline::none()).await;
        // Every record failed; the one sequence number named once.
        assert_eq!(failures(&response), [twin]);
        assert_eq!((report.records, report.failed), (2, 2));
        assert_accounted(&report);
        assert!(queue.letters().is_empty());
    }

    #[test]
    fn a_record_no_step_settled_is_reported_as_failed() {
        let (logs, _guard) = CapturedLogs::start();
        let record = |n: &str| RelayedRecord {
            sequence_number: n.into(),
            sub_sequence_number: None,
            partition_key: "k".into(),
            explicit_hash_key: None,
            event_id: String::new(),
            approximate_arrival_ms: None,
            data: RecordData::encode(b""),
        };
        let settled = vec![Settled {
            position: 1,
            record: record("2"),
            outcome: DeliveryOutcome::Delivered,
            delivery_id: Some("b-0".into()),
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
        let relay = Relay::new(
            MemoryTarget::new(by_data),
            MemoryDeadLetterBucket::default(),
            4,
            6 << 20,
        );
        relay
            .handle(event(&[b"ok", b"bad", b"later"]), &Deadline::none())
            .await;
        let summary = logs.with_message("invocation summary");
        assert_eq!(summary.len(), 1, "{summary:?}");
        for (field, value) in [
            ("records", 3),
            ("delivered", 1),
            ("dead_lettered", 1),
            ("failed", 1),
            ("deadline_deferred", 0),
            ("invocations", 1),
            ("assume_role_failures", 0),
        ] {
            assert_eq!(summary[0][field], value, "{field}");
        }
        assert!(logs.with_message(UNSETTLED).is_empty());
    }

    #[tokio::test]
    async fn each_batch_gives_one_metrics_line_of_its_counts_latencies_and_age() {
        let relay = Relay::new(
            MemoryTarget::new(by_data),
            MemoryDeadLetterBucket::default(),
            4,
            6 << 20,
        );
        let (_, report) = relay
            .handle(event(&[b"ok", b"bad", b"later"]), &Deadline::none())
            .await;
        // The event's records arrived at 1764045097.125 s; the batch is looked at 2.5 s later.
        let arrived = 1_764_045_097_125;
        assert_eq!(report.oldest_arrival_ms, Some(arrived));
        let line = report.metrics("p-relay", arrived + 2_500).to_value(0);
        assert_eq!(line["FunctionName"], "p-relay");
        for (name, value) in [
            ("RecordsReceived", 3),
            ("RecordsDelivered", 1),
            ("RecordsDeadLettered", 1),
            ("RecordsFailed", 1),
            ("TargetInvocations", 1),
            ("AssumeRoleFailures", 0),
            ("RecordsDeadlineDeferred", 0),
        ] {
            assert_eq!(line[name], value, "{name}: {line}");
        }
        assert_eq!(line["BatchAge"], serde_json::json!([2_500]));
        // The fake target takes at least 5 ms per envelope.
        let latencies = line["InvokeLatency"].as_array().unwrap();
        assert_eq!(latencies.len(), 1, "{line}");
        assert!(latencies[0].as_u64().unwrap() >= 5, "{line}");
        // An arrival after now (clocks apart) is an age of 0, not a negative one.
        let line = report.metrics("p-relay", arrived - 1).to_value(0);
        assert_eq!(line["BatchAge"], serde_json::json!([0]));
    }

    #[test]
    fn a_batch_without_arrival_times_or_invocations_leaves_age_and_latency_out() {
        let report = BatchReport {
            records: 2,
            failed: 2,
            ..Default::default()
        };
        let line = report.metrics("f", 10).to_value(0);
        assert_eq!(
            (
                line["RecordsReceived"].as_u64(),
                line["RecordsFailed"].as_u64()
            ),
            (Some(2), Some(2))
        );
        assert!(
            line.get("BatchAge").is_none() && line.get("InvokeLatency").is_none(),
            "{line}"
        );
    }

    #[tokio::test]
    async fn a_failed_envelope_is_logged_once_with_its_cause() {
        let (logs, _guard) = CapturedLogs::start();
        let denied = MemoryTarget::new(|_| {
            Err(InvokeFailure {
                kind: InvokeFailureKind::AssumeRole,
                message: "AssumeRole of arn:aws:iam::222222222222:role/x failed: AccessDenied"
                    .into(),
            })
        });
        Relay::new(denied, MemoryDeadLetterBucket::default(), 4, 6 << 20)
            .handle(event(&[b"ok", b"ok"]), &Deadline::none())
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
        let failing = MemoryTarget::new(move |_| {
            Ok(InvokeReply {
                function_error: Some("Unhandled".into()),
                payload: long.clone().into_bytes(),
            })
        });
        Relay::new(failing, MemoryDeadLetterBucket::default(), 4, 6 << 20)
            .handle(event(&[b"ok"]), &Deadline::none())
            .await;
        let lines = logs.with_message("target failed");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(
            lines[0]["error"],
            format!("target function error (Unhandled): {quoted}")
        );

        let unreadable = MemoryTarget::new(|_| {
            Ok(InvokeReply {
                function_error: None,
                payload: b"not json".to_vec(),
            })
        });
        Relay::new(unreadable, MemoryDeadLetterBucket::default(), 4, 6 << 20)
            .handle(event(&[b"ok"]), &Deadline::none())
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
        let relay = Relay::new(
            MemoryTarget::new(by_data),
            MemoryDeadLetterBucket::default(),
            4,
            6 << 20,
        );
        let (response, report) = relay.handle(event(&[]), &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(report.invocations, 0);
    }

    /// A subscriber for this thread's test. A log callsite first reached on a thread without one
    /// can be registered as uninteresting just as another test starts its capture (a race in
    /// tracing-core's callsite registration), and that test then misses its lines.
    fn capture() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
        CapturedLogs::start()
    }

    /// `n` records of keys `k0..k{keys}` in turn, all `data`.
    fn round_robin(n: usize, keys: usize, data: &'static [u8]) -> Vec<(String, &'static [u8])> {
        (0..n).map(|i| (format!("k{}", i % keys), data)).collect()
    }

    fn as_event(records: &[(String, &'static [u8])]) -> KinesisBatch {
        let keyed: Vec<(&str, &[u8])> = records.iter().map(|(k, d)| (k.as_str(), *d)).collect();
        keyed_event(&keyed)
    }

    /// A key-ordered relay (`lanes` at once, `max_records` per Invoke, 6 MiB payloads) in front
    /// of a target answering by each record's data: the relay, a probe of the target, the queue.
    fn keyed_by_data(
        lanes: usize,
        max_records: usize,
    ) -> (
        Relay<MemoryTarget, MemoryDeadLetterBucket>,
        MemoryTarget,
        MemoryDeadLetterBucket,
    ) {
        let target = MemoryTarget::new(by_data);
        let (probe, queue) = (target.clone(), MemoryDeadLetterBucket::default());
        let relay = Relay::new(target, queue.clone(), lanes, 6 << 20)
            .with_max_records_per_invocation(Some(max_records));
        (relay, probe, queue)
    }

    #[tokio::test]
    async fn key_ordered_delivery_keeps_each_keys_order_under_concurrency() {
        let _logs = capture();
        let (relay, probe, _queue) = keyed_by_data(4, 3);
        let records = round_robin(120, 10, b"ok");
        let (response, report) = relay.handle(as_event(&records), &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.failed), (120, 0));
        // 10 keys of 12 records in 4 lanes (3, 3, 2, 2 keys): 36, 36, 24, 24 records, 3 an
        // envelope.
        assert_eq!(report.invocations, 12 + 12 + 8 + 8);
        assert_eq!(probe.max_in_flight(), 4);
        assert_eq!(probe.overlaps(), 0, "a key was in flight twice");
        let per_key = probe.processed_per_key();
        assert_eq!(per_key.len(), 10);
        for (key, seqs) in per_key {
            assert_eq!(seqs.len(), 12, "{key}");
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{key}: {seqs:?}");
        }
    }

    #[tokio::test]
    async fn without_the_setting_the_batch_goes_as_one_envelope() {
        let _logs = capture();
        let target = MemoryTarget::new(by_data);
        let probe = target.clone();
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 4, 6 << 20)
            .with_max_records_per_invocation(None);
        let (_, report) = relay
            .handle(as_event(&round_robin(120, 10, b"ok")), &Deadline::none())
            .await;
        assert_eq!((report.invocations, report.delivered), (1, 120));
        assert_eq!(probe.max_in_flight(), 1);
    }

    #[tokio::test]
    async fn a_failed_record_holds_back_the_later_records_of_its_key_only() {
        // Key a: ok, later (retry), ok, ok. Key b: ok, bad (rejected), ok. One record an
        // envelope, one lane per key.
        let records: Vec<(&str, &[u8])> = vec![
            ("a", b"ok"),
            ("b", b"ok"),
            ("a", b"later"),
            ("b", b"bad"),
            ("a", b"ok"),
            ("b", b"ok"),
            ("a", b"ok"),
        ];
        let (relay, probe, queue) = keyed_by_data(2, 1);
        let (logs, _guard) = CapturedLogs::start();
        let (response, report) = relay.handle(keyed_event(&records), &Deadline::none()).await;
        assert_eq!(failures(&response), ["1002", "1004", "1006"]);
        assert_eq!(
            (report.delivered, report.dead_lettered, report.failed),
            (3, 1, 3)
        );
        // Held-back records are never sent: a's third and fourth records stay here.
        assert_eq!(report.invocations, 5);
        let per_key = probe.processed_per_key();
        assert_eq!(per_key["a"], [1000, 1002]);
        assert_eq!(per_key["b"], [1001, 1003, 1005]);
        assert_eq!(queue.letters()[0].sequence_number, "1003");
        let reported =
            logs.with_message("record reported as failed; the event source mapping will retry it");
        let reasons: Vec<(&str, &str)> = (reported.iter())
            .map(|l| {
                let seq = l["sequence_number"].as_str().unwrap();
                (seq, l["reason"].as_str().unwrap())
            })
            .collect();
        let held = "not sent: the earlier record 1002 of its partition key was not delivered, \
                    and a key's records reach the target in order";
        assert_eq!(
            reasons,
            [
                ("1002", "target asked for a retry: downstream busy"),
                ("1004", held),
                ("1006", held),
            ]
        );
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn a_failed_envelope_or_a_missing_verdict_stops_every_key_in_it() {
        let _logs = capture();
        // One lane, two records an envelope: [a boom, b] fails as a whole, stopping a and b;
        // [c skip, d] gets no verdict for c, stopping c, and delivers d.
        let records: Vec<(&str, &[u8])> = vec![
            ("a", b"boom"),
            ("b", b"ok"),
            ("c", b"skip"),
            ("d", b"ok"),
            ("a", b"ok"),
            ("b", b"ok"),
            ("c", b"ok"),
            ("d", b"ok"),
        ];
        let (relay, probe, _queue) = keyed_by_data(1, 2);
        let (response, report) = relay.handle(keyed_event(&records), &Deadline::none()).await;
        assert_eq!(
            failures(&response),
            ["1000", "1001", "1002", "1004", "1005", "1006"]
        );
        assert_eq!(
            (report.delivered, report.failed, report.invocations),
            (2, 6, 3)
        );
        let per_key = probe.processed_per_key();
        assert_eq!(per_key["d"], [1003, 1007]);
        assert_eq!(per_key["a"], [1000]);
        assert_eq!(per_key["c"], [1002]);
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn key_ordered_envelopes_stay_under_six_megabytes_and_too_large_records_are_set_aside() {
        let _logs = capture();
        let target = MemoryTarget::new(by_data);
        let probe = target.clone();
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(
            target,
            queue.clone(),
            4,
            shared::config::MAX_INVOKE_REQUEST_BYTES,
        )
        .with_max_records_per_invocation(Some(100));
        let big = vec![b'o'; 1024 * 1024];
        let huge = vec![b'o'; 5 * 1024 * 1024];
        // Key a: five 1 MiB records (~7 MB encoded), then one too large for any Invoke, then
        // one more: a record set aside does not stop its key.
        let mut records: Vec<(&str, &[u8])> = (0..5).map(|_| ("a", big.as_slice())).collect();
        records.extend([
            ("a", huge.as_slice()),
            ("a", b"ok".as_slice()),
            ("b", b"ok"),
        ]);
        let (response, report) = relay.handle(keyed_event(&records), &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.dead_lettered), (7, 1));
        assert_eq!(queue.letters()[0].sequence_number, "1005");
        let sizes = probe.payload_sizes();
        assert_eq!(sizes.len(), 3, "{sizes:?}");
        assert!(
            sizes
                .iter()
                .all(|s| *s < shared::limits::LAMBDA_SYNC_PAYLOAD_LIMIT),
            "{sizes:?}"
        );
        assert_eq!(
            probe.processed_per_key()["a"],
            [1000, 1001, 1002, 1003, 1004, 1006]
        );
    }

    #[tokio::test]
    async fn key_ordered_assume_role_failures_are_counted_per_record() {
        let _logs = capture();
        let target = MemoryTarget::new(|_| {
            Err(InvokeFailure {
                kind: InvokeFailureKind::AssumeRole,
                message: "AssumeRole failed: AccessDenied".into(),
            })
        });
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 4, 6 << 20)
            .with_max_records_per_invocation(Some(1));
        let records = round_robin(6, 2, b"ok");
        let (response, report) = relay.handle(as_event(&records), &Deadline::none()).await;
        assert_eq!(response.batch_item_failures.len(), 6);
        // The first record of each key is sent and fails; the rest are held back.
        assert_eq!((report.invocations, report.assume_role_failures), (2, 2));
    }

    // ---- the deadline, on tokio's paused clock: a target's seconds take no time ----

    const REPORTED: &str = "record reported as failed; the event source mapping will retry it";

    fn seconds(s: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64(s)
    }

    /// The reason each reported record was given, by sequence number, in the batch's order.
    fn reasons(logs: &CapturedLogs) -> Vec<(String, String)> {
        (logs.with_message(REPORTED).iter())
            .map(|l| {
                let text = |f: &str| l[f].as_str().unwrap().to_string();
                (text("sequence_number"), text("reason"))
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_invoke_that_would_outrun_the_deadline_is_abandoned_and_no_late_one_started() {
        let (logs, _guard) = capture();
        // One record an envelope, two at once; 1 s an envelope, 60 s for "slow". The relay has
        // 3 s: delivery ends at 2.55 s. e0 and e1 start at 0 s, e2 at 1 s, e3 at 2 s (it would
        // end at 3 s); at 2.55 s e1 and e3 are abandoned, and e4 and e5 never start.
        let target = MemoryTarget::paced(by_data, |request| {
            let slow = request.records[0].data.decode().unwrap() == b"slow";
            seconds(if slow { 60.0 } else { 1.0 })
        });
        let probe = target.clone();
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 2, 250);
        let started = Instant::now();
        let batch = event(&[b"ok", b"slow", b"ok", b"ok", b"ok", b"ok"]);
        let (response, report) = relay.handle(batch, &Deadline::after(seconds(3.0))).await;
        assert_eq!(started.elapsed(), seconds(2.55));
        assert_eq!(failures(&response), ["1001", "1003", "1004", "1005"]);
        assert_eq!(
            (report.delivered, report.failed, report.deadline_deferred),
            (2, 4, 4)
        );
        assert_eq!(report.invocations, 4, "e4 and e5 were never sent");
        assert_eq!(probe.payload_sizes().len(), 4);
        assert_accounted(&report);
        let abandoned = "Invoke abandoned after 2550 ms without an answer, to answer before the \
                         relay's timeout; the target may still process these records, so they \
                         can be delivered twice";
        let abandoned_later = abandoned.replace("2550", "550");
        let not_started = "Invoke not started: 0 ms were left before the relay must answer, \
                           under the 100 ms a call needs";
        assert_eq!(
            reasons(&logs),
            [
                ("1001".into(), abandoned.to_string()),
                ("1003".into(), abandoned_later),
                ("1004".into(), not_started.to_string()),
                ("1005".into(), not_started.to_string()),
            ]
        );
        let summary = &logs.with_message("invocation summary")[0];
        assert_eq!(summary["deadline_deferred"], 4);
        let line = report.metrics("p-relay", 0).to_value(0);
        assert_eq!(
            (
                line["RecordsFailed"].as_u64(),
                line["RecordsDeadlineDeferred"].as_u64()
            ),
            (Some(4), Some(4))
        );
        // An abandoned Invoke counts, with the time it was waited for; one never started does not.
        let mut latencies = report.invoke_latencies_ms.clone();
        latencies.sort_unstable();
        assert_eq!(latencies, [550, 1000, 1000, 2550]);
    }

    #[tokio::test(start_paused = true)]
    async fn with_time_enough_nothing_is_deferred() {
        let (_logs, _guard) = capture();
        let target = MemoryTarget::paced(by_data, |_| seconds(1.0));
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 2, 250);
        let batch = event(&[b"ok", b"ok", b"ok", b"bad"]);
        let (response, report) = relay.handle(batch, &Deadline::after(seconds(3.0))).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            (
                report.delivered,
                report.dead_lettered,
                report.deadline_deferred
            ),
            (3, 1, 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dead_letters_not_written_before_the_deadline_are_handed_back() {
        let (logs, _guard) = capture();
        // The target answers at once; each write to the bucket takes 2 s, one at a time. With
        // 3 s, writes end at 2.85 s: the first letter is written at 2 s, the second abandoned.
        let target = MemoryTarget::paced(by_data, |_| seconds(0.0));
        let queue = MemoryDeadLetterBucket::taking(seconds(2.0));
        let relay = Relay::new(target, queue.clone(), 1, 6 << 20);
        let batch = event(&[b"ok", b"bad", b"bad"]);
        let started = Instant::now();
        let (response, report) = relay.handle(batch, &Deadline::after(seconds(3.0))).await;
        assert_eq!(started.elapsed(), seconds(2.85));
        assert_eq!(failures(&response), ["1002"]);
        assert_eq!(
            (
                report.delivered,
                report.dead_lettered,
                report.deadline_deferred
            ),
            (1, 1, 1)
        );
        assert_eq!(queue.letters().len(), 1);
        assert_eq!(
            reasons(&logs),
            [(
                "1002".to_string(),
                "dead letter not written before the relay's deadline: abandoned after 850 ms \
                 without an answer, to answer before the relay's timeout"
                    .to_string()
            )]
        );
        // Writes of 1.4 s: the second ends at 2.8 s, and 50 ms are too little for the third.
        let queue = MemoryDeadLetterBucket::taking(seconds(1.4));
        let relay = Relay::new(
            MemoryTarget::paced(by_data, |_| seconds(0.0)),
            queue,
            1,
            6 << 20,
        );
        let batch = event(&[b"bad", b"bad", b"bad"]);
        let (response, report) = relay.handle(batch, &Deadline::after(seconds(3.0))).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!((report.dead_lettered, report.deadline_deferred), (2, 1));
        assert!(
            reasons(&logs)[1].1.starts_with(
                "dead letter not written before the relay's deadline: not started: 50 ms were left"
            ),
            "{:?}",
            reasons(&logs)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_ordered_lane_stops_at_the_deadline_and_hands_back_the_rest_in_order() {
        let (logs, _guard) = capture();
        // Keys a and b, five records each, one lane each, one record an Invoke of 1 s: each lane
        // delivers two, its third Invoke (2 s to 3 s) is abandoned at 2.55 s, and its last two
        // records are never sent.
        let records: Vec<(&str, &[u8])> = (0..10)
            .map(|i| (if i % 2 == 0 { "a" } else { "b" }, &b"ok"[..]))
            .collect();
        let target = MemoryTarget::paced(by_data, |_| seconds(1.0));
        let probe = target.clone();
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 2, 6 << 20)
            .with_max_records_per_invocation(Some(1));
        let (response, report) = relay
            .handle(keyed_event(&records), &Deadline::after(seconds(3.0)))
            .await;
        assert_eq!(
            failures(&response),
            ["1004", "1005", "1006", "1007", "1008", "1009"]
        );
        assert_eq!(
            (
                report.delivered,
                report.deadline_deferred,
                report.invocations
            ),
            (4, 6, 6)
        );
        // The abandoned Invokes arrived (six in all) but, dropped, never finished here.
        assert_eq!(probe.payload_sizes().len(), 6);
        let per_key = probe.processed_per_key();
        assert_eq!(per_key["a"], [1000, 1002]);
        assert_eq!(per_key["b"], [1001, 1003]);
        let reasons = reasons(&logs);
        assert!(
            reasons[0].1.starts_with("Invoke abandoned after 550 ms"),
            "{reasons:?}"
        );
        assert!(
            (reasons[2..].iter()).all(|(_, r)| r.starts_with("Invoke not started: 0 ms were left")),
            "{reasons:?}"
        );
        assert_accounted(&report);
    }

    /// A relay that halves a function-failed envelope up to `depth` times, in front of a
    /// target answering by each record's data (`boom`: function error): the relay, the queue.
    fn splitting(
        depth: usize,
    ) -> (
        Relay<MemoryTarget, MemoryDeadLetterBucket>,
        MemoryDeadLetterBucket,
    ) {
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 6 << 20)
            .with_poison_split_depth(depth);
        (relay, queue)
    }

    /// The sequence numbers of the letters written, sorted.
    fn lettered(queue: &MemoryDeadLetterBucket) -> Vec<String> {
        let mut seqs: Vec<String> = (queue.letters().into_iter())
            .map(|l| l.sequence_number)
            .collect();
        seqs.sort();
        seqs
    }

    #[tokio::test]
    async fn one_poison_record_among_eight_is_isolated_and_only_it_dead_lettered() {
        let (relay, queue) = splitting(7);
        let mut data: Vec<&[u8]> = vec![b"ok"; 8];
        data[3] = b"boom";
        let (response, report) = relay.handle(event(&data), &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.dead_lettered), (7, 1));
        // The whole, then halves: [0-3] fails, [4-7] ok; [0-1] ok, [2-3] fails; [2] ok, [3].
        assert_eq!(
            (report.invocations, report.poison_split_invocations),
            (7, 6)
        );
        let letters = queue.letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].sequence_number, "1003");
        assert_eq!(letters[0].kind, DeadLetterKind::TargetFunctionError);
        assert_eq!(
            letters[0].reason,
            r#"target function error on this record alone (Unhandled): {"errorMessage":"boom"}"#
        );
        assert_eq!(letters[0].data_base64, "Ym9vbQ==");
        let delivery_id = letters[0].delivery_id.as_deref().unwrap_or_default();
        assert!(delivery_id.ends_with("-0/1/2/2"), "{delivery_id}");
        let line = report.metrics("p-relay", 0).to_value(0);
        assert_eq!(line["PoisonSplitInvocations"].as_u64(), Some(6));
        assert_eq!(line["RecordsDeadLettered"].as_u64(), Some(1));
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn with_splitting_on_an_envelope_the_target_answers_is_sent_once() {
        let (relay, queue) = splitting(7);
        for data in [&[b"ok" as &[u8]][..], &[b"ok", b"ok", b"ok"]] {
            let (response, report) = relay.handle(event(data), &Deadline::none()).await;
            assert!(response.batch_item_failures.is_empty());
            assert_eq!(report.delivered, data.len());
            assert_eq!(
                (report.invocations, report.poison_split_invocations),
                (1, 0)
            );
        }
        assert!(queue.letters().is_empty());
    }

    #[tokio::test]
    async fn two_poison_records_are_both_isolated() {
        let (relay, queue) = splitting(7);
        let mut data: Vec<&[u8]> = vec![b"ok"; 8];
        data[1] = b"boom";
        data[6] = b"boom";
        let (response, report) = relay.handle(event(&data), &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.dead_lettered), (6, 2));
        assert_eq!(lettered(&queue), ["1001", "1006"]);
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn an_envelope_the_target_fails_whole_is_retried_not_dead_lettered() {
        // Every record fails alone too: the target is failing, not the records.
        let (relay, queue) = splitting(7);
        let (response, report) = relay
            .handle(
                event(&[b"boom", b"boom", b"boom", b"boom"]),
                &Deadline::none(),
            )
            .await;
        assert_eq!(failures(&response), ["1000", "1001", "1002", "1003"]);
        assert!(queue.letters().is_empty());
        assert_eq!((report.failed, report.dead_lettered), (4, 0));
        // The whole, 2 halves, 4 records alone.
        assert_eq!(
            (report.invocations, report.poison_split_invocations),
            (7, 6)
        );
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn with_splitting_off_a_function_error_fails_the_whole_envelope() {
        let (relay, queue) = splitting(0);
        let (response, report) = relay
            .handle(event(&[b"ok", b"boom", b"ok", b"ok"]), &Deadline::none())
            .await;
        assert_eq!(failures(&response), ["1000", "1001", "1002", "1003"]);
        assert!(queue.letters().is_empty());
        assert_eq!(
            (report.invocations, report.poison_split_invocations),
            (1, 0)
        );
    }

    #[tokio::test]
    async fn past_the_depth_the_parts_that_still_fail_are_retried() {
        // One halving: [0-1] ok, [2-3] holds the poison and is retried whole.
        let (relay, queue) = splitting(1);
        let (response, report) = relay
            .handle(event(&[b"ok", b"ok", b"ok", b"boom"]), &Deadline::none())
            .await;
        assert_eq!(failures(&response), ["1002", "1003"]);
        assert!(queue.letters().is_empty());
        assert_eq!((report.delivered, report.invocations), (2, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_split_stops_at_the_deadline_and_hands_the_rest_back() {
        let (_logs, _guard) = capture();
        // 1 s an Invoke; delivery ends at 2.55 s. The whole fails at 1 s, [0-3] is delivered at
        // 2 s, [4-7] (with the poison) is abandoned at 2.55 s.
        let target = MemoryTarget::paced(by_data, |_| seconds(1.0));
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(target, queue.clone(), 4, 6 << 20).with_poison_split_depth(7);
        let mut data: Vec<&[u8]> = vec![b"ok"; 8];
        data[6] = b"boom";
        let (response, report) = relay
            .handle(event(&data), &Deadline::after(seconds(3.0)))
            .await;
        assert_eq!(failures(&response), ["1004", "1005", "1006", "1007"]);
        assert_eq!((report.delivered, report.deadline_deferred), (4, 4));
        assert!(queue.letters().is_empty());
        assert_eq!(
            (report.invocations, report.poison_split_invocations),
            (3, 2)
        );
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn key_ordered_a_poison_record_is_settled_and_its_key_goes_on() {
        // One lane, one envelope of all four: a's poison is dead-lettered, a's next delivered.
        let records: Vec<(&str, &[u8])> =
            vec![("a", b"ok"), ("a", b"boom"), ("b", b"ok"), ("a", b"ok")];
        let (relay, probe, queue) = keyed_by_data(1, 4);
        let relay = relay.with_poison_split_depth(7);
        let (response, report) = relay.handle(keyed_event(&records), &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.dead_lettered), (3, 1));
        assert_eq!(lettered(&queue), ["1001"]);
        assert_eq!(probe.processed_per_key()["a"].last(), Some(&1003));
    }

    #[tokio::test]
    async fn key_ordered_a_part_still_failing_holds_back_its_keys_later_records() {
        // One halving: [a ok, a boom] fails and is retried; from [b ok, a ok], a's record waits
        // behind 1000 and is not sent, b's is delivered.
        let records: Vec<(&str, &[u8])> =
            vec![("a", b"ok"), ("a", b"boom"), ("b", b"ok"), ("a", b"ok")];
        let (relay, probe, queue) = keyed_by_data(1, 4);
        let relay = relay.with_poison_split_depth(1);
        let (logs, _guard) = capture();
        let (response, report) = relay.handle(keyed_event(&records), &Deadline::none()).await;
        assert_eq!(failures(&response), ["1000", "1001", "1003"]);
        assert!(queue.letters().is_empty());
        assert_eq!((report.delivered, report.invocations), (1, 3));
        // 1003 went only in the whole envelope (which failed), not after its key stopped.
        let a = &probe.processed_per_key()["a"];
        assert_eq!(a, &[1000, 1001, 1003, 1000, 1001]);
        let held = reasons(&logs);
        assert!(
            held.iter()
                .any(|(seq, reason)| seq == "1003" && reason.contains("earlier record 1000")),
            "{held:?}"
        );
    }

    #[tokio::test]
    async fn a_part_still_failing_holds_back_its_keys_later_records_in_the_default_mode_too() {
        // The default mode (one envelope for the batch), one halving: [a ok, a boom] fails and
        // is retried; from [b ok, a ok], a's record waits behind 1000 and is not sent, b's is
        // delivered. Sent, 1003 would reach the target before 1000 and 1001 were delivered (the
        // short soak's order_violations in CI).
        let records: Vec<(&str, &[u8])> =
            vec![("a", b"ok"), ("a", b"boom"), ("b", b"ok"), ("a", b"ok")];
        let target = MemoryTarget::new(by_data);
        let (probe, queue) = (target.clone(), MemoryDeadLetterBucket::default());
        let relay = Relay::new(target, queue.clone(), 4, 6 << 20).with_poison_split_depth(1);
        let (logs, _guard) = capture();
        let (response, report) = relay.handle(keyed_event(&records), &Deadline::none()).await;
        assert_eq!(failures(&response), ["1000", "1001", "1003"]);
        assert!(queue.letters().is_empty());
        assert_eq!((report.delivered, report.invocations), (1, 3));
        assert_eq!(
            &probe.processed_per_key()["a"],
            &[1000, 1001, 1003, 1000, 1001]
        );
        let held = reasons(&logs);
        assert!(
            held.iter()
                .any(|(seq, reason)| seq == "1003" && reason.contains("earlier record 1000")),
            "{held:?}"
        );
        assert_accounted(&report);
    }

    // ---- KPL aggregates (crate::deaggregate) ----

    fn varint(mut value: usize, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn field(number: u8, bytes: &[u8], out: &mut Vec<u8>) {
        out.push((number << 3) | 2);
        varint(bytes.len(), out);
        out.extend(bytes);
    }

    /// The index of `key` in `table`, added if it is not there yet.
    fn index<'a>(table: &mut Vec<&'a str>, key: &'a str) -> usize {
        match table.iter().position(|t| *t == key) {
            Some(at) => at,
            None => {
                table.push(key);
                table.len() - 1
            }
        }
    }

    /// A KPL aggregate of (partition key, explicit hash key, data) user records.
    fn kpl(records: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        use md5::{Digest as _, Md5};
        let mut keys: Vec<&str> = Vec::new();
        let mut hash_keys: Vec<&str> = Vec::new();
        let mut bodies = Vec::new();
        for (key, hash_key, data) in records {
            let mut body = vec![0x08];
            varint(index(&mut keys, key), &mut body);
            if let Some(hash_key) = hash_key {
                body.push(0x10);
                varint(index(&mut hash_keys, hash_key), &mut body);
            }
            field(3, data, &mut body);
            bodies.push(body);
        }
        let mut message = Vec::new();
        keys.iter()
            .for_each(|k| field(1, k.as_bytes(), &mut message));
        hash_keys
            .iter()
            .for_each(|k| field(2, k.as_bytes(), &mut message));
        bodies.iter().for_each(|b| field(3, b, &mut message));
        let digest = Md5::digest(&message);
        [&shared::kpl::MAGIC[..], &message, digest.as_slice()].concat()
    }

    /// A target answering like [`by_data`] that keeps every request it was sent.
    fn recording() -> (MemoryTarget, Arc<Mutex<Vec<DeliveryRequest>>>) {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let target = MemoryTarget::new(move |request| {
            seen.lock().unwrap().push(request.clone());
            by_data(request)
        });
        (target, requests)
    }

    /// (identity, partition key, data) of every record sent, in order.
    fn sent(requests: &Mutex<Vec<DeliveryRequest>>) -> Vec<(String, String, String)> {
        let requests = requests.lock().unwrap();
        (requests.iter().flat_map(|r| r.records.iter()))
            .map(|r| {
                let data = String::from_utf8(r.data.decode().unwrap()).unwrap();
                (r.identity().to_string(), r.partition_key.clone(), data)
            })
            .collect()
    }

    #[tokio::test]
    async fn an_aggregate_is_delivered_as_its_user_records_each_with_its_own_keys() {
        let aggregate = kpl(&[
            ("u-1", None, b"ok"),
            ("u-2", Some("42"), b"ok"),
            ("u-1", None, b"ok"),
        ]);
        let (target, requests) = recording();
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(target, queue.clone(), 4, 6 << 20);
        let batch = keyed_event(&[("p", b"ok"), ("agg", &aggregate), ("q", b"ok")]);
        let (response, report) = relay.handle(batch, &Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
        let ok = |id: &str, key: &str| (id.to_string(), key.to_string(), "ok".to_string());
        assert_eq!(
            sent(&requests),
            [
                ok("1000", "p"),
                ok("1001/0", "u-1"),
                ok("1001/1", "u-2"),
                ok("1001/2", "u-1"),
                ok("1002", "q")
            ]
        );
        let requests = requests.lock().unwrap();
        let user = &requests[0].records[2];
        assert_eq!(user.explicit_hash_key.as_deref(), Some("42"));
        assert_eq!(user.event_id, "shardId-000000000000:1001");
        assert_eq!(requests[0].records[1].explicit_hash_key, None);
        assert_eq!(
            (report.records, report.aggregates, report.user_records),
            (5, 1, 3)
        );
        assert_eq!(report.delivered, 5);
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn an_aggregate_is_reported_failed_once_if_any_user_record_is_retried() {
        let retried = kpl(&[
            ("u-1", None, b"ok"),
            ("u-2", None, b"later"),
            ("u-3", None, b"skip"),
        ]);
        let delivered = kpl(&[("u-4", None, b"ok"), ("u-5", None, b"ok")]);
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let batch = keyed_event(&[("a", &retried), ("b", b"ok"), ("c", &delivered)]);
        let (response, report) = relay.handle(batch, &Deadline::none()).await;
        assert_eq!(failures(&response), ["1000"]);
        assert_eq!(
            (report.delivered, report.dead_lettered, report.failed),
            (4, 0, 2)
        );
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn a_rejected_user_record_is_dead_lettered_alone_with_its_keys_and_numbers() {
        let aggregate = kpl(&[
            ("u-1", None, b"ok"),
            ("u-2", Some("7"), b"bad"),
            ("u-3", None, b"bad"),
        ]);
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay
            .handle(keyed_event(&[("agg", &aggregate)]), &Deadline::none())
            .await;
        // Its other user records were delivered or dead-lettered: nothing to retry.
        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.delivered, report.dead_lettered), (1, 2));
        let mut letters = queue.letters();
        letters.sort_by_key(|l| l.sub_sequence_number);
        let summary: Vec<_> = (letters.iter())
            .map(|l| {
                let key = l.key();
                let ehk = l.explicit_hash_key.as_deref();
                (
                    l.partition_key.as_str(),
                    ehk,
                    l.sub_sequence_number,
                    key,
                    l.data_base64.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "u-2",
                    Some("7"),
                    Some(1),
                    "relay/rejected_by_target/shardId-000000000000/1000.1.json".to_string(),
                    "YmFk"
                ),
                (
                    "u-3",
                    None,
                    Some(2),
                    "relay/rejected_by_target/shardId-000000000000/1000.2.json".to_string(),
                    "YmFk"
                ),
            ]
        );
        assert!(letters
            .iter()
            .all(|l| l.sequence_number == "1000" && l.data_bytes == 3));
    }

    #[tokio::test]
    async fn a_corrupt_aggregate_is_delivered_as_a_plain_record() {
        let mut corrupt = kpl(&[("u-1", None, b"ok"), ("u-2", None, b"ok")]);
        *corrupt.last_mut().unwrap() ^= 0x01;
        let (target, requests) = recording();
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 4, 6 << 20);
        let (_, report) = relay
            .handle(keyed_event(&[("outer", &corrupt)]), &Deadline::none())
            .await;
        let requests = requests.lock().unwrap();
        let [record] = requests[0].records.as_slice() else {
            panic!("{requests:?}");
        };
        assert_eq!(record.identity().to_string(), "1000");
        assert_eq!(record.partition_key, "outer");
        assert_eq!(record.data.decode().unwrap(), corrupt);
        assert_eq!((report.records, report.aggregates), (1, 0));
    }

    #[tokio::test]
    async fn key_ordered_delivery_orders_by_the_user_records_partition_keys() {
        // Two aggregates of user keys a and b (the Kinesis partition key is one for all), a
        // plain record of key a between them; b's second user record asks for a retry.
        let first = kpl(&[("a", None, b"ok"), ("b", None, b"ok"), ("a", None, b"ok")]);
        let second = kpl(&[
            ("b", None, b"later"),
            ("a", None, b"ok"),
            ("b", None, b"ok"),
        ]);
        let (target, requests) = recording();
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(target, queue, 2, 6 << 20).with_max_records_per_invocation(Some(1));
        let batch = keyed_event(&[
            ("shared", &first),
            ("a", b"ok"),
            ("shared", &second),
            ("b", b"ok"),
        ]);
        let (logs, _guard) = CapturedLogs::start();
        let (response, report) = relay.handle(batch, &Deadline::none()).await;
        let sent = sent(&requests);
        let of_key = |key: &str| -> Vec<String> {
            (sent.iter())
                .filter(|s| s.1 == key)
                .map(|s| s.0.clone())
                .collect()
        };
        // Every record of a, in order; b stops at its retried record and holds the rest back.
        assert_eq!(of_key("a"), ["1000/0", "1000/2", "1001", "1002/1"]);
        assert_eq!(of_key("b"), ["1000/1", "1002/0"]);
        assert_eq!(failures(&response), ["1002", "1003"]);
        assert_eq!((report.delivered, report.failed), (5, 3));
        let reasons = reasons(&logs);
        assert!(
            reasons.contains(&(
                "1003".to_string(),
                "not sent: the earlier record 1002/0 of its partition key was not delivered, \
                 and a key's records reach the target in order"
                    .to_string()
            )),
            "{reasons:?}"
        );
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn a_target_that_predates_de_aggregation_has_its_user_records_retried_and_is_named() {
        // It answers by sequence number alone, as a target without sub-sequence numbers would.
        let target = MemoryTarget::new(|request: &DeliveryRequest| {
            let results = (request.records.iter())
                .map(|r| RecordResult {
                    sequence_number: r.sequence_number.clone(),
                    sub_sequence_number: None,
                    outcome: RecordOutcome::Ok,
                })
                .collect();
            Ok(InvokeReply {
                function_error: None,
                payload: serde_json::to_vec(&DeliveryResponse::new(results)).unwrap(),
            })
        });
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 4, 6 << 20);
        let aggregate = kpl(&[("u-1", None, b"ok"), ("u-2", None, b"ok")]);
        let (logs, _guard) = CapturedLogs::start();
        let (response, report) = relay
            .handle(
                keyed_event(&[("p", b"ok"), ("agg", &aggregate)]),
                &Deadline::none(),
            )
            .await;
        assert_eq!(failures(&response), ["1001"]);
        assert_eq!((report.delivered, report.failed), (1, 2));
        let named = logs.with_message(
            "target answered for user records of a KPL aggregate without their sub-sequence numbers: it predates de-aggregation; the records are retried until the target is deployed from the relay's release",
        );
        assert_eq!(named.len(), 2, "one line per answer it gave");
    }

    #[tokio::test]
    async fn an_invalid_aggregate_is_counted_in_the_report_and_the_summary_line() {
        let (logs, _guard) = capture();
        // The magic bytes and the digest of an empty message: an aggregate without user records.
        let empty = {
            use md5::{Digest as _, Md5};
            [&shared::kpl::MAGIC[..], Md5::digest([]).as_slice()].concat()
        };
        let aggregate = kpl(&[("u-1", None, b"ok"), ("u-2", None, b"ok")]);
        let relay = Relay::new(
            MemoryTarget::new(by_data),
            MemoryDeadLetterBucket::default(),
            4,
            6 << 20,
        );
        let batch = keyed_event(&[("p", b"ok"), ("bad", &empty), ("agg", &aggregate)]);
        let (_, report) = relay.handle(batch, &Deadline::none()).await;
        assert_eq!(
            (
                report.records,
                report.aggregates,
                report.user_records,
                report.invalid_aggregates
            ),
            (4, 1, 2, 1)
        );
        let summary = logs.with_message("invocation summary");
        assert_eq!(summary.len(), 1, "{summary:?}");
        for (field, value) in [
            ("records", 4),
            ("aggregates", 1),
            ("user_records", 2),
            ("invalid_aggregates", 1),
        ] {
            assert_eq!(summary[0][field], value, "{field}");
        }
    }

    #[tokio::test]
    async fn a_batch_repeating_a_user_records_identity_is_refused_with_its_counts() {
        let (logs, _guard) = capture();
        let aggregate = kpl(&[("u-1", None, b"ok"), ("u-2", None, b"ok")]);
        let mut batch = keyed_event(&[("a", &aggregate), ("b", &aggregate), ("c", b"ok")]);
        batch.records[1].kinesis.sequence_number = batch.records[0].kinesis.sequence_number.clone();
        let queue = MemoryDeadLetterBucket::default();
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let (response, report) = relay.handle(batch, &Deadline::none()).await;
        assert_eq!(failures(&response), ["1000", "1002"]);
        assert_eq!(
            (
                report.records,
                report.aggregates,
                report.user_records,
                report.failed
            ),
            (5, 2, 4, 5)
        );
        assert_accounted(&report);
        assert!(queue.letters().is_empty());
        let refused = logs.with_message(
            "batch repeats a record identity (a sequence number, with its sub-sequence number for a user record); every record reported as failed",
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        // 1000/0, 1000/1 (twice each) and 1002.
        assert_eq!(refused[0]["records"], 5);
        assert_eq!(refused[0]["distinct_identities"], 3);
        let summary = logs.with_message("invocation summary");
        assert_eq!(summary.len(), 1, "{summary:?}");
        assert_eq!(summary[0]["aggregates"], 2);
        assert_eq!(summary[0]["user_records"], 4);
        assert_eq!(summary[0]["failed"], 5);
    }

    #[tokio::test]
    async fn a_poison_user_record_is_isolated_and_dead_lettered_under_its_sub_sequence_number() {
        let (relay, queue) = splitting(7);
        let aggregate = kpl(&[
            ("u-1", None, b"ok"),
            ("u-2", None, b"ok"),
            ("u-3", Some("7"), b"boom"),
            ("u-4", None, b"ok"),
        ]);
        let batch = keyed_event(&[("p", b"ok"), ("agg", &aggregate), ("q", b"ok")]);
        let (response, report) = relay.handle(batch, &Deadline::none()).await;
        // Every other user record was delivered: the aggregate is not reported.
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        assert_eq!((report.delivered, report.dead_lettered), (5, 1));
        let [letter] = queue.letters().try_into().expect("one letter");
        assert_eq!(letter.kind, DeadLetterKind::TargetFunctionError);
        assert_eq!(
            letter.key(),
            "relay/target_function_error/shardId-000000000000/1001.2.json"
        );
        assert_eq!(
            (
                letter.partition_key.as_str(),
                letter.explicit_hash_key.as_deref(),
                letter.sub_sequence_number
            ),
            ("u-3", Some("7"), Some(2))
        );
        assert_eq!(letter.data_base64, "Ym9vbQ==");
        assert!(report.poison_split_invocations > 0);
        assert_accounted(&report);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_partway_through_an_aggregate_names_it_once_and_delivers_the_rest_later() {
        let (logs, _guard) = capture();
        // One lane, one user record an Invoke of 1 s, delivery ending at 2.55 s: user records 0
        // and 1 are delivered, 2 is abandoned, 3 is never sent, nor is the plain record after.
        let aggregate = kpl(&[
            ("u-1", None, b"ok"),
            ("u-2", None, b"ok"),
            ("u-3", None, b"ok"),
            ("u-4", None, b"ok"),
        ]);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let answer = move |request: &DeliveryRequest| {
            seen.lock().unwrap().push(request.clone());
            by_data(request)
        };
        let target = MemoryTarget::paced(answer, |_| seconds(1.0));
        let probe = target.clone();
        let relay = Relay::new(target, MemoryDeadLetterBucket::default(), 1, 6 << 20)
            .with_max_records_per_invocation(Some(1));
        let batch = keyed_event(&[("agg", &aggregate), ("p", b"ok")]);
        let (response, report) = relay.handle(batch, &Deadline::after(seconds(3.0))).await;
        assert_eq!(failures(&response), ["1000", "1001"]);
        assert_eq!(
            (
                report.delivered,
                report.failed,
                report.deadline_deferred,
                report.invocations
            ),
            (2, 3, 3, 3)
        );
        // Three Invokes arrived; the third, abandoned, never answered here.
        assert_eq!(probe.payload_sizes().len(), 3);
        let answered: Vec<String> = sent(&requests).into_iter().map(|s| s.0).collect();
        assert_eq!(answered, ["1000/0", "1000/1"]);
        let deferred: Vec<(String, Option<u64>)> = (logs.with_message(REPORTED).iter())
            .map(|l| {
                let seq = l["sequence_number"].as_str().unwrap().to_string();
                (seq, l["sub_sequence_number"].as_u64())
            })
            .collect();
        assert_eq!(
            deferred,
            [
                ("1000".to_string(), Some(2)),
                ("1000".to_string(), Some(3)),
                ("1001".to_string(), None)
            ]
        );
        assert_accounted(&report);
    }

    #[tokio::test]
    async fn a_user_records_letter_the_bucket_refuses_gets_its_aggregate_reported() {
        let aggregate = kpl(&[
            ("u-1", None, b"ok"),
            ("u-2", None, b"bad"),
            ("u-3", None, b"bad"),
        ]);
        let queue = MemoryDeadLetterBucket::refusing_key(
            "relay/rejected_by_target/shardId-000000000000/1000.1.json",
        );
        let relay = Relay::new(MemoryTarget::new(by_data), queue.clone(), 4, 6 << 20);
        let batch = keyed_event(&[("agg", &aggregate), ("p", b"bad")]);
        let (response, report) = relay.handle(batch, &Deadline::none()).await;
        assert_eq!(failures(&response), ["1000"]);
        assert_eq!(
            (report.delivered, report.dead_lettered, report.failed),
            (1, 2, 1)
        );
        let mut keys: Vec<String> = queue.letters().iter().map(DeadLetter::key).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "relay/rejected_by_target/shardId-000000000000/1000.2.json",
                "relay/rejected_by_target/shardId-000000000000/1001.json"
            ]
        );
        assert_accounted(&report);
    }
}
