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

/// A test's own empty folder under the temp folder, named by `name` and this process: a folder
/// left by an earlier process with the same id (a test that panicked before its cleanup, as a
/// mutant's does) is removed first, so no test reads another run's files.
#[cfg(test)]
pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("relayctl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_scratch_folder_starts_empty_even_after_a_run_that_left_files() {
        let dir = super::scratch("scratch");
        std::fs::write(dir.join("left"), "by a test that panicked").unwrap();
        let again = super::scratch("scratch");
        assert_eq!(again, dir);
        assert_eq!(std::fs::read_dir(&again).unwrap().count(), 0);
        std::fs::remove_dir_all(&again).unwrap();
    }
}
