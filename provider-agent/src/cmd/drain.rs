//! `gpuflow-provider drain` and `undrain`: maintenance without stopping the agent. A
//! draining agent takes no new rentals (quotes are refused, the offer withdrawn) while the
//! running ones go on to their end; it keeps its heartbeats, so nodes do not count the
//! machine down. The running agent reads the flag file ([`crate::agent::DRAIN_FILE`]) in
//! its data directory every few seconds.

use anyhow::Context;

use super::connect::load_config;
use crate::{
    agent::{DRAIN_FILE, MAINTENANCE_FILE},
    opts::{DrainArgs, MaintenanceArgs},
};

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

pub(super) fn maintenance(args: MaintenanceArgs) -> anyhow::Result<()> {
    let data_dir = data_dir(&args.dir)?;
    let file = data_dir.join(MAINTENANCE_FILE);
    if args.off {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", file.display()));
            }
            _ => println!("no maintenance window announced for {}", data_dir.display()),
        }
        return Ok(());
    }
    let hours = |flag: &str, text: &Option<String>| {
        gpuflow_protocol::hours_to_seconds(text.as_deref().unwrap_or("0"))
            .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let (wait, length) = (hours("--in", &args.r#in)?, hours("--hours", &args.hours)?);
    anyhow::ensure!(
        length > 0 && length <= gpuflow_protocol::MAX_MAINTENANCE_SECS,
        "--hours: a window lasts more than zero and at most {} hours",
        gpuflow_protocol::MAX_MAINTENANCE_SECS / 3600
    );
    let from = gpuflow_protocol::unix_now() + wait;
    let window = gpuflow_protocol::Maintenance { from, until: from + length };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(&file, serde_json::to_string(&window)?)
        .with_context(|| format!("writing {}", file.display()))?;
    println!(
        "maintenance from unix time {} to {} announced for {}: the agent's heartbeats carry it, \
         it takes no rental that would run into it and offers nothing during it; nodes do not \
         count the machine down in it while it is not rented. `--off` withdraws it.",
        window.from,
        window.until,
        data_dir.display()
    );
    Ok(())
}

/// The agent's data directory, as `run` finds it.
fn data_dir(args: &DrainArgs) -> anyhow::Result<std::path::PathBuf> {
    super::data_dir(args.data_dir.clone(), &load_config(args.config.as_deref())?)
}
