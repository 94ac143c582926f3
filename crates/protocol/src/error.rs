use crate::MessageKind;

/// Why a message from the network was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The encoded message is larger than [`crate::MAX_MESSAGE_SIZE`].
    #[error("message is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size of the refused message.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The message or its body is not valid JSON of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The envelope version is not one this build understands.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// The envelope carries a different kind of message than expected.
    #[error("expected a {expected} message, got a {found} message")]
    WrongKind {
        /// Kind the receiver asked for.
        expected: MessageKind,
        /// Kind found in the envelope.
        found: MessageKind,
    },
    /// The public key is not a valid ed25519 key.
    #[error("invalid public key")]
    InvalidKey,
    /// The signature does not verify against the body and public key.
    #[error("bad signature")]
    BadSignature,
    /// The payout address is not bound to the sender's peer id.
    #[error("payout address {0} did not sign this peer id")]
    BadPayoutBinding(alloy::primitives::Address),
    /// A listen address names another peer (`/p2p/ID`), so the offer's machine could never
    /// be rented there: dialing it checks that the peer answering is the signer.
    #[error("listen address {0} names another peer than the offer's signer")]
    ForeignListenAddr(String),
    /// A field of the body is out of its allowed range.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// Name of the offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl ProtocolError {
    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField { field, reason: reason.into() }
    }

    /// A short, stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed(_) => "malformed",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::WrongKind { .. } => "wrong_kind",
            Self::InvalidKey => "invalid_key",
            Self::BadSignature => "bad_signature",
            Self::BadPayoutBinding(_) => "bad_payout_binding",
            Self::ForeignListenAddr(_) => "foreign_listen_addr",
            Self::InvalidField { .. } => "invalid_field",
        }
    }
}
