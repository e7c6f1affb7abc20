//! What tells an operator that something went wrong without reading logs: CloudWatch alarms on
//! the functions' metrics and on the schedule's dead-letter queue, and one SNS topic per stack
//! that they notify (each stack in its own account).
//!
//! ```text
//! <prefix>-<alarm> --ALARM / OK--> alarmTopic <prefix>-alarms (encrypted with alarmKey) --> alarmEmail
//! ```
//!
//! The project's own metric names come from `shared::metrics` (the functions emit them in
//! Embedded Metric Format); AWS's names (Lambda's and SQS's metrics) are defined once here.
//! Only this stack's alarms may publish to the topic or use its key: the policies name each
//! alarm's ARN.

use serde_json::json;

use crate::config::{CommonConfig, NamePrefix, SourceConfig, TargetConfig};
use crate::function::function_name;
use crate::iam::{self, PolicyDocument, Principal, Statement};
use crate::logical;
use crate::model::{output_of, to_json, Resource, Template};
use shared::metrics;

/// AWS/Lambda's metrics of a function, by its name.
pub mod lambda {
    pub const NAMESPACE: &str = "AWS/Lambda";
    pub const DIMENSION: &str = "FunctionName";
    /// Invocations that ended in a function error (a handler error or a timeout).
    pub const ERRORS: &str = "Errors";
    /// Invocation requests refused for lack of concurrency.
    pub const THROTTLES: &str = "Throttles";
    /// For a stream's event source mapping: the age of the last record of each batch when
    /// the function got it, in milliseconds.
    pub const ITERATOR_AGE: &str = "IteratorAge";
    /// Records Lambda could not write to a destination (for an event source mapping: its
    /// on-failure destination). A batch whose on-failure record could not be written is gone.
    pub const DESTINATION_DELIVERY_FAILURES: &str = "DestinationDeliveryFailures";
}

/// AWS/SQS's metrics of a queue, by its name.
pub mod sqs {
    pub const NAMESPACE: &str = "AWS/SQS";
    pub const DIMENSION: &str = "QueueName";
    pub const MESSAGES_VISIBLE: &str = "ApproximateNumberOfMessagesVisible";
}

/// The service that publishes an alarm's state changes.
const CLOUDWATCH: &str = "cloudwatch.amazonaws.com";

/// One metric of one resource: what an alarm watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub namespace: &'static str,
    pub metric: &'static str,
    pub dimension: &'static str,
    /// The dimension's value: the physical name of the function or queue.
    pub resource: String,
}

impl Watched {
    /// A metric this project's function emits (`shared::metrics`).
    pub fn own(metric: metrics::Metric, function: String) -> Self {
        Self {
            namespace: metrics::NAMESPACE,
            metric: metric.name,
            dimension: metrics::DIMENSION,
            resource: function,
        }
    }

    /// A metric Lambda reports for a function.
    pub fn lambda(metric: &'static str, function: String) -> Self {
        Self {
            namespace: lambda::NAMESPACE,
            metric,
            dimension: lambda::DIMENSION,
            resource: function,
        }
    }

    /// A metric SQS reports for a queue.
    pub fn queue(metric: &'static str, queue: String) -> Self {
        Self {
            namespace: sqs::NAMESPACE,
            metric,
            dimension: sqs::DIMENSION,
            resource: queue,
        }
    }
}

/// How one period's data points become the value compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    Sum,
    Maximum,
}

/// One alarm: fires when the statistic of one period is above the threshold, and says so
/// again (OK) when a period is back within it. A period without data is within it (the comment
/// on each spec says why that holds for its metric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmSpec {
    pub logical: &'static str,
    /// The physical name after `<prefix>-`.
    pub name: &'static str,
    /// What it means and where to look: the notification carries it.
    pub description: &'static str,
    pub watched: Watched,
    pub statistic: Statistic,
    /// In the metric's unit (milliseconds for the iterator age).
    pub threshold: u64,
}

/// `<prefix>-alarms`.
pub fn topic_name(prefix: &NamePrefix) -> String {
    prefix.name("alarms")
}

/// The source stack's alarms.
pub fn source_alarms(config: &SourceConfig) -> Vec<AlarmSpec> {
    let prefix = &config.common.name_prefix;
    let relay = || function_name(prefix, logical::RELAY.binary);
    let errors = u64::from(config.common.alarms.errors_threshold);
    vec![
        AlarmSpec {
            logical: logical::RELAY_DEAD_LETTERED_ALARM,
            name: "relay-records-dead-lettered",
            description: "The relay wrote records to the dead-letter bucket (rejected by the target, or too large for any Invoke). See them with `relayctl list`, fix the cause, then `relayctl redrive` (README: Operate).",
            // No data = no batch: the relay reports a count, 0 included, for every batch.
            watched: Watched::own(metrics::relay::RECORDS_DEAD_LETTERED, relay()),
            statistic: Statistic::Sum,
            threshold: config.dead_lettered_alarm_threshold.into(),
        },
        AlarmSpec {
            logical: logical::SCHEDULE_DEAD_LETTERS_ALARM,
            name: "schedule-dead-letters",
            description: "Scheduler could not hand a producer tick to Lambda: the tick waits in the schedule's dead-letter queue (stack output scheduleDeadLetterQueueUrl). Fix the cause, invoke the producer once per message, delete the message (README: Operate).",
            // No data = an empty queue: SQS stops reporting a queue left empty and untouched for
            // six hours, and keeps reporting one that holds a message.
            watched: Watched::queue(
                sqs::MESSAGES_VISIBLE,
                crate::source::schedule_dead_letter_queue_name(config),
            ),
            statistic: Statistic::Maximum,
            threshold: 0,
        },
        AlarmSpec {
            logical: logical::RELAY_ERRORS_ALARM,
            name: "relay-errors",
            description: "The relay failed whole invocations (a handler error or a timeout): the event source mapping retries the batch, then writes it to the dead-letter bucket as a failed batch. Read the relay's log (README: Operate).",
            // No data = no invocation, so no error.
            watched: Watched::lambda(lambda::ERRORS, relay()),
            statistic: Statistic::Sum,
            threshold: errors,
        },
        AlarmSpec {
            logical: logical::RELAY_ITERATOR_AGE_ALARM,
            name: "relay-iterator-age",
            description: "Records wait in the stream longer than alarmIteratorAgeSeconds before the relay gets them: the relay falls behind or retries a failing batch. Past maximumRecordAgeSeconds they go to the dead-letter bucket (README: Operate).",
            // No data = no batch, so no record waited (Lambda reports it per batch).
            watched: Watched::lambda(lambda::ITERATOR_AGE, relay()),
            statistic: Statistic::Maximum,
            threshold: u64::from(config.iterator_age_alarm_seconds) * 1000,
        },
        AlarmSpec {
            logical: logical::RELAY_DESTINATION_DELIVERY_FAILURES_ALARM,
            name: "relay-destination-delivery-failures",
            description: "Lambda could not write a failed batch's on-failure record to the dead-letter bucket (the relay's DestinationDeliveryFailures): the mapping gave those records up, and they are left only in the stream, until its retention ends. Fix the cause (the bucket policy, the relay role's s3:PutObject and s3:ListBucket), then find the records by the relay's failed-record log lines and write them to the stream again (README: Operate).",
            // No data = no write attempted, so none failed. Any failure is data loss: the
            // threshold is not a key.
            watched: Watched::lambda(lambda::DESTINATION_DELIVERY_FAILURES, relay()),
            statistic: Statistic::Sum,
            threshold: 0,
        },
        AlarmSpec {
            logical: logical::RELAY_ASSUME_ROLE_FAILURES_ALARM,
            name: "relay-assume-role-failures",
            description: "The relay could not assume the target account's cross-account role (its AssumeRoleFailures): no record is delivered while it lasts, and the mapping retries, then dead-letters the batches. Read the relay's log for the STS error: a changed trust policy, external id or role, or STS throttling (README: Operate).",
            // No data = no batch: the relay reports a count, 0 included, for every batch.
            watched: Watched::own(metrics::relay::ASSUME_ROLE_FAILURES, relay()),
            statistic: Statistic::Sum,
            threshold: config.assume_role_failures_alarm_threshold.into(),
        },
        AlarmSpec {
            logical: logical::PRODUCER_ERRORS_ALARM,
            name: "producer-errors",
            description: "Producer ticks failed (records not written after every retry): Lambda retries a tick twice, then writes it to the dead-letter bucket as a failed invocation. Read the producer's log (README: Operate).",
            // No data = no invocation, so no error.
            watched: Watched::lambda(lambda::ERRORS, function_name(prefix, logical::PRODUCER.binary)),
            statistic: Statistic::Sum,
            threshold: errors,
        },
    ]
}

/// The target stack's alarms.
pub fn target_alarms(config: &TargetConfig) -> Vec<AlarmSpec> {
    let target = || function_name(&config.common.name_prefix, logical::TARGET.binary);
    vec![
        AlarmSpec {
            logical: logical::TARGET_ERRORS_ALARM,
            name: "target-errors",
            description: "The target function failed whole deliveries (a handler error or a timeout): the relay reports those records for retry. Read the target's log (README: Operate).",
            // No data = no invocation, so no error.
            watched: Watched::lambda(lambda::ERRORS, target()),
            statistic: Statistic::Sum,
            threshold: config.common.alarms.errors_threshold.into(),
        },
        AlarmSpec {
            logical: logical::TARGET_THROTTLES_ALARM,
            name: "target-throttles",
            description: "Invocations of the target function were refused for lack of concurrency: the relay retries those records, later. Raise targetReservedConcurrency or the account's limit (README: Operate).",
            // No data = no invocation asked for, so none refused.
            watched: Watched::lambda(lambda::THROTTLES, target()),
            statistic: Statistic::Sum,
            threshold: config.throttles_alarm_threshold.into(),
        },
    ]
}

/// The ARNs of `alarms` in this stack's account and region: the only publishers the topic and
/// its key accept.
pub fn alarm_arns(common: &CommonConfig, account_id: &str, alarms: &[AlarmSpec]) -> Vec<String> {
    alarms
        .iter()
        .map(|a| iam::alarm_arn(&common.region, account_id, &common.name_prefix.name(a.name)))
        .collect()
}

/// Limits a statement to CloudWatch acting for these alarms of this account (confused deputy:
/// CloudWatch would otherwise publish for any account's alarm that names the topic).
fn for_these_alarms(statement: Statement, account_id: &str, alarm_arns: &[String]) -> Statement {
    statement
        .principal(Principal::Service(CLOUDWATCH.into()))
        .when("StringEquals", "aws:SourceAccount", account_id)
        .when("ArnEquals", "aws:SourceArn", json!(alarm_arns))
}

/// The topic's policy: this stack's alarms may publish, and nobody else is granted anything
/// (the account's administrators keep what their own IAM policies give them).
pub fn topic_policy(account_id: &str, alarm_arns: &[String]) -> PolicyDocument {
    PolicyDocument::new(vec![for_these_alarms(
        Statement::allow(
            "ThisStackAlarmsPublish",
            &["sns:Publish"],
            &[&output_of(logical::ALARM_TOPIC, "arn")],
        ),
        account_id,
        alarm_arns,
    )])
}

/// The key's policy. SNS encrypts a message with the publisher's permissions on the key, and
/// the AWS managed key `alias/aws/sns` grants them only to the account's own principals, never
/// to CloudWatch: an alarm cannot publish to a topic encrypted with it. So the topic has a key
/// of its own that the account administers and this stack's alarms may use.
pub fn key_policy(account_id: &str, alarm_arns: &[String]) -> PolicyDocument {
    PolicyDocument::new(vec![
        iam::account_administers_key(account_id),
        // `Resource: "*"` is the only value a key policy accepts: it means this key.
        for_these_alarms(
            Statement::allow("ThisStackAlarmsEncrypt", iam::KEY_USE_ACTIONS, &["*"]),
            account_id,
            alarm_arns,
        ),
    ])
}

/// Adds the key, the topic, its policy, the e-mail subscription when `alarmEmail` is set, and
/// the alarms, all through `provider` in `account_id`.
pub fn add(
    t: &mut Template,
    common: &CommonConfig,
    provider: &str,
    account_id: &str,
    alarms: &[AlarmSpec],
) {
    let arns = alarm_arns(common, account_id, alarms);
    let topic = topic_name(&common.name_prefix);
    t.add(
        logical::ALARM_KEY,
        iam::customer_managed_key(
            provider,
            &format!("Encrypts the alarm topic {topic}"),
            &key_policy(account_id, &arns),
        ),
    );
    t.add(
        logical::ALARM_TOPIC,
        Resource::aws("aws:sns:Topic", provider)
            .prop("name", topic)
            .prop("kmsMasterKeyId", output_of(logical::ALARM_KEY, "arn")),
    );
    t.add(
        logical::ALARM_TOPIC_POLICY,
        Resource::aws("aws:sns:TopicPolicy", provider)
            .prop("arn", output_of(logical::ALARM_TOPIC, "arn"))
            .prop(
                "policy",
                to_json(topic_policy(account_id, &arns).to_value()),
            ),
    );
    if let Some(email) = &common.alarms.email {
        t.add(
            logical::ALARM_EMAIL_SUBSCRIPTION,
            Resource::aws("aws:sns:TopicSubscription", provider)
                .prop("topic", output_of(logical::ALARM_TOPIC, "arn"))
                .prop("protocol", "email")
                .prop("endpoint", email.clone()),
        );
    }
    for spec in alarms {
        t.add(spec.logical, alarm(common, provider, spec));
    }
}

/// One alarm: one period over the threshold fires it; ALARM and OK both notify the topic.
fn alarm(common: &CommonConfig, provider: &str, spec: &AlarmSpec) -> Resource {
    let topic = json!([output_of(logical::ALARM_TOPIC, "arn")]);
    let statistic = match spec.statistic {
        Statistic::Sum => "Sum",
        Statistic::Maximum => "Maximum",
    };
    Resource::aws("aws:cloudwatch:MetricAlarm", provider)
        .prop("name", common.name_prefix.name(spec.name))
        .prop("alarmDescription", spec.description)
        .prop("namespace", spec.watched.namespace)
        .prop("metricName", spec.watched.metric)
        .prop(
            "dimensions",
            json!({ spec.watched.dimension: spec.watched.resource }),
        )
        .prop("statistic", statistic)
        .prop("period", common.alarms.period_seconds)
        .prop("evaluationPeriods", 1)
        .prop("comparisonOperator", "GreaterThanThreshold")
        .prop("threshold", spec.threshold)
        // Each metric watched here is reported only when something happens (an invocation, a
        // batch, a message in the queue; each spec's comment says which): a period without
        // data is a period in which nothing went wrong.
        .prop("treatMissingData", "notBreaching")
        .prop("alarmActions", topic.clone())
        .prop("okActions", topic)
        // A state change before the policy exists could not be published.
        .depends_on(&[logical::ALARM_TOPIC_POLICY])
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::config::{RawConfig, StackConfig};

    const COMMON: &[(&str, &str)] = &[
        ("aws:region", "eu-west-1"),
        ("sourceAccountId", "111111111111"),
        ("targetAccountId", "222222222222"),
        ("externalId", "example-external-id"),
        ("namePrefix", "p"),
    ];

    fn stack(side: &str, extra: &[(&str, &str)]) -> StackConfig {
        let mut pairs = COMMON.to_vec();
        pairs.push(("side", side));
        if side == "source" {
            pairs.push(("targetRoleArn", "arn:aws:iam::222222222222:role/x"));
            pairs.push(("targetFunctionName", "f"));
        }
        pairs.extend_from_slice(extra);
        RawConfig::from_pairs("s", &pairs).stack_config().unwrap()
    }

    fn source(extra: &[(&str, &str)]) -> SourceConfig {
        match stack("source", extra) {
            StackConfig::Source(c) => c,
            StackConfig::Target(_) => panic!("source"),
        }
    }

    fn target(extra: &[(&str, &str)]) -> TargetConfig {
        match stack("target", extra) {
            StackConfig::Target(c) => c,
            StackConfig::Source(_) => panic!("target"),
        }
    }

    /// `(logical, physical name after the prefix, namespace, metric, dimension, its value,
    /// statistic, threshold)` of each alarm.
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        String,
        Statistic,
        u64,
    );

    fn rows(alarms: &[AlarmSpec]) -> Vec<Row> {
        alarms
            .iter()
            .map(|a| {
                let w = &a.watched;
                let resource = w.resource.clone();
                let row = (a.logical, a.name, w.namespace, w.metric, w.dimension);
                (
                    row.0,
                    row.1,
                    row.2,
                    row.3,
                    row.4,
                    resource,
                    a.statistic,
                    a.threshold,
                )
            })
            .collect()
    }

    #[test]
    fn source_alarms_watch_the_relay_producer_and_schedule_queue_by_physical_name() {
        let config = source(&[
            ("alarmErrorsThreshold", "2"),
            ("alarmDeadLetteredRecordsThreshold", "3"),
            ("alarmIteratorAgeSeconds", "900"),
            ("alarmAssumeRoleFailuresThreshold", "6"),
        ]);
        let own = metrics::NAMESPACE;
        let dead_lettered = metrics::relay::RECORDS_DEAD_LETTERED.name;
        assert_eq!(
            rows(&source_alarms(&config)),
            vec![
                (
                    "relayDeadLetteredAlarm",
                    "relay-records-dead-lettered",
                    own,
                    dead_lettered,
                    metrics::DIMENSION,
                    "p-relay".into(),
                    Statistic::Sum,
                    3
                ),
                (
                    "scheduleDeadLettersAlarm",
                    "schedule-dead-letters",
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    "p-schedule-dead-letters".into(),
                    Statistic::Maximum,
                    0
                ),
                (
                    "relayErrorsAlarm",
                    "relay-errors",
                    "AWS/Lambda",
                    "Errors",
                    "FunctionName",
                    "p-relay".into(),
                    Statistic::Sum,
                    2
                ),
                (
                    "relayIteratorAgeAlarm",
                    "relay-iterator-age",
                    "AWS/Lambda",
                    "IteratorAge",
                    "FunctionName",
                    "p-relay".into(),
                    Statistic::Maximum,
                    900_000
                ),
                (
                    "relayDestinationDeliveryFailuresAlarm",
                    "relay-destination-delivery-failures",
                    "AWS/Lambda",
                    "DestinationDeliveryFailures",
                    "FunctionName",
                    "p-relay".into(),
                    Statistic::Sum,
                    0
                ),
                (
                    "relayAssumeRoleFailuresAlarm",
                    "relay-assume-role-failures",
                    own,
                    metrics::relay::ASSUME_ROLE_FAILURES.name,
                    metrics::DIMENSION,
                    "p-relay".into(),
                    Statistic::Sum,
                    6
                ),
                (
                    "producerErrorsAlarm",
                    "producer-errors",
                    "AWS/Lambda",
                    "Errors",
                    "FunctionName",
                    "p-producer".into(),
                    Statistic::Sum,
                    2
                ),
            ]
        );
        // The dimension values are the names the functions and the queue are created with.
        assert_eq!(
            crate::source::schedule_dead_letter_queue_name(&config),
            "p-schedule-dead-letters"
        );
        assert_eq!(own, "CrossAccountRelay");
        assert_eq!(
            metrics::relay::ASSUME_ROLE_FAILURES.name,
            "AssumeRoleFailures"
        );
    }

    #[test]
    fn a_lost_on_failure_record_fires_at_the_first_one_whatever_the_thresholds() {
        let config = source(&[
            ("alarmErrorsThreshold", "100"),
            ("alarmDeadLetteredRecordsThreshold", "100"),
            ("alarmAssumeRoleFailuresThreshold", "100"),
        ]);
        let alarms = source_alarms(&config);
        let lost = alarms
            .iter()
            .find(|a| a.watched.metric == lambda::DESTINATION_DELIVERY_FAILURES)
            .expect("an alarm on DestinationDeliveryFailures");
        assert_eq!((lost.threshold, lost.statistic), (0, Statistic::Sum));
        assert!(lost.description.contains("dead-letter bucket"));
    }

    #[test]
    fn target_alarms_watch_the_target_function_by_physical_name() {
        let config = target(&[
            ("alarmErrorsThreshold", "4"),
            ("alarmThrottlesThreshold", "5"),
        ]);
        assert_eq!(
            rows(&target_alarms(&config)),
            vec![
                (
                    "targetErrorsAlarm",
                    "target-errors",
                    "AWS/Lambda",
                    "Errors",
                    "FunctionName",
                    "p-target".into(),
                    Statistic::Sum,
                    4
                ),
                (
                    "targetThrottlesAlarm",
                    "target-throttles",
                    "AWS/Lambda",
                    "Throttles",
                    "FunctionName",
                    "p-target".into(),
                    Statistic::Sum,
                    5
                ),
            ]
        );
    }

    #[test]
    fn every_alarm_says_what_it_means_and_points_to_the_readme() {
        let all = [source_alarms(&source(&[])), target_alarms(&target(&[]))].concat();
        for a in &all {
            assert!(a.description.contains("(README: Operate)"), "{}", a.logical);
            // CloudWatch's limit on an alarm's description.
            assert!(a.description.len() <= 1024, "{}", a.logical);
        }
    }

    fn arns() -> Vec<String> {
        let config = target(&[]);
        alarm_arns(&config.common, "222222222222", &target_alarms(&config))
    }

    #[test]
    fn only_this_stacks_alarms_may_publish_and_use_the_key() {
        assert_eq!(
            arns(),
            [
                "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:p-target-errors",
                "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:p-target-throttles",
            ]
        );
        let from_these_alarms = json!({
            "StringEquals": {"aws:SourceAccount": "222222222222"},
            "ArnEquals": {"aws:SourceArn": arns()},
        });
        assert_eq!(
            topic_policy("222222222222", &arns()).to_value()["Statement"],
            json!([{
                "Sid": "ThisStackAlarmsPublish", "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["sns:Publish"], "Resource": ["${alarmTopic.arn}"],
                "Condition": from_these_alarms,
            }])
        );
        let key = key_policy("222222222222", &arns()).to_value();
        assert_eq!(
            key["Statement"][0],
            serde_json::to_value(iam::account_administers_key("222222222222")).unwrap()
        );
        assert_eq!(
            key["Statement"][1],
            json!({
                "Sid": "ThisStackAlarmsEncrypt", "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": ["*"],
                "Condition": from_these_alarms,
            })
        );
        assert_eq!(key["Statement"].as_array().unwrap().len(), 2);
    }

    fn rendered(config: &TargetConfig) -> Value {
        let mut t = Template::new("test");
        add(
            &mut t,
            &config.common,
            "targetProvider",
            "222222222222",
            &target_alarms(config),
        );
        serde_json::to_value(&t).unwrap()["resources"].clone()
    }

    #[test]
    fn the_topic_is_encrypted_with_its_key_and_has_its_policy() {
        let r = rendered(&target(&[]));
        assert_eq!(r["alarmKey"]["type"], "aws:kms:Key");
        assert_eq!(r["alarmKey"]["properties"]["enableKeyRotation"], true);
        assert_eq!(
            r["alarmKey"]["properties"]["policy"]["fn::toJSON"],
            key_policy("222222222222", &arns()).to_value()
        );
        assert_eq!(
            r["alarmTopic"],
            json!({
                "type": "aws:sns:Topic",
                "properties": {"name": "p-alarms", "kmsMasterKeyId": "${alarmKey.arn}"},
                "options": {"provider": "${targetProvider}", "version": crate::model::PULUMI_AWS_VERSION},
            })
        );
        assert_eq!(r["alarmTopicPolicy"]["type"], "aws:sns:TopicPolicy");
        assert_eq!(
            r["alarmTopicPolicy"]["properties"]["arn"],
            "${alarmTopic.arn}"
        );
        assert_eq!(
            r["alarmTopicPolicy"]["properties"]["policy"]["fn::toJSON"],
            topic_policy("222222222222", &arns()).to_value()
        );
        assert!(r.get("alarmEmailSubscription").is_none());
    }

    #[test]
    fn an_alarm_email_subscribes_to_the_topic() {
        let r = rendered(&target(&[("alarmEmail", "ops@example.com")]));
        assert_eq!(
            r["alarmEmailSubscription"]["properties"],
            json!({"topic": "${alarmTopic.arn}", "protocol": "email", "endpoint": "ops@example.com"})
        );
        assert_eq!(
            r["alarmEmailSubscription"]["type"],
            "aws:sns:TopicSubscription"
        );
    }

    #[test]
    fn an_alarm_fires_on_one_period_over_its_threshold_and_notifies_the_topic() {
        let r = rendered(&target(&[
            ("alarmPeriodSeconds", "120"),
            ("alarmThrottlesThreshold", "7"),
        ]));
        assert_eq!(
            r["targetThrottlesAlarm"],
            json!({
                "type": "aws:cloudwatch:MetricAlarm",
                "properties": {
                    "name": "p-target-throttles",
                    "alarmDescription": target_alarms(&target(&[]))[1].description,
                    "namespace": "AWS/Lambda",
                    "metricName": "Throttles",
                    "dimensions": {"FunctionName": "p-target"},
                    "statistic": "Sum",
                    "period": 120,
                    "evaluationPeriods": 1,
                    "comparisonOperator": "GreaterThanThreshold",
                    "threshold": 7,
                    "treatMissingData": "notBreaching",
                    "alarmActions": ["${alarmTopic.arn}"],
                    "okActions": ["${alarmTopic.arn}"],
                },
                "options": {
                    "provider": "${targetProvider}",
                    "version": crate::model::PULUMI_AWS_VERSION,
                    "dependsOn": ["${alarmTopicPolicy}"],
                },
            })
        );
        assert_eq!(r["targetErrorsAlarm"]["properties"]["metricName"], "Errors");
        assert_eq!(r["targetErrorsAlarm"]["properties"]["period"], 120);
    }

    #[test]
    fn maximum_statistics_are_spelt_for_cloudwatch() {
        let mut t = Template::new("test");
        let config = source(&[]);
        add(
            &mut t,
            &config.common,
            "sourceProvider",
            "111111111111",
            &source_alarms(&config),
        );
        let r = &serde_json::to_value(&t).unwrap()["resources"];
        assert_eq!(
            r["relayIteratorAgeAlarm"]["properties"]["statistic"],
            "Maximum"
        );
        assert_eq!(
            r["relayIteratorAgeAlarm"]["properties"]["threshold"],
            600_000
        );
        assert_eq!(r["relayErrorsAlarm"]["properties"]["statistic"], "Sum");
        assert_eq!(r["alarmTopic"]["properties"]["name"], "p-alarms");
    }
}
