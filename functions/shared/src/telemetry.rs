//! Structured JSON logs, one object per line, with event fields at the top level so a log
//! query (or the local harness) can read `record_id`, `latency_ms`, ... directly.
//!
//! Each line has Lambda's `level` and an RFC 3339 `timestamp`, which is what Lambda's
//! log-level filtering reads from a custom runtime's JSON lines; the level itself comes from the
//! function's `loggingConfig` through `AWS_LAMBDA_LOG_LEVEL` ([`crate::config::log_level`]).

use std::fmt::Display;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config;

/// The summary line of an invocation that failed as a whole (the function error Lambda
/// reports comes from the error's `Diagnostic`).
pub fn invocation_failed(error: &dyn Display, started: Instant) {
    tracing::error!(
        error = %error,
        duration_ms = started.elapsed().as_millis() as u64,
        "invocation summary"
    );
}

/// Installs the JSON subscriber on stdout, at the level Lambda passes in `AWS_LAMBDA_LOG_LEVEL`.
/// A level this build does not know is not worth refusing to start over: it is reported on
/// stderr and the function logs at INFO.
pub fn init() {
    let level = level_or_info(&config::ProcessEnv, &mut std::io::stderr());
    let _ = subscriber(level, std::io::stdout).try_init();
}

/// The level `source` asks for, or INFO, with a warning written to `warnings`, when it asks for
/// one this build does not know.
fn level_or_info(source: &dyn config::Source, warnings: &mut dyn Write) -> LevelFilter {
    config::log_level(source).unwrap_or_else(|error| {
        let _ = writeln!(warnings, "warning: {error}; logging at INFO");
        LevelFilter::INFO
    })
}

/// The JSON subscriber, writing one object per line at `level` and above to `writer`.
pub fn subscriber<W>(level: LevelFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_max_level(level)
        .with_writer(writer)
        .finish()
}

/// The log lines of the current thread, kept in memory: what a test reads instead of stdout.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Captures what this thread logs at `info` and above until the guard is dropped.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        Self::start_at(LevelFilter::INFO)
    }

    /// Captures what this thread logs at `level` and above until the guard is dropped.
    pub fn start_at(level: LevelFilter) -> (Self, tracing::subscriber::DefaultGuard) {
        undecided_global_default();
        let logs = Self::default();
        let sink = logs.clone();
        let writer = move || sink.clone();
        let guard = tracing::subscriber::set_default(subscriber(level, writer));
        (logs, guard)
    }

    /// Each line so far, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).expect("every log line is a JSON object"))
            .collect()
    }

    /// The lines whose message is `message`.
    pub fn with_message(&self, message: &str) -> Vec<serde_json::Value> {
        let lines = self.lines().into_iter();
        lines.filter(|l| l["message"] == message).collect()
    }
}

/// Makes every log callsite ask the current thread's subscriber each time it is hit.
///
/// tracing caches, per callsite, whether any subscriber may want it. Tests capture logs with a
/// subscriber scoped to their own thread; when a callsite is first hit on a thread with none
/// (another test running at that moment), it can be cached as wanted by nobody, and a later
/// capture then misses its lines. A global default that answers "sometimes" for every callsite
/// and takes nothing itself keeps the decision with each thread's own subscriber. Set once; a
/// global subscriber set before (by `init`) is left in place.
fn undecided_global_default() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Undecided);
    });
}

/// The global default of [`undecided_global_default`]: interested in every callsite sometimes,
/// enabled for none.
struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_the_event_fields_at_the_top() {
        let (logs, _guard) = CapturedLogs::start();
        tracing::info!(record_id = "r-1", latency_ms = 12u64, "record processed");
        tracing::debug!("below the default level");
        let lines = logs.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "record processed");
        assert_eq!(lines[0]["record_id"], "r-1");
        assert_eq!(lines[0]["latency_ms"], 12);
        assert_eq!(lines[0]["level"], "INFO");
    }

    #[test]
    fn an_unknown_level_is_a_warning_and_info() {
        let level = |value: &'static str| {
            let source = std::collections::HashMap::from([(config::AWS_LAMBDA_LOG_LEVEL, value)]);
            let mut warnings = Vec::new();
            let level = level_or_info(&source, &mut warnings);
            (level, String::from_utf8(warnings).unwrap())
        };
        assert_eq!(level("DEBUG"), (LevelFilter::DEBUG, String::new()));
        let (fallback, warning) = level("LOUD");
        assert_eq!(fallback, LevelFilter::INFO);
        assert_eq!(
            warning,
            "warning: environment variable AWS_LAMBDA_LOG_LEVEL=\"LOUD\" is invalid: not one of \
             Lambda's application log levels (TRACE, DEBUG, INFO, WARN, ERROR, FATAL); logging at \
             INFO\n"
        );
    }

    #[test]
    fn lines_carry_what_lambdas_level_filtering_reads() {
        let (logs, _guard) = CapturedLogs::start_at(LevelFilter::DEBUG);
        tracing::trace!("below debug");
        tracing::debug!("a debug line");
        tracing::warn!("a warning");
        let lines = logs.lines();
        let levels: Vec<&str> = lines.iter().map(|l| l["level"].as_str().unwrap()).collect();
        assert_eq!(levels, ["DEBUG", "WARN"], "{lines:?}");
        // Lambda uses a line's own timestamp only when it is RFC 3339.
        let timestamp = lines[0]["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
    }
}
