//! An idempotency store in memory: for tests, examples and local runs. It forgets everything when
//! the process ends and is not shared between containers, so it is no substitute for a durable
//! store in a deployed target.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::idempotency::port::{Claim, Completion, IdempotencyStore, StoreError};
use crate::verdict::Verdict;

/// An [`IdempotencyStore`] in memory, with the same semantics as the durable one: claims with an
/// owner and an expiry, final answers kept until their `keep_until` (as a TTL would delete them).
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, Item>>,
}

/// What the store holds for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    InProgress { owner: String, expires_at: i64 },
    Completed { verdict: Verdict, keep_until: i64 },
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The final answer stored for `key`, if any (for tests).
    pub fn completed(&self, key: &str) -> Option<Verdict> {
        match self.lock().get(key)? {
            Item::Completed { verdict, .. } => Some(verdict.clone()),
            Item::InProgress { .. } => None,
        }
    }

    /// The owner holding a claim on `key`, if any (for tests).
    pub fn claimed_by(&self, key: &str) -> Option<String> {
        match self.lock().get(key)? {
            Item::InProgress { owner, .. } => Some(owner.clone()),
            Item::Completed { .. } => None,
        }
    }

    /// How many keys the store holds (claims and answers).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Item>> {
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        keys: &[String],
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut items = self.lock();
        let claims = keys
            .iter()
            .map(|key| {
                let claim = match items.get(key) {
                    Some(Item::Completed {
                        verdict,
                        keep_until,
                    }) if *keep_until >= now => {
                        return Claim::Completed(verdict.clone());
                    }
                    Some(Item::InProgress {
                        expires_at: held_until,
                        ..
                    }) if *held_until >= now => return Claim::InProgress,
                    _ => Item::InProgress {
                        owner: owner.to_string(),
                        expires_at,
                    },
                };
                items.insert(key.clone(), claim);
                Claim::Claimed
            })
            .collect();
        Ok(claims)
    }

    async fn complete(
        &self,
        owner: &str,
        completed: &[(String, Verdict)],
        released: &[String],
        keep_until: i64,
    ) -> Result<Completion, StoreError> {
        let mut items = self.lock();
        let mut lost_claims = Vec::new();
        let mut holds = |items: &HashMap<String, Item>, key: &String| {
            let held =
                matches!(items.get(key), Some(Item::InProgress { owner: o, .. }) if o == owner);
            if !held {
                lost_claims.push(key.clone());
            }
            held
        };
        for (key, verdict) in completed {
            if holds(&items, key) {
                let verdict = verdict.clone();
                items.insert(
                    key.clone(),
                    Item::Completed {
                        verdict,
                        keep_until,
                    },
                );
            }
        }
        for key in released {
            if holds(&items, key) {
                items.remove(key);
            }
        }
        Ok(Completion { lost_claims })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[tokio::test]
    async fn a_key_is_claimed_once_until_its_claim_expires() {
        let store = MemoryStore::new();
        let first = store
            .claim(&keys(&["a", "b"]), "o1", 100, 200)
            .await
            .unwrap();
        assert_eq!(first, vec![Claim::Claimed, Claim::Claimed]);
        let second = store.claim(&keys(&["a"]), "o2", 200, 300).await.unwrap();
        assert_eq!(second, vec![Claim::InProgress], "held until 200 inclusive");
        let later = store.claim(&keys(&["a"]), "o2", 201, 300).await.unwrap();
        assert_eq!(later, vec![Claim::Claimed], "expired: taken over");
        assert_eq!(store.claimed_by("a").as_deref(), Some("o2"));
    }

    #[tokio::test]
    async fn completed_answers_are_kept_until_keep_until_and_lost_claims_reported() {
        let store = MemoryStore::new();
        store
            .claim(&keys(&["a", "b", "c"]), "o1", 0, 10)
            .await
            .unwrap();
        store.claim(&keys(&["c"]), "o2", 11, 20).await.unwrap();
        let done = vec![
            ("a".to_string(), Verdict::Ok),
            ("c".to_string(), Verdict::Ok),
        ];
        let completion = store
            .complete("o1", &done, &keys(&["b"]), 50)
            .await
            .unwrap();
        assert_eq!(completion.lost_claims, keys(&["c"]));
        assert_eq!(store.completed("a"), Some(Verdict::Ok));
        assert_eq!(store.claimed_by("b"), None, "released");
        assert_eq!(store.claimed_by("c").as_deref(), Some("o2"), "left alone");
        let again = store.claim(&keys(&["a", "b"]), "o3", 50, 60).await.unwrap();
        assert_eq!(again, vec![Claim::Completed(Verdict::Ok), Claim::Claimed]);
        let expired = store.claim(&keys(&["a"]), "o3", 51, 60).await.unwrap();
        assert_eq!(
            expired,
            vec![Claim::Claimed],
            "past keep_until, as after the TTL"
        );
    }
}
