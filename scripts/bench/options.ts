/**
 * Command-line options of `scripts/bench.ts`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { API_MAX_DATA_BYTES } from "../../lib/codec/api_messages.ts";

/** Everything a benchmark run is parameterised by. */
export interface BenchOptions {
  /** Run the nodes as GossipNode objects inside the bench process. */
  readonly inProcess: boolean;
  /** Number of nodes. */
  readonly nodes: number;
  /** `degree` of every node. */
  readonly degree: number;
  /** `pow_difficulty` of every node. */
  readonly powDifficulty: number;
  /** Unmeasured warm-up items announced before measuring. */
  readonly warmup: number;
  /** Items of the latency measurement. */
  readonly items: number;
  /** Payload size of every item in bytes. */
  readonly size: number;
  /** Time between two latency items in ms. */
  readonly intervalMs: number;
  /** Length of the throughput measurement in seconds (0 skips it). */
  readonly throughputSeconds: number;
  /** Most throughput items not yet fully delivered before the origin waits. */
  readonly window: number;
  /** Longest wait for the last deliveries after a phase, in ms. */
  readonly drainMs: number;
  /** Longest wait for a connected overlay, in ms. */
  readonly overlayTimeoutMs: number;
  /** Overall deadline of the run in seconds. */
  readonly timeoutS: number;
  /** Directory for results (JSON, SVG); keys are cached in `<repo>/bench-results/keys`. */
  readonly out: string;
  /** Keep the generated configs and node logs after a successful run. */
  readonly keep: boolean;
  /** Seed of the bench's own random choices (origins, bootstrappers). */
  readonly seed: number;
  /** RSA modulus of the host keys. */
  readonly keyBits: number;
  /** Process mode: run every node with `--cpu-prof` into `<run dir>/prof` (implies keep). */
  readonly cpuProf: boolean;
  /** Length of the idle window that measures background CPU and idle RSS, in s (0 skips it). */
  readonly idleSeconds: number;
  /** Process mode: node index to trace with `strace -c -f` during the latency phase. */
  readonly strace?: number;
  /** Process mode: count task clock and context switches of all nodes with `perf stat`. */
  readonly perfStat: boolean;
  /** Process mode: sample all nodes' CPU with `perf record` during the latency phase. */
  readonly perfRecord: boolean;
  /** Process mode: extra V8 flags of every node (`deno run --v8-flags=...`). */
  readonly nodeV8Flags?: string;
}

/** Help text of the benchmark. */
export const BENCH_USAGE = `deno task bench [options]

Starts a gossip overlay on 127.0.0.1, measures how fast items reach every
node and how many items per second one origin sustains, then prints a summary
and writes bench-<time>.json and reach-<time>.svg to the output directory.

Options:
  --nodes N               number of nodes (default 50)
  --degree N              degree of every node (default 5)
  --pow-difficulty N      pow_difficulty of every node (default 16)
  --warmup N              unmeasured warm-up items before measuring (default 20)
  --items N               latency items (default 100)
  --size BYTES            item payload size (default 1024, at least 16)
  --interval-ms MS        time between latency items (default 100)
  --throughput-seconds S  length of the throughput phase (default 5; 0 skips it)
  --window N              throughput items in flight (default 32)
  --drain-ms MS           longest wait for late deliveries after a phase (default 5000)
  --overlay-timeout-s S   longest wait for a connected overlay (default 90)
  --timeout-s S           overall deadline (default 300)
  --in-process            run the nodes inside the bench process (1024-bit keys)
  --key-bits N            RSA host key size (default 2048; 1024 with --in-process)
  --seed N                seed of the bench's random choices (default: random)
  --out DIR               results directory (default bench-results)
  --keep                  keep the generated configs and node logs
  --idle-seconds S        idle window after the warm-up that measures the nodes'
                          background CPU (subtracted from CPU per delivery) and
                          idle RSS (default 5; 0 skips it)
  --cpu-prof              process mode: V8 CPU profile of every node into the kept
                          run directory (open the .cpuprofile files in Chrome DevTools,
                          or summarise them with scripts/bench/profile_summary.ts)
  --strace I              process mode: strace -c -f node I during the latency phase
                          (slows that node; for syscall counts, not for timings)
  --perf-stat             process mode: perf stat (context switches, page faults) of
                          all nodes during the latency phase
  --perf-record           process mode: perf record (CPU samples of user and kernel
                          code) of all nodes during the latency phase; reports by
                          binary and by symbol go to the kept run directory
  --node-v8-flags FLAGS   process mode: run every node with --v8-flags=FLAGS (e.g.
                          --perf-basic-prof with --perf-record, or heap settings)
  -h, --help              show this help`;

/** Thrown for bad command-line input. */
export class BenchUsageError extends Error {}

function intOption(
  values: Record<string, string | boolean | undefined>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = values[name];
  if (raw === undefined || typeof raw === "boolean") return fallback;
  if (!/^\d+$/.test(raw)) throw new BenchUsageError(`--${name}: "${raw}" is not an integer`);
  const value = Number(raw);
  if (value < min || value > max) {
    throw new BenchUsageError(`--${name}: ${value} is out of range ${min}..${max}`);
  }
  return value;
}

/**
 * Parses the command line; returns undefined when help was requested.
 *
 * @throws {BenchUsageError} naming the flag for any invalid value.
 */
export function parseBenchArgs(args: string[]): BenchOptions | undefined {
  const stringFlags = [
    "nodes",
    "degree",
    "pow-difficulty",
    "items",
    "warmup",
    "size",
    "interval-ms",
    "throughput-seconds",
    "window",
    "drain-ms",
    "overlay-timeout-s",
    "timeout-s",
    "key-bits",
    "seed",
    "out",
    "idle-seconds",
    "strace",
    "node-v8-flags",
  ];
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    "in-process": { type: "boolean" },
    keep: { type: "boolean" },
    "cpu-prof": { type: "boolean" },
    "perf-stat": { type: "boolean" },
    "perf-record": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  };
  for (const flag of stringFlags) options[flag] = { type: "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new BenchUsageError((error as Error).message.split(/\. /)[0]);
  }
  if (values.help) return undefined;
  const inProcess = values["in-process"] === true;
  const keyBits = intOption(values, "key-bits", inProcess ? 1024 : 2048, 1024, 8192);
  if (keyBits % 8 !== 0) throw new BenchUsageError("--key-bits: must be a multiple of 8");
  if (!inProcess && keyBits < 2048) {
    throw new BenchUsageError("--key-bits: daemons accept peer keys of 2048 bits or more");
  }
  const out = values.out;
  const cpuProf = values["cpu-prof"] === true;
  if (cpuProf && inProcess) {
    throw new BenchUsageError(
      "--cpu-prof: profile in-process runs with `deno run --cpu-prof ... scripts/bench.ts`",
    );
  }
  const nodes = intOption(values, "nodes", 50, 2, inProcess ? 500 : 300);
  const strace = values.strace === undefined
    ? undefined
    : intOption(values, "strace", 0, 0, nodes - 1);
  const perfStat = values["perf-stat"] === true;
  const perfRecord = values["perf-record"] === true;
  const nodeV8Flags = typeof values["node-v8-flags"] === "string"
    ? values["node-v8-flags"]
    : undefined;
  if (inProcess && (strace !== undefined || perfStat || perfRecord || nodeV8Flags)) {
    throw new BenchUsageError(
      "--strace, --perf-stat, --perf-record and --node-v8-flags need process mode",
    );
  }
  return {
    inProcess,
    nodes,
    degree: intOption(values, "degree", 5, 1, 256),
    powDifficulty: intOption(values, "pow-difficulty", 16, 0, 24),
    warmup: intOption(values, "warmup", 20, 0, 10_000),
    items: intOption(values, "items", 100, 1, 100_000),
    size: intOption(values, "size", 1024, 16, API_MAX_DATA_BYTES),
    intervalMs: intOption(values, "interval-ms", 100, 0, 60_000),
    throughputSeconds: intOption(values, "throughput-seconds", 5, 0, 3600),
    window: intOption(values, "window", 32, 1, 4096),
    drainMs: intOption(values, "drain-ms", 5000, 100, 600_000),
    overlayTimeoutMs: intOption(values, "overlay-timeout-s", 90, 1, 3600) * 1000,
    timeoutS: intOption(values, "timeout-s", 300, 10, 86_400),
    out: typeof out === "string" && out !== "" ? out : "bench-results",
    keep: values.keep === true || cpuProf || perfRecord,
    seed: intOption(values, "seed", Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31),
    keyBits,
    cpuProf,
    idleSeconds: intOption(values, "idle-seconds", 5, 0, 3600),
    strace,
    perfStat,
    perfRecord,
    nodeV8Flags,
  };
}
