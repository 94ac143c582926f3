//! `gpuflow-provider gpus`: the GPUs this machine would offer.

use gpuflow_protocol::format_units;

use crate::{gpus, opts::GpusArgs};

pub(super) fn run(args: GpusArgs) -> anyhow::Result<()> {
    let GpusArgs { simulate_gpus, json } = args;
    let inventory = gpus::inventory(simulate_gpus.as_deref())?;
    let report = inventory.report();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{:<4} {:<28} {:>9} {:<18} {:<5} {:<10} {:<6} {:>7} UUID",
        "#", "NAME", "VRAM_GB", "PCI", "CC", "DRIVER", "CUDA", "POWER_W"
    );
    for gpu in &report.gpus {
        let g = gpu.info;
        println!(
            "{:<4} {:<28} {:>9} {:<18} {:<5} {:<10} {:<6} {:>7} {}",
            gpu.index,
            g.name,
            format_units(u128::from(g.memory_bytes / 1_000_000), 3),
            g.pci_bus_id,
            g.compute_capability,
            g.driver_version,
            g.cuda_version,
            gpu.power_limit_w.map_or("-".into(), |w| w.to_string()),
            g.uuid
        );
    }
    if !report.verified {
        println!("(simulated inventory: offers will say verified: false)");
    }
    Ok(())
}
