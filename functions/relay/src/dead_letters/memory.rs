//! A dead-letter bucket in memory, for tests: it keeps the letters written, and can refuse
//! every write or take a while for each.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use shared::dead_letter::DeadLetter;

use crate::dead_letters::port::{DeadLetterBucket, WriteError};

/// The name the bucket gives in its errors.
const BUCKET: &str = "memory";

/// A dead-letter bucket in memory. Clones share their letters: keep one to read what the relay
/// wrote after handing the other to it.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeadLetterBucket {
    letters: Arc<Mutex<Vec<DeadLetter>>>,
    refuse: bool,
    /// How long a write takes (tests on tokio's paused clock).
    takes: Duration,
}

impl MemoryDeadLetterBucket {
    /// A bucket that refuses every write with `AccessDenied`.
    pub fn refusing() -> Self {
        Self {
            refuse: true,
            ..Self::default()
        }
    }

    /// A bucket whose every write takes `takes`.
    pub fn taking(takes: Duration) -> Self {
        Self {
            takes,
            ..Self::default()
        }
    }

    /// The letters written, in the order they were.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<DeadLetter>> {
        self.letters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DeadLetterBucket for MemoryDeadLetterBucket {
    async fn write(&self, letter: &DeadLetter) -> Result<(), WriteError> {
        if self.refuse {
            return Err(WriteError::Put {
                bucket: BUCKET.into(),
                key: letter.key(),
                cause: "AccessDenied".into(),
            });
        }
        tokio::time::sleep(self.takes).await;
        self.lock().push(letter.clone());
        Ok(())
    }
}
