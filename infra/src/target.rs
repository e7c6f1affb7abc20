//! The target stack: the function in the target account, the role the relay assumes to
//! invoke it, and the alarms on the function ([`alarms`], built with [`crate::alarms`]).
//!
//! ```text
//! relay role (source account) --sts:AssumeRole + ExternalId--> crossAccountRole
//! crossAccountRole --lambda:InvokeFunction--> targetFunction (logs to targetLogGroup)
//! targetFunction --put/update/delete/batch-get--> idempotencyTable (idempotencyStore only)
//! targetFunction --update--> effectsTable (sampleEffectsTable only: a test device)
//! targetFunction errors, throttles --alarms--> alarmTopic
//! ```

pub mod alarms;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::{IdempotencyTable, StackSide, TargetConfig};
use crate::function::{add_function, FunctionSpec};
use crate::iam::{self, PolicyDocument, Principal, Statement};
use crate::names;
use crate::outputs;
use crate::provider::provider;
use crate::template::{output_of, secret, to_json, Resource, Template};
use shared::config as env;

pub const PROVIDER: &str = names::TARGET_PROVIDER;

/// The variables the target function gets besides [`env::TARGET_VARIABLES`] when the stack
/// creates the sample's effects table (`sampleEffectsTable`; unset otherwise).
pub const SAMPLE_EFFECTS_VARIABLES: [&str; 1] = [env::SAMPLE_EFFECTS_TABLE];

/// What the target role may do on the sample's effects table: the sample counts an effect with
/// one UpdateItem (`ADD`), and nothing else.
pub const SAMPLE_EFFECTS_TABLE_ACTIONS: [&str; 1] = ["dynamodb:UpdateItem"];

/// The trust policy of the cross-account role. The principal is the source *account*, so the
/// policy is valid before the relay role exists (IAM rejects a trust policy naming a role ARN
/// that does not exist yet); `aws:PrincipalArn` then narrows it to the relay role alone, and
/// `sts:ExternalId` must match the shared secret.
pub fn cross_account_trust(config: &TargetConfig) -> PolicyDocument {
    let common = &config.common;
    PolicyDocument::new(vec![Statement::trust(
        "RelayRoleOfSourceAccount",
        Principal::Aws(iam::account_root(&common.source_account_id)),
    )
    .when("ArnEquals", "aws:PrincipalArn", trusted_relay_role(config))
    // In state the whole trust document is a secret because of this value.
    .when(
        "StringEquals",
        "sts:ExternalId",
        secret(&common.external_id),
    )])
}

/// The source's relay role, named by the shared name prefix (it may not exist yet).
pub fn trusted_relay_role(config: &TargetConfig) -> String {
    let common = &config.common;
    iam::role_arn(
        &common.source_account_id,
        &names::role_name(&common.name_prefix, names::RELAY.binary),
    )
}

pub fn template(config: &TargetConfig) -> Template {
    let common = &config.common;
    let mut t = Template::new(
        "Target account: the target function, the role the source's relay assumes to invoke it, and the alarms with their topic.",
    );

    t.add(PROVIDER, provider(common, StackSide::Target));
    if let Some(table) = &config.idempotency {
        add_idempotency_table(&mut t, config, table);
    }
    if config.sample_effects_table {
        add_sample_effects_table(&mut t, config);
    }
    add_target_function(&mut t, config);
    add_cross_account_role(&mut t, config);
    crate::alarms::add(
        &mut t,
        common,
        PROVIDER,
        &common.target_account_id,
        &alarms::alarms(config),
    );
    add_outputs(&mut t, config);
    t
}

/// The idempotency table: one item per record key (`shared::config::IDEMPOTENCY_KEY_ATTRIBUTE`,
/// a string), on-demand, items deleted by DynamoDB some time after their
/// `shared::config::IDEMPOTENCY_TTL_ATTRIBUTE` passes, encrypted at rest with the AWS managed key
/// `aws/dynamodb` (`enabled` without a `kmsKeyArn`: no key of this stack to manage or pay for).
fn add_idempotency_table(t: &mut Template, config: &TargetConfig, table: &IdempotencyTable) {
    t.add(
        names::IDEMPOTENCY_TABLE,
        Resource::aws("aws:dynamodb:Table", PROVIDER)
            .prop(
                "name",
                names::idempotency_table_name(&config.common.name_prefix),
            )
            .prop("billingMode", "PAY_PER_REQUEST")
            .prop("hashKey", env::IDEMPOTENCY_KEY_ATTRIBUTE)
            .prop(
                "attributes",
                json!([{ "name": env::IDEMPOTENCY_KEY_ATTRIBUTE, "type": "S" }]),
            )
            .prop(
                "ttl",
                json!({ "attributeName": env::IDEMPOTENCY_TTL_ATTRIBUTE, "enabled": true }),
            )
            .prop("serverSideEncryption", json!({ "enabled": true }))
            .prop("deletionProtectionEnabled", table.deletion_protection),
    );
}

/// The sample's effects table: one item per produced record id
/// (`shared::config::SAMPLE_EFFECTS_KEY_ATTRIBUTE`, a string), on-demand, encrypted at rest with
/// the AWS managed key like the idempotency table; no deletion protection and no TTL: it is a
/// test device holding only the sample's counts.
fn add_sample_effects_table(t: &mut Template, config: &TargetConfig) {
    t.add(
        names::SAMPLE_EFFECTS_TABLE,
        Resource::aws("aws:dynamodb:Table", PROVIDER)
            .prop(
                "name",
                names::sample_effects_table_name(&config.common.name_prefix),
            )
            .prop("billingMode", "PAY_PER_REQUEST")
            .prop("hashKey", env::SAMPLE_EFFECTS_KEY_ATTRIBUTE)
            .prop(
                "attributes",
                json!([{ "name": env::SAMPLE_EFFECTS_KEY_ATTRIBUTE, "type": "S" }]),
            )
            .prop("serverSideEncryption", json!({ "enabled": true }))
            .prop("deletionProtectionEnabled", false),
    );
}

fn add_target_function(t: &mut Template, config: &TargetConfig) {
    let common = &config.common;
    let mut environment: BTreeMap<&'static str, Value> = BTreeMap::from([
        (
            env::TARGET_DEDUP_CAPACITY,
            json!(config.dedup_capacity.to_string()),
        ),
        (
            env::TARGET_FAULT_INJECTION,
            json!(config.fault_injection.to_string()),
        ),
    ]);
    let mut statements = Vec::new();
    if let Some(table) = &config.idempotency {
        let [name, ttl] = env::IDEMPOTENCY_VARIABLES;
        environment.insert(name, json!(output_of(names::IDEMPOTENCY_TABLE, "name")));
        environment.insert(ttl, json!(table.ttl_hours.to_string()));
        statements.push(Statement::allow(
            "UseOwnIdempotencyTable",
            &env::IDEMPOTENCY_TABLE_ACTIONS,
            &[&output_of(names::IDEMPOTENCY_TABLE, "arn")],
        ));
    }
    if config.sample_effects_table {
        let [name] = SAMPLE_EFFECTS_VARIABLES;
        environment.insert(name, json!(output_of(names::SAMPLE_EFFECTS_TABLE, "name")));
        statements.push(Statement::allow(
            "CountSampleEffects",
            &SAMPLE_EFFECTS_TABLE_ACTIONS,
            &[&output_of(names::SAMPLE_EFFECTS_TABLE, "arn")],
        ));
    }
    add_function(
        t,
        common,
        FunctionSpec {
            resources: names::TARGET,
            provider: PROVIDER,
            description: "Validates relayed envelopes and answers per record",
            memory_mb: config.memory_mb,
            timeout_seconds: config.timeout_seconds,
            reserved_concurrency: config.reserved_concurrency,
            environment,
            statements,
            artifact: config.artifact.clone(),
        },
    );
}

fn add_cross_account_role(t: &mut Template, config: &TargetConfig) {
    let common = &config.common;
    t.add(
        names::CROSS_ACCOUNT_ROLE,
        Resource::aws("aws:iam:Role", PROVIDER)
            .prop("name", common.cross_account_role_name.clone())
            .prop(
                "description",
                "Assumed by the source account's relay to invoke the target function",
            )
            .prop("maxSessionDuration", config.max_session_seconds)
            .prop(
                "assumeRolePolicy",
                to_json(cross_account_trust(config).to_value()),
            ),
    );
    t.add(
        names::CROSS_ACCOUNT_ROLE_POLICY,
        Resource::aws("aws:iam:RolePolicy", PROVIDER)
            .prop("role", output_of(names::CROSS_ACCOUNT_ROLE, "id"))
            .prop(
                "policy",
                to_json(
                    PolicyDocument::new(vec![Statement::allow(
                        "InvokeTargetFunctionOnly",
                        &["lambda:InvokeFunction"],
                        &[&output_of(names::TARGET.function, "arn")],
                    )])
                    .to_value(),
                ),
            ),
    );
}

/// What the source stack needs (read by its config or its StackReference), and names for
/// an operator.
fn add_outputs(t: &mut Template, config: &TargetConfig) {
    let common = &config.common;
    t.output(
        outputs::CROSS_ACCOUNT_ROLE_ARN,
        output_of(names::CROSS_ACCOUNT_ROLE, "arn"),
    );
    t.output(
        "crossAccountRoleMaxSessionSeconds",
        config.max_session_seconds,
    );
    t.output(
        "targetFunctionName",
        output_of(names::TARGET.function, "name"),
    );
    t.output(
        outputs::TARGET_FUNCTION_ARN,
        output_of(names::TARGET.function, "arn"),
    );
    t.output(outputs::TARGET_REGION, common.region.clone());
    t.output(
        "targetLogGroupName",
        output_of(names::TARGET.log_group, "name"),
    );
    t.output("trustedRelayRoleArn", trusted_relay_role(config));
    t.output("namePrefix", common.name_prefix.as_str());
    t.output("alarmTopicArn", output_of(names::ALARM_TOPIC, "arn"));
    if config.idempotency.is_some() {
        t.output(
            outputs::IDEMPOTENCY_TABLE_NAME,
            output_of(names::IDEMPOTENCY_TABLE, "name"),
        );
    }
}
