//! The provider's main loop: advertise, heartbeat, quote, watch the escrow, run
//! workloads, get paid.
//!
//! One task owns all rental state; network requests, chain results and the timers are
//! branches of the same `select!`, so nothing needs a lock. The chain itself is only ever
//! called from tasks of their own ([`chain`]), so a slow or hanging RPC never holds
//! up quotes, heartbeats or signals. Every change of a rental is written to the [`Store`]
//! before the agent acts on it, and chain events are re-read from the last fully processed
//! block after a restart, so a crash loses nothing and a GPU is never handed out twice.
//!
//! A rental belongs to the machine its on-chain `offerId` names: several agents may share
//! one payout address, and each handles only the rentals of its own offer. A quote reserves
//! its GPUs until it is used or expires ([`reservations`]); a rental the agent cannot
//! run is refused with a signed refusal that returns the renter's whole deposit.

mod acceptance;
mod adverts;
pub mod chain;
mod challenges;
mod error;
mod events;
mod extensions;
pub(crate) mod nonces;
mod payouts;
mod quotes;
pub mod reservations;
mod volumes;
mod workloads;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use alloy::{
    primitives::{B256, U256},
    signers::local::PrivateKeySigner,
    sol_types::Eip712Domain,
};
use gpuflow_escrow::Escrow;
use gpuflow_p2p::{Network, NetworkEvent};
use gpuflow_protocol::{
    GpuHealth, Identity, OfferId, QuoteTerms, RentalRequest, RentalResponse, WorkloadState,
    unix_now,
};
use tokio::sync::{mpsc, watch};

pub use error::AgentError;

use self::{
    chain::{Backoff, ChainClock, ChainDone},
    quotes::QuoteAsk,
    reservations::{Reservation, Reservations},
};
use crate::{
    gpus::Inventory,
    host::Host,
    runtime::{Runtime, RuntimeError, Started},
    store::{QuoteRecord, RentalRecord, Store},
};

/// The file in the data directory whose presence drains the agent (`gpuflow-provider
/// drain`): no new rentals, the offer withdrawn, running rentals untouched.
pub const DRAIN_FILE: &str = "drain";

/// The file in the data directory that announces a maintenance window (`gpuflow-provider
/// maintenance`): JSON `{"from": UNIX, "until": UNIX}`.
pub const MAINTENANCE_FILE: &str = "maintenance.json";

/// The maintenance window announced in `data_dir`, if any (an unreadable file is none).
pub fn read_maintenance(data_dir: &std::path::Path) -> Option<gpuflow_protocol::Maintenance> {
    let text = std::fs::read_to_string(data_dir.join(MAINTENANCE_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

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
    /// The machine around the GPUs: its CPUs, memory and free disk go in the offer.
    pub host: Host,
    /// Images pulled when the agent starts, and listed in the offer once ready.
    pub pull_ahead: Vec<String>,
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
    /// Images renters may ask for (see [`gpuflow_protocol::image_allowed`]), carried in the
    /// offer; empty: any.
    pub allowed_images: Vec<String>,
    /// Whether the runtime publishes a renter's ports (containers do, processes do not).
    pub publishes_ports: bool,
    /// How long a renter's volume outlives the rental that last used it; zero keeps no
    /// volumes.
    pub volume_grace: Duration,
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
    /// Chain time at which the latest poll that reached the head began: every block
    /// mined before then has been read. A chain that mines only on transactions has no
    /// block at a rental's end, so this, not the latest block's time, decides that an end
    /// passed with no extension unread.
    read_until: u64,
    /// Where chain tasks report; the receiver is taken by [`Agent::run`].
    chain_tx: mpsc::Sender<ChainDone>,
    chain_rx: Option<mpsc::Receiver<ChainDone>>,
    /// A poll is in flight.
    polling: bool,
    /// A payout is in flight.
    paying: bool,
    /// An automatic extension task is in flight.
    auto_extending: bool,
    /// Draining for maintenance ([`DRAIN_FILE`]): no quotes, no offer.
    draining: bool,
    /// The maintenance window announced ([`MAINTENANCE_FILE`]).
    maintenance: Option<gpuflow_protocol::Maintenance>,
    /// When each rental in its last ten minutes may next be checked for an automatic
    /// extension.
    next_auto_check: std::collections::HashMap<u64, std::time::Instant>,
    /// When the next poll may start after RPC failures.
    backoff: Backoff,
    /// The GPUs of the last offer published, while it may still be live on the nodes.
    advertised: Vec<gpuflow_protocol::GpuInfo>,
    /// Rentals whose workload is being started (an image pull may take minutes).
    starting: BTreeSet<u64>,
    /// Where start tasks report; the receiver is taken by [`Agent::run`].
    started_tx: mpsc::Sender<(u64, Result<Started, RuntimeError>)>,
    started_rx: Option<mpsc::Receiver<(u64, Result<Started, RuntimeError>)>>,
    /// Images of [`AgentConfig::pull_ahead`] pulled so far, listed in the offer.
    ready_images: Vec<String>,
    /// Nodes' matrix-product challenges: answers kept for their openings.
    challenges: challenges::Challenges,
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
    ) -> Result<Self, AgentError> {
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
            let QuoteRecord { nonce, renter, gpus, deadline, .. } = quote;
            reservations.reserve(nonce, Reservation { renter, peer: None, gpus, deadline });
        }
        let offer_id = OfferId::of(&config.identity.peer_id());
        let payout = config.payout.address();
        let counter = nonces::first_counter(&store, &escrow, payout, offer_id, unix_now()).await?;
        let next_nonce = nonces::nonce(offer_id, counter);
        let config_gpus = config.inventory.gpus.clone();
        let draining = config.data_dir.join(DRAIN_FILE).exists();
        let maintenance = read_maintenance(&config.data_dir);
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
            next_nonce,
            heartbeat_seq: 0,
            clock: None,
            processed_time: 0,
            read_until: 0,
            chain_tx,
            chain_rx: Some(chain_rx),
            polling: false,
            paying: false,
            auto_extending: false,
            draining,
            maintenance,
            next_auto_check: std::collections::HashMap::new(),
            backoff,
            // What the last run published is unknown: if every GPU turns out rented,
            // withdraw whatever offer may still be live.
            advertised: config_gpus,
            starting: BTreeSet::new(),
            started_tx,
            started_rx: Some(started_rx),
            ready_images: Vec::new(),
            challenges: challenges::Challenges::default(),
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
    ) -> Result<(), AgentError> {
        let mut republish = tokio::time::interval(self.config.offer_interval);
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut started = self.started_rx.take().expect("an agent runs once");
        let mut chain_done = self.chain_rx.take().expect("an agent runs once");
        let mut pulled = self.pull_images_ahead();
        loop {
            tokio::select! {
                Some((image, result)) = pulled.recv() => self.on_pulled(image, result).await,
                Some((id, result)) = started.recv() => self.on_started(id, result).await,
                Some(done) = chain_done.recv() => self.on_chain(done).await,
                event = events.recv() => match event {
                    Some(event) => self.on_network_event(event).await,
                    None => return Err(AgentError::NetworkStopped),
                },
                _ = republish.tick() => self.publish_offer().await,
                _ = heartbeat.tick() => {
                    self.follow_drain().await;
                    self.publish_heartbeat().await;
                    self.withdraw_over_threshold();
                    self.delete_expired_volumes().await;
                }
                _ = poll.tick() => {
                    self.start_poll();
                    self.end_due_rentals().await;
                    self.auto_extend_due();
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
                    RentalRequest::Quote { renter, duration, image, ssh_key, gpus, launch } => {
                        let ask = QuoteAsk { renter, duration, gpus, image, ssh_key, launch };
                        self.quote(peer, ask).await
                    }
                    RentalRequest::Logs { rental_id, issued_at, signature } => {
                        self.logs(rental_id, issued_at, signature).await
                    }
                    RentalRequest::Volumes { renter, issued_at, signature } => {
                        self.volumes(renter, issued_at, signature).await
                    }
                };
                if let Err(e) = self.network.respond(channel, response).await {
                    tracing::warn!(error = %e, "could not answer a rental request");
                }
            }
            NetworkEvent::ChallengeRequest { peer, request, channel } => {
                self.on_challenge(peer, request, channel).await
            }
            _ => {}
        }
    }

    /// Takes in what a chain task reports.
    async fn on_chain(&mut self, done: ChainDone) {
        match done {
            ChainDone::Polled { observed, result } => self.on_poll_done(observed, result).await,
            ChainDone::Paid { result, settled } => self.on_paid(result, settled).await,
            ChainDone::AutoExtended { results } => self.on_auto_extended(results),
        }
    }
}
