//! The real Kinesis adapter against a fake HTTP layer (no network): per-entry results of a
//! partially failed PutRecords come back in order, and the producer retries exactly those.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;
use producer::sink::KinesisSink;
use producer::{Producer, ProducerSettings};

#[tokio::test]
async fn partial_put_records_failure_is_retried_entry_by_entry() {
    let requests: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen = requests.clone();
    let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
        let body: serde_json::Value =
            serde_json::from_slice(request.body().bytes().unwrap()).unwrap();
        let count = body["Records"].as_array().unwrap().len();
        let first_call = seen.lock().unwrap().is_empty();
        seen.lock().unwrap().push(body);
        // First call: the second of three entries is throttled. Then everything succeeds.
        let records: Vec<serde_json::Value> = (0..count)
            .map(|i| {
                if first_call && i == 1 {
                    serde_json::json!({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"})
                } else {
                    serde_json::json!({"SequenceNumber": format!("{i}"), "ShardId": "shardId-000000000000"})
                }
            })
            .collect();
        let failed = usize::from(first_call);
        let answer = serde_json::json!({"FailedRecordCount": failed, "Records": records});
        http::Response::builder()
            .status(200)
            .body(SdkBody::from(answer.to_string()))
            .unwrap()
    });
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("AKIASOURCE", "secret", None, None, "test"))
        .http_client(http)
        .load()
        .await;
    let settings = ProducerSettings {
        stream: "cross-account-relay-stream".into(),
        records_per_invocation: 3,
        padding_bytes: 0,
        max_put_attempts: 3,
        retry_base_delay: Duration::from_millis(1),
        aggregation: false,
        max_record_bytes: shared::limits::KINESIS_MAX_RECORD_BYTES,
    };
    let producer = Producer::new(
        KinesisSink::new(aws_sdk_kinesis::Client::new(&sdk), settings.stream.clone()),
        settings,
    );
    let report = producer.produce(chrono::Utc::now()).await.unwrap();
    assert_eq!(
        (
            report.records_written,
            report.put_calls,
            report.retried_entries
        ),
        (3, 2, 1)
    );

    let requests = requests.lock().unwrap();
    assert_eq!(requests[0]["StreamName"], "cross-account-relay-stream");
    let (first, retried) = (partition_keys(&requests[0]), partition_keys(&requests[1]));
    assert_eq!(
        retried,
        vec![first[1]],
        "only the throttled entry is sent again"
    );
}

/// The partition keys of a PutRecords request body, in order.
fn partition_keys(request: &serde_json::Value) -> Vec<&str> {
    request["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["PartitionKey"].as_str().unwrap())
        .collect()
}
