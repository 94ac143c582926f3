//! Rust bindings to the `GpuEscrow` contract.
//!
//! The types come from the forge artifacts in `contracts/out` through alloy's `sol!`, so
//! the ABI the Rust side speaks is always the one just compiled: `make` builds the
//! contracts before cargo, and a missing artifact is a compile error, never a stale ABI.
//! [`Escrow`] wraps the calls a renter and a provider make, waits for their receipts and
//! turns every revert into a sentence (see [`explain`]).

pub mod admin;
mod bindings;
mod client;
mod connect;
mod downtime;
mod error;
mod events;
mod explain;
pub mod keystore;
mod quote;
mod refusal;
mod wallet;

pub use bindings::{GpuEscrow, IERC20, MockUSDC, Rental};
pub use client::Escrow;
pub use connect::{RPC_TIMEOUT, RPC_TIMEOUT_ENV, connect, rpc_reason, rpc_timeout};
pub use downtime::{DowntimeTerms, downtime_signer, pack_signatures, sign_downtime};
pub use error::EscrowError;
pub use events::{
    AutoExtendSet, Credited, EscrowEvent, Extended, LOG_RANGE, Opened, Party, Refused,
    RentalHistory, Stopped, Withdrawn, block_ranges,
};
pub use explain::explain;

/// How long before a rental's end anyone may extend it from its automatic extension
/// budget: the escrow's `AUTO_EXTEND_LEAD`, in seconds.
pub const AUTO_EXTEND_LEAD: u64 = 600;
pub use quote::{cost, domain, quote_signer, sign_quote, to_sol};
pub use refusal::{refusal_hash, refusal_signer, sign_refusal};
pub use wallet::{
    NOT_PRINTED, PASSWORD_ENV, WalletError, is_key_env_name, is_wrong_password, key_from_env,
    keystore_address, looks_like_key, shown, shown_path,
};
