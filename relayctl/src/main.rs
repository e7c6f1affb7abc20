//! `relayctl`: reads the command line, builds the S3 and Kinesis clients once from the
//! environment's credentials (the operator's, in the source account), runs the command.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use aws_config::BehaviorVersion;
use producer::sink::KinesisSink;
use producer::{Producer, ProducerSettings};
use relayctl::aws::S3Bucket;
use relayctl::cli::{self, Command};
use relayctl::ops::{load, redrive};
use relayctl::output::{self, ProgressBar};

/// PutRecords attempts per object, and the first backoff between them (doubling).
const PUT_ATTEMPTS: u32 = 8;
const RETRY_BASE_DELAY: Duration = Duration::from_millis(200);

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("relayctl: {e}");
            return ExitCode::from(2);
        }
    };
    let (bucket, filter) = match &command {
        Command::Help => {
            println!("{}\n\n{}", cli::HELP, output::NOT_REDRIVEN.trim_end());
            return ExitCode::SUCCESS;
        }
        Command::List { bucket, filter } | Command::Redrive { bucket, filter, .. } => {
            (bucket.clone(), filter.clone())
        }
    };
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let store = S3Bucket::new(aws_sdk_s3::Client::new(&sdk), bucket);
    let now = chrono::Utc::now().timestamp();
    let (letters, unreadable) = match load(&store, &filter, now).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("relayctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Command::Redrive {
        stream, dry_run, ..
    } = command
    else {
        print!("{}", output::listing(&letters, &unreadable, now));
        return ExitCode::SUCCESS;
    };
    if dry_run {
        print!("{}", output::plan(&letters, &unreadable));
        return ExitCode::SUCCESS;
    }
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(&sdk), stream.clone());
    let settings = ProducerSettings {
        stream,
        records_per_invocation: 1,
        padding_bytes: 0,
        max_put_attempts: PUT_ATTEMPTS,
        retry_base_delay: RETRY_BASE_DELAY,
    };
    let stderr = std::io::stderr();
    let mut bar = ProgressBar::new(stderr.lock(), letters.len(), stderr.is_terminal());
    let report = redrive(
        &letters,
        &store,
        &Producer::new(sink, settings),
        |done, r| bar.update(done, r),
    )
    .await;
    print!("{}", output::summary(&report, &unreadable));
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
