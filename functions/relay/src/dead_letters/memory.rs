//! A dead-letter bucket in memory, for tests: it keeps the letters written, and can refuse
//! every write, or the write of one key, or take a while for each.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use shared::dead_letter::DeadLetter;

use crate::dead_letters::port::{DeadLetterBucket, WriteError};

/// The name the bucket gives in its errors.
const BUCKET: &str = "memory";

/// Which writes a [`MemoryDeadLetterBucket`] refuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Refuse {
    #[default]
    Nothing,
    Everything,
    /// The write of the letter with this key.
    Key(String),
}

/// A dead-letter bucket in memory. Clones share their letters: keep one to read what the relay
/// wrote after handing the other to it.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeadLetterBucket {
    letters: Arc<Mutex<Vec<DeadLetter>>>,
    refuse: Refuse,
    /// How long a write takes (tests on tokio's paused clock).
    takes: Duration,
}

impl MemoryDeadLetterBucket {
    /// A bucket that refuses every write with `AccessDenied`.
    pub fn refusing() -> Self {
        Self {
            refuse: Refuse::Everything,
            ..Self::default()
        }
    }

    /// A bucket that refuses the write of the letter keyed `key` with `AccessDenied`, and
    /// accepts every other.
    pub fn refusing_key(key: impl Into<String>) -> Self {
        Self {
            refuse: Refuse::Key(key.into()),
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
        let refused = match &self.refuse {
            Refuse::Nothing => false,
            Refuse::Everything => true,
            Refuse::Key(key) => *key == letter.key(),
        };
        if refused {
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
