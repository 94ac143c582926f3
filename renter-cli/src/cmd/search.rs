//! `gpuflow search`.
use clap::Args;
use comfy_table::CellAlignment;
use gpuflow_protocol::{
    api::OfferSummary,
    search::{OPERATORS, SearchField, wrap_words},
    unix_now,
};

use super::Ctx;
use crate::{
    error::{Exit, fail},
    templates::{self, Template},
    ui,
};

/// `gpuflow search`.
#[derive(Debug, Args)]
#[command(after_help = after_help())]
pub struct SearchArgs {
    /// Vast.ai-style query; empty lists every live offer.
    #[arg(default_value = "")]
    query: String,
    /// Order by a field, `-` suffix for descending (e.g. `dph`, `gpu_ram-`); up to three,
    /// each breaking the ties of the one before (`reliability-,dph`).
    #[arg(short = 'o', long = "order", value_name = "FIELD[-][,...]")]
    order: Option<String>,
    /// Most offers to show.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Only machines ready for this template (`gpuflow templates`): its image allowed or
    /// pulled, and its GPU memory; added to the query.
    #[arg(long, value_name = "NAME")]
    template: Option<String>,
}

/// The help after the flags; the fields and operators come from the node's table of them.
fn after_help() -> String {
    let fields = wrap_words("Fields: ", &SearchField::names(), 89);
    format!(
        "Examples:
  gpuflow search
  gpuflow search 'gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 dph<=0.5' -o dph
  gpuflow search 'gpu_name in [RTX_4090,A100] verified=true' -o gpu_ram- --limit 5
  gpuflow search 'reliability>0.99 uptime>=0.95 rentals>=3' -o reliability-,dph
  gpuflow search 'gpu_name=\"RTX 4090\" cuda_vers>=12.2 gpu_total_ram>=48' -o dph
  gpuflow search 'region=eu' --json | jq '.[0].id'
  gpuflow search --template pytorch-jupyter 'dph<=0.5' -o dph
  gpuflow search 'image=ollama/ollama:0.3.14 gpu_ram>=8'

Query terms are `field op value`, e.g. 'gpu_name=RTX_4090 gpu_ram>=24 dph<=0.5'.
{fields}
(an unknown field is an error naming it). reliability: share of rented time up over 30
days, smoothed toward 0.9 for newcomers; uptime: share of listed time up; both from 0 to 1.
Operators: {OPERATORS} (lists as [a,b]). `_` stands for a space, or quote a value
(gpu_name=\"RTX 4090\"). Vast.ai's names work too (cuda_vers, dph_total, geolocation,
reliability2); those gpuflow has no measure for (dlperf, compute_cap) are refused.
RELIAB and UPTIME show `-` where the node does not publish them.

image=IMAGE finds the machines whose provider allows the image (or has it pulled).
--template NAME adds `image=IMAGE gpu_total_ram>=GB` for the template, so every offer
found can be rented with `rent --template NAME`. With either, PULLED says whether the
image is on the machine already (a rental of it then starts without a download); --json
adds it as `image_pulled`."
    )
}

impl SearchArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let (query, image) = match &self.template {
            Some(name) => {
                let template = templates::find(name).map_err(|e| fail(Exit::Usage, e))?;
                (template_query(&template, &self.query), Some(template.image))
            }
            None => (self.query.clone(), asked_image(&self.query).map(str::to_owned)),
        };
        let found =
            ctx.settings()?.node().search_raw(&query, self.order.as_deref(), self.limit).await?;
        // What the page left out goes to stderr, so the JSON on stdout stays a list.
        if found.more {
            eprintln!(
                "more offers match than the {} shown; narrow the query or raise --limit",
                found.offers.len()
            );
        }
        if found.hidden_conflicts > 0 {
            eprintln!(
                "{} more match but are hidden: each shares a GPU UUID with another live offer, \
                 so one of them claims hardware it does not have; add `conflicts=true` to the \
                 query to see them",
                found.hidden_conflicts
            );
        }
        let offers = found.offers;
        if ctx.json {
            let raw: Vec<_> = offers
                .into_iter()
                .map(|(o, mut raw)| {
                    if let (Some(image), Some(fields)) = (&image, raw.as_object_mut()) {
                        fields.insert("image_pulled".into(), o.images.contains(image).into());
                    }
                    raw
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&raw)?);
            return Ok(());
        }
        if offers.is_empty() {
            println!("no live offer matches; try a wider query");
            return Ok(());
        }
        let mut header = vec![
            "ID", "GPU", "N", "VRAM", "$/HOUR", "$/GPU/H", "RELIAB", "UPTIME", "AGE", "REGION",
            "VERIFIED",
        ];
        if image.is_some() {
            header.push("PULLED");
        }
        let mut table = ui::table(&header);
        for (o, raw) in &offers {
            let mut row = row(o, raw);
            if let Some(image) = &image {
                row.push(if o.images.contains(image) { "yes" } else { "no" }.into());
            }
            table.add_row(row);
        }
        for i in [2, 3, 4, 5, 6, 7, 8] {
            if let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        println!("{table}");
        Ok(())
    }
}

/// `query` narrowed to the machines ready for `template`: its image allowed or pulled, and
/// at least its GPU memory over all the GPUs, which `rent` rents without `--gpus`.
fn template_query(template: &Template, query: &str) -> String {
    let ready = format!("image={} gpu_total_ram>={}", template.image, template.min_vram_gb);
    format!("{ready} {query}").trim_end().to_owned()
}

/// The image a plain `image=IMAGE` term of `query` names, whose readiness the results show.
fn asked_image(query: &str) -> Option<&str> {
    query.split_whitespace().find_map(|term| {
        let lower = term.get(..6).map(str::to_ascii_lowercase);
        let value = term.get(6..).filter(|_| lower.as_deref() == Some("image="))?;
        let value = value.strip_prefix('=').unwrap_or(value).trim_matches(['"', '\'']);
        Some(value).filter(|image| !image.is_empty())
    })
}

fn row(o: &OfferSummary, raw: &serde_json::Value) -> Vec<String> {
    vec![
        o.id.clone(),
        o.gpu_name.clone(),
        o.num_gpus.to_string(),
        format!("{} GB", gpuflow_protocol::format_units(u128::from(o.gpu_ram_mb), 3)),
        o.dph.clone(),
        o.dph_per_gpu.clone(),
        share(raw, "reliability"),
        share(raw, "uptime"),
        age(o.first_seen),
        o.region.clone(),
        if o.verified { "yes" } else { "no (simulated)" }.into(),
    ]
}

/// A 0..1 score as a percentage; `-` when the node does not publish it.
fn share(raw: &serde_json::Value, field: &str) -> String {
    match raw.get(field) {
        Some(serde_json::Value::Number(n)) => format!("{:.1}%", n.as_f64().unwrap_or(0.0) * 100.0),
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => "-".into(),
    }
}

fn age(first_seen: u64) -> String {
    if first_seen == 0 {
        return "-".into();
    }
    let days = unix_now().saturating_sub(first_seen) / 86_400;
    if days == 0 { "<1d".into() } else { format!("{days}d") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_adds_its_image_and_gpu_memory_to_the_query() {
        let vllm = templates::find("vllm").unwrap();
        assert_eq!(
            template_query(&vllm, "dph<=0.5 region=eu"),
            format!("image={} gpu_total_ram>={} dph<=0.5 region=eu", vllm.image, vllm.min_vram_gb)
        );
        assert_eq!(
            template_query(&vllm, ""),
            format!("image={} gpu_total_ram>={}", vllm.image, vllm.min_vram_gb)
        );
        let query = template_query(&vllm, "");
        assert_eq!(asked_image(&query), Some(vllm.image.as_str()));
    }

    #[test]
    fn the_image_a_query_asks_for_is_read_from_its_image_term() {
        assert_eq!(asked_image("gpu_ram>=24 image=ubuntu:22.04 dph<1"), Some("ubuntu:22.04"));
        assert_eq!(asked_image("IMAGE==ubuntu:22.04"), Some("ubuntu:22.04"));
        assert_eq!(asked_image("image='ubuntu:22.04'"), Some("ubuntu:22.04"));
        assert_eq!(asked_image("image!=ubuntu:22.04"), None);
        assert_eq!(asked_image("image= gpu_ram>=24"), None);
        assert_eq!(asked_image("gpu_name=RTX_4090"), None);
    }
}
