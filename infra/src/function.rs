//! What every function of this project gets: a log group with retention, an execution role
//! that Lambda may assume, an inline policy, and the function itself running cargo-lambda's
//! artifact on `provided.al2023`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::CommonConfig;
use crate::iam::{self, PolicyDocument, Statement};
use crate::names::{function_name, log_group_name, role_name, FunctionResources};
use crate::template::{file_archive, output_of, to_json, Resource, Template};

/// The detail of Lambda's own (platform) log lines for every function. INFO keeps each
/// invocation's start and report lines (duration, billed duration, memory used, init duration on
/// a cold start), the one record of those per invocation; DEBUG adds only events of extensions,
/// which these functions have none of; WARN would drop the report lines. Fixed rather than a
/// stack key: there is no trade-off left to make per stack.
pub const SYSTEM_LOG_LEVEL: &str = "INFO";

/// One function and what it needs.
pub struct FunctionSpec<'a> {
    /// Its logical names, and the binary (the artifact folder and the physical names).
    pub resources: FunctionResources,
    pub provider: &'a str,
    pub description: &'a str,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    /// Concurrent executions reserved for the function (`None`: none reserved).
    pub reserved_concurrency: Option<u32>,
    /// Exactly the variables the function reads (checked against `shared::config`).
    pub environment: BTreeMap<&'static str, Value>,
    /// Permissions besides writing its own logs.
    pub statements: Vec<Statement>,
    /// The zip Lambda runs; `None`: cargo-lambda's output for the binary and the stack's
    /// architecture ([`crate::config::Architecture::artifact`]).
    pub artifact: Option<String>,
}

/// Adds the log group, role, inline policy and function to `template`.
pub fn add_function(template: &mut Template, common: &CommonConfig, spec: FunctionSpec<'_>) {
    let (prefix, binary) = (&common.name_prefix, spec.resources.binary);
    template.add(
        spec.resources.log_group,
        Resource::aws("aws:cloudwatch:LogGroup", spec.provider)
            .prop("name", log_group_name(prefix, binary))
            .prop("retentionInDays", common.log_retention_days),
    );
    add_role(template, common, &spec);
    let variables: serde_json::Map<String, Value> = (spec.environment.iter())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let artifact = (spec.artifact.clone()).unwrap_or_else(|| common.architecture.artifact(binary));
    let mut function = Resource::aws("aws:lambda:Function", spec.provider)
        .prop("name", function_name(prefix, binary));
    if let Some(reserved) = spec.reserved_concurrency {
        function = function.prop("reservedConcurrentExecutions", reserved);
    }
    template.add(
        spec.resources.function,
        function
            .prop("description", spec.description)
            .prop("runtime", "provided.al2023")
            .prop("handler", "bootstrap")
            .prop("architectures", json!([common.architecture.lambda_name()]))
            .prop("code", file_archive(&artifact))
            .prop("memorySize", spec.memory_mb)
            .prop("timeout", spec.timeout_seconds)
            .prop("role", output_of(spec.resources.role, "arn"))
            .prop("environment", json!({ "variables": variables }))
            .prop("loggingConfig", logging_config(common, &spec))
            // The policy must exist before the function runs (and, for the relay, before the
            // event source mapping checks the role's Kinesis permissions).
            .depends_on(&[spec.resources.policy, spec.resources.log_group]),
    );
}

/// JSON logs, which the functions print and Lambda's level filtering needs; the application
/// level from the stack (Lambda passes it to the function as `AWS_LAMBDA_LOG_LEVEL`); the
/// function's own log group.
fn logging_config(common: &CommonConfig, spec: &FunctionSpec<'_>) -> Value {
    json!({
        "logFormat": "JSON",
        "applicationLogLevel": common.log_level,
        "systemLogLevel": SYSTEM_LOG_LEVEL,
        "logGroup": output_of(spec.resources.log_group, "name"),
    })
}

/// The function's execution role, which Lambda may assume in the function's own account, and
/// its inline policy: writing its own logs, and the spec's statements.
fn add_role(template: &mut Template, common: &CommonConfig, spec: &FunctionSpec<'_>) {
    let (prefix, binary) = (&common.name_prefix, spec.resources.binary);
    let account = match binary {
        "target" => &common.target_account_id,
        _ => &common.source_account_id,
    };
    template.add(
        spec.resources.role,
        Resource::aws("aws:iam:Role", spec.provider)
            .prop("name", role_name(prefix, binary))
            .prop(
                "description",
                format!("Execution role of {}", function_name(prefix, binary)),
            )
            .prop(
                "assumeRolePolicy",
                to_json(iam::service_trust("lambda.amazonaws.com", account, None).to_value()),
            ),
    );
    let mut statements = vec![iam::own_logs(&output_of(spec.resources.log_group, "arn"))];
    statements.extend(spec.statements.iter().cloned());
    template.add(
        spec.resources.policy,
        Resource::aws("aws:iam:RolePolicy", spec.provider)
            .prop("role", output_of(spec.resources.role, "id"))
            .prop(
                "policy",
                to_json(PolicyDocument::new(statements).to_value()),
            ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::NamePrefix;

    #[test]
    fn names_follow_the_documented_convention() {
        let prefix = NamePrefix::parse("cross-account-relay").unwrap();
        assert_eq!(function_name(&prefix, "relay"), "cross-account-relay-relay");
        assert_eq!(
            role_name(&prefix, "relay"),
            "cross-account-relay-relay-role"
        );
        assert_eq!(
            log_group_name(&prefix, "target"),
            "/aws/lambda/cross-account-relay-target"
        );
        // The longest prefix still gives IAM role names within IAM's 64 characters.
        let longest = NamePrefix::parse(&"p".repeat(NamePrefix::MAX_LEN)).unwrap();
        assert!(role_name(&longest, "scheduler").len() <= 64);
    }
}
