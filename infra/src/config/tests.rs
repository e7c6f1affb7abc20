use super::checks::*;
use super::parse::set_line;
use super::*;
use shared::config as env;
use std::collections::BTreeMap;

pub(crate) const TARGET: &[(&str, &str)] = &[
    ("aws:region", "eu-west-1"),
    ("side", "target"),
    ("sourceAccountId", "111111111111"),
    ("targetAccountId", "222222222222"),
    ("externalId", "example-external-id"),
];

fn with(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> RawConfig {
    let mut pairs: Vec<_> = base
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .copied()
        .collect();
    pairs.extend(extra.iter().filter(|(_, v)| !v.is_empty()).copied());
    RawConfig::from_pairs("dev-target", &pairs)
}

/// The target stack's configuration with `extra`, which must be accepted.
fn target(extra: &[(&'static str, &'static str)]) -> TargetConfig {
    match with(TARGET, extra).stack_config().unwrap() {
        StackConfig::Target(t) => t,
        StackConfig::Source(_) => panic!("a target stack read as a source"),
    }
}

/// Asserts that `base` with `extra` is refused with an error that contains every needle.
fn assert_refused(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
    needles: &[&str],
) {
    let err = refusal(base, extra);
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

/// The error `stack_config` gives for `base` with `extra`, which must be refused.
fn refusal(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> String {
    with(base, extra).stack_config().unwrap_err().to_string()
}

#[test]
fn defaults_fill_every_optional_key() {
    let t = target(&[]);
    assert_eq!(
        t.common.cross_account_role_name,
        "cross-account-relay-invoker"
    );
    assert_eq!(t.common.architecture, Architecture::X86_64);
    assert_eq!(t.max_session_seconds, 3600);
    assert!(!t.fault_injection);
}

#[test]
fn missing_role_names_the_key_and_the_fix() {
    assert_refused(
        TARGET,
        &[("side", "")],
        &[
            "`cross-account-relay:side`",
            "pulumi config set --stack dev-target side target",
        ],
    );
}

#[test]
fn the_old_role_key_says_how_to_move_to_side() {
    assert_refused(TARGET, &[("role", "target")], &["`role` was renamed to `side`", "pulumi config rm --stack dev-target role && pulumi config set --stack dev-target side target"]);
}

#[test]
fn missing_external_id_suggests_a_secret() {
    assert_refused(
        TARGET,
        &[("externalId", "")],
        &["pulumi config set --secret --stack dev-target externalId"],
    );
}

#[test]
fn invalid_values_are_refused_with_the_reason() {
    let cases = [
        ("side", "both", "must be one of source, target"),
        ("sourceAccountId", "1234", "exactly 12 digits"),
        ("architecture", "aarch64", "x86_64, arm64"),
        ("logRetentionDays", "10", "CloudWatch accepts"),
        (
            "crossAccountRoleMaxSessionSeconds",
            "100",
            "between 3600 and 43200",
        ),
        ("faultInjection", "yes", "true or false"),
        ("aws:region", "Ireland", "not an AWS region"),
        ("externalId", "a b", "STS accepts"),
        ("namePrefix", "Relay", "lower-case letters"),
        ("namePrefix", "relay-", "not ending with a hyphen"),
        (
            "namePrefix",
            "a-very-long-prefix-that-is-over-32",
            "1 to 32 characters",
        ),
        (
            "logLevel",
            "verbose",
            "must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL",
        ),
        // Lambda's levels are upper case, and the old tracing filters are not levels.
        ("logLevel", "debug", "must be one of TRACE"),
        ("logLevel", "relay=debug,info", "must be one of TRACE"),
        ("targetReservedConcurrency", "-2", "between -1 and 1000000"),
    ];
    for (k, v, reason) in cases {
        let err = refusal(TARGET, &[(k, v)]);
        assert!(err.contains(reason), "{k}={v}: {err}");
        assert!(err.contains("pulumi config set"), "{err}");
    }
}

const SOURCE: &[(&str, &str)] = &[
    ("side", "source"),
    ("targetRoleArn", "arn:aws:iam::222222222222:role/x"),
    ("targetFunctionName", "f"),
];

fn source(extra: &[(&'static str, &'static str)]) -> Result<SourceConfig, ConfigError> {
    let mut pairs = SOURCE.to_vec();
    pairs.extend_from_slice(extra);
    match with(TARGET, &pairs).stack_config()? {
        StackConfig::Source(s) => Ok(s),
        StackConfig::Target(_) => panic!("source"),
    }
}

#[test]
fn dead_letters_are_kept_thirty_days_unless_set_within_ten_years() {
    assert_eq!(source(&[]).unwrap().dead_letter_retention_days, 30);
    for days in [1, 3650] {
        let value = days.to_string();
        let value: &'static str = Box::leak(value.into_boxed_str());
        let config = source(&[("deadLetterRetentionDays", value)]).unwrap();
        assert_eq!(config.dead_letter_retention_days, days);
    }
    for bad in ["0", "3651"] {
        let err = source(&[("deadLetterRetentionDays", bad)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("deadLetterRetentionDays"), "{err}");
        assert!(err.contains("between 1 and 3650"), "{err}");
    }
}

#[test]
fn name_prefix_starts_every_derived_name() {
    let t = target(&[("namePrefix", "relay-eu-2")]);
    assert_eq!(t.common.name_prefix.as_str(), "relay-eu-2");
    assert_eq!(t.common.cross_account_role_name, "relay-eu-2-invoker");
    let t = target(&[
        ("namePrefix", "relay-eu-2"),
        ("crossAccountRoleName", "mine"),
    ]);
    assert_eq!(t.common.cross_account_role_name, "mine");
    assert!(NamePrefix::parse(&"a".repeat(NamePrefix::MAX_LEN)).is_ok());
    assert!(NamePrefix::parse(&"a".repeat(NamePrefix::MAX_LEN + 1)).is_err());
    assert!(NamePrefix::parse("a--b").is_err());
    assert!(NamePrefix::parse("1abc").is_err());
    assert!(NamePrefix::parse("").is_err());
}

#[test]
fn assumed_role_sessions_stop_at_one_hour_because_of_role_chaining() {
    assert_eq!(
        source(&[("assumeRoleSessionSeconds", "3600")])
            .unwrap()
            .session_seconds,
        3600
    );
    assert_eq!(
        source(&[("assumeRoleSessionSeconds", "900")])
            .unwrap()
            .session_seconds,
        900
    );
    for bad in ["3601", "43200", "899"] {
        let err = source(&[("assumeRoleSessionSeconds", bad)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("between 900 and 3600"), "{bad}: {err}");
    }
}

#[test]
fn schedule_expressions_are_the_ones_scheduler_accepts() {
    for good in [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(2 hours)",
        "rate(1 day)",
        "cron(0 12 * * ? *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "at(2027-01-31T08:00:00)",
    ] {
        assert!(check_schedule_expression(good).is_ok(), "{good}");
    }
    for (bad, reason) in [
        ("every 5 minutes", "rate(…), cron(…) or at(…)"),
        ("rate(1 minutes)", "minute, hour, day"),
        ("rate(5 minute)", "minutes, hours, days"),
        ("rate(0 minutes)", "positive whole number"),
        ("rate(5)", "a value and a unit"),
        ("rate(5 weeks)", "minutes, hours, days"),
        ("cron(0 12 * * *)", "six fields"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month"),
        ("at(2027-01-31 08:00)", "at(2027-01-31T08:00:00)"),
    ] {
        let err = check_schedule_expression(bad).unwrap_err();
        assert!(err.contains(reason), "{bad}: {err}");
    }
    let err = source(&[("scheduleExpression", "every 5 minutes")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`cross-account-relay:scheduleExpression`"),
        "{err}"
    );
    assert!(err.contains("pulumi config set"), "{err}");
}

#[test]
fn target_function_must_be_unqualified_and_in_the_target_account() {
    let arn = "arn:aws:lambda:eu-west-1:222222222222:function:cross-account-relay-target";
    assert!(source(&[("targetFunctionName", arn)]).is_ok());
    assert!(source(&[("targetFunctionName", "cross-account-relay-target")]).is_ok());
    for qualified in [
        "cross-account-relay-target:live",
        "arn:aws:lambda:eu-west-1:222222222222:function:cross-account-relay-target:3",
        "222222222222:function:cross-account-relay-target",
    ] {
        let err = source(&[("targetFunctionName", qualified)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("alias or version"), "{qualified}: {err}");
    }
    let other_account = "arn:aws:lambda:eu-west-1:333333333333:function:f";
    let err = source(&[("targetFunctionName", other_account)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("targetAccountId 222222222222"), "{err}");
    let other_region = "arn:aws:lambda:us-east-1:222222222222:function:f";
    assert!(source(&[("targetFunctionName", other_region)]).is_err());
    assert!(source(&[
        ("targetFunctionName", other_region),
        ("targetRegion", "us-east-1")
    ])
    .is_ok());
}

#[test]
fn target_region_comes_from_the_key_the_stack_reference_or_the_source_region() {
    assert_eq!(
        source(&[]).unwrap().target_region,
        TargetRegion::Fixed("eu-west-1".into())
    );
    assert_eq!(
        source(&[("targetRegion", "us-east-2")])
            .unwrap()
            .target_region,
        TargetRegion::Fixed("us-east-2".into())
    );
    let by_reference = [
        ("targetRoleArn", ""),
        ("targetFunctionName", ""),
        ("targetStack", "org/cross-account-relay/target"),
    ];
    assert_eq!(
        source(&by_reference).unwrap().target_region,
        TargetRegion::FromTargetStack
    );
    let mut explicit = by_reference.to_vec();
    explicit.push(("targetRegion", "ap-southeast-2"));
    assert_eq!(
        source(&explicit).unwrap().target_region,
        TargetRegion::Fixed("ap-southeast-2".into())
    );
    let err = source(&[("targetRegion", "Ireland")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`cross-account-relay:targetRegion`"), "{err}");
}

#[test]
fn reserved_concurrency_is_unset_by_default() {
    let reserved = |extra: &[(&'static str, &'static str)]| target(extra).reserved_concurrency;
    assert_eq!(reserved(&[]), None);
    assert_eq!(reserved(&[("targetReservedConcurrency", "-1")]), None);
    assert_eq!(reserved(&[("targetReservedConcurrency", "1")]), Some(1));
    assert_eq!(reserved(&[("targetReservedConcurrency", "50")]), Some(50));
    assert_eq!(
        reserved(&[("targetReservedConcurrency", "1000000")]),
        Some(1_000_000)
    );
    // The 100 executions AWS keeps unreserved are the account's, which the program cannot
    // see: the description says so, and Lambda refuses too large a value at deploy time.
    assert!(Key::TargetReservedConcurrency
        .spec()
        .description
        .contains("AWS keeps 100"));
}

#[test]
fn a_reservation_of_zero_that_would_throttle_every_delivery_is_refused() {
    assert_refused(
        TARGET,
        &[("targetReservedConcurrency", "0")],
        &[
            "`cross-account-relay:targetReservedConcurrency`",
            "throttle every delivery",
            "use -1 for no reservation",
            "pulumi config set --stack dev-target targetReservedConcurrency 50",
        ],
    );
}

#[test]
fn the_producer_writes_aggregates_only_when_producer_aggregation_is_set() {
    assert!(!source(&[]).unwrap().producer_aggregation);
    assert!(
        source(&[("producerAggregation", "true")])
            .unwrap()
            .producer_aggregation
    );
    let err = source(&[("producerAggregation", "sometimes")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`cross-account-relay:producerAggregation`") && err.contains("true or false"),
        "{err}"
    );
}

#[test]
fn the_dead_letter_bucket_keeps_its_objects_unless_force_destroy_is_set() {
    assert!(!source(&[]).unwrap().dead_letter_bucket_force_destroy);
    let set = source(&[("deadLetterBucketForceDestroy", "true")]).unwrap();
    assert!(set.dead_letter_bucket_force_destroy);
    let err = source(&[("deadLetterBucketForceDestroy", "yes")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`cross-account-relay:deadLetterBucketForceDestroy`"),
        "{err}"
    );
    assert!(err.contains("true or false"), "{err}");
}

#[test]
fn the_log_level_is_one_of_lambdas_application_log_levels() {
    let level = |extra: &[(&'static str, &'static str)]| target(extra).common.log_level;
    assert_eq!(level(&[]), "INFO");
    let description = Key::LogLevel.spec().full_description();
    for (name, _) in env::APPLICATION_LOG_LEVELS {
        assert_eq!(level(&[("logLevel", name)]), name);
        assert!(description.contains(name), "the description names {name}");
    }
}

#[test]
fn region_names_are_words_and_a_number_in_lower_case() {
    for good in ["eu-west-1", "us-gov-west-1", "ap-southeast-4"] {
        assert!(looks_like_region(good), "{good}");
    }
    for bad in [
        "eu-west",
        "eu--1",
        "-west-1",
        "EU-west-1",
        "eu-west-x",
        "eu-west-1a",
        "eu_west-1",
    ] {
        assert!(!looks_like_region(bad), "{bad}");
        let err = refusal(TARGET, &[("aws:region", bad)]);
        assert!(err.contains("not an AWS region name"), "{bad}: {err}");
    }
}

#[test]
fn cross_account_role_names_are_at_most_64_iam_characters() {
    let role_name =
        |name: &'static str| match with(TARGET, &[("crossAccountRoleName", name)]).stack_config() {
            Ok(StackConfig::Target(t)) => Ok(t.common.cross_account_role_name),
            Ok(StackConfig::Source(_)) => panic!("target"),
            Err(e) => Err(e.to_string()),
        };
    let longest: &'static str = "r".repeat(64).leak();
    assert_eq!(role_name(longest).unwrap(), longest);
    assert_eq!(role_name("a+=,.@_-z").unwrap(), "a+=,.@_-z");
    let too_long: &'static str = "r".repeat(65).leak();
    for bad in [too_long, "relay invoker", "relay/invoker"] {
        let err = role_name(bad).unwrap_err();
        assert!(err.contains("at most 64 characters"), "{bad}: {err}");
    }
}

#[test]
fn target_role_arn_must_be_an_iam_role_arn() {
    for bad in [
        "arn:aws:iam::222222222222:user/x",
        "222222222222:role/x",
        "aws:iam::222222222222:role/x",
    ] {
        let err = source(&[("targetRoleArn", bad)]).unwrap_err().to_string();
        assert!(err.contains("must be a role ARN"), "{bad}: {err}");
    }
}

#[test]
fn function_references_are_checked_part_by_part() {
    for good in [
        "my_function-2",
        "arn:aws:lambda:eu-west-1:222222222222:function:my_function-2",
        "arn:aws-us-gov:lambda:us-gov-west-1:222222222222:function:f",
    ] {
        assert!(check_function_reference(good).is_ok(), "{good}");
    }
    let longest = "f".repeat(64);
    assert!(check_function_reference(&longest).is_ok());
    for bad in [
        "my.function".to_string(),
        "f".repeat(65),
        "arn:gcp:lambda:eu-west-1:222222222222:function:f".into(),
        "arn:aws:lambda:Ireland:222222222222:function:f".into(),
        "arn:aws:lambda:eu-west-1:22222222222:function:f".into(),
        "arn:aws:lambda:eu-west-1:22222222222x:function:f".into(),
        "arn:aws:lambda:eu-west-1:222222222222:function:my.function".into(),
    ] {
        let err = check_function_reference(&bad).unwrap_err();
        assert!(
            err.contains("function name or an unqualified ARN"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn cron_fields_are_never_empty_and_use_scheduler_characters() {
    for bad in ["cron(0 12  * ? *)", "cron(0 12 * * ? 2027!)"] {
        let err = check_schedule_expression(bad).unwrap_err();
        assert!(err.contains("a cron field has a character"), "{bad}: {err}");
    }
    for bad in ["at(2027-01-31T08:00)", "at(2027-01-31T08:00:00Z)"] {
        let err = check_schedule_expression(bad).unwrap_err();
        assert!(err.contains("at(2027-01-31T08:00:00)"), "{bad}: {err}");
    }
}

#[test]
fn the_fix_line_quotes_a_value_the_shell_would_split_or_redirect() {
    let line = |example| set_line("k", example, false, "s");
    assert_eq!(line("plain"), "pulumi config set --stack s k plain");
    assert_eq!(line("a b"), "pulumi config set --stack s k 'a b'");
    assert_eq!(line("rate(5)"), "pulumi config set --stack s k 'rate(5)'");
    assert_eq!(line("<id>"), "pulumi config set --stack s k '<id>'");
    assert_eq!(
        set_line("externalId", "x", true, "s"),
        "pulumi config set --secret --stack s externalId x"
    );
}

#[test]
fn minus_one_means_forever_for_retries_and_record_age() {
    let s = source(&[
        ("maximumRetryAttempts", "-1"),
        ("maximumRecordAgeSeconds", "-1"),
    ])
    .unwrap();
    assert_eq!(
        (s.maximum_retry_attempts, s.maximum_record_age_seconds),
        (-1, -1)
    );
    for (key, bad, reason) in [
        ("maximumRetryAttempts", "-2", "between -1 and 10000"),
        ("maximumRecordAgeSeconds", "-2", "between -1 and 604800"),
        (
            "maximumRecordAgeSeconds",
            "0",
            "-1 or between 60 and 604800",
        ),
        (
            "maximumRecordAgeSeconds",
            "59",
            "-1 or between 60 and 604800",
        ),
    ] {
        let err = source(&[(key, bad)]).unwrap_err().to_string();
        assert!(err.contains(reason), "{key}={bad}: {err}");
    }
    assert_eq!(
        source(&[
            ("maximumRecordAgeSeconds", "60"),
            ("alarmIteratorAgeSeconds", "59"),
        ])
        .unwrap()
        .maximum_record_age_seconds,
        60
    );
}

/// A file of the project, read as the tests run.
fn project_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// Pulumi.yaml declares every key the program reads, with the same type and default: its
/// `config:` block is exactly the one generated from the program's key table.
#[test]
fn pulumi_yaml_declares_exactly_the_program_keys() {
    let text = project_file("Pulumi.yaml");
    assert!(text.contains("\nname: cross-account-relay\n"));
    assert!(text.contains("compiler: cargo run --quiet --locked -p infra"));
    let block = pulumi_yaml_config_block();
    assert!(
        text.ends_with(&format!("\n{block}")),
        "Pulumi.yaml's config block differs from the program's keys; regenerate it with `make generate`"
    );
    for k in KEYS {
        assert!(
            block.contains(&format!(
                "\n  {}:\n    type: {}\n",
                k.name,
                k.key_type().as_str()
            )),
            "{}",
            k.name
        );
        let required = REQUIRED_KEYS.contains(&k.key);
        let entry: String = block
            .split(&format!("\n  {}:\n", k.name))
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| l.starts_with("    "))
            .collect();
        assert_eq!(entry.contains("default:"), !required, "{}", k.name);
        if let Some(default) = k.default() {
            assert!(
                entry.contains(&format!("default: {default}"))
                    || entry.contains(&format!("default: \"{default}\"")),
                "{}",
                k.name
            );
        }
    }
}

#[test]
fn the_architecture_set_is_the_one_lambda_gets_and_picks_its_artifact() {
    let architecture = |value: &'static str| target(&[("architecture", value)]).common.architecture;
    for value in ["x86_64", "arm64"] {
        assert_eq!(architecture(value).lambda_name(), value);
    }
    // Where `make build` (cargo-lambda) writes each architecture's zip.
    assert_eq!(
        architecture("x86_64").artifact("relay"),
        "target/lambda/relay/bootstrap.zip"
    );
    assert_eq!(
        architecture("arm64").artifact("relay"),
        "target/lambda-arm64/relay/bootstrap.zip"
    );
}

#[test]
fn a_target_artifact_is_a_zip_path_and_unset_means_the_samples() {
    assert_eq!(target(&[]).artifact, None);
    for path in ["target/lambda/my-target/bootstrap.zip", "/abs/own.zip"] {
        assert_eq!(
            target(&[("targetArtifact", path)]).artifact.as_deref(),
            Some(path)
        );
    }
    for (bad, needle) in [
        ("target/lambda/my-target/bootstrap", "must name a .zip file"),
        ("target/lambda/my-target/", "must name a .zip file"),
        ("target/.zip", "must name a .zip file"),
    ] {
        assert_refused(
            TARGET,
            &[("targetArtifact", bad)],
            &[
                "cross-account-relay:targetArtifact",
                needle,
                "pulumi config set",
            ],
        );
    }
}

#[test]
fn fault_injection_and_a_provisioned_stream_are_read_as_set() {
    let t = target(&[("faultInjection", "true")]);
    assert!(t.fault_injection);
    let provisioned = source(&[("streamMode", "PROVISIONED"), ("shardCount", "3")]).unwrap();
    assert_eq!(
        provisioned.stream_capacity,
        StreamCapacity::Provisioned { shards: 3 }
    );
    assert_eq!(
        source(&[]).unwrap().stream_capacity,
        StreamCapacity::OnDemand
    );
}

#[test]
fn another_project_name_is_refused() {
    assert_eq!(check_project("cross-account-relay"), Ok(()));
    let err = check_project("other").unwrap_err();
    assert_eq!(err, ConfigError::WrongProject("other".into()));
    assert!(
        err.to_string().contains("PULUMI_PROJECT is `other`"),
        "{err}"
    );
}

#[test]
fn the_config_table_has_a_row_per_key() {
    let table = config_table();
    assert_eq!(table.lines().count(), 3 + Key::COUNT, "{table}");
    for k in KEYS {
        assert!(table.contains(&format!("| `{}` |", k.name)), "{}", k.name);
    }
}

#[test]
fn secret_values_never_appear_in_errors() {
    let err = refusal(TARGET, &[("externalId", "x y secret")]);
    assert!(!err.contains("secret\""), "{err}");
    assert!(!err.contains("x y"), "{err}");
}

#[test]
fn source_needs_the_target_outputs_or_a_stack_reference() {
    assert_refused(
        TARGET,
        &[("side", "source")],
        &["`cross-account-relay:targetRoleArn`"],
    );
    let cfg = with(
        TARGET,
        &[
            ("side", "source"),
            ("targetStack", "org/cross-account-relay/target"),
        ],
    );
    let StackConfig::Source(s) = cfg.stack_config().unwrap() else {
        panic!("source")
    };
    assert_eq!(
        s.target,
        TargetOutputs::StackReference {
            stack: "org/cross-account-relay/target".into()
        }
    );
    assert_eq!(s.target_region, TargetRegion::FromTargetStack);
}

#[test]
fn target_role_must_live_in_the_target_account() {
    let cfg = with(
        TARGET,
        &[
            ("side", "source"),
            ("targetRoleArn", "arn:aws:iam::333333333333:role/x"),
            ("targetFunctionName", "f"),
        ],
    );
    let err = cfg.stack_config().unwrap_err().to_string();
    assert!(err.contains("targetAccountId 222222222222"), "{err}");
}

#[test]
fn record_age_between_zero_and_sixty_is_refused() {
    let cfg = with(
        TARGET,
        &[
            ("side", "source"),
            ("targetRoleArn", "arn:aws:iam::222222222222:role/x"),
            ("targetFunctionName", "f"),
            ("maximumRecordAgeSeconds", "30"),
        ],
    );
    assert!(cfg
        .stack_config()
        .unwrap_err()
        .to_string()
        .contains("-1 or between 60"));
}

#[test]
fn config_must_be_a_json_object_of_strings() {
    assert!(matches!(
        RawConfig::parse("s", "[1]"),
        Err(ConfigError::NotJson(_))
    ));
    assert!(RawConfig::parse("s", r#"{"aws:region":"eu-west-1"}"#).is_ok());
}

#[test]
fn each_key_spec_sits_at_its_variant_index() {
    for (index, spec) in KEYS.iter().enumerate() {
        assert_eq!(spec.key as usize, index, "{}", spec.name);
        assert_eq!(spec.key.spec().name, spec.name);
    }
    let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Key::COUNT, "a key name is used twice");
}

/// The ranges the program enforces are the ones the functions enforce at start-up.
#[test]
fn function_settings_share_the_program_ranges() {
    let producer = |extra: &[(&'static str, &'static str)]| {
        source(extra).map(|s| (s.records_per_invocation, s.max_put_attempts))
    };
    assert_eq!(
        producer(&[("producerRecordsPerInvocation", "10000")])
            .unwrap()
            .0,
        10_000
    );
    assert!(producer(&[("producerRecordsPerInvocation", "10001")]).is_err());
    assert_eq!(producer(&[("producerMaxPutAttempts", "20")]).unwrap().1, 20);
    assert!(producer(&[("producerMaxPutAttempts", "0")]).is_err());
    assert_eq!(
        *env::PRODUCER_RECORDS_PER_INVOCATION_SETTING.range.end(),
        10_000,
        "docs/reference/config-keys.md and Pulumi.yaml describe this range"
    );
    let capacity =
        |v: &'static str| match with(TARGET, &[("targetDedupCapacity", v)]).stack_config() {
            Ok(StackConfig::Target(t)) => Ok(t.dedup_capacity),
            Ok(StackConfig::Source(_)) => panic!("target"),
            Err(e) => Err(e),
        };
    assert_eq!(capacity("0").unwrap(), 0);
    assert!(capacity("1000001").is_err());
    let records = |v: &'static str| {
        source(&[("relayMaxRecordsPerInvocation", v)]).map(|s| s.relay_max_records_per_invocation)
    };
    assert_eq!(source(&[]).unwrap().relay_max_records_per_invocation, 0);
    assert_eq!(records("10000").unwrap(), 10_000);
    let err = records("10001").unwrap_err().to_string();
    assert!(err.contains("must be between 0 and 10000"), "{err}");
    assert_eq!(
        env::RELAY_MAX_RECORDS_PER_INVOCATION_SETTING.range,
        0..=10_000,
        "docs/reference/config-keys.md and Pulumi.yaml describe this range"
    );
}

#[test]
fn the_stream_takes_records_up_to_what_an_event_carries_and_no_larger() {
    let size = |v: &'static str| {
        source(&[("streamMaxRecordSizeKib", v)]).map(|s| s.stream_max_record_size_kib)
    };
    assert_eq!(source(&[]).unwrap().stream_max_record_size_kib, 1024);
    assert_eq!(size("4601").unwrap(), 4601);
    // Kinesis takes up to 10240, but the relay could never receive such a record.
    for refused in ["4602", "10240", "1023"] {
        let err = size(refused).unwrap_err().to_string();
        assert!(err.contains("must be between 1024 and 4601"), "{err}");
    }
}

#[test]
fn poison_split_depth_defaults_to_seven_and_zero_turns_it_off() {
    let depth = |v: &'static str| {
        source(&[("relayPoisonSplitDepth", v)]).map(|s| s.relay_poison_split_depth)
    };
    assert_eq!(source(&[]).unwrap().relay_poison_split_depth, 7);
    assert_eq!(depth("0").unwrap(), 0);
    let err = depth("15").unwrap_err().to_string();
    assert!(err.contains("must be between 0 and 14"), "{err}");
}

#[test]
fn alarms_default_to_any_error_dead_letter_or_throttle_and_ten_minutes_of_iterator_age() {
    let s = source(&[]).unwrap();
    let alarms = &s.common.alarms;
    assert_eq!(
        (alarms.email.as_deref(), alarms.period_seconds),
        (None, 300)
    );
    assert_eq!(
        alarms.thresholds,
        BTreeMap::from([
            (Key::AlarmErrorsThreshold, 0),
            (Key::AlarmDeadLetteredRecordsThreshold, 0),
            (Key::AlarmAssumeRoleFailuresThreshold, 0),
            (Key::AlarmIteratorAgeSeconds, 600),
        ])
    );
    let t = target(&[]);
    assert_eq!(
        t.common.alarms.thresholds,
        BTreeMap::from([
            (Key::AlarmErrorsThreshold, 0),
            (Key::AlarmThrottlesThreshold, 0),
        ])
    );
    let t = target(&[
        ("alarmEmail", "ops@example.com"),
        ("alarmPeriodSeconds", "120"),
        ("alarmErrorsThreshold", "1000000"),
        ("alarmThrottlesThreshold", "1000000"),
    ]);
    assert_eq!(
        t.common.alarms,
        AlarmSettings {
            email: Some("ops@example.com".into()),
            period_seconds: 120,
            thresholds: BTreeMap::from([
                (Key::AlarmErrorsThreshold, 1_000_000),
                (Key::AlarmThrottlesThreshold, 1_000_000),
            ]),
        }
    );
    let s = source(&[
        ("alarmDeadLetteredRecordsThreshold", "1000000"),
        ("alarmAssumeRoleFailuresThreshold", "1000000"),
    ])
    .unwrap();
    let alarms = &s.common.alarms;
    assert_eq!(
        alarms.threshold(Key::AlarmDeadLetteredRecordsThreshold),
        1_000_000
    );
    assert_eq!(
        alarms.threshold(Key::AlarmAssumeRoleFailuresThreshold),
        1_000_000
    );
    // A key of the other side is not read: a bad value there stops nothing, and the alarm
    // settings answer with its default.
    let s = source(&[("alarmThrottlesThreshold", "-5")]).unwrap();
    assert_eq!(s.common.alarms.threshold(Key::AlarmThrottlesThreshold), 0);
}

#[test]
fn alarm_thresholds_and_periods_are_refused_outside_what_cloudwatch_can_evaluate() {
    for (key, bad, reason) in [
        ("alarmPeriodSeconds", "59", "between 60 and 86400"),
        ("alarmPeriodSeconds", "86460", "between 60 and 86400"),
        ("alarmPeriodSeconds", "90", "a multiple of 60"),
        ("alarmPeriodSeconds", "86399", "a multiple of 60"),
        ("alarmErrorsThreshold", "1000001", "between 0 and 1000000"),
        ("alarmThrottlesThreshold", "-1", "not a whole number"),
        (
            "alarmDeadLetteredRecordsThreshold",
            "1000001",
            "between 0 and 1000000",
        ),
        ("alarmIteratorAgeSeconds", "0", "between 1 and 604800"),
        (
            "alarmAssumeRoleFailuresThreshold",
            "1000001",
            "between 0 and 1000000",
        ),
    ] {
        let err = match key {
            "alarmThrottlesThreshold" => refusal(TARGET, &[(key, bad)]),
            _ => source(&[(key, bad)]).unwrap_err().to_string(),
        };
        assert!(err.contains(reason), "{key}={bad}: {err}");
        assert!(
            err.contains(&format!("`cross-account-relay:{key}`")),
            "{err}"
        );
        assert!(err.contains("pulumi config set"), "{err}");
    }
    for good in ["60", "86400"] {
        let period = target(&[("alarmPeriodSeconds", good)])
            .common
            .alarms
            .period_seconds;
        assert_eq!(period.to_string(), good);
    }
}

#[test]
fn the_iterator_age_alarm_must_be_able_to_fire_before_records_leave_the_stream() {
    let age = |extra: &[(&'static str, &'static str)]| {
        source(extra).map(|s| s.common.alarms.threshold(Key::AlarmIteratorAgeSeconds))
    };
    assert_eq!(age(&[("alarmIteratorAgeSeconds", "1")]).unwrap(), 1);
    assert_eq!(age(&[("alarmIteratorAgeSeconds", "3599")]).unwrap(), 3599);
    let err = age(&[("alarmIteratorAgeSeconds", "3600")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("must be below 3600 s (maximumRecordAgeSeconds)"),
        "{err}"
    );
    // Without a record age limit, records stay until the stream's retention ends.
    let forever = [
        ("maximumRecordAgeSeconds", "-1"),
        ("streamRetentionHours", "24"),
    ];
    let with = |seconds: &'static str| {
        let mut extra = forever.to_vec();
        extra.push(("alarmIteratorAgeSeconds", seconds));
        age(&extra)
    };
    assert_eq!(with("86399").unwrap(), 86_399);
    let err = with("86400").unwrap_err().to_string();
    assert!(
        err.contains("must be below 86400 s (streamRetentionHours)"),
        "{err}"
    );
    assert!(
        err.contains("`cross-account-relay:alarmIteratorAgeSeconds`"),
        "{err}"
    );
    let longest = [
        ("maximumRecordAgeSeconds", "604800"),
        ("alarmIteratorAgeSeconds", "604799"),
    ];
    assert_eq!(age(&longest).unwrap(), 604_799);
}

#[test]
fn an_alarm_email_is_one_plain_address() {
    let longest_local = format!("{}@example.com", "l".repeat(64));
    let longest_label = format!("ops@{}.com", "d".repeat(63));
    // 254 characters in all: 64 + 1 + 189.
    let longest = format!(
        "{}@{}.{}.{}.com",
        "l".repeat(64),
        "a".repeat(61),
        "b".repeat(61),
        "c".repeat(61)
    );
    assert_eq!(longest.len(), 254);
    for good in [
        "ops@example.com",
        "first.last+alarms@mail.example.co.uk",
        "o'brien!#$%&*/=?^_`{|}~-x@ex-ample.org",
        "a@b.io",
        "x@1-2.example",
        &longest_local,
        &longest_label,
        &longest,
    ] {
        assert_eq!(check_email(good), Ok(()), "{good}");
    }
    let long_local = format!("{}@example.com", "l".repeat(65));
    let long_label = format!("ops@{}.com", "d".repeat(64));
    let too_long = format!("{}d.com", &longest[..longest.len() - 4]);
    assert_eq!(too_long.len(), 255);
    for bad in [
        "",
        "ops",
        "ops@",
        "@example.com",
        "ops@example",
        "ops@example.c",
        "ops@example.c0m",
        "ops@@example.com",
        "ops@ex@ample.com",
        "o ps@example.com",
        "ops@exa mple.com",
        ".ops@example.com",
        "ops.@example.com",
        "o..ps@example.com",
        "ops@.example.com",
        "ops@example..com",
        "ops@example.com.",
        "ops@-example.com",
        "ops@example-.com",
        "ops@ex_ample.com",
        "\"ops\"@example.com",
        "ops(x)@example.com",
        "ops@[192.0.2.1]",
        "öps@example.com",
        "ops@exämple.com",
        "ops@example.com,dev@example.com",
        &long_local,
        &long_label,
        &too_long,
    ] {
        let err = check_email(bad).unwrap_err();
        assert!(
            err.contains("one e-mail address like ops@example.com"),
            "{bad}: {err}"
        );
    }
    let err = refusal(TARGET, &[("alarmEmail", "ops at example.com")]);
    assert!(err.contains("`cross-account-relay:alarmEmail`"), "{err}");
    assert!(
        err.contains("pulumi config set --stack dev-target alarmEmail ops@example.com"),
        "{err}"
    );
}

#[test]
fn a_stack_is_pinned_to_its_sides_account_and_its_provider_says_the_same() {
    let provider_accounts = |raw: &RawConfig| {
        let template = crate::render(&raw.stack_config().unwrap());
        let provider = template
            .resources
            .values()
            .find(|r| r.type_token == "pulumi:providers:aws")
            .expect("an explicit aws provider");
        provider.properties["allowedAccountIds"].clone()
    };
    let target = with(TARGET, &[]);
    let source = with(TARGET, SOURCE);
    assert_eq!(
        target.pinned_account().unwrap(),
        (StackSide::Target, "222222222222".to_string())
    );
    assert_eq!(
        source.pinned_account().unwrap(),
        (StackSide::Source, "111111111111".to_string())
    );
    for raw in [&target, &source] {
        let (_, account) = raw.pinned_account().unwrap();
        assert_eq!(provider_accounts(raw), serde_json::json!([account]));
    }
    assert_eq!(StackSide::Source.name(), "source");
    assert_eq!(StackSide::Target.name(), "target");
}

#[test]
fn the_pinned_account_needs_only_the_side_and_its_account() {
    // No externalId (a secret `pulumi config --json` does not show) and no region.
    let raw = RawConfig::from_pairs(
        "t",
        &[("side", "target"), ("targetAccountId", "222222222222")],
    );
    assert_eq!(
        raw.pinned_account().unwrap(),
        (StackSide::Target, "222222222222".into())
    );
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("targetAccountId", "222222222222")],
            "missing config `cross-account-relay:side`",
        ),
        (&[("side", "both")], "must be one of source, target"),
        (
            &[("side", "source"), ("targetAccountId", "222222222222")],
            "missing config `cross-account-relay:sourceAccountId`",
        ),
        (
            &[("side", "target"), ("targetAccountId", "2222")],
            "exactly 12 digits",
        ),
    ];
    for (pairs, needle) in cases {
        let err = RawConfig::from_pairs("t", pairs)
            .pinned_account()
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{pairs:?}: {err}");
    }
}

#[test]
fn every_key_has_a_description_and_example() {
    for k in KEYS {
        assert!(
            !k.description.is_empty() && !k.example.is_empty(),
            "{}",
            k.name
        );
    }
}

/// The example stack files set what an operator chooses on purpose, not copies of defaults:
/// the one key they set at its default is `namePrefix`, the value both stacks of a pair must
/// share.
#[test]
fn the_example_stack_files_set_no_key_at_its_default() {
    for file in ["Pulumi.source.yaml", "Pulumi.target.yaml"] {
        let values = crate::stack_file::parse(&project_file(file)).unwrap();
        assert!(values.contains_key("cross-account-relay:side"), "{file}");
        for k in KEYS {
            let Some(value) = values.get(&format!("cross-account-relay:{}", k.name)) else {
                continue;
            };
            if k.key != Key::NamePrefix {
                assert_ne!(Some(value), k.default().as_ref(), "{file}: {}", k.name);
            }
        }
    }
}
