//! The source stack: schedule → producer → encrypted stream → event source mapping → relay,
//! with the dead-letter bucket (and the schedule's queue) for what could not be delivered, and
//! the alarms that say so ([`alarms`], built with [`crate::alarms`]).
//!
//! ```text
//! schedule --(schedulerRole)--> producerFunction --PutRecords--> stream (streamKey)
//! schedule --tick that could not be handed over--> scheduleDeadLetterQueue
//! producerFunction --tick that kept failing (async on-failure)--> deadLetterBucket
//! stream --relayEventSourceMapping--> relayFunction --AssumeRole--> target account
//! relayEventSourceMapping --on failure--> deadLetterBucket <--PutObject-- relayFunction
//! relay/producer metrics, scheduleDeadLetterQueue --alarms--> alarmTopic
//! ```

pub mod alarms;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::{SourceConfig, StackSide, StreamCapacity, TargetOutputs, TargetRegion};
use crate::dead_letters;
use crate::function::{add_function, FunctionSpec};
use crate::iam::{self, PolicyDocument, Principal, Statement};
use crate::names;
use crate::outputs;
use crate::template::{output_of, secret, to_json, Resource, Template};
use shared::config as env;

pub const PROVIDER: &str = names::SOURCE_PROVIDER;
/// Logical name of the StackReference when `targetStack` is set. It must differ from every
/// config key: the YAML runtime puts config keys and resources in one namespace.
pub const TARGET_STACK: &str = names::TARGET_STACK_REFERENCE;
/// EventBridge Scheduler's group of the producer's schedule (the schedule sets no group).
pub const SCHEDULE_GROUP: &str = "default";

/// The stream key's policy. A key policy is the key's only gate, so the account keeps the
/// administration actions (listed, no `kms:*`) and may let its own IAM policies use the key,
/// but only through Kinesis in this region (`kms:ViaService`) and only for this stream (the
/// `aws:kinesis:arn` encryption context Kinesis sends). `Resource: "*"` is the only value a
/// key policy accepts: it means this key.
pub fn stream_key_policy(config: &SourceConfig) -> PolicyDocument {
    let common = &config.common;
    let root = Principal::Aws(iam::account_root(&common.source_account_id));
    let stream = iam::stream_arn(
        &common.region,
        &common.source_account_id,
        &names::stream_name(&config.common.name_prefix),
    );
    PolicyDocument::new(vec![
        iam::account_administers_key(&common.source_account_id),
        Statement::allow("AccountUsesKeyThroughKinesis", iam::KEY_USE_ACTIONS, &["*"])
            .principal(root)
            .when(
                "StringEquals",
                "kms:ViaService",
                format!("kinesis.{}.amazonaws.com", common.region),
            )
            .when(
                "StringEquals",
                "kms:CallerAccount",
                common.source_account_id.clone(),
            )
            .when(
                "StringEquals",
                "kms:EncryptionContext:aws:kinesis:arn",
                stream,
            ),
    ])
}

/// Where the relay finds the target: template values for its role, function and region.
struct TargetValues {
    role_arn: String,
    function: String,
    region: String,
}

fn stack_output(name: &str) -> String {
    format!("${{{TARGET_STACK}.outputs[\"{name}\"]}}")
}

fn target_values(t: &mut Template, config: &SourceConfig) -> TargetValues {
    let (role_arn, function) = match &config.target {
        TargetOutputs::Config {
            role_arn,
            function_name,
        } => (role_arn.clone(), function_name.clone()),
        TargetOutputs::StackReference { stack } => {
            t.add(
                TARGET_STACK,
                Resource::builtin("pulumi:pulumi:StackReference").prop("name", stack.clone()),
            );
            (
                stack_output(outputs::CROSS_ACCOUNT_ROLE_ARN),
                stack_output(outputs::TARGET_FUNCTION_ARN),
            )
        }
    };
    let region = match &config.target_region {
        TargetRegion::Fixed(region) => region.clone(),
        TargetRegion::FromTargetStack => stack_output(outputs::TARGET_REGION),
    };
    TargetValues {
        role_arn,
        function,
        region,
    }
}

pub fn template(config: &SourceConfig) -> Template {
    let common = &config.common;
    let mut t = Template::new(
        "Source account: schedule, producer, Kinesis stream, relay, the dead-letter bucket and the schedule's dead-letter queue, and the alarms with their topic.",
    );
    t.add(
        PROVIDER,
        crate::provider::provider(common, StackSide::Source),
    );
    let target = target_values(&mut t, config);
    add_stream(&mut t, config);
    dead_letters::add_bucket(&mut t, config);
    add_schedule_dead_letter_queue(&mut t, config);
    add_producer(&mut t, config);
    add_schedule(&mut t, config);
    add_relay(&mut t, config, &target);
    crate::alarms::add(
        &mut t,
        common,
        PROVIDER,
        &common.source_account_id,
        &alarms::alarms(config),
    );
    add_outputs(&mut t);
    t
}

fn add_stream(t: &mut Template, config: &SourceConfig) {
    t.add(
        names::STREAM_KEY,
        iam::customer_managed_key(
            PROVIDER,
            &format!(
                "Encrypts the Kinesis stream {}",
                names::stream_name(&config.common.name_prefix)
            ),
            &stream_key_policy(config),
        ),
    );
    let stream = Resource::aws("aws:kinesis:Stream", PROVIDER)
        .prop("name", names::stream_name(&config.common.name_prefix))
        .prop("encryptionType", "KMS")
        .prop("kmsKeyId", output_of(names::STREAM_KEY, "arn"))
        .prop("retentionPeriod", config.stream_retention_hours)
        .prop("maxRecordSizeInKib", config.stream_max_record_size_kib);
    let stream = match config.stream_capacity {
        StreamCapacity::OnDemand => {
            stream.prop("streamModeDetails", json!({ "streamMode": "ON_DEMAND" }))
        }
        StreamCapacity::Provisioned { shards } => stream
            .prop("streamModeDetails", json!({ "streamMode": "PROVISIONED" }))
            .prop("shardCount", shards),
    };
    t.add(names::STREAM, stream);
}

/// Scheduler accepts only an SQS queue as a schedule's dead-letter queue, written with the
/// schedule's role: a queue of its own keeps that role's permission to this one queue.
fn add_schedule_dead_letter_queue(t: &mut Template, config: &SourceConfig) {
    t.add(
        names::SCHEDULE_DEAD_LETTER_QUEUE,
        Resource::aws("aws:sqs:Queue", PROVIDER)
            .prop(
                "name",
                names::schedule_dead_letter_queue_name(&config.common.name_prefix),
            )
            // SSE-SQS: encrypted without a key policy for Scheduler's writes to meet.
            .prop("sqsManagedSseEnabled", true)
            // 14 days, SQS's maximum: time to look at and replay what failed.
            .prop("messageRetentionSeconds", 1_209_600),
    );
}

fn add_producer(t: &mut Template, config: &SourceConfig) {
    let common = &config.common;
    let environment: BTreeMap<&'static str, Value> = BTreeMap::from([
        (env::STREAM_NAME, json!(output_of(names::STREAM, "name"))),
        (
            env::PRODUCER_RECORDS_PER_INVOCATION,
            json!(config.records_per_invocation.to_string()),
        ),
        (
            env::PRODUCER_PADDING_BYTES,
            json!(config.padding_bytes.to_string()),
        ),
        (
            env::PRODUCER_MAX_PUT_ATTEMPTS,
            json!(config.max_put_attempts.to_string()),
        ),
        (
            env::PRODUCER_RETRY_BASE_DELAY_MS,
            json!(config.retry_base_delay_ms.to_string()),
        ),
        (
            env::PRODUCER_AGGREGATION,
            json!(config.producer_aggregation.to_string()),
        ),
    ]);
    add_function(
        t,
        common,
        FunctionSpec {
            resources: names::PRODUCER,
            provider: PROVIDER,
            description: "Writes scheduled records to the Kinesis stream",
            memory_mb: 128,
            timeout_seconds: 30,
            reserved_concurrency: None,
            environment,
            statements: vec![
                Statement::allow(
                    "WriteThisStream",
                    iam::KINESIS_WRITE_ACTIONS,
                    &[&output_of(names::STREAM, "arn")],
                ),
                Statement::allow(
                    "EncryptRecordsWithStreamKey",
                    &["kms:GenerateDataKey"],
                    &[&output_of(names::STREAM_KEY, "arn")],
                ),
            ]
            .into_iter()
            // Lambda writes the on-failure record of a tick that kept failing
            // (producerInvokeConfig) with the function's own execution role.
            .chain(dead_letters::producer_statements())
            .collect(),
            artifact: None,
        },
    );
    // The schedule invokes the producer asynchronously: a tick whose records cannot be written
    // (the handler fails) is retried by Lambda, then recorded in the dead-letter queue with
    // its error and the tick's event in the dead-letter bucket, instead of existing only as a
    // log line.
    t.add(
        names::PRODUCER_INVOKE_CONFIG,
        Resource::aws("aws:lambda:FunctionEventInvokeConfig", PROVIDER)
            .prop("functionName", output_of(names::PRODUCER.function, "name"))
            .prop("maximumRetryAttempts", 2)
            .prop("maximumEventAgeInSeconds", 240)
            .prop(
                "destinationConfig",
                json!({ "onFailure": { "destination": dead_letters::destination() } }),
            )
            .depends_on(&[names::PRODUCER.policy, names::DEAD_LETTER_BUCKET_POLICY]),
    );
}

fn add_schedule(t: &mut Template, config: &SourceConfig) {
    let common = &config.common;
    let group = iam::schedule_group_arn(&common.region, &common.source_account_id, SCHEDULE_GROUP);
    t.add(
        names::SCHEDULER_ROLE,
        Resource::aws("aws:iam:Role", PROVIDER)
            .prop("name", names::scheduler_role_name(&common.name_prefix))
            .prop(
                "description",
                "Lets EventBridge Scheduler invoke the producer",
            )
            .prop(
                "assumeRolePolicy",
                to_json(
                    iam::service_trust(
                        "scheduler.amazonaws.com",
                        &common.source_account_id,
                        Some(&group),
                    )
                    .to_value(),
                ),
            ),
    );
    t.add(
        names::SCHEDULER_ROLE_POLICY,
        Resource::aws("aws:iam:RolePolicy", PROVIDER)
            .prop("role", output_of(names::SCHEDULER_ROLE, "id"))
            .prop(
                "policy",
                to_json(
                    PolicyDocument::new(vec![
                        Statement::allow(
                            "InvokeProducerOnly",
                            &["lambda:InvokeFunction"],
                            &[&output_of(names::PRODUCER.function, "arn")],
                        ),
                        Statement::allow(
                            "SendUndeliveredTicksToScheduleDeadLetterQueue",
                            &["sqs:SendMessage"],
                            &[&output_of(names::SCHEDULE_DEAD_LETTER_QUEUE, "arn")],
                        ),
                    ])
                    .to_value(),
                ),
            ),
    );
    t.add(
        names::SCHEDULE,
        Resource::aws("aws:scheduler:Schedule", PROVIDER)
            .prop("name", names::schedule_name(&common.name_prefix))
            .prop("description", "Ticks the producer")
            .prop("scheduleExpression", config.schedule_expression.clone())
            .prop("flexibleTimeWindow", json!({ "mode": "OFF" }))
            .prop(
                "target",
                json!({
                    "arn": output_of(names::PRODUCER.function, "arn"),
                    "roleArn": output_of(names::SCHEDULER_ROLE, "arn"),
                    // Covers handing the tick to Lambda (the asynchronous Invoke call); a failing
                    // handler is retried by Lambda per producerInvokeConfig. Given up after 4
                    // minutes so it never overlaps the next tick of the default 5-minute rate,
                    // and then kept in the schedule's dead-letter queue instead of dropped.
                    "retryPolicy": { "maximumRetryAttempts": 2, "maximumEventAgeInSeconds": 240 },
                    "deadLetterConfig": { "arn": output_of(names::SCHEDULE_DEAD_LETTER_QUEUE, "arn") }
                }),
            )
            .depends_on(&[names::SCHEDULER_ROLE_POLICY]),
    );
}

fn relay_environment(
    config: &SourceConfig,
    target: &TargetValues,
) -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        (env::TARGET_ROLE_ARN, json!(target.role_arn)),
        (env::TARGET_EXTERNAL_ID, secret(&config.common.external_id)),
        (env::TARGET_FUNCTION_NAME, json!(target.function)),
        (env::TARGET_REGION, json!(target.region)),
        (
            env::ASSUME_ROLE_SESSION_SECONDS,
            json!(config.session_seconds.to_string()),
        ),
        (
            env::DEAD_LETTER_BUCKET,
            json!(output_of(names::DEAD_LETTER_BUCKET, "bucket")),
        ),
        (
            env::RELAY_MAX_CONCURRENT_INVOCATIONS,
            json!(config.relay_max_concurrent_invocations.to_string()),
        ),
        (
            env::RELAY_MAX_RECORDS_PER_INVOCATION,
            json!(config.relay_max_records_per_invocation.to_string()),
        ),
        (
            env::RELAY_POISON_SPLIT_DEPTH,
            json!(config.relay_poison_split_depth.to_string()),
        ),
        (
            env::RELAY_MAX_PAYLOAD_BYTES,
            json!(shared::config::MAX_INVOKE_REQUEST_BYTES.to_string()),
        ),
    ])
}

fn add_relay(t: &mut Template, config: &SourceConfig, target: &TargetValues) {
    add_function(
        t,
        &config.common,
        FunctionSpec {
            resources: names::RELAY,
            provider: PROVIDER,
            description: "Relays Kinesis batches to the target account's function",
            memory_mb: config.memory_mb,
            timeout_seconds: config.timeout_seconds,
            reserved_concurrency: None,
            environment: relay_environment(config, target),
            statements: vec![
                Statement::allow(
                    "ReadThisStream",
                    iam::KINESIS_READ_ACTIONS,
                    &[&output_of(names::STREAM, "arn")],
                ),
                Statement::allow(
                    "DecryptRecordsWithStreamKey",
                    &["kms:Decrypt"],
                    &[&output_of(names::STREAM_KEY, "arn")],
                ),
                Statement::allow(
                    "AssumeTargetRoleOnly",
                    &["sts:AssumeRole"],
                    &[&target.role_arn],
                ),
            ]
            .into_iter()
            // The relay writes the records it gives up on, and the event source mapping's
            // on-failure records are written with this same execution role.
            .chain(dead_letters::relay_statements())
            .collect(),
            artifact: None,
        },
    );

    t.add(
        names::RELAY_EVENT_SOURCE_MAPPING,
        Resource::aws("aws:lambda:EventSourceMapping", PROVIDER)
            .prop("eventSourceArn", output_of(names::STREAM, "arn"))
            .prop("functionName", output_of(names::RELAY.function, "arn"))
            .prop("startingPosition", config.starting_position.clone())
            .prop("batchSize", config.batch_size)
            .prop(
                "maximumBatchingWindowInSeconds",
                config.batching_window_seconds,
            )
            .prop("parallelizationFactor", config.parallelization_factor)
            // The relay reports the records the target refused; only those (and what follows
            // them in the shard) are retried, not the whole batch.
            .prop("functionResponseTypes", json!(["ReportBatchItemFailures"]))
            // A batch that fails as a whole is split in halves until the bad record is alone,
            // so its neighbours get through.
            .prop("bisectBatchOnFunctionError", true)
            // Few retries and a record age limit: a poison record reaches the dead-letter queue
            // within minutes instead of blocking its shard until the stream's retention ends.
            .prop("maximumRetryAttempts", config.maximum_retry_attempts)
            .prop(
                "maximumRecordAgeInSeconds",
                config.maximum_record_age_seconds,
            )
            .prop(
                "destinationConfig",
                json!({ "onFailure": { "destinationArn": dead_letters::destination() } }),
            )
            // The mapping's own event counts in AWS/Lambda ("Event source mapping metrics": the
            // events it polled, invoked the relay with, failed to invoke and dropped), beside
            // what the relay reports; off unless asked for, and updatable in place.
            .prop("metricsConfig", json!({ "metrics": ["EventCount"] }))
            // A mapping has no name, and Lambda refuses a second one for the same stream and
            // function ("provided mapping already exists"): replacing it (startingPosition
            // forces that) must delete the old one first.
            .delete_before_replace()
            .depends_on(&[names::RELAY.policy, names::DEAD_LETTER_BUCKET_POLICY]),
    );
}

fn add_outputs(t: &mut Template) {
    t.output("streamName", output_of(names::STREAM, "name"));
    t.output("streamArn", output_of(names::STREAM, "arn"));
    t.output(
        "deadLetterBucketName",
        output_of(names::DEAD_LETTER_BUCKET, "bucket"),
    );
    t.output(
        "scheduleDeadLetterQueueUrl",
        output_of(names::SCHEDULE_DEAD_LETTER_QUEUE, "url"),
    );
    t.output(
        "producerFunctionName",
        output_of(names::PRODUCER.function, "name"),
    );
    t.output(
        "relayFunctionName",
        output_of(names::RELAY.function, "name"),
    );
    t.output("relayRoleArn", output_of(names::RELAY.role, "arn"));
    t.output("scheduleName", output_of(names::SCHEDULE, "name"));
    t.output(
        "producerLogGroupName",
        output_of(names::PRODUCER.log_group, "name"),
    );
    t.output(
        "relayLogGroupName",
        output_of(names::RELAY.log_group, "name"),
    );
    t.output("alarmTopicArn", output_of(names::ALARM_TOPIC, "arn"));
}
