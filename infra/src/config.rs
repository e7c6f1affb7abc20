//! Typed stack configuration, parsed once from `PULUMI_CONFIG`.
//!
//! Every key the program reads is described in [`KEYS`] (name, type, default, which stacks);
//! `Pulumi.yaml` declares exactly these keys (a test checks it), and every error names the
//! key and prints the `pulumi config set` line that fixes it.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::PROJECT;
use shared::config as env;

/// What a stack deploys. Comes from config (`side`), never from the stack's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackSide {
    Source,
    Target,
}

impl StackSide {
    /// The value of `side` that selects this side.
    pub fn name(self) -> &'static str {
        match self {
            StackSide::Source => "source",
            StackSide::Target => "target",
        }
    }

    /// The key naming the account a stack of this side is pinned to: its provider's only
    /// `allowedAccountIds` entry.
    pub fn account_key(self) -> Key {
        match self {
            StackSide::Source => Key::SourceAccountId,
            StackSide::Target => Key::TargetAccountId,
        }
    }
}

/// Lambda instruction set; picks the matching cargo-lambda artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    X86_64,
    Arm64,
}

impl Architecture {
    pub fn lambda_name(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// cargo-lambda's output for this architecture, relative to the project root. arm64 is
    /// built with `--arm64 --lambda-dir target/lambda-arm64` because cargo-lambda otherwise
    /// writes both architectures into the same folder.
    pub fn artifact(self, function: &str) -> String {
        match self {
            Architecture::X86_64 => format!("target/lambda/{function}/bootstrap.zip"),
            Architecture::Arm64 => format!("target/lambda-arm64/{function}/bootstrap.zip"),
        }
    }
}

/// Kinesis capacity mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCapacity {
    OnDemand,
    Provisioned { shards: u32 },
}

/// Where the source stack finds the target's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOutputs {
    /// Plain config keys `targetRoleArn` and `targetFunctionName`.
    Config {
        role_arn: String,
        function_name: String,
    },
    /// A `pulumi:pulumi:StackReference` to the target stack (`org/project/stack`).
    StackReference { stack: String },
}

/// Keys both stacks read.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonConfig {
    pub stack: String,
    pub region: String,
    /// Starts every physical name both stacks create (see [`NamePrefix`]).
    pub name_prefix: NamePrefix,
    pub source_account_id: String,
    pub target_account_id: String,
    pub external_id: String,
    pub cross_account_role_name: String,
    pub architecture: Architecture,
    pub log_retention_days: u32,
    /// Lambda's application log level of every function (one of
    /// `shared::config::APPLICATION_LOG_LEVELS`).
    pub log_level: String,
    pub alarms: AlarmSettings,
}

impl CommonConfig {
    /// The account a stack of `side` deploys into (its provider refuses any other), the value
    /// of [`StackSide::account_key`].
    pub fn pinned_account(&self, side: StackSide) -> &str {
        match side {
            StackSide::Source => &self.source_account_id,
            StackSide::Target => &self.target_account_id,
        }
    }
}

/// The alarm keys both stacks read (each stack's own thresholds are in its config).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSettings {
    /// Subscribed to the stack's alarm topic when set.
    pub email: Option<String>,
    /// The period each alarm evaluates, in seconds.
    pub period_seconds: u32,
    /// Function errors in one period that do not yet fire an errors alarm.
    pub errors_threshold: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    pub common: CommonConfig,
    pub max_session_seconds: u32,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub dedup_capacity: u32,
    pub fault_injection: bool,
    /// Executions reserved for the target function; `None` leaves it in the account's
    /// unreserved pool.
    pub reserved_concurrency: Option<u32>,
    /// Throttled target invocations in one period that do not yet fire the throttles alarm.
    pub throttles_alarm_threshold: u32,
}

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

/// The region of the target function, as the source stack knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRegion {
    /// Set with `targetRegion`, or the source's own region when neither that key nor a stack
    /// reference says otherwise.
    Fixed(String),
    /// The target stack's `targetRegion` output, read through the stack reference.
    FromTargetStack,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub common: CommonConfig,
    pub target: TargetOutputs,
    pub target_region: TargetRegion,
    pub session_seconds: u32,
    pub schedule_expression: String,
    pub stream_capacity: StreamCapacity,
    pub stream_retention_hours: u32,
    pub dead_letter_retention_days: u32,
    /// The dead-letter bucket's `forceDestroy`: deleted with its objects on destroy or replace.
    pub dead_letter_bucket_force_destroy: bool,
    pub records_per_invocation: u32,
    pub padding_bytes: u32,
    pub max_put_attempts: u32,
    pub retry_base_delay_ms: u32,
    pub batch_size: u32,
    pub batching_window_seconds: u32,
    pub parallelization_factor: u32,
    pub maximum_retry_attempts: i32,
    pub maximum_record_age_seconds: i32,
    pub starting_position: String,
    pub relay_max_concurrent_invocations: u32,
    /// 0: off (the relay's default); n: key-ordered delivery, at most n records per Invoke.
    pub relay_max_records_per_invocation: u32,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    /// Records dead-lettered by the relay in one period that do not yet fire the alarm.
    pub dead_lettered_alarm_threshold: u32,
    /// The relay's AssumeRole failures in one period that do not yet fire the alarm.
    pub assume_role_failures_alarm_threshold: u32,
    /// The relay's iterator age that fires the alarm, in seconds.
    pub iterator_age_alarm_seconds: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StackConfig {
    Source(SourceConfig),
    Target(TargetConfig),
}

/// Which stacks read a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Both,
    Source,
    Target,
}

/// Type of a key, as `Pulumi.yaml` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
    Integer,
    Boolean,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Integer => "integer",
            KeyType::Boolean => "boolean",
        }
    }
}

/// One configuration key of the project's namespace.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub key: Key,
    pub name: &'static str,
    pub key_type: KeyType,
    pub scope: Scope,
    /// `None`: required (or required in some case, said in the description).
    pub default: Option<&'static str>,
    pub secret: bool,
    /// A value to show in the `pulumi config set` hint.
    pub example: &'static str,
    pub description: &'static str,
}

const fn key(
    key: Key,
    name: &'static str,
    key_type: KeyType,
    scope: Scope,
    default: Option<&'static str>,
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    KeySpec {
        key,
        name,
        key_type,
        scope,
        default,
        secret: false,
        example,
        description,
    }
}

use KeyType::{Boolean, Integer, String as Str};
use Scope::{Both, Source, Target};

/// Every key of the `cross-account-relay` namespace the program reads. The parser asks for keys
/// by variant, so a misspelt key does not compile; [`KEYS`] holds each one's spec at the
/// variant's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Side,
    SourceAccountId,
    TargetAccountId,
    ExternalId,
    NamePrefix,
    CrossAccountRoleName,
    Architecture,
    LogRetentionDays,
    LogLevel,
    CrossAccountRoleMaxSessionSeconds,
    TargetMemoryMb,
    TargetTimeoutSeconds,
    TargetDedupCapacity,
    FaultInjection,
    TargetReservedConcurrency,
    TargetRoleArn,
    TargetFunctionName,
    TargetStack,
    TargetRegion,
    AssumeRoleSessionSeconds,
    ScheduleExpression,
    StreamMode,
    ShardCount,
    StreamRetentionHours,
    DeadLetterRetentionDays,
    DeadLetterBucketForceDestroy,
    ProducerRecordsPerInvocation,
    ProducerPaddingBytes,
    ProducerMaxPutAttempts,
    ProducerRetryBaseDelayMs,
    BatchSize,
    BatchingWindowSeconds,
    ParallelizationFactor,
    MaximumRetryAttempts,
    MaximumRecordAgeSeconds,
    StartingPosition,
    RelayMaxConcurrentInvocations,
    RelayMaxRecordsPerInvocation,
    RelayMemoryMb,
    RelayTimeoutSeconds,
    AlarmEmail,
    AlarmPeriodSeconds,
    AlarmErrorsThreshold,
    AlarmThrottlesThreshold,
    AlarmDeadLetteredRecordsThreshold,
    AlarmAssumeRoleFailuresThreshold,
    AlarmIteratorAgeSeconds,
    /// The old name of [`Key::Side`], declared so a stack that still sets it is told how to move.
    Role,
}

impl Key {
    /// How many keys there are: the length of [`KEYS`].
    pub const COUNT: usize = 48;

    pub fn spec(self) -> &'static KeySpec {
        &KEYS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

/// The spec of every [`Key`], in the enum's order (a test checks it).
pub const KEYS: [KeySpec; Key::COUNT] = [
    key(Key::Side, "side", Str, Both, None, "target", "What this stack deploys: `source` (schedule, producer, stream, relay) or `target` (target function, cross-account role)."),
    key(Key::SourceAccountId, "sourceAccountId", Str, Both, None, "111111111111", "12-digit id of the source account (the stream and the relay live there)."),
    key(Key::TargetAccountId, "targetAccountId", Str, Both, None, "222222222222", "12-digit id of the target account (the target function lives there)."),
    KeySpec { secret: true, ..key(Key::ExternalId, "externalId", Str, Both, None, "<random string, 2-1224 chars>", "Secret shared by the two stacks: the cross-account role's trust policy requires it as sts:ExternalId and the relay sends it. Set with --secret.") },
    key(Key::NamePrefix, "namePrefix", Str, Both, Some("cross-account-relay"), "relay-eu-prod", "Starts every physical name (functions, roles, stream, queues, dead-letter bucket, schedule, log groups). Both stacks of a pair must use the same prefix; give each further pair in the same accounts its own (IAM role names are unique per account across regions)."),
    key(Key::CrossAccountRoleName, "crossAccountRoleName", Str, Both, None, "cross-account-relay-invoker", "Name of the role in the target account that the relay assumes; defaults to <namePrefix>-invoker."),
    key(Key::Architecture, "architecture", Str, Both, Some("x86_64"), "arm64", "Lambda architecture, x86_64 or arm64 (arm64 artifacts come from target/lambda-arm64/)."),
    key(Key::LogRetentionDays, "logRetentionDays", Integer, Both, Some("14"), "30", "Retention of the functions' CloudWatch log groups, in days (a value CloudWatch accepts)."),
    key(Key::LogLevel, "logLevel", Str, Both, Some("INFO"), "DEBUG", "Application log level of the functions, TRACE, DEBUG, INFO, WARN, ERROR or FATAL: their loggingConfig.applicationLogLevel, which Lambda passes to them as AWS_LAMBDA_LOG_LEVEL and uses to drop lines below it (their logs are JSON; Lambda's own platform lines stay at INFO). The EMF metric lines carry INFO, or this level when above it, so no level drops the metrics or the alarms on them."),
    key(Key::CrossAccountRoleMaxSessionSeconds, "crossAccountRoleMaxSessionSeconds", Integer, Target, Some("3600"), "7200", "Maximum session of the cross-account role, 3600..43200 s. The relay's own sessions are capped at 3600 s by STS (role chaining), so a larger value only serves other callers of the role."),
    key(Key::TargetMemoryMb, "targetMemoryMb", Integer, Target, Some("256"), "512", "Memory of the target function, in MB."),
    key(Key::TargetTimeoutSeconds, "targetTimeoutSeconds", Integer, Target, Some("30"), "60", "Timeout of the target function, in seconds."),
    key(Key::TargetDedupCapacity, "targetDedupCapacity", Integer, Target, Some("10000"), "10000", "Record ids the target remembers per container to recognise redeliveries, 0..1000000 (0: none; memory stays bounded either way)."),
    key(Key::FaultInjection, "faultInjection", Boolean, Target, Some("false"), "true", "Lets a record ask the target to fail (demo only). Leave false in real accounts."),
    key(Key::TargetReservedConcurrency, "targetReservedConcurrency", Integer, Target, Some("-1"), "50", "Concurrent executions reserved for the target function, so the relay cannot use up the target account's pool: -1 (default) reserves none, n (1..1000000) reserves n. AWS keeps 100 of the account's concurrency unreserved for the functions without a reservation, so n can be at most the account's unreserved concurrency minus 100 (900 with Lambda's default limit of 1000; `aws lambda get-account-settings` shows yours): Lambda refuses more when the stack is deployed. 0 is refused: it would throttle every delivery, and the relay's retries would end with every record in the dead-letter bucket (to pause delivery, disable the source's event source mapping instead; records then wait in the stream)."),
    key(Key::TargetRoleArn, "targetRoleArn", Str, Source, None, "arn:aws:iam::222222222222:role/cross-account-relay-invoker", "ARN of the cross-account role (target stack output crossAccountRoleArn). Required unless targetStack is set."),
    key(Key::TargetFunctionName, "targetFunctionName", Str, Source, None, "cross-account-relay-target", "Name or unqualified ARN of the target function (target stack output targetFunctionArn); no alias or version, since the cross-account role may invoke only the unqualified function. Required unless targetStack is set."),
    key(Key::TargetStack, "targetStack", Str, Source, None, "my-org/cross-account-relay/target", "Fully qualified target stack to read targetRoleArn/targetFunctionName from with a StackReference (both stacks in one backend). Replaces those two keys."),
    key(Key::TargetRegion, "targetRegion", Str, Source, None, "eu-west-1", "Region of the target function; defaults to the target stack's targetRegion output with targetStack, else to aws:region."),
    key(Key::AssumeRoleSessionSeconds, "assumeRoleSessionSeconds", Integer, Source, Some("3600"), "3600", "Length of the relay's assumed-role session, 900..3600 s: the relay assumes the role with its execution role's credentials (role chaining), which STS caps at one hour."),
    key(Key::ScheduleExpression, "scheduleExpression", Str, Source, Some("rate(5 minutes)"), "rate(1 minute)", "EventBridge Scheduler expression that invokes the producer: rate(<n> minute[s]|hour[s]|day[s]), cron(<6 fields>) or at(yyyy-mm-ddThh:mm:ss)."),
    key(Key::StreamMode, "streamMode", Str, Source, Some("ON_DEMAND"), "PROVISIONED", "Kinesis capacity mode: ON_DEMAND or PROVISIONED. ON_DEMAND scales by itself but is billed per stream-hour and per GB, whatever the traffic; PROVISIONED is billed per shard-hour (shardCount), and one shard takes 1 MiB or 1000 records a second (the committed example: PROVISIONED, 1 shard)."),
    key(Key::ShardCount, "shardCount", Integer, Source, Some("1"), "2", "Shards of a PROVISIONED stream (ignored for ON_DEMAND)."),
    key(Key::StreamRetentionHours, "streamRetentionHours", Integer, Source, Some("168"), "336", "Kinesis retention, 24..8760 hours. Above 24 hours Kinesis bills extended retention (per shard-hour for PROVISIONED, per GB for ON_DEMAND). Dead letters keep their records' data in the dead-letter bucket, so redrive does not depend on it: 24 is enough unless the relay may fall behind by more than a day."),
    key(Key::DeadLetterRetentionDays, "deadLetterRetentionDays", Integer, Source, Some("30"), "90", "Days an object stays in the dead-letter bucket before S3 expires it, 1..3650: long enough to notice a failure, fix its cause and redrive."),
    key(Key::DeadLetterBucketForceDestroy, "deadLetterBucketForceDestroy", Boolean, Source, Some("false"), "true", "Lets `pulumi destroy` (or a namePrefix change, which replaces the bucket) delete the dead-letter bucket with the dead letters in it: its forceDestroy. false (default): S3 refuses to delete a bucket that holds objects (BucketNotEmpty), so dead letters, which are data, are never deleted by accident; keep, export or empty them first (README: Tear down). It takes effect only once an up has set it: destroy reads it from the stack's state."),
    key(Key::ProducerRecordsPerInvocation, "producerRecordsPerInvocation", Integer, Source, Some("1"), "10", "Records the producer writes per scheduled invocation, 1..10000 (at most 500 per PutRecords call)."),
    key(Key::ProducerPaddingBytes, "producerPaddingBytes", Integer, Source, Some("0"), "1024", "Filler bytes in each produced record's body, 0..1000000."),
    key(Key::ProducerMaxPutAttempts, "producerMaxPutAttempts", Integer, Source, Some("5"), "8", "PutRecords attempts the producer makes for entries Kinesis refused (1 = no retry), 1..20."),
    key(Key::ProducerRetryBaseDelayMs, "producerRetryBaseDelayMs", Integer, Source, Some("100"), "250", "First backoff between the producer's PutRecords attempts, in ms, doubling each attempt, 0..10000."),
    key(Key::BatchSize, "batchSize", Integer, Source, Some("100"), "100", "Event source mapping: most records per relay invocation, 1..10000."),
    key(Key::BatchingWindowSeconds, "batchingWindowSeconds", Integer, Source, Some("1"), "5", "Event source mapping: seconds to gather a batch, 0..300."),
    key(Key::ParallelizationFactor, "parallelizationFactor", Integer, Source, Some("1"), "2", "Event source mapping: concurrent batches per shard, 1..10."),
    key(Key::MaximumRetryAttempts, "maximumRetryAttempts", Integer, Source, Some("3"), "3", "Event source mapping: retries of a failing batch before it goes to the dead-letter bucket, -1 (forever) or 0..10000."),
    key(Key::MaximumRecordAgeSeconds, "maximumRecordAgeSeconds", Integer, Source, Some("3600"), "3600", "Event source mapping: records older than this go to the dead-letter bucket, -1 (never) or 60..604800."),
    key(Key::StartingPosition, "startingPosition", Str, Source, Some("TRIM_HORIZON"), "LATEST", "Event source mapping: where a new mapping starts reading, TRIM_HORIZON (the oldest record retained) or LATEST (records written after it exists). Changing it replaces the mapping (deleted, then created anew): at TRIM_HORIZON the new one replays every record still in the stream, up to streamRetentionHours old, so the target gets delivered records again; at LATEST it skips every record the old one had not read yet (its backlog, and what is written until the new one reads), and nothing dead-letters them."),
    key(Key::RelayMaxConcurrentInvocations, "relayMaxConcurrentInvocations", Integer, Source, Some("4"), "8", "Synchronous target invocations the relay runs at once per batch, 1..64."),
    key(Key::RelayMaxRecordsPerInvocation, "relayMaxRecordsPerInvocation", Integer, Source, Some("0"), "25", "Most records per target Invoke, 0..10000. 0 (default): as many as fit one Invoke, in batch order. n: key-ordered delivery: records of one partition key reach the target in order, different keys at once (up to relayMaxConcurrentInvocations); once a record of a key is not delivered, the key's later records in the batch are retried, not sent."),
    key(Key::RelayMemoryMb, "relayMemoryMb", Integer, Source, Some("256"), "512", "Memory of the relay function, in MB (the producer gets 128)."),
    key(Key::RelayTimeoutSeconds, "relayTimeoutSeconds", Integer, Source, Some("60"), "120", "Timeout of the relay function, in seconds (the producer gets 30)."),
    key(Key::AlarmEmail, "alarmEmail", Str, Both, None, "ops@example.com", "E-mail address subscribed to the stack's alarm topic (`<namePrefix>-alarms`); unset: no subscription (subscribe what you like to the alarmTopicArn output). SNS mails a confirmation link first."),
    key(Key::AlarmPeriodSeconds, "alarmPeriodSeconds", Integer, Both, Some("300"), "60", "Period every alarm evaluates, 60..86400 s in whole minutes; one period over the threshold fires it. 300: one tick of the default schedule per period."),
    key(Key::AlarmErrorsThreshold, "alarmErrorsThreshold", Integer, Both, Some("0"), "2", "Function errors (Lambda's Errors) in one period above which an errors alarm fires (relay and producer in the source, target in the target), 0..1000000. 0: any error, as the functions report per-record failures without an error."),
    key(Key::AlarmThrottlesThreshold, "alarmThrottlesThreshold", Integer, Target, Some("0"), "10", "Throttled invocations of the target function in one period above which its throttles alarm fires, 0..1000000. 0: any throttle (the target's concurrency ran out; the relay retries, later)."),
    key(Key::AlarmDeadLetteredRecordsThreshold, "alarmDeadLetteredRecordsThreshold", Integer, Source, Some("0"), "5", "Records the relay dead-letters in one period above which the alarm fires, 0..1000000. 0: every dead-lettered record is a record not delivered, to look at and redrive."),
    key(Key::AlarmAssumeRoleFailuresThreshold, "alarmAssumeRoleFailuresThreshold", Integer, Source, Some("0"), "3", "Invoke calls the relay could not make in one period because it could not assume the cross-account role (its AssumeRoleFailures metric), above which the alarm fires, 0..1000000. 0: any failure (a denied trust policy or external id stops all delivery; STS throttling is retried)."),
    key(Key::AlarmIteratorAgeSeconds, "alarmIteratorAgeSeconds", Integer, Source, Some("600"), "300", "The relay's iterator age (how old a record is when the relay gets it) above which the alarm fires, 1..604800 s and below maximumRecordAgeSeconds (or the stream's retention when that is -1). 600: far above the seconds it takes when the relay keeps up, and 50 minutes before the default maximumRecordAgeSeconds sends records to the dead-letter bucket."),
    key(Key::Role, "role", Str, Both, None, "side", "Renamed to `side` (the word role is kept for IAM roles): leave it unset; a stack that sets it is stopped with the two commands that move it."),
];

/// The range of every alarm's count threshold.
const ALARM_THRESHOLDS: std::ops::RangeInclusive<u32> = 0..=1_000_000;

/// Keys every stack must set: they have no default, and nothing can be derived for them.
pub const REQUIRED_KEYS: &[Key] = &[
    Key::Side,
    Key::SourceAccountId,
    Key::TargetAccountId,
    Key::ExternalId,
];

/// The `config:` block of `Pulumi.yaml`, generated from [`KEYS`] so the two cannot drift
/// (a test compares it with the file; `infra --pulumi-yaml-config` prints it).
pub fn pulumi_yaml_config_block() -> String {
    let mut out = String::from("config:\n");
    for k in KEYS {
        let scope = match k.scope {
            Scope::Both => "both stacks",
            Scope::Source => "source stack",
            Scope::Target => "target stack",
        };
        let description = format!("[{scope}] {}", k.description);
        out.push_str(&format!("  {}:\n", k.name));
        out.push_str(&format!("    type: {}\n", k.key_type.as_str()));
        out.push_str(&format!(
            "    description: {}\n",
            serde_json::Value::from(description)
        ));
        let default = match (k.default, k.key_type) {
            (Some(d), KeyType::String) => Some(serde_json::Value::from(d).to_string()),
            (Some(d), _) => Some(d.to_string()),
            (None, _) if REQUIRED_KEYS.contains(&k.key) => None,
            // Optional without a fixed default: "" tells the program to derive or skip it.
            (None, _) => Some("\"\"".to_string()),
        };
        if let Some(d) = default {
            out.push_str(&format!("    default: {d}\n"));
        }
    }
    out
}

/// The table of configuration keys, generated from [`KEYS`] (a test compares it with
/// docs/reference/config-keys.md; `infra --readme-config-table` prints it).
pub fn readme_config_table() -> String {
    let mut out = String::from(
        "| key | stacks | default | meaning |\n| --- | --- | --- | --- |\n| `aws:region` | both | required | Region of every resource (`eu-west-1` in the examples). |\n",
    );
    for k in KEYS {
        let scope = match k.scope {
            Scope::Both => "both",
            Scope::Source => "source",
            Scope::Target => "target",
        };
        let default = match k.default {
            Some(d) => format!("`{d}`"),
            None if REQUIRED_KEYS.contains(&k.key) => "required".to_string(),
            None => "—".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {scope} | {default} | {} |\n",
            k.name, k.description
        ));
    }
    out
}

/// A setting the parser reads: a key of the project's namespace, or the provider's region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Project(Key),
    AwsRegion,
}

impl From<Key> for Setting {
    fn from(key: Key) -> Self {
        Setting::Project(key)
    }
}

impl Setting {
    /// The name `pulumi config set` takes.
    fn name(self) -> &'static str {
        match self {
            Setting::Project(key) => key.name(),
            Setting::AwsRegion => "aws:region",
        }
    }

    /// The name as `PULUMI_CONFIG` carries it.
    fn full(self) -> String {
        full_key(self.name())
    }

    fn example(self) -> &'static str {
        match self {
            Setting::Project(key) => key.spec().example,
            Setting::AwsRegion => "eu-west-1",
        }
    }

    fn secret(self) -> bool {
        matches!(self, Setting::Project(key) if key.spec().secret)
    }
}

/// A key that is missing or wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("PULUMI_CONFIG is not a JSON object of strings: {0}")]
    NotJson(String),
    #[error("this program is the Pulumi project `{PROJECT}`, but PULUMI_PROJECT is `{0}`; keep `name: {PROJECT}` in Pulumi.yaml")]
    WrongProject(String),
    #[error("missing config `{key}` (stack {stack}): {description}\n  fix: {fix}")]
    Missing {
        key: String,
        stack: String,
        description: String,
        fix: String,
    },
    #[error("invalid config `{key}` = {value:?} (stack {stack}): {reason}\n  fix: {fix}")]
    Invalid {
        key: String,
        value: String,
        stack: String,
        reason: String,
        fix: String,
    },
}

/// The raw `PULUMI_CONFIG` map of one stack.
pub struct RawConfig {
    stack: String,
    values: BTreeMap<String, String>,
}

fn full_key(name: &str) -> String {
    if name.contains(':') {
        name.to_string()
    } else {
        format!("{PROJECT}:{name}")
    }
}

fn set_line(name: &str, example: &str, secret: bool, stack: &str) -> String {
    let secret = if secret { " --secret" } else { "" };
    let value = if example.contains(' ') || example.contains('(') || example.contains('<') {
        format!("'{example}'")
    } else {
        example.to_string()
    };
    format!("pulumi config set{secret} --stack {stack} {name} {value}")
}

impl RawConfig {
    /// Parses `PULUMI_CONFIG`: a JSON object whose values are strings (structured values
    /// arrive JSON-encoded, and this program has none).
    pub fn parse(stack: &str, json: &str) -> Result<Self, ConfigError> {
        let values: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|e| ConfigError::NotJson(e.to_string()))?;
        Ok(Self {
            stack: stack.to_string(),
            values,
        })
    }

    pub fn from_pairs(stack: &str, pairs: &[(&str, &str)]) -> Self {
        Self {
            stack: stack.to_string(),
            values: pairs
                .iter()
                .map(|(k, v)| (full_key(k), v.to_string()))
                .collect(),
        }
    }

    fn raw(&self, setting: impl Into<Setting>) -> Option<&str> {
        self.values
            .get(&setting.into().full())
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn missing(&self, setting: Setting, description: &str) -> ConfigError {
        ConfigError::Missing {
            key: setting.full(),
            stack: self.stack.clone(),
            description: description.to_string(),
            fix: set_line(
                setting.name(),
                setting.example(),
                setting.secret(),
                &self.stack,
            ),
        }
    }

    fn invalid(
        &self,
        setting: impl Into<Setting>,
        value: &str,
        reason: impl Into<String>,
    ) -> ConfigError {
        let setting = setting.into();
        ConfigError::Invalid {
            key: setting.full(),
            value: if setting.secret() {
                "<secret>".into()
            } else {
                value.to_string()
            },
            stack: self.stack.clone(),
            reason: reason.into(),
            fix: set_line(
                setting.name(),
                setting.example(),
                setting.secret(),
                &self.stack,
            ),
        }
    }

    /// A key of the project namespace; `None` when absent and without a default.
    fn optional(&self, key: Key) -> Option<String> {
        self.raw(key)
            .map(str::to_string)
            .or_else(|| key.spec().default.map(str::to_string))
    }

    fn required(&self, key: Key) -> Result<String, ConfigError> {
        self.optional(key)
            .ok_or_else(|| self.missing(key.into(), key.spec().description))
    }

    fn number<T>(&self, key: Key, range: std::ops::RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let raw = self.required(key)?;
        let value: T = raw
            .parse()
            .map_err(|_| self.invalid(key, &raw, "not a whole number"))?;
        if !range.contains(&value) {
            return Err(self.invalid(
                key,
                &raw,
                format!("must be between {} and {}", range.start(), range.end()),
            ));
        }
        Ok(value)
    }

    fn flag(&self, key: Key) -> Result<bool, ConfigError> {
        let raw = self.required(key)?;
        match raw.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.invalid(key, &raw, "must be true or false")),
        }
    }

    fn one_of(&self, key: Key, allowed: &[&str]) -> Result<String, ConfigError> {
        let raw = self.required(key)?;
        if allowed.contains(&raw.as_str()) {
            Ok(raw)
        } else {
            Err(self.invalid(key, &raw, format!("must be one of {}", allowed.join(", "))))
        }
    }

    fn account_id(&self, key: Key) -> Result<String, ConfigError> {
        let raw = self.required(key)?;
        if raw.len() == 12 && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(raw)
        } else {
            Err(self.invalid(key, &raw, "an AWS account id is exactly 12 digits"))
        }
    }

    fn region(&self) -> Result<String, ConfigError> {
        let region = self
            .raw(Setting::AwsRegion)
            .map(str::to_string)
            .ok_or_else(|| {
                self.missing(
                    Setting::AwsRegion,
                    "the region both the provider and the functions use",
                )
            })?;
        self.check_region(Setting::AwsRegion, &region)?;
        Ok(region)
    }

    fn check_region(&self, setting: impl Into<Setting>, region: &str) -> Result<(), ConfigError> {
        if looks_like_region(region) {
            Ok(())
        } else {
            Err(self.invalid(setting, region, "not an AWS region name (like eu-west-1)"))
        }
    }

    fn side(&self) -> Result<StackSide, ConfigError> {
        if let Some(old) = self.raw(Key::Role) {
            let stack = &self.stack;
            return Err(ConfigError::Invalid {
                key: full_key(Key::Role.name()),
                value: old.to_string(),
                stack: stack.clone(),
                reason: "`role` was renamed to `side`".into(),
                fix: format!("pulumi config rm --stack {stack} role && pulumi config set --stack {stack} side {old}"),
            });
        }
        match self.one_of(Key::Side, &["source", "target"])?.as_str() {
            "source" => Ok(StackSide::Source),
            _ => Ok(StackSide::Target),
        }
    }

    fn common(&self) -> Result<CommonConfig, ConfigError> {
        let external_id = self.required(Key::ExternalId)?;
        // STS: 2..=1224 characters of [\w+=,.@:/-].
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
        if !(2..=1224).contains(&external_id.len()) || !external_id.chars().all(allowed) {
            return Err(self.invalid(
                Key::ExternalId,
                &external_id,
                "STS accepts 2 to 1224 characters of letters, digits and _+=,.@:/-",
            ));
        }
        let architecture = match self
            .one_of(Key::Architecture, &["x86_64", "arm64"])?
            .as_str()
        {
            "arm64" => Architecture::Arm64,
            _ => Architecture::X86_64,
        };
        let retention: u32 = self.number(Key::LogRetentionDays, 1..=3653)?;
        // CloudWatch Logs accepts only these retention periods.
        const RETENTION_DAYS: &[u32] = &[
            1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
            2922, 3288, 3653,
        ];
        if !RETENTION_DAYS.contains(&retention) {
            return Err(self.invalid(Key::LogRetentionDays,
                &retention.to_string(),
                "CloudWatch accepts 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653",
            ));
        }
        let prefix = self.required(Key::NamePrefix)?;
        let name_prefix = NamePrefix::parse(&prefix)
            .map_err(|reason| self.invalid(Key::NamePrefix, &prefix, reason))?;
        let role_name = match self.raw(Key::CrossAccountRoleName) {
            Some(name) => name.to_string(),
            None => name_prefix.name("invoker"),
        };
        if role_name.len() > 64
            || !role_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
        {
            return Err(self.invalid(
                Key::CrossAccountRoleName,
                &role_name,
                "an IAM role name is at most 64 characters of letters, digits and +=,.@_-",
            ));
        }
        let levels = env::APPLICATION_LOG_LEVELS.map(|(name, _)| name);
        let log_level = self.one_of(Key::LogLevel, &levels)?;
        Ok(CommonConfig {
            stack: self.stack.clone(),
            region: self.region()?,
            name_prefix,
            source_account_id: self.account_id(Key::SourceAccountId)?,
            target_account_id: self.account_id(Key::TargetAccountId)?,
            external_id,
            cross_account_role_name: role_name,
            architecture,
            log_retention_days: retention,
            log_level,
            alarms: self.alarm_settings()?,
        })
    }

    fn alarm_settings(&self) -> Result<AlarmSettings, ConfigError> {
        let email = self.raw(Key::AlarmEmail).map(str::to_string);
        if let Some(address) = &email {
            check_email(address)
                .map_err(|reason| self.invalid(Key::AlarmEmail, address, reason))?;
        }
        let period_seconds: u32 = self.number(Key::AlarmPeriodSeconds, 60..=86_400)?;
        // Lambda's and SQS's metrics have one data point a minute: a shorter period or one
        // between minutes would leave periods without data.
        if !period_seconds.is_multiple_of(60) {
            return Err(self.invalid(
                Key::AlarmPeriodSeconds,
                &period_seconds.to_string(),
                "must be a whole number of minutes (a multiple of 60)",
            ));
        }
        Ok(AlarmSettings {
            email,
            period_seconds,
            errors_threshold: self.number(Key::AlarmErrorsThreshold, ALARM_THRESHOLDS)?,
        })
    }

    /// The iterator age that fires the relay's alarm: below the age at which records leave
    /// the stream (the mapping's `maximumRecordAgeSeconds`, or the stream's retention), which
    /// the iterator age never reaches.
    fn iterator_age_alarm_seconds(
        &self,
        maximum_record_age_seconds: i32,
        stream_retention_hours: u32,
    ) -> Result<u32, ConfigError> {
        let seconds: u32 = self.number(Key::AlarmIteratorAgeSeconds, 1..=604_800)?;
        let (limit, why) = match u32::try_from(maximum_record_age_seconds) {
            Ok(age) => (age, Key::MaximumRecordAgeSeconds.name()),
            Err(_) => (
                stream_retention_hours * 3600,
                Key::StreamRetentionHours.name(),
            ),
        };
        if seconds >= limit {
            return Err(self.invalid(
                Key::AlarmIteratorAgeSeconds,
                &seconds.to_string(),
                format!("must be below {limit} s ({why}): no record is older than that when the relay gets it, so the alarm could never fire"),
            ));
        }
        Ok(seconds)
    }

    fn target(&self) -> Result<TargetConfig, ConfigError> {
        Ok(TargetConfig {
            common: self.common()?,
            max_session_seconds: self
                .number(Key::CrossAccountRoleMaxSessionSeconds, 3600..=43200)?,
            memory_mb: self.number(Key::TargetMemoryMb, 128..=10240)?,
            timeout_seconds: self.number(Key::TargetTimeoutSeconds, 1..=900)?,
            dedup_capacity: self
                .number(Key::TargetDedupCapacity, env::TARGET_DEDUP_CAPACITY_RANGE)?,
            fault_injection: self.flag(Key::FaultInjection)?,
            reserved_concurrency: self.reserved_concurrency()?,
            throttles_alarm_threshold: self
                .number(Key::AlarmThrottlesThreshold, ALARM_THRESHOLDS)?,
        })
    }

    /// `None` for -1 (no reservation). 0 is refused: a function with no concurrency is
    /// throttled on every Invoke, so the relay could deliver nothing and every record would
    /// end, after the mapping's retries, in the dead-letter bucket.
    fn reserved_concurrency(&self) -> Result<Option<u32>, ConfigError> {
        let reserved: i64 = self.number(Key::TargetReservedConcurrency, -1..=1_000_000)?;
        if reserved == 0 {
            return Err(self.invalid(
                Key::TargetReservedConcurrency,
                "0",
                "0 would throttle every delivery to the target (every record would end in the dead-letter bucket); use -1 for no reservation, or disable the source's event source mapping to pause delivery",
            ));
        }
        Ok(u32::try_from(reserved).ok())
    }

    fn target_outputs(&self) -> Result<TargetOutputs, ConfigError> {
        if let Some(stack) = self.raw(Key::TargetStack) {
            if stack.split('/').count() != 3 {
                return Err(self.invalid(
                    Key::TargetStack,
                    stack,
                    "a stack reference is <organization>/<project>/<stack>",
                ));
            }
            return Ok(TargetOutputs::StackReference {
                stack: stack.to_string(),
            });
        }
        let role_arn = self.required(Key::TargetRoleArn)?;
        if !role_arn.starts_with("arn:aws") || !role_arn.contains(":role/") {
            return Err(self.invalid(
                Key::TargetRoleArn,
                &role_arn,
                "must be a role ARN (arn:aws:iam::<target account>:role/<name>)",
            ));
        }
        let function_name = self.required(Key::TargetFunctionName)?;
        if let Err(reason) = check_function_reference(&function_name) {
            return Err(self.invalid(Key::TargetFunctionName, &function_name, reason));
        }
        Ok(TargetOutputs::Config {
            role_arn,
            function_name,
        })
    }

    /// Where the target is: its role and function (from config or the stack reference), each
    /// checked against the target account, and its region.
    fn target_placement(
        &self,
        common: &CommonConfig,
    ) -> Result<(TargetOutputs, TargetRegion), ConfigError> {
        let target = self.target_outputs()?;
        let target_region = match (self.raw(Key::TargetRegion), &target) {
            (Some(region), _) => {
                self.check_region(Key::TargetRegion, region)?;
                TargetRegion::Fixed(region.to_string())
            }
            (None, TargetOutputs::StackReference { .. }) => TargetRegion::FromTargetStack,
            (None, TargetOutputs::Config { .. }) => TargetRegion::Fixed(common.region.clone()),
        };
        if let TargetOutputs::Config {
            role_arn,
            function_name,
        } = &target
        {
            let account = &common.target_account_id;
            if !role_arn.contains(&format!(":iam::{account}:role/")) {
                return Err(self.invalid(
                    Key::TargetRoleArn,
                    role_arn,
                    format!("the role must be in targetAccountId {account}"),
                ));
            }
            // An ARN names its account and region: they must be the target's.
            let region = match &target_region {
                TargetRegion::Fixed(region) => region.as_str(),
                TargetRegion::FromTargetStack => common.region.as_str(),
            };
            if let Some(arn) = FunctionArn::parse(function_name) {
                if arn.account != account || arn.region != region {
                    return Err(self.invalid(Key::TargetFunctionName,
                        function_name,
                        format!(
                            "the function must be in targetAccountId {account} and the target region {region} (set targetRegion if it differs from aws:region)"
                        ),
                    ));
                }
            }
        }
        Ok((target, target_region))
    }

    fn stream_capacity(&self) -> Result<StreamCapacity, ConfigError> {
        Ok(
            match self
                .one_of(Key::StreamMode, &["ON_DEMAND", "PROVISIONED"])?
                .as_str()
            {
                "PROVISIONED" => StreamCapacity::Provisioned {
                    shards: self.number(Key::ShardCount, 1..=10_000)?,
                },
                _ => StreamCapacity::OnDemand,
            },
        )
    }

    fn maximum_record_age_seconds(&self) -> Result<i32, ConfigError> {
        let age: i32 = self.number(Key::MaximumRecordAgeSeconds, -1..=604_800)?;
        if (0..60).contains(&age) {
            return Err(self.invalid(
                Key::MaximumRecordAgeSeconds,
                &age.to_string(),
                "must be -1 or between 60 and 604800",
            ));
        }
        Ok(age)
    }

    fn schedule_expression(&self) -> Result<String, ConfigError> {
        let expression = self.required(Key::ScheduleExpression)?;
        match check_schedule_expression(&expression) {
            Ok(()) => Ok(expression),
            Err(reason) => Err(self.invalid(Key::ScheduleExpression, &expression, reason)),
        }
    }

    fn source(&self) -> Result<SourceConfig, ConfigError> {
        let common = self.common()?;
        let (target, target_region) = self.target_placement(&common)?;
        let stream_retention_hours = self.number(Key::StreamRetentionHours, 24..=8760)?;
        let maximum_record_age_seconds = self.maximum_record_age_seconds()?;
        Ok(SourceConfig {
            target,
            target_region,
            session_seconds: self.number(
                Key::AssumeRoleSessionSeconds,
                shared::config::ASSUME_ROLE_SESSION_SECONDS_RANGE,
            )?,
            schedule_expression: self.schedule_expression()?,
            stream_capacity: self.stream_capacity()?,
            stream_retention_hours,
            dead_letter_retention_days: self.number(Key::DeadLetterRetentionDays, 1..=3650)?,
            dead_letter_bucket_force_destroy: self.flag(Key::DeadLetterBucketForceDestroy)?,
            records_per_invocation: self.number(
                Key::ProducerRecordsPerInvocation,
                env::PRODUCER_RECORDS_PER_INVOCATION_RANGE,
            )?,
            padding_bytes: self
                .number(Key::ProducerPaddingBytes, env::PRODUCER_PADDING_BYTES_RANGE)?,
            max_put_attempts: self.number(
                Key::ProducerMaxPutAttempts,
                env::PRODUCER_MAX_PUT_ATTEMPTS_RANGE,
            )?,
            retry_base_delay_ms: self.number(
                Key::ProducerRetryBaseDelayMs,
                env::PRODUCER_RETRY_BASE_DELAY_MS_RANGE,
            )?,
            batch_size: self.number(Key::BatchSize, 1..=10_000)?,
            batching_window_seconds: self.number(Key::BatchingWindowSeconds, 0..=300)?,
            parallelization_factor: self.number(Key::ParallelizationFactor, 1..=10)?,
            maximum_retry_attempts: self.number(Key::MaximumRetryAttempts, -1..=10_000)?,
            maximum_record_age_seconds,
            starting_position: self.one_of(Key::StartingPosition, &["TRIM_HORIZON", "LATEST"])?,
            relay_max_concurrent_invocations: self.number(
                Key::RelayMaxConcurrentInvocations,
                env::RELAY_MAX_CONCURRENT_INVOCATIONS_RANGE,
            )?,
            relay_max_records_per_invocation: self.number(
                Key::RelayMaxRecordsPerInvocation,
                env::RELAY_MAX_RECORDS_PER_INVOCATION_RANGE,
            )?,
            memory_mb: self.number(Key::RelayMemoryMb, 128..=10240)?,
            timeout_seconds: self.number(Key::RelayTimeoutSeconds, 1..=900)?,
            dead_lettered_alarm_threshold: self
                .number(Key::AlarmDeadLetteredRecordsThreshold, ALARM_THRESHOLDS)?,
            assume_role_failures_alarm_threshold: self
                .number(Key::AlarmAssumeRoleFailuresThreshold, ALARM_THRESHOLDS)?,
            iterator_age_alarm_seconds: self
                .iterator_age_alarm_seconds(maximum_record_age_seconds, stream_retention_hours)?,
            common,
        })
    }

    /// The side this stack deploys and the account it is pinned to, read from only the keys
    /// that decide them (`side` and [`StackSide::account_key`]): what `relayctl pair` checks
    /// each stack's credentials against before it runs anything.
    pub fn pinned_account(&self) -> Result<(StackSide, String), ConfigError> {
        let side = self.side()?;
        Ok((side, self.account_id(side.account_key())?))
    }

    /// The typed configuration of this stack; the first bad key stops it.
    pub fn stack_config(&self) -> Result<StackConfig, ConfigError> {
        match self.side()? {
            StackSide::Source => self.source().map(StackConfig::Source),
            StackSide::Target => self.target().map(StackConfig::Target),
        }
    }
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-4`: lower-case words and a number, by hyphens.
fn looks_like_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && parts
            .last()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// One e-mail address, as SNS's `email` protocol takes it: `local@domain`, the local part of
/// letters, digits and the symbols RFC 5322 allows without quoting, dot-separated; the domain
/// of at least two labels of letters, digits and inner hyphens, ending in a letters-only
/// top-level label. Quoted local parts and address literals (`user@[192.0.2.1]`) are refused:
/// an alarm address does not need them.
fn check_email(address: &str) -> Result<(), String> {
    let dot_separated = |part: &str, ok: &dyn Fn(&str) -> bool| part.split('.').all(ok);
    let local_ok = |local: &str| {
        local.len() <= 64
            && dot_separated(local, &|atom: &str| {
                !atom.is_empty()
                    && atom
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
            })
    };
    let domain_ok = |domain: &str| {
        let labels: Vec<&str> = domain.split('.').collect();
        let top = labels.last().copied().unwrap_or("");
        labels.len() >= 2
            && top.len() >= 2
            && top.bytes().all(|b| b.is_ascii_alphabetic())
            && dot_separated(domain, &|label: &str| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let ok = address.len() <= 254
        && address
            .split_once('@')
            .is_some_and(|(local, domain)| local_ok(local) && domain_ok(domain));
    if ok {
        Ok(())
    } else {
        Err("must be one e-mail address like ops@example.com (at most 254 characters; to notify several people, use a list address); leave it unset for no subscription".into())
    }
}

/// The parts of an unqualified Lambda function ARN that must match the target's placement.
struct FunctionArn<'a> {
    region: &'a str,
    account: &'a str,
}

impl<'a> FunctionArn<'a> {
    /// `arn:<partition>:lambda:<region>:<account>:function:<name>`; `None` for anything else.
    fn parse(value: &'a str) -> Option<Self> {
        let parts: Vec<&str> = value.split(':').collect();
        match parts.as_slice() {
            ["arn", _partition, "lambda", region, account, "function", _name] => {
                Some(Self { region, account })
            }
            _ => None,
        }
    }
}

/// A function name or unqualified function ARN. The cross-account role may invoke only the
/// unqualified function (its policy names `${targetFunction.arn}`), so an alias or version
/// would be refused by IAM at run time: it is refused here instead.
fn check_function_reference(value: &str) -> Result<(), String> {
    let name_ok = |n: &str| {
        (1..=64).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = value.split(':').collect();
    let ok = match parts.as_slice() {
        [name] => name_ok(name),
        ["arn", partition, "lambda", region, account, "function", name] => {
            partition.starts_with("aws")
                && looks_like_region(region)
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && name_ok(name)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("must be a function name or an unqualified ARN (arn:aws:lambda:<region>:<account>:function:<name>); an alias or version (…:<qualifier>) is not supported because the cross-account role may invoke only the unqualified function".into())
    }
}

/// An EventBridge Scheduler expression: `rate(…)`, `cron(…)` or `at(…)`, as Scheduler
/// documents them ("Schedule types on EventBridge Scheduler").
fn check_schedule_expression(expression: &str) -> Result<(), String> {
    let inner = |prefix: &str| {
        expression
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(')'))
    };
    if let Some(rate) = inner("rate(") {
        let (value, unit) = rate
            .split_once(' ')
            .ok_or("rate(<value> <unit>) needs a value and a unit, like rate(5 minutes)")?;
        let value: u32 = value
            .parse()
            .ok()
            .filter(|v| *v > 0)
            .ok_or("the rate's value must be a positive whole number")?;
        let singular = ["minute", "hour", "day"];
        let plural = ["minutes", "hours", "days"];
        let units = if value == 1 { &singular } else { &plural };
        if !units.contains(&unit) {
            return Err(format!(
                "the rate's unit must be one of {} for the value {value}",
                units.join(", ")
            ));
        }
        return Ok(());
    }
    if let Some(cron) = inner("cron(") {
        let fields: Vec<&str> = cron.split(' ').collect();
        if fields.len() != 6 {
            return Err(
                "cron(…) has six fields: minutes hours day-of-month month day-of-week year".into(),
            );
        }
        let allowed = |f: &str| {
            f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*?,/-#".contains(&b))
        };
        if !fields.iter().all(|f| !f.is_empty() && allowed(f)) {
            return Err("a cron field has a character Scheduler does not accept".into());
        }
        if (fields[2] == "?") == (fields[4] == "?") {
            return Err("exactly one of day-of-month and day-of-week must be ? in cron(…)".into());
        }
        return Ok(());
    }
    if let Some(at) = inner("at(") {
        let shape = "dddd-dd-ddTdd:dd:dd";
        let fits = at.len() == shape.len()
            && at.bytes().zip(shape.bytes()).all(|(c, s)| match s {
                b'd' => c.is_ascii_digit(),
                _ => c == s,
            });
        return if fits {
            Ok(())
        } else {
            Err("at(…) takes a date and time like at(2027-01-31T08:00:00)".into())
        };
    }
    Err("must be rate(…), cron(…) or at(…), like rate(5 minutes)".into())
}

/// Checks `PULUMI_PROJECT` (keys are namespaced by it).
pub fn check_project(project: &str) -> Result<(), ConfigError> {
    if project == PROJECT {
        Ok(())
    } else {
        Err(ConfigError::WrongProject(project.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const TARGET: &[(&str, &str)] = &[
        ("aws:region", "eu-west-1"),
        ("side", "target"),
        ("sourceAccountId", "111111111111"),
        ("targetAccountId", "222222222222"),
        ("externalId", "example-external-id"),
    ];

    fn with(
        base: &[(&'static str, &'static str)],
        extra: &[(&'static str, &'static str)],
    ) -> RawConfig {
        let mut pairs: Vec<_> = base
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        pairs.extend(extra.iter().filter(|(_, v)| !v.is_empty()).copied());
        RawConfig::from_pairs("dev-target", &pairs)
    }

    /// The target stack's configuration with `extra`, which must be accepted.
    fn target(extra: &[(&'static str, &'static str)]) -> TargetConfig {
        match with(TARGET, extra).stack_config().unwrap() {
            StackConfig::Target(t) => t,
            StackConfig::Source(_) => panic!("a target stack read as a source"),
        }
    }

    /// Asserts that `base` with `extra` is refused with an error that contains every needle.
    fn assert_refused(
        base: &[(&'static str, &'static str)],
        extra: &[(&'static str, &'static str)],
        needles: &[&str],
    ) {
        let err = refusal(base, extra);
        for needle in needles {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
    }

    /// The error `stack_config` gives for `base` with `extra`, which must be refused.
    fn refusal(
        base: &[(&'static str, &'static str)],
        extra: &[(&'static str, &'static str)],
    ) -> String {
        with(base, extra).stack_config().unwrap_err().to_string()
    }

    #[test]
    fn defaults_fill_every_optional_key() {
        let t = target(&[]);
        assert_eq!(
            t.common.cross_account_role_name,
            "cross-account-relay-invoker"
        );
        assert_eq!(t.common.architecture, Architecture::X86_64);
        assert_eq!(t.max_session_seconds, 3600);
        assert!(!t.fault_injection);
    }

    #[test]
    fn missing_role_names_the_key_and_the_fix() {
        assert_refused(
            TARGET,
            &[("side", "")],
            &[
                "`cross-account-relay:side`",
                "pulumi config set --stack dev-target side target",
            ],
        );
    }

    #[test]
    fn the_old_role_key_says_how_to_move_to_side() {
        assert_refused(TARGET, &[("role", "target")], &["`role` was renamed to `side`", "pulumi config rm --stack dev-target role && pulumi config set --stack dev-target side target"]);
    }

    #[test]
    fn missing_external_id_suggests_a_secret() {
        assert_refused(
            TARGET,
            &[("externalId", "")],
            &["pulumi config set --secret --stack dev-target externalId"],
        );
    }

    #[test]
    fn invalid_values_are_refused_with_the_reason() {
        let cases = [
            ("side", "both", "must be one of source, target"),
            ("sourceAccountId", "1234", "exactly 12 digits"),
            ("architecture", "aarch64", "x86_64, arm64"),
            ("logRetentionDays", "10", "CloudWatch accepts"),
            (
                "crossAccountRoleMaxSessionSeconds",
                "100",
                "between 3600 and 43200",
            ),
            ("faultInjection", "yes", "true or false"),
            ("aws:region", "Ireland", "not an AWS region"),
            ("externalId", "a b", "STS accepts"),
            ("namePrefix", "Relay", "lower-case letters"),
            ("namePrefix", "relay-", "not ending with a hyphen"),
            (
                "namePrefix",
                "a-very-long-prefix-that-is-over-32",
                "1 to 32 characters",
            ),
            (
                "logLevel",
                "verbose",
                "must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL",
            ),
            // Lambda's levels are upper case, and the old tracing filters are not levels.
            ("logLevel", "debug", "must be one of TRACE"),
            ("logLevel", "relay=debug,info", "must be one of TRACE"),
            ("targetReservedConcurrency", "-2", "between -1 and 1000000"),
        ];
        for (k, v, reason) in cases {
            let err = refusal(TARGET, &[(k, v)]);
            assert!(err.contains(reason), "{k}={v}: {err}");
            assert!(err.contains("pulumi config set"), "{err}");
        }
    }

    const SOURCE: &[(&str, &str)] = &[
        ("side", "source"),
        ("targetRoleArn", "arn:aws:iam::222222222222:role/x"),
        ("targetFunctionName", "f"),
    ];

    fn source(extra: &[(&'static str, &'static str)]) -> Result<SourceConfig, ConfigError> {
        let mut pairs = SOURCE.to_vec();
        pairs.extend_from_slice(extra);
        match with(TARGET, &pairs).stack_config()? {
            StackConfig::Source(s) => Ok(s),
            StackConfig::Target(_) => panic!("source"),
        }
    }

    #[test]
    fn dead_letters_are_kept_thirty_days_unless_set_within_ten_years() {
        assert_eq!(source(&[]).unwrap().dead_letter_retention_days, 30);
        for days in [1, 3650] {
            let value = days.to_string();
            let value: &'static str = Box::leak(value.into_boxed_str());
            let config = source(&[("deadLetterRetentionDays", value)]).unwrap();
            assert_eq!(config.dead_letter_retention_days, days);
        }
        for bad in ["0", "3651"] {
            let err = source(&[("deadLetterRetentionDays", bad)])
                .unwrap_err()
                .to_string();
            assert!(err.contains("deadLetterRetentionDays"), "{err}");
            assert!(err.contains("between 1 and 3650"), "{err}");
        }
    }

    #[test]
    fn name_prefix_starts_every_derived_name() {
        let t = target(&[("namePrefix", "relay-eu-2")]);
        assert_eq!(t.common.name_prefix.as_str(), "relay-eu-2");
        assert_eq!(t.common.cross_account_role_name, "relay-eu-2-invoker");
        let t = target(&[
            ("namePrefix", "relay-eu-2"),
            ("crossAccountRoleName", "mine"),
        ]);
        assert_eq!(t.common.cross_account_role_name, "mine");
        assert!(NamePrefix::parse(&"a".repeat(NamePrefix::MAX_LEN)).is_ok());
        assert!(NamePrefix::parse(&"a".repeat(NamePrefix::MAX_LEN + 1)).is_err());
        assert!(NamePrefix::parse("a--b").is_err());
        assert!(NamePrefix::parse("1abc").is_err());
        assert!(NamePrefix::parse("").is_err());
    }

    #[test]
    fn assumed_role_sessions_stop_at_one_hour_because_of_role_chaining() {
        assert_eq!(
            source(&[("assumeRoleSessionSeconds", "3600")])
                .unwrap()
                .session_seconds,
            3600
        );
        assert_eq!(
            source(&[("assumeRoleSessionSeconds", "900")])
                .unwrap()
                .session_seconds,
            900
        );
        for bad in ["3601", "43200", "899"] {
            let err = source(&[("assumeRoleSessionSeconds", bad)])
                .unwrap_err()
                .to_string();
            assert!(err.contains("between 900 and 3600"), "{bad}: {err}");
        }
    }

    #[test]
    fn schedule_expressions_are_the_ones_scheduler_accepts() {
        for good in [
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(2 hours)",
            "rate(1 day)",
            "cron(0 12 * * ? *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "at(2027-01-31T08:00:00)",
        ] {
            assert!(check_schedule_expression(good).is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("every 5 minutes", "rate(…), cron(…) or at(…)"),
            ("rate(1 minutes)", "minute, hour, day"),
            ("rate(5 minute)", "minutes, hours, days"),
            ("rate(0 minutes)", "positive whole number"),
            ("rate(5)", "a value and a unit"),
            ("rate(5 weeks)", "minutes, hours, days"),
            ("cron(0 12 * * *)", "six fields"),
            ("cron(0 12 * * * *)", "exactly one of day-of-month"),
            ("cron(0 12 ? * ? *)", "exactly one of day-of-month"),
            ("at(2027-01-31 08:00)", "at(2027-01-31T08:00:00)"),
        ] {
            let err = check_schedule_expression(bad).unwrap_err();
            assert!(err.contains(reason), "{bad}: {err}");
        }
        let err = source(&[("scheduleExpression", "every 5 minutes")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`cross-account-relay:scheduleExpression`"),
            "{err}"
        );
        assert!(err.contains("pulumi config set"), "{err}");
    }

    #[test]
    fn target_function_must_be_unqualified_and_in_the_target_account() {
        let arn = "arn:aws:lambda:eu-west-1:222222222222:function:cross-account-relay-target";
        assert!(source(&[("targetFunctionName", arn)]).is_ok());
        assert!(source(&[("targetFunctionName", "cross-account-relay-target")]).is_ok());
        for qualified in [
            "cross-account-relay-target:live",
            "arn:aws:lambda:eu-west-1:222222222222:function:cross-account-relay-target:3",
            "222222222222:function:cross-account-relay-target",
        ] {
            let err = source(&[("targetFunctionName", qualified)])
                .unwrap_err()
                .to_string();
            assert!(err.contains("alias or version"), "{qualified}: {err}");
        }
        let other_account = "arn:aws:lambda:eu-west-1:333333333333:function:f";
        let err = source(&[("targetFunctionName", other_account)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("targetAccountId 222222222222"), "{err}");
        let other_region = "arn:aws:lambda:us-east-1:222222222222:function:f";
        assert!(source(&[("targetFunctionName", other_region)]).is_err());
        assert!(source(&[
            ("targetFunctionName", other_region),
            ("targetRegion", "us-east-1")
        ])
        .is_ok());
    }

    #[test]
    fn target_region_comes_from_the_key_the_stack_reference_or_the_source_region() {
        assert_eq!(
            source(&[]).unwrap().target_region,
            TargetRegion::Fixed("eu-west-1".into())
        );
        assert_eq!(
            source(&[("targetRegion", "us-east-2")])
                .unwrap()
                .target_region,
            TargetRegion::Fixed("us-east-2".into())
        );
        let by_reference = [
            ("targetRoleArn", ""),
            ("targetFunctionName", ""),
            ("targetStack", "org/cross-account-relay/target"),
        ];
        assert_eq!(
            source(&by_reference).unwrap().target_region,
            TargetRegion::FromTargetStack
        );
        let mut explicit = by_reference.to_vec();
        explicit.push(("targetRegion", "ap-southeast-2"));
        assert_eq!(
            source(&explicit).unwrap().target_region,
            TargetRegion::Fixed("ap-southeast-2".into())
        );
        let err = source(&[("targetRegion", "Ireland")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`cross-account-relay:targetRegion`"), "{err}");
    }

    #[test]
    fn reserved_concurrency_is_unset_by_default() {
        let reserved = |extra: &[(&'static str, &'static str)]| target(extra).reserved_concurrency;
        assert_eq!(reserved(&[]), None);
        assert_eq!(reserved(&[("targetReservedConcurrency", "-1")]), None);
        assert_eq!(reserved(&[("targetReservedConcurrency", "1")]), Some(1));
        assert_eq!(reserved(&[("targetReservedConcurrency", "50")]), Some(50));
        assert_eq!(
            reserved(&[("targetReservedConcurrency", "1000000")]),
            Some(1_000_000)
        );
        // The 100 executions AWS keeps unreserved are the account's, which the program cannot
        // see: the description says so, and Lambda refuses too large a value at deploy time.
        assert!(Key::TargetReservedConcurrency
            .spec()
            .description
            .contains("AWS keeps 100"));
    }

    #[test]
    fn a_reservation_of_zero_that_would_throttle_every_delivery_is_refused() {
        assert_refused(
            TARGET,
            &[("targetReservedConcurrency", "0")],
            &[
                "`cross-account-relay:targetReservedConcurrency`",
                "throttle every delivery",
                "use -1 for no reservation",
                "pulumi config set --stack dev-target targetReservedConcurrency 50",
            ],
        );
    }

    #[test]
    fn the_dead_letter_bucket_keeps_its_objects_unless_force_destroy_is_set() {
        assert!(!source(&[]).unwrap().dead_letter_bucket_force_destroy);
        let set = source(&[("deadLetterBucketForceDestroy", "true")]).unwrap();
        assert!(set.dead_letter_bucket_force_destroy);
        let err = source(&[("deadLetterBucketForceDestroy", "yes")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`cross-account-relay:deadLetterBucketForceDestroy`"),
            "{err}"
        );
        assert!(err.contains("true or false"), "{err}");
    }

    #[test]
    fn the_log_level_is_one_of_lambdas_application_log_levels() {
        let level = |extra: &[(&'static str, &'static str)]| target(extra).common.log_level;
        assert_eq!(level(&[]), "INFO");
        let description = Key::LogLevel.spec().description;
        for (name, _) in env::APPLICATION_LOG_LEVELS {
            assert_eq!(level(&[("logLevel", name)]), name);
            assert!(description.contains(name), "the description names {name}");
        }
    }

    #[test]
    fn region_names_are_words_and_a_number_in_lower_case() {
        for good in ["eu-west-1", "us-gov-west-1", "ap-southeast-4"] {
            assert!(looks_like_region(good), "{good}");
        }
        for bad in [
            "eu-west",
            "eu--1",
            "-west-1",
            "EU-west-1",
            "eu-west-x",
            "eu-west-1a",
            "eu_west-1",
        ] {
            assert!(!looks_like_region(bad), "{bad}");
            let err = refusal(TARGET, &[("aws:region", bad)]);
            assert!(err.contains("not an AWS region name"), "{bad}: {err}");
        }
    }

    #[test]
    fn cross_account_role_names_are_at_most_64_iam_characters() {
        let role_name = |name: &'static str| match with(TARGET, &[("crossAccountRoleName", name)])
            .stack_config()
        {
            Ok(StackConfig::Target(t)) => Ok(t.common.cross_account_role_name),
            Ok(StackConfig::Source(_)) => panic!("target"),
            Err(e) => Err(e.to_string()),
        };
        let longest: &'static str = "r".repeat(64).leak();
        assert_eq!(role_name(longest).unwrap(), longest);
        assert_eq!(role_name("a+=,.@_-z").unwrap(), "a+=,.@_-z");
        let too_long: &'static str = "r".repeat(65).leak();
        for bad in [too_long, "relay invoker", "relay/invoker"] {
            let err = role_name(bad).unwrap_err();
            assert!(err.contains("at most 64 characters"), "{bad}: {err}");
        }
    }

    #[test]
    fn target_role_arn_must_be_an_iam_role_arn() {
        for bad in [
            "arn:aws:iam::222222222222:user/x",
            "222222222222:role/x",
            "aws:iam::222222222222:role/x",
        ] {
            let err = source(&[("targetRoleArn", bad)]).unwrap_err().to_string();
            assert!(err.contains("must be a role ARN"), "{bad}: {err}");
        }
    }

    #[test]
    fn function_references_are_checked_part_by_part() {
        for good in [
            "my_function-2",
            "arn:aws:lambda:eu-west-1:222222222222:function:my_function-2",
            "arn:aws-us-gov:lambda:us-gov-west-1:222222222222:function:f",
        ] {
            assert!(check_function_reference(good).is_ok(), "{good}");
        }
        let longest = "f".repeat(64);
        assert!(check_function_reference(&longest).is_ok());
        for bad in [
            "my.function".to_string(),
            "f".repeat(65),
            "arn:gcp:lambda:eu-west-1:222222222222:function:f".into(),
            "arn:aws:lambda:Ireland:222222222222:function:f".into(),
            "arn:aws:lambda:eu-west-1:22222222222:function:f".into(),
            "arn:aws:lambda:eu-west-1:22222222222x:function:f".into(),
            "arn:aws:lambda:eu-west-1:222222222222:function:my.function".into(),
        ] {
            let err = check_function_reference(&bad).unwrap_err();
            assert!(
                err.contains("function name or an unqualified ARN"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn cron_fields_are_never_empty_and_use_scheduler_characters() {
        for bad in ["cron(0 12  * ? *)", "cron(0 12 * * ? 2027!)"] {
            let err = check_schedule_expression(bad).unwrap_err();
            assert!(err.contains("a cron field has a character"), "{bad}: {err}");
        }
        for bad in ["at(2027-01-31T08:00)", "at(2027-01-31T08:00:00Z)"] {
            let err = check_schedule_expression(bad).unwrap_err();
            assert!(err.contains("at(2027-01-31T08:00:00)"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_fix_line_quotes_a_value_the_shell_would_split_or_redirect() {
        let line = |example| set_line("k", example, false, "s");
        assert_eq!(line("plain"), "pulumi config set --stack s k plain");
        assert_eq!(line("a b"), "pulumi config set --stack s k 'a b'");
        assert_eq!(line("rate(5)"), "pulumi config set --stack s k 'rate(5)'");
        assert_eq!(line("<id>"), "pulumi config set --stack s k '<id>'");
        assert_eq!(
            set_line("externalId", "x", true, "s"),
            "pulumi config set --secret --stack s externalId x"
        );
    }

    #[test]
    fn minus_one_means_forever_for_retries_and_record_age() {
        let s = source(&[
            ("maximumRetryAttempts", "-1"),
            ("maximumRecordAgeSeconds", "-1"),
        ])
        .unwrap();
        assert_eq!(
            (s.maximum_retry_attempts, s.maximum_record_age_seconds),
            (-1, -1)
        );
        for (key, bad, reason) in [
            ("maximumRetryAttempts", "-2", "between -1 and 10000"),
            ("maximumRecordAgeSeconds", "-2", "between -1 and 604800"),
            (
                "maximumRecordAgeSeconds",
                "0",
                "-1 or between 60 and 604800",
            ),
            (
                "maximumRecordAgeSeconds",
                "59",
                "-1 or between 60 and 604800",
            ),
        ] {
            let err = source(&[(key, bad)]).unwrap_err().to_string();
            assert!(err.contains(reason), "{key}={bad}: {err}");
        }
        assert_eq!(
            source(&[
                ("maximumRecordAgeSeconds", "60"),
                ("alarmIteratorAgeSeconds", "59"),
            ])
            .unwrap()
            .maximum_record_age_seconds,
            60
        );
    }

    /// A file of the project, read as the tests run.
    fn project_file(path: &str) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::read_to_string(root.join(path)).unwrap()
    }

    /// Pulumi.yaml declares every key the program reads, with the same type and default: its
    /// `config:` block is exactly the one generated from the program's key table.
    #[test]
    fn pulumi_yaml_declares_exactly_the_program_keys() {
        let text = project_file("Pulumi.yaml");
        assert!(text.contains("\nname: cross-account-relay\n"));
        assert!(text.contains("compiler: cargo run --quiet --locked -p infra"));
        let block = pulumi_yaml_config_block();
        assert!(
            text.ends_with(&format!("\n{block}")),
            "Pulumi.yaml's config block differs from the program's keys; regenerate it with\n  cargo run -q -p infra -- --pulumi-yaml-config\nand replace everything from `config:` on"
        );
        for k in KEYS {
            assert!(
                block.contains(&format!(
                    "\n  {}:\n    type: {}\n",
                    k.name,
                    k.key_type.as_str()
                )),
                "{}",
                k.name
            );
            let required = REQUIRED_KEYS.contains(&k.key);
            let entry: String = block
                .split(&format!("\n  {}:\n", k.name))
                .nth(1)
                .unwrap()
                .lines()
                .take_while(|l| l.starts_with("    "))
                .collect();
            assert_eq!(entry.contains("default:"), !required, "{}", k.name);
            if let Some(default) = k.default {
                assert!(
                    entry.contains(&format!("default: {default}"))
                        || entry.contains(&format!("default: \"{default}\"")),
                    "{}",
                    k.name
                );
            }
        }
    }

    /// The reference table of keys is the one generated from the program's key table.
    #[test]
    fn readme_lists_exactly_the_program_keys() {
        assert!(
            project_file("docs/reference/config-keys.md").contains(&readme_config_table()),
            "docs/reference/config-keys.md's table of configuration keys differs from the program's keys; regenerate it with\n  cargo run -q -p infra -- --readme-config-table"
        );
    }

    #[test]
    fn the_architecture_set_is_the_one_lambda_gets_and_picks_its_artifact() {
        let architecture =
            |value: &'static str| target(&[("architecture", value)]).common.architecture;
        for value in ["x86_64", "arm64"] {
            assert_eq!(architecture(value).lambda_name(), value);
        }
        // Where `make build` (cargo-lambda) writes each architecture's zip.
        assert_eq!(
            architecture("x86_64").artifact("relay"),
            "target/lambda/relay/bootstrap.zip"
        );
        assert_eq!(
            architecture("arm64").artifact("relay"),
            "target/lambda-arm64/relay/bootstrap.zip"
        );
    }

    #[test]
    fn fault_injection_and_a_provisioned_stream_are_read_as_set() {
        let t = target(&[("faultInjection", "true")]);
        assert!(t.fault_injection);
        let provisioned = source(&[("streamMode", "PROVISIONED"), ("shardCount", "3")]).unwrap();
        assert_eq!(
            provisioned.stream_capacity,
            StreamCapacity::Provisioned { shards: 3 }
        );
        assert_eq!(
            source(&[]).unwrap().stream_capacity,
            StreamCapacity::OnDemand
        );
    }

    #[test]
    fn another_project_name_is_refused() {
        assert_eq!(check_project("cross-account-relay"), Ok(()));
        let err = check_project("other").unwrap_err();
        assert_eq!(err, ConfigError::WrongProject("other".into()));
        assert!(
            err.to_string().contains("PULUMI_PROJECT is `other`"),
            "{err}"
        );
    }

    #[test]
    fn the_readme_table_has_a_row_per_key() {
        let table = readme_config_table();
        assert_eq!(table.lines().count(), 3 + Key::COUNT, "{table}");
        for k in KEYS {
            assert!(table.contains(&format!("| `{}` |", k.name)), "{}", k.name);
        }
    }

    #[test]
    fn secret_values_never_appear_in_errors() {
        let err = refusal(TARGET, &[("externalId", "x y secret")]);
        assert!(!err.contains("secret\""), "{err}");
        assert!(!err.contains("x y"), "{err}");
    }

    #[test]
    fn source_needs_the_target_outputs_or_a_stack_reference() {
        assert_refused(
            TARGET,
            &[("side", "source")],
            &["`cross-account-relay:targetRoleArn`"],
        );
        let cfg = with(
            TARGET,
            &[
                ("side", "source"),
                ("targetStack", "org/cross-account-relay/target"),
            ],
        );
        let StackConfig::Source(s) = cfg.stack_config().unwrap() else {
            panic!("source")
        };
        assert_eq!(
            s.target,
            TargetOutputs::StackReference {
                stack: "org/cross-account-relay/target".into()
            }
        );
        assert_eq!(s.target_region, TargetRegion::FromTargetStack);
    }

    #[test]
    fn target_role_must_live_in_the_target_account() {
        let cfg = with(
            TARGET,
            &[
                ("side", "source"),
                ("targetRoleArn", "arn:aws:iam::333333333333:role/x"),
                ("targetFunctionName", "f"),
            ],
        );
        let err = cfg.stack_config().unwrap_err().to_string();
        assert!(err.contains("targetAccountId 222222222222"), "{err}");
    }

    #[test]
    fn record_age_between_zero_and_sixty_is_refused() {
        let cfg = with(
            TARGET,
            &[
                ("side", "source"),
                ("targetRoleArn", "arn:aws:iam::222222222222:role/x"),
                ("targetFunctionName", "f"),
                ("maximumRecordAgeSeconds", "30"),
            ],
        );
        assert!(cfg
            .stack_config()
            .unwrap_err()
            .to_string()
            .contains("-1 or between 60"));
    }

    #[test]
    fn config_must_be_a_json_object_of_strings() {
        assert!(matches!(
            RawConfig::parse("s", "[1]"),
            Err(ConfigError::NotJson(_))
        ));
        assert!(RawConfig::parse("s", r#"{"aws:region":"eu-west-1"}"#).is_ok());
    }

    #[test]
    fn each_key_spec_sits_at_its_variant_index() {
        for (index, spec) in KEYS.iter().enumerate() {
            assert_eq!(spec.key as usize, index, "{}", spec.name);
            assert_eq!(spec.key.spec().name, spec.name);
        }
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Key::COUNT, "a key name is used twice");
    }

    /// The ranges the program enforces are the ones the functions enforce at start-up.
    #[test]
    fn function_settings_share_the_program_ranges() {
        let producer = |extra: &[(&'static str, &'static str)]| {
            source(extra).map(|s| (s.records_per_invocation, s.max_put_attempts))
        };
        assert_eq!(
            producer(&[("producerRecordsPerInvocation", "10000")])
                .unwrap()
                .0,
            10_000
        );
        assert!(producer(&[("producerRecordsPerInvocation", "10001")]).is_err());
        assert_eq!(producer(&[("producerMaxPutAttempts", "20")]).unwrap().1, 20);
        assert!(producer(&[("producerMaxPutAttempts", "0")]).is_err());
        assert_eq!(
            *env::PRODUCER_RECORDS_PER_INVOCATION_RANGE.end(),
            10_000,
            "README and Pulumi.yaml describe this range"
        );
        let capacity =
            |v: &'static str| match with(TARGET, &[("targetDedupCapacity", v)]).stack_config() {
                Ok(StackConfig::Target(t)) => Ok(t.dedup_capacity),
                Ok(StackConfig::Source(_)) => panic!("target"),
                Err(e) => Err(e),
            };
        assert_eq!(capacity("0").unwrap(), 0);
        assert!(capacity("1000001").is_err());
        let records = |v: &'static str| {
            source(&[("relayMaxRecordsPerInvocation", v)])
                .map(|s| s.relay_max_records_per_invocation)
        };
        assert_eq!(source(&[]).unwrap().relay_max_records_per_invocation, 0);
        assert_eq!(records("10000").unwrap(), 10_000);
        let err = records("10001").unwrap_err().to_string();
        assert!(err.contains("must be between 0 and 10000"), "{err}");
        assert_eq!(
            env::RELAY_MAX_RECORDS_PER_INVOCATION_RANGE,
            0..=10_000,
            "README and Pulumi.yaml describe this range"
        );
    }

    #[test]
    fn alarms_default_to_any_error_dead_letter_or_throttle_and_ten_minutes_of_iterator_age() {
        let s = source(&[]).unwrap();
        assert_eq!(
            s.common.alarms,
            AlarmSettings {
                email: None,
                period_seconds: 300,
                errors_threshold: 0
            }
        );
        assert_eq!(s.dead_lettered_alarm_threshold, 0);
        assert_eq!(s.assume_role_failures_alarm_threshold, 0);
        assert_eq!(s.iterator_age_alarm_seconds, 600);
        assert_eq!(target(&[]).throttles_alarm_threshold, 0);
        let t = target(&[
            ("alarmEmail", "ops@example.com"),
            ("alarmPeriodSeconds", "120"),
            ("alarmErrorsThreshold", "1000000"),
            ("alarmThrottlesThreshold", "1000000"),
        ]);
        assert_eq!(
            t.common.alarms,
            AlarmSettings {
                email: Some("ops@example.com".into()),
                period_seconds: 120,
                errors_threshold: 1_000_000
            }
        );
        assert_eq!(t.throttles_alarm_threshold, 1_000_000);
        let s = source(&[
            ("alarmDeadLetteredRecordsThreshold", "1000000"),
            ("alarmAssumeRoleFailuresThreshold", "1000000"),
        ])
        .unwrap();
        assert_eq!(s.dead_lettered_alarm_threshold, 1_000_000);
        assert_eq!(s.assume_role_failures_alarm_threshold, 1_000_000);
    }

    #[test]
    fn alarm_thresholds_and_periods_are_refused_outside_what_cloudwatch_can_evaluate() {
        for (key, bad, reason) in [
            ("alarmPeriodSeconds", "59", "between 60 and 86400"),
            ("alarmPeriodSeconds", "86460", "between 60 and 86400"),
            ("alarmPeriodSeconds", "90", "a multiple of 60"),
            ("alarmPeriodSeconds", "86399", "a multiple of 60"),
            ("alarmErrorsThreshold", "1000001", "between 0 and 1000000"),
            ("alarmThrottlesThreshold", "-1", "not a whole number"),
            (
                "alarmDeadLetteredRecordsThreshold",
                "1000001",
                "between 0 and 1000000",
            ),
            ("alarmIteratorAgeSeconds", "0", "between 1 and 604800"),
            (
                "alarmAssumeRoleFailuresThreshold",
                "1000001",
                "between 0 and 1000000",
            ),
        ] {
            let err = match key {
                "alarmThrottlesThreshold" => refusal(TARGET, &[(key, bad)]),
                _ => source(&[(key, bad)]).unwrap_err().to_string(),
            };
            assert!(err.contains(reason), "{key}={bad}: {err}");
            assert!(
                err.contains(&format!("`cross-account-relay:{key}`")),
                "{err}"
            );
            assert!(err.contains("pulumi config set"), "{err}");
        }
        for good in ["60", "86400"] {
            let period = target(&[("alarmPeriodSeconds", good)])
                .common
                .alarms
                .period_seconds;
            assert_eq!(period.to_string(), good);
        }
    }

    #[test]
    fn the_iterator_age_alarm_must_be_able_to_fire_before_records_leave_the_stream() {
        let age = |extra: &[(&'static str, &'static str)]| {
            source(extra).map(|s| s.iterator_age_alarm_seconds)
        };
        assert_eq!(age(&[("alarmIteratorAgeSeconds", "1")]).unwrap(), 1);
        assert_eq!(age(&[("alarmIteratorAgeSeconds", "3599")]).unwrap(), 3599);
        let err = age(&[("alarmIteratorAgeSeconds", "3600")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("must be below 3600 s (maximumRecordAgeSeconds)"),
            "{err}"
        );
        // Without a record age limit, records stay until the stream's retention ends.
        let forever = [
            ("maximumRecordAgeSeconds", "-1"),
            ("streamRetentionHours", "24"),
        ];
        let with = |seconds: &'static str| {
            let mut extra = forever.to_vec();
            extra.push(("alarmIteratorAgeSeconds", seconds));
            age(&extra)
        };
        assert_eq!(with("86399").unwrap(), 86_399);
        let err = with("86400").unwrap_err().to_string();
        assert!(
            err.contains("must be below 86400 s (streamRetentionHours)"),
            "{err}"
        );
        assert!(
            err.contains("`cross-account-relay:alarmIteratorAgeSeconds`"),
            "{err}"
        );
        let longest = [
            ("maximumRecordAgeSeconds", "604800"),
            ("alarmIteratorAgeSeconds", "604799"),
        ];
        assert_eq!(age(&longest).unwrap(), 604_799);
    }

    #[test]
    fn an_alarm_email_is_one_plain_address() {
        let longest_local = format!("{}@example.com", "l".repeat(64));
        let longest_label = format!("ops@{}.com", "d".repeat(63));
        // 254 characters in all: 64 + 1 + 189.
        let longest = format!(
            "{}@{}.{}.{}.com",
            "l".repeat(64),
            "a".repeat(61),
            "b".repeat(61),
            "c".repeat(61)
        );
        assert_eq!(longest.len(), 254);
        for good in [
            "ops@example.com",
            "first.last+alarms@mail.example.co.uk",
            "o'brien!#$%&*/=?^_`{|}~-x@ex-ample.org",
            "a@b.io",
            "x@1-2.example",
            &longest_local,
            &longest_label,
            &longest,
        ] {
            assert_eq!(check_email(good), Ok(()), "{good}");
        }
        let long_local = format!("{}@example.com", "l".repeat(65));
        let long_label = format!("ops@{}.com", "d".repeat(64));
        let too_long = format!("{}d.com", &longest[..longest.len() - 4]);
        assert_eq!(too_long.len(), 255);
        for bad in [
            "",
            "ops",
            "ops@",
            "@example.com",
            "ops@example",
            "ops@example.c",
            "ops@example.c0m",
            "ops@@example.com",
            "ops@ex@ample.com",
            "o ps@example.com",
            "ops@exa mple.com",
            ".ops@example.com",
            "ops.@example.com",
            "o..ps@example.com",
            "ops@.example.com",
            "ops@example..com",
            "ops@example.com.",
            "ops@-example.com",
            "ops@example-.com",
            "ops@ex_ample.com",
            "\"ops\"@example.com",
            "ops(x)@example.com",
            "ops@[192.0.2.1]",
            "öps@example.com",
            "ops@exämple.com",
            "ops@example.com,dev@example.com",
            &long_local,
            &long_label,
            &too_long,
        ] {
            let err = check_email(bad).unwrap_err();
            assert!(
                err.contains("one e-mail address like ops@example.com"),
                "{bad}: {err}"
            );
        }
        let err = refusal(TARGET, &[("alarmEmail", "ops at example.com")]);
        assert!(err.contains("`cross-account-relay:alarmEmail`"), "{err}");
        assert!(
            err.contains("pulumi config set --stack dev-target alarmEmail ops@example.com"),
            "{err}"
        );
    }

    #[test]
    fn a_stack_is_pinned_to_its_sides_account_and_its_provider_says_the_same() {
        let provider_accounts = |raw: &RawConfig| {
            let template = crate::render(&raw.stack_config().unwrap());
            let provider = template
                .resources
                .values()
                .find(|r| r.type_token == "pulumi:providers:aws")
                .expect("an explicit aws provider");
            provider.properties["allowedAccountIds"].clone()
        };
        let target = with(TARGET, &[]);
        let source = with(TARGET, SOURCE);
        assert_eq!(
            target.pinned_account().unwrap(),
            (StackSide::Target, "222222222222".to_string())
        );
        assert_eq!(
            source.pinned_account().unwrap(),
            (StackSide::Source, "111111111111".to_string())
        );
        for raw in [&target, &source] {
            let (_, account) = raw.pinned_account().unwrap();
            assert_eq!(provider_accounts(raw), serde_json::json!([account]));
        }
        assert_eq!(StackSide::Source.name(), "source");
        assert_eq!(StackSide::Target.name(), "target");
    }

    #[test]
    fn the_pinned_account_needs_only_the_side_and_its_account() {
        // No externalId (a secret `pulumi config --json` does not show) and no region.
        let raw = RawConfig::from_pairs(
            "t",
            &[("side", "target"), ("targetAccountId", "222222222222")],
        );
        assert_eq!(
            raw.pinned_account().unwrap(),
            (StackSide::Target, "222222222222".into())
        );
        let cases: [(&[(&str, &str)], &str); 4] = [
            (
                &[("targetAccountId", "222222222222")],
                "missing config `cross-account-relay:side`",
            ),
            (&[("side", "both")], "must be one of source, target"),
            (
                &[("side", "source"), ("targetAccountId", "222222222222")],
                "missing config `cross-account-relay:sourceAccountId`",
            ),
            (
                &[("side", "target"), ("targetAccountId", "2222")],
                "exactly 12 digits",
            ),
        ];
        for (pairs, needle) in cases {
            let err = RawConfig::from_pairs("t", pairs)
                .pinned_account()
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn every_key_has_a_description_and_example() {
        for k in KEYS {
            assert!(
                !k.description.is_empty() && !k.example.is_empty(),
                "{}",
                k.name
            );
        }
    }
}
