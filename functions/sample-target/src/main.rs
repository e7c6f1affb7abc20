//! Lambda entry point for the target: read configuration once, run the processor.

use std::process::ExitCode;
use std::time::Instant;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use target::{Processor, TargetSettings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match shared::telemetry::start("target", TargetSettings::from_source) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    let processor = Processor::new(settings);
    let processor = &processor;
    let function_name = &shared::metrics::function_name(&shared::config::ProcessEnv);
    let level = shared::metrics::line_level(&shared::config::ProcessEnv);
    let outcome = lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let started = Instant::now();
            match processor.handle_value(event.payload, chrono::Utc::now()) {
                Ok((response, tally)) => {
                    tracing::info!(
                        records = response.results.len(),
                        ok = tally.ok,
                        rejected = tally.rejected,
                        retry = tally.retry,
                        duplicates = tally.duplicates,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "invocation summary"
                    );
                    let now = shared::metrics::now_ms();
                    tally.metrics(function_name).emit(now, level);
                    Ok::<_, Diagnostic>(response)
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
