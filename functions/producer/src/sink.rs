//! Where records go: the Kinesis stream in Lambda, an in-memory sink in tests.

use async_trait::async_trait;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::Blob;

/// One entry of a PutRecords call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEntry {
    pub record_id: String,
    pub partition_key: String,
    pub data: Vec<u8>,
}

impl PutEntry {
    /// What counts against Kinesis's per-record and per-call limits: data plus partition key.
    pub fn billed_bytes(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// The result of one entry, in the order the entries were sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Written,
    Failed { code: String, message: String },
}

#[async_trait]
pub trait RecordSink: Send + Sync {
    /// One PutRecords call. `Err` = the whole call failed (after the SDK's own retries).
    async fn put_records(&self, entries: &[PutEntry]) -> Result<Vec<EntryResult>, String>;
}

pub struct KinesisSink {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisSink {
    pub fn new(client: aws_sdk_kinesis::Client, stream: String) -> Self {
        Self { client, stream }
    }
}

#[async_trait]
impl RecordSink for KinesisSink {
    async fn put_records(&self, entries: &[PutEntry]) -> Result<Vec<EntryResult>, String> {
        let mut request = self.client.put_records();
        request = if self.stream.starts_with("arn:") {
            request.stream_arn(&self.stream)
        } else {
            request.stream_name(&self.stream)
        };
        for entry in entries {
            let entry = PutRecordsRequestEntry::builder()
                .partition_key(&entry.partition_key)
                .data(Blob::new(entry.data.clone()))
                .build()
                .map_err(|e| format!("invalid PutRecords entry: {e}"))?;
            request = request.records(entry);
        }
        let output = request.send().await.map_err(|e| {
            format!(
                "PutRecords on {} failed: {}",
                self.stream,
                DisplayErrorContext(&e)
            )
        })?;
        Ok(output
            .records()
            .iter()
            .map(|r| match r.error_code() {
                None => EntryResult::Written,
                Some(code) => EntryResult::Failed {
                    code: code.to_string(),
                    message: r.error_message().unwrap_or_default().to_string(),
                },
            })
            .collect())
    }
}
