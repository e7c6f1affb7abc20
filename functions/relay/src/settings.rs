//! The relay's configuration.

use std::fmt;
use std::time::Duration;

use shared::config::{self, ConfigError, Reader, Source};

/// An external id: kept out of logs and debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalId(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub target_role_arn: String,
    pub external_id: ExternalId,
    pub target_function: String,
    /// Region of the target function; `None` = the relay's own region.
    pub target_region: Option<String>,
    pub session_length: Duration,
    /// The dead-letter bucket's name.
    pub dead_letter_bucket: String,
    pub max_concurrent_invocations: usize,
    pub max_payload_bytes: usize,
    /// `Some(n)`: key-ordered delivery, at most `n` records per Invoke; `None`: as many records
    /// as fit one Invoke, envelopes in batch order (see [`crate::batch`]).
    pub max_records_per_invocation: Option<usize>,
    /// How many times an envelope the target function failed is halved to isolate its poison
    /// records (0: never; see [`crate::batch`]).
    pub poison_split_depth: usize,
    /// Prefix of the STS session name, so CloudTrail in the target account shows who called.
    pub session_name_prefix: String,
}

impl RelaySettings {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let read = Reader::new(source);
        let target_role_arn = read.required(config::TARGET_ROLE_ARN)?;
        if !(target_role_arn.starts_with("arn:") && target_role_arn.contains(":role/")) {
            return Err(ConfigError::Invalid {
                name: config::TARGET_ROLE_ARN,
                value: target_role_arn,
                reason: "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)".into(),
            });
        }
        Ok(Self {
            target_role_arn,
            external_id: ExternalId(read.required(config::TARGET_EXTERNAL_ID)?),
            target_function: read.required(config::TARGET_FUNCTION_NAME)?,
            target_region: read.optional(config::TARGET_REGION),
            // Role chaining: STS refuses more than an hour (see the range's documentation).
            session_length: Duration::from_secs(u64::from(
                read.setting(&config::ASSUME_ROLE_SESSION_SECONDS_SETTING)?,
            )),
            dead_letter_bucket: read.required(config::DEAD_LETTER_BUCKET)?,
            max_concurrent_invocations: read
                .setting(&config::RELAY_MAX_CONCURRENT_INVOCATIONS_SETTING)?
                as usize,
            max_payload_bytes: read.number(
                config::RELAY_MAX_PAYLOAD_BYTES,
                config::MAX_INVOKE_REQUEST_BYTES,
                4096..=config::MAX_INVOKE_REQUEST_BYTES,
            )?,
            max_records_per_invocation: match read
                .setting(&config::RELAY_MAX_RECORDS_PER_INVOCATION_SETTING)?
            {
                0 => None,
                n => Some(n as usize),
            },
            poison_split_depth: read.setting(&config::RELAY_POISON_SPLIT_DEPTH_SETTING)? as usize,
            session_name_prefix: source
                .get("AWS_LAMBDA_FUNCTION_NAME")
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "relay".to_string()),
        })
    }

    /// `<function name>-<8 hex>`, within STS's 64-character limit and its character set.
    pub fn session_name(&self) -> String {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let prefix: String = self
            .session_name_prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "=,.@-_".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(55)
            .collect();
        format!("{prefix}-{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The settings read from [`full_env`] with `name` set to `value`.
    fn with(name: &'static str, value: &'static str) -> Result<RelaySettings, ConfigError> {
        let mut env = full_env();
        env.insert(name, value);
        RelaySettings::from_source(&env)
    }

    pub(crate) fn full_env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            (
                config::TARGET_ROLE_ARN,
                "arn:aws:iam::222222222222:role/cross-account-relay-invoker",
            ),
            (config::TARGET_EXTERNAL_ID, "s3cr3t-external-id"),
            (config::TARGET_FUNCTION_NAME, "cross-account-relay-target"),
            (
                config::DEAD_LETTER_BUCKET,
                "cross-account-relay-dead-letters-111111111111",
            ),
        ])
    }

    #[test]
    fn defaults_apply() {
        let settings = RelaySettings::from_source(&full_env()).unwrap();
        assert_eq!(settings.session_length, Duration::from_secs(3600));
        assert_eq!(settings.max_payload_bytes, 6 * 1024 * 1024 - 1);
        assert_eq!(settings.max_concurrent_invocations, 4);
        assert!(settings.target_region.is_none());
        assert_eq!(settings.max_records_per_invocation, None);
        assert_eq!(settings.poison_split_depth, 7);
    }

    #[test]
    fn poison_split_depth_is_read_and_bounded() {
        let depth = |value: &'static str| {
            with(config::RELAY_POISON_SPLIT_DEPTH, value).map(|s| s.poison_split_depth)
        };
        assert_eq!(depth("0"), Ok(0));
        assert_eq!(depth("14"), Ok(14));
        let err = depth("15").unwrap_err().to_string();
        assert!(err.contains("RELAY_POISON_SPLIT_DEPTH=\"15\""), "{err}");
    }

    #[test]
    fn records_per_invocation_turns_on_key_ordered_delivery_and_0_leaves_it_off() {
        let records = |value: &'static str| {
            with(config::RELAY_MAX_RECORDS_PER_INVOCATION, value)
                .map(|s| s.max_records_per_invocation)
        };
        assert_eq!(records("0"), Ok(None));
        assert_eq!(records(""), Ok(None));
        assert_eq!(records("1"), Ok(Some(1)));
        assert_eq!(records("10000"), Ok(Some(10_000)));
        let err = records("10001").unwrap_err().to_string();
        assert!(
            err.contains("RELAY_MAX_RECORDS_PER_INVOCATION=\"10001\"")
                && err.contains("must be between 0 and 10000"),
            "{err}"
        );
        assert!(records("-1").is_err());
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for name in [
            config::TARGET_ROLE_ARN,
            config::TARGET_EXTERNAL_ID,
            config::TARGET_FUNCTION_NAME,
            config::DEAD_LETTER_BUCKET,
        ] {
            let mut env = full_env();
            env.remove(name);
            let err = RelaySettings::from_source(&env).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{name} is not set")),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_name() {
        for not_a_role in [
            "cross-account-relay-invoker",
            "arn:aws:iam::222222222222:user/cross-account-relay-invoker",
            "iam::222222222222:role/cross-account-relay-invoker",
        ] {
            let err = with(config::TARGET_ROLE_ARN, not_a_role)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("TARGET_ROLE_ARN") && err.contains("must be an IAM role ARN"),
                "{not_a_role}: {err}"
            );
        }
        let err = with(config::ASSUME_ROLE_SESSION_SECONDS, "60")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ASSUME_ROLE_SESSION_SECONDS") && err.contains("between 900 and 3600"),
            "{err}"
        );
        // Above an hour STS refuses a chained AssumeRole: refused at start-up instead.
        assert!(with(config::ASSUME_ROLE_SESSION_SECONDS, "3601")
            .unwrap_err()
            .to_string()
            .contains("between 900 and 3600"));
        assert_eq!(
            with(config::ASSUME_ROLE_SESSION_SECONDS, "3600")
                .unwrap()
                .session_length,
            Duration::from_secs(3600)
        );
        assert!(with(config::RELAY_MAX_PAYLOAD_BYTES, "7000000").is_err());
    }

    #[test]
    fn the_largest_payload_is_one_byte_under_lambdas_limit() {
        let payload = |bytes: &'static str| {
            with(config::RELAY_MAX_PAYLOAD_BYTES, bytes).map(|s| s.max_payload_bytes)
        };
        assert_eq!(payload("6291455"), Ok(6_291_455));
        let err = payload("6291456").unwrap_err().to_string();
        assert!(err.contains("must be between 4096 and 6291455"), "{err}");
    }

    #[test]
    fn external_id_never_shows_in_debug_output() {
        let settings = RelaySettings::from_source(&full_env()).unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(
            debug.contains("external_id: ExternalId(<redacted>)"),
            "{debug}"
        );
        // What AssumeRole sends as sts:ExternalId.
        assert_eq!(settings.external_id.expose(), "s3cr3t-external-id");
    }

    #[test]
    fn session_name_is_valid_for_sts() {
        let mut env = full_env();
        env.insert(
            "AWS_LAMBDA_FUNCTION_NAME",
            "my relay/with:odd chars and a very long name that goes past sixty four",
        );
        let name = RelaySettings::from_source(&env).unwrap().session_name();
        assert!(name.len() <= 64, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c)),
            "{name}"
        );
        assert!(
            name.starts_with("my-relay-with-odd-chars-and-a-very-long-name-that-goes--"),
            "{name}"
        );
    }

    #[test]
    fn session_name_is_the_function_name_and_eight_hex_digits() {
        let session_name = |function: Option<&'static str>| {
            let mut env = full_env();
            env.extend(function.map(|f| ("AWS_LAMBDA_FUNCTION_NAME", f)));
            RelaySettings::from_source(&env).unwrap().session_name()
        };
        for (function, prefix) in [
            (Some("relay_fn.v2@x=y,z"), "relay_fn.v2@x=y,z"),
            (None, "relay"),
            (Some(""), "relay"),
        ] {
            let name = session_name(function);
            let (start, suffix) = name.rsplit_once('-').unwrap();
            assert_eq!(start, prefix, "{name}");
            assert!(
                suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
                "{name}"
            );
        }
    }
}
