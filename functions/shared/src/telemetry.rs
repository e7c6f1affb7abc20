//! Structured JSON logs, one object per line, with event fields at the top level so a log
//! query (or the local harness) can read `record_id`, `latency_ms`, ... directly.
//!
//! Every line a function prints carries what Lambda's log-level filtering reads from a custom
//! runtime's output (Lambda developer guide, "Log-level filtering"): *"your function code must
//! output log events to `stdout` or `stderr` as JSON formatted objects that contain a key value
//! pair with the key "level""*; *"If the "level" value field is invalid or missing, Lambda will
//! assign the log output the level INFO"*; *"If you don't supply a valid timestamp, Lambda will
//! assign the log the level INFO"*. A line read as INFO is dropped at a `logLevel` of WARN or
//! above, whatever it says, so each line has a `level` and an RFC 3339 `timestamp`
//! ([`timestamp`]), wherever it comes from:
//! - the subscriber [`init`] installs: the functions' own log lines, and lambda_runtime's, which
//!   logs through tracing once a subscriber is set;
//! - lines written before the subscriber exists or without it ([`start`]'s configuration error,
//!   [`stopped`], the panic hook [`init`] installs, the warning about an unknown log level): the
//!   same shape, written by [`write_line`];
//! - the EMF metric lines ([`crate::metrics`]), which take their `timestamp` from [`timestamp`].
//!
//! Nothing is printed as plain text: the default panic message and the `Error: ...` that Rust
//! prints when `main` returns an error would be read as INFO and dropped at WARN.
//!
//! The level itself comes from the function's `loggingConfig` through `AWS_LAMBDA_LOG_LEVEL`
//! ([`crate::config::log_level`]).

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{self, ConfigError, Source};

/// The level of a line about an error that stops the function (Lambda's most severe
/// application log level, kept at every `logLevel`). tracing has no such level, so these lines
/// are written by [`write_line`].
pub const FATAL: &str = "FATAL";

/// A log line's `timestamp`: RFC 3339 in UTC with milliseconds (`2025-11-25T04:31:37.125Z`),
/// which Lambda's log-level filtering accepts.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The subscriber's clock: writes [`timestamp`] of `now()` into each line.
#[derive(Clone, Copy)]
struct Rfc3339(fn() -> DateTime<Utc>);

impl FormatTime for Rfc3339 {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        w.write_str(&timestamp((self.0)()))
    }
}

/// The summary line of an invocation that failed as a whole (the function error Lambda
/// reports comes from the error's `Diagnostic`).
pub fn invocation_failed(error: &dyn Display, started: Instant) {
    tracing::error!(
        error = %error,
        duration_ms = started.elapsed().as_millis() as u64,
        "invocation summary"
    );
}

/// Sets up logging ([`init`]), then reads the function's settings from the process environment,
/// once, at start-up. A setting that is wrong is a FATAL line naming it and the exit status for
/// `main` to return: the process ends before it asks for an invocation, and Lambda fails the
/// invocation that waits for it with `Runtime.ExitError`.
pub fn start<T>(
    function: &str,
    read: impl FnOnce(&dyn Source) -> Result<T, ConfigError>,
) -> Result<T, ExitCode> {
    init();
    read(&config::ProcessEnv).map_err(|error| {
        let message = format!("{function}: configuration error; the function cannot start");
        let fields = [("error", error.to_string())];
        let _ = write_line(
            &mut std::io::stdout().lock(),
            Utc::now(),
            FATAL,
            &message,
            &fields,
        );
        ExitCode::FAILURE
    })
}

/// The exit status once the runtime loop has ended (lambda_runtime returns only when it can no
/// longer talk to the Runtime API): a FATAL line with the reason, and failure.
pub fn stopped<E: Display>(outcome: Result<(), E>) -> ExitCode {
    let Err(error) = outcome else {
        return ExitCode::SUCCESS;
    };
    let fields = [("error", error.to_string())];
    let message = "the Lambda runtime loop stopped";
    let _ = write_line(
        &mut std::io::stdout().lock(),
        Utc::now(),
        FATAL,
        message,
        &fields,
    );
    ExitCode::FAILURE
}

/// Installs the JSON subscriber on stdout, at the level Lambda passes in `AWS_LAMBDA_LOG_LEVEL`,
/// and a panic hook that writes a panic as one ERROR line (lambda_runtime turns a panicking
/// handler into a function error and goes on). A level this build does not know is not worth
/// refusing to start over: it is reported as a WARN line and the function logs at INFO.
pub fn init() {
    let level = level_or_info(&config::ProcessEnv, &mut std::io::stdout());
    let _ = subscriber(level, std::io::stdout).try_init();
    std::panic::set_hook(Box::new(|panic| {
        let line = panic_line(panic, Utc::now());
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }));
}

/// The level `source` asks for, or INFO, with a WARN line written to `warnings`, when it asks
/// for one this build does not know.
fn level_or_info(source: &dyn Source, warnings: &mut dyn Write) -> LevelFilter {
    config::log_level(source).unwrap_or_else(|error| {
        let fields = [("error", error.to_string())];
        let _ = write_line(warnings, Utc::now(), "WARN", "logging at INFO", &fields);
        LevelFilter::INFO
    })
}

/// Writes one log line in the subscriber's shape (`timestamp`, `level`, `message`, then
/// `fields`), in one write, for the lines written without the subscriber.
pub fn write_line(
    out: &mut dyn Write,
    at: DateTime<Utc>,
    level: &str,
    message: &str,
    fields: &[(&str, String)],
) -> std::io::Result<()> {
    out.write_all(line(at, level, message, fields).as_bytes())
}

/// The text of [`write_line`]: one JSON object and a newline.
fn line(at: DateTime<Utc>, level: &str, message: &str, fields: &[(&str, String)]) -> String {
    let mut document = Map::new();
    document.insert("timestamp".into(), json!(timestamp(at)));
    document.insert("level".into(), json!(level));
    document.insert("message".into(), json!(message));
    for (name, value) in fields {
        document.insert((*name).into(), json!(value));
    }
    format!("{}\n", Value::Object(document))
}

/// The line of a panic: what it said and where, at ERROR.
fn panic_line(panic: &std::panic::PanicHookInfo<'_>, at: DateTime<Utc>) -> String {
    let payload = panic.payload();
    let said = (payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".into());
    let location = panic
        .location()
        .map(ToString::to_string)
        .unwrap_or_default();
    let fields = [("error", said), ("location", location)];
    line(at, "ERROR", "panicked", &fields)
}

/// The JSON subscriber, writing one object per line at `level` and above to `writer`.
pub fn subscriber<W>(level: LevelFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber_with_clock(level, writer, Utc::now)
}

/// [`subscriber`] with the clock its timestamps are read from.
fn subscriber_with_clock<W>(
    level: LevelFilter,
    writer: W,
    now: fn() -> DateTime<Utc>,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_timer(Rfc3339(now))
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
        Self::start_with_clock(level, Utc::now)
    }

    fn start_with_clock(
        level: LevelFilter,
        now: fn() -> DateTime<Utc>,
    ) -> (Self, tracing::subscriber::DefaultGuard) {
        undecided_global_default();
        let logs = Self::default();
        let sink = logs.clone();
        let writer = move || sink.clone();
        let guard = tracing::subscriber::set_default(subscriber_with_clock(level, writer, now));
        (logs, guard)
    }

    /// Everything written so far, as written.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Each line so far, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        (self.text().lines())
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

    /// 2025-11-25T04:31:37.125Z, the clock of the exact lines below.
    fn fixed() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_764_045_097_125).unwrap()
    }

    #[test]
    fn a_subscriber_line_is_exactly_timestamp_level_message_and_the_event_fields() {
        let (logs, _guard) = CapturedLogs::start_with_clock(LevelFilter::INFO, fixed);
        tracing::info!(record_id = "r-1", latency_ms = 12u64, "record processed");
        tracing::debug!("below the default level");
        assert_eq!(
            logs.text(),
            "{\"timestamp\":\"2025-11-25T04:31:37.125Z\",\"level\":\"INFO\",\
             \"message\":\"record processed\",\"record_id\":\"r-1\",\"latency_ms\":12}\n"
        );
    }

    #[test]
    fn a_timestamp_is_rfc_3339_in_utc_with_milliseconds() {
        assert_eq!(timestamp(fixed()), "2025-11-25T04:31:37.125Z");
        let whole_second = DateTime::from_timestamp_millis(1_764_045_097_000).unwrap();
        assert_eq!(timestamp(whole_second), "2025-11-25T04:31:37.000Z");
        let now = timestamp(Utc::now());
        let parsed = DateTime::parse_from_rfc3339(&now).unwrap();
        assert!(
            (Utc::now() - parsed.with_timezone(&Utc))
                .num_seconds()
                .abs()
                < 60
        );
    }

    #[test]
    fn an_unknown_level_is_a_warn_line_and_info() {
        let level = |value: &'static str| {
            let source = std::collections::HashMap::from([(config::AWS_LAMBDA_LOG_LEVEL, value)]);
            let mut warnings = Vec::new();
            let level = level_or_info(&source, &mut warnings);
            (level, String::from_utf8(warnings).unwrap())
        };
        assert_eq!(level("DEBUG"), (LevelFilter::DEBUG, String::new()));
        let (fallback, warning) = level("LOUD");
        assert_eq!(fallback, LevelFilter::INFO);
        let warning: Value = serde_json::from_str(&warning).unwrap();
        assert_eq!(warning["level"], "WARN");
        assert_eq!(warning["message"], "logging at INFO");
        assert_eq!(
            warning["error"],
            "environment variable AWS_LAMBDA_LOG_LEVEL=\"LOUD\" is invalid: not one of \
             Lambda's application log levels (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)"
        );
        let at = warning["timestamp"].as_str().unwrap();
        assert!(DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    }

    #[test]
    fn a_line_written_without_the_subscriber_has_its_shape() {
        let mut out = Vec::new();
        let fields = [("error", "TARGET_ROLE_ARN is not set".to_string())];
        write_line(&mut out, fixed(), FATAL, "relay: cannot start", &fields).unwrap();
        let text = String::from_utf8(out).unwrap();
        let (line, rest) = text.split_once('\n').unwrap();
        assert_eq!(rest, "", "one line, written whole");
        assert_eq!(
            serde_json::from_str::<Value>(line).unwrap(),
            json!({
                "timestamp": "2025-11-25T04:31:37.125Z",
                "level": "FATAL",
                "message": "relay: cannot start",
                "error": "TARGET_ROLE_ARN is not set",
            })
        );
    }

    #[test]
    fn the_levels_lambda_filters_by_are_the_subscribers_level_names() {
        let (logs, _guard) = CapturedLogs::start_at(LevelFilter::TRACE);
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
        let levels: Vec<String> = (logs.lines().iter())
            .map(|l| l["level"].as_str().unwrap().to_string())
            .collect();
        let lambdas: Vec<&str> = config::APPLICATION_LOG_LEVELS
            .map(|(name, _)| name)
            .to_vec();
        assert_eq!(levels, lambdas[..5]);
    }

    #[test]
    fn a_failed_invocation_is_one_error_summary_line() {
        let (logs, _guard) = CapturedLogs::start_with_clock(LevelFilter::INFO, fixed);
        let started = Instant::now() - std::time::Duration::from_millis(1500);
        invocation_failed(&"envelope version 9 is not supported", started);
        let mut lines = logs.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let duration_ms = lines[0]["duration_ms"].take().as_u64().unwrap();
        assert!((1500..60_000).contains(&duration_ms), "{duration_ms}");
        assert_eq!(
            lines[0],
            json!({
                "timestamp": "2025-11-25T04:31:37.125Z",
                "level": "ERROR",
                "message": "invocation summary",
                "error": "envelope version 9 is not supported",
                "duration_ms": null,
            })
        );
    }

    #[test]
    fn the_global_default_enables_nothing_and_leaves_each_callsite_undecided() {
        let global = tracing::Dispatch::new(Undecided);
        let enabled = tracing::dispatcher::with_default(&global, || {
            (tracing::event_enabled!(tracing::Level::ERROR))
                || tracing::event_enabled!(tracing::Level::TRACE)
        });
        assert!(!enabled);
        let hint = tracing::Subscriber::max_level_hint(&Undecided);
        assert_eq!(hint, Some(LevelFilter::TRACE));
    }

    #[test]
    fn a_capture_leaves_every_other_thread_with_the_undecided_global_default() {
        let (logs, _guard) = CapturedLogs::start();
        let elsewhere = std::thread::spawn(|| {
            tracing::dispatcher::get_default(|dispatch| dispatch.is::<Undecided>())
        });
        assert!(elsewhere.join().unwrap());
        tracing::info!(record_id = "r-1", "record processed");
        tracing::info!(record_id = "r-2", "invocation summary");
        let found = logs.with_message("record processed");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["record_id"], "r-1");
    }

    #[test]
    fn a_stopped_runtime_loop_fails_the_process() {
        assert_eq!(stopped::<String>(Ok(())), ExitCode::SUCCESS);
    }

    /// What a function's process prints, run as a child of this test binary (`scenario` picks
    /// what [`child_process`] does): the stdout lines and whatever went to stderr.
    fn run_child(scenario: &str, log_level: &str) -> (Vec<Value>, String, bool) {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "telemetry::tests::child_process", "--ignored"])
            .args(["--nocapture", "--test-threads=1", "-q"])
            .env("TELEMETRY_CHILD", scenario)
            .env(config::AWS_LAMBDA_LOG_LEVEL, log_level)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        // libtest's own lines ("running 1 test", the summary) are the only other output.
        let lines = (stdout.lines())
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let stderr = String::from_utf8(output.stderr).unwrap();
        (lines, stderr, output.status.success())
    }

    /// Run by [`run_child`] in a process of its own: `init` sets process-wide state.
    #[test]
    #[ignore = "a child process of the tests below"]
    fn child_process() {
        match std::env::var("TELEMETRY_CHILD").as_deref() {
            Ok("init") => {
                init();
                tracing::info!("an info line");
                tracing::warn!(record_id = "r-1", "a warning");
                tracing::error!("an error");
                let panicked = std::thread::spawn(|| panic!("a panic in a handler")).join();
                assert!(panicked.is_err());
            }
            Ok("cannot start") => {
                let failed = start("relay", |_| {
                    Err::<(), _>(ConfigError::Missing {
                        name: config::TARGET_ROLE_ARN,
                        hint: "set it",
                    })
                });
                assert_eq!(failed, Err(ExitCode::FAILURE));
                assert_eq!(stopped(Err("connection refused")), ExitCode::FAILURE);
            }
            other => panic!("unknown scenario {other:?}"),
        }
    }

    fn without_timestamps(lines: &[Value]) -> Vec<Value> {
        let mut lines = lines.to_vec();
        for line in &mut lines {
            let at = line["timestamp"].as_str().unwrap_or_default();
            let parsed = DateTime::parse_from_rfc3339(at);
            assert!(parsed.is_ok(), "not RFC 3339: {line}");
            line.as_object_mut().unwrap().remove("timestamp");
        }
        lines
    }

    #[test]
    fn init_writes_json_lines_at_the_functions_level_and_panics_as_error_lines() {
        let (lines, stderr, ok) = run_child("init", "WARN");
        assert!(ok, "{lines:?} {stderr}");
        assert_eq!(stderr, "", "nothing is printed as plain text");
        let location = lines.last().map(|l| l["location"].clone());
        assert_eq!(
            without_timestamps(&lines),
            [
                json!({"level": "WARN", "message": "a warning", "record_id": "r-1"}),
                json!({"level": "ERROR", "message": "an error"}),
                json!({
                    "level": "ERROR",
                    "message": "panicked",
                    "error": "a panic in a handler",
                    "location": location.unwrap(),
                }),
            ]
        );
        let location = lines[2]["location"].as_str().unwrap();
        assert!(
            location.starts_with("functions/shared/src/telemetry.rs:"),
            "{location}"
        );
        // At INFO the info line is kept too.
        let (lines, _, _) = run_child("init", "info");
        assert_eq!(lines[0]["message"], "an info line");
        // An unknown level: a WARN line says so, and the function logs at INFO.
        let (lines, stderr, _) = run_child("init", "LOUD");
        assert_eq!(stderr, "");
        assert_eq!(
            (&lines[0]["level"], &lines[0]["message"]),
            (&json!("WARN"), &json!("logging at INFO"))
        );
        assert_eq!(lines[1]["message"], "an info line");
    }

    #[test]
    fn a_function_that_cannot_start_says_why_in_a_fatal_line() {
        let (lines, stderr, ok) = run_child("cannot start", "ERROR");
        assert!(ok, "{lines:?} {stderr}");
        assert_eq!(stderr, "");
        assert_eq!(
            without_timestamps(&lines),
            [
                json!({
                    "level": "FATAL",
                    "message": "relay: configuration error; the function cannot start",
                    "error": "environment variable TARGET_ROLE_ARN is not set; set it",
                }),
                json!({
                    "level": "FATAL",
                    "message": "the Lambda runtime loop stopped",
                    "error": "connection refused",
                }),
            ]
        );
    }
}
