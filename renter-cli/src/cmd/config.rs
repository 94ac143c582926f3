//! `gpuflow config`.

use clap::Args;
use serde_json::json;

use super::{Ctx, print_json};
use crate::{config::Source, ui};

/// `gpuflow config`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow config
  gpuflow --profile sepolia config --json

config.toml ($XDG_CONFIG_HOME/gpuflow/config.toml):
  profile = \"devnet\"          # used when neither --profile nor GPUFLOW_PROFILE is set
  [profiles.devnet]
  node = \"http://127.0.0.1:8080\"
  rpc = \"http://127.0.0.1:8545\"
  escrow = \"0x...\"
  chain_id = 31337             # a different chain behind `rpc` is refused
  from_block = 0               # the escrow's deployment block: `rentals` reads events from it
  wallet = \"alice\"            # name from `gpuflow wallet list`")]
pub struct ConfigArgs {}

impl ConfigArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let s = ctx.settings()?;
        let file = crate::config::path()?;
        if ctx.json {
            print_json(&json!({
                "file": file,
                "keystores": crate::wallet::dir()?,
                "settings": s,
            }));
            return Ok(());
        }
        let key = s.key.value.to_string();
        let unset = || ("-".to_owned(), Source::Default.to_string());
        let rows = [
            ("profile", s.profile.map(|p| (p.value, p.source.to_string())).unwrap_or_else(unset)),
            ("node", (s.node.value, s.node.source.to_string())),
            ("rpc", (s.rpc.value, s.rpc.source.to_string())),
            (
                "escrow",
                s.escrow.map(|e| (e.value.to_string(), e.source.to_string())).unwrap_or_else(unset),
            ),
            (
                "chain_id",
                s.chain_id
                    .map(|c| (c.value.to_string(), c.source.to_string()))
                    .unwrap_or_else(unset),
            ),
            ("from_block", (s.from_block.value.to_string(), s.from_block.source.to_string())),
            ("wallet", (key, s.key.source.to_string())),
        ];
        let mut table = ui::table(&["SETTING", "VALUE", "FROM"]);
        for (name, (value, source)) in rows {
            table.add_row(vec![name.to_owned(), value, source]);
        }
        println!("{table}");
        println!("config file: {}", file.display());
        println!("keystores:   {}", crate::wallet::dir()?.display());
        Ok(())
    }
}
