//! The smallest target: every record is answered `ok`. A target of one's own is this file as
//! its binary's `src/main.rs` (see docs/target-library.md), built for Lambda with
//! `cargo lambda build --release --arm64`.

use std::process::ExitCode;

use relay_target::{HandlerError, Record, RecordHandler, Verdict};

/// Accepts every record.
struct AcceptAll;

#[async_trait::async_trait]
impl RecordHandler for AcceptAll {
    async fn handle(&self, record: &Record) -> Result<Verdict, HandlerError> {
        tracing::debug!(bytes = record.data().len(), "accepted");
        Ok(Verdict::Ok)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    relay_target::run(AcceptAll).await
}
