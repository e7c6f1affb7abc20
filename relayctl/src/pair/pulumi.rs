//! The Pulumi CLI as a port: one call at a time, its engine events as they are written.
//!
//! [`Cli`] runs the real `pulumi` the way Pulumi's Automation API does: the CLI underneath,
//! `--non-interactive`, `--yes --skip-preview` for an update after its own preview, and
//! `--event-log <file>` for machine-readable engine events, which it reads while the command
//! runs (each a JSON object per line, `apitype.EngineEvent` in pulumi/sdk).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use super::call::{Call, EnvChange};

/// What a finished call left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// The exit status; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit 255`, `a signal`: how it ended, for a message.
    pub fn status(&self) -> String {
        match self.code {
            Some(code) => format!("exit {code}"),
            None => "ended by a signal".to_string(),
        }
    }
}

/// The CLI could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("could not run {program}: {error} (is the Pulumi CLI installed and on PATH? https://www.pulumi.com/docs/install/)")]
    Spawn {
        program: String,
        error: std::io::Error,
    },
    #[error("lost track of {program}: {error}")]
    Wait {
        program: String,
        error: std::io::Error,
    },
}

/// The engine events the pair reads; every other kind is [`EngineEvent::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// A resource step began (`resourcePreEvent`).
    StepStarted { op: String, urn: String },
    /// A resource step finished (`resOutputsEvent`).
    StepDone { op: String, urn: String },
    /// A resource step failed (`resOpFailedEvent`).
    StepFailed { op: String, urn: String },
    /// A message of the engine, a provider or the program (`diagnosticEvent`).
    Diagnostic { severity: String, message: String },
    /// The end of the operation: how many resources of each operation (`summaryEvent`).
    Summary { changes: BTreeMap<String, u64> },
    /// Any other event.
    Other,
    /// A line of the event log that is not an engine event.
    Unreadable { error: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    resource_pre_event: Option<RawStep>,
    res_outputs_event: Option<RawStep>,
    res_op_failed_event: Option<RawStep>,
    diagnostic_event: Option<RawDiagnostic>,
    summary_event: Option<RawSummary>,
}

#[derive(Deserialize)]
struct RawStep {
    metadata: RawMetadata,
}

#[derive(Deserialize)]
struct RawMetadata {
    op: String,
    urn: String,
}

#[derive(Deserialize)]
struct RawDiagnostic {
    message: String,
    severity: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSummary {
    /// Go writes an empty map as `null`.
    #[serde(default)]
    resource_changes: Option<BTreeMap<String, u64>>,
}

impl EngineEvent {
    /// One line of an event log.
    pub fn parse(line: &str) -> Self {
        let raw: RawEvent = match serde_json::from_str(line) {
            Ok(raw) => raw,
            Err(e) => {
                return EngineEvent::Unreadable {
                    error: e.to_string(),
                }
            }
        };
        let step = |s: RawStep| (s.metadata.op, s.metadata.urn);
        if let Some((op, urn)) = raw.resource_pre_event.map(step) {
            EngineEvent::StepStarted { op, urn }
        } else if let Some((op, urn)) = raw.res_outputs_event.map(step) {
            EngineEvent::StepDone { op, urn }
        } else if let Some((op, urn)) = raw.res_op_failed_event.map(step) {
            EngineEvent::StepFailed { op, urn }
        } else if let Some(d) = raw.diagnostic_event {
            EngineEvent::Diagnostic {
                severity: d.severity,
                message: d.message,
            }
        } else if let Some(s) = raw.summary_event {
            EngineEvent::Summary {
                changes: s.resource_changes.unwrap_or_default(),
            }
        } else {
            EngineEvent::Other
        }
    }
}

/// The Pulumi CLI.
pub trait Pulumi {
    /// Runs `call` with `env` applied to the inherited environment, to its end. If the call
    /// reads engine events, each is handed to `on_event` as the CLI writes it.
    fn run(
        &mut self,
        call: &Call,
        env: &[EnvChange],
        on_event: &mut dyn FnMut(EngineEvent),
    ) -> Result<Finished, DriverError>;
}

/// The complete lines a growing file gained since the last read.
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Hands every new complete line to `on_line`. A file not created yet has no lines.
    fn drain(&mut self, on_line: &mut dyn FnMut(&str)) {
        let Ok(mut file) = File::open(&self.path) else {
            return;
        };
        let mut fresh = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut fresh).is_err()
        {
            return;
        }
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if !text.is_empty() {
                on_line(text);
            }
        }
    }
}

/// The real CLI: `program` (`pulumi` on PATH), run in `cwd`, event logs in `temp_dir`.
pub struct Cli {
    pub program: PathBuf,
    pub cwd: PathBuf,
    pub temp_dir: PathBuf,
    /// How often a running call's event log is read.
    pub poll: Duration,
    runs: u32,
}

impl Cli {
    pub fn new(program: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            cwd: cwd.into(),
            temp_dir: std::env::temp_dir(),
            poll: Duration::from_millis(100),
            runs: 0,
        }
    }

    fn event_log_path(&mut self) -> PathBuf {
        self.runs += 1;
        self.temp_dir.join(format!(
            "relayctl-pair-{}-{}.events.jsonl",
            std::process::id(),
            self.runs
        ))
    }
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A pipe that breaks leaves what was read: the exit status says how the call ended.
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Pulumi for Cli {
    fn run(
        &mut self,
        call: &Call,
        env: &[EnvChange],
        on_event: &mut dyn FnMut(EngineEvent),
    ) -> Result<Finished, DriverError> {
        let log = call.event_log.then(|| self.event_log_path());
        let program = self.program.display().to_string();
        let mut command = Command::new(&self.program);
        command
            .args(call.argv(log.as_deref().and_then(Path::to_str)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for change in &call.env(env) {
            match change {
                EnvChange::Set(name, value) => command.env(name, value),
                EnvChange::Unset(name) => command.env_remove(name),
            };
        }
        let mut child = command.spawn().map_err(|error| DriverError::Spawn {
            program: program.clone(),
            error,
        })?;
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        let mut tail = log.clone().map(LogTail::new);
        let mut on_line = |line: &str| on_event(EngineEvent::parse(line));
        let status = loop {
            let exited = child.try_wait().map_err(|error| DriverError::Wait {
                program: program.clone(),
                error,
            })?;
            if let Some(tail) = tail.as_mut() {
                tail.drain(&mut on_line);
            }
            match exited {
                Some(status) => break status,
                None => std::thread::sleep(self.poll),
            }
        };
        if let Some(path) = &log {
            // The log is relayctl's own scratch file; one left behind is harmless.
            let _ = std::fs::remove_file(path);
        }
        Ok(Finished {
            code: status.code(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra::config::StackSide;
    use std::io::Write;

    #[test]
    fn engine_events_are_read_by_kind() {
        let cases = [
            (
                r#"{"sequence":1,"timestamp":2,"resourcePreEvent":{"metadata":{"op":"create","urn":"urn:a","type":"t"},"planning":true}}"#,
                EngineEvent::StepStarted {
                    op: "create".into(),
                    urn: "urn:a".into(),
                },
            ),
            (
                r#"{"resOutputsEvent":{"metadata":{"op":"same","urn":"urn:b"}}}"#,
                EngineEvent::StepDone {
                    op: "same".into(),
                    urn: "urn:b".into(),
                },
            ),
            (
                r#"{"resOpFailedEvent":{"metadata":{"op":"update","urn":"urn:c"},"status":1,"steps":0}}"#,
                EngineEvent::StepFailed {
                    op: "update".into(),
                    urn: "urn:c".into(),
                },
            ),
            (
                r#"{"diagnosticEvent":{"message":"boom\n","color":"never","severity":"error"}}"#,
                EngineEvent::Diagnostic {
                    severity: "error".into(),
                    message: "boom\n".into(),
                },
            ),
            (
                r#"{"summaryEvent":{"maybeCorrupt":false,"durationSeconds":3,"resourceChanges":{"create":3,"same":1},"PolicyPacks":{}}}"#,
                EngineEvent::Summary {
                    changes: [("create".to_string(), 3), ("same".to_string(), 1)].into(),
                },
            ),
            (
                r#"{"summaryEvent":{"resourceChanges":null,"result":"failed"}}"#,
                EngineEvent::Summary {
                    changes: BTreeMap::new(),
                },
            ),
            (r#"{"preludeEvent":{"config":{}}}"#, EngineEvent::Other),
        ];
        for (line, event) in cases {
            assert_eq!(EngineEvent::parse(line), event, "{line}");
        }
        assert!(matches!(
            EngineEvent::parse("{\"resourcePreEvent\": 3}"),
            EngineEvent::Unreadable { .. }
        ));
        assert!(matches!(
            EngineEvent::parse("not json"),
            EngineEvent::Unreadable { .. }
        ));
    }

    #[test]
    fn a_tail_hands_out_complete_lines_once() {
        let dir = crate::pair::scratch("tail");
        let path = dir.join("log");
        let mut tail = LogTail::new(path.clone());
        let mut seen = Vec::new();
        tail.drain(&mut |l| seen.push(l.to_string()));
        assert!(seen.is_empty(), "no file yet, no lines");
        let mut file = File::create(&path).unwrap();
        write!(file, "one\ntw").unwrap();
        tail.drain(&mut |l| seen.push(l.to_string()));
        write!(file, "o\n\nthree\n").unwrap();
        tail.drain(&mut |l| seen.push(l.to_string()));
        tail.drain(&mut |l| seen.push(l.to_string()));
        assert_eq!(seen, ["one", "two", "three"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A stand-in `pulumi`: a shell script that writes its arguments and its environment's
    /// AWS_PROFILE to stdout, two events to the event log with a pause between, and exits 3.
    fn fake_cli(dir: &Path) -> PathBuf {
        let script = dir.join("pulumi");
        std::fs::write(
            &script,
            r#"#!/bin/sh
echo "args: $*"
echo "profile: ${AWS_PROFILE:-none} parent: ${RELAYCTL_TEST_PARENT:-none} backend: ${PULUMI_BACKEND_URL:-none} debug: ${PULUMI_DEBUG_COMMANDS:-none}"
echo "to stderr" >&2
log=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--event-log" ]; then log="$2"; fi
  shift
done
if [ -n "$log" ]; then
  printf '{"resourcePreEvent":{"metadata":{"op":"create","urn":"u1"}}}\n' > "$log"
  sleep 0.3
  printf '{"resOutputsEvent":{"metadata":{"op":"create","urn":"u1"}}}\n{"summaryEvent":{"resourceChanges":{"create":1}}}\n' >> "$log"
fi
exit 3
"#,
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[test]
    fn the_cli_runs_with_the_calls_environment_and_streams_its_events() {
        let dir = crate::pair::scratch("cli");
        let mut cli = Cli::new(fake_cli(&dir), &dir);
        cli.temp_dir = dir.clone();
        cli.poll = Duration::from_millis(20);
        let env = vec![
            EnvChange::Set("AWS_PROFILE".into(), "target".into()),
            EnvChange::Unset("RELAYCTL_TEST_PARENT".into()),
            EnvChange::Set("PULUMI_BACKEND_URL".into(), "file:///x".into()),
        ];
        // A variable of the parent that the call unsets does not reach it.
        std::env::set_var("RELAYCTL_TEST_PARENT", "inherited");
        let mut events = Vec::new();
        let finished = cli
            .run(&Call::up(StackSide::Target, "t"), &env, &mut |e| {
                events.push(e)
            })
            .unwrap();
        assert_eq!(finished.code, Some(3));
        assert!(!finished.success());
        assert_eq!(finished.status(), "exit 3");
        let log = dir.join(format!(
            "relayctl-pair-{}-1.events.jsonl",
            std::process::id()
        ));
        assert!(
            finished.stdout.contains(&format!(
                "args: --non-interactive --color never up --stack t --yes --skip-preview --event-log {}",
                log.display()
            )),
            "{}",
            finished.stdout
        );
        assert!(
            finished
                .stdout
                .contains("profile: target parent: none backend: file:///x debug: true"),
            "{}",
            finished.stdout
        );
        assert_eq!(finished.stderr, "to stderr\n");
        assert_eq!(
            events,
            vec![
                EngineEvent::StepStarted {
                    op: "create".into(),
                    urn: "u1".into()
                },
                EngineEvent::StepDone {
                    op: "create".into(),
                    urn: "u1".into()
                },
                EngineEvent::Summary {
                    changes: [("create".to_string(), 1)].into()
                },
            ]
        );
        assert!(!log.exists(), "the event log is removed after the run");
        // A call without an event log gets no --event-log and hands out no events.
        let mut none = 0;
        let finished = cli
            .run(&Call::outputs(StackSide::Target, "t"), &[], &mut |_| {
                none += 1
            })
            .unwrap();
        assert!(finished
            .stdout
            .contains("args: --non-interactive --color never stack output --json --stack t\n"));
        assert!(
            finished.stdout.contains("parent: inherited"),
            "what a call does not unset is inherited"
        );
        assert!(
            finished.stdout.contains("debug: none"),
            "only an event-log call enables it"
        );
        assert_eq!(none, 0);
        std::env::remove_var("RELAYCTL_TEST_PARENT");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_cli_says_how_to_get_one() {
        let mut cli = Cli::new("/nonexistent/pulumi", ".");
        let err = cli
            .run(&Call::outputs(StackSide::Source, "s"), &[], &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not run /nonexistent/pulumi"), "{err}");
        assert!(
            err.contains("https://www.pulumi.com/docs/install/"),
            "{err}"
        );
        assert_eq!(
            Finished {
                code: None,
                ..Finished::default()
            }
            .status(),
            "ended by a signal"
        );
    }
}
