/**
 * CPU accounting of a benchmark phase: the node processes' user and system
 * CPU (from /proc/<pid>/stat), the bench process's own (its modules), and the
 * whole machine's (/proc/stat), so that load from other programs is visible.
 *
 * CPU per delivery = (nodes' CPU during the phase − idle background rate ×
 * phase length) / deliveries, where the background rate is measured over an
 * idle window with the overlay up and no items flowing.
 *
 * @module
 */

import process from "node:process";
import type { Cluster } from "./cluster.ts";
import { type MachineCpu, machineCpu, type ProcessCpu } from "./proc.ts";

/** One reading of every CPU counter the bench uses. */
export interface CpuSample {
  /** performance.now() of the reading, ms. */
  readonly at: number;
  /** Nodes measured (in-process mode: all in the one process of `nodes`). */
  readonly nodeCount: number;
  /** Per node process (process mode), or this process (in-process mode). */
  readonly nodes: readonly ProcessCpu[];
  /** This process (the modules and the bench) in process mode; zero in-process. */
  readonly bench: ProcessCpu;
  /** The whole machine, when /proc/stat is readable. */
  readonly machine?: MachineCpu;
}

/** CPU used between two samples, in seconds (cores = seconds per second of wall time). */
export interface CpuUsage {
  /** Wall time between the samples. */
  readonly wallS: number;
  /** Nodes' user CPU. */
  readonly nodesUserS: number;
  /** Nodes' system CPU. */
  readonly nodesSystemS: number;
  /** Nodes' user + system CPU. */
  readonly nodesS: number;
  /** Nodes' CPU per second of wall time. */
  readonly nodesCores: number;
  /** Nodes' CPU per node per second of wall time. */
  readonly perNodeCores: number;
  /** The bench process's CPU (process mode: its modules; in-process mode: 0, counted in nodes). */
  readonly benchS: number;
  /** Busy CPU of the whole machine, if known. */
  readonly machineS: number | null;
  /** Machine busy CPU not used by the nodes or the bench (other programs), in cores. */
  readonly otherCores: number | null;
  /** Node processes that were gone at either sample (their CPU is missing from the sums). */
  readonly missingNodes: number;
}

/** CPU per delivery of a phase, in microseconds. */
export interface CpuPerDelivery {
  /** Deliveries to modules during the phase. */
  readonly deliveries: number;
  /** Nodes' CPU per delivery, background not subtracted. */
  readonly rawUs: number;
  /** Idle background rate (nodes' cores) used for the subtraction. */
  readonly idleCores: number;
  /** Nodes' CPU per delivery, less the idle background over the phase: the headline figure. */
  readonly netUs: number;
  /** The bench process's CPU (the modules) per delivery (process mode only; else 0). */
  readonly benchUs: number;
}

/** Reads every counter once. */
export async function sampleCpu(cluster: Cluster): Promise<CpuSample> {
  const [nodes, machine] = await Promise.all([cluster.cpu(), machineCpu()]);
  let bench: ProcessCpu = { user: 0, system: 0 };
  if (cluster.mode === "process") {
    const usage = process.cpuUsage();
    bench = { user: usage.user / 1e6, system: usage.system / 1e6 };
  }
  return { at: performance.now(), nodeCount: cluster.nodes.length, nodes, bench, machine };
}

/** CPU used from `a` to `b` (same nodes in the same order). */
export function cpuBetween(a: CpuSample, b: CpuSample): CpuUsage {
  const wallS = (b.at - a.at) / 1000;
  let user = 0;
  let system = 0;
  let missing = 0;
  for (let i = 0; i < a.nodes.length; i++) {
    const du = b.nodes[i].user - a.nodes[i].user;
    const ds = b.nodes[i].system - a.nodes[i].system;
    if (!Number.isFinite(du) || !Number.isFinite(ds)) {
      missing++;
      continue;
    }
    user += du;
    system += ds;
  }
  const nodesS = user + system;
  const benchS = b.bench.user + b.bench.system - a.bench.user - a.bench.system;
  const machineS = a.machine && b.machine ? b.machine.busy - a.machine.busy : null;
  return {
    wallS,
    nodesUserS: user,
    nodesSystemS: system,
    nodesS,
    nodesCores: wallS > 0 ? nodesS / wallS : NaN,
    perNodeCores: wallS > 0 && a.nodeCount > 0 ? nodesS / wallS / a.nodeCount : NaN,
    benchS,
    machineS,
    otherCores: machineS === null || wallS <= 0
      ? null
      : Math.max(0, machineS - nodesS - benchS) / wallS,
    missingNodes: missing,
  };
}

/** CPU per delivery of a phase, less the background rate `idleCores` of the idle window. */
export function cpuPerDelivery(
  phase: CpuUsage,
  deliveries: number,
  idleCores: number,
): CpuPerDelivery {
  const per = (seconds: number) => deliveries > 0 ? (seconds * 1e6) / deliveries : NaN;
  return {
    deliveries,
    rawUs: per(phase.nodesS),
    idleCores,
    netUs: per(Math.max(0, phase.nodesS - idleCores * phase.wallS)),
    benchUs: per(phase.benchS),
  };
}
