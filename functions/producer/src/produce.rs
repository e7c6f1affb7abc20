//! Builds the records of one invocation and writes them, retrying only refused entries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::kpl::{self, Aggregator, EncodeError, UserRecord};
use shared::metrics::{producer as metric, Metrics};
use shared::produced_record::{ProducedRecord, RecordBody};

use crate::settings::ProducerSettings;
use crate::sink::{EntryResult, PutEntry, RecordSink};

/// Kinesis PutRecords limits (shared::limits has them with AWS's wording).
pub use shared::limits::{
    KINESIS_MAX_BYTES_PER_PUT as MAX_BYTES_PER_CALL,
    KINESIS_MAX_RECORDS_PER_PUT as MAX_ENTRIES_PER_CALL,
    KINESIS_MAX_RECORD_BYTES as MAX_RECORD_BYTES,
};
/// The most bytes one aggregate takes, its partition key included, in aggregated mode
/// (`PRODUCER_AGGREGATION`): the Kinesis Producer Library's default `AggregationMaxSize`. Far
/// under Kinesis's 1 MiB record limit, so that one aggregate stays a small part of a relay
/// batch and of an Invoke; with the default record (no padding, about 200 bytes) about 230
/// user records fill one. A record larger than this alone is an aggregate of one, up to the
/// record limit.
pub const AGGREGATE_MAX_BYTES: usize = 51_200;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What one invocation wrote. Records are the producer's records (an aggregate's user records
/// each count); entries are Kinesis records (an aggregate is one).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ProduceReport {
    /// Records written (user records, in aggregated mode).
    pub records_written: usize,
    /// Their ids, in the order written.
    pub record_ids: Vec<String>,
    /// KPL aggregates written (0 unless in aggregated mode); they hold the records.
    pub aggregates_written: usize,
    pub put_calls: usize,
    /// Entries sent again after a refusal (a refused aggregate counts once: it is sent whole).
    pub retried_entries: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProduceError {
    #[error("record {record_id} is {bytes} bytes (data + partition key), over Kinesis's {limit}-byte record limit; lower PRODUCER_PADDING_BYTES")]
    RecordTooLarge {
        record_id: String,
        bytes: usize,
        limit: usize,
    },
    #[error("{failed} of {total} records were not written after {attempts} PutRecords attempts ({codes}); last error: {last_message}; {written} records were written")]
    Unwritten {
        failed: usize,
        total: usize,
        written: usize,
        attempts: u32,
        codes: String,
        last_message: String,
    },
}

/// Lambda reports the named `errorType`, not the Rust type name of a boxed error.
impl From<ProduceError> for lambda_runtime::Diagnostic {
    fn from(error: ProduceError) -> Self {
        Self {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}

/// An invocation's metrics line ([`shared::metrics::producer`]). `planned`: the records the
/// invocation meant to write. A failed invocation's line has no `RetriedEntries`: the error
/// does not carry that count, and a made-up zero would mislead.
pub fn metrics(
    outcome: &Result<ProduceReport, ProduceError>,
    planned: usize,
    function_name: &str,
) -> Metrics {
    let line = Metrics::new(function_name);
    match outcome {
        Ok(report) => line
            .count(metric::RECORDS_WRITTEN, report.records_written)
            .count(metric::RETRIED_ENTRIES, report.retried_entries)
            .count(metric::RECORDS_FAILED, 0),
        Err(ProduceError::Unwritten {
            written, failed, ..
        }) => line
            .count(metric::RECORDS_WRITTEN, *written)
            .count(metric::RECORDS_FAILED, *failed),
        Err(ProduceError::RecordTooLarge { .. }) => line
            .count(metric::RECORDS_WRITTEN, 0)
            .count(metric::RECORDS_FAILED, planned),
    }
}

impl ProduceError {
    /// The `errorType` Lambda reports for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            ProduceError::RecordTooLarge { .. } => "RecordTooLarge",
            ProduceError::Unwritten { .. } => "RecordsNotWritten",
        }
    }
}

pub struct Producer<S> {
    sink: S,
    settings: ProducerSettings,
    /// Identifies this container; sequence numbers are per container.
    instance: String,
    next_sequence: AtomicU64,
}

impl<S: RecordSink> Producer<S> {
    pub fn new(sink: S, settings: ProducerSettings) -> Self {
        Self {
            sink,
            settings,
            instance: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            next_sequence: AtomicU64::new(1),
        }
    }

    /// The records of one invocation, created at `now`.
    pub fn build_records(&self, now: DateTime<Utc>) -> Vec<ProducedRecord> {
        (0..self.settings.records_per_invocation)
            .map(|_| {
                let sequence = self.next_sequence.fetch_add(1, Ordering::Relaxed);
                ProducedRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    created_at: now,
                    sequence,
                    producer: self.instance.clone(),
                    body: RecordBody {
                        message: format!(
                            "scheduled payload {sequence} from producer {}",
                            self.instance
                        ),
                        padding: "x".repeat(self.settings.padding_bytes),
                        simulate: None,
                    },
                }
            })
            .collect()
    }

    /// Writes the records of one invocation: one Kinesis record each, or packed into KPL
    /// aggregates when the settings say so ([`aggregate`]).
    pub async fn produce(&self, now: DateTime<Utc>) -> Result<ProduceReport, ProduceError> {
        let entries: Vec<PutEntry> = self
            .build_records(now)
            .into_iter()
            .map(|record| PutEntry {
                data: serde_json::to_vec(&record).expect("a produced record always serializes"),
                partition_key: record.id.clone(),
                explicit_hash_key: None,
                record_id: record.id,
                user_record_ids: Vec::new(),
            })
            .collect();
        let entries = if self.settings.aggregation {
            aggregate(entries, AGGREGATE_MAX_BYTES)?
        } else {
            entries
        };
        self.write(entries).await
    }

    /// Writes entries in calls within the PutRecords limits, retrying refused entries.
    pub async fn write(&self, entries: Vec<PutEntry>) -> Result<ProduceReport, ProduceError> {
        let limit = self.settings.max_record_bytes;
        if let Some(entry) = entries.iter().find(|e| e.billed_bytes() > limit) {
            return Err(ProduceError::RecordTooLarge {
                record_id: entry.record_id.clone(),
                bytes: entry.billed_bytes(),
                limit,
            });
        }
        let total = user_records(&entries);
        let mut report = ProduceReport::default();
        let mut pending = entries;
        let mut last_message = String::new();
        let mut codes: BTreeMap<String, usize> = BTreeMap::new();
        for attempt in 1..=self.settings.max_put_attempts {
            if attempt > 1 {
                report.retried_entries += pending.len();
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            codes.clear();
            let mut failed = Vec::new();
            for call in split_into_calls(pending) {
                report.put_calls += 1;
                let results = self.put_call(&call).await;
                for (entry, result) in call.into_iter().zip(results) {
                    match result {
                        EntryResult::Written => {
                            report.records_written += entry.record_ids().len();
                            report.aggregates_written +=
                                usize::from(!entry.user_record_ids.is_empty());
                            report.record_ids.extend_from_slice(entry.record_ids());
                        }
                        EntryResult::Failed { code, message } => {
                            let user_records = entry.record_ids().len();
                            tracing::warn!(record_id = %entry.record_id, user_records, attempt, code = %code, error = %message, "PutRecords entry refused");
                            *codes.entry(code).or_default() += 1;
                            last_message = message;
                            failed.push(entry);
                        }
                    }
                }
            }
            if failed.is_empty() {
                return Ok(report);
            }
            pending = failed;
        }
        let codes = codes
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(ProduceError::Unwritten {
            failed: user_records(&pending),
            total,
            written: report.records_written,
            attempts: self.settings.max_put_attempts,
            codes,
            last_message,
        })
    }

    /// The wait before `attempt` (from 2 on): the base delay, doubling, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(2));
        (self.settings.retry_base_delay * factor).min(MAX_BACKOFF)
    }

    /// One PutRecords call's result per entry, in order. A failed call, or an answer that does
    /// not have one result per entry, fails every entry of the call (they are retried).
    async fn put_call(&self, call: &[PutEntry]) -> Vec<EntryResult> {
        let failed = |code: &str, message: String| {
            vec![
                EntryResult::Failed {
                    code: code.into(),
                    message
                };
                call.len()
            ]
        };
        match self.sink.put_records(call).await {
            Ok(results) if results.len() == call.len() => results,
            Ok(results) => failed(
                "MalformedResponse",
                format!(
                    "PutRecords answered {} results for {} entries",
                    results.len(),
                    call.len()
                ),
            ),
            Err(message) => failed("CallFailed", message),
        }
    }
}

/// The records the entries write (an aggregate's user records each count).
fn user_records(entries: &[PutEntry]) -> usize {
    entries.iter().map(|e| e.record_ids().len()).sum()
}

/// Packs plain entries, in order, into KPL aggregates ([`shared::kpl`]) of at most
/// `max_bytes` each, partition key included: consecutive entries share an aggregate until the
/// next would take it over `max_bytes`, and an entry larger than that alone is an aggregate of
/// one. Each aggregate takes its first entry's partition key and explicit hash key (the KPL's
/// rule); each entry keeps its own inside. An entry whose aggregate of one is over Kinesis's
/// record limit is refused as [`ProduceError::RecordTooLarge`], before anything is sent.
pub fn aggregate(entries: Vec<PutEntry>, max_bytes: usize) -> Result<Vec<PutEntry>, ProduceError> {
    fn user_record(entry: &PutEntry) -> UserRecord<'_> {
        UserRecord {
            partition_key: &entry.partition_key,
            explicit_hash_key: entry.explicit_hash_key.as_deref(),
            data: &entry.data,
        }
    }
    let mut groups: Vec<&[PutEntry]> = Vec::new();
    let mut aggregator = Aggregator::new();
    let mut start = 0;
    for (at, entry) in entries.iter().enumerate() {
        let record = user_record(entry);
        if !aggregator.is_empty() && aggregator.billed_bytes_with(&record) > max_bytes {
            groups.push(&entries[start..at]);
            aggregator = Aggregator::new();
            start = at;
        }
        aggregator.push(record);
    }
    groups.push(&entries[start..]);
    let mut aggregates = Vec::with_capacity(groups.len());
    for group in groups {
        let records: Vec<UserRecord> = group.iter().map(user_record).collect();
        let data = match kpl::encode(&records) {
            Ok(data) => data,
            // The one group of no entries, when there were none: nothing to write.
            Err(EncodeError::Empty) => continue,
            Err(EncodeError::TooLarge { bytes, limit, .. }) => {
                return Err(ProduceError::RecordTooLarge {
                    record_id: group[0].record_id.clone(),
                    bytes,
                    limit,
                })
            }
        };
        let first = &group[0];
        aggregates.push(PutEntry {
            record_id: first.record_id.clone(),
            user_record_ids: group.iter().map(|e| e.record_id.clone()).collect(),
            partition_key: first.partition_key.clone(),
            explicit_hash_key: first.explicit_hash_key.clone(),
            data,
        });
    }
    Ok(aggregates)
}

/// Groups entries, in order, into calls of at most 500 entries and 5 MiB.
pub fn split_into_calls(entries: Vec<PutEntry>) -> Vec<Vec<PutEntry>> {
    let mut calls: Vec<Vec<PutEntry>> = Vec::new();
    let mut bytes = 0usize;
    for entry in entries {
        let size = entry.billed_bytes();
        match calls.last_mut() {
            Some(call)
                if call.len() < MAX_ENTRIES_PER_CALL && bytes + size <= MAX_BYTES_PER_CALL =>
            {
                bytes += size;
                call.push(entry);
            }
            _ => {
                bytes = size;
                calls.push(vec![entry]);
            }
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Refuses each record id as many times as `refusals` says, then writes it.
    #[derive(Default)]
    struct FlakySink {
        refusals: Mutex<HashMap<String, u32>>,
        refuse_all: bool,
        calls: Mutex<Vec<Vec<String>>>,
        written: Mutex<Vec<String>>,
        /// Every entry written, whole.
        written_entries: Mutex<Vec<PutEntry>>,
    }

    #[async_trait]
    impl RecordSink for FlakySink {
        async fn put_records(&self, entries: &[PutEntry]) -> Result<Vec<EntryResult>, String> {
            self.calls
                .lock()
                .unwrap()
                .push(entries.iter().map(|e| e.record_id.clone()).collect());
            let mut refusals = self.refusals.lock().unwrap();
            Ok(entries
                .iter()
                .map(|e| {
                    let left = refusals.entry(e.record_id.clone()).or_insert(0);
                    if self.refuse_all || *left > 0 {
                        *left = left.saturating_sub(1);
                        EntryResult::Failed {
                            code: "ProvisionedThroughputExceededException".into(),
                            message: "Rate exceeded for shard shardId-000000000000".into(),
                        }
                    } else {
                        self.written.lock().unwrap().push(e.record_id.clone());
                        self.written_entries.lock().unwrap().push(e.clone());
                        EntryResult::Written
                    }
                })
                .collect())
        }
    }

    fn settings(records: usize) -> ProducerSettings {
        ProducerSettings {
            stream: "s".into(),
            records_per_invocation: records,
            padding_bytes: 0,
            max_put_attempts: 4,
            retry_base_delay: Duration::from_millis(1),
            aggregation: false,
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }

    fn aggregating(records: usize) -> ProducerSettings {
        ProducerSettings {
            aggregation: true,
            ..settings(records)
        }
    }

    fn entry(id: usize, size: usize) -> PutEntry {
        PutEntry {
            record_id: format!("r{id}"),
            user_record_ids: Vec::new(),
            partition_key: format!("r{id}"),
            explicit_hash_key: None,
            data: vec![b'x'; size],
        }
    }

    #[tokio::test]
    async fn writes_every_record_as_valid_json_with_its_id_as_partition_key() {
        let producer = Producer::new(FlakySink::default(), settings(3));
        let now: DateTime<Utc> = "2026-11-25T05:00:00Z".parse().unwrap();
        let records = producer.build_records(now);
        assert_eq!(
            records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let report = producer.produce(now).await.unwrap();
        assert_eq!(
            (
                report.records_written,
                report.put_calls,
                report.retried_entries
            ),
            (3, 1, 0)
        );
        let ids: std::collections::HashSet<_> = report.record_ids.iter().collect();
        assert_eq!(ids.len(), 3, "ids are unique");
    }

    #[tokio::test]
    async fn retries_only_the_refused_entries() {
        let sink = FlakySink::default();
        sink.refusals
            .lock()
            .unwrap()
            .extend([("r1".to_string(), 1), ("r3".to_string(), 2)]);
        let producer = Producer::new(sink, settings(1));
        let report = producer
            .write((0..5).map(|i| entry(i, 10)).collect())
            .await
            .unwrap();
        let calls = producer.sink.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![
                vec!["r0", "r1", "r2", "r3", "r4"],
                vec!["r1", "r3"],
                vec!["r3"]
            ]
        );
        assert_eq!(report.records_written, 5);
        assert_eq!(report.retried_entries, 3);
        assert_eq!(
            producer.sink.written.lock().unwrap().len(),
            5,
            "nothing written twice"
        );
    }

    /// The produced records an entry holds, decoded: an aggregate's user records (each with
    /// its partition key), else the entry's own data.
    fn produced(entry: &PutEntry) -> Vec<(String, ProducedRecord)> {
        let parse = |data: &[u8]| serde_json::from_slice::<ProducedRecord>(data).unwrap();
        match kpl::decode(&entry.data).unwrap() {
            kpl::Decoded::Plain => vec![(entry.partition_key.clone(), parse(&entry.data))],
            kpl::Decoded::Aggregate(records) => (records.iter())
                .map(|r| (r.partition_key.to_string(), parse(r.data)))
                .collect(),
        }
    }

    #[tokio::test]
    async fn aggregated_mode_packs_every_record_in_order_into_full_aggregates() {
        let producer = Producer::new(FlakySink::default(), aggregating(1_000));
        let report = producer.produce(Utc::now()).await.unwrap();
        let entries = producer.sink.written_entries.lock().unwrap().clone();
        assert_eq!(report.records_written, 1_000);
        assert_eq!(report.aggregates_written, entries.len());
        assert_eq!((report.put_calls, report.retried_entries), (1, 0));
        // Every record, in order, each under its own id as partition key.
        let records: Vec<_> = entries.iter().flat_map(produced).collect();
        let sequences: Vec<u64> = records.iter().map(|(_, r)| r.sequence).collect();
        assert_eq!(sequences, (1..=1_000).collect::<Vec<_>>());
        assert!(records.iter().all(|(key, r)| *key == r.id));
        let ids: Vec<&String> = records.iter().map(|(_, r)| &r.id).collect();
        assert_eq!(report.record_ids.iter().collect::<Vec<_>>(), ids);
        for (at, entry) in entries.iter().enumerate() {
            let held = produced(entry);
            // The Kinesis record's partition key is its first user record's; the ids it
            // lists are the ones it holds.
            assert_eq!(entry.partition_key, held[0].0);
            assert_eq!(entry.record_id, held[0].1.id);
            let held_ids: Vec<&String> = held.iter().map(|(_, r)| &r.id).collect();
            assert_eq!(entry.user_record_ids.iter().collect::<Vec<_>>(), held_ids);
            assert!(entry.billed_bytes() <= AGGREGATE_MAX_BYTES);
            // Full: the next record would have taken it over the bound.
            if let Some(next) = entries.get(at + 1) {
                let Ok(kpl::Decoded::Aggregate(mine)) = kpl::decode(&entry.data) else {
                    panic!("aggregate {at} is not one");
                };
                let Ok(kpl::Decoded::Aggregate(theirs)) = kpl::decode(&next.data) else {
                    panic!("aggregate {} is not one", at + 1);
                };
                let mut aggregator = Aggregator::new();
                mine.into_iter().for_each(|r| aggregator.push(r));
                assert_eq!(aggregator.billed_bytes(), entry.billed_bytes());
                assert!(aggregator.billed_bytes_with(&theirs[0]) > AGGREGATE_MAX_BYTES);
            }
        }
        // The default record (no padding): about 230 of them in 50 KiB.
        let per_aggregate = entries[0].user_record_ids.len();
        assert!((200..=260).contains(&per_aggregate), "{per_aggregate}");
    }

    #[tokio::test]
    async fn without_aggregation_each_record_is_its_own_json_under_its_own_key() {
        let producer = Producer::new(FlakySink::default(), settings(3));
        let report = producer.produce(Utc::now()).await.unwrap();
        let entries = producer.sink.written_entries.lock().unwrap().clone();
        assert_eq!((report.records_written, report.aggregates_written), (3, 0));
        for entry in &entries {
            let record: ProducedRecord = serde_json::from_slice(&entry.data).unwrap();
            assert_eq!(entry.data, serde_json::to_vec(&record).unwrap());
            assert_eq!(
                (&entry.partition_key, &entry.record_id),
                (&record.id, &record.id)
            );
            assert!(entry.user_record_ids.is_empty() && entry.explicit_hash_key.is_none());
        }
    }

    #[tokio::test]
    async fn a_refused_aggregate_is_sent_again_whole_and_every_record_is_counted() {
        let entries = aggregate((0..9).map(|i| entry(i, 10)).collect(), 100).unwrap();
        let firsts: Vec<&str> = entries.iter().map(|e| e.record_id.as_str()).collect();
        assert_eq!(firsts, vec!["r0", "r3", "r6"], "three of 31 bytes in 100");
        let sink = FlakySink::default();
        sink.refusals.lock().unwrap().insert("r3".into(), 1);
        let producer = Producer::new(sink, settings(1));
        let report = producer.write(entries.clone()).await.unwrap();
        let calls = producer.sink.calls.lock().unwrap().clone();
        assert_eq!(calls, vec![vec!["r0", "r3", "r6"], vec!["r3"]]);
        assert_eq!(
            (
                report.records_written,
                report.aggregates_written,
                report.retried_entries
            ),
            (9, 3, 1)
        );
        let ids: Vec<String> = (0..9).map(|i| format!("r{i}")).collect();
        let mut written = report.record_ids.clone();
        written.sort();
        assert_eq!(written, ids, "each record written once");
        // Refused for good: the error counts records, not aggregates.
        let sink = FlakySink {
            refuse_all: true,
            ..Default::default()
        };
        let mut s = settings(1);
        s.max_put_attempts = 2;
        let err = Producer::new(sink, s).write(entries).await.unwrap_err();
        assert!(
            matches!(
                err,
                ProduceError::Unwritten {
                    failed: 9,
                    total: 9,
                    written: 0,
                    ..
                }
            ),
            "{err}"
        );
    }

    /// Aggregates fill up to exactly `max_bytes`: the bound is inclusive.
    #[test]
    fn an_aggregate_holds_exactly_its_bound_and_one_byte_less_holds_one_record_fewer() {
        let entries: Vec<PutEntry> = (0..6).map(|i| entry(i, 20)).collect();
        let mut three = Aggregator::new();
        for e in &entries[..3] {
            three.push(UserRecord {
                partition_key: &e.partition_key,
                explicit_hash_key: None,
                data: &e.data,
            });
        }
        let exact = three.billed_bytes();
        let sizes = |max| {
            let aggregates = aggregate(entries.clone(), max).unwrap();
            for a in &aggregates {
                assert!(a.billed_bytes() <= max);
            }
            (aggregates.iter())
                .map(|a| a.user_record_ids.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(exact), vec![3, 3]);
        assert_eq!(sizes(exact - 1), vec![2, 2, 2]);
        // Nothing to pack: no aggregate.
        assert_eq!(aggregate(Vec::new(), exact), Ok(Vec::new()));
    }

    #[test]
    fn a_record_larger_than_the_bound_is_an_aggregate_of_its_own_up_to_the_record_limit() {
        let entries = vec![entry(0, 10), entry(1, 500), entry(2, 10)];
        let aggregates = aggregate(entries, 100).unwrap();
        let held: Vec<_> = aggregates
            .iter()
            .map(|a| a.user_record_ids.clone())
            .collect();
        assert_eq!(held, vec![vec!["r0"], vec!["r1"], vec!["r2"]]);
        assert!(aggregates[1].billed_bytes() > 500);
        // Alone over Kinesis's record limit: refused, named, before anything is sent.
        let too_large = vec![entry(0, 10), entry(1, MAX_RECORD_BYTES - 10), entry(2, 10)];
        let err = aggregate(too_large, AGGREGATE_MAX_BYTES).unwrap_err();
        assert!(
            matches!(err, ProduceError::RecordTooLarge { ref record_id, bytes, limit }
                if record_id == "r1" && bytes > limit && limit == MAX_RECORD_BYTES),
            "{err}"
        );
    }

    #[test]
    fn an_aggregate_takes_its_first_records_keys_and_each_record_keeps_its_own() {
        let mut entries: Vec<PutEntry> = (0..3).map(|i| entry(i, 5)).collect();
        entries[0].explicit_hash_key = Some("42".into());
        entries[2].explicit_hash_key = Some("7".into());
        let aggregates = aggregate(entries.clone(), AGGREGATE_MAX_BYTES).unwrap();
        assert_eq!(aggregates.len(), 1);
        let one = &aggregates[0];
        assert_eq!(
            (one.partition_key.as_str(), one.explicit_hash_key.as_deref()),
            ("r0", Some("42"))
        );
        let kpl::Decoded::Aggregate(records) = kpl::decode(&one.data).unwrap() else {
            panic!("not an aggregate");
        };
        let keys: Vec<_> = (records.iter())
            .map(|r| (r.partition_key, r.explicit_hash_key, r.data.len()))
            .collect();
        assert_eq!(
            keys,
            vec![("r0", Some("42"), 5), ("r1", None, 5), ("r2", Some("7"), 5)]
        );
    }

    #[test]
    fn each_outcome_gives_its_metrics_line() {
        let counts = |outcome: &Result<ProduceReport, ProduceError>| {
            let line = metrics(outcome, 7, "p-producer").to_value(0);
            assert_eq!(line["FunctionName"], "p-producer");
            ["RecordsWritten", "RetriedEntries", "RecordsFailed"].map(|name| line[name].as_u64())
        };
        let written = Ok(ProduceReport {
            records_written: 7,
            retried_entries: 2,
            ..Default::default()
        });
        assert_eq!(counts(&written), [Some(7), Some(2), Some(0)]);
        let unwritten = Err(ProduceError::Unwritten {
            failed: 3,
            total: 7,
            written: 4,
            attempts: 5,
            codes: String::new(),
            last_message: String::new(),
        });
        assert_eq!(counts(&unwritten), [Some(4), None, Some(3)]);
        let too_large = Err(ProduceError::RecordTooLarge {
            record_id: "r".into(),
            bytes: 2,
            limit: 1,
        });
        assert_eq!(counts(&too_large), [Some(0), None, Some(7)]);
    }

    /// Writes `n` small entries, which must fail: the error.
    async fn unwritten<S: RecordSink>(producer: &Producer<S>, n: usize) -> ProduceError {
        producer
            .write((0..n).map(|i| entry(i, 10)).collect())
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn entries_that_keep_failing_fail_the_invocation_loudly() {
        let sink = FlakySink::default();
        sink.refusals.lock().unwrap().insert("r2".into(), 100);
        let producer = Producer::new(sink, settings(1));
        let err = unwritten(&producer, 4).await;
        assert_eq!(
            err,
            ProduceError::Unwritten {
                failed: 1,
                total: 4,
                written: 3,
                attempts: 4,
                codes: "ProvisionedThroughputExceededException: 1".into(),
                last_message: "Rate exceeded for shard shardId-000000000000".into(),
            }
        );
        assert!(
            err.to_string()
                .starts_with("1 of 4 records were not written after 4 PutRecords attempts"),
            "{err}"
        );
        assert_eq!(producer.sink.calls.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn a_whole_call_failure_is_retried_then_reported() {
        struct Down;
        #[async_trait]
        impl RecordSink for Down {
            async fn put_records(&self, _: &[PutEntry]) -> Result<Vec<EntryResult>, String> {
                Err("PutRecords on s failed: dispatch failure: connection refused".into())
            }
        }
        let err = Producer::new(Down, settings(2))
            .produce(Utc::now())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("2 of 2 records were not written after 4"),
            "{err}"
        );
        assert!(err.to_string().contains("CallFailed: 2"), "{err}");
    }

    #[tokio::test]
    async fn a_record_over_one_mebibyte_is_refused_before_anything_is_sent() {
        let producer = Producer::new(FlakySink::default(), settings(1));
        let err = producer
            .write(vec![entry(0, 10), entry(1, MAX_RECORD_BYTES)])
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProduceError::RecordTooLarge { ref record_id, .. } if record_id == "r1"),
            "{err}"
        );
        assert!(producer.sink.calls.lock().unwrap().is_empty());
        // Lambda reports the named errorType.
        assert_eq!(
            lambda_runtime::Diagnostic::from(err).error_type,
            "RecordTooLarge"
        );
    }

    #[tokio::test]
    async fn a_record_of_exactly_one_mebibyte_is_written_and_one_byte_more_is_refused() {
        // Kinesis counts the partition key ("r0", "r1": 2 bytes) against the record limit.
        let producer = Producer::new(FlakySink::default(), settings(1));
        let report = producer
            .write(vec![entry(0, MAX_RECORD_BYTES - 2)])
            .await
            .unwrap();
        assert_eq!(report.record_ids, vec!["r0"]);
        let err = producer
            .write(vec![entry(1, MAX_RECORD_BYTES - 1)])
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ProduceError::RecordTooLarge {
                record_id: "r1".into(),
                bytes: MAX_RECORD_BYTES + 1,
                limit: MAX_RECORD_BYTES,
            }
        );
        assert!(
            err.to_string()
                .starts_with("record r1 is 1048577 bytes (data + partition key), over Kinesis's 1048576-byte record limit"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_writer_for_large_records_sends_one_up_to_its_own_limit() {
        use shared::limits::LAMBDA_CONSUMER_MAX_RECORD_BYTES as LARGE;
        let producer = Producer::new(
            FlakySink::default(),
            ProducerSettings {
                max_record_bytes: LARGE,
                ..settings(1)
            },
        );
        let report = producer.write(vec![entry(0, LARGE - 2)]).await.unwrap();
        assert_eq!(report.record_ids, vec!["r0"]);
        let err = producer.write(vec![entry(1, LARGE - 1)]).await.unwrap_err();
        assert_eq!(
            err,
            ProduceError::RecordTooLarge {
                record_id: "r1".into(),
                bytes: LARGE + 1,
                limit: LARGE,
            }
        );
    }

    #[tokio::test]
    async fn the_first_attempt_is_not_delayed_and_each_retry_waits_its_backoff() {
        // With a ten-second base delay, a wait before the first attempt trips the timeout.
        let mut slow = settings(1);
        slow.retry_base_delay = Duration::from_secs(10);
        let producer = Producer::new(FlakySink::default(), slow);
        tokio::time::timeout(Duration::from_secs(5), producer.write(vec![entry(0, 10)]))
            .await
            .expect("the first attempt is not delayed")
            .unwrap();

        let sink = FlakySink::default();
        sink.refusals.lock().unwrap().insert("r0".into(), 2);
        let mut s = settings(1);
        s.retry_base_delay = Duration::from_millis(40);
        let producer = Producer::new(sink, s);
        let started = std::time::Instant::now();
        let report = producer.write(vec![entry(0, 10)]).await.unwrap();
        assert_eq!(report.retried_entries, 2);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(40 + 80),
            "waited {waited:?} over two retries"
        );
    }

    #[test]
    fn backoff_doubles_from_the_base_delay_and_stops_at_five_seconds() {
        let mut s = settings(1);
        s.retry_base_delay = Duration::from_millis(300);
        let producer = Producer::new(FlakySink::default(), s);
        let waits: Vec<u128> = (2..=7).map(|a| producer.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![300, 600, 1200, 2400, 4800, 5000]);
        assert_eq!(producer.backoff(20), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_answer_without_one_result_per_entry_fails_the_whole_call() {
        /// Answers one result fewer than it was sent, then nothing more.
        struct Short;
        #[async_trait]
        impl RecordSink for Short {
            async fn put_records(&self, entries: &[PutEntry]) -> Result<Vec<EntryResult>, String> {
                Ok(vec![EntryResult::Written; entries.len() - 1])
            }
        }
        let mut s = settings(1);
        s.max_put_attempts = 1;
        let err = unwritten(&Producer::new(Short, s), 3).await;
        assert_eq!(
            err,
            ProduceError::Unwritten {
                failed: 3,
                total: 3,
                written: 0,
                attempts: 1,
                codes: "MalformedResponse: 3".into(),
                last_message: "PutRecords answered 2 results for 3 entries".into(),
            }
        );
    }

    #[test]
    fn a_call_holds_exactly_five_mebibytes_and_one_byte_more_starts_the_next() {
        // Five entries billed 1 MiB - 1 each (data and a 2-byte key), then one of `last` bytes.
        let entries = |last: usize| {
            let mut entries: Vec<_> = (0..5).map(|i| entry(i, MAX_RECORD_BYTES - 3)).collect();
            entries.push(entry(5, last - 2));
            entries
        };
        let exact = split_into_calls(entries(5));
        assert_eq!(exact.len(), 1);
        assert_eq!(
            exact[0].iter().map(PutEntry::billed_bytes).sum::<usize>(),
            MAX_BYTES_PER_CALL
        );
        let over = split_into_calls(entries(6));
        assert_eq!(over.iter().map(Vec::len).collect::<Vec<_>>(), vec![5, 1]);
    }

    #[test]
    fn calls_respect_the_entry_and_byte_limits() {
        let calls = split_into_calls((0..1201).map(|i| entry(i, 10)).collect());
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![500, 500, 201]
        );
        // Six records of ~1 MB: at most five fit in 5 MiB.
        let calls = split_into_calls((0..6).map(|i| entry(i, 1_000_000)).collect());
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![5, 1]);
        for call in &calls {
            assert!(call.iter().map(PutEntry::billed_bytes).sum::<usize>() <= MAX_BYTES_PER_CALL);
        }
    }

    #[tokio::test]
    async fn padding_reaches_the_configured_size() {
        let mut s = settings(1);
        s.padding_bytes = 10_000;
        let records = Producer::new(FlakySink::default(), s).build_records(Utc::now());
        assert_eq!(records[0].body.padding.len(), 10_000);
    }
}
