//! `relayctl pair`: both stacks of a deployment through the Pulumi CLI, in dependency order,
//! each with its own account's credentials (issue 22).
//!
//! The CLI underneath is driven the way Pulumi's Automation API drives it: `--non-interactive`,
//! machine-readable output (`pulumi config --json`, `pulumi stack output --json`), and engine
//! events from `--event-log <file>` for progress. The parts, each testable on its own:
//!
//! - [`args`]: the command line.
//! - [`plan`]: the steps of each action as data, the source's wiring to the target, `--dry-run`.
//! - [`call`]: one CLI call as data: arguments, the stack's environment, how it is shown.
//! - [`pulumi`]: the CLI as a port ([`pulumi::Pulumi`]), the real one ([`pulumi::Cli`]) and its
//!   engine events.
//! - [`settings`]: one stack's config as `pulumi config --json` prints it.
//! - [`sts`]: which account a stack's credentials belong to ([`sts::Accounts`], STS).
//! - [`checks`]: sides, accounts and agreement, each refusal with the line that fixes it.
//! - [`progress`]: resources done of those planned, per stack.
//! - [`run`]: the steps run in order, stopping at the first refusal or failure.

pub mod args;
pub mod call;
pub mod checks;
pub mod plan;
pub mod progress;
pub mod pulumi;
pub mod run;
pub mod settings;
pub mod sts;
