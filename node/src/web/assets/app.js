// gpuflow marketplace page: draws this node's JSON API (same origin, read-only).
// Views by path: `/` search, `/offers/ID` an offer and its provider, `/network` the network.
// No framework, no build step, no request to any other host; charts are plain SVG.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const PAGE_SIZE = 25;
const DAY = 86400;

// Search filters: URL parameter, label, query term built from the value, input attributes.
const FILTERS = [
  ["gpu", "GPU model", (v) => `gpu_name=${words(v)}`, { type: "text", placeholder: "RTX 4090" }],
  ["num_gpus", "GPUs, at least", (v) => `num_gpus>=${v}`, { type: "number", min: "1", step: "1" }],
  ["gpu_ram", "VRAM per GPU, GB ≥", (v) => `gpu_ram>=${v}`, { type: "number", min: "0", step: "any" }],
  ["dph", "Price per hour ≤", (v) => `dph<=${v}`, { type: "number", min: "0", step: "any" }],
  ["dph_per_gpu", "Price per GPU-hour ≤", (v) => `dph_per_gpu<=${v}`, { type: "number", min: "0", step: "any" }],
  ["reliability", "Reliability ≥ (0–1)", (v) => `reliability>=${v}`, { type: "number", min: "0", max: "1", step: "any" }],
  ["region", "Region", (v) => `region=${words(v)}`, { type: "text", placeholder: "eu-west" }],
  ["cpu_cores", "CPU cores ≥", (v) => `cpu_cores>=${v}`, { type: "number", min: "0", step: "1" }],
  ["cpu_ram", "RAM, GB ≥", (v) => `cpu_ram>=${v}`, { type: "number", min: "0", step: "any" }],
  ["disk_space", "Free disk, GB ≥", (v) => `disk_space>=${v}`, { type: "number", min: "0", step: "any" }],
];

// Result columns: header, sort field (null: not sortable), cell, numeric.
const COLUMNS = [
  ["GPU", null, (o) => el("a", { href: `/offers/${o.id}` }, o.gpu_name), false],
  ["GPUs", "num_gpus", (o) => String(o.num_gpus), true],
  ["VRAM/GPU", "gpu_ram", (o) => `${gb(o.gpu_ram_mb)} GB`, true],
  ["{SYM}/h", "dph", (o) => o.dph, true],
  ["{SYM}/GPU·h", "dph_per_gpu", (o) => o.dph_per_gpu, true],
  ["Reliability", "reliability", (o) => pct(o.reliability), true],
  ["Uptime", "uptime", (o) => (o.uptime == null ? "–" : pct(o.uptime)), true],
  ["Rentals", "rentals", (o) => String(o.rentals), true],
  ["CPU", "cpu_cores", (o) => (o.cpu_cores == null ? "–" : String(o.cpu_cores)), true],
  ["RAM", "cpu_ram", (o) => (o.cpu_ram_mb == null ? "–" : `${gb(o.cpu_ram_mb)} GB`), true],
  ["Disk", "disk_space", (o) => (o.disk_mb == null ? "–" : `${gb(o.disk_mb)} GB`), true],
  ["Net ↓ Mbit/s", "inet_down", (o) => (o.inet_down_mbps == null ? "–" : String(o.inet_down_mbps)), true],
  ["Region", null, (o) => o.region || "–", false],
  ["CUDA", "cuda", (o) => o.cuda || "–", true],
  ["Verified", null, (o) => tag(o.verified ? "NVML" : "no", o.verified), false],
];
// Fields where a renter wants the largest first.
const LARGEST_FIRST = new Set(["num_gpus", "gpu_ram", "reliability", "uptime", "rentals",
  "cpu_cores", "cpu_ram", "disk_space", "inet_down", "cuda"]);

let node = { token_symbol: "tokens", token_decimals: 6 };

// ---------------------------------------------------------------- helpers

function el(name, attrs, ...children) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(name, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat(Infinity)) {
    if (c == null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const words = (v) => v.trim().replace(/\s+/g, "_");
const gb = (mb) => (mb / 1000).toLocaleString("en-US", { maximumFractionDigits: 1 });
const pct = (share) => `${(share * 100).toFixed(1)} %`;
const tag = (text, ok) => el("span", { class: ok ? "tag ok" : "tag" }, text);
const when = (unix) => new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
const symbol = () => node.token_symbol;

// Token units (a decimal string) as whole tokens, exactly: no float touches an amount.
function units(text, decimals = node.token_decimals) {
  const digits = BigInt(text).toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const frac = digits.slice(digits.length - decimals).replace(/0+$/, "");
  return frac ? `${whole}.${frac}` : whole;
}

async function api(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || `${path} answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
}

function failure(error) {
  return el("p", { class: "error", role: "alert" }, error.message);
}

// ---------------------------------------------------------------- search

function searchState() {
  const params = new URLSearchParams(location.search);
  const state = { q: params.get("q") || "", order: params.get("order") || "dph", cursor: params.get("cursor") || "" };
  for (const [key] of FILTERS) state[key] = params.get(key) || "";
  state.verified = params.get("verified") === "1";
  return state;
}

function searchUrl(state) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const [key] of FILTERS) if (state[key]) params.set(key, state[key]);
  if (state.verified) params.set("verified", "1");
  if (state.order && state.order !== "dph") params.set("order", state.order);
  if (state.cursor) params.set("cursor", state.cursor);
  const text = params.toString();
  return text ? `/?${text}` : "/";
}

function queryOf(state) {
  const terms = state.q.trim() ? [state.q.trim()] : [];
  for (const [key, , term] of FILTERS) if (state[key].trim()) terms.push(term(state[key]));
  if (state.verified) terms.push("verified=true");
  return terms.join(" ");
}

function go(url) {
  history.pushState(null, "", url);
  route();
}

async function searchView() {
  const state = searchState();
  const error = el("div", { id: "search-error", class: "error", role: "alert" });
  const filterInputs = FILTERS.map(([key, label, , attrs]) =>
    el("label", {}, label, el("input", { ...attrs, id: `f-${key}`, name: key, value: state[key] })));
  const verified = el("label", { class: "check" },
    el("input", { type: "checkbox", id: "f-verified", name: "verified", checked: state.verified }),
    "Verified GPUs only");
  const q = el("input", {
    type: "search", id: "q", name: "q", value: state.q, "aria-label": "Query",
    placeholder: "gpu_name=RTX_4090 num_gpus>=2 reliability>=0.95 (the CLI's query language)",
  });
  const form = el("form", { class: "search", role: "search", id: "search-form" },
    el("div", { class: "query" }, q, el("button", { type: "submit" }, "Search")),
    el("fieldset", {}, el("legend", {}, "Filters"), el("div", { class: "filters" }, filterInputs, verified)));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = { q: q.value, order: state.order, cursor: "" };
    for (const [key] of FILTERS) next[key] = form.elements[key].value;
    next.verified = form.elements.verified.checked;
    go(searchUrl(next));
  });

  const results = el("div", { id: "results", "aria-live": "polite" }, el("p", { class: "muted" }, "Searching…"));
  show(el("h1", {}, "GPU offers"), form, error, results);

  const params = new URLSearchParams({ q: queryOf(state), order: state.order, limit: String(PAGE_SIZE) });
  if (state.cursor) params.set("cursor", state.cursor);
  let list;
  try {
    list = await api(`/v1/offers?${params}`);
  } catch (e) {
    error.textContent = e.message;
    results.replaceChildren();
    return;
  }
  results.replaceChildren(...offerTable(list, state));
}

function offerTable(list, state) {
  const [first] = state.order.split(",");
  const key = first.replace(/-$/, "");
  const descending = first.endsWith("-");
  const head = el("tr", {}, COLUMNS.map(([title, field, , numeric]) => {
    const text = title.replace("{SYM}", symbol());
    if (!field) return el("th", { scope: "col", class: numeric ? "num" : "" }, text);
    const sorted = field === key ? (descending ? "descending" : "ascending") : "none";
    const next = field === key ? (descending ? field : `${field}-`) : (LARGEST_FIRST.has(field) ? `${field}-` : field);
    const button = el("button", { type: "button", "data-sort": field, title: `Sort by ${field}` }, text);
    button.addEventListener("click", () => go(searchUrl({ ...state, order: next, cursor: "" })));
    return el("th", { scope: "col", class: numeric ? "num" : "", "aria-sort": sorted }, button);
  }));
  const rows = list.offers.map((o) =>
    el("tr", { "data-offer-id": o.id },
      COLUMNS.map(([, , cell, numeric]) => el("td", { class: numeric ? "num" : "" }, cell(o)))));
  if (!rows.length) {
    rows.push(el("tr", { class: "empty" }, el("td", { colspan: String(COLUMNS.length) },
      "No live offer matches. Loosen a filter, or search again later.")));
  }
  const table = el("table", { id: "offers" },
    el("caption", { class: "muted" }, `Prices in ${symbol()}; sorted by ${state.order}.`),
    el("thead", {}, head), el("tbody", {}, rows));
  const pager = el("div", { class: "pager" },
    el("button", { type: "button", class: "plain", id: "first-page", disabled: !state.cursor,
      onclick: () => go(searchUrl({ ...state, cursor: "" })) }, "First page"),
    el("button", { type: "button", class: "plain", id: "next-page", disabled: !list.next_cursor,
      onclick: () => go(searchUrl({ ...state, cursor: list.next_cursor })) }, "Next page"),
    el("span", { class: "muted" }, `${list.offers.length} shown` +
      (list.hidden_conflicts ? `; ${list.hidden_conflicts} hidden: their GPUs are claimed by another offer too` : "")));
  return [el("div", { class: "table-wrap" }, table), pager];
}

// ---------------------------------------------------------------- offer

async function offerView(id) {
  show(el("p", { class: "muted" }, "Loading the offer…"));
  let offer;
  try {
    offer = await api(`/v1/offers/${encodeURIComponent(id)}`);
  } catch (e) {
    const gone = e.status === 404 ? " It may have been rented or have expired: search again." : "";
    show(el("h1", {}, `Offer ${id}`), el("p", { class: "error", role: "alert" }, e.message + gone),
      el("p", {}, el("a", { href: "/" }, "Back to the search")));
    return;
  }
  let provider = null;
  try {
    provider = await api(`/v1/providers/${encodeURIComponent(offer.peer_id)}`);
  } catch (e) {
    provider = { error: e };
  }
  const body = offer.envelope.body;
  const scores = provider && provider.scores;
  const sym = symbol();

  const price = el("section", { class: "card", "aria-labelledby": "h-price" },
    el("h2", { id: "h-price" }, "Price"),
    dl([
      ["Machine", `${offer.dph} ${sym}/h`],
      ["One GPU", `${offer.dph_per_gpu} ${sym}/h`],
      ["Billed", `${offer.price_per_second} units/s, per second`],
      ["Quote valid until", when(offer.expires_at)],
    ]));
  const machine = el("section", { class: "card", "aria-labelledby": "h-machine" },
    el("h2", { id: "h-machine" }, "Machine"),
    dl([
      ["GPUs", `${offer.num_gpus}× ${offer.gpu_name}, ${gb(offer.gpu_ram_mb)} GB each`],
      ["Verified", offer.verified ? "yes: read through NVML by the agent" : "no: simulated GPUs"],
      ["CUDA / driver", `${offer.cuda || "–"} / ${offer.driver || "–"}`],
      ["Region", offer.region || "–"],
      ["CPU / RAM", `${offer.cpu_cores ?? "–"} cores / ${offer.cpu_ram_mb == null ? "–" : gb(offer.cpu_ram_mb) + " GB"}`],
      ["Free disk", offer.disk_mb == null ? "–" : `${gb(offer.disk_mb)} GB`],
      ["Internet", `${offer.inet_down_mbps ?? "–"} ↓ / ${offer.inet_up_mbps ?? "–"} ↑ Mbit/s`],
      ["Ready images", (offer.images || []).join(", ") || "none pulled ahead"],
      ["Allowed images", (offer.allowed_images || []).join(", ") || "any"],
    ]));
  const who = el("section", { class: "card", "aria-labelledby": "h-provider" },
    el("h2", { id: "h-provider" }, "Provider"),
    provider.error ? failure(provider.error) : dl([
      ["Reliability", `${pct(offer.reliability)} of rented time up (30 days, smoothed for newcomers)`],
      ["Uptime", offer.uptime == null ? "not measured yet" : `${pct(offer.uptime)} of listed time up`],
      ["Rentals", scores ? `${scores.rentals} (${scores.completed_rentals} completed without a credit)` : String(offer.rentals)],
      ["SLA credits", scores ? `${scores.sla_credits} paid back to renters, covering ${scores.sla_credited_seconds} s` : "–"],
      ["Known since", `${when(provider.first_seen)}${scores ? ` (${scores.age_days.toFixed(1)} days)` : ""}`],
      ["Heartbeats", provider.last_heartbeat
        ? `${provider.heartbeat_count}, last ${when(provider.last_heartbeat.received_at)}` : String(provider.heartbeat_count)],
      ["Peer id", el("code", {}, offer.peer_id)],
      ["Payout", el("code", {}, offer.payout)],
      ["Evidence", el("a", { href: `/v1/providers/${offer.peer_id}/evidence` }, "the data these scores are computed from")],
    ]));

  const chart = el("section", { class: "card", id: "uptime", "aria-labelledby": "h-uptime" },
    el("h2", { id: "h-uptime" }, scores ? `Uptime per day, last ${scores.daily.length} days` : "Uptime per day"),
    scores ? uptimeChart(scores.daily) : el("p", { class: "muted" }, "Not scored yet by this node."));

  const gpus = el("section", { class: "card", "aria-labelledby": "h-gpus" },
    el("h2", { id: "h-gpus" }, "GPUs as the provider signed them"),
    el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Model", "Memory", "UUID", "PCI bus", "Compute"].map((t) => el("th", { scope: "col" }, t)))),
      el("tbody", {}, body.gpus.map((g) => el("tr", {},
        el("td", {}, g.name), el("td", { class: "num" }, `${gb(g.memory_bytes / 1e6)} GB`),
        el("td", {}, el("code", {}, g.uuid)), el("td", {}, g.pci_bus_id), el("td", {}, g.compute_capability || "–")))))));

  const rent = `gpuflow rent ${offer.id} --hours 1`;
  const commands = [rent];
  if (offer.num_gpus > 1) commands.push(`gpuflow rent ${offer.id} --hours 1 --gpus 1`);
  const rentCard = el("section", { class: "card", "aria-labelledby": "h-rent" },
    el("h2", { id: "h-rent" }, "Rent it"),
    el("p", {}, "From a terminal with a funded wallet (this page holds no keys):"),
    commands.map((command, i) => el("div", { class: "command" },
      el("pre", {}, el("code", { id: i === 0 ? "rent-command" : null }, command)),
      copyButton(command))));

  const envelope = el("section", { class: "card", "aria-labelledby": "h-envelope" },
    el("h2", { id: "h-envelope" }, "Signed offer"),
    el("p", {}, "The provider signed this offer with its ed25519 key; the node cannot change it. ",
      el("code", {}, `gpuflow offer ${offer.id}`), " checks the signature before showing it. By hand: the ",
      "signature covers the ASCII tag ", el("code", {}, "gpuflow/offer/1"), " and a line feed, followed by the ",
      "bytes of ", el("code", {}, "body"), " exactly as ", el("a", { href: `/v1/offers/${offer.id}` }, "the API serves it"),
      "; ", el("code", {}, "public_key"), " is the key the peer id is derived from (PROTOCOL.md has test vectors)."),
    el("details", {}, el("summary", {}, "Envelope"), el("pre", { id: "envelope" }, JSON.stringify(offer.envelope, null, 2))));

  show(
    el("p", {}, el("a", { href: "/" }, "← All offers")),
    el("h1", {}, `${offer.num_gpus}× ${offer.gpu_name}`, " ", el("span", { class: "muted" }, `${offer.dph} ${sym}/h`)),
    el("div", { class: "grid" }, price, machine, who),
    chart, rentCard, gpus, envelope);
}

function dl(pairs) {
  return el("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function copyButton(text) {
  const button = el("button", { type: "button", class: "plain" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
  });
  return button;
}

// One bar per UTC day, oldest first; a day the provider was not listed is a grey stub.
function uptimeChart(daily) {
  const width = 640, height = 150, top = 10, bottom = 24, left = 34;
  const slot = (width - left) / Math.max(daily.length, 1);
  const plot = height - top - bottom;
  const listed = daily.filter((d) => d.uptime != null);
  const label = listed.length
    ? `Uptime per day over ${daily.length} days; listed on ${listed.length}; lowest ${pct(Math.min(...listed.map((d) => d.uptime)))}`
    : `Not listed on any of the last ${daily.length} days`;
  const bars = daily.map((d, i) => {
    const x = left + i * slot + 1;
    const up = d.uptime == null ? null : d.uptime;
    const h = up == null ? 3 : Math.max(2, up * plot);
    const text = `${new Date(d.day * 1000).toISOString().slice(0, 10)}: ${up == null ? "not listed" : pct(up)}`;
    return svg("rect", { class: up == null ? "bar none" : "bar", x, y: top + plot - h, width: Math.max(slot - 2, 1), height: h, "data-day": d.day },
      svg("title", {}, text));
  });
  const axis = [1, 0.5, 0].map((v) => [
    svg("line", { class: "axis", x1: left, x2: width, y1: top + plot * (1 - v), y2: top + plot * (1 - v) }),
    svg("text", { x: left - 4, y: top + plot * (1 - v) + 4, "text-anchor": "end" }, `${v * 100}%`),
  ]);
  const ends = daily.length ? [
    svg("text", { x: left, y: height - 6 }, new Date(daily[0].day * 1000).toISOString().slice(5, 10)),
    svg("text", { x: width, y: height - 6, "text-anchor": "end" }, "today"),
  ] : [];
  return svg("svg", { class: "chart", id: "uptime-chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    svg("title", {}, label), axis, bars, ends);
}

// ---------------------------------------------------------------- network

async function networkView() {
  show(el("p", { class: "muted" }, "Loading the network…"));
  let stats, metrics, health;
  try {
    [stats, health] = await Promise.all([api("/v1/network"), api("/healthz")]);
    metrics = parseMetrics(await (await fetch("/metrics")).text());
  } catch (e) {
    show(el("h1", {}, "Network"), failure(e));
    return;
  }
  const sym = symbol();
  const stat = (value, text) => el("div", { class: "stat" }, el("b", {}, value), el("span", {}, text));
  const models = stats.models;
  show(
    el("h1", {}, "Network"),
    el("div", { class: "stats", id: "network-stats" },
      stat(String(stats.offers), "live offers"), stat(String(stats.gpus), "GPUs on offer"),
      stat(String(models.length), "GPU models"),
      stat(String(stats.hidden_conflicts), "offers hidden in a GPU conflict")),
    el("div", { class: "grid" },
      el("section", { class: "card", "aria-labelledby": "h-models" },
        el("h2", { id: "h-models" }, "Live GPUs by model"),
        models.length ? barChart("chart-models", models.map((m) => [m.gpu_name, m.gpus, `${m.gpus} GPUs in ${m.offers} offers`]))
          : el("p", { class: "muted" }, "No live offer.")),
      el("section", { class: "card", "aria-labelledby": "h-prices" },
        el("h2", { id: "h-prices" }, `Price per GPU-hour by model, ${sym}`),
        models.length ? priceChart(models) : el("p", { class: "muted" }, "No live offer.")),
      el("section", { class: "card", "aria-labelledby": "h-reliability" },
        el("h2", { id: "h-reliability" }, "Reliability of live offers"),
        reliabilityChart(stats.reliability)),
      el("section", { class: "card", id: "node-health", "aria-labelledby": "h-node" },
        el("h2", { id: "h-node" }, "This node"),
        dl([
          ["Status", `${health.status}, ${health.offers} live offers indexed`],
          ["Version", node.version || "–"],
          ["Peers connected", metric(metrics, "gpuflow_peers")],
          ["Messages stored", metric(metrics, "gpuflow_messages_accepted_total")],
          ["Messages rejected", `${metric(metrics, "gpuflow_messages_rejected_total")} (invalid; the sender is penalised)`],
          ["Messages ignored", `${metric(metrics, "gpuflow_messages_ignored_total")} (stale, rate-limited, …)`],
          ["HTTP requests", metric(metrics, "gpuflow_http_request_duration_seconds_count")],
          ["Peer id", el("code", {}, node.peer_id || "–")],
          ["Join through", (node.addrs || []).map((a) => el("div", {}, el("code", {}, a)))],
          ["Metrics", el("a", { href: "/metrics" }, "/metrics (OpenMetrics)")],
        ]))));
}

// Sums every sample of each metric family in OpenMetrics text.
function parseMetrics(text) {
  const sums = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    sums.set(match[1], (sums.get(match[1]) || 0) + Number(match[3]));
  }
  return sums;
}

const metric = (sums, name) => (sums.has(name) ? sums.get(name).toLocaleString("en-US") : "0");

// Horizontal bars: [label, value, tooltip] per row.
function barChart(id, rows) {
  const width = 520, row = 26, left = 190, height = rows.length * row + 8;
  const most = Math.max(...rows.map((r) => r[1]), 1);
  return svg("svg", { class: "chart", id, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": rows.map((r) => `${r[0]}: ${r[1]}`).join("; ") },
  rows.map(([label, value, tip], i) => [
    svg("text", { class: "label", x: left - 8, y: i * row + 18, "text-anchor": "end" }, clip(label, 28)),
    svg("rect", { class: "bar", x: left, y: i * row + 5, height: row - 10, width: Math.max(2, (value / most) * (width - left - 50)) },
      svg("title", {}, tip)),
    svg("text", { x: left + 6 + (value / most) * (width - left - 50), y: i * row + 18 }, String(value)),
  ]));
}

// Per model: lowest to highest as a whisker, the middle half as a box, the median as a tick.
function priceChart(models) {
  const width = 520, row = 30, left = 190, right = 20, height = models.length * row + 24;
  const values = models.flatMap((m) => [BigInt(m.price_per_gpu_hour.min), BigInt(m.price_per_gpu_hour.max)]);
  const high = values.reduce((a, b) => (b > a ? b : a), 1n);
  // Positions only: the amounts shown are exact (`units`).
  const x = (v) => left + (Number((BigInt(v) * 10000n) / high) / 10000) * (width - left - right);
  const rows = models.map((m, i) => {
    const p = m.price_per_gpu_hour, y = i * row + 15;
    const tip = `${m.gpu_name}: ${units(p.min)} to ${units(p.max)} ${symbol()}/GPU·h, median ${units(p.median)}`;
    return svg("g", {}, svg("title", {}, tip),
      svg("text", { class: "label", x: left - 8, y: y + 4, "text-anchor": "end" }, clip(m.gpu_name, 28)),
      svg("line", { class: "whisker", x1: x(p.min), x2: x(p.max), y1: y, y2: y }),
      svg("rect", { class: "box", x: x(p.p25), y: y - 8, width: Math.max(2, x(p.p75) - x(p.p25)), height: 16 }),
      svg("line", { class: "median", x1: x(p.median), x2: x(p.median), y1: y - 9, y2: y + 9 }));
  });
  const axis = [svg("line", { class: "axis", x1: left, x2: width - right, y1: height - 16, y2: height - 16 }),
    svg("text", { x: left, y: height - 2 }, "0"),
    svg("text", { x: width - right, y: height - 2, "text-anchor": "end" }, `${units(high.toString())} ${symbol()}`)];
  return svg("svg", { class: "chart", id: "chart-prices", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": models.map((m) => `${m.gpu_name}: median ${units(m.price_per_gpu_hour.median)}`).join("; ") }, rows, axis);
}

// Offers per reliability decile.
function reliabilityChart(deciles) {
  const width = 520, height = 170, top = 10, bottom = 28, left = 10;
  const most = Math.max(...deciles, 1), slot = (width - left) / deciles.length, plot = height - top - bottom;
  return svg("svg", { class: "chart", id: "chart-reliability", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": deciles.map((n, i) => `${i * 10}–${i * 10 + 10} %: ${n}`).join("; ") },
  deciles.map((n, i) => {
    const h = n ? Math.max(2, (n / most) * plot) : 0;
    return [
      svg("rect", { class: "bar", x: left + i * slot + 3, y: top + plot - h, width: slot - 6, height: h },
        svg("title", {}, `${i * 10}–${i * 10 + 10} %: ${n} offers`)),
      svg("text", { x: left + i * slot + slot / 2, y: height - 12, "text-anchor": "middle" }, `${i * 10}%`),
      n ? svg("text", { class: "label", x: left + i * slot + slot / 2, y: top + plot - h - 3, "text-anchor": "middle" }, String(n)) : null,
    ];
  }));
}

const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

// ---------------------------------------------------------------- routing

async function route() {
  const path = location.pathname;
  for (const a of document.querySelectorAll("nav a[data-view]")) {
    const current = a.getAttribute("href") === path;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const offer = /^\/offers\/([^/]+)$/.exec(path);
  try {
    if (offer) {
      document.title = `Offer ${decodeURIComponent(offer[1])} · gpuflow`;
      await offerView(decodeURIComponent(offer[1]));
    } else if (path === "/network") {
      document.title = "Network · gpuflow";
      await networkView();
    } else {
      document.title = "GPU offers · gpuflow";
      await searchView();
    }
  } catch (e) {
    show(el("p", { class: "error", role: "alert" }, `This view failed to draw: ${e.message}. Reload the page; the API answers at /openapi.json.`));
  }
  // What tests wait for: the view of this address is drawn.
  document.body.dataset.ready = location.pathname + location.search;
}

async function start() {
  try {
    node = await api("/v1/node");
    const badge = document.getElementById("node-badge");
    badge.textContent = `node ${node.peer_id.slice(-8)} · v${node.version} · prices in ${node.token_symbol}`;
  } catch (e) {
    show(failure(e));
    return;
  }
  window.addEventListener("popstate", route);
  await route();
}

start();
