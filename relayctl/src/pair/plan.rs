//! The plan of a pair command as data: its steps in order, the CLI calls each makes, how the
//! source is wired to the target, and what `--dry-run` prints.

use std::collections::BTreeMap;

use infra::config::{Key, StackSide};
use infra::outputs::SOURCE_KEYS;

use super::args::{Action, PairArgs, StackArgs};
use super::call::{Call, StackEnv};
use super::settings::StackSettings;

/// How the source stack gets the target's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// Both stacks in one backend: `targetStack` names the target, read by a StackReference.
    StackReference,
    /// Different backends: the outputs are copied into the source's config keys.
    ConfigValues,
}

impl Wiring {
    /// StackReference when both stacks reach the same backend: the one each is given, else
    /// `PULUMI_BACKEND_URL` of the environment, else the same `pulumi login`.
    pub fn between(target: &StackArgs, source: &StackArgs, ambient_backend: Option<&str>) -> Self {
        let backend = |s: &StackArgs| s.backend.clone().or(ambient_backend.map(String::from));
        if backend(target) == backend(source) {
            Wiring::StackReference
        } else {
            Wiring::ConfigValues
        }
    }
}

/// One step of a pair command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `pulumi config --json`.
    ReadConfig(StackSide),
    /// `pulumi config get externalId`: kept in memory to compare, never printed.
    ReadExternalId(StackSide),
    /// The target's fully qualified name, what `targetStack` names.
    ReadQualifiedName,
    /// Each stack is the side it was given as.
    CheckSides,
    /// STS GetCallerIdentity with each stack's credentials: the account it is pinned to.
    CheckAccounts,
    /// The two stacks agree (external id, name prefix, account ids).
    CheckAgreement,
    /// `pulumi preview` of a stack as it is configured.
    Preview(StackSide),
    /// The source's preview as `up` would configure it (a copy of its config with the wiring).
    PreviewWiredSource,
    /// `pulumi preview`, then `pulumi up`.
    Up(StackSide),
    /// `pulumi stack output --json`.
    ReadOutputs(StackSide),
    /// `pulumi config set`/`rm` on the source: it reads the target.
    WireSource,
    /// `pulumi destroy --preview-only`, then `pulumi destroy`.
    Destroy(StackSide),
}

use StackSide::{Source, Target};

/// The steps of `action`, in order.
pub fn steps(action: Action, wiring: Wiring) -> Vec<Step> {
    let mut reads = vec![Step::ReadConfig(Target), Step::ReadConfig(Source)];
    let checks = [Step::CheckSides, Step::CheckAccounts, Step::CheckAgreement];
    match action {
        Action::Outputs => vec![Step::ReadOutputs(Target), Step::ReadOutputs(Source)],
        Action::Destroy => [
            reads.as_slice(),
            &checks[..2],
            &[Step::Destroy(Source), Step::Destroy(Target)],
        ]
        .concat(),
        Action::Preview | Action::Up => {
            reads.extend([Step::ReadExternalId(Target), Step::ReadExternalId(Source)]);
            if wiring == Wiring::StackReference {
                reads.push(Step::ReadQualifiedName);
            }
            let operations: &[Step] = if action == Action::Up {
                &[
                    Step::Up(Target),
                    Step::ReadOutputs(Target),
                    Step::WireSource,
                    Step::Up(Source),
                ]
            } else {
                &[
                    Step::Preview(Target),
                    Step::ReadOutputs(Target),
                    Step::PreviewWiredSource,
                ]
            };
            [reads.as_slice(), &checks, operations].concat()
        }
    }
}

/// A change to the source's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Set(&'static str, String),
    Remove(&'static str),
}

impl ConfigChange {
    /// The call that makes it, in the stack's file or in `config_file`.
    pub fn call(&self, stack: &str, config_file: Option<&str>) -> Call {
        match self {
            ConfigChange::Set(key, value) => {
                Call::config_set(Source, stack, key, value, config_file)
            }
            ConfigChange::Remove(key) => Call::config_rm(Source, stack, key, config_file),
        }
    }
}

/// The target stack lacks an output the source needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the target stack has no output {output} (the source's {key}): is it deployed? `relayctl pair up` deploys it first")]
pub struct MissingOutput {
    pub output: &'static str,
    pub key: &'static str,
}

/// What the source's config must change to read the target as `wiring` says, given its
/// config now: nothing already right is set again, and the keys of the other way are removed.
/// `targetRegion` is set only when the target's region differs from the one the source would
/// use (its `targetRegion`, else its `aws:region`).
pub fn wiring_changes(
    wiring: Wiring,
    source: &StackSettings,
    target_name: &str,
    target_outputs: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<ConfigChange>, MissingOutput> {
    // Every output the source reads must be there, whichever way it reads them.
    let mut values = BTreeMap::new();
    for (output, key) in SOURCE_KEYS {
        let value = target_outputs
            .get(output)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .ok_or(MissingOutput {
                output,
                key: key.name(),
            })?;
        values.insert(output, value);
    }
    let mut changes = Vec::new();
    let remove_if_set = |key: Key, changes: &mut Vec<ConfigChange>| {
        if source.get(key).is_some() {
            changes.push(ConfigChange::Remove(key.name()));
        }
    };
    match wiring {
        Wiring::StackReference => {
            if source.get(Key::TargetStack) != Some(target_name) {
                changes.push(ConfigChange::Set(
                    Key::TargetStack.name(),
                    target_name.to_string(),
                ));
            }
            remove_if_set(Key::TargetRoleArn, &mut changes);
            remove_if_set(Key::TargetFunctionName, &mut changes);
        }
        Wiring::ConfigValues => {
            for (output, key) in SOURCE_KEYS {
                let value = values[output];
                let now = match key {
                    Key::TargetRegion => source.get(key).or(source.region()),
                    _ => source.get(key),
                };
                if now != Some(value) {
                    changes.push(ConfigChange::Set(key.name(), value.to_string()));
                }
            }
            remove_if_set(Key::TargetStack, &mut changes);
        }
    }
    Ok(changes)
}

/// What `--dry-run` prints: every CLI call the command would make, one per line, with
/// `<...>` for what only the run itself can know, and `#` lines for what is not a CLI call.
pub fn dry_run(args: &PairArgs, wiring: Wiring, present: &dyn Fn(&str) -> bool) -> Vec<String> {
    let member = |side: StackSide| match side {
        Target => &args.target,
        Source => &args.source,
    };
    let env = |side: StackSide| {
        StackEnv {
            profile: member(side).profile.clone(),
            backend: member(side).backend.clone(),
        }
        .changes()
    };
    let line = |call: &Call| call.exact_line(&env(call.side), present, "<temp file>");
    let stack = |side: StackSide| member(side).stack.as_str();
    let qualified = if stack(Target).split('/').count() == 3 {
        stack(Target).to_string()
    } else {
        format!("<{}'s fully qualified name>", stack(Target))
    };
    let command = PairArgs {
        dry_run: false,
        ..args.clone()
    };
    let mut lines = vec![format!(
        "# {command}: the calls it would make; a stack without --*-profile uses its aws:profile, else the environment's credentials"
    )];
    for step in steps(args.action, wiring) {
        match step {
            Step::ReadConfig(side) => lines.push(line(&Call::config_json(side, stack(side)))),
            Step::ReadExternalId(side) => lines.push(line(&Call::config_get(
                side,
                stack(side),
                Key::ExternalId.name(),
            ))),
            Step::ReadQualifiedName => lines.push(line(&Call::qualified_name(Target, stack(Target)))),
            Step::CheckSides => lines.push(format!(
                "# check: {} deploys side target, {} side source",
                stack(Target),
                stack(Source)
            )),
            Step::CheckAccounts => lines.push(
                "# check: STS GetCallerIdentity with each stack's credentials answers the account the stack is pinned to (targetAccountId, sourceAccountId)".into(),
            ),
            Step::CheckAgreement => lines.push(
                "# check: the same externalId (compared in memory), namePrefix, sourceAccountId and targetAccountId on both stacks".into(),
            ),
            Step::Preview(side) => lines.push(line(&Call::preview(side, stack(side), None))),
            Step::Up(side) => {
                lines.push(line(&Call::preview(side, stack(side), None)));
                lines.push(line(&Call::up(side, stack(side))));
            }
            Step::ReadOutputs(side) => lines.push(line(&Call::outputs(side, stack(side)))),
            Step::WireSource | Step::PreviewWiredSource => {
                let copy = format!("<copy of Pulumi.{}.yaml>", stack(Source));
                let file = (step == Step::PreviewWiredSource).then_some(copy.as_str());
                lines.push(
                    "# only what differs from the source's config now: set to the target's outputs, the keys of the other way removed".into(),
                );
                for change in dry_run_wiring(wiring, &qualified) {
                    lines.push(line(&change.call(stack(Source), file)));
                }
                if let Some(file) = file {
                    lines.push(line(&Call::preview(Source, stack(Source), Some(file))));
                }
            }
            Step::Destroy(side) => {
                lines.push(line(&Call::destroy_preview(side, stack(side))));
                lines.push(line(&Call::destroy(side, stack(side))));
            }
        }
    }
    lines
}

/// Every change the wiring could make, with the values a dry run cannot know.
fn dry_run_wiring(wiring: Wiring, qualified: &str) -> Vec<ConfigChange> {
    match wiring {
        Wiring::StackReference => vec![
            ConfigChange::Set(Key::TargetStack.name(), qualified.to_string()),
            ConfigChange::Remove(Key::TargetRoleArn.name()),
            ConfigChange::Remove(Key::TargetFunctionName.name()),
        ],
        Wiring::ConfigValues => SOURCE_KEYS
            .iter()
            .map(|(output, key)| ConfigChange::Set(key.name(), format!("<target output {output}>")))
            .chain([ConfigChange::Remove(Key::TargetStack.name())])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pair::args::parse;
    use serde_json::json;

    fn nothing(_: &str) -> bool {
        false
    }

    fn args(line: &str) -> PairArgs {
        parse(
            &line
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn one_backend_means_a_stack_reference() {
        let a = args("up");
        assert_eq!(
            Wiring::between(&a.target, &a.source, None),
            Wiring::StackReference
        );
        assert_eq!(
            Wiring::between(&a.target, &a.source, Some("s3://b")),
            Wiring::StackReference
        );
        let b = args("up --target-backend file:///a --source-backend file:///b");
        assert_eq!(
            Wiring::between(&b.target, &b.source, None),
            Wiring::ConfigValues
        );
        let same = args("up --target-backend file:///a --source-backend file:///a");
        assert_eq!(
            Wiring::between(&same.target, &same.source, None),
            Wiring::StackReference
        );
        // One given, the other from the environment: the same backend or not.
        let one = args("up --source-backend file:///a");
        assert_eq!(
            Wiring::between(&one.target, &one.source, Some("file:///a")),
            Wiring::StackReference
        );
        assert_eq!(
            Wiring::between(&one.target, &one.source, None),
            Wiring::ConfigValues
        );
    }

    #[test]
    fn up_goes_target_first_and_destroy_source_first() {
        use Step::*;
        let read = [
            ReadConfig(Target),
            ReadConfig(Source),
            ReadExternalId(Target),
            ReadExternalId(Source),
        ];
        let checks = [CheckSides, CheckAccounts, CheckAgreement];
        let up = [Up(Target), ReadOutputs(Target), WireSource, Up(Source)];
        assert_eq!(
            steps(Action::Up, Wiring::StackReference),
            [&read[..], &[ReadQualifiedName], &checks, &up].concat()
        );
        assert_eq!(
            steps(Action::Up, Wiring::ConfigValues),
            [&read[..], &checks, &up].concat()
        );
        assert_eq!(
            steps(Action::Preview, Wiring::ConfigValues),
            [
                &read[..],
                &checks,
                &[Preview(Target), ReadOutputs(Target), PreviewWiredSource]
            ]
            .concat()
        );
        assert_eq!(
            steps(Action::Destroy, Wiring::StackReference),
            vec![
                ReadConfig(Target),
                ReadConfig(Source),
                CheckSides,
                CheckAccounts,
                Destroy(Source),
                Destroy(Target)
            ]
        );
        assert_eq!(
            steps(Action::Outputs, Wiring::ConfigValues),
            vec![ReadOutputs(Target), ReadOutputs(Source)]
        );
    }

    fn source(pairs: &[(&str, &str)]) -> StackSettings {
        let mut all = vec![("aws:region", "eu-west-1")];
        all.extend_from_slice(pairs);
        StackSettings::from_pairs("source", &all)
    }

    fn outputs(region: &str) -> BTreeMap<String, serde_json::Value> {
        [
            (
                "crossAccountRoleArn",
                json!("arn:aws:iam::222222222222:role/r"),
            ),
            (
                "targetFunctionArn",
                json!("arn:aws:lambda:eu-west-1:222222222222:function:f"),
            ),
            ("targetRegion", json!(region)),
            (
                "alarmTopicArn",
                json!("arn:aws:sns:eu-west-1:222222222222:t"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn a_stack_reference_names_the_target_and_drops_the_copied_values() {
        let fresh = source(&[
            (
                "cross-account-relay:targetRoleArn",
                "arn:aws:iam::222222222222:role/old",
            ),
            ("cross-account-relay:targetFunctionName", "f"),
        ]);
        assert_eq!(
            wiring_changes(
                Wiring::StackReference,
                &fresh,
                "o/p/target",
                &outputs("eu-west-1")
            )
            .unwrap(),
            vec![
                ConfigChange::Set("targetStack", "o/p/target".into()),
                ConfigChange::Remove("targetRoleArn"),
                ConfigChange::Remove("targetFunctionName"),
            ]
        );
        let wired = source(&[("cross-account-relay:targetStack", "o/p/target")]);
        assert_eq!(
            wiring_changes(
                Wiring::StackReference,
                &wired,
                "o/p/target",
                &outputs("eu-west-1")
            )
            .unwrap(),
            vec![]
        );
        let elsewhere = source(&[("cross-account-relay:targetStack", "o/p/other")]);
        assert_eq!(
            wiring_changes(
                Wiring::StackReference,
                &elsewhere,
                "o/p/target",
                &outputs("eu-west-1")
            )
            .unwrap(),
            vec![ConfigChange::Set("targetStack", "o/p/target".into())]
        );
        // A target without its outputs (not deployed) cannot be referenced either.
        assert_eq!(
            wiring_changes(
                Wiring::StackReference,
                &wired,
                "o/p/target",
                &BTreeMap::new()
            ),
            Err(MissingOutput {
                output: "crossAccountRoleArn",
                key: "targetRoleArn"
            })
        );
    }

    #[test]
    fn config_values_copy_the_outputs_that_differ_and_drop_the_reference() {
        let fresh = source(&[("cross-account-relay:targetStack", "o/p/target")]);
        assert_eq!(
            wiring_changes(Wiring::ConfigValues, &fresh, "-", &outputs("eu-west-1")).unwrap(),
            vec![
                ConfigChange::Set("targetRoleArn", "arn:aws:iam::222222222222:role/r".into()),
                ConfigChange::Set(
                    "targetFunctionName",
                    "arn:aws:lambda:eu-west-1:222222222222:function:f".into()
                ),
                ConfigChange::Remove("targetStack"),
            ],
            "the region is the source's own: not set"
        );
        let wired = source(&[
            (
                "cross-account-relay:targetRoleArn",
                "arn:aws:iam::222222222222:role/r",
            ),
            (
                "cross-account-relay:targetFunctionName",
                "arn:aws:lambda:eu-west-1:222222222222:function:f",
            ),
        ]);
        assert_eq!(
            wiring_changes(Wiring::ConfigValues, &wired, "-", &outputs("eu-west-1")).unwrap(),
            vec![]
        );
        assert_eq!(
            wiring_changes(Wiring::ConfigValues, &wired, "-", &outputs("us-east-1")).unwrap(),
            vec![ConfigChange::Set("targetRegion", "us-east-1".into())]
        );
        let pinned_region = source(&[
            (
                "cross-account-relay:targetRoleArn",
                "arn:aws:iam::222222222222:role/r",
            ),
            (
                "cross-account-relay:targetFunctionName",
                "arn:aws:lambda:eu-west-1:222222222222:function:f",
            ),
            ("cross-account-relay:targetRegion", "us-east-1"),
        ]);
        assert_eq!(
            wiring_changes(
                Wiring::ConfigValues,
                &pinned_region,
                "-",
                &outputs("eu-west-1")
            )
            .unwrap(),
            vec![ConfigChange::Set("targetRegion", "eu-west-1".into())]
        );
        let mut partial = outputs("eu-west-1");
        partial.remove("targetFunctionArn");
        assert_eq!(
            wiring_changes(Wiring::ConfigValues, &wired, "-", &partial),
            Err(MissingOutput {
                output: "targetFunctionArn",
                key: "targetFunctionName"
            })
        );
        partial.insert("targetFunctionArn".into(), json!(""));
        assert!(wiring_changes(Wiring::ConfigValues, &wired, "-", &partial).is_err());
        let text = MissingOutput {
            output: "crossAccountRoleArn",
            key: "targetRoleArn",
        }
        .to_string();
        assert!(
            text.contains("no output crossAccountRoleArn (the source's targetRoleArn)"),
            "{text}"
        );
    }

    #[test]
    fn config_changes_are_set_and_rm_calls_on_the_source() {
        let set = ConfigChange::Set("targetStack", "o/p/t".into()).call("src", None);
        assert_eq!(
            set,
            Call::config_set(Source, "src", "targetStack", "o/p/t", None)
        );
        let rm = ConfigChange::Remove("targetStack").call("src", Some("copy.yaml"));
        assert_eq!(
            rm,
            Call::config_rm(Source, "src", "targetStack", Some("copy.yaml"))
        );
    }

    #[test]
    fn a_dry_run_prints_every_call_in_order_and_no_secret() {
        let a = args("up --target-profile t --source-profile s --dry-run");
        let lines = dry_run(&a, Wiring::StackReference, &nothing);
        let g = "pulumi --non-interactive --color never";
        assert_eq!(
            lines,
            vec![
                "# relayctl pair up --target-stack target --target-profile t --source-stack source --source-profile s: the calls it would make; a stack without --*-profile uses its aws:profile, else the environment's credentials".to_string(),
                format!("AWS_PROFILE=t {g} config --json --stack target"),
                format!("AWS_PROFILE=s {g} config --json --stack source"),
                format!("AWS_PROFILE=t {g} config get externalId --stack target"),
                format!("AWS_PROFILE=s {g} config get externalId --stack source"),
                format!("AWS_PROFILE=t {g} stack --show-name --fully-qualify-stack-names --stack target"),
                "# check: target deploys side target, source side source".to_string(),
                "# check: STS GetCallerIdentity with each stack's credentials answers the account the stack is pinned to (targetAccountId, sourceAccountId)".to_string(),
                "# check: the same externalId (compared in memory), namePrefix, sourceAccountId and targetAccountId on both stacks".to_string(),
                format!("AWS_PROFILE=t PULUMI_DEBUG_COMMANDS=true {g} preview --stack target --event-log '<temp file>'"),
                format!("AWS_PROFILE=t PULUMI_DEBUG_COMMANDS=true {g} up --stack target --yes --skip-preview --event-log '<temp file>'"),
                format!("AWS_PROFILE=t {g} stack output --json --stack target"),
                "# only what differs from the source's config now: set to the target's outputs, the keys of the other way removed".to_string(),
                format!("AWS_PROFILE=s {g} config set --stack source targetStack '<target'\\''s fully qualified name>'"),
                format!("AWS_PROFILE=s {g} config rm --stack source targetRoleArn"),
                format!("AWS_PROFILE=s {g} config rm --stack source targetFunctionName"),
                format!("AWS_PROFILE=s PULUMI_DEBUG_COMMANDS=true {g} preview --stack source --event-log '<temp file>'"),
                format!("AWS_PROFILE=s PULUMI_DEBUG_COMMANDS=true {g} up --stack source --yes --skip-preview --event-log '<temp file>'"),
            ]
        );
    }

    #[test]
    fn a_dry_run_of_separate_backends_copies_outputs_and_previews_a_copy() {
        let a = args("preview --target-stack o/p/t --source-stack s --target-backend file:///a --source-backend file:///b");
        let lines = dry_run(&a, Wiring::ConfigValues, &nothing);
        let g = "pulumi --non-interactive --color never";
        let tail: Vec<&str> = lines[lines.len() - 5..]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                format!("PULUMI_BACKEND_URL=file:///b {g} config set --stack s --config-file '<copy of Pulumi.s.yaml>' targetRoleArn '<target output crossAccountRoleArn>'").as_str(),
                &format!("PULUMI_BACKEND_URL=file:///b {g} config set --stack s --config-file '<copy of Pulumi.s.yaml>' targetFunctionName '<target output targetFunctionArn>'"),
                &format!("PULUMI_BACKEND_URL=file:///b {g} config set --stack s --config-file '<copy of Pulumi.s.yaml>' targetRegion '<target output targetRegion>'"),
                &format!("PULUMI_BACKEND_URL=file:///b {g} config rm --stack s --config-file '<copy of Pulumi.s.yaml>' targetStack"),
                &format!("PULUMI_BACKEND_URL=file:///b PULUMI_DEBUG_COMMANDS=true {g} preview --stack s --config-file '<copy of Pulumi.s.yaml>' --event-log '<temp file>'"),
            ]
        );
        assert!(lines.contains(&format!("PULUMI_BACKEND_URL=file:///a PULUMI_DEBUG_COMMANDS=true {g} preview --stack o/p/t --event-log '<temp file>'")));
        // A fully qualified target needs no placeholder.
        let b = args("up --target-stack o/p/t");
        let lines = dry_run(&b, Wiring::StackReference, &nothing);
        assert!(
            lines.contains(&format!("{g} config set --stack source targetStack o/p/t")),
            "{lines:#?}"
        );
        let d = args("destroy");
        let lines = dry_run(&d, Wiring::StackReference, &nothing);
        let ops: Vec<&String> = lines.iter().filter(|l| l.contains(" destroy ")).collect();
        assert_eq!(
            ops[1..],
            [
                &format!("PULUMI_DEBUG_COMMANDS=true {g} destroy --stack source --preview-only --event-log '<temp file>'"),
                &format!("PULUMI_DEBUG_COMMANDS=true {g} destroy --stack source --yes --skip-preview --event-log '<temp file>'"),
                &format!("PULUMI_DEBUG_COMMANDS=true {g} destroy --stack target --preview-only --event-log '<temp file>'"),
                &format!("PULUMI_DEBUG_COMMANDS=true {g} destroy --stack target --yes --skip-preview --event-log '<temp file>'"),
            ]
        );
    }
}
