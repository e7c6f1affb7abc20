//! Drives a [`DynamoDbStore`] from standard input, one JSON command a line, and prints one JSON
//! answer a line: the end-to-end test (`tests/e2e/test_idempotency_store.py`) and the benchmark
//! (`bench/idempotency.py`) run it against the local moto server.
//!
//! The table is named by `IDEMPOTENCY_TABLE`; the endpoint, region and credentials come from the
//! SDK's environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...).
//!
//! Commands:
//! - `{"op": "schema"}` answers `{"key_attribute": "..", "ttl_attribute": ".."}`: the table's hash
//!   key and TTL attribute (`shared::config`), for whoever creates the table
//! - `{"op": "claim", "keys": [..], "owner": "..", "now": 0, "expires_at": 0}` answers
//!   `{"claims": ["claimed" | "in_progress" | "completed:ok" | "completed:rejected:<reason>", ..]}`
//! - `{"op": "complete", "owner": "..", "completed": [["key", "ok" | "rejected:<reason>" |
//!   "retry:<reason>"], ..], "released": [..], "keep_until": 0}` answers
//!   `{"lost_claims": [..]}`
//!
//! Every answer also carries `round_trips` (the requests that command sent) and `ms` (its wall
//! time). A command that fails answers `{"error": ".."}`; a line that is not a command ends the
//! program with exit code 2.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

use relay_target::idempotency::dynamodb::DynamoDbStore;
use relay_target::{Claim, IdempotencyStore, Verdict};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::{IDEMPOTENCY_KEY_ATTRIBUTE, IDEMPOTENCY_TABLE, IDEMPOTENCY_TTL_ATTRIBUTE};

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Command {
    Schema,
    Claim {
        keys: Vec<String>,
        owner: String,
        now: i64,
        expires_at: i64,
    },
    Complete {
        owner: String,
        completed: Vec<(String, String)>,
        released: Vec<String>,
        keep_until: i64,
    },
}

fn claim_word(claim: &Claim) -> String {
    match claim {
        Claim::Claimed => "claimed".into(),
        Claim::InProgress => "in_progress".into(),
        Claim::Completed(Verdict::Ok) => "completed:ok".into(),
        Claim::Completed(Verdict::Rejected(reason)) => format!("completed:rejected:{reason}"),
        Claim::Completed(Verdict::Retry(reason)) => format!("completed:retry:{reason}"),
    }
}

fn verdict(word: &str) -> Result<Verdict, String> {
    match word.split_once(':') {
        None if word == "ok" => Ok(Verdict::Ok),
        Some(("rejected", reason)) => Ok(Verdict::Rejected(reason.into())),
        Some(("retry", reason)) => Ok(Verdict::Retry(reason.into())),
        _ => Err(format!(
            "verdict {word:?}: expected \"ok\", \"rejected:<reason>\" or \"retry:<reason>\""
        )),
    }
}

async fn answer(store: &DynamoDbStore, command: Command) -> Value {
    let before = store.round_trips();
    let started = Instant::now();
    let mut answer = match command {
        Command::Schema => json!({
            "key_attribute": IDEMPOTENCY_KEY_ATTRIBUTE,
            "ttl_attribute": IDEMPOTENCY_TTL_ATTRIBUTE,
        }),
        Command::Claim {
            keys,
            owner,
            now,
            expires_at,
        } => match store.claim(&keys, &owner, now, expires_at).await {
            Ok(claims) => json!({"claims": claims.iter().map(claim_word).collect::<Vec<_>>()}),
            Err(e) => json!({"error": e.to_string()}),
        },
        Command::Complete {
            owner,
            completed,
            released,
            keep_until,
        } => {
            let completed: Result<Vec<(String, Verdict)>, String> = completed
                .into_iter()
                .map(|(key, word)| Ok((key, verdict(&word)?)))
                .collect();
            match completed {
                Err(problem) => json!({"error": problem}),
                Ok(completed) => match store
                    .complete(&owner, &completed, &released, keep_until)
                    .await
                {
                    Ok(completion) => json!({"lost_claims": completion.lost_claims}),
                    Err(e) => json!({"error": e.to_string()}),
                },
            }
        }
    };
    answer["round_trips"] = json!(store.round_trips() - before);
    answer["ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
    answer
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let table = std::env::var(IDEMPOTENCY_TABLE).unwrap_or_default();
    if table.is_empty() {
        eprintln!("store_check: set {IDEMPOTENCY_TABLE} to the idempotency table's name");
        return ExitCode::from(2);
    }
    let store = DynamoDbStore::from_env(table).await;
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("store_check: reading standard input: {e}");
                return ExitCode::from(2);
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let command: Command = match serde_json::from_str(&line) {
            Ok(command) => command,
            Err(e) => {
                eprintln!("store_check: {line:?} is not a command: {e}");
                return ExitCode::from(2);
            }
        };
        let answer = answer(&store, command).await;
        let mut out = stdout.lock();
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
