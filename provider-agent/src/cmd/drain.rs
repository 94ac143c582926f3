//! `gpuflow-provider drain` and `undrain`: maintenance without stopping the agent. A
//! draining agent takes no new rentals (quotes are refused, the offer withdrawn) while the
//! running ones go on to their end; it keeps its heartbeats, so nodes do not count the
//! machine down. The running agent reads the flag file ([`crate::agent::DRAIN_FILE`]) in
//! its data directory every few seconds.

use anyhow::Context;

use super::connect::load_config;
use crate::{agent::DRAIN_FILE, opts::DrainArgs};

pub(super) fn drain(args: DrainArgs) -> anyhow::Result<()> {
    let data_dir = data_dir(&args)?;
    let flag = data_dir.join(DRAIN_FILE);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(&flag, format!("drained at unix time {}\n", gpuflow_protocol::unix_now()))
        .with_context(|| format!("writing {}", flag.display()))?;
    println!(
        "draining {}: the agent takes no new rentals and withdraws its offer within seconds; \
         running rentals go on to their end. `gpuflow-provider undrain` takes rentals again.",
        data_dir.display()
    );
    Ok(())
}

pub(super) fn undrain(args: DrainArgs) -> anyhow::Result<()> {
    let data_dir = data_dir(&args)?;
    let flag = data_dir.join(DRAIN_FILE);
    match std::fs::remove_file(&flag) {
        Ok(()) => {
            println!("{} takes rentals again; the offer is back within seconds", data_dir.display())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("{} was not draining; nothing changed", data_dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("removing {}", flag.display())),
    }
    Ok(())
}

/// The agent's data directory, as `run` finds it.
fn data_dir(args: &DrainArgs) -> anyhow::Result<std::path::PathBuf> {
    super::data_dir(args.data_dir.clone(), &load_config(args.config.as_deref())?)
}
