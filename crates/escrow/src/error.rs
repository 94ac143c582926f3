//! What can go wrong talking to the escrow, typed so callers choose what to do (and which
//! exit code to end with) without reading the message.

/// Failures talking to the escrow.
#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    /// The contract or token refused the call; the message says why in plain words.
    #[error("{action} was refused: {reason}")]
    Reverted {
        /// What was attempted, e.g. `opening the rental`.
        action: &'static str,
        /// The decoded revert reason.
        reason: String,
    },
    /// The contract refused the call because the rental it names does not exist.
    #[error("{action} was refused: {reason}")]
    NotFound {
        /// What was attempted.
        action: &'static str,
        /// The decoded revert reason, naming the rental.
        reason: String,
    },
    /// The chain could not be reached or answered with an error.
    #[error("{action} failed: {reason}")]
    Rpc {
        /// What was attempted.
        action: &'static str,
        /// The transport's error.
        reason: String,
    },
    /// The transaction was mined but failed.
    #[error("{action}: transaction {tx} was mined but reverted")]
    Failed {
        /// What was attempted.
        action: &'static str,
        /// Hash of the failed transaction.
        tx: alloy::primitives::TxHash,
    },
    /// The transaction was sent but its receipt did not come: it may still be mined.
    #[error(
        "{action}: transaction {tx} was sent but not confirmed ({reason}); it may still be \
         mined, so check its outcome (`gpuflow rentals`, `gpuflow status ID`, or a block \
         explorer) before sending it again"
    )]
    Unconfirmed {
        /// What was attempted.
        action: &'static str,
        /// Hash of the sent transaction.
        tx: alloy::primitives::TxHash,
        /// Why no receipt came (a timeout or a transport error).
        reason: String,
    },
    /// A successful transaction did not emit the expected event.
    #[error("{action}: transaction {tx} succeeded without the expected {event} event")]
    MissingEvent {
        /// What was attempted.
        action: &'static str,
        /// Hash of the transaction.
        tx: alloy::primitives::TxHash,
        /// The event that was expected.
        event: &'static str,
    },
    /// A value does not fit the contract's types.
    #[error("{0}")]
    OutOfRange(String),
}
