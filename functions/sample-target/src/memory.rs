//! What the target remembers about records within one container, bounded by
//! `TARGET_DEDUP_CAPACITY` whatever the traffic: a warm container lives for hours and sees every
//! record id once, so anything kept per id without a bound grows until the container dies.

use std::collections::{HashMap, VecDeque};

/// Per-record memory of one container. Capacity 0 keeps nothing per record.
pub(crate) struct Memory {
    /// Ids answered `ok`, so a redelivery is answered `ok` again without processing it twice.
    answered: Recent<()>,
    /// Deliveries so far of records that asked for simulated transient failures and have not
    /// been answered `ok` yet. Kept apart from `answered` so a record that is never answered
    /// `ok` (the relay gives up on it) is still forgotten in time.
    deliveries: Recent<u32>,
}

impl Memory {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            answered: Recent::new(capacity),
            deliveries: Recent::new(capacity),
        }
    }

    pub(crate) fn was_answered(&self, id: &str) -> bool {
        self.answered.contains(id)
    }

    /// Counts one more delivery of `id` and returns the count, or `None` when nothing can be
    /// counted (capacity 0).
    pub(crate) fn count_delivery(&mut self, id: &str) -> Option<u32> {
        if let Some(count) = self.deliveries.get_mut(id) {
            *count += 1;
            return Some(*count);
        }
        self.deliveries.insert(id, 1).then_some(1)
    }

    /// Remembers that `id` was answered `ok`; its delivery count is no longer needed.
    pub(crate) fn answered_ok(&mut self, id: &str) {
        self.deliveries.remove(id);
        self.answered.insert(id, ());
    }

    /// Ids remembered, for any reason.
    #[cfg(test)]
    pub(crate) fn ids(&self) -> usize {
        self.answered.len() + self.deliveries.len()
    }
}

/// At most `capacity` ids with a value each; the id inserted first is forgotten first, and
/// looking an id up or updating its value does not make it younger.
struct Recent<V> {
    capacity: usize,
    values: HashMap<String, V>,
    /// The ids of `values`, oldest first.
    order: VecDeque<String>,
}

impl<V> Recent<V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            values: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.values.contains_key(id)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut V> {
        self.values.get_mut(id)
    }

    /// Adds `id` unless it is already there, forgetting the oldest ids beyond the capacity.
    /// Returns whether `id` is remembered now (never with capacity 0).
    fn insert(&mut self, id: &str, value: V) -> bool {
        if self.capacity == 0 {
            return false;
        }
        if self.values.contains_key(id) {
            return true;
        }
        self.values.insert(id.to_string(), value);
        self.order.push_back(id.to_string());
        // One id in, so at most one out: the oldest.
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.values.remove(&oldest);
            }
        }
        true
    }

    /// Forgets `id`. Linear in the number of ids, but only when `id` is there: the one caller,
    /// [`Memory::answered_ok`], finds one only for records that asked for simulated failures.
    fn remove(&mut self, id: &str) {
        if self.values.remove(id).is_some() {
            self.order.retain(|kept| kept != id);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_zero_keeps_nothing() {
        let mut memory = Memory::new(0);
        for i in 0..1000 {
            let id = format!("id-{i}");
            assert_eq!(memory.count_delivery(&id), None);
            memory.answered_ok(&id);
            assert!(!memory.was_answered(&id));
        }
        assert_eq!(memory.ids(), 0);
    }

    #[test]
    fn the_oldest_id_is_forgotten_first_and_a_lookup_does_not_make_it_younger() {
        let mut recent = Recent::new(2);
        assert!(recent.insert("a", 1));
        assert!(recent.insert("b", 2));
        *recent.get_mut("a").unwrap() += 1;
        assert!(
            recent.insert("a", 9),
            "already there: kept, value unchanged"
        );
        assert_eq!(recent.get_mut("a").copied(), Some(2));
        assert!(recent.insert("c", 3));
        assert_eq!(recent.len(), 2);
        assert!(!recent.contains("a") && recent.contains("b") && recent.contains("c"));
    }

    #[test]
    fn a_removed_id_leaves_the_order_of_the_others_intact() {
        let mut recent = Recent::new(2);
        recent.insert("a", ());
        recent.insert("b", ());
        recent.remove("a");
        recent.remove("never-there");
        recent.insert("c", ());
        recent.insert("d", ());
        assert_eq!(recent.len(), 2, "still bounded");
        assert!(!recent.contains("b") && recent.contains("c") && recent.contains("d"));
    }

    #[test]
    fn deliveries_count_until_answered_then_start_again_once_forgotten() {
        let mut memory = Memory::new(1);
        assert_eq!(memory.count_delivery("a"), Some(1));
        assert_eq!(memory.count_delivery("a"), Some(2));
        memory.answered_ok("a");
        assert!(memory.was_answered("a"));
        assert_eq!(memory.ids(), 1, "the count went when the answer came");
        memory.answered_ok("b");
        assert!(!memory.was_answered("a"));
        assert_eq!(memory.count_delivery("a"), Some(1));
        assert_eq!(
            memory.count_delivery("c"),
            Some(1),
            "c pushes a's count out"
        );
        assert_eq!(memory.count_delivery("a"), Some(1));
        assert_eq!(memory.ids(), 2);
    }
}
