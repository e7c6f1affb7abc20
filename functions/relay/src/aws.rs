//! The real adapters: the target account's Lambda client (assumed-role credentials) and the
//! SQS dead-letter queue.

use async_trait::async_trait;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::ports::{
    DeadLetter, DeadLetterQueue, InvokeFailure, InvokeFailureKind, InvokeReply, TargetInvoker,
};
use crate::settings::RelaySettings;

use shared::limits::SQS_MAX_MESSAGE_BYTES;

/// A Lambda client for the target account. Built once per container: its credentials come from
/// `AssumeRoleProvider` behind the client's identity cache, so AssumeRole runs again only when
/// the cached credentials near expiry, never once per invocation.
pub async fn target_lambda_client(
    sdk: &SdkConfig,
    settings: &RelaySettings,
) -> aws_sdk_lambda::Client {
    let mut assume = AssumeRoleProvider::builder(settings.target_role_arn.clone())
        .external_id(settings.external_id.expose())
        .session_name(settings.session_name())
        .session_length(settings.session_length)
        .configure(sdk);
    let mut lambda = aws_sdk_lambda::config::Builder::from(sdk);
    if let Some(region) = &settings.target_region {
        assume = assume.region(Region::new(region.clone()));
        lambda = lambda.region(Region::new(region.clone()));
    }
    let provider = assume.build().await;
    aws_sdk_lambda::Client::from_conf(lambda.credentials_provider(provider).build())
}

/// Invokes the target function synchronously.
pub struct LambdaTarget {
    client: aws_sdk_lambda::Client,
    function: String,
    role_arn: String,
}

impl LambdaTarget {
    pub fn new(client: aws_sdk_lambda::Client, settings: &RelaySettings) -> Self {
        Self {
            client,
            function: settings.target_function.clone(),
            role_arn: settings.target_role_arn.clone(),
        }
    }
}

/// Which step failed: a credentials failure anywhere in the error's chain means the relay
/// could not assume the target role; anything else is the Invoke call itself.
fn failure_kind(error: &(dyn std::error::Error + 'static)) -> InvokeFailureKind {
    let mut chain = std::iter::successors(Some(error), |e| e.source());
    if chain.any(|e| e.downcast_ref::<CredentialsError>().is_some()) {
        InvokeFailureKind::AssumeRole
    } else {
        InvokeFailureKind::Invoke
    }
}

#[async_trait]
impl TargetInvoker for LambdaTarget {
    async fn invoke(&self, payload: Vec<u8>) -> Result<InvokeReply, InvokeFailure> {
        let result = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(payload.into())
            .send()
            .await;
        match result {
            Ok(output) => Ok(InvokeReply {
                function_error: output.function_error,
                payload: output.payload.map(|b| b.into_inner()).unwrap_or_default(),
            }),
            Err(error) => {
                let kind = failure_kind(&error);
                let message = match kind {
                    InvokeFailureKind::AssumeRole => format!(
                        "AssumeRole of {} failed: {}",
                        self.role_arn,
                        DisplayErrorContext(&error)
                    ),
                    InvokeFailureKind::Invoke => format!(
                        "Invoke of {} failed: {}",
                        self.function,
                        DisplayErrorContext(&error)
                    ),
                };
                Err(InvokeFailure { kind, message })
            }
        }
    }
}

/// Sends dead letters to the SQS queue.
pub struct SqsDeadLetterQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetterQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

/// The message body for a dead letter: the whole record when it fits in one SQS message,
/// otherwise everything but its bytes.
pub fn dead_letter_body(letter: &DeadLetter) -> String {
    let body = serde_json::to_string(letter).expect("a DeadLetter always serializes");
    if body.len() <= SQS_MAX_MESSAGE_BYTES {
        return body;
    }
    let trimmed = DeadLetter {
        data_base64: None,
        ..letter.clone()
    };
    serde_json::to_string(&trimmed).expect("a DeadLetter always serializes")
}

#[async_trait]
impl DeadLetterQueue for SqsDeadLetterQueue {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(dead_letter_body(letter))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "SendMessage to {} failed: {}",
                    self.queue_url,
                    DisplayErrorContext(&e)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_credential_types::Credentials;
    use aws_smithy_http_client::test_util::infallible_client_fn;
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::ports::DeadLetterKind;

    const QUEUE_URL: &str = "http://127.0.0.1:1/111111111111/dlq";

    fn letter(data_base64: Option<String>) -> DeadLetter {
        DeadLetter {
            kind: DeadLetterKind::RejectedByTarget,
            reason: "too big to be useful".into(),
            partition_key: "id-1".into(),
            sequence_number: "42".into(),
            event_id: "shardId-000000000000:42".into(),
            event_source_arn: "arn:aws:kinesis:eu-west-1:111111111111:stream/s".into(),
            data_base64,
            data_bytes: 225_000,
            delivery_id: "d-0".into(),
        }
    }

    #[test]
    fn large_dead_letter_drops_its_bytes_but_keeps_the_pointer() {
        let body = dead_letter_body(&letter(Some("A".repeat(300_000))));
        assert!(body.len() <= SQS_MAX_MESSAGE_BYTES);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(value["data_base64"].is_null());
        assert_eq!(value["sequence_number"], "42");
        assert_eq!(value["kind"], "rejected_by_target");
        assert_eq!(value["data_bytes"], 225_000);
        let small = letter(Some("AAAA".into()));
        assert!(dead_letter_body(&small).contains("\"data_base64\":\"AAAA\""));
    }

    #[test]
    fn a_dead_letter_of_exactly_256_kib_keeps_its_bytes_and_one_byte_more_drops_them() {
        let with_data = |chars: usize| letter(Some("A".repeat(chars)));
        let overhead = dead_letter_body(&with_data(0)).len();
        let exact = dead_letter_body(&with_data(SQS_MAX_MESSAGE_BYTES - overhead));
        assert_eq!(exact.len(), SQS_MAX_MESSAGE_BYTES);
        assert!(exact.contains("\"data_base64\":\"AAAA"));
        let over = dead_letter_body(&with_data(SQS_MAX_MESSAGE_BYTES - overhead + 1));
        let value: serde_json::Value = serde_json::from_str(&over).unwrap();
        assert!(value["data_base64"].is_null(), "{over}");
    }

    /// What the chain of an SDK error looks like: the SDK's error, its cause, and so on.
    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Dispatch(#[source] Box<dyn std::error::Error + Send + Sync>);

    #[test]
    fn a_credentials_error_anywhere_in_the_chain_is_an_assume_role_failure() {
        let denied = || CredentialsError::provider_error("AccessDenied: not authorized");
        assert_eq!(failure_kind(&denied()), InvokeFailureKind::AssumeRole);
        let wrapped = Dispatch(Box::new(Dispatch(Box::new(denied()))));
        assert_eq!(failure_kind(&wrapped), InvokeFailureKind::AssumeRole);
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            failure_kind(&Dispatch(Box::new(refused))),
            InvokeFailureKind::Invoke
        );
    }

    /// An SQS client whose HTTP layer answers every request with `status` and `body`, and
    /// keeps the requests' bodies.
    fn sqs_answering(
        status: u16,
        body: &'static str,
        sent: Arc<Mutex<Vec<serde_json::Value>>>,
    ) -> aws_sdk_sqs::Client {
        let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
            let request_body = request.body().bytes().unwrap_or_default();
            sent.lock()
                .unwrap()
                .push(serde_json::from_slice(request_body).unwrap());
            http::Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.0")
                .body(SdkBody::from(body))
                .unwrap()
        });
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .http_client(http)
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    #[tokio::test]
    async fn a_dead_letter_is_sent_as_its_body_and_a_refusal_is_an_error() {
        let letter = letter(Some("AAAA".into()));
        let sent = Arc::default();
        let queue = SqsDeadLetterQueue::new(
            sqs_answering(200, r#"{"MessageId":"m-1"}"#, Arc::clone(&sent)),
            QUEUE_URL.into(),
        );
        queue.send(&letter).await.unwrap();
        let requests = sent.lock().unwrap().clone();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0]["QueueUrl"], QUEUE_URL);
        assert_eq!(requests[0]["MessageBody"], dead_letter_body(&letter));

        let missing = r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#;
        let queue = SqsDeadLetterQueue::new(
            sqs_answering(400, missing, Arc::default()),
            QUEUE_URL.into(),
        );
        let err = queue.send(&letter).await.unwrap_err();
        assert!(
            err.starts_with(&format!("SendMessage to {QUEUE_URL} failed: ")),
            "{err}"
        );
        assert!(err.contains("QueueDoesNotExist"), "{err}");
    }
}
