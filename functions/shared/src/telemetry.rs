//! Structured JSON logs, one object per line, with event fields at the top level so a log
//! query (or the local harness) can read `record_id`, `latency_ms`, ... directly.

use std::fmt::Display;
use std::time::Instant;

use tracing_subscriber::EnvFilter;

/// The summary line of an invocation that failed as a whole (the function error Lambda
/// reports comes from the error's `Diagnostic`).
pub fn invocation_failed(error: &dyn Display, started: Instant) {
    tracing::error!(
        error = %error,
        duration_ms = started.elapsed().as_millis() as u64,
        "invocation summary"
    );
}

/// Installs the JSON subscriber. `filter` is the value of `LOG_LEVEL` (default `info`).
pub fn init(filter: Option<&str>) {
    let filter = EnvFilter::try_new(filter.unwrap_or("info")).unwrap_or_else(|e| {
        eprintln!("LOG_LEVEL is not a valid filter ({e}); using info");
        EnvFilter::new("info")
    });
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}
