//! `gpuflow claim-sla`.
use std::collections::BTreeMap;

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::Eip712Domain;
use anyhow::Context;
use clap::Args;
use gpuflow_escrow::{DowntimeTerms, downtime_signer, pack_signatures};
use gpuflow_protocol::api::DowntimeRequest;
use serde_json::json;

use super::{Ctx, money, print_json};
use crate::{
    error::{Exit, fail},
    node::NodeClient,
    ui,
};

/// An attestation's window, downtime and deadline: `(from, to, down_seconds, deadline)`.
type Terms = (u64, u64, u64, u64);

/// A node's attestation, its signature checked.
struct Signed {
    terms: Terms,
    attester: Address,
    signature: Bytes,
}

/// `gpuflow claim-sla`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow claim-sla 7
  gpuflow claim-sla 7 --from-node https://node-a.example --from-node https://node-b.example
  gpuflow claim-sla 7 --json

Each node measured the provider's uptime from its signed heartbeats and its own probes.
A node registered as attester on the escrow signs the downtime it measured during the
rental; once enough attesters agree (the escrow's threshold, usually one), the attestation
is submitted and `rate × credited seconds` goes back to the wallet that rented. Nodes
measure up to their own latest data, so with a threshold above one every node is asked
again for the window ending at the earliest end any of them gave and for the least
downtime any of them measured in it, and those identical terms are submitted. Seconds
the provider was already paid for are never taken back, so claim soon after the outage.
A second claim only covers time after the last credited window.")]
pub struct ClaimSlaArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
    /// Node to ask for an attestation (repeatable) [default: the global --node].
    #[arg(long = "from-node", value_name = "URL")]
    from_nodes: Vec<String>,
}

impl ClaimSlaArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let settings = ctx.settings()?;
        let nodes = match self.from_nodes.is_empty() {
            true => vec![settings.node()],
            false => self.from_nodes.iter().map(|url| NodeClient::new(url)).collect(),
        };
        let signer = settings.signer()?;
        let (escrow, _) = settings.escrow(Some(signer)).await?;
        let domain = escrow.domain().await?;
        let rental = escrow.rental(self.rental).await?;
        let threshold = escrow.attester_threshold().await?;

        let mut refusals = Vec::new();
        let mut first = Vec::new();
        for node in &nodes {
            match ask(node, self.rental, None, &domain).await {
                Ok(signed) => first.push((node, signed)),
                Err(e) => refusals.push(e),
            }
        }
        let signed = match threshold > 1 {
            true => self.align(first, &domain, &mut refusals).await,
            false => first.into_iter().map(|(_, signed)| signed).collect(),
        };
        // Attestations with identical terms can be submitted together.
        let mut agreed: BTreeMap<Terms, Vec<(Address, Bytes)>> = BTreeMap::new();
        for Signed { terms, attester, signature } in signed {
            agreed.entry(terms).or_default().push((attester, signature));
        }
        // The terms most attesters signed; among equals, the fewest seconds (the least
        // that every signer stands behind).
        let Some(((from, to, down_seconds, deadline), signed)) = agreed
            .into_iter()
            .max_by(|(a, sa), (b, sb)| sa.len().cmp(&sb.len()).then(b.2.cmp(&a.2)))
        else {
            return Err(match refusals.len() {
                1 => refusals.remove(0),
                _ => fail(
                    Exit::Refused,
                    format!(
                        "no node attested downtime for rental {}: {}",
                        self.rental,
                        refusals.iter().map(|e| format!("{e:#}")).collect::<Vec<_>>().join("; ")
                    ),
                ),
            });
        };
        if signed.len() < usize::from(threshold) {
            return Err(fail(
                Exit::Refused,
                format!(
                    "only {} attester(s) agree on the downtime of rental {} and the escrow \
                     needs {threshold}; ask more attester nodes with --from-node",
                    signed.len(),
                    self.rental
                ),
            ));
        }
        let terms = DowntimeTerms { rental_id: self.rental, from, to, down_seconds, deadline };
        let attesters: Vec<String> = signed.iter().map(|(a, _)| format!("{a:#x}")).collect();
        let spinner = ui::spinner(
            ctx.json,
            format!("claiming {down_seconds} s of downtime for rental {}", self.rental),
        );
        let credited = escrow.credit_downtime(&terms, pack_signatures(signed)?).await;
        spinner.finish_and_clear();
        let credited = credited?;
        let token = super::Token::of(&escrow).await?;
        let rate = U256::from(rental.ratePerSecond);
        if ctx.json {
            print_json(&json!({
                "rental_id": self.rental,
                "from": credited.from,
                "to": credited.to,
                "attested_seconds": down_seconds,
                "credited_seconds": credited.down_seconds,
                "rate_per_second": rate.to_string(),
                "refund": credited.refund.to_string(),
                "attesters": attesters,
                "tx": credited.tx,
            }));
        } else {
            println!(
                "rental {}: {} of downtime credited between {} and {} (unix time)",
                self.rental,
                ui::duration(credited.down_seconds),
                credited.from,
                credited.to
            );
            if credited.down_seconds < down_seconds {
                println!(
                    "  {} were attested; the provider had already been paid for the rest",
                    ui::duration(down_seconds)
                );
            }
            println!("  refunded  {}", money(credited.refund, &token));
            println!("  attested by {}", attesters.join(", "));
        }
        Ok(())
    }

    /// Asks the nodes that attested in `first` for identical terms: the window ending at
    /// the earliest `to` any of them signed, and the least downtime any of them measured
    /// in that window. What a node cannot sign goes to `refusals`.
    async fn align(
        &self,
        first: Vec<(&NodeClient, Signed)>,
        domain: &Eip712Domain,
        refusals: &mut Vec<anyhow::Error>,
    ) -> Vec<Signed> {
        let Some(to) = first.iter().map(|(_, signed)| signed.terms.1).min() else {
            return Vec::new();
        };
        // Each node's own measurement of the window ending at `to`.
        let mut measured = Vec::new();
        for (node, signed) in &first {
            if signed.terms.1 == to {
                measured.push(signed.terms.2);
                continue;
            }
            let ask_to = DowntimeRequest { to, down_seconds: None };
            match ask(node, self.rental, Some(ask_to), domain).await {
                Ok(signed) => measured.push(signed.terms.2),
                Err(e) => refusals.push(e),
            }
        }
        let Some(down_seconds) = measured.into_iter().min() else { return Vec::new() };
        let request = DowntimeRequest { to, down_seconds: Some(down_seconds) };
        let mut aligned = Vec::new();
        for (node, signed) in first {
            if (signed.terms.1, signed.terms.2) == (to, down_seconds) {
                aligned.push(signed);
                continue;
            }
            match ask(node, self.rental, Some(request), domain).await {
                Ok(signed) => aligned.push(signed),
                Err(e) => refusals.push(e),
            }
        }
        aligned
    }
}

/// `node`'s attestation for `rental`, aligned on `request` when given, its signature
/// checked against the attester it names (an EOA's here; a contract attester's only on
/// chain).
async fn ask(
    node: &NodeClient,
    rental: u64,
    request: Option<DowntimeRequest>,
    domain: &Eip712Domain,
) -> anyhow::Result<Signed> {
    let attestation = node.downtime(rental, request).await?;
    let terms = DowntimeTerms {
        rental_id: rental,
        from: attestation.from,
        to: attestation.to,
        down_seconds: attestation.down_seconds,
        deadline: attestation.deadline,
    };
    let signature: Bytes = attestation
        .signature
        .parse()
        .context("a node answered an attestation whose signature is not hex")?;
    let attester: Address = attestation
        .attester
        .parse()
        .context("a node answered an attestation whose attester is not an address")?;
    if let Some(signer) = downtime_signer(&terms, &signature, domain)
        && signer != attester
    {
        anyhow::bail!(
            "an attestation claims attester {attester} but was signed by {signer}; ignored"
        );
    }
    Ok(Signed {
        terms: (terms.from, terms.to, terms.down_seconds, terms.deadline),
        attester,
        signature,
    })
}
