//! What `relayctl` does, over two ports so it is tested without a network: the dead-letter
//! bucket ([`crate::bucket`]) and the stream (the producer crate's `RecordSink`, written through its
//! `Producer::write`, which splits calls within the PutRecords limits and retries only the
//! entries Kinesis refused).

use std::collections::BTreeMap;

use producer::sink::{PutEntry, RecordSink};
use producer::Producer;
use shared::dead_letter::REDRIVEN_PREFIX;

use crate::bucket::{Bucket, BucketError};
use crate::letter::{self, Kind, Letter, Unreadable};

/// Which dead letters a command applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Empty: every kind.
    pub kinds: Vec<Kind>,
    /// Only objects at least this old, in seconds.
    pub older_than: Option<i64>,
    /// Only objects whose reason contains this text.
    pub reason: Option<String>,
}

impl Filter {
    fn admits(&self, letter: &Letter, now: i64) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&letter.kind))
            && self
                .older_than
                .is_none_or(|age| now - letter.written_at >= age)
            && self
                .reason
                .as_ref()
                .is_none_or(|text| letter.reason.contains(text.as_str()))
    }
}

/// The dead letters the filter admits (oldest first), and the objects that are not dead letters.
pub async fn load(
    bucket: &dyn Bucket,
    filter: &Filter,
    now: i64,
) -> Result<(Vec<Letter>, Vec<Unreadable>), BucketError> {
    let mut letters = Vec::new();
    let mut unreadable = Vec::new();
    for (key, written_at) in bucket.list().await? {
        if key.starts_with(REDRIVEN_PREFIX) {
            continue;
        }
        match letter::read(&key, written_at, &bucket.get(&key).await?) {
            Ok(letter) if filter.admits(&letter, now) => letters.push(letter),
            Ok(_) => {}
            Err(e) => unreadable.push(e),
        }
    }
    letters.sort_by(|a, b| (a.written_at, &a.key).cmp(&(b.written_at, &b.key)));
    Ok((letters, unreadable))
}

/// One kind's line of `relayctl list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSummary {
    pub kind: Kind,
    pub objects: usize,
    pub records: usize,
    /// Age of the oldest object, in seconds.
    pub oldest_age: i64,
    /// Reason -> objects.
    pub reasons: BTreeMap<String, usize>,
}

/// The dead letters grouped by kind, in [`Kind::ALL`]'s order; kinds without any are left out.
pub fn summarise(letters: &[Letter], now: i64) -> Vec<KindSummary> {
    Kind::ALL
        .into_iter()
        .filter_map(|kind| {
            let of_kind: Vec<&Letter> = letters.iter().filter(|l| l.kind == kind).collect();
            let oldest = of_kind.iter().map(|l| l.written_at).min()?;
            let mut reasons = BTreeMap::new();
            for letter in &of_kind {
                *reasons.entry(letter.reason.clone()).or_default() += 1;
            }
            Some(KindSummary {
                kind,
                objects: of_kind.len(),
                records: of_kind.iter().map(|l| l.records.len()).sum(),
                oldest_age: now - oldest,
                reasons,
            })
        })
        .collect()
}

/// `3d 4h`, `15m 2s`, `42s`: the two largest units of a number of seconds.
pub fn age(seconds: i64) -> String {
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut rest = seconds.max(0);
    let parts: Vec<String> = units
        .iter()
        .filter_map(|(name, size)| {
            let n = rest / size;
            rest %= size;
            (n > 0).then(|| format!("{n}{name}"))
        })
        .take(2)
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

/// Where a redrive stands, after each object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Objects whose records are all back on the stream and that were moved under `redriven/`.
    pub objects_redriven: usize,
    pub records_written: usize,
    /// Objects without records to write (failed producer invocations): left in place.
    pub skipped: Vec<String>,
    /// Objects left in place because a write or the move failed, with the error.
    pub failed: Vec<(String, String)>,
}

/// Puts each letter's records back on the stream with their partition keys and moves the object
/// under `redriven/` only once all of them are written. Interrupted, it leaves every object whose
/// records were not all written where it was, so running it again loses nothing (and may write
/// some records twice). `progress` is called after each object with (objects done, report).
pub async fn redrive<S: RecordSink>(
    letters: &[Letter],
    bucket: &dyn Bucket,
    stream: &Producer<S>,
    mut progress: impl FnMut(usize, &RedriveReport),
) -> RedriveReport {
    let mut report = RedriveReport::default();
    for (done, letter) in letters.iter().enumerate() {
        if letter.records.is_empty() {
            report.skipped.push(letter.key.clone());
        } else {
            let entries = letter
                .records
                .iter()
                .map(|r| PutEntry {
                    record_id: r.partition_key.clone(),
                    user_record_ids: Vec::new(),
                    partition_key: r.partition_key.clone(),
                    explicit_hash_key: r.explicit_hash_key.clone(),
                    data: r.data.clone(),
                })
                .collect();
            match stream.write(entries).await {
                Ok(written) => {
                    report.records_written += written.records_written;
                    match bucket.move_to_redriven(&letter.key).await {
                        Ok(()) => report.objects_redriven += 1,
                        Err(e) => report.failed.push((letter.key.clone(), e.to_string())),
                    }
                }
                Err(e) => report.failed.push((letter.key.clone(), e.to_string())),
            }
        }
        progress(done + 1, &report);
    }
    report
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use base64::Engine;
    use producer::sink::EntryResult;
    use producer::ProducerSettings;
    use serde_json::json;

    use super::*;
    use crate::bucket::MemoryBucket;

    /// A stream that refuses the first `refusals` entries it sees, then accepts everything.
    #[derive(Default)]
    struct MemoryStream {
        written: Mutex<Vec<(String, Vec<u8>)>>,
        /// The explicit hash key of each entry written, in the order of `written`.
        hash_keys: Mutex<Vec<Option<String>>>,
        refusals: Mutex<usize>,
        down: bool,
    }

    #[async_trait]
    impl RecordSink for &MemoryStream {
        async fn put_records(&self, entries: &[PutEntry]) -> Result<Vec<EntryResult>, String> {
            if self.down {
                return Err("PutRecords failed: ResourceNotFoundException".into());
            }
            let mut refusals = self.refusals.lock().unwrap();
            Ok(entries
                .iter()
                .map(|e| {
                    if *refusals > 0 {
                        *refusals -= 1;
                        return EntryResult::Failed {
                            code: "ProvisionedThroughputExceededException".into(),
                            message: "slow down".into(),
                        };
                    }
                    self.written
                        .lock()
                        .unwrap()
                        .push((e.partition_key.clone(), e.data.clone()));
                    (self.hash_keys.lock().unwrap()).push(e.explicit_hash_key.clone());
                    EntryResult::Written
                })
                .collect())
        }
    }

    fn producer(stream: &MemoryStream) -> Producer<&MemoryStream> {
        Producer::new(
            stream,
            ProducerSettings {
                stream: "s".into(),
                records_per_invocation: 1,
                padding_bytes: 0,
                max_put_attempts: 3,
                retry_base_delay: Duration::ZERO,
                aggregation: false,
                max_record_bytes: shared::limits::LAMBDA_CONSUMER_MAX_RECORD_BYTES,
            },
        )
    }

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    /// One rejected record (written at 100), one failed batch of two (at 200), one failed
    /// invocation (at 300) and one object that is not a dead letter.
    fn bucket() -> MemoryBucket {
        let bucket = MemoryBucket::default();
        let rejected = json!({"kind": "rejected_by_target", "reason": "body.message missing",
            "partition_key": "r-1", "data_base64": b64(b"one")});
        bucket.insert(
            "relay/rejected_by_target/s/1.json",
            100,
            rejected.to_string(),
        );
        let event = json!({"Records": [
            {"kinesis": {"partitionKey": "b-1", "data": b64(b"two")}},
            {"kinesis": {"partitionKey": "b-2", "data": b64(b"three")}}]});
        let batch = json!({"requestContext": {"condition": "RetryAttemptsExhausted"},
            "responseContext": {"functionError": "Unhandled"}, "payload": event.to_string()});
        bucket.insert("aws/lambda/u/s/2026/11/25/t-1", 200, batch.to_string());
        let tick = json!({"requestContext": {"condition": "RetriesExhausted"}});
        bucket.insert("aws/lambda/async/p/2026/11/25/t-2", 300, tick.to_string());
        bucket.insert("notes.txt", 50, b"hello".to_vec());
        bucket.insert("redriven/relay/x.json", 10, b"{}".to_vec());
        bucket
    }

    #[tokio::test]
    async fn list_groups_by_kind_with_counts_reasons_and_age() {
        let (letters, unreadable) = load(&bucket(), &Filter::default(), 1_000).await.unwrap();
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].key, "notes.txt");
        let summary = summarise(&letters, 1_000);
        let kinds: Vec<_> = summary
            .iter()
            .map(|s| (s.kind, s.objects, s.records, s.oldest_age))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::RejectedByTarget, 1, 1, 900),
                (Kind::FailedBatch, 1, 2, 800),
                (Kind::FailedInvocation, 1, 0, 700)
            ]
        );
        assert_eq!(
            summary[1].reasons,
            BTreeMap::from([("RetryAttemptsExhausted (Unhandled)".to_string(), 1)])
        );
    }

    #[tokio::test]
    async fn a_poison_record_is_listed_under_its_kind_and_redriven() {
        let bucket = MemoryBucket::default();
        let poison = json!({"kind": "target_function_error",
            "reason": "target function error on this record alone (Unhandled): boom",
            "partition_key": "p-1", "data_base64": b64(b"poison")});
        let key = "relay/target_function_error/s/9.json";
        bucket.insert(key, 100, poison.to_string());
        let only = Filter {
            kinds: vec![Kind::TargetFunctionError],
            ..Filter::default()
        };
        let (letters, unreadable) = load(&bucket, &only, 1_000).await.unwrap();
        assert!(unreadable.is_empty());
        let summary = summarise(&letters, 1_000);
        assert_eq!(
            (summary[0].kind, summary[0].objects, summary[0].records),
            (Kind::TargetFunctionError, 1, 1)
        );
        let stream = MemoryStream::default();
        let report = redrive(&letters, &bucket, &producer(&stream), |_, _| {}).await;
        assert_eq!((report.objects_redriven, report.records_written), (1, 1));
        let written = stream.written.lock().unwrap().clone();
        assert_eq!(written, [("p-1".into(), b"poison".to_vec())]);
        let keys: Vec<_> = (bucket.list().await.unwrap().into_iter())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, [format!("redriven/{key}")]);
    }

    #[tokio::test]
    async fn a_user_record_is_redriven_with_its_own_partition_key_and_explicit_hash_key() {
        let bucket = MemoryBucket::default();
        let user = json!({"kind": "rejected_by_target", "reason": "bad",
            "partition_key": "u-2", "explicit_hash_key": "42", "sequence_number": "7",
            "sub_sequence_number": 1, "data_base64": b64(b"two")});
        bucket.insert("relay/rejected_by_target/s/7.1.json", 100, user.to_string());
        let plain = json!({"kind": "rejected_by_target", "reason": "bad",
            "partition_key": "p-1", "data_base64": b64(b"one")});
        bucket.insert("relay/rejected_by_target/s/8.json", 100, plain.to_string());
        let (letters, _) = load(&bucket, &Filter::default(), 1_000).await.unwrap();
        let stream = MemoryStream::default();
        let report = redrive(&letters, &bucket, &producer(&stream), |_, _| {}).await;
        assert_eq!((report.objects_redriven, report.records_written), (2, 2));
        let written = stream.written.lock().unwrap().clone();
        let hash_keys = stream.hash_keys.lock().unwrap().clone();
        let entries: Vec<_> = written.into_iter().zip(hash_keys).collect();
        assert_eq!(
            entries,
            [
                (("u-2".into(), b"two".to_vec()), Some("42".into())),
                (("p-1".into(), b"one".to_vec()), None)
            ]
        );
    }

    #[tokio::test]
    async fn filters_select_by_kind_age_and_reason() {
        let keys = |filter: Filter| async move {
            let (letters, _) = load(&bucket(), &filter, 1_000).await.unwrap();
            letters.into_iter().map(|l| l.key).collect::<Vec<_>>()
        };
        let only = |kinds: Vec<Kind>| Filter {
            kinds,
            ..Filter::default()
        };
        assert_eq!(
            keys(only(vec![Kind::FailedBatch])).await,
            ["aws/lambda/u/s/2026/11/25/t-1"]
        );
        let old = Filter {
            older_than: Some(800),
            ..Filter::default()
        };
        assert_eq!(
            keys(old).await,
            [
                "relay/rejected_by_target/s/1.json",
                "aws/lambda/u/s/2026/11/25/t-1"
            ]
        );
        let reason = Filter {
            reason: Some("message missing".into()),
            ..Filter::default()
        };
        assert_eq!(keys(reason).await, ["relay/rejected_by_target/s/1.json"]);
    }

    #[tokio::test]
    async fn redrive_writes_every_record_then_moves_its_object() {
        let bucket = bucket();
        let stream = MemoryStream {
            refusals: Mutex::new(1),
            ..MemoryStream::default()
        };
        let (letters, _) = load(&bucket, &Filter::default(), 1_000).await.unwrap();
        let mut seen = Vec::new();
        let report = redrive(&letters, &bucket, &producer(&stream), |done, r| {
            seen.push((done, r.records_written))
        })
        .await;
        // The refused entry was retried (PutRecords partial failure), not lost.
        let written = stream.written.lock().unwrap().clone();
        assert_eq!(
            written,
            [
                ("r-1".into(), b"one".to_vec()),
                ("b-1".into(), b"two".to_vec()),
                ("b-2".into(), b"three".to_vec())
            ]
        );
        assert_eq!(report.objects_redriven, 2);
        assert_eq!(report.records_written, 3);
        assert_eq!(report.skipped, ["aws/lambda/async/p/2026/11/25/t-2"]);
        assert!(report.failed.is_empty());
        assert_eq!(seen, [(1, 1), (2, 3), (3, 3)]);
        let keys: Vec<_> = bucket
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(
            keys.contains(&"redriven/relay/rejected_by_target/s/1.json".to_string()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"redriven/aws/lambda/u/s/2026/11/25/t-1".to_string()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"aws/lambda/async/p/2026/11/25/t-2".to_string()),
            "{keys:?}"
        );
        // A second run finds nothing left to write.
        let (again, _) = load(
            &bucket,
            &Filter {
                kinds: vec![Kind::FailedBatch, Kind::RejectedByTarget],
                ..Filter::default()
            },
            1_000,
        )
        .await
        .unwrap();
        assert!(again.is_empty(), "{again:?}");
    }

    #[tokio::test]
    async fn an_object_stays_until_all_its_records_are_written_and_moved() {
        let bucket = bucket();
        let down = MemoryStream {
            down: true,
            ..MemoryStream::default()
        };
        let (letters, _) = load(&bucket, &Filter::default(), 1_000).await.unwrap();
        let report = redrive(&letters, &bucket, &producer(&down), |_, _| {}).await;
        assert_eq!((report.objects_redriven, report.records_written), (0, 0));
        assert_eq!(report.failed.len(), 2);
        assert!(
            report.failed[0].1.contains("ResourceNotFoundException"),
            "{:?}",
            report.failed
        );
        let refusing = bucket.refusing_moves();
        let stream = MemoryStream::default();
        let report = redrive(&letters, &refusing, &producer(&stream), |_, _| {}).await;
        assert_eq!(report.records_written, 3);
        assert_eq!(report.objects_redriven, 0);
        assert_eq!(
            report.failed[0].1,
            "CopyObject of s3://memory/relay/rejected_by_target/s/1.json failed: AccessDenied"
        );
        let left = refusing
            .list()
            .await
            .unwrap()
            .into_iter()
            .filter(|(k, _)| !k.starts_with(REDRIVEN_PREFIX))
            .count();
        assert_eq!(left, 4, "nothing moved");
    }

    #[test]
    fn ages_read_in_their_two_largest_units() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(-5), "0s");
        assert_eq!(age(42), "42s");
        assert_eq!(age(15 * 60 + 2), "15m 2s");
        assert_eq!(age(3 * 86_400 + 4 * 3_600 + 59), "3d 4h");
    }
}
