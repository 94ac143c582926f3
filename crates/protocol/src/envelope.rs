use alloy::primitives::{B256, B512};
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;

use crate::{
    Identity, MAX_MESSAGE_SIZE, OfferId, PROTOCOL_VERSION, ProtocolError, batch,
    identity::peer_id_of_bytes,
};

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

    /// What an offer envelope claims before anything is checked: the id of the offer of
    /// the key it names, and its body's `seq`; `None` when it is not an offer or has no
    /// `seq`. Only for skipping work on offers already held at that `seq` or a later one:
    /// nothing here is verified.
    pub fn claimed_offer(&self) -> Option<(OfferId, u64)> {
        #[derive(Deserialize)]
        struct Seq {
            seq: u64,
        }
        if self.kind != MessageKind::Offer {
            return None;
        }
        let Seq { seq } = serde_json::from_str(self.body.get()).ok()?;
        Some((OfferId::of(&peer_id_of_bytes(&self.public_key.0)), seq))
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
        Unchecked::<T>::decode(bytes)?.open()
    }

    /// Verifies version, kind, size, signature and body rules, and decodes the body.
    pub fn open<T: Message>(self) -> Result<Verified<T>, ProtocolError> {
        Unchecked::<T>::of(self)?.open()
    }

    /// Decodes and opens many envelopes of kind `T` received from the network, like
    /// [`SignedEnvelope::decode`] on each, results in order; the signatures are verified
    /// together (ed25519 batch verification, `crate::batch`, several times as fast as one
    /// by one).
    ///
    /// Every message gets the verdict `decode` gives it: a batch that fails is verified one
    /// by one, so a bad signature costs only its own message. The batch equation is
    /// cofactorless, like [`ed25519_dalek::VerifyingKey::verify_strict`], and what
    /// `verify_strict` refuses before its equation (small-order keys and nonces,
    /// non-canonical scalars and nonces) is verified alone. One difference is left: a
    /// signature whose only fault is a mixed-order component, which only the key's owner
    /// can make, passes a batch with a chance of at most 1 in 8; it then accepts that
    /// signer's own message, never a forgery under someone else's key.
    pub fn decode_batch<T: Message>(
        messages: &[impl AsRef<[u8]>],
    ) -> Vec<Result<Verified<T>, ProtocolError>> {
        verify_together(messages.iter().map(|bytes| Unchecked::decode(bytes.as_ref())).collect())
    }

    /// Opens many envelopes of kind `T` that arrived already parsed (a sync page), like
    /// [`SignedEnvelope::open`] on each, results in order, with the signatures verified
    /// together as by [`SignedEnvelope::decode_batch`].
    pub fn open_batch<T: Message>(
        envelopes: Vec<SignedEnvelope>,
    ) -> Vec<Result<Verified<T>, ProtocolError>> {
        verify_together(envelopes.into_iter().map(Unchecked::of).collect())
    }
}

/// Verifies the signatures of envelopes checked up to them in one batch and finishes each
/// (see [`SignedEnvelope::decode_batch`]).
fn verify_together<T: Message>(
    mut checked: Vec<Result<Unchecked<T>, ProtocolError>>,
) -> Vec<Result<Verified<T>, ProtocolError>> {
    // What a batch cannot judge as `verify_strict` would is verified alone, once; the
    // rest go into the batch.
    let mut batched = Vec::new();
    for (i, entry) in checked.iter_mut().enumerate() {
        let Ok(unchecked) = entry else { continue };
        match unchecked.prepared() {
            Some(prepared) => batched.push((i, prepared)),
            None => {
                if let Err(error) = unchecked.verify_alone() {
                    *entry = Err(error);
                }
            }
        }
    }
    let batch: Vec<&batch::Prepared> = batched.iter().map(|(_, prepared)| prepared).collect();
    if !batch::holds(&batch) {
        // Find the bad ones: each is refused with the reason `open` gives it.
        for (i, _) in &batched {
            if let Ok(unchecked) = &checked[*i]
                && let Err(error) = unchecked.verify_alone()
            {
                checked[*i] = Err(error);
            }
        }
    }
    checked.into_iter().map(|entry| entry.and_then(Unchecked::finish)).collect()
}

/// An envelope of kind `T` whose size, version, kind and key are checked, its signature
/// not yet.
struct Unchecked<T> {
    envelope: SignedEnvelope,
    signer: PeerId,
    key: ed25519_dalek::VerifyingKey,
    signature: ed25519_dalek::Signature,
    signed: Vec<u8>,
    kind: std::marker::PhantomData<T>,
}

impl<T: Message> Unchecked<T> {
    /// An envelope received from the network: input larger than `T`'s limit is refused
    /// before it is parsed, then [`Unchecked::of`] checks it.
    fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > T::MAX_SIZE {
            return Err(ProtocolError::TooLarge { size: bytes.len(), max: T::MAX_SIZE });
        }
        Self::of(SignedEnvelope::from_bytes(bytes)?)
    }

    /// The checks [`SignedEnvelope::open`] makes before the signature, in its order.
    fn of(envelope: SignedEnvelope) -> Result<Self, ProtocolError> {
        // Envelopes that did not come through `decode` (sync answers, HTTP) still get a
        // bound: the body is always smaller than the envelope around it.
        let body = envelope.body.get().len();
        if body > T::MAX_SIZE {
            return Err(ProtocolError::TooLarge { size: body, max: T::MAX_SIZE });
        }
        if envelope.version != PROTOCOL_VERSION {
            return Err(ProtocolError::UnsupportedVersion(envelope.version));
        }
        if envelope.kind != T::KIND {
            return Err(ProtocolError::WrongKind { expected: T::KIND, found: envelope.kind });
        }
        let (key, signer) =
            crate::keys::signer(&envelope.public_key.0).ok_or(ProtocolError::InvalidKey)?;
        let signature = ed25519_dalek::Signature::from_bytes(&envelope.signature.0);
        let signed = signed_bytes(envelope.kind, &envelope.body);
        Ok(Self { envelope, signer, key, signature, signed, kind: std::marker::PhantomData })
    }

    /// The signature taken apart for a batch, or `None` when a batch could not judge it as
    /// `verify_strict` would ([`batch::Prepared::new`]).
    fn prepared(&self) -> Option<batch::Prepared> {
        batch::Prepared::new(&self.key, &self.signature, &self.signed)
    }

    fn verify_alone(&self) -> Result<(), ProtocolError> {
        self.key
            .verify_strict(&self.signed, &self.signature)
            .map_err(|_| ProtocolError::BadSignature)
    }

    /// Verifies the signature alone, then decodes the body and checks its rules.
    fn open(self) -> Result<Verified<T>, ProtocolError> {
        self.verify_alone()?;
        self.finish()
    }

    /// Decodes the body and checks its rules, once the signature is known to be good.
    fn finish(self) -> Result<Verified<T>, ProtocolError> {
        let body: T = serde_json::from_str(self.envelope.body.get())?;
        body.validate(&self.signer)?;
        Ok(Verified { signer: self.signer, body, envelope: self.envelope })
    }
}

fn signed_bytes(kind: MessageKind, body: &RawValue) -> Vec<u8> {
    [kind.domain(), body.get().as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Heartbeat, Identity};

    fn heartbeat(identity: &Identity, seq: u64) -> SignedEnvelope {
        let body = Heartbeat {
            seq,
            issued_at: 1_700_000_000,
            gpus: Vec::new(),
            active_rentals: 0,
            listen_addrs: Vec::new(),
            maintenance: None,
        };
        SignedEnvelope::seal(identity, &body)
    }

    fn reasons(checked: &[Result<Verified<Heartbeat>, ProtocolError>]) -> Vec<&'static str> {
        checked.iter().map(|c| c.as_ref().map_or_else(|e| e.reason(), |_| "ok")).collect()
    }

    #[test]
    fn a_forged_signature_in_a_batch_refuses_that_message_alone() {
        let identities: Vec<Identity> =
            (0..9).map(|i| Identity::from_secret([i + 1; 32])).collect();
        let mut envelopes: Vec<SignedEnvelope> =
            identities.iter().enumerate().map(|(i, id)| heartbeat(id, i as u64 + 1)).collect();
        // The middle one carries a body its key signed, under the signature of another.
        let forged = heartbeat(&identities[4], 99);
        envelopes[4].body = forged.body;
        let bytes: Vec<Vec<u8>> = envelopes.iter().map(SignedEnvelope::to_bytes).collect();
        let checked = SignedEnvelope::decode_batch::<Heartbeat>(&bytes);
        let mut expected = vec!["ok"; 9];
        expected[4] = "bad_signature";
        assert_eq!(reasons(&checked), expected);
        for (i, checked) in checked.iter().enumerate().filter(|(i, _)| *i != 4) {
            let verified = checked.as_ref().unwrap();
            assert_eq!(verified.signer, identities[i].peer_id());
            assert_eq!(verified.body.seq, i as u64 + 1);
        }
        // One by one says the same.
        let alone: Vec<_> = bytes.iter().map(|b| SignedEnvelope::decode::<Heartbeat>(b)).collect();
        assert_eq!(reasons(&alone), expected);
    }

    #[test]
    fn a_batch_refuses_bad_keys_and_envelopes_with_the_reasons_of_one_by_one() {
        let identity = Identity::from_secret([7; 32]);
        let good = heartbeat(&identity, 1);
        // Not the key that signed.
        let mut not_a_key = heartbeat(&identity, 2);
        not_a_key.public_key = B256::from([0xff; 32]);
        // A small-order point: a key that `verify_strict` refuses.
        let mut weak_key = heartbeat(&identity, 3);
        weak_key.public_key = B256::from({
            let mut identity_point = [0u8; 32];
            identity_point[0] = 1;
            identity_point
        });
        let mut wrong_version = heartbeat(&identity, 4);
        wrong_version.version += 1;
        let messages: Vec<Vec<u8>> = [good, not_a_key, weak_key, wrong_version]
            .iter()
            .map(SignedEnvelope::to_bytes)
            .chain([b"{".to_vec(), vec![b' '; Heartbeat::MAX_SIZE + 1]])
            .collect();
        let batch = SignedEnvelope::decode_batch::<Heartbeat>(&messages);
        let alone: Vec<_> =
            messages.iter().map(|b| SignedEnvelope::decode::<Heartbeat>(b)).collect();
        assert_eq!(reasons(&batch), reasons(&alone));
        assert_eq!(reasons(&batch)[0], "ok");
        assert_ne!(reasons(&batch)[1], "ok");
        assert_ne!(reasons(&batch)[2], "ok");
        assert_eq!(reasons(&batch)[5], "too_large");
    }
}
