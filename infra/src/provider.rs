//! The explicit `aws` provider of a stack, pinned to the stack's one account.

use serde_json::json;

use crate::config::{CommonConfig, StackSide};
use crate::template::{Resource, PROJECT};

/// The provider every resource of a stack goes through. `allowedAccountIds` makes the provider
/// refuse credentials of any other account, so a stack can never be deployed into the wrong
/// account; the default tags name the project, the stack and its side (`source`/`target`).
pub fn provider(common: &CommonConfig, side: StackSide) -> Resource {
    Resource::aws_provider()
        .prop("region", common.region.clone())
        .prop("allowedAccountIds", json!([common.pinned_account(side)]))
        .prop(
            "defaultTags",
            json!({ "tags": { "project": PROJECT, "stack": common.stack, "side": side.name() } }),
        )
}
