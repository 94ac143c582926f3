//! `gpuflow logs`.
use std::time::Duration;

use alloy::signers::SignerSync;
use clap::Args;
use gpuflow_protocol::{logs_request_message, unix_now};
use serde_json::json;

use super::{Ctx, print_json};
use crate::provider::ProviderClient;

/// How often `--follow` asks the provider for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// `gpuflow logs`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow logs 7
  gpuflow logs 7 -f
  gpuflow logs 7 --json

The request is signed by the rental's wallet, so only its renter can read the logs.
The provider keeps the most recent lines only. With -f, lines are printed as they come
until the rental ends or is stopped; a provider that stops answering is asked again until
it does (a note says so); --json -f prints one
JSON object per line: {\"rental_id\": 7, \"line\": \"...\"}.")]
pub struct LogsArgs {
    /// Rental id, as printed by `gpuflow rent`.
    rental: u64,
    /// Keep printing new lines until the rental ends (or until interrupted).
    #[arg(short = 'f', long)]
    follow: bool,
}

impl LogsArgs {
    pub(crate) async fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let settings = ctx.settings()?;
        let signer = settings.signer()?;
        let (escrow, chain_id) = settings.escrow(None).await?;
        let rental = escrow.rental(self.rental).await?;
        let provider =
            ProviderClient::for_rental(&settings.node(), escrow.address(), self.rental, &rental)
                .await?;
        let fetch = || async {
            let issued_at = unix_now();
            let message = logs_request_message(chain_id, escrow.address(), self.rental, issued_at);
            let signature = signer.sign_message_sync(message.as_bytes())?;
            provider.logs(self.rental, issued_at, signature).await
        };
        let mut shown = fetch().await?;
        if ctx.json && !self.follow {
            print_json(&json!({ "rental_id": self.rental, "lines": shown }));
            return Ok(());
        }
        let print = |lines: &[String]| {
            for line in lines {
                match ctx.json {
                    true => println!("{}", json!({ "rental_id": self.rental, "line": line })),
                    false => println!("{line}"),
                }
            }
        };
        print(&shown);
        if !self.follow {
            return Ok(());
        }
        let mut failing = false;
        loop {
            tokio::time::sleep(FOLLOW_INTERVAL).await;
            // The chain decides when the rental is over; its last lines are fetched once more.
            let over = match (escrow.rental(self.rental).await, escrow.latest_block().await) {
                (Ok(now), Ok((_, time))) => now.stopped || time >= now.end.to::<u64>(),
                _ => false,
            };
            match fetch().await {
                Ok(lines) => {
                    if std::mem::take(&mut failing) {
                        eprintln!("note: the provider answers again");
                    }
                    print(&lines[new_from(&shown, &lines)..]);
                    shown = lines;
                }
                // Following outlives a provider restart: ask again, saying so once.
                Err(e) if !failing => {
                    failing = true;
                    eprintln!("note: the provider does not answer ({e:#}); asking again");
                }
                Err(_) => {}
            }
            if over {
                if !ctx.json {
                    eprintln!("rental {} has ended; its logs end here", self.rental);
                }
                return Ok(());
            }
        }
    }
}

/// Where the unseen lines start in `next`, a later window of the same log as `prev`:
/// after the longest suffix of `prev` that `next` begins with.
fn new_from(prev: &[String], next: &[String]) -> usize {
    (1..=prev.len().min(next.len()))
        .rev()
        .find(|&k| prev[prev.len() - k..] == next[..k])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::new_from;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn follow_prints_only_new_lines() {
        assert_eq!(new_from(&v(&["a", "b"]), &v(&["a", "b", "c"])), 2);
        assert_eq!(new_from(&v(&["a", "b", "c"]), &v(&["b", "c", "d"])), 2);
        assert_eq!(new_from(&v(&["a"]), &v(&["x", "y"])), 0);
        assert_eq!(new_from(&[], &v(&["x"])), 0);
    }
}
