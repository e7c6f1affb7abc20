//! The Pulumi program of cross-account-relay, in Rust.
//!
//! Pulumi has no Rust SDK; its YAML runtime runs this binary as the project's `compiler` and
//! reads a template from its standard output. The program turns the stack's typed
//! configuration ([`config`]) into the resources of one of two stacks — [`source`] (schedule,
//! producer, stream, relay) or [`target`] (target function, cross-account role) — built from
//! the typed [`template`], every name from [`names`], with every IAM document in [`iam`].

pub mod alarms;
pub mod config;
pub mod dead_letters;
pub mod function;
pub mod iam;
pub mod names;
pub mod outputs;
pub mod provider;
pub mod reference;
pub mod render;
pub mod source;
pub mod stack_file;
pub mod target;
pub mod template;

pub use render::render;

use config::RawConfig;
use template::{Resource, Template};

/// What the YAML language host passes to the compiler.
#[derive(Debug, Default, Clone)]
pub struct CompilerEnv {
    pub stack: Option<String>,
    pub project: Option<String>,
    pub config: Option<String>,
}

impl CompilerEnv {
    pub fn from_process() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self {
            stack: var("PULUMI_STACK"),
            project: var("PULUMI_PROJECT"),
            config: var("PULUMI_CONFIG"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("PULUMI_STACK is set but PULUMI_CONFIG is not; run this program through `pulumi preview/up --stack <stack>`")]
    NoConfig,
    #[error("PULUMI_CONFIG is set but PULUMI_STACK is not; set PULUMI_STACK to the stack's name")]
    NoStack,
}

/// The template for this invocation.
///
/// Without `PULUMI_STACK` and `PULUMI_CONFIG` the host is only asking which packages the
/// program needs: the answer is the `aws` provider at the pinned version.
pub fn compile(env: &CompilerEnv) -> Result<Template, CompileError> {
    let (stack, json) = match (&env.stack, &env.config) {
        (None, None) => return Ok(package_discovery()),
        (Some(_), None) => return Err(CompileError::NoConfig),
        (None, Some(_)) => return Err(CompileError::NoStack),
        (Some(stack), Some(json)) => (stack, json),
    };
    if let Some(project) = &env.project {
        config::check_project(project)?;
    }
    let raw = RawConfig::parse(stack, json)?;
    Ok(render(&raw.stack_config()?))
}

/// The package-discovery template: one provider resource that names the pinned `aws` package.
pub fn package_discovery() -> Template {
    let mut t = Template::new("Package discovery: the aws provider at the pinned version.");
    t.add("aws", Resource::aws_provider());
    t
}
