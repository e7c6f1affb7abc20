//! The runner against a fake Pulumi CLI that keeps each stack's config, deployment and outputs
//! (as the real one does in its backend), and a fake STS.

use super::*;
use crate::pair::args::parse;
use crate::pair::call::EnvChange;
use crate::pair::pulumi::EngineEvent;
use crate::pair::sts::{Credentials, IdentityError};

const EXTERNAL_ID: &str = "shared-external-id-0123456789";

/// One stack as the fake backend holds it.
#[derive(Clone, Default)]
struct FakeStack {
    config: BTreeMap<String, String>,
    secrets: Vec<String>,
    /// Resources deployed (0: not deployed).
    deployed: u64,
    /// Resources its program declares.
    resources: u64,
    /// The config the last `up` ran with (to see that a change shows in the next preview).
    deployed_config: BTreeMap<String, String>,
}

/// A fake `pulumi`: stacks by name; records every call with its environment changes.
#[derive(Default)]
struct FakePulumi {
    stacks: BTreeMap<String, FakeStack>,
    /// Config set in a `--config-file` copy, by file.
    copies: BTreeMap<String, Vec<String>>,
    calls: Vec<String>,
    /// `(stack, verb)` that fails with an engine error.
    fail: Option<(String, String)>,
}

fn value_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .map(|i| args[i + 1].as_str())
}

fn ok(stdout: impl Into<String>) -> Finished {
    Finished {
        code: Some(0),
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

fn env_text(env: &[EnvChange]) -> String {
    env.iter()
        .filter_map(|c| match c {
            EnvChange::Set(k, v) => Some(format!("{k}={v} ")),
            EnvChange::Unset(_) => None,
        })
        .collect()
}

impl FakePulumi {
    fn stack(&mut self, name: &str) -> &mut FakeStack {
        self.stacks.get_mut(name).expect("a stack the test made")
    }

    fn summary(&self, changes: &[(&str, u64)]) -> EngineEvent {
        EngineEvent::Summary {
            changes: changes
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

impl Pulumi for FakePulumi {
    fn run(
        &mut self,
        call: &Call,
        changes: &[EnvChange],
        on_event: &mut dyn FnMut(EngineEvent),
    ) -> Result<Finished, DriverError> {
        let args = &call.args;
        self.calls.push(format!(
            "{}pulumi {}",
            env_text(&call.env(changes)),
            args.join(" ")
        ));
        let name = value_after(args, "--stack").unwrap().to_string();
        let verb = args[0].as_str();
        if self.fail.as_ref() == Some(&(name.clone(), verb.to_string())) {
            on_event(EngineEvent::Diagnostic {
                severity: "error".into(),
                message: format!("the program refused stack {name}\n"),
            });
            return Ok(Finished {
                code: Some(255),
                stdout: "Resources:\n    1 errored\n".into(),
                stderr: String::new(),
            });
        }
        let copy = value_after(args, "--config-file").map(String::from);
        let stack = self.stack(&name).clone();
        let finished = match (verb, args[1].as_str()) {
            ("config", "--json") => {
                let entries: serde_json::Map<String, serde_json::Value> = stack
                    .config
                    .iter()
                    .map(|(k, v)| {
                        // Pulumi leaves a secret's value out of `config --json`.
                        let entry = if stack.secrets.contains(k) {
                            serde_json::json!({"secret": true})
                        } else {
                            serde_json::json!({"value": v, "secret": false})
                        };
                        (k.clone(), entry)
                    })
                    .collect();
                ok(serde_json::Value::Object(entries).to_string())
            }
            ("config", "get") => {
                let key = format!("cross-account-relay:{}", args[2]);
                ok(format!("{}\n", stack.config[&key]))
            }
            ("config", "set") | ("config", "rm") => {
                let key = args.last().unwrap();
                if let Some(copy) = copy {
                    self.copies
                        .entry(copy)
                        .or_default()
                        .push(args[1..].join(" "));
                } else if args[1] == "set" {
                    let value = args.last().unwrap().clone();
                    let key = &args[args.len() - 2];
                    self.stack(&name)
                        .config
                        .insert(format!("cross-account-relay:{key}"), value);
                } else {
                    self.stack(&name)
                        .config
                        .remove(&format!("cross-account-relay:{key}"));
                }
                ok("")
            }
            ("stack", "--show-name") => ok(format!("organization/cross-account-relay/{name}\n")),
            ("stack", "output") => {
                let outputs = if stack.deployed > 0
                    && stack
                        .config
                        .get("cross-account-relay:side")
                        .map(String::as_str)
                        == Some("target")
                {
                    serde_json::json!({
                        "crossAccountRoleArn": "arn:aws:iam::222222222222:role/cross-account-relay-invoker",
                        "targetFunctionArn": "arn:aws:lambda:eu-west-1:222222222222:function:cross-account-relay-target",
                        "targetRegion": "eu-west-1",
                        "crossAccountRoleMaxSessionSeconds": 3600,
                    })
                } else if stack.deployed > 0 {
                    serde_json::json!({"streamName": "cross-account-relay-stream"})
                } else {
                    serde_json::json!({})
                };
                ok(outputs.to_string())
            }
            ("preview", _) => {
                for _ in 0..stack.resources {
                    on_event(EngineEvent::StepStarted {
                        op: "create".into(),
                        urn: "u".into(),
                    });
                }
                // A copy with changes, or a config changed since the last up, updates the stack.
                let changed = copy.is_some() || stack.config != stack.deployed_config;
                let summary = match (stack.deployed, changed) {
                    (0, _) => self.summary(&[("create", stack.resources)]),
                    (n, true) => self.summary(&[("update", 1), ("same", n - 1)]),
                    (n, false) => self.summary(&[("same", n)]),
                };
                on_event(summary);
                ok("")
            }
            ("up", _) => {
                let (op, n) = match (stack.deployed, stack.config != stack.deployed_config) {
                    (0, _) => ("create", stack.resources),
                    (_, true) => ("update", 1),
                    (_, false) => ("same", stack.resources),
                };
                for _ in 0..n {
                    on_event(EngineEvent::StepDone {
                        op: op.into(),
                        urn: "u".into(),
                    });
                }
                on_event(self.summary(&[(op, n), ("same", stack.resources - n)]));
                let s = self.stack(&name);
                s.deployed = s.resources;
                s.deployed_config = s.config.clone();
                ok("")
            }
            ("destroy", _) if args.contains(&"--preview-only".to_string()) => {
                on_event(self.summary(&[("delete", stack.deployed)]));
                ok("")
            }
            ("destroy", _) => {
                for _ in 0..stack.deployed {
                    on_event(EngineEvent::StepDone {
                        op: "delete".into(),
                        urn: "u".into(),
                    });
                }
                on_event(self.summary(&[("delete", stack.deployed)]));
                self.stack(&name).deployed = 0;
                ok("")
            }
            other => panic!("the fake does not know {other:?}"),
        };
        Ok(finished)
    }
}

fn stack(side: &str, resources: u64, extra: &[(&str, &str)]) -> FakeStack {
    let mut config: BTreeMap<String, String> = [
        ("aws:region", "eu-west-1"),
        ("cross-account-relay:side", side),
        ("cross-account-relay:sourceAccountId", "111111111111"),
        ("cross-account-relay:targetAccountId", "222222222222"),
        ("cross-account-relay:namePrefix", "cross-account-relay"),
        ("cross-account-relay:externalId", EXTERNAL_ID),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        if v.is_empty() {
            config.remove(*k);
        } else {
            config.insert(k.to_string(), v.to_string());
        }
    }
    FakeStack {
        config,
        secrets: vec!["cross-account-relay:externalId".into()],
        resources,
        ..FakeStack::default()
    }
}

/// The example pair: `target` (12 resources), `source` (30), the source wired by config values
/// to an old role, as the committed example does.
fn example() -> FakePulumi {
    let mut fake = FakePulumi::default();
    fake.stacks
        .insert("target".into(), stack("target", 12, &[]));
    fake.stacks.insert(
        "source".into(),
        stack(
            "source",
            30,
            &[
                (
                    "cross-account-relay:targetRoleArn",
                    "arn:aws:iam::222222222222:role/old",
                ),
                ("cross-account-relay:targetFunctionName", "old"),
            ],
        ),
    );
    fake
}

/// STS: each profile's account.
struct FakeSts(Vec<(&'static str, &'static str)>);

impl Accounts for FakeSts {
    fn caller_account(&self, credentials: &Credentials, _: &str) -> Result<String, IdentityError> {
        let name = match credentials {
            Credentials::Profile(p) => p.as_str(),
            Credentials::Environment => "(environment)",
        };
        self.0
            .iter()
            .find(|(p, _)| *p == name)
            .map(|(_, a)| a.to_string())
            .ok_or(IdentityError::NoAccount)
    }
}

fn right_sts() -> FakeSts {
    FakeSts(vec![("target", "222222222222"), ("source", "111111111111")])
}

fn nothing(_: &str) -> bool {
    false
}

/// The context of a run in the tests: no terminal, nothing in the environment, `project` as
/// both the project's folder and the scratch folder.
fn context<'a>(
    pulumi: &'a mut dyn Pulumi,
    accounts: &'a dyn Accounts,
    out: &'a mut Vec<u8>,
    project: &std::path::Path,
) -> Context<'a> {
    Context {
        pulumi,
        accounts,
        out,
        terminal: false,
        present: &nothing,
        ambient_backend: None,
        project: project.to_path_buf(),
        temp_dir: project.to_path_buf(),
    }
}

/// The arguments of a command line, split at whitespace.
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

/// Runs `line` (after `relayctl pair`) against `fake`: its output with every duration as
/// `(T)`, and its result.
fn pair(
    fake: &mut dyn Pulumi,
    sts: &FakeSts,
    line: &str,
    project: &std::path::Path,
) -> (String, Result<(), PairError>) {
    let args = parse(&words(line)).unwrap();
    let mut out = Vec::new();
    let result = run(&args, context(fake, sts, &mut out, project));
    (mask_durations(&String::from_utf8(out).unwrap()), result)
}

/// `(6.2 s)` -> `(T)`.
fn mask_durations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('(') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match tail.find(" s)") {
            Some(end) if tail[1..end].parse::<f64>().is_ok() => {
                out.push_str("(T)");
                rest = &tail[end + 3..];
            }
            _ => {
                out.push('(');
                rest = &tail[1..];
            }
        }
    }
    out + rest
}

fn scratch(name: &str) -> PathBuf {
    crate::pair::scratch(&format!("run-{name}"))
}

const PROFILES: &str = "--target-profile target --source-profile source";

#[test]
fn up_deploys_the_target_wires_the_source_by_reference_then_deploys_it() {
    let dir = scratch("up");
    let mut fake = example();
    let (out, result) = pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir);
    result.unwrap();
    assert_eq!(
        out,
        "relayctl pair up: target stack `target`, source stack `source`; one backend: the source reads the target's outputs through a StackReference (targetStack)
checked with STS: target stack `target` in account 222222222222 (profile target), source stack `source` in account 111111111111 (profile source)
checked: both stacks have the same externalId (not shown), namePrefix cross-account-relay, sourceAccountId 111111111111, targetAccountId 222222222222
target: preview: 12 to create (T)
target: up 2/12 resources
target: up 3/12 resources
target: up 4/12 resources
target: up 5/12 resources
target: up 6/12 resources
target: up 8/12 resources
target: up 9/12 resources
target: up 10/12 resources
target: up 11/12 resources
target: up 12/12 resources
target: up: 12 created (T)
source: config set targetStack organization/cross-account-relay/target
source: config rm targetRoleArn
source: config rm targetFunctionName
source: preview: 30 to create (T)
source: up 3/30 resources
source: up 6/30 resources
source: up 9/30 resources
source: up 12/30 resources
source: up 15/30 resources
source: up 18/30 resources
source: up 21/30 resources
source: up 24/30 resources
source: up 27/30 resources
source: up 30/30 resources
source: up: 30 created (T)
done: target stack `target`, then source stack `source`, are up (T)
"
    );
    let t = "AWS_PROFILE=target ";
    let s = "AWS_PROFILE=source ";
    let d = "PULUMI_DEBUG_COMMANDS=true ";
    assert_eq!(
        fake.calls,
        [
            format!("{t}pulumi config --json --stack target"),
            format!("{s}pulumi config --json --stack source"),
            format!("{t}pulumi config get externalId --stack target"),
            format!("{s}pulumi config get externalId --stack source"),
            format!("{t}pulumi stack --show-name --fully-qualify-stack-names --stack target"),
            format!("{t}{d}pulumi preview --stack target"),
            format!("{t}{d}pulumi up --stack target"),
            format!("{t}pulumi stack output --json --stack target"),
            format!("{s}pulumi config set --stack source targetStack organization/cross-account-relay/target"),
            format!("{s}pulumi config rm --stack source targetRoleArn"),
            format!("{s}pulumi config rm --stack source targetFunctionName"),
            format!("{s}{d}pulumi preview --stack source"),
            format!("{s}{d}pulumi up --stack source"),
        ]
    );
    assert!(!out.contains(EXTERNAL_ID));

    // A second up: nothing to wire, nothing to change.
    fake.calls.clear();
    let (out, result) = pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir);
    result.unwrap();
    let tail: Vec<&str> = out.lines().skip(3).collect();
    assert_eq!(
        tail,
        [
            "target: preview: no changes, 12 unchanged (T)",
            "target: up: no changes, 12 unchanged (T)",
            "source: config already reads the target",
            "source: preview: no changes, 30 unchanged (T)",
            "source: up: no changes, 30 unchanged (T)",
            "done: target stack `target`, then source stack `source`, are up (T)",
        ]
    );
    assert!(!fake
        .calls
        .iter()
        .any(|c| c.contains("config set") || c.contains("config rm")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn separate_backends_copy_the_targets_outputs_into_the_sources_config() {
    let dir = scratch("backends");
    let mut fake = example();
    let line = format!("up {PROFILES} --target-backend file:///a --source-backend file:///b");
    let (out, result) = pair(&mut fake, &right_sts(), &line, &dir);
    result.unwrap();
    assert!(
        out.contains("two backends: the source gets the target's outputs as config values"),
        "{out}"
    );
    assert!(out.contains("source: config set targetRoleArn arn:aws:iam::222222222222:role/cross-account-relay-invoker\n"), "{out}");
    assert!(out.contains("source: config set targetFunctionName arn:aws:lambda:eu-west-1:222222222222:function:cross-account-relay-target\n"), "{out}");
    assert!(
        !out.contains("config set targetRegion"),
        "the same region needs no targetRegion: {out}"
    );
    let source = &fake.stacks["source"].config;
    assert_eq!(
        source["cross-account-relay:targetRoleArn"],
        "arn:aws:iam::222222222222:role/cross-account-relay-invoker"
    );
    assert!(!source.contains_key("cross-account-relay:targetStack"));
    assert!(
        !fake.calls.iter().any(|c| c.contains("--show-name")),
        "no StackReference, no name to read"
    );
    for call in &fake.calls {
        let backend = if call.contains("--stack target") {
            "PULUMI_BACKEND_URL=file:///a "
        } else {
            "PULUMI_BACKEND_URL=file:///b "
        };
        assert!(call.contains(backend), "{call}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failure_in_the_middle_stops_and_says_what_to_run_next() {
    let dir = scratch("fail");
    let mut fake = example();
    fake.fail = Some(("source".into(), "preview".into()));
    let (out, result) = pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir);
    let Err(PairError::Failed(failure)) = result else {
        panic!("{result:?}")
    };
    assert!(out.contains("target: up: 12 created (T)\n"), "{out}");
    assert!(out.ends_with("source: preview: failed (T)\n"), "{out}");
    assert_eq!(
        failure.to_string(),
        "source stack `source` failed: `AWS_PROFILE=source pulumi preview --stack source` ended with exit 255
  the program refused stack source
done before it: target stack `target` is up; source stack `source`: config set targetStack organization/cross-account-relay/target; source stack `source`: config rm targetRoleArn; source stack `source`: config rm targetFunctionName
run next, once the cause is fixed:
  relayctl pair up --target-stack target --target-profile target --source-stack source --source-profile source
or only the step that failed:
  AWS_PROFILE=source pulumi preview --stack source"
    );
    assert!(
        !fake
            .calls
            .iter()
            .any(|c| c.contains("pulumi up --stack source")),
        "nothing after the failure"
    );
    assert_eq!(fake.stacks["source"].deployed, 0);
    assert_eq!(fake.stacks["target"].deployed, 12);

    // Without engine errors, the end of the CLI's output is the detail.
    let mut fake = example();
    fake.stacks
        .get_mut("target")
        .unwrap()
        .config
        .insert("cross-account-relay:side".into(), "target".into());
    let mut failing = FailingCli;
    let args = parse(&["outputs".to_string()]).unwrap();
    let mut out = Vec::new();
    let sts = right_sts();
    let err = run(&args, context(&mut failing, &sts, &mut out, &dir))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "target stack `target` failed: `pulumi stack output --json --stack target` ended with exit 1
  out 1
  error: no stack named 'target' found
nothing was changed before it
run next, once the cause is fixed:
  relayctl pair outputs --target-stack target --source-stack source
or only the step that failed:
  pulumi stack output --json --stack target"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A CLI whose every call fails with output on both streams.
struct FailingCli;

impl Pulumi for FailingCli {
    fn run(
        &mut self,
        _: &Call,
        _: &[EnvChange],
        _: &mut dyn FnMut(EngineEvent),
    ) -> Result<Finished, DriverError> {
        Ok(Finished {
            code: Some(1),
            stdout: "out 1\n\n".into(),
            stderr: "error: no stack named 'target' found\n".into(),
        })
    }
}

#[test]
fn the_output_of_a_secret_call_is_never_shown_when_it_fails() {
    let call = Call::config_get(StackSide::Target, "t", "externalId");
    let args = parse(&["up".to_string()]).unwrap();
    let dir = scratch("secret");
    let mut fake = FakePulumi::default();
    let sts = right_sts();
    let mut out = Vec::new();
    let runner = Runner {
        args: &args,
        ctx: context(&mut fake, &sts, &mut out, &dir),
        wiring: Wiring::StackReference,
        members: BTreeMap::new(),
        target_name: None,
        outputs: BTreeMap::new(),
        changed: Vec::new(),
    };
    let finished = Finished {
        code: Some(1),
        stdout: "the-secret\n".into(),
        stderr: "error: boom\n".into(),
    };
    let err = runner
        .exit_failure(&call, &finished, Vec::new())
        .to_string();
    assert!(err.contains("error: boom"), "{err}");
    assert!(!err.contains("the-secret"), "{err}");
    let mut lines = String::new();
    for n in 0..40 {
        lines.push_str(&format!("line {n}\n"));
    }
    let long = Finished {
        code: Some(1),
        stdout: lines,
        stderr: String::new(),
    };
    let err = runner
        .exit_failure(&Call::outputs(StackSide::Target, "t"), &long, Vec::new())
        .to_string();
    assert!(
        err.contains("  line 25\n") && err.contains("  line 39\n") && !err.contains("line 24\n"),
        "the last 15 lines: {err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn credentials_of_the_wrong_account_are_refused_before_anything_runs() {
    let dir = scratch("account");
    let mut fake = example();
    let wrong = FakeSts(vec![("target", "222222222222"), ("source", "222222222222")]);
    let (out, result) = pair(&mut fake, &wrong, &format!("up {PROFILES}"), &dir);
    let err = result.unwrap_err().to_string();
    assert!(err.starts_with("refused before anything ran:\n- source stack `source` is pinned to account 111111111111 (sourceAccountId"), "{err}");
    assert!(
        err.contains("but profile source belong to account 222222222222"),
        "{err}"
    );
    assert_eq!(out.lines().count(), 1, "only the header: {out}");
    assert!(
        fake.calls.iter().all(|c| c.contains("config --json")
            || c.contains("config get")
            || c.contains("--show-name")),
        "{:?}",
        fake.calls
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_pair_that_disagrees_is_refused_with_every_fix_and_no_secret() {
    let dir = scratch("agree");
    let mut fake = example();
    let source = fake.stacks.get_mut("source").unwrap();
    source.config.insert(
        "cross-account-relay:externalId".into(),
        "a-different-external-id".into(),
    );
    source
        .config
        .insert("cross-account-relay:namePrefix".into(), "other".into());
    let (out, result) = pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir);
    let Err(PairError::Refused(refusals)) = &result else {
        panic!("{result:?}")
    };
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("different externalId values (not shown)"),
        "{err}"
    );
    assert!(err.contains("fix: AWS_PROFILE=source pulumi config set --stack source namePrefix cross-account-relay"), "{err}");
    for text in [&err, &out] {
        assert!(
            !text.contains(EXTERNAL_ID) && !text.contains("a-different-external-id"),
            "{text}"
        );
    }
    assert!(
        !fake
            .calls
            .iter()
            .any(|c| c.contains("preview") || c.contains(" up ")),
        "{:?}",
        fake.calls
    );

    // The wrong side: refused before STS is even asked.
    let mut fake = example();
    let (_, result) = pair(
        &mut fake,
        &FakeSts(vec![]),
        "up --target-stack source --source-stack target",
        &dir,
    );
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("stack `source` was given as the target stack but deploys the source side"),
        "{err}"
    );

    // A stack without an external id: not asked for it, refused.
    let mut fake = example();
    fake.stack("target")
        .config
        .remove("cross-account-relay:externalId");
    let (_, result) = pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir);
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("target stack `target` has no externalId"),
        "{err}"
    );
    assert!(
        !fake
            .calls
            .iter()
            .any(|c| c.contains("config get externalId --stack target")),
        "{:?}",
        fake.calls
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn destroy_goes_source_first_and_a_failure_spares_the_target() {
    let dir = scratch("destroy");
    let mut fake = example();
    pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir)
        .1
        .unwrap();
    fake.calls.clear();
    let (out, result) = pair(
        &mut fake,
        &right_sts(),
        &format!("destroy {PROFILES}"),
        &dir,
    );
    result.unwrap();
    let ops: Vec<&String> = fake
        .calls
        .iter()
        .filter(|c| c.contains("destroy"))
        .collect();
    assert_eq!(
        ops,
        [
            "AWS_PROFILE=source PULUMI_DEBUG_COMMANDS=true pulumi destroy --stack source --preview-only",
            "AWS_PROFILE=source PULUMI_DEBUG_COMMANDS=true pulumi destroy --stack source",
            "AWS_PROFILE=target PULUMI_DEBUG_COMMANDS=true pulumi destroy --stack target --preview-only",
            "AWS_PROFILE=target PULUMI_DEBUG_COMMANDS=true pulumi destroy --stack target",
        ]
    );
    assert!(
        !fake.calls.iter().any(|c| c.contains("externalId")),
        "destroy compares nothing: {:?}",
        fake.calls
    );
    assert!(
        out.contains("source: destroy preview: 30 to delete (T)\n"),
        "{out}"
    );
    assert!(out.contains("source: destroy: 30 deleted (T)\n"), "{out}");
    assert!(
        out.ends_with(
            "done: source stack `source`, then target stack `target`, are destroyed (T)\n"
        ),
        "{out}"
    );
    assert_eq!(
        (
            fake.stacks["source"].deployed,
            fake.stacks["target"].deployed
        ),
        (0, 0)
    );

    let mut fake = example();
    pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir)
        .1
        .unwrap();
    fake.fail = Some(("source".into(), "destroy".into()));
    let (_, result) = pair(
        &mut fake,
        &right_sts(),
        &format!("destroy {PROFILES}"),
        &dir,
    );
    let err = result.unwrap_err().to_string();
    assert!(err.starts_with("source stack `source` failed"), "{err}");
    assert!(err.contains("nothing was changed before it"), "{err}");
    assert!(
        err.contains("relayctl pair destroy --target-stack target"),
        "{err}"
    );
    assert_eq!(
        fake.stacks["target"].deployed, 12,
        "the target is not touched"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn preview_changes_nothing_and_previews_the_source_as_up_would_wire_it() {
    let dir = scratch("preview");
    let preview = format!("preview {PROFILES}");
    // Before the target is deployed: the source cannot be previewed yet, and says why.
    let mut fake = example();
    let (out, result) = pair(&mut fake, &right_sts(), &preview, &dir);
    result.unwrap();
    assert!(out.contains("target: preview: 12 to create (T)\n"), "{out}");
    assert!(
        out.contains("source: not previewed: the target stack has no output crossAccountRoleArn"),
        "{out}"
    );
    assert!(
        out.ends_with("done: previewed, nothing was changed (T)\n"),
        "{out}"
    );

    // The target deployed, the source not wired yet: a copy of its stack file is wired.
    fake.stack("target").deployed = 12;
    std::fs::write(dir.join("Pulumi.source.yaml"), "config: {}\n").unwrap();
    let before = fake.stacks["source"].config.clone();
    fake.calls.clear();
    let (out, result) = pair(&mut fake, &right_sts(), &preview, &dir);
    result.unwrap();
    let copy = dir.join(format!(
        "relayctl-pair-{}-Pulumi.source.yaml",
        std::process::id()
    ));
    let copy = copy.display().to_string();
    assert!(out.contains("source: previewed as up would configure it (a copy of Pulumi.source.yaml with targetStack=organization/cross-account-relay/target, targetRoleArn removed, targetFunctionName removed)\n"), "{out}");
    assert!(out.contains("source: preview: 30 to create (T)\n"), "{out}");
    assert_eq!(
        fake.stacks["source"].config, before,
        "the stack's own config is untouched"
    );
    assert_eq!(
        fake.copies[&copy],
        [
            format!("set --stack source --config-file {copy} targetStack organization/cross-account-relay/target"),
            format!("rm --stack source --config-file {copy} targetRoleArn"),
            format!("rm --stack source --config-file {copy} targetFunctionName"),
        ]
    );
    assert!(fake.calls.last().unwrap().ends_with(&format!(
        "pulumi preview --stack source --config-file {copy}"
    )));
    assert!(!std::path::Path::new(&copy).exists(), "the copy is removed");
    assert!(!fake.calls.iter().any(|c| c.contains(" up ")));

    // No stack file to copy: not previewed, and said so.
    std::fs::remove_file(dir.join("Pulumi.source.yaml")).unwrap();
    let (out, result) = pair(&mut fake, &right_sts(), &preview, &dir);
    result.unwrap();
    assert!(
        out.contains("source: not previewed: could not copy Pulumi.source.yaml"),
        "{out}"
    );

    // Already wired: previewed as it is.
    pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir)
        .1
        .unwrap();
    fake.calls.clear();
    let (out, _) = pair(&mut fake, &right_sts(), &preview, &dir);
    assert!(
        out.contains("source: preview: no changes, 30 unchanged (T)\n"),
        "{out}"
    );
    assert!(fake
        .calls
        .last()
        .unwrap()
        .ends_with("pulumi preview --stack source"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn outputs_print_both_stacks_as_one_json_object() {
    let dir = scratch("outputs");
    let mut fake = example();
    pair(&mut fake, &right_sts(), &format!("up {PROFILES}"), &dir)
        .1
        .unwrap();
    fake.calls.clear();
    let (out, result) = pair(&mut fake, &FakeSts(vec![]), "outputs", &dir);
    result.unwrap();
    let both: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(both["target"]["targetRegion"], "eu-west-1");
    assert_eq!(both["source"]["streamName"], "cross-account-relay-stream");
    assert_eq!(
        fake.calls,
        [
            "pulumi stack output --json --stack target",
            "pulumi stack output --json --stack source"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stacks_own_aws_profile_is_used_without_an_option() {
    let dir = scratch("profile");
    let mut fake = example();
    fake.stack("target")
        .config
        .insert("aws:profile".into(), "target".into());
    fake.stack("source")
        .config
        .insert("aws:profile".into(), "source".into());
    let (out, result) = pair(&mut fake, &right_sts(), "up", &dir);
    result.unwrap();
    assert!(
        out.contains("(profile target)") && out.contains("(profile source)"),
        "{out}"
    );
    assert!(
        fake.calls[0].starts_with("pulumi config --json"),
        "before the config is read, no profile: {}",
        fake.calls[0]
    );
    assert!(
        fake.calls[2].starts_with("AWS_PROFILE=target pulumi config get"),
        "{}",
        fake.calls[2]
    );
    // Neither: the environment's credentials.
    let mut fake = example();
    let env = FakeSts(vec![("(environment)", "222222222222")]);
    let (_, result) = pair(&mut fake, &env, "up", &dir);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("source stack `source` is pinned to account 111111111111 (sourceAccountId, its provider's allowedAccountIds), but the environment's credentials belong to account 222222222222"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_that_is_not_json_stops_the_run_naming_the_stack() {
    struct Garbage;
    impl Pulumi for Garbage {
        fn run(
            &mut self,
            _call: &Call,
            _changes: &[EnvChange],
            _events: &mut dyn FnMut(EngineEvent),
        ) -> Result<Finished, DriverError> {
            Ok(ok("warning: something\n"))
        }
    }
    let dir = scratch("garbage");
    for (line, needle) in [
        ("up", "target stack `target` failed: `pulumi config --json` for stack target printed no config JSON"),
        ("outputs", "target stack `target` failed: `pulumi stack output --json` printed no JSON object"),
    ] {
        let args = parse(&[line.to_string()]).unwrap();
        let mut out = Vec::new();
        let sts = right_sts();
        let err = run(&args, context(&mut Garbage, &sts, &mut out, &dir))
            .unwrap_err()
        .to_string();
        assert!(err.starts_with(needle), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_project_is_the_nearest_folder_up_with_pulumi_yaml() {
    let dir = scratch("project");
    let inner = dir.join("a/b");
    std::fs::create_dir_all(&inner).unwrap();
    assert_eq!(project_dir(&inner), inner, "none found: where it started");
    std::fs::write(dir.join("Pulumi.yaml"), "name: x\n").unwrap();
    assert_eq!(project_dir(&inner), dir);
    assert_eq!(project_dir(&dir), dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn durations_are_masked_only_where_they_are_durations() {
    assert_eq!(mask_durations("a (6.2 s) b (x) (1 s)"), "a (T) b (x) (T)");
}

#[test]
fn a_dry_run_prints_its_calls_and_runs_none() {
    let dir = scratch("dry");
    let mut fake = example();
    let line = format!("destroy {PROFILES} --dry-run");
    let (out, result) = pair(&mut fake, &FakeSts(vec![]), &line, &dir);
    result.unwrap();
    let args = parse(&words(&line)).unwrap();
    let expected = dry_run(&args, Wiring::StackReference, &nothing).join("\n") + "\n";
    assert_eq!(out, expected);
    assert!(fake.calls.is_empty(), "{:?}", fake.calls);
    std::fs::remove_dir_all(&dir).unwrap();
}
