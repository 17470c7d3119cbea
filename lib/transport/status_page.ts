/**
 * The live status page served at `GET /` on `status_address`: one
 * self-contained HTML document (inline CSS and script, no CDN, no build step)
 * that polls `/status` every second and shows the node's identity, counters,
 * peers and a chart of the last five minutes.
 *
 * Peer-supplied text (addresses) reaches the page, so the script only ever
 * sets `textContent` and attributes, never HTML; the server sends a Content
 * Security Policy that allows exactly this script (by hash) and same-origin
 * `fetch`.
 *
 * @module
 */

const STYLE = `
:root { color-scheme: light dark; --fg: #1d232a; --muted: #5b6670; --bg: #f6f7f9; --card: #fff;
  --line: #d8dde3; --a: #2f6fdb; --b: #e0782f; --ok: #1f9d55; --bad: #c2372f; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ec; --muted: #9aa5b1; --bg: #15191d;
  --card: #1e242a; --line: #323a42; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 14px 20px; border-bottom: 1px solid var(--line); background: var(--card);
  display: flex; flex-wrap: wrap; gap: 6px 24px; align-items: baseline; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 8px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
#state::before { content: "●"; margin-right: 6px; color: var(--muted); }
body[data-state="live"] #state::before { color: var(--ok); }
body[data-state="down"] #state::before { color: var(--bad); }
main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: minmax(0, 1fr); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
#counters { display: grid; gap: 8px; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); }
.counter { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; }
.counter .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.counter .label { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
td.num, th.num { text-align: right; }
svg { width: 100%; height: 200px; display: block; }
svg text { fill: var(--muted); font-size: 11px; }
.legend span { margin-right: 16px; }
.legend .a { color: var(--a); } .legend .b { color: var(--b); }
`;

const SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
const HISTORY = 300;
const samples = [];
let previous;

const COUNTERS = [
  ["peers-in", "inbound peers", (s) => s.peers.filter((p) => p.direction === "inbound").length],
  ["peers-out", "outbound peers", (s) => s.peers.filter((p) => p.direction !== "inbound").length],
  ["known", "known peers (spares)", (s) => s.knownPeers],
  ["clients", "API clients", (s) => s.apiClients],
  ["stored", "items stored", (s) => s.itemsStored],
  ["announced", "items announced here", (s) => s.local.announced],
  ["received", "items received", (s) => s.spreading.received],
  ["duplicates", "duplicate copies", (s) => s.spreading.duplicates],
  ["pulled", "items pulled (IWANT)", (s) => s.spreading.pulled],
  ["sent", "item messages sent", (s) => s.spreading.itemsSent],
  ["notifications", "notifications to modules", (s) => s.local.notificationsSent],
  ["pending", "validations pending", (s) => s.pendingValidations],
  ["timedout", "validations timed out", (s) => s.spreading.unanswered],
  ["dropped", "items dropped", (s) => s.local.announceDropped + s.local.notificationsDropped +
    s.spreading.overloaded + s.spreading.invalid + s.spreading.mismatched],
  ["banned", "peers banned", (s) => s.guard.banned],
  ["handshakes", "handshake failures", (s) => s.handshakeFailureCount],
  ["bytes-in", "bytes from peers", (s) => bytes(s.bytesIn ?? 0)],
  ["bytes-out", "bytes to peers", (s) => bytes(s.bytesOut ?? 0)],
];

function bytes(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return value.toFixed(value < 10 ? 1 : 0) + " " + units[unit];
}

function age(ms) {
  const s = Math.floor((ms ?? 0) / 1000);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function setupCounters() {
  const box = $("counters");
  for (const [id, label] of COUNTERS) {
    const card = el("div", undefined, "counter");
    const value = el("div", "–", "value");
    value.id = "c-" + id;
    card.append(value, el("div", label, "label"));
    box.append(card);
  }
}

function renderPeers(peers) {
  const body = $("peer-rows");
  const rows = [...peers].sort((a, b) => a.direction.localeCompare(b.direction) ||
    a.address.localeCompare(b.address)).map((p) => {
    const row = el("tr");
    row.dataset.identity = p.identity;
    const id = el("td", p.identity.slice(0, 16), "mono");
    id.title = p.identity;
    row.append(id, el("td", p.direction), el("td", p.address, "mono"), el("td", age(p.ageMs), "num"),
      el("td", bytes(p.bytesIn ?? 0), "num"), el("td", bytes(p.bytesOut ?? 0), "num"),
      el("td", p.score ?? 0, "num"), el("td", p.rttMs === undefined ? "–" : p.rttMs + " ms", "num"));
    return row;
  });
  body.replaceChildren(...rows);
  $("peer-count").textContent = String(peers.length);
  $("no-peers").hidden = peers.length > 0;
}

function renderChart() {
  const svg = $("chart");
  // Drawn in CSS pixels (the view box follows the width), so that text is not stretched.
  const W = Math.max(300, Math.round(svg.getBoundingClientRect().width)), H = 200;
  const left = 34, bottom = 18;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  $("x-axis").setAttribute("x2", String(W));
  $("x-now").setAttribute("x", String(W));
  const rate = samples.map((s) => s.rate);
  const peers = samples.map((s) => s.peers);
  const top = Math.max(1, ...rate, ...peers);
  const x = (i) => left + (W - left) * (HISTORY - samples.length + i) / (HISTORY - 1);
  const y = (v) => (H - bottom) - (H - bottom - 6) * v / top;
  const line = (values) => values.map((v, i) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
  $("line-rate").setAttribute("points", line(rate));
  $("line-peers").setAttribute("points", line(peers));
  $("y-top").textContent = String(Math.round(top * 10) / 10);
  svg.dataset.samples = String(samples.length);
}

function render(s) {
  document.title = "gossip " + s.identity.slice(0, 8);
  $("identity").textContent = s.identity;
  $("api").textContent = s.apiAddress;
  $("p2p").textContent = s.p2pAddress;
  for (const [id, , pick] of COUNTERS) $("c-" + id).textContent = String(pick(s));
  renderPeers(s.peers);
  const now = performance.now();
  const items = s.spreading.received + s.local.announced;
  const rate = previous ? Math.max(0, (items - previous.items) * 1000 / (now - previous.at)) : 0;
  previous = { at: now, items };
  samples.push({ rate, peers: s.peers.length });
  if (samples.length > HISTORY) samples.shift();
  renderChart();
}

async function tick() {
  try {
    const response = await fetch("status", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    document.body.dataset.state = "live";
    $("state").textContent = "live, updated " + new Date().toLocaleTimeString();
  } catch (error) {
    document.body.dataset.state = "down";
    $("state").textContent = "no answer from the node (" + error.message + ")";
  }
  setTimeout(tick, 1000);
}

setupCounters();
tick();
`;

/** The inline script's CSP source (`'sha256-...'`), computed once. */
async function scriptHash(): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(SCRIPT));
  let binary = "";
  for (const byte of new Uint8Array(digest)) binary += String.fromCharCode(byte);
  return `'sha256-${btoa(binary)}'`;
}

/** The page's HTML. */
export const STATUS_PAGE_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>gossip node</title>
<style>${STYLE}</style>
</head>
<body data-state="loading">
<header>
  <h1>gossip node</h1>
  <span>identity <code id="identity">…</code></span>
  <span class="muted">api <code id="api"></code> · p2p <code id="p2p"></code></span>
  <span id="state" class="muted">loading…</span>
</header>
<main>
  <section><h2>Counters</h2><div id="counters"></div></section>
  <section>
    <h2>Last five minutes</h2>
    <div class="legend"><span class="a">━ items per second</span><span class="b">━ peers</span></div>
    <svg id="chart" viewBox="0 0 600 200" role="img"
      aria-label="items per second and peers over the last five minutes" data-samples="0">
      <line id="x-axis" x1="34" y1="182" x2="600" y2="182" stroke="currentColor" stroke-opacity="0.25"/>
      <line x1="34" y1="6" x2="34" y2="182" stroke="currentColor" stroke-opacity="0.25"/>
      <text id="y-top" x="30" y="12" text-anchor="end">1</text>
      <text x="30" y="182" text-anchor="end">0</text>
      <text id="x-now" x="600" y="198" text-anchor="end">now</text>
      <text x="36" y="198">−5 min</text>
      <polyline id="line-rate" fill="none" stroke="#2f6fdb" stroke-width="2" points=""/>
      <polyline id="line-peers" fill="none" stroke="#e0782f" stroke-width="2" points=""/>
    </svg>
  </section>
  <section>
    <h2>Peers (<span id="peer-count">0</span>)</h2>
    <table>
      <thead><tr><th>identity</th><th>direction</th><th>address</th><th class="num">connected</th>
        <th class="num">received</th><th class="num">sent</th><th class="num">score</th>
        <th class="num">round trip</th></tr></thead>
      <tbody id="peer-rows"></tbody>
    </table>
    <p id="no-peers" class="muted">No peers connected.</p>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * Headers of the page: a Content Security Policy that allows only its own
 * inline script (by hash) and style, and `fetch` to the same origin.
 */
export async function statusPageHeaders(): Promise<Record<string, string>> {
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": `default-src 'none'; script-src ${await scriptHash()}; ` +
      "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; " +
      "form-action 'none'; frame-ancestors 'none'",
  };
}
