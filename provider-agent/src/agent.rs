//! The provider's main loop: advertise, heartbeat, quote, watch the escrow, run
//! workloads, get paid.
//!
//! One task owns all rental state; network requests, chain results and the timers are
//! branches of the same `select!`, so nothing needs a lock. The chain itself is only ever
//! called from tasks of their own ([`crate::chain`]), so a slow or hanging RPC never holds
//! up quotes, heartbeats or signals. Every change of a rental is written to the [`Store`]
//! before the agent acts on it, and chain events are re-read from the last fully processed
//! block after a restart, so a crash loses nothing and a GPU is never handed out twice.
//!
//! A rental belongs to the machine its on-chain `offerId` names: several agents may share
//! one payout address, and each handles only the rentals of its own offer. A quote reserves
//! its GPUs until it is used or expires ([`crate::reservations`]); a rental the agent cannot
//! run is refused with a signed refusal that returns the renter's whole deposit.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, Signature, U256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::Eip712Domain,
};
use gpuflow_escrow::{Escrow, EscrowEvent, GpuEscrow};
use gpuflow_p2p::{Network, NetworkEvent, PeerId};
use gpuflow_protocol::{
    GpuHealth, Heartbeat, Identity, Offer, OfferId, QuoteTerms, RentalRequest, RentalResponse,
    SignedEnvelope, WorkloadState, WorkloadStatus, logs_request_message, payout_binding_message,
    unix_now,
};
use tokio::sync::{mpsc, watch};

use crate::{
    chain::{self, Backoff, ChainClock, ChainDone, Polled},
    gpus::Inventory,
    reservations::{Reservation, Reservations},
    runtime::{Runtime, RuntimeError, Started, WorkloadSpec},
    store::{QuoteRecord, RentalRecord, Store},
};

/// Lifetime of the offer that replaces a fully rented machine's, in seconds: long enough
/// to cross gossipsub, short enough that searches stop listing the machine at once.
const LAPSE_SECS: u64 = 5;
/// How far a log request's timestamp may be from the provider's clock, in seconds.
const LOGS_REQUEST_MAX_SKEW: u64 = 300;
/// Blocks read again on every poll: the newest blocks may still be replaced by a chain
/// reorganisation, so the agent's cursor stays this far behind the head. A rental opened in
/// them that is gone from the chain is forgotten (its workload stopped, its GPUs freed); one
/// that moved to another block is followed.
const REORG_TAIL: u64 = 64;
/// Longest wait between two attempts to reach a failing RPC.
const MAX_RPC_BACKOFF: Duration = Duration::from_secs(30);

/// How the agent runs, once its inputs are resolved.
#[derive(Debug)]
pub struct AgentConfig {
    /// Signs offers and heartbeats; the libp2p identity.
    pub identity: Identity,
    /// Receives earnings, signs quotes and binds to the identity.
    pub payout: PrivateKeySigner,
    /// What is offered.
    pub inventory: Inventory,
    /// Price of each GPU, token units per second, by UUID.
    pub gpu_rates: BTreeMap<String, u128>,
    /// Region label.
    pub region: String,
    /// Declared download bandwidth, Mbit/s.
    pub inet_down_mbps: Option<u64>,
    /// Declared upload bandwidth, Mbit/s.
    pub inet_up_mbps: Option<u64>,
    /// Disk offered to workloads, bytes.
    pub disk_bytes: Option<u64>,
    /// Where the agent keeps its files.
    pub data_dir: PathBuf,
    /// How often the chain is polled.
    pub poll_interval: Duration,
    /// How often the offer is republished.
    pub offer_interval: Duration,
    /// How long an offer stays valid.
    pub offer_ttl: Duration,
    /// How often a heartbeat is published.
    pub heartbeat_interval: Duration,
    /// Shortest rental accepted, in seconds.
    pub min_duration: u64,
    /// Longest rental accepted, extensions included, in seconds.
    pub max_duration: u64,
    /// How long a signed quote can be used to open a rental.
    pub quote_validity: Duration,
    /// Withdraw from running rentals once this much (gross, token units) is withdrawable;
    /// zero withdraws only ended rentals, once their dispute window passed.
    pub withdraw_threshold: U256,
    /// Images renters may ask for (see [`crate::config::image_allowed`]); empty: any.
    pub allowed_images: Vec<String>,
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
    /// First block to read events from, when the store has none recorded.
    pub next_block: u64,
}

/// The stateful parts the agent drives.
pub struct AgentParts {
    /// The libp2p handle.
    pub network: Network,
    /// The escrow, signing as the payout wallet.
    pub escrow: Escrow,
    /// Durable state.
    pub store: Store,
    /// Where workloads run.
    pub runtime: Arc<dyn Runtime>,
    /// Latest GPU health, kept current by the task that owns NVML.
    pub health: watch::Receiver<Vec<GpuHealth>>,
}

/// The running agent.
pub struct Agent {
    config: AgentConfig,
    network: Network,
    escrow: Escrow,
    store: Store,
    runtime: Arc<dyn Runtime>,
    health: watch::Receiver<Vec<GpuHealth>>,
    chain: ChainContext,
    listen_addrs: Vec<String>,
    rentals: BTreeMap<u64, RentalRecord>,
    /// GPUs held by quotes that may still open a rental.
    reservations: Reservations,
    next_nonce: U256,
    heartbeat_seq: u64,
    /// The chain's clock, once read; devnets move it ahead of the wall clock.
    clock: Option<ChainClock>,
    /// Time of the latest block whose events are all handled; 0 until the first poll.
    processed_time: u64,
    /// Where chain tasks report; the receiver is taken by [`Agent::run`].
    chain_tx: mpsc::Sender<ChainDone>,
    chain_rx: Option<mpsc::Receiver<ChainDone>>,
    /// A poll is in flight.
    polling: bool,
    /// A payout is in flight.
    paying: bool,
    /// When the next poll may start after RPC failures.
    backoff: Backoff,
    /// The GPUs of the last offer published, while it may still be live on the nodes.
    advertised: Vec<gpuflow_protocol::GpuInfo>,
    /// Rentals whose workload is being started (an image pull may take minutes).
    starting: BTreeSet<u64>,
    /// Where start tasks report; the receiver is taken by [`Agent::run`].
    started_tx: mpsc::Sender<(u64, Result<Started, RuntimeError>)>,
    started_rx: Option<mpsc::Receiver<(u64, Result<Started, RuntimeError>)>>,
}

fn state_of(rental: &RentalRecord) -> WorkloadState {
    match rental.state.as_str() {
        "starting" => WorkloadState::Starting,
        "running" => WorkloadState::Running,
        "ended" => WorkloadState::Ended,
        "refused" => WorkloadState::Refused,
        _ => WorkloadState::Unknown,
    }
}

fn is_live(rental: &RentalRecord) -> bool {
    matches!(state_of(rental), WorkloadState::Starting | WorkloadState::Running)
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Agent {
    /// Loads the stored rentals and resumes them: a workload still running is re-attached,
    /// one that died with the agent is restarted, one whose rental ended meanwhile is
    /// stopped.
    pub async fn start(
        config: AgentConfig,
        parts: AgentParts,
        mut chain: ChainContext,
    ) -> anyhow::Result<Self> {
        let AgentParts { network, escrow, store, runtime, health } = parts;
        if let Some(last) = store.last_block().await? {
            chain.next_block = last + 1;
        }
        let rentals: BTreeMap<u64, RentalRecord> =
            store.rentals().await?.into_iter().map(|r| (r.id, r)).collect();
        // Quotes issued before a restart may still open rentals: their GPUs stay held until
        // the first poll that reaches past their deadlines.
        let mut reservations = Reservations::default();
        for quote in store.pending_quotes(0).await? {
            if let (Ok(nonce), Ok(renter)) = (quote.nonce.parse(), quote.renter.parse()) {
                let held =
                    Reservation { renter, peer: None, gpus: quote.gpus, deadline: quote.deadline };
                reservations.reserve(nonce, held);
            }
        }
        let config_gpus = config.inventory.gpus.clone();
        let (started_tx, started_rx) = mpsc::channel(64);
        let (chain_tx, chain_rx) = mpsc::channel(8);
        let backoff = Backoff::new(config.poll_interval, MAX_RPC_BACKOFF.max(config.poll_interval));
        let mut agent = Self {
            config,
            network,
            escrow,
            store,
            runtime,
            health,
            chain,
            listen_addrs: Vec::new(),
            rentals,
            reservations,
            // Quote nonces are sequential from a time-based start, so they fill the
            // escrow's nonce bitmap word by word and never repeat across restarts.
            next_nonce: U256::from(unix_millis()) << 8,
            heartbeat_seq: 0,
            clock: None,
            processed_time: 0,
            chain_tx,
            chain_rx: Some(chain_rx),
            polling: false,
            paying: false,
            backoff,
            // What the last run published is unknown: if every GPU turns out rented,
            // withdraw whatever offer may still be live.
            advertised: config_gpus,
            starting: BTreeSet::new(),
            started_tx,
            started_rx: Some(started_rx),
        };
        agent.resume().await;
        Ok(agent)
    }

    async fn resume(&mut self) {
        let live: Vec<u64> = self.rentals.values().filter(|r| is_live(r)).map(|r| r.id).collect();
        for id in live {
            let Some(rental) = self.rentals.get(&id).cloned() else { continue };
            let handle = rental.handle.clone().unwrap_or_default();
            if !handle.is_empty() && self.runtime.is_running(id, &handle).await {
                tracing::info!(rental = id, handle, "re-attached to the running workload");
                continue;
            }
            if rental.ends_at <= unix_now() {
                // Over while the agent was down: the next poll ends and settles it.
                continue;
            }
            tracing::info!(rental = id, "workload gone after a restart; starting it again");
            self.start_workload(rental).await;
        }
    }

    /// The id every node gives this provider's offer.
    pub fn offer_id(&self) -> OfferId {
        OfferId::of(&self.config.identity.peer_id())
    }

    /// Whether a rental with the on-chain `offerId` `offer_id` is this agent's: it names
    /// this machine, or no machine at all (no agent quotes that, so every agent under the
    /// payout address refuses it, and the first refusal submitted returns the deposit).
    /// A rental naming another machine belongs to another agent sharing the payout address.
    fn owns(&self, offer_id: B256) -> bool {
        QuoteTerms::rented_machine(offer_id).is_none_or(|(offer, _)| offer == self.offer_id())
    }

    /// The chain's time: what rentals, quotes and payouts are decided by. Before the chain
    /// was first read, the machine's clock.
    fn now(&self) -> u64 {
        self.clock.map_or_else(unix_now, |clock| clock.now())
    }

    /// Runs until `shutdown` resolves. Workloads keep running, as containers do when their
    /// daemon restarts: an agent restarted for an upgrade must not cost renters their
    /// work. The next start re-attaches them, and ends those whose rental ran out meanwhile.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<NetworkEvent>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut republish = tokio::time::interval(self.config.offer_interval);
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut started = self.started_rx.take().expect("an agent runs once");
        let mut chain_done = self.chain_rx.take().expect("an agent runs once");
        loop {
            tokio::select! {
                Some((id, result)) = started.recv() => self.on_started(id, result).await,
                Some(done) = chain_done.recv() => self.on_chain(done).await,
                event = events.recv() => match event {
                    Some(event) => self.on_network_event(event).await,
                    None => anyhow::bail!("the network stopped"),
                },
                _ = republish.tick() => self.publish_offer().await,
                _ = heartbeat.tick() => {
                    self.publish_heartbeat().await;
                    self.withdraw_over_threshold();
                }
                _ = poll.tick() => {
                    self.start_poll();
                    self.end_due_rentals().await;
                    self.withdraw_due();
                }
                () = &mut shutdown => break,
            }
        }
        let live = self.rentals.values().filter(|r| is_live(r)).count();
        if live > 0 {
            tracing::info!(
                rentals = live,
                "shutting down; workloads keep running until the next start"
            );
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
                self.publish_heartbeat().await;
            }
            NetworkEvent::RentalRequest { peer, request, channel } => {
                tracing::debug!(%peer, ?request, "rental request");
                let response = match request {
                    RentalRequest::Status { rental_id } => {
                        RentalResponse::Status(self.status(rental_id))
                    }
                    RentalRequest::Quote { renter, duration, image, ssh_key, gpus } => {
                        self.quote(peer, renter, duration, gpus, image, ssh_key).await
                    }
                    RentalRequest::Logs { rental_id, issued_at, signature } => {
                        self.logs(rental_id, issued_at, signature).await
                    }
                };
                if let Err(e) = self.network.respond(channel, response).await {
                    tracing::warn!(error = %e, "could not answer a rental request");
                }
            }
            _ => {}
        }
    }

    /// GPUs of the inventory no live rental holds, in inventory order.
    fn free_gpus(&self) -> Vec<&gpuflow_protocol::GpuInfo> {
        let taken: BTreeSet<&String> =
            self.rentals.values().filter(|r| is_live(r)).flat_map(|r| &r.gpus).collect();
        self.config.inventory.gpus.iter().filter(|g| !taken.contains(&g.uuid)).collect()
    }

    /// Free GPUs no pending quote holds either: what a new quote may name.
    fn quotable_gpus(&self) -> Vec<&gpuflow_protocol::GpuInfo> {
        let reserved = self.reservations.reserved_gpus();
        self.free_gpus().into_iter().filter(|g| !reserved.contains(g.uuid.as_str())).collect()
    }

    fn rate_of(&self, gpus: &[&gpuflow_protocol::GpuInfo]) -> u128 {
        gpus.iter().map(|g| self.config.gpu_rates.get(&g.uuid).copied().unwrap_or_default()).sum()
    }

    /// Signs terms for `wanted` free GPUs (all of them for `None`), if that many are
    /// free and the duration, image and SSH key are ones the provider accepts. The quote
    /// is stored, with its GPUs, image and key, before it leaves, so the rental it opens
    /// can be matched to it by nonce and run as asked, and its GPUs are reserved until it
    /// is used or expires. The renter's, and the asking peer's, earlier quote releases its
    /// reservation.
    async fn quote(
        &mut self,
        peer: PeerId,
        renter: Address,
        duration: u64,
        wanted: Option<u32>,
        image: Option<String>,
        ssh_key: Option<String>,
    ) -> RentalResponse {
        let refuse = |message: String| RentalResponse::Error { message };
        let peer = peer.to_string();
        let released = self.reservations.release_holder(renter, Some(&peer));
        if !released.is_empty() {
            tracing::debug!(%renter, %peer, ?released, "an earlier quote's reservation released");
        }
        if self.free_gpus().is_empty() {
            return refuse("every GPU is rented right now; search for another offer".into());
        }
        let mut free = self.quotable_gpus();
        if free.is_empty() {
            return refuse(format!(
                "every free GPU is held by another renter's pending quote for up to {} s; \
                 try again then, or search for another offer",
                self.config.quote_validity.as_secs()
            ));
        }
        match wanted {
            Some(0) => return refuse("ask for at least one GPU".into()),
            Some(n) if n as usize > free.len() => {
                return refuse(format!(
                    "only {} of this machine's GPUs are free; ask for at most {} with --gpus, \
                     or search for another offer",
                    free.len(),
                    free.len()
                ));
            }
            Some(n) => free.truncate(n as usize),
            None => {}
        }
        let (min, max) = (self.config.min_duration, self.config.max_duration);
        if duration < min || duration > max {
            return refuse(format!("this provider rents for {min} to {max} seconds"));
        }
        if renter.is_zero() {
            return refuse("the renter address is zero".into());
        }
        if let Some(image) = &image {
            if let Err(e) = RentalRequest::check_image(image) {
                return refuse(e);
            }
            if !crate::config::image_allowed(&self.config.allowed_images, image) {
                return refuse(format!(
                    "image `{image}` is not allowed on this provider, which runs only {}; \
                     pick one of those with --image, or leave --image out for its default",
                    self.config.allowed_images.join(", ")
                ));
            }
        }
        let ssh_key = match ssh_key.as_deref().map(RentalRequest::check_ssh_public_key) {
            None => None,
            Some(Ok(key)) => Some(key),
            Some(Err(e)) => return refuse(format!("the SSH key: {e}")),
        };
        let gpus: Vec<String> = free.iter().map(|g| g.uuid.clone()).collect();
        let count = gpus.len();
        let deadline = self.now() + self.config.quote_validity.as_secs();
        let terms = QuoteTerms {
            provider: self.config.payout.address(),
            renter,
            rate_per_second: self.rate_of(&free),
            max_duration: max,
            deadline,
            offer_id: QuoteTerms::machine(self.offer_id(), count as u32),
            nonce: self.next_nonce,
        };
        self.next_nonce += U256::from(1);
        let quote = match gpuflow_escrow::sign_quote(&self.config.payout, terms, &self.chain.domain)
        {
            Ok(quote) => quote,
            Err(e) => return refuse(format!("the provider could not sign a quote: {e}")),
        };
        let record = QuoteRecord {
            nonce: quote.terms.nonce.to_string(),
            renter: renter.to_string(),
            rate_per_second: quote.terms.rate_per_second.to_string(),
            max_duration: max,
            deadline: quote.terms.deadline,
            gpus: gpus.clone(),
            image: image.clone(),
            ssh_key,
        };
        if let Err(e) = self.store.record_quote(record, self.processed_time).await {
            tracing::error!(error = %e, "could not store a quote; not issuing it");
            return refuse("the provider cannot issue quotes right now; try again".into());
        }
        let held = Reservation { renter, peer: Some(peer), gpus, deadline };
        self.reservations.reserve(quote.terms.nonce, held);
        tracing::info!(%renter, duration, gpus = count, nonce = %quote.terms.nonce, image = image.as_deref().unwrap_or("default"), "quote signed");
        RentalResponse::Quote(quote)
    }

    fn status(&self, rental_id: u64) -> WorkloadStatus {
        match self.rentals.get(&rental_id) {
            Some(r) => WorkloadStatus {
                rental_id,
                state: state_of(r),
                gpus: r.gpus.clone(),
                started_at: r.started_at,
                ended_at: r.ended_at,
                detail: r.detail.clone(),
                refusal: r.refusal.as_deref().and_then(|sig| sig.parse().ok()),
            },
            None => WorkloadStatus {
                rental_id,
                state: WorkloadState::Unknown,
                gpus: Vec::new(),
                started_at: None,
                ended_at: None,
                detail: "this provider has not seen the rental on chain (yet)".into(),
                refusal: None,
            },
        }
    }

    /// Serves a rental's logs to its renter only, as recorded on chain.
    async fn logs(&self, rental_id: u64, issued_at: u64, signature: Signature) -> RentalResponse {
        let refuse = |message: String| RentalResponse::Error { message };
        if unix_now().abs_diff(issued_at) > LOGS_REQUEST_MAX_SKEW {
            return refuse(format!(
                "the request was signed at {issued_at}, more than {LOGS_REQUEST_MAX_SKEW} s \
                 from the provider's clock; sign a fresh one"
            ));
        }
        let Some(rental) = self.rentals.get(&rental_id) else {
            return refuse(format!("this provider has no rental {rental_id}"));
        };
        let message =
            logs_request_message(self.chain.chain_id, self.escrow.address(), rental_id, issued_at);
        let Ok(signer) = signature.recover_address_from_msg(message.as_bytes()) else {
            return refuse("the signature does not verify".into());
        };
        // The renter as the chain's `RentalOpened` named it; no chain call, so logs are
        // served even while the RPC is slow.
        if rental.renter.parse::<Address>().ok() != Some(signer) {
            return refuse("only the rental's renter may read its logs".into());
        }
        let handle = rental.handle.clone().unwrap_or_default();
        match self.runtime.logs(rental_id, &handle).await {
            Ok(lines) => RentalResponse::Logs { lines },
            Err(e) => refuse(format!("the logs are unavailable: {e}")),
        }
    }

    /// Signs and publishes the offer for the free GPUs. With none free, the live offer is
    /// replaced by one that lapses within [`LAPSE_SECS`], so searches stop listing a
    /// machine that is fully rented (an offer must name at least one GPU).
    async fn publish_offer(&mut self) {
        if self.listen_addrs.is_empty() {
            return;
        }
        let free: Vec<gpuflow_protocol::GpuInfo> = self.free_gpus().into_iter().cloned().collect();
        let (gpus, ttl) = if !free.is_empty() {
            (free, self.config.offer_ttl.as_secs())
        } else if !self.advertised.is_empty() {
            (self.advertised.clone(), LAPSE_SECS)
        } else {
            return;
        };
        let lapsing = ttl == LAPSE_SECS;
        let now = unix_now();
        let peer_id = self.config.identity.peer_id();
        let payout_proof =
            match self.config.payout.sign_message_sync(payout_binding_message(&peer_id).as_bytes())
            {
                Ok(sig) => sig,
                Err(e) => return tracing::error!(error = %e, "could not sign the payout binding"),
            };
        let rate = self.rate_of(&gpus.iter().collect::<Vec<_>>());
        let offer = Offer {
            seq: unix_millis(),
            issued_at: now,
            expires_at: now + ttl,
            chain_id: self.chain.chain_id,
            escrow: self.escrow.address(),
            payout: self.config.payout.address(),
            payout_proof,
            price_per_second: rate,
            gpus,
            verified: self.config.inventory.verified,
            region: self.config.region.clone(),
            listen_addrs: self.listen_addrs.clone(),
            inet_down_mbps: self.config.inet_down_mbps,
            inet_up_mbps: self.config.inet_up_mbps,
            disk_bytes: self.config.disk_bytes,
        };
        if !lapsing {
            self.advertised = offer.gpus.clone();
        }
        let envelope = SignedEnvelope::seal(&self.config.identity, &offer);
        match self.network.publish_offer(&envelope).await {
            Ok(()) if lapsing => {
                // Withdrawn: nothing to publish until a GPU is free again.
                self.advertised.clear();
                tracing::info!(offer = %self.offer_id(), seq = offer.seq, "every GPU is rented: offer withdrawn");
            }
            Ok(()) => {
                tracing::info!(offer = %self.offer_id(), seq = offer.seq, gpus = offer.gpus.len(), "offer published")
            }
            // Alone on the network: the next subscriber triggers a republish.
            Err(e) => tracing::debug!(error = %e, "offer not published"),
        }
    }

    async fn publish_heartbeat(&mut self) {
        // Unix milliseconds stay monotonic across restarts; the max guards a clock step.
        self.heartbeat_seq = unix_millis().max(self.heartbeat_seq + 1);
        let heartbeat = Heartbeat {
            seq: self.heartbeat_seq,
            issued_at: unix_now(),
            gpus: self.health.borrow().clone(),
            active_rentals: self.rentals.values().filter(|r| is_live(r)).count() as u32,
            listen_addrs: self.listen_addrs.clone(),
        };
        let envelope = SignedEnvelope::seal(&self.config.identity, &heartbeat);
        match self.network.publish_heartbeat(&envelope).await {
            Ok(()) => tracing::debug!(seq = heartbeat.seq, "heartbeat published"),
            Err(e) => tracing::debug!(error = %e, "heartbeat not published"),
        }
    }

    /// Starts a poll of the chain in a task of its own, unless one is in flight or a
    /// failing RPC is being backed off from. Its result comes back to [`Agent::on_chain`].
    fn start_poll(&mut self) {
        if self.polling || !self.backoff.ready(std::time::Instant::now()) {
            return;
        }
        self.polling = true;
        let (escrow, from, done) =
            (self.escrow.clone(), self.chain.next_block, self.chain_tx.clone());
        let observed = self.now();
        tokio::spawn(async move {
            let result = chain::poll(escrow, from, REORG_TAIL).await;
            // Without a receiver the agent has stopped; its next start reads the chain again.
            let _ = done.send(ChainDone::Polled { observed, result }).await;
        });
    }

    /// Takes in what a chain task reports.
    async fn on_chain(&mut self, done: ChainDone) {
        match done {
            ChainDone::Polled { observed, result } => {
                self.polling = false;
                match result {
                    Ok(polled) => {
                        let failures = self.backoff.succeeded();
                        if failures > 0 {
                            tracing::info!(failures, "the chain answers again");
                        }
                        if let Err(e) = self.on_polled(polled, observed).await {
                            tracing::warn!(error = %e, "could not handle the chain's events; retrying");
                        }
                    }
                    Err(e) => {
                        let (wait, first) = self.backoff.failed(std::time::Instant::now());
                        if first {
                            tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "could not read the chain; retrying with backoff");
                        } else {
                            tracing::debug!(error = %e, retry_in_ms = wait.as_millis() as u64, "the chain is still unreachable");
                        }
                    }
                }
            }
            ChainDone::Paid { result, settled } => {
                self.paying = false;
                match result {
                    Ok(paid) => {
                        for w in &paid {
                            tracing::info!(rental = w.rental_id, amount = %w.amount, fee = %w.fee, tx = %w.tx, "earnings withdrawn");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "withdrawal failed; retrying"),
                }
                for id in settled {
                    if let Some(rental) = self.rentals.get_mut(&id) {
                        rental.paid_out = true;
                        if let Err(e) = self.store.save_rental(rental.clone()).await {
                            tracing::error!(rental = id, error = %e, "could not record the payout");
                        }
                    }
                }
            }
        }
    }

    /// Handles the events a poll read, range by range, recording progress after each. The
    /// last [`REORG_TAIL`] blocks are read on every poll; rentals opened in them that the
    /// chain no longer has are forgotten. Once the poll reached the head, quotes whose
    /// deadline passed before it began can open nothing more: their GPUs are freed.
    async fn on_polled(&mut self, polled: Polled, observed: u64) -> anyhow::Result<()> {
        let Polled { latest_time, tail, ranges, reached } = polled;
        match &mut self.clock {
            Some(clock) => clock.advance(latest_time),
            None => self.clock = Some(ChainClock::at(latest_time)),
        }
        // This provider's rentals opened in the tail, as the chain has them now.
        let mut in_tail = BTreeSet::new();
        for range in ranges {
            self.handle_events(range.last, range.events, tail, &mut in_tail).await?;
        }
        if !reached {
            return Ok(());
        }
        self.processed_time = self.processed_time.max(latest_time);
        let vanished: Vec<u64> = self
            .rentals
            .values()
            .filter(|r| r.opened_block.is_some_and(|block| block >= tail))
            .filter(|r| !in_tail.contains(&(r.id, r.nonce.clone().unwrap_or_default())))
            .map(|r| r.id)
            .collect();
        for id in vanished {
            self.forget(id).await?;
        }
        let expired = self.reservations.expire(observed);
        if expired > 0 {
            tracing::debug!(expired, "quotes past their deadline no longer hold GPUs");
            self.publish_offer().await;
        }
        Ok(())
    }

    /// Handles the escrow's events of a range of blocks ending at `to`, then records them as handled,
    /// up to `tail` (exclusive): later blocks are read again by the next poll. Rentals of
    /// this machine opened at or after `tail` are added to `in_tail`; rentals of other
    /// machines, even under the same payout address, are not this agent's to handle.
    async fn handle_events(
        &mut self,
        to: u64,
        events: Vec<(u64, EscrowEvent)>,
        tail: u64,
        in_tail: &mut BTreeSet<(u64, String)>,
    ) -> anyhow::Result<()> {
        for (block, event) in events {
            match event {
                EscrowEvent::Opened(e) if e.provider == self.config.payout.address() => {
                    if !self.owns(e.offerId) {
                        tracing::debug!(rental = %e.rentalId, offer = %e.offerId, "a rental of another machine under this payout address; not this agent's");
                        continue;
                    }
                    if block >= tail
                        && let Ok(id) = u64::try_from(e.rentalId)
                    {
                        in_tail.insert((id, e.nonce.to_string()));
                    }
                    self.on_opened(e, block).await?
                }
                EscrowEvent::Stopped(e) => {
                    if let (Ok(id), Ok(at)) =
                        (u64::try_from(e.rentalId), u64::try_from(e.stoppedAt))
                        && let Some(rental) = self.rentals.get_mut(&id)
                        && is_live(rental)
                    {
                        tracing::info!(rental = id, refund = %e.refund, "renter stopped the rental");
                        rental.ends_at = at;
                        self.finish(id, "stopped by the renter").await?;
                    }
                }
                EscrowEvent::Extended(e) => {
                    if let (Ok(id), Ok(end)) = (u64::try_from(e.rentalId), u64::try_from(e.newEnd))
                        && let Some(rental) = self.rentals.get_mut(&id)
                        && rental.ends_at != end
                    {
                        tracing::info!(rental = id, new_end = end, "renter extended the rental");
                        rental.ends_at = end;
                        self.store.save_rental(rental.clone()).await?;
                    }
                }
                _ => {}
            }
        }
        // Only now: every event up to `to` is reflected in the store. The tail stays
        // unrecorded, to be read again.
        let settled = to.min(tail.saturating_sub(1));
        self.store.set_last_block(settled).await?;
        self.chain.next_block = settled + 1;
        Ok(())
    }

    /// Checks a rental opened with one of this provider's quotes against the quote it
    /// issued, allocates the quoted GPUs and starts the workload, or refuses it.
    async fn on_opened(
        &mut self,
        event: GpuEscrow::RentalOpened,
        block: u64,
    ) -> anyhow::Result<()> {
        let (Ok(id), Ok(start), Ok(ends_at)) =
            (u64::try_from(event.rentalId), u64::try_from(event.start), u64::try_from(event.end))
        else {
            tracing::warn!(rental = %event.rentalId, "rental ids or times out of range; ignored");
            return Ok(());
        };
        let nonce = event.nonce.to_string();
        if let Some(known) = self.rentals.get_mut(&id) {
            if known.nonce.as_ref().is_none_or(|n| *n == nonce) {
                // Read again (the tail, or after a restart): already handled. A rental a
                // reorganisation moved to another block keeps running, on its new times.
                if known.opened_block.is_some_and(|b| b != block) {
                    tracing::info!(rental = id, block, "the rental moved to another block");
                    known.opened_block = Some(block);
                    if is_live(known) {
                        known.ends_at = ends_at;
                    }
                    self.store.save_rental(known.clone()).await?;
                }
                return Ok(());
            }
            // The rental this id named left the chain; another rental took the id.
            self.forget(id).await?;
        }
        tracing::info!(rental = id, renter = %event.renter, rate = %event.ratePerSecond, ends_at, "rental opened");
        let mut rental = RentalRecord {
            id,
            renter: event.renter.to_string(),
            ends_at,
            gpus: Vec::new(),
            state: WorkloadState::Starting.to_string(),
            detail: String::new(),
            started_at: None,
            ended_at: None,
            handle: None,
            // Nothing of a refused rental is the provider's: the renter stops it for a
            // full refund.
            paid_out: false,
            image: None,
            ssh_key: None,
            opened_block: Some(block),
            nonce: Some(nonce.clone()),
            refusal: None,
        };
        // The quote is used: its GPUs are no longer held for it, but (below) for the rental.
        self.reservations.release(event.nonce);
        let quote = self.store.quote(nonce).await?;
        let problem = match &quote {
            None => Some(format!(
                "it was not opened with a quote this provider issued (nonce {})",
                event.nonce
            )),
            Some(q) if q.renter != event.renter.to_string() => {
                Some(format!("the quote was issued to {}, not {}", q.renter, event.renter))
            }
            Some(q) if q.rate_per_second != event.ratePerSecond.to_string() => Some(format!(
                "the rate {} differs from the quoted {}",
                event.ratePerSecond, q.rate_per_second
            )),
            Some(q) if ends_at.saturating_sub(start) > q.max_duration => Some(format!(
                "its {} s exceed the quoted maximum of {} s",
                ends_at.saturating_sub(start),
                q.max_duration
            )),
            Some(_) if ends_at.saturating_sub(start) < self.config.min_duration => Some(format!(
                "its {} s are shorter than this provider's minimum of {} s",
                ends_at.saturating_sub(start),
                self.config.min_duration
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            return self
                .refuse(rental, format!("the terms differ from the quote: {problem}"))
                .await;
        }
        if let Some(q) = quote {
            rental.gpus = q.gpus;
            rental.image = q.image;
            rental.ssh_key = q.ssh_key;
        }
        let busy = self.store.open_rental(rental.clone()).await?;
        if !busy.is_empty() {
            rental.gpus.clear();
            let why = format!("GPU {} is already rented", busy.join(", "));
            return self.refuse(rental, why).await;
        }
        self.rentals.insert(id, rental.clone());
        self.start_workload(rental).await;
        // The GPUs are taken: the offer shrinks (or, with none left, lapses).
        self.publish_offer().await;
        Ok(())
    }

    /// Forgets a rental a chain reorganisation took away, as it never happened on the chain
    /// that counts: its workload stops, its GPUs are freed and its record is deleted. A
    /// workload still starting is waited for (the poll fails and is retried, the cursor
    /// unmoved), so it is never left running.
    async fn forget(&mut self, id: u64) -> anyhow::Result<()> {
        if self.starting.contains(&id) {
            anyhow::bail!(
                "rental {id} left the chain in a reorganisation while its workload starts; \
                 it is forgotten once the start ends"
            );
        }
        let Some(rental) = self.rentals.remove(&id) else { return Ok(()) };
        if let Some(handle) = &rental.handle
            && is_live(&rental)
        {
            self.runtime.stop(id, handle).await;
        }
        tracing::warn!(rental = id, renter = %rental.renter, "the rental left the chain in a reorganisation: workload stopped, GPUs freed");
        self.store.delete_rental(id).await?;
        self.publish_offer().await;
        Ok(())
    }

    /// Records a refusal and reports it with the provider's signed refusal, which returns
    /// the renter's whole deposit through `GpuEscrow.refuse` and leaves the provider
    /// nothing to withdraw, whoever submits it.
    async fn refuse(&mut self, mut rental: RentalRecord, why: String) -> anyhow::Result<()> {
        tracing::warn!(rental = rental.id, renter = %rental.renter, reason = %why, "rental refused");
        self.mark_refused(&mut rental, &format!("refused: {why}"));
        self.store.save_rental(rental.clone()).await?;
        self.rentals.insert(rental.id, rental);
        Ok(())
    }

    /// Marks `rental` refused for `why` and signs its refusal.
    fn mark_refused(&self, rental: &mut RentalRecord, why: &str) {
        rental.state = WorkloadState::Refused.to_string();
        rental.paid_out = true;
        match gpuflow_escrow::sign_refusal(&self.config.payout, rental.id, &self.chain.domain) {
            Ok(signature) => {
                rental.refusal = Some(signature.to_string());
                rental.detail = format!(
                    "{why}; the provider signed a refusal that returns the whole deposit: \
                     `gpuflow stop {}` submits it",
                    rental.id
                );
            }
            Err(e) => {
                tracing::error!(rental = rental.id, error = %e, "could not sign the refusal");
                rental.detail = format!("{why}; stop the rental to get the deposit back");
            }
        }
    }

    /// Starts the rental's workload in a task of its own: pulling an image may take
    /// minutes, during which quotes, heartbeats and other rentals must not wait. The
    /// outcome comes back to [`Agent::on_started`].
    async fn start_workload(&mut self, mut rental: RentalRecord) {
        if !self.starting.insert(rental.id) {
            return;
        }
        let spec = WorkloadSpec {
            rental_id: rental.id,
            gpus: rental.gpus.clone(),
            ends_at: rental.ends_at,
            image: rental.image.clone(),
            ssh_key: rental.ssh_key.clone(),
        };
        rental.detail = "starting the workload".into();
        self.rentals.insert(rental.id, rental);
        let (runtime, done) = (self.runtime.clone(), self.started_tx.clone());
        tokio::spawn(async move {
            let result = runtime.start(&spec).await;
            // Without a receiver the agent has stopped; its next start resumes the rental.
            let _ = done.send((spec.rental_id, result)).await;
        });
    }

    /// Records how a workload's start went. A workload whose rental ended or was stopped
    /// while it started is stopped at once; one that failed to start frees its GPUs.
    async fn on_started(&mut self, id: u64, result: Result<Started, RuntimeError>) {
        self.starting.remove(&id);
        let Some(mut rental) = self.rentals.get(&id).cloned() else { return };
        match result {
            Ok(started) if !is_live(&rental) => {
                tracing::info!(rental = id, "workload started after its rental ended; stopping it");
                self.runtime.stop(id, &started.handle).await;
                return;
            }
            Ok(started) => {
                rental.state = WorkloadState::Running.to_string();
                rental.started_at.get_or_insert(unix_now());
                rental.detail = started.detail;
                rental.handle = Some(started.handle);
            }
            Err(_) if !is_live(&rental) => return,
            Err(e) if rental.started_at.is_some() => {
                // It ran before (a restart failed): the seconds it ran were served, so it is
                // not refused in full; the renter stops it and claims the downtime.
                tracing::error!(rental = id, error = %e, "workload did not start again");
                rental.state = WorkloadState::Refused.to_string();
                rental.detail = format!(
                    "the workload could not start again ({e}); stop the rental to get the \
                     unused deposit back, and claim the downtime with `gpuflow claim-sla {id}`"
                );
                rental.paid_out = true;
            }
            Err(e) => {
                tracing::error!(rental = id, error = %e, "workload did not start");
                self.mark_refused(&mut rental, &format!("the workload could not start ({e})"));
            }
        }
        tracing::info!(rental = id, state = %rental.state, gpus = ?rental.gpus, detail = %rental.detail, "rental handled");
        if let Err(e) = self.store.save_rental(rental.clone()).await {
            tracing::error!(rental = id, error = %e, "could not record the rental");
        }
        let freed = !is_live(&rental);
        self.rentals.insert(id, rental);
        if freed {
            self.publish_offer().await;
        }
    }

    /// Ends workloads whose rental ran out or that exited on their own.
    async fn end_due_rentals(&mut self) {
        // Rentals end by the chain's clock, never the machine's: one running ahead would end
        // a renter's workload early.
        let Some(now) = self.clock.map(|clock| clock.now()) else { return };
        let running: Vec<(u64, u64, Option<String>)> = self
            .rentals
            .values()
            .filter(|r| is_live(r))
            .map(|r| (r.id, r.ends_at, r.handle.clone()))
            .collect();
        for (id, ends_at, handle) in running {
            let exited = match &handle {
                Some(handle) => !self.runtime.is_running(id, handle).await,
                None => false,
            };
            if now >= ends_at || exited {
                let why = if exited { "the workload exited" } else { "the rental ended" };
                if let Err(e) = self.finish(id, why).await {
                    tracing::error!(rental = id, error = %e, "could not record the rental's end");
                }
            }
        }
    }

    /// Stops the rental's workload and frees its GPUs; it is paid after the dispute window.
    async fn finish(&mut self, id: u64, why: &str) -> anyhow::Result<()> {
        let Some(mut rental) = self.rentals.get(&id).cloned() else { return Ok(()) };
        if let Some(handle) = &rental.handle {
            self.runtime.stop(id, handle).await;
            tracing::info!(rental = id, why, "workload stopped");
        }
        if is_live(&rental) {
            rental.state = WorkloadState::Ended.to_string();
            rental.ended_at = Some(unix_now());
            rental.detail = why.to_owned();
        }
        self.store.save_rental(rental.clone()).await?;
        self.rentals.insert(id, rental);
        self.publish_offer().await;
        Ok(())
    }

    /// Withdraws, in one transaction in a task of its own, every ended rental whose
    /// dispute window passed by the chain's clock.
    fn withdraw_due(&mut self) {
        let Some(clock) = self.clock else { return };
        if self.paying {
            return;
        }
        let (now, window) = (clock.now(), self.chain.dispute_window);
        let due: Vec<u64> = self
            .rentals
            .values()
            .filter(|r| {
                !r.paid_out && state_of(r) == WorkloadState::Ended && r.ends_at + window <= now
            })
            .map(|r| r.id)
            .collect();
        if due.is_empty() {
            return;
        }
        self.paying = true;
        let (escrow, done) = (self.escrow.clone(), self.chain_tx.clone());
        tokio::spawn(async move {
            let _ = done.send(chain::pay_out(escrow, due).await).await;
        });
    }

    /// Withdraws from every rental not yet paid out once what they hold together passes
    /// the configured threshold, so long rentals pay the provider as they go.
    fn withdraw_over_threshold(&mut self) {
        let threshold = self.config.withdraw_threshold;
        if threshold.is_zero() || self.paying {
            return;
        }
        let ids: Vec<u64> = self.rentals.values().filter(|r| !r.paid_out).map(|r| r.id).collect();
        if ids.is_empty() {
            return;
        }
        self.paying = true;
        let (escrow, done) = (self.escrow.clone(), self.chain_tx.clone());
        tokio::spawn(async move {
            let _ = done.send(chain::pay_out_over(escrow, ids, threshold).await).await;
        });
    }
}
