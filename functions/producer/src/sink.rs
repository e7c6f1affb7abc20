//! Where records go: the Kinesis stream in Lambda, an in-memory sink in tests.

use async_trait::async_trait;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::Blob;

/// One entry of a PutRecords call: one record, or a KPL aggregate of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEntry {
    /// The record's id (of an aggregate: its first user record's), for the logs.
    pub record_id: String,
    /// The ids of the user records a KPL aggregate holds, in order; empty for a plain entry,
    /// which is the one record `record_id`.
    pub user_record_ids: Vec<String>,
    pub partition_key: String,
    /// The shard's hash key to write to instead of the partition key's hash (a user record of
    /// a KPL aggregate that `relayctl redrive` writes back with the key its producer gave it).
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
}

impl PutEntry {
    /// What counts against Kinesis's per-record and per-call limits: data plus partition key.
    pub fn billed_bytes(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }

    /// The ids of the records this entry writes: an aggregate's user records, else its own.
    pub fn record_ids(&self) -> &[String] {
        if self.user_record_ids.is_empty() {
            std::slice::from_ref(&self.record_id)
        } else {
            &self.user_record_ids
        }
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
                .set_explicit_hash_key(entry.explicit_hash_key.clone())
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_credential_types::Credentials;
    use aws_sdk_kinesis::config::{BehaviorVersion, Region};
    use aws_smithy_http_client::test_util::infallible_client_fn;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// A Kinesis client whose HTTP layer answers every request with `status` and `body`, and
    /// keeps the requests' bodies.
    fn kinesis_answering(
        status: u16,
        body: &'static str,
        sent: Arc<Mutex<Vec<serde_json::Value>>>,
    ) -> aws_sdk_kinesis::Client {
        let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
            let request_body = request.body().bytes().unwrap_or_default();
            sent.lock()
                .unwrap()
                .push(serde_json::from_slice(request_body).unwrap());
            http::Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.1")
                .body(SdkBody::from(body))
                .unwrap()
        });
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .http_client(http)
            .build();
        aws_sdk_kinesis::Client::from_conf(config)
    }

    fn entry(id: &str) -> PutEntry {
        PutEntry {
            record_id: id.into(),
            user_record_ids: Vec::new(),
            partition_key: id.into(),
            explicit_hash_key: None,
            data: id.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn each_entry_gets_its_own_result_in_order() {
        let answer = r#"{"FailedRecordCount":1,"Records":[
            {"SequenceNumber":"1","ShardId":"shardId-000000000000"},
            {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"}]}"#;
        let sent = Arc::default();
        let stream = "arn:aws:kinesis:eu-west-1:111111111111:stream/s";
        let sink = KinesisSink::new(
            kinesis_answering(200, answer, Arc::clone(&sent)),
            stream.into(),
        );
        let hashed = PutEntry {
            explicit_hash_key: Some("42".into()),
            ..entry("b")
        };
        let results = sink.put_records(&[entry("a"), hashed]).await.unwrap();
        assert_eq!(
            results,
            vec![
                EntryResult::Written,
                EntryResult::Failed {
                    code: "ProvisionedThroughputExceededException".into(),
                    message: "Rate exceeded".into(),
                }
            ]
        );
        let sent = sent.lock().unwrap();
        assert_eq!(sent[0]["StreamARN"], stream);
        assert_eq!(sent[0]["Records"][1]["PartitionKey"], "b");
        assert_eq!(sent[0]["Records"][1]["Data"], "Yg==");
        assert_eq!(sent[0]["Records"][1]["ExplicitHashKey"], "42");
        assert_eq!(sent[0]["Records"][0].get("ExplicitHashKey"), None);
    }

    #[tokio::test]
    async fn a_refused_call_names_the_stream_and_the_error() {
        let missing = r#"{"__type":"ResourceNotFoundException","message":"Stream s not found"}"#;
        let sent = Arc::default();
        let sink = KinesisSink::new(
            kinesis_answering(400, missing, Arc::clone(&sent)),
            "s".into(),
        );
        let err = sink.put_records(&[entry("a")]).await.unwrap_err();
        assert!(err.starts_with("PutRecords on s failed: "), "{err}");
        assert!(err.contains("ResourceNotFoundException"), "{err}");
        assert_eq!(sent.lock().unwrap()[0]["StreamName"], "s");
    }
}
