/**
 * End-to-end benchmark of the gossip daemon on 127.0.0.1.
 *
 * ```sh
 * deno task bench                                   # 50 daemon processes
 * deno task bench --nodes 100 --items 50
 * deno task bench --in-process --nodes 20 --items 50
 * deno task bench --help
 * ```
 *
 * Starts N nodes (separate `deno run main.ts` processes by default, or
 * GossipNode objects with `--in-process`), connects one module per node (a
 * TCP client in this process that subscribes, validates every item as valid
 * and timestamps its arrival), waits for a connected overlay, sends
 * `--warmup` unmeasured items, then measures:
 *
 * 1. latency: items from random origins, evenly spaced; per item the time
 *    from the ANNOUNCE write until 50 %, 90 % and 100 % of the other nodes'
 *    modules got it; p50/p99 over items; delivery ratio; duplicates per
 *    delivery and largest hop count from the nodes' `/status` counters;
 * 2. throughput: items per second one origin gets to every node with at most
 *    `--window` items in flight.
 *
 * Prints a summary; writes `bench-<time>.json` (all raw numbers) and
 * `reach-<time>.svg` to `--out` (default bench-results/). Host keys are cached
 * in bench-results/keys/. Children are always stopped (SIGTERM, then SIGKILL),
 * also on error, SIGINT and the `--timeout-s` deadline. Exit codes: 0 done,
 * 1 failed, 2 bad usage, 130 interrupted.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../lib/protocol/random.ts";
import { type Cluster, startInProcessCluster, startProcessCluster } from "./bench/cluster.ts";
import { AbortedError, Deadline, WaitTimeoutError } from "./bench/deadline.ts";
import { ensureHostKeys } from "./bench/keys.ts";
import { cpuPerDelivery } from "./bench/cpu.ts";
import {
  type IdleResult,
  type LatencyResult,
  type MeasureContext,
  measureIdle,
  measureLatency,
  measureThroughput,
  type ThroughputResult,
  warmUp,
} from "./bench/measure.ts";
import { ModuleClient } from "./bench/module_client.ts";
import {
  BENCH_USAGE,
  type BenchOptions,
  BenchUsageError,
  parseBenchArgs,
} from "./bench/options.ts";
import {
  type CpuReport,
  formatSummary,
  machineInfo,
  type MemoryReport,
  memorySnapshot,
  reachChartSvg,
  sourceInfo,
} from "./bench/report.ts";
import { type OverlayShape, overlayShape } from "./bench/stats.ts";
import { DeliveryTracker } from "./bench/tracker.ts";
import {
  parsePerfStat,
  parseStraceSummary,
  perfReport,
  startPerfRecord,
  startPerfStat,
  startStrace,
  type Tracer,
} from "./bench/tracers.ts";

const REPO_DIR = fileURLToPath(new URL("../", import.meta.url));
/** Host keys are cached here whatever `--out` says. */
const KEYS_DIR = join(REPO_DIR, "bench-results", "keys");

function progress(line: string): void {
  console.error(line);
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
}

/**
 * Waits for a connected overlay in which every node has its `degree` outbound
 * peers (or is connected to every other node already).
 */
async function waitForOverlay(
  cluster: Cluster,
  options: BenchOptions,
  deadline: Deadline,
): Promise<OverlayShape> {
  let shape: OverlayShape | undefined;
  let polls = 0;
  try {
    await deadline.waitFor(
      async () => {
        shape = overlayShape(await cluster.stats(), options.degree);
        if (++polls % 20 === 0) {
          progress(
            `  overlay: ${shape.reachable}/${options.nodes} reachable, ` +
              `${shape.saturated}/${options.nodes} with their outbound peers`,
          );
        }
        return shape.connected && shape.saturated === options.nodes;
      },
      Math.min(options.overlayTimeoutMs, deadline.remainingMs),
      "a connected overlay",
      250,
    );
  } catch (error) {
    if (!(error instanceof WaitTimeoutError) || !shape?.connected) throw error;
    progress(
      `  warning: overlay connected but only ${shape.saturated}/${options.nodes} nodes have ` +
        `their ${options.degree} outbound peers; measuring anyway`,
    );
  }
  return shape!;
}

/** Connects one module per node and waits until every node counts its API client. */
async function connectModules(
  cluster: Cluster,
  tracker: DeliveryTracker,
  deadline: Deadline,
  clients: ModuleClient[],
): Promise<void> {
  for (const node of cluster.nodes) {
    deadline.check();
    clients.push(await ModuleClient.connect(node.apiPort, node.index, tracker.handle));
  }
  await deadline.waitFor(
    async () => (await cluster.stats()).every((s) => s.apiClients >= 1),
    10_000,
    "every node to accept its module",
    50,
  );
  // NOTIFY is handled right after the connection is accepted; leave it a moment.
  await deadline.sleep(200);
}

/** Starts the `--strace` and `--perf-stat` tracers of the latency phase. */
async function startTracers(
  cluster: Cluster,
  options: BenchOptions,
  runDir: string,
): Promise<Tracer[]> {
  const tracers: Tracer[] = [];
  if (options.strace !== undefined) {
    const pid = cluster.nodes[options.strace].pid!;
    tracers.push(await startStrace(pid, join(runDir, `strace-node-${options.strace}.txt`)));
  }
  if (options.perfStat) {
    const pids = cluster.nodes.map((n) => n.pid!);
    tracers.push(await startPerfStat(pids, join(runDir, "perf-stat.txt")));
  }
  if (options.perfRecord) {
    const pids = cluster.nodes.map((n) => n.pid!);
    tracers.push(await startPerfRecord(pids, join(runDir, "perf.data")));
  }
  return tracers;
}

/** Stops the tracers and parses their reports. */
async function stopTracers(tracers: Tracer[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const tracer of tracers) {
    const text = await tracer.stop();
    if (tracer.kind === "strace") {
      out.strace = {
        command: tracer.label,
        file: tracer.outputPath,
        rows: parseStraceSummary(text),
      };
    } else if (tracer.kind === "perf-record") {
      const reports: Record<string, string> = {};
      for (const sort of ["dso", "dso,sym"]) {
        reports[sort] = await perfReport(tracer.outputPath, sort, sort === "dso" ? 20 : 80);
        await Deno.writeTextFile(
          `${tracer.outputPath}.${sort.replace(",", "-")}.txt`,
          reports[sort],
        );
      }
      out.perfRecord = { command: tracer.label, file: tracer.outputPath, reports };
    } else {
      out.perfStat = {
        command: tracer.label,
        file: tracer.outputPath,
        events: parsePerfStat(text),
      };
    }
  }
  return out;
}

/** Per-delivery figures of the tracers' reports. */
function formatTraces(traces: Record<string, unknown>, latency: LatencyResult): string[] {
  const lines: string[] = [];
  const strace = traces.strace as
    | { command: string; rows: ReturnType<typeof parseStraceSummary> }
    | undefined;
  if (strace) {
    // The traced node received every item it did not originate.
    const node = Number(/-p (\d+)/.exec(strace.command)?.[1]);
    const items = latency.items;
    const total = strace.rows.reduce((n, r) => n + r.calls, 0);
    lines.push("");
    lines.push(
      `Syscalls of one node during the latency phase (${strace.command}; pid ${node}), ` +
        `${total} calls, ${(total / items).toFixed(1)} per item:`,
    );
    for (const r of strace.rows.slice(0, 12)) {
      lines.push(
        `  ${r.syscall.padEnd(20)}${String(r.calls).padStart(9)} calls` +
          `${(r.calls / items).toFixed(1).padStart(9)} per item` +
          (r.errors > 0 ? `  (${r.errors} errors)` : ""),
      );
    }
  }
  const record = traces.perfRecord as { file: string; reports: Record<string, string> } | undefined;
  if (record) {
    lines.push("");
    lines.push(`perf record of all nodes during the latency phase (${record.file}), by binary:`);
    lines.push(...record.reports.dso.split("\n").slice(0, 12).map((l) => `  ${l.trim()}`));
    lines.push(`by symbol (top 25; all in ${record.file}.dso-sym.txt):`);
    lines.push(...record.reports["dso,sym"].split("\n").slice(0, 25).map((l) => `  ${l.trim()}`));
  }
  const perf = traces.perfStat as { events: Record<string, number> } | undefined;
  if (perf) {
    lines.push("");
    lines.push(`perf stat over all nodes during the latency phase, per delivery:`);
    for (const [event, value] of Object.entries(perf.events)) {
      const per = value / latency.deliveries;
      lines.push(
        `  ${event.padEnd(20)}${value.toFixed(0).padStart(12)}   ${
          event === "task-clock" ? `${(per * 1000).toFixed(0)} us` : per.toFixed(2)
        } per delivery`,
      );
    }
  }
  return lines;
}

async function run(options: BenchOptions, deadline: Deadline): Promise<void> {
  const started = new Date();
  const stamp = timestamp(started);
  const outDir = resolve(options.out);
  const runDir = join(outDir, `run-${stamp}`);
  await Deno.mkdir(runDir, { recursive: true });
  const random = seededRandom(options.seed);
  const machine = await machineInfo();
  const source = await sourceInfo(REPO_DIR);
  if (source.dirty && source.dirty.length > 0) {
    progress(`note: measuring uncommitted changes: ${source.dirty.join(", ")}`);
  }
  let cluster: Cluster | undefined;
  const clients: ModuleClient[] = [];
  let ok = false;
  try {
    const keys = await ensureHostKeys(KEYS_DIR, options.nodes, options.keyBits, deadline, progress);
    if (keys.generated > 0) {
      progress(`  generated ${keys.generated} keys in ${(keys.ms / 1000).toFixed(1)} s`);
    }
    progress(
      `starting ${options.nodes} nodes (${options.inProcess ? "in-process" : "processes"}, ` +
        `degree ${options.degree}, pow_difficulty ${options.powDifficulty})`,
    );
    const clusterOptions = {
      nodes: options.nodes,
      degree: options.degree,
      powDifficulty: options.powDifficulty,
      keyPaths: keys.paths,
      keyBits: options.keyBits,
      runDir,
      keysDir: KEYS_DIR,
      random,
      deadline,
      progress,
      cpuProf: options.cpuProf,
      v8Flags: options.nodeV8Flags,
    };
    cluster = options.inProcess
      ? await startInProcessCluster(clusterOptions)
      : await startProcessCluster(clusterOptions);
    progress(`waiting for a connected overlay`);
    const overlayStart = performance.now();
    const overlay = await waitForOverlay(cluster, options, deadline);
    const overlayWaitMs = performance.now() - overlayStart;

    const tracker = new DeliveryTracker(options.nodes, Math.floor(random() * 2 ** 32));
    await connectModules(cluster, tracker, deadline, clients);
    const memoryStart = memorySnapshot(await cluster.memory(), await cluster.stats());
    const context: MeasureContext = {
      cluster,
      clients,
      tracker,
      options,
      random,
      deadline,
      progress,
    };
    if (options.warmup > 0) {
      progress(`warm-up: ${options.warmup} unmeasured items`);
      const warmed = await warmUp(context);
      if (warmed < options.warmup) {
        progress(`  only ${warmed}/${options.warmup} warm-up items reached every node`);
      }
    }
    let idle: IdleResult | undefined;
    let memoryIdle;
    if (options.idleSeconds > 0) {
      progress(`idle: ${options.idleSeconds} s without items (background CPU, idle RSS)`);
      idle = await measureIdle(context, options.idleSeconds);
      memoryIdle = memorySnapshot(await cluster.memory(), await cluster.stats());
    }
    progress(`latency: ${options.items} items, ${options.intervalMs} ms apart`);
    const tracers = await startTracers(cluster, options, runDir);
    let latency: LatencyResult;
    let traces: Record<string, unknown> = {};
    try {
      latency = await measureLatency(context);
    } finally {
      traces = await stopTracers(tracers);
    }
    let throughput: ThroughputResult | undefined;
    if (options.throughputSeconds > 0) {
      progress(`throughput: ${options.throughputSeconds} s from one origin`);
      throughput = await measureThroughput(context);
    }
    const failures = cluster.failures();
    const broken = clients.filter((c) => c.error !== undefined)
      .map((c) => `module of node ${c.node}: ${c.error}`);
    const finalStats = await cluster.stats();
    const memoryEnd = memorySnapshot(await cluster.memory(), finalStats);
    const memory: MemoryReport = {
      start: memoryStart,
      idle: memoryIdle,
      end: memoryEnd,
      rssBytes: memoryEnd.perNode.map((m) => m.rss),
      rssMiB: memoryEnd.rssMiB,
    };
    const idleCores = idle?.cpu.nodesCores ?? 0;
    const cpu: CpuReport = {
      idle: idle?.cpu,
      latency: cpuPerDelivery(latency.cpu, latency.deliveries, idleCores),
      throughput: throughput && cpuPerDelivery(throughput.cpu, throughput.deliveries, idleCores),
    };
    const summary = {
      options,
      machine,
      startupMs: cluster.startupMs,
      overlayWaitMs,
      overlay,
      latency,
      throughput,
      memory,
      cpu,
      source,
    };
    console.log(formatSummary(summary));
    for (const line of formatTraces(traces, latency)) console.log(line);
    for (const line of [...failures, ...broken]) console.log(`  problem: ${line}`);

    const jsonPath = join(outDir, `bench-${stamp}.json`);
    const svgPath = join(outDir, `reach-${stamp}.svg`);
    const title = `${options.nodes} nodes (${options.inProcess ? "in-process" : "processes"}), ` +
      `degree ${options.degree}, ${latency.items} items of ${options.size} B, ` +
      `${options.intervalMs} ms apart`;
    await Deno.writeTextFile(svgPath, reachChartSvg(latency.raw, title));
    await Deno.writeTextFile(
      jsonPath,
      JSON.stringify(
        {
          tool: "scripts/bench.ts",
          date: started.toISOString(),
          options,
          machine,
          source,
          cluster: {
            mode: cluster.mode,
            startupMs: cluster.startupMs,
            keygen: { generated: keys.generated, ms: keys.ms },
            overlayWaitMs,
            overlay,
            nodes: cluster.nodes,
          },
          latency,
          throughput,
          memory,
          cpu,
          idle,
          traces,
          problems: [...failures, ...broken],
          moduleStats: { foreign: tracker.foreign, duplicates: tracker.moduleDuplicates },
          finalNodeStats: finalStats.map((s, index) => ({
            index,
            identity: s.identity,
            peers: s.peers.length,
            outbound: s.peers.filter((p) => p.direction === "outbound").length,
            knownPeers: s.knownPeers,
            local: s.local,
            handshakeFailures: s.handshakeFailures,
            spreading: s.spreading,
            drops: s.drops,
            structures: s.structures,
          })),
        },
        null,
        1,
      ) + "\n",
    );
    console.log(`\nwrote ${jsonPath}\nwrote ${svgPath}`);
    ok = true;
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    if (cluster) {
      progress(`stopping ${cluster.nodes.length} nodes`);
      await cluster.close();
    }
    if (ok && !options.keep) {
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
    } else {
      progress(`configs and logs kept in ${runDir}`);
    }
  }
}

async function main(args: string[]): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseBenchArgs(args);
  } catch (error) {
    if (!(error instanceof BenchUsageError)) throw error;
    console.error(`bench: ${error.message}; see --help`);
    return 2;
  }
  if (options === undefined) {
    console.log(BENCH_USAGE);
    return 0;
  }
  const deadline = new Deadline(options.timeoutS * 1000);
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => {
    // If teardown itself hangs, leave anyway (children get SIGKILL from the OS
    // only if they die with us, so teardown is bounded well below this).
    const timer = setTimeout(() => {
      console.error("bench: teardown did not finish within 60 s; exiting");
      Deno.exit(1);
    }, 60_000);
    Deno.unrefTimer(timer);
    watchdog = timer;
  };
  deadline.signal.addEventListener("abort", onAbort, { once: true });
  deadline.abortOnSignals();
  try {
    await run(options, deadline);
    return 0;
  } catch (error) {
    if (error instanceof AbortedError) {
      console.error(`bench: ${error.message}`);
      return deadline.interrupted ? 130 : 1;
    }
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    clearTimeout(watchdog);
    deadline.dispose();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
