//! Splits a batch into envelopes that each fit one synchronous Invoke request.

use std::mem::take;

use shared::envelope::{empty_request_len, DeliveryRequest, RelayedRecord};

/// The plan for one batch: envelopes to send, and records too large to send at all. Every
/// record is in exactly one of the two, under its position (its index in the planned records).
#[derive(Debug, Default)]
pub struct ChunkPlan {
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

/// Packs records in order into envelopes of at most `max_bytes` encoded bytes. Envelope ids are
/// `<batch_id>-<n>`. A record that cannot fit even alone goes to `oversized` with its size.
pub fn plan(batch_id: &str, records: Vec<RelayedRecord>, max_bytes: usize) -> ChunkPlan {
    let mut plan = ChunkPlan::default();
    let mut positions: Vec<usize> = Vec::new();
    let mut current: Vec<RelayedRecord> = Vec::new();
    let mut current_len = 0usize;
    // Ids grow with the chunk count; measure with the longest id this batch can produce.
    let base = empty_request_len(&format!("{batch_id}-{}", records.len()));
    for (position, record) in records.into_iter().enumerate() {
        let len = record.encoded_len();
        // `len` counts a separator; the first record of an envelope has none.
        if base + len - 1 > max_bytes {
            let size = base + len - 1;
            plan.oversized.push(Oversized {
                position,
                record,
                size,
            });
            continue;
        }
        if !current.is_empty() && base + current_len + len - 1 > max_bytes {
            plan.push(batch_id, take(&mut positions), take(&mut current));
            current_len = 0;
        }
        current_len += len;
        positions.push(position);
        current.push(record);
    }
    if !current.is_empty() {
        plan.push(batch_id, positions, current);
    }
    plan
}

impl ChunkPlan {
    /// Adds the next envelope, `<batch_id>-<n>`.
    fn push(&mut self, batch_id: &str, positions: Vec<usize>, records: Vec<RelayedRecord>) {
        let id = format!("{batch_id}-{}", self.envelopes.len());
        let request = DeliveryRequest::new(id, records);
        self.envelopes.push(Envelope { positions, request });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::MAX_INVOKE_REQUEST_BYTES;
    use shared::limits::LAMBDA_SYNC_PAYLOAD_LIMIT;

    fn record(seq: usize, size: usize) -> RelayedRecord {
        RelayedRecord {
            sequence_number: format!("4959{seq:020}"),
            partition_key: format!("key-{seq}"),
            event_id: format!("shardId-000000000000:4959{seq:020}"),
            approximate_arrival_ms: Some(1_764_000_000_000),
            data: vec![b'x'; size],
        }
    }

    fn sequence_numbers(plan: &ChunkPlan) -> Vec<String> {
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
