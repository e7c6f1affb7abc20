//! Logical names of the resources in the templates: the keys of `resources`, what
//! `${name.attribute}` interpolations refer to, and what the tests, the checks and the local run
//! look resources up by. Renaming one renames a resource in every deployed stack (Pulumi
//! replaces it), so they are fixed here once.

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
