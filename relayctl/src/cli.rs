//! The command line: `relayctl list|redrive --bucket NAME [filters]`, `relayctl pair ...`.

use crate::letter::Kind;
use crate::ops::Filter;
use crate::pair::args::{self as pair, PairArgs};

/// The first part of `--help`; [`help`] adds `relayctl pair`'s.
pub const HELP: &str = "\
relayctl: the dead letters of a cross-account-relay deployment, listed and redriven; its two
stacks deployed and destroyed in order (pair).
list and redrive run on your machine with the source account's credentials (AWS_PROFILE=source ...).

  relayctl list    --bucket NAME [FILTERS]
      the dead letters grouped by kind, with objects, records, reasons and the oldest's age
  relayctl redrive --bucket NAME --stream NAME [--dry-run] [FILTERS]
      puts the records of each dead letter back on the stream with their partition keys
      (PutRecords; refused entries are retried), then moves the object under redriven/ —
      only once all its records are written. Interrupt it and run it again: nothing is lost,
      but records written just before the interruption are written again (duplicates are
      possible; the target recognises a redelivered id within a container).
      Fix the cause first: a record that fails again is dead-lettered again, as a new object
      (nothing is lost, but it comes back). --kind redrives only the kinds whose cause is fixed.
      Objects that are not dead letters, and failed producer invocations (no records), are
      left in place and listed.

  --bucket NAME        the dead-letter bucket (pulumi stack output --stack source deadLetterBucketName)
  --stream NAME        the stream (pulumi stack output --stack source streamName)
  --dry-run            say what redrive would write and move, and change nothing

FILTERS
  --kind KIND          rejected_by_target, undeliverable, target_function_error,
                       failed_batch or failed_invocation
                       (repeat for several; default all)
  --older-than AGE     only objects at least this old: 90s, 15m, 2h, 7d
  --reason TEXT        only objects whose reason contains TEXT

Exit status: 0; 1 when the bucket cannot be read or an object could not be redriven (each is
named with its error and stays in the bucket), or when pair was refused or a step failed; 2 for
a command line it does not understand.";

/// The whole `--help`: the dead-letter commands, then `relayctl pair`.
pub fn help() -> String {
    let (head, tail) = HELP
        .split_once("\nFILTERS")
        .expect("HELP has a FILTERS section");
    format!("{head}\n{}\n\nFILTERS{tail}", pair::HELP)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    List {
        bucket: String,
        filter: Filter,
    },
    Redrive {
        bucket: String,
        stream: String,
        dry_run: bool,
        filter: Filter,
    },
    Pair(PairArgs),
}

/// `90s`, `15m`, `2h`, `7d` in seconds.
pub fn parse_age(value: &str) -> Result<i64, String> {
    let split = value.char_indices().last().map_or(0, |(i, _)| i);
    let (number, unit) = value.split_at(split);
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if n >= 0 && scale > 0 => n.checked_mul(scale).ok_or_else(|| {
            format!(
                "--older-than {value:?}: too large an age (at most {} days)",
                i64::MAX / 86_400
            )
        }),
        _ => Err(format!(
            "--older-than {value:?}: an age is a number and a unit, s, m, h or d (90s, 15m, 2h, 7d)"
        )),
    }
}

/// The command in `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Command::Help);
    };
    if matches!(command.as_str(), "--help" | "-h" | "help") {
        return Ok(Command::Help);
    }
    if command == "pair" {
        if rest.iter().any(|a| a == "--help" || a == "-h") {
            return Ok(Command::Help);
        }
        return pair::parse(rest).map(Command::Pair);
    }
    let mut bucket = None;
    let mut stream = None;
    let mut dry_run = false;
    let mut filter = Filter::default();
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value (see relayctl --help)"))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--bucket" => bucket = Some(value()?),
            "--stream" => stream = Some(value()?),
            "--dry-run" => dry_run = true,
            "--older-than" => filter.older_than = Some(parse_age(&value()?)?),
            "--reason" => filter.reason = Some(value()?),
            "--kind" => {
                let kind = value()?;
                let known: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                filter.kinds.push(Kind::parse(&kind).ok_or_else(|| {
                    format!("--kind {kind:?}: a kind is one of {}", known.join(", "))
                })?);
            }
            other => return Err(format!("unknown argument {other:?} (see relayctl --help)")),
        }
    }
    let bucket = bucket.ok_or("--bucket is required: the dead-letter bucket's name (pulumi stack output --stack source deadLetterBucketName)")?;
    match command.as_str() {
        "list" => Ok(Command::List { bucket, filter }),
        "redrive" => Ok(Command::Redrive {
            bucket,
            stream: stream.ok_or("redrive needs --stream: the stream's name (pulumi stack output --stack source streamName)")?,
            dry_run,
            filter,
        }),
        other => Err(format!("unknown command {other:?}: list, redrive or pair (see relayctl --help)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn commands_parse_with_their_filters() {
        assert_eq!(parse(&[]).unwrap(), Command::Help);
        assert_eq!(parse(&args("--help")).unwrap(), Command::Help);
        assert_eq!(
            parse(&args("list --bucket b --help")).unwrap(),
            Command::Help
        );
        assert_eq!(
            parse(&args("list --bucket b --kind failed_batch --kind undeliverable --older-than 2h --reason missing")).unwrap(),
            Command::List {
                bucket: "b".into(),
                filter: Filter {
                    kinds: vec![Kind::FailedBatch, Kind::Undeliverable],
                    older_than: Some(7_200),
                    reason: Some("missing".into()),
                },
            }
        );
        for (line, dry_run) in [
            ("redrive --bucket b --stream s --dry-run", true),
            ("redrive --bucket b --stream s", false),
        ] {
            let redrive = Command::Redrive {
                bucket: "b".into(),
                stream: "s".into(),
                dry_run,
                filter: Filter::default(),
            };
            assert_eq!(parse(&args(line)).unwrap(), redrive, "{line}");
        }
    }

    #[test]
    fn bad_arguments_say_what_is_wrong_and_how_to_fix_it() {
        let cases = [
            ("list", "--bucket is required"),
            ("redrive --bucket b", "redrive needs --stream"),
            ("list --bucket", "--bucket needs a value"),
            ("list --bucket b --kind rejected", "a kind is one of rejected_by_target, undeliverable, target_function_error, failed_batch, failed_invocation"),
            ("list --bucket b --older-than 2w", "an age is a number and a unit"),
            ("list --bucket b --verbose", "unknown argument \"--verbose\""),
            ("show --bucket b", "unknown command \"show\": list, redrive or pair"),
        ];
        for (line, needle) in cases {
            let err = parse(&args(line)).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }

    #[test]
    fn pair_is_a_command_and_its_help_is_listed() {
        let Command::Pair(pair) = parse(&args("pair up --source-stack s")).unwrap() else {
            panic!("pair")
        };
        assert_eq!(pair.source.stack, "s");
        assert_eq!(parse(&args("pair up --help")).unwrap(), Command::Help);
        let err = parse(&args("pair launch")).unwrap_err();
        assert!(err.contains("unknown pair action \"launch\""), "{err}");
        let help = help();
        assert!(
            help.contains("\n\n  relayctl pair preview|up|destroy|outputs"),
            "{help}"
        );
        assert!(help.contains("relayctl list    --bucket NAME"), "{help}");
        assert!(help.find("relayctl pair").unwrap() < help.find("\nFILTERS").unwrap());
        assert!(
            help.ends_with("a command line it does not understand."),
            "{help}"
        );
    }

    #[test]
    fn ages_are_a_number_and_a_unit() {
        assert_eq!(parse_age("90s"), Ok(90));
        assert_eq!(parse_age("15m"), Ok(900));
        assert_eq!(parse_age("2h"), Ok(7_200));
        assert_eq!(parse_age("7d"), Ok(604_800));
        for bad in ["", "h", "-1h", "1.5h", "2w", "10", "2é", "é"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        let max_days = i64::MAX / 86_400;
        assert_eq!(parse_age(&format!("{max_days}d")), Ok(max_days * 86_400));
        let too_large = parse_age(&format!("{}d", max_days + 1)).unwrap_err();
        assert!(too_large.contains("too large an age"), "{too_large}");
    }
}
