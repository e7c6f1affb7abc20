//! The sample's countable effect (`SAMPLE_EFFECTS_TABLE`, a test device of the local run and the
//! soak): each record the sample answers `ok` after running it adds 1 to its item's
//! `applied` count and its delivery id to the item's `deliveries` set (and sets
//! `first_delivery` the first time), so a record whose effect ran more than once shows it in the
//! table, whatever the logs say.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use shared::config;
use tokio::sync::OnceCell;

/// Where the sample counts its effects: behind a trait so the handler's tests use a fake.
#[async_trait::async_trait]
pub trait Effects: Send + Sync {
    /// Runs record `id`'s effect once more, under delivery `delivery_id`; answers how many times
    /// it has now run (1 the first time), or why it could not be counted.
    async fn apply(&self, id: &str, delivery_id: &str) -> Result<u64, String>;
}

/// [`Effects`] in a DynamoDB table: one `UpdateItem` per effect,
/// `ADD applied :one, deliveries :delivery SET first_delivery = if_not_exists(...)`, returning
/// the new `applied`.
pub struct DynamoDbEffects {
    table: String,
    client: OnceCell<aws_sdk_dynamodb::Client>,
}

impl DynamoDbEffects {
    /// Effects counted in `table`; the client is built from the environment on first use (the
    /// handler is configured before the runtime loop starts, synchronously).
    pub fn new(table: String) -> Self {
        Self {
            table,
            client: OnceCell::new(),
        }
    }

    /// Effects counted in `table` through `client`.
    pub fn with_client(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self {
            table,
            client: OnceCell::new_with(Some(client)),
        }
    }

    async fn client(&self) -> &aws_sdk_dynamodb::Client {
        (self.client)
            .get_or_init(|| async {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws_sdk_dynamodb::Client::new(&sdk)
            })
            .await
    }
}

#[async_trait::async_trait]
impl Effects for DynamoDbEffects {
    async fn apply(&self, id: &str, delivery_id: &str) -> Result<u64, String> {
        let output = (self.client().await.update_item())
            .table_name(&self.table)
            .key(
                config::SAMPLE_EFFECTS_KEY_ATTRIBUTE,
                AttributeValue::S(id.into()),
            )
            .update_expression(
                "ADD #applied :one, #deliveries :delivery SET #first = if_not_exists(#first, :id)",
            )
            .expression_attribute_names("#applied", config::SAMPLE_EFFECTS_APPLIED_ATTRIBUTE)
            .expression_attribute_names("#deliveries", config::SAMPLE_EFFECTS_DELIVERIES_ATTRIBUTE)
            .expression_attribute_names("#first", config::SAMPLE_EFFECTS_FIRST_DELIVERY_ATTRIBUTE)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":delivery", AttributeValue::Ss(vec![delivery_id.into()]))
            .expression_attribute_values(":id", AttributeValue::S(delivery_id.into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "counting the effect of record {id} in table {} failed: {}",
                    self.table,
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        let applied = (output.attributes())
            .and_then(|a| a.get(config::SAMPLE_EFFECTS_APPLIED_ATTRIBUTE))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok());
        applied.ok_or_else(|| {
            format!(
                "counting the effect of record {id} in table {}: the answer has no numeric `{}`",
                self.table,
                config::SAMPLE_EFFECTS_APPLIED_ATTRIBUTE
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_credential_types::Credentials;
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::Region;
    use aws_smithy_http_client::test_util::infallible_client_fn;
    use aws_smithy_types::body::SdkBody;
    use serde_json::{json, Value};

    use super::*;

    /// Effects in table `t` whose HTTP layer answers `status`, `answer` and keeps each request
    /// body.
    fn answering(status: u16, answer: Value) -> (DynamoDbEffects, Arc<Mutex<Vec<Value>>>) {
        let sent: Arc<Mutex<Vec<Value>>> = Arc::default();
        let log = Arc::clone(&sent);
        let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
            let body = serde_json::from_slice(request.body().bytes().unwrap_or_default());
            log.lock().unwrap().push(body.unwrap_or(Value::Null));
            http::Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.0")
                .body(SdkBody::from(answer.to_string()))
                .unwrap()
        });
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .retry_config(RetryConfig::disabled())
            .http_client(http)
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        (DynamoDbEffects::with_client(client, "t".into()), sent)
    }

    #[tokio::test]
    async fn one_update_adds_one_application_and_the_delivery_and_returns_the_count() {
        let (effects, sent) = answering(200, json!({"Attributes": {"applied": {"N": "2"}}}));
        assert_eq!(effects.apply("r-1", "d-7").await, Ok(2));
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        let body = &sent[0];
        assert_eq!(body["TableName"], "t");
        assert_eq!(body["Key"], json!({"id": {"S": "r-1"}}));
        assert_eq!(
            body["UpdateExpression"],
            "ADD #applied :one, #deliveries :delivery SET #first = if_not_exists(#first, :id)"
        );
        assert_eq!(
            body["ExpressionAttributeNames"],
            json!({"#applied": "applied", "#deliveries": "deliveries", "#first": "first_delivery"})
        );
        assert_eq!(
            body["ExpressionAttributeValues"],
            json!({":one": {"N": "1"}, ":delivery": {"SS": ["d-7"]}, ":id": {"S": "d-7"}})
        );
        assert_eq!(body["ReturnValues"], "UPDATED_NEW");
    }

    #[tokio::test]
    async fn a_failed_or_unreadable_answer_is_an_error_naming_the_record_and_table() {
        let throttled = json!({"__type": "ThrottlingException", "message": "slow down"});
        let (effects, _) = answering(400, throttled);
        let err = effects.apply("r-1", "d-7").await.unwrap_err();
        assert!(
            err.starts_with("counting the effect of record r-1 in table t failed"),
            "{err}"
        );
        assert!(err.contains("slow down"), "{err}");
        let (effects, _) = answering(200, json!({}));
        let err = effects.apply("r-1", "d-7").await.unwrap_err();
        assert!(err.contains("no numeric `applied`"), "{err}");
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory [`Effects`] for the handler's tests.

    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::Effects;

    /// Counts effects in memory; `fail` makes every write fail.
    #[derive(Default)]
    pub struct FakeEffects {
        /// Per record id: the delivery ids its effect ran under, in order.
        pub applied: Mutex<HashMap<String, Vec<String>>>,
        /// Whether writes fail.
        pub fail: bool,
    }

    impl FakeEffects {
        /// The delivery ids record `id`'s effect ran under.
        pub fn of(&self, id: &str) -> Vec<String> {
            let applied = self.applied.lock().unwrap();
            applied.get(id).cloned().unwrap_or_default()
        }
    }

    #[async_trait::async_trait]
    impl Effects for FakeEffects {
        async fn apply(&self, id: &str, delivery_id: &str) -> Result<u64, String> {
            if self.fail {
                return Err(format!(
                    "counting the effect of record {id} failed: throttled"
                ));
            }
            let mut applied = self.applied.lock().unwrap();
            let runs = applied.entry(id.into()).or_default();
            runs.push(delivery_id.into());
            Ok(runs.len() as u64)
        }
    }
}
