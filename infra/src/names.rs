//! Every name of the program, in one place: the logical names of the resources in the
//! templates (the keys of `resources`, what `${name.attribute}` interpolations refer to, and
//! what the tests, the checks and the local run look resources up by), and the physical names
//! the resources get in AWS, each `<namePrefix>-<suffix>`.
//!
//! Renaming a logical name renames a resource in every deployed stack (Pulumi replaces it), and
//! physical names are fixed (not auto-named) because the other account refers to them before
//! they exist: the cross-account role trusts `arn:aws:iam::<source>:role/<prefix>-relay-role`.

/// The prefix of every physical name (functions, roles, stream, queues, schedule, log groups).
///
/// IAM role names are unique per account across regions, and the other names per account and
/// region: a second pair of stacks in the same accounts (another region, or a second
/// environment) needs its own prefix. Both stacks of a pair must use the same prefix, because
/// the target's trust policy names the source's relay role by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePrefix(String);

impl NamePrefix {
    /// The longest prefix: `<prefix>-scheduler-role` must fit IAM's 64 characters with room
    /// to spare, and lower case keeps it valid for S3 bucket names too.
    pub const MAX_LEN: usize = 32;

    pub fn parse(value: &str) -> Result<Self, String> {
        let ok_chars = value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let starts = value.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        let ends = value.bytes().last().is_some_and(|b| b != b'-');
        if value.len() <= Self::MAX_LEN && ok_chars && starts && ends && !value.contains("--") {
            Ok(Self(value.to_string()))
        } else {
            Err(format!(
                "a name prefix is 1 to {} characters of lower-case letters, digits and single hyphens, starting with a letter and not ending with a hyphen",
                Self::MAX_LEN
            ))
        }
    }

    /// `<prefix>-<suffix>`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `<prefix>-<function>`: the Lambda function's name.
pub fn function_name(prefix: &NamePrefix, function: &str) -> String {
    prefix.name(function)
}

/// `<prefix>-<function>-role`: the execution role's name.
pub fn role_name(prefix: &NamePrefix, function: &str) -> String {
    prefix.name(&format!("{function}-role"))
}

/// `/aws/lambda/<function name>`: the group Lambda writes to by default.
pub fn log_group_name(prefix: &NamePrefix, function: &str) -> String {
    format!("/aws/lambda/{}", function_name(prefix, function))
}

/// `<prefix>-stream`: fixed, so the key policy can name the stream it serves.
pub fn stream_name(prefix: &NamePrefix) -> String {
    prefix.name("stream")
}

/// `<prefix>-schedule-dead-letters`: the schedule's dead-letter queue (its alarm watches it by
/// name).
pub fn schedule_dead_letter_queue_name(prefix: &NamePrefix) -> String {
    prefix.name("schedule-dead-letters")
}

/// `<prefix>-producer`: the producer's schedule.
pub fn schedule_name(prefix: &NamePrefix) -> String {
    prefix.name("producer")
}

/// `<prefix>-scheduler-role`: the role Scheduler invokes the producer with.
pub fn scheduler_role_name(prefix: &NamePrefix) -> String {
    prefix.name("scheduler-role")
}

/// `<prefix>-dead-letters-<source account>`: bucket names are global, so the account id keeps
/// two accounts using the same prefix apart (at most 32 + 14 + 13 = 59 of S3's 63 characters).
pub fn dead_letter_bucket_name(prefix: &NamePrefix, source_account_id: &str) -> String {
    prefix.name(&format!("dead-letters-{source_account_id}"))
}

/// `<prefix>-invoker`: the cross-account role, unless `crossAccountRoleName` names another.
pub fn default_cross_account_role_name(prefix: &NamePrefix) -> String {
    prefix.name("invoker")
}

/// `<prefix>-idempotency`: the target's idempotency table (`idempotencyStore`), fixed so the
/// target role's policy can name it.
pub fn idempotency_table_name(prefix: &NamePrefix) -> String {
    prefix.name("idempotency")
}

/// `<prefix>-sample-effects`: the sample target's effects table (`sampleEffectsTable`).
pub fn sample_effects_table_name(prefix: &NamePrefix) -> String {
    prefix.name("sample-effects")
}

/// `<prefix>-alarms`: each stack's alarm topic.
pub fn alarm_topic_name(prefix: &NamePrefix) -> String {
    prefix.name("alarms")
}

/// `<prefix>-<alarm>`: an alarm's name.
pub fn alarm_name(prefix: &NamePrefix, alarm: &str) -> String {
    prefix.name(alarm)
}

// ---- Logical names ----

/// The source stack's explicit `aws` provider.
pub const SOURCE_PROVIDER: &str = "sourceProvider";
/// The target stack's explicit `aws` provider.
pub const TARGET_PROVIDER: &str = "targetProvider";
/// The StackReference to the target stack (`targetStack` mode). It must differ from every
/// config key: the YAML runtime puts config keys and resources in one namespace.
pub const TARGET_STACK_REFERENCE: &str = "targetStackReference";

pub const STREAM_KEY: &str = "streamKey";
pub const STREAM: &str = "stream";
/// The dead-letter bucket and its settings (each a resource of its own in pulumi-aws 7).
pub const DEAD_LETTER_BUCKET: &str = "deadLetterBucket";
pub const DEAD_LETTER_BUCKET_ENCRYPTION: &str = "deadLetterBucketEncryption";
pub const DEAD_LETTER_BUCKET_PUBLIC_ACCESS: &str = "deadLetterBucketPublicAccess";
pub const DEAD_LETTER_BUCKET_POLICY: &str = "deadLetterBucketPolicy";
pub const DEAD_LETTER_BUCKET_LIFECYCLE: &str = "deadLetterBucketLifecycle";
pub const SCHEDULE_DEAD_LETTER_QUEUE: &str = "scheduleDeadLetterQueue";
pub const PRODUCER_INVOKE_CONFIG: &str = "producerInvokeConfig";
pub const SCHEDULER_ROLE: &str = "schedulerRole";
pub const SCHEDULER_ROLE_POLICY: &str = "schedulerRolePolicy";
pub const SCHEDULE: &str = "schedule";
pub const RELAY_EVENT_SOURCE_MAPPING: &str = "relayEventSourceMapping";
pub const CROSS_ACCOUNT_ROLE: &str = "crossAccountRole";
pub const CROSS_ACCOUNT_ROLE_POLICY: &str = "crossAccountRolePolicy";
/// The sample's effects table (`sampleEffectsTable`; not named like the key: Pulumi YAML
/// shares one namespace between config keys and resources).
pub const SAMPLE_EFFECTS_TABLE: &str = "effectsTable";
/// The target's idempotency table (`idempotencyStore`).
pub const IDEMPOTENCY_TABLE: &str = "idempotencyTable";

/// Each stack's alarm topic, the key that encrypts it, its policy and its optional e-mail
/// subscription.
pub const ALARM_KEY: &str = "alarmKey";
pub const ALARM_TOPIC: &str = "alarmTopic";
pub const ALARM_TOPIC_POLICY: &str = "alarmTopicPolicy";
pub const ALARM_EMAIL_SUBSCRIPTION: &str = "alarmEmailSubscription";
/// The alarms (source stack, then target stack).
pub const RELAY_DEAD_LETTERED_ALARM: &str = "relayDeadLetteredAlarm";
pub const SCHEDULE_DEAD_LETTERS_ALARM: &str = "scheduleDeadLettersAlarm";
pub const RELAY_ERRORS_ALARM: &str = "relayErrorsAlarm";
pub const RELAY_ITERATOR_AGE_ALARM: &str = "relayIteratorAgeAlarm";
pub const RELAY_DESTINATION_DELIVERY_FAILURES_ALARM: &str = "relayDestinationDeliveryFailuresAlarm";
pub const RELAY_ASSUME_ROLE_FAILURES_ALARM: &str = "relayAssumeRoleFailuresAlarm";
pub const PRODUCER_ERRORS_ALARM: &str = "producerErrorsAlarm";
pub const TARGET_ERRORS_ALARM: &str = "targetErrorsAlarm";
pub const TARGET_THROTTLES_ALARM: &str = "targetThrottlesAlarm";

/// What every function brings: the function, its execution role and inline policy, and its
/// log group.
#[derive(Debug, Clone, Copy)]
pub struct FunctionResources {
    /// `producer`, `relay` or `target`: the binary, its artifact folder and its physical name.
    pub binary: &'static str,
    pub function: &'static str,
    pub role: &'static str,
    pub policy: &'static str,
    pub log_group: &'static str,
}

pub const PRODUCER: FunctionResources = FunctionResources {
    binary: "producer",
    function: "producerFunction",
    role: "producerRole",
    policy: "producerRolePolicy",
    log_group: "producerLogGroup",
};

pub const RELAY: FunctionResources = FunctionResources {
    binary: "relay",
    function: "relayFunction",
    role: "relayRole",
    policy: "relayRolePolicy",
    log_group: "relayLogGroup",
};

pub const TARGET: FunctionResources = FunctionResources {
    binary: "target",
    function: "targetFunction",
    role: "targetRole",
    policy: "targetRolePolicy",
    log_group: "targetLogGroup",
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every physical name is the prefix, a hyphen and its fixed suffix: the other account and
    /// the alarms refer to them by these exact names.
    #[test]
    fn every_physical_name_is_the_prefix_and_its_own_suffix() {
        let p = NamePrefix::parse("pair-1").unwrap();
        assert_eq!(function_name(&p, "relay"), "pair-1-relay");
        assert_eq!(role_name(&p, "relay"), "pair-1-relay-role");
        assert_eq!(log_group_name(&p, "relay"), "/aws/lambda/pair-1-relay");
        assert_eq!(stream_name(&p), "pair-1-stream");
        assert_eq!(
            schedule_dead_letter_queue_name(&p),
            "pair-1-schedule-dead-letters"
        );
        assert_eq!(schedule_name(&p), "pair-1-producer");
        assert_eq!(scheduler_role_name(&p), "pair-1-scheduler-role");
        assert_eq!(
            dead_letter_bucket_name(&p, "111111111111"),
            "pair-1-dead-letters-111111111111"
        );
        assert_eq!(idempotency_table_name(&p), "pair-1-idempotency");
        assert_eq!(sample_effects_table_name(&p), "pair-1-sample-effects");
    }
}
