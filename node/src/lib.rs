//! The gpuflow node: an index of the offers providers gossip, searchable over HTTP.
//!
//! [`start`] runs a whole node: the libp2p swarm (`gpuflow-p2p`), the ingest
//! (`ingest.rs`) that checks every gossiped offer and heartbeat before storing it, the
//! SQLite [`Store`], the chain watcher (`watcher.rs`) that indexes `GpuEscrow` rentals when
//! given an RPC endpoint, and the HTTP API ([`app`]) with the Vast.ai-style [`Query`]
//! language, and the marketplace page (`web/`) that shows the same API to people. The
//! challenger (`challenger.rs`) has providers prove their GPUs with timed matrix products
//! (`CHALLENGE.md`).
//! The `gpuflow-node` binary adds configuration ([`NodeConfig`]) and signal handling.

pub mod api;
mod challenger;
pub mod config;
mod error;
mod ingest;
pub mod metrics;
mod node;
pub mod reliability;
pub mod search;
pub mod store;
#[cfg(test)]
mod testing;
mod watcher;
pub mod web;

pub use api::{ApiState, app};
pub use challenger::ChallengeConfig;
pub use config::{Args, ChainConfig, NodeConfig, RateLimit, ReliabilityConfig};
pub use error::StoreError;
pub use ingest::{CHECK_CHUNK, MAX_CLOCK_SKEW, MAX_HEARTBEAT_AGE, on_every_core};
pub use node::{NodeError, RunningNode, start};
pub use search::{Cursor, OfferSummary, Order, Query, QueryError, SortKey};
pub use store::{
    HeartbeatUpsert, OfferDetail, Page, ProviderInfo, RentalRecord, Search, Store, Upsert,
};
pub use watcher::WatchError;
