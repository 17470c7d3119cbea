/**
 * Output of the benchmark: the printed summary, the machine description and
 * the hand-written SVG chart of the fraction of nodes reached over time.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { NodeStats } from "../../lib/node.ts";
import type { CpuPerDelivery, CpuUsage } from "./cpu.ts";
import type { LatencyResult, Percentiles, RawItem, ThroughputResult } from "./measure.ts";
import type { BenchOptions } from "./options.ts";
import type { CounterDelta, OverlayShape } from "./stats.ts";
import { percentile, spread } from "./stats.ts";
import { type ProcessMemory, readProcFile } from "./proc.ts";

/** The machine a run happened on. */
export interface MachineInfo {
  /** CPU model from /proc/cpuinfo. */
  readonly cpu: string;
  /** Logical CPUs. */
  readonly cores: number;
  /** Total memory in bytes. */
  readonly memoryBytes: number;
  /** OS and kernel release. */
  readonly os: string;
  /** Deno version. */
  readonly deno: string;
  /** V8 version. */
  readonly v8: string;
  /** TypeScript version. */
  readonly typescript: string;
}

/**
 * Describes this machine. `deno task bench` has no `--allow-sys`, so when
 * `Deno.osRelease()` is refused the release comes from /proc, as do the CPU
 * model and the memory size.
 */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await readProcFile("/proc/cpuinfo");
  const cpu = (cpuinfo && /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim()) ?? "unknown";
  const meminfo = await readProcFile("/proc/meminfo");
  const memKiB = meminfo && /^MemTotal:\s+(\d+)\s+kB/m.exec(meminfo)?.[1];
  let release: string;
  try {
    release = Deno.osRelease();
  } catch {
    release = (await readProcFile("/proc/sys/kernel/osrelease"))?.trim() ?? "unknown";
  }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memoryBytes: memKiB ? Number(memKiB) * 1024 : NaN,
    os: `${Deno.build.os} ${release}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
  };
}

/** Minimum, median and maximum in MiB. */
export interface MiBSpread {
  /** Smallest. */
  readonly min: number;
  /** Median. */
  readonly median: number;
  /** Largest. */
  readonly max: number;
}

/** Memory of every node (or of the in-process bench) at one moment. */
export interface MemorySnapshot {
  /** Per node process (process mode) or the whole bench process (in-process mode), bytes. */
  readonly perNode: ProcessMemory[];
  /** VmRSS. */
  readonly rssMiB: MiBSpread;
  /** RssAnon: private memory, what each process really adds. */
  readonly anonMiB: MiBSpread;
  /** RssFile: file-backed pages (deno binary, libraries), shared between processes. */
  readonly fileMiB: MiBSpread;
  /** Pss: resident memory with each shared page split between the processes that map it. */
  readonly pssMiB: MiBSpread;
  /** V8 heap used, from the nodes' /status `memory` (null when the nodes do not report it). */
  readonly heapUsedMiB: MiBSpread | null;
  /** V8 heap reserved, from the nodes' /status `memory`. */
  readonly heapTotalMiB: MiBSpread | null;
  /** Memory outside the V8 heap held by JS objects (ArrayBuffers), from /status. */
  readonly externalMiB: MiBSpread | null;
}

function mib(values: readonly number[]): MiBSpread {
  const s = spread(values);
  return { min: s.min / 2 ** 20, median: s.median / 2 ** 20, max: s.max / 2 ** 20 };
}

/** Summarises per-process memory and, when the nodes report it, their V8 heap. */
export function memorySnapshot(
  perNode: ProcessMemory[],
  stats?: readonly NodeStats[],
): MemorySnapshot {
  const heaps = (stats ?? []).map((s) => (s as { memory?: Deno.MemoryUsage }).memory)
    .filter((m): m is Deno.MemoryUsage => typeof m === "object" && m !== null);
  const heap = (pick: (m: Deno.MemoryUsage) => number) =>
    heaps.length > 0 ? mib(heaps.map(pick)) : null;
  return {
    perNode,
    rssMiB: mib(perNode.map((m) => m.rss)),
    anonMiB: mib(perNode.map((m) => m.rssAnon)),
    fileMiB: mib(perNode.map((m) => m.rssFile)),
    pssMiB: mib(perNode.map((m) => m.pss)),
    heapUsedMiB: heap((m) => m.heapUsed),
    heapTotalMiB: heap((m) => m.heapTotal),
    externalMiB: heap((m) => m.external),
  };
}

/** Memory figures of a run. */
export interface MemoryReport {
  /** Overlay connected and modules attached, before any item. */
  readonly start: MemorySnapshot;
  /** After the warm-up and the idle window: the idle figure. */
  readonly idle?: MemorySnapshot;
  /** After the last phase. */
  readonly end: MemorySnapshot;
  /** VmRSS per node after the run, bytes (as `end`, kept for older readers). */
  readonly rssBytes: number[];
  /** VmRSS after the run, MiB. */
  readonly rssMiB: MiBSpread;
}

/** CPU figures of a run. */
export interface CpuReport {
  /** The idle window (background rate). */
  readonly idle?: CpuUsage;
  /** CPU per delivery of the latency phase. */
  readonly latency?: CpuPerDelivery;
  /** CPU per delivery of the throughput phase. */
  readonly throughput?: CpuPerDelivery;
}

/** Everything printed in the summary. */
export interface Summary {
  /** Run options. */
  readonly options: BenchOptions;
  /** Where it ran. */
  readonly machine: MachineInfo;
  /** Time until every node was up, in ms. */
  readonly startupMs: number;
  /** Further time until the overlay was connected, in ms. */
  readonly overlayWaitMs: number;
  /** The overlay when measuring began. */
  readonly overlay: OverlayShape;
  /** Latency measurement. */
  readonly latency?: LatencyResult;
  /** Throughput measurement. */
  readonly throughput?: ThroughputResult;
  /** Memory at the start, when idle and after the run. */
  readonly memory: MemoryReport;
  /** CPU per delivery. */
  readonly cpu: CpuReport;
  /** The code measured. */
  readonly source?: SourceInfo;
}

function ms(value: number | null): string {
  if (value === null) return "n/a";
  return value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`;
}

function row(label: string, ...cells: string[]): string {
  return `  ${label.padEnd(34)}${cells.map((c) => c.padStart(11)).join("")}`;
}

function percentileRow(label: string, p: Percentiles, items: number): string {
  const note = p.items < items ? `  (${items - p.items} item(s) never got there)` : "";
  return row(label, ms(p.p50), ms(p.p99), ms(p.max)) + note;
}

function verdict(ok: boolean): string {
  return ok ? "met" : "MISSED";
}

/** Renders the human-readable summary. */
export function formatSummary(summary: Summary): string {
  const { options: o, machine: m, overlay, latency, throughput, memory, cpu } = summary;
  const lines: string[] = [];
  lines.push(
    `gossip bench: ${o.inProcess ? "in-process" : "process"} mode, ${o.nodes} nodes, ` +
      `degree ${o.degree}, pow_difficulty ${o.powDifficulty}, ${o.keyBits}-bit keys, ` +
      `${o.size}-byte items, seed ${o.seed}`,
  );
  lines.push(
    `machine: ${m.cpu}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ` +
      `${m.os}, deno ${m.deno}`,
  );
  if (summary.source) {
    const { commit, dirty, sourceHash } = summary.source;
    lines.push(
      `code: ${commit ? `commit ${commit.slice(0, 10)}` : "no git"}` +
        (dirty && dirty.length > 0 ? ` + ${dirty.length} uncommitted file(s)` : "") +
        `, lib+main.ts sha256 ${sourceHash.slice(0, 12)}`,
    );
  }
  lines.push(
    `overlay: nodes up in ${(summary.startupMs / 1000).toFixed(1)} s, connected after ` +
      `${(summary.overlayWaitMs / 1000).toFixed(1)} s more; peers per node ` +
      `${overlay.peers.min}/${overlay.peers.median}/${overlay.peers.max} (min/median/max), ` +
      `outbound ${overlay.outbound.min}/${overlay.outbound.median}/${overlay.outbound.max}`,
  );
  if (latency) {
    const c = latency.counters;
    lines.push("");
    lines.push(
      `Latency: ${latency.items} items from random origins, ${o.intervalMs} ms apart ` +
        `(time from ANNOUNCE write to NOTIFICATION read)`,
    );
    lines.push(row("", "p50", "p99", "max"));
    lines.push(percentileRow("time to 50% of other nodes", latency.timeToMs.p50, latency.items));
    lines.push(percentileRow("time to 90% of other nodes", latency.timeToMs.p90, latency.items));
    lines.push(percentileRow("time to 100% of other nodes", latency.timeToMs.all, latency.items));
    lines.push(
      row(
        "delivery ratio",
        `${latency.deliveryRatio.toFixed(4)} (${latency.deliveries}/` +
          `${latency.items * (o.nodes - 1)})`,
      ),
    );
    lines.push(row("items reaching every node", `${latency.completeItems}/${latency.items}`));
    lines.push(
      row(
        "duplicates per delivery (RMR)",
        `${c.duplicatesPerDelivery.toFixed(3)} (${c.duplicates}/${c.received})`,
      ),
    );
    lines.push(row("largest hop count", String(c.maxHops)));
    lines.push(row("items pulled by IWANT", `${c.pulled} (${c.wantsSent} IWANTs)`));
    lines.push(...formatWakeups(c, latency.deliveries));
    if (c.notPropagated + c.notificationsDropped + c.announceDropped > 0) {
      lines.push(
        row(
          "not propagated / dropped",
          `${c.notPropagated} / ${c.notificationsDropped} notif / ${c.announceDropped} ann`,
        ),
      );
    }
    if (latency.moduleDuplicates > 0) {
      lines.push(row("copies a module got twice", String(latency.moduleDuplicates)));
    }
    const p99All = latency.timeToMs.all.p99;
    lines.push(
      `  targets: 100% delivery ${verdict(latency.deliveryRatio === 1)}; p99 time to all < 30 ms ` +
        `${verdict(p99All !== null && p99All < 30)}; duplicates per delivery < 2 ` +
        `${verdict(c.duplicatesPerDelivery < 2)}`,
    );
  }
  if (throughput) {
    const t = throughput;
    lines.push("");
    lines.push(
      `Throughput: one origin (node ${t.origin}), ${t.seconds.toFixed(1)} s, at most ` +
        `${t.window} items in flight`,
    );
    lines.push(row("items fully delivered per second", t.itemsPerSecond.toFixed(1)));
    lines.push(row("module deliveries per second", t.deliveriesPerSecond.toFixed(0)));
    lines.push(
      row(
        "delivery ratio",
        `${t.deliveryRatio.toFixed(4)} (${t.completeItems}/${t.sent} items complete)`,
      ),
    );
    lines.push(row("", "p50", "p99", "max"));
    lines.push(percentileRow("time to 100% of other nodes", t.timeToAllMs, t.sent));
    lines.push(
      row(
        "duplicates per delivery (RMR)",
        `${t.counters.duplicatesPerDelivery.toFixed(3)}; ${t.counters.pulled} pulled, ` +
          `${t.stalled} stalled`,
      ),
    );
  }
  lines.push("");
  lines.push(...formatCpu(o, cpu, latency, throughput));
  lines.push("");
  lines.push(...formatMemory(o, memory));
  return lines.join("\n");
}

/**
 * Per delivery: peer socket reads (wake-ups for peer input), writes and
 * messages received by type, the figures that explain CPU per delivery.
 */
function formatWakeups(c: CounterDelta, deliveries: number): string[] {
  if (deliveries === 0) return [];
  const per = (count: number) => (count / deliveries).toFixed(2);
  const messages = Object.entries(c.messages)
    .sort((a, b) => b[1] - a[1])
    .map(([name, count]) => `${name} ${per(count)}`)
    .join(", ");
  return [
    row("peer reads / writes per delivery", `${per(c.peerReads)} / ${per(c.peerWrites)}`),
    row("peer messages per delivery", messages || "none"),
  ];
}

function us(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(0)} us` : "n/a";
}

function cores(value: number | null): string {
  return value === null || !Number.isFinite(value) ? "n/a" : value.toFixed(2);
}

function formatCpu(
  o: BenchOptions,
  cpu: CpuReport,
  latency: LatencyResult | undefined,
  throughput: ThroughputResult | undefined,
): string[] {
  const lines: string[] = [];
  const whose = o.inProcess
    ? "the whole bench process (nodes and modules)"
    : `the ${o.nodes} node processes (user + system; modules not included)`;
  lines.push(`CPU of ${whose}:`);
  if (cpu.idle) {
    const i = cpu.idle;
    lines.push(
      row(
        "idle background",
        `${cores(i.nodesCores)} cores over ${i.wallS.toFixed(1)} s = ` +
          `${(i.perNodeCores * 100).toFixed(2)} % of a core per node` +
          (i.otherCores !== null ? `; other programs ${cores(i.otherCores)} cores` : ""),
      ),
    );
  } else {
    lines.push(row("idle background", "not measured (--idle-seconds 0): nothing subtracted"));
  }
  lines.push(row("", "net", "raw", "modules", "busy", "other"));
  const phaseRow = (label: string, per: CpuPerDelivery, usage: CpuUsage) =>
    row(
      label,
      us(per.netUs),
      us(per.rawUs),
      o.inProcess ? "-" : us(per.benchUs),
      cores(usage.nodesCores),
      cores(usage.otherCores),
    ) + (usage.missingNodes > 0 ? `  (${usage.missingNodes} node(s) gone: undercounted)` : "");
  if (latency && cpu.latency) {
    lines.push(phaseRow("per delivery, latency phase", cpu.latency, latency.cpu));
  }
  if (throughput && cpu.throughput) {
    lines.push(phaseRow("per delivery, throughput phase", cpu.throughput, throughput.cpu));
  }
  lines.push(
    "  (net = raw less the idle background over the phase; busy = nodes' cores during the " +
      "phase; other = cores used by other programs on the machine meanwhile)",
  );
  if (cpu.latency) {
    lines.push(
      `  target: CPU per delivery in the latency phase <= 450 us ` +
        `${verdict(cpu.latency.netUs <= 450)}`,
    );
  }
  return lines;
}

function spreadText(s: MiBSpread): string {
  return `${s.min.toFixed(1)} / ${s.median.toFixed(1)} / ${s.max.toFixed(1)}`;
}

function formatMemory(o: BenchOptions, memory: MemoryReport): string[] {
  const lines: string[] = [];
  const snapshots: [string, MemorySnapshot | undefined][] = [
    ["start (overlay up, no items yet)", memory.start],
    ["idle (after warm-up and idle wait)", memory.idle],
    ["end (after the last phase)", memory.end],
  ];
  if (o.inProcess) {
    lines.push("Memory of the whole bench process (all nodes and modules), MiB:");
    lines.push(row("", "RSS", "anon", "file", "heap used"));
    for (const [label, snap] of snapshots) {
      if (!snap) continue;
      lines.push(
        row(
          label,
          snap.rssMiB.max.toFixed(1),
          snap.anonMiB.max.toFixed(1),
          snap.fileMiB.max.toFixed(1),
          snap.heapUsedMiB ? snap.heapUsedMiB.max.toFixed(1) : "n/a",
        ),
      );
    }
    return lines;
  }
  lines.push("Memory per node process, MiB, min / median / max:");
  for (const [label, snap] of snapshots) {
    if (!snap) continue;
    lines.push(
      `  ${label.padEnd(36)}RSS ${spreadText(snap.rssMiB)}; anon ${spreadText(snap.anonMiB)}; ` +
        `file ${spreadText(snap.fileMiB)}; PSS ${spreadText(snap.pssMiB)}` +
        (snap.heapUsedMiB ? `; V8 heap used ${spreadText(snap.heapUsedMiB)}` : ""),
    );
  }
  const total = (pick: (m: ProcessMemory) => number) =>
    memory.end.perNode.reduce((a, m) => a + (Number.isFinite(pick(m)) ? pick(m) : 0), 0) /
    2 ** 20;
  lines.push(
    `  total after the run: RSS ${total((m) => m.rss).toFixed(0)} MiB, PSS ` +
      `${total((m) => m.pss).toFixed(0)} MiB (anon is private to a process; file pages of ` +
      `the deno binary are shared between them, and PSS splits them)`,
  );
  const idle = memory.idle ?? memory.start;
  lines.push(
    `  target: idle RSS <= 50 MiB per node (median ${idle.rssMiB.median.toFixed(1)}, max ` +
      `${idle.rssMiB.max.toFixed(1)}) ${verdict(idle.rssMiB.max <= 50)}; idle PSS per node ` +
      `median ${idle.pssMiB.median.toFixed(1)}, max ${idle.pssMiB.max.toFixed(1)}`,
  );
  return lines;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceStep(range: number, targetTicks: number): number {
  const raw = range / targetTicks;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const factor of [1, 2, 5, 10]) if (factor * power >= raw) return factor * power;
  return 10 * power;
}

/**
 * Renders an SVG chart of the fraction of other nodes reached against the
 * time since ANNOUNCE: every item as a thin step line, the 1st–99th
 * percentile band over items, and the median curve.
 */
export function reachChartSvg(raw: readonly RawItem[], title: string): string {
  const width = 860;
  const height = 500;
  const margin = { left: 70, right: 30, top: 64, bottom: 60 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const perItem = raw.map((item) =>
    item.delaysMs.filter((d): d is number => d !== null).sort((a, b) => a - b)
  );
  const others = raw.length > 0 ? raw[0].delaysMs.length - 1 : 1;
  const allDelays = perItem.flat();
  const tMax = Math.max(1, allDelays.length > 0 ? percentile(allDelays, 100) * 1.05 : 1);
  const x = (t: number) => margin.left + (Math.min(t, tMax) / tMax) * plotW;
  const y = (f: number) => margin.top + (1 - f) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  );
  // Grid and axes.
  const step = niceStep(tMax, 8);
  for (let t = 0, i = 0; t <= tMax && i < 100; t += step, i++) {
    parts.push(
      `<line x1="${x(t)}" y1="${margin.top}" x2="${x(t)}" y2="${margin.top + plotH}" ` +
        `stroke="#e5e5e5"/>`,
      `<text x="${x(t)}" y="${margin.top + plotH + 18}" text-anchor="middle">` +
        `${Number(t.toPrecision(6))}</text>`,
    );
  }
  for (const f of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    parts.push(
      `<line x1="${margin.left}" y1="${y(f)}" x2="${margin.left + plotW}" y2="${y(f)}" ` +
        `stroke="${f === 0.5 || f === 0.9 ? "#cccccc" : "#e5e5e5"}"/>`,
      `<text x="${margin.left - 8}" y="${y(f) + 4}" text-anchor="end">${f * 100}%</text>`,
    );
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" ` +
      `fill="none" stroke="#333"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 18}" text-anchor="middle">` +
      `time since ANNOUNCE (ms)</text>`,
    `<text x="18" y="${margin.top + plotH / 2}" text-anchor="middle" ` +
      `transform="rotate(-90 18 ${margin.top + plotH / 2})">fraction of other nodes reached</text>`,
  );
  // Every item as a thin step line.
  if (raw.length <= 2000) {
    for (const sorted of perItem) {
      let d = `M${x(0).toFixed(1)},${y(0).toFixed(1)}`;
      sorted.forEach((t, i) => {
        d += `H${x(t).toFixed(1)}V${y((i + 1) / others).toFixed(1)}`;
      });
      d += `H${x(tMax).toFixed(1)}`;
      parts.push(`<path d="${d}" fill="none" stroke="#4a90d9" stroke-opacity="0.18"/>`);
    }
  }
  // Percentile band and median on a time grid.
  const points = 300;
  const fractionAt = (sorted: number[], t: number) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo / others;
  };
  const low: string[] = [];
  const high: string[] = [];
  const mid: string[] = [];
  for (let i = 0; i <= points && perItem.length > 0; i++) {
    const t = (i / points) * tMax;
    const fractions = perItem.map((sorted) => fractionAt(sorted, t));
    const px = x(t).toFixed(1);
    low.push(`${px},${y(percentile(fractions, 1)).toFixed(1)}`);
    high.push(`${px},${y(percentile(fractions, 99)).toFixed(1)}`);
    mid.push(`${px},${y(percentile(fractions, 50)).toFixed(1)}`);
  }
  if (mid.length > 0) {
    parts.push(
      `<polygon points="${[...high, ...low.reverse()].join(" ")}" fill="#f5a623" ` +
        `fill-opacity="0.25" stroke="none"/>`,
      `<polyline points="${mid.join(" ")}" fill="none" stroke="#d0021b" stroke-width="2.5"/>`,
    );
  }
  // Legend: one row between the title and the plot, clear of the curves.
  const ly = 44;
  const lx = margin.left;
  parts.push(
    `<line x1="${lx}" y1="${ly}" x2="${lx + 30}" y2="${ly}" stroke="#d0021b" stroke-width="2.5"/>`,
    `<text x="${lx + 38}" y="${ly + 4}">median over items</text>`,
    `<rect x="${lx + 190}" y="${ly - 5}" width="30" height="10" fill="#f5a623" ` +
      `fill-opacity="0.35"/>`,
    `<text x="${lx + 228}" y="${ly + 4}">1st–99th percentile over items</text>`,
    `<line x1="${lx + 450}" y1="${ly}" x2="${lx + 480}" y2="${ly}" stroke="#4a90d9" ` +
      `stroke-opacity="0.6"/>`,
    `<text x="${lx + 488}" y="${ly + 4}">each item (${raw.length})</text>`,
  );
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** Which code a run measured. */
export interface SourceInfo {
  /** `git rev-parse HEAD`, when the directory is a git work tree. */
  readonly commit?: string;
  /** Uncommitted changes under lib/ and main.ts (`git status --porcelain`). */
  readonly dirty?: string[];
  /** SHA-256 over the paths and contents of main.ts and lib/**.ts, read at start-up. */
  readonly sourceHash: string;
}

async function gitOutput(dir: string, args: string[]): Promise<string | undefined> {
  try {
    const result = await new Deno.Command("git", {
      args: ["-C", dir, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return result.success ? new TextDecoder().decode(result.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

async function listSources(dir: string, relative: string, out: string[]): Promise<void> {
  for await (const entry of Deno.readDir(`${dir}/${relative}`)) {
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory) await listSources(dir, path, out);
    else if (entry.isFile && entry.name.endsWith(".ts")) out.push(path);
  }
}

/**
 * Identifies the daemon code in `repoDir`: commit, uncommitted changes and a
 * content hash, so that results of a tree edited during a run can be told apart.
 */
export async function sourceInfo(repoDir: string): Promise<SourceInfo> {
  const paths = ["main.ts"];
  await listSources(repoDir, "lib", paths);
  paths.sort();
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const path of paths) {
    parts.push(encoder.encode(`${path}\0`), await Deno.readFile(`${repoDir}/${path}`));
  }
  const all = Buffer.concat(parts);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  const sourceHash = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const commit = await gitOutput(repoDir, ["rev-parse", "HEAD"]);
  const status = await gitOutput(repoDir, ["status", "--porcelain", "--", "lib", "main.ts"]);
  return {
    commit,
    dirty: status === undefined ? undefined : status.split("\n").filter((l) => l !== ""),
    sourceHash,
  };
}
