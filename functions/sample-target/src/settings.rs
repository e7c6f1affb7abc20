//! The target's configuration.

use shared::config::{self, ConfigError, Reader, Source};

#[derive(Debug, Clone)]
pub struct TargetSettings {
    /// Record ids remembered per container to recognise a redelivery (0 = remember none). Also
    /// bounds the delivery counts of simulated transient failures; with 0 none are counted and
    /// such a record is answered `ok` at once.
    pub dedup_capacity: usize,
    /// Whether a record's `body.simulate` may make the target fail on purpose.
    pub fault_injection: bool,
    /// The table the sample counts its effects in (`SAMPLE_EFFECTS_TABLE`); `None` when unset or
    /// empty: no effect besides the log line.
    pub effects_table: Option<String>,
}

impl TargetSettings {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let read = Reader::new(source);
        Ok(Self {
            dedup_capacity: read.setting(&config::TARGET_DEDUP_CAPACITY_SETTING)? as usize,
            fault_injection: read.flag_setting(&config::TARGET_FAULT_INJECTION_SETTING)?,
            effects_table: read.optional(config::SAMPLE_EFFECTS_TABLE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_are_safe() {
        let settings = TargetSettings::from_source(&HashMap::<&str, &str>::new()).unwrap();
        assert!(!settings.fault_injection);
        assert_eq!(settings.dedup_capacity, 10_000);
        assert_eq!(settings.effects_table, None);
    }

    #[test]
    fn the_effects_table_is_read_and_an_empty_one_is_none() {
        let env = HashMap::from([(config::SAMPLE_EFFECTS_TABLE, "p-sample-effects")]);
        let settings = TargetSettings::from_source(&env).unwrap();
        assert_eq!(settings.effects_table.as_deref(), Some("p-sample-effects"));
        let env = HashMap::from([(config::SAMPLE_EFFECTS_TABLE, " ")]);
        assert_eq!(
            TargetSettings::from_source(&env).unwrap().effects_table,
            None
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env = HashMap::from([(config::TARGET_FAULT_INJECTION, "sometimes")]);
        let err = TargetSettings::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("TARGET_FAULT_INJECTION"), "{err}");
    }
}
