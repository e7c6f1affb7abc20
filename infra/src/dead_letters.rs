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
