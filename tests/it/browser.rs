//! The marketplace page in a real browser: headless Chromium, driven through chromedriver's
//! WebDriver API, against a devnet's node. Screenshots of each page go to the artifacts
//! directory (`GPUFLOW_ARTIFACTS`, else `artifacts/` under the cargo target directory).

use std::{path::PathBuf, process::Stdio, time::Duration};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::start;

/// Longest a page may take to draw a view.
const VIEW_TIMEOUT: Duration = Duration::from_secs(30);

/// A chromedriver process and one headless Chromium session in it.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: tokio::process::Child,
}

impl Browser {
    async fn start() -> Self {
        let missing = "chromedriver and chromium are missing: `bash tests/docker/engine.sh up` \
                       installs them (apt-get install chromium chromium-driver)";
        let mut driver = tokio::process::Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{missing} ({e})"));
        // "ChromeDriver was started successfully on port 35307."
        let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .expect("chromedriver says its port within 30 s")
        .expect("chromedriver prints the port it listens on");
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--no-first-run", "--disable-extensions"],
            },
        }}});
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}; {missing}"))
            .to_owned();
        Self { http, session: format!("{base}/session/{session}"), _driver: driver }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    async fn run(&self, script: &str) -> Value {
        let body = json!({ "script": script, "args": [] });
        self.call(reqwest::Method::POST, "/execute/sync", Some(body)).await
    }

    /// Polls `script` until it returns something other than null or false.
    async fn wait(&self, what: &str, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + VIEW_TIMEOUT;
        loop {
            let value = self.run(script).await;
            if !value.is_null() && value != Value::Bool(false) {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let page = self.run("return document.body.innerText").await;
                panic!(
                    "timed out after {VIEW_TIMEOUT:?} waiting for {what}; the page shows:\n{page}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page has drawn the view of `address` (path and query).
    async fn drawn(&self, address: &str) {
        let script = format!("return document.body.dataset.ready === {}", json!(address));
        self.wait(&format!("the view of {address}"), &script).await;
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 screenshot"))
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        let dir = artifacts().join("browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session so that chromedriver closes Chromium before it is killed.
        let (http, session) = (self.http.clone(), self.session.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(10), http.delete(session).send())
                            .await;
                });
            }
        })
        .join();
    }
}

fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or("/usr/bin/chromium")
        .to_owned()
}

/// Where `make test` keeps what tests leave for people to look at.
fn artifacts() -> PathBuf {
    if let Some(dir) = std::env::var_os("GPUFLOW_ARTIFACTS") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("artifacts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marketplace_page_lists_filters_and_explains_the_devnets_offer() {
    let dir = tempfile::tempdir().unwrap();
    let (devnet, _escrow) = start(dir.path()).await;
    let base = devnet.node_url.trim_end_matches('/').to_owned();
    let id = devnet.offer_id.clone();

    // Every page answer forbids what the page does not need.
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    let browser = Browser::start().await;

    // The search page lists the devnet's offer, with its price in the token's symbol.
    browser.open(&format!("{base}/")).await;
    browser.drawn("/").await;
    let rows = browser
        .wait(
            "the offer's row",
            "const rows = [...document.querySelectorAll('#offers tbody tr[data-offer-id]')];
             return rows.length ? rows.map(r => [r.dataset.offerId, r.innerText]) : null",
        )
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], id.as_str());
    let row = rows[0][1].as_str().unwrap();
    assert!(row.contains("RTX 4090") && row.contains("0.36"), "{row}");
    let headers = browser.run("return document.querySelector('#offers thead').innerText").await;
    assert!(headers.as_str().unwrap().contains("mUSDC/h"), "{headers}");
    browser.screenshot("search").await;

    // A filter that excludes it, typed and submitted as a person would: the table empties
    // and says so, and the address keeps the filter.
    browser
        .run(
            "document.getElementById('f-num_gpus').value = '8';
             document.querySelector('#search-form button[type=submit]').click();",
        )
        .await;
    browser.drawn("/?num_gpus=8").await;
    let empty = browser
        .run(
            "return [document.querySelectorAll('#offers tbody tr[data-offer-id]').length,
                     document.querySelector('#offers tbody tr.empty')?.innerText ?? '']",
        )
        .await;
    assert_eq!(empty[0], 0, "{empty}");
    assert!(empty[1].as_str().unwrap().contains("No live offer matches"), "{empty}");
    // A query the node refuses is shown with the node's reason.
    browser.open(&format!("{base}/?q=gpu_nam%3DRTX")).await;
    browser.drawn("/?q=gpu_nam%3DRTX").await;
    let error = browser.run("return document.getElementById('search-error').innerText").await;
    assert!(error.as_str().unwrap().contains("gpu_nam"), "{error}");
    // Sorting by a column's button keeps the offer and records the order.
    browser.open(&format!("{base}/")).await;
    browser.drawn("/").await;
    browser.run("document.querySelector('th button[data-sort=reliability]').click()").await;
    browser.drawn("/?order=reliability-").await;
    let sorted = browser
        .run("return document.querySelector('th[aria-sort=descending] button')?.dataset.sort")
        .await;
    assert_eq!(sorted, "reliability");

    // The offer page: its uptime chart, one bar per day of the window, today's measured
    // once the node has scored the listed time (reloaded until then); the exact rent
    // command; the signed envelope.
    browser.run("document.querySelector('#offers tbody tr[data-offer-id] a').click()").await;
    let path = format!("/offers/{id}");
    let deadline = tokio::time::Instant::now() + VIEW_TIMEOUT;
    let offer = loop {
        browser.drawn(&path).await;
        let offer = browser
            .run(
                "const bars = document.querySelectorAll('#uptime-chart rect');
                 return {
                   days: bars.length,
                   measured: document.querySelectorAll('#uptime-chart rect.bar:not(.none)').length,
                   rent: document.getElementById('rent-command').innerText,
                   envelope: JSON.parse(document.getElementById('envelope').textContent),
                 }",
            )
            .await;
        if offer["measured"].as_u64() >= Some(1) {
            break offer;
        }
        assert!(tokio::time::Instant::now() < deadline, "today is never measured: {offer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.open(&format!("{base}{path}")).await;
    };
    let api: Value =
        reqwest::get(format!("{base}/v1/offers/{id}")).await.unwrap().json().await.unwrap();
    let peer = api["peer_id"].as_str().unwrap();
    let provider: Value =
        reqwest::get(format!("{base}/v1/providers/{peer}")).await.unwrap().json().await.unwrap();
    let days = provider["scores"]["daily"].as_array().map(Vec::len);
    assert!(days >= Some(30), "{provider}");
    assert_eq!(offer["days"].as_u64(), days.map(|d| d as u64), "a bar per day: {offer}");
    assert_eq!(offer["rent"], format!("gpuflow rent {id} --hours 1"));
    assert_eq!(offer["envelope"]["kind"], "offer");
    assert_eq!(offer["envelope"], api["envelope"], "the page shows the envelope as signed");
    browser.screenshot("offer").await;

    // The network page: GPUs by model, prices, reliability, and the node's health.
    browser.open(&format!("{base}/network")).await;
    browser.drawn("/network").await;
    let network = browser
        .run(
            "return {
               models: document.querySelector('#chart-models').getAttribute('aria-label'),
               prices: document.querySelectorAll('#chart-prices rect.box').length,
               deciles: document.querySelectorAll('#chart-reliability text').length,
               health: document.getElementById('node-health').innerText,
             }",
        )
        .await;
    assert!(network["models"].as_str().unwrap().contains("RTX 4090: 2"), "{network}");
    assert_eq!(network["prices"], 1, "{network}");
    assert!(network["deciles"].as_u64().unwrap() >= 10, "{network}");
    assert!(network["health"].as_str().unwrap().contains("1 live offers indexed"), "{network}");
    browser.screenshot("network").await;

    // Nothing came from anywhere but the node.
    let loaded =
        browser.run("return performance.getEntriesByType('resource').map(e => e.name)").await;
    for url in loaded.as_array().unwrap() {
        assert!(url.as_str().unwrap().starts_with(&base), "{url} is not the node's");
    }

    // On a phone's width the search page still fits its width.
    browser
        .call(reqwest::Method::POST, "/window/rect", Some(json!({ "width": 390, "height": 844 })))
        .await;
    browser.open(&format!("{base}/")).await;
    browser.drawn("/").await;
    let overflow = browser
        .run("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert_eq!(overflow, 0, "the page scrolls sideways on a phone");
    browser.screenshot("search-phone").await;

    drop(browser);
    devnet.shutdown().await;
}
