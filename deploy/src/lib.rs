//! A local gpuflow network in one call: anvil from the npm-installed Foundry, `MockUSDC`
//! and `GpuEscrow` deployed from the forge artifacts, a funded renter with an encrypted
//! keystore, and a real `gpuflow-node` and `gpuflow-provider` on free ports.
//!
//! The `gpuflow-devnet` binary runs it for `make demo`; the end-to-end tests use the
//! library directly. Everything started is stopped when the [`Devnet`] is dropped.
//! [`deploy`] is the deployment path for any EVM chain; the devnet uses it too.

mod agent;
mod chain;
pub mod deploy;
mod devnet;
mod process;

pub use agent::AgentSpec;
pub use chain::{ChainOptions, LocalChain, anvil_bin};
pub use devnet::{DEVNET_PASSWORD, Devnet, DevnetOptions, RENTER_FUNDS};
pub use process::{bin_dir, ready_field, spawn_ready};
