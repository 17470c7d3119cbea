/**
 * Churn soak test: does a long-running node's memory stay flat while peers
 * come and go?
 *
 * ```sh
 * deno task soak --minutes 60
 * deno task soak --minutes 12 --heap-snapshots      # plus heap snapshots of node 0
 * deno task soak --help
 * ```
 *
 * Starts `--nodes` (20) daemons on 127.0.0.1, all bootstrapping through node
 * 0, which is never killed. Every `--kill-every-s` (5) seconds a random other
 * running node gets SIGKILL and is restarted `--restart-min-s`..`--restart-max-s`
 * (1–5) seconds later with the same config, key and ports. `--rate` (10)
 * items per second are announced from random live nodes' modules. Every
 * minute it prints node 0's RSS (VmRSS and its private part RssAnon, split
 * into glibc's main malloc arena and other anonymous mappings), V8 heap used
 * and reserved (from its /status `memory`), peer counts and the sizes of the structures it
 * reports in /status `structures` (when the node has them), and the delivery
 * ratio of the minute's items.
 *
 * Delivery: an item counts for every other node that was up (its module
 * subscribed) when the item was announced and stayed up `--window-s` (5)
 * seconds after it; it is delivered when it arrived within that window. Items
 * whose origin was killed within that window are left out.
 * "settled" restricts this to origins and receivers that had been up at
 * least `--settle-s` (5) seconds, i.e. had time to join the overlay.
 *
 * With `--heap-snapshots` node 0 runs with `--inspect` on a free port and a
 * heap snapshot is written after minute 1 and at the end (and every
 * `--heap-snapshot-every` minutes); the kinds of object that grew most between
 * the first and the last are printed. A snapshot pauses node 0 for a moment.
 *
 * Writes `soak-<time>.json` and `soak-<time>.svg` to `--out` (bench-results).
 * Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { NodeStats } from "../lib/node.ts";
import { seededRandom } from "../lib/protocol/random.ts";
import { freePorts, type ProcessCluster, startProcessCluster } from "./bench/cluster.ts";
import { AbortedError, Deadline } from "./bench/deadline.ts";
import {
  collectGarbage,
  formatHeapGrowth,
  type HeapGrowth,
  heapGrowth,
  summariseHeapSnapshot,
  takeHeapSnapshot,
} from "./bench/heap.ts";
import { ensureHostKeys } from "./bench/keys.ts";
import { ModuleClient } from "./bench/module_client.ts";
import { memoryMapsOf, memoryOfPids } from "./bench/proc.ts";
import { machineInfo, sourceInfo } from "./bench/report.ts";
import { decodePayload, encodePayload, Phase } from "./bench/tracker.ts";

const REPO_DIR = fileURLToPath(new URL("../", import.meta.url));
const KEYS_DIR = join(REPO_DIR, "bench-results", "keys");

/** Options of the soak test. */
export interface SoakOptions {
  readonly nodes: number;
  readonly minutes: number;
  readonly killEveryS: number;
  readonly restartMinS: number;
  readonly restartMaxS: number;
  readonly rate: number;
  readonly size: number;
  readonly degree: number;
  readonly powDifficulty: number;
  readonly windowS: number;
  readonly settleS: number;
  readonly heapSnapshots: boolean;
  readonly heapSnapshotEvery: number;
  /** Force a full GC in node 0 (through its inspector) before each sample. */
  readonly gc: boolean;
  readonly seed: number;
  readonly out: string;
  readonly keep: boolean;
}

const USAGE = `deno task soak [options]

Churn soak: N daemons, all bootstrapping through node 0 (never killed); a random
other node is killed (SIGKILL) every few seconds and restarted with the same
config and key; items are announced from random live nodes. Prints per minute
node 0's RSS, V8 heap and structure sizes, and the delivery ratio.

Options:
  --minutes N               length of the run (default 15)
  --nodes N                 daemons (default 20)
  --kill-every-s S          one SIGKILL every S seconds (default 5)
  --restart-min-s S         restart delay, shortest (default 1)
  --restart-max-s S         restart delay, longest (default 5)
  --rate N                  items announced per second (default 10)
  --size BYTES              item payload size (default 1024)
  --degree N                degree (default 5)
  --pow-difficulty N        pow_difficulty (default 16)
  --window-s S              an item must arrive within S seconds (default 5)
  --settle-s S              "settled": origin and receiver up for S seconds (default 5)
  --heap-snapshots          node 0 with --inspect; heap snapshots after minute 1 and at the end
  --heap-snapshot-every M   also every M minutes (default: only first and last)
  --gc                      node 0 with --inspect; a full GC before each minute's sample, so
                            "heap" is the live heap, not live plus garbage (the GC also lets
                            V8 shrink its heap: take RSS from a run without --gc)
  --seed N                  seed of kills, delays and origins (default random)
  --out DIR                 results directory (default bench-results)
  --keep                    keep configs and logs
  --replot FILE             only redraw the SVG of an earlier soak-<time>.json
  -h, --help                this help`;

class UsageError extends Error {}

function parseSoakArgs(args: string[]): SoakOptions | undefined {
  const strings = [
    "minutes",
    "nodes",
    "kill-every-s",
    "restart-min-s",
    "restart-max-s",
    "rate",
    "size",
    "degree",
    "pow-difficulty",
    "window-s",
    "settle-s",
    "heap-snapshot-every",
    "seed",
    "out",
  ];
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    "heap-snapshots": { type: "boolean" },
    gc: { type: "boolean" },
    keep: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  };
  for (const s of strings) options[s] = { type: "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError((error as Error).message.split(/\. /)[0]);
  }
  if (values.help) return undefined;
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = values[name];
    if (raw === undefined || typeof raw === "boolean") return fallback;
    if (!/^\d+$/.test(raw)) throw new UsageError(`--${name}: "${raw}" is not an integer`);
    const v = Number(raw);
    if (v < min || v > max) throw new UsageError(`--${name}: ${v} is out of range ${min}..${max}`);
    return v;
  };
  const restartMinS = int("restart-min-s", 1, 0, 600);
  const restartMaxS = int("restart-max-s", 5, 0, 600);
  if (restartMaxS < restartMinS) {
    throw new UsageError("--restart-max-s: must be at least --restart-min-s");
  }
  return {
    minutes: int("minutes", 15, 1, 24 * 60),
    nodes: int("nodes", 20, 3, 100),
    killEveryS: int("kill-every-s", 5, 1, 3600),
    restartMinS,
    restartMaxS,
    rate: int("rate", 10, 1, 1000),
    size: int("size", 1024, 16, 60_000),
    degree: int("degree", 5, 1, 64),
    powDifficulty: int("pow-difficulty", 16, 0, 24),
    windowS: int("window-s", 5, 1, 60),
    settleS: int("settle-s", 5, 0, 600),
    heapSnapshots: values["heap-snapshots"] === true,
    heapSnapshotEvery: int("heap-snapshot-every", 0, 0, 24 * 60),
    gc: values.gc === true,
    seed: int("seed", Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31),
    out: typeof values.out === "string" && values.out !== "" ? values.out : "bench-results",
    keep: values.keep === true,
  };
}

/** Liveness of one node's module: up from `since` until killed. */
interface NodeState {
  client?: ModuleClient;
  /** performance.now() when its module was subscribed after the last (re)start; NaN while down. */
  upSince: number;
  /** Kill times (performance.now()). */
  kills: number[];
  restarts: number;
}

interface SoakItem {
  readonly seq: number;
  readonly origin: number;
  readonly sentAt: number;
  readonly minute: number;
  /** Nodes up when it was sent, with how long they had been up (ms). */
  readonly upAtSend: Map<number, number>;
  readonly originUpMs: number;
  readonly arrivals: Map<number, number>;
}

/** One minute of the soak. */
export interface SoakMinute {
  readonly minute: number;
  /** Items announced in the minute. */
  readonly items: number;
  /** Deliveries within the window / expected, over all eligible receivers. */
  readonly delivered: number;
  readonly expected: number;
  readonly ratio: number;
  /** Same, settled origins and receivers only. */
  readonly settledDelivered: number;
  readonly settledExpected: number;
  readonly settledRatio: number;
  /** Restarts in the minute. */
  readonly restarts: number;
  /** Node 0 at the end of the minute. */
  readonly node0: {
    readonly rssMiB: number;
    readonly anonMiB: number;
    /** glibc main arena ([heap] in smaps), MiB. */
    readonly mallocHeapMiB: number | null;
    /** Unnamed anonymous mappings (V8 heap pages, other arenas, big mallocs), MiB. */
    readonly anonMappingsMiB: number | null;
    readonly heapUsedMiB: number | null;
    readonly heapTotalMiB: number | null;
    readonly externalMiB: number | null;
    readonly peers: number | null;
    readonly knownPeers: number | null;
    readonly knowledgeBaseItems: number | null;
    readonly pendingValidations: number | null;
    readonly structures: Record<string, number> | null;
  };
  /** RSS of the other running nodes, median MiB. */
  readonly othersRssMedianMiB: number;
}

function progress(line: string): void {
  console.error(line);
}

function mib(bytes: number | undefined): number | null {
  return bytes === undefined || !Number.isFinite(bytes) ? null : bytes / 2 ** 20;
}

function median(values: number[]): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)];
}

/** Evaluates the items of `minute` whose window has passed. */
function evaluate(
  items: readonly SoakItem[],
  states: readonly NodeState[],
  options: SoakOptions,
) {
  let delivered = 0;
  let expected = 0;
  let settledDelivered = 0;
  let settledExpected = 0;
  const windowMs = options.windowS * 1000;
  const settleMs = options.settleS * 1000;
  const killedWithin = (node: number, from: number) =>
    states[node].kills.some((t) => t >= from && t <= from + windowMs);
  for (const item of items) {
    // An origin killed right after announcing may never have sent the item on.
    if (killedWithin(item.origin, item.sentAt)) continue;
    for (const [node, upMs] of item.upAtSend) {
      if (node === item.origin) continue;
      // Killed before the window closed: not expected to have it.
      if (killedWithin(node, item.sentAt)) continue;
      const at = item.arrivals.get(node);
      const got = at !== undefined && at - item.sentAt <= windowMs ? 1 : 0;
      expected++;
      delivered += got;
      if (upMs >= settleMs && item.originUpMs >= settleMs) {
        settledExpected++;
        settledDelivered += got;
      }
    }
  }
  return { delivered, expected, settledDelivered, settledExpected };
}

function lineChartSvg(
  title: string,
  minutes: readonly SoakMinute[],
  series: { label: string; color: string; values: (number | null)[] }[],
  yLabel: string,
  ratio: { label: string; values: number[] },
): string {
  const width = 860;
  const m = { left: 70, right: 70, top: 64, bottom: 80 + 18 * (series.length + 1) };
  const height = 340 + m.bottom;
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const xs = minutes.map((r) => r.minute);
  const xMax = Math.max(1, ...xs);
  const all = series.flatMap((s) => s.values).filter((v): v is number => v !== null);
  const yMax = Math.max(1, ...all) * 1.1;
  const x = (v: number) => m.left + (v / xMax) * plotW;
  const y = (v: number) => m.top + (1 - v / yMax) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${title}</text>`,
  ];
  const yStep = Math.max(
    1,
    Math.pow(10, Math.floor(Math.log10(yMax / 5))) *
      ([1, 2, 5, 10].find((f) => f * Math.pow(10, Math.floor(Math.log10(yMax / 5))) >= yMax / 8) ??
        1),
  );
  for (let v = 0, i = 0; v <= yMax && i < 50; v += yStep, i++) {
    parts.push(
      `<line x1="${m.left}" y1="${y(v)}" x2="${m.left + plotW}" y2="${y(v)}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  const xStep = Math.max(1, Math.ceil(xMax / 15));
  for (let v = 0; v <= xMax; v += xStep) {
    parts.push(
      `<text x="${x(v)}" y="${m.top + plotH + 18}" text-anchor="middle">${v}</text>`,
    );
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + plotW / 2}" y="${m.top + plotH + 40}" text-anchor="middle">minute</text>`,
    `<text x="18" y="${m.top + plotH / 2}" text-anchor="middle" ` +
      `transform="rotate(-90 18 ${m.top + plotH / 2})">${yLabel}</text>`,
  );
  for (const s of series) {
    const points = s.values.map((v, i) => v === null ? "" : `${x(xs[i])},${y(v)}`)
      .filter((p) => p !== "");
    parts.push(
      `<polyline points="${points.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"/>`,
    );
  }
  // Delivery ratio on the right axis, 0.9..1.
  const yr = (v: number) => m.top + (1 - (Math.max(0.9, v) - 0.9) / 0.1) * plotH;
  parts.push(
    `<polyline points="${
      ratio.values.map((v, i) => `${x(xs[i])},${yr(v)}`).join(" ")
    }" fill="none" stroke="#7b3fbf" stroke-width="1.5" stroke-dasharray="4 3"/>`,
  );
  for (const v of [0.9, 0.95, 1]) {
    parts.push(`<text x="${m.left + plotW + 8}" y="${yr(v) + 4}">${v}</text>`);
  }
  const legend = [...series.map((s) => ({ label: s.label, color: s.color, dash: "" })), {
    label: ratio.label,
    color: "#7b3fbf",
    dash: ` stroke-dasharray="4 3"`,
  }];
  legend.forEach((l, i) => {
    const ly = m.top + plotH + 62 + 18 * i;
    parts.push(
      `<line x1="${m.left}" y1="${ly}" x2="${m.left + 30}" y2="${ly}" stroke="${l.color}" ` +
        `stroke-width="2"${l.dash}/>`,
      `<text x="${m.left + 38}" y="${ly + 4}">${l.label}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** The soak's chart: node 0's memory per minute and the delivery ratio. */
export function soakChartSvg(options: SoakOptions, minutes: readonly SoakMinute[]): string {
  return lineChartSvg(
    `node 0 under churn: ${options.nodes} nodes, a SIGKILL every ${options.killEveryS} s, ` +
      `${options.rate} items/s`,
    minutes,
    [
      { label: "RSS (VmRSS), MiB", color: "#d0021b", values: minutes.map((r) => r.node0.rssMiB) },
      { label: "RssAnon, MiB", color: "#f5a623", values: minutes.map((r) => r.node0.anonMiB) },
      {
        label: "glibc malloc main arena ([heap]), MiB",
        color: "#8b572a",
        values: minutes.map((r) => r.node0.mallocHeapMiB ?? null),
      },
      {
        label: "V8 heap reserved (heapTotal), MiB",
        color: "#1f3f8f",
        values: minutes.map((r) => r.node0.heapTotalMiB),
      },
      {
        label: "V8 heap used, MiB",
        color: "#4a90d9",
        values: minutes.map((r) => r.node0.heapUsedMiB),
      },
      {
        label: "median RSS of the other running nodes, MiB",
        color: "#7ed321",
        values: minutes.map((r) => r.othersRssMedianMiB),
      },
    ],
    "MiB",
    { label: "delivery ratio (right axis, 0.9-1)", values: minutes.map((r) => r.ratio) },
  );
}

async function run(options: SoakOptions, deadline: Deadline): Promise<void> {
  const started = new Date();
  const stamp = started.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  const outDir = resolve(options.out);
  const runDir = join(outDir, `soak-run-${stamp}`);
  await Deno.mkdir(runDir, { recursive: true });
  const random = seededRandom(options.seed);
  const machine = await machineInfo();
  const source = await sourceInfo(REPO_DIR);
  const tag = Math.floor(random() * 2 ** 32);
  const inspectPort = options.heapSnapshots || options.gc ? freePorts(1)[0] : undefined;
  let cluster: ProcessCluster | undefined;
  const states: NodeState[] = Array.from(
    { length: options.nodes },
    () => ({ upSince: NaN, kills: [], restarts: 0 }),
  );
  const items: SoakItem[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const pending = new Set<Promise<unknown>>();
  let ok = false;
  try {
    const keys = await ensureHostKeys(KEYS_DIR, options.nodes, 2048, deadline, progress);
    progress(`starting ${options.nodes} nodes, all bootstrapping through node 0`);
    cluster = await startProcessCluster({
      nodes: options.nodes,
      degree: options.degree,
      powDifficulty: options.powDifficulty,
      keyPaths: keys.paths,
      keyBits: 2048,
      runDir,
      keysDir: KEYS_DIR,
      random,
      deadline,
      progress,
      bootstrapThrough: 0,
      denoFlags: (index) =>
        index === 0 && inspectPort !== undefined ? [`--inspect=127.0.0.1:${inspectPort}`] : [],
    });
    const c = cluster;
    const onNotification = (node: number, data: Uint8Array, at: number) => {
      const id = decodePayload(tag, data);
      const item = id && id.phase === Phase.Throughput ? items[id.seq] : undefined;
      if (item && !item.arrivals.has(node)) item.arrivals.set(node, at);
    };
    const connectModule = async (index: number) => {
      const client = await ModuleClient.connect(c.nodes[index].apiPort, index, onNotification);
      // The node handles NOTIFY right after accepting; give it a moment.
      await deadline.sleep(100);
      states[index].client = client;
      states[index].upSince = performance.now();
    };
    for (let i = 0; i < options.nodes; i++) await connectModule(i);
    const t0 = performance.now();
    const endAt = t0 + options.minutes * 60_000;
    const minutes: SoakMinute[] = [];
    const snapshots: { minute: number; path: string; bytes: number }[] = [];
    let nextKill = t0 + options.killEveryS * 1000;
    let nextItem = t0;
    let nextMinute = t0 + 60_000;
    let restartsThisMinute = 0;
    let minute = 0;
    const failures: string[] = [];
    const snapshot = async (label: number) => {
      if (inspectPort === undefined) return;
      const path = join(runDir, `heap-node0-minute-${label}.heapsnapshot`);
      try {
        const bytes = await takeHeapSnapshot(inspectPort, path);
        snapshots.push({ minute: label, path, bytes });
        progress(`  heap snapshot of node 0: ${path} (${(bytes / 2 ** 20).toFixed(1)} MiB)`);
      } catch (error) {
        progress(`  heap snapshot failed: ${String(error)}`);
      }
    };
    const restartLater = (index: number, delayMs: number, attempt = 1) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        const job = (async () => {
          try {
            await c.restart(index, 30_000);
            await connectModule(index);
            states[index].restarts++;
            restartsThisMinute++;
          } catch (error) {
            if (error instanceof AbortedError) return;
            failures.push(`restart ${attempt} of node ${index}: ${String(error)}`);
            progress(`  restart of node ${index} failed: ${String(error)}`);
            // A start that hangs is killed and tried again, at most three times.
            await c.kill(index, "SIGKILL").catch(() => {});
            if (attempt < 3 && performance.now() < endAt) restartLater(index, 1000, attempt + 1);
          }
        })();
        pending.add(job);
        job.finally(() => pending.delete(job));
      }, delayMs);
      timers.add(timer);
    };
    progress(
      `soak: ${options.minutes} min; a SIGKILL every ${options.killEveryS} s, restart after ` +
        `${options.restartMinS}-${options.restartMaxS} s; ${options.rate} items/s`,
    );
    console.log(
      `${"min".padStart(4)}${"items".padStart(7)}${"deliv".padStart(9)}${"settled".padStart(9)}` +
        `${"restarts".padStart(9)}${"RSS".padStart(8)}${"anon".padStart(8)}${
          "malloc".padStart(8)
        }` +
        `${"mmap".padStart(8)}${"heap".padStart(8)}${"v8tot".padStart(8)}` +
        `${"ext".padStart(7)}${"peers".padStart(7)}${"known".padStart(7)}${"items".padStart(7)}` +
        `  structures`,
    );
    // Bounded: every iteration handles an event or sleeps at least 1 ms.
    const maxIterations = (options.minutes + 1) * 60_000;
    for (let i = 0; i < maxIterations; i++) {
      deadline.check();
      const now = performance.now();
      if (now >= endAt && minute >= options.minutes) break;
      if (now >= nextItem && now < endAt) {
        nextItem += 1000 / options.rate;
        const live = states.map((s, index) => ({ s, index }))
          .filter(({ s }) => !Number.isNaN(s.upSince) && s.client && !s.client.error);
        if (live.length > 1) {
          const origin = live[Math.floor(random() * live.length)].index;
          const upAtSend = new Map<number, number>();
          for (const { s, index } of live) upAtSend.set(index, now - s.upSince);
          const seq = items.length;
          const sentAt = states[origin].client!.announce(
            encodePayload(tag, Phase.Throughput, seq, options.size),
          );
          items.push({
            seq,
            origin,
            sentAt,
            minute: Math.floor((sentAt - t0) / 60_000),
            upAtSend,
            originUpMs: now - states[origin].upSince,
            arrivals: new Map(),
          });
        }
        continue;
      }
      if (now >= nextKill && now < endAt) {
        nextKill += options.killEveryS * 1000;
        const candidates = states.map((s, index) => ({ s, index }))
          .filter(({ s, index }) => index !== 0 && !Number.isNaN(s.upSince));
        if (candidates.length > 0) {
          const victim = candidates[Math.floor(random() * candidates.length)].index;
          const state = states[victim];
          state.upSince = NaN;
          state.kills.push(performance.now());
          const client = state.client;
          state.client = undefined;
          await c.kill(victim, "SIGKILL");
          await client?.close().catch(() => {});
          const delay = (options.restartMinS +
            random() * (options.restartMaxS - options.restartMinS)) * 1000;
          restartLater(victim, delay);
        }
        continue;
      }
      if (now >= nextMinute + options.windowS * 1000 || (now >= endAt + options.windowS * 1000)) {
        // The minute's items have had their window: report it.
        minute++;
        nextMinute += 60_000;
        const done = items.filter((it) => it.minute === minute - 1);
        const d = evaluate(done, states, options);
        let status: NodeStats | undefined;
        if (options.gc && inspectPort !== undefined) {
          await collectGarbage(inspectPort).catch((error) => {
            failures.push(`node 0 GC at minute ${minute}: ${String(error)}`);
          });
        }
        try {
          status = await c.statsOf(0, 10_000);
        } catch (error) {
          failures.push(`node 0 /status at minute ${minute}: ${String(error)}`);
        }
        const mem = (await memoryOfPids([c.nodes[0].pid!]))[0];
        const maps = await memoryMapsOf(c.nodes[0].pid!);
        const others = await memoryOfPids(
          c.nodes.slice(1).filter((_, i) => !Number.isNaN(states[i + 1].upSince)).map((n) =>
            n.pid!
          ),
        );
        const heap = status?.memory;
        const structures =
          (status as { structures?: Record<string, number> } | undefined)?.structures ?? null;
        const row: SoakMinute = {
          minute,
          items: done.length,
          delivered: d.delivered,
          expected: d.expected,
          ratio: d.expected > 0 ? d.delivered / d.expected : NaN,
          settledDelivered: d.settledDelivered,
          settledExpected: d.settledExpected,
          settledRatio: d.settledExpected > 0 ? d.settledDelivered / d.settledExpected : NaN,
          restarts: restartsThisMinute,
          node0: {
            rssMiB: mem.rss / 2 ** 20,
            anonMiB: mem.rssAnon / 2 ** 20,
            mallocHeapMiB: mib(maps?.mallocHeap),
            anonMappingsMiB: mib(maps?.anonMappings),
            heapUsedMiB: mib(heap?.heapUsed),
            heapTotalMiB: mib(heap?.heapTotal),
            externalMiB: mib(heap?.external),
            peers: status?.peers.length ?? null,
            knownPeers: status?.knownPeers ?? null,
            knowledgeBaseItems: status?.itemsStored ?? null,
            pendingValidations: status?.pendingValidations ?? null,
            structures,
          },
          othersRssMedianMiB: median(others.map((o) => o.rss)) / 2 ** 20,
        };
        restartsThisMinute = 0;
        minutes.push(row);
        const f = (v: number | null, digits = 1) => v === null ? "-" : v.toFixed(digits);
        console.log(
          `${String(minute).padStart(4)}${String(row.items).padStart(7)}` +
            `${row.ratio.toFixed(4).padStart(9)}${row.settledRatio.toFixed(4).padStart(9)}` +
            `${String(row.restarts).padStart(9)}${f(row.node0.rssMiB).padStart(8)}` +
            `${f(row.node0.anonMiB).padStart(8)}${f(row.node0.mallocHeapMiB).padStart(8)}` +
            `${f(row.node0.anonMappingsMiB).padStart(8)}${f(row.node0.heapUsedMiB).padStart(8)}` +
            `${f(row.node0.heapTotalMiB).padStart(8)}` +
            `${f(row.node0.externalMiB).padStart(7)}${f(row.node0.peers, 0).padStart(7)}` +
            `${f(row.node0.knownPeers, 0).padStart(7)}` +
            `${f(row.node0.knowledgeBaseItems, 0).padStart(7)}  ` +
            (structures
              ? Object.entries(structures).map(([k, v]) => `${k}=${v}`).join(" ")
              : "(none reported)"),
        );
        if (
          options.heapSnapshots &&
          (minute === 1 ||
            (options.heapSnapshotEvery > 0 && minute % options.heapSnapshotEvery === 0) ||
            minute === options.minutes)
        ) {
          await snapshot(minute);
        }
        continue;
      }
      const wake = Math.min(nextItem, nextKill, nextMinute + options.windowS * 1000) - now;
      await deadline.sleep(Math.max(1, Math.min(20, wake)));
    }
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    await Promise.allSettled([...pending]);

    let growth: HeapGrowth[] | undefined;
    if (snapshots.length >= 2) {
      const first = summariseHeapSnapshot(await Deno.readTextFile(snapshots[0].path));
      const last = summariseHeapSnapshot(
        await Deno.readTextFile(snapshots[snapshots.length - 1].path),
      );
      growth = heapGrowth(first, last, 30);
      console.log(
        `\nNode 0 heap, minute ${snapshots[0].minute} -> ${
          snapshots[snapshots.length - 1].minute
        }: largest changes by kind of object (count, self size):`,
      );
      for (const line of formatHeapGrowth(growth)) console.log(line);
    }
    const totalRestarts = states.reduce((n, s) => n + s.restarts, 0);
    const first = minutes[0]?.node0;
    const last = minutes[minutes.length - 1]?.node0;
    if (first && last) {
      console.log(
        `\nnode 0: RSS ${first.rssMiB.toFixed(1)} -> ${last.rssMiB.toFixed(1)} MiB, anon ` +
          `${first.anonMiB.toFixed(1)} -> ${last.anonMiB.toFixed(1)} MiB, V8 heap used ` +
          `${first.heapUsedMiB?.toFixed(1) ?? "-"} -> ${last.heapUsedMiB?.toFixed(1) ?? "-"} MiB ` +
          `over ${minutes.length} min; ${totalRestarts} restarts`,
      );
    }
    for (const f of failures) console.log(`  problem: ${f}`);
    const jsonPath = join(outDir, `soak-${stamp}.json`);
    const svgPath = join(outDir, `soak-${stamp}.svg`);
    await Deno.writeTextFile(
      jsonPath,
      JSON.stringify(
        {
          tool: "scripts/soak.ts",
          date: started.toISOString(),
          options,
          machine,
          source,
          minutes,
          restarts: totalRestarts,
          snapshots,
          heapGrowth: growth,
          problems: failures,
        },
        null,
        1,
      ) + "\n",
    );
    await Deno.writeTextFile(
      svgPath,
      soakChartSvg(options, minutes),
    );
    console.log(`\nwrote ${jsonPath}\nwrote ${svgPath}`);
    ok = failures.length === 0;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await Promise.allSettled([...pending]);
    await Promise.allSettled(states.map((s) => s.client?.close()));
    if (cluster) {
      progress(`stopping ${cluster.nodes.length} nodes`);
      await cluster.close();
    }
    if (ok && !options.keep && !options.heapSnapshots) {
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
    } else {
      progress(`configs, logs and snapshots kept in ${runDir}`);
    }
  }
}

async function main(args: string[]): Promise<number> {
  const replot = args.indexOf("--replot");
  if (replot >= 0) {
    const path = args[replot + 1];
    if (!path) {
      console.error("soak: --replot needs a soak-<time>.json file; see --help");
      return 2;
    }
    const saved = JSON.parse(await Deno.readTextFile(path)) as {
      options: SoakOptions;
      minutes: SoakMinute[];
    };
    const svgPath = path.replace(/\.json$/, "") + ".svg";
    await Deno.writeTextFile(svgPath, soakChartSvg(saved.options, saved.minutes));
    console.log(`wrote ${svgPath}`);
    return 0;
  }
  let options: SoakOptions | undefined;
  try {
    options = parseSoakArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`soak: ${error.message}; see --help`);
    return 2;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  const deadline = new Deadline((options.minutes * 60 + 300) * 1000);
  deadline.abortOnSignals();
  try {
    await run(options, deadline);
    return 0;
  } catch (error) {
    console.error(`soak: ${error instanceof Error ? error.message : String(error)}`);
    return error instanceof AbortedError && deadline.interrupted ? 130 : 1;
  } finally {
    deadline.dispose();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
