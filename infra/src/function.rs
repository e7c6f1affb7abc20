//! What every function of this project gets: a log group with retention, an execution role
//! that Lambda may assume, an inline policy, and the function itself running cargo-lambda's
//! artifact on `provided.al2023`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::CommonConfig;
use crate::iam::{self, PolicyDocument, Statement};
use crate::model::{file_archive, output_of, to_json, Resource, Template};

/// Physical names are fixed (not auto-named) because the other account refers to them before
/// they exist: the cross-account role trusts `arn:aws:iam::<source>:role/cross-account-relay-relay-role`.
pub const NAME_PREFIX: &str = "cross-account-relay";

/// `cross-account-relay-<function>`: the Lambda function's name.
pub fn function_name(function: &str) -> String {
    format!("{NAME_PREFIX}-{function}")
}

/// `cross-account-relay-<function>-role`: the execution role's name.
pub fn role_name(function: &str) -> String {
    format!("{NAME_PREFIX}-{function}-role")
}

/// `/aws/lambda/<function name>`: the group Lambda writes to by default.
pub fn log_group_name(function: &str) -> String {
    format!("/aws/lambda/{}", function_name(function))
}

/// One function and what it needs.
pub struct FunctionSpec<'a> {
    /// `producer`, `relay` or `target`: the binary and the artifact folder.
    pub function: &'a str,
    /// Logical names in the template.
    pub logical: &'a str,
    pub role_logical: &'a str,
    pub policy_logical: &'a str,
    pub log_group_logical: &'a str,
    pub provider: &'a str,
    pub description: &'a str,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    /// Exactly the variables the function reads (checked against `shared::config`).
    pub environment: BTreeMap<&'static str, Value>,
    /// Permissions besides writing its own logs.
    pub statements: Vec<Statement>,
}

/// Adds the log group, role, inline policy and function to `template`.
pub fn add_function(template: &mut Template, common: &CommonConfig, spec: FunctionSpec<'_>) {
    template.add(
        spec.log_group_logical,
        Resource::aws("aws:cloudwatch:LogGroup", spec.provider)
            .prop("name", log_group_name(spec.function))
            .prop("retentionInDays", common.log_retention_days),
    );

    let account = match spec.function {
        "target" => &common.target_account_id,
        _ => &common.source_account_id,
    };
    template.add(
        spec.role_logical,
        Resource::aws("aws:iam:Role", spec.provider)
            .prop("name", role_name(spec.function))
            .prop(
                "description",
                format!("Execution role of {}", function_name(spec.function)),
            )
            .prop(
                "assumeRolePolicy",
                to_json(iam::service_trust("lambda.amazonaws.com", account).to_value()),
            ),
    );

    let mut statements = vec![iam::own_logs(&output_of(spec.log_group_logical, "arn"))];
    statements.extend(spec.statements);
    template.add(
        spec.policy_logical,
        Resource::aws("aws:iam:RolePolicy", spec.provider)
            .prop("role", output_of(spec.role_logical, "id"))
            .prop(
                "policy",
                to_json(PolicyDocument::new(statements).to_value()),
            ),
    );

    let variables: serde_json::Map<String, Value> = spec
        .environment
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    template.add(
        spec.logical,
        Resource::aws("aws:lambda:Function", spec.provider)
            .prop("name", function_name(spec.function))
            .prop("description", spec.description)
            .prop("runtime", "provided.al2023")
            .prop("handler", "bootstrap")
            .prop("architectures", json!([common.architecture.lambda_name()]))
            .prop("code", file_archive(&common.architecture.artifact(spec.function)))
            .prop("memorySize", spec.memory_mb)
            .prop("timeout", spec.timeout_seconds)
            .prop("role", output_of(spec.role_logical, "arn"))
            .prop("environment", json!({ "variables": variables }))
            .prop(
                "loggingConfig",
                json!({ "logFormat": "Text", "logGroup": output_of(spec.log_group_logical, "name") }),
            )
            // The policy must exist before the function runs (and, for the relay, before the
            // event source mapping checks the role's Kinesis permissions).
            .depends_on(&[spec.policy_logical, spec.log_group_logical]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_convention() {
        assert_eq!(function_name("relay"), "cross-account-relay-relay");
        assert_eq!(role_name("relay"), "cross-account-relay-relay-role");
        assert_eq!(
            log_group_name("target"),
            "/aws/lambda/cross-account-relay-target"
        );
    }
}
