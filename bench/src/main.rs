//! `gpuflow-bench`: measures the figures of `BENCHMARKS.md` on this machine.

use std::{future::Future, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use gpuflow_bench::{
    container,
    container::ContainerParams,
    gas, heartbeat,
    heartbeat::HeartbeatParams,
    million,
    million::MillionParams,
    propagation,
    propagation::PropagationParams,
    reliability,
    reliability::ReliabilityParams,
    rental,
    rental::RentalParams,
    report::{self, Figure, Machine, Section},
    search,
    search::SearchParams,
};

/// Measures gpuflow's promised figures and writes them as markdown.
#[derive(Debug, Parser)]
#[command(name = "gpuflow-bench", version)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
    #[command(flatten)]
    sizes: Sizes,
    /// Write the report here instead of stdout.
    #[arg(long, global = true, value_name = "PATH")]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Escrow gas of every operation (runs contracts/script/measure-gas.sh).
    Gas,
    /// Search latency and throughput, and node memory, against the real gpuflow-node.
    Search,
    /// Signed heartbeats verified and stored per second.
    Heartbeats,
    /// Offer propagation from one provider to every index on loopback.
    Propagation,
    /// Time from `gpuflow rent` to a running workload on the devnet; with `--runtime
    /// docker`, from the block that opens the rental to a shell in its container.
    Rental,
    /// Every provider's reliability scores from 30 days of uptime buckets.
    Reliability,
    /// Node memory, search latency and sync time at a million offers, and the gossip load
    /// of 100,000 providers' heartbeats (modelled).
    Million,
    /// Everything above, in that order; a benchmark that fails is reported, not fatal.
    All,
}

/// Where the rental benchmark's workloads run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RuntimeKind {
    /// A local process (the devnet's default).
    Process,
    /// A container on the Docker engine.
    Docker,
}

/// Sizes; `--smoke` switches every default to a toy size that runs in a minute or two.
#[derive(Debug, Args)]
struct Sizes {
    /// Toy sizes (2,000 offers, 3 nodes, 2 rentals...) for a quick check.
    #[arg(long, global = true)]
    smoke: bool,
    /// Seed of every generated key, offer, heartbeat and query.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    /// Offers (and providers) in the node for the search figures [default: 100000].
    #[arg(long, global = true)]
    offers: Option<u64>,
    /// Sequential queries for the latency figures [default: 500].
    #[arg(long, global = true)]
    queries: Option<usize>,
    /// Concurrent clients for the throughput figure [default: 32].
    #[arg(long, global = true)]
    clients: Option<usize>,
    /// Seconds the throughput run lasts [default: 10].
    #[arg(long, global = true)]
    seconds: Option<u64>,
    /// Providers for heartbeat ingestion [default: 100000].
    #[arg(long, global = true)]
    providers: Option<u64>,
    /// Rounds of heartbeats, one per provider each [default: 3].
    #[arg(long, global = true)]
    rounds: Option<u64>,
    /// Index peers for offer propagation [default: 20].
    #[arg(long, global = true)]
    nodes: Option<usize>,
    /// Offers published for offer propagation [default: 20].
    #[arg(long, global = true)]
    published: Option<u64>,
    /// Rentals timed on the devnet [default: 10].
    #[arg(long, global = true)]
    rentals: Option<usize>,
    /// Providers scored by the reliability recomputation [default: 100000].
    #[arg(long, global = true)]
    scored: Option<u64>,
    /// Offers (and providers) in the node for the scale figures [default: 1000000].
    #[arg(long, global = true)]
    scale_offers: Option<u64>,
    /// Providers whose heartbeats the gossip model carries [default: 100000].
    #[arg(long, global = true)]
    gossipers: Option<u64>,
    /// Where the rental benchmark runs its workloads: `process`, or `docker` (containers
    /// of `--image` on the Docker engine; `all` runs both).
    #[arg(long, global = true, value_enum, default_value_t = RuntimeKind::Process)]
    runtime: RuntimeKind,
    /// The image the Docker rental benchmark pulls ahead and rents, with an SSH server
    /// (`make bench` serves the test image from a local registry).
    #[arg(long, global = true, env = "GPUFLOW_TEST_IMAGE")]
    image: Option<String>,
    /// Where gpuflow, gpuflow-node and gpuflow-provider are [default: next to this binary].
    #[arg(long, global = true, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

impl Sizes {
    fn pick<T>(&self, value: Option<T>, full: T, smoke: T) -> T {
        value.unwrap_or(if self.smoke { smoke } else { full })
    }

    fn bin_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.bin_dir {
            Some(dir) => Ok(dir.clone()),
            None => {
                let exe = std::env::current_exe()?;
                Ok(exe.parent().context("the executable has no directory")?.to_owned())
            }
        }
    }

    fn search(&self) -> anyhow::Result<SearchParams> {
        let (offers, queries) =
            (self.pick(self.offers, 100_000, 2_000), self.pick(self.queries, 500, 200));
        let (clients, seconds) = (self.pick(self.clients, 32, 8), self.pick(self.seconds, 10, 2));
        Ok(SearchParams {
            seed: self.seed,
            offers,
            queries,
            clients,
            duration: Duration::from_secs(seconds),
            node_bin: self.bin_dir()?.join("gpuflow-node"),
            command: format!(
                "gpuflow-bench search --offers {offers} --queries {queries} --clients {clients} \
                 --seconds {seconds} --seed {}",
                self.seed
            ),
        })
    }

    fn heartbeats(&self) -> HeartbeatParams {
        let (providers, rounds) =
            (self.pick(self.providers, 100_000, 2_000), self.pick(self.rounds, 3, 3));
        HeartbeatParams {
            seed: self.seed,
            providers,
            rounds,
            command: format!(
                "gpuflow-bench heartbeats --providers {providers} --rounds {rounds} --seed {}",
                self.seed
            ),
        }
    }

    fn propagation(&self) -> PropagationParams {
        let (nodes, offers) = (self.pick(self.nodes, 20, 3), self.pick(self.published, 20, 5));
        PropagationParams {
            seed: self.seed,
            nodes,
            offers,
            command: format!(
                "gpuflow-bench propagation --nodes {nodes} --published {offers} --seed {}",
                self.seed
            ),
        }
    }

    fn reliability(&self) -> ReliabilityParams {
        let providers = self.pick(self.scored, 100_000, 2_000);
        ReliabilityParams {
            seed: self.seed,
            providers,
            runs: 3,
            command: format!("gpuflow-bench reliability --scored {providers} --seed {}", self.seed),
        }
    }

    fn million(&self) -> anyhow::Result<MillionParams> {
        let offers = self.pick(self.scale_offers, 1_000_000, 4_000);
        let queries = self.pick(self.queries, 500, 200);
        let gossipers = self.pick(self.gossipers, 100_000, 2_000);
        Ok(MillionParams {
            seed: self.seed,
            offers,
            queries,
            gossipers,
            node_bin: self.bin_dir()?.join("gpuflow-node"),
            command: format!(
                "gpuflow-bench million --scale-offers {offers} --queries {queries} \
                 --gossipers {gossipers} --seed {}",
                self.seed
            ),
        })
    }

    fn container(&self) -> anyhow::Result<ContainerParams> {
        let rentals = self.pick(self.rentals, 10, 2);
        let image = self.image.clone().context(
            "the Docker rental benchmark needs an image with an SSH server: give --image, or \
             run `make bench`, which starts an engine and a registry with the test image",
        )?;
        Ok(ContainerParams {
            rentals,
            image,
            bin_dir: self.bin_dir()?,
            command: format!("gpuflow-bench rental --runtime docker --rentals {rentals}"),
        })
    }

    fn rental(&self) -> anyhow::Result<RentalParams> {
        let rentals = self.pick(self.rentals, 10, 2);
        Ok(RentalParams {
            rentals,
            bin_dir: self.bin_dir()?,
            command: format!("gpuflow-bench rental --rentals {rentals}"),
        })
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Runs one benchmark; in `all`, a failure becomes a figure that says so.
async fn section(
    tolerant: bool,
    name: &str,
    bench: impl Future<Output = anyhow::Result<Section>>,
) -> anyhow::Result<Section> {
    eprintln!("gpuflow-bench: {name}...");
    // Start on a quiet disk: what an earlier benchmark left to write back (the search
    // database is hundreds of MB) must not slow this one down.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    match bench.await {
        Ok(section) => {
            for figure in &section.figures {
                let value = figure.value.map_or("not measured".into(), report::number);
                eprintln!("  {}: {value} {}", figure.name, figure.unit);
            }
            Ok(section)
        }
        Err(e) if tolerant => {
            eprintln!("  failed: {e:#}");
            Ok(Section {
                figures: vec![Figure::missing(name, "", None, "–", format!("failed: {e:#}"))],
                details: String::new(),
            })
        }
        Err(e) => Err(e.context(format!("{name} benchmark"))),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = gpuflow_protocol::unix_now();
    let machine = Machine::read();
    let sizes = &cli.sizes;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let all = matches!(cli.bench, Bench::All);
    let mut sections = Vec::new();
    if matches!(cli.bench, Bench::Gas | Bench::All) {
        sections.push(section(all, "escrow gas", gas::run(&root)).await?);
    }
    if matches!(cli.bench, Bench::Search | Bench::All) {
        let params = sizes.search()?;
        sections.push(section(all, "search", search::run(&params)).await?);
    }
    if matches!(cli.bench, Bench::Heartbeats | Bench::All) {
        let params = sizes.heartbeats();
        sections.push(section(all, "heartbeat ingestion", heartbeat::run(&params)).await?);
    }
    if matches!(cli.bench, Bench::Propagation | Bench::All) {
        let params = sizes.propagation();
        sections.push(section(all, "offer propagation", propagation::run(&params)).await?);
    }
    let docker = sizes.runtime == RuntimeKind::Docker;
    if all || matches!(cli.bench, Bench::Rental) && !docker {
        let params = sizes.rental()?;
        sections.push(section(all, "time to a running rental", rental::run(&params)).await?);
    }
    if all || matches!(cli.bench, Bench::Rental) && docker {
        let name = "time to a shell in a container";
        let bench = async { container::run(&sizes.container()?).await };
        sections.push(section(all, name, bench).await?);
    }
    if matches!(cli.bench, Bench::Reliability | Bench::All) {
        let params = sizes.reliability();
        sections.push(section(all, "reliability recomputation", reliability::run(&params)).await?);
    }
    if matches!(cli.bench, Bench::Million | Bench::All) {
        let params = sizes.million()?;
        sections.push(section(all, "a million offers", million::run(&params)).await?);
    }
    let invocation: Vec<String> = std::env::args().skip(1).collect();
    let command = format!("gpuflow-bench {}", invocation.join(" "));
    let text = report::markdown(&machine, &command, &sections, &started.to_string());
    match &cli.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
