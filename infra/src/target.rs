//! The target stack: the function in the target account and the role the relay assumes to
//! invoke it.
//!
//! ```text
//! relay role (source account) --sts:AssumeRole + ExternalId--> crossAccountRole
//! crossAccountRole --lambda:InvokeFunction--> targetFunction (logs to targetLogGroup)
//! ```

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::TargetConfig;
use crate::function::{self, add_function, FunctionSpec};
use crate::iam::{self, PolicyDocument, Principal, Statement};
use crate::model::{output_of, secret, to_json, Resource, Template};
use shared::config as env;

pub const PROVIDER: &str = "targetProvider";

/// The trust policy of the cross-account role. The principal is the source *account*, so the
/// policy is valid before the relay role exists (IAM rejects a trust policy naming a role ARN
/// that does not exist yet); `aws:PrincipalArn` then narrows it to the relay role alone, and
/// `sts:ExternalId` must match the shared secret.
pub fn cross_account_trust(config: &TargetConfig) -> PolicyDocument {
    let common = &config.common;
    let relay_role = iam::role_arn(&common.source_account_id, &function::role_name("relay"));
    PolicyDocument::new(vec![Statement::trust(
        "RelayRoleOfSourceAccount",
        Principal::Aws(iam::account_root(&common.source_account_id)),
    )
    .when("ArnEquals", "aws:PrincipalArn", relay_role)
    .when("StringEquals", "sts:ExternalId", common.external_id.clone())])
}

pub fn template(config: &TargetConfig) -> Template {
    let common = &config.common;
    let mut t = Template::new(
        "Target account: the target function and the role the source's relay assumes to invoke it.",
    );

    t.add(
        PROVIDER,
        Resource::aws_provider()
            .prop("region", common.region.clone())
            // The provider refuses to touch any other account: a stack with the target role
            // can never be deployed with the source account's credentials.
            .prop("allowedAccountIds", json!([common.target_account_id]))
            .prop(
                "defaultTags",
                json!({ "tags": { "project": "cross-account-relay", "stack": common.stack, "side": "target" } }),
            ),
    );

    let environment: BTreeMap<&'static str, Value> = BTreeMap::from([
        (
            env::TARGET_DEDUP_CAPACITY,
            json!(config.dedup_capacity.to_string()),
        ),
        (
            env::TARGET_FAULT_INJECTION,
            json!(config.fault_injection.to_string()),
        ),
        (env::LOG_LEVEL, json!(common.log_level)),
    ]);
    add_function(
        &mut t,
        common,
        FunctionSpec {
            function: "target",
            logical: "targetFunction",
            role_logical: "targetRole",
            policy_logical: "targetRolePolicy",
            log_group_logical: "targetLogGroup",
            provider: PROVIDER,
            description: "Validates relayed envelopes and answers per record",
            memory_mb: config.memory_mb,
            timeout_seconds: config.timeout_seconds,
            environment,
            statements: Vec::new(),
        },
    );

    // The trust policy carries the external id, so the whole document is a secret in state.
    let trust = cross_account_trust(config).to_value();
    let trust = trust_with_secret_external_id(trust, &common.external_id);
    t.add(
        "crossAccountRole",
        Resource::aws("aws:iam:Role", PROVIDER)
            .prop("name", common.cross_account_role_name.clone())
            .prop(
                "description",
                "Assumed by the source account's relay to invoke the target function",
            )
            .prop("maxSessionDuration", config.max_session_seconds)
            .prop("assumeRolePolicy", to_json(trust)),
    );
    t.add(
        "crossAccountRolePolicy",
        Resource::aws("aws:iam:RolePolicy", PROVIDER)
            .prop("role", output_of("crossAccountRole", "id"))
            .prop(
                "policy",
                to_json(
                    PolicyDocument::new(vec![Statement::allow(
                        "InvokeTargetFunctionOnly",
                        &["lambda:InvokeFunction"],
                        &[&output_of("targetFunction", "arn")],
                    )])
                    .to_value(),
                ),
            ),
    );

    t.output("crossAccountRoleArn", output_of("crossAccountRole", "arn"));
    t.output(
        "crossAccountRoleMaxSessionSeconds",
        config.max_session_seconds,
    );
    t.output("targetFunctionName", output_of("targetFunction", "name"));
    t.output("targetFunctionArn", output_of("targetFunction", "arn"));
    t.output("targetRegion", common.region.clone());
    t.output("targetLogGroupName", output_of("targetLogGroup", "name"));
    t.output(
        "trustedRelayRoleArn",
        iam::role_arn(&common.source_account_id, &function::role_name("relay")),
    );
    t
}

/// Replaces the literal external id inside the trust document by `fn::secret` of it.
fn trust_with_secret_external_id(mut trust: Value, external_id: &str) -> Value {
    if let Some(statements) = trust["Statement"].as_array_mut() {
        for s in statements {
            if let Some(v) = s.pointer_mut("/Condition/StringEquals/sts:ExternalId") {
                if v == external_id {
                    *v = secret(external_id);
                }
            }
        }
    }
    trust
}
