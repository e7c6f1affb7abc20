//! The relay's real adapters against a fake HTTP layer (no network): a warm container assumes
//! the target role once per credential lifetime, not once per invocation, and signs every
//! Invoke with the assumed-role credentials.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::date_time::{DateTime, Format};
use relay::dead_letters::MemoryDeadLetterBucket;
use relay::event::KinesisBatch;
use relay::invoke::{target_lambda_client, LambdaTarget};
use relay::{Deadline, Relay, RelaySettings};
use shared::envelope::{DeliveryRequest, DeliveryResponse, RecordOutcome, RecordResult};

const ROLE: &str = "arn:aws:iam::222222222222:role/cross-account-relay-invoker";
const ASSUMED_KEY: &str = "ASIATARGETACCOUNTKEY";

#[derive(Default)]
struct Calls {
    assume_role: AtomicUsize,
    invoke: AtomicUsize,
    assume_role_bodies: Mutex<Vec<String>>,
    invoke_authorizations: Mutex<Vec<String>>,
}

/// An HTTP layer that plays STS and Lambda: AssumeRole answers credentials valid for
/// `lifetime` (or AccessDenied when `None`); Invoke answers `ok` for every record.
fn fake_aws(
    calls: Arc<Calls>,
    lifetime: Option<Duration>,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    fake_aws_answering(calls, lifetime, ok_for_every_record)
}

type InvokeAnswer = fn(&[u8]) -> http::Response<SdkBody>;

/// Lambda's answer when the target accepts every record of the envelope.
fn ok_for_every_record(body: &[u8]) -> http::Response<SdkBody> {
    let envelope = DeliveryRequest::decode(body).expect("the relay sends a valid envelope");
    let results = envelope
        .records
        .iter()
        .map(|r| RecordResult::answering(r, RecordOutcome::Ok))
        .collect();
    let answer = serde_json::to_vec(&DeliveryResponse::new(results)).unwrap();
    http::Response::builder()
        .status(200)
        .body(SdkBody::from(answer))
        .unwrap()
}

/// Lambda's answer when the handler failed: 200 with `X-Amz-Function-Error`.
fn function_error(_: &[u8]) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(200)
        .header("X-Amz-Function-Error", "Unhandled")
        .body(SdkBody::from(
            r#"{"errorType":"Simulated","errorMessage":"boom"}"#,
        ))
        .unwrap()
}

/// Plays STS and Lambda; `invoke` answers each Invoke.
fn fake_aws_answering(
    calls: Arc<Calls>,
    lifetime: Option<Duration>,
    invoke: InvokeAnswer,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    infallible_client_fn(move |request: http::Request<SdkBody>| {
        let body = request
            .body()
            .bytes()
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).to_string();
        if text.contains("Action=AssumeRole") {
            calls.assume_role.fetch_add(1, Ordering::SeqCst);
            calls.assume_role_bodies.lock().unwrap().push(text);
            let Some(lifetime) = lifetime else {
                return http::Response::builder()
                    .status(403)
                    .body(SdkBody::from(
                        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                         <Message>not authorized to perform sts:AssumeRole</Message></Error>\
                         <RequestId>r</RequestId></ErrorResponse>",
                    ))
                    .unwrap();
            };
            let expiration = DateTime::from(SystemTime::now() + lifetime)
                .fmt(Format::DateTime)
                .unwrap();
            let xml = format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
                 <AssumedRoleUser><AssumedRoleId>AROATARGET:relay</AssumedRoleId>\
                 <Arn>arn:aws:sts::222222222222:assumed-role/cross-account-relay-invoker/relay</Arn></AssumedRoleUser>\
                 <Credentials><AccessKeyId>{ASSUMED_KEY}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>\
                 <SessionToken>token</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
                 </AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"
            );
            return http::Response::builder()
                .status(200)
                .body(SdkBody::from(xml))
                .unwrap();
        }
        if request.uri().path().starts_with("/2015-03-31/functions/") {
            calls.invoke.fetch_add(1, Ordering::SeqCst);
            let authorization = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            calls
                .invoke_authorizations
                .lock()
                .unwrap()
                .push(authorization);
            return invoke(&body);
        }
        http::Response::builder()
            .status(404)
            .body(SdkBody::from(format!(
                "unexpected request {}",
                request.uri()
            )))
            .unwrap()
    })
}

/// Nothing should be dead-lettered here: a bucket that refuses every letter turns one into a
/// failed record, which the tests would see.
fn no_dead_letters() -> MemoryDeadLetterBucket {
    MemoryDeadLetterBucket::refusing()
}

fn settings() -> RelaySettings {
    let env = std::collections::HashMap::from([
        ("TARGET_ROLE_ARN", ROLE),
        ("TARGET_EXTERNAL_ID", "the-external-id"),
        ("TARGET_FUNCTION_NAME", "cross-account-relay-target"),
        (
            shared::config::DEAD_LETTER_BUCKET,
            "cross-account-relay-dead-letters-111111111111",
        ),
        ("ASSUME_ROLE_SESSION_SECONDS", "1800"),
        ("AWS_LAMBDA_FUNCTION_NAME", "cross-account-relay-relay"),
    ]);
    RelaySettings::from_source(&env).unwrap()
}

async fn warm_relay(
    calls: Arc<Calls>,
    lifetime: Option<Duration>,
) -> Relay<LambdaTarget, MemoryDeadLetterBucket> {
    relay_over(fake_aws(calls, lifetime)).await
}

async fn relay_over(
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
) -> Relay<LambdaTarget, MemoryDeadLetterBucket> {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            "AKIASOURCEACCOUNT",
            "secret",
            None,
            None,
            "relay-role",
        ))
        .http_client(http)
        .load()
        .await;
    let settings = settings();
    // What main does once per container.
    let target = LambdaTarget::new(target_lambda_client(&sdk, &settings).await, &settings);
    Relay::new(target, no_dead_letters(), 4, settings.max_payload_bytes)
}

/// A minute to answer, as a relay with Lambda's 60 s timeout has.
fn minute() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

fn batch(n: usize) -> KinesisBatch {
    let records: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({
                "kinesis": {"partitionKey": format!("id-{i}"), "sequenceNumber": format!("{i}"),
                            "data": "eyJvayI6dHJ1ZX0=", "approximateArrivalTimestamp": 1764045097.0},
                "eventID": format!("shardId-000000000000:{i}"),
                "eventSourceARN": "arn:aws:kinesis:eu-west-1:111111111111:stream/s"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn warm_relay_assumes_the_role_once_across_many_invocations() {
    let calls = Arc::new(Calls::default());
    let relay = warm_relay(calls.clone(), Some(Duration::from_secs(3600))).await;
    for _ in 0..25 {
        let (response, report) = relay.handle(batch(3), &minute()).await;
        assert!(response.batch_item_failures.is_empty(), "{report:?}");
    }
    assert_eq!(calls.invoke.load(Ordering::SeqCst), 25);
    assert_eq!(
        calls.assume_role.load(Ordering::SeqCst),
        1,
        "one AssumeRole for 25 invocations"
    );
    let body = calls.assume_role_bodies.lock().unwrap()[0].clone();
    assert!(body.contains("ExternalId=the-external-id"), "{body}");
    assert!(body.contains("DurationSeconds=1800"), "{body}");
    assert!(
        body.contains("RoleSessionName=cross-account-relay-relay-"),
        "{body}"
    );
    assert!(
        body.contains(
            "RoleArn=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fcross-account-relay-invoker"
        ),
        "{body}"
    );
    for authorization in calls.invoke_authorizations.lock().unwrap().iter() {
        assert!(
            authorization.contains(&format!("Credential={ASSUMED_KEY}/")),
            "{authorization}"
        );
    }
}

#[tokio::test]
async fn credentials_near_expiry_are_refreshed() {
    // Credentials that expire inside the identity cache's refresh buffer are fetched again on
    // every use: the count above is a real count, not a constant.
    let calls = Arc::new(Calls::default());
    let relay = warm_relay(calls.clone(), Some(Duration::from_secs(2))).await;
    for _ in 0..5 {
        relay.handle(batch(1), &minute()).await;
    }
    assert_eq!(calls.invoke.load(Ordering::SeqCst), 5);
    assert_eq!(calls.assume_role.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn denied_assume_role_fails_the_batch_as_retryable_without_invoking() {
    let calls = Arc::new(Calls::default());
    let relay = warm_relay(calls.clone(), None).await;
    let (response, report) = relay.handle(batch(4), &minute()).await;
    assert_eq!(response.batch_item_failures.len(), 4);
    assert_eq!(report.failed, 4);
    assert_eq!(report.assume_role_failures, 4);
    assert_eq!(calls.invoke.load(Ordering::SeqCst), 0);
    assert!(calls.assume_role.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_target_function_error_fails_that_envelope_without_sdk_retries() {
    let calls = Arc::new(Calls::default());
    let relay = relay_over(fake_aws_answering(
        calls.clone(),
        Some(Duration::from_secs(3600)),
        function_error,
    ))
    .await;
    let (response, report) = relay.handle(batch(3), &minute()).await;
    assert_eq!(response.batch_item_failures.len(), 3);
    assert_eq!((report.failed, report.assume_role_failures), (3, 0));
    assert_eq!(
        calls.invoke.load(Ordering::SeqCst),
        1,
        "a function error is an answer, not retried"
    );
}
