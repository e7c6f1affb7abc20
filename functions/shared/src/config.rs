//! Environment variable names and typed parsing.
//!
//! Every name a function reads is a constant here, and each function has a list of the names
//! it reads (`PRODUCER_VARIABLES`, ...). The Pulumi program sets exactly those names, and its
//! tests check that the two agree.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use tracing::level_filters::LevelFilter;

/// Kinesis stream the producer writes to (name or ARN).
pub const STREAM_NAME: &str = "STREAM_NAME";
/// Records the producer writes per scheduled invocation.
pub const PRODUCER_RECORDS_PER_INVOCATION: &str = "PRODUCER_RECORDS_PER_INVOCATION";
/// Size of the filler text in each record's body, in bytes (0 = none).
pub const PRODUCER_PADDING_BYTES: &str = "PRODUCER_PADDING_BYTES";
/// PutRecords attempts for entries that Kinesis refused (1 = no retry).
pub const PRODUCER_MAX_PUT_ATTEMPTS: &str = "PRODUCER_MAX_PUT_ATTEMPTS";
/// First backoff between PutRecords attempts, in milliseconds; doubles each attempt.
pub const PRODUCER_RETRY_BASE_DELAY_MS: &str = "PRODUCER_RETRY_BASE_DELAY_MS";
/// Whether the producer packs its records into KPL aggregates (`shared::kpl`).
pub const PRODUCER_AGGREGATION: &str = "PRODUCER_AGGREGATION";

/// ARN of the role in the target account that the relay assumes.
pub const TARGET_ROLE_ARN: &str = "TARGET_ROLE_ARN";
/// External id the target account's trust policy requires.
pub const TARGET_EXTERNAL_ID: &str = "TARGET_EXTERNAL_ID";
/// Name or ARN of the function in the target account.
pub const TARGET_FUNCTION_NAME: &str = "TARGET_FUNCTION_NAME";
/// Region of the target function (and of the STS endpoint used to reach it).
pub const TARGET_REGION: &str = "TARGET_REGION";
/// Lifetime of the assumed-role session, in seconds ([`ASSUME_ROLE_SESSION_SECONDS_SETTING`]).
pub const ASSUME_ROLE_SESSION_SECONDS: &str = "ASSUME_ROLE_SESSION_SECONDS";
/// Name of the S3 bucket the relay writes the records it gives up on to (with their data).
pub const DEAD_LETTER_BUCKET: &str = "DEAD_LETTER_BUCKET";
/// Synchronous target invocations the relay runs at once for one batch.
pub const RELAY_MAX_CONCURRENT_INVOCATIONS: &str = "RELAY_MAX_CONCURRENT_INVOCATIONS";
/// Largest request payload the relay sends in one Invoke, in bytes (at most Lambda's 6 MB).
pub const RELAY_MAX_PAYLOAD_BYTES: &str = "RELAY_MAX_PAYLOAD_BYTES";
/// Most records in one Invoke, which turns on key-ordered delivery: the records of one partition
/// key reach the target in order, different keys concurrently. Unset or 0 (the default): as
/// many records as fit one Invoke request ([`RELAY_MAX_RECORDS_PER_INVOCATION_SETTING`]).
pub const RELAY_MAX_RECORDS_PER_INVOCATION: &str = "RELAY_MAX_RECORDS_PER_INVOCATION";
/// How many times the relay halves an envelope the target function failed
/// (`X-Amz-Function-Error`) to isolate its poison records; 0: never, the whole envelope is
/// retried ([`RELAY_POISON_SPLIT_DEPTH_SETTING`]).
pub const RELAY_POISON_SPLIT_DEPTH: &str = "RELAY_POISON_SPLIT_DEPTH";

/// Records whose id the target remembers, to recognise a redelivery (per container).
pub const TARGET_DEDUP_CAPACITY: &str = "TARGET_DEDUP_CAPACITY";
/// `true` lets a record's body ask the target to fail (demo and tests only); default `false`.
pub const TARGET_FAULT_INJECTION: &str = "TARGET_FAULT_INJECTION";
/// The DynamoDB table a target built on the target library keeps its idempotency records in
/// (in the target's own account). Unset or empty: no durable store, so a redelivered record runs
/// its handler again.
pub const IDEMPOTENCY_TABLE: &str = "IDEMPOTENCY_TABLE";
/// How long the idempotency store keeps a completed record's answer, in hours
/// ([`IDEMPOTENCY_TTL_HOURS_SETTING`]).
pub const IDEMPOTENCY_TTL_HOURS: &str = "IDEMPOTENCY_TTL_HOURS";
/// The idempotency table's hash key attribute (a string: the record's idempotency key); the
/// target stack declares the table with it and the target library writes it.
pub const IDEMPOTENCY_KEY_ATTRIBUTE: &str = "id";
/// The idempotency table's TTL attribute (a number, epoch seconds): DynamoDB deletes an item some
/// time after it passes.
pub const IDEMPOTENCY_TTL_ATTRIBUTE: &str = "expires_at";
/// What a target may do on its idempotency table, and nothing else there: exactly what the
/// target library's DynamoDB store sends (its tests check the requests against this list), and
/// what the target stack grants the target role. The store claims and completes a delivery's keys
/// with TransactWriteItems, which IAM authorizes per action as the underlying PutItem (a claim),
/// UpdateItem (a completion) and DeleteItem (a released claim) ("Using IAM with DynamoDB
/// transactions", DynamoDB developer guide; TransactWriteItems is no IAM action of its own); its
/// conditions ride on those actions (no ConditionCheckItem), and it reads the items of keys whose
/// claim failed without returning them with one BatchGetItem. No GetItem, Scan, Query, or
/// table-level action.
pub const IDEMPOTENCY_TABLE_ACTIONS: [&str; 4] = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchGetItem",
];

/// The DynamoDB table the sample target counts its effects in (the target stack's
/// `sampleEffectsTable`, a test device of the local run and the soak): one item per produced
/// record it answered `ok`. Unset or empty: the sample has no effect besides its log line.
pub const SAMPLE_EFFECTS_TABLE: &str = "SAMPLE_EFFECTS_TABLE";
/// The effects table's hash key attribute (a string: the produced record's id).
pub const SAMPLE_EFFECTS_KEY_ATTRIBUTE: &str = "id";
/// The effects table's count of the times a record's effect ran (a number, `ADD` 1 each time).
pub const SAMPLE_EFFECTS_APPLIED_ATTRIBUTE: &str = "applied";
/// The effects table's string set of the delivery ids under which a record's effect ran.
pub const SAMPLE_EFFECTS_DELIVERIES_ATTRIBUTE: &str = "deliveries";
/// The effects table's delivery id under which a record's effect ran first (set once): the set
/// above has no order, and the soak attributes a repeat by the delivery of the first run.
pub const SAMPLE_EFFECTS_FIRST_DELIVERY_ATTRIBUTE: &str = "first_delivery";
/// The effects table's attributes by role, for `infra --sample-effects-attributes` (the soak
/// reads the table with them instead of typing them again).
pub const SAMPLE_EFFECTS_ATTRIBUTES: &[(&str, &str)] = &[
    ("key", SAMPLE_EFFECTS_KEY_ATTRIBUTE),
    ("applied", SAMPLE_EFFECTS_APPLIED_ATTRIBUTE),
    ("deliveries", SAMPLE_EFFECTS_DELIVERIES_ATTRIBUTE),
    ("first_delivery", SAMPLE_EFFECTS_FIRST_DELIVERY_ATTRIBUTE),
];

/// The application log level of every function, which Lambda sets from the function's
/// `loggingConfig.applicationLogLevel` (the stack key `logLevel`): the template's environment
/// does not hold it, so it is in none of the lists below. Read by [`log_level`].
pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";

/// Lambda's application log levels, most detailed first (what `loggingConfig.applicationLogLevel`
/// accepts and Lambda passes on in [`AWS_LAMBDA_LOG_LEVEL`]), each with the level the functions
/// log at. tracing has nothing above ERROR, so FATAL logs at ERROR; Lambda then drops those
/// lines too, as they are below FATAL.
pub const APPLICATION_LOG_LEVELS: [(&str, LevelFilter); 6] = [
    ("TRACE", LevelFilter::TRACE),
    ("DEBUG", LevelFilter::DEBUG),
    ("INFO", LevelFilter::INFO),
    ("WARN", LevelFilter::WARN),
    ("ERROR", LevelFilter::ERROR),
    ("FATAL", LevelFilter::ERROR),
];

/// The level a function logs at, from [`AWS_LAMBDA_LOG_LEVEL`] (any case): INFO when it is
/// unset, which is Lambda's default. A value that is not one of [`APPLICATION_LOG_LEVELS`] is an
/// error naming the variable and the levels.
pub fn log_level(source: &dyn Source) -> Result<LevelFilter, ConfigError> {
    let Some(raw) = Reader::new(source).optional(AWS_LAMBDA_LOG_LEVEL) else {
        return Ok(LevelFilter::INFO);
    };
    let known = APPLICATION_LOG_LEVELS.iter();
    match known
        .clone()
        .find(|(name, _)| name.eq_ignore_ascii_case(&raw))
    {
        Some((_, level)) => Ok(*level),
        None => Err(ConfigError::Invalid {
            name: AWS_LAMBDA_LOG_LEVEL,
            value: raw,
            reason: format!(
                "not one of Lambda's application log levels ({})",
                known.map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// Every variable the producer reads.
pub const PRODUCER_VARIABLES: &[&str] = &[
    STREAM_NAME,
    PRODUCER_RECORDS_PER_INVOCATION,
    PRODUCER_PADDING_BYTES,
    PRODUCER_MAX_PUT_ATTEMPTS,
    PRODUCER_RETRY_BASE_DELAY_MS,
    PRODUCER_AGGREGATION,
];

/// Every variable the relay reads.
pub const RELAY_VARIABLES: &[&str] = &[
    TARGET_ROLE_ARN,
    TARGET_EXTERNAL_ID,
    TARGET_FUNCTION_NAME,
    TARGET_REGION,
    ASSUME_ROLE_SESSION_SECONDS,
    DEAD_LETTER_BUCKET,
    RELAY_MAX_CONCURRENT_INVOCATIONS,
    RELAY_MAX_PAYLOAD_BYTES,
    RELAY_MAX_RECORDS_PER_INVOCATION,
    RELAY_POISON_SPLIT_DEPTH,
];

/// Every variable the target reads.
pub const TARGET_VARIABLES: &[&str] = &[TARGET_DEDUP_CAPACITY, TARGET_FAULT_INJECTION];

/// The variables the target function gets besides [`TARGET_VARIABLES`] when its stack creates
/// the idempotency table (unset otherwise: the function then keeps no durable store).
pub const IDEMPOTENCY_VARIABLES: [&str; 2] = [IDEMPOTENCY_TABLE, IDEMPOTENCY_TTL_HOURS];

/// A numeric setting a function reads: its variable, the value it takes when the variable is
/// unset and the values it accepts. One definition serves the function's start-up check
/// ([`Reader::setting`]) and the Pulumi program, whose stack key that feeds the variable takes
/// its default and range from here (the program refuses a bad key before deploying; the
/// function refuses a bad variable at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberSetting {
    /// The environment variable.
    pub variable: &'static str,
    /// The value when the variable is unset or empty.
    pub default: u32,
    /// The values accepted.
    pub range: std::ops::RangeInclusive<u32>,
}

impl NumberSetting {
    /// A setting read from `variable`, `default` when unset, refused outside `range`.
    pub const fn new(
        variable: &'static str,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
    ) -> Self {
        Self {
            variable,
            default,
            range,
        }
    }
}

/// A `true`/`false` setting a function reads, with its default (see [`NumberSetting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSetting {
    /// The environment variable.
    pub variable: &'static str,
    /// The value when the variable is unset or empty.
    pub default: bool,
}

/// Session lengths the relay may ask for, in seconds. STS accepts 900 s and up; the relay
/// assumes the cross-account role with its own execution-role credentials, which is role
/// chaining, and STS caps a chained session at one hour whatever the role's
/// MaxSessionDuration ("The requested DurationSeconds exceeds the 1 hour session limit for
/// roles assumed by role chaining").
pub const ASSUME_ROLE_SESSION_SECONDS_SETTING: NumberSetting =
    NumberSetting::new(ASSUME_ROLE_SESSION_SECONDS, 3600, 900..=3600);

/// Records per producer invocation: up to 20 PutRecords calls, well within its 30 s.
pub const PRODUCER_RECORDS_PER_INVOCATION_SETTING: NumberSetting =
    NumberSetting::new(PRODUCER_RECORDS_PER_INVOCATION, 1, 1..=10_000);
/// Filler per record: a Kinesis record is at most 1 MiB, and the record has other fields.
pub const PRODUCER_PADDING_BYTES_SETTING: NumberSetting =
    NumberSetting::new(PRODUCER_PADDING_BYTES, 0, 0..=1_000_000);
/// PutRecords attempts for refused entries (1 = no retry).
pub const PRODUCER_MAX_PUT_ATTEMPTS_SETTING: NumberSetting =
    NumberSetting::new(PRODUCER_MAX_PUT_ATTEMPTS, 5, 1..=20);
/// First backoff between PutRecords attempts, in milliseconds.
pub const PRODUCER_RETRY_BASE_DELAY_MS_SETTING: NumberSetting =
    NumberSetting::new(PRODUCER_RETRY_BASE_DELAY_MS, 100, 0..=10_000);
/// Whether the producer writes its records as KPL aggregates: off unless a stack turns it on
/// (so that the demo and the soak can run the relay's de-aggregation with the project's own
/// binaries; a plain record per user record is what the stream's other readers expect).
pub const PRODUCER_AGGREGATION_SETTING: FlagSetting = FlagSetting {
    variable: PRODUCER_AGGREGATION,
    default: false,
};
/// Envelopes the relay has in flight per batch.
pub const RELAY_MAX_CONCURRENT_INVOCATIONS_SETTING: NumberSetting =
    NumberSetting::new(RELAY_MAX_CONCURRENT_INVOCATIONS, 4, 1..=64);
/// Records per Invoke in key-ordered delivery: 0 turns it off (the default); a batch holds at
/// most 10,000 records (the event source mapping's largest batch), so more would never split one.
pub const RELAY_MAX_RECORDS_PER_INVOCATION_SETTING: NumberSetting =
    NumberSetting::new(RELAY_MAX_RECORDS_PER_INVOCATION, 0, 0..=10_000);
/// Halvings of a function-failed envelope, whose records are user records once KPL aggregates
/// are de-aggregated: 7 isolates one record in an envelope of up to 128 (2^7) records, so in a
/// batch of the default 100 plain records; 14 (2^14 = 16,384) does so in the largest batch
/// (10,000 plain records), or in a batch of aggregates holding that many user records in all.
pub const RELAY_POISON_SPLIT_DEPTH_SETTING: NumberSetting =
    NumberSetting::new(RELAY_POISON_SPLIT_DEPTH, 7, 0..=14);
/// Record ids the target remembers per container (0: none).
pub const TARGET_DEDUP_CAPACITY_SETTING: NumberSetting =
    NumberSetting::new(TARGET_DEDUP_CAPACITY, 10_000, 0..=1_000_000);
/// Whether a record may ask the target to fail: off unless a stack turns it on (demo only).
pub const TARGET_FAULT_INJECTION_SETTING: FlagSetting = FlagSetting {
    variable: TARGET_FAULT_INJECTION,
    default: false,
};

/// How long a completed record's answer is kept, in hours. It must exceed the source stream's
/// retention (24 h by default, at most 8,760 h) plus the time within which dead letters may be
/// redriven, or a late redelivery runs the handler again: 14 days by default, at least 25 hours
/// (just over the default retention), at most two years.
pub const IDEMPOTENCY_TTL_HOURS_SETTING: NumberSetting =
    NumberSetting::new(IDEMPOTENCY_TTL_HOURS, 336, 25..=17_520);

/// The largest Invoke request the relay sends: one byte under Lambda's limit, which a request
/// must be *smaller* than.
pub const MAX_INVOKE_REQUEST_BYTES: usize = crate::limits::LAMBDA_SYNC_PAYLOAD_LIMIT - 1;

/// A variable that is missing or does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {name} is not set; {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Where configuration is read from: the process environment in a function, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).map(|v| v.to_string())
    }
}

/// Typed reads over a [`Source`]; every error names the variable.
pub struct Reader<'a> {
    source: &'a dyn Source,
}

impl<'a> Reader<'a> {
    pub fn new(source: &'a dyn Source) -> Self {
        Self { source }
    }

    /// A variable that must be set and non-empty.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        match self.source.get(name) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(ConfigError::Missing {
                name,
                hint: "the Pulumi program sets it on the function; set it when running locally",
            }),
        }
    }

    /// A variable that may be absent or empty.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.source
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A number within `range`, or `default` when absent.
    pub fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display + Copy,
        T::Err: Display,
    {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        let value: T = raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            value: raw.clone(),
            reason: format!("not a whole number ({e})"),
        })?;
        if !range.contains(&value) {
            return Err(ConfigError::Invalid {
                name,
                value: raw,
                reason: format!("must be between {} and {}", range.start(), range.end()),
            });
        }
        Ok(value)
    }

    /// A [`NumberSetting`]: its variable within its range, or its default when absent.
    pub fn setting(&self, setting: &NumberSetting) -> Result<u32, ConfigError> {
        self.number(setting.variable, setting.default, setting.range.clone())
    }

    /// A [`FlagSetting`]: its variable as [`Reader::flag`] reads it, or its default when absent.
    pub fn flag_setting(&self, setting: &FlagSetting) -> Result<bool, ConfigError> {
        self.flag(setting.variable, setting.default)
    }

    /// `true` or `false` (also `1`/`0`, `yes`/`no`), or `default` when absent.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name,
                value: raw,
                reason: "must be true or false".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn missing_required_variable_is_named() {
        let source = env(&[]);
        let err = Reader::new(&source).required(STREAM_NAME).unwrap_err();
        assert!(err.to_string().contains("STREAM_NAME is not set"), "{err}");
    }

    #[test]
    fn blank_required_variable_counts_as_missing() {
        let source = env(&[(STREAM_NAME, "  ")]);
        assert!(matches!(
            Reader::new(&source).required(STREAM_NAME),
            Err(ConfigError::Missing {
                name: "STREAM_NAME",
                ..
            })
        ));
    }

    #[test]
    fn a_required_variable_is_read_without_surrounding_blanks() {
        let source = env(&[(STREAM_NAME, " orders \n")]);
        assert_eq!(
            Reader::new(&source).required(STREAM_NAME).unwrap(),
            "orders"
        );
    }

    #[test]
    fn the_process_environment_is_read_as_it_is() {
        // PATH is set for every test run; the other name is set for none.
        let path = std::env::var("PATH").expect("PATH is set");
        assert_eq!(ProcessEnv.get("PATH"), Some(path));
        assert_eq!(ProcessEnv.get("SHARED_CONFIG_TEST_NEVER_SET"), None);
    }

    #[test]
    fn the_largest_invoke_request_is_the_largest_lambda_accepts() {
        // Lambda: a synchronous request "must be smaller than" its limit.
        let lambda_accepts = |bytes: usize| bytes < crate::limits::LAMBDA_SYNC_PAYLOAD_LIMIT;
        assert!(lambda_accepts(MAX_INVOKE_REQUEST_BYTES));
        assert!(!lambda_accepts(MAX_INVOKE_REQUEST_BYTES + 1));
    }

    #[test]
    fn numbers_use_default_and_check_range() {
        let source = env(&[
            (PRODUCER_MAX_PUT_ATTEMPTS, "0"),
            (PRODUCER_PADDING_BYTES, "x1"),
        ]);
        let reader = Reader::new(&source);
        assert_eq!(
            reader
                .number(PRODUCER_RECORDS_PER_INVOCATION, 1u32, 1..=10)
                .unwrap(),
            1
        );
        let err = reader
            .number(PRODUCER_MAX_PUT_ATTEMPTS, 5u32, 1..=10)
            .unwrap_err();
        assert!(err.to_string().contains("between 1 and 10"), "{err}");
        let err = reader
            .number(PRODUCER_PADDING_BYTES, 0usize, 0..=10)
            .unwrap_err();
        assert!(
            err.to_string().contains("PRODUCER_PADDING_BYTES=\"x1\""),
            "{err}"
        );
    }

    #[test]
    fn a_setting_is_read_with_its_own_default_and_range() {
        let unset = env(&[]);
        let setting = &PRODUCER_MAX_PUT_ATTEMPTS_SETTING;
        assert_eq!(Reader::new(&unset).setting(setting), Ok(5));
        let set = env(&[(PRODUCER_MAX_PUT_ATTEMPTS, "20")]);
        assert_eq!(Reader::new(&set).setting(setting), Ok(20));
        let out = env(&[(PRODUCER_MAX_PUT_ATTEMPTS, "21")]);
        let err = Reader::new(&out).setting(setting).unwrap_err().to_string();
        assert!(
            err.contains("PRODUCER_MAX_PUT_ATTEMPTS") && err.contains("between 1 and 20"),
            "{err}"
        );
        let flag = &TARGET_FAULT_INJECTION_SETTING;
        assert_eq!(Reader::new(&unset).flag_setting(flag), Ok(false));
        let on = env(&[(TARGET_FAULT_INJECTION, "true")]);
        assert_eq!(Reader::new(&on).flag_setting(flag), Ok(true));
    }

    #[test]
    fn every_default_is_within_its_range() {
        for setting in [
            ASSUME_ROLE_SESSION_SECONDS_SETTING,
            PRODUCER_RECORDS_PER_INVOCATION_SETTING,
            PRODUCER_PADDING_BYTES_SETTING,
            PRODUCER_MAX_PUT_ATTEMPTS_SETTING,
            PRODUCER_RETRY_BASE_DELAY_MS_SETTING,
            RELAY_MAX_CONCURRENT_INVOCATIONS_SETTING,
            RELAY_MAX_RECORDS_PER_INVOCATION_SETTING,
            RELAY_POISON_SPLIT_DEPTH_SETTING,
            TARGET_DEDUP_CAPACITY_SETTING,
        ] {
            assert!(
                setting.range.contains(&setting.default),
                "{}",
                setting.variable
            );
        }
    }

    #[test]
    fn flags_accept_common_spellings_and_refuse_others() {
        let source = env(&[(TARGET_FAULT_INJECTION, "Yes"), (STREAM_NAME, "maybe")]);
        let reader = Reader::new(&source);
        assert!(reader.flag(TARGET_FAULT_INJECTION, false).unwrap());
        let err = reader.flag(STREAM_NAME, false).unwrap_err();
        assert!(
            err.to_string()
                .contains("STREAM_NAME=\"maybe\" is invalid: must be true or false"),
            "{err}"
        );
        assert!(!reader.flag(TARGET_DEDUP_CAPACITY, false).unwrap());
        for (set, expected) in [
            ("true", true),
            ("1", true),
            ("false", false),
            ("0", false),
            ("no", false),
            ("NO", false),
        ] {
            let source = env(&[(TARGET_FAULT_INJECTION, set)]);
            let read = Reader::new(&source).flag(TARGET_FAULT_INJECTION, !expected);
            assert_eq!(read, Ok(expected), "{set}");
        }
    }

    #[test]
    fn the_log_level_is_lambdas_application_log_level() {
        let level = |value: &'static str| log_level(&env(&[(AWS_LAMBDA_LOG_LEVEL, value)]));
        // Each of Lambda's names, in any case; tracing has nothing above ERROR.
        assert_eq!(level("FATAL"), Ok(LevelFilter::ERROR));
        let names = APPLICATION_LOG_LEVELS.iter().copied();
        for (value, expected) in names.chain([
            ("debug", LevelFilter::DEBUG),
            (" Warn ", LevelFilter::WARN),
            ("trace", LevelFilter::TRACE),
        ]) {
            assert_eq!(level(value), Ok(expected), "{value}");
        }
        // Unset or empty: Lambda's default.
        assert_eq!(log_level(&env(&[])), Ok(LevelFilter::INFO));
        assert_eq!(level(""), Ok(LevelFilter::INFO));
        assert_eq!(
            level("verbose").unwrap_err().to_string(),
            "environment variable AWS_LAMBDA_LOG_LEVEL=\"verbose\" is invalid: not one of \
             Lambda's application log levels (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)"
        );
        // The old tracing filters are not levels.
        assert!(level("relay=debug,info").is_err());
    }

    #[test]
    fn variable_lists_have_no_duplicates() {
        for list in [PRODUCER_VARIABLES, RELAY_VARIABLES, TARGET_VARIABLES] {
            let mut sorted = list.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len());
        }
    }
}
