/// <reference lib="dom" />
/// <reference lib="deno.ns" />
/**
 * Renders the two web pages in headless Chromium and saves the screenshots
 * the README shows:
 *
 * - docs/img/status_page.png: the status page of a node with peers, after
 *   half a minute of items from random nodes (so the chart has a history);
 * - docs/img/demo_web.png: `deno task demo --web` with an item half-way
 *   through its replay.
 *
 * ```
 * deno task screenshots [--out DIR]
 * ```
 *
 * Needs Debian's `chromium` (`apt-get install -y chromium`). Exit codes: 0
 * done, 1 on failure, 2 for bad usage. Everything started is stopped on every path.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { gossipOptions } from "../lib/config.ts";
import { generateHostKeyPem, parseHostKeyPem } from "../lib/hostkey.ts";
import { GossipNode } from "../lib/node.ts";
import { findChromium, launchBrowser } from "./chromium.ts";
import { DemoApiClient } from "./demo_client.ts";

const DATA_TYPE = 0x5c5c;
const NODES = 6;
const HISTORY_MS = 30_000;
const DEADLINE_MS = 180_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function statusPage(chromium: string, out: string): Promise<void> {
  const keys = await Promise.all(
    Array.from(
      { length: NODES },
      async () => await parseHostKeyPem(await generateHostKeyPem(2048)),
    ),
  );
  const nodes: GossipNode[] = [];
  const modules: DemoApiClient[] = [];
  try {
    for (let i = 0; i < NODES; i++) {
      const node = new GossipNode({
        hostKey: keys[i],
        config: gossipOptions({
          apiAddress: { hostname: "127.0.0.1", port: 0 },
          p2pAddress: { hostname: "127.0.0.1", port: 0 },
          bootstrappers: i === 0 ? [] : [nodes[0].p2pAddress],
          statusAddress: i === 0 ? { hostname: "127.0.0.1", port: 0 } : undefined,
          degree: 3,
          powDifficulty: 8,
          membershipIntervalMs: 250,
        }),
      });
      nodes.push(node);
      await node.start();
      const module = await DemoApiClient.connect(node.apiAddress, () => true);
      modules.push(module);
      await module.notify(DATA_TYPE);
    }
    const browser = await launchBrowser(chromium, { width: 1280, height: 1000 });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${nodes[0].statusAddress!.port}/`);
      // Items at a varying rate from random nodes, while the page records its chart.
      const start = performance.now();
      for (let n = 0; performance.now() - start < HISTORY_MS; n++) {
        const burst = 1 + Math.floor(4 * (1 + Math.sin(n / 8)));
        for (let k = 0; k < burst; k++) {
          const module = modules[Math.floor(Math.random() * modules.length)];
          await module.announce(DATA_TYPE, new TextEncoder().encode(`screenshot item ${n}.${k}`));
        }
        await sleep(250);
      }
      await page.waitForFunction(() => document.body.dataset.state === "live", { timeout: 10_000 });
      await page.screenshot({ path: join(out, "status_page.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  } finally {
    await Promise.allSettled(modules.map((m) => m.close()));
    await Promise.allSettled(nodes.map((n) => n.close()));
  }
}

async function demoPage(chromium: string, out: string): Promise<void> {
  const demo = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("demo.ts", import.meta.url).pathname,
      "--web",
      "--nodes",
      "16",
      "--items",
      "3",
      "--interval-ms",
      "300",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const reading = demo.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (stderr += chunk) }),
  );
  try {
    const deadline = Date.now() + 120_000;
    while (!/the demo page stays up at (\S+)/.test(stderr)) {
      if (Date.now() > deadline) throw new Error(`the demo did not finish:\n${stderr}`);
      await sleep(100);
    }
    const url = /the demo page stays up at (\S+)/.exec(stderr)![1];
    const browser = await launchBrowser(chromium, { width: 1400, height: 860 });
    try {
      const page = await browser.newPage();
      // Slow enough that the screenshot catches the item half-way.
      await page.goto(`${url}?slow=400`);
      await page.waitForFunction(
        () =>
          document.getElementById("graph")!.dataset.nodes === "16" &&
          document.querySelectorAll("#items li").length === 3,
        { timeout: 30_000 },
      );
      await page.click("#replay");
      await page.waitForFunction(
        () => Number(document.getElementById("graph")!.dataset.reached) >= 9,
        { timeout: 30_000, polling: "raf" },
      );
      await page.screenshot({ path: join(out, "demo_web.png") });
    } finally {
      await browser.close();
    }
  } finally {
    try {
      demo.kill("SIGINT");
    } catch {
      // exited already
    }
    await demo.status;
    await reading;
  }
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string", default: "docs/img" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log("Usage: deno task screenshots [--out DIR]   (default docs/img)");
    return 0;
  }
  const chromium = await findChromium();
  if (!chromium) {
    console.error(
      "screenshots: no chromium on PATH; install it with `apt-get install -y chromium`",
    );
    return 1;
  }
  await Deno.mkdir(values.out, { recursive: true });
  const timer = setTimeout(() => {
    console.error(`screenshots: not done after ${DEADLINE_MS / 1000} s; giving up`);
    Deno.exit(1);
  }, DEADLINE_MS);
  try {
    await statusPage(chromium, values.out);
    console.error(`wrote ${join(values.out, "status_page.png")}`);
    await demoPage(chromium, values.out);
    console.error(`wrote ${join(values.out, "demo_web.png")}`);
    return 0;
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
