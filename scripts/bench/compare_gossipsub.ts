/**
 * Runs our benchmark and the GossipSub reference (js-libp2p with
 * @chainsafe/libp2p-gossipsub, `shared/anchors/gossipsub/bench.mjs`) back to
 * back on this machine with matching parameters, and prints both with ratios.
 *
 * ```sh
 * # once: a writable copy of the anchor with its dependencies
 * cp -r ../shared/anchors/gossipsub /tmp/gossipsub && chmod -R u+w /tmp/gossipsub
 * (cd /tmp/gossipsub && npm install)
 * deno task compare                       # 50 nodes, 100 items 100 ms apart
 * deno task compare --nodes 30 --process  # also our process mode
 * ```
 *
 * Both run every node inside one process by default (ours: `--in-process`),
 * as the reference does. Matching: nodes, degree (each node dials `degree`
 * others), item count, size and spacing, seed, throughput seconds and
 * in-flight window. Not matched (inherent): the reference signs every message
 * and runs its application handler in-process; ours encrypts every peer frame
 * and validates every item through a local module over TCP (counted in our
 * in-process CPU). The reference's latency-phase CPU window runs until 4 s
 * after the last publish (its settle time, with heartbeats); ours ends when
 * the last item arrived. Ratios are reference / ours: above 1 means ours is
 * faster or cheaper.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { LatencyResult, ThroughputResult } from "./measure.ts";
import { machineCpu, readProcFile } from "./proc.ts";
import type { CpuReport, MemoryReport } from "./report.ts";

const REPO_DIR = fileURLToPath(new URL("../../", import.meta.url));

interface Options {
  nodes: number;
  degree: number;
  items: number;
  intervalMs: number;
  size: number;
  seed: number;
  throughputSeconds: number;
  window: number;
  anchor: string;
  out: string;
  process: boolean;
}

const USAGE = `deno task compare [options]

Runs scripts/bench.ts --in-process and the GossipSub reference bench.mjs back
to back with the same parameters; prints both and reference/ours ratios.

Options:
  --nodes N               nodes (default 50)
  --degree N              dials per node (default 5)
  --items N               latency items / messages (default 100)
  --interval-ms MS        spacing of latency items (default 100)
  --size BYTES            payload size (default 1024)
  --seed N                seed of both (default 1)
  --throughput-seconds S  throughput phase (default 5)
  --window N              throughput items in flight (default 32)
  --anchor DIR            npm-installed copy of shared/anchors/gossipsub (default /tmp/gossipsub)
  --process               also run our bench in process mode (one process per node)
  --out DIR               results directory (default bench-results)
  -h, --help              this help`;

function parse(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: "string", default: "50" },
      degree: { type: "string", default: "5" },
      items: { type: "string", default: "100" },
      "interval-ms": { type: "string", default: "100" },
      size: { type: "string", default: "1024" },
      seed: { type: "string", default: "1" },
      "throughput-seconds": { type: "string", default: "5" },
      window: { type: "string", default: "32" },
      anchor: { type: "string", default: "/tmp/gossipsub" },
      out: { type: "string", default: "bench-results" },
      process: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const int = (name: string, raw: string) => {
    if (!/^\d+$/.test(raw)) throw new Error(`--${name}: "${raw}" is not an integer`);
    return Number(raw);
  };
  return {
    nodes: int("nodes", values.nodes),
    degree: int("degree", values.degree),
    items: int("items", values.items),
    intervalMs: int("interval-ms", values["interval-ms"]),
    size: int("size", values.size),
    seed: int("seed", values.seed),
    throughputSeconds: int("throughput-seconds", values["throughput-seconds"]),
    window: int("window", values.window),
    anchor: resolve(values.anchor),
    out: resolve(values.out),
    process: values.process,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Machine load while a command ran: busy cores (all programs) and the 1-minute load before. */
interface Load {
  busyCores: number;
  loadBefore: number;
}

const loads: Record<string, Load> = {};

/** Runs a command with inherited stderr; returns its stdout; records the machine's load. */
async function runCommand(command: string, args: string[], cwd: string): Promise<string> {
  const loadBefore = Number((await readProcFile("/proc/loadavg"))?.split(" ")[0]);
  const before = await machineCpu();
  const started = performance.now();
  try {
    return await runCommandInner(command, args, cwd);
  } finally {
    const after = await machineCpu();
    const wall = (performance.now() - started) / 1000;
    loads[
      `${command === "node" ? "reference" : "ours"} ${
        args.includes("--in-process") ? "in-process" : command === "node" ? "" : "process"
      }`.trim()
    ] = {
      busyCores: before && after ? (after.busy - before.busy) / wall : NaN,
      loadBefore,
    };
  }
}

async function runCommandInner(command: string, args: string[], cwd: string): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = await child.output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")} failed (exit ${output.code}):\n${text}`);
  }
  return text;
}

async function ours(options: Options, inProcess: boolean, outDir: string) {
  await Deno.mkdir(outDir, { recursive: true });
  const args = [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    join(REPO_DIR, "scripts/bench.ts"),
    ...(inProcess ? ["--in-process"] : []),
    "--nodes",
    String(options.nodes),
    "--degree",
    String(options.degree),
    "--items",
    String(options.items),
    "--interval-ms",
    String(options.intervalMs),
    "--size",
    String(options.size),
    "--seed",
    String(options.seed),
    "--throughput-seconds",
    String(options.throughputSeconds),
    "--window",
    String(options.window),
    "--out",
    outDir,
  ];
  console.error(`\n== ours: deno ${args.slice(6).join(" ")}`);
  const text = await runCommand(Deno.execPath(), args, REPO_DIR);
  const path = /wrote (.*bench-[^\n]*\.json)/.exec(text)?.[1];
  if (!path) throw new Error(`no bench JSON in the output of scripts/bench.ts:\n${text}`);
  return { text, path, json: JSON.parse(await Deno.readTextFile(path)) as OursJson };
}

async function reference(options: Options, jsonPath: string) {
  const args = [
    "bench.mjs",
    "--nodes",
    String(options.nodes),
    "--degree",
    String(options.degree),
    "--messages",
    String(options.items),
    "--interval",
    String(options.intervalMs),
    "--size",
    String(options.size),
    "--seed",
    String(options.seed),
    "--tp-seconds",
    String(options.throughputSeconds),
    "--tp-window",
    String(options.window),
    "--json",
    jsonPath,
    "--quiet",
  ];
  console.error(`\n== reference: node ${args.join(" ")}  (in ${options.anchor})`);
  const text = await runCommand("node", args, options.anchor);
  return { text, json: JSON.parse(await Deno.readTextFile(jsonPath)) as ReferenceJson };
}

/** What the comparison reads from our bench JSON. */
interface OursJson {
  readonly latency: LatencyResult;
  readonly throughput?: ThroughputResult;
  readonly memory: MemoryReport;
  readonly cpu?: CpuReport;
}

interface RefPercentiles {
  readonly p50: number | null;
  readonly p99: number | null;
}

/** What the comparison reads from the reference's JSON (bench.mjs `--json`). */
interface ReferenceJson {
  readonly latency: {
    readonly delivery_ratio: number;
    readonly ms_to_50pct: RefPercentiles;
    readonly ms_to_90pct: RefPercentiles;
    readonly ms_to_100pct: RefPercentiles;
    readonly cost?: {
      readonly duplicates_per_delivery?: number;
      readonly cpu_us_per_delivery?: number;
    };
  };
  readonly throughput?: {
    readonly fully_delivered_msgs_per_s: number;
    readonly ms_publish_to_100pct: RefPercentiles;
    readonly cost?: { readonly cpu_us_per_delivery?: number };
  };
  readonly peak_rss_mib: number;
}

/** One compared figure: ours, the reference's, and which way is better. */
interface Figure {
  readonly label: string;
  readonly ours: number | null;
  readonly reference: number | null;
  readonly unit: string;
  /** "lower": smaller is better (times, CPU); "higher": larger is better. */
  readonly better: "lower" | "higher";
}

function figures(o: OursJson, r: ReferenceJson, inProcess: boolean): Figure[] {
  const L = o.latency;
  const RL = r.latency;
  const T = o.throughput;
  const RT = r.throughput;
  const ms = (label: string, a: number | null, b: number | null): Figure => ({
    label,
    ours: a,
    reference: b,
    unit: "ms",
    better: "lower",
  });
  // Ours in-process: CPU of the whole process (nodes + modules), as the reference measures.
  const ourLatencyCpu = inProcess ? o.cpu?.latency?.rawUs : o.cpu?.latency?.netUs;
  const ourTpCpu = inProcess ? o.cpu?.throughput?.rawUs : o.cpu?.throughput?.netUs;
  return [
    ms("latency: time to 50% p50", L.timeToMs.p50.p50, RL.ms_to_50pct.p50),
    ms("latency: time to 50% p99", L.timeToMs.p50.p99, RL.ms_to_50pct.p99),
    ms("latency: time to 90% p50", L.timeToMs.p90.p50, RL.ms_to_90pct.p50),
    ms("latency: time to 90% p99", L.timeToMs.p90.p99, RL.ms_to_90pct.p99),
    ms("latency: time to 100% p50", L.timeToMs.all.p50, RL.ms_to_100pct.p50),
    ms("latency: time to 100% p99", L.timeToMs.all.p99, RL.ms_to_100pct.p99),
    {
      label: "latency: delivery ratio",
      ours: L.deliveryRatio,
      reference: RL.delivery_ratio,
      unit: "",
      better: "higher",
    },
    {
      label: "latency: duplicates per delivery",
      ours: L.counters.duplicatesPerDelivery,
      reference: RL.cost?.duplicates_per_delivery ?? null,
      unit: "",
      better: "lower",
    },
    {
      label: "latency: CPU per delivery",
      ours: ourLatencyCpu ?? null,
      reference: RL.cost?.cpu_us_per_delivery ?? null,
      unit: "us",
      better: "lower",
    },
    {
      label: "throughput: items to all nodes per s",
      ours: T?.itemsPerSecond ?? null,
      reference: RT?.fully_delivered_msgs_per_s ?? null,
      unit: "/s",
      better: "higher",
    },
    ms(
      "throughput: time to 100% p50",
      T?.timeToAllMs.p50 ?? null,
      RT?.ms_publish_to_100pct.p50 ?? null,
    ),
    {
      label: "throughput: CPU per delivery",
      ours: ourTpCpu ?? null,
      reference: RT?.cost?.cpu_us_per_delivery ?? null,
      unit: "us",
      better: "lower",
    },
    {
      label: inProcess ? "memory: RSS of the process at the end" : "memory: total RSS at the end",
      ours: inProcess
        ? o.memory.end.rssMiB.max
        : o.memory.end.perNode.reduce((a, m) => a + m.rss, 0) / 2 ** 20,
      reference: r.peak_rss_mib,
      unit: "MiB",
      better: "lower",
    },
  ];
}

function formatFigures(title: string, list: Figure[]): string[] {
  const lines = [title];
  lines.push(
    `  ${"".padEnd(40)}${"ours".padStart(12)}${"GossipSub".padStart(12)}` +
      `${"ref/ours".padStart(10)}`,
  );
  for (const f of list) {
    const fmt = (v: number | null) =>
      v === null || !Number.isFinite(v)
        ? "n/a"
        : `${v >= 100 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)}${f.unit ? ` ${f.unit}` : ""}`;
    const ratio = f.ours && f.reference && Number.isFinite(f.ours) && Number.isFinite(f.reference)
      ? f.reference / f.ours
      : null;
    lines.push(
      `  ${f.label.padEnd(40)}${fmt(f.ours).padStart(12)}${fmt(f.reference).padStart(12)}` +
        `${(ratio === null ? "n/a" : `${ratio.toFixed(2)}x`).padStart(10)}`,
    );
  }
  return lines;
}

async function main(args: string[]): Promise<number> {
  let options: Options | undefined;
  try {
    options = parse(args);
  } catch (error) {
    console.error(`compare: ${(error as Error).message}; see --help`);
    return 2;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  if (!await exists(join(options.anchor, "bench.mjs"))) {
    console.error(
      `compare: no bench.mjs in ${options.anchor}; set it up with\n` +
        `  cp -r ../shared/anchors/gossipsub ${options.anchor} && chmod -R u+w ${options.anchor}` +
        ` && (cd ${options.anchor} && npm install)`,
    );
    return 2;
  }
  if (!await exists(join(options.anchor, "node_modules"))) {
    console.error(`compare: run \`npm install\` in ${options.anchor} first`);
    return 2;
  }
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  const outDir = join(options.out, `compare-${stamp}`);
  await Deno.mkdir(outDir, { recursive: true });
  const runs: { mode: string; ours: OursJson; reference: ReferenceJson }[] = [];
  const inProc = await ours(options, true, join(outDir, "ours-in-process"));
  const ref = await reference(options, join(outDir, "gossipsub.json"));
  runs.push({ mode: "in-process", ours: inProc.json, reference: ref.json });
  let proc: Awaited<ReturnType<typeof ours>> | undefined;
  if (options.process) {
    proc = await ours(options, false, join(outDir, "ours-process"));
    runs.push({ mode: "process", ours: proc.json, reference: ref.json });
  }
  console.log(
    `\n${options.nodes} nodes, degree ${options.degree}, ${options.items} items of ` +
      `${options.size} B ${options.intervalMs} ms apart, seed ${options.seed}; throughput ` +
      `${options.throughputSeconds} s with at most ${options.window} in flight. Run one after ` +
      `the other on this machine.`,
  );
  const all: Record<string, Figure[]> = {};
  for (const run of runs) {
    const list = figures(run.ours, run.reference, run.mode === "in-process");
    all[run.mode] = list;
    console.log("");
    for (
      const line of formatFigures(
        run.mode === "in-process"
          ? "Both with all nodes in one process (ours: CPU of the whole process, modules included):"
          : "Ours with one process per node (CPU: node processes, idle background subtracted) " +
            "against the reference in one process:",
        list,
      )
    ) console.log(line);
  }
  console.log(
    "\n  ref/ours: the reference's figure divided by ours; for times, CPU and memory above 1 " +
      "means ours is lower, for rates and ratios above 1 means the reference is higher.",
  );
  console.log("\nMachine load during each run (all programs; 2 cores = saturated):");
  for (const [name, load] of Object.entries(loads)) {
    console.log(
      `  ${name.padEnd(24)} busy ${load.busyCores.toFixed(2)} cores on average; ` +
        `1-min load average before: ${load.loadBefore.toFixed(2)}`,
    );
  }
  for (const run of runs) {
    const other = run.ours.latency.cpu?.otherCores;
    if (other !== undefined && other !== null) {
      console.log(
        `  ours ${run.mode}: other programs used ${
          other.toFixed(2)
        } cores during its latency phase`,
      );
    }
  }
  const path = join(outDir, "compare.json");
  await Deno.writeTextFile(
    path,
    JSON.stringify({ options, figures: all, loads, ours: runs.map((r) => r.ours) }, null, 1) + "\n",
  );
  console.log(`\nwrote ${path}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
