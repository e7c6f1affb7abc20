//! Splits a batch into envelopes that each fit one synchronous Invoke request.

use shared::envelope::{empty_request_len, DeliveryRequest, RelayedRecord};

/// The plan for one batch: envelopes to send, and records too large to send at all.
#[derive(Debug, Default)]
pub struct ChunkPlan {
    pub requests: Vec<DeliveryRequest>,
    pub oversized: Vec<(RelayedRecord, usize)>,
}

/// Packs records in order into envelopes of at most `max_bytes` encoded bytes. Envelope ids are
/// `<batch_id>-<n>`. A record that cannot fit even alone goes to `oversized` with its size.
pub fn plan(batch_id: &str, records: Vec<RelayedRecord>, max_bytes: usize) -> ChunkPlan {
    let mut plan = ChunkPlan::default();
    let mut current: Vec<RelayedRecord> = Vec::new();
    let mut current_len = 0usize;
    // Ids grow with the chunk count; measure with the longest id this batch can produce.
    let base = empty_request_len(&format!("{batch_id}-{}", records.len()));
    for record in records {
        let len = record.encoded_len();
        // `len` counts a separator; the first record of an envelope has none.
        if base + len - 1 > max_bytes {
            plan.oversized.push((record, base + len - 1));
            continue;
        }
        if !current.is_empty() && base + current_len + len - 1 > max_bytes {
            let id = format!("{batch_id}-{}", plan.requests.len());
            plan.requests
                .push(DeliveryRequest::new(id, std::mem::take(&mut current)));
            current_len = 0;
        }
        current_len += len;
        current.push(record);
    }
    if !current.is_empty() {
        let id = format!("{batch_id}-{}", plan.requests.len());
        plan.requests.push(DeliveryRequest::new(id, current));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::{LAMBDA_SYNC_PAYLOAD_LIMIT, MAX_INVOKE_REQUEST_BYTES};

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
        plan.requests
            .iter()
            .flat_map(|r| r.records.iter().map(|r| r.sequence_number.clone()))
            .collect()
    }

    #[test]
    fn small_batch_is_one_envelope() {
        let plan = plan(
            "b",
            (0..100).map(|i| record(i, 100)).collect(),
            MAX_INVOKE_REQUEST_BYTES,
        );
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].records.len(), 100);
        assert!(plan.oversized.is_empty());
    }

    #[test]
    fn batch_over_six_megabytes_is_split_under_the_limit_in_order() {
        // Ten 1 MiB Kinesis records: ~14 MB once base64-encoded.
        let records: Vec<_> = (0..10).map(|i| record(i, 1024 * 1024)).collect();
        let expected: Vec<_> = records.iter().map(|r| r.sequence_number.clone()).collect();
        let plan = plan("batch", records, MAX_INVOKE_REQUEST_BYTES);
        assert!(
            plan.requests.len() >= 3,
            "{} envelopes",
            plan.requests.len()
        );
        for request in &plan.requests {
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
        for pair in plan.requests.windows(2) {
            let len = pair[0].encode().len();
            assert!(len <= max);
            // The next envelope's first record did not fit: adding it would cross the limit.
            let mut grown = pair[0].clone();
            grown.records.push(pair[1].records[0].clone());
            assert!(
                grown.encode().len() > max,
                "{} could have held one more record",
                pair[0].delivery_id
            );
        }
    }

    #[test]
    fn exact_fit_is_accepted() {
        let one = DeliveryRequest::new("b-1", vec![record(0, 5000)])
            .encode()
            .len();
        let plan = plan("b", vec![record(0, 5000)], one);
        assert_eq!(plan.requests.len(), 1);
        assert!(plan.oversized.is_empty());
        let plan_too_small = super::plan("b", vec![record(0, 5000)], one - 1);
        assert_eq!(plan_too_small.oversized.len(), 1);
        assert!(plan_too_small.requests.is_empty());
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
            plan.oversized[0].0.sequence_number,
            record(1, 0).sequence_number
        );
        assert_eq!(sequence_numbers(&plan).len(), 2);
    }
}
