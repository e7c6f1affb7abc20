//! The source stack's dead-letter bucket: where every record the data path gives up on is kept
//! with its data, and who may write where in it.
//!
//! ```text
//! relay ----------------- PutObject relay/...              --> deadLetterBucket
//! event source mapping -- PutObject aws/lambda/<uuid>/...  --> (Lambda, with the relay's role)
//! producer (async) ------ PutObject aws/lambda/async/<producer>/... (Lambda, with the producer's role)
//! ```
//!
//! The key layout is `shared::dead_letter`'s. Nobody but an operator (the account's own
//! administrators, through their IAM policies) may read or delete: no role here is given
//! `s3:GetObject` or `s3:DeleteObject`.

use serde_json::json;

use crate::config::SourceConfig;
use crate::function::function_name;
use crate::iam::{PolicyDocument, Principal, Statement};
use crate::logical;
use crate::model::{output_of, to_json, Resource, Template};
use shared::dead_letter as layout;

/// `<prefix>-dead-letters-<source account>`: bucket names are global, so the account id keeps
/// two accounts using the same prefix apart (at most 32 + 14 + 13 = 59 of S3's 63 characters).
pub fn bucket_name(config: &SourceConfig) -> String {
    let common = &config.common;
    common
        .name_prefix
        .name(&format!("dead-letters-{}", common.source_account_id))
}

fn bucket_arn() -> String {
    output_of(logical::DEAD_LETTER_BUCKET, "arn")
}

fn objects_under(prefix: &str) -> String {
    format!("{}/{prefix}*", bucket_arn())
}

/// Lambda checks that a function's role may list the bucket before it writes an on-failure
/// record there (AWS: the role needs `s3:PutObject` and `s3:ListBucket`).
fn list_this_bucket() -> Statement {
    Statement::allow("ListDeadLetterBucket", &["s3:ListBucket"], &[&bucket_arn()])
}

/// The relay's permissions on the bucket: its own prefix, and Lambda's prefix for the event
/// source mapping, which writes with the relay's execution role.
pub fn relay_statements() -> Vec<Statement> {
    vec![
        Statement::allow(
            "WriteRelayDeadLetters",
            &["s3:PutObject"],
            &[&objects_under(layout::RELAY_PREFIX)],
        ),
        // The mapping's objects go under aws/lambda/<mapping UUID>/: AWS assigns the UUID when
        // the mapping is created, after this policy (the mapping depends on it), so the policy
        // names Lambda's prefix and the statement below takes the asynchronous part back out.
        Statement::allow(
            "WriteMappingOnFailureRecords",
            &["s3:PutObject"],
            &[&objects_under(layout::MAPPING_PREFIX)],
        ),
        Statement::deny(
            "NotTheAsyncOnFailurePrefix",
            &["s3:PutObject"],
            &[&objects_under(layout::ASYNC_PREFIX)],
        ),
        list_this_bucket(),
    ]
}

/// The producer's permissions on the bucket: Lambda writes the on-failure record of a tick
/// that kept failing with the producer's role, under the producer's own async prefix.
pub fn producer_statements(config: &SourceConfig) -> Vec<Statement> {
    let producer = function_name(&config.common.name_prefix, logical::PRODUCER.binary);
    vec![
        Statement::allow(
            "WriteFailedTicks",
            &["s3:PutObject"],
            &[&objects_under(&layout::async_prefix(&producer))],
        ),
        list_this_bucket(),
    ]
}

/// The bucket policy: every request without TLS is refused. A deny names `s3:*` and every
/// principal on purpose: it must cover every action anyone could call, and a wildcard in a
/// Deny only takes access away.
pub fn bucket_policy() -> PolicyDocument {
    PolicyDocument::new(vec![Statement::deny(
        "RefuseRequestsWithoutTls",
        &["s3:*"],
        &[&bucket_arn(), &objects_under("")],
    )
    .principal(Principal::Aws("*".into()))
    .when("Bool", "aws:SecureTransport", "false")])
}

fn setting(type_token: &str) -> Resource {
    Resource::aws(type_token, crate::source::PROVIDER)
        .prop("bucket", output_of(logical::DEAD_LETTER_BUCKET, "id"))
}

/// The bucket, its encryption, public access block, TLS-only policy and expiry.
pub fn add_bucket(t: &mut Template, config: &SourceConfig) {
    t.add(
        logical::DEAD_LETTER_BUCKET,
        Resource::aws("aws:s3:Bucket", crate::source::PROVIDER).prop("bucket", bucket_name(config)),
    );
    // SSE-S3: encrypted at rest without a key policy that Lambda's writes would have to meet.
    t.add(
        logical::DEAD_LETTER_BUCKET_ENCRYPTION,
        setting("aws:s3:BucketServerSideEncryptionConfiguration").prop(
            "rules",
            json!([{ "applyServerSideEncryptionByDefault": { "sseAlgorithm": "AES256" } }]),
        ),
    );
    t.add(
        logical::DEAD_LETTER_BUCKET_PUBLIC_ACCESS,
        setting("aws:s3:BucketPublicAccessBlock")
            .prop("blockPublicAcls", true)
            .prop("blockPublicPolicy", true)
            .prop("ignorePublicAcls", true)
            .prop("restrictPublicBuckets", true),
    );
    t.add(
        logical::DEAD_LETTER_BUCKET_POLICY,
        setting("aws:s3:BucketPolicy")
            .prop("policy", to_json(bucket_policy().to_value()))
            // S3 refuses a policy while the public access block is being changed.
            .depends_on(&[logical::DEAD_LETTER_BUCKET_PUBLIC_ACCESS]),
    );
    t.add(
        logical::DEAD_LETTER_BUCKET_LIFECYCLE,
        setting("aws:s3:BucketLifecycleConfiguration").prop(
            "rules",
            json!([{
                "id": "expire-dead-letters",
                "status": "Enabled",
                "filter": {},
                "expiration": { "days": config.dead_letter_retention_days },
            }]),
        ),
    );
}

/// The bucket's ARN, as the destinations name it.
pub fn destination() -> String {
    bucket_arn()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::config::{RawConfig, StackConfig};

    fn config(prefix: &str) -> SourceConfig {
        let pairs = [
            ("aws:region", "eu-west-1"),
            ("side", "source"),
            ("sourceAccountId", "111111111111"),
            ("targetAccountId", "222222222222"),
            ("externalId", "example-external-id"),
            ("targetRoleArn", "arn:aws:iam::222222222222:role/x"),
            ("targetFunctionName", "f"),
            ("namePrefix", prefix),
            ("deadLetterRetentionDays", "45"),
        ];
        match RawConfig::from_pairs("s", &pairs).stack_config().unwrap() {
            StackConfig::Source(config) => config,
            StackConfig::Target(_) => panic!("source"),
        }
    }

    fn value(statements: Vec<Statement>) -> Value {
        PolicyDocument::new(statements).to_value()["Statement"].clone()
    }

    #[test]
    fn the_bucket_is_named_by_prefix_and_account() {
        assert_eq!(
            bucket_name(&config("relay-eu")),
            "relay-eu-dead-letters-111111111111"
        );
        assert_eq!(destination(), "${deadLetterBucket.arn}");
    }

    #[test]
    fn each_writer_has_its_own_prefix_and_nobody_reads() {
        assert_eq!(
            value(relay_statements()),
            json!([
                {"Sid": "WriteRelayDeadLetters", "Effect": "Allow", "Action": ["s3:PutObject"],
                 "Resource": ["${deadLetterBucket.arn}/relay/*"]},
                {"Sid": "WriteMappingOnFailureRecords", "Effect": "Allow", "Action": ["s3:PutObject"],
                 "Resource": ["${deadLetterBucket.arn}/aws/lambda/*"]},
                {"Sid": "NotTheAsyncOnFailurePrefix", "Effect": "Deny", "Action": ["s3:PutObject"],
                 "Resource": ["${deadLetterBucket.arn}/aws/lambda/async/*"]},
                {"Sid": "ListDeadLetterBucket", "Effect": "Allow", "Action": ["s3:ListBucket"],
                 "Resource": ["${deadLetterBucket.arn}"]},
            ])
        );
        assert_eq!(
            value(producer_statements(&config("p"))),
            json!([
                {"Sid": "WriteFailedTicks", "Effect": "Allow", "Action": ["s3:PutObject"],
                 "Resource": ["${deadLetterBucket.arn}/aws/lambda/async/p-producer/*"]},
                {"Sid": "ListDeadLetterBucket", "Effect": "Allow", "Action": ["s3:ListBucket"],
                 "Resource": ["${deadLetterBucket.arn}"]},
            ])
        );
    }

    #[test]
    fn the_bucket_refuses_requests_without_tls() {
        assert_eq!(
            bucket_policy().to_value()["Statement"],
            json!([{
                "Sid": "RefuseRequestsWithoutTls", "Effect": "Deny", "Principal": {"AWS": "*"},
                "Action": ["s3:*"],
                "Resource": ["${deadLetterBucket.arn}", "${deadLetterBucket.arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            }])
        );
    }

    #[test]
    fn the_bucket_comes_with_its_four_settings() {
        let mut t = Template::new("test");
        add_bucket(&mut t, &config("p"));
        let v = serde_json::to_value(&t).unwrap();
        let r = &v["resources"];
        assert_eq!(
            r["deadLetterBucket"]["properties"]["bucket"],
            "p-dead-letters-111111111111"
        );
        assert_eq!(
            r["deadLetterBucket"]["options"]["provider"],
            "${sourceProvider}"
        );
        for (logical, token) in [
            (
                logical::DEAD_LETTER_BUCKET_ENCRYPTION,
                "aws:s3:BucketServerSideEncryptionConfiguration",
            ),
            (
                logical::DEAD_LETTER_BUCKET_PUBLIC_ACCESS,
                "aws:s3:BucketPublicAccessBlock",
            ),
            (logical::DEAD_LETTER_BUCKET_POLICY, "aws:s3:BucketPolicy"),
            (
                logical::DEAD_LETTER_BUCKET_LIFECYCLE,
                "aws:s3:BucketLifecycleConfiguration",
            ),
        ] {
            assert_eq!(r[logical]["type"], token, "{logical}");
            assert_eq!(
                r[logical]["properties"]["bucket"], "${deadLetterBucket.id}",
                "{logical}"
            );
        }
        assert_eq!(
            r[logical::DEAD_LETTER_BUCKET_LIFECYCLE]["properties"]["rules"][0]["expiration"]
                ["days"],
            45
        );
        assert_eq!(
            r[logical::DEAD_LETTER_BUCKET_POLICY]["properties"]["policy"]["fn::toJSON"],
            bucket_policy().to_value()
        );
        assert_eq!(
            r[logical::DEAD_LETTER_BUCKET_POLICY]["options"]["dependsOn"],
            json!(["${deadLetterBucketPublicAccess}"])
        );
        assert_eq!(
            r[logical::DEAD_LETTER_BUCKET_PUBLIC_ACCESS]["properties"]["restrictPublicBuckets"],
            true
        );
    }
}
