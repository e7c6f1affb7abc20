//! Lambda entry point: read configuration once, build the clients once (the target client's
//! assumed-role credentials are cached for the life of the container), run the handler.

use std::process::ExitCode;
use std::time::Instant;

use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use relay::dead_letters::S3DeadLetterBucket;
use relay::event::RelayEvent;
use relay::invoke::{target_lambda_client, LambdaTarget};
use relay::{Deadline, Relay, RelaySettings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match shared::telemetry::start("relay", RelaySettings::from_source) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let target = LambdaTarget::new(target_lambda_client(&sdk, &settings).await, &settings);
    let dead_letters = S3DeadLetterBucket::new(
        aws_sdk_s3::Client::new(&sdk),
        settings.dead_letter_bucket.clone(),
    );
    let relay = Relay::new(
        target,
        dead_letters,
        settings.max_concurrent_invocations,
        settings.max_payload_bytes,
    )
    .with_max_records_per_invocation(settings.max_records_per_invocation)
    .with_poison_split_depth(settings.poison_split_depth);
    let relay = &relay;
    let function_name = &shared::metrics::function_name(&shared::config::ProcessEnv);
    let level = shared::metrics::line_level(&shared::config::ProcessEnv);
    let outcome = lambda_runtime::run(service_fn(
        move |event: LambdaEvent<RelayEvent>| async move {
            let started = Instant::now();
            let now = shared::metrics::now_ms();
            let deadline = Deadline::from_epoch_ms(event.context.deadline, now);
            let batch = match event.payload.into_batch() {
                Ok(batch) => batch,
                Err(unreadable) => {
                    shared::telemetry::invocation_failed(&unreadable, started);
                    return Err(Diagnostic::from(unreadable));
                }
            };
            let (response, report) = relay.handle(batch, &deadline).await;
            let now = shared::metrics::now_ms();
            report.metrics(function_name, now).emit(now, level);
            Ok(response)
        },
    ))
    .await;
    shared::telemetry::stopped(outcome)
}
