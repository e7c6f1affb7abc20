//! The target stack's outputs that the source stack reads: through its StackReference
//! (`targetStack`, both stacks in one backend), or copied into its config keys when the two
//! stacks do not share a backend. `relayctl pair up` does one or the other from this table.

use crate::config::Key;

/// ARN of the cross-account role the relay assumes.
pub const CROSS_ACCOUNT_ROLE_ARN: &str = "crossAccountRoleArn";
/// Unqualified ARN of the target function.
pub const TARGET_FUNCTION_ARN: &str = "targetFunctionArn";
/// Region of the target function.
pub const TARGET_REGION: &str = "targetRegion";
/// Name of the target's idempotency table (only with `idempotencyStore`; the source does not
/// read it).
pub const IDEMPOTENCY_TABLE_NAME: &str = "idempotencyTableName";

/// Each target output the source needs, and the source key that holds it without a
/// StackReference. `targetRegion` defaults to the source's own `aws:region`, so it needs
/// setting only when the two differ.
pub const SOURCE_KEYS: [(&str, Key); 3] = [
    (CROSS_ACCOUNT_ROLE_ARN, Key::TargetRoleArn),
    (TARGET_FUNCTION_ARN, Key::TargetFunctionName),
    (TARGET_REGION, Key::TargetRegion),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use crate::names;
    use serde_json::Value;

    const SOURCE: [(&str, &str); 5] = [
        ("aws:region", "eu-west-1"),
        ("side", "source"),
        ("sourceAccountId", "111111111111"),
        ("targetAccountId", "222222222222"),
        ("externalId", "example-external-id"),
    ];

    /// The relay's environment, as the template sets it.
    fn relay_environment(extra: &[(&str, &str)]) -> String {
        let raw = RawConfig::from_pairs("s", &[SOURCE.as_slice(), extra].concat());
        let template = crate::render(&raw.stack_config().unwrap());
        let relay = &template.resources[names::RELAY.function];
        serde_json::to_string(&relay.properties["environment"]).unwrap()
    }

    /// A value per output, as a target stack in eu-west-2 would export it.
    fn value(output: &str) -> &'static str {
        match output {
            CROSS_ACCOUNT_ROLE_ARN => "arn:aws:iam::222222222222:role/r",
            TARGET_FUNCTION_ARN => "arn:aws:lambda:eu-west-2:222222222222:function:f",
            _ => "eu-west-2",
        }
    }

    #[test]
    fn each_source_key_stands_for_its_output() {
        // By reference: the relay's environment names each output of the target stack.
        let by_reference = relay_environment(&[("targetStack", "o/p/target")]);
        // By config: each key set to its output's value gives the same environment.
        let keys: Vec<(&str, &str)> = SOURCE_KEYS
            .iter()
            .map(|(output, key)| (key.name(), value(output)))
            .collect();
        let by_config = relay_environment(&keys);
        let mut expected = by_reference.clone();
        for (output, _) in SOURCE_KEYS {
            let reference = format!(
                "${{{}.outputs[\\\"{output}\\\"]}}",
                names::TARGET_STACK_REFERENCE
            );
            assert!(expected.contains(&reference), "{reference} in {expected}");
            expected = expected.replace(&reference, value(output));
        }
        assert_eq!(by_config, expected);
        let target = RawConfig::from_pairs(
            "t",
            &[&SOURCE[..1], &[("side", "target")], &SOURCE[2..]].concat(),
        );
        let outputs = crate::render(&target.stack_config().unwrap()).outputs;
        for (output, _) in SOURCE_KEYS {
            assert!(
                matches!(outputs.get(output), Some(Value::String(_))),
                "{output}"
            );
        }
    }
}
