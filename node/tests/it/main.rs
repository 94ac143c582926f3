//! Integration tests of the node: in-process nodes on real loopback swarms, and the real
//! `gpuflow-node` binary for crash safety and configuration.

mod network;
mod process;
mod support;
