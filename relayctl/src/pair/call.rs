//! One call of the Pulumi CLI for one stack of the pair, as data: its arguments, the
//! environment that gives it that stack's credentials and backend, and how it is shown.

use infra::config::StackSide;

use super::args::shell_word;

/// Flags every call gets when relayctl runs it: no prompts, no colour codes in what it parses.
pub const UNATTENDED_FLAGS: [&str; 3] = ["--non-interactive", "--color", "never"];

/// The CLI offers `--event-log` only with this variable set (`env.DebugCommands` in
/// pulumi/pkg: the Automation API sets it for every call).
pub const EVENT_LOG_ENABLE: (&str, &str) = ("PULUMI_DEBUG_COMMANDS", "true");

/// Variables that carry credentials of their own. A run given a named profile gets none of
/// them, so the profile's credentials are the only ones it can use (the AWS SDKs prefer
/// these to a profile).
pub const CREDENTIAL_VARIABLES: [&str; 7] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

/// A change to the environment a call inherits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    Set(String, String),
    Unset(String),
}

/// How one stack's runs reach their account and backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackEnv {
    /// A named AWS profile; `None`: the environment's credentials, as they are.
    pub profile: Option<String>,
    /// `PULUMI_BACKEND_URL` for this stack; `None`: as the environment has it.
    pub backend: Option<String>,
}

impl StackEnv {
    /// The changes that give a run this stack's credentials and backend, and nothing else.
    pub fn changes(&self) -> Vec<EnvChange> {
        let mut changes = Vec::new();
        if let Some(profile) = &self.profile {
            changes.extend(
                CREDENTIAL_VARIABLES
                    .iter()
                    .map(|name| EnvChange::Unset(name.to_string())),
            );
            changes.push(EnvChange::Set("AWS_PROFILE".into(), profile.clone()));
        }
        if let Some(backend) = &self.backend {
            changes.push(EnvChange::Set("PULUMI_BACKEND_URL".into(), backend.clone()));
        }
        changes
    }

    /// How the credentials are described to the operator.
    pub fn credentials(&self) -> String {
        match &self.profile {
            Some(profile) => format!("profile {profile}"),
            None => "the environment's credentials".to_string(),
        }
    }
}

/// One `pulumi` call for one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Whose stack it runs for: its credentials and backend.
    pub side: StackSide,
    /// The arguments after `pulumi`, as an operator would type them.
    pub args: Vec<String>,
    /// Arguments added when relayctl runs it unattended (`--yes`, `--skip-preview`).
    pub unattended: Vec<String>,
    /// relayctl reads its engine events: `--event-log <file>`.
    pub event_log: bool,
    /// Its standard output is a secret: never shown, not even when it fails.
    pub secret_output: bool,
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

impl Call {
    fn new(side: StackSide, args: &[&str]) -> Self {
        Self {
            side,
            args: strings(args),
            unattended: Vec::new(),
            event_log: false,
            secret_output: false,
        }
    }

    /// `pulumi config --json`: every key, project defaults applied, secrets blinded.
    pub fn config_json(side: StackSide, stack: &str) -> Self {
        Self::new(side, &["config", "--json", "--stack", stack])
    }

    /// `pulumi config get <key>`: the value in plaintext, a secret's too.
    pub fn config_get(side: StackSide, stack: &str, key: &str) -> Self {
        Self {
            secret_output: true,
            ..Self::new(side, &["config", "get", key, "--stack", stack])
        }
    }

    /// `pulumi stack --show-name --fully-qualify-stack-names`: `<org>/<project>/<stack>`, what
    /// a StackReference names.
    pub fn qualified_name(side: StackSide, stack: &str) -> Self {
        Self::new(
            side,
            &[
                "stack",
                "--show-name",
                "--fully-qualify-stack-names",
                "--stack",
                stack,
            ],
        )
    }

    /// `pulumi stack output --json`: the outputs, secrets blinded.
    pub fn outputs(side: StackSide, stack: &str) -> Self {
        Self::new(side, &["stack", "output", "--json", "--stack", stack])
    }

    /// `pulumi preview`, optionally with the config of another file.
    pub fn preview(side: StackSide, stack: &str, config_file: Option<&str>) -> Self {
        let mut call = Self::new(side, &["preview", "--stack", stack]);
        if let Some(file) = config_file {
            call.args.extend(strings(&["--config-file", file]));
        }
        call.event_log = true;
        call
    }

    /// `pulumi up`, after relayctl's own preview.
    pub fn up(side: StackSide, stack: &str) -> Self {
        Self {
            unattended: strings(&["--yes", "--skip-preview"]),
            event_log: true,
            ..Self::new(side, &["up", "--stack", stack])
        }
    }

    /// `pulumi destroy --preview-only`: what destroy would delete.
    pub fn destroy_preview(side: StackSide, stack: &str) -> Self {
        Self {
            event_log: true,
            ..Self::new(side, &["destroy", "--stack", stack, "--preview-only"])
        }
    }

    /// `pulumi destroy`, after relayctl's own preview of it.
    pub fn destroy(side: StackSide, stack: &str) -> Self {
        Self {
            unattended: strings(&["--yes", "--skip-preview"]),
            event_log: true,
            ..Self::new(side, &["destroy", "--stack", stack])
        }
    }

    /// `pulumi config set <key> <value>` (a plain value), in the stack's file or `config_file`.
    pub fn config_set(
        side: StackSide,
        stack: &str,
        key: &str,
        value: &str,
        config_file: Option<&str>,
    ) -> Self {
        let mut call = Self::new(side, &["config", "set", "--stack", stack]);
        if let Some(file) = config_file {
            call.args.extend(strings(&["--config-file", file]));
        }
        call.args.extend(strings(&[key, value]));
        call
    }

    /// `pulumi config set --secret <key>`, without the value: the line an operator completes
    /// with one from their shell (`"$(...)"`), so no secret is ever part of it.
    pub fn config_set_secret(side: StackSide, stack: &str, key: &str) -> Self {
        Self::new(side, &["config", "set", "--secret", "--stack", stack, key])
    }

    /// `pulumi config rm <key>`, in the stack's file or `config_file`.
    pub fn config_rm(side: StackSide, stack: &str, key: &str, config_file: Option<&str>) -> Self {
        let mut call = Self::new(side, &["config", "rm", "--stack", stack]);
        if let Some(file) = config_file {
            call.args.extend(strings(&["--config-file", file]));
        }
        call.args.push(key.to_string());
        call
    }

    /// The environment changes of the run: the stack's, and what `--event-log` needs.
    pub fn env(&self, stack: &[EnvChange]) -> Vec<EnvChange> {
        let mut env = stack.to_vec();
        if self.event_log {
            let (name, value) = EVENT_LOG_ENABLE;
            env.push(EnvChange::Set(name.into(), value.into()));
        }
        env
    }

    /// Everything after `pulumi` when relayctl runs it, with the event log at `event_log`.
    pub fn argv(&self, event_log: Option<&str>) -> Vec<String> {
        let mut argv = strings(&UNATTENDED_FLAGS);
        argv.extend(self.args.iter().cloned());
        argv.extend(self.unattended.iter().cloned());
        if let (true, Some(file)) = (self.event_log, event_log) {
            argv.extend(strings(&["--event-log", file]));
        }
        argv
    }

    /// The shell line relayctl runs: the environment it changes (an unset only when `present`
    /// says the variable is there to unset), then `pulumi` and [`Call::argv`].
    pub fn exact_line(
        &self,
        env: &[EnvChange],
        present: &dyn Fn(&str) -> bool,
        event_log: &str,
    ) -> String {
        line(&self.env(env), present, &self.argv(Some(event_log)))
    }

    /// The shell line an operator runs for the same step: without the unattended flags.
    pub fn operator_line(&self, env: &[EnvChange], present: &dyn Fn(&str) -> bool) -> String {
        line(env, present, &self.args)
    }
}

fn line(env: &[EnvChange], present: &dyn Fn(&str) -> bool, args: &[String]) -> String {
    let mut words = Vec::new();
    let unsets: Vec<&String> = env
        .iter()
        .filter_map(|c| match c {
            EnvChange::Unset(name) if present(name) => Some(name),
            _ => None,
        })
        .collect();
    if !unsets.is_empty() {
        words.push("env".to_string());
        for name in unsets {
            words.push(format!("-u {name}"));
        }
    }
    for change in env {
        if let EnvChange::Set(name, value) = change {
            words.push(format!("{name}={}", shell_word(value)));
        }
    }
    words.push("pulumi".to_string());
    words.extend(args.iter().map(|a| shell_word(a)));
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: &str) -> bool {
        false
    }

    #[test]
    fn a_profile_replaces_every_credential_of_the_environment() {
        let env = StackEnv {
            profile: Some("target".into()),
            backend: None,
        };
        let changes = env.changes();
        for name in CREDENTIAL_VARIABLES {
            assert!(changes.contains(&EnvChange::Unset(name.into())), "{name}");
        }
        assert!(changes.contains(&EnvChange::Set("AWS_PROFILE".into(), "target".into())));
        assert_eq!(changes.len(), CREDENTIAL_VARIABLES.len() + 1);
        assert_eq!(env.credentials(), "profile target");
        assert_eq!(StackEnv::default().changes(), vec![]);
        assert_eq!(
            StackEnv::default().credentials(),
            "the environment's credentials"
        );
    }

    #[test]
    fn a_backend_is_the_runs_pulumi_backend_url() {
        let env = StackEnv {
            profile: None,
            backend: Some("file:///state".into()),
        };
        assert_eq!(
            env.changes(),
            vec![EnvChange::Set(
                "PULUMI_BACKEND_URL".into(),
                "file:///state".into()
            )]
        );
    }

    #[test]
    fn lines_show_the_environment_and_the_arguments() {
        let env = StackEnv {
            profile: Some("source".into()),
            backend: Some("file:///b c".into()),
        }
        .changes();
        let up = Call::up(StackSide::Source, "source");
        assert_eq!(
            up.operator_line(&env, &nothing),
            "AWS_PROFILE=source PULUMI_BACKEND_URL='file:///b c' pulumi up --stack source"
        );
        let present = |name: &str| name == "AWS_ACCESS_KEY_ID" || name == "AWS_SESSION_TOKEN";
        assert_eq!(
            up.exact_line(&env, &present, "<temp file>"),
            "env -u AWS_ACCESS_KEY_ID -u AWS_SESSION_TOKEN AWS_PROFILE=source PULUMI_BACKEND_URL='file:///b c' \
             PULUMI_DEBUG_COMMANDS=true pulumi --non-interactive --color never up --stack source --yes --skip-preview --event-log '<temp file>'"
        );
        // No event log for a call that does not read events.
        let outputs = Call::outputs(StackSide::Target, "target");
        assert_eq!(
            outputs.exact_line(&[], &nothing, "f"),
            "pulumi --non-interactive --color never stack output --json --stack target"
        );
    }

    #[test]
    fn each_call_has_its_arguments() {
        let t = StackSide::Target;
        let cases: Vec<(Call, &str)> = vec![
            (Call::config_json(t, "s"), "config --json --stack s"),
            (
                Call::config_get(t, "s", "externalId"),
                "config get externalId --stack s",
            ),
            (
                Call::qualified_name(t, "s"),
                "stack --show-name --fully-qualify-stack-names --stack s",
            ),
            (Call::outputs(t, "s"), "stack output --json --stack s"),
            (Call::preview(t, "s", None), "preview --stack s"),
            (
                Call::preview(t, "s", Some("f.yaml")),
                "preview --stack s --config-file f.yaml",
            ),
            (Call::up(t, "s"), "up --stack s --yes --skip-preview"),
            (
                Call::destroy_preview(t, "s"),
                "destroy --stack s --preview-only",
            ),
            (
                Call::destroy(t, "s"),
                "destroy --stack s --yes --skip-preview",
            ),
            (
                Call::config_set(t, "s", "k", "v", None),
                "config set --stack s k v",
            ),
            (
                Call::config_set(t, "s", "k", "v", Some("f")),
                "config set --stack s --config-file f k v",
            ),
            (
                Call::config_set_secret(t, "s", "k"),
                "config set --secret --stack s k",
            ),
            (Call::config_rm(t, "s", "k", None), "config rm --stack s k"),
            (
                Call::config_rm(t, "s", "k", Some("f")),
                "config rm --stack s --config-file f k",
            ),
        ];
        for (call, args) in cases {
            let argv = call.argv(Some("log"));
            let expected: Vec<String> = UNATTENDED_FLAGS
                .iter()
                .map(|s| s.to_string())
                .chain(args.split(' ').map(String::from))
                .chain(if call.event_log {
                    vec!["--event-log".to_string(), "log".to_string()]
                } else {
                    vec![]
                })
                .collect();
            assert_eq!(argv, expected, "{args}");
            assert_eq!(call.side, t);
        }
        let log_readers: Vec<bool> = [
            Call::preview(t, "s", None),
            Call::up(t, "s"),
            Call::destroy_preview(t, "s"),
            Call::destroy(t, "s"),
        ]
        .iter()
        .map(|c| c.event_log)
        .collect();
        assert_eq!(log_readers, vec![true; 4]);
        assert!(!Call::config_json(t, "s").event_log);
        assert!(Call::config_get(t, "s", "externalId").secret_output);
        assert!(!Call::config_json(t, "s").secret_output);
        assert!(!Call::up(t, "s").secret_output);
        assert_eq!(
            Call::up(t, "s").argv(None).last().unwrap(),
            "--skip-preview"
        );
        let stack = [EnvChange::Set("AWS_PROFILE".into(), "p".into())];
        assert_eq!(
            Call::up(t, "s").env(&stack),
            [
                stack[0].clone(),
                EnvChange::Set("PULUMI_DEBUG_COMMANDS".into(), "true".into())
            ]
        );
        assert_eq!(Call::outputs(t, "s").env(&stack), stack);
    }
}
