//! Runs a pair command: its [plan](super::plan) step by step, through the Pulumi CLI port and
//! the STS port, with progress on `out`. A refusal stops it before anything changes; a
//! failure stops it where it is, naming the stack and what to run next.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use infra::config::{Key, StackSide};

use super::args::{Action, PairArgs, StackArgs};
use super::call::{Call, StackEnv};
use super::checks::{check_accounts, check_agreement, check_sides, Member, Refusal};
use super::plan::{dry_run, steps, wiring_changes, ConfigChange, Step, Wiring};
use super::progress::{planned_changes, seconds, Progress, Report};
use super::pulumi::{DriverError, Finished, Pulumi};
use super::settings::{Secret, StackSettings};
use super::sts::Accounts;

/// Everything a run talks to.
pub struct Context<'a> {
    pub pulumi: &'a mut dyn Pulumi,
    pub accounts: &'a dyn Accounts,
    /// Where progress and results go (stdout).
    pub out: &'a mut dyn Write,
    /// `out` is a terminal: progress is one line that updates.
    pub terminal: bool,
    /// Whether the environment holds a variable (so a shown line unsets it).
    pub present: &'a dyn Fn(&str) -> bool,
    /// `PULUMI_BACKEND_URL` of the environment.
    pub ambient_backend: Option<String>,
    /// The project's folder, where the stack files are.
    pub project: PathBuf,
    /// Where a copy of a stack file is made for the wired preview.
    pub temp_dir: PathBuf,
}

/// Why a pair command stopped.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("refused before anything ran:\n{}", refusal_list(.0))]
    Refused(Vec<Refusal>),
    #[error("{0}")]
    Failed(Box<Failure>),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

fn refusal_list(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| format!("- {r}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A step that failed, where the pair stands, and what to run next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub given: &'static str,
    pub stack: String,
    /// What failed: `` `pulumi up --stack source` ended with exit 255 ``.
    pub what: String,
    /// The engine's errors, or the end of the CLI's output.
    pub detail: Vec<String>,
    /// What the run changed before it failed.
    pub changed: Vec<String>,
    /// The relayctl command that takes the pair on from here.
    pub next: String,
    /// The one CLI call that failed, as the operator would run it.
    pub step: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} stack `{}` failed: {}",
            self.given, self.stack, self.what
        )?;
        for line in &self.detail {
            for part in line.lines() {
                writeln!(f, "  {part}")?;
            }
        }
        if self.changed.is_empty() {
            writeln!(f, "nothing was changed before it")?;
        } else {
            writeln!(f, "done before it: {}", self.changed.join("; "))?;
        }
        write!(
            f,
            "run next, once the cause is fixed:\n  {}\nor only the step that failed:\n  {}",
            self.next, self.step
        )
    }
}

/// The lines of the CLI's output shown when it failed without engine errors.
const TAIL_LINES: usize = 15;

struct Runner<'a, 'c> {
    args: &'a PairArgs,
    ctx: Context<'c>,
    wiring: Wiring,
    members: BTreeMap<&'static str, Member>,
    target_name: Option<String>,
    outputs: BTreeMap<&'static str, serde_json::Map<String, serde_json::Value>>,
    changed: Vec<String>,
}

/// Runs `args` with `ctx`; a dry run prints its calls and runs none.
pub fn run(args: &PairArgs, ctx: Context<'_>) -> Result<(), PairError> {
    let wiring = Wiring::between(&args.target, &args.source, ctx.ambient_backend.as_deref());
    if args.dry_run {
        for line in dry_run(args, wiring, ctx.present) {
            // A line that cannot be written (a closed stdout) changes nothing: nothing runs.
            let _ = writeln!(ctx.out, "{line}");
        }
        return Ok(());
    }
    let mut runner = Runner {
        args,
        ctx,
        wiring,
        members: BTreeMap::new(),
        target_name: None,
        outputs: BTreeMap::new(),
        changed: Vec::new(),
    };
    let started = Instant::now();
    if args.action != Action::Outputs {
        runner.say(&runner.header());
    }
    for step in steps(args.action, wiring) {
        runner.step(step)?;
    }
    let took = seconds(started.elapsed());
    let (t, s) = (&args.target.stack, &args.source.stack);
    match args.action {
        Action::Outputs => {
            let both = serde_json::json!({
                "target": runner.outputs.get("target"),
                "source": runner.outputs.get("source"),
            });
            let text = serde_json::to_string_pretty(&both).expect("JSON values serialise");
            runner.say(&text);
        }
        Action::Up => runner.say(&format!(
            "done: target stack `{t}`, then source stack `{s}`, are up ({took})"
        )),
        Action::Destroy => runner.say(&format!(
            "done: source stack `{s}`, then target stack `{t}`, are destroyed ({took})"
        )),
        Action::Preview => runner.say(&format!("done: previewed, nothing was changed ({took})")),
    }
    Ok(())
}

impl Runner<'_, '_> {
    fn say(&mut self, line: &str) {
        // What cannot be written (a closed stdout) must not stop a deployment halfway.
        let _ = writeln!(self.ctx.out, "{line}");
        let _ = self.ctx.out.flush();
    }

    fn header(&self) -> String {
        let how = match self.wiring {
            Wiring::StackReference => {
                "one backend: the source reads the target's outputs through a StackReference (targetStack)"
            }
            Wiring::ConfigValues => {
                "two backends: the source gets the target's outputs as config values (targetRoleArn, targetFunctionName, targetRegion)"
            }
        };
        format!(
            "relayctl pair {}: target stack `{}`, source stack `{}`; {how}",
            self.args.action.as_str(),
            self.args.target.stack,
            self.args.source.stack
        )
    }

    fn stack_args(&self, side: StackSide) -> &StackArgs {
        match side {
            StackSide::Target => &self.args.target,
            StackSide::Source => &self.args.source,
        }
    }

    fn stack(&self, side: StackSide) -> String {
        self.stack_args(side).stack.clone()
    }

    fn member(&self, side: StackSide) -> &Member {
        &self.members[side.name()]
    }

    /// The credentials and backend of a stack's runs: its profile option, else (once its
    /// config is read) its `aws:profile`.
    fn env(&self, side: StackSide) -> StackEnv {
        match self.members.get(side.name()) {
            Some(member) => member.env.clone(),
            None => StackEnv {
                profile: self.stack_args(side).profile.clone(),
                backend: self.stack_args(side).backend.clone(),
            },
        }
    }

    fn failure(
        &self,
        side: StackSide,
        call: &Call,
        what: String,
        detail: Vec<String>,
    ) -> PairError {
        // A dry run never gets here (it runs nothing): the command runs the same again.
        let next = self.args;
        PairError::Failed(Box::new(Failure {
            given: side.name(),
            stack: self.stack(side),
            what,
            detail,
            changed: self.changed.clone(),
            next: next.to_string(),
            step: call.operator_line(&self.env(side).changes(), self.ctx.present),
        }))
    }

    fn exit_failure(&self, call: &Call, finished: &Finished, errors: Vec<String>) -> PairError {
        let detail = if errors.is_empty() {
            let mut text = finished.stderr.clone();
            if !call.secret_output {
                text = format!("{}\n{text}", finished.stdout);
            }
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            lines[lines.len().saturating_sub(TAIL_LINES)..]
                .iter()
                .map(|l| l.to_string())
                .collect()
        } else {
            errors
        };
        let line = call.operator_line(&self.env(call.side).changes(), self.ctx.present);
        self.failure(
            call.side,
            call,
            format!("`{line}` ended with {}", finished.status()),
            detail,
        )
    }

    /// Runs a call whose events nobody reads; fails the command when it fails.
    fn call(&mut self, call: &Call) -> Result<Finished, PairError> {
        let env = self.env(call.side).changes();
        let finished = self.ctx.pulumi.run(call, &env, &mut |_| {})?;
        if finished.success() {
            Ok(finished)
        } else {
            Err(self.exit_failure(call, &finished, Vec::new()))
        }
    }

    /// Runs an operation with its progress: `verb` names it (`up`), `planned` is what its
    /// preview planned (empty for a preview).
    fn operate(
        &mut self,
        call: &Call,
        verb: &str,
        planned: BTreeMap<String, u64>,
        preview: bool,
    ) -> Result<Report, PairError> {
        let env = self.env(call.side).changes();
        let label = format!("{}: {verb}", call.side.name());
        let started = Instant::now();
        let mut progress = Progress::new(&mut *self.ctx.out, self.ctx.terminal, label, planned);
        let finished = self
            .ctx
            .pulumi
            .run(call, &env, &mut |event| progress.event(event))?;
        let report = progress.finish(finished.success(), preview, started.elapsed());
        if finished.success() {
            Ok(report)
        } else {
            Err(self.exit_failure(call, &finished, report.errors))
        }
    }

    fn step(&mut self, step: Step) -> Result<(), PairError> {
        match step {
            Step::ReadConfig(side) => self.read_config(side),
            Step::ReadExternalId(side) => self.read_external_id(side),
            Step::ReadQualifiedName => {
                let call = Call::qualified_name(StackSide::Target, &self.stack(StackSide::Target));
                let name = self.call(&call)?.stdout.trim().to_string();
                self.target_name = Some(name);
                Ok(())
            }
            Step::CheckSides => {
                let refusals = check_sides(
                    [
                        self.member(StackSide::Target),
                        self.member(StackSide::Source),
                    ],
                    self.ctx.present,
                );
                refuse_if_any(refusals)
            }
            Step::CheckAccounts => self.check_accounts(),
            Step::CheckAgreement => self.check_agreement(),
            Step::Preview(side) => {
                let call = Call::preview(side, &self.stack(side), None);
                self.operate(&call, "preview", BTreeMap::new(), true)
                    .map(|_| ())
            }
            Step::Up(side) => {
                let stack = self.stack(side);
                let preview = Call::preview(side, &stack, None);
                let plan = self.operate(&preview, "preview", BTreeMap::new(), true)?;
                let planned = planned_changes(&plan.summary.unwrap_or_default());
                self.operate(&Call::up(side, &stack), "up", planned, false)?;
                self.changed
                    .push(format!("{} stack `{stack}` is up", side.name()));
                Ok(())
            }
            Step::Destroy(side) => {
                let stack = self.stack(side);
                let preview = Call::destroy_preview(side, &stack);
                let plan = self.operate(&preview, "destroy preview", BTreeMap::new(), true)?;
                let planned = planned_changes(&plan.summary.unwrap_or_default());
                self.operate(&Call::destroy(side, &stack), "destroy", planned, false)?;
                self.changed
                    .push(format!("{} stack `{stack}` is destroyed", side.name()));
                Ok(())
            }
            Step::ReadOutputs(side) => self.read_outputs(side),
            Step::WireSource => self.wire_source(),
            Step::PreviewWiredSource => self.preview_wired_source(),
        }
    }

    fn read_config(&mut self, side: StackSide) -> Result<(), PairError> {
        let stack = self.stack(side);
        let call = Call::config_json(side, &stack);
        let finished = self.call(&call)?;
        let settings = StackSettings::parse(&stack, &finished.stdout)
            .map_err(|e| self.failure(side, &call, e.to_string(), Vec::new()))?;
        let args = self.stack_args(side);
        let env = StackEnv {
            profile: args
                .profile
                .clone()
                .or(settings.profile().map(String::from)),
            backend: args.backend.clone(),
        };
        self.members.insert(
            side.name(),
            Member {
                given_as: side,
                stack,
                env,
                settings,
                external_id: None,
            },
        );
        Ok(())
    }

    fn read_external_id(&mut self, side: StackSide) -> Result<(), PairError> {
        let key = Key::ExternalId;
        // Not in `pulumi config --json` at all: not set (`config get` would fail for it).
        if !self.member(side).settings.is_set(key) {
            return Ok(());
        }
        let call = Call::config_get(side, &self.stack(side), key.name());
        let value = Secret::from_output(&self.call(&call)?.stdout);
        if let Some(member) = self.members.get_mut(side.name()) {
            member.external_id = Some(value);
        }
        Ok(())
    }

    fn check_accounts(&mut self) -> Result<(), PairError> {
        let members = [
            self.member(StackSide::Target),
            self.member(StackSide::Source),
        ];
        refuse_if_any(check_accounts(members, self.ctx.accounts, self.ctx.present))?;
        let described: Vec<String> = members
            .iter()
            .map(|m| {
                let account = m
                    .settings
                    .pinned_account()
                    .map(|(_, account)| account)
                    .unwrap_or_default();
                format!(
                    "{} stack `{}` in account {account} ({})",
                    m.given_as.name(),
                    m.stack,
                    m.env.credentials()
                )
            })
            .collect();
        self.say(&format!("checked with STS: {}", described.join(", ")));
        Ok(())
    }

    fn check_agreement(&mut self) -> Result<(), PairError> {
        let (target, source) = (
            self.member(StackSide::Target),
            self.member(StackSide::Source),
        );
        refuse_if_any(check_agreement(target, source, self.ctx.present))?;
        let shared: Vec<String> = [Key::NamePrefix, Key::SourceAccountId, Key::TargetAccountId]
            .iter()
            .map(|k| {
                format!(
                    "{} {}",
                    k.name(),
                    target.settings.get(*k).unwrap_or_default()
                )
            })
            .collect();
        self.say(&format!(
            "checked: both stacks have the same externalId (not shown), {}",
            shared.join(", ")
        ));
        Ok(())
    }

    fn read_outputs(&mut self, side: StackSide) -> Result<(), PairError> {
        let call = Call::outputs(side, &self.stack(side));
        let finished = self.call(&call)?;
        let outputs: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&finished.stdout).map_err(|e| {
                self.failure(
                    side,
                    &call,
                    format!("`pulumi stack output --json` printed no JSON object ({e})"),
                    Vec::new(),
                )
            })?;
        self.outputs.insert(side.name(), outputs);
        Ok(())
    }

    /// What the source's config must change to read the target.
    fn wiring(&self) -> Result<Vec<ConfigChange>, super::plan::MissingOutput> {
        let outputs: BTreeMap<String, serde_json::Value> = self
            .outputs
            .get("target")
            .map(|o| o.clone().into_iter().collect())
            .unwrap_or_default();
        wiring_changes(
            self.wiring,
            &self.member(StackSide::Source).settings,
            self.target_name.as_deref().unwrap_or_default(),
            &outputs,
        )
    }

    fn wire_source(&mut self) -> Result<(), PairError> {
        let source = self.stack(StackSide::Source);
        let changes = match self.wiring() {
            Ok(changes) => changes,
            Err(missing) => {
                let call = Call::outputs(StackSide::Target, &self.stack(StackSide::Target));
                return Err(self.failure(
                    StackSide::Target,
                    &call,
                    missing.to_string(),
                    Vec::new(),
                ));
            }
        };
        if changes.is_empty() {
            self.say("source: config already reads the target");
        }
        for change in changes {
            self.call(&change.call(&source, None))?;
            let done = match &change {
                ConfigChange::Set(key, value) => format!("config set {key} {value}"),
                ConfigChange::Remove(key) => format!("config rm {key}"),
            };
            self.say(&format!("source: {done}"));
            self.changed
                .push(format!("source stack `{source}`: {done}"));
        }
        Ok(())
    }

    fn preview_wired_source(&mut self) -> Result<(), PairError> {
        let side = StackSide::Source;
        let source = self.stack(side);
        let changes = match self.wiring() {
            Ok(changes) => changes,
            Err(missing) => {
                self.say(&format!(
                    "source: not previewed: {missing}; its config needs the target's outputs"
                ));
                return Ok(());
            }
        };
        if changes.is_empty() {
            let call = Call::preview(side, &source, None);
            return self
                .operate(&call, "preview", BTreeMap::new(), true)
                .map(|_| ());
        }
        // `pulumi --stack a/b/c` keeps its config in Pulumi.c.yaml.
        let short = source.rsplit('/').next().unwrap_or(&source);
        let file = format!("Pulumi.{short}.yaml");
        let copy = self
            .ctx
            .temp_dir
            .join(format!("relayctl-pair-{}-{file}", std::process::id()));
        if let Err(e) = std::fs::copy(self.ctx.project.join(&file), &copy) {
            self.say(&format!(
                "source: not previewed: could not copy {file} to preview it with up's wiring ({e})"
            ));
            return Ok(());
        }
        self.say(&format!(
            "source: previewed as up would configure it (a copy of {file} with {})",
            describe_changes(&changes)
        ));
        let result = self.preview_copy(&source, &copy, &changes);
        // The copy is relayctl's scratch file; one left behind is harmless.
        let _ = std::fs::remove_file(&copy);
        result
    }

    fn preview_copy(
        &mut self,
        source: &str,
        copy: &std::path::Path,
        changes: &[ConfigChange],
    ) -> Result<(), PairError> {
        let copy = copy.display().to_string();
        for change in changes {
            self.call(&change.call(source, Some(&copy)))?;
        }
        let call = Call::preview(StackSide::Source, source, Some(&copy));
        self.operate(&call, "preview", BTreeMap::new(), true)
            .map(|_| ())
    }
}

/// `targetStack=o/p/t, targetRoleArn removed`.
fn describe_changes(changes: &[ConfigChange]) -> String {
    changes
        .iter()
        .map(|c| match c {
            ConfigChange::Set(key, value) => format!("{key}={value}"),
            ConfigChange::Remove(key) => format!("{key} removed"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The folder of the Pulumi project `start` is in: the nearest one up that holds Pulumi.yaml
/// (where the CLI looks), else `start` itself.
pub fn project_dir(start: &std::path::Path) -> PathBuf {
    start
        .ancestors()
        .find(|dir| dir.join("Pulumi.yaml").is_file())
        .unwrap_or(start)
        .to_path_buf()
}

fn refuse_if_any(refusals: Vec<Refusal>) -> Result<(), PairError> {
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(PairError::Refused(refusals))
    }
}

#[cfg(test)]
mod tests;
