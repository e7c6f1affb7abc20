//! One record as the handler sees it.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use shared::envelope::RelayedRecord;

/// One record as the handler sees it (decoded from the envelope's `RelayedRecord`).
///
/// Besides the record's own fields it carries what the handler tells the library about it for
/// the record's log line and the delivery's metrics line: [`Record::set_record_id`],
/// [`Record::set_end_to_end_latency_ms`] and [`Record::mark_duplicate`].
#[derive(Debug)]
pub struct Record {
    data: Vec<u8>,
    partition_key: String,
    sequence_number: String,
    sub_sequence_number: Option<u64>,
    explicit_hash_key: Option<String>,
    event_id: String,
    approximate_arrival_ms: Option<i64>,
    delivery_id: String,
    notes: Mutex<Notes>,
}

/// What the handler noted about a record (see [`Record`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Notes {
    pub(crate) record_id: Option<String>,
    pub(crate) latency_ms: Option<u64>,
    pub(crate) duplicate: bool,
}

impl Record {
    /// The record of `relayed` with its data decoded, or why the data is not base64.
    pub(crate) fn decode(relayed: &RelayedRecord, delivery_id: &str) -> Result<Self, String> {
        let data = (relayed.data.decode()).map_err(|e| format!("data is not base64: {e}"))?;
        Ok(Self {
            data,
            partition_key: relayed.partition_key.clone(),
            sequence_number: relayed.sequence_number.clone(),
            sub_sequence_number: relayed.sub_sequence_number,
            explicit_hash_key: relayed.explicit_hash_key.clone(),
            event_id: relayed.event_id.clone(),
            approximate_arrival_ms: relayed.approximate_arrival_ms,
            delivery_id: delivery_id.to_string(),
            notes: Mutex::new(Notes::default()),
        })
    }

    /// The record's bytes, as the producer wrote them to the stream.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The record's Kinesis partition key.
    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }

    /// The record's Kinesis sequence number (unique within its shard; a redriven record gets a
    /// new one).
    pub fn sequence_number(&self) -> &str {
        &self.sequence_number
    }

    /// For a user record of a KPL aggregate that the relay de-aggregated: its index within the
    /// aggregate (the KCL's sub-sequence number). Its [`Self::sequence_number`] is the
    /// aggregate's, which the aggregate's other user records share. `None` for a plain record.
    pub fn sub_sequence_number(&self) -> Option<u64> {
        self.sub_sequence_number
    }

    /// The explicit hash key the producer gave a user record of a KPL aggregate, if any (the
    /// Kinesis event does not carry a plain record's).
    pub fn explicit_hash_key(&self) -> Option<&str> {
        self.explicit_hash_key.as_deref()
    }

    /// The record's correlation id: its shard and sequence number as the event source mapping
    /// names it (`eventID`), which the relay's log lines and dead letters carry too.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// When Kinesis received the record, if the envelope says so (the field is optional).
    pub fn approximate_arrival(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.approximate_arrival_ms?)
    }

    /// The id of the relay's Invoke that carries the record (the envelope's `delivery_id`).
    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }

    /// Names the record in its `record processed` log line (`record_id`) by the application's own
    /// id for it; without it the line names the record by its partition key.
    pub fn set_record_id(&self, id: impl Into<String>) {
        self.notes().record_id = Some(id.into());
    }

    /// The record's end-to-end latency as the handler measures it (for instance from its
    /// creation by the producer), in milliseconds: logged as `latency_ms` in the record's line
    /// and one sample of the delivery's `EndToEndLatency` metric.
    pub fn set_end_to_end_latency_ms(&self, milliseconds: u64) {
        self.notes().latency_ms = Some(milliseconds);
    }

    /// Says the handler recognised the record as a redelivery it had already processed (its own
    /// memory, not the idempotency store): logged as `duplicate: true` and counted in
    /// `DuplicatesRecognised`.
    pub fn mark_duplicate(&self) {
        self.notes().duplicate = true;
    }

    /// A copy of what the handler noted.
    pub(crate) fn noted(&self) -> Notes {
        self.notes().clone()
    }

    fn notes(&self) -> std::sync::MutexGuard<'_, Notes> {
        self.notes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use shared::envelope::RecordData;

    use super::*;

    fn relayed() -> RelayedRecord {
        RelayedRecord {
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
            sub_sequence_number: None,
            partition_key: "order-7".into(),
            explicit_hash_key: None,
            event_id: "shardId-000000000003:4959033827149025660855969253836".into(),
            approximate_arrival_ms: Some(1_764_046_800_000),
            data: RecordData::encode(b"{\"n\":1}"),
        }
    }

    #[test]
    fn a_decoded_record_keeps_the_envelopes_ids_and_data() {
        let record = Record::decode(&relayed(), "delivery-42").unwrap();
        assert_eq!(
            record.event_id(),
            "shardId-000000000003:4959033827149025660855969253836"
        );
        assert_eq!(record.delivery_id(), "delivery-42");
        assert_eq!(record.partition_key(), "order-7");
        assert_eq!(record.data(), b"{\"n\":1}");
        assert_eq!(record.sub_sequence_number(), None);
        assert_eq!(record.explicit_hash_key(), None);
    }

    #[test]
    fn a_user_record_of_an_aggregate_keeps_its_sub_sequence_number_and_hash_key() {
        let user = RelayedRecord {
            sub_sequence_number: Some(4),
            explicit_hash_key: Some("42".into()),
            ..relayed()
        };
        let record = Record::decode(&user, "delivery-42").unwrap();
        assert_eq!(record.sub_sequence_number(), Some(4));
        assert_eq!(record.explicit_hash_key(), Some("42"));
        assert_eq!(record.sequence_number(), user.sequence_number);
    }
}
