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

    /// The invocation Lambda describes in `context`, started `now`.
    pub fn from_context(context: &lambda_runtime::Context, now: DateTime<Utc>) -> Self {
        let deadline = i64::try_from(context.deadline)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(now);
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
                    Plan::Run => (answer_of(&plans, &verdicts, i), false),
                    Plan::SameAs(first) => (answer_of(&plans, &verdicts, *first), true),
                };
                let record = records[i].as_ref().ok();
                let notes = record.map(Record::noted).unwrap_or_default();
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
                    delivery_id = %request.delivery_id,
                    outcome = status,
                    latency_ms = notes.latency_ms,
                    since_arrival_ms = since_arrival_ms(record, invocation.now),
                    duplicate,
                    reason,
                    "record processed"
                );
                RecordResult {
                    sequence_number: relayed.sequence_number.clone(),
                    outcome: outcome(verdict),
                }
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
        let mut failure: Option<(usize, HandlerError)> = None;
        for (i, outcome) in outcomes.into_iter().flatten() {
            match outcome {
                Ok(verdict) => verdicts[i] = Some(verdict),
                Err(error) if failure.as_ref().is_none_or(|(at, _)| i < *at) => {
                    failure = Some((i, error));
                }
                Err(_) => {}
            }
        }
        (verdicts, failure.map(|(_, error)| error))
    }
}

impl Claims<'_> {
    /// Stores the answers of the records that ran (`ok`, `rejected`) and releases the other
    /// claims (answered `retry`, or not run because the handler failed), in one call.
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
                (Some(key), Some(verdict @ (Verdict::Ok | Verdict::Rejected(_)))) => {
                    completed.push((key.clone(), verdict.clone()));
                }
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

/// The answer of the record at `index` (a record that ran, or one answered without running). A
/// record planned to run without a verdict was not run because the handler failed, and then no
/// answer is built; `retry` keeps this function total.
fn answer_of(plans: &[Plan], verdicts: &[Option<Verdict>], index: usize) -> Verdict {
    match &plans[index] {
        Plan::Answer { verdict, .. } => verdict.clone(),
        _ => verdicts[index]
            .clone()
            .unwrap_or_else(|| Verdict::Retry("not run".into())),
    }
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
