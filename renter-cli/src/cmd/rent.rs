//! `gpuflow rent`.
use std::time::Duration;

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use clap::Args;
use gpuflow_escrow::{Escrow, Opened};
use gpuflow_protocol::{
    Launch, Offer, RentalRequest, SignedQuote, Verified, VolumeMount, WorkloadState, parse_units,
    unix_now,
};
use serde_json::json;

use super::{
    Ctx, Payment, check_funds, hourly, hours_to_seconds, money, per_hour, print_json, tokens,
};
use crate::{
    error::{Exit, fail, fail_with},
    provider::ProviderClient,
    templates::{self, Template},
    ui,
};

/// Gas an open takes at most (with permit), to check the wallet can pay for it.
const OPEN_GAS: u64 = 400_000;
/// A quote this close to its deadline may expire before the transaction is mined.
const QUOTE_MARGIN: u64 = 10;

/// `gpuflow rent`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 2
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 2 --image pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime \\
      --ssh-key ~/.ssh/id_ed25519.pub
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 0.5 --max-price 0.4 --yes
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 4 --gpus 2
  gpuflow --json rent 3f9c2a1b7d4e5f60 --hours 1 --ssh-key ~/.ssh/id_ed25519.pub --yes
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 2 --ssh-key ~/.ssh/id_ed25519.pub \
      --env HF_TOKEN --port 8888 --cmd 'jupyter lab --ip 0.0.0.0 --port 8888 --allow-root'
  gpuflow rent 3f9c2a1b7d4e5f60 --hours 2 --template pytorch-jupyter --ssh-key ~/.ssh/id_ed25519.pub

--template NAME (see `gpuflow templates`) fills in the image, ports, environment and
command; flags given here win. It refuses, before asking for a quote, an offer whose
provider does not allow the image or with less GPU memory than the template needs
(`gpuflow search --template NAME` finds those that fit), and prints what to open once
the rental runs.

--gpus rents that many of the offer's GPUs at its price per GPU; the rest stay for
other renters. Without it the whole machine (every GPU the offer lists) is rented.

--image picks the container the provider runs (its default without it; providers may
allow only some images). --ssh-key installs your public key in it; `rent` then prints
how to connect, e.g. `ssh -p 32768 root@203.0.113.7`. Only `.pub` files are read.
--env KEY=VALUE (or --env KEY, taking KEY's value from your environment) sets a variable
in the container and in its SSH sessions; --port N publishes container port N on a free
port of the provider's host, printed as HOST:PORT; --cmd runs a shell command instead of
the image's own.

Asks the provider for a signed quote, shows the cost and asks before any money
moves. --yes skips the question; with --json (which never prompts) or with no terminal
to ask on, it refuses without --yes. Pays with an EIP-2612 permit where the token
supports it (one transaction), else approves first. If the provider refuses the rental
or never reports the workload running, it exits with code 6 and `gpuflow stop ID`
returns every second not yet used at once.")]
pub struct RentArgs {
    /// Offer id from `gpuflow search`.
    offer: String,
    /// How long to rent, in hours (decimals allowed, whole seconds only).
    #[arg(long)]
    hours: String,
    /// How many of the offer's GPUs to rent, at its price per GPU; all of them without it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    gpus: Option<u32>,
    /// Most you will pay, in tokens (dollars) per hour; a dearer quote is refused and
    /// no money moves.
    #[arg(long, value_name = "PRICE")]
    max_price: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Container image to run, e.g. `pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime`;
    /// without it the provider runs its default image.
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// Your SSH public key file (`.pub`), installed in the workload so you can log in.
    #[arg(long, value_name = "PATH")]
    ssh_key: Option<std::path::PathBuf>,
    /// An environment variable for the container: KEY=VALUE, or KEY to pass this
    /// shell's value (repeatable).
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// A container port to publish on the provider's host (repeatable; SSH's 22 always is).
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// A shell command the container runs instead of the image's own.
    #[arg(long, value_name = "COMMAND")]
    cmd: Option<String>,
    /// Your volume on the provider's machine, mounted at PATH (default /workspace): kept
    /// after the rental for the grace period the offer shows, and mounted again when you
    /// rent the same machine with the same NAME within it.
    #[arg(long, value_name = "NAME[:PATH]")]
    volume: Option<String>,
    /// A ready-made environment from `gpuflow templates`: its image, ports, environment
    /// and command where the flags above do not say otherwise.
    #[arg(long, value_name = "NAME")]
    template: Option<String>,
    /// Longest wait for the provider to report the workload running, in seconds; past
    /// it `rent` exits 6 and says how to get the deposit back (`gpuflow stop ID`).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    wait: u64,
}

/// What `rent` knows before it asks the provider: the offer, checked against the chain
/// and the wallet's funds, and the renter's limits.
struct Plan {
    json: bool,
    duration: u64,
    ssh_key: Option<String>,
    launch: Launch,
    signer: PrivateKeySigner,
    offer: Verified<Offer>,
    escrow: Escrow,
    token: super::Token,
    /// GPUs asked for.
    count: u32,
    /// `--max-price`, in units per hour.
    max_per_hour: Option<u128>,
    provider: ProviderClient,
    /// `--template`, applied.
    template: Option<Template>,
}

/// The provider's quote, checked against the offer and the renter's limits.
struct Checked {
    quote: SignedQuote,
    /// GPUs quoted: `--gpus`, or every GPU still free without it.
    gpus: u32,
    total: U256,
    fee_bps: u16,
    fee: U256,
}

impl RentArgs {
    pub(crate) async fn run(mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let template = self.apply_template()?;
        let plan = self.plan(ctx, template).await?;
        let checked = self.ask_quote(&plan).await?;
        self.confirm(&plan, &checked)?;
        let opened = self.open(&plan, &checked).await?;
        self.wait_running(&plan, &checked, opened).await
    }

    /// Fills in what `--template` says and the flags do not: the image, the command, the
    /// ports (added to `--port`) and each variable `--env` does not name (with a fresh
    /// token for each `{token}`).
    fn apply_template(&mut self) -> anyhow::Result<Option<Template>> {
        let Some(name) = &self.template else { return Ok(None) };
        let template = templates::find(name).map_err(|e| fail(Exit::Usage, e))?;
        if !template.ssh && self.ssh_key.is_some() {
            return Err(fail(
                Exit::Usage,
                format!(
                    "the {name} template's image runs no SSH server, so --ssh-key cannot log \
                     you in; drop --ssh-key and use what `rent` prints to open"
                ),
            ));
        }
        self.image.get_or_insert_with(|| template.image.clone());
        if self.cmd.is_none() {
            self.cmd.clone_from(&template.cmd);
        }
        let given: Vec<String> =
            self.env.iter().map(|e| e.split('=').next().unwrap_or_default().to_owned()).collect();
        let mut env: Vec<String> = template
            .env_for_rental()
            .into_iter()
            .filter(|entry| !given.iter().any(|key| entry.split('=').next() == Some(key)))
            .collect();
        env.append(&mut self.env);
        self.env = env;
        let mut ports = template.ports.clone();
        ports.extend(self.ports.iter().filter(|port| !template.ports.contains(port)));
        self.ports = ports;
        Ok(Some(template))
    }

    /// `--env`, `--port` and `--cmd`, checked as the provider will check them. A bare
    /// `--env KEY` takes KEY's value from this process, so a secret need not be typed
    /// on the command line.
    fn launch(&self) -> anyhow::Result<Launch> {
        let env = self
            .env
            .iter()
            .map(|entry| match entry.split_once('=') {
                Some(_) => Ok(entry.clone()),
                None => {
                    std::env::var(entry).map(|value| format!("{entry}={value}")).map_err(|_| {
                        fail(
                            Exit::Usage,
                            format!(
                                "--env {}: no `=` and no such variable here; give KEY=VALUE, or \
                             export KEY first",
                                gpuflow_escrow::shown(entry)
                            ),
                        )
                    })
                }
            })
            .collect::<anyhow::Result<_>>()?;
        let volume = self
            .volume
            .as_deref()
            .map(VolumeMount::parse)
            .transpose()
            .map_err(|e| fail(Exit::Usage, format!("--volume: {e}")))?;
        let launch = Launch { env, ports: self.ports.clone(), cmd: self.cmd.clone(), volume };
        launch
            .check()
            .map_err(|e| fail(Exit::Usage, format!("--env/--port/--cmd/--volume: {e}")))?;
        Ok(launch)
    }

    /// Reads the flags, the offer and the escrow, and checks that the offer can be rented
    /// on this chain, within `--max-price`, and that the wallet can pay for it.
    async fn plan(&self, ctx: &Ctx, template: Option<Template>) -> anyhow::Result<Plan> {
        let duration = hours_to_seconds(&self.hours)?;
        if let Some(image) = &self.image {
            RentalRequest::check_image(image)
                .map_err(|e| fail(Exit::Usage, format!("--image: {e}")))?;
        }
        let ssh_key = self.ssh_key.as_deref().map(read_public_key).transpose()?;
        let launch = self.launch()?;
        let settings = ctx.settings()?;
        let signer = settings.signer()?;
        let (_, offer) = settings.node().offer(&self.offer).await?;
        let (escrow, chain_id) = settings.escrow(Some(signer.clone())).await?;
        if offer.body.chain_id != chain_id || offer.body.escrow != escrow.address() {
            return Err(fail(
                Exit::Usage,
                format!(
                    "offer {} takes rentals on chain {} at escrow {}, but you are on chain {} at \
                     escrow {}; use the offer's --rpc and --escrow",
                    self.offer,
                    offer.body.chain_id,
                    offer.body.escrow,
                    chain_id,
                    escrow.address()
                ),
            ));
        }
        if offer.body.expires_at <= unix_now() {
            return Err(fail(
                Exit::NotFound,
                format!("offer {} has expired; search again", self.offer),
            ));
        }
        let offered = offer.body.gpus.len() as u32;
        let count = self.gpus.unwrap_or(offered);
        if count > offered {
            return Err(fail(
                Exit::Usage,
                format!(
                    "offer {} has {offered} GPU(s) free; ask for at most {offered} with --gpus, or \
                     search for a bigger machine (`num_gpus>={count}`)",
                    self.offer
                ),
            ));
        }
        if let Some(template) = &template {
            let gpu_bytes = offer.body.gpu_memory_bytes();
            template.check_vram(gpu_bytes, count).map_err(|e| fail(Exit::Usage, e))?;
            // Before any quote: a provider refuses an image its offer does not allow.
            let image = self.image.as_deref().unwrap_or(&template.image);
            let (images, allowed) = (&offer.body.images, &offer.body.allowed_images);
            template.check_ready(image, images, allowed).map_err(|e| fail(Exit::Usage, e))?;
        }
        if launch.volume.is_some() && offer.body.volume_grace_secs == 0 {
            return Err(fail(
                Exit::Usage,
                format!(
                    "the provider of offer {} keeps no volumes; rent it without --volume, or pick \
                     an offer whose `gpuflow offer` shows a volume grace period",
                    self.offer
                ),
            ));
        }
        // The advertised price of `count` GPUs, rounded up so that it bounds any fair quote.
        let advertised =
            (offer.body.price_per_second * u128::from(count)).div_ceil(u128::from(offered));
        let token = super::Token::of(&escrow).await?;
        let max_per_hour = self
            .max_price
            .as_deref()
            .map(|p| {
                parse_units(p, token.decimals)
                    .map_err(|e| fail(Exit::Usage, format!("--max-price: {e}")))
            })
            .transpose()?;
        self.check_max_price(max_per_hour, &token, "the offer asks", advertised)?;

        // Check the wallet can pay before bothering the provider: the quoted rate can
        // only be at or below the advertised one (checked in `ask_quote`).
        let most = gpuflow_escrow::cost(advertised, duration)?;
        let renting = Payment {
            what: format!("renting for {}", ui::duration(duration)),
            cost: most,
            gas: OPEN_GAS,
            instead: "rent for less",
        };
        check_funds(&escrow, signer.address(), &renting, &token).await?;
        let provider = ProviderClient::connect(&offer)?;
        Ok(Plan {
            json: ctx.json,
            duration,
            ssh_key,
            launch,
            signer,
            offer,
            escrow,
            token,
            count,
            max_per_hour,
            provider,
            template,
        })
    }

    /// Refuses a rate above `--max-price`: what `who` (the offer, the provider) asks.
    fn check_max_price(
        &self,
        max_per_hour: Option<u128>,
        token: &super::Token,
        who: &str,
        rate: u128,
    ) -> anyhow::Result<()> {
        if max_per_hour.is_none_or(|max| per_hour(rate) <= U256::from(max)) {
            return Ok(());
        }
        Err(fail(
            Exit::Refused,
            format!(
                "{who} {} per hour, above your --max-price of {}; no money moved",
                tokens(per_hour(rate), token),
                self.max_price.as_deref().unwrap_or_default()
            ),
        ))
    }

    /// Asks the provider for a signed quote and checks it: signed by the offer's payout
    /// address, for this renter, these GPUs of this offer, at a fair rate within
    /// `--max-price`, for long enough.
    async fn ask_quote(&self, plan: &Plan) -> anyhow::Result<Checked> {
        let (offer, escrow, renter) = (&plan.offer.body, &plan.escrow, plan.signer.address());
        let spinner = ui::spinner(plan.json, "asking the provider for a quote");
        let quote = (plan.provider)
            .quote(
                renter,
                plan.duration,
                self.gpus,
                self.image.clone(),
                plan.ssh_key.clone(),
                plan.launch.clone(),
            )
            .await;
        spinner.finish_and_clear();
        let quote = quote?;
        let terms = &quote.terms;
        let signer_ok = gpuflow_escrow::quote_signer(&quote, &escrow.domain().await?)
            .is_some_and(|a| a == offer.payout);
        if !signer_ok || terms.provider != offer.payout || terms.renter != renter {
            return Err(fail(
                Exit::Refused,
                format!(
                    "the provider's quote is not signed by its payout address {}; no money moved",
                    offer.payout
                ),
            ));
        }
        // Without --gpus the provider quotes every GPU still free: perhaps fewer than a
        // slightly stale offer lists.
        let count = plan.count;
        let fits = |n: u32| n == count || (self.gpus.is_none() && (1..count).contains(&n));
        let quoted_gpus = match terms.rented() {
            Some((id, n)) if id.to_string() == self.offer && fits(n) => n,
            _ => {
                return Err(fail(
                    Exit::Refused,
                    format!(
                        "the provider's quote is not for {count} GPU(s) of offer {}; no money \
                         moved. Search again: the machine may have been rented meanwhile",
                        self.offer
                    ),
                ));
            }
        };
        if !offer.fair_rate(terms.rate_per_second, quoted_gpus) {
            return Err(fail(
                Exit::Refused,
                format!(
                    "the provider quoted {} units/s for {quoted_gpus} GPU(s), more than the {} \
                     units/s it advertises for all {}; no money moved",
                    terms.rate_per_second,
                    offer.price_per_second,
                    offer.gpus.len()
                ),
            ));
        }
        let rate = terms.rate_per_second;
        self.check_max_price(plan.max_per_hour, &plan.token, "the provider quoted", rate)?;
        if plan.duration > terms.max_duration {
            return Err(fail(
                Exit::Refused,
                format!(
                    "the provider rents for at most {}; ask for less. No money moved",
                    ui::duration(terms.max_duration)
                ),
            ));
        }
        let total = gpuflow_escrow::cost(rate, plan.duration)?;
        let fee_bps = escrow
            .fee_bps()
            .await
            .map_err(|e| fail(Exit::Unreachable, format!("reading the escrow's fee: {e}")))?;
        let fee = total * U256::from(fee_bps) / U256::from(10_000);
        Ok(Checked { quote, gpus: quoted_gpus, total, fee_bps, fee })
    }

    /// Shows what the rental costs and asks before any money moves; refuses a quote
    /// too close to its deadline to be mined in time.
    fn confirm(&self, plan: &Plan, checked: &Checked) -> anyhow::Result<()> {
        let (token, duration) = (&plan.token, plan.duration);
        let rate = checked.quote.terms.rate_per_second;
        if !plan.json {
            let gpus = &plan.offer.body.gpus;
            eprintln!("rent offer {} ({} × {})", self.offer, checked.gpus, gpus[0].name);
            let mut table = ui::table(&["", ""]);
            table.add_row(vec!["rate".to_owned(), hourly(rate, token)]);
            table.add_row(vec![
                "duration".to_owned(),
                format!("{} ({duration} s)", ui::duration(duration)),
            ]);
            if let Some(share) = &checked.quote.share {
                table.add_row(vec!["with the GPUs".to_owned(), share.to_string()]);
            }
            if let Some(volume) = &plan.launch.volume {
                table.add_row(vec![
                    "volume".to_owned(),
                    format!(
                        "{} at {}, kept {} after the rental",
                        volume.name,
                        volume.path,
                        ui::duration(plan.offer.body.volume_grace_secs)
                    ),
                ]);
            }
            table.add_row(vec!["total, locked now".to_owned(), money(checked.total, token)]);
            table.add_row(vec![
                "platform fee".to_owned(),
                format!(
                    "{} ({}%), taken from the provider's earnings, not added",
                    money(checked.fee, token),
                    gpuflow_protocol::format_units(u128::from(checked.fee_bps), 2)
                ),
            ]);
            table.add_row(vec!["from wallet".to_owned(), plan.signer.address().to_string()]);
            eprintln!("{table}");
            eprintln!("stopping early refunds the unused seconds at once.");
        }
        if !self.yes {
            ui::consent(plan.json, "lock the deposit and start the rental?")?;
        }
        if checked.quote.terms.deadline <= unix_now() + QUOTE_MARGIN {
            return Err(fail(
                Exit::Refused,
                "the provider's quote expired before it could be used; run the command again for a \
                 fresh one. No money moved",
            ));
        }
        Ok(())
    }

    /// Locks the deposit in the escrow, and remembers where the provider is.
    async fn open(&self, plan: &Plan, checked: &Checked) -> anyhow::Result<Opened> {
        let spinner = ui::spinner(plan.json, "locking the deposit in the escrow");
        let opened = plan.escrow.open(&plan.signer, &checked.quote, plan.duration).await;
        spinner.finish_and_clear();
        let opened = opened?;
        let payout = plan.offer.body.payout;
        // `gpuflow ssh` logs in with the private half of the key installed.
        let rented = crate::provider::Rented {
            ssh_identity: self.ssh_key.as_ref().map(|public| public.with_extension("")),
            gpu: plan.offer.body.gpus.first().map(|gpu| gpu.name.clone()),
            gpus: Some(checked.gpus),
            image: self.image.clone(),
            volume: plan.launch.volume.as_ref().map(|volume| volume.name.clone()),
        };
        plan.provider.remember(
            plan.escrow.address(),
            opened.rental_id,
            opened.start,
            payout,
            rented,
        );
        if !plan.json {
            eprintln!("rental {} opened in transaction {}", opened.rental_id, opened.tx);
        }
        Ok(opened)
    }

    /// Waits for the provider to report the workload running and says how to connect;
    /// a refusal is submitted for the whole deposit back, and a silent provider gets the
    /// renter told how to get the unused seconds back.
    async fn wait_running(
        &self,
        plan: &Plan,
        checked: &Checked,
        opened: Opened,
    ) -> anyhow::Result<()> {
        let (json, token) = (plan.json, &plan.token);
        let spinner = ui::spinner(json, "waiting for the provider to start the workload");
        let workload =
            plan.provider.wait_ready(opened.rental_id, Duration::from_secs(self.wait)).await;
        spinner.finish_and_clear();
        let id = opened.rental_id;
        let refund_hint = format!(
            "run `gpuflow stop {id}` to get every second not yet used back at once (the \
             seconds until then are charged; `gpuflow claim-sla {id}` refunds those the \
             provider was down)"
        );
        let (workload, not_ready) = match workload {
            Ok(Some(status)) => (Some(status), None),
            Ok(None) => {
                (None, Some(format!("did not report the workload running within {} s", self.wait)))
            }
            Err(e) => (None, Some(format!("could not be asked whether the workload runs ({e:#})"))),
        };
        let summary = json!({
            "rental_id": id,
            "offer": self.offer,
            "provider": plan.offer.body.payout,
            "gpus": checked.gpus,
            "rate_per_second": checked.quote.terms.rate_per_second.to_string(),
            "duration": plan.duration,
            "deposit": opened.deposit.to_string(),
            "fee": checked.fee.to_string(),
            "start": opened.start,
            "end": opened.end,
            "tx": opened.tx,
            "image": self.image,
            "share": checked.quote.share,
            "template": self.template,
            "workload": workload,
        });
        let open = |s: &gpuflow_protocol::WorkloadStatus| {
            let template = plan.template.as_ref()?;
            let ssh = s.ssh.as_ref().map(|ssh| ssh.port);
            Some(template.open_for(ssh_host(s), ssh, &s.ports, &plan.launch.env))
        };
        if !json {
            println!(
                "rental {id}: {} locked, runs {} until unix time {}",
                money(opened.deposit, token),
                ui::duration(opened.end - opened.start),
                opened.end
            );
        }
        match (workload, not_ready) {
            (Some(s), _) if s.state == WorkloadState::Running => {
                let open = open(&s).unwrap_or_default();
                if json {
                    let mut summary = summary;
                    summary["open"] = json!(open);
                    print_json(&summary);
                } else {
                    println!("workload running on {} GPU(s)", s.gpus.len());
                    println!("connect: {}", s.detail);
                    for port in &s.ports {
                        println!("port {}: {}:{}", port.container, ssh_host(&s), port.host);
                    }
                    for open in &open {
                        println!("open {}: {}", open.name, open.url);
                    }
                    println!(
                        "then: `gpuflow status {id}`, `gpuflow extend {id} --hours H`, \
                         `gpuflow stop {id}`"
                    );
                }
                Ok(())
            }
            (Some(s), _) => Err(refused(&plan.escrow, id, s, summary, token, json).await),
            (None, why) => Err(fail_with(
                Exit::Pending,
                format!(
                    "rental {id} is open, but the provider {}; {refund_hint}",
                    why.unwrap_or_default()
                ),
                summary,
            )),
        }
    }
}

/// The reason a provider gave for refusing a rental, without its advice on the refund.
pub(crate) fn refusal_reason(status: &gpuflow_protocol::WorkloadStatus) -> String {
    status.detail.split("; the provider signed").next().unwrap_or_default().to_owned()
}

/// Submits the provider's signed refusal of rental `id`, which returns the whole deposit.
pub(crate) async fn submit_refusal(
    escrow: &gpuflow_escrow::Escrow,
    id: u64,
    signature: alloy::primitives::Bytes,
    json: bool,
) -> Result<gpuflow_escrow::Refused, gpuflow_escrow::EscrowError> {
    let spinner =
        ui::spinner(json, "returning the whole deposit with the provider's signed refusal");
    let refunded = escrow.refuse(id, signature).await;
    spinner.finish_and_clear();
    refunded
}

/// The error `rent` ends with when the provider refused the rental: the deposit returned
/// with its signed refusal, or how to get it back.
async fn refused(
    escrow: &gpuflow_escrow::Escrow,
    id: u64,
    status: gpuflow_protocol::WorkloadStatus,
    mut summary: serde_json::Value,
    token: &super::Token,
    json: bool,
) -> anyhow::Error {
    let why = refusal_reason(&status);
    let Some(signature) = status.refusal else {
        return fail_with(
            Exit::Pending,
            format!(
                "rental {id} was refused by the provider ({why}); run `gpuflow stop {id}` to get \
                 the unused deposit back at once"
            ),
            summary,
        );
    };
    match submit_refusal(escrow, id, signature, json).await {
        Ok(refused) => {
            summary["refund"] = json!(refused.refund.to_string());
            summary["refund_tx"] = json!(refused.tx);
            fail_with(
                Exit::Refused,
                format!(
                    "rental {id} was refused by the provider ({why}); its whole deposit, {}, is \
                     back in your wallet (transaction {}): you paid nothing. Search for another \
                     offer",
                    money(refused.refund, token),
                    refused.tx
                ),
                summary,
            )
        }
        Err(e) => fail_with(
            Exit::Pending,
            format!(
                "rental {id} was refused by the provider ({why}), and returning its deposit \
                 failed: {e}. Run `gpuflow stop {id}` to try again; the whole deposit comes back"
            ),
            summary,
        ),
    }
}

/// Largest file `--ssh-key` reads: public keys are one line.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// Reads and checks the renter's SSH public key. Only a `.pub` file is ever opened, so a
/// private key passed by mistake is refused without being read.
fn read_public_key(path: &std::path::Path) -> anyhow::Result<String> {
    let usage = |m: String| fail(Exit::Usage, m);
    let shown = path.display();
    let keygen = "create a key pair with `ssh-keygen -t ed25519` and pass its `.pub` file";
    if path.extension().is_none_or(|e| e != "pub") {
        let public = format!("{shown}.pub");
        let hint = if std::path::Path::new(&public).exists() {
            format!("pass {public}, its public half")
        } else {
            keygen.to_owned()
        };
        return Err(usage(format!(
            "--ssh-key {shown}: not a public key file (`.pub`), so it is not read (it may be a \
             private key, which never leaves this machine); {hint}"
        )));
    }
    let too_big = std::fs::metadata(path).map(|m| m.len() > MAX_KEY_FILE);
    match too_big {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(usage(format!("--ssh-key {shown} does not exist; {keygen}")));
        }
        Err(e) => return Err(usage(format!("--ssh-key {shown}: cannot read it ({e})"))),
        Ok(true) => {
            return Err(usage(format!(
                "--ssh-key {shown} is too large for a public key; {keygen}"
            )));
        }
        Ok(false) => {}
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--ssh-key {shown}: cannot read it ({e})")))?;
    RentalRequest::check_ssh_public_key(&text)
        .map_err(|e| usage(format!("--ssh-key {shown}: {e}; {keygen}")))
}

/// The host renters reach the rental's ports on: its SSH host.
fn ssh_host(status: &gpuflow_protocol::WorkloadStatus) -> &str {
    status.ssh.as_ref().map_or("(the provider's host)", |ssh| ssh.host.as_str())
}

#[cfg(test)]
mod tests {
    use super::read_public_key;

    #[test]
    fn only_public_key_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("id_ed25519");
        std::fs::write(&private, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n").unwrap();
        let public = dir.path().join("id_ed25519.pub");
        let err = read_public_key(&private).unwrap_err().to_string();
        assert!(err.contains("not a public key file") && err.contains("ssh-keygen"), "{err}");
        std::fs::write(&public, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey me@laptop\n").unwrap();
        let err = read_public_key(&private).unwrap_err().to_string();
        assert!(err.contains(&format!("pass {}", public.display())), "{err}");
        assert!(!err.contains("secret"));
        assert_eq!(
            read_public_key(&public).unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey me@laptop"
        );
        let missing = read_public_key(&dir.path().join("nope.pub")).unwrap_err().to_string();
        assert!(missing.contains("does not exist") && missing.contains("ssh-keygen"), "{missing}");
        let renamed = dir.path().join("renamed.pub");
        std::fs::write(&renamed, "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n").unwrap();
        let err = read_public_key(&renamed).unwrap_err().to_string();
        assert!(err.contains("private key") && !err.contains("secret"), "{err}");
    }
}
