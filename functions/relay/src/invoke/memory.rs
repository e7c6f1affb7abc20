//! A target in memory, for tests: it answers each envelope with a function of the envelope,
//! after a delay, and keeps what a test asks about afterwards (payload sizes, how many
//! envelopes were in flight at once, the order in which it processed each key's records).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use shared::envelope::DeliveryRequest;

use crate::invoke::port::{InvokeFailure, InvokeFailureKind, InvokeReply, TargetInvoker};

/// How the target answers one envelope.
type Answer = dyn Fn(&DeliveryRequest) -> Result<InvokeReply, InvokeFailure> + Send + Sync;
/// How long the target takes for one envelope.
type Pace = dyn Fn(&DeliveryRequest) -> Duration + Send + Sync;

/// A target function in memory. Clones share their state: keep one to ask what the target saw
/// after handing the other to the relay.
#[derive(Clone)]
pub struct MemoryTarget {
    answer: Arc<Answer>,
    /// When set, how long each envelope takes (tests on tokio's paused clock).
    pace: Option<Arc<Pace>>,
    payload_sizes: Arc<Mutex<Vec<usize>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    /// (partition key, sequence number) of each record, as the target finished with it.
    processed: Arc<Mutex<Vec<(String, String)>>>,
    /// Envelopes that arrived while another envelope with one of their keys was in flight.
    overlaps: Arc<AtomicUsize>,
    keys_in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

/// The lock's data, also after a panic elsewhere (a test's assertion) poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryTarget {
    /// A target that answers each envelope with `answer(envelope)`. An envelope takes a few
    /// milliseconds, less for later ones of a batch (5 ms plus 1 ms per 100 below sequence
    /// number 2000): envelopes sent together finish out of order, which shows when the relay
    /// does not keep a key's order.
    pub fn new(
        answer: impl Fn(&DeliveryRequest) -> Result<InvokeReply, InvokeFailure> + Send + Sync + 'static,
    ) -> Self {
        Self {
            answer: Arc::new(answer),
            pace: None,
            payload_sizes: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            processed: Arc::default(),
            overlaps: Arc::default(),
            keys_in_flight: Arc::default(),
        }
    }

    /// A target that answers with `answer(envelope)` after `pace(envelope)`.
    pub fn paced(
        answer: impl Fn(&DeliveryRequest) -> Result<InvokeReply, InvokeFailure> + Send + Sync + 'static,
        pace: impl Fn(&DeliveryRequest) -> Duration + Send + Sync + 'static,
    ) -> Self {
        let pace: Arc<Pace> = Arc::new(pace);
        Self {
            pace: Some(pace),
            ..Self::new(answer)
        }
    }

    /// The size of each payload received, in the order they arrived.
    pub fn payload_sizes(&self) -> Vec<usize> {
        lock(&self.payload_sizes).clone()
    }

    /// The most envelopes the target had in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// How many envelopes arrived while another envelope with one of their keys was in flight.
    pub fn overlaps(&self) -> usize {
        self.overlaps.load(Ordering::SeqCst)
    }

    /// The (numeric) sequence numbers the target processed for each partition key, in the
    /// order it did.
    pub fn processed_per_key(&self) -> HashMap<String, Vec<u64>> {
        let mut per_key: HashMap<String, Vec<u64>> = HashMap::new();
        for (key, sequence_number) in lock(&self.processed).iter() {
            if let Ok(sequence_number) = sequence_number.parse() {
                per_key
                    .entry(key.clone())
                    .or_default()
                    .push(sequence_number);
            }
        }
        per_key
    }

    /// Counts an overlap if one of `keys` is already in flight, and marks them in flight.
    fn arrive(&self, keys: &HashSet<String>) {
        let mut in_flight = lock(&self.keys_in_flight);
        let mut overlap = false;
        for key in keys {
            let n = in_flight.entry(key.clone()).or_default();
            overlap |= *n > 0;
            *n += 1;
        }
        if overlap {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Marks `keys` no longer in flight.
    fn leave(&self, keys: HashSet<String>) {
        let mut in_flight = lock(&self.keys_in_flight);
        for key in keys {
            if let Some(n) = in_flight.get_mut(&key) {
                *n -= 1;
            }
        }
    }
}

#[async_trait]
impl TargetInvoker for MemoryTarget {
    async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeReply, InvokeFailure> {
        let request = DeliveryRequest::decode(&payload).map_err(|e| InvokeFailure {
            kind: InvokeFailureKind::Invoke,
            message: format!("the memory target cannot read the envelope: {e}"),
        })?;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        lock(&self.payload_sizes).push(payload.len());
        let keys: HashSet<String> = (request.records.iter())
            .map(|r| r.partition_key.clone())
            .collect();
        self.arrive(&keys);
        let took = match &self.pace {
            Some(pace) => pace(&request),
            None => {
                let first = (request.records.first())
                    .and_then(|r| r.sequence_number.parse::<u64>().ok())
                    .unwrap_or(0);
                Duration::from_millis(5 + (2000 - first.min(2000)) / 100)
            }
        };
        tokio::time::sleep(took).await;
        let reply = (self.answer)(&request);
        lock(&self.processed).extend(
            (request.records.iter()).map(|r| (r.partition_key.clone(), r.sequence_number.clone())),
        );
        self.leave(keys);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        reply
    }
}
