//! `gpuflow volumes`.

use alloy::signers::SignerSync;
use clap::Args;
use gpuflow_protocol::{OfferId, unix_now, volumes_request_message};
use serde_json::json;

use super::{Ctx, print_json};
use crate::{provider::ProviderClient, ui};

/// `gpuflow volumes`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow volumes
  gpuflow --json volumes

Lists your volumes (`gpuflow rent --volume NAME`) on every machine this computer rented
one on: the rental each is mounted in, or when the provider deletes it. A volume outlives
its last rental by the grace period its offer shows; renting the same machine with the
same NAME before then mounts it again (`gpuflow rent OFFER --volume NAME`). The request
is signed by the wallet, so only you can list your volumes.")]
pub struct VolumesArgs {}

impl VolumesArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let settings = ctx.settings()?;
        let signer = settings.signer()?;
        let renter = signer.address();
        let (escrow, chain_id) = settings.escrow(None).await?;
        let (_, now) = escrow.latest_block().await?;
        let node = settings.node();
        let mut rows = Vec::new();
        for (peer, addrs) in crate::provider::volume_machines(escrow.address())? {
            let machine = OfferId::of(&peer).to_string();
            let asked = async {
                let provider = ProviderClient::for_peer(&node, peer, addrs).await?;
                let issued_at = unix_now();
                let message =
                    volumes_request_message(chain_id, escrow.address(), renter, issued_at);
                let signature = signer.sign_message_sync(message.as_bytes())?;
                provider.volumes(renter, issued_at, signature).await
            };
            match asked.await {
                Ok(volumes) => rows.extend(volumes.into_iter().map(|v| (machine.clone(), v))),
                Err(e) if !ctx.json => {
                    eprintln!("note: machine {machine} did not answer: {e:#}")
                }
                Err(_) => {}
            }
        }
        if ctx.json {
            let list: Vec<_> = rows
                .iter()
                .map(|(machine, v)| {
                    json!({
                        "name": v.name,
                        "machine": machine,
                        "in_use_by": v.in_use_by,
                        "delete_at": v.delete_at,
                    })
                })
                .collect();
            print_json(&json!(list));
            return Ok(());
        }
        if rows.is_empty() {
            println!("no volumes; `gpuflow rent OFFER --volume NAME` makes one");
            return Ok(());
        }
        let mut table = ui::table(&["NAME", "MACHINE (OFFER)", "STATE", "DELETED"]);
        for (machine, v) in rows {
            let state = match v.in_use_by {
                Some(id) => format!("mounted in rental {id}"),
                None => "kept".to_owned(),
            };
            let deleted = match v.delete_at {
                Some(at) => {
                    format!("{} (in {})", ui::local_time(at), ui::duration(at.saturating_sub(now)))
                }
                None => "not while mounted".to_owned(),
            };
            table.add_row(vec![v.name, machine, state, deleted]);
        }
        println!("{table}");
        Ok(())
    }
}
