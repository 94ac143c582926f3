//! `gpuflow templates`.
use clap::Args;
use serde_json::json;

use super::{Ctx, print_json};
use crate::{templates, ui};

/// `gpuflow templates`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow templates
  gpuflow --json templates
  gpuflow search --template pytorch-jupyter 'dph<=0.5' -o dph
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 2 --template pytorch-jupyter --ssh-key ~/.ssh/id_ed25519.pub

A template fills in the image, ports, environment and start command of `rent`; flags
given to `rent` win. `search --template` finds the machines ready for it: their provider
allows its image (or has it pulled) and their GPUs have the memory it needs. `rent`
refuses an offer that does not run the image or has less GPU memory than the template
needs, and prints what to open (the Jupyter URL with its token, an API's base URL) once
the rental runs. The catalog is in the repository's templates/ directory.")]
pub struct TemplatesArgs {}

impl TemplatesArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let all = templates::all();
        if ctx.json {
            print_json(&json!(all));
            return Ok(());
        }
        let mut table = ui::table(&["TEMPLATE", "IMAGE", "PORTS", "MIN VRAM", "SSH", "WHAT"]);
        for t in &all {
            let ports: Vec<String> = t.ports.iter().map(u16::to_string).collect();
            table.add_row(vec![
                t.name.clone(),
                t.image.clone(),
                if ports.is_empty() { "-".into() } else { ports.join(",") },
                format!("{} GB", t.min_vram_gb),
                if t.ssh { "yes" } else { "no" }.into(),
                t.description.clone(),
            ]);
        }
        println!("{table}");
        Ok(())
    }
}
