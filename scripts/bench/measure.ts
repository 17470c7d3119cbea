/**
 * The two measurements: latency (items from random origins, evenly spaced)
 * and throughput (one origin, as fast as a bounded in-flight window allows).
 *
 * @module
 */

import type { NodeStats } from "../../lib/node.ts";
import type { RandomSource } from "../../lib/protocol/random.ts";
import type { Cluster } from "./cluster.ts";
import { cpuBetween, type CpuUsage, sampleCpu } from "./cpu.ts";
import { monotonicSeconds } from "./proc.ts";
import { type Deadline, WaitTimeoutError } from "./deadline.ts";
import type { ModuleClient } from "./module_client.ts";
import type { BenchOptions } from "./options.ts";
import { type CounterDelta, counterDelta, percentile } from "./stats.ts";
import { type DeliveryTracker, encodePayload, type ItemRecord, Phase } from "./tracker.ts";

/** What a measurement needs. */
export interface MeasureContext {
  /** The overlay. */
  readonly cluster: Cluster;
  /** One module per node, same order as the cluster's nodes. */
  readonly clients: readonly ModuleClient[];
  /** Arrival bookkeeping. */
  readonly tracker: DeliveryTracker;
  /** Run options. */
  readonly options: BenchOptions;
  /** Chooses origins. */
  readonly random: RandomSource;
  /** Overall deadline. */
  readonly deadline: Deadline;
  /** Progress lines. */
  readonly progress: (line: string) => void;
}

/** Reach fractions reported per item. */
export const REACH_FRACTIONS = [0.5, 0.9, 1] as const;

/** p50 and p99 over items of a time in ms; null when too few items got there. */
export interface Percentiles {
  /** Median over items. */
  readonly p50: number | null;
  /** 99th percentile over items. */
  readonly p99: number | null;
  /** Slowest item. */
  readonly max: number | null;
  /** Items that reached the fraction at all. */
  readonly items: number;
}

/** Raw data of one item: origin and each other node's delay in ms (null: never arrived). */
export interface RawItem {
  /** Sequence number. */
  readonly seq: number;
  /** Origin node. */
  readonly origin: number;
  /** ANNOUNCE time in ms since the phase started. */
  readonly sentMs: number;
  /** Per node, ms from ANNOUNCE to arrival; null for the origin and for misses. */
  readonly delaysMs: (number | null)[];
}

/**
 * Start and end of a phase in seconds of CLOCK_MONOTONIC (/proc/uptime), the
 * clock of V8 CPU profiles: `scripts/bench/profile_summary.ts --phase` uses it.
 */
export interface PhaseClock {
  /** Just before the first ANNOUNCE. */
  readonly startS: number;
  /** After the drain. */
  readonly endS: number;
}

/** Result of the latency measurement. */
export interface LatencyResult {
  /** Items announced. */
  readonly items: number;
  /** Deliveries to modules other than the origin's. */
  readonly deliveries: number;
  /** deliveries / (items × (nodes − 1)). */
  readonly deliveryRatio: number;
  /** Items that reached every node. */
  readonly completeItems: number;
  /** Time from ANNOUNCE to 50 %, 90 % and 100 % of the other nodes. */
  readonly timeToMs: {
    readonly p50: Percentiles;
    readonly p90: Percentiles;
    readonly all: Percentiles;
  };
  /** Counters of the phase. */
  readonly counters: CounterDelta;
  /** Copies a module received twice (should be 0). */
  readonly moduleDuplicates: number;
  /** Phase length in ms (first ANNOUNCE to end of drain). */
  readonly durationMs: number;
  /** CPU used from just before the first ANNOUNCE to the end of the drain. */
  readonly cpu: CpuUsage;
  /** The phase on the profiles' clock. */
  readonly clock: PhaseClock;
  /** Per-item raw delays. */
  readonly raw: RawItem[];
}

/** Result of the throughput measurement. */
export interface ThroughputResult {
  /** The origin node. */
  readonly origin: number;
  /** Sending time in s. */
  readonly seconds: number;
  /** In-flight window. */
  readonly window: number;
  /** Items announced. */
  readonly sent: number;
  /** Items that reached every other node (including during the drain). */
  readonly completeItems: number;
  /** Items completed before sending stopped, per second of sending. */
  readonly itemsPerSecond: number;
  /** Deliveries to modules (including the drain's). */
  readonly deliveries: number;
  /** Deliveries to modules per second of sending (including the drain's). */
  readonly deliveriesPerSecond: number;
  /** deliveries / (sent × (nodes − 1)). */
  readonly deliveryRatio: number;
  /** Items given up on by the window (incomplete after the stall limit). */
  readonly stalled: number;
  /** Time from ANNOUNCE to the last node, over complete items. */
  readonly timeToAllMs: Percentiles;
  /** Counters of the phase. */
  readonly counters: CounterDelta;
  /** CPU used from just before the first ANNOUNCE to the end of the drain. */
  readonly cpu: CpuUsage;
  /** The phase on the profiles' clock. */
  readonly clock: PhaseClock;
  /** Completion times in ms since the phase started, in order of completion. */
  readonly completionsMs: number[];
}

/** Result of the idle measurement: the overlay up, no items flowing. */
export interface IdleResult {
  /** CPU used over the idle window. */
  readonly cpu: CpuUsage;
  /** The window on the profiles' clock. */
  readonly clock: PhaseClock;
}

/**
 * Measures the nodes' background CPU rate over `seconds` of idleness (overlay
 * up, modules connected, no items): maintenance rounds, pings, timers.
 */
export async function measureIdle(context: MeasureContext, seconds: number): Promise<IdleResult> {
  const startS = await monotonicSeconds();
  const first = await sampleCpu(context.cluster);
  await context.deadline.sleep(seconds * 1000);
  const last = await sampleCpu(context.cluster);
  return { cpu: cpuBetween(first, last), clock: { startS, endS: await monotonicSeconds() } };
}

/** An item not complete after this long no longer holds a window slot. */
const STALL_MS = 3000;

/** Ms from ANNOUNCE to each arrival at nodes other than the origin, sorted; misses excluded. */
function delays(record: ItemRecord): number[] {
  const out: number[] = [];
  record.arrivals.forEach((at, node) => {
    if (node !== record.origin && !Number.isNaN(at)) out.push(at - record.sentAt);
  });
  return out.sort((a, b) => a - b);
}

/** Ms until `fraction` of the `nodes - 1` other nodes had the item; Infinity if never. */
export function timeToFraction(record: ItemRecord, nodes: number, fraction: number): number {
  const sorted = delays(record);
  const need = Math.max(1, Math.ceil(fraction * (nodes - 1) - 1e-9));
  return sorted.length >= need ? sorted[need - 1] : Infinity;
}

function percentiles(values: readonly number[]): Percentiles {
  const finite = values.filter(Number.isFinite);
  const orNull = (v: number) => Number.isFinite(v) ? v : null;
  return {
    p50: orNull(percentile(values, 50)),
    p99: orNull(percentile(values, 99)),
    max: orNull(percentile(values, 100)),
    items: finite.length,
  };
}

async function drain(
  context: MeasureContext,
  records: readonly ItemRecord[],
  what: string,
): Promise<void> {
  try {
    await context.deadline.waitFor(
      () => records.every((r) => !Number.isNaN(r.completedAt)),
      context.options.drainMs,
      what,
      10,
    );
  } catch (error) {
    if (!(error instanceof WaitTimeoutError)) throw error;
    const missing = records.filter((r) => Number.isNaN(r.completedAt)).length;
    context.progress(`  ${missing} item(s) still incomplete after ${context.options.drainMs} ms`);
  }
}

function deliveredCount(records: readonly ItemRecord[]): number {
  let total = 0;
  for (const r of records) total += r.delivered;
  return total;
}

/** Announces `count` items of `phase` from random origins, `intervalMs` apart. */
async function announceSpaced(
  context: MeasureContext,
  phase: Phase,
  count: number,
  intervalMs: number,
): Promise<{ records: ItemRecord[]; start: number }> {
  const { clients, tracker, options, deadline } = context;
  const start = performance.now() + 20;
  const records: ItemRecord[] = [];
  for (let seq = 0; seq < count; seq++) {
    const wait = start + seq * intervalMs - performance.now();
    await deadline.sleep(Math.max(0, wait));
    const origin = Math.floor(context.random() * clients.length);
    const payload = encodePayload(tracker.tag, phase, seq, options.size);
    const record = tracker.add(phase, seq, origin);
    record.sentAt = clients[origin].announce(payload);
    records.push(record);
    if ((seq + 1) % 50 === 0) context.progress(`  ${seq + 1}/${count} items announced`);
  }
  return { records, start };
}

/**
 * Warms the nodes up (JIT, lazily loaded modules, first-use allocations):
 * `options.warmup` unmeasured items 50 ms apart, their delivery, then a short pause.
 * Returns the number of warm-up items that reached every node.
 */
export async function warmUp(context: MeasureContext): Promise<number> {
  if (context.options.warmup === 0) return 0;
  const { records } = await announceSpaced(context, Phase.Warmup, context.options.warmup, 50);
  await drain(context, records, "warm-up items to reach every node");
  await context.deadline.sleep(500);
  return records.filter((r) => !Number.isNaN(r.completedAt)).length;
}

/** Announces `options.items` items from random origins, `intervalMs` apart. */
export async function measureLatency(context: MeasureContext): Promise<LatencyResult> {
  const { cluster, tracker, options } = context;
  const n = cluster.nodes.length;
  const before: NodeStats[] = await cluster.stats();
  const moduleDuplicatesBefore = tracker.moduleDuplicates;
  const startS = await monotonicSeconds();
  const cpuBefore = await sampleCpu(cluster);
  const { records, start } = await announceSpaced(
    context,
    Phase.Latency,
    options.items,
    options.intervalMs,
  );
  await drain(context, records, "latency items to reach every node");
  const durationMs = performance.now() - start;
  const cpu = cpuBetween(cpuBefore, await sampleCpu(cluster));
  const clock = { startS, endS: await monotonicSeconds() };
  const after: NodeStats[] = await cluster.stats();
  const times = (fraction: number) => records.map((r) => timeToFraction(r, n, fraction));
  const deliveries = deliveredCount(records);
  return {
    items: records.length,
    deliveries,
    deliveryRatio: deliveries / (records.length * (n - 1)),
    completeItems: records.filter((r) => r.delivered === n - 1).length,
    timeToMs: {
      p50: percentiles(times(0.5)),
      p90: percentiles(times(0.9)),
      all: percentiles(times(1)),
    },
    counters: counterDelta(before, after),
    moduleDuplicates: tracker.moduleDuplicates - moduleDuplicatesBefore,
    durationMs,
    cpu,
    clock,
    raw: records.map((r) => ({
      seq: r.seq,
      origin: r.origin,
      sentMs: round(r.sentAt - start),
      delaysMs: Array.from(
        r.arrivals,
        (at, node) => node === r.origin || Number.isNaN(at) ? null : round(at - r.sentAt),
      ),
    })),
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/**
 * Announces from one origin for `throughputSeconds`, keeping at most `window`
 * items in flight (sent and not yet at every node).
 */
export async function measureThroughput(context: MeasureContext): Promise<ThroughputResult> {
  const { cluster, clients, tracker, options, deadline } = context;
  const n = cluster.nodes.length;
  const origin = Math.floor(context.random() * n);
  const before: NodeStats[] = await cluster.stats();
  const inFlight = new Set<ItemRecord>();
  const records: ItemRecord[] = [];
  let wake: (() => void) | undefined;
  tracker.onComplete = (record) => {
    if (inFlight.delete(record)) wake?.();
  };
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  let stalled = 0;
  const startS = await monotonicSeconds();
  const cpuBefore = await sampleCpu(cluster);
  const start = performance.now();
  const end = start + options.throughputSeconds * 1000;
  try {
    // Each round sends at least one item or waits >= 0 ms for a completion;
    // the round cap only guards against a runaway loop.
    for (let round = 0; round < 10_000_000 && performance.now() < end; round++) {
      deadline.check();
      const now = performance.now();
      for (const record of inFlight) {
        if (now - record.sentAt < STALL_MS) break; // insertion order = send order
        inFlight.delete(record);
        stalled++;
      }
      while (inFlight.size < options.window && performance.now() < end) {
        const seq = records.length;
        const record = tracker.add(Phase.Throughput, seq, origin);
        record.sentAt = clients[origin].announce(
          encodePayload(tracker.tag, Phase.Throughput, seq, options.size),
        );
        records.push(record);
        inFlight.add(record);
      }
      await pause(Math.max(0, Math.min(20, end - performance.now())));
    }
  } finally {
    tracker.onComplete = undefined;
    wake = undefined;
  }
  const sendingMs = performance.now() - start;
  await drain(context, records, "throughput items to reach every node");
  const cpu = cpuBetween(cpuBefore, await sampleCpu(cluster));
  const clock = { startS, endS: await monotonicSeconds() };
  const after: NodeStats[] = await cluster.stats();
  const complete = records.filter((r) => !Number.isNaN(r.completedAt));
  const completions = complete.map((r) => r.completedAt - start).sort((a, b) => a - b);
  const deliveries = deliveredCount(records);
  return {
    origin,
    seconds: sendingMs / 1000,
    window: options.window,
    sent: records.length,
    completeItems: complete.length,
    itemsPerSecond: completions.filter((t) => t <= sendingMs).length / (sendingMs / 1000),
    deliveries,
    deliveriesPerSecond: deliveries / (sendingMs / 1000),
    deliveryRatio: records.length > 0 ? deliveries / (records.length * (n - 1)) : NaN,
    stalled,
    timeToAllMs: percentiles(records.map((r) => timeToFraction(r, n, 1))),
    counters: counterDelta(before, after),
    cpu,
    clock,
    completionsMs: completions.map(round),
  };
}
