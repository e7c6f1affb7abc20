//! `infra`: prints the Pulumi template of the current stack (JSON) for Pulumi's YAML runtime.
//!
//! Usage: run by Pulumi as the project's `compiler` (see Pulumi.yaml). By hand:
//! `PULUMI_STACK=target PULUMI_PROJECT=cross-account-relay PULUMI_CONFIG='{...}' infra`.
//! `infra --pulumi-aws-version` prints the pinned provider version; `infra --pulumi-yaml-config`
//! prints the `config:` block of `Pulumi.yaml`, `infra --readme-config-table` the README's table
//! of keys.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--pulumi-aws-version") => {
            println!("{}", infra::model::PULUMI_AWS_VERSION);
            return ExitCode::SUCCESS;
        }
        Some("--pulumi-yaml-config") => {
            print!("{}", infra::config::pulumi_yaml_config_block());
            return ExitCode::SUCCESS;
        }
        Some("--readme-config-table") => {
            print!("{}", infra::config::readme_config_table());
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h") => {
            println!("infra: the Pulumi program of cross-account-relay (run by `pulumi` as the YAML runtime's compiler).\nReads PULUMI_STACK, PULUMI_PROJECT, PULUMI_CONFIG; prints the stack's template as JSON.\n  --pulumi-aws-version   print the pinned pulumi-aws version\n  --pulumi-yaml-config   print the `config:` block of Pulumi.yaml (generated from the program's keys)\n  --readme-config-table  print the README's table of configuration keys");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("infra: unknown argument {other:?} (try --help)");
            return ExitCode::from(2);
        }
        None => {}
    }
    // The whole template is rendered before anything is written, so an error never leaves
    // half a template on stdout.
    let rendered = infra::compile(&infra::CompilerEnv::from_process())
        .map(|t| serde_json::to_string_pretty(&t).expect("a template always serialises"));
    match rendered {
        Ok(json) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{json}").and_then(|_| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("infra: {e}");
            ExitCode::FAILURE
        }
    }
}
