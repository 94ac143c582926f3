//! Talking to a provider directly over `/gpuflow/rental/1`.

use std::time::Duration;

use crate::{
    error::{Exit, fail},
    node::NodeClient,
};
use gpuflow_p2p::{Multiaddr, Network, NetworkConfig, PeerId};
use gpuflow_protocol::{
    Identity, Offer, RentalRequest, RentalResponse, SignedQuote, Verified, WorkloadState,
    WorkloadStatus,
};

/// A short-lived libp2p client for one provider.
pub(crate) struct ProviderClient {
    network: Network,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
}

impl ProviderClient {
    pub(crate) fn connect(offer: &Verified<Offer>) -> anyhow::Result<Self> {
        let (network, _events, event_loop) = gpuflow_p2p::new(NetworkConfig {
            identity: Identity::generate(),
            listen: Vec::new(),
            bootstrap: Vec::new(),
            subscribe_offers: false,
            serve_requests: false,
        })?;
        tokio::spawn(event_loop.run());
        let addrs = offer.body.listen_addrs.iter().filter_map(|a| a.parse().ok()).collect();
        Ok(Self { network, peer: offer.signer, addrs })
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
        match self.network.request(self.peer, self.addrs.clone(), request).await {
            Ok(RentalResponse::Logs { lines }) => Ok(lines),
            Ok(RentalResponse::Error { message }) => {
                Err(fail(Exit::Refused, format!("the provider refused: {message}")))
            }
            Ok(other) => anyhow::bail!("the provider answered a logs request with {other:?}"),
            Err(e) => Err(fail(Exit::Unreachable, format!("the provider is unreachable: {e}"))),
        }
    }

    /// Asks for signed terms to rent the machine for `duration` seconds, running `image`
    /// (the provider's default if `None`) with `ssh_key` installed.
    pub(crate) async fn quote(
        &self,
        renter: alloy::primitives::Address,
        duration: u64,
        image: Option<String>,
        ssh_key: Option<String>,
    ) -> anyhow::Result<SignedQuote> {
        let request = RentalRequest::Quote { renter, duration, image, ssh_key };
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
