//! Search latency, search throughput and node memory: a data directory filled with
//! seeded offers (and one heartbeat per provider) through the node's own store, the real
//! `gpuflow-node` binary started on it, and HTTP load on loopback.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use gpuflow_node::Store;
use rand::{Rng, seq::SliceRandom};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{
    data::{self, MODEL_QUERIES, REGIONS},
    report::{Figure, Section, Target, ms, number, quantile, rss_mib},
};

/// Parameters of the search benchmark.
#[derive(Clone, Debug)]
pub struct SearchParams {
    /// Seed of the data and the queries.
    pub seed: u64,
    /// Offers (and providers) in the index.
    pub offers: u64,
    /// Queries sent one after the other for the latency figures.
    pub queries: usize,
    /// Concurrent clients for the throughput figure.
    pub clients: usize,
    /// How long the throughput run lasts.
    pub duration: Duration,
    /// The `gpuflow-node` binary.
    pub node_bin: PathBuf,
    /// The command line to print beside the figures.
    pub command: String,
}

/// A seeded query: three filters and an order, the way renters search.
pub fn query(rng: &mut impl Rng) -> String {
    let model = MODEL_QUERIES.choose(rng).expect("non-empty");
    let mut filters = vec![format!("gpu_name={model}")];
    let mut extra = [
        format!("num_gpus>={}", [1, 2, 4].choose(rng).expect("non-empty")),
        format!("dph<={:.2}", rng.gen_range(0.5..8.0)),
        format!("gpu_ram>={}", [16, 24, 48].choose(rng).expect("non-empty")),
        format!("region={}", REGIONS.choose(rng).expect("non-empty")),
    ];
    extra.shuffle(rng);
    filters.extend(extra.into_iter().take(2));
    let order = ["dph", "dph-", "num_gpus-", "gpu_ram-", "inet_down-"].choose(rng).expect("ne");
    let q: String = filters.join(" ");
    format!("q={}&order={order}", encode(&q))
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `gpuflow-node` child process on loopback.
pub struct NodeProcess {
    child: Child,
    /// Its HTTP base URL.
    pub url: String,
    /// Its pid.
    pub pid: u32,
}

impl NodeProcess {
    /// Starts `bin` on `data_dir` (HTTP and p2p on free loopback ports) with `args` after
    /// those, with a config directory of its own, and waits for its ready line.
    pub async fn start(bin: &Path, data_dir: &Path, args: &[String]) -> anyhow::Result<Self> {
        let log = std::fs::File::create(data_dir.join("node.log"))?;
        let mut command = Command::new(bin);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GPUFLOW_")) {
            command.env_remove(key);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
            .args(args)
            .env("XDG_CONFIG_HOME", data_dir.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the node exited at once")?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the node printed no ready line within 60 s")??
            .context("the node exited before it was ready; see node.log")?;
        let url = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
            .with_context(|| format!("no http= in the ready line `{line}`"))?
            .to_owned();
        // Keep reading stdout so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, url, pid })
    }

    /// Stops the node with SIGTERM, as a supervisor would.
    pub async fn stop(mut self) {
        // SAFETY: kill(2) on our own child process.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// Fills `dir` with the seeded data set through [`Store`]; returns the details lines.
pub async fn fill(seed: u64, offers: u64, dir: &Path) -> anyhow::Result<String> {
    let mut details = String::new();
    let t = Instant::now();
    let messages = data::offers(seed, offers);
    let made = t.elapsed();
    let store = Store::open(&dir.join("index.sqlite"))?;
    let stored = data::ingest_offers(&store, &messages).await?;
    drop(messages);
    if stored.stored != offers {
        bail!("only {} of {offers} offers were stored", stored.stored);
    }
    let beats = data::heartbeats(seed, 0..offers, 1);
    let beat = data::ingest_heartbeats(&store, &beats).await?;
    drop(store);
    let db_mib = ["index.sqlite", "index.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len() as f64 / 1024.0 / 1024.0)
        .sum::<f64>();
    let _ = writeln!(
        details,
        "- Data: {} signed offers of as many providers (seed {seed}), made on every core in \
         {:.1} s, stored through `Store` the node's way (decode + verify, then the batched \
         writer) at {} offers/s ({:.1} s, of which verification {:.1} s), plus one heartbeat \
         per provider ({} stored); the database is {db_mib:.0} MiB.",
        number(offers as f64),
        made.as_secs_f64(),
        number(stored.rate()),
        stored.elapsed.as_secs_f64(),
        stored.verifying.as_secs_f64(),
        number(beat.stored as f64),
    );
    Ok(details)
}

/// Names a directory where filled data directories are kept and reused by later runs with
/// the same seed and size, to skip the fill (mostly signature verification) while
/// iterating. Unset, every run fills a temporary directory of its own.
pub const DATA_CACHE_ENV: &str = "GPUFLOW_BENCH_DATA";

/// Marks a kept data directory as completely filled: the unix time of the fill, then the
/// details lines it wrote.
const FILLED: &str = "filled";

/// The data directory of this run: a fresh temporary one, or one kept under
/// [`DATA_CACHE_ENV`] for `(seed, offers)`, filled first if it is missing, incomplete or its
/// offers would expire within the hour. Returns the directory (and the temporary guard) and
/// the details lines of its fill.
pub async fn data_dir(
    seed: u64,
    offers: u64,
) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>, String)> {
    let Some(cache) = std::env::var_os(DATA_CACHE_ENV) else {
        let temp = tempfile::tempdir()?;
        let details = fill(seed, offers, temp.path()).await?;
        return Ok((temp.path().to_owned(), Some(temp), details));
    };
    let dir = PathBuf::from(cache).join(format!("search-seed{seed}-offers{offers}"));
    let marker = dir.join(FILLED);
    // Offers live for MAX_OFFER_TTL less an hour from the fill (see data.rs).
    let usable = gpuflow_protocol::MAX_OFFER_TTL - 2 * 3600;
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Some((at, details)) = text.split_once('\n')
        && at.parse::<u64>().is_ok_and(|at| gpuflow_protocol::unix_now() < at + usable)
    {
        let reused = format!("{} (reused from `{}`)\n", details.trim_end(), dir.display());
        return Ok((dir, None, reused));
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let at = gpuflow_protocol::unix_now();
    let details = fill(seed, offers, &dir).await?;
    std::fs::write(&marker, format!("{at}\n{details}"))?;
    Ok((dir, None, details))
}

/// Runs the search benchmark.
pub async fn run(params: &SearchParams) -> anyhow::Result<Section> {
    let (dir, _temp, filled) = data_dir(params.seed, params.offers).await?;
    let mut details = String::from("## Search, throughput and node memory\n\n");
    details.push_str(&filled);

    let node = NodeProcess::start(&params.node_bin, &dir, &[]).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let loaded_rss = rss_mib(node.pid).context("reading the node's VmRSS")?;

    let latency = latencies(&client, &node.url, params.seed, params.queries).await?;
    let (per_second, total, elapsed) = throughput(params, &client, &node.url).await?;
    let queried_rss = rss_mib(node.pid).context("reading the node's VmRSS")?;
    let profile = if latency.p50 > 5.0 || latency.p99 > 25.0 || per_second < 3000.0 {
        profile(params, &client, &node).await
    } else {
        None
    };
    node.stop().await;

    let _ = writeln!(
        details,
        "- Latency: {} queries one after the other from one client over HTTP/1.1 keep-alive, \
         each with three filters and an order (e.g. `{}`), 50 offers a page; {:.1} offers per \
         answer on average; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms.",
        params.queries,
        example(params.seed),
        latency.hits,
        latency.p50,
        latency.p99,
        latency.max,
    );
    let _ = writeln!(
        details,
        "- Throughput: {} concurrent clients for {} s on the same machine as the node (the \
         load generator takes a share of the cores); median of the per-second counts \
         {}/s, overall {} requests in {:.1} s = {}/s.",
        params.clients,
        params.duration.as_secs(),
        number(per_second),
        number(total as f64),
        elapsed,
        number(total as f64 / elapsed),
    );
    let _ = writeln!(
        details,
        "- Memory: VmRSS of the `gpuflow-node` process {loaded_rss:.1} MiB once it was ready on \
         the filled data directory, {queried_rss:.1} MiB after the query runs."
    );
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let search_cmd = &params.command;
    let mut figures = vec![
        Figure::new("search latency p50", latency.p50, "ms", Some(Target::AtMost(5.0)), search_cmd),
        Figure::new(
            "search latency p99",
            latency.p99,
            "ms",
            Some(Target::AtMost(25.0)),
            search_cmd,
        ),
        Figure::new(
            "search throughput",
            per_second,
            "req/s",
            Some(Target::AtLeast(3000.0)),
            search_cmd,
        )
        .note(format!("{} clients, {cores} cores shared with the load generator", params.clients)),
        Figure::new(
            "node memory after loading",
            loaded_rss,
            "MiB",
            Some(Target::AtMost(200.0)),
            search_cmd,
        ),
        Figure::new(
            "node memory after the query runs",
            queried_rss,
            "MiB",
            Some(Target::AtMost(200.0)),
            search_cmd,
        ),
    ];
    for figure in &mut figures {
        if figure.name.starts_with("search latency") || figure.name.starts_with("node memory") {
            figure.note = format!("{} offers", number(params.offers as f64));
        }
    }
    if let Some(profile) = profile {
        let _ = writeln!(
            details,
            "\nProfile of the node under the same load (`perf record -F 499 -g -p NODE -- sleep \
             5`, then `perf report --no-children --sort symbol`; `[k]` is the kernel), top \
             symbols:\n\n```\n{profile}```"
        );
    }
    if figures.iter().any(Figure::missed) {
        details.push_str(
            "\nWhere the time goes: searches never touch SQLite. The node keeps every offer's \
             searchable numbers in memory (`node/src/store/index.rs`), grouped by GPU name and \
             kept in step with the writer's commits; a search skips the groups whose name or \
             value ranges rule them out and walks the rest in the order asked, stopping once \
             a page is full, so what is left is mostly HTTP, JSON and copying the page's \
             summaries (see the profile). The load generator shares the two cores. Plan: \
             measure the node alone (load from another machine) to separate the two, then \
             serialise pages without the intermediate copies.\n",
        );
    }
    Ok(Section { figures, details })
}

/// Sequential search latencies, in milliseconds, and offers found per answer.
pub struct Latencies {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Offers per answer, on average.
    pub hits: f64,
}

/// Sends 50 seeded searches to warm up (the first open the reader connections), then
/// `queries` more one after the other, timing each from request to parsed answer.
pub async fn latencies(
    client: &reqwest::Client,
    url: &str,
    seed: u64,
    queries: usize,
) -> anyhow::Result<Latencies> {
    let mut rng = data::rng_for(seed, u64::MAX);
    for _ in 0..50 {
        get(client, url, &query(&mut rng)).await?;
    }
    let mut hits = 0usize;
    let mut times = Vec::with_capacity(queries);
    for _ in 0..queries {
        let q = query(&mut rng);
        let t = Instant::now();
        hits += get(client, url, &q).await?;
        times.push(ms(t.elapsed()));
    }
    Ok(Latencies {
        p50: quantile(&mut times, 0.5),
        p99: quantile(&mut times, 0.99),
        max: quantile(&mut times, 1.0),
        hits: hits as f64 / queries.max(1) as f64,
    })
}

/// Profiles the node with `perf` (when it is installed) for five seconds of the throughput
/// load; returns the top symbols.
async fn profile(
    params: &SearchParams,
    client: &reqwest::Client,
    node: &NodeProcess,
) -> Option<String> {
    let data = std::env::temp_dir().join(format!("gpuflow-bench-{}.perf", node.pid));
    let record = Command::new("perf")
        .args(["record", "-F", "499", "-g", "-o"])
        .arg(&data)
        .args(["-p", &node.pid.to_string(), "--", "sleep", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let load = SearchParams { duration: Duration::from_secs(6), ..params.clone() };
    let (recorded, _) =
        tokio::join!(record.wait_with_output(), throughput(&load, client, &node.url));
    if !recorded.ok()?.status.success() {
        return None;
    }
    let report = Command::new("perf")
        .args(["report", "--no-children", "--sort", "symbol", "--stdio", "-g", "none", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    let _ = std::fs::remove_file(&data);
    let top: String = String::from_utf8_lossy(&report.stdout)
        .lines()
        .filter(|l| l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit()))
        .take(12)
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    (!top.is_empty()).then_some(top)
}

fn example(seed: u64) -> String {
    let q = query(&mut data::rng_for(seed, u64::MAX));
    q.replace("%3D", "=").replace("%3E", ">").replace("%3C", "<").replace("%20", " ")
}

/// Sends one search and returns how many offers it found; any answer but 200 is an error.
async fn get(client: &reqwest::Client, url: &str, query: &str) -> anyhow::Result<usize> {
    let response = client.get(format!("{url}/v1/offers?{query}")).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("GET /v1/offers?{query}: {status}: {}", String::from_utf8_lossy(&body));
    }
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(list["offers"].as_array().map_or(0, Vec::len))
}

/// `params.clients` clients sending searches back to back for `params.duration`; returns
/// the median of the per-second counts, the total and the elapsed seconds.
async fn throughput(
    params: &SearchParams,
    client: &reqwest::Client,
    url: &str,
) -> anyhow::Result<(f64, u64, f64)> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..params.clients {
        let (client, url, done, stop) =
            (client.clone(), url.to_owned(), done.clone(), stop.clone());
        let mut rng = data::rng_for(params.seed ^ 0x7407, c as u64);
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                get(&client, &url, &query(&mut rng)).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let start = Instant::now();
    let mut counts = Vec::new();
    let mut last = 0;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    for _ in 0..params.duration.as_secs().max(1) {
        tick.tick().await;
        let now = done.load(Ordering::Relaxed);
        counts.push((now - last) as f64);
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for task in tasks {
        task.await??;
    }
    Ok((quantile(&mut counts, 0.5), last, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_have_three_filters_and_an_order_and_parse() {
        let mut rng = data::rng_for(1, 2);
        for _ in 0..100 {
            let q = query(&mut rng);
            let (filters, order) = q.split_once("&order=").unwrap();
            let text = filters.strip_prefix("q=").unwrap().replace("%20", " ");
            let text = text.replace("%3D", "=").replace("%3E", ">").replace("%3C", "<");
            assert_eq!(text.split(' ').count(), 3, "{text}");
            gpuflow_node::Query::parse(&text, 6).unwrap();
            gpuflow_node::Order::parse(order).unwrap();
        }
    }
}
