//! The typed configuration of a stack: what [`super::parse`] makes of its keys and the
//! stacks are built from.

use std::collections::BTreeMap;

use super::keys::Key;
use crate::names::NamePrefix;

pub use super::keys::StackSide;

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

/// The alarm keys of a stack.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSettings {
    /// Subscribed to the stack's alarm topic when set.
    pub email: Option<String>,
    /// The period each alarm evaluates, in seconds.
    pub period_seconds: u32,
    /// The value of every alarm threshold key of this stack's side ([`KeySpec::alarm_threshold`],
    /// and the iterator age on the source side), by key.
    pub thresholds: BTreeMap<Key, u32>,
}

impl AlarmSettings {
    /// The value of an alarm threshold key: as the stack set it, or its row's default for a
    /// key this stack's side does not read.
    pub fn threshold(&self, key: Key) -> u32 {
        self.thresholds.get(&key).copied().unwrap_or_else(|| {
            key.spec()
                .values
                .default()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0)
        })
    }
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
    /// The idempotency table (`idempotencyStore`); `None`: no table.
    pub idempotency: Option<IdempotencyTable>,
    /// The zip the target function runs (`targetArtifact`); `None`: the sample target's
    /// artifact for the architecture ([`Architecture::artifact`]).
    pub artifact: Option<String>,
    /// Whether the stack creates the sample's effects table (`sampleEffectsTable`).
    pub sample_effects_table: bool,
}

/// The target's idempotency table, when the stack creates one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyTable {
    /// Hours a completed record's answer is kept (the function's `IDEMPOTENCY_TTL_HOURS`).
    pub ttl_hours: u32,
    /// DynamoDB deletion protection on the table.
    pub deletion_protection: bool,
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
    /// The stream's `maxRecordSizeInKib` (`streamMaxRecordSizeKib`).
    pub stream_max_record_size_kib: u32,
    pub dead_letter_retention_days: u32,
    /// The dead-letter bucket's `forceDestroy`: deleted with its objects on destroy or replace.
    pub dead_letter_bucket_force_destroy: bool,
    pub records_per_invocation: u32,
    pub padding_bytes: u32,
    pub max_put_attempts: u32,
    pub retry_base_delay_ms: u32,
    /// The producer writes KPL aggregates (`producerAggregation`).
    pub producer_aggregation: bool,
    pub batch_size: u32,
    pub batching_window_seconds: u32,
    pub parallelization_factor: u32,
    pub maximum_retry_attempts: i32,
    pub maximum_record_age_seconds: i32,
    pub starting_position: String,
    pub relay_max_concurrent_invocations: u32,
    /// 0: off (the relay's default); n: key-ordered delivery, at most n records per Invoke.
    pub relay_max_records_per_invocation: u32,
    /// Halvings of a function-failed envelope (`relayPoisonSplitDepth`; 0: none).
    pub relay_poison_split_depth: u32,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StackConfig {
    Source(SourceConfig),
    Target(TargetConfig),
}
