/**
 * The demo's web page (`deno task demo --web`): one self-contained HTML page
 * (no CDN, no build step) that draws the demo cluster's overlay as a graph and
 * replays each item spreading across it, node by node, slowed down so that the
 * waves can be seen. It polls `view.json`, a {@link DemoView} the demo updates.
 *
 * @module
 */

/** One node of the demo cluster as the page shows it. */
export interface DemoViewNode {
  /** 0-based position; the page labels nodes from 1. */
  readonly index: number;
  /** Hex identity. */
  readonly identity: string;
  /** Indices of the connected peers. */
  readonly peers: readonly number[];
}

/** One announced item. */
export interface DemoViewItem {
  /** 1-based number. */
  readonly number: number;
  /** Index of the announcing node. */
  readonly origin: number;
  /** For each node: ms from ANNOUNCE to its module's NOTIFICATION, or null (origin, or not yet). */
  readonly arrivals: readonly (number | null)[];
}

/** What the page draws. */
export interface DemoView {
  /** What the demo is doing, in words. */
  readonly phase: string;
  /** The cluster. */
  readonly nodes: readonly DemoViewNode[];
  /** Items announced so far, oldest first. */
  readonly items: readonly DemoViewItem[];
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1d232a; --muted: #5b6670; --bg: #f6f7f9; --card: #fff;
  --line: #c9d0d8; --idle: #aab4be; --origin: #e0782f; --reached: #1f9d55; --edge-hot: #1f9d55; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ec; --muted: #9aa5b1; --bg: #15191d;
  --card: #1e242a; --line: #3a434c; --idle: #59636d; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 12px 20px; background: var(--card); border-bottom: 1px solid var(--line);
  display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 320px; gap: 16px; padding: 16px 20px; }
@media (max-width: 900px) { main { grid-template-columns: minmax(0, 1fr); } }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
#graph { width: 100%; height: min(72vh, 720px); display: block; }
#graph line { stroke: var(--line); stroke-width: 1.5; }
#graph line.hot { stroke: var(--edge-hot); stroke-width: 3; }
#graph circle { fill: var(--idle); stroke: var(--card); stroke-width: 2; transition: fill 0.15s; }
#graph circle.origin { fill: var(--origin); }
#graph circle.reached { fill: var(--reached); }
#graph text { font-size: 11px; fill: #fff; text-anchor: middle; dominant-baseline: central;
  pointer-events: none; font-weight: 600; }
#graph text.ms { fill: var(--muted); font-weight: 400; font-size: 10px; }
.muted { color: var(--muted); }
ol { list-style: none; margin: 0; padding: 0; }
#items li { padding: 6px 8px; border-radius: 6px; cursor: pointer; }
#items li.selected { background: color-mix(in srgb, var(--reached) 16%, transparent); }
.bar { height: 6px; background: var(--line); border-radius: 3px; overflow: hidden; margin-top: 4px; }
.bar > div { height: 100%; background: var(--reached); }
.legend > span { margin-right: 14px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; }
`;

/** How much slower than real time the page replays an item's spreading. */
const REPLAY_SLOWDOWN = 25;

const SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const W = 1000, H = 700;
// ?slow=N replays N times slower than real time (default ${REPLAY_SLOWDOWN}).
const SLOW = Math.min(1000, Math.max(1, Number(new URLSearchParams(location.search).get("slow")) ||
  ${REPLAY_SLOWDOWN}));
let view = { phase: "", nodes: [], items: [] };
let positions = [];
let layoutKey = "";
let selected = null;
let follow = true;
let replay = { item: null, start: 0 };

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function edges(nodes) {
  const out = [];
  for (const n of nodes) for (const p of n.peers) if (n.index < p) out.push([n.index, p]);
  return out;
}

/** Force-directed layout (Fruchterman-Reingold), deterministic, started on a circle. */
function layout(nodes) {
  const n = nodes.length;
  const pos = nodes.map((_, i) => {
    const a = 2 * Math.PI * i / Math.max(1, n);
    return { x: W / 2 + 0.35 * W * Math.cos(a), y: H / 2 + 0.38 * H * Math.sin(a) };
  });
  const links = edges(nodes);
  const k = Math.sqrt((W * H) / Math.max(1, n)) * 0.75;
  for (let round = 0; round < 300; round++) {
    const t = 40 * (1 - round / 300) + 1;
    const disp = pos.map(() => ({ x: 0, y: 0 }));
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
      const dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
      const d = Math.max(1, Math.hypot(dx, dy));
      const f = k * k / d;
      disp[i].x += dx / d * f; disp[i].y += dy / d * f;
      disp[j].x -= dx / d * f; disp[j].y -= dy / d * f;
    }
    for (const [a, b] of links) {
      const dx = pos[a].x - pos[b].x, dy = pos[a].y - pos[b].y;
      const d = Math.max(1, Math.hypot(dx, dy));
      const f = d * d / k;
      disp[a].x -= dx / d * f; disp[a].y -= dy / d * f;
      disp[b].x += dx / d * f; disp[b].y += dy / d * f;
    }
    for (let i = 0; i < n; i++) {
      const d = Math.max(1, Math.hypot(disp[i].x, disp[i].y));
      pos[i].x = Math.min(W - 30, Math.max(30, pos[i].x + disp[i].x / d * Math.min(d, t)));
      pos[i].y = Math.min(H - 30, Math.max(30, pos[i].y + disp[i].y / d * Math.min(d, t)));
    }
  }
  // Stretch the drawing to the whole area.
  const xs = pos.map((p) => p.x), ys = pos.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  return pos.map((p) => ({
    x: x1 > x0 ? 50 + (W - 100) * (p.x - x0) / (x1 - x0) : W / 2,
    y: y1 > y0 ? 40 + (H - 90) * (p.y - y0) / (y1 - y0) : H / 2,
  }));
}

function itemFor(number) {
  return view.items.find((i) => i.number === number) ?? null;
}

/** Which nodes the replay of item has reached by now, and the edge each was reached over. */
function replayState(item, now) {
  const shown = new Map();
  if (!item) return shown;
  const elapsed = (now - replay.start) / SLOW;
  const order = view.nodes.map((n) => n.index)
    .filter((i) => i === item.origin || (item.arrivals[i] !== null && item.arrivals[i] <= elapsed))
    .sort((a, b) => (a === item.origin ? -1 : b === item.origin ? 1 : item.arrivals[a] - item.arrivals[b]));
  for (const i of order) {
    if (i === item.origin) { shown.set(i, null); continue; }
    // The edge it most likely came over: its earliest-reached neighbour.
    let from = null, best = Infinity;
    for (const p of view.nodes[i].peers) {
      if (!shown.has(p)) continue;
      const t = p === item.origin ? -1 : item.arrivals[p];
      if (t < best) { best = t; from = p; }
    }
    shown.set(i, from);
  }
  return shown;
}

function draw() {
  const graph = $("graph");
  const key = JSON.stringify(view.nodes.map((n) => n.peers));
  if (key !== layoutKey) {
    layoutKey = key;
    positions = layout(view.nodes);
  }
  const item = itemFor(replay.item);
  const shown = replayState(item, performance.now());
  const hot = new Set();
  for (const [node, from] of shown) if (from !== null) hot.add(Math.min(node, from) + "-" + Math.max(node, from));
  const parts = [];
  for (const [a, b] of edges(view.nodes)) {
    const line = svg("line", { x1: positions[a].x, y1: positions[a].y, x2: positions[b].x, y2: positions[b].y });
    if (hot.has(a + "-" + b)) line.setAttribute("class", "hot");
    parts.push(line);
  }
  for (const node of view.nodes) {
    const p = positions[node.index];
    const state = item && node.index === item.origin ? "origin" : shown.has(node.index) ? "reached" : "";
    const circle = svg("circle", { cx: p.x, cy: p.y, r: 14, "data-node": node.index + 1 });
    if (state) circle.setAttribute("class", state);
    const title = svg("title", {}, "node " + (node.index + 1) + " " + node.identity.slice(0, 16) +
      " (" + node.peers.length + " peers)");
    circle.append(title);
    parts.push(circle, svg("text", { x: p.x, y: p.y }, node.index + 1));
    if (item && state === "reached") {
      parts.push(svg("text", { x: p.x, y: p.y + 24, class: "ms" }, item.arrivals[node.index].toFixed(1) + " ms"));
    }
  }
  graph.replaceChildren(...parts);
  graph.dataset.nodes = String(view.nodes.length);
  graph.dataset.edges = String(edges(view.nodes).length);
  graph.dataset.reached = String([...shown.keys()].length);
  $("shown").textContent = item
    ? "item " + item.number + " from node " + (item.origin + 1) + ": " + (shown.size - 1) + "/" +
      (view.nodes.length - 1) + " nodes reached"
    : "no item yet";
}

function drawItems() {
  const list = $("items");
  const total = view.nodes.length - 1;
  list.replaceChildren(...[...view.items].reverse().map((item) => {
    const reached = item.arrivals.filter((a) => a !== null).length;
    const last = Math.max(0, ...item.arrivals.filter((a) => a !== null));
    const li = document.createElement("li");
    li.dataset.item = String(item.number);
    li.dataset.reached = String(reached);
    if (item.number === replay.item) li.className = "selected";
    const head = document.createElement("div");
    head.textContent = "item " + item.number + " from node " + (item.origin + 1) + ": " + reached + "/" + total +
      " nodes" + (reached === total ? " in " + last.toFixed(1) + " ms" : "");
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.style.width = (100 * reached / Math.max(1, total)) + "%";
    bar.append(fill);
    li.append(head, bar);
    li.addEventListener("click", () => { follow = false; startReplay(item.number); });
    return li;
  }));
}

function startReplay(number) {
  replay = { item: number, start: performance.now() };
  drawItems();
}

async function poll() {
  try {
    const response = await fetch("view.json", { cache: "no-store" });
    view = await response.json();
    $("phase").textContent = view.phase;
    $("count").textContent = view.nodes.length + " nodes, " + edges(view.nodes).length + " links";
    const latest = view.items.at(-1);
    if (latest && follow && latest.number !== replay.item) {
      const total = view.nodes.length - 1;
      if (latest.arrivals.filter((a) => a !== null).length === total || view.phase.startsWith("done")) {
        startReplay(latest.number);
      }
    }
    drawItems();
    document.body.dataset.state = "live";
  } catch {
    $("phase").textContent = "the demo has stopped";
    document.body.dataset.state = "down";
  }
  setTimeout(poll, 250);
}

function frame() {
  if (view.nodes.length > 0) draw();
  requestAnimationFrame(frame);
}

$("slow").textContent = String(SLOW);
$("replay").addEventListener("click", () => { if (replay.item !== null) startReplay(replay.item); });
$("follow").addEventListener("click", () => { follow = true; const l = view.items.at(-1); if (l) startReplay(l.number); });
poll();
requestAnimationFrame(frame);
`;

/** The page's HTML. */
export const DEMO_PAGE_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>gossip demo</title>
<style>${STYLE}</style>
</head>
<body data-state="loading">
<header>
  <h1>gossip demo</h1>
  <span id="count" class="muted"></span>
  <span id="phase">loading…</span>
</header>
<main>
  <section>
    <div class="legend muted">
      <span><span class="dot" style="background: var(--origin)"></span>origin</span>
      <span><span class="dot" style="background: var(--reached)"></span>reached (ms after ANNOUNCE)</span>
      <span><span class="dot" style="background: var(--idle)"></span>not yet</span>
      <span>replayed <span id="slow">${REPLAY_SLOWDOWN}</span>× slower · <span id="shown"></span></span>
    </div>
    <svg id="graph" viewBox="0 0 1000 700" role="img" aria-label="overlay graph"></svg>
  </section>
  <section>
    <button id="replay" type="button">replay</button>
    <button id="follow" type="button">follow latest</button>
    <ol id="items"></ol>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

async function scriptHash(): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(SCRIPT));
  return `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
}

/** Serves the page and `view.json` on 127.0.0.1. */
export class DemoWebServer {
  private readonly server: Deno.HttpServer<Deno.NetAddr>;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>) {
    this.server = server;
  }

  /** Listens on 127.0.0.1:`port` (0 picks a free port); `view()` is read at each poll. */
  static async start(port: number, view: () => DemoView): Promise<DemoWebServer> {
    const headers = {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": `default-src 'none'; script-src ${await scriptHash()}; ` +
        "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; frame-ancestors 'none'",
    };
    const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
      const path = new URL(request.url).pathname;
      if (request.method !== "GET") return new Response("method not allowed\n", { status: 405 });
      if (path === "/") return new Response(DEMO_PAGE_HTML, { headers });
      if (path === "/view.json") {
        return Response.json(view(), { headers: { "cache-control": "no-store" } });
      }
      return new Response("not found\n", { status: 404 });
    });
    return new DemoWebServer(server);
  }

  /** The page's address. */
  get url(): string {
    return `http://127.0.0.1:${this.server.addr.port}/`;
  }

  /** Stops serving. */
  async close(): Promise<void> {
    await this.server.shutdown();
  }
}
