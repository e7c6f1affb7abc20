//! Running a handler under the Lambda runtime: settings, the idempotency store, the loop.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use shared::config::{self, ConfigError, Reader, Source};

use crate::delivery::{Invocation, Runner, DEFAULT_CONCURRENCY};
use crate::handler::RecordHandler;
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

/// Why the function cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// `IDEMPOTENCY_TABLE` names a table but no durable store is compiled in.
    #[error(
        "{variable} is set ({table:?}) but this build of the target library has no DynamoDB \
         idempotency store; build the target with a library that includes \
         relay_target::idempotency::dynamodb, or unset {variable} (the target stack's \
         idempotencyStore: false) to run without an idempotency store"
    )]
    NoDurableStore {
        /// The variable that is set.
        variable: &'static str,
        /// The table it names.
        table: String,
    },
}

/// The idempotency store the settings ask for: none without a table.
///
/// This is the one place the durable store is built. Until the DynamoDB store
/// (`relay_target::idempotency::dynamodb::DynamoDbStore`) is part of the library, a table in the
/// settings is refused rather than silently ignored.
pub async fn store_from_env(
    settings: &Settings,
) -> Result<Option<Arc<dyn IdempotencyStore>>, StartError> {
    match &settings.table {
        None => Ok(None),
        Some(table) => Err(StartError::NoDurableStore {
            variable: config::IDEMPOTENCY_TABLE,
            table: table.clone(),
        }),
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
    let settings = match shared::telemetry::start(FUNCTION, Settings::from_source) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    let store = match store_from_env(&settings).await {
        Ok(store) => store,
        Err(error) => return refuse(&error, &mut std::io::stdout().lock()),
    };
    started(&settings, options);
    let runner = Runner::new(handler)
        .maybe_store(store)
        .concurrency(options.concurrency)
        .ttl_hours(u64::from(settings.ttl_hours));
    serve(&runner).await
}

/// The FATAL line of a function that cannot start, and the failure exit status.
fn refuse(error: &StartError, out: &mut dyn Write) -> ExitCode {
    let message = format!("{FUNCTION}: configuration error; the function cannot start");
    let fields = [("error", error.to_string())];
    let _ =
        shared::telemetry::write_line(out, Utc::now(), shared::telemetry::FATAL, &message, &fields);
    ExitCode::FAILURE
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
        assert!(store_from_env(&settings).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_table_without_the_durable_store_is_refused_with_a_fatal_line() {
        let settings = Settings {
            table: Some("t-idempotency".into()),
            ttl_hours: 336,
        };
        let error = store_from_env(&settings).await.err().unwrap();
        let mut out = Vec::new();
        assert_eq!(refuse(&error, &mut out), ExitCode::FAILURE);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["level"], "FATAL");
        let error = line["error"].as_str().unwrap();
        assert!(
            error.contains("IDEMPOTENCY_TABLE is set (\"t-idempotency\")"),
            "{error}"
        );
        assert!(error.contains("unset IDEMPOTENCY_TABLE"), "{error}");
    }
}
