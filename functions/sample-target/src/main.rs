//! Lambda entry point for the target: read the sample's configuration once, run its handler on
//! the target library.

use std::process::ExitCode;

use relay_target::Options;
use shared::config::Source;
use target::{SampleHandler, TargetSettings, SAMPLE_CONCURRENCY};

#[tokio::main]
async fn main() -> ExitCode {
    let configure =
        |source: &dyn Source| TargetSettings::from_source(source).map(SampleHandler::new);
    let options = Options {
        concurrency: SAMPLE_CONCURRENCY,
    };
    relay_target::run_configured(configure, options).await
}
