//! Lambda entry point for the target: read the sample's configuration once, run its handler on
//! the target library.

use std::process::ExitCode;

use target::{SampleHandler, TargetSettings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match shared::telemetry::start("target", TargetSettings::from_source) {
        Ok(settings) => settings,
        Err(exit) => return exit,
    };
    relay_target::run(SampleHandler::new(settings)).await
}
