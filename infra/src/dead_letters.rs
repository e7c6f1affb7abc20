//! The source stack's dead-letter bucket: where every record the data path gives up on is kept
//! with its data, and who may write where in it.
//!
//! ```text
//! relay ----------------- PutObject relay/...              --> deadLetterBucket
//! event source mapping -- PutObject aws/lambda/<uuid>/...  --> (Lambda, with the relay's role)
//! producer (async) ------ PutObject aws/lambda/async/<producer>/... (Lambda, with the producer's role)
//! ```
//!
//! The key layout is `shared::dead_letter`'s. Each writer's execution role gets what AWS
//! documents for an S3 on-failure destination, on this bucket; the bucket policy decides where
//! in it each may write, and keeps every other principal of the account out of the writers'
//! prefixes. Nobody but an operator (the account's own administrators, through their IAM
//! policies) may read or delete: no role here is given `s3:GetObject` or `s3:DeleteObject`.

use serde_json::json;

use crate::config::SourceConfig;
use crate::iam::{PolicyDocument, Principal, Statement};
use crate::names::{self, function_name};
use crate::template::{output_of, to_json, Resource, Template};
use shared::dead_letter as layout;

/// The bucket's physical name ([`names::dead_letter_bucket_name`]).
pub fn bucket_name(config: &SourceConfig) -> String {
    let common = &config.common;
    names::dead_letter_bucket_name(&common.name_prefix, &common.source_account_id)
}

fn bucket_arn() -> String {
    output_of(names::DEAD_LETTER_BUCKET, "arn")
}

fn objects_under(prefix: &str) -> String {
    format!("{}/{prefix}*", bucket_arn())
}

/// What an execution role needs for an S3 on-failure destination, as the Lambda developer
/// guide gives it for event source mappings ("Retain discarded batch records for a Kinesis Data
/// Streams event source in Lambda"; the same list on the Kafka and MSK pages) and for
/// asynchronous invocations ("Capturing records of Lambda asynchronous invocations"):
///
/// > Your execution role must have permissions for the destination: [...] For an S3
/// > destination: s3:PutObject and s3:ListBucket
///
/// The guide names no prefix: Lambda picks its keys (`aws/lambda/<mapping UUID>/...`, a UUID
/// AWS assigns only when the mapping is created) and may check the role's permissions before
/// it writes. So the role gets both actions on this bucket, as documented, and the bucket
/// policy ([`bucket_policy`]) keeps each writer to its own prefix.
fn on_failure_destination(write_sid: &str) -> Vec<Statement> {
    vec![
        Statement::allow(write_sid, &["s3:PutObject"], &[&objects_under("")]),
        Statement::allow("ListDeadLetterBucket", &["s3:ListBucket"], &[&bucket_arn()]),
    ]
}

/// The relay's permissions on the bucket: it writes the records it gives up on, and Lambda
/// writes the event source mapping's on-failure records with this same execution role.
pub fn relay_statements() -> Vec<Statement> {
    on_failure_destination("WriteDeadLettersAndOnFailureRecords")
}

/// The producer's permissions on the bucket: Lambda writes the on-failure record of a tick
/// that kept failing with the producer's role.
pub fn producer_statements() -> Vec<Statement> {
    on_failure_destination("WriteFailedTicks")
}

/// `aws:PrincipalArn` of a request made with a role's session: the role's ARN.
const PRINCIPAL_ARN: &str = "aws:PrincipalArn";

/// The bucket policy. Every statement is a Deny: it takes access away from whoever an IAM
/// policy of the account would otherwise let in, and grants nothing. Each names `Principal: *`
/// on purpose: it must hold for every principal there is, and a wildcard in a Deny only takes
/// access away.
///
/// - every request without TLS is refused (`s3:*`: every action anyone could call);
/// - the relay's role writes only under `relay/` and Lambda's `aws/lambda/` prefix (the
///   mapping's on-failure records), never under `aws/lambda/async/`;
/// - the producer's role writes only under its own `aws/lambda/async/<producer>/`;
/// - no other principal writes under `relay/` or `aws/lambda/`, so nothing in the bucket that
///   looks like a dead letter was put there by anyone but its writer.
pub fn bucket_policy(config: &SourceConfig) -> PolicyDocument {
    let relay = output_of(names::RELAY.role, "arn");
    let producer = output_of(names::PRODUCER.role, "arn");
    let producer_name = function_name(&config.common.name_prefix, names::PRODUCER.binary);
    let writers_prefixes = [
        objects_under(layout::RELAY_PREFIX),
        objects_under(layout::MAPPING_PREFIX),
    ];
    let writers_prefixes: Vec<&str> = writers_prefixes.iter().map(String::as_str).collect();
    let everyone = || Principal::Aws("*".into());
    PolicyDocument::new(vec![
        Statement::deny(
            "RefuseRequestsWithoutTls",
            &["s3:*"],
            &[&bucket_arn(), &objects_under("")],
        )
        .principal(everyone())
        .when("Bool", "aws:SecureTransport", "false"),
        Statement::deny_except(
            "RelayWritesOnlyItsPrefixes",
            &["s3:PutObject"],
            &writers_prefixes,
        )
        .principal(everyone())
        .when("ArnEquals", PRINCIPAL_ARN, relay.clone()),
        Statement::deny(
            "RelayNeverWritesFailedTicks",
            &["s3:PutObject"],
            &[&objects_under(layout::ASYNC_PREFIX)],
        )
        .principal(everyone())
        .when("ArnEquals", PRINCIPAL_ARN, relay.clone()),
        Statement::deny_except(
            "ProducerWritesOnlyItsFailedTicks",
            &["s3:PutObject"],
            &[&objects_under(&layout::async_prefix(&producer_name))],
        )
        .principal(everyone())
        .when("ArnEquals", PRINCIPAL_ARN, producer.clone()),
        Statement::deny(
            "OnlyTheWritersWriteDeadLetters",
            &["s3:PutObject"],
            &writers_prefixes,
        )
        .principal(everyone())
        .when("ArnNotEquals", PRINCIPAL_ARN, json!([relay, producer])),
    ])
}

fn setting(type_token: &str) -> Resource {
    Resource::aws(type_token, names::SOURCE_PROVIDER)
        .prop("bucket", output_of(names::DEAD_LETTER_BUCKET, "id"))
}

/// The bucket, its encryption, public access block, policy and expiry.
pub fn add_bucket(t: &mut Template, config: &SourceConfig) {
    t.add(
        names::DEAD_LETTER_BUCKET,
        Resource::aws("aws:s3:Bucket", names::SOURCE_PROVIDER)
            .prop("bucket", bucket_name(config))
            // S3 refuses to delete a bucket that holds objects (BucketNotEmpty); with
            // forceDestroy the provider empties it first. Off by default: dead letters are
            // data. The provider reads it from the state when it deletes, so it takes effect
            // only after an `up` that set it.
            .prop("forceDestroy", config.dead_letter_bucket_force_destroy),
    );
    // SSE-S3: encrypted at rest without a key policy that Lambda's writes would have to meet.
    t.add(
        names::DEAD_LETTER_BUCKET_ENCRYPTION,
        setting("aws:s3:BucketServerSideEncryptionConfiguration").prop(
            "rules",
            json!([{ "applyServerSideEncryptionByDefault": { "sseAlgorithm": "AES256" } }]),
        ),
    );
    t.add(
        names::DEAD_LETTER_BUCKET_PUBLIC_ACCESS,
        setting("aws:s3:BucketPublicAccessBlock")
            .prop("blockPublicAcls", true)
            .prop("blockPublicPolicy", true)
            .prop("ignorePublicAcls", true)
            .prop("restrictPublicBuckets", true),
    );
    t.add(
        names::DEAD_LETTER_BUCKET_POLICY,
        setting("aws:s3:BucketPolicy")
            .prop("policy", to_json(bucket_policy(config).to_value()))
            // S3 refuses a policy while the public access block is being changed.
            .depends_on(&[names::DEAD_LETTER_BUCKET_PUBLIC_ACCESS]),
    );
    t.add(
        names::DEAD_LETTER_BUCKET_LIFECYCLE,
        setting("aws:s3:BucketLifecycleConfiguration").prop(
            "rules",
            json!([{
                "id": "expire-dead-letters",
                "status": "Enabled",
                // Every object. An empty filter (`{}`) makes the provider warn "Invalid
                // Attribute Combination"; an empty prefix is the documented whole-bucket form.
                "filter": { "prefix": "" },
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
        config_with(prefix, &[])
    }

    fn config_with(prefix: &str, extra: &[(&str, &str)]) -> SourceConfig {
        let mut pairs = vec![
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
        pairs.extend_from_slice(extra);
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
    fn each_writer_role_gets_what_aws_documents_for_an_s3_destination_and_nothing_to_read() {
        let documented = |write_sid: &str| {
            json!([
                {"Sid": write_sid, "Effect": "Allow", "Action": ["s3:PutObject"],
                 "Resource": ["${deadLetterBucket.arn}/*"]},
                {"Sid": "ListDeadLetterBucket", "Effect": "Allow", "Action": ["s3:ListBucket"],
                 "Resource": ["${deadLetterBucket.arn}"]},
            ])
        };
        assert_eq!(
            value(relay_statements()),
            documented("WriteDeadLettersAndOnFailureRecords")
        );
        assert_eq!(value(producer_statements()), documented("WriteFailedTicks"));
    }

    #[test]
    fn the_bucket_policy_refuses_plain_http_and_keeps_each_writer_to_its_prefix() {
        let relay = "${relayRole.arn}";
        let producer = "${producerRole.arn}";
        let everyone = json!({"AWS": "*"});
        assert_eq!(
            bucket_policy(&config("p")).to_value()["Statement"],
            json!([
                {"Sid": "RefuseRequestsWithoutTls", "Effect": "Deny", "Principal": everyone,
                 "Action": ["s3:*"],
                 "Resource": ["${deadLetterBucket.arn}", "${deadLetterBucket.arn}/*"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
                {"Sid": "RelayWritesOnlyItsPrefixes", "Effect": "Deny", "Principal": everyone,
                 "Action": ["s3:PutObject"],
                 "NotResource": ["${deadLetterBucket.arn}/relay/*", "${deadLetterBucket.arn}/aws/lambda/*"],
                 "Condition": {"ArnEquals": {"aws:PrincipalArn": relay}}},
                {"Sid": "RelayNeverWritesFailedTicks", "Effect": "Deny", "Principal": everyone,
                 "Action": ["s3:PutObject"],
                 "Resource": ["${deadLetterBucket.arn}/aws/lambda/async/*"],
                 "Condition": {"ArnEquals": {"aws:PrincipalArn": relay}}},
                {"Sid": "ProducerWritesOnlyItsFailedTicks", "Effect": "Deny", "Principal": everyone,
                 "Action": ["s3:PutObject"],
                 "NotResource": ["${deadLetterBucket.arn}/aws/lambda/async/p-producer/*"],
                 "Condition": {"ArnEquals": {"aws:PrincipalArn": producer}}},
                {"Sid": "OnlyTheWritersWriteDeadLetters", "Effect": "Deny", "Principal": everyone,
                 "Action": ["s3:PutObject"],
                 "Resource": ["${deadLetterBucket.arn}/relay/*", "${deadLetterBucket.arn}/aws/lambda/*"],
                 "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [relay, producer]}}},
            ])
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
                names::DEAD_LETTER_BUCKET_ENCRYPTION,
                "aws:s3:BucketServerSideEncryptionConfiguration",
            ),
            (
                names::DEAD_LETTER_BUCKET_PUBLIC_ACCESS,
                "aws:s3:BucketPublicAccessBlock",
            ),
            (names::DEAD_LETTER_BUCKET_POLICY, "aws:s3:BucketPolicy"),
            (
                names::DEAD_LETTER_BUCKET_LIFECYCLE,
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
            r[names::DEAD_LETTER_BUCKET_LIFECYCLE]["properties"]["rules"][0]["expiration"]["days"],
            45
        );
        assert_eq!(
            r[names::DEAD_LETTER_BUCKET_POLICY]["properties"]["policy"]["fn::toJSON"],
            bucket_policy(&config("p")).to_value()
        );
        assert_eq!(
            r[names::DEAD_LETTER_BUCKET_POLICY]["options"]["dependsOn"],
            json!(["${deadLetterBucketPublicAccess}"])
        );
        assert_eq!(
            r[names::DEAD_LETTER_BUCKET_PUBLIC_ACCESS]["properties"]["restrictPublicBuckets"],
            true
        );
    }

    fn rendered(extra: &[(&str, &str)]) -> Value {
        let mut t = Template::new("test");
        add_bucket(&mut t, &config_with("p", extra));
        serde_json::to_value(&t).unwrap()["resources"].clone()
    }

    #[test]
    fn the_bucket_keeps_its_dead_letters_on_destroy_unless_the_stack_says_otherwise() {
        let bucket =
            |extra| rendered(extra)["deadLetterBucket"]["properties"]["forceDestroy"].clone();
        assert_eq!(bucket(&[]), json!(false));
        assert_eq!(
            bucket(&[("deadLetterBucketForceDestroy", "true")]),
            json!(true)
        );
    }

    #[test]
    fn the_expiry_rule_covers_every_object_with_an_empty_prefix_filter() {
        let rule = &rendered(&[])[names::DEAD_LETTER_BUCKET_LIFECYCLE]["properties"]["rules"][0];
        assert_eq!(rule["filter"], json!({"prefix": ""}));
        assert_eq!(rule["status"], "Enabled");
    }
}
