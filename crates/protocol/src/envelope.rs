use alloy::primitives::{B256, B512};
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;

use crate::{Identity, MAX_MESSAGE_SIZE, PROTOCOL_VERSION, ProtocolError, identity::peer_id_of};

/// What a signed envelope carries; part of the signed bytes, so a signature over one
/// kind can never be replayed as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MessageKind {
    /// A provider's [`crate::Offer`].
    Offer,
    /// A provider's [`crate::Heartbeat`].
    Heartbeat,
    /// A provider's [`crate::challenge::Commitment`] to a matrix-product challenge.
    ChallengeCommitment,
    /// A provider's [`crate::challenge::Opening`] of committed rows.
    ChallengeOpening,
    /// A node's [`crate::challenge::ChallengeResult`]: what it checked and concluded.
    ChallengeResult,
}

impl MessageKind {
    fn domain(self) -> &'static [u8] {
        match self {
            Self::Offer => b"gpuflow/offer/1\n",
            Self::Heartbeat => b"gpuflow/heartbeat/1\n",
            Self::ChallengeCommitment => b"gpuflow/challenge-commitment/1\n",
            Self::ChallengeOpening => b"gpuflow/challenge-opening/1\n",
            Self::ChallengeResult => b"gpuflow/challenge-result/1\n",
        }
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Offer => "offer",
            Self::Heartbeat => "heartbeat",
            Self::ChallengeCommitment => "challenge commitment",
            Self::ChallengeOpening => "challenge opening",
            Self::ChallengeResult => "challenge result",
        })
    }
}

/// A body that travels inside a [`SignedEnvelope`].
pub trait Message: Serialize + DeserializeOwned {
    /// The envelope kind of this body.
    const KIND: MessageKind;
    /// Largest encoded envelope of this kind accepted from the network, in bytes.
    const MAX_SIZE: usize = MAX_MESSAGE_SIZE;

    /// Checks the body's own rules once its signature is known to be good.
    fn validate(&self, signer: &PeerId) -> Result<(), ProtocolError>;
}

/// A signed, versioned message as it travels over gossipsub and HTTP.
///
/// The signature covers the kind's domain tag followed by the exact body bytes, which are
/// kept verbatim (`RawValue`), so re-encoding never breaks verification.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedEnvelope {
    /// Envelope format version, [`PROTOCOL_VERSION`].
    pub version: u16,
    /// What the body is.
    pub kind: MessageKind,
    /// The signer's ed25519 public key; its peer id is derived from it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: B256,
    /// ed25519 signature over the domain tag and the body.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub signature: B512,
    /// The message body, as signed.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: Box<RawValue>,
}

/// A message whose envelope signature and body rules have been checked.
#[derive(Clone, Debug)]
pub struct Verified<T> {
    /// The peer that signed it.
    pub signer: PeerId,
    /// The decoded body.
    pub body: T,
    /// The envelope it came in, to store or forward as is.
    pub envelope: SignedEnvelope,
}

impl SignedEnvelope {
    /// Signs `body` with `identity`.
    pub fn seal<T: Message>(identity: &Identity, body: &T) -> Self {
        let body = serde_json::value::to_raw_value(body).expect("message bodies serialize");
        let signature = identity.sign(&signed_bytes(T::KIND, &body));
        Self {
            version: PROTOCOL_VERSION,
            kind: T::KIND,
            public_key: identity.public_key().into(),
            signature: signature.into(),
            body,
        }
    }

    /// Encodes the envelope for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelopes serialize")
    }

    /// Decodes an envelope received from the network, refusing oversized input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > MAX_MESSAGE_SIZE {
            return Err(ProtocolError::TooLarge { size: bytes.len(), max: MAX_MESSAGE_SIZE });
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Decodes and opens an envelope of kind `T` received from the network, refusing input
    /// larger than `T`'s limit before parsing it.
    pub fn decode<T: Message>(bytes: &[u8]) -> Result<Verified<T>, ProtocolError> {
        if bytes.len() > T::MAX_SIZE {
            return Err(ProtocolError::TooLarge { size: bytes.len(), max: T::MAX_SIZE });
        }
        Self::from_bytes(bytes)?.open()
    }

    /// Verifies version, kind, size, signature and body rules, and decodes the body.
    pub fn open<T: Message>(self) -> Result<Verified<T>, ProtocolError> {
        // Envelopes that did not come through `decode` (sync answers, HTTP) still get a
        // bound: the body is always smaller than the envelope around it.
        if self.body.get().len() > T::MAX_SIZE {
            return Err(ProtocolError::TooLarge { size: self.body.get().len(), max: T::MAX_SIZE });
        }
        if self.version != PROTOCOL_VERSION {
            return Err(ProtocolError::UnsupportedVersion(self.version));
        }
        if self.kind != T::KIND {
            return Err(ProtocolError::WrongKind { expected: T::KIND, found: self.kind });
        }
        let signer = peer_id_of(&self.public_key.0)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.public_key.0)
            .map_err(|_| ProtocolError::InvalidKey)?;
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify_strict(&signed_bytes(self.kind, &self.body), &signature)
            .map_err(|_| ProtocolError::BadSignature)?;
        let body: T = serde_json::from_str(self.body.get())?;
        body.validate(&signer)?;
        Ok(Verified { signer, body, envelope: self })
    }
}

fn signed_bytes(kind: MessageKind, body: &RawValue) -> Vec<u8> {
    [kind.domain(), body.get().as_bytes()].concat()
}
