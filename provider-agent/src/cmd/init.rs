//! `gpuflow-provider init`: the identity, an encrypted payout keystore and a commented
//! config file.

use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use gpuflow_protocol::Identity;

use super::{connect::password, default_config_path, default_data_dir};
use crate::{
    config::{self, PASSWORD_ENV},
    opts::InitArgs,
};

pub(super) async fn run(args: InitArgs) -> anyhow::Result<()> {
    let config_path = default_config_path()?;
    let config_dir = config_path.parent().context("config path has a directory")?.to_owned();
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let keystore = config_dir.join("keystore").join("provider.json");
    for path in [&config_path, &keystore] {
        anyhow::ensure!(
            args.force || !path.exists(),
            "{} exists; pass --force to replace it (a replaced keystore loses its earnings \
             address unless you keep a copy)",
            path.display()
        );
    }
    // Refused before anything is written: a node that does not answer, a short password.
    let bootstrap = match &args.node {
        Some(url) => {
            gpuflow_cli_util::bootstrap::node_addrs(url).await.map_err(anyhow::Error::msg)?
        }
        None => Vec::new(),
    };
    // The machine's GPU models, priced in the config with a hint `run` accepts.
    let mut models: Vec<String> = Vec::new();
    if let Ok(inventory) = crate::gpus::inventory(None) {
        for gpu in inventory.gpus {
            if !models.contains(&gpu.name) {
                models.push(gpu.name);
            }
        }
    }
    let password = password(true)?;
    gpuflow_escrow::keystore::check_password(&password)
        .map_err(|e| anyhow::anyhow!("{e}; choose a longer one ({PASSWORD_ENV} or the prompt)"))?;
    let identity = Identity::load_or_create(&data_dir.join("identity.key"))
        .with_context(|| format!("creating the identity in {}", data_dir.display()))?;
    let keystore_dir = keystore.parent().context("keystore path has a directory")?;
    let signer = PrivateKeySigner::random();
    gpuflow_escrow::keystore::create(keystore_dir, "provider.json", &signer, &password)?;
    std::fs::write(
        &config_path,
        config::template(args.escrow, &keystore, &data_dir, &bootstrap, &models),
    )
    .with_context(|| format!("writing {}", config_path.display()))?;
    println!("peer id:        {}", identity.peer_id());
    println!("payout address: {}", signer.address());
    println!("keystore:       {}", keystore.display());
    println!("config:         {}", config_path.display());
    if bootstrap.is_empty() {
        println!("Fund the payout address with a little gas, set prices in the config, then run");
        println!(
            "`gpuflow-provider run --bootstrap <node multiaddr>` (or init again with --node URL)."
        );
    } else {
        println!("bootstrap:      {}", bootstrap.join(", "));
        println!("Fund the payout address with a little gas, set prices in the config, then run");
        println!("`gpuflow-provider run`.");
    }
    Ok(())
}
