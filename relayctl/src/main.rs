//! `relayctl`: reads the command line and runs the command. `list` and `redrive` build the S3
//! and Kinesis clients once from the environment's credentials (the operator's, in the source
//! account); `pair` drives the Pulumi CLI with each stack's own credentials.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use aws_config::BehaviorVersion;
use producer::sink::KinesisSink;
use producer::{Producer, ProducerSettings};
use relayctl::bucket::S3Bucket;
use relayctl::cli::{self, Command};
use relayctl::ops::{load, redrive, Filter};
use relayctl::output::{self, ProgressBar};
use relayctl::pair::args::PairArgs;
use relayctl::pair::pulumi::Cli;
use relayctl::pair::run::{project_dir, run, Context};
use relayctl::pair::sts::StsAccounts;

/// PutRecords attempts per object, and the first backoff between them (doubling).
const PUT_ATTEMPTS: u32 = 8;
const RETRY_BASE_DELAY: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("relayctl: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{}\n\n{}", cli::help(), output::NOT_REDRIVEN.trim_end());
            ExitCode::SUCCESS
        }
        Command::Pair(pair) => pair_command(&pair),
        Command::List { bucket, filter } => dead_letters(bucket, filter, None),
        Command::Redrive {
            bucket,
            stream,
            dry_run,
            filter,
        } => dead_letters(bucket, filter, Some((stream, dry_run))),
    }
}

fn pair_command(args: &PairArgs) -> ExitCode {
    let present = |name: &str| std::env::var_os(name).is_some();
    let ambient_backend = std::env::var("PULUMI_BACKEND_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let accounts = match StsAccounts::new() {
        Ok(accounts) => accounts,
        Err(e) => {
            eprintln!("relayctl: could not start the STS client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let mut pulumi = Cli::new("pulumi", &cwd);
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    let context = Context {
        pulumi: &mut pulumi,
        accounts: &accounts,
        out: &mut out,
        terminal,
        present: &present,
        ambient_backend,
        project: project_dir(&cwd),
        temp_dir: std::env::temp_dir(),
    };
    match run(args, context) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relayctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `list`, or `redrive` when `redrive` holds the stream and the dry-run flag.
fn dead_letters(bucket: String, filter: Filter, redrive_to: Option<(String, bool)>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(dead_letters_async(bucket, filter, redrive_to)),
        Err(e) => {
            eprintln!("relayctl: could not start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dead_letters_async(
    bucket: String,
    filter: Filter,
    redrive_to: Option<(String, bool)>,
) -> ExitCode {
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
    let Some((stream, dry_run)) = redrive_to else {
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
        // Redrive writes each dead letter's records one by one (`Producer::write`), never as
        // aggregates: the producer's own records are not built here.
        aggregation: false,
        // Whatever a stream of the project may take: Kinesis refuses more than the stream's own.
        max_record_bytes: shared::limits::LAMBDA_CONSUMER_MAX_RECORD_BYTES,
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
