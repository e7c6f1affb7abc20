//! `relayctl`: the operator's command for a cross-account-relay deployment. It lists the dead
//! letters by kind and redrives their records to the stream, and it deploys, previews and
//! destroys the deployment's two stacks in order (`relayctl pair`).
//!
//! - [`cli`]: the command line and its `--help`.
//! - [`letter`]: one object of the bucket, read (kind, reason, age, records).
//! - [`ops`]: list and redrive, over the bucket and the stream as ports.
//! - [`bucket`]: the dead-letter bucket as a port, with its adapters: S3 (the operator's
//!   credentials) and a bucket in memory for tests. The stream is the producer crate's sink.
//! - [`output`]: what the commands print, and the progress bar.
//! - [`pair`]: both stacks through the Pulumi CLI, each with its own account's credentials.

pub mod bucket;
pub mod cli;
pub mod letter;
pub mod ops;
pub mod output;
pub mod pair;
