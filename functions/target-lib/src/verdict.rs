//! The handler's answer for one record.

/// The handler's answer for one record.
///
/// - `Ok`: processed; the relay checkpoints it.
/// - `Rejected(reason)`: permanently invalid, retrying cannot help; the relay writes it to the
///   dead-letter bucket with the reason.
/// - `Retry(reason)`: not processed now; the relay delivers it again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Processed.
    Ok,
    /// Permanently invalid, with the reason the dead letter carries.
    Rejected(String),
    /// Not processed now, with the reason the logs carry; delivered again later.
    Retry(String),
}
