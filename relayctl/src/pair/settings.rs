//! One stack's configuration as `pulumi config --json` prints it (project defaults applied,
//! secrets blinded), and what the pair reads from it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use infra::config::{ConfigError, Key, RawConfig, StackSide};
use infra::template::PROJECT;
use serde::Deserialize;

/// The `aws:` keys the pair reads.
pub const AWS_REGION: &str = "aws:region";
pub const AWS_PROFILE: &str = "aws:profile";

/// A stack's configuration: every key's value (secrets as Pulumi blinds them) and which are
/// secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSettings {
    /// The stack's name, as given to `--stack`.
    pub stack: String,
    values: BTreeMap<String, String>,
    secrets: BTreeSet<String>,
}

/// One entry of `pulumi config --json`.
#[derive(Deserialize)]
struct Entry {
    value: Option<String>,
    #[serde(default)]
    secret: bool,
}

/// `pulumi config --json` printed something that is not its JSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`pulumi config --json` for stack {stack} printed no config JSON ({reason})")]
pub struct UnreadableConfig {
    pub stack: String,
    pub reason: String,
}

/// The project-namespace key of `key`: `cross-account-relay:<name>`.
pub fn full_key(key: Key) -> String {
    format!("{PROJECT}:{}", key.name())
}

impl StackSettings {
    /// Reads `pulumi config --json --stack <stack>`.
    pub fn parse(stack: &str, json: &str) -> Result<Self, UnreadableConfig> {
        let entries: BTreeMap<String, Entry> =
            serde_json::from_str(json).map_err(|e| UnreadableConfig {
                stack: stack.to_string(),
                reason: e.to_string(),
            })?;
        let mut settings = Self {
            stack: stack.to_string(),
            ..Self::default()
        };
        for (key, entry) in entries {
            if entry.secret {
                settings.secrets.insert(key.clone());
            }
            if let Some(value) = entry.value {
                settings.values.insert(key, value);
            }
        }
        Ok(settings)
    }

    /// The settings of `pairs` (full keys), none secret: for tests.
    pub fn from_pairs(stack: &str, pairs: &[(&str, &str)]) -> Self {
        Self {
            stack: stack.to_string(),
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secrets: BTreeSet::new(),
        }
    }

    /// A key's value by its full name (`aws:region`); an empty value counts as unset, as the
    /// program reads it.
    pub fn raw(&self, full: &str) -> Option<&str> {
        self.values
            .get(full)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A key of the project namespace.
    pub fn get(&self, key: Key) -> Option<&str> {
        self.raw(&full_key(key))
    }

    /// Whether the stack sets `key` at all: a plain value that is not empty, or a secret (whose
    /// value `pulumi config --json` leaves out).
    pub fn is_set(&self, key: Key) -> bool {
        self.get(key).is_some() || self.is_secret(key)
    }

    /// Whether the stack stores `key` encrypted.
    pub fn is_secret(&self, key: Key) -> bool {
        self.secrets.contains(&full_key(key))
    }

    /// The side the stack deploys and the account it is pinned to, by the program's own rule.
    pub fn pinned_account(&self) -> Result<(StackSide, String), ConfigError> {
        let pairs: Vec<(&str, &str)> = self
            .values
            .iter()
            .filter(|(k, _)| !self.secrets.contains(*k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        RawConfig::from_pairs(&self.stack, &pairs).pinned_account()
    }

    /// The stack's region (`aws:region`).
    pub fn region(&self) -> Option<&str> {
        self.raw(AWS_REGION)
    }

    /// The stack's own AWS profile (`aws:profile`).
    pub fn profile(&self) -> Option<&str> {
        self.raw(AWS_PROFILE)
    }
}

/// The external id as `pulumi config get externalId` printed it: compared, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value `pulumi config get` printed, without its line end.
    pub fn from_output(stdout: &str) -> Self {
        Self(stdout.trim_end_matches(['\n', '\r']).to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<not shown>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
        "aws:region": {"value": "eu-west-1", "secret": false},
        "aws:profile": {"value": "", "secret": false},
        "cross-account-relay:side": {"value": "target", "secret": false},
        "cross-account-relay:targetAccountId": {"value": "222222222222", "secret": false},
        "cross-account-relay:externalId": {"secret": true},
        "cross-account-relay:tags": {"value": "{\"a\":1}", "objectValue": {"a": 1}, "secret": false},
        "cross-account-relay:unset": {"secret": false}
    }"#;

    #[test]
    fn config_json_is_read_with_which_keys_are_secret() {
        let s = StackSettings::parse("t", CONFIG).unwrap();
        assert_eq!(s.stack, "t");
        assert_eq!(s.region(), Some("eu-west-1"));
        assert_eq!(s.profile(), None, "an empty value is unset");
        assert_eq!(s.get(Key::Side), Some("target"));
        assert!(s.is_secret(Key::ExternalId));
        assert_eq!(
            s.get(Key::ExternalId),
            None,
            "Pulumi leaves a secret's value out"
        );
        assert!(s.is_set(Key::ExternalId), "a secret is set");
        assert!(s.is_set(Key::Side));
        assert!(!s.is_set(Key::NamePrefix));
        assert!(!s.is_set(Key::TargetStack));
        assert!(!s.is_secret(Key::Side));
        assert_eq!(s.raw("cross-account-relay:tags"), Some("{\"a\":1}"));
        assert_eq!(s.raw("cross-account-relay:unset"), None);
        assert_eq!(
            s.pinned_account().unwrap(),
            (StackSide::Target, "222222222222".into())
        );
    }

    #[test]
    fn a_blinded_secret_is_never_read_as_a_value() {
        // A stack whose account id is (oddly) a secret: the program's rule cannot read it here,
        // and says which key is missing rather than reading "[secret]".
        let json = r#"{"cross-account-relay:side": {"value": "source", "secret": false},
            "cross-account-relay:sourceAccountId": {"value": "[secret]", "secret": true}}"#;
        let err = StackSettings::parse("s", json)
            .unwrap()
            .pinned_account()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing config `cross-account-relay:sourceAccountId`"),
            "{err}"
        );
        assert!(
            err.contains("pulumi config set --stack s sourceAccountId"),
            "{err}"
        );
    }

    #[test]
    fn anything_but_config_json_is_refused_naming_the_stack() {
        let err = StackSettings::parse("t", "error: no stack").unwrap_err();
        assert_eq!(err.stack, "t");
        assert!(
            err.to_string()
                .starts_with("`pulumi config --json` for stack t printed no config JSON"),
            "{err}"
        );
    }

    #[test]
    fn a_secret_is_compared_but_never_shown() {
        let a = Secret::from_output("s3cret\n");
        assert_eq!(a, Secret::from_output("s3cret"));
        assert_ne!(a, Secret::from_output("other"));
        assert_eq!(format!("{a:?}"), "Secret(<not shown>)");
        assert_eq!(Secret::from_output("x\r\n"), Secret::from_output("x"));
    }

    #[test]
    fn full_keys_are_in_the_project_namespace() {
        assert_eq!(full_key(Key::NamePrefix), "cross-account-relay:namePrefix");
    }
}
