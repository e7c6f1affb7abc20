//! IAM policy documents: trust policies, the roles' permissions and the stream key's policy.
//!
//! Every document is a typed [`PolicyDocument`]; ARNs of resources created in the same stack
//! are Pulumi interpolations (`${stream.arn}`) that the runtime fills in. No statement has a
//! wildcard action, and `Resource: "*"` appears only in the key policy, where `*` means
//! "this key" (a key policy cannot name anything else).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::template::{to_json, Resource};

/// Kinesis actions a Lambda event source mapping needs on the stream (Lambda developer guide,
/// "Process Amazon Kinesis Data Streams records with Lambda"). `kinesis:SubscribeToShard` is
/// needed only for an enhanced fan-out consumer, which this program does not create.
pub const KINESIS_READ_ACTIONS: &[&str] = &[
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
];

/// Kinesis write actions the producer uses (it calls PutRecords; PutRecord is allowed so a
/// single-record writer works with the same role).
pub const KINESIS_WRITE_ACTIONS: &[&str] = &["kinesis:PutRecord", "kinesis:PutRecords"];

/// Writing a function's logs into its own, pre-created log group. No `logs:CreateLogGroup`:
/// the program creates the group, with a retention.
pub const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];

/// Key administration actions the account keeps on the stream key (through IAM policies), so
/// the deployer can manage and delete the key without any `kms:*`.
pub const KEY_ADMIN_ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
];

/// Key use that Kinesis server-side encryption needs: producers generate data keys, readers
/// decrypt them.
pub const KEY_USE_ACTIONS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    pub fn new(statements: Vec<Statement>) -> Self {
        Self {
            version: "2012-10-17",
            statements,
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a policy document always serialises")
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Principal", skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    #[serde(rename = "Resource", skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
    /// Every resource but these (a statement has `Resource` or `NotResource`, never both).
    #[serde(rename = "NotResource", skip_serializing_if = "Option::is_none")]
    pub not_resources: Option<Vec<String>>,
    /// operator → key → value(s)
    #[serde(rename = "Condition", skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: BTreeMap<String, BTreeMap<String, Value>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub enum Principal {
    #[serde(rename = "AWS")]
    Aws(String),
    #[serde(rename = "Service")]
    Service(String),
}

impl Statement {
    /// An identity-policy statement: these actions on these resources.
    pub fn allow(sid: &str, actions: &[&str], resources: &[&str]) -> Self {
        Self {
            sid: sid.to_string(),
            effect: "Allow",
            principal: None,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            not_resources: None,
            condition: BTreeMap::new(),
        }
    }

    /// An identity-policy statement that refuses these actions on these resources, whatever
    /// another statement allows.
    pub fn deny(sid: &str, actions: &[&str], resources: &[&str]) -> Self {
        Self {
            effect: "Deny",
            ..Self::allow(sid, actions, resources)
        }
    }

    /// A statement that refuses these actions on every resource except `resources`
    /// (`NotResource`): what keeps a principal inside its own part of a bucket.
    pub fn deny_except(sid: &str, actions: &[&str], resources: &[&str]) -> Self {
        let statement = Self::deny(sid, actions, resources);
        Self {
            not_resources: statement.resources.clone(),
            resources: None,
            ..statement
        }
    }

    /// A trust-policy statement: `principal` may assume the role.
    pub fn trust(sid: &str, principal: Principal) -> Self {
        Self {
            sid: sid.to_string(),
            effect: "Allow",
            principal: Some(principal),
            actions: vec!["sts:AssumeRole".to_string()],
            resources: None,
            not_resources: None,
            condition: BTreeMap::new(),
        }
    }

    pub fn principal(mut self, principal: Principal) -> Self {
        self.principal = Some(principal);
        self
    }

    pub fn when(mut self, operator: &str, key: &str, value: impl Into<Value>) -> Self {
        self.condition
            .entry(operator.to_string())
            .or_default()
            .insert(key.to_string(), value.into());
        self
    }
}

/// The ARN of an account's root principal ("any principal of that account that its own IAM
/// policies allow").
pub fn account_root(account_id: &str) -> String {
    format!("arn:aws:iam::{account_id}:root")
}

/// The key-policy statement that leaves a customer managed key's administration to its
/// account (through the account's IAM policies): the listed actions, no `kms:*`.
/// `Resource: "*"` is the only value a key policy accepts: it means this key.
pub fn account_administers_key(account_id: &str) -> Statement {
    Statement::allow("AccountAdministersKey", KEY_ADMIN_ACTIONS, &["*"])
        .principal(Principal::Aws(account_root(account_id)))
}

/// A customer managed key with this policy: rotated yearly, and deleted 7 days (KMS's
/// shortest window) after the stack stops declaring it, so a mistaken destroy can be undone.
pub fn customer_managed_key(
    provider: &str,
    description: &str,
    policy: &PolicyDocument,
) -> Resource {
    Resource::aws("aws:kms:Key", provider)
        .prop("description", description)
        .prop("enableKeyRotation", true)
        .prop("deletionWindowInDays", 7)
        .prop("policy", to_json(policy.to_value()))
}

/// The ARN of a CloudWatch alarm by name: what CloudWatch passes as `aws:SourceArn` when the
/// alarm publishes to a topic.
pub fn alarm_arn(region: &str, account_id: &str, alarm_name: &str) -> String {
    format!("arn:aws:cloudwatch:{region}:{account_id}:alarm:{alarm_name}")
}

/// The ARN of a role by name (no path: this program creates its roles at `/`).
pub fn role_arn(account_id: &str, role_name: &str) -> String {
    format!("arn:aws:iam::{account_id}:role/{role_name}")
}

/// Trust policy that lets one AWS service assume an execution role, limited to this account
/// so the service cannot be steered into it from another account (confused deputy); with
/// `source_arn`, also to the one resource acting for the service (`aws:SourceArn`).
pub fn service_trust(service: &str, account_id: &str, source_arn: Option<&str>) -> PolicyDocument {
    let mut statement = Statement::trust(
        "ServiceAssumesRole",
        Principal::Service(service.to_string()),
    )
    .when("StringEquals", "aws:SourceAccount", account_id);
    if let Some(arn) = source_arn {
        statement = statement.when("ArnEquals", "aws:SourceArn", arn);
    }
    PolicyDocument::new(vec![statement])
}

/// The ARN of an EventBridge Scheduler schedule group: what Scheduler passes as
/// `aws:SourceArn` when it assumes a schedule's role.
pub fn schedule_group_arn(region: &str, account_id: &str, group: &str) -> String {
    format!("arn:aws:scheduler:{region}:{account_id}:schedule-group/{group}")
}

/// The ARN of a Kinesis stream by name: what Kinesis passes to KMS as the
/// `aws:kinesis:arn` encryption context. Built from the fixed name, because the key policy
/// cannot refer to the stream that the key encrypts (the stream depends on the key).
pub fn stream_arn(region: &str, account_id: &str, stream_name: &str) -> String {
    format!("arn:aws:kinesis:{region}:{account_id}:stream/{stream_name}")
}

/// Log permissions of a function on its own log group (`<group arn>:*` covers its streams).
pub fn own_logs(log_group_arn: &str) -> Statement {
    Statement::allow(
        "WriteOwnLogs",
        LOG_ACTIONS,
        &[&format!("{log_group_arn}:*")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statements_serialise_in_iam_spelling() {
        let doc = PolicyDocument::new(vec![Statement::allow("A", &["sqs:SendMessage"], &["q"])
            .when("StringEquals", "aws:SourceAccount", "1")]);
        assert_eq!(
            doc.to_value(),
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "A", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": ["q"],
                "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}]})
        );
    }

    #[test]
    fn deny_statements_keep_their_actions_and_resources() {
        let v = serde_json::to_value(Statement::deny("D", &["s3:PutObject"], &["b/*"])).unwrap();
        assert_eq!(
            v,
            json!({"Sid": "D", "Effect": "Deny", "Action": ["s3:PutObject"], "Resource": ["b/*"]})
        );
    }

    #[test]
    fn deny_except_names_the_resources_it_leaves_alone() {
        let v = serde_json::to_value(Statement::deny_except("D", &["s3:PutObject"], &["b/r/*"]))
            .unwrap();
        assert_eq!(
            v,
            json!({"Sid": "D", "Effect": "Deny", "Action": ["s3:PutObject"], "NotResource": ["b/r/*"]})
        );
    }

    #[test]
    fn trust_statements_have_a_principal_and_no_resource() {
        let v =
            serde_json::to_value(Statement::trust("T", Principal::Aws(account_root("1")))).unwrap();
        assert_eq!(v["Principal"], json!({"AWS": "arn:aws:iam::1:root"}));
        assert!(v.get("Resource").is_none());
        assert_eq!(v["Action"], json!(["sts:AssumeRole"]));
    }

    #[test]
    fn the_account_administers_a_key_without_kms_star() {
        let v = serde_json::to_value(account_administers_key("1")).unwrap();
        assert_eq!(v["Principal"], json!({"AWS": "arn:aws:iam::1:root"}));
        assert_eq!(v["Effect"], "Allow");
        assert_eq!(v["Resource"], json!(["*"]));
        assert_eq!(v["Action"], json!(KEY_ADMIN_ACTIONS));
        assert_eq!(
            alarm_arn("eu-west-1", "1", "p-relay-errors"),
            "arn:aws:cloudwatch:eu-west-1:1:alarm:p-relay-errors"
        );
    }

    #[test]
    fn customer_managed_keys_rotate_and_carry_their_policy() {
        let policy = PolicyDocument::new(vec![account_administers_key("1")]);
        let v = serde_json::to_value(customer_managed_key("p", "d", &policy)).unwrap();
        assert_eq!(v["type"], "aws:kms:Key");
        assert_eq!(v["options"]["provider"], "${p}");
        assert_eq!(
            v["properties"],
            json!({"description": "d", "enableKeyRotation": true, "deletionWindowInDays": 7,
                   "policy": {"fn::toJSON": policy.to_value()}})
        );
    }

    #[test]
    fn no_action_list_has_a_wildcard() {
        for list in [
            KINESIS_READ_ACTIONS,
            KINESIS_WRITE_ACTIONS,
            LOG_ACTIONS,
            KEY_ADMIN_ACTIONS,
            KEY_USE_ACTIONS,
        ] {
            assert!(list.iter().all(|a| !a.contains('*')), "{list:?}");
        }
    }
}
