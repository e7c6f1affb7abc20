//! Stack configurations for the tests of the modules that build on the configuration: every
//! required key set, the name prefix `p`, and whatever keys a test adds.

use super::parse::RawConfig;
use super::types::{SourceConfig, StackConfig, TargetConfig};

const COMMON: &[(&str, &str)] = &[
    ("aws:region", "eu-west-1"),
    ("sourceAccountId", "111111111111"),
    ("targetAccountId", "222222222222"),
    ("externalId", "example-external-id"),
    ("namePrefix", "p"),
];

/// The configuration of a stack of `side` with `extra`, which must be accepted.
pub fn stack(side: &str, extra: &[(&str, &str)]) -> StackConfig {
    let mut pairs = COMMON.to_vec();
    pairs.push(("side", side));
    if side == "source" {
        pairs.push(("targetRoleArn", "arn:aws:iam::222222222222:role/x"));
        pairs.push(("targetFunctionName", "f"));
    }
    pairs.extend_from_slice(extra);
    match RawConfig::from_pairs("s", &pairs).stack_config() {
        Ok(config) => config,
        Err(e) => panic!("a test configuration is refused: {e}"),
    }
}

/// A source stack's configuration with `extra`.
pub fn source(extra: &[(&str, &str)]) -> SourceConfig {
    match stack("source", extra) {
        StackConfig::Source(c) => c,
        StackConfig::Target(_) => panic!("source"),
    }
}

/// A target stack's configuration with `extra`.
pub fn target(extra: &[(&str, &str)]) -> TargetConfig {
    match stack("target", extra) {
        StackConfig::Target(c) => c,
        StackConfig::Source(_) => panic!("target"),
    }
}
