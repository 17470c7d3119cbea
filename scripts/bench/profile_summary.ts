/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as written by `deno run
 * --cpu-prof` and by `deno task bench --cpu-prof`) over many processes: where
 * the sampled time goes by category (gossip code per file, Node compatibility
 * layer, Deno runtime, garbage collector, native/unattributed) and the
 * functions with the most self and inclusive time.
 *
 * ```sh
 * deno run --allow-read scripts/bench/profile_summary.ts <run dir>/prof
 * deno run --allow-read scripts/bench/profile_summary.ts <run dir>/prof \
 *   --bench bench-results/bench-<time>.json --phase latency --top 30
 * ```
 *
 * With `--bench` and `--phase latency|throughput|idle`, only samples inside
 * that phase count (the bench records each phase's start and end on
 * CLOCK_MONOTONIC, the clock of the profiles), and figures are also given per
 * delivery of the phase. Without it the whole life of each process counts,
 * start-up (proof-of-work, handshakes) included.
 *
 * V8 samples the main thread only: "(program)" is time in native code with no
 * JavaScript on the stack, including waiting for events when the runtime does
 * not mark itself idle, so compare totals with the measured CPU, not wall time.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { basename, join } from "node:path";

/** One node of a V8 CPU profile's call tree. */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
    readonly columnNumber: number;
  };
  readonly children?: number[];
}

/** The `.cpuprofile` format. */
interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: number[];
  readonly timeDeltas: number[];
}

/** Time attributed to one function or category, in µs. */
export interface Attributed {
  /** Function name with its file and line, or the category. */
  readonly key: string;
  /** Sampled µs. */
  readonly us: number;
}

/** The summary of a set of profiles over a window. */
export interface ProfileSummary {
  /** Profiles read. */
  readonly profiles: number;
  /** Sampled µs inside the window, over all profiles. */
  readonly sampledUs: number;
  /** µs by category, largest first. */
  readonly categories: Attributed[];
  /** µs of self time by function, largest first. */
  readonly self: Attributed[];
  /** µs of inclusive time by function, largest first (recursion counted once). */
  readonly inclusive: Attributed[];
}

function shortUrl(url: string): string {
  if (url === "") return "";
  const lib = url.lastIndexOf("/lib/");
  if (lib >= 0) return url.slice(lib + 1);
  if (url.startsWith("file://")) return basename(url);
  return url;
}

function functionKey(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === "" ? "(anonymous)" : functionName;
  const where = shortUrl(url);
  return where === "" ? name : `${name} ${where}:${lineNumber + 1}`;
}

/** The category of a function by where its code lives. */
export function category(functionName: string, url: string): string {
  if (functionName.startsWith("(") && url === "") return functionName; // (program), (garbage collector), (idle), (root)
  if (url.includes("/lib/")) return `gossip ${url.slice(url.lastIndexOf("/lib/") + 1)}`;
  if (url.includes("/scripts/") || url.endsWith("/main.ts")) return "gossip main/scripts";
  if (url.startsWith("ext:deno_node") || url.startsWith("node:")) {
    return "node compat (ext:deno_node)";
  }
  if (url.startsWith("ext:core") || url === "") {
    return functionName.startsWith("op_") ? "deno ops (native, called from JS)" : "deno core";
  }
  if (url.startsWith("ext:")) return `deno runtime (${url.split("/")[0]})`;
  if (url.startsWith("file://")) return "other files";
  return "other";
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

function sorted(map: Map<string, number>): Attributed[] {
  return [...map].map(([key, us]) => ({ key, us })).sort((a, b) => b.us - a.us);
}

/**
 * Summarises `profiles`, counting only samples taken between `fromUs` and
 * `toUs` (profile clock, µs); each sample lasts until the next one.
 */
export function summarise(profiles: readonly CpuProfile[], fromUs = -Infinity, toUs = Infinity) {
  const categories = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let sampledUs = 0;
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const selfById = new Map<number, number>();
    let t = profile.startTime;
    const times = profile.timeDeltas.map((d) => t += d);
    for (let i = 0; i < profile.samples.length; i++) {
      const at = times[i];
      if (at < fromUs || at > toUs) continue;
      const next = i + 1 < times.length ? times[i + 1] : profile.endTime;
      const us = Math.max(0, Math.min(next, toUs) - at);
      selfById.set(profile.samples[i], (selfById.get(profile.samples[i]) ?? 0) + us);
    }
    for (const [id, us] of selfById) {
      const node = byId.get(id);
      if (!node || node.callFrame.functionName === "(idle)") continue;
      sampledUs += us;
      add(categories, category(node.callFrame.functionName, node.callFrame.url), us);
      add(self, functionKey(node), us);
      // Inclusive: every distinct function on the stack gets the sample once.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const n = byId.get(cur)!;
        const key = functionKey(n);
        if (n.callFrame.functionName === "(root)" || seen.has(key)) continue;
        seen.add(key);
        add(inclusive, key, us);
      }
    }
  }
  return {
    profiles: profiles.length,
    sampledUs,
    categories: sorted(categories),
    self: sorted(self),
    inclusive: sorted(inclusive),
  };
}

async function profileFiles(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await Deno.stat(path);
    if (info.isDirectory) {
      for await (const entry of Deno.readDir(path)) {
        if (entry.isFile && entry.name.endsWith(".cpuprofile")) files.push(join(path, entry.name));
      }
    } else {
      files.push(path);
    }
  }
  return files.sort();
}

const USAGE =
  `deno run --allow-read scripts/bench/profile_summary.ts PROFILE_DIR_OR_FILE... [options]

Options:
  --bench FILE     bench-<time>.json of the run that wrote the profiles
  --phase NAME     latency, throughput or idle: count only that phase's samples
                   (needs --bench); figures also per delivery of the phase
  --top N          functions listed (default 25)
  -h, --help       this help`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      bench: { type: "string" },
      phase: { type: "string" },
      top: { type: "string", default: "25" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
  });
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const top = Number(values.top);
  let fromUs = -Infinity;
  let toUs = Infinity;
  let deliveries: number | undefined;
  let nodeCpuS: number | undefined;
  if (values.phase !== undefined) {
    if (values.bench === undefined) {
      console.error("profile_summary: --phase needs --bench FILE");
      return 2;
    }
    const bench = JSON.parse(await Deno.readTextFile(values.bench));
    const phase = bench[values.phase] as
      | { clock?: { startS: number; endS: number }; deliveries?: number; cpu?: unknown }
      | undefined;
    if (!phase?.clock) {
      console.error(`profile_summary: ${values.bench} has no clock for phase "${values.phase}"`);
      return 2;
    }
    fromUs = phase.clock.startS * 1e6;
    toUs = phase.clock.endS * 1e6;
    deliveries = phase.deliveries;
    nodeCpuS = (phase.cpu as { nodesS?: number } | undefined)?.nodesS;
  }
  const files = await profileFiles(positionals);
  const profiles: CpuProfile[] = [];
  for (const file of files) profiles.push(JSON.parse(await Deno.readTextFile(file)));
  const s = summarise(profiles, fromUs, toUs);
  const pct = (us: number) => `${((us / s.sampledUs) * 100).toFixed(1).padStart(5)} %`;
  const perDelivery = (us: number) =>
    deliveries ? `${(us / deliveries).toFixed(1).padStart(8)} us/delivery` : "";
  console.log(
    `${s.profiles} profiles` +
      (values.phase ? `, ${values.phase} phase only` : ", whole process lives") +
      `: ${(s.sampledUs / 1e6).toFixed(2)} s sampled on the main threads` +
      (nodeCpuS !== undefined ? ` (processes' measured CPU: ${nodeCpuS.toFixed(2)} s)` : "") +
      (deliveries ? `, ${deliveries} deliveries` : ""),
  );
  console.log("\nBy category:");
  for (const c of s.categories) {
    console.log(
      `  ${c.key.padEnd(48)}${(c.us / 1000).toFixed(0).padStart(8)} ms ${pct(c.us)} ${
        perDelivery(c.us)
      }`,
    );
  }
  for (const [title, list] of [["self", s.self], ["inclusive", s.inclusive]] as const) {
    console.log(`\nTop ${top} functions by ${title} time:`);
    for (const f of list.slice(0, top)) {
      console.log(
        `  ${f.key.slice(0, 70).padEnd(72)}${(f.us / 1000).toFixed(0).padStart(7)} ms ${
          pct(f.us)
        } ${perDelivery(f.us)}`,
      );
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
