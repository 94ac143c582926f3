//! The gpuflow node: an index of the offers providers gossip, searchable over HTTP.
//!
//! [`Store`] keeps verified offers in SQLite behind a thread of its own, [`Query`] is the
//! Vast.ai-style search language, and [`app`] is the HTTP API over both. The `gpuflow-node`
//! binary connects them to the p2p network.

pub mod api;
mod error;
pub mod query;
pub mod store;
#[cfg(test)]
mod testing;

pub use api::{ApiState, app};
pub use error::{QueryError, StoreError};
pub use query::{Order, Query, SortKey};
pub use store::{OfferDetail, OfferSummary, Store, Upsert};
