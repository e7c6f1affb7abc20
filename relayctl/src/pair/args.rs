//! The command line of `relayctl pair`: the action, the two stacks and how to reach each.

use std::fmt;

/// What `relayctl pair` does with the two stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The checks, then `pulumi preview` of the target, then of the source as `up` would
    /// configure it.
    Preview,
    /// The checks, then the target, the source's wiring to it, then the source.
    Up,
    /// The source, then the target.
    Destroy,
    /// Both stacks' outputs, as one JSON object.
    Outputs,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Preview,
        Action::Up,
        Action::Destroy,
        Action::Outputs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Preview => "preview",
            Action::Up => "up",
            Action::Destroy => "destroy",
            Action::Outputs => "outputs",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == word)
    }
}

/// One stack of the pair and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackArgs {
    /// The stack's name as `pulumi --stack` takes it (`target`, `org/project/target`).
    pub stack: String,
    /// The named AWS profile its Pulumi runs get (`--target-profile`); unset: the stack's own
    /// `aws:profile`, else the environment's credentials.
    pub profile: Option<String>,
    /// The backend holding it (`--target-backend`, as `PULUMI_BACKEND_URL`); unset: the
    /// environment's `PULUMI_BACKEND_URL`, else the current `pulumi login`.
    pub backend: Option<String>,
}

impl StackArgs {
    fn new(stack: &str) -> Self {
        Self {
            stack: stack.to_string(),
            profile: None,
            backend: None,
        }
    }
}

/// `relayctl pair <action> [options]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairArgs {
    pub action: Action,
    pub target: StackArgs,
    pub source: StackArgs,
    /// Print the CLI calls and run none.
    pub dry_run: bool,
}

pub const DEFAULT_TARGET_STACK: &str = "target";
pub const DEFAULT_SOURCE_STACK: &str = "source";

// (No `\` line continuation on the first line: it would eat the indent.)
pub const HELP: &str =
    "  relayctl pair preview|up|destroy|outputs [--target-stack NAME] [--source-stack NAME]
               [--target-profile PROFILE] [--source-profile PROFILE]
               [--target-backend URL] [--source-backend URL] [--dry-run]
      both stacks of a deployment through the Pulumi CLI, run from the project's folder, each
      with its own account's credentials: up deploys the target, gives the source the target's
      outputs (targetStack, a StackReference, when both stacks are in one backend; else
      targetRoleArn, targetFunctionName and targetRegion), then deploys the source; destroy
      goes the other way; preview shows what up would do; outputs prints both stacks' outputs
      as JSON. Before preview, up and destroy it checks with STS that each stack's credentials
      belong to the account the stack is pinned to; before preview and up, that the two stacks
      agree (the same externalId, compared without printing it, namePrefix, sourceAccountId and
      targetAccountId). A refusal names the `pulumi config set` line that fixes it; a failure
      stops the sequence and names the stack and the command to run next.
  --target-stack NAME  the target stack (default target); --source-stack NAME (default source)
  --target-profile P   the AWS profile for the target stack's runs (default: its aws:profile,
                       else the environment's credentials); --source-profile P likewise
  --target-backend URL the target stack's backend (PULUMI_BACKEND_URL for its runs);
                       --source-backend URL likewise. Different backends: the source gets the
                       target's outputs as config values instead of a StackReference
  --dry-run            print the CLI calls it would make, one per line, and run none";

/// Parses the arguments after `relayctl pair`.
pub fn parse(args: &[String]) -> Result<PairArgs, String> {
    let actions = || Action::ALL.map(Action::as_str).join(", ");
    let Some((action, rest)) = args.split_first() else {
        return Err(format!(
            "pair needs an action: {} (see relayctl --help)",
            actions()
        ));
    };
    let action = Action::parse(action).ok_or_else(|| {
        format!(
            "unknown pair action {action:?}: {} (see relayctl --help)",
            actions()
        )
    })?;
    let mut pair = PairArgs {
        action,
        target: StackArgs::new(DEFAULT_TARGET_STACK),
        source: StackArgs::new(DEFAULT_SOURCE_STACK),
        dry_run: false,
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        if flag == "--dry-run" {
            pair.dry_run = true;
            continue;
        }
        let value = rest
            .next()
            .filter(|v| !v.is_empty() && !v.starts_with("--"))
            .ok_or_else(|| format!("{flag} needs a value (see relayctl --help)"))?
            .clone();
        match flag.as_str() {
            "--target-stack" => pair.target.stack = value,
            "--source-stack" => pair.source.stack = value,
            "--target-profile" => pair.target.profile = Some(value),
            "--source-profile" => pair.source.profile = Some(value),
            "--target-backend" => pair.target.backend = Some(value),
            "--source-backend" => pair.source.backend = Some(value),
            other => {
                return Err(format!(
                    "unknown argument {other:?} for relayctl pair (see relayctl --help)"
                ))
            }
        }
    }
    if pair.target.stack == pair.source.stack && pair.target.backend == pair.source.backend {
        return Err(format!(
            "--target-stack and --source-stack both name {:?}: a pair is two stacks",
            pair.target.stack
        ));
    }
    Ok(pair)
}

/// The command line that runs `args` again: what a failure tells the operator to run next.
impl fmt::Display for PairArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "relayctl pair {}", self.action.as_str())?;
        for (name, stack) in [("target", &self.target), ("source", &self.source)] {
            write!(f, " --{name}-stack {}", shell_word(&stack.stack))?;
            if let Some(profile) = &stack.profile {
                write!(f, " --{name}-profile {}", shell_word(profile))?;
            }
            if let Some(backend) = &stack.backend {
                write!(f, " --{name}-backend {}", shell_word(backend))?;
            }
        }
        if self.dry_run {
            write!(f, " --dry-run")?;
        }
        Ok(())
    }
}

/// `word` as a POSIX shell reads it back: bare when it holds only safe characters, else in
/// single quotes.
pub fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn every_action_parses_with_the_default_stacks() {
        for action in Action::ALL {
            let pair = parse(&args(action.as_str())).unwrap();
            assert_eq!(pair.action, action);
            assert_eq!(pair.target, StackArgs::new("target"));
            assert_eq!(pair.source, StackArgs::new("source"));
            assert!(!pair.dry_run);
        }
    }

    #[test]
    fn options_name_each_stack_its_credentials_and_backend() {
        let pair = parse(&args(
            "up --target-stack prod-target --source-stack prod-source --target-profile t \
             --source-profile s --target-backend file:///a --source-backend s3://b --dry-run",
        ))
        .unwrap();
        assert_eq!(
            pair,
            PairArgs {
                action: Action::Up,
                target: StackArgs {
                    stack: "prod-target".into(),
                    profile: Some("t".into()),
                    backend: Some("file:///a".into()),
                },
                source: StackArgs {
                    stack: "prod-source".into(),
                    profile: Some("s".into()),
                    backend: Some("s3://b".into()),
                },
                dry_run: true,
            }
        );
    }

    #[test]
    fn the_command_line_prints_back_as_it_parses() {
        for line in [
            "relayctl pair up --target-stack target --source-stack source",
            "relayctl pair destroy --target-stack t --target-profile tp --target-backend file:///x --source-stack s --source-profile sp --source-backend file:///y --dry-run",
        ] {
            let pair = parse(&args(line)[2..]).unwrap();
            assert_eq!(pair.to_string(), line);
        }
        let odd = PairArgs {
            action: Action::Preview,
            target: StackArgs {
                stack: "t".into(),
                profile: Some("my profile".into()),
                backend: None,
            },
            source: StackArgs::new("s"),
            dry_run: false,
        };
        assert_eq!(
            odd.to_string(),
            "relayctl pair preview --target-stack t --target-profile 'my profile' --source-stack s"
        );
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let cases = [
            ("", "pair needs an action: preview, up, destroy, outputs"),
            (
                "deploy",
                "unknown pair action \"deploy\": preview, up, destroy, outputs",
            ),
            ("up --target-stack", "--target-stack needs a value"),
            (
                "up --source-profile --dry-run",
                "--source-profile needs a value",
            ),
            (
                "up --verbose x",
                "unknown argument \"--verbose\" for relayctl pair",
            ),
            (
                "up --target-stack a --source-stack a",
                "both name \"a\": a pair is two stacks",
            ),
        ];
        for (line, needle) in cases {
            let err = parse(&args(line)).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
        // The same name in two backends is two stacks.
        assert!(parse(&args(
            "up --target-stack a --source-stack a --target-backend file:///x"
        ))
        .is_ok());
        // An empty value is no value.
        let empty = parse(&["up".into(), "--target-stack".into(), String::new()]).unwrap_err();
        assert!(empty.contains("--target-stack needs a value"), "{empty}");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("file:///tmp/state-1"), "file:///tmp/state-1");
        assert_eq!(shell_word("organization/p/s"), "organization/p/s");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$(x)"), "'$(x)'");
        assert_eq!(shell_word("<file>"), "'<file>'");
    }
}
