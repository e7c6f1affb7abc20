//! The target stack's alarms: on the target function.

use crate::alarms::{lambda, AlarmSpec, Statistic, Threshold, Watched};
use crate::config::{Key, TargetConfig};
use crate::names;

/// The target stack's alarms.
pub fn alarms(config: &TargetConfig) -> Vec<AlarmSpec> {
    let target = || names::function_name(&config.common.name_prefix, names::TARGET.binary);
    vec![
        AlarmSpec {
            logical: names::TARGET_ERRORS_ALARM,
            name: "target-errors",
            description: "The target function failed whole deliveries (a handler error or a timeout): the relay reports those records for retry. Read the target's log (docs/operate.md).",
            // No data = no invocation, so no error.
            watched: Watched::lambda(lambda::ERRORS, target()),
            statistic: Statistic::Sum,
            threshold: Threshold::Count(Key::AlarmErrorsThreshold),
        },
        AlarmSpec {
            logical: names::TARGET_THROTTLES_ALARM,
            name: "target-throttles",
            description: "Invocations of the target function were refused for lack of concurrency: the relay retries those records, later. Raise targetReservedConcurrency or the account's limit (docs/operate.md).",
            // No data = no invocation asked for, so none refused.
            watched: Watched::lambda(lambda::THROTTLES, target()),
            statistic: Statistic::Sum,
            threshold: Threshold::Count(Key::AlarmThrottlesThreshold),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarms::testing::rows;
    use crate::config::fixtures::target;

    #[test]
    fn target_alarms_watch_the_target_function_by_physical_name() {
        let config = target(&[
            ("alarmErrorsThreshold", "4"),
            ("alarmThrottlesThreshold", "5"),
        ]);
        assert_eq!(
            rows(&alarms(&config), &config.common.alarms),
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
    fn every_alarm_says_what_it_means_and_points_to_the_operate_guide() {
        for a in &alarms(&target(&[])) {
            assert!(a.description.contains("(docs/operate.md)"), "{}", a.logical);
            // CloudWatch's limit on an alarm's description.
            assert!(a.description.len() <= 1024, "{}", a.logical);
        }
    }

    fn rendered(config: &TargetConfig) -> serde_json::Value {
        let mut t = crate::template::Template::new("test");
        crate::alarms::add(
            &mut t,
            &config.common,
            "targetProvider",
            "222222222222",
            &alarms(config),
        );
        serde_json::to_value(&t).unwrap()["resources"].clone()
    }

    #[test]
    fn an_alarm_fires_on_one_period_over_its_threshold_and_notifies_the_topic() {
        let r = rendered(&target(&[
            ("alarmPeriodSeconds", "120"),
            ("alarmThrottlesThreshold", "7"),
        ]));
        // The whole resource's shape is crate::alarms' test; here, what the target's spec sets.
        let throttles = &r["targetThrottlesAlarm"]["properties"];
        assert_eq!(throttles["name"], "p-target-throttles");
        assert_eq!(
            throttles["alarmDescription"],
            alarms(&target(&[]))[1].description
        );
        assert_eq!(throttles["metricName"], "Throttles");
        assert_eq!(throttles["dimensions"]["FunctionName"], "p-target");
        assert_eq!(throttles["threshold"], 7);
        assert_eq!(throttles["period"], 120);
        assert_eq!(
            r["targetThrottlesAlarm"]["options"]["provider"],
            "${targetProvider}"
        );
        assert_eq!(r["targetErrorsAlarm"]["properties"]["metricName"], "Errors");
        assert_eq!(r["targetErrorsAlarm"]["properties"]["period"], 120);
    }
}
