//! A target with a real side effect: each record is written to a DynamoDB table of its own
//! (`PutItem`), through the target library's [`relay_target::run`].
//!
//! Environment:
//! - `TABLE_WRITER_TABLE` ([`TABLE_VARIABLE`]): the table written to; hash key `id` (S).
//! - `IDEMPOTENCY_TABLE` and `IDEMPOTENCY_TTL_HOURS`: the library's idempotency store, as for
//!   every target (see `docs/target-library.md`); with it, a record redelivered after its write
//!   is answered from the store instead of being written again.
//! - The SDK's usual variables (region, credentials; `AWS_ENDPOINT_URL` in the local run).
//!
//! Each item: `id` (the record's idempotency key, [`relay_target::default_key`]),
//! `partition_key`, `sequence_number` and `data` (the record's bytes, B). The target role needs
//! `dynamodb:PutItem` on that table. A failed write is answered `Retry`: the relay delivers the
//! record again later.
//!
//! Build: `cargo build -p relay-target --example table_writer`.

use std::process::ExitCode;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use relay_target::{default_key, HandlerError, Record, RecordHandler, Verdict};

/// The environment variable that names the table the records are written to.
const TABLE_VARIABLE: &str = "TABLE_WRITER_TABLE";

/// Writes each record to `table` as one item.
struct TableWriter {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

#[async_trait::async_trait]
impl RecordHandler for TableWriter {
    async fn handle(&self, record: &Record) -> Result<Verdict, HandlerError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(default_key(record)))
            .item(
                "partition_key",
                AttributeValue::S(record.partition_key().to_string()),
            )
            .item(
                "sequence_number",
                AttributeValue::S(record.sequence_number().to_string()),
            )
            .item("data", AttributeValue::B(Blob::new(record.data())))
            .send()
            .await;
        Ok(match written {
            Ok(_) => Verdict::Ok,
            Err(e) => Verdict::Retry(format!(
                "PutItem to table {} failed: {}",
                self.table,
                DisplayErrorContext(e)
            )),
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let table = std::env::var(TABLE_VARIABLE).unwrap_or_default();
    if table.trim().is_empty() {
        eprintln!(
            "table_writer: set {TABLE_VARIABLE} to the name of the table to write records to"
        );
        return ExitCode::FAILURE;
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    relay_target::run(TableWriter { client, table }).await
}
