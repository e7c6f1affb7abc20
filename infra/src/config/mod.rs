//! Typed stack configuration, parsed once from `PULUMI_CONFIG`.
//!
//! By concern: [`keys`] is the table of every key the program reads, one row per key (name,
//! scope, type, default, the values it accepts, meaning, the function setting it feeds);
//! [`parse`] turns a stack's `PULUMI_CONFIG` into the typed configuration ([`types`]), taking each
//! key's default and range from its row; [`checks`] holds the rules for values that are more
//! than a range (e-mail addresses, schedule expressions, function references, regions).
//! `Pulumi.yaml` declares exactly these keys (a test checks it), and every error names the
//! key and prints the `pulumi config set` line that fixes it.

pub mod checks;
#[cfg(test)]
pub mod fixtures;
pub mod keys;
pub mod parse;
#[cfg(test)]
mod tests;
pub mod types;

pub use crate::names::NamePrefix;
pub use keys::{
    config_table, pulumi_yaml_config_block, Key, KeySpec, KeyType, Scope, StackSide, Values, KEYS,
    REQUIRED_KEYS,
};
pub use parse::{check_project, ConfigError, RawConfig};
pub use types::{
    AlarmSettings, Architecture, CommonConfig, IdempotencyTable, SourceConfig, StackConfig,
    StreamCapacity, TargetConfig, TargetOutputs, TargetRegion,
};
