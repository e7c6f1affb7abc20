//! Answering one delivery: decode the envelope, claim the records' idempotency keys, run the
//! handler (records of one partition key in order, different keys concurrently up to the bound),
//! store the answers, log one line per record and count the outcomes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use shared::envelope::{
    DeliveryRequest, DeliveryResponse, EnvelopeError, RecordOutcome, RecordResult,
};
use shared::metrics::{target as metric, Metrics};

use crate::handler::{HandlerError, RecordHandler};
use crate::idempotency::{Claim, IdempotencyStore};
use crate::record::Record;
use crate::verdict::Verdict;

/// How long after the invocation's deadline a claim still holds, in seconds. Lambda stops the
/// invocation at its deadline, so a claim cannot be needed longer; the margin covers clock skew
/// between this container and the one that may take the claim over (up to this much skew, a
/// claim is never taken over while its handler still runs).
pub const CLAIM_MARGIN_SECONDS: i64 = 60;

/// Lambda's longest timeout (15 minutes): how long an invocation without a known deadline may run.
pub const MAX_INVOCATION_SECONDS: i64 = 900;

/// The default number of records a delivery runs at once.
pub const DEFAULT_CONCURRENCY: usize = 1;

/// Answers deliveries with a handler and, optionally, an idempotency store.
///
/// ```
/// # use relay_target::{Runner, MemoryStore, Record, RecordHandler, HandlerError, Verdict};
/// # struct H;
/// # #[async_trait::async_trait]
/// # impl RecordHandler for H {
/// #     async fn handle(&self, _: &Record) -> Result<Verdict, HandlerError> { Ok(Verdict::Ok) }
/// # }
/// let runner = Runner::new(H)
///     .store(std::sync::Arc::new(MemoryStore::new()))
///     .concurrency(8);
/// assert_eq!(runner.concurrency_bound(), 8);
/// ```
pub struct Runner<H> {
    handler: H,
    store: Option<Arc<dyn IdempotencyStore>>,
    concurrency: usize,
    ttl_hours: u64,
}

/// The invocation a delivery arrives in: its request id (the owner of its claims), when it
/// started and its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Lambda's request id: unique per invocation, so it names the owner of the claims.
    pub request_id: String,
    /// When the invocation started (latencies and claims count from here).
    pub now: DateTime<Utc>,
    /// When Lambda stops the invocation.
    pub deadline: DateTime<Utc>,
}

impl Invocation {
    /// An invocation with these fields.
    pub fn new(request_id: impl Into<String>, now: DateTime<Utc>, deadline: DateTime<Utc>) -> Self {
        Self {
            request_id: request_id.into(),
            now,
            deadline,
        }
    }

    /// The invocation Lambda describes in `context`, started `now`. A deadline that is missing
    /// or not after `now` (Lambda always sets one; a local runtime may not) counts as the longest
    /// an invocation can run, [`MAX_INVOCATION_SECONDS`] from `now`, so that a claim never expires
    /// while its handler may still run.
    pub fn from_context(context: &lambda_runtime::Context, now: DateTime<Utc>) -> Self {
        let deadline = i64::try_from(context.deadline)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .filter(|deadline| *deadline > now)
            .unwrap_or(now + chrono::Duration::seconds(MAX_INVOCATION_SECONDS));
        Self::new(context.request_id.clone(), now, deadline)
    }
}

/// The answer to one delivery and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What the target returns to the relay: one result per record, in the records' order.
    pub response: DeliveryResponse,
    /// The delivery's counts, for the summary line and the metrics line.
    pub tally: Tally,
}

/// Counts for one delivery's summary and metrics lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Records answered `ok`.
    pub ok: usize,
    /// Records answered `rejected`.
    pub rejected: usize,
    /// Records answered `retry`.
    pub retry: usize,
    /// Records answered without running the handler again (see [`metric::DUPLICATES`]).
    pub duplicates: usize,
    /// The end-to-end latencies the handler noted, in ms.
    pub latencies_ms: Vec<u64>,
    /// 1 when the claim on the idempotency store failed.
    pub claim_failures: usize,
    /// 1 when storing the answers in the idempotency store failed.
    pub complete_failures: usize,
    /// Claims taken over by another invocation before the answers were stored.
    pub lost_claims: usize,
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
            .count(metric::IDEMPOTENCY_CLAIM_FAILURES, self.claim_failures)
            .count(
                metric::IDEMPOTENCY_COMPLETE_FAILURES,
                self.complete_failures,
            )
            .count(metric::IDEMPOTENCY_LOST_CLAIMS, self.lost_claims)
    }

    /// Counts one record's verdict: its name for the log line.
    fn count(&mut self, verdict: &Verdict) -> &'static str {
        match verdict {
            Verdict::Ok => {
                self.ok += 1;
                "ok"
            }
            Verdict::Rejected(_) => {
                self.rejected += 1;
                "rejected"
            }
            Verdict::Retry(_) => {
                self.retry += 1;
                "retry"
            }
        }
    }
}

/// Why a delivery fails as a whole (a Lambda function error: the relay retries the delivery).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The payload is not an envelope this build speaks.
    #[error("invalid delivery envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The handler failed the invocation.
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

impl DeliveryError {
    /// The `errorType` Lambda reports: `InvalidEnvelope`, or the handler's own.
    pub fn error_type(&self) -> &str {
        match self {
            DeliveryError::Envelope(_) => "InvalidEnvelope",
            DeliveryError::Handler(error) => &error.error_type,
        }
    }

    /// The message Lambda reports (for a handler error, its message without the type).
    pub fn message(&self) -> String {
        match self {
            DeliveryError::Envelope(_) => self.to_string(),
            DeliveryError::Handler(error) => error.message.clone(),
        }
    }
}

/// Lambda reports the named `errorType`, not the Rust type name of a boxed error.
impl From<DeliveryError> for lambda_runtime::Diagnostic {
    fn from(error: DeliveryError) -> Self {
        Self {
            error_type: error.error_type().to_string(),
            error_message: error.message(),
        }
    }
}

/// What to do with one record of the delivery.
enum Plan {
    /// Answer this, without running the handler (`duplicate`: answered earlier).
    Answer { verdict: Verdict, duplicate: bool },
    /// Run the handler.
    Run,
    /// Answer what the record at this index (same idempotency key, earlier) gets.
    SameAs(usize),
}

/// The claims of one delivery on the store.
struct Claims<'a> {
    store: &'a dyn IdempotencyStore,
    owner: &'a str,
    /// The key of each record the handler may run (same index as the records).
    keys: Vec<Option<String>>,
}

impl<H: RecordHandler> Runner<H> {
    /// A runner for `handler`: no idempotency store, one record at a time.
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            store: None,
            concurrency: DEFAULT_CONCURRENCY,
            ttl_hours: u64::from(shared::config::IDEMPOTENCY_TTL_HOURS_SETTING.default),
        }
    }

    /// Uses `store` to run each record's effect once (see the crate's idempotency section).
    pub fn store(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses `store` if there is one.
    pub fn maybe_store(mut self, store: Option<Arc<dyn IdempotencyStore>>) -> Self {
        self.store = store;
        self
    }

    /// Runs up to `n` records at once (0 counts as 1). Records of one partition key always run
    /// one after the other, in the delivery's order.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Keeps stored answers for `hours` (default `IDEMPOTENCY_TTL_HOURS`'s default).
    pub fn ttl_hours(mut self, hours: u64) -> Self {
        self.ttl_hours = hours;
        self
    }

    /// How many records run at once, at most.
    pub fn concurrency_bound(&self) -> usize {
        self.concurrency
    }

    /// Whether an idempotency store is configured.
    pub fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Answers one delivery as the Lambda runtime hands it over (parsed JSON).
    pub async fn answer(
        &self,
        payload: serde_json::Value,
        invocation: &Invocation,
    ) -> Result<Answer, DeliveryError> {
        self.answer_request(DeliveryRequest::from_value(payload)?, invocation)
            .await
    }

    /// Answers one delivery given as bytes.
    pub async fn answer_bytes(
        &self,
        payload: &[u8],
        invocation: &Invocation,
    ) -> Result<Answer, DeliveryError> {
        self.answer_request(DeliveryRequest::decode(payload)?, invocation)
            .await
    }

    /// Answers one decoded delivery.
    pub async fn answer_request(
        &self,
        request: DeliveryRequest,
        invocation: &Invocation,
    ) -> Result<Answer, DeliveryError> {
        let records: Vec<Result<Record, String>> = (request.records.iter())
            .map(|r| Record::decode(r, &request.delivery_id))
            .collect();
        let mut tally = Tally::default();
        let (plans, claims) = self.plan(&records, invocation, &mut tally).await;
        let (verdicts, failure) = self.run(&records, &plans).await;
        if let Some(claims) = &claims {
            let keep_until = invocation.now.timestamp() + self.ttl_seconds();
            claims
                .complete(&verdicts, keep_until, &mut tally, failure.is_some())
                .await;
        }
        if let Some(error) = failure {
            return Err(error.into());
        }
        let results = (request.records.iter().enumerate())
            .map(|(i, relayed)| {
                let (verdict, duplicate) = match &plans[i] {
                    Plan::Answer { verdict, duplicate } => (verdict.clone(), *duplicate),
                    Plan::Run => (answer_of(&verdicts, i), false),
                    Plan::SameAs(first) => (answer_of(&verdicts, *first), true),
                };
                let record = records[i].as_ref().ok();
                let mut notes = record.map(Record::noted).unwrap_or_default();
                if notes.record_id.is_none() {
                    // Not run (answered from the store, or the same key as an earlier record):
                    // the handler still names it.
                    notes.record_id = record.and_then(|r| self.handler.record_id(r));
                }
                let duplicate = duplicate || notes.duplicate;
                tally.duplicates += usize::from(duplicate);
                tally.latencies_ms.extend(notes.latency_ms);
                let status = tally.count(&verdict);
                let reason = match &verdict {
                    Verdict::Ok => None,
                    Verdict::Rejected(reason) | Verdict::Retry(reason) => Some(reason.as_str()),
                };
                tracing::info!(
                    record_id = %notes.record_id.as_deref().unwrap_or(&relayed.partition_key),
                    event_id = %relayed.event_id,
                    sequence_number = %relayed.sequence_number,
                    sub_sequence_number = relayed.sub_sequence_number,
                    delivery_id = %request.delivery_id,
                    outcome = status,
                    latency_ms = notes.latency_ms,
                    since_arrival_ms = since_arrival_ms(record, invocation.now),
                    duplicate,
                    reason,
                    "record processed"
                );
                RecordResult::answering(relayed, outcome(verdict))
            })
            .collect();
        Ok(Answer {
            response: DeliveryResponse::new(results),
            tally,
        })
    }

    fn ttl_seconds(&self) -> i64 {
        i64::try_from(self.ttl_hours.saturating_mul(3600)).unwrap_or(i64::MAX / 2)
    }

    /// What to do with each record: claims its idempotency keys when there is a store.
    async fn plan<'a>(
        &'a self,
        records: &[Result<Record, String>],
        invocation: &'a Invocation,
        tally: &mut Tally,
    ) -> (Vec<Plan>, Option<Claims<'a>>) {
        let undecodable = |record: &Result<Record, String>| {
            record.as_ref().err().map(|reason| Plan::Answer {
                verdict: Verdict::Rejected(reason.clone()),
                duplicate: false,
            })
        };
        let Some(store) = self.store.as_deref() else {
            let plans = records.iter().map(|r| undecodable(r).unwrap_or(Plan::Run));
            return (plans.collect(), None);
        };
        let keys: Vec<Option<String>> = (records.iter())
            .map(|r| r.as_ref().ok().map(|r| self.handler.idempotency_key(r)))
            .collect();
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        let mut distinct: Vec<String> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                first_of.entry(key.as_str()).or_insert_with(|| {
                    distinct.push(key.clone());
                    i
                });
            }
        }
        let owner = invocation.request_id.as_str();
        let expires_at = invocation.deadline.timestamp() + CLAIM_MARGIN_SECONDS;
        let claimed = match store
            .claim(&distinct, owner, invocation.now.timestamp(), expires_at)
            .await
        {
            Ok(claimed) if claimed.len() == distinct.len() => Ok(claimed),
            Ok(claimed) => Err(format!(
                "the store answered {} claims for {} keys",
                claimed.len(),
                distinct.len()
            )),
            Err(error) => Err(error.to_string()),
        };
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(
                    error = %error,
                    keys = distinct.len(),
                    "idempotency claim failed; every record is answered retry, none is run"
                );
                tally.claim_failures = 1;
                let retry = |r: &Result<Record, String>| {
                    undecodable(r).unwrap_or_else(|| Plan::Answer {
                        verdict: Verdict::Retry(format!("idempotency store unavailable: {error}")),
                        duplicate: false,
                    })
                };
                return (records.iter().map(retry).collect(), None);
            }
        };
        let claim_of: HashMap<&str, &Claim> =
            distinct.iter().map(String::as_str).zip(&claimed).collect();
        let plans: Vec<Plan> = (keys.iter().enumerate())
            .map(|(i, key)| {
                let Some(key) = key else {
                    return undecodable(&records[i]).unwrap_or(Plan::Run);
                };
                match claim_of[key.as_str()] {
                    Claim::Completed(verdict) => Plan::Answer {
                        verdict: verdict.clone(),
                        duplicate: true,
                    },
                    Claim::InProgress => Plan::Answer {
                        verdict: Verdict::Retry(
                            "in progress elsewhere: another invocation holds the claim on this \
                             record's idempotency key until it completes or expires"
                                .into(),
                        ),
                        duplicate: false,
                    },
                    Claim::Claimed if first_of[key.as_str()] == i => Plan::Run,
                    Claim::Claimed => Plan::SameAs(first_of[key.as_str()]),
                }
            })
            .collect();
        // Only the keys this delivery claimed are completed or released.
        let keys = (keys.into_iter().zip(&plans))
            .map(|(key, plan)| key.filter(|_| matches!(plan, Plan::Run)))
            .collect();
        let claims = Claims { store, owner, keys };
        (plans, Some(claims))
    }

    /// Runs the handler on the records planned to run: the records of one partition key one
    /// after the other in order, different keys concurrently, at most `concurrency` at once.
    /// After a handler error no further record starts (those running finish); the error of the
    /// earliest record is returned.
    async fn run(
        &self,
        records: &[Result<Record, String>],
        plans: &[Plan],
    ) -> (Vec<Option<Verdict>>, Option<HandlerError>) {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_of: HashMap<&str, usize> = HashMap::new();
        for (i, plan) in plans.iter().enumerate() {
            if let (Plan::Run, Ok(record)) = (plan, &records[i]) {
                let group = *group_of.entry(record.partition_key()).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[group].push(i);
            }
        }
        let failed = AtomicBool::new(false);
        let failed = &failed;
        let outcomes: Vec<Vec<(usize, Result<Verdict, HandlerError>)>> = stream::iter(groups)
            .map(|group| async move {
                let mut answered = Vec::new();
                for i in group {
                    let Ok(record) = &records[i] else { continue };
                    if failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let outcome = self.handler.handle(record).await;
                    let stop = outcome.is_err();
                    answered.push((i, outcome));
                    if stop {
                        failed.store(true, Ordering::SeqCst);
                        break;
                    }
                }
                answered
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut verdicts: Vec<Option<Verdict>> = vec![None; records.len()];
        let mut errors: Vec<(usize, HandlerError)> = Vec::new();
        for (i, outcome) in outcomes.into_iter().flatten() {
            match outcome {
                Ok(verdict) => verdicts[i] = Some(verdict),
                Err(error) => errors.push((i, error)),
            }
        }
        let failure = errors.into_iter().min_by_key(|(i, _)| *i);
        (verdicts, failure.map(|(_, error)| error))
    }
}

impl Claims<'_> {
    /// Stores the `ok` answers of the records that ran and releases the other claims (answered
    /// `rejected` or `retry`, or not run because the handler failed), in one call. A rejected
    /// record had no effect, so it is not remembered: a redrive after the cause is fixed (a
    /// clock that ran ahead, a bug in the handler) runs it again instead of rejecting it from
    /// the store until the answer expires.
    async fn complete(
        &self,
        verdicts: &[Option<Verdict>],
        keep_until: i64,
        tally: &mut Tally,
        handler_failed: bool,
    ) {
        let mut completed = Vec::new();
        let mut released = Vec::new();
        for (key, verdict) in self.keys.iter().zip(verdicts) {
            match (key, verdict) {
                (None, _) => {}
                (Some(key), Some(Verdict::Ok)) => completed.push((key.clone(), Verdict::Ok)),
                (Some(key), _) => released.push(key.clone()),
            }
        }
        if completed.is_empty() && released.is_empty() {
            return;
        }
        match (self.store)
            .complete(self.owner, &completed, &released, keep_until)
            .await
        {
            Ok(completion) if completion.lost_claims.is_empty() => {}
            Ok(completion) => {
                tally.lost_claims = completion.lost_claims.len();
                tracing::warn!(
                    keys = ?completion.lost_claims,
                    "idempotency claims lost: another invocation took them over after they \
                     expired, so these records may have run twice; their answers stand but are \
                     not stored (the invocation ran past its claims' expiry)"
                );
            }
            Err(error) => {
                tally.complete_failures = 1;
                tracing::error!(
                    error = %error,
                    completed = completed.len(),
                    released = released.len(),
                    handler_failed,
                    "idempotency complete failed: the answers stand, but a redelivery after the \
                     claims expire runs these records again"
                );
            }
        }
    }
}

/// The answer of the record at `index`, one planned to run (`Plan::Run`: a `Plan::SameAs` points
/// at one). A record planned to run without a verdict was not run because the handler failed,
/// and then no answer is built; `retry` keeps this function total.
fn answer_of(verdicts: &[Option<Verdict>], index: usize) -> Verdict {
    verdicts[index]
        .clone()
        .unwrap_or_else(|| Verdict::Retry("not run".into()))
}

fn outcome(verdict: Verdict) -> RecordOutcome {
    match verdict {
        Verdict::Ok => RecordOutcome::Ok,
        Verdict::Rejected(reason) => RecordOutcome::Rejected { reason },
        Verdict::Retry(reason) => RecordOutcome::Retry { reason },
    }
}

/// Milliseconds from the record's arrival in the stream to `now`; `None` (the field is left out
/// of the log line) when the envelope does not say when it arrived. An arrival later than `now`
/// (Kinesis's clock ahead of this container's) is clamped to 0.
fn since_arrival_ms(record: Option<&Record>, now: DateTime<Utc>) -> Option<i64> {
    let arrival = record?.approximate_arrival()?;
    Some((now - arrival).num_milliseconds().max(0))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use shared::envelope::{RecordData, RelayedRecord, ENVELOPE_VERSION};

    use super::*;
    use crate::idempotency::memory::MemoryStore;
    use crate::idempotency::{Completion, StoreError};

    /// Answers by the record's data: `ok`, `reject`, `retry`, `fail` (a handler error); anything
    /// else is `ok`. Records every call and how many ran at once.
    #[derive(Default)]
    struct Scripted {
        calls: Mutex<Vec<(String, String)>>,
        running: Mutex<(usize, usize)>,
    }

    impl Scripted {
        /// (partition key, sequence number) of each call, in call order.
        fn calls(&self) -> Vec<(String, String)> {
            self.calls.lock().unwrap().clone()
        }

        fn most_at_once(&self) -> usize {
            self.running.lock().unwrap().1
        }
    }

    #[async_trait::async_trait]
    impl RecordHandler for Scripted {
        async fn handle(&self, record: &Record) -> Result<Verdict, HandlerError> {
            {
                let mut running = self.running.lock().unwrap();
                running.0 += 1;
                running.1 = running.1.max(running.0);
            }
            self.calls.lock().unwrap().push((
                record.partition_key().to_string(),
                record.sequence_number().to_string(),
            ));
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            self.running.lock().unwrap().0 -= 1;
            let data = String::from_utf8_lossy(record.data()).to_string();
            match data.as_str() {
                "reject" => Ok(Verdict::Rejected("scripted rejection".into())),
                "retry" => Ok(Verdict::Retry("scripted retry".into())),
                "fail" => Err(HandlerError::new(
                    "ScriptedFailure",
                    format!("record {}", record.sequence_number()),
                )),
                "noted" => {
                    record.set_record_id("app-id-7");
                    record.set_end_to_end_latency_ms(42);
                    record.mark_duplicate();
                    Ok(Verdict::Ok)
                }
                _ => Ok(Verdict::Ok),
            }
        }
    }

    /// A claim's keys, owner, now and expiry.
    type ClaimCall = (Vec<String>, String, i64, i64);
    /// A completion's answers, released keys and keep_until.
    type CompleteCall = (Vec<(String, Verdict)>, Vec<String>, i64);

    /// A store around a MemoryStore that records its calls and fails or loses claims on demand.
    #[derive(Default)]
    struct Store {
        inner: MemoryStore,
        fail_claim: bool,
        fail_complete: bool,
        /// Before completing, another owner takes every claim over (as after an expiry).
        steal: bool,
        /// Answers one claim fewer than the keys it was asked for.
        short_claims: bool,
        claims: Mutex<Vec<ClaimCall>>,
        completes: Mutex<Vec<CompleteCall>>,
    }

    fn failure(operation: &str) -> StoreError {
        StoreError::Request {
            table: "t".into(),
            operation: operation.into(),
            cause: "throttled".into(),
        }
    }

    #[async_trait::async_trait]
    impl IdempotencyStore for Store {
        async fn claim(
            &self,
            keys: &[String],
            owner: &str,
            now: i64,
            expires_at: i64,
        ) -> Result<Vec<Claim>, StoreError> {
            let call = (keys.to_vec(), owner.to_string(), now, expires_at);
            self.claims.lock().unwrap().push(call);
            if self.fail_claim {
                return Err(failure("claim"));
            }
            let mut claims = self.inner.claim(keys, owner, now, expires_at).await?;
            if self.short_claims {
                claims.pop();
            }
            Ok(claims)
        }

        async fn complete(
            &self,
            owner: &str,
            completed: &[(String, Verdict)],
            released: &[String],
            keep_until: i64,
        ) -> Result<Completion, StoreError> {
            let call = (completed.to_vec(), released.to_vec(), keep_until);
            self.completes.lock().unwrap().push(call);
            if self.fail_complete {
                return Err(failure("complete"));
            }
            if self.steal {
                let keys: Vec<String> = completed.iter().map(|(k, _)| k.clone()).collect();
                self.inner
                    .claim(&keys, "thief", i64::MAX / 4, i64::MAX / 2)
                    .await?;
            }
            self.inner
                .complete(owner, completed, released, keep_until)
                .await
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T05:00:00Z".parse().unwrap()
    }

    fn invocation(request_id: &str) -> Invocation {
        Invocation::new(request_id, now(), now() + chrono::Duration::seconds(30))
    }

    /// A delivery of (partition key, data) records, sequence numbers 0, 1, ...
    fn delivery(records: &[(&str, &str)]) -> DeliveryRequest {
        let records = (records.iter().enumerate())
            .map(|(i, (key, data))| RelayedRecord {
                sequence_number: i.to_string(),
                sub_sequence_number: None,
                partition_key: key.to_string(),
                explicit_hash_key: None,
                event_id: format!("shardId-000000000000:{i}"),
                approximate_arrival_ms: Some(now().timestamp_millis() - 1_000),
                data: RecordData::encode(data.as_bytes()),
            })
            .collect();
        DeliveryRequest::new("d-1", records)
    }

    fn statuses(answer: &Answer) -> Vec<String> {
        (answer.response.results.iter())
            .map(|r| match &r.outcome {
                RecordOutcome::Ok => "ok".to_string(),
                RecordOutcome::Rejected { reason } => format!("rejected: {reason}"),
                RecordOutcome::Retry { reason } => format!("retry: {reason}"),
            })
            .collect()
    }

    fn with_store(store: Arc<Store>) -> Runner<Scripted> {
        Runner::new(Scripted::default()).store(store).ttl_hours(100)
    }

    fn keys_of(runner: &Runner<Scripted>, request: &DeliveryRequest) -> Vec<String> {
        (request.records.iter())
            .map(|r| {
                runner
                    .handler()
                    .idempotency_key(&Record::decode(r, "d").unwrap())
            })
            .collect()
    }

    #[tokio::test]
    async fn records_are_answered_in_their_order_with_their_sequence_numbers() {
        let runner = Runner::new(Scripted::default()).concurrency(4);
        let request = delivery(&[("a", "ok"), ("b", "reject"), ("a", "retry"), ("c", "x")]);
        let answer = runner
            .answer_request(request, &invocation("r"))
            .await
            .unwrap();
        assert_eq!(
            statuses(&answer),
            [
                "ok",
                "rejected: scripted rejection",
                "retry: scripted retry",
                "ok"
            ]
        );
        let sequence_numbers: Vec<&str> = (answer.response.results.iter())
            .map(|r| r.sequence_number.as_str())
            .collect();
        assert_eq!(sequence_numbers, ["0", "1", "2", "3"]);
        assert_eq!(
            (answer.tally.ok, answer.tally.rejected, answer.tally.retry),
            (2, 1, 1)
        );
        assert_eq!(answer.response.version, ENVELOPE_VERSION);
    }

    #[tokio::test]
    async fn the_user_records_of_an_aggregate_are_answered_each_by_its_sub_sequence_number() {
        let runner = Runner::new(Scripted::default()).concurrency(4);
        let mut request = delivery(&[("a", "ok"), ("b", "reject"), ("c", "ok"), ("d", "x")]);
        // The first three are user records of aggregate 7; the last a plain record.
        for (sub, record) in request.records.iter_mut().take(3).enumerate() {
            record.sequence_number = "7".into();
            record.sub_sequence_number = Some(sub as u64);
        }
        let answer = runner
            .answer_request(request, &invocation("r"))
            .await
            .unwrap();
        let named: Vec<String> = (answer.response.results.iter())
            .map(|r| r.identity().to_string())
            .collect();
        assert_eq!(named, ["7/0", "7/1", "7/2", "3"]);
        assert_eq!(
            statuses(&answer),
            ["ok", "rejected: scripted rejection", "ok", "ok"]
        );
    }

    #[tokio::test]
    async fn without_a_store_every_record_runs_even_a_repeated_one() {
        let runner = Runner::new(Scripted::default());
        let request = delivery(&[("a", "ok"), ("a", "ok")]);
        runner
            .answer_request(request.clone(), &invocation("r1"))
            .await
            .unwrap();
        runner
            .answer_request(request, &invocation("r2"))
            .await
            .unwrap();
        assert_eq!(runner.handler().calls().len(), 4);
    }

    #[tokio::test]
    async fn a_wrong_envelope_version_is_refused_by_name() {
        let runner = Runner::new(Scripted::default());
        let v2 = br#"{"version":2,"delivery_id":"d","records":[]}"#;
        let error = runner.answer_bytes(v2, &invocation("r")).await.unwrap_err();
        assert_eq!(error.error_type(), "InvalidEnvelope");
        assert_eq!(
            error.to_string(),
            format!(
                "invalid delivery envelope: envelope version 2 is not supported \
                 (this build speaks version {ENVELOPE_VERSION}); \
                 deploy the relay and the target from the same release"
            )
        );
        let value = serde_json::json!([]);
        let error = runner.answer(value, &invocation("r")).await.unwrap_err();
        assert!(matches!(
            error,
            DeliveryError::Envelope(EnvelopeError::NoVersion(_))
        ));
        let diagnostic = lambda_runtime::Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "InvalidEnvelope");
    }

    #[tokio::test]
    async fn a_handler_error_fails_the_delivery_with_its_error_type() {
        let runner = Runner::new(Scripted::default());
        let request = delivery(&[("a", "ok"), ("b", "fail"), ("c", "ok")]);
        let error = runner
            .answer_request(request, &invocation("r"))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "ScriptedFailure");
        let diagnostic = lambda_runtime::Diagnostic::from(error);
        assert_eq!(
            (
                diagnostic.error_type.as_str(),
                diagnostic.error_message.as_str()
            ),
            ("ScriptedFailure", "record 1")
        );
        // One at a time: the record after the failing one never starts.
        let ran: Vec<String> = runner.handler().calls().into_iter().map(|c| c.1).collect();
        assert_eq!(ran, ["0", "1"]);
    }

    #[tokio::test]
    async fn after_a_handler_error_no_record_starts_and_the_earliest_error_is_reported() {
        let runner = Runner::new(Scripted::default()).concurrency(2);
        // Keys a and b run side by side; both fail; a's later records never start.
        let request = delivery(&[("a", "fail"), ("b", "fail"), ("a", "ok"), ("b", "ok")]);
        let error = runner
            .answer_request(request, &invocation("r"))
            .await
            .unwrap_err();
        assert_eq!(error.message(), "record 0");
        let ran: Vec<String> = runner.handler().calls().into_iter().map(|c| c.1).collect();
        assert_eq!(ran, ["0", "1"]);
    }

    #[tokio::test]
    async fn records_of_one_key_run_in_order_and_keys_concurrently_within_the_bound() {
        for bound in [1, 2, 3] {
            let runner = Runner::new(Scripted::default()).concurrency(bound);
            let keys = ["a", "b", "c", "d", "a", "b", "a", "e", "c", "a"];
            let records: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "ok")).collect();
            let answer = runner
                .answer_request(delivery(&records), &invocation("r"))
                .await
                .unwrap();
            assert_eq!(answer.tally.ok, keys.len());
            let handler = runner.handler();
            assert_eq!(handler.most_at_once(), bound, "bound {bound}");
            let calls = handler.calls();
            assert_eq!(calls.len(), keys.len());
            for key in ["a", "b", "c"] {
                let order: Vec<usize> = (calls.iter())
                    .filter(|(k, _)| k == key)
                    .map(|(_, s)| s.parse().unwrap())
                    .collect();
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(order, sorted, "key {key}, bound {bound}");
            }
        }
    }

    #[tokio::test]
    async fn records_of_one_key_never_overlap() {
        let runner = Runner::new(Scripted::default()).concurrency(8);
        let records = [("a", "ok"); 5];
        runner
            .answer_request(delivery(&records), &invocation("r"))
            .await
            .unwrap();
        assert_eq!(runner.handler().most_at_once(), 1);
        assert_eq!(
            Runner::new(Scripted::default())
                .concurrency(0)
                .concurrency_bound(),
            1
        );
    }

    #[tokio::test]
    async fn each_record_gets_a_log_line_with_its_ids_and_what_the_handler_noted() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let runner = Runner::new(Scripted::default());
        let request = delivery(&[("pk-0", "ok"), ("pk-1", "reject"), ("pk-2", "noted")]);
        runner
            .answer_request(request, &invocation("r"))
            .await
            .unwrap();
        let lines = logs.with_message("record processed");
        assert_eq!(lines.len(), 3, "{lines:?}");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(
                line["event_id"],
                format!("shardId-000000000000:{i}"),
                "{line}"
            );
            assert_eq!(line["sequence_number"], i.to_string(), "{line}");
            assert_eq!(line["delivery_id"], "d-1", "{line}");
            assert_eq!(line["since_arrival_ms"], 1_000, "{line}");
        }
        assert_eq!(
            lines[0]["record_id"], "pk-0",
            "the partition key by default"
        );
        assert_eq!(lines[0]["outcome"], "ok");
        assert_eq!(lines[0]["duplicate"], false);
        assert!(lines[0].get("reason").is_none(), "{}", lines[0]);
        assert!(lines[0].get("latency_ms").is_none(), "{}", lines[0]);
        assert_eq!(lines[1]["outcome"], "rejected");
        assert_eq!(lines[1]["reason"], "scripted rejection");
        assert_eq!(lines[2]["record_id"], "app-id-7");
        assert_eq!(lines[2]["latency_ms"], 42);
        assert_eq!(lines[2]["duplicate"], true);
    }

    #[tokio::test]
    async fn a_delivery_gives_one_metrics_line_of_its_counts() {
        let runner = Runner::new(Scripted::default());
        let request = delivery(&[("a", "ok"), ("b", "reject"), ("c", "retry"), ("d", "noted")]);
        let answer = runner
            .answer_request(request, &invocation("r"))
            .await
            .unwrap();
        let line = answer.tally.metrics("p-target").to_value(0);
        assert_eq!(line["FunctionName"], "p-target");
        for (name, value) in [
            ("RecordsOk", 2),
            ("RecordsRejected", 1),
            ("RecordsRetry", 1),
            ("DuplicatesRecognised", 1),
            ("IdempotencyClaimFailures", 0),
            ("IdempotencyCompleteFailures", 0),
            ("IdempotencyLostClaims", 0),
        ] {
            assert_eq!(line[name], value, "{name}: {line}");
        }
        assert_eq!(line["EndToEndLatency"], serde_json::json!([42]));
    }

    #[tokio::test]
    async fn claims_run_until_the_deadline_plus_the_margin_and_answers_are_kept_for_the_ttl() {
        let store = Arc::new(Store::default());
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "ok"), ("b", "reject"), ("c", "retry")]);
        let keys = keys_of(&runner, &request);
        runner
            .answer_request(request, &invocation("r-1"))
            .await
            .unwrap();
        let claims = store.claims.lock().unwrap().clone();
        let expires_at = now().timestamp() + 30 + CLAIM_MARGIN_SECONDS;
        assert_eq!(
            claims,
            [(keys.clone(), "r-1".into(), now().timestamp(), expires_at)]
        );
        let completes = store.completes.lock().unwrap().clone();
        // Only the ok answer is stored; the rejected and the retried records are released.
        let stored = vec![(keys[0].clone(), Verdict::Ok)];
        let keep_until = now().timestamp() + 100 * 3600;
        let released = vec![keys[1].clone(), keys[2].clone()];
        assert_eq!(completes, [(stored, released, keep_until)]);
        assert_eq!(
            store.inner.claimed_by(&keys[1]),
            None,
            "a rejection is released"
        );
        assert_eq!(store.inner.completed(&keys[0]), Some(Verdict::Ok));
        assert_eq!(
            store.inner.claimed_by(&keys[2]),
            None,
            "a retry is released"
        );
    }

    #[tokio::test]
    async fn a_completed_record_is_answered_its_stored_verdict_without_running() {
        let store = Arc::new(Store::default());
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "ok"), ("b", "reject"), ("c", "retry")]);
        runner
            .answer_request(request.clone(), &invocation("r-1"))
            .await
            .unwrap();
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let again = runner
            .answer_request(request, &invocation("r-2"))
            .await
            .unwrap();
        assert_eq!(
            statuses(&again),
            [
                "ok",
                "rejected: scripted rejection",
                "retry: scripted retry"
            ]
        );
        let ran: Vec<String> = runner.handler().calls().into_iter().map(|c| c.1).collect();
        assert_eq!(
            ran,
            ["0", "1", "2", "1", "2"],
            "only the ok answer is stored: the rejected and the retried records run again"
        );
        assert_eq!(again.tally.duplicates, 1);
        let duplicates: Vec<bool> = (logs.with_message("record processed").iter())
            .map(|l| l["duplicate"].as_bool().unwrap())
            .collect();
        assert_eq!(duplicates, [true, false, false]);
    }

    #[tokio::test]
    async fn a_record_claimed_elsewhere_is_answered_retry_without_running() {
        let store = Arc::new(Store::default());
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "ok"), ("b", "ok")]);
        let keys = keys_of(&runner, &request);
        let later = now().timestamp() + 600;
        store
            .inner
            .claim(&keys[1..], "other", 0, later)
            .await
            .unwrap();
        let answer = runner
            .answer_request(request, &invocation("r-1"))
            .await
            .unwrap();
        let statuses = statuses(&answer);
        assert_eq!(statuses[0], "ok");
        assert!(
            statuses[1].starts_with("retry: in progress elsewhere"),
            "{}",
            statuses[1]
        );
        assert_eq!(runner.handler().calls().len(), 1);
        assert_eq!(
            store.inner.claimed_by(&keys[1]).as_deref(),
            Some("other"),
            "left alone"
        );
        let completes = store.completes.lock().unwrap().clone();
        assert_eq!(completes[0].1, Vec::<String>::new(), "not ours to release");
    }

    #[tokio::test]
    async fn a_key_twice_in_a_delivery_runs_once_and_both_records_get_its_answer() {
        let store = Arc::new(Store::default());
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "reject"), ("b", "ok"), ("a", "reject")]);
        let answer = runner
            .answer_request(request, &invocation("r-1"))
            .await
            .unwrap();
        assert_eq!(
            statuses(&answer),
            [
                "rejected: scripted rejection",
                "ok",
                "rejected: scripted rejection"
            ]
        );
        let ran: Vec<String> = runner.handler().calls().into_iter().map(|c| c.1).collect();
        assert_eq!(ran, ["0", "1"]);
        assert_eq!(answer.tally.duplicates, 1);
        assert_eq!(store.claims.lock().unwrap()[0].0.len(), 2, "distinct keys");
    }

    #[tokio::test]
    async fn a_failed_claim_answers_every_record_retry_and_runs_none() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let store = Arc::new(Store {
            fail_claim: true,
            ..Store::default()
        });
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "ok"), ("b", "ok")]);
        let answer = runner
            .answer_request(request, &invocation("r-1"))
            .await
            .unwrap();
        let expected = "retry: idempotency store unavailable: idempotency store t: claim failed: \
                        throttled";
        assert_eq!(statuses(&answer), [expected, expected]);
        assert!(runner.handler().calls().is_empty());
        assert!(
            store.completes.lock().unwrap().is_empty(),
            "nothing to complete"
        );
        assert_eq!(answer.tally.claim_failures, 1);
        let errors: Vec<_> = (logs.lines().into_iter())
            .filter(|l| l["level"] == "ERROR")
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0]["error"].as_str().unwrap().contains("throttled"));
    }

    #[tokio::test]
    async fn a_handler_error_stores_what_ran_releases_the_rest_and_fails_the_invocation() {
        let store = Arc::new(Store::default());
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "ok"), ("b", "fail"), ("c", "ok")]);
        let keys = keys_of(&runner, &request);
        let error = runner
            .answer_request(request, &invocation("r-1"))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "ScriptedFailure");
        let completes = store.completes.lock().unwrap().clone();
        let released = vec![keys[1].clone(), keys[2].clone()];
        assert_eq!(completes[0].0, [(keys[0].clone(), Verdict::Ok)]);
        assert_eq!(completes[0].1, released);
        assert!(
            store.inner.claimed_by(&keys[1]).is_none()
                && store.inner.claimed_by(&keys[2]).is_none()
        );
    }

    #[tokio::test]
    async fn a_failed_completion_keeps_the_verdicts_logs_an_error_and_counts_it() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let store = Arc::new(Store {
            fail_complete: true,
            ..Store::default()
        });
        let runner = with_store(store);
        let request = delivery(&[("a", "ok"), ("b", "reject")]);
        let answer = runner
            .answer_request(request, &invocation("r-1"))
            .await
            .unwrap();
        assert_eq!(statuses(&answer), ["ok", "rejected: scripted rejection"]);
        assert_eq!(answer.tally.complete_failures, 1);
        let line = answer.tally.metrics("f").to_value(0);
        assert_eq!(line["IdempotencyCompleteFailures"], 1);
        let errors: Vec<_> = (logs.lines().into_iter())
            .filter(|l| l["level"] == "ERROR")
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("complete failed"));
    }

    #[test]
    fn the_runner_reports_its_concurrency_bound_and_whether_it_has_a_store() {
        let runner = Runner::new(Scripted::default()).concurrency(4);
        assert_eq!(runner.concurrency_bound(), 4);
        assert!(!runner.has_store());
        assert_eq!(
            Runner::new(Scripted::default())
                .concurrency(0)
                .concurrency_bound(),
            1,
            "0 counts as 1"
        );
        assert!(with_store(Arc::new(Store::default())).has_store());
        let none = Runner::new(Scripted::default()).maybe_store(None);
        assert!(!none.has_store());
    }

    #[test]
    fn a_ttl_too_long_for_seconds_is_kept_far_in_the_future() {
        let runner = Runner::new(Scripted::default()).ttl_hours(24);
        assert_eq!(runner.ttl_seconds(), 86_400);
        let runner = Runner::new(Scripted::default()).ttl_hours(u64::MAX);
        assert_eq!(runner.ttl_seconds(), i64::MAX / 2);
        // Still far from overflowing when added to now.
        assert!(now()
            .timestamp()
            .checked_add(runner.ttl_seconds())
            .is_some());
    }

    #[tokio::test]
    async fn a_store_answering_too_few_claims_answers_every_record_retry_and_runs_none() {
        let store = Arc::new(Store {
            short_claims: true,
            ..Store::default()
        });
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "ok"), ("b", "ok")]);
        let answer = runner
            .answer_request(request, &invocation("r"))
            .await
            .unwrap();
        let retry = "retry: idempotency store unavailable: the store answered 1 claims for 2 keys";
        assert_eq!(statuses(&answer), [retry, retry]);
        assert_eq!(answer.tally.claim_failures, 1);
        assert!(runner.handler().calls().is_empty());
        assert!(store.completes.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_clean_completion_warns_of_no_lost_claims() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let store = Arc::new(Store::default());
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "ok"), ("b", "reject")]);
        let answer = runner
            .answer_request(request, &invocation("r"))
            .await
            .unwrap();
        assert_eq!(answer.tally.lost_claims, 0);
        assert_eq!(store.completes.lock().unwrap().len(), 1);
        let warnings: Vec<_> = (logs.lines().into_iter())
            .filter(|l| l["level"] == "WARN")
            .collect();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[tokio::test]
    async fn lost_claims_keep_the_verdicts_with_a_warning_and_a_count() {
        let (logs, _guard) = shared::telemetry::CapturedLogs::start();
        let store = Arc::new(Store {
            steal: true,
            ..Store::default()
        });
        let runner = with_store(store.clone());
        let request = delivery(&[("a", "ok"), ("b", "ok")]);
        let keys = keys_of(&runner, &request);
        let answer = runner
            .answer_request(request, &invocation("r-1"))
            .await
            .unwrap();
        assert_eq!(statuses(&answer), ["ok", "ok"]);
        assert_eq!(answer.tally.lost_claims, 2);
        assert_eq!(
            answer.tally.metrics("f").to_value(0)["IdempotencyLostClaims"],
            2
        );
        assert_eq!(store.inner.claimed_by(&keys[0]).as_deref(), Some("thief"));
        let warnings: Vec<_> = (logs.lines().into_iter())
            .filter(|l| l["level"] == "WARN")
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("claims lost"));
    }

    #[test]
    fn the_default_key_survives_a_redrive_and_separates_key_from_data() {
        let record = |sequence_number: &str, key: &str, data: &[u8]| {
            let relayed = RelayedRecord {
                sequence_number: sequence_number.into(),
                sub_sequence_number: None,
                partition_key: key.into(),
                explicit_hash_key: None,
                event_id: format!("shardId-000000000001:{sequence_number}"),
                approximate_arrival_ms: None,
                data: RecordData::encode(data),
            };
            crate::default_key(&Record::decode(&relayed, sequence_number).unwrap())
        };
        let original = record("1", "ab", b"c");
        assert_eq!(
            original,
            record("99", "ab", b"c"),
            "new sequence number, same key"
        );
        assert_ne!(original, record("1", "a", b"bc"));
        assert_ne!(original, record("1", "ab", b"d"));
        assert!(
            original.starts_with("sha256:") && original.len() == 7 + 64,
            "{original}"
        );
    }

    #[test]
    fn latency_since_arrival_counts_from_the_arrival_in_the_stream_and_is_clamped() {
        let arriving = |approximate_arrival_ms| {
            let relayed = RelayedRecord {
                sequence_number: "1".into(),
                sub_sequence_number: None,
                partition_key: "a".into(),
                explicit_hash_key: None,
                event_id: "shardId-000000000000:1".into(),
                approximate_arrival_ms,
                data: RecordData::encode(b""),
            };
            since_arrival_ms(Some(&Record::decode(&relayed, "d").unwrap()), now())
        };
        let now_ms = now().timestamp_millis();
        assert_eq!(arriving(Some(now_ms - 1_234)), Some(1_234));
        assert_eq!(arriving(Some(now_ms)), Some(0));
        assert_eq!(
            arriving(Some(now_ms + 500)),
            Some(0),
            "a future arrival is clamped"
        );
        assert_eq!(arriving(None), None, "absent: omitted");
        assert_eq!(arriving(Some(i64::MAX)), None);
        assert_eq!(since_arrival_ms(None, now()), None, "an undecodable record");
    }

    #[test]
    fn the_invocation_takes_its_owner_and_deadline_from_lambdas_context() {
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-9".into();
        context.deadline = now().timestamp_millis() as u64 + 15_000;
        let invocation = Invocation::from_context(&context, now());
        assert_eq!(invocation.request_id, "req-9");
        assert_eq!(invocation.deadline, now() + chrono::Duration::seconds(15));
        for missing in [0, now().timestamp_millis() as u64] {
            context.deadline = missing;
            let invocation = Invocation::from_context(&context, now());
            let longest = now() + chrono::Duration::seconds(MAX_INVOCATION_SECONDS);
            assert_eq!(invocation.deadline, longest, "deadline {missing}");
        }
    }
}
