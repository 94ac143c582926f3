//! `gpuflow search`.
use clap::Args;

use crate::{node::NodeClient, opts::NodeOpts};

/// `gpuflow search`.
#[derive(Debug, Args)]
#[command(
    after_help = "Query terms are `field op value`, e.g. 'gpu_name=RTX_4090 gpu_ram>=24 dph<=0.5'.
Fields: gpu_name num_gpus gpu_ram dph verified cuda driver region payout.
Operators: = == != < <= > >= in notin (lists as [a,b]). `_` stands for a space."
)]
pub struct SearchArgs {
    /// Vast.ai-style query; empty lists every live offer.
    #[arg(default_value = "")]
    query: String,
    /// Order by a field, `-` suffix for descending (e.g. `dph`, `gpu_ram-`).
    #[arg(short = 'o', long = "order")]
    order: Option<String>,
    /// Most offers to show.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    node: NodeOpts,
}

impl SearchArgs {
    pub(crate) async fn run(self, json: bool) -> anyhow::Result<()> {
        let offers = NodeClient::new(&self.node.node)
            .search(&self.query, self.order.as_deref(), self.limit)
            .await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&offers)?);
            return Ok(());
        }
        if offers.is_empty() {
            println!("no live offer matches; try a wider query");
            return Ok(());
        }
        println!(
            "{:<16}  {:<26} {:>3} {:>8} {:>10}  {:<8} {:<10} {:<5}",
            "ID", "GPU", "N", "VRAM_GB", "$/HOUR", "VERIFIED", "REGION", "CUDA"
        );
        for o in &offers {
            println!(
                "{:<16}  {:<26} {:>3} {:>8} {:>10}  {:<8} {:<10} {:<5}",
                o.id,
                o.gpu_name,
                o.num_gpus,
                gpuflow_protocol::format_units(u128::from(o.gpu_ram_mb), 3),
                o.dph,
                if o.verified { "yes" } else { "no" },
                o.region,
                o.cuda
            );
        }
        Ok(())
    }
}
