//! The provider's main loop: advertise, watch the escrow, run workloads, get paid.
//!
//! One task owns all rental state; network requests, chain polling and the offer
//! republish timer are branches of the same `select!`, so nothing needs a lock.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use alloy::{
    primitives::{Address, B256, U256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::Eip712Domain,
};
use gpuflow_escrow::{Escrow, EscrowEvent, GpuEscrow};
use gpuflow_p2p::{Network, NetworkEvent};
use gpuflow_protocol::{
    Identity, Offer, OfferId, QuoteTerms, RentalRequest, RentalResponse, SignedEnvelope,
    WorkloadState, WorkloadStatus, payout_binding_message, unix_now,
};
use tokio::sync::mpsc;

use crate::{
    gpus::Inventory,
    runtime::{Workload, WorkloadSpec},
};

/// How the agent runs, once its inputs are resolved.
#[derive(Debug)]
pub struct AgentConfig {
    /// Signs offers; the libp2p identity.
    pub identity: Identity,
    /// Receives earnings and binds to the identity.
    pub payout: PrivateKeySigner,
    /// What is offered.
    pub inventory: Inventory,
    /// Price of the whole machine, token units per second.
    pub price_per_second: u128,
    /// Region label.
    pub region: String,
    /// Declared download bandwidth, Mbit/s.
    pub inet_down_mbps: Option<u64>,
    /// Declared upload bandwidth, Mbit/s.
    pub inet_up_mbps: Option<u64>,
    /// Disk offered to workloads, bytes.
    pub disk_bytes: Option<u64>,
    /// Shell command each rental runs.
    pub workload: String,
    /// Where workload logs go.
    pub data_dir: PathBuf,
    /// How often the chain is polled.
    pub poll_interval: Duration,
    /// How often the offer is republished.
    pub offer_interval: Duration,
    /// How long an offer stays valid.
    pub offer_ttl: Duration,
    /// Shortest rental accepted, in seconds.
    pub min_duration: u64,
    /// Longest rental accepted, extensions included, in seconds.
    pub max_duration: u64,
    /// How long a signed quote can be used to open a rental.
    pub quote_validity: Duration,
}

/// What the agent learns from the chain once, at start.
#[derive(Debug)]
pub struct ChainContext {
    /// Chain id.
    pub chain_id: u64,
    /// EIP-712 domain of the escrow, for quotes.
    pub domain: Eip712Domain,
    /// Seconds a provider waits before earned seconds can be withdrawn.
    pub dispute_window: u64,
    /// First block to read events from.
    pub next_block: u64,
}

struct Rental {
    renter: Address,
    ends_at: u64,
    state: WorkloadState,
    workload: Option<Workload>,
    started_at: Option<u64>,
    ended_at: Option<u64>,
    detail: String,
    /// When everything earned can be withdrawn: the end plus the dispute window.
    payout_due_at: Option<u64>,
    paid_out: bool,
}

/// The running agent.
pub struct Agent {
    config: AgentConfig,
    network: Network,
    escrow: Escrow,
    chain: ChainContext,
    listen_addrs: Vec<String>,
    rentals: BTreeMap<u64, Rental>,
    next_nonce: U256,
}

impl Agent {
    /// Prepares the agent.
    pub fn new(config: AgentConfig, network: Network, escrow: Escrow, chain: ChainContext) -> Self {
        // Quote nonces are sequential from a time-based start, so they fill the escrow's
        // nonce bitmap word by word and never repeat across restarts.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Self {
            config,
            network,
            escrow,
            chain,
            listen_addrs: Vec::new(),
            rentals: BTreeMap::new(),
            next_nonce: U256::from(start) << 8,
        }
    }

    /// The id every node gives this provider's offer.
    pub fn offer_id(&self) -> OfferId {
        OfferId::of(&self.config.identity.peer_id())
    }

    /// Runs until `shutdown` resolves, then ends every workload.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<NetworkEvent>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut republish = tokio::time::interval(self.config.offer_interval);
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_network_event(event).await,
                    None => anyhow::bail!("the network stopped"),
                },
                _ = republish.tick() => self.publish_offer().await,
                _ = poll.tick() => {
                    if let Err(e) = self.poll_chain().await {
                        tracing::warn!(error = %e, "could not read the chain; retrying");
                    }
                    self.end_due_rentals().await;
                    self.withdraw_due().await;
                }
                () = &mut shutdown => break,
            }
        }
        for (id, rental) in &mut self.rentals {
            if let Some(workload) = rental.workload.take() {
                tracing::info!(rental = id, "stopping workload for shutdown");
                workload.stop().await;
            }
        }
        Ok(())
    }

    async fn on_network_event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Listening(addr) => {
                self.listen_addrs.push(format!("{addr}/p2p/{}", self.network.peer_id()));
                self.publish_offer().await;
            }
            NetworkEvent::OffersSubscriber(peer) => {
                tracing::debug!(%peer, "new offers subscriber");
                self.publish_offer().await;
            }
            NetworkEvent::RentalRequest { peer, request, channel } => {
                tracing::debug!(%peer, ?request, "rental request");
                let response = match request {
                    RentalRequest::Status { rental_id } => {
                        RentalResponse::Status(self.status(rental_id))
                    }
                    RentalRequest::Quote { renter, duration } => self.quote(renter, duration),
                };
                if let Err(e) = self.network.respond(channel, response).await {
                    tracing::warn!(error = %e, "could not answer a rental request");
                }
            }
            _ => {}
        }
    }

    /// Signs terms for a rental of the whole machine, if it is free and the duration is
    /// one the provider accepts.
    fn quote(&mut self, renter: Address, duration: u64) -> RentalResponse {
        let refuse = |message: String| RentalResponse::Error { message };
        if self.is_busy() {
            return refuse("the machine is rented right now; search for another offer".into());
        }
        let (min, max) = (self.config.min_duration, self.config.max_duration);
        if duration < min || duration > max {
            return refuse(format!("this provider rents for {min} to {max} seconds"));
        }
        if renter.is_zero() {
            return refuse("the renter address is zero".into());
        }
        let mut offer_id = [0u8; 32];
        offer_id[..8].copy_from_slice(&self.offer_id().to_bytes());
        let terms = QuoteTerms {
            provider: self.config.payout.address(),
            renter,
            rate_per_second: self.config.price_per_second,
            max_duration: max,
            deadline: unix_now() + self.config.quote_validity.as_secs(),
            offer_id: B256::from(offer_id),
            nonce: self.next_nonce,
        };
        self.next_nonce += U256::from(1);
        match gpuflow_escrow::sign_quote(&self.config.payout, terms, &self.chain.domain) {
            Ok(quote) => {
                tracing::info!(%renter, duration, nonce = %quote.terms.nonce, "quote signed");
                RentalResponse::Quote(quote)
            }
            Err(e) => refuse(format!("the provider could not sign a quote: {e}")),
        }
    }

    fn status(&self, rental_id: u64) -> WorkloadStatus {
        let gpus = self.config.inventory.gpus.iter().map(|g| g.uuid.clone()).collect();
        match self.rentals.get(&rental_id) {
            Some(r) => WorkloadStatus {
                rental_id,
                state: r.state,
                gpus,
                started_at: r.started_at,
                ended_at: r.ended_at,
                detail: r.detail.clone(),
            },
            None => WorkloadStatus {
                rental_id,
                state: WorkloadState::Unknown,
                gpus: Vec::new(),
                started_at: None,
                ended_at: None,
                detail: "this provider has not seen the rental on chain (yet)".into(),
            },
        }
    }

    /// Signs and publishes the current offer. Offers are only for free machines; while
    /// rented the agent stays quiet and its last offer expires.
    async fn publish_offer(&mut self) {
        if self.listen_addrs.is_empty() || self.is_busy() {
            return;
        }
        let now = unix_now();
        let peer_id = self.config.identity.peer_id();
        let payout_proof =
            match self.config.payout.sign_message_sync(payout_binding_message(&peer_id).as_bytes())
            {
                Ok(sig) => sig,
                Err(e) => return tracing::error!(error = %e, "could not sign the payout binding"),
            };
        let offer = Offer {
            seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            issued_at: now,
            expires_at: now + self.config.offer_ttl.as_secs(),
            chain_id: self.chain.chain_id,
            escrow: self.escrow.address(),
            payout: self.config.payout.address(),
            payout_proof,
            price_per_second: self.config.price_per_second,
            gpus: self.config.inventory.gpus.clone(),
            verified: self.config.inventory.verified,
            region: self.config.region.clone(),
            listen_addrs: self.listen_addrs.clone(),
            inet_down_mbps: self.config.inet_down_mbps,
            inet_up_mbps: self.config.inet_up_mbps,
            disk_bytes: self.config.disk_bytes,
        };
        let envelope = SignedEnvelope::seal(&self.config.identity, &offer);
        match self.network.publish_offer(&envelope).await {
            Ok(()) => tracing::info!(offer = %self.offer_id(), seq = offer.seq, "offer published"),
            // Alone on the network: the next subscriber triggers a republish.
            Err(e) => tracing::debug!(error = %e, "offer not published"),
        }
    }

    fn is_busy(&self) -> bool {
        self.rentals
            .values()
            .any(|r| matches!(r.state, WorkloadState::Starting | WorkloadState::Running))
    }

    async fn poll_chain(&mut self) -> anyhow::Result<()> {
        let latest = self.escrow.block_number().await?;
        if latest < self.chain.next_block {
            return Ok(());
        }
        let events = self.escrow.events(self.chain.next_block, latest).await?;
        self.chain.next_block = latest + 1;
        for event in events {
            match event {
                EscrowEvent::Opened(e) if e.provider == self.config.payout.address() => {
                    self.on_opened(e).await
                }
                EscrowEvent::Stopped(e) => {
                    if let (Ok(id), Ok(at)) = (u64::try_from(e.rentalId), u64::try_from(e.stoppedAt))
                        && let Some(rental) = self.rentals.get_mut(&id)
                    {
                        tracing::info!(rental = id, refund = %e.refund, "renter stopped the rental");
                        rental.ends_at = at;
                        self.finish(id, "stopped by the renter").await;
                    }
                }
                EscrowEvent::Extended(e) => {
                    if let (Ok(id), Ok(end)) = (u64::try_from(e.rentalId), u64::try_from(e.newEnd))
                        && let Some(rental) = self.rentals.get_mut(&id)
                    {
                        tracing::info!(rental = id, new_end = end, "renter extended the rental");
                        rental.ends_at = end;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn on_opened(&mut self, event: GpuEscrow::RentalOpened) {
        let (Ok(id), Ok(ends_at)) = (u64::try_from(event.rentalId), u64::try_from(event.end))
        else {
            return tracing::warn!(rental = %event.rentalId, "rental ids or times out of range; ignored");
        };
        tracing::info!(rental = id, renter = %event.renter, rate = %event.ratePerSecond, ends_at, "rental opened");
        let mut rental = Rental {
            renter: event.renter,
            ends_at,
            state: WorkloadState::Starting,
            workload: None,
            started_at: None,
            ended_at: None,
            detail: String::new(),
            payout_due_at: None,
            paid_out: false,
        };
        // The escrow checked our quote signature: the terms are ours.
        if self.is_busy() {
            rental.state = WorkloadState::Refused;
            rental.detail =
                "the machine is already rented; stop the rental to get your deposit back".into();
        } else {
            let spec = WorkloadSpec {
                rental_id: id,
                gpus: self.config.inventory.gpus.iter().map(|g| g.uuid.clone()).collect(),
                ends_at,
                command: self.config.workload.clone(),
                log_path: self.config.data_dir.join("workloads").join(format!("{id}.log")),
            };
            match Workload::start(&spec) {
                Ok(workload) => {
                    rental.state = WorkloadState::Running;
                    rental.started_at = Some(unix_now());
                    rental.detail = format!(
                        "process runtime: pid {}, logs at {} (no SSH endpoint in this runtime)",
                        workload.pid(),
                        spec.log_path.display()
                    );
                    rental.workload = Some(workload);
                }
                Err(e) => {
                    rental.state = WorkloadState::Refused;
                    rental.detail =
                        format!("the workload could not start ({e}); stop the rental for a refund");
                }
            }
        }
        tracing::info!(rental = id, state = %rental.state, renter = %rental.renter, detail = %rental.detail, "rental handled");
        self.rentals.insert(id, rental);
    }

    /// Ends workloads whose rental ran out or that exited on their own.
    async fn end_due_rentals(&mut self) {
        let now = unix_now();
        let due: Vec<u64> = self
            .rentals
            .iter_mut()
            .filter(|(_, r)| r.state == WorkloadState::Running)
            .filter_map(|(id, r)| {
                let exited = r.workload.as_mut().is_some_and(|w| !w.is_running());
                (now >= r.ends_at || exited).then_some(*id)
            })
            .collect();
        for id in due {
            self.finish(id, "the rental ended").await;
        }
    }

    /// Stops the rental's workload and schedules its payout after the dispute window.
    async fn finish(&mut self, id: u64, why: &str) {
        let window = self.chain.dispute_window;
        let Some(rental) = self.rentals.get_mut(&id) else { return };
        if let Some(workload) = rental.workload.take() {
            workload.stop().await;
            tracing::info!(rental = id, why, "workload stopped");
        }
        match rental.state {
            // A refused rental ran no workload: its deposit is the renter's to take back.
            WorkloadState::Refused => rental.paid_out = true,
            WorkloadState::Ended => {}
            _ => {
                rental.state = WorkloadState::Ended;
                rental.ended_at = Some(unix_now());
                rental.detail = why.to_owned();
            }
        }
        if !rental.paid_out {
            rental.payout_due_at = Some(rental.ends_at + window);
        }
        // The machine is free again: tell the network.
        self.publish_offer().await;
    }

    /// Withdraws, in one transaction, every ended rental whose dispute window passed.
    async fn withdraw_due(&mut self) {
        let now = unix_now();
        let due: Vec<u64> = self
            .rentals
            .iter()
            .filter(|(_, r)| !r.paid_out && r.payout_due_at.is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        if due.is_empty() {
            return;
        }
        match self.escrow.withdraw_many(&due).await {
            Ok(paid) => {
                for w in &paid {
                    tracing::info!(rental = w.rental_id, amount = %w.amount, fee = %w.fee, tx = %w.tx, "earnings withdrawn");
                }
                for id in due {
                    // The block that paid may be a little older than our clock: whatever
                    // is still owed is withdrawn on a later tick.
                    match self.escrow.outstanding(id).await {
                        Ok(owed) if owed.is_zero() => {
                            if let Some(rental) = self.rentals.get_mut(&id) {
                                rental.paid_out = true;
                            }
                        }
                        Ok(owed) => tracing::debug!(rental = id, %owed, "earnings still owed"),
                        Err(e) => tracing::warn!(rental = id, error = %e, "could not read the rental"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "withdrawal failed; retrying"),
        }
    }
}
