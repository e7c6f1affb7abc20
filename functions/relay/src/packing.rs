//! Splits a batch into envelopes that each fit one synchronous Invoke request: [`plan`] packs
//! the whole batch in order (the default), [`lanes`] sorts it into lanes by partition key for
//! key-ordered delivery.

use std::collections::{HashMap, VecDeque};

use shared::envelope::{empty_request_len, DeliveryRequest, RelayedRecord};

/// The plan for one batch: envelopes to send, and records too large to send at all. Every
/// record is in exactly one of the two, under its position (its index in the planned records).
#[derive(Debug, Default)]
pub struct PackingPlan {
    pub envelopes: Vec<Envelope>,
    pub oversized: Vec<Oversized>,
}

/// One Invoke request, and the position of each of its records, in the same order.
#[derive(Debug)]
pub struct Envelope {
    pub positions: Vec<usize>,
    pub request: DeliveryRequest,
}

/// A record that cannot fit in an Invoke request even alone.
#[derive(Debug)]
pub struct Oversized {
    pub position: usize,
    pub record: RelayedRecord,
    /// The size of the smallest Invoke request that would carry it.
    pub size: usize,
}

/// A record that fits an Invoke request, with its position and the bytes it adds to one.
#[derive(Debug)]
struct Pending {
    position: usize,
    /// [`RelayedRecord::encoded_len`]: its bytes in a request, separator included.
    len: usize,
    record: RelayedRecord,
}

/// The size rule for the envelopes of one batch: `max_bytes` per request, measured with the
/// longest envelope id the batch can produce (ids grow with the envelope count).
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// An encoded request with the longest id and no records.
    base: usize,
    max_bytes: usize,
}

impl Limit {
    fn new(longest_id: &str, max_bytes: usize) -> Self {
        let base = empty_request_len(longest_id);
        Self { base, max_bytes }
    }

    /// The size of a request holding records of `len` encoded bytes in all (separators
    /// included: the first record of an envelope has none).
    fn request(self, len: usize) -> usize {
        self.base + len - 1
    }

    /// Sorts records into those that fit a request alone and those that never can.
    fn sort_out(self, records: Vec<RelayedRecord>) -> (Vec<Pending>, Vec<Oversized>) {
        let mut pending = Vec::with_capacity(records.len());
        let mut oversized = Vec::new();
        for (position, record) in records.into_iter().enumerate() {
            let len = record.encoded_len();
            let size = self.request(len);
            if size > self.max_bytes {
                oversized.push(Oversized {
                    position,
                    record,
                    size,
                });
            } else {
                pending.push(Pending {
                    position,
                    len,
                    record,
                });
            }
        }
        (pending, oversized)
    }

    /// Takes from the front of `queue` the most records that fit one request, at most
    /// `max_records` of them: at least one unless `queue` is empty, since every queued record
    /// fits alone.
    fn take(self, queue: &mut VecDeque<Pending>, max_records: usize) -> Vec<Pending> {
        let mut taken: Vec<Pending> = Vec::new();
        let mut used = 0usize;
        while let Some(next) = queue.front() {
            let full = taken.len() == max_records
                || (!taken.is_empty() && self.request(used + next.len) > self.max_bytes);
            if full {
                break;
            }
            used += next.len;
            taken.extend(queue.pop_front());
        }
        taken
    }
}

/// An envelope with id `id` of the records `taken`, in their order.
fn envelope(id: String, taken: Vec<Pending>) -> Envelope {
    let (positions, records) = taken.into_iter().map(|p| (p.position, p.record)).unzip();
    let request = DeliveryRequest::new(id, records);
    Envelope { positions, request }
}

/// Packs records in order into envelopes of at most `max_bytes` encoded bytes. Envelope ids are
/// `<batch_id>-<n>`. A record that cannot fit even alone goes to `oversized` with its size.
pub fn plan(batch_id: &str, records: Vec<RelayedRecord>, max_bytes: usize) -> PackingPlan {
    let limit = Limit::new(&format!("{batch_id}-{}", records.len()), max_bytes);
    let (pending, oversized) = limit.sort_out(records);
    let mut queue = VecDeque::from(pending);
    let mut envelopes = Vec::new();
    loop {
        let taken = limit.take(&mut queue, usize::MAX);
        if taken.is_empty() {
            break;
        }
        let id = format!("{batch_id}-{}", envelopes.len());
        envelopes.push(envelope(id, taken));
    }
    PackingPlan {
        envelopes,
        oversized,
    }
}

/// A batch sorted into lanes for key-ordered delivery, and the records too large to send.
#[derive(Debug)]
pub struct LanePlan {
    pub lanes: Vec<Lane>,
    pub oversized: Vec<Oversized>,
}

/// Records of some partition keys, in batch order, to be sent one envelope after another:
/// every record of a key is in one lane, so the target gets a key's records in order as long as
/// each envelope of a lane is sent only once the one before it has been answered.
#[derive(Debug)]
pub struct Lane {
    /// `<batch_id>-<lane>`; its envelopes are `<batch_id>-<lane>.<n>`.
    id: String,
    queue: VecDeque<Pending>,
    limit: Limit,
    max_records: usize,
    sent: usize,
}

/// A record a lane keeps back because an earlier record of its key was not delivered.
#[derive(Debug)]
pub struct HeldBack {
    pub position: usize,
    pub record: RelayedRecord,
}

/// Sorts records into at most `lanes` lanes by partition key for envelopes of at most
/// `max_records` records and `max_bytes` bytes. Keys go, most records first, each to the lane
/// with the fewest records so far, so the lanes finish about together; empty lanes are dropped.
/// A record that cannot fit even alone goes to `oversized` with its size.
pub fn lanes(
    batch_id: &str,
    records: Vec<RelayedRecord>,
    max_bytes: usize,
    max_records: usize,
    lanes: usize,
) -> LanePlan {
    let lanes = lanes.max(1);
    let longest_id = format!("{batch_id}-{lanes}.{}", records.len());
    let limit = Limit::new(&longest_id, max_bytes);
    let (pending, oversized) = limit.sort_out(records);
    let lane_of = assign_keys(&pending, lanes);
    let mut queues: Vec<VecDeque<Pending>> = (0..lanes).map(|_| VecDeque::new()).collect();
    for (record, lane) in pending.into_iter().zip(lane_of) {
        queues[lane].push_back(record);
    }
    let lanes = (queues.into_iter().filter(|q| !q.is_empty()).enumerate())
        .map(|(n, queue)| Lane {
            id: format!("{batch_id}-{n}"),
            queue,
            limit,
            max_records: max_records.max(1),
            sent: 0,
        })
        .collect();
    LanePlan { lanes, oversized }
}

/// The lane of each record, by its partition key: keys by record count, most first (ties: first
/// seen first), each to the lane with the fewest records so far (ties: the lowest lane).
fn assign_keys(pending: &[Pending], lanes: usize) -> Vec<usize> {
    let mut keys: Vec<(&str, usize, usize)> = Vec::new(); // key, records, first position
    let mut index: HashMap<&str, usize> = HashMap::new();
    for p in pending {
        let key = p.record.partition_key.as_str();
        let at = *index.entry(key).or_insert_with(|| {
            keys.push((key, 0, p.position));
            keys.len() - 1
        });
        keys[at].1 += 1;
    }
    keys.sort_by_key(|&(_, count, first)| (std::cmp::Reverse(count), first));
    let mut load = vec![0usize; lanes];
    let mut lane_of = HashMap::with_capacity(keys.len());
    for (key, count, _) in keys {
        let lightest = (0..lanes).min_by_key(|&l| (load[l], l)).unwrap_or(0);
        load[lightest] += count;
        lane_of.insert(key, lightest);
    }
    (pending.iter())
        .map(|p| lane_of[p.record.partition_key.as_str()])
        .collect()
}

impl Lane {
    /// The lane's next envelope, `None` once every record has been sent or held back.
    pub fn next_envelope(&mut self) -> Option<Envelope> {
        let taken = self.limit.take(&mut self.queue, self.max_records);
        if taken.is_empty() {
            return None;
        }
        let id = format!("{}.{}", self.id, self.sent);
        self.sent += 1;
        Some(envelope(id, taken))
    }

    /// Takes the lane's remaining records of the keys `stopped` says are stopped, so that none
    /// of them is sent after an earlier record of its key failed.
    pub fn hold_back(&mut self, stopped: impl Fn(&str) -> bool) -> Vec<HeldBack> {
        let (held, kept): (VecDeque<Pending>, VecDeque<Pending>) = self
            .queue
            .drain(..)
            .partition(|p| stopped(&p.record.partition_key));
        self.queue = kept;
        held.into_iter()
            .map(|p| HeldBack {
                position: p.position,
                record: p.record,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::MAX_INVOKE_REQUEST_BYTES;
    use shared::envelope::RecordData;
    use shared::limits::LAMBDA_SYNC_PAYLOAD_LIMIT;

    fn record(seq: usize, size: usize) -> RelayedRecord {
        RelayedRecord {
            sequence_number: format!("4959{seq:020}"),
            sub_sequence_number: None,
            partition_key: format!("key-{seq}"),
            explicit_hash_key: None,
            event_id: format!("shardId-000000000000:4959{seq:020}"),
            approximate_arrival_ms: Some(1_764_000_000_000),
            data: RecordData::encode(&vec![b'x'; size]),
        }
    }

    fn sequence_numbers(plan: &PackingPlan) -> Vec<String> {
        plan.envelopes
            .iter()
            .flat_map(|e| e.request.records.iter().map(|r| r.sequence_number.clone()))
            .collect()
    }

    #[test]
    fn small_batch_is_one_envelope() {
        let plan = plan(
            "b",
            (0..100).map(|i| record(i, 100)).collect(),
            MAX_INVOKE_REQUEST_BYTES,
        );
        assert_eq!(plan.envelopes.len(), 1);
        assert_eq!(plan.envelopes[0].request.records.len(), 100);
        assert!(plan.oversized.is_empty());
    }

    #[test]
    fn batch_over_six_megabytes_is_split_under_the_limit_in_order() {
        // Ten 1 MiB Kinesis records: ~14 MB once base64-encoded.
        let records: Vec<_> = (0..10).map(|i| record(i, 1024 * 1024)).collect();
        let expected: Vec<_> = records.iter().map(|r| r.sequence_number.clone()).collect();
        let plan = plan("batch", records, MAX_INVOKE_REQUEST_BYTES);
        assert!(
            plan.envelopes.len() >= 3,
            "{} envelopes",
            plan.envelopes.len()
        );
        for Envelope { request, .. } in &plan.envelopes {
            let len = request.encode().len();
            assert!(
                len < LAMBDA_SYNC_PAYLOAD_LIMIT,
                "envelope {} is {len} bytes",
                request.delivery_id
            );
        }
        assert_eq!(
            sequence_numbers(&plan),
            expected,
            "every record once, in order"
        );
    }

    #[test]
    fn envelopes_are_filled_right_up_to_the_boundary() {
        let records: Vec<_> = (0..50).map(|i| record(i, 1000 + i * 37)).collect();
        let max = 20_000;
        let plan = plan("b", records, max);
        for pair in plan.envelopes.windows(2) {
            let (first, next) = (&pair[0].request, &pair[1].request);
            let len = first.encode().len();
            assert!(len <= max);
            // The next envelope's first record did not fit: adding it would cross the limit.
            let mut grown = first.clone();
            grown.records.push(next.records[0].clone());
            assert!(
                grown.encode().len() > max,
                "{} could have held one more record",
                first.delivery_id
            );
        }
    }

    #[test]
    fn exact_fit_is_accepted() {
        let one = DeliveryRequest::new("b-1", vec![record(0, 5000)])
            .encode()
            .len();
        let plan = plan("b", vec![record(0, 5000)], one);
        assert_eq!(plan.envelopes.len(), 1);
        assert!(plan.oversized.is_empty());
        let plan_too_small = super::plan("b", vec![record(0, 5000)], one - 1);
        assert_eq!(plan_too_small.oversized.len(), 1);
        assert!(plan_too_small.envelopes.is_empty());
    }

    #[test]
    fn two_records_that_fit_exactly_share_one_envelope_and_one_byte_less_splits_them() {
        let records = || vec![record(0, 3000), record(1, 4000)];
        let exact = DeliveryRequest::new("b-0", records()).encode().len();
        let plan = plan("b", records(), exact);
        assert_eq!(plan.envelopes.len(), 1);
        assert_eq!(plan.envelopes[0].request.encode().len(), exact);
        let plan = super::plan("b", records(), exact - 1);
        assert_eq!(plan.envelopes.len(), 2);
        assert!(plan.oversized.is_empty());
    }

    #[test]
    fn a_request_of_6_291_455_bytes_is_sent_and_one_byte_more_is_set_aside() {
        // Lambda takes a synchronous request *smaller than* 6,291,456 bytes. The partition key
        // (a JSON string, one byte a character) sizes the request to the byte.
        let sized = |key_len: usize| RelayedRecord {
            partition_key: "k".repeat(key_len),
            explicit_hash_key: None,
            ..record(0, 4_700_000)
        };
        let one_key_byte = DeliveryRequest::new("b-0", vec![sized(1)]).encode().len();
        let key_len = 1 + MAX_INVOKE_REQUEST_BYTES - one_key_byte;
        let fits = plan("b", vec![sized(key_len)], MAX_INVOKE_REQUEST_BYTES);
        assert_eq!(
            fits.envelopes[0].request.encode().len(),
            LAMBDA_SYNC_PAYLOAD_LIMIT - 1
        );
        let over = plan("b", vec![sized(key_len + 1)], MAX_INVOKE_REQUEST_BYTES);
        assert!(over.envelopes.is_empty());
        assert_eq!(over.oversized[0].size, LAMBDA_SYNC_PAYLOAD_LIMIT);
    }

    #[test]
    fn an_oversized_record_carries_the_size_of_the_request_it_would_need() {
        let needed = DeliveryRequest::new("b-0", vec![record(0, 5000)])
            .encode()
            .len();
        let plan = plan("b", vec![record(0, 5000)], needed - 1);
        assert_eq!(plan.oversized[0].size, needed);
    }

    #[test]
    fn oversized_record_is_set_aside_and_neighbours_still_go() {
        let plan = plan(
            "b",
            vec![record(0, 10), record(1, 50_000), record(2, 10)],
            10_000,
        );
        assert_eq!(plan.oversized.len(), 1);
        assert_eq!(
            plan.oversized[0].record.sequence_number,
            record(1, 0).sequence_number
        );
        assert_eq!(sequence_numbers(&plan).len(), 2);
    }

    #[test]
    fn every_record_keeps_its_position() {
        let records: Vec<_> = [10, 50_000, 3000, 10, 50_000, 6000]
            .into_iter()
            .enumerate()
            .map(|(i, size)| record(i, size))
            .collect();
        let expected: Vec<_> = records.iter().map(|r| r.sequence_number.clone()).collect();
        let plan = plan("b", records, 10_000);
        let mut placed: Vec<(usize, String)> = plan
            .oversized
            .iter()
            .map(|o| (o.position, o.record.sequence_number.clone()))
            .collect();
        for envelope in &plan.envelopes {
            assert_eq!(envelope.positions.len(), envelope.request.records.len());
            let records = envelope.request.records.iter();
            placed.extend(
                (envelope.positions.iter().copied())
                    .zip(records.map(|r| r.sequence_number.clone())),
            );
        }
        assert_eq!(plan.envelopes.len(), 2);
        placed.sort();
        let positions: Vec<usize> = placed.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, (0..expected.len()).collect::<Vec<_>>());
        for (position, sequence_number) in placed {
            assert_eq!(sequence_number, expected[position], "record at {position}");
        }
    }
}

#[cfg(test)]
mod lane_tests {
    use super::*;
    use shared::config::MAX_INVOKE_REQUEST_BYTES;
    use shared::envelope::RecordData;
    use shared::limits::LAMBDA_SYNC_PAYLOAD_LIMIT;

    /// Record `seq` of partition key `key`, with `size` bytes of data.
    fn keyed(seq: usize, key: &str, size: usize) -> RelayedRecord {
        RelayedRecord {
            sequence_number: format!("{seq}"),
            sub_sequence_number: None,
            partition_key: key.into(),
            explicit_hash_key: None,
            event_id: format!("shardId-000000000000:{seq}"),
            approximate_arrival_ms: None,
            data: RecordData::encode(&vec![b'x'; size]),
        }
    }

    /// Each lane drained: its envelopes' (key, sequence number) lists.
    fn drain(plan: &mut LanePlan) -> Vec<Vec<Vec<(String, String)>>> {
        (plan.lanes.iter_mut())
            .map(|lane| {
                std::iter::from_fn(|| lane.next_envelope())
                    .map(|e| {
                        assert_eq!(e.positions.len(), e.request.records.len());
                        (e.request.records.iter())
                            .map(|r| (r.partition_key.clone(), r.sequence_number.clone()))
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_key_is_in_one_lane_in_batch_order_and_keys_are_balanced() {
        // Keys a..e with 5, 4, 3, 2, 2 records, interleaved.
        let keys = "abcdeabcdeabcdabcaa";
        let records = keys
            .chars()
            .enumerate()
            .map(|(i, k)| keyed(i, &k.to_string(), 10))
            .collect();
        let mut plan = lanes("b", records, MAX_INVOKE_REQUEST_BYTES, 100, 3);
        assert!(plan.oversized.is_empty());
        let lanes = drain(&mut plan);
        // a(6) → lane 0; b(4) → lane 1; c(4) → lane 2; d(3) → lane 1 (4 < 4? ties: lowest of
        // the lightest, lanes 1 and 2 both hold 4); e(2) → lane 2 (4 < 7).
        let keys_of = |lane: &Vec<Vec<(String, String)>>| {
            let mut keys: Vec<String> = lane.iter().flatten().map(|(k, _)| k.clone()).collect();
            keys.dedup();
            keys.sort();
            keys.dedup();
            keys
        };
        let expected = [vec!["a"], vec!["b", "d"], vec!["c", "e"]];
        assert_eq!(lanes.len(), 3);
        for (lane, keys) in lanes.iter().zip(expected) {
            assert_eq!(keys_of(lane), keys, "{lane:?}");
            assert_eq!(lane.len(), 1, "one envelope per lane at 100 records");
            let positions: Vec<usize> = lane[0].iter().map(|(_, s)| s.parse().unwrap()).collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        }
        let all: usize = lanes.iter().flatten().map(Vec::len).sum();
        assert_eq!(all, keys.len());
    }

    #[test]
    fn envelopes_hold_at_most_max_records_and_are_numbered_per_lane() {
        let records = (0..7).map(|i| keyed(i, "k", 10)).collect();
        let mut plan = lanes("b", records, MAX_INVOKE_REQUEST_BYTES, 3, 4);
        assert_eq!(
            plan.lanes.len(),
            1,
            "one key, one lane: empty lanes are dropped"
        );
        let lane = &mut plan.lanes[0];
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        while let Some(envelope) = lane.next_envelope() {
            ids.push(envelope.request.delivery_id.clone());
            sizes.push(envelope.positions.clone());
        }
        assert_eq!(ids, ["b-0.0", "b-0.1", "b-0.2"]);
        assert_eq!(sizes, [vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert!(lane.next_envelope().is_none());
    }

    #[test]
    fn zero_lanes_or_zero_records_per_envelope_still_deliver_one_at_a_time() {
        let records = (0..3).map(|i| keyed(i, &format!("k{i}"), 10)).collect();
        let mut plan = lanes("b", records, MAX_INVOKE_REQUEST_BYTES, 0, 0);
        assert_eq!(plan.lanes.len(), 1);
        let lanes = drain(&mut plan);
        assert_eq!(lanes[0].len(), 3);
    }

    #[test]
    fn the_invoke_limit_holds_for_every_envelope_of_a_lane() {
        // Ten 1 MiB records of two keys: ~7 MB per key once base64-encoded, in two lanes.
        let records = (0..10)
            .map(|i| keyed(i, if i % 2 == 0 { "even" } else { "odd" }, 1024 * 1024))
            .collect();
        let mut plan = lanes("batch", records, MAX_INVOKE_REQUEST_BYTES, 100, 2);
        assert_eq!(plan.lanes.len(), 2);
        let mut envelopes = 0;
        for lane in &mut plan.lanes {
            let mut records = 0;
            while let Some(envelope) = lane.next_envelope() {
                let len = envelope.request.encode().len();
                assert!(len < LAMBDA_SYNC_PAYLOAD_LIMIT, "{len}");
                records += envelope.positions.len();
                envelopes += 1;
            }
            assert_eq!(records, 5);
        }
        assert_eq!(envelopes, 2 * 2, "five 1 MiB records need two envelopes");
    }

    #[test]
    fn the_longest_envelope_id_is_measured_exactly() {
        // The limit counts the longest id (`b-3.<records>`): a record that fits with it is sent.
        let record = || keyed(0, "k", 5000);
        let with_longest = DeliveryRequest::new("b-3.1", vec![record()]).encode().len();
        let fits = lanes("b", vec![record()], with_longest, 10, 3);
        assert_eq!((fits.lanes.len(), fits.oversized.len()), (1, 0));
        let over = lanes("b", vec![record()], with_longest - 1, 10, 3);
        assert!(over.lanes.is_empty());
        assert_eq!(over.oversized[0].size, with_longest);
        assert_eq!(over.oversized[0].position, 0);
    }

    #[test]
    fn held_back_takes_the_stopped_keys_and_keeps_the_others_in_order() {
        let records = ["a", "b", "a", "c", "b", "a"]
            .iter()
            .enumerate()
            .map(|(i, k)| keyed(i, k, 10))
            .collect();
        // One lane for all three keys.
        let mut plan = lanes("b", records, MAX_INVOKE_REQUEST_BYTES, 2, 1);
        let lane = &mut plan.lanes[0];
        let first = lane.next_envelope().unwrap();
        assert_eq!(first.positions, [0, 1]);
        let held = lane.hold_back(|key| key == "a");
        let held: Vec<(usize, String)> = (held.into_iter())
            .map(|h| (h.position, h.record.sequence_number))
            .collect();
        assert_eq!(held, [(2, "2".to_string()), (5, "5".to_string())]);
        assert_eq!(lane.next_envelope().unwrap().positions, [3, 4]);
        assert!(lane.next_envelope().is_none());
        assert!(lane.hold_back(|_| true).is_empty());
    }
}
