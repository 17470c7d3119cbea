/// <reference lib="dom" />
/// <reference lib="deno.ns" />
/**
 * The two web pages rendered in a real browser (headless Chromium through
 * puppeteer-core): a node's status page at `/` on `status_address`, and the
 * demo's overlay page (`deno task demo --web`, run as a subprocess). The tests
 * wait for what each page should show and compare it with the nodes' state.
 *
 * Chromium comes from Debian's `chromium` package (.ci/run installs it).
 * Without it these tests are skipped, unless GOSSIP_REQUIRE_CHROMIUM=1 (set by
 * .ci/run), which makes them fail instead.
 */

import assert from "node:assert/strict";
import type { Browser } from "puppeteer-core";
import { findChromium, launchBrowser } from "../scripts/chromium.ts";
import { CLUSTER_TYPE, receivedCount, startMember, stopMembers } from "./support/cluster.ts";
import { waitUntil } from "./support/nodes.ts";

const chromium = await findChromium();
const required = Deno.env.get("GOSSIP_REQUIRE_CHROMIUM") === "1";
const ignore = chromium === undefined && !required;
if (ignore) console.error("web_pages_test: no chromium on PATH; skipping the browser tests");

/** Runs `body` with a fresh browser, always closed afterwards. */
async function withBrowser(body: (browser: Browser) => Promise<void>): Promise<void> {
  assert.ok(chromium, "chromium is required (apt-get install -y chromium)");
  const browser = await launchBrowser(chromium);
  try {
    await body(browser);
  } finally {
    await browser.close();
  }
}

Deno.test({
  name: "the status page shows the node's identity, peers, counters and a growing chart",
  ignore,
  fn: async () => {
    const hub = await startMember(undefined, {
      // Keepalive PINGs every second measure the peers' round trips soon.
      config: { statusAddress: { hostname: "127.0.0.1", port: 0 }, peerIdleTimeoutMs: 3000 },
    });
    const others = [await startMember(hub.node), await startMember(hub.node)];
    const members = [hub, ...others];
    try {
      await waitUntil(
        () =>
          hub.node.peerIdentities.length === 2 &&
          others.every((m) => m.node.peerIdentities.length >= 1),
        5000,
        "both joined the hub",
      );
      const text = "shown on the page";
      await others[0].module.announce(CLUSTER_TYPE, new TextEncoder().encode(text));
      await waitUntil(() => receivedCount(hub, text) === 1, 5000, "the hub received the item");
      // The first keepalive PONG gives each peer's round trip.
      await waitUntil(
        () => hub.node.stats().peers.every((p) => p.rttMs !== undefined),
        5000,
        "round trips measured",
      );
      const stats = hub.node.stats();

      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(String(error)));
        page.on("console", (message) => {
          if (message.type() === "error") errors.push(message.text());
        });
        await page.goto(`http://127.0.0.1:${hub.node.statusAddress!.port}/`);
        // Two polls at least: the chart has a line once two samples exist.
        await page.waitForFunction(
          () =>
            document.body.dataset.state === "live" &&
            Number(document.getElementById("chart")!.dataset.samples) >= 2,
          { timeout: 15_000 },
        );
        const shown = await page.evaluate(() => ({
          title: document.title,
          identity: document.getElementById("identity")!.textContent,
          api: document.getElementById("api")!.textContent,
          peerCount: document.getElementById("peer-count")!.textContent,
          rows: [...document.querySelectorAll("#peer-rows tr")].map((row) => ({
            identity: (row as HTMLElement).dataset.identity,
            cells: [...row.querySelectorAll("td")].map((td) => td.textContent),
          })),
          received: document.getElementById("c-received")!.textContent,
          stored: document.getElementById("c-stored")!.textContent,
          peersIn: document.getElementById("c-peers-in")!.textContent,
          noPeersHidden: document.getElementById("no-peers")!.hidden,
          points: document.getElementById("line-peers")!.getAttribute("points")!,
        }));
        assert.deepEqual(errors, [], "no script errors (the CSP allows the page's script)");
        assert.equal(shown.title, `gossip ${hub.node.identityHex.slice(0, 8)}`);
        assert.equal(shown.identity, hub.node.identityHex);
        assert.equal(shown.api, stats.apiAddress);
        assert.equal(shown.peerCount, "2");
        assert.equal(shown.noPeersHidden, true);
        assert.deepEqual(
          shown.rows.map((r) => r.identity).sort(),
          others.map((m) => m.node.identityHex).sort(),
        );
        for (const row of shown.rows) {
          const peer = stats.peers.find((p) => p.identity === row.identity)!;
          assert.equal(row.cells[0], peer.identity.slice(0, 16));
          assert.equal(row.cells[1], "inbound");
          assert.equal(row.cells[2], peer.address);
          assert.match(row.cells[3]!, /^\d+ s$/);
          assert.match(row.cells[4]!, /^[\d.]+ (B|KiB)$/);
          // The score moves between the page's fetch and the test's: check its form.
          assert.match(row.cells[6]!, /^-?\d+(\.\d+)?$/, `score ${row.cells[6]}`);
          // A later PING may lower it meanwhile: check its form.
          assert.match(row.cells[7]!, /^\d+(\.\d)? ms$/, `round trip ${row.cells[7]}`);
        }
        assert.equal(shown.received, "1");
        assert.equal(shown.stored, "1");
        assert.equal(shown.peersIn, "2");
        // Two peers plotted at every sample: every point's y is the same, above the axis.
        const ys = shown.points.trim().split(" ").map((p) => Number(p.split(",")[1]));
        assert.ok(ys.length >= 2, shown.points);
        assert.ok(ys.every((y) => y === ys[0] && y < 182), shown.points);
      });
    } finally {
      await stopMembers(members);
    }
  },
});

/** The demo as a subprocess; its stderr is collected. */
function startDemo(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../scripts/demo.ts", import.meta.url).pathname, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const reading = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (stderr += chunk) }),
  );
  const stdout = new Response(child.stdout).text();
  return {
    child,
    get stderr() {
      return stderr;
    },
    /** Waits for stderr to match `pattern` (at most `timeoutMs`). */
    async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(stderr);
        if (match) return match;
        if (Date.now() > deadline) throw new Error(`no ${pattern} in demo output:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async finish(): Promise<{ code: number; stdout: string }> {
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const status = await child.status;
      clearTimeout(timer);
      await reading;
      return { code: status.code, stdout: await stdout };
    },
  };
}

Deno.test({
  name: "the demo page draws the overlay and replays an item reaching every node",
  ignore,
  fn: async () => {
    const demo = startDemo(["--web", "--nodes", "6", "--items", "2", "--interval-ms", "100"]);
    try {
      const url = (await demo.waitFor(/demo page: (http:\/\/127\.0\.0\.1:\d+\/)/, 30_000))[1];
      await demo.waitFor(/the demo page stays up/, 60_000);
      const view = await (await fetch(`${url}view.json`)).json();
      const links = new Set<string>();
      for (const node of view.nodes) {
        for (const peer of node.peers) links.add([node.index, peer].sort().join("-"));
      }
      assert.equal(view.nodes.length, 6);
      assert.equal(view.items.length, 2);

      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(String(error)));
        await page.goto(url);
        // The latest item's replay ends with every node reached.
        await page.waitForFunction(
          () => document.getElementById("graph")!.dataset.reached === "6",
          { timeout: 20_000 },
        );
        const shown = await page.evaluate(() => ({
          nodes: document.querySelectorAll("#graph circle").length,
          origins: document.querySelectorAll("#graph circle.origin").length,
          reached: document.querySelectorAll("#graph circle.reached").length,
          lines: document.querySelectorAll("#graph line").length,
          edges: Number(document.getElementById("graph")!.dataset.edges),
          hot: document.querySelectorAll("#graph line.hot").length,
          items: [...document.querySelectorAll("#items li")].map((li) => ({
            number: (li as HTMLElement).dataset.item,
            reached: (li as HTMLElement).dataset.reached,
            text: li.textContent,
          })),
          phase: document.getElementById("phase")!.textContent,
          summary: document.getElementById("shown")!.textContent,
        }));
        assert.deepEqual(errors, []);
        assert.equal(shown.nodes, 6);
        assert.equal(shown.origins, 1);
        assert.equal(shown.reached, 5);
        // One line per session in the view the page last fetched (the overlay may
        // have grown since the test's own snapshot: it keeps filling outbound slots).
        assert.equal(shown.lines, shown.edges);
        assert.ok(shown.edges >= links.size && shown.edges <= 15, `${shown.edges} links`);
        // Each reached node is drawn with the link it most likely came over: a spanning tree.
        assert.equal(shown.hot, 5);
        assert.deepEqual(shown.items.map((i) => [i.number, i.reached]), [["2", "5"], ["1", "5"]]);
        assert.match(shown.items[0].text!, /^item 2 from node \d: 5\/5 nodes in [\d.]+ ms/);
        assert.equal(shown.phase, "done: 2 items, each reached every node");
        assert.match(shown.summary!, /^item 2 from node \d: 5\/5 nodes reached$/);
      });
    } finally {
      demo.child.kill("SIGINT");
      const { code, stdout } = await demo.finish();
      assert.equal(code, 0, demo.stderr);
      assert.match(stdout, /delivered: +10\/10 \(100%\)/);
    }
  },
});
