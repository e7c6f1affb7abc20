//! Lambda entry point for the producer: read configuration once, build the Kinesis client
//! once, write the scheduled records on each invocation.

use std::process::ExitCode;
use std::time::Instant;

use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use producer::sink::KinesisSink;
use producer::{Producer, ProducerSettings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match shared::telemetry::start("producer", ProducerSettings::from_source) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(&sdk), settings.stream.clone());
    let planned = settings.records_per_invocation;
    let producer = Producer::new(sink, settings);
    let producer = &producer;
    let function_name = &shared::metrics::function_name(&shared::config::ProcessEnv);
    let level = shared::metrics::line_level(&shared::config::ProcessEnv);
    let outcome = lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let started = Instant::now();
            let outcome = producer.produce(chrono::Utc::now()).await;
            let now = shared::metrics::now_ms();
            producer::produce::metrics(&outcome, planned, function_name).emit(now, level);
            match outcome {
                Ok(report) => {
                    tracing::info!(
                        records_written = report.records_written,
                        aggregates_written = report.aggregates_written,
                        put_calls = report.put_calls,
                        retried_entries = report.retried_entries,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "invocation summary"
                    );
                    Ok::<_, Diagnostic>(report)
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
