//! The key table: one row per configuration key of the project's namespace, holding
//! everything about it — name, scope, type, default, the values it accepts, what it means and the
//! function setting (environment variable) it feeds. The parser ([`super::parse`]) takes each
//! key's default and range from its row, `Pulumi.yaml`'s `config:` block and the reference
//! (`docs/reference/config-keys.md`) are printed from the rows, and a key that feeds a function
//! setting takes its default and range from the function's own definition in `shared::config`.

use shared::config::{self as env, FlagSetting, NumberSetting};
use shared::limits::{KINESIS_MAX_RECORD_SIZE_KIB_RANGE, LAMBDA_CONSUMER_MAX_RECORD_KIB};

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

/// Which stacks read a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Both,
    Source,
    Target,
}

impl Scope {
    /// Whether a stack of `side` reads a key of this scope.
    pub fn includes(self, side: StackSide) -> bool {
        match self {
            Scope::Both => true,
            Scope::Source => side == StackSide::Source,
            Scope::Target => side == StackSide::Target,
        }
    }

    /// `both`, `source` or `target`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Both => "both",
            Scope::Source => "source",
            Scope::Target => "target",
        }
    }
}

/// Type of a key, as `Pulumi.yaml` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
    Integer,
    Boolean,
}

impl KeyType {
    /// The name `Pulumi.yaml` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Integer => "integer",
            KeyType::Boolean => "boolean",
        }
    }
}

/// What a key's value may be, with its default: the one place each is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Text the parser checks by its own rule (an id, a name, an ARN, an expression); `None`:
    /// no default (required, or derived or skipped when unset, as the description says).
    Text(Option<&'static str>),
    /// One of `allowed`.
    OneOf {
        default: Option<&'static str>,
        allowed: &'static [&'static str],
    },
    /// A whole number in `min..=max` (the description says of any value inside it that is
    /// still refused).
    Number {
        default: Option<i64>,
        min: i64,
        max: i64,
    },
    /// One of `allowed` numbers.
    NumberIn {
        default: i64,
        allowed: &'static [u32],
    },
    /// `true` or `false`.
    Flag(bool),
}

impl Values {
    /// The type `Pulumi.yaml` declares.
    pub fn key_type(self) -> KeyType {
        match self {
            Values::Text(_) | Values::OneOf { .. } => KeyType::String,
            Values::Number { .. } | Values::NumberIn { .. } => KeyType::Integer,
            Values::Flag(_) => KeyType::Boolean,
        }
    }

    /// The default as the key's value would spell it.
    pub fn default(self) -> Option<String> {
        match self {
            Values::Text(d) | Values::OneOf { default: d, .. } => d.map(str::to_string),
            Values::Number { default, .. } => default.map(|d| d.to_string()),
            Values::NumberIn { default, .. } => Some(default.to_string()),
            Values::Flag(d) => Some(d.to_string()),
        }
    }

    /// The range a number must be in.
    pub fn range(self) -> Option<(i64, i64)> {
        match self {
            Values::Number { min, max, .. } => Some((min, max)),
            _ => None,
        }
    }

    /// The values accepted, as the description ends with them: `Range: 1..10.` or
    /// `One of: a, b.`; `None` for free text and flags.
    pub fn allowed(self) -> Option<String> {
        match self {
            Values::Number { min, max, .. } => Some(format!("Range: {min}..{max}.")),
            Values::OneOf { allowed, .. } => Some(format!("One of: {}.", allowed.join(", "))),
            Values::NumberIn { allowed, .. } => {
                let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
                Some(format!("One of: {}.", list.join(", ")))
            }
            Values::Text(_) | Values::Flag(_) => None,
        }
    }
}

/// One configuration key of the project's namespace.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub key: Key,
    pub name: &'static str,
    pub scope: Scope,
    pub values: Values,
    pub secret: bool,
    /// A value to show in the `pulumi config set` hint.
    pub example: &'static str,
    /// What it means, without its default or range (those are in [`KeySpec::values`]).
    pub description: &'static str,
    /// The environment variable of a function (`shared::config`) the key's value is passed on in.
    pub feeds: Option<&'static str>,
    /// A count threshold of an alarm: parsed into [`super::AlarmSettings`] for the stacks of its
    /// scope, where the alarm reads it by its [`Key`].
    pub alarm_threshold: bool,
}

impl KeySpec {
    /// The type `Pulumi.yaml` declares.
    pub fn key_type(&self) -> KeyType {
        self.values.key_type()
    }

    /// The default, as the key's value would spell it.
    pub fn default(&self) -> Option<String> {
        self.values.default()
    }

    /// The description followed by the values accepted.
    pub fn full_description(&self) -> String {
        match self.values.allowed() {
            Some(allowed) => format!("{} {allowed}", self.description),
            None => self.description.to_string(),
        }
    }

    const fn secret(self) -> Self {
        KeySpec {
            secret: true,
            ..self
        }
    }

    const fn feeds(self, variable: &'static str) -> Self {
        KeySpec {
            feeds: Some(variable),
            ..self
        }
    }
}

const fn row(
    key: Key,
    name: &'static str,
    scope: Scope,
    values: Values,
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    KeySpec {
        key,
        name,
        scope,
        values,
        secret: false,
        example,
        description,
        feeds: None,
        alarm_threshold: false,
    }
}

/// Free text; `default` `None`: required, or derived when unset.
const fn text(
    key: Key,
    name: &'static str,
    scope: Scope,
    default: Option<&'static str>,
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    let values = Values::Text(default);
    row(key, name, scope, values, example, description)
}

const fn one_of(
    key: Key,
    name: &'static str,
    scope: Scope,
    default: Option<&'static str>,
    allowed: &'static [&'static str],
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    let values = Values::OneOf { default, allowed };
    row(key, name, scope, values, example, description)
}

const fn number(
    key: Key,
    name: &'static str,
    scope: Scope,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    let values = Values::Number {
        default: Some(default),
        min: *range.start(),
        max: *range.end(),
    };
    row(key, name, scope, values, example, description)
}

/// A number passed on to a function as `setting`'s variable: its default and range are the
/// function's own.
const fn fed(
    key: Key,
    name: &'static str,
    scope: Scope,
    setting: &NumberSetting,
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    let values = Values::Number {
        default: Some(setting.default as i64),
        min: *setting.range.start() as i64,
        max: *setting.range.end() as i64,
    };
    row(key, name, scope, values, example, description).feeds(setting.variable)
}

/// A flag passed on to a function as `setting`'s variable, with the function's default.
const fn fed_flag(
    key: Key,
    name: &'static str,
    scope: Scope,
    setting: &FlagSetting,
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    let values = Values::Flag(setting.default);
    row(key, name, scope, values, example, description).feeds(setting.variable)
}

const fn flag(
    key: Key,
    name: &'static str,
    scope: Scope,
    default: bool,
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    let values = Values::Flag(default);
    row(key, name, scope, values, example, description)
}

/// The range of every alarm's count threshold.
pub const ALARM_THRESHOLDS: std::ops::RangeInclusive<i64> = 0..=1_000_000;

/// A count threshold of an alarm in the stacks of `scope`: 0 by default (any occurrence fires
/// it), within [`ALARM_THRESHOLDS`]. The alarm that uses it names its [`Key`].
const fn alarm_threshold(
    key: Key,
    name: &'static str,
    scope: Scope,
    example: &'static str,
    description: &'static str,
) -> KeySpec {
    KeySpec {
        alarm_threshold: true,
        ..number(key, name, scope, 0, ALARM_THRESHOLDS, example, description)
    }
}

/// CloudWatch Logs' retention periods, in days: the only values it accepts.
const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The names of Lambda's application log levels (`shared::config::APPLICATION_LOG_LEVELS`).
const LOG_LEVELS: [&str; env::APPLICATION_LOG_LEVELS.len()] = {
    let mut names = [""; env::APPLICATION_LOG_LEVELS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = env::APPLICATION_LOG_LEVELS[i].0;
        i += 1;
    }
    names
};

/// Declares [`Key`] and [`KEYS`] from one list of rows, so a key is one row: its variant and
/// its spec, in the same order.
macro_rules! key_table {
    ($($(#[$doc:meta])* $variant:ident => $builder:ident($($arg:expr),* $(,)?) $(.$method:ident($($marg:expr),*))*;)*) => {
        /// Every key of the `cross-account-relay` namespace the program reads. The parser asks
        /// for keys by variant, so a misspelt key does not compile; [`KEYS`] holds each one's
        /// spec at the variant's index.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Key {
            $($(#[$doc])* $variant,)*
        }

        /// The spec of every [`Key`], in the enum's order.
        pub const KEYS: &[KeySpec] = &[$($builder(Key::$variant, $($arg),*)$(.$method($($marg),*))*,)*];
    };
}

use Scope::{Both, Source, Target};

key_table! {
    Side => one_of("side", Both, None, &["source", "target"], "target", "What this stack deploys: `source` (schedule, producer, stream, relay) or `target` (target function, cross-account role).");
    SourceAccountId => text("sourceAccountId", Both, None, "111111111111", "12-digit id of the source account (the stream and the relay live there).");
    TargetAccountId => text("targetAccountId", Both, None, "222222222222", "12-digit id of the target account (the target function lives there).");
    ExternalId => text("externalId", Both, None, "<random string, 2-1224 chars>", "Secret shared by the two stacks: the cross-account role's trust policy requires it as sts:ExternalId and the relay sends it. Set with --secret.").secret().feeds(env::TARGET_EXTERNAL_ID);
    NamePrefix => text("namePrefix", Both, Some("cross-account-relay"), "relay-eu-prod", "Starts every physical name (functions, roles, stream, queues, dead-letter bucket, schedule, log groups). Both stacks of a pair must use the same prefix; give each further pair in the same accounts its own (IAM role names are unique per account across regions).");
    CrossAccountRoleName => text("crossAccountRoleName", Both, None, "cross-account-relay-invoker", "Name of the role in the target account that the relay assumes; defaults to <namePrefix>-invoker.");
    Architecture => one_of("architecture", Both, Some("x86_64"), &["x86_64", "arm64"], "arm64", "Lambda architecture (arm64 artifacts come from target/lambda-arm64/).");
    LogRetentionDays => row("logRetentionDays", Both, Values::NumberIn { default: 14, allowed: LOG_RETENTION_DAYS }, "30", "Retention of the functions' CloudWatch log groups, in days (a value CloudWatch accepts).");
    LogLevel => one_of("logLevel", Both, Some("INFO"), &LOG_LEVELS, "DEBUG", "Application log level of the functions: their loggingConfig.applicationLogLevel, which Lambda passes to them as AWS_LAMBDA_LOG_LEVEL and uses to drop lines below it (their logs are JSON; Lambda's own platform lines stay at INFO). The EMF metric lines carry INFO, or this level when above it, so no level drops the metrics or the alarms on them.").feeds(env::AWS_LAMBDA_LOG_LEVEL);
    CrossAccountRoleMaxSessionSeconds => number("crossAccountRoleMaxSessionSeconds", Target, 3600, 3600..=43200, "7200", "Maximum session of the cross-account role, in seconds. The relay's own sessions are capped at 3600 s by STS (role chaining), so a larger value only serves other callers of the role.");
    TargetMemoryMb => number("targetMemoryMb", Target, 256, 128..=10240, "512", "Memory of the target function, in MB.");
    TargetTimeoutSeconds => number("targetTimeoutSeconds", Target, 30, 1..=900, "60", "Timeout of the target function, in seconds.");
    TargetDedupCapacity => fed("targetDedupCapacity", Target, &env::TARGET_DEDUP_CAPACITY_SETTING, "10000", "Record ids the target remembers per container to recognise redeliveries (0: none; memory stays bounded either way).");
    FaultInjection => fed_flag("faultInjection", Target, &env::TARGET_FAULT_INJECTION_SETTING, "true", "Lets a record ask the target to fail (demo only). Leave false in real accounts.");
    TargetArtifact => text("targetArtifact", Target, None, "target/lambda/my-target/bootstrap.zip", "The zip Lambda runs as the target function: cargo-lambda's `--output-format zip` output for a target of your own (docs/target-library.md), a path relative to the folder of Pulumi.yaml or absolute, ending in .zip. Unset: the sample target's artifact for the architecture (target/lambda/target/bootstrap.zip, or target/lambda-arm64/target/bootstrap.zip for arm64). The local run (make demo, make soak) always runs the sample target.");
    TargetReservedConcurrency => number("targetReservedConcurrency", Target, -1, -1..=1_000_000, "50", "Concurrent executions reserved for the target function, so the relay cannot use up the target account's pool: -1 reserves none, n > 0 reserves n. AWS keeps 100 of the account's concurrency unreserved for the functions without a reservation, so n can be at most the account's unreserved concurrency minus 100 (900 with Lambda's default limit of 1000; `aws lambda get-account-settings` shows yours): Lambda refuses more when the stack is deployed. 0 is refused: it would throttle every delivery, and the relay's retries would end with every record in the dead-letter bucket (to pause delivery, disable the source's event source mapping instead; records then wait in the stream).");
    IdempotencyStore => flag("idempotencyStore", Target, false, "true", "Creates the idempotency table `<namePrefix>-idempotency` (DynamoDB, on-demand, encrypted with the AWS managed key `aws/dynamodb`, items expiring by TTL) and gives the target function its name (IDEMPOTENCY_TABLE) and put/update/delete/batch-get on it alone, so a target built on the target library runs each record's effect once across redeliveries. false: no table, and a redelivered record runs its handler again.");
    IdempotencyTtlHours => fed("idempotencyTtlHours", Target, &env::IDEMPOTENCY_TTL_HOURS_SETTING, "720", "How long the idempotency table keeps a completed record's answer, in hours (its items' TTL; read only with idempotencyStore). It must exceed the source stream's retention (streamRetentionHours) plus the time within which dead letters may be redriven: a record delivered again after its answer expired runs its handler again.");
    IdempotencyTableDeletionProtection => flag("idempotencyTableDeletionProtection", Target, true, "false", "DynamoDB deletion protection on the idempotency table (read only with idempotencyStore): while true, DynamoDB refuses to delete the table, so a `pulumi destroy`, or a change that replaces the table (namePrefix), fails until an `up` has set it false. Losing the table forgets every stored answer: records redelivered afterwards run their handlers again.");
    SampleEffectsTable => flag("sampleEffectsTable", Target, false, "true", "A test device of the sample target, for the local run and the soak: creates the table `<namePrefix>-sample-effects` (DynamoDB, on-demand, encrypted with the AWS managed key `aws/dynamodb`, no deletion protection: it holds only the sample's counts) and gives the target function its name (SAMPLE_EFFECTS_TABLE) and UpdateItem on it alone; the sample then counts each effect it runs there (per record: how many times, under which deliveries), so the soak can tell a record whose effect ran twice. Leave false for a real target.");
    TargetRoleArn => text("targetRoleArn", Source, None, "arn:aws:iam::222222222222:role/cross-account-relay-invoker", "ARN of the cross-account role (target stack output crossAccountRoleArn). Required unless targetStack is set.").feeds(env::TARGET_ROLE_ARN);
    TargetFunctionName => text("targetFunctionName", Source, None, "cross-account-relay-target", "Name or unqualified ARN of the target function (target stack output targetFunctionArn); no alias or version, since the cross-account role may invoke only the unqualified function. Required unless targetStack is set.").feeds(env::TARGET_FUNCTION_NAME);
    TargetStack => text("targetStack", Source, None, "my-org/cross-account-relay/target", "Fully qualified target stack to read targetRoleArn/targetFunctionName from with a StackReference (both stacks in one backend). Replaces those two keys.");
    TargetRegion => text("targetRegion", Source, None, "eu-west-1", "Region of the target function; defaults to the target stack's targetRegion output with targetStack, else to aws:region.").feeds(env::TARGET_REGION);
    AssumeRoleSessionSeconds => fed("assumeRoleSessionSeconds", Source, &env::ASSUME_ROLE_SESSION_SECONDS_SETTING, "3600", "Length of the relay's assumed-role session, in seconds: the relay assumes the role with its execution role's credentials (role chaining), which STS caps at one hour.");
    ScheduleExpression => text("scheduleExpression", Source, Some("rate(5 minutes)"), "rate(1 minute)", "EventBridge Scheduler expression that invokes the producer: rate(<n> minute[s]|hour[s]|day[s]), cron(<6 fields>) or at(yyyy-mm-ddThh:mm:ss).");
    StreamMode => one_of("streamMode", Source, Some("ON_DEMAND"), &["ON_DEMAND", "PROVISIONED"], "PROVISIONED", "Kinesis capacity mode. ON_DEMAND scales by itself but is billed per stream-hour and per GB, whatever the traffic; PROVISIONED is billed per shard-hour (shardCount), and one shard takes 1 MiB or 1000 records a second (the committed example: PROVISIONED, 1 shard).");
    ShardCount => number("shardCount", Source, 1, 1..=10_000, "2", "Shards of a PROVISIONED stream (ignored for ON_DEMAND).");
    StreamRetentionHours => number("streamRetentionHours", Source, 168, 24..=8760, "336", "Kinesis retention, in hours. Above 24 hours Kinesis bills extended retention (per shard-hour for PROVISIONED, per GB for ON_DEMAND). Dead letters keep their records' data in the dead-letter bucket, so redrive does not depend on it: 24 is enough unless the relay may fall behind by more than a day.");
    StreamMaxRecordSizeKib => number("streamMaxRecordSizeKib", Source, *KINESIS_MAX_RECORD_SIZE_KIB_RANGE.start() as i64, *KINESIS_MAX_RECORD_SIZE_KIB_RANGE.start() as i64..=LAMBDA_CONSUMER_MAX_RECORD_KIB as i64, "4601", "The stream's maximum record size in KiB, data and partition key (Kinesis's MaxRecordSizeInKiB; 1024, its default, is 1 MiB). Up to 4601: the event source mapping hands the relay an event smaller than Lambda's 6 MB synchronous payload limit, in which a record's data is base64 (4 bytes per 3), so a larger record could be written to the stream but never reach the relay; Kinesis's own largest setting, 10240, is refused for that reason. A record up to this size is delivered whole to the target, dead-lettered whole and redriven whole (docs/design.md, Record sizes). Kinesis keeps its per-shard write rate of 1 MiB a second: large records are for occasional use (AWS advises under 2% of the traffic). The producer writes records of Kinesis's default 1 MiB at most whatever this is.");
    DeadLetterRetentionDays => number("deadLetterRetentionDays", Source, 30, 1..=3650, "90", "Days an object stays in the dead-letter bucket before S3 expires it: long enough to notice a failure, fix its cause and redrive.");
    DeadLetterBucketForceDestroy => flag("deadLetterBucketForceDestroy", Source, false, "true", "Lets `pulumi destroy` (or a namePrefix change, which replaces the bucket) delete the dead-letter bucket with the dead letters in it: its forceDestroy. false: S3 refuses to delete a bucket that holds objects (BucketNotEmpty), so dead letters, which are data, are never deleted by accident; keep, export or empty them first (docs/deploy.md, Tear down). It takes effect only once an up has set it: destroy reads it from the stack's state.");
    ProducerRecordsPerInvocation => fed("producerRecordsPerInvocation", Source, &env::PRODUCER_RECORDS_PER_INVOCATION_SETTING, "10", "Records the producer writes per scheduled invocation (at most 500 per PutRecords call).");
    ProducerPaddingBytes => fed("producerPaddingBytes", Source, &env::PRODUCER_PADDING_BYTES_SETTING, "1024", "Filler bytes in each produced record's body.");
    ProducerMaxPutAttempts => fed("producerMaxPutAttempts", Source, &env::PRODUCER_MAX_PUT_ATTEMPTS_SETTING, "8", "PutRecords attempts the producer makes for entries Kinesis refused (1 = no retry).");
    ProducerRetryBaseDelayMs => fed("producerRetryBaseDelayMs", Source, &env::PRODUCER_RETRY_BASE_DELAY_MS_SETTING, "250", "First backoff between the producer's PutRecords attempts, in ms, doubling each attempt.");
    ProducerAggregation => fed_flag("producerAggregation", Source, &env::PRODUCER_AGGREGATION_SETTING, "true", "Writes the producer's records as KPL aggregates (the Kinesis Producer Library's aggregation format, which the relay de-aggregates): each Kinesis record packs consecutive records of an invocation up to the KPL's default aggregate size, partition key included (the producer's AGGREGATE_MAX_BYTES), and takes the first one's partition key; each record keeps its own inside. false: one Kinesis record per record. For the demo and the soak, to run de-aggregation with the project's own binaries.");
    BatchSize => number("batchSize", Source, 100, 1..=10_000, "100", "Event source mapping: most records per relay invocation.");
    BatchingWindowSeconds => number("batchingWindowSeconds", Source, 1, 0..=300, "5", "Event source mapping: seconds to gather a batch.");
    ParallelizationFactor => number("parallelizationFactor", Source, 1, 1..=10, "2", "Event source mapping: concurrent batches per shard.");
    MaximumRetryAttempts => number("maximumRetryAttempts", Source, 3, -1..=10_000, "3", "Event source mapping: retries of a failing batch before it goes to the dead-letter bucket, -1: forever.");
    MaximumRecordAgeSeconds => number("maximumRecordAgeSeconds", Source, 3600, -1..=604_800, "3600", "Event source mapping: records older than this go to the dead-letter bucket, -1: never; 0 to 59 are refused (Lambda's least is 60).");
    StartingPosition => one_of("startingPosition", Source, Some("TRIM_HORIZON"), &["TRIM_HORIZON", "LATEST"], "LATEST", "Event source mapping: where a new mapping starts reading, TRIM_HORIZON (the oldest record retained) or LATEST (records written after it exists). Changing it replaces the mapping (deleted, then created anew): at TRIM_HORIZON the new one replays every record still in the stream, up to streamRetentionHours old, so the target gets delivered records again; at LATEST it skips every record the old one had not read yet (its backlog, and what is written until the new one reads), and nothing dead-letters them.");
    RelayMaxConcurrentInvocations => fed("relayMaxConcurrentInvocations", Source, &env::RELAY_MAX_CONCURRENT_INVOCATIONS_SETTING, "8", "Synchronous target invocations the relay runs at once per batch.");
    RelayPoisonSplitDepth => fed("relayPoisonSplitDepth", Source, &env::RELAY_POISON_SPLIT_DEPTH_SETTING, "7", "How many times the relay halves an envelope the target function failed (X-Amz-Function-Error), sending the halves again, to isolate poison records: a record the target still fails alone is dead-lettered as target_function_error, the others are delivered. The depth counts halvings of the envelope's records, and the relay de-aggregates KPL aggregates first, so an envelope holds user records: each user record of an aggregate is one record here. 0: no split, the whole envelope is retried by the event source mapping. Default 7: one poison record in an envelope of up to 2^7 = 128 records is isolated in at most 14 extra Invokes, enough for the default batchSize of 100 on a stream without aggregates. An aggregated stream needs ceil(log2(batchSize x user records per aggregate)) (100 aggregates of 50 user records: 13), or in key-ordered delivery ceil(log2(relayMaxRecordsPerInvocation)), as no envelope holds more; at most 14 (16,384 records): above that, lower batchSize or use key-ordered delivery. A poison record the depth could not isolate stays in a part that still fails with no halving left: that part's records are reported in batchItemFailures (a user record by its aggregate) and retried with their batch by the event source mapping, and after maximumRetryAttempts the mapping sends the batch to its on-failure destination (the dead-letter bucket, kind failed_batch), good records with it. Each extra Invoke starts only with time left in the relay's delivery stage.");
    RelayMaxRecordsPerInvocation => fed("relayMaxRecordsPerInvocation", Source, &env::RELAY_MAX_RECORDS_PER_INVOCATION_SETTING, "25", "Most records per target Invoke, counting user records: the relay de-aggregates KPL aggregates first, and each user record is one record with its own partition key. 0: as many as fit one Invoke, in batch order. n: key-ordered delivery: records of one partition key (a user record's own key) reach the target in order, different keys at once (up to relayMaxConcurrentInvocations); once a record of a key is not delivered, the key's later records in the batch are retried, not sent.");
    RelayMemoryMb => number("relayMemoryMb", Source, 256, 128..=10240, "512", "Memory of the relay function, in MB (the producer gets 128).");
    RelayTimeoutSeconds => number("relayTimeoutSeconds", Source, 60, 1..=900, "120", "Timeout of the relay function, in seconds (the producer gets 30).");
    AlarmEmail => text("alarmEmail", Both, None, "ops@example.com", "E-mail address subscribed to the stack's alarm topic (`<namePrefix>-alarms`); unset: no subscription (subscribe what you like to the alarmTopicArn output). SNS mails a confirmation link first.");
    AlarmPeriodSeconds => number("alarmPeriodSeconds", Both, 300, 60..=86_400, "60", "Period every alarm evaluates, in seconds, whole minutes only; one period over the threshold fires it. 300: one tick of the default schedule per period.");
    AlarmErrorsThreshold => alarm_threshold("alarmErrorsThreshold", Both, "2", "Function errors (Lambda's Errors) in one period above which an errors alarm fires (relay and producer in the source, target in the target). 0: any error, as the functions report per-record failures without an error.");
    AlarmThrottlesThreshold => alarm_threshold("alarmThrottlesThreshold", Target, "10", "Throttled invocations of the target function in one period above which its throttles alarm fires. 0: any throttle (the target's concurrency ran out; the relay retries, later).");
    AlarmDeadLetteredRecordsThreshold => alarm_threshold("alarmDeadLetteredRecordsThreshold", Source, "5", "Records the relay dead-letters in one period above which the alarm fires. 0: every dead-lettered record is a record not delivered, to look at and redrive.");
    AlarmAssumeRoleFailuresThreshold => alarm_threshold("alarmAssumeRoleFailuresThreshold", Source, "3", "Invoke calls the relay could not make in one period because it could not assume the cross-account role (its AssumeRoleFailures metric), above which the alarm fires. 0: any failure (a denied trust policy or external id stops all delivery; STS throttling is retried).");
    AlarmIteratorAgeSeconds => number("alarmIteratorAgeSeconds", Source, 600, 1..=604_800, "300", "The relay's iterator age (how old a record is when the relay gets it) above which the alarm fires, in seconds, and below maximumRecordAgeSeconds (or the stream's retention when that is -1). 600: far above the seconds it takes when the relay keeps up, and 50 minutes before the default maximumRecordAgeSeconds sends records to the dead-letter bucket.");
    /// The old name of [`Key::Side`], declared so a stack that still sets it is told how to move.
    Role => text("role", Both, None, "side", "Renamed to `side` (the word role is kept for IAM roles): leave it unset; a stack that sets it is stopped with the two commands that move it.");
}

impl Key {
    /// How many keys there are: the length of [`KEYS`].
    pub const COUNT: usize = KEYS.len();

    /// This key's row of [`KEYS`].
    pub fn spec(self) -> &'static KeySpec {
        &KEYS[self as usize]
    }

    /// The name `pulumi config set` takes.
    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

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
        let description = format!("[{scope}] {}", k.full_description());
        out.push_str(&format!("  {}:\n", k.name));
        out.push_str(&format!("    type: {}\n", k.key_type().as_str()));
        out.push_str(&format!(
            "    description: {}\n",
            serde_json::Value::from(description)
        ));
        let default = match (k.default(), k.key_type()) {
            (Some(d), KeyType::String) => Some(serde_json::Value::from(d).to_string()),
            (Some(d), _) => Some(d),
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

/// The table of configuration keys (`docs/reference/config-keys.md` holds it), generated from
/// [`KEYS`]: `infra --config-table` prints it.
pub fn config_table() -> String {
    let mut out = String::from(
        "| key | stacks | default | meaning | sets (function's variable) |\n| --- | --- | --- | --- | --- |\n| `aws:region` | both | required | Region of every resource (`eu-west-1` in the examples). | — |\n",
    );
    for k in KEYS {
        let default = match k.default() {
            Some(d) => format!("`{d}`"),
            None if REQUIRED_KEYS.contains(&k.key) => "required".to_string(),
            None => "—".to_string(),
        };
        let feeds = k.feeds.map_or("—".to_string(), |v| format!("`{v}`"));
        out.push_str(&format!(
            "| `{}` | {} | {default} | {} | {feeds} |\n",
            k.name,
            k.scope.name(),
            k.full_description()
        ));
    }
    out
}
