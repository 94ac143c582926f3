//! The gpuflow provider agent: reads the GPUs through NVML ([`gpus`]), advertises them,
//! serves quotes and runs the rentals opened on the escrow ([`agent`]) in a workload
//! [`runtime`] (a local process, or a [`docker`] container), keeping its state in a
//! SQLite [`store`] so restarts resume where they stopped, one agent per data directory
//! ([`lock`]). [`config`] reads `provider.toml` and prices; [`earnings`] reads and
//! withdraws what the chain owes. The commands and their flags are in [`cmd`] and
//! [`opts`]; `main.rs` only parses and reports. [`host`] reads the machine around the
//! GPUs: its CPUs, memory and disk, and each rental's share of them.

pub mod agent;
pub mod cmd;
pub mod config;
pub mod cuda;
pub mod docker;
pub mod earnings;
pub mod gpus;
pub mod host;
pub mod lock;
pub mod opts;
pub mod runtime;
pub mod store;
