//! The producer's configuration.

use std::time::Duration;

use shared::config::{self, ConfigError, Reader, Source};

#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// Stream name, or ARN.
    pub stream: String,
    pub records_per_invocation: usize,
    pub padding_bytes: usize,
    pub max_put_attempts: u32,
    pub retry_base_delay: Duration,
    /// Whether records are written as KPL aggregates (`PRODUCER_AGGREGATION`).
    pub aggregation: bool,
    /// The largest record [`crate::Producer::write`] sends, data and partition key; a larger one
    /// is refused before anything is sent. The producer function's is Kinesis's default
    /// ([`shared::limits::KINESIS_MAX_RECORD_BYTES`]); `relayctl redrive`'s is the largest a
    /// stream of the project may take ([`shared::limits::LAMBDA_CONSUMER_MAX_RECORD_BYTES`]), and
    /// Kinesis refuses a record over the stream's own setting.
    pub max_record_bytes: usize,
}

impl ProducerSettings {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let read = Reader::new(source);
        Ok(Self {
            stream: read.required(config::STREAM_NAME)?,
            records_per_invocation: read
                .setting(&config::PRODUCER_RECORDS_PER_INVOCATION_SETTING)?
                as usize,
            padding_bytes: read.setting(&config::PRODUCER_PADDING_BYTES_SETTING)? as usize,
            max_put_attempts: read.setting(&config::PRODUCER_MAX_PUT_ATTEMPTS_SETTING)?,
            retry_base_delay: Duration::from_millis(u64::from(
                read.setting(&config::PRODUCER_RETRY_BASE_DELAY_MS_SETTING)?,
            )),
            aggregation: read.flag_setting(&config::PRODUCER_AGGREGATION_SETTING)?,
            max_record_bytes: shared::limits::KINESIS_MAX_RECORD_BYTES,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn stream_is_required_and_defaults_apply() {
        let err = ProducerSettings::from_source(&HashMap::<&str, &str>::new()).unwrap_err();
        assert!(err.to_string().contains("STREAM_NAME is not set"), "{err}");
        let settings =
            ProducerSettings::from_source(&HashMap::from([(config::STREAM_NAME, "s")])).unwrap();
        assert_eq!(
            (settings.records_per_invocation, settings.max_put_attempts),
            (1, 5)
        );
        assert_eq!(settings.retry_base_delay, Duration::from_millis(100));
        assert!(!settings.aggregation, "aggregation is off by default");
        let on = HashMap::from([
            (config::STREAM_NAME, "s"),
            (config::PRODUCER_AGGREGATION, "true"),
        ]);
        assert!(ProducerSettings::from_source(&on).unwrap().aggregation);
        let bad = HashMap::from([
            (config::STREAM_NAME, "s"),
            (config::PRODUCER_AGGREGATION, "sometimes"),
        ]);
        let err = ProducerSettings::from_source(&bad).unwrap_err().to_string();
        assert!(err.contains("PRODUCER_AGGREGATION"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_variable() {
        let env = HashMap::from([
            (config::STREAM_NAME, "s"),
            (config::PRODUCER_RECORDS_PER_INVOCATION, "0"),
        ]);
        let err = ProducerSettings::from_source(&env).unwrap_err().to_string();
        assert!(
            err.contains("PRODUCER_RECORDS_PER_INVOCATION") && err.contains("between 1 and 10000"),
            "{err}"
        );
    }
}
