//! Talking to a provider directly over `/gpuflow/rental/1`.

use std::{path::PathBuf, time::Duration};

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::{
    error::{Exit, fail},
    node::NodeClient,
};
use gpuflow_p2p::{Multiaddr, Network, NetworkConfig, PeerId};
use gpuflow_protocol::{
    Heartbeat, Identity, Offer, RentalRequest, RentalResponse, SignedEnvelope, SignedQuote,
    Verified, WorkloadState, WorkloadStatus,
};

/// How to reach the provider of one rental, kept in
/// `$XDG_CONFIG_HOME/gpuflow/rentals/ESCROW-ID.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Remembered {
    /// The rental's start, so a record left by an earlier chain (a devnet restarted at
    /// the same addresses) is never taken for this rental's.
    start: u64,
    payout: Address,
    peer: String,
    addrs: Vec<String>,
    /// What was rented, for `gpuflow ssh` and `gpuflow rentals`.
    #[serde(flatten)]
    rented: Rented,
}

/// What `rent` remembers of a rental besides where its provider is.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Rented {
    /// The private key whose public half `rent --ssh-key` installed, for `gpuflow ssh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ssh_identity: Option<PathBuf>,
    /// The GPU model, as the offer named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gpu: Option<String>,
    /// How many of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gpus: Option<u32>,
    /// The image asked for; `None` ran the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) image: Option<String>,
    /// The name of the volume mounted (`rent --volume`), for `gpuflow volumes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) volume: Option<String>,
}

impl Remembered {
    fn path(escrow: Address, rental_id: u64) -> anyhow::Result<PathBuf> {
        Ok(crate::config::dir()?.join("rentals").join(format!("{escrow:#x}-{rental_id}.json")))
    }

    fn load(escrow: Address, rental_id: u64) -> Option<Self> {
        let text = std::fs::read_to_string(Self::path(escrow, rental_id).ok()?).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn save(&self, escrow: Address, rental_id: u64) -> anyhow::Result<()> {
        let path = Self::path(escrow, rental_id)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)?)?;
        Ok(())
    }
}

/// The private key remembered for rental `rental_id` of `escrow` (opened on this machine
/// with `--ssh-key`), when the record is this rental's.
pub(crate) fn ssh_identity(
    escrow: Address,
    rental_id: u64,
    rental: &gpuflow_escrow::Rental,
) -> Option<PathBuf> {
    rented(escrow, rental_id, rental).and_then(|rented| rented.ssh_identity)
}

/// What was remembered of rental `rental_id` of `escrow` when it was opened on this
/// machine, when the record is this rental's.
pub(crate) fn rented(
    escrow: Address,
    rental_id: u64,
    rental: &gpuflow_escrow::Rental,
) -> Option<Rented> {
    Remembered::load(escrow, rental_id)
        .filter(|known| known.payout == rental.provider && known.start == rental.start.to::<u64>())
        .map(|known| known.rented)
}

/// The machines this machine rented a volume on under `escrow` (from the rentals it
/// remembers), each with the addresses it was reached at, in the order first rented.
pub(crate) fn volume_machines(escrow: Address) -> anyhow::Result<Vec<(PeerId, Vec<Multiaddr>)>> {
    let dir = crate::config::dir()?.join("rentals");
    let prefix = format!("{escrow:#x}-");
    let mut found: Vec<(u64, PeerId, Vec<Multiaddr>)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) {
            continue;
        }
        let Some(known) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|text| serde_json::from_str::<Remembered>(&text).ok())
            .filter(|known| known.rented.volume.is_some())
        else {
            continue;
        };
        let Ok(peer) = known.peer.parse::<PeerId>() else { continue };
        let addrs: Vec<Multiaddr> = known.addrs.iter().filter_map(|a| a.parse().ok()).collect();
        match found.iter_mut().find(|(_, p, _)| *p == peer) {
            Some((start, _, known_addrs)) => {
                *start = (*start).min(known.start);
                for addr in addrs {
                    if !known_addrs.contains(&addr) {
                        known_addrs.push(addr);
                    }
                }
            }
            None => found.push((known.start, peer, addrs)),
        }
    }
    found.sort_by_key(|(start, ..)| *start);
    Ok(found.into_iter().map(|(_, peer, addrs)| (peer, addrs)).collect())
}

/// Where `peer` says it listens now, as the node last heard: the addresses of its latest
/// heartbeat, whose signature is checked here instead of trusting the node, and of its
/// live offer (possibly the same ones twice). Empty when the node cannot say.
async fn announced_addrs(node: &NodeClient, peer: PeerId) -> Vec<Multiaddr> {
    let Ok(Some(detail)) = node.provider(&peer.to_string()).await else { return Vec::new() };
    let mut addrs = Vec::new();
    if let Some(heartbeat) = detail.last_heartbeat
        && let Ok(heartbeat) = SignedEnvelope::open::<Heartbeat>(heartbeat.envelope)
        && heartbeat.signer == peer
    {
        addrs.extend(heartbeat.body.listen_addrs);
    }
    if let Some(offer) = detail.offer
        && let Ok((_, offer)) = node.offer(&offer.id).await
        && offer.signer == peer
    {
        addrs.extend(offer.body.listen_addrs);
    }
    addrs.iter().filter_map(|a| a.parse().ok()).collect()
}

/// A short-lived libp2p client for one provider.
pub(crate) struct ProviderClient {
    network: Network,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
}

impl ProviderClient {
    pub(crate) fn connect(offer: &Verified<Offer>) -> anyhow::Result<Self> {
        let addrs = offer.body.listen_addrs.iter().filter_map(|a| a.parse().ok()).collect();
        Self::dial(offer.signer, addrs)
    }

    fn dial(peer: PeerId, addrs: Vec<Multiaddr>) -> anyhow::Result<Self> {
        let (network, _events, event_loop) = gpuflow_p2p::new(NetworkConfig {
            identity: Identity::generate(),
            listen: Vec::new(),
            bootstrap: Vec::new(),
            subscribe_offers: false,
            serve_requests: false,
        })?;
        tokio::spawn(event_loop.run());
        Ok(Self { network, peer, addrs })
    }

    /// The provider agent serving rental `rental_id`: the machine remembered when this
    /// machine opened it, else the one the rental's on-chain `offerId` names (asked of the
    /// node), reached at the addresses remembered and at those it announces now (its latest
    /// signed heartbeat, found through the node), so an agent restarted on another port is
    /// still found. Only when the node cannot name the machine is the first live offer
    /// with the rental's payout address tried.
    pub(crate) async fn for_rental(
        node: &NodeClient,
        escrow: Address,
        rental_id: u64,
        rental: &gpuflow_escrow::Rental,
    ) -> anyhow::Result<Self> {
        let (start, payout) = (rental.start.to::<u64>(), rental.provider);
        let remembered = Remembered::load(escrow, rental_id)
            .filter(|known| known.payout == payout && known.start == start)
            .and_then(|known| {
                let peer: PeerId = known.peer.parse().ok()?;
                Some((peer, known.addrs.iter().filter_map(|a| a.parse().ok()).collect()))
            });
        let (peer, mut addrs): (PeerId, Vec<Multiaddr>) = match remembered {
            Some(known) => known,
            None => {
                let machine = node.rental(rental_id).await.ok().flatten().and_then(|r| r.machine);
                match machine.and_then(|peer| peer.parse().ok()) {
                    Some(peer) => (peer, Vec::new()),
                    None => return Self::for_payout(node, &format!("{payout:#x}")).await,
                }
            }
        };
        for addr in announced_addrs(node, peer).await {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        if addrs.is_empty() {
            return Err(fail(
                Exit::Unreachable,
                format!(
                    "the node knows no address of provider {peer}, which serves rental \
                     {rental_id}: it has not heard from it lately. Try again once it is back"
                ),
            ));
        }
        Self::dial(peer, addrs)
    }

    /// The provider `peer`, at `addrs` and wherever it announces itself now.
    pub(crate) async fn for_peer(
        node: &NodeClient,
        peer: PeerId,
        mut addrs: Vec<Multiaddr>,
    ) -> anyhow::Result<Self> {
        for addr in announced_addrs(node, peer).await {
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        Self::dial(peer, addrs)
    }

    /// The renter's volumes on this machine; `signature` proves the caller is `renter`.
    pub(crate) async fn volumes(
        &self,
        renter: Address,
        issued_at: u64,
        signature: alloy::primitives::Signature,
    ) -> anyhow::Result<Vec<gpuflow_protocol::VolumeInfo>> {
        let request = RentalRequest::Volumes { renter, issued_at, signature };
        self.ask("volumes", request, |response| match response {
            RentalResponse::Volumes { volumes } => Ok(volumes),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Remembers how to reach this provider for rental `rental_id`; best effort, since
    /// the node can still find a provider with a free GPU.
    pub(crate) fn remember(
        &self,
        escrow: Address,
        rental_id: u64,
        start: u64,
        payout: Address,
        rented: Rented,
    ) {
        let known = Remembered {
            start,
            payout,
            peer: self.peer.to_string(),
            addrs: self.addrs.iter().map(ToString::to_string).collect(),
            rented,
        };
        if let Err(e) = known.save(escrow, rental_id) {
            tracing::warn!(error = %e, rental_id, "could not remember the provider's address");
        }
    }

    /// Finds the provider paid at `payout` through the node's live offers.
    pub(crate) async fn for_payout(node: &NodeClient, payout: &str) -> anyhow::Result<Self> {
        let found = node.search(&format!("payout={payout}"), None, 1).await?;
        let summary = found.first().ok_or_else(|| {
            fail(Exit::NotFound, format!("the node lists no live offer from {payout}"))
        })?;
        let (_, offer) = node.offer(&summary.id).await?;
        Self::connect(&offer)
    }

    /// The last lines of a rental's workload; `signature` proves the caller is its renter.
    pub(crate) async fn logs(
        &self,
        rental_id: u64,
        issued_at: u64,
        signature: alloy::primitives::Signature,
    ) -> anyhow::Result<Vec<String>> {
        let request = RentalRequest::Logs { rental_id, issued_at, signature };
        self.ask("logs", request, |response| match response {
            RentalResponse::Logs { lines } => Ok(lines),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Sends `request` (a `what` request) and takes the answer `expected` accepts, which
    /// gives any other answer back (boxed: a `RentalResponse` is large); a refusal or an
    /// unreachable provider fails with its exit code.
    async fn ask<T>(
        &self,
        what: &str,
        request: RentalRequest,
        expected: impl FnOnce(RentalResponse) -> Result<T, Box<RentalResponse>>,
    ) -> anyhow::Result<T> {
        match self.network.request(self.peer, self.addrs.clone(), request).await {
            Ok(RentalResponse::Error { message }) => {
                Err(fail(Exit::Refused, format!("the provider refused: {message}")))
            }
            Ok(response) => expected(response).map_err(|other| {
                anyhow::anyhow!("the provider answered a {what} request with {other:?}")
            }),
            Err(e) => Err(fail(Exit::Unreachable, format!("the provider is unreachable: {e}"))),
        }
    }

    /// Asks for signed terms to rent `gpus` of the machine's GPUs (every free one if
    /// `None`) for `duration` seconds, running `image` (the provider's default if `None`)
    /// with `ssh_key` installed and the renter's `launch` settings.
    pub(crate) async fn quote(
        &self,
        renter: alloy::primitives::Address,
        duration: u64,
        gpus: Option<u32>,
        image: Option<String>,
        ssh_key: Option<String>,
        launch: gpuflow_protocol::Launch,
    ) -> anyhow::Result<SignedQuote> {
        let request = RentalRequest::Quote { renter, duration, image, ssh_key, gpus, launch };
        match self.network.request(self.peer, self.addrs.clone(), request).await {
            Ok(RentalResponse::Quote(quote)) => Ok(quote),
            Ok(RentalResponse::Error { message }) => Err(fail(
                Exit::Refused,
                format!("the provider refused to quote: {message}; no money moved"),
            )),
            Ok(other) => anyhow::bail!("the provider answered a quote request with {other:?}"),
            Err(e) => Err(fail(
                Exit::Unreachable,
                format!(
                    "the provider {} is unreachable ({e}); no money moved. It may be offline: \
                     search again and pick another offer",
                    self.peer
                ),
            )),
        }
    }

    pub(crate) async fn status(&self, rental_id: u64) -> anyhow::Result<WorkloadStatus> {
        let request = RentalRequest::Status { rental_id };
        match self.network.request(self.peer, self.addrs.clone(), request).await? {
            RentalResponse::Status(status) => Ok(status),
            RentalResponse::Error { message } => anyhow::bail!("the provider answered: {message}"),
            other => anyhow::bail!("the provider answered a status request with {other:?}"),
        }
    }

    /// Asks until the workload is running or refused, or `timeout` passes.
    pub(crate) async fn wait_ready(
        &self,
        rental_id: u64,
        timeout: Duration,
    ) -> anyhow::Result<Option<WorkloadStatus>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_error = None;
        while tokio::time::Instant::now() < deadline {
            match self.status(rental_id).await {
                Ok(status)
                    if matches!(status.state, WorkloadState::Running | WorkloadState::Refused) =>
                {
                    return Ok(Some(status));
                }
                Ok(_) => last_error = None,
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        match last_error {
            Some(e) => Err(e.context("the provider is unreachable")),
            None => Ok(None),
        }
    }
}
