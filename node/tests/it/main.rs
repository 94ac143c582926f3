//! Integration tests of the node: in-process nodes on real loopback swarms, and the real
//! `gpuflow-node` binary for crash safety and configuration, and the chain watcher against
//! a real anvil.

mod chain;
mod challenges;
mod network;
mod process;
mod support;
