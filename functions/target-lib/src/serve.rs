//! Running a handler under the Lambda runtime: settings, the idempotency store, the loop.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use shared::config::{self, ConfigError, Reader, Source};

use crate::delivery::{Invocation, Runner, DEFAULT_CONCURRENCY};
use crate::handler::RecordHandler;
use crate::idempotency::dynamodb::DynamoDbStore;
use crate::idempotency::IdempotencyStore;

/// The name the library's start-up and configuration lines give the function.
const FUNCTION: &str = "target";

/// What the library reads from the environment at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The idempotency table (`IDEMPOTENCY_TABLE`); `None`: no durable store.
    pub table: Option<String>,
    /// How long stored answers are kept, in hours (`IDEMPOTENCY_TTL_HOURS`).
    pub ttl_hours: u32,
}

impl Settings {
    /// Reads the settings from `source`; a bad value is an error naming its variable.
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let read = Reader::new(source);
        Ok(Self {
            table: read.optional(config::IDEMPOTENCY_TABLE),
            ttl_hours: read.setting(&config::IDEMPOTENCY_TTL_HOURS_SETTING)?,
        })
    }
}

/// How [`run_with`] runs the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Records run at once, at most (see [`Runner::concurrency`]); default 1.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// The idempotency store the settings ask for: none without a table, else the DynamoDB store in
/// that table ([`DynamoDbStore::from_env`]: the SDK's default configuration, so the function's
/// region, credentials and `AWS_ENDPOINT_URL`). This is the one place the durable store is built.
pub async fn store_from_env(settings: &Settings) -> Option<Arc<dyn IdempotencyStore>> {
    match &settings.table {
        None => None,
        Some(table) => Some(Arc::new(DynamoDbStore::from_env(table.clone()).await)),
    }
}

/// Runs `handler` under lambda_runtime until the runtime stops; reads its settings
/// (IDEMPOTENCY_TABLE, IDEMPOTENCY_TTL_HOURS, AWS_LAMBDA_LOG_LEVEL) from the environment via
/// shared::telemetry::start; returns the process ExitCode (main returns it).
pub async fn run<H: RecordHandler + 'static>(handler: H) -> ExitCode {
    run_with(handler, Options::default()).await
}

/// [`run`] with [`Options`] (concurrency).
pub async fn run_with<H: RecordHandler + 'static>(handler: H, options: Options) -> ExitCode {
    run_configured(|_| Ok(handler), options).await
}

/// [`run_with`] for a handler with settings of its own: `configure` reads them from the same
/// environment, at the same start-up check as the library's, so a bad variable of either is one
/// FATAL line and the function does not start.
///
/// ```no_run
/// use relay_target::{run_configured, HandlerError, Options, Record, RecordHandler, Verdict};
/// use shared::config::{ConfigError, Reader, NumberSetting};
///
/// const GREETING_REPEAT: NumberSetting = NumberSetting::new("GREETING_REPEAT", 1, 1..=10);
///
/// struct Greeter { repeat: u32 }
///
/// #[async_trait::async_trait]
/// impl RecordHandler for Greeter {
///     async fn handle(&self, record: &Record) -> Result<Verdict, HandlerError> {
///         for _ in 0..self.repeat {
///             println!("hello, {}", record.partition_key());
///         }
///         Ok(Verdict::Ok)
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     run_configured(
///         |source| Ok::<_, ConfigError>(Greeter { repeat: Reader::new(source).setting(&GREETING_REPEAT)? }),
///         Options::default(),
///     )
///     .await
/// }
/// ```
pub async fn run_configured<H, F>(configure: F, options: Options) -> ExitCode
where
    H: RecordHandler + 'static,
    F: FnOnce(&dyn Source) -> Result<H, ConfigError>,
{
    let read = |source: &dyn Source| Ok((Settings::from_source(source)?, configure(source)?));
    let (settings, handler) = match shared::telemetry::start(FUNCTION, read) {
        Ok(both) => both,
        Err(exit) => return exit,
    };
    let store = store_from_env(&settings).await;
    started(&settings, options);
    let runner = Runner::new(handler)
        .maybe_store(store)
        .concurrency(options.concurrency)
        .ttl_hours(u64::from(settings.ttl_hours));
    serve(&runner).await
}

/// The start-up line: whether a durable idempotency store is used, and the concurrency.
fn started(settings: &Settings, options: Options) {
    match &settings.table {
        Some(table) => tracing::info!(
            idempotency_table = %table,
            ttl_hours = settings.ttl_hours,
            concurrency = options.concurrency,
            "target started with an idempotency store"
        ),
        None => tracing::info!(
            concurrency = options.concurrency,
            "target started without an idempotency store ({} is unset): every delivery runs \
             every record it carries",
            config::IDEMPOTENCY_TABLE
        ),
    }
}

/// The runtime loop: one delivery per invocation, its summary and metrics lines.
async fn serve<H: RecordHandler>(runner: &Runner<H>) -> ExitCode {
    let function_name = &shared::metrics::function_name(&config::ProcessEnv);
    let level = shared::metrics::line_level(&config::ProcessEnv);
    let outcome = lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let started = Instant::now();
            let invocation = Invocation::from_context(&event.context, Utc::now());
            match runner.answer(event.payload, &invocation).await {
                Ok(answer) => {
                    let tally = &answer.tally;
                    tracing::info!(
                        records = answer.response.results.len(),
                        ok = tally.ok,
                        rejected = tally.rejected,
                        retry = tally.retry,
                        duplicates = tally.duplicates,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "invocation summary"
                    );
                    let now = shared::metrics::now_ms();
                    tally.metrics(function_name).emit(now, level);
                    Ok::<_, Diagnostic>(answer.response)
                }
                Err(error) => {
                    shared::telemetry::invocation_failed(&error, started);
                    Err(Diagnostic::from(error))
                }
            }
        },
    ))
    .await;
    shared::telemetry::stopped(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn settings_default_to_no_table_and_the_default_ttl() {
        let settings = Settings::from_source(&HashMap::<&str, &str>::new()).unwrap();
        assert_eq!(
            settings,
            Settings {
                table: None,
                ttl_hours: config::IDEMPOTENCY_TTL_HOURS_SETTING.default,
            }
        );
        let empty = HashMap::from([(config::IDEMPOTENCY_TABLE, " ")]);
        assert_eq!(Settings::from_source(&empty).unwrap().table, None);
    }

    #[test]
    fn a_bad_ttl_names_its_variable() {
        let env = HashMap::from([(config::IDEMPOTENCY_TTL_HOURS, "24")]);
        let error = Settings::from_source(&env).unwrap_err().to_string();
        assert!(error.contains(config::IDEMPOTENCY_TTL_HOURS), "{error}");
    }

    #[tokio::test]
    async fn no_table_means_no_store() {
        let settings = Settings {
            table: None,
            ttl_hours: 336,
        };
        assert!(store_from_env(&settings).await.is_none());
    }

    #[tokio::test]
    async fn a_table_means_the_dynamodb_store_in_it() {
        let settings = Settings {
            table: Some("t-idempotency".into()),
            ttl_hours: 336,
        };
        assert!(store_from_env(&settings).await.is_some());
    }
}
