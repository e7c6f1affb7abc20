//! Progress of one Pulumi operation on one stack, from its engine events: resources done of
//! those planned, one updating line on a terminal, plain lines (at each tenth) otherwise, then
//! one line that says what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use super::pulumi::EngineEvent;

/// Operations that change nothing: not counted as work planned or done.
const UNCHANGED: [&str; 2] = ["same", "read"];

/// Each operation of a summary, in the order they are shown, as a preview and as a result
/// say it.
const WORDS: [(&str, &str, &str); 6] = [
    ("create", "to create", "created"),
    ("update", "to update", "updated"),
    ("replace", "to replace", "replaced"),
    ("delete", "to delete", "deleted"),
    ("same", "unchanged", "unchanged"),
    ("read", "to read", "read"),
];

/// The resources a preview's summary plans to change, by operation.
pub fn planned_changes(summary: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    summary
        .iter()
        .filter(|(op, n)| !UNCHANGED.contains(&op.as_str()) && **n > 0)
        .map(|(op, n)| (op.clone(), *n))
        .collect()
}

/// `14 to create, 2 unchanged` (a preview) or `14 created, 2 unchanged`; `no changes, ...`
/// when nothing changes.
pub fn describe(summary: &BTreeMap<String, u64>, preview: bool) -> String {
    let word = |op: &str| {
        WORDS
            .iter()
            .find(|(o, _, _)| *o == op)
            .map(|(_, before, after)| if preview { *before } else { *after })
    };
    let known: Vec<(&str, u64)> = WORDS
        .iter()
        .filter_map(|(op, _, _)| summary.get(*op).map(|n| (*op, *n)))
        .chain(
            summary
                .iter()
                .filter(|(op, _)| word(op).is_none())
                .map(|(op, n)| (op.as_str(), *n)),
        )
        .filter(|(_, n)| *n > 0)
        .collect();
    let parts: Vec<String> = known
        .iter()
        .map(|(op, n)| format!("{n} {}", word(op).unwrap_or(op)))
        .collect();
    let text = if parts.is_empty() {
        "no resources".to_string()
    } else {
        parts.join(", ")
    };
    if planned_changes(summary).is_empty() {
        format!("no changes, {text}")
    } else {
        text
    }
}

/// Seconds with one decimal: `6.2 s`.
pub fn seconds(elapsed: Duration) -> String {
    format!("{:.1} s", elapsed.as_secs_f64())
}

/// What one operation reported, once it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The summary event's counts, if the engine got that far.
    pub summary: Option<BTreeMap<String, u64>>,
    /// The engine's and the providers' error messages, in order.
    pub errors: Vec<String>,
    /// Resources whose step failed (their URN).
    pub failed: Vec<String>,
    /// Resources done of those planned.
    pub done: u64,
    /// Lines of the event log that were not engine events.
    pub unreadable: u64,
}

/// The progress of one operation: `label` is `target: up`.
pub struct Progress<'a> {
    out: &'a mut dyn Write,
    terminal: bool,
    label: String,
    /// Operations that count as work, and how many resources they plan; empty for a preview,
    /// which only counts what it finds.
    planned: BTreeMap<String, u64>,
    counted: BTreeSet<String>,
    seen: u64,
    shown_tenths: u64,
    report: Report,
}

impl<'a> Progress<'a> {
    /// `planned`: what the operation's preview planned ([`planned_changes`]); empty when there
    /// is no plan (a preview itself).
    pub fn new(
        out: &'a mut dyn Write,
        terminal: bool,
        label: String,
        planned: BTreeMap<String, u64>,
    ) -> Self {
        let counted = planned.keys().cloned().collect();
        Self {
            out,
            terminal,
            label,
            planned,
            counted,
            seen: 0,
            shown_tenths: 0,
            report: Report::default(),
        }
    }

    fn total(&self) -> u64 {
        self.planned.values().sum()
    }

    /// `target: up 7/14 resources`, or `target: preview 9 resources` without a plan.
    pub fn line(&self) -> String {
        if self.planned.is_empty() {
            format!("{} {} resources", self.label, self.seen)
        } else {
            format!(
                "{} {}/{} resources",
                self.label,
                self.report.done.min(self.total()),
                self.total()
            )
        }
    }

    /// Takes one engine event into account.
    pub fn event(&mut self, event: EngineEvent) {
        let before = (self.seen, self.report.done);
        match event {
            EngineEvent::StepStarted { .. } => self.seen += 1,
            EngineEvent::StepDone { op, .. } if self.counted.contains(&op) => self.report.done += 1,
            EngineEvent::StepFailed { urn, .. } => self.report.failed.push(urn),
            EngineEvent::Diagnostic { severity, message } if severity == "error" => {
                self.report.errors.push(message.trim().to_string())
            }
            EngineEvent::Summary { changes } => self.report.summary = Some(changes),
            EngineEvent::Unreadable { .. } => self.report.unreadable += 1,
            _ => {}
        }
        if before != (self.seen, self.report.done) {
            self.show();
        }
    }

    fn show(&mut self) {
        let line = self.line();
        // Progress that cannot be written must not stop the operation: ignored.
        if self.terminal {
            let _ = write!(self.out, "\r\x1b[2K{line}");
        } else if !self.planned.is_empty() {
            let total = self.total();
            let tenths = (self.report.done.min(total) * 10)
                .checked_div(total)
                .unwrap_or(10);
            if tenths > self.shown_tenths {
                self.shown_tenths = tenths;
                let _ = writeln!(self.out, "{line}");
            }
        }
        let _ = self.out.flush();
    }

    /// Ends the operation with its one line (`target: up: 14 created (6.2 s)`) and returns
    /// what it reported. `ok`: the CLI exited 0.
    pub fn finish(self, ok: bool, preview: bool, elapsed: Duration) -> Report {
        let what = match (&self.report.summary, ok) {
            (Some(summary), true) => describe(summary, preview),
            _ if self.planned.is_empty() => "failed".to_string(),
            _ => format!(
                "failed after {}/{} resources",
                self.report.done.min(self.total()),
                self.total()
            ),
        };
        let unreadable = match self.report.unreadable {
            0 => String::new(),
            n => format!("; {n} event log lines were not engine events"),
        };
        if self.terminal {
            let _ = write!(self.out, "\r\x1b[2K");
        }
        let _ = writeln!(
            self.out,
            "{}: {what} ({}){unreadable}",
            self.label,
            seconds(elapsed)
        );
        let _ = self.out.flush();
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn done(op: &str) -> EngineEvent {
        EngineEvent::StepDone {
            op: op.into(),
            urn: format!("urn:{op}"),
        }
    }

    fn started() -> EngineEvent {
        EngineEvent::StepStarted {
            op: "create".into(),
            urn: "u".into(),
        }
    }

    #[test]
    fn summaries_say_what_changes_in_a_fixed_order() {
        let plan = changes(&[
            ("same", 2),
            ("create", 14),
            ("delete", 1),
            ("update", 0),
            ("import", 3),
        ]);
        assert_eq!(
            describe(&plan, true),
            "14 to create, 1 to delete, 2 unchanged, 3 import"
        );
        assert_eq!(
            describe(&plan, false),
            "14 created, 1 deleted, 2 unchanged, 3 import"
        );
        assert_eq!(
            describe(&changes(&[("same", 14), ("read", 1)]), false),
            "no changes, 14 unchanged, 1 read"
        );
        assert_eq!(
            describe(&changes(&[("replace", 1), ("update", 2)]), true),
            "2 to update, 1 to replace"
        );
        assert_eq!(describe(&changes(&[]), true), "no changes, no resources");
        assert_eq!(
            planned_changes(&plan),
            changes(&[("create", 14), ("delete", 1), ("import", 3)])
        );
        assert_eq!(seconds(Duration::from_millis(6_249)), "6.2 s");
    }

    #[test]
    fn plain_output_shows_each_tenth_then_one_summary_line() {
        let mut out = Vec::new();
        let mut p = Progress::new(
            &mut out,
            false,
            "target: up".into(),
            changes(&[("create", 4)]),
        );
        p.event(started());
        p.event(done("create"));
        p.event(done("same")); // not planned work: not counted
        p.event(EngineEvent::Other);
        p.event(done("create"));
        p.event(done("create"));
        p.event(done("create"));
        p.event(done("create")); // more than planned is shown as all
        p.event(EngineEvent::Summary {
            changes: changes(&[("create", 4), ("same", 1)]),
        });
        let report = p.finish(true, false, Duration::from_millis(6_200));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "target: up 1/4 resources\ntarget: up 2/4 resources\ntarget: up 3/4 resources\n\
             target: up 4/4 resources\ntarget: up: 4 created, 1 unchanged (6.2 s)\n"
        );
        assert_eq!(report.done, 5);
        assert_eq!(report.summary, Some(changes(&[("create", 4), ("same", 1)])));
    }

    #[test]
    fn a_terminal_gets_one_line_that_updates() {
        let mut out = Vec::new();
        let mut p = Progress::new(
            &mut out,
            true,
            "source: destroy".into(),
            changes(&[("delete", 2)]),
        );
        p.event(done("delete"));
        p.event(done("delete"));
        p.event(EngineEvent::Summary {
            changes: changes(&[("delete", 2)]),
        });
        p.finish(true, false, Duration::from_secs(1));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\r\x1b[2Ksource: destroy 1/2 resources\r\x1b[2Ksource: destroy 2/2 resources\
             \r\x1b[2Ksource: destroy: 2 deleted (1.0 s)\n"
        );
    }

    #[test]
    fn a_preview_counts_what_it_finds_and_prints_only_its_summary_when_plain() {
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, false, "target: preview".into(), BTreeMap::new());
        p.event(started());
        p.event(started());
        assert_eq!(p.line(), "target: preview 2 resources");
        p.event(EngineEvent::Summary {
            changes: changes(&[("create", 2)]),
        });
        p.finish(true, true, Duration::from_millis(1_000));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "target: preview: 2 to create (1.0 s)\n"
        );

        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, true, "target: preview".into(), BTreeMap::new());
        p.event(started());
        p.finish(false, true, Duration::ZERO);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\r\x1b[2Ktarget: preview 1 resources\r\x1b[2Ktarget: preview: failed (0.0 s)\n"
        );
    }

    #[test]
    fn a_failure_keeps_the_errors_and_says_how_far_it_got() {
        let mut out = Vec::new();
        let mut p = Progress::new(
            &mut out,
            false,
            "source: up".into(),
            changes(&[("create", 10)]),
        );
        p.event(done("create"));
        p.event(EngineEvent::Diagnostic {
            severity: "info".into(),
            message: "hello".into(),
        });
        p.event(EngineEvent::Diagnostic {
            severity: "error".into(),
            message: "  bad config\n".into(),
        });
        p.event(EngineEvent::StepFailed {
            op: "create".into(),
            urn: "urn:x".into(),
        });
        p.event(EngineEvent::Unreadable { error: "x".into() });
        // A summary came, but the CLI failed: the failure is what is said.
        p.event(EngineEvent::Summary {
            changes: changes(&[("create", 1)]),
        });
        let report = p.finish(false, false, Duration::from_millis(2_000));
        assert_eq!(report.errors, ["bad config"]);
        assert_eq!(report.failed, ["urn:x"]);
        assert_eq!(report.unreadable, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "target: up 1/10 resources\n".replace("target", "source")
                + "source: up: failed after 1/10 resources (2.0 s); 1 event log lines were not engine events\n"
        );
    }
}
