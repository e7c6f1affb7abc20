//! What tells an operator that something went wrong without reading logs: CloudWatch alarms on
//! the functions' metrics and on the schedule's dead-letter queue, and one SNS topic per stack
//! that they notify (each stack in its own account).
//!
//! ```text
//! <prefix>-<alarm> --ALARM / OK--> alarmTopic <prefix>-alarms (encrypted with alarmKey) --> alarmEmail
//! ```
//!
//! This module is generic: each stack declares its own alarms (`source::alarms`,
//! `target::alarms`) as [`AlarmSpec`]s, whose threshold names the key it comes from. The
//! project's own metric names come from `shared::metrics` (the functions emit them in Embedded
//! Metric Format); AWS's names (Lambda's and SQS's metrics) are defined once here.
//! Only this stack's alarms may publish to the topic or use its key: the policies name each
//! alarm's ARN.

use serde_json::json;

use crate::config::{AlarmSettings, CommonConfig, Key};
use crate::iam::{self, PolicyDocument, Principal, Statement};
use crate::names;
use crate::template::{output_of, to_json, Resource, Template};
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
    /// What the statistic is compared with.
    pub threshold: Threshold,
}

/// Where an alarm's threshold comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// A count: the value of an alarm threshold key.
    Count(Key),
    /// A key in seconds, for a metric in milliseconds (the iterator age).
    SecondsOf(Key),
    /// 0, not a key: any occurrence is too many.
    AnyOccurrence,
}

impl Threshold {
    /// The key that sets it, if any.
    pub fn key(self) -> Option<Key> {
        match self {
            Threshold::Count(key) | Threshold::SecondsOf(key) => Some(key),
            Threshold::AnyOccurrence => None,
        }
    }

    /// The value, in the metric's unit, with the stack's alarm settings.
    pub fn value(self, settings: &AlarmSettings) -> u64 {
        match self {
            Threshold::Count(key) => settings.threshold(key).into(),
            Threshold::SecondsOf(key) => u64::from(settings.threshold(key)) * 1000,
            Threshold::AnyOccurrence => 0,
        }
    }
}

/// The ARNs of `alarms` in this stack's account and region: the only publishers the topic and
/// its key accept.
pub fn alarm_arns(common: &CommonConfig, account_id: &str, alarms: &[AlarmSpec]) -> Vec<String> {
    alarms
        .iter()
        .map(|a| {
            iam::alarm_arn(
                &common.region,
                account_id,
                &names::alarm_name(&common.name_prefix, a.name),
            )
        })
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
            &[&output_of(names::ALARM_TOPIC, "arn")],
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
    let topic = names::alarm_topic_name(&common.name_prefix);
    t.add(
        names::ALARM_KEY,
        iam::customer_managed_key(
            provider,
            &format!("Encrypts the alarm topic {topic}"),
            &key_policy(account_id, &arns),
        ),
    );
    t.add(
        names::ALARM_TOPIC,
        Resource::aws("aws:sns:Topic", provider)
            .prop("name", topic)
            .prop("kmsMasterKeyId", output_of(names::ALARM_KEY, "arn")),
    );
    t.add(
        names::ALARM_TOPIC_POLICY,
        Resource::aws("aws:sns:TopicPolicy", provider)
            .prop("arn", output_of(names::ALARM_TOPIC, "arn"))
            .prop(
                "policy",
                to_json(topic_policy(account_id, &arns).to_value()),
            ),
    );
    if let Some(email) = &common.alarms.email {
        t.add(
            names::ALARM_EMAIL_SUBSCRIPTION,
            Resource::aws("aws:sns:TopicSubscription", provider)
                .prop("topic", output_of(names::ALARM_TOPIC, "arn"))
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
    let topic = json!([output_of(names::ALARM_TOPIC, "arn")]);
    let statistic = match spec.statistic {
        Statistic::Sum => "Sum",
        Statistic::Maximum => "Maximum",
    };
    Resource::aws("aws:cloudwatch:MetricAlarm", provider)
        .prop("name", names::alarm_name(&common.name_prefix, spec.name))
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
        .prop("threshold", spec.threshold.value(&common.alarms))
        // Each metric watched here is reported only when something happens (an invocation, a
        // batch, a message in the queue; each spec's comment says which): a period without
        // data is a period in which nothing went wrong.
        .prop("treatMissingData", "notBreaching")
        .prop("alarmActions", topic.clone())
        .prop("okActions", topic)
        // A state change before the policy exists could not be published.
        .depends_on(&[names::ALARM_TOPIC_POLICY])
}

/// What the stacks' alarm tests compare: each spec as a row of plain values.
#[cfg(test)]
pub(crate) mod testing {
    use super::{AlarmSpec, Statistic};
    use crate::config::AlarmSettings;

    /// `(logical, physical name after the prefix, namespace, metric, dimension, its value,
    /// statistic, threshold)` of each alarm.
    pub type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        String,
        Statistic,
        u64,
    );

    pub fn rows(alarms: &[AlarmSpec], settings: &AlarmSettings) -> Vec<Row> {
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
                    a.threshold.value(settings),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::config::fixtures::target;
    use crate::config::TargetConfig;

    /// Two alarms of a made-up stack: one on a count key, one on a key in seconds.
    fn specs() -> Vec<AlarmSpec> {
        vec![
            AlarmSpec {
                logical: "firstAlarm",
                name: "first",
                description: "First. (docs/operate.md)",
                watched: Watched::lambda(lambda::ERRORS, "p-target".into()),
                statistic: Statistic::Sum,
                threshold: Threshold::Count(Key::AlarmErrorsThreshold),
            },
            AlarmSpec {
                logical: "secondAlarm",
                name: "second",
                description: "Second. (docs/operate.md)",
                watched: Watched::queue(sqs::MESSAGES_VISIBLE, "p-queue".into()),
                statistic: Statistic::Maximum,
                threshold: Threshold::SecondsOf(Key::AlarmIteratorAgeSeconds),
            },
        ]
    }

    fn arns() -> Vec<String> {
        alarm_arns(&target(&[]).common, "222222222222", &specs())
    }

    #[test]
    fn only_this_stacks_alarms_may_publish_and_use_the_key() {
        assert_eq!(
            arns(),
            [
                "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:p-first",
                "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:p-second",
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
            &specs(),
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
                "options": {"provider": "${targetProvider}", "version": crate::template::PULUMI_AWS_VERSION},
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
    fn an_alarm_is_one_period_over_its_keys_threshold_in_the_metrics_unit() {
        let r = rendered(&target(&[
            ("alarmPeriodSeconds", "120"),
            ("alarmErrorsThreshold", "7"),
        ]));
        assert_eq!(
            r["firstAlarm"],
            json!({
                "type": "aws:cloudwatch:MetricAlarm",
                "properties": {
                    "name": "p-first",
                    "alarmDescription": "First. (docs/operate.md)",
                    "namespace": "AWS/Lambda",
                    "metricName": "Errors",
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
                    "version": crate::template::PULUMI_AWS_VERSION,
                    "dependsOn": ["${alarmTopicPolicy}"],
                },
            })
        );
        // A key the target side does not read: its row's default, in milliseconds.
        let second = &r["secondAlarm"]["properties"];
        assert_eq!(second["threshold"], 600_000);
        assert_eq!(second["statistic"], "Maximum");
        assert_eq!(second["dimensions"], json!({"QueueName": "p-queue"}));
    }

    #[test]
    fn a_threshold_names_its_key_and_any_occurrence_is_zero() {
        let settings = &target(&[("alarmErrorsThreshold", "3")]).common.alarms;
        assert_eq!(
            Threshold::Count(Key::AlarmErrorsThreshold).value(settings),
            3
        );
        assert_eq!(
            Threshold::SecondsOf(Key::AlarmErrorsThreshold).value(settings),
            3000
        );
        assert_eq!(Threshold::AnyOccurrence.value(settings), 0);
        assert_eq!(
            Threshold::Count(Key::AlarmErrorsThreshold).key(),
            Some(Key::AlarmErrorsThreshold)
        );
        assert_eq!(Threshold::AnyOccurrence.key(), None);
    }
}
