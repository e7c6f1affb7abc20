//! [`DynamoDbStore`]: the idempotency store in a DynamoDB table.
//!
//! One item per idempotency key (hash key [`shared::config::IDEMPOTENCY_KEY_ATTRIBUTE`], no range
//! key):
//!
//! | attribute | type | value |
//! | --- | --- | --- |
//! | `id` | S | the idempotency key |
//! | [`STATUS_ATTRIBUTE`] | S | [`STATUS_IN_PROGRESS`] or [`STATUS_COMPLETED`] |
//! | [`OWNER_ATTRIBUTE`] | S | the delivery that claimed the key |
//! | [`CLAIM_EXPIRES_AT_ATTRIBUTE`] | N | epoch seconds the claim holds until |
//! | [`VERDICT_ATTRIBUTE`] | S | [`VERDICT_OK`] or [`VERDICT_REJECTED`] (completed only) |
//! | [`REASON_ATTRIBUTE`] | S | the rejection's reason (rejected only) |
//! | `expires_at` | N | the TTL ([`shared::config::IDEMPOTENCY_TTL_ATTRIBUTE`]): claim expiry + [`CLAIM_TTL_GRACE_SECONDS`] while in progress, `keep_until` once completed |
//!
//! Round trips: a claim of n keys is `ceil(n / 100)` `TransactWriteItems` requests when every
//! key is fresh, plus one more per chunk for the keys left after the keys already completed or
//! in progress are taken out (see [`DynamoDbStore::claim`]); a completion is `ceil(n / 100)` requests
//! likewise. [`DynamoDbStore::round_trips`] counts them.
//!
//! IAM: `dynamodb:PutItem` (claims), `dynamodb:UpdateItem` (answers), `dynamodb:DeleteItem`
//! (releases), `dynamodb:BatchGetItem` (the read when a cancellation reason carries no item), on
//! the table only. A `TransactWriteItems` request is authorised per action; it has no IAM action
//! of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use futures::future::try_join_all;
use shared::config::{IDEMPOTENCY_KEY_ATTRIBUTE, IDEMPOTENCY_TTL_ATTRIBUTE};

use crate::idempotency::port::{Claim, Completion, IdempotencyStore, StoreError};
use crate::verdict::Verdict;

/// The item's state: [`STATUS_IN_PROGRESS`] or [`STATUS_COMPLETED`].
pub const STATUS_ATTRIBUTE: &str = "status";
/// The delivery that claimed the key (the `owner` of [`IdempotencyStore::claim`]).
pub const OWNER_ATTRIBUTE: &str = "owner";
/// Epoch seconds until which the owner's claim holds.
pub const CLAIM_EXPIRES_AT_ATTRIBUTE: &str = "claim_expires_at";
/// The stored answer of a completed key: [`VERDICT_OK`] or [`VERDICT_REJECTED`].
pub const VERDICT_ATTRIBUTE: &str = "verdict";
/// The reason of a [`VERDICT_REJECTED`] answer.
pub const REASON_ATTRIBUTE: &str = "reason";
/// [`STATUS_ATTRIBUTE`] of a key claimed and not yet answered.
pub const STATUS_IN_PROGRESS: &str = "in_progress";
/// [`STATUS_ATTRIBUTE`] of a key answered for good.
pub const STATUS_COMPLETED: &str = "completed";
/// [`VERDICT_ATTRIBUTE`] of [`Verdict::Ok`].
pub const VERDICT_OK: &str = "ok";
/// [`VERDICT_ATTRIBUTE`] of [`Verdict::Rejected`].
pub const VERDICT_REJECTED: &str = "rejected";

/// The most actions one `TransactWriteItems` request may hold: "groups up to 100 action
/// requests" (DynamoDB API reference, TransactWriteItems).
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// The most keys one `BatchGetItem` request may hold: "up to 100 items" (DynamoDB API
/// reference, BatchGetItem).
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// How long an in-progress item outlives its claim before DynamoDB's TTL may delete it: a claim
/// that was never completed nor released (the function died) is cleaned up by itself.
pub const CLAIM_TTL_GRACE_SECONDS: i64 = 3_600;
/// How many times a transaction cancelled for a passing cause (a conflicting transaction,
/// throttling) is sent again, with backoff, before the store gives up with a [`StoreError`].
pub const MAX_PASSING_RETRIES: u32 = 4;
/// The first backoff after a passing cancellation; it doubles on each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);

/// The cancellation-reason code of an action whose condition was not met.
const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";
/// The cancellation-reason code of an action that did not fail (DynamoDB sends the word).
const NO_FAILURE: &str = "None";

/// The claim's condition: the key is absent, or held by a claim that expired before `:now`.
const CLAIM_CONDITION: &str =
    "attribute_not_exists(#id) OR (#status = :in_progress AND #claim_expires_at < :now)";
/// The condition of an answer or a release: `:owner` still holds the key's claim.
const OWNER_CONDITION: &str = "#owner = :owner AND #status = :in_progress";

/// The idempotency store in a DynamoDB table (see the module documentation for the item layout).
///
/// Claims and answers go in `TransactWriteItems` requests of up to [`MAX_TRANSACTION_ITEMS`]
/// conditional actions; a transaction cancelled because some keys' conditions failed is sent
/// again without those keys, whose state the cancellation reasons carry (or one consistent
/// `BatchGetItem` reads, where a reason carries no item).
#[derive(Debug)]
pub struct DynamoDbStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    round_trips: AtomicU64,
}

impl DynamoDbStore {
    /// A store in `table`, reached through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self {
            client,
            table,
            round_trips: AtomicU64::new(0),
        }
    }

    /// A store in `table`, with a client from the SDK's default configuration (region and
    /// credentials from the environment; `AWS_ENDPOINT_URL`, which the local run sets, is
    /// honoured).
    pub async fn from_env(table: String) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(aws_sdk_dynamodb::Client::new(&sdk), table)
    }

    /// The table the store writes to.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// How many requests (`TransactWriteItems` and `BatchGetItem`) the store has sent so far;
    /// the SDK's own retries of one request are not counted.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn error(&self, operation: &str, cause: impl std::fmt::Display) -> StoreError {
        StoreError::Request {
            table: self.table.clone(),
            operation: operation.to_string(),
            cause: cause.to_string(),
        }
    }

    fn malformed(&self, key: &str, problem: impl Into<String>) -> StoreError {
        StoreError::Malformed {
            table: self.table.clone(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    /// The claim's `Put` of `key`.
    fn claim_put(
        &self,
        key: &str,
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item(IDEMPOTENCY_KEY_ATTRIBUTE, s(key))
            .item(STATUS_ATTRIBUTE, s(STATUS_IN_PROGRESS))
            .item(OWNER_ATTRIBUTE, s(owner))
            .item(CLAIM_EXPIRES_AT_ATTRIBUTE, n(expires_at))
            .item(
                IDEMPOTENCY_TTL_ATTRIBUTE,
                n(expires_at.saturating_add(CLAIM_TTL_GRACE_SECONDS)),
            )
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#id", IDEMPOTENCY_KEY_ATTRIBUTE)
            .expression_attribute_names("#status", STATUS_ATTRIBUTE)
            .expression_attribute_names("#claim_expires_at", CLAIM_EXPIRES_AT_ATTRIBUTE)
            .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| self.error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The answer's `Update` (an Ok or Rejected verdict) or the release's `Delete` (None) of
    /// `key`, both conditioned on `owner` holding the claim.
    fn completion_action(
        &self,
        key: &str,
        owner: &str,
        verdict: Option<&Verdict>,
        keep_until: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let built = match verdict {
            Some(verdict) => {
                let (name, reason) = match verdict {
                    Verdict::Ok => (VERDICT_OK, None),
                    Verdict::Rejected(reason) => (VERDICT_REJECTED, Some(reason.as_str())),
                    // complete() turns a Retry into a release before building actions.
                    Verdict::Retry(_) => {
                        return Err(self.error("complete", "a Retry is released, not stored"))
                    }
                };
                let mut expression =
                    "SET #status = :completed, #verdict = :verdict, #ttl = :keep_until".to_string();
                let mut update = Update::builder()
                    .table_name(&self.table)
                    .key(IDEMPOTENCY_KEY_ATTRIBUTE, s(key))
                    .condition_expression(OWNER_CONDITION)
                    .expression_attribute_names("#owner", OWNER_ATTRIBUTE)
                    .expression_attribute_names("#status", STATUS_ATTRIBUTE)
                    .expression_attribute_names("#verdict", VERDICT_ATTRIBUTE)
                    .expression_attribute_names("#ttl", IDEMPOTENCY_TTL_ATTRIBUTE)
                    .expression_attribute_values(":owner", s(owner))
                    .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
                    .expression_attribute_values(":completed", s(STATUS_COMPLETED))
                    .expression_attribute_values(":verdict", s(name))
                    .expression_attribute_values(":keep_until", n(keep_until))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                if let Some(reason) = reason {
                    expression.push_str(", #reason = :reason");
                    update = update
                        .expression_attribute_names("#reason", REASON_ATTRIBUTE)
                        .expression_attribute_values(":reason", s(reason));
                }
                update
                    .update_expression(expression)
                    .build()
                    .map(|update| TransactWriteItem::builder().update(update).build())
            }
            None => Delete::builder()
                .table_name(&self.table)
                .key(IDEMPOTENCY_KEY_ATTRIBUTE, s(key))
                .condition_expression(OWNER_CONDITION)
                .expression_attribute_names("#owner", OWNER_ATTRIBUTE)
                .expression_attribute_names("#status", STATUS_ATTRIBUTE)
                .expression_attribute_values(":owner", s(owner))
                .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map(|delete| TransactWriteItem::builder().delete(delete).build()),
        };
        built.map_err(|e| self.error("TransactWriteItems", e))
    }

    /// Sends one transaction of `actions`: Ok, or the per-action cancellation reasons, or a
    /// [`StoreError`] for every other failure.
    async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<Sent, StoreError> {
        let count = actions.len();
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Sent::Done),
            Err(SdkError::ServiceError(failure)) => match failure.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|reason| Reason::of(reason.code(), reason.item()))
                        .collect::<Vec<_>>();
                    if reasons.len() != count {
                        return Err(self.error(
                            "TransactWriteItems",
                            format!(
                                "the transaction was cancelled with {} reasons for {count} actions: {}",
                                reasons.len(),
                                DisplayErrorContext(cancelled)
                            ),
                        ));
                    }
                    Ok(Sent::Cancelled(reasons))
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Ok(Sent::Cancelled(vec![Reason::Passing; count]))
                }
                other => Err(self.error("TransactWriteItems", DisplayErrorContext(other))),
            },
            Err(other) => Err(self.error("TransactWriteItems", DisplayErrorContext(other))),
        }
    }

    /// Reads `keys` (at most [`MAX_BATCH_GET_KEYS`]) with a consistent read: the items found,
    /// by key.
    async fn batch_get(
        &self,
        keys: &[&str],
    ) -> Result<HashMap<String, HashMap<String, AttributeValue>>, StoreError> {
        let mut found = HashMap::new();
        let mut pending: Vec<HashMap<String, AttributeValue>> = keys
            .iter()
            .map(|key| HashMap::from([(IDEMPOTENCY_KEY_ATTRIBUTE.to_string(), s(key))]))
            .collect();
        let mut backoffs = backoffs();
        loop {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| self.error("BatchGetItem", e))?;
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| self.error("BatchGetItem", DisplayErrorContext(e)))?;
            for item in output
                .responses()
                .and_then(|tables| tables.get(&self.table))
                .into_iter()
                .flatten()
            {
                let key = string(item, IDEMPOTENCY_KEY_ATTRIBUTE).ok_or_else(|| {
                    self.malformed(
                        "(unknown)",
                        format!("an item read has no string {IDEMPOTENCY_KEY_ATTRIBUTE}"),
                    )
                })?;
                found.insert(key.to_string(), item.clone());
            }
            pending = output
                .unprocessed_keys()
                .and_then(|tables| tables.get(&self.table))
                .map(|unprocessed| unprocessed.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
            let Some(delay) = backoffs.next() else {
                return Err(self.error(
                    "BatchGetItem",
                    format!(
                        "{} keys still unprocessed after {MAX_PASSING_RETRIES} retries (throttled: raise the table's capacity or retry later)",
                        pending.len()
                    ),
                ));
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Claims one chunk of at most [`MAX_TRANSACTION_ITEMS`] keys.
    async fn claim_chunk(
        &self,
        keys: &[String],
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut claims: Vec<Option<Claim>> = vec![None; keys.len()];
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        let mut backoffs = backoffs();
        while !pending.is_empty() {
            let actions = pending
                .iter()
                .map(|&i| self.claim_put(&keys[i], owner, now, expires_at))
                .collect::<Result<Vec<_>, _>>()?;
            let reasons = match self.transact(actions).await? {
                Sent::Done => {
                    for &i in &pending {
                        claims[i] = Some(Claim::Claimed);
                    }
                    break;
                }
                Sent::Cancelled(reasons) => reasons,
            };
            // Keys whose condition failed: their item says whether they are completed or
            // claimed by another owner. Read the items the reasons do not carry.
            let mut held: Vec<(usize, Option<HashMap<String, AttributeValue>>)> = Vec::new();
            for (&i, reason) in pending.iter().zip(reasons) {
                match reason {
                    Reason::ConditionFailed(item) => held.push((i, item)),
                    Reason::Passing | Reason::NotFailed => {}
                    Reason::Other(code) => {
                        return Err(self.error(
                            "TransactWriteItems",
                            format!("the claim of key {:?} was refused: {code}", keys[i]),
                        ))
                    }
                }
            }
            let unread: Vec<&str> = held
                .iter()
                .filter(|(_, item)| item.is_none())
                .map(|&(i, _)| keys[i].as_str())
                .collect();
            let mut read = if unread.is_empty() {
                HashMap::new()
            } else {
                self.batch_get(&unread).await?
            };
            let mut settled = Vec::new();
            for (i, item) in held {
                let item = item.or_else(|| read.remove(&keys[i]));
                // No item now (released meanwhile), or an expired claim: the key is claimable
                // again; it stays pending.
                if let Some(claim) = item
                    .map(|item| self.held_claim(&keys[i], &item, now))
                    .transpose()?
                    .flatten()
                {
                    claims[i] = Some(claim);
                    settled.push(i);
                }
            }
            self.next_round(&mut pending, &settled, &mut backoffs, "claim")
                .await?;
        }
        claims
            .into_iter()
            .zip(keys)
            .map(|(claim, key)| {
                claim.ok_or_else(|| self.error("claim", format!("key {key:?} was left unclaimed")))
            })
            .collect()
    }

    /// What a key's item whose claim condition failed holds: `Completed`, `InProgress`, or None
    /// when the item is claimable after all (its claim expired before `now`).
    fn held_claim(
        &self,
        key: &str,
        item: &HashMap<String, AttributeValue>,
        now: i64,
    ) -> Result<Option<Claim>, StoreError> {
        match string(item, STATUS_ATTRIBUTE) {
            Some(STATUS_COMPLETED) => match string(item, VERDICT_ATTRIBUTE) {
                Some(VERDICT_OK) => Ok(Some(Claim::Completed(Verdict::Ok))),
                Some(VERDICT_REJECTED) => Ok(Some(Claim::Completed(Verdict::Rejected(
                    string(item, REASON_ATTRIBUTE).unwrap_or_default().to_string(),
                )))),
                other => Err(self.malformed(
                    key,
                    format!("completed with verdict {other:?}, expected {VERDICT_OK:?} or {VERDICT_REJECTED:?}"),
                )),
            },
            Some(STATUS_IN_PROGRESS) => {
                let claim_expires_at = number(item, CLAIM_EXPIRES_AT_ATTRIBUTE).ok_or_else(|| {
                    self.malformed(key, format!("in progress without a numeric {CLAIM_EXPIRES_AT_ATTRIBUTE}"))
                })?;
                Ok((claim_expires_at >= now).then_some(Claim::InProgress))
            }
            other => Err(self.malformed(
                key,
                format!("{STATUS_ATTRIBUTE} is {other:?}, expected {STATUS_IN_PROGRESS:?} or {STATUS_COMPLETED:?}"),
            )),
        }
    }

    /// Answers and releases one chunk of at most [`MAX_TRANSACTION_ITEMS`] keys: the keys whose
    /// claim `owner` no longer held.
    async fn complete_chunk(
        &self,
        owner: &str,
        chunk: &[(&str, Option<&Verdict>)],
        keep_until: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut lost = Vec::new();
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut backoffs = backoffs();
        while !pending.is_empty() {
            let actions = pending
                .iter()
                .map(|&i| self.completion_action(chunk[i].0, owner, chunk[i].1, keep_until))
                .collect::<Result<Vec<_>, _>>()?;
            let reasons = match self.transact(actions).await? {
                Sent::Done => break,
                Sent::Cancelled(reasons) => reasons,
            };
            let mut settled = Vec::new();
            for (&i, reason) in pending.iter().zip(reasons) {
                let (key, verdict) = chunk[i];
                match reason {
                    Reason::ConditionFailed(item) => {
                        if !self.already_done(owner, verdict, item.as_ref()) {
                            lost.push(key.to_string());
                        }
                        settled.push(i);
                    }
                    Reason::NotFailed | Reason::Passing => {}
                    Reason::Other(code) => {
                        return Err(self.error(
                            "TransactWriteItems",
                            format!("the completion of key {key:?} was refused: {code}"),
                        ))
                    }
                }
            }
            self.next_round(&mut pending, &settled, &mut backoffs, "completion")
                .await?;
        }
        Ok(lost)
    }

    /// Whether an action whose condition failed had already been done by `owner` (an earlier
    /// send of the same transaction went through): the release of a key that is gone, or the
    /// answer of a key `owner` completed.
    fn already_done(
        &self,
        owner: &str,
        verdict: Option<&Verdict>,
        item: Option<&HashMap<String, AttributeValue>>,
    ) -> bool {
        match (verdict, item) {
            (None, None) => true,
            (Some(_), Some(item)) => {
                string(item, OWNER_ATTRIBUTE) == Some(owner)
                    && string(item, STATUS_ATTRIBUTE) == Some(STATUS_COMPLETED)
            }
            _ => false,
        }
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for DynamoDbStore {
    /// Claims the keys in chunks of [`MAX_TRANSACTION_ITEMS`], the chunks concurrently. A chunk
    /// is one `TransactWriteItems` request when all its keys are claimable; when some are not,
    /// the transaction is cancelled, those keys are answered from the cancellation reasons
    /// (`Completed` or `InProgress`; one `BatchGetItem` for reasons without an item) and the
    /// transaction is sent again without them. Each round settles at least one key, or counts
    /// as one of [`MAX_PASSING_RETRIES`] retries.
    async fn claim(
        &self,
        keys: &[String],
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let chunks = keys
            .chunks(MAX_TRANSACTION_ITEMS)
            .map(|chunk| self.claim_chunk(chunk, owner, now, expires_at));
        Ok(try_join_all(chunks).await?.into_iter().flatten().collect())
    }

    /// Stores the answers (`Update`s) and releases the claims (`Delete`s) in chunks of
    /// [`MAX_TRANSACTION_ITEMS`], each action conditioned on `owner` still holding the claim.
    /// A `Retry` among `completed` is released, not stored. Keys whose condition failed are the
    /// lost claims, unless `owner` had already done the same (an earlier send that went
    /// through); the rest of the transaction is sent again.
    async fn complete(
        &self,
        owner: &str,
        completed: &[(String, Verdict)],
        released: &[String],
        keep_until: i64,
    ) -> Result<Completion, StoreError> {
        let actions: Vec<(&str, Option<&Verdict>)> = completed
            .iter()
            .map(|(key, verdict)| match verdict {
                Verdict::Retry(_) => (key.as_str(), None),
                stored => (key.as_str(), Some(stored)),
            })
            .chain(released.iter().map(|key| (key.as_str(), None)))
            .collect();
        let chunks = actions
            .chunks(MAX_TRANSACTION_ITEMS)
            .map(|chunk| self.complete_chunk(owner, chunk, keep_until));
        let lost_claims = try_join_all(chunks).await?.into_iter().flatten().collect();
        Ok(Completion { lost_claims })
    }
}

/// The outcome of one transaction.
enum Sent {
    /// Every action was applied.
    Done,
    /// Nothing was applied; one reason per action, in order.
    Cancelled(Vec<Reason>),
}

/// Why a cancelled transaction's action did not go through.
#[derive(Debug, Clone, PartialEq)]
enum Reason {
    /// Its condition was not met; the item as it was, when DynamoDB returned it.
    ConditionFailed(Option<HashMap<String, AttributeValue>>),
    /// It did not fail: another action cancelled the transaction.
    NotFailed,
    /// A passing cause (a conflicting transaction, throttling): worth sending again.
    Passing,
    /// Anything else (a validation error): not worth sending again.
    Other(String),
}

impl Reason {
    fn of(code: Option<&str>, item: Option<&HashMap<String, AttributeValue>>) -> Self {
        match code {
            None | Some(NO_FAILURE) => Self::NotFailed,
            Some(CONDITIONAL_CHECK_FAILED) => Self::ConditionFailed(item.cloned()),
            Some(
                "TransactionConflict"
                | "ThrottlingError"
                | "ProvisionedThroughputExceeded"
                | "RequestLimitExceeded",
            ) => Self::Passing,
            Some(other) => Self::Other(other.to_string()),
        }
    }
}

impl DynamoDbStore {
    /// The end of one transaction round of a claim or a completion (`what`): the keys it
    /// settled leave `pending`; a round that settled none was cancelled for a passing reason
    /// (a transaction conflict, throttling, items changed under it), so the next round waits a
    /// backoff, and with none left the request is a [`StoreError`].
    async fn next_round(
        &self,
        pending: &mut Vec<usize>,
        settled: &[usize],
        backoffs: &mut impl Iterator<Item = Duration>,
        what: &str,
    ) -> Result<(), StoreError> {
        if !settled.is_empty() {
            pending.retain(|i| !settled.contains(i));
            return Ok(());
        }
        let Some(delay) = backoffs.next() else {
            return Err(self.error(
                "TransactWriteItems",
                format!(
                    "the {what} of {} keys was cancelled {} times (transaction conflicts or throttling); retry later",
                    pending.len(),
                    MAX_PASSING_RETRIES + 1
                ),
            ));
        };
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// The backoff before the `retry`-th retry (1-based): 20 ms, doubling.
fn backoff(retry: u32) -> Duration {
    FIRST_BACKOFF * 2u32.saturating_pow(retry.saturating_sub(1))
}

/// The backoffs of the [`MAX_PASSING_RETRIES`] retries a request may spend, in order.
fn backoffs() -> impl Iterator<Item = Duration> {
    (1..=MAX_PASSING_RETRIES).map(backoff)
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use aws_credential_types::Credentials;
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::Region;
    use aws_smithy_http_client::test_util::infallible_client_fn;
    use aws_smithy_types::body::SdkBody;
    use serde_json::{json, Value};

    use super::*;

    const TABLE: &str = "relay-target-idempotency";
    const OWNER: &str = "delivery-1";
    const NOW: i64 = 1_800_000_000;
    const EXPIRES_AT: i64 = NOW + 60;

    /// The operation (from `X-Amz-Target`) and JSON body of each request sent.
    type Sent = Arc<Mutex<Vec<(String, Value)>>>;

    /// A store whose HTTP layer answers with `answers` in turn (status, JSON body) and keeps
    /// each request in the returned list. The SDK's own retries are off: the store's are tested.
    fn store_answering(answers: Vec<(u16, Value)>) -> (DynamoDbStore, Sent) {
        let sent: Sent = Arc::default();
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let log = Arc::clone(&sent);
        let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
            let target = request
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim_start_matches("DynamoDB_20120810.")
                .to_string();
            let body = serde_json::from_slice(request.body().bytes().unwrap_or_default())
                .unwrap_or(Value::Null);
            log.lock().unwrap().push((target, body));
            let (status, answer) = answers.lock().unwrap().pop_front().unwrap_or((
                500,
                json!({"__type": "InternalServerError", "message": "no answer left"}),
            ));
            http::Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.0")
                .body(SdkBody::from(answer.to_string()))
                .unwrap()
        });
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .retry_config(RetryConfig::disabled())
            .http_client(http)
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        (DynamoDbStore::new(client, TABLE.into()), sent)
    }

    fn keys(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("key-{i}")).collect()
    }

    fn ok() -> (u16, Value) {
        (200, json!({}))
    }

    /// DynamoDB's TransactionCanceledException with these reasons.
    fn cancelled(reasons: Vec<Value>) -> (u16, Value) {
        (
            400,
            json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                "CancellationReasons": reasons,
            }),
        )
    }

    fn not_failed() -> Value {
        json!({"Code": "None"})
    }

    fn failed(item: Option<Value>) -> Value {
        let mut reason =
            json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"});
        if let Some(item) = item {
            reason["Item"] = item;
        }
        reason
    }

    fn completed_item(key: &str, verdict: &str, reason: Option<&str>) -> Value {
        let mut item = json!({
            "id": {"S": key}, "status": {"S": "completed"}, "owner": {"S": "delivery-0"},
            "claim_expires_at": {"N": (NOW - 100).to_string()}, "verdict": {"S": verdict},
            "expires_at": {"N": (NOW + 86_400).to_string()},
        });
        if let Some(reason) = reason {
            item["reason"] = json!({"S": reason});
        }
        item
    }

    fn in_progress_item(key: &str, owner: &str, claim_expires_at: i64) -> Value {
        json!({
            "id": {"S": key}, "status": {"S": "in_progress"}, "owner": {"S": owner},
            "claim_expires_at": {"N": claim_expires_at.to_string()},
            "expires_at": {"N": (claim_expires_at + 3600).to_string()},
        })
    }

    /// The keys of a TransactWriteItems body's actions, in order.
    fn action_keys(body: &Value) -> Vec<String> {
        body["TransactItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|action| {
                let (_, op) = action.as_object().unwrap().iter().next().unwrap();
                let key = op.get("Item").or_else(|| op.get("Key")).unwrap();
                key["id"]["S"].as_str().unwrap().to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn fresh_keys_are_claimed_in_transactions_of_100_conditional_puts() {
        let (store, sent) = store_answering(vec![ok(), ok(), ok()]);
        let keys = keys(250);
        let claims = store.claim(&keys, OWNER, NOW, EXPIRES_AT).await.unwrap();
        assert_eq!(claims, vec![Claim::Claimed; 250]);
        assert_eq!(store.round_trips(), 3);
        assert_eq!(store.table(), TABLE);

        let sent = sent.lock().unwrap();
        let mut sizes: Vec<usize> = sent.iter().map(|(_, b)| action_keys(b).len()).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![50, 100, 100]);
        let mut all: Vec<String> = sent.iter().flat_map(|(_, b)| action_keys(b)).collect();
        all.sort();
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(all, expected, "every key once");

        let (operation, body) = &sent[0];
        assert_eq!(operation, "TransactWriteItems");
        let put = &body["TransactItems"][0]["Put"];
        assert_eq!(put["TableName"], TABLE);
        assert_eq!(put["ConditionExpression"], CLAIM_CONDITION);
        assert_eq!(
            put["ExpressionAttributeNames"],
            json!({"#id": "id", "#status": "status", "#claim_expires_at": "claim_expires_at"})
        );
        assert_eq!(
            put["ExpressionAttributeValues"],
            json!({":in_progress": {"S": "in_progress"}, ":now": {"N": NOW.to_string()}})
        );
        assert_eq!(put["ReturnValuesOnConditionCheckFailure"], "ALL_OLD");
        let key = put["Item"]["id"]["S"].as_str().unwrap();
        assert_eq!(
            put["Item"],
            json!({
                "id": {"S": key}, "status": {"S": "in_progress"}, "owner": {"S": OWNER},
                "claim_expires_at": {"N": EXPIRES_AT.to_string()},
                "expires_at": {"N": (EXPIRES_AT + CLAIM_TTL_GRACE_SECONDS).to_string()},
            })
        );
    }

    #[tokio::test]
    async fn held_keys_are_answered_from_the_reasons_and_the_rest_sent_again() {
        let (store, sent) = store_answering(vec![
            cancelled(vec![
                failed(Some(completed_item("key-0", "ok", None))),
                not_failed(),
                failed(Some(in_progress_item("key-2", "delivery-0", NOW + 10))),
                failed(Some(completed_item(
                    "key-3",
                    "rejected",
                    Some("bad schema"),
                ))),
            ]),
            ok(),
        ]);
        let claims = store.claim(&keys(4), OWNER, NOW, EXPIRES_AT).await.unwrap();
        assert_eq!(
            claims,
            vec![
                Claim::Completed(Verdict::Ok),
                Claim::Claimed,
                Claim::InProgress,
                Claim::Completed(Verdict::Rejected("bad schema".into())),
            ]
        );
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 2, "no read: the reasons carried the items");
        assert_eq!(action_keys(&sent[1].1), vec!["key-1"]);
        assert_eq!(store.round_trips(), 2);
    }

    #[tokio::test]
    async fn every_key_held_needs_no_second_transaction() {
        let (store, sent) = store_answering(vec![cancelled(vec![
            failed(Some(completed_item("key-0", "ok", None))),
            failed(Some(in_progress_item("key-1", "delivery-0", NOW))),
        ])]);
        let claims = store.claim(&keys(2), OWNER, NOW, EXPIRES_AT).await.unwrap();
        assert_eq!(
            claims,
            vec![Claim::Completed(Verdict::Ok), Claim::InProgress]
        );
        assert_eq!(sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_reason_without_its_item_is_read_with_one_consistent_batch_get() {
        let (store, sent) = store_answering(vec![
            cancelled(vec![not_failed(), failed(None), failed(None)]),
            (
                200,
                json!({"Responses": {TABLE: [
                    completed_item("key-1", "rejected", Some("too old")),
                    in_progress_item("key-2", "delivery-0", NOW + 5),
                ]}, "UnprocessedKeys": {}}),
            ),
            ok(),
        ]);
        let claims = store.claim(&keys(3), OWNER, NOW, EXPIRES_AT).await.unwrap();
        assert_eq!(
            claims,
            vec![
                Claim::Claimed,
                Claim::Completed(Verdict::Rejected("too old".into())),
                Claim::InProgress
            ]
        );
        let sent = sent.lock().unwrap();
        let (operation, body) = &sent[1];
        assert_eq!(operation, "BatchGetItem");
        assert_eq!(
            body["RequestItems"][TABLE],
            json!({"Keys": [{"id": {"S": "key-1"}}, {"id": {"S": "key-2"}}], "ConsistentRead": true})
        );
        assert_eq!(action_keys(&sent[2].1), vec!["key-0"]);
        assert_eq!(store.round_trips(), 3);
    }

    /// The IAM action each request needs: a transaction's actions are authorized one by one as
    /// the item operation they are; any other request as its own operation.
    fn iam_actions(operation: &str, body: &Value) -> Vec<String> {
        if operation != "TransactWriteItems" {
            return vec![format!("dynamodb:{operation}")];
        }
        let actions = body["TransactItems"].as_array().unwrap().iter();
        actions
            .map(
                |action| match action.as_object().unwrap().keys().next().unwrap().as_str() {
                    "Put" => "dynamodb:PutItem".to_string(),
                    "Update" => "dynamodb:UpdateItem".to_string(),
                    "Delete" => "dynamodb:DeleteItem".to_string(),
                    other => format!("dynamodb:{other}"),
                },
            )
            .collect()
    }

    /// Every kind of request the store sends (a claim, a held claim read back, completions of
    /// each verdict, a release) needs exactly the actions the target stack grants
    /// ([`shared::config::IDEMPOTENCY_TABLE_ACTIONS`]): one more would be refused by IAM in a real
    /// account, one fewer is a grant nobody uses.
    #[tokio::test]
    async fn the_requests_need_exactly_the_actions_the_target_role_is_granted() {
        let (store, sent) = store_answering(vec![
            cancelled(vec![not_failed(), failed(None)]),
            (
                200,
                json!({"Responses": {TABLE: [in_progress_item("key-1", "delivery-0", NOW + 5)]}, "UnprocessedKeys": {}}),
            ),
            ok(),
            ok(),
        ]);
        store.claim(&keys(2), OWNER, NOW, EXPIRES_AT).await.unwrap();
        let completed = [
            ("key-0".to_string(), Verdict::Ok),
            ("key-1".to_string(), Verdict::Rejected("bad".into())),
            ("key-2".to_string(), Verdict::Retry("busy".into())),
        ];
        store
            .complete(OWNER, &completed, &["key-3".to_string()], NOW + 86_400)
            .await
            .unwrap();
        let needed: std::collections::BTreeSet<String> = (sent.lock().unwrap().iter())
            .flat_map(|(operation, body)| iam_actions(operation, body))
            .collect();
        let granted = shared::config::IDEMPOTENCY_TABLE_ACTIONS
            .map(String::from)
            .into();
        assert_eq!(needed, granted);
    }

    #[tokio::test]
    async fn a_conflict_is_retried_and_then_a_store_error_naming_the_table() {
        let conflict = || {
            cancelled(vec![
                json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
                not_failed(),
            ])
        };
        let (store, sent) = store_answering(vec![conflict(), ok()]);
        let claims = store.claim(&keys(2), OWNER, NOW, EXPIRES_AT).await.unwrap();
        assert_eq!(claims, vec![Claim::Claimed; 2]);
        assert_eq!(
            action_keys(&sent.lock().unwrap()[1].1),
            vec!["key-0", "key-1"]
        );

        let answers = (0..=MAX_PASSING_RETRIES).map(|_| conflict()).collect();
        let (store, sent) = store_answering(answers);
        let err = store
            .claim(&keys(2), OWNER, NOW, EXPIRES_AT)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Request { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(TABLE), "{message}");
        assert!(message.contains("cancelled 5 times"), "{message}");
        assert_eq!(sent.lock().unwrap().len(), MAX_PASSING_RETRIES as usize + 1);
    }

    #[tokio::test]
    async fn an_expired_claim_in_a_reason_stays_pending_and_is_claimed_on_the_next_round() {
        // The item changed between the condition and the reason: the claim expired meanwhile.
        let (store, _) = store_answering(vec![
            cancelled(vec![failed(Some(in_progress_item(
                "key-0",
                "delivery-0",
                NOW - 1,
            )))]),
            ok(),
        ]);
        let claims = store.claim(&keys(1), OWNER, NOW, EXPIRES_AT).await.unwrap();
        assert_eq!(claims, vec![Claim::Claimed]);
    }

    #[tokio::test]
    async fn refusals_and_malformed_items_are_store_errors_naming_the_table() {
        let (store, _) = store_answering(vec![(
            400,
            json!({"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "Requested resource not found"}),
        )]);
        let err = store
            .claim(&keys(1), OWNER, NOW, EXPIRES_AT)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(TABLE) && err.contains("TransactWriteItems"),
            "{err}"
        );
        assert!(err.contains("ResourceNotFound"), "{err}");

        let (store, _) = store_answering(vec![cancelled(vec![failed(Some(
            json!({"id": {"S": "key-0"}, "status": {"S": "paused"}}),
        ))])]);
        let err = store
            .claim(&keys(1), OWNER, NOW, EXPIRES_AT)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Malformed { ref key, .. } if key == "key-0"),
            "{err:?}"
        );
        assert!(err.to_string().contains("paused"), "{err}");

        let (store, _) = store_answering(vec![cancelled(vec![
            json!({"Code": "ValidationError", "Message": "Item size too large"}),
        ])]);
        let err = store
            .claim(&keys(1), OWNER, NOW, EXPIRES_AT)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ValidationError") && err.contains("key-0"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn answers_are_owner_conditioned_updates_and_releases_deletes() {
        let (store, sent) = store_answering(vec![ok()]);
        let completed = vec![
            ("key-0".to_string(), Verdict::Ok),
            ("key-1".to_string(), Verdict::Rejected("bad schema".into())),
            ("key-2".to_string(), Verdict::Retry("busy".into())),
        ];
        let completion = store
            .complete(OWNER, &completed, &["key-3".to_string()], NOW + 86_400)
            .await
            .unwrap();
        assert_eq!(completion, Completion::default());
        let sent = sent.lock().unwrap();
        let actions = sent[0].1["TransactItems"].as_array().unwrap();
        assert_eq!(actions.len(), 4);

        let ok_update = &actions[0]["Update"];
        assert_eq!(ok_update["TableName"], TABLE);
        assert_eq!(ok_update["Key"], json!({"id": {"S": "key-0"}}));
        assert_eq!(ok_update["ConditionExpression"], OWNER_CONDITION);
        assert_eq!(
            ok_update["UpdateExpression"],
            "SET #status = :completed, #verdict = :verdict, #ttl = :keep_until"
        );
        assert_eq!(
            ok_update["ExpressionAttributeValues"][":owner"],
            json!({"S": OWNER})
        );
        assert_eq!(
            ok_update["ExpressionAttributeValues"][":verdict"],
            json!({"S": "ok"})
        );
        assert_eq!(
            ok_update["ExpressionAttributeValues"][":keep_until"],
            json!({"N": (NOW + 86_400).to_string()})
        );
        assert_eq!(ok_update["ExpressionAttributeNames"]["#ttl"], "expires_at");

        let rejected = &actions[1]["Update"];
        assert_eq!(
            rejected["UpdateExpression"],
            "SET #status = :completed, #verdict = :verdict, #ttl = :keep_until, #reason = :reason"
        );
        assert_eq!(
            rejected["ExpressionAttributeValues"][":verdict"],
            json!({"S": "rejected"})
        );
        assert_eq!(
            rejected["ExpressionAttributeValues"][":reason"],
            json!({"S": "bad schema"})
        );

        // A Retry is released, like the released keys.
        for (action, key) in actions[2..].iter().zip(["key-2", "key-3"]) {
            let delete = &action["Delete"];
            assert_eq!(delete["Key"], json!({"id": {"S": key}}));
            assert_eq!(delete["ConditionExpression"], OWNER_CONDITION);
            assert_eq!(
                delete["ExpressionAttributeValues"][":owner"],
                json!({"S": OWNER})
            );
        }
    }

    #[tokio::test]
    async fn a_claim_taken_over_is_a_lost_claim_and_the_rest_is_sent_again() {
        let (store, sent) = store_answering(vec![
            cancelled(vec![
                // Claimed by another delivery after this one's claim expired: lost.
                failed(Some(in_progress_item("key-0", "delivery-9", NOW + 50))),
                not_failed(),
                // Taken over and answered by another delivery: lost too.
                failed(Some(completed_item("key-4", "ok", None))),
                // Gone: a release that an earlier send already did is no loss.
                failed(None),
                // A release of a key another delivery holds now: lost.
                failed(Some(in_progress_item("key-3", "delivery-9", NOW + 50))),
            ]),
            ok(),
        ]);
        let completed = vec![
            ("key-0".to_string(), Verdict::Ok),
            ("key-1".to_string(), Verdict::Ok),
            ("key-4".to_string(), Verdict::Ok),
        ];
        let released = vec!["key-2".to_string(), "key-3".to_string()];
        let completion = store
            .complete(OWNER, &completed, &released, NOW)
            .await
            .unwrap();
        assert_eq!(completion.lost_claims, vec!["key-0", "key-4", "key-3"]);
        let sent = sent.lock().unwrap();
        assert_eq!(action_keys(&sent[1].1), vec!["key-1"]);
    }

    #[tokio::test]
    async fn an_answer_already_stored_by_the_same_owner_is_no_loss() {
        let mut mine = completed_item("key-0", "ok", None);
        mine["owner"] = json!({"S": OWNER});
        let (store, _) = store_answering(vec![cancelled(vec![failed(Some(mine)), failed(None)])]);
        let completed = vec![
            ("key-0".to_string(), Verdict::Ok),
            ("key-1".to_string(), Verdict::Ok),
        ];
        let completion = store.complete(OWNER, &completed, &[], NOW).await.unwrap();
        assert_eq!(completion.lost_claims, vec!["key-1".to_string()]);
    }

    #[tokio::test]
    async fn unprocessed_keys_are_read_again_a_bounded_number_of_times() {
        let unprocessed = |key: &str| {
            (
                200,
                json!({"Responses": {TABLE: []}, "UnprocessedKeys": {TABLE: {"Keys": [{"id": {"S": key}}], "ConsistentRead": true}}}),
            )
        };
        let (store, sent) = store_answering(vec![
            cancelled(vec![failed(None)]),
            unprocessed("key-0"),
            (
                200,
                json!({"Responses": {TABLE: [completed_item("key-0", "ok", None)]}}),
            ),
        ]);
        let claims = store.claim(&keys(1), OWNER, NOW, EXPIRES_AT).await.unwrap();
        assert_eq!(claims, vec![Claim::Completed(Verdict::Ok)]);
        {
            let sent = sent.lock().unwrap();
            assert_eq!(sent[2].0, "BatchGetItem");
            assert_eq!(
                sent[2].1["RequestItems"][TABLE]["Keys"],
                json!([{"id": {"S": "key-0"}}])
            );
        }

        let mut answers = vec![cancelled(vec![failed(None)])];
        answers.extend((0..=MAX_PASSING_RETRIES).map(|_| unprocessed("key-0")));
        let (store, sent) = store_answering(answers);
        let err = store
            .claim(&keys(1), OWNER, NOW, EXPIRES_AT)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BatchGetItem")
                && err.contains("1 keys still unprocessed after 4 retries"),
            "{err}"
        );
        assert_eq!(sent.lock().unwrap().len(), 2 + MAX_PASSING_RETRIES as usize);
    }

    #[tokio::test]
    async fn a_completion_cancelled_by_a_conflict_is_sent_again_a_bounded_number_of_times() {
        let conflict = || cancelled(vec![json!({"Code": "TransactionConflict"})]);
        let completed = vec![("key-0".to_string(), Verdict::Ok)];
        let (store, sent) = store_answering(vec![conflict(), ok()]);
        let completion = store.complete(OWNER, &completed, &[], NOW).await.unwrap();
        assert_eq!(completion, Completion::default());
        assert_eq!(sent.lock().unwrap().len(), 2);

        let (store, sent) =
            store_answering((0..=MAX_PASSING_RETRIES).map(|_| conflict()).collect());
        let err = store
            .complete(OWNER, &completed, &[], NOW)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the completion of 1 keys was cancelled 5 times"),
            "{err}"
        );
        assert_eq!(sent.lock().unwrap().len(), MAX_PASSING_RETRIES as usize + 1);

        let (store, _) = store_answering(vec![cancelled(vec![json!({"Code": "ValidationError"})])]);
        let err = store
            .complete(OWNER, &completed, &[], NOW)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("completion of key \"key-0\" was refused: ValidationError"),
            "{err}"
        );
    }

    #[test]
    fn cancellation_codes_are_sorted_into_reasons() {
        assert_eq!(Reason::of(None, None), Reason::NotFailed);
        assert_eq!(Reason::of(Some("None"), None), Reason::NotFailed);
        assert_eq!(
            Reason::of(Some("ConditionalCheckFailed"), None),
            Reason::ConditionFailed(None)
        );
        for passing in [
            "TransactionConflict",
            "ThrottlingError",
            "ProvisionedThroughputExceeded",
            "RequestLimitExceeded",
        ] {
            assert_eq!(
                Reason::of(Some(passing), None),
                Reason::Passing,
                "{passing}"
            );
        }
        assert_eq!(
            Reason::of(Some("ValidationError"), None),
            Reason::Other("ValidationError".into())
        );
        assert_eq!(backoff(1), Duration::from_millis(20));
        assert_eq!(backoff(3), Duration::from_millis(80));
        let all: Vec<Duration> = backoffs().collect();
        assert_eq!(all.len(), MAX_PASSING_RETRIES as usize);
        assert_eq!(all.iter().sum::<Duration>(), Duration::from_millis(300));
    }
}
