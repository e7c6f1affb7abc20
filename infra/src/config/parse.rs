//! Parsing: a stack's `PULUMI_CONFIG` into the typed configuration, each key read by its
//! [`Key`] with the default and the values its row in [`super::keys`] gives, and every error
//! naming the key and the `pulumi config set` line that fixes it.

use std::collections::BTreeMap;

use super::checks::{
    check_email, check_function_reference, check_schedule_expression, looks_like_region,
    FunctionArn,
};
use super::keys::{Key, StackSide, Values, KEYS};
use super::types::{
    AlarmSettings, Architecture, CommonConfig, IdempotencyTable, SourceConfig, StackConfig,
    StreamCapacity, TargetConfig, TargetOutputs, TargetRegion,
};
use crate::names::{self, NamePrefix};
use crate::template::PROJECT;

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

pub(super) fn set_line(name: &str, example: &str, secret: bool, stack: &str) -> String {
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
            .or_else(|| key.spec().default())
    }

    fn required(&self, key: Key) -> Result<String, ConfigError> {
        self.optional(key)
            .ok_or_else(|| self.missing(key.into(), &key.spec().full_description()))
    }

    /// A number within the range of its key's row.
    fn number<T>(&self, key: Key) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + Into<i64> + Copy,
    {
        let raw = self.required(key)?;
        let value: T = raw
            .parse()
            .map_err(|_| self.invalid(key, &raw, "not a whole number"))?;
        if let Some((min, max)) = key.spec().values.range() {
            if !(min..=max).contains(&value.into()) {
                return Err(self.invalid(key, &raw, format!("must be between {min} and {max}")));
            }
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

    /// One of the values its key's row allows.
    fn one_of(&self, key: Key) -> Result<String, ConfigError> {
        let raw = self.required(key)?;
        let allowed = match key.spec().values {
            Values::OneOf { allowed, .. } => allowed,
            _ => &[],
        };
        if allowed.contains(&raw.as_str()) {
            Ok(raw)
        } else {
            Err(self.invalid(key, &raw, format!("must be one of {}", allowed.join(", "))))
        }
    }

    /// One of the numbers its key's row allows.
    fn number_in(&self, key: Key, why: &str) -> Result<u32, ConfigError> {
        let raw = self.required(key)?;
        let allowed = match key.spec().values {
            Values::NumberIn { allowed, .. } => allowed,
            _ => &[],
        };
        let value: u32 = raw
            .parse()
            .map_err(|_| self.invalid(key, &raw, "not a whole number"))?;
        if allowed.contains(&value) {
            Ok(value)
        } else {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            Err(self.invalid(key, &raw, format!("{why} {}", or_list(&list))))
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
        match self.one_of(Key::Side)?.as_str() {
            "source" => Ok(StackSide::Source),
            _ => Ok(StackSide::Target),
        }
    }

    fn common(&self, side: StackSide) -> Result<CommonConfig, ConfigError> {
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
        let architecture = match self.one_of(Key::Architecture)?.as_str() {
            "arm64" => Architecture::Arm64,
            _ => Architecture::X86_64,
        };
        let retention = self.number_in(Key::LogRetentionDays, "CloudWatch accepts")?;
        let prefix = self.required(Key::NamePrefix)?;
        let name_prefix = NamePrefix::parse(&prefix)
            .map_err(|reason| self.invalid(Key::NamePrefix, &prefix, reason))?;
        let role_name = match self.raw(Key::CrossAccountRoleName) {
            Some(name) => name.to_string(),
            None => names::default_cross_account_role_name(&name_prefix),
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
        let log_level = self.one_of(Key::LogLevel)?;
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
            alarms: self.alarm_settings(side)?,
        })
    }

    fn alarm_settings(&self, side: StackSide) -> Result<AlarmSettings, ConfigError> {
        let email = self.raw(Key::AlarmEmail).map(str::to_string);
        if let Some(address) = &email {
            check_email(address)
                .map_err(|reason| self.invalid(Key::AlarmEmail, address, reason))?;
        }
        let period_seconds: u32 = self.number(Key::AlarmPeriodSeconds)?;
        // Lambda's and SQS's metrics have one data point a minute: a shorter period or one
        // between minutes would leave periods without data.
        if !period_seconds.is_multiple_of(60) {
            return Err(self.invalid(
                Key::AlarmPeriodSeconds,
                &period_seconds.to_string(),
                "must be a whole number of minutes (a multiple of 60)",
            ));
        }
        let mut thresholds = BTreeMap::new();
        for spec in KEYS {
            if spec.alarm_threshold && spec.scope.includes(side) {
                thresholds.insert(spec.key, self.number(spec.key)?);
            }
        }
        Ok(AlarmSettings {
            email,
            period_seconds,
            thresholds,
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
        let seconds: u32 = self.number(Key::AlarmIteratorAgeSeconds)?;
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
            common: self.common(StackSide::Target)?,
            max_session_seconds: self.number(Key::CrossAccountRoleMaxSessionSeconds)?,
            memory_mb: self.number(Key::TargetMemoryMb)?,
            timeout_seconds: self.number(Key::TargetTimeoutSeconds)?,
            dedup_capacity: self.number(Key::TargetDedupCapacity)?,
            fault_injection: self.flag(Key::FaultInjection)?,
            reserved_concurrency: self.reserved_concurrency()?,
            idempotency: self.idempotency()?,
            artifact: self.target_artifact()?,
            sample_effects_table: self.flag(Key::SampleEffectsTable)?,
        })
    }

    /// `targetArtifact`, when set: a path to a zip, as `fn::fileArchive` takes it.
    fn target_artifact(&self) -> Result<Option<String>, ConfigError> {
        let Some(raw) = self.raw(Key::TargetArtifact) else {
            return Ok(None);
        };
        if raw.ends_with(".zip") && !raw.ends_with("/.zip") {
            return Ok(Some(raw.to_string()));
        }
        Err(self.invalid(
            Key::TargetArtifact,
            raw,
            "must name a .zip file (cargo lambda build --release --output-format zip writes target/lambda/<binary>/bootstrap.zip)",
        ))
    }

    /// The idempotency table's settings when `idempotencyStore` is on. Its other keys are
    /// checked either way, so a bad value is refused before the store is turned on.
    fn idempotency(&self) -> Result<Option<IdempotencyTable>, ConfigError> {
        let table = IdempotencyTable {
            ttl_hours: self.number(Key::IdempotencyTtlHours)?,
            deletion_protection: self.flag(Key::IdempotencyTableDeletionProtection)?,
        };
        Ok(self.flag(Key::IdempotencyStore)?.then_some(table))
    }

    /// `None` for -1 (no reservation). 0 is refused: a function with no concurrency is
    /// throttled on every Invoke, so the relay could deliver nothing and every record would
    /// end, after the mapping's retries, in the dead-letter bucket.
    fn reserved_concurrency(&self) -> Result<Option<u32>, ConfigError> {
        let reserved: i64 = self.number(Key::TargetReservedConcurrency)?;
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
        Ok(match self.one_of(Key::StreamMode)?.as_str() {
            "PROVISIONED" => StreamCapacity::Provisioned {
                shards: self.number(Key::ShardCount)?,
            },
            _ => StreamCapacity::OnDemand,
        })
    }

    fn maximum_record_age_seconds(&self) -> Result<i32, ConfigError> {
        let age: i32 = self.number(Key::MaximumRecordAgeSeconds)?;
        let (_, max) = Key::MaximumRecordAgeSeconds
            .spec()
            .values
            .range()
            .unwrap_or_default();
        if (0..60).contains(&age) {
            return Err(self.invalid(
                Key::MaximumRecordAgeSeconds,
                &age.to_string(),
                format!("must be -1 or between 60 and {max}"),
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
        let mut common = self.common(StackSide::Source)?;
        let (target, target_region) = self.target_placement(&common)?;
        let stream_retention_hours = self.number(Key::StreamRetentionHours)?;
        let maximum_record_age_seconds = self.maximum_record_age_seconds()?;
        Ok(SourceConfig {
            target,
            target_region,
            session_seconds: self.number(Key::AssumeRoleSessionSeconds)?,
            schedule_expression: self.schedule_expression()?,
            stream_capacity: self.stream_capacity()?,
            stream_retention_hours,
            stream_max_record_size_kib: self.number(Key::StreamMaxRecordSizeKib)?,
            dead_letter_retention_days: self.number(Key::DeadLetterRetentionDays)?,
            dead_letter_bucket_force_destroy: self.flag(Key::DeadLetterBucketForceDestroy)?,
            records_per_invocation: self.number(Key::ProducerRecordsPerInvocation)?,
            padding_bytes: self.number(Key::ProducerPaddingBytes)?,
            max_put_attempts: self.number(Key::ProducerMaxPutAttempts)?,
            retry_base_delay_ms: self.number(Key::ProducerRetryBaseDelayMs)?,
            producer_aggregation: self.flag(Key::ProducerAggregation)?,
            batch_size: self.number(Key::BatchSize)?,
            batching_window_seconds: self.number(Key::BatchingWindowSeconds)?,
            parallelization_factor: self.number(Key::ParallelizationFactor)?,
            maximum_retry_attempts: self.number(Key::MaximumRetryAttempts)?,
            maximum_record_age_seconds,
            starting_position: self.one_of(Key::StartingPosition)?,
            relay_max_concurrent_invocations: self.number(Key::RelayMaxConcurrentInvocations)?,
            relay_max_records_per_invocation: self.number(Key::RelayMaxRecordsPerInvocation)?,
            relay_poison_split_depth: self.number(Key::RelayPoisonSplitDepth)?,
            memory_mb: self.number(Key::RelayMemoryMb)?,
            timeout_seconds: self.number(Key::RelayTimeoutSeconds)?,
            common: {
                let seconds = self.iterator_age_alarm_seconds(
                    maximum_record_age_seconds,
                    stream_retention_hours,
                )?;
                common
                    .alarms
                    .thresholds
                    .insert(Key::AlarmIteratorAgeSeconds, seconds);
                common
            },
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

/// Checks `PULUMI_PROJECT` (keys are namespaced by it).
pub fn check_project(project: &str) -> Result<(), ConfigError> {
    if project == PROJECT {
        Ok(())
    } else {
        Err(ConfigError::WrongProject(project.to_string()))
    }
}

/// `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::or_list;

    /// The allowed values in an error read as a sentence: `a`, `a or b`, `a, b or c`.
    #[test]
    fn allowed_values_are_listed_as_a_sentence() {
        let list =
            |items: &[&str]| or_list(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["1"]), "1");
        assert_eq!(list(&["1", "3"]), "1 or 3");
        assert_eq!(list(&["1", "3", "5"]), "1, 3 or 5");
    }
}
