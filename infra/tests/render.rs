//! Runs the real `infra` binary the way Pulumi's YAML runtime does, with the committed example
//! stack configs, and checks the emitted templates: resources, references, IAM, env vars.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};
use shared::config::{
    IDEMPOTENCY_VARIABLES, PRODUCER_VARIABLES, RELAY_VARIABLES, TARGET_VARIABLES,
};

const EXTERNAL_ID: &str = "example-external-id-0123456789";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the compiler as the YAML runtime's package-discovery call does: no stack, no config.
fn package_discovery() -> Output {
    Command::new(env!("CARGO_BIN_EXE_infra"))
        .current_dir(root())
        .env_remove("PULUMI_STACK")
        .env_remove("PULUMI_CONFIG")
        .env("PULUMI_PROJECT", "cross-account-relay")
        .output()
        .unwrap()
}

/// `infra render` of a committed example stack file, with the external id (which stack files
/// keep encrypted) and `changes` (`None` removes a key) passed as `--set`.
fn render_output(stack: &str, changes: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
    cmd.current_dir(root()).args([
        "render",
        "--stack",
        stack,
        "--stack-file",
        &format!("Pulumi.{stack}.yaml"),
        "--set",
        &format!("externalId={EXTERNAL_ID}"),
    ]);
    for (key, value) in changes {
        cmd.args(["--set", &format!("{key}={}", value.unwrap_or(""))]);
    }
    cmd.output().unwrap()
}

fn render(stack: &str, changes: &[(&str, Option<&str>)]) -> Value {
    let out = render_output(stack, changes);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn resources(t: &Value) -> BTreeMap<String, String> {
    t["resources"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["type"].as_str().unwrap().to_string()))
        .collect()
}

fn env_names(t: &Value, function: &str) -> BTreeSet<String> {
    t["resources"][function]["properties"]["environment"]["variables"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn policy(t: &Value, logical: &str) -> Value {
    t["resources"][logical]["properties"]["policy"]["fn::toJSON"].clone()
}

/// `(Sid, actions, resources)` of each statement of an identity policy.
fn statements(t: &Value, logical: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    policy(t, logical)["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let strings = |v: &Value| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect()
            };
            (
                s["Sid"].as_str().unwrap().to_string(),
                strings(&s["Action"]),
                strings(&s["Resource"]),
            )
        })
        .collect()
}

fn stmt(sid: &str, actions: &[&str], resources: &[&str]) -> (String, Vec<String>, Vec<String>) {
    (
        sid.to_string(),
        actions.iter().map(|s| s.to_string()).collect(),
        resources.iter().map(|s| s.to_string()).collect(),
    )
}

/// What AWS documents an S3 on-failure destination needs besides `s3:PutObject`
/// ([`put_dead_letters`]): listing the bucket.
fn list_dead_letter_bucket() -> (String, Vec<String>, Vec<String>) {
    stmt(
        "ListDeadLetterBucket",
        &["s3:ListBucket"],
        &["${deadLetterBucket.arn}"],
    )
}

/// A writer's `s3:PutObject` on every key of the dead-letter bucket, as statement `sid`.
fn put_dead_letters(sid: &str) -> (String, Vec<String>, Vec<String>) {
    stmt(sid, &["s3:PutObject"], &["${deadLetterBucket.arn}/*"])
}

#[test]
fn package_discovery_names_the_pinned_aws_provider() {
    let out = package_discovery();
    assert!(out.status.success());
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    let resources = t["resources"].as_object().unwrap();
    assert_eq!(resources.len(), 1);
    let provider = resources.values().next().unwrap();
    assert_eq!(provider["type"], "pulumi:providers:aws");
    assert_eq!(
        provider["options"]["version"],
        infra::template::PULUMI_AWS_VERSION
    );
}

#[test]
fn target_stack_has_exactly_its_resources() {
    let t = render("target", &[]);
    let expected: BTreeMap<String, String> = [
        ("targetProvider", "pulumi:providers:aws"),
        ("idempotencyTable", "aws:dynamodb:Table"),
        ("targetLogGroup", "aws:cloudwatch:LogGroup"),
        ("targetRole", "aws:iam:Role"),
        ("targetRolePolicy", "aws:iam:RolePolicy"),
        ("targetFunction", "aws:lambda:Function"),
        ("crossAccountRole", "aws:iam:Role"),
        ("crossAccountRolePolicy", "aws:iam:RolePolicy"),
        ("alarmKey", "aws:kms:Key"),
        ("alarmTopic", "aws:sns:Topic"),
        ("alarmTopicPolicy", "aws:sns:TopicPolicy"),
        ("targetErrorsAlarm", "aws:cloudwatch:MetricAlarm"),
        ("targetThrottlesAlarm", "aws:cloudwatch:MetricAlarm"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(resources(&t), expected);
    for (name, res) in t["resources"].as_object().unwrap() {
        if name != "targetProvider" {
            assert_eq!(res["options"]["provider"], "${targetProvider}", "{name}");
            assert_eq!(
                res["options"]["version"],
                infra::template::PULUMI_AWS_VERSION,
                "{name}"
            );
        }
    }
    let provider = &t["resources"]["targetProvider"]["properties"];
    assert_eq!(provider["allowedAccountIds"], json!(["222222222222"]));
    assert_eq!(provider["region"], "eu-west-1");
}

#[test]
fn target_function_runs_the_artifact_with_exactly_the_variables_it_reads() {
    let t = render("target", &[]);
    let f = &t["resources"]["targetFunction"]["properties"];
    assert_eq!(f["runtime"], "provided.al2023");
    assert_eq!(f["handler"], "bootstrap");
    assert_eq!(f["architectures"], json!(["x86_64"]));
    assert_eq!(
        f["code"],
        json!({"fn::fileArchive": "target/lambda/target/bootstrap.zip"})
    );
    assert_eq!(f["role"], "${targetRole.arn}");
    assert_eq!(f["loggingConfig"]["logGroup"], "${targetLogGroup.name}");
    // The example stack creates the idempotency table, so the function gets its variables too.
    assert_eq!(
        env_names(&t, "targetFunction"),
        names(&[TARGET_VARIABLES, &IDEMPOTENCY_VARIABLES].concat())
    );
    assert_eq!(
        f["environment"]["variables"]["TARGET_FAULT_INJECTION"],
        "false"
    );
    assert_eq!(
        f["environment"]["variables"]["IDEMPOTENCY_TABLE"],
        "${idempotencyTable.name}"
    );
    assert_eq!(
        f["environment"]["variables"]["IDEMPOTENCY_TTL_HOURS"],
        "336"
    );
    // Without it, exactly the variables the target reads, and no table.
    let off = render("target", &[("idempotencyStore", Some("false"))]);
    assert_eq!(env_names(&off, "targetFunction"), names(TARGET_VARIABLES));
    assert!(off["resources"].get("idempotencyTable").is_none());
    assert!(off["outputs"].get("idempotencyTableName").is_none());
    let arm = render(
        "target",
        &[
            ("architecture", Some("arm64")),
            ("faultInjection", Some("true")),
        ],
    );
    let f = &arm["resources"]["targetFunction"]["properties"];
    assert_eq!(f["architectures"], json!(["arm64"]));
    assert_eq!(
        f["code"],
        json!({"fn::fileArchive": "target/lambda-arm64/target/bootstrap.zip"})
    );
    assert_eq!(
        f["environment"]["variables"]["TARGET_FAULT_INJECTION"],
        "true"
    );
    // A target of one's own: its zip, whatever the architecture; the other functions keep theirs.
    let own = "target/lambda/my-target/bootstrap.zip";
    for architecture in ["x86_64", "arm64"] {
        let t = render(
            "target",
            &[
                ("targetArtifact", Some(own)),
                ("architecture", Some(architecture)),
            ],
        );
        let f = &t["resources"]["targetFunction"]["properties"];
        assert_eq!(
            f["code"],
            json!({ "fn::fileArchive": own }),
            "{architecture}"
        );
        assert_eq!(f["architectures"], json!([architecture]));
    }
}

/// The idempotency table as the target library's store expects it (`shared::config`'s key and
/// TTL attributes), and the keys that shape it.
#[test]
fn idempotency_table_is_on_demand_encrypted_and_expires_items() {
    let t = render("target", &[]);
    let table = &t["resources"]["idempotencyTable"];
    assert_eq!(table["type"], "aws:dynamodb:Table");
    assert_eq!(
        table["properties"],
        json!({
            "name": "cross-account-relay-idempotency",
            "billingMode": "PAY_PER_REQUEST",
            "hashKey": shared::config::IDEMPOTENCY_KEY_ATTRIBUTE,
            "attributes": [{"name": shared::config::IDEMPOTENCY_KEY_ATTRIBUTE, "type": "S"}],
            "ttl": {"attributeName": shared::config::IDEMPOTENCY_TTL_ATTRIBUTE, "enabled": true},
            "serverSideEncryption": {"enabled": true},
            "deletionProtectionEnabled": true
        })
    );
    assert_eq!(
        t["outputs"]["idempotencyTableName"],
        "${idempotencyTable.name}"
    );
    let changed = render(
        "target",
        &[
            ("idempotencyTableDeletionProtection", Some("false")),
            ("idempotencyTtlHours", Some("720")),
        ],
    );
    assert_eq!(
        changed["resources"]["idempotencyTable"]["properties"]["deletionProtectionEnabled"],
        false
    );
    assert_eq!(
        changed["resources"]["targetFunction"]["properties"]["environment"]["variables"]
            ["IDEMPOTENCY_TTL_HOURS"],
        "720"
    );
    for (key, value, needle) in [
        ("idempotencyTtlHours", "24", "between 25 and 17520"),
        ("idempotencyStore", "yes", "must be true or false"),
        (
            "idempotencyTableDeletionProtection",
            "1",
            "must be true or false",
        ),
    ] {
        let out = render_output("target", &[(key, Some(value))]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(key) && stderr.contains(needle),
            "{key}={value}: {stderr}"
        );
    }
}

#[test]
fn sample_effects_table_is_a_test_device_with_update_item_on_it_alone() {
    let off = render("target", &[]);
    assert!(
        off["resources"].get("effectsTable").is_none(),
        "off by default"
    );
    assert!(!env_names(&off, "targetFunction").contains("SAMPLE_EFFECTS_TABLE"));
    let t = render("target", &[("sampleEffectsTable", Some("true"))]);
    let table = &t["resources"]["effectsTable"];
    assert_eq!(table["type"], "aws:dynamodb:Table");
    assert_eq!(
        table["options"],
        off["resources"]["idempotencyTable"]["options"]
    );
    assert_eq!(
        table["properties"],
        json!({
            "name": "cross-account-relay-sample-effects",
            "billingMode": "PAY_PER_REQUEST",
            "hashKey": shared::config::SAMPLE_EFFECTS_KEY_ATTRIBUTE,
            "attributes": [{"name": shared::config::SAMPLE_EFFECTS_KEY_ATTRIBUTE, "type": "S"}],
            "serverSideEncryption": {"enabled": true},
            "deletionProtectionEnabled": false
        })
    );
    assert_eq!(
        env_names(&t, "targetFunction"),
        names(
            &[
                TARGET_VARIABLES,
                &IDEMPOTENCY_VARIABLES,
                &infra::target::SAMPLE_EFFECTS_VARIABLES
            ]
            .concat()
        )
    );
    assert_eq!(
        t["resources"]["targetFunction"]["properties"]["environment"]["variables"]
            ["SAMPLE_EFFECTS_TABLE"],
        "${effectsTable.name}"
    );
    let mut expected = statements(&off, "targetRolePolicy");
    expected.push(stmt(
        "CountSampleEffects",
        &["dynamodb:UpdateItem"],
        &["${effectsTable.arn}"],
    ));
    assert_eq!(statements(&t, "targetRolePolicy"), expected);
    // The relay's cross-account role gets nothing of it.
    assert_eq!(
        statements(&t, "crossAccountRolePolicy"),
        statements(&off, "crossAccountRolePolicy")
    );
    let out = render_output("target", &[("sampleEffectsTable", Some("yes"))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("sampleEffectsTable")
            && stderr.contains("must be true or false"),
        "{stderr}"
    );
}

#[test]
fn target_iam_is_exact() {
    let t = render("target", &[]);
    let own_logs = stmt(
        "WriteOwnLogs",
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        &["${targetLogGroup.arn}:*"],
    );
    assert_eq!(
        statements(&t, "targetRolePolicy"),
        vec![
            own_logs.clone(),
            stmt(
                "UseOwnIdempotencyTable",
                &[
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchGetItem"
                ],
                &["${idempotencyTable.arn}"]
            )
        ]
    );
    let off = render("target", &[("idempotencyStore", Some("false"))]);
    assert_eq!(statements(&off, "targetRolePolicy"), vec![own_logs]);
    // The relay's cross-account role gets nothing of the table, with or without it.
    assert_eq!(
        statements(&t, "crossAccountRolePolicy"),
        statements(&off, "crossAccountRolePolicy")
    );
    assert_eq!(
        statements(&t, "crossAccountRolePolicy"),
        vec![stmt(
            "InvokeTargetFunctionOnly",
            &["lambda:InvokeFunction"],
            &["${targetFunction.arn}"]
        )]
    );
    assert_eq!(
        t["resources"]["crossAccountRolePolicy"]["properties"]["role"],
        "${crossAccountRole.id}"
    );
    let role = &t["resources"]["crossAccountRole"]["properties"];
    assert_eq!(role["name"], "cross-account-relay-invoker");
    assert_eq!(role["maxSessionDuration"], 3600);
    assert_eq!(
        role["assumeRolePolicy"]["fn::toJSON"],
        json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "RelayRoleOfSourceAccount",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Action": ["sts:AssumeRole"],
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/cross-account-relay-relay-role"},
                "StringEquals": {"sts:ExternalId": {"fn::secret": EXTERNAL_ID}}
            }
        }]})
    );
    assert_eq!(
        t["outputs"]["crossAccountRoleArn"],
        "${crossAccountRole.arn}"
    );
    assert_eq!(t["outputs"]["targetFunctionArn"], "${targetFunction.arn}");
}

#[test]
fn source_stack_has_exactly_its_resources() {
    let t = render("source", &[]);
    let expected: BTreeMap<String, String> = [
        ("sourceProvider", "pulumi:providers:aws"),
        ("streamKey", "aws:kms:Key"),
        ("stream", "aws:kinesis:Stream"),
        ("deadLetterBucket", "aws:s3:Bucket"),
        (
            "deadLetterBucketEncryption",
            "aws:s3:BucketServerSideEncryptionConfiguration",
        ),
        (
            "deadLetterBucketPublicAccess",
            "aws:s3:BucketPublicAccessBlock",
        ),
        ("deadLetterBucketPolicy", "aws:s3:BucketPolicy"),
        (
            "deadLetterBucketLifecycle",
            "aws:s3:BucketLifecycleConfiguration",
        ),
        ("scheduleDeadLetterQueue", "aws:sqs:Queue"),
        ("producerLogGroup", "aws:cloudwatch:LogGroup"),
        ("producerRole", "aws:iam:Role"),
        ("producerRolePolicy", "aws:iam:RolePolicy"),
        ("producerFunction", "aws:lambda:Function"),
        (
            "producerInvokeConfig",
            "aws:lambda:FunctionEventInvokeConfig",
        ),
        ("schedulerRole", "aws:iam:Role"),
        ("schedulerRolePolicy", "aws:iam:RolePolicy"),
        ("schedule", "aws:scheduler:Schedule"),
        ("relayLogGroup", "aws:cloudwatch:LogGroup"),
        ("relayRole", "aws:iam:Role"),
        ("relayRolePolicy", "aws:iam:RolePolicy"),
        ("relayFunction", "aws:lambda:Function"),
        ("relayEventSourceMapping", "aws:lambda:EventSourceMapping"),
        ("alarmKey", "aws:kms:Key"),
        ("alarmTopic", "aws:sns:Topic"),
        ("alarmTopicPolicy", "aws:sns:TopicPolicy"),
        ("relayDeadLetteredAlarm", "aws:cloudwatch:MetricAlarm"),
        ("scheduleDeadLettersAlarm", "aws:cloudwatch:MetricAlarm"),
        ("relayErrorsAlarm", "aws:cloudwatch:MetricAlarm"),
        ("relayIteratorAgeAlarm", "aws:cloudwatch:MetricAlarm"),
        (
            "relayDestinationDeliveryFailuresAlarm",
            "aws:cloudwatch:MetricAlarm",
        ),
        ("relayAssumeRoleFailuresAlarm", "aws:cloudwatch:MetricAlarm"),
        ("producerErrorsAlarm", "aws:cloudwatch:MetricAlarm"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(resources(&t), expected);
    assert_eq!(
        t["resources"]["sourceProvider"]["properties"]["allowedAccountIds"],
        json!(["111111111111"])
    );
    for (name, res) in t["resources"].as_object().unwrap() {
        if name != "sourceProvider" {
            assert_eq!(res["options"]["provider"], "${sourceProvider}", "{name}");
        }
    }
}

#[test]
fn source_references_wire_the_pipeline() {
    let t = render("source", &[]);
    let r = &t["resources"];
    assert_eq!(r["stream"]["properties"]["encryptionType"], "KMS");
    assert_eq!(r["stream"]["properties"]["kmsKeyId"], "${streamKey.arn}");
    // The example stack's stream: one provisioned shard, Kinesis's included 24 hours.
    assert_eq!(
        r["stream"]["properties"]["streamModeDetails"],
        json!({"streamMode": "PROVISIONED"})
    );
    assert_eq!(r["stream"]["properties"]["shardCount"], 1);
    assert_eq!(r["stream"]["properties"]["retentionPeriod"], 24);
    // Kinesis's default maximum record size, said out loud.
    assert_eq!(r["stream"]["properties"]["maxRecordSizeInKib"], 1024);
    assert_eq!(
        r["scheduleDeadLetterQueue"]["properties"]["sqsManagedSseEnabled"],
        true
    );
    let schedule = &r["schedule"]["properties"];
    assert_eq!(schedule["scheduleExpression"], "rate(5 minutes)");
    assert_eq!(schedule["target"]["arn"], "${producerFunction.arn}");
    assert_eq!(schedule["target"]["roleArn"], "${schedulerRole.arn}");
    assert!(schedule["target"]["retryPolicy"]["maximumRetryAttempts"].is_number());
    let esm = &r["relayEventSourceMapping"]["properties"];
    assert_eq!(esm["eventSourceArn"], "${stream.arn}");
    assert_eq!(esm["functionName"], "${relayFunction.arn}");
    assert_eq!(
        esm["functionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(esm["bisectBatchOnFunctionError"], true);
    assert_eq!(esm["maximumRetryAttempts"], 3);
    assert_eq!(esm["maximumRecordAgeInSeconds"], 3600);
    assert_eq!(esm["startingPosition"], "TRIM_HORIZON");
    assert_eq!(
        esm["destinationConfig"],
        json!({"onFailure": {"destinationArn": "${deadLetterBucket.arn}"}})
    );
    // The mapping's own event counts, for what it polled, invoked and dropped.
    assert_eq!(esm["metricsConfig"], json!({"metrics": ["EventCount"]}));
    assert_eq!(
        r["relayEventSourceMapping"]["options"]["dependsOn"],
        json!(["${relayRolePolicy}", "${deadLetterBucketPolicy}"])
    );
    // Replacing the nameless mapping must delete the old one first (Lambda refuses a second
    // mapping for the same stream and function); no other resource needs it.
    for (name, res) in r.as_object().unwrap() {
        let dbr = res["options"]["deleteBeforeReplace"] == json!(true);
        assert_eq!(dbr, name == "relayEventSourceMapping", "{name}");
    }
    // A tick Scheduler could not hand over is kept in the schedule's own queue.
    assert_eq!(
        schedule["target"]["deadLetterConfig"],
        json!({"arn": "${scheduleDeadLetterQueue.arn}"})
    );
    assert_eq!(
        r["relayRole"]["properties"]["name"],
        "cross-account-relay-relay-role"
    );
    assert_eq!(
        r["relayFunction"]["properties"]["name"],
        "cross-account-relay-relay"
    );
    let provisioned = render(
        "source",
        &[
            ("streamMode", Some("PROVISIONED")),
            ("shardCount", Some("3")),
        ],
    );
    assert_eq!(
        provisioned["resources"]["stream"]["properties"]["shardCount"],
        3
    );
}

/// Each function logs JSON at the stack's application level through Lambda's own controls
/// (Lambda sets `AWS_LAMBDA_LOG_LEVEL` from it; the template's environment does not).
#[test]
fn every_function_uses_lambdas_logging_controls_at_the_stacks_level() {
    for (stack, functions) in [
        ("source", &["producer", "relay"][..]),
        ("target", &["target"][..]),
    ] {
        for (level, expected) in [(None, "INFO"), (Some("DEBUG"), "DEBUG")] {
            let t = render(stack, &[("logLevel", level)]);
            for function in functions {
                let f = &t["resources"][format!("{function}Function")]["properties"];
                assert_eq!(
                    f["loggingConfig"],
                    json!({
                        "logFormat": "JSON",
                        "applicationLogLevel": expected,
                        "systemLogLevel": "INFO",
                        "logGroup": format!("${{{function}LogGroup.name}}"),
                    }),
                    "{stack} {function}"
                );
                let variables = f["environment"]["variables"].as_object().unwrap();
                assert!(!variables.contains_key(shared::config::AWS_LAMBDA_LOG_LEVEL));
            }
        }
    }
    let out = render_output("target", &[("logLevel", Some("verbose"))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("logLevel") && stderr.contains("TRACE, DEBUG, INFO, WARN, ERROR, FATAL"),
        "{stderr}"
    );
}

#[test]
fn source_functions_get_exactly_the_variables_they_read() {
    let t = render("source", &[]);
    assert_eq!(env_names(&t, "producerFunction"), names(PRODUCER_VARIABLES));
    assert_eq!(env_names(&t, "relayFunction"), names(RELAY_VARIABLES));
    let relay = &t["resources"]["relayFunction"]["properties"]["environment"]["variables"];
    assert_eq!(
        relay["TARGET_EXTERNAL_ID"],
        json!({"fn::secret": EXTERNAL_ID})
    );
    assert_eq!(
        relay["TARGET_ROLE_ARN"],
        "arn:aws:iam::222222222222:role/cross-account-relay-invoker"
    );
    assert_eq!(relay["DEAD_LETTER_BUCKET"], "${deadLetterBucket.bucket}");
    assert_eq!(relay["TARGET_REGION"], "eu-west-1");
    let producer = &t["resources"]["producerFunction"]["properties"]["environment"]["variables"];
    assert_eq!(producer["STREAM_NAME"], "${stream.name}");
    // The producer writes plain records unless producerAggregation turns aggregates on.
    assert_eq!(producer["PRODUCER_AGGREGATION"], "false");
    let on = render("source", &[("producerAggregation", Some("true"))]);
    let producer = &on["resources"]["producerFunction"]["properties"]["environment"]["variables"];
    assert_eq!(producer["PRODUCER_AGGREGATION"], "true");
    // Every value is a plain string, an interpolation or fn::secret (what the local harness resolves).
    for f in ["producerFunction", "relayFunction"] {
        for (k, v) in t["resources"][f]["properties"]["environment"]["variables"]
            .as_object()
            .unwrap()
        {
            assert!(
                v.is_string() || v.get("fn::secret").is_some_and(Value::is_string),
                "{f}.{k} = {v}"
            );
        }
    }
}

#[test]
fn source_iam_is_exact() {
    let t = render("source", &[]);
    let logs = |group: &str| {
        stmt(
            "WriteOwnLogs",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            &[&format!("${{{group}.arn}}:*")],
        )
    };
    assert_eq!(
        statements(&t, "producerRolePolicy"),
        vec![
            logs("producerLogGroup"),
            stmt(
                "WriteThisStream",
                &["kinesis:PutRecord", "kinesis:PutRecords"],
                &["${stream.arn}"]
            ),
            stmt(
                "EncryptRecordsWithStreamKey",
                &["kms:GenerateDataKey"],
                &["${streamKey.arn}"]
            ),
            put_dead_letters("WriteFailedTicks"),
            list_dead_letter_bucket(),
        ]
    );
    assert_eq!(
        t["resources"]["producerInvokeConfig"]["properties"],
        json!({
            "functionName": "${producerFunction.name}",
            "maximumRetryAttempts": 2,
            "maximumEventAgeInSeconds": 240,
            "destinationConfig": {"onFailure": {"destination": "${deadLetterBucket.arn}"}}
        })
    );
    assert_eq!(
        statements(&t, "relayRolePolicy"),
        vec![
            logs("relayLogGroup"),
            stmt(
                "ReadThisStream",
                &[
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards"
                ],
                &["${stream.arn}"]
            ),
            stmt(
                "DecryptRecordsWithStreamKey",
                &["kms:Decrypt"],
                &["${streamKey.arn}"]
            ),
            stmt(
                "AssumeTargetRoleOnly",
                &["sts:AssumeRole"],
                &["arn:aws:iam::222222222222:role/cross-account-relay-invoker"]
            ),
            put_dead_letters("WriteDeadLettersAndOnFailureRecords"),
            list_dead_letter_bucket(),
        ]
    );
    let effects: Vec<_> = policy(&t, "relayRolePolicy")["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Effect"].as_str().unwrap().to_string())
        .collect();
    // Where in the bucket each role may write is the bucket policy's business (below).
    assert_eq!(effects, ["Allow"; 6]);
    assert_eq!(
        statements(&t, "schedulerRolePolicy"),
        vec![
            stmt(
                "InvokeProducerOnly",
                &["lambda:InvokeFunction"],
                &["${producerFunction.arn}"]
            ),
            stmt(
                "SendUndeliveredTicksToScheduleDeadLetterQueue",
                &["sqs:SendMessage"],
                &["${scheduleDeadLetterQueue.arn}"]
            ),
        ]
    );
    let trust = |role: &str| {
        t["resources"][role]["properties"]["assumeRolePolicy"]["fn::toJSON"]["Statement"][0].clone()
    };
    for role in ["producerRole", "relayRole"] {
        assert_eq!(
            trust(role)["Principal"],
            json!({"Service": "lambda.amazonaws.com"}),
            "{role}"
        );
        assert_eq!(
            trust(role)["Condition"],
            json!({"StringEquals": {"aws:SourceAccount": "111111111111"}}),
            "{role}"
        );
    }
    // Scheduler's confused-deputy protection: this account and this account's schedule group.
    assert_eq!(
        trust("schedulerRole")["Principal"],
        json!({"Service": "scheduler.amazonaws.com"})
    );
    assert_eq!(
        trust("schedulerRole")["Condition"],
        json!({
            "StringEquals": {"aws:SourceAccount": "111111111111"},
            "ArnEquals": {"aws:SourceArn": "arn:aws:scheduler:eu-west-1:111111111111:schedule-group/default"}
        })
    );
    // The stream key serves this stream only (the encryption context Kinesis sends).
    let key_use =
        &t["resources"]["streamKey"]["properties"]["policy"]["fn::toJSON"]["Statement"][1];
    assert_eq!(key_use["Sid"], "AccountUsesKeyThroughKinesis");
    assert_eq!(
        key_use["Condition"]["StringEquals"]["kms:EncryptionContext:aws:kinesis:arn"],
        "arn:aws:kinesis:eu-west-1:111111111111:stream/cross-account-relay-stream"
    );
    assert_eq!(
        key_use["Condition"]["StringEquals"]["kms:ViaService"],
        "kinesis.eu-west-1.amazonaws.com"
    );
    // No wildcard action anywhere; `Resource: "*"` only in the key policies.
    for (name, res) in t["resources"].as_object().unwrap() {
        let props = res["properties"].to_string();
        assert!(
            !props.contains("\"kinesis:*\"")
                && !props.contains("\"sqs:*\"")
                && !props.contains("\"kms:*\""),
            "{name}"
        );
        if !["streamKey", "alarmKey"].contains(&name.as_str()) {
            assert!(!props.contains("\"Resource\":[\"*\"]"), "{name}");
        }
    }
}

#[test]
fn stack_reference_replaces_the_target_config_keys() {
    let t = render(
        "source",
        &[
            ("targetRoleArn", Some("")),
            ("targetFunctionName", Some("")),
            ("targetStack", Some("acme/cross-account-relay/target")),
        ],
    );
    assert_eq!(
        t["resources"]["targetStackReference"]["type"],
        "pulumi:pulumi:StackReference"
    );
    assert_eq!(
        t["resources"]["targetStackReference"]["properties"]["name"],
        "acme/cross-account-relay/target"
    );
    let relay = &t["resources"]["relayFunction"]["properties"]["environment"]["variables"];
    assert_eq!(
        relay["TARGET_ROLE_ARN"],
        "${targetStackReference.outputs[\"crossAccountRoleArn\"]}"
    );
    assert_eq!(
        relay["TARGET_FUNCTION_NAME"],
        "${targetStackReference.outputs[\"targetFunctionArn\"]}"
    );
    // The target's region comes with the reference unless set explicitly.
    assert_eq!(
        relay["TARGET_REGION"],
        "${targetStackReference.outputs[\"targetRegion\"]}"
    );
    let explicit = render(
        "source",
        &[
            ("targetRoleArn", Some("")),
            ("targetFunctionName", Some("")),
            ("targetStack", Some("acme/cross-account-relay/target")),
            ("targetRegion", Some("us-east-2")),
        ],
    );
    assert_eq!(
        explicit["resources"]["relayFunction"]["properties"]["environment"]["variables"]
            ["TARGET_REGION"],
        "us-east-2"
    );
}

/// Every physical name of both stacks starts with the shared prefix, so a second pair of
/// stacks in the same accounts (another region, another environment) collides on nothing.
#[test]
fn name_prefix_starts_every_physical_name() {
    let prefix = [("namePrefix", Some("relay-eu-2"))];
    let target = render("target", &prefix);
    let source = render(
        "source",
        &[
            ("namePrefix", Some("relay-eu-2")),
            (
                "targetRoleArn",
                Some("arn:aws:iam::222222222222:role/relay-eu-2-invoker"),
            ),
        ],
    );
    let mut named = 0;
    for t in [&target, &source] {
        for (logical, res) in t["resources"].as_object().unwrap() {
            if let Some(name) = res["properties"]["name"].as_str() {
                if res["type"] == "pulumi:pulumi:StackReference" {
                    continue;
                }
                let bare = name.trim_start_matches("/aws/lambda/");
                assert!(bare.starts_with("relay-eu-2-"), "{logical}: {name}");
                named += 1;
            }
        }
    }
    for t in [&target, &source] {
        for (logical, res) in t["resources"].as_object().unwrap() {
            if let Some(bucket) = res["properties"]["bucket"].as_str() {
                if !bucket.starts_with("${") {
                    assert!(bucket.starts_with("relay-eu-2-"), "{logical}: {bucket}");
                    named += 1;
                }
            }
        }
    }
    assert_eq!(named, 27, "every named resource of both stacks was checked");
    assert_eq!(
        target["resources"]["idempotencyTable"]["properties"]["name"],
        "relay-eu-2-idempotency"
    );
    assert_eq!(
        source["resources"]["deadLetterBucket"]["properties"]["bucket"],
        "relay-eu-2-dead-letters-111111111111"
    );
    let trust = &target["resources"]["crossAccountRole"]["properties"]["assumeRolePolicy"]
        ["fn::toJSON"]["Statement"][0]["Condition"]["ArnEquals"]["aws:PrincipalArn"];
    assert_eq!(
        trust,
        "arn:aws:iam::111111111111:role/relay-eu-2-relay-role"
    );
    assert_eq!(
        source["resources"]["relayRole"]["properties"]["name"],
        "relay-eu-2-relay-role"
    );
    assert_eq!(
        target["outputs"]["trustedRelayRoleArn"],
        "arn:aws:iam::111111111111:role/relay-eu-2-relay-role"
    );
    assert_eq!(
        target["resources"]["crossAccountRole"]["properties"]["name"],
        "relay-eu-2-invoker"
    );
}

#[test]
fn target_reserved_concurrency_is_set_only_when_asked() {
    let t = render("target", &[]);
    assert!(t["resources"]["targetFunction"]["properties"]
        .get("reservedConcurrentExecutions")
        .is_none());
    let t = render("target", &[("targetReservedConcurrency", Some("25"))]);
    assert_eq!(
        t["resources"]["targetFunction"]["properties"]["reservedConcurrentExecutions"],
        25
    );
}

/// The YAML runtime registers config keys and resources in one namespace, and a clash is
/// resolved silently (a `${name}` could then mean the config value).
#[test]
fn no_resource_is_named_like_a_config_key() {
    let keys: BTreeSet<&str> = infra::config::KEYS.iter().map(|k| k.name).collect();
    let stack_ref = [
        ("targetRoleArn", Some("")),
        ("targetFunctionName", Some("")),
        ("targetStack", Some("a/b/c")),
    ];
    for t in [
        render("target", &[]),
        render("target", &[("sampleEffectsTable", Some("true"))]),
        render("source", &[]),
        render("source", &stack_ref),
    ] {
        for name in t["resources"].as_object().unwrap().keys() {
            assert!(
                !keys.contains(name.as_str()),
                "resource {name} clashes with a config key"
            );
        }
    }
}

#[test]
fn each_required_key_missing_is_named_with_its_fix() {
    let cases = [
        ("target", "side"),
        ("target", "sourceAccountId"),
        ("target", "targetAccountId"),
        ("target", "externalId"),
        ("target", "aws:region"),
        ("source", "side"),
        ("source", "sourceAccountId"),
        ("source", "targetAccountId"),
        ("source", "externalId"),
        ("source", "aws:region"),
        ("source", "targetRoleArn"),
        ("source", "targetFunctionName"),
    ];
    for (stack, key) in cases {
        let out = render_output(stack, &[(key, None)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let full = if key.contains(':') {
            key.to_string()
        } else {
            format!("cross-account-relay:{key}")
        };
        assert!(!out.status.success(), "{stack}/{key}");
        assert!(
            out.stdout.is_empty(),
            "{stack}/{key}: half a template on stdout"
        );
        assert!(
            stderr.contains(&format!("missing config `{full}`")),
            "{stack}/{key}: {stderr}"
        );
        assert!(
            stderr.contains("pulumi config set"),
            "{stack}/{key}: {stderr}"
        );
    }
}

#[test]
fn wrong_input_fails_cleanly() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
    let out = cmd
        .env("PULUMI_STACK", "s")
        .env("PULUMI_CONFIG", "not json")
        .output()
        .unwrap();
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PULUMI_CONFIG"));
    let out = Command::new(env!("CARGO_BIN_EXE_infra"))
        .env("PULUMI_STACK", "s")
        .env("PULUMI_PROJECT", "other")
        .env("PULUMI_CONFIG", "{}")
        .output()
        .unwrap();
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PULUMI_PROJECT is `other`"));
}

/// `requiredPulumiVersion` is the CLI version the tests run (tools/pulumi/go.mod): an older
/// CLI (pulumi-yaml before 1.8.0 passes no PULUMI_CONFIG to the compiler) would render the
/// package-only template and plan to delete every resource.
#[test]
fn pulumi_yaml_requires_the_tested_cli() {
    let go_mod = std::fs::read_to_string(root().join("tools/pulumi/go.mod")).unwrap();
    let pin = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("github.com/pulumi/pulumi/pkg/v3 v"))
        .or_else(|| {
            go_mod.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("require github.com/pulumi/pulumi/pkg/v3 v")
            })
        })
        .expect("tools/pulumi/go.mod requires github.com/pulumi/pulumi/pkg/v3");
    let pin = pin.split_whitespace().next().unwrap();
    let text = std::fs::read_to_string(root().join("Pulumi.yaml")).unwrap();
    assert!(
        text.contains(&format!("\nrequiredPulumiVersion: \">={pin}\"\n")),
        "Pulumi.yaml must say requiredPulumiVersion: \">={pin}\""
    );
    // The preview workflow installs the same CLI.
    let workflow = std::fs::read_to_string(root().join(".github/workflows/preview.yml")).unwrap();
    assert!(
        workflow.contains(&format!("pulumi-version: {pin}\n")),
        ".github/workflows/preview.yml must install pulumi-version: {pin}"
    );
}

#[test]
fn render_refuses_bad_arguments_with_a_clear_error() {
    let infra = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_infra"))
            .current_dir(root())
            .args(args)
            .output()
            .unwrap()
    };
    for (args, needle) in [
        (
            &["render", "--stack-file", "Pulumi.target.yaml"][..],
            "--stack NAME is required",
        ),
        (
            &["render", "--stack", "t", "--stack-file", "nope.yaml"][..],
            "nope.yaml",
        ),
        (
            &[
                "render",
                "--stack",
                "t",
                "--stack-file",
                "Pulumi.target.yaml",
                "--set",
                "x",
            ][..],
            "is not KEY=VALUE",
        ),
        (&["render", "--stack"][..], "--stack needs a value"),
        (&["--frobnicate"][..], "unknown argument"),
    ] {
        let out = infra(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            out.stdout.is_empty() && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
}

/// `--limits` and `--envelope-example` are how other languages read the limits and the
/// contract: they come from the shared crate and decode with its own types.
#[test]
fn limits_and_envelope_example_come_from_the_shared_crate() {
    let infra = |flag: &str| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_infra"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let limits = infra("--limits");
    assert_eq!(
        limits["lambda_sync_payload_limit"],
        shared::limits::LAMBDA_SYNC_PAYLOAD_LIMIT
    );
    assert_eq!(limits.as_object().unwrap().len(), shared::limits::ALL.len());
    let example = infra("--envelope-example");
    let request =
        shared::envelope::DeliveryRequest::from_value(example["request"].clone()).unwrap();
    // A plain record, and a user record of a KPL aggregate.
    assert_eq!(request.records.len(), 2);
    assert_eq!(request.records[1].sub_sequence_number, Some(3));
    let response =
        shared::envelope::DeliveryResponse::decode(example["response"].to_string().as_bytes())
            .unwrap();
    assert_eq!(response.results.len(), 3);
    let layout = infra("--dead-letter-layout");
    assert_eq!(layout["relay_prefix"], shared::dead_letter::RELAY_PREFIX);
    assert_eq!(
        layout["mapping_prefix"],
        shared::dead_letter::MAPPING_PREFIX
    );
    assert_eq!(layout["async_prefix"], shared::dead_letter::ASYNC_PREFIX);
    assert_eq!(
        layout["redriven_prefix"],
        shared::dead_letter::REDRIVEN_PREFIX
    );
    assert_eq!(layout.as_object().unwrap().len(), 4);
}

/// The dead-letter bucket holds records' data: encrypted, never public, TLS only, and expired
/// after `deadLetterRetentionDays`.
#[test]
fn dead_letter_bucket_is_private_encrypted_tls_only_and_expires() {
    let t = render("source", &[("deadLetterRetentionDays", Some("45"))]);
    let r = &t["resources"];
    assert_eq!(
        r["deadLetterBucket"]["properties"],
        json!({"bucket": "cross-account-relay-dead-letters-111111111111", "forceDestroy": false})
    );
    for setting in [
        "deadLetterBucketEncryption",
        "deadLetterBucketPublicAccess",
        "deadLetterBucketPolicy",
        "deadLetterBucketLifecycle",
    ] {
        assert_eq!(
            r[setting]["properties"]["bucket"], "${deadLetterBucket.id}",
            "{setting}"
        );
    }
    assert_eq!(
        r["deadLetterBucketEncryption"]["properties"]["rules"],
        json!([{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}])
    );
    for flag in [
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ] {
        assert_eq!(
            r["deadLetterBucketPublicAccess"]["properties"][flag], true,
            "{flag}"
        );
    }
    let bucket_policy = policy(&t, "deadLetterBucketPolicy");
    assert_eq!(
        bucket_policy["Statement"][0],
        json!({
            "Sid": "RefuseRequestsWithoutTls",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["s3:*"],
            "Resource": ["${deadLetterBucket.arn}", "${deadLetterBucket.arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        })
    );
    // The rest keeps each writer to its prefix: every statement takes access away, none grants.
    let statements = bucket_policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 5);
    assert!(statements.iter().all(|s| s["Effect"] == "Deny"));
    assert_eq!(
        r["deadLetterBucketLifecycle"]["properties"]["rules"],
        json!([{"id": "expire-dead-letters", "status": "Enabled", "filter": {"prefix": ""},
                "expiration": {"days": 45}}])
    );
    assert_eq!(
        t["outputs"]["deadLetterBucketName"],
        "${deadLetterBucket.bucket}"
    );
    let default = render("source", &[]);
    assert_eq!(
        default["resources"]["deadLetterBucketLifecycle"]["properties"]["rules"][0]["expiration"]
            ["days"],
        30
    );
}

/// Each stack's alarms notify its own topic, encrypted with its own key, which only those
/// alarms may publish to; the e-mail subscription exists only when `alarmEmail` is set.
#[test]
fn each_stack_alarms_its_own_topic_which_only_its_alarms_may_use() {
    for (stack, account, alarms) in [
        (
            "source",
            "111111111111",
            &[
                "relay-records-dead-lettered",
                "schedule-dead-letters",
                "relay-errors",
                "relay-iterator-age",
                "relay-destination-delivery-failures",
                "relay-assume-role-failures",
                "producer-errors",
            ][..],
        ),
        (
            "target",
            "222222222222",
            &["target-errors", "target-throttles"][..],
        ),
    ] {
        let t = render(stack, &[]);
        let r = &t["resources"];
        let arns: Vec<String> = alarms
            .iter()
            .map(|a| {
                format!("arn:aws:cloudwatch:eu-west-1:{account}:alarm:cross-account-relay-{a}")
            })
            .collect();
        let condition = json!({
            "StringEquals": {"aws:SourceAccount": account},
            "ArnEquals": {"aws:SourceArn": arns},
        });
        let publish = &policy(&t, "alarmTopicPolicy")["Statement"];
        assert_eq!(publish.as_array().unwrap().len(), 1, "{stack}");
        assert_eq!(
            publish[0]["Principal"],
            json!({"Service": "cloudwatch.amazonaws.com"})
        );
        assert_eq!(publish[0]["Action"], json!(["sns:Publish"]));
        assert_eq!(publish[0]["Condition"], condition, "{stack}");
        assert_eq!(
            policy(&t, "alarmKey")["Statement"][1]["Condition"],
            condition,
            "{stack}"
        );
        assert_eq!(
            r["alarmTopic"]["properties"]["name"],
            "cross-account-relay-alarms"
        );
        assert_eq!(
            r["alarmTopic"]["properties"]["kmsMasterKeyId"],
            "${alarmKey.arn}"
        );
        assert_eq!(t["outputs"]["alarmTopicArn"], "${alarmTopic.arn}");
        let mut named: Vec<String> = Vec::new();
        for res in r.as_object().unwrap().values() {
            if res["type"] == "aws:cloudwatch:MetricAlarm" {
                let p = &res["properties"];
                assert_eq!(p["alarmActions"], json!(["${alarmTopic.arn}"]));
                assert_eq!(p["okActions"], json!(["${alarmTopic.arn}"]));
                assert_eq!(p["period"], 300);
                named.push(p["name"].as_str().unwrap().to_string());
            }
        }
        named.sort();
        let mut expected: Vec<String> = alarms
            .iter()
            .map(|a| format!("cross-account-relay-{a}"))
            .collect();
        expected.sort();
        assert_eq!(named, expected, "{stack}");
        assert!(r.get("alarmEmailSubscription").is_none(), "{stack}");
        let with_email = render(stack, &[("alarmEmail", Some("ops@example.com"))]);
        assert_eq!(
            with_email["resources"]["alarmEmailSubscription"]["properties"]["endpoint"],
            "ops@example.com"
        );
    }
    let source = render("source", &[]);
    let own = &source["resources"]["relayDeadLetteredAlarm"]["properties"];
    assert_eq!(own["namespace"], shared::metrics::NAMESPACE);
    assert_eq!(
        own["metricName"],
        shared::metrics::relay::RECORDS_DEAD_LETTERED.name
    );
    assert_eq!(
        own["dimensions"],
        json!({shared::metrics::DIMENSION: "cross-account-relay-relay"})
    );
    assert_eq!(
        source["resources"]["relayIteratorAgeAlarm"]["properties"]["threshold"],
        600_000
    );
    let out = render_output("target", &[("alarmEmail", Some("ops"))]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid config `cross-account-relay:alarmEmail`"),
        "{err}"
    );
}

/// ON_DEMAND (the key's default) needs no shard count; PROVISIONED carries it.
#[test]
fn the_stream_capacity_mode_decides_whether_a_shard_count_is_sent() {
    let on_demand = render("source", &[("streamMode", Some("ON_DEMAND"))]);
    let stream = &on_demand["resources"]["stream"]["properties"];
    assert_eq!(
        stream["streamModeDetails"],
        json!({"streamMode": "ON_DEMAND"})
    );
    assert!(stream.get("shardCount").is_none(), "{stream}");
    let provisioned = render("source", &[("shardCount", Some("3"))]);
    assert_eq!(
        provisioned["resources"]["stream"]["properties"]["shardCount"],
        3
    );
}
