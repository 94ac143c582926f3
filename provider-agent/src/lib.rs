//! The gpuflow provider agent: reads the GPUs through NVML ([`gpus`]), advertises them
//! and runs the rentals opened on the escrow ([`agent`]) in a workload [`runtime`].

pub mod agent;
pub mod gpus;
pub mod runtime;
