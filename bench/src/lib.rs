//! gpuflow's benchmarks: the figures promised in `BENCHMARKS.md` and the seeded data and
//! load generators that measure them.
//!
//! Each module measures one figure family and returns a [`report::Section`]:
//! [`gas`] (escrow gas via `contracts/script/measure-gas.sh`), [`search`] (latency,
//! throughput and memory of the real `gpuflow-node` binary over HTTP), [`heartbeat`]
//! (verified and stored heartbeats per second), [`propagation`] (provider → index offer
//! gossip on loopback), [`rental`] (`gpuflow rent` to a running workload on the devnet),
//! [`container`] (the opening block to a shell in a rented container),
//! [`reliability`] (every provider's scores from 30 days of uptime buckets) and [`million`]
//! (memory, search latency and sync at a million offers, and the modelled gossip load).
//! [`data`] makes the signed offers and heartbeats, deterministically from a seed.

pub mod container;
pub mod data;
pub mod gas;
pub mod heartbeat;
pub mod million;
pub mod propagation;
pub mod reliability;
pub mod rental;
pub mod report;
pub mod search;
