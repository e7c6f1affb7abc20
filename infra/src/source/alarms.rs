//! The source stack's alarms: on the relay, the producer and the schedule's dead-letter queue.

use crate::alarms::{lambda, sqs, AlarmSpec, Statistic, Threshold, Watched};
use crate::config::{Key, SourceConfig};
use crate::names;
use shared::metrics;

/// The source stack's alarms.
pub fn alarms(config: &SourceConfig) -> Vec<AlarmSpec> {
    let prefix = &config.common.name_prefix;
    let relay = || names::function_name(prefix, names::RELAY.binary);
    vec![
        AlarmSpec {
            logical: names::RELAY_DEAD_LETTERED_ALARM,
            name: "relay-records-dead-lettered",
            description: "The relay wrote records to the dead-letter bucket (rejected by the target, or too large for any Invoke). See them with `relayctl list`, fix the cause, then `relayctl redrive` (docs/operate.md).",
            // No data = no batch: the relay reports a count, 0 included, for every batch.
            watched: Watched::own(metrics::relay::RECORDS_DEAD_LETTERED, relay()),
            statistic: Statistic::Sum,
            threshold: Threshold::Count(Key::AlarmDeadLetteredRecordsThreshold),
        },
        AlarmSpec {
            logical: names::SCHEDULE_DEAD_LETTERS_ALARM,
            name: "schedule-dead-letters",
            description: "Scheduler could not hand a producer tick to Lambda: the tick waits in the schedule's dead-letter queue (stack output scheduleDeadLetterQueueUrl). Fix the cause, invoke the producer once per message, delete the message (docs/operate.md).",
            // No data = an empty queue: SQS stops reporting a queue left empty and untouched for
            // six hours, and keeps reporting one that holds a message.
            watched: Watched::queue(
                sqs::MESSAGES_VISIBLE,
                names::schedule_dead_letter_queue_name(prefix),
            ),
            statistic: Statistic::Maximum,
            threshold: Threshold::AnyOccurrence,
        },
        AlarmSpec {
            logical: names::RELAY_ERRORS_ALARM,
            name: "relay-errors",
            description: "The relay failed whole invocations (a handler error or a timeout): the event source mapping retries the batch, then writes it to the dead-letter bucket as a failed batch. Read the relay's log (docs/operate.md).",
            // No data = no invocation, so no error.
            watched: Watched::lambda(lambda::ERRORS, relay()),
            statistic: Statistic::Sum,
            threshold: Threshold::Count(Key::AlarmErrorsThreshold),
        },
        AlarmSpec {
            logical: names::RELAY_ITERATOR_AGE_ALARM,
            name: "relay-iterator-age",
            description: "Records wait in the stream longer than alarmIteratorAgeSeconds before the relay gets them: the relay falls behind or retries a failing batch. Past maximumRecordAgeSeconds they go to the dead-letter bucket (docs/operate.md).",
            // No data = no batch, so no record waited (Lambda reports it per batch).
            watched: Watched::lambda(lambda::ITERATOR_AGE, relay()),
            statistic: Statistic::Maximum,
            threshold: Threshold::SecondsOf(Key::AlarmIteratorAgeSeconds),
        },
        AlarmSpec {
            logical: names::RELAY_DESTINATION_DELIVERY_FAILURES_ALARM,
            name: "relay-destination-delivery-failures",
            description: "Lambda could not write a failed batch's on-failure record to the dead-letter bucket (the relay's DestinationDeliveryFailures): the mapping gave those records up, and they are left only in the stream, until its retention ends. Fix the cause (the bucket policy, the relay role's s3:PutObject and s3:ListBucket), then find the records by the relay's failed-record log lines and write them to the stream again (docs/operate.md).",
            // No data = no write attempted, so none failed. Any failure is data loss: the
            // threshold is not a key.
            watched: Watched::lambda(lambda::DESTINATION_DELIVERY_FAILURES, relay()),
            statistic: Statistic::Sum,
            threshold: Threshold::AnyOccurrence,
        },
        AlarmSpec {
            logical: names::RELAY_ASSUME_ROLE_FAILURES_ALARM,
            name: "relay-assume-role-failures",
            description: "The relay could not assume the target account's cross-account role (its AssumeRoleFailures): no record is delivered while it lasts, and the mapping retries, then dead-letters the batches. Read the relay's log for the STS error: a changed trust policy, external id or role, or STS throttling (docs/operate.md).",
            // No data = no batch: the relay reports a count, 0 included, for every batch.
            watched: Watched::own(metrics::relay::ASSUME_ROLE_FAILURES, relay()),
            statistic: Statistic::Sum,
            threshold: Threshold::Count(Key::AlarmAssumeRoleFailuresThreshold),
        },
        AlarmSpec {
            logical: names::PRODUCER_ERRORS_ALARM,
            name: "producer-errors",
            description: "Producer ticks failed (records not written after every retry): Lambda retries a tick twice, then writes it to the dead-letter bucket as a failed invocation. Read the producer's log (docs/operate.md).",
            // No data = no invocation, so no error.
            watched: Watched::lambda(lambda::ERRORS, names::function_name(prefix, names::PRODUCER.binary)),
            statistic: Statistic::Sum,
            threshold: Threshold::Count(Key::AlarmErrorsThreshold),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::testing::rows;
    use crate::config::fixtures::source;

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
            rows(&alarms(&config), &config.common.alarms),
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
            names::schedule_dead_letter_queue_name(&config.common.name_prefix),
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
        let alarms = alarms(&config);
        let lost = alarms
            .iter()
            .find(|a| a.watched.metric == lambda::DESTINATION_DELIVERY_FAILURES)
            .expect("an alarm on DestinationDeliveryFailures");
        assert_eq!(
            (lost.threshold, lost.statistic),
            (Threshold::AnyOccurrence, Statistic::Sum)
        );
        assert!(lost.description.contains("dead-letter bucket"));
    }

    #[test]
    fn every_alarm_says_what_it_means_and_points_to_the_operate_guide() {
        for a in &alarms(&source(&[])) {
            assert!(a.description.contains("(docs/operate.md)"), "{}", a.logical);
            // CloudWatch's limit on an alarm's description.
            assert!(a.description.len() <= 1024, "{}", a.logical);
        }
    }

    #[test]
    fn the_iterator_age_alarm_compares_milliseconds_with_the_key_in_seconds() {
        let mut t = crate::template::Template::new("test");
        let config = source(&[]);
        crate::alarms::add(
            &mut t,
            &config.common,
            "sourceProvider",
            "111111111111",
            &alarms(&config),
        );
        let r = &serde_json::to_value(&t).unwrap()["resources"];
        let age = &r["relayIteratorAgeAlarm"]["properties"];
        assert_eq!(age["statistic"], "Maximum");
        assert_eq!(age["threshold"], 600_000);
        assert_eq!(r["relayErrorsAlarm"]["properties"]["statistic"], "Sum");
    }
}
