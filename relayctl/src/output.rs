//! What relayctl prints: the listing, the redrive plan and summary, and a progress bar.

use std::io::Write;

use crate::letter::{Kind, Letter, Unreadable};
use crate::ops::{age, summarise, RedriveReport};

/// What relayctl cannot redrive, why, and what to do instead: ends `relayctl list` and
/// `--help`.
pub const NOT_REDRIVEN: &str = "\
not redriven by relayctl (do these by hand):
  failed schedule ticks: in the scheduler's SQS dead-letter queue, not in this bucket (Scheduler
      accepts only SQS there), and relayctl does not read it. Each message is a tick the producer
      never ran: invoke the producer once per message (aws lambda invoke --function-name
      <producer>), then delete the message (aws sqs delete-message).
  failed_invocation: a producer invocation that kept failing; its object holds the tick's event,
      not records (the producer makes a tick's records when it runs). Once the cause is fixed,
      invoke the producer again, then delete the object (aws s3 rm). redrive leaves it in place.
";

/// The objects that are not dead letters: listed, never moved.
fn unreadable_lines(unreadable: &[Unreadable]) -> String {
    unreadable
        .iter()
        .map(|u| format!("not a dead letter, left in place: {u}\n"))
        .collect()
}

/// `relayctl list`: one block per kind, then the objects that are not dead letters, then what
/// relayctl does not redrive.
pub fn listing(letters: &[Letter], unreadable: &[Unreadable], now: i64) -> String {
    let mut out = String::new();
    let summary = summarise(letters, now);
    if summary.is_empty() {
        out.push_str("no dead letters\n");
    }
    // The kinds' column is as wide as the longest kind's name, so the counts line up.
    let width = Kind::ALL
        .iter()
        .map(|k| k.as_str().len())
        .max()
        .unwrap_or(0);
    for kind in summary {
        out.push_str(&format!(
            "{:<width$} {} objects, {} records, oldest {}\n",
            kind.kind.as_str(),
            kind.objects,
            kind.records,
            age(kind.oldest_age)
        ));
        for (reason, count) in &kind.reasons {
            out.push_str(&format!("    {count:>6}  {reason}\n"));
        }
    }
    out.push_str(&unreadable_lines(unreadable));
    out.push_str(NOT_REDRIVEN);
    out
}

/// `relayctl redrive --dry-run`: what would be written and moved (and what would not).
pub fn plan(letters: &[Letter], unreadable: &[Unreadable]) -> String {
    let mut out = unreadable_lines(unreadable);
    for letter in letters {
        let action = if letter.records.is_empty() {
            "left in place (no records: invoke the producer again, see relayctl --help)".to_string()
        } else {
            format!(
                "{} records to the stream, then moved under redriven/",
                letter.records.len()
            )
        };
        out.push_str(&format!("would redrive {}: {action}\n", letter.key));
    }
    let records: usize = letters.iter().map(|l| l.records.len()).sum();
    out.push_str(&format!(
        "dry run: {} objects, {records} records; nothing was written or moved\n",
        letters.len()
    ));
    out
}

/// The lines after a redrive: the objects that are not dead letters, then the counts.
pub fn summary(report: &RedriveReport, unreadable: &[Unreadable]) -> String {
    let mut out = unreadable_lines(unreadable);
    out.push_str(&format!(
        "redriven: {} objects, {} records written; {} left in place without records; {} failed\n",
        report.objects_redriven,
        report.records_written,
        report.skipped.len(),
        report.failed.len()
    ));
    for (key, error) in &report.failed {
        out.push_str(&format!("failed: {key}: {error}\n"));
    }
    if !report.failed.is_empty() {
        out.push_str(
            "the failed objects are still in the bucket: fix the cause and run redrive again\n",
        );
    }
    out
}

/// `[#####.....] 12/40 objects, 150 records written`, redrawn in place on a terminal; one
/// line per tenth of the way otherwise (a log file gets ten lines, not thousands).
pub struct ProgressBar<W: Write> {
    out: W,
    total: usize,
    terminal: bool,
    shown_tenths: usize,
}

impl<W: Write> ProgressBar<W> {
    pub fn new(out: W, total: usize, terminal: bool) -> Self {
        Self {
            out,
            total,
            terminal,
            shown_tenths: 0,
        }
    }

    pub fn line(done: usize, total: usize, records: usize) -> String {
        const WIDTH: usize = 30;
        let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
        format!(
            "[{}{}] {done}/{total} objects, {records} records written",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled)
        )
    }

    pub fn update(&mut self, done: usize, report: &RedriveReport) {
        let line = Self::line(done, self.total, report.records_written);
        let tenths = (done * 10).checked_div(self.total).unwrap_or(10);
        // A failed write of the progress bar must not stop the redrive: ignored.
        if self.terminal {
            let _ = write!(self.out, "\r{line}");
            if done == self.total {
                let _ = writeln!(self.out);
            }
        } else if tenths > self.shown_tenths || done == self.total {
            self.shown_tenths = tenths;
            let _ = writeln!(self.out, "{line}");
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::letter::{Kind, Record};

    fn letter(key: &str, kind: Kind, reason: &str, written_at: i64, records: usize) -> Letter {
        Letter {
            key: key.into(),
            kind,
            reason: reason.into(),
            written_at,
            records: vec![
                Record {
                    partition_key: "p".into(),
                    explicit_hash_key: None,
                    data: vec![]
                };
                records
            ],
        }
    }

    #[test]
    fn the_listing_shows_each_kind_with_its_reasons() {
        let letters = [
            letter("relay/a", Kind::RejectedByTarget, "bad", 0, 1),
            letter("relay/b", Kind::RejectedByTarget, "bad", 50, 1),
            letter(
                "aws/lambda/u/x",
                Kind::FailedBatch,
                "RetryAttemptsExhausted",
                40,
                3,
            ),
        ];
        let unreadable = [Unreadable {
            key: "notes.txt".into(),
            reason: "not JSON".into(),
        }];
        assert_eq!(
            listing(&letters, &unreadable, 3_600),
            "rejected_by_target    2 objects, 2 records, oldest 1h\n         2  bad\n\
             failed_batch          1 objects, 3 records, oldest 59m 20s\n         1  RetryAttemptsExhausted\n\
             not a dead letter, left in place: s3 object notes.txt is not a dead letter relayctl can read: not JSON\n"
                .to_string()
                + NOT_REDRIVEN
        );
        assert_eq!(
            listing(&[], &[], 0),
            format!("no dead letters\n{NOT_REDRIVEN}")
        );
        assert!(
            NOT_REDRIVEN.contains("failed schedule ticks")
                && NOT_REDRIVEN.contains("failed_invocation")
        );
    }

    #[test]
    fn a_dry_run_says_what_it_would_do() {
        let letters = [
            letter("relay/a", Kind::RejectedByTarget, "bad", 0, 1),
            letter(
                "aws/lambda/async/p/x",
                Kind::FailedInvocation,
                "RetriesExhausted",
                0,
                0,
            ),
        ];
        let unreadable = [Unreadable {
            key: "notes.txt".into(),
            reason: "not JSON".into(),
        }];
        assert_eq!(
            plan(&letters, &unreadable),
            "not a dead letter, left in place: s3 object notes.txt is not a dead letter relayctl can read: not JSON\n\
             would redrive relay/a: 1 records to the stream, then moved under redriven/\n\
             would redrive aws/lambda/async/p/x: left in place (no records: invoke the producer again, see relayctl --help)\n\
             dry run: 2 objects, 1 records; nothing was written or moved\n"
        );
    }

    #[test]
    fn the_summary_names_each_failure() {
        let report = RedriveReport {
            objects_redriven: 2,
            records_written: 5,
            skipped: vec!["k".into()],
            failed: vec![("relay/a".into(), "AccessDenied".into())],
        };
        assert_eq!(
            summary(&report, &[]),
            "redriven: 2 objects, 5 records written; 1 left in place without records; 1 failed\n\
             failed: relay/a: AccessDenied\n\
             the failed objects are still in the bucket: fix the cause and run redrive again\n"
        );
    }

    #[test]
    fn the_progress_bar_redraws_on_a_terminal_and_logs_tenths_elsewhere() {
        assert_eq!(
            ProgressBar::<Vec<u8>>::line(1, 3, 7),
            format!(
                "[{}{}] 1/3 objects, 7 records written",
                "#".repeat(10),
                ".".repeat(20)
            )
        );
        assert_eq!(
            ProgressBar::<Vec<u8>>::line(2, 3, 0),
            format!(
                "[{}{}] 2/3 objects, 0 records written",
                "#".repeat(20),
                ".".repeat(10)
            )
        );
        assert_eq!(
            ProgressBar::<Vec<u8>>::line(0, 0, 0),
            format!("[{}] 0/0 objects, 0 records written", "#".repeat(30))
        );
        let report = RedriveReport::default();
        let mut tty = ProgressBar::new(Vec::new(), 2, true);
        tty.update(1, &report);
        tty.update(2, &report);
        let text = String::from_utf8(tty.out).unwrap();
        assert_eq!(text.matches('\r').count(), 2);
        assert!(text.ends_with("2/2 objects, 0 records written\n"), "{text}");
        let mut log = ProgressBar::new(Vec::new(), 100, false);
        for done in 1..=100 {
            log.update(done, &report);
        }
        let text = String::from_utf8(log.out).unwrap();
        let shown: Vec<&str> = text
            .lines()
            .map(|l| l.split_once("] ").unwrap().1)
            .collect();
        let tenths: Vec<String> = (1..=10)
            .map(|t| format!("{}/100 objects, 0 records written", t * 10))
            .collect();
        assert_eq!(shown, tenths, "{text}");
    }
}
