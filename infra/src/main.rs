//! `infra`: prints the Pulumi template of the current stack (JSON) for Pulumi's YAML runtime.
//!
//! Usage: run by Pulumi as the project's `compiler` (see Pulumi.yaml), which passes the stack
//! in `PULUMI_STACK`, `PULUMI_PROJECT` and `PULUMI_CONFIG`. Without Pulumi, `infra render` reads
//! a stack file instead; the other flags print facts other files are generated from.

use std::io::Write;
use std::process::ExitCode;

use infra::{stack_file, template::PROJECT, CompilerEnv};

const HELP: &str = "\
infra: the Pulumi program of cross-account-relay, run by `pulumi` as the YAML runtime's compiler.
With no arguments it reads PULUMI_STACK, PULUMI_PROJECT and PULUMI_CONFIG and prints the
stack's template as JSON.

  infra render --stack NAME --stack-file Pulumi.<stack>.yaml [--set KEY=VALUE]...
                         the template of a stack file, as Pulumi would compile it; KEY is
                         `key` (project namespace) or `namespace:key`, and an empty VALUE
                         removes the key (secrets, which stack files keep encrypted, come
                         in with --set)
  infra reference DIR    write the generated reference (config-keys.md, environment.md,
                         alarms.md, metrics.md, dead-letters.md) into DIR
                         (`make generate`: docs/reference)
  --pulumi-aws-version   print the pinned pulumi-aws version
  --limits               print the AWS limits the data path respects, as JSON (shared::limits)
  --dead-letter-layout   print the dead-letter bucket's key prefixes per writer, as JSON
                         (shared::dead_letter)
  --sample-effects-attributes
                         print the sample's effects table attributes by role, as JSON
                         (shared::config::SAMPLE_EFFECTS_ATTRIBUTES)
  --metric-names         print the CloudWatch metrics' namespace, dimension and names, as JSON
                         (shared::metrics)
  --envelope-example     print a relay->target request and the target's response, as the
                         shared crate serialises them (the contract's shape for other languages)
  --pulumi-yaml-config   print the `config:` block of Pulumi.yaml (generated from the program's keys)
  --config-table         print the table of configuration keys (docs/reference/config-keys.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = match args.first().map(String::as_str) {
        None => CompilerEnv::from_process(),
        Some("render") => match render_env(&args[1..]) {
            Ok(env) => env,
            Err(e) => return fail(&e, 2),
        },
        Some("reference") => {
            return match args.get(1) {
                Some(dir) if args.len() == 2 => match infra::reference::write(dir.as_ref()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(&format!("reference: {e}"), 1),
                },
                _ => fail("reference: usage: infra reference DIR (try --help)", 2),
            }
        }
        Some("--pulumi-aws-version") => return print(infra::template::PULUMI_AWS_VERSION),
        Some("--limits") => return print(&limits_json()),
        Some("--dead-letter-layout") => return print(&pairs_json(shared::dead_letter::LAYOUT)),
        Some("--sample-effects-attributes") => {
            return print(&pairs_json(shared::config::SAMPLE_EFFECTS_ATTRIBUTES))
        }
        Some("--metric-names") => return print(&pairs_json(shared::metrics::NAMES)),
        Some("--envelope-example") => return print(&envelope_example()),
        Some("--pulumi-yaml-config") => return print(&infra::config::pulumi_yaml_config_block()),
        Some("--config-table") => return print(&infra::config::config_table()),
        Some("--help" | "-h") => return print(HELP),
        Some(other) => return fail(&format!("unknown argument {other:?} (try --help)"), 2),
    };
    // The whole template is rendered before anything is written, so an error never leaves
    // half a template on stdout.
    match infra::compile(&env) {
        Ok(template) => {
            print(&serde_json::to_string_pretty(&template).expect("a template always serialises"))
        }
        Err(e) => fail(&e.to_string(), 1),
    }
}

/// What Pulumi would pass the compiler for `--stack` with `--stack-file` and `--set`s.
fn render_env(args: &[String]) -> Result<CompilerEnv, String> {
    let mut stack = None;
    let mut file = None;
    let mut sets = Vec::new();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value (try --help)"))?;
        match flag.as_str() {
            "--stack" => stack = Some(value.clone()),
            "--stack-file" => file = Some(value.clone()),
            "--set" => sets.push(value.clone()),
            other => return Err(format!("render: unknown argument {other:?} (try --help)")),
        }
    }
    let stack = stack.ok_or("render: --stack NAME is required")?;
    let file = file.ok_or("render: --stack-file PATH is required")?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("render: {file}: {e}"))?;
    let mut config = stack_file::parse(&text).map_err(|e| format!("render: {file}: {e}"))?;
    for set in sets {
        let (key, value) = set
            .split_once('=')
            .ok_or_else(|| format!("render: --set {set:?} is not KEY=VALUE"))?;
        let key = if key.contains(':') {
            key.to_string()
        } else {
            format!("{PROJECT}:{key}")
        };
        if value.is_empty() {
            config.remove(&key);
        } else {
            config.insert(key, value.to_string());
        }
    }
    Ok(CompilerEnv {
        stack: Some(stack),
        project: Some(PROJECT.to_string()),
        config: Some(serde_json::to_string(&config).expect("a map of strings serialises")),
    })
}

/// `shared::limits` as one JSON object, for the Python side (the local run and its tests).
fn limits_json() -> String {
    pairs_json(shared::limits::ALL)
}

/// `(name, value)` pairs as one JSON object.
fn pairs_json<V: Clone + Into<serde_json::Value>>(pairs: &[(&str, V)]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone().into()))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// One request with a plain record and a user record of a KPL aggregate, and one response with
/// each outcome and an answer to the user record, serialised by the shared
/// crate's own types: what another language's copy of the contract is checked against.
fn envelope_example() -> String {
    use shared::envelope::{
        DeliveryRequest, DeliveryResponse, RecordData, RecordOutcome, RecordResult, RelayedRecord,
    };
    let plain = RelayedRecord {
        sequence_number: "49650000000000000000000000000000000000000000000000000001".into(),
        sub_sequence_number: None,
        partition_key: "record-0001".into(),
        explicit_hash_key: None,
        event_id: "shardId-000000000000:49650000000000000000000000000000000000000000000000000001"
            .into(),
        approximate_arrival_ms: Some(1_764_000_000_000),
        data: RecordData::encode(br#"{"id":"record-0001"}"#),
    };
    let user = RelayedRecord {
        sequence_number: "49650000000000000000000000000000000000000000000000000002".into(),
        sub_sequence_number: Some(3),
        partition_key: "record-0002".into(),
        explicit_hash_key: Some("170141183460469231731687303715884105728".into()),
        event_id: "shardId-000000000000:49650000000000000000000000000000000000000000000000000002"
            .into(),
        approximate_arrival_ms: Some(1_764_000_000_000),
        data: RecordData::encode(br#"{"id":"record-0002"}"#),
    };
    let answer_to_user = RecordResult::answering(&user, RecordOutcome::Ok);
    let request = DeliveryRequest::new("3f9a0c2b7d1e", vec![plain, user]);
    let result = |n: &str, outcome| RecordResult {
        sequence_number: n.into(),
        sub_sequence_number: None,
        outcome,
    };
    let response = DeliveryResponse::new(vec![
        result("1", RecordOutcome::Ok),
        result(
            "2",
            RecordOutcome::Rejected {
                reason: "body is not JSON".into(),
            },
        ),
        result(
            "3",
            RecordOutcome::Retry {
                reason: "try again later".into(),
            },
        ),
    ]);
    serde_json::json!({ "request": request, "response": response, "user_record_result": answer_to_user })
        .to_string()
}

fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    match write!(out, "{text}{newline}").and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("infra: {message}");
    ExitCode::from(code)
}
