//! The dead-letter bucket's adapter: one S3 object per record the relay gives up on, with the
//! record's data (S3 has no message-size cap that would force dropping it, unlike SQS).

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;

use shared::dead_letter::DeadLetter;

use crate::dead_letters::port::{DeadLetterBucket, WriteError};

/// Writes dead letters under the relay's prefix of the dead-letter bucket.
pub struct S3DeadLetterBucket {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3DeadLetterBucket {
    /// The bucket named `bucket`, written with `client` (the relay's own role).
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> Self {
        Self { client, bucket }
    }
}

/// The object key and body of a dead letter.
pub fn dead_letter_object(letter: &DeadLetter) -> Result<(String, Vec<u8>), WriteError> {
    let key = letter.key();
    match letter.to_json() {
        Ok(body) => Ok((key, body)),
        Err(e) => Err(WriteError::Encode {
            key,
            cause: e.to_string(),
        }),
    }
}

#[async_trait]
impl DeadLetterBucket for S3DeadLetterBucket {
    async fn write(&self, letter: &DeadLetter) -> Result<(), WriteError> {
        let (key, body) = dead_letter_object(letter)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| WriteError::Put {
                bucket: self.bucket.clone(),
                cause: DisplayErrorContext(&e).to_string(),
                key,
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_credential_types::Credentials;
    use aws_sdk_s3::config::Region;
    use aws_smithy_http_client::test_util::infallible_client_fn;
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use shared::dead_letter::DeadLetterKind;

    const BUCKET: &str = "relay-dead-letters-111111111111";

    fn letter(data_base64: String) -> DeadLetter {
        DeadLetter {
            kind: DeadLetterKind::RejectedByTarget,
            reason: "unknown schema version".into(),
            partition_key: "order-7".into(),
            explicit_hash_key: None,
            sequence_number: "4959".into(),
            sub_sequence_number: None,
            event_id: "shardId-000000000003:4959".into(),
            event_source_arn: "arn:aws:kinesis:eu-west-1:111111111111:stream/orders".into(),
            data_bytes: 3 * data_base64.len() / 4,
            data_base64,
            batch_id: "batch-9".into(),
            delivery_id: Some("batch-9-2".into()),
        }
    }

    #[test]
    fn a_dead_letter_is_one_object_per_record_with_all_its_data() {
        // Larger than SQS's 256 KiB: the data is kept whole now.
        let data = "A".repeat(400_000);
        let (key, body) = dead_letter_object(&letter(data.clone())).unwrap();
        assert_eq!(
            key,
            "relay/rejected_by_target/shardId-000000000003/4959.json"
        );
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["data_base64"], data);
        assert_eq!(value["kind"], "rejected_by_target");
        assert_eq!(value["partition_key"], "order-7");
        assert_eq!(value["reason"], "unknown schema version");
        assert_eq!(value["event_id"], "shardId-000000000003:4959");
        assert_eq!(value["batch_id"], "batch-9");
        assert_eq!(value["delivery_id"], "batch-9-2");
        // A record never sent has no delivery to name: the field is left out, not null.
        let never_sent = DeadLetter {
            kind: DeadLetterKind::Undeliverable,
            delivery_id: None,
            ..letter("AAAA".into())
        };
        let (key, body) = dead_letter_object(&never_sent).unwrap();
        assert_eq!(key, "relay/undeliverable/shardId-000000000003/4959.json");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value.get("delivery_id"), None, "{value}");
        assert_eq!(value["batch_id"], "batch-9");
    }

    /// Method, URI and body of each request the fake HTTP layer received.
    type Sent = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

    /// An S3 client whose HTTP layer answers every request with `status` and `body`, and keeps
    /// each request in `sent`.
    fn s3_answering(status: u16, body: &'static str, sent: Sent) -> aws_sdk_s3::Client {
        let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
            sent.lock().unwrap().push((
                request.method().to_string(),
                request.uri().to_string(),
                request.body().bytes().unwrap_or_default().to_vec(),
            ));
            http::Response::builder()
                .status(status)
                .body(SdkBody::from(body))
                .unwrap()
        });
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .http_client(http)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    #[tokio::test]
    async fn a_dead_letter_is_put_at_its_key_and_a_refusal_is_an_error() {
        let letter = letter("AAAA".into());
        let sent = Arc::default();
        let sink = S3DeadLetterBucket::new(s3_answering(200, "", Arc::clone(&sent)), BUCKET.into());
        sink.write(&letter).await.unwrap();
        let requests = sent.lock().unwrap().clone();
        assert_eq!(requests.len(), 1);
        let (method, uri, body) = &requests[0];
        assert_eq!(method, "PUT");
        // An IP endpoint is addressed path-style: /<bucket>/<key>.
        assert!(
            uri.starts_with(&format!(
                "http://127.0.0.1:1/{BUCKET}/relay/rejected_by_target/shardId-000000000003/4959.json"
            )),
            "{uri}"
        );
        assert_eq!(body, &dead_letter_object(&letter).unwrap().1);

        let denied = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"#;
        let sink =
            S3DeadLetterBucket::new(s3_answering(403, denied, Arc::default()), BUCKET.into());
        let err = sink.write(&letter).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "PutObject of s3://{BUCKET}/relay/rejected_by_target/shardId-000000000003/4959.json failed: "
            )),
            "{err}"
        );
        assert!(err.contains("AccessDenied"), "{err}");
    }
}
