use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::{MAX_GPUS, MessageKind, ProtocolError, envelope::Message, offer::check_text};

/// Largest encoded heartbeat envelope accepted from the network, in bytes. Heartbeats are
/// frequent, so they get a much smaller budget than offers: sixteen GPUs need about 3 KiB.
pub const MAX_HEARTBEAT_SIZE: usize = 8 * 1024;
/// Hottest temperature a heartbeat may report, in °C; anything above is a broken sensor.
pub const MAX_TEMPERATURE_C: u32 = 200;
/// Most rentals one heartbeat may report as active.
pub const MAX_ACTIVE_RENTALS: u32 = 1024;
/// Longest maintenance window one heartbeat may announce, seconds (a week).
pub const MAX_MAINTENANCE_SECS: u64 = 7 * 24 * 3600;
/// Furthest ahead of its heartbeat a maintenance window may end, seconds (30 days).
pub const MAX_MAINTENANCE_AHEAD: u64 = 30 * 24 * 3600;

/// A provider's signed liveness report, published on `gpuflow/heartbeats/1` every ~15 s.
///
/// It is bound to the provider's peer id by the envelope signature, like its offer; `seq`
/// orders the heartbeats of one peer, so a replayed or reordered heartbeat is ignored.
///
/// ```
/// # use gpuflow_protocol::{GpuHealth, Heartbeat, Identity, SignedEnvelope, unix_now};
/// let identity = Identity::generate();
/// let heartbeat = Heartbeat {
///     seq: 1,
///     issued_at: unix_now(),
///     gpus: vec![GpuHealth {
///         uuid: "GPU-1".into(),
///         temperature_c: 41,
///         utilization_pct: 0,
///         memory_used_bytes: 0,
///         ecc_errors: None,
///     }],
///     active_rentals: 0,
///     listen_addrs: vec!["/ip4/203.0.113.7/tcp/4001".into()],
///     maintenance: None,
/// };
/// let envelope = SignedEnvelope::seal(&identity, &heartbeat);
/// // network.publish_heartbeat(&envelope).await?;
/// # assert_eq!(envelope.open::<Heartbeat>().unwrap().body, heartbeat);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Increases with every heartbeat of this peer (the agent uses Unix milliseconds, which
    /// stay monotonic across restarts).
    pub seq: u64,
    /// Unix time the heartbeat was signed.
    pub issued_at: u64,
    /// Health of each GPU of the machine, as read through NVML.
    pub gpus: Vec<GpuHealth>,
    /// Rentals the provider is serving right now.
    pub active_rentals: u32,
    /// Multiaddrs where the provider answers `/gpuflow/rental/1` now. A machine whose every
    /// GPU is rented publishes no offer, so this is how renters find it again after it
    /// restarted on another address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen_addrs: Vec<String>,
    /// A maintenance window the provider announces (`gpuflow-provider maintenance`):
    /// nodes do not count the machine down during the part of it they heard about before
    /// it began, as long as it is not rented; it takes no rentals that would run into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
}

/// A maintenance window, unix seconds, `[from, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Maintenance {
    /// When it begins.
    pub from: u64,
    /// When it ends.
    pub until: u64,
}

/// One GPU's health at the time of a [`Heartbeat`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuHealth {
    /// NVML UUID, the same as in the provider's offer.
    pub uuid: String,
    /// Core temperature in °C.
    pub temperature_c: u32,
    /// Utilisation over the last sample period, 0 to 100.
    pub utilization_pct: u8,
    /// Memory in use, in bytes.
    pub memory_used_bytes: u64,
    /// Uncorrected ECC errors since the driver loaded; absent where ECC is off or unsupported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_errors: Option<u64>,
}

impl Message for Heartbeat {
    const KIND: MessageKind = MessageKind::Heartbeat;
    const MAX_SIZE: usize = MAX_HEARTBEAT_SIZE;

    fn validate(&self, signer: &PeerId) -> Result<(), ProtocolError> {
        if self.gpus.len() > MAX_GPUS {
            return Err(ProtocolError::field("gpus", format!("at most {MAX_GPUS} GPUs")));
        }
        for gpu in &self.gpus {
            check_text("gpus.uuid", &gpu.uuid)?;
            if gpu.uuid.is_empty() {
                return Err(ProtocolError::field("gpus.uuid", "must not be empty"));
            }
            if gpu.temperature_c > MAX_TEMPERATURE_C {
                return Err(ProtocolError::field(
                    "gpus.temperature_c",
                    format!("at most {MAX_TEMPERATURE_C}"),
                ));
            }
            if gpu.utilization_pct > 100 {
                return Err(ProtocolError::field("gpus.utilization_pct", "at most 100"));
            }
        }
        let mut uuids: Vec<_> = self.gpus.iter().map(|g| &g.uuid).collect();
        uuids.sort();
        if uuids.windows(2).any(|w| w[0] == w[1]) {
            return Err(ProtocolError::field("gpus.uuid", "the same GPU is listed twice"));
        }
        if self.active_rentals > MAX_ACTIVE_RENTALS {
            return Err(ProtocolError::field(
                "active_rentals",
                format!("at most {MAX_ACTIVE_RENTALS}"),
            ));
        }
        crate::offer::check_listen_addrs(&self.listen_addrs, signer)?;
        if let Some(Maintenance { from, until }) = self.maintenance {
            if until <= from || until - from > MAX_MAINTENANCE_SECS {
                return Err(ProtocolError::field(
                    "maintenance",
                    format!("must end after it begins and last at most {MAX_MAINTENANCE_SECS} s"),
                ));
            }
            if until > self.issued_at.saturating_add(MAX_MAINTENANCE_AHEAD) {
                return Err(ProtocolError::field(
                    "maintenance",
                    format!("must end within {MAX_MAINTENANCE_AHEAD} s of the heartbeat"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, Offer, SignedEnvelope};

    fn sample() -> Heartbeat {
        Heartbeat {
            seq: 7,
            issued_at: 1_000,
            gpus: (0..2)
                .map(|i| GpuHealth {
                    uuid: format!("GPU-{i}"),
                    temperature_c: 60,
                    utilization_pct: 95,
                    memory_used_bytes: 20_000_000_000,
                    ecc_errors: (i == 0).then_some(0),
                })
                .collect(),
            active_rentals: 1,
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            maintenance: None,
        }
    }

    fn roundtrip(envelope: &SignedEnvelope) -> Result<Heartbeat, ProtocolError> {
        SignedEnvelope::decode::<Heartbeat>(&envelope.to_bytes()).map(|v| v.body)
    }

    #[test]
    fn signed_heartbeat_verifies() {
        let identity = Identity::generate();
        let envelope = SignedEnvelope::seal(&identity, &sample());
        let opened = SignedEnvelope::decode::<Heartbeat>(&envelope.to_bytes()).unwrap();
        assert_eq!(opened.body, sample());
        assert_eq!(opened.signer, identity.peer_id());
    }

    #[test]
    fn absent_ecc_counters_are_omitted_and_default() {
        let json = serde_json::to_string(&sample().gpus[1]).unwrap();
        assert!(!json.contains("ecc_errors"), "{json}");
        let parsed: GpuHealth = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.ecc_errors, None);
    }

    #[test]
    fn tampered_or_resigned_heartbeats_are_rejected() {
        let identity = Identity::generate();
        let envelope = SignedEnvelope::seal(&identity, &sample());
        let forged =
            String::from_utf8(envelope.to_bytes()).unwrap().replace("\"seq\":7", "\"seq\":8");
        assert!(matches!(
            SignedEnvelope::decode::<Heartbeat>(forged.as_bytes()),
            Err(ProtocolError::BadSignature)
        ));
        let mut stolen = envelope;
        stolen.public_key = Identity::generate().public_key().into();
        assert!(matches!(roundtrip(&stolen), Err(ProtocolError::BadSignature)));
    }

    #[test]
    fn a_maintenance_window_is_bounded() {
        let signer = Identity::generate().peer_id();
        let with =
            |from, until| Heartbeat { maintenance: Some(Maintenance { from, until }), ..sample() };
        assert!(with(2_000, 2_000 + 3600).validate(&signer).is_ok());
        for (from, until) in [(2_000, 2_000), (3_000, 2_000), (2_000, 2_001 + MAX_MAINTENANCE_SECS)]
        {
            let error = with(from, until).validate(&signer).unwrap_err().to_string();
            assert!(error.contains("maintenance"), "{error}");
        }
        let far = 1_000 + MAX_MAINTENANCE_AHEAD;
        assert!(with(far - 10, far + 1).validate(&signer).is_err(), "ends too far ahead");
        // Absent from older agents' heartbeats, and from the bytes of one without it.
        let text = serde_json::to_string(&sample()).unwrap();
        assert!(!text.contains("maintenance"));
    }

    #[test]
    fn a_heartbeat_signature_is_not_an_offer_signature() {
        let identity = Identity::generate();
        let mut envelope = SignedEnvelope::seal(&identity, &sample());
        assert!(matches!(
            envelope.clone().open::<Offer>(),
            Err(ProtocolError::WrongKind { expected: MessageKind::Offer, .. })
        ));
        // Relabelling the kind breaks the signature: the domain tag is signed.
        envelope.kind = MessageKind::Offer;
        assert!(matches!(envelope.open::<Offer>(), Err(ProtocolError::BadSignature)));
    }

    #[test]
    fn field_rules_are_enforced() {
        let identity = Identity::generate();
        type Mutation = Box<dyn Fn(&mut Heartbeat)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("gpus", Box::new(|h| h.gpus = vec![h.gpus[0].clone(); MAX_GPUS + 1])),
            ("gpus.uuid", Box::new(|h| h.gpus[1].uuid = h.gpus[0].uuid.clone())),
            ("gpus.uuid", Box::new(|h| h.gpus[0].uuid.clear())),
            ("gpus.uuid", Box::new(|h| h.gpus[0].uuid = "GPU\n1".into())),
            ("gpus.temperature_c", Box::new(|h| h.gpus[0].temperature_c = MAX_TEMPERATURE_C + 1)),
            ("gpus.utilization_pct", Box::new(|h| h.gpus[0].utilization_pct = 101)),
            ("active_rentals", Box::new(|h| h.active_rentals = MAX_ACTIVE_RENTALS + 1)),
            ("listen_addrs", Box::new(|h| h.listen_addrs = vec![h.listen_addrs[0].clone(); 9])),
            (
                "listen_addrs",
                Box::new(|h| h.listen_addrs[0] = "/dns/".to_owned() + &"a".repeat(400)),
            ),
        ];
        for (field, mutate) in cases {
            let mut heartbeat = sample();
            mutate(&mut heartbeat);
            match roundtrip(&SignedEnvelope::seal(&identity, &heartbeat)) {
                Err(ProtocolError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidField, got {other:?}"),
            }
        }
        let idle =
            Heartbeat { gpus: Vec::new(), active_rentals: 0, listen_addrs: Vec::new(), ..sample() };
        assert!(roundtrip(&SignedEnvelope::seal(&identity, &idle)).is_ok());
    }

    #[test]
    fn oversized_heartbeats_are_rejected_before_parsing() {
        let identity = Identity::generate();
        let envelope = SignedEnvelope::seal(&identity, &sample());
        let mut bytes = envelope.to_bytes();
        bytes.resize(MAX_HEARTBEAT_SIZE + 1, b' ');
        assert!(matches!(
            SignedEnvelope::decode::<Heartbeat>(&bytes),
            Err(ProtocolError::TooLarge { max: MAX_HEARTBEAT_SIZE, .. })
        ));
        // The same bytes are a fine size for an offer: limits are per kind.
        assert!(bytes.len() < crate::MAX_MESSAGE_SIZE);

        // A body past the limit is refused by `open` too, for envelopes that did not come
        // through `decode` (sync answers, HTTP).
        let mut big = sample();
        big.gpus[0].uuid = "x".repeat(100);
        while serde_json::to_vec(&big).unwrap().len() <= MAX_HEARTBEAT_SIZE {
            let mut gpu = big.gpus[0].clone();
            gpu.uuid = format!("GPU-{}", big.gpus.len());
            big.gpus.push(gpu);
        }
        let sealed = SignedEnvelope::seal(&identity, &big);
        assert!(matches!(sealed.open::<Heartbeat>(), Err(ProtocolError::TooLarge { .. })));
    }
}
