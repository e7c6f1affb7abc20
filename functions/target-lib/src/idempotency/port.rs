//! The idempotency store's port: what the library asks of a store ([`IdempotencyStore`]) and
//! what it answers ([`Claim`], [`Completion`], [`StoreError`]). The adapters (`memory`,
//! `dynamodb`) are its siblings and import it from here (a module may not import from its
//! parent, see tools/check_module_imports.py).

use crate::verdict::Verdict;

/// What the store holds for a key when a delivery claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Claimed now by this owner until the expiry: run the handler.
    Claimed,
    /// Completed earlier with this answer (the library stores only Ok; a store may hold a
    /// Rejected answer too): answer it, don't run.
    Completed(Verdict),
    /// Claimed by another owner whose claim has not expired: answer Retry.
    InProgress,
}

/// A failure of the store itself (the library answers Retry for every record it concerns).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A request to the store failed (network, throttling, permissions, missing table).
    #[error("idempotency store {table}: {operation} failed: {cause}")]
    Request {
        /// The table (or store) the request went to.
        table: String,
        /// The operation that failed, e.g. `BatchGetItem` or `claim`.
        operation: String,
        /// The cause as the store reported it.
        cause: String,
    },
    /// An item in the store is not one the library wrote (missing or malformed attribute).
    #[error("idempotency store {table}: the item for key {key:?} is malformed: {problem}")]
    Malformed {
        /// The table the item is in.
        table: String,
        /// The item's idempotency key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A durable record of claims and answers per idempotency key.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims each key (distinct keys, any number: the store batches) for `owner` until
    /// `expires_at` (epoch seconds). A key absent, or held by a claim that expired before `now`,
    /// is claimed. The answer has one Claim per key, in the order given.
    async fn claim(
        &self,
        keys: &[String],
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<Claim>, StoreError>;

    /// Stores final answers (Ok / Rejected) of keys `owner` claimed, kept until `keep_until`
    /// (epoch seconds, the TTL attribute), and releases (deletes) `owner`'s claims on the
    /// `released` keys (answered Retry, or never run), so a redelivery runs them. A key whose
    /// claim `owner` no longer holds is left alone and reported in the result.
    async fn complete(
        &self,
        owner: &str,
        completed: &[(String, Verdict)],
        released: &[String],
        keep_until: i64,
    ) -> Result<Completion, StoreError>;
}

/// What [`IdempotencyStore::complete`] reports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Keys whose claim had been taken over (expired and claimed by another owner, or gone):
    /// left alone, their answer not stored.
    pub lost_claims: Vec<String>,
}
