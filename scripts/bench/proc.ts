/**
 * Reading Linux /proc files. Deno treats /proc paths as privileged (reading
 * them asks for `--allow-all`), and `deno task bench` grants only net, read,
 * write, env and run, so files are read through `cat` and `grep` subprocesses
 * when a direct read is refused.
 *
 * @module
 */

async function output(command: string, args: string[]): Promise<string | undefined> {
  try {
    const result = await new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    // grep exits 1 when nothing matched, 2 when a file was missing; keep what it printed.
    return new TextDecoder().decode(result.stdout);
  } catch {
    return undefined;
  }
}

/** The text of /proc file `path`, or undefined when it cannot be read. */
export async function readProcFile(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    const text = await output("cat", [path]);
    return text === "" ? undefined : text;
  }
}

/** Memory of one process from /proc/<pid>/status, in bytes (NaN when it is gone). */
export interface ProcessMemory {
  /** VmRSS: resident set size (anonymous + file-backed + shared memory). */
  readonly rss: number;
  /** RssAnon: private anonymous memory (heaps, stacks): what the process really adds. */
  readonly rssAnon: number;
  /** RssFile: resident file-backed pages (the deno binary, libraries); shared across processes. */
  readonly rssFile: number;
  /** VmHWM: peak resident set size. */
  readonly peakRss: number;
  /**
   * Pss (/proc/<pid>/smaps_rollup): resident pages, each shared page divided
   * by the number of processes mapping it. The sum over processes is the real
   * memory they use together; NaN when the file cannot be read.
   */
  readonly pss: number;
}

const GONE: ProcessMemory = { rss: NaN, rssAnon: NaN, rssFile: NaN, peakRss: NaN, pss: NaN };

/**
 * Parses the `grep -H` output of /proc/<pid>/status and /proc/<pid>/smaps_rollup
 * files into memory figures by pid.
 */
export function parseStatusMemory(text: string): Map<number, ProcessMemory> {
  const fields = new Map<number, Record<string, number>>();
  const line = /^\/proc\/(\d+)\/(?:status|smaps_rollup):(\w+):\s+(\d+)\s+kB$/gm;
  for (const match of text.matchAll(line)) {
    const pid = Number(match[1]);
    let entry = fields.get(pid);
    if (!entry) fields.set(pid, entry = {});
    entry[match[2]] = Number(match[3]) * 1024;
  }
  const out = new Map<number, ProcessMemory>();
  for (const [pid, f] of fields) {
    out.set(pid, {
      rss: f.VmRSS ?? NaN,
      rssAnon: f.RssAnon ?? NaN,
      rssFile: f.RssFile ?? NaN,
      peakRss: f.VmHWM ?? NaN,
      pss: f.Pss ?? NaN,
    });
  }
  return out;
}

/** Memory figures of each of `pids` (NaN for processes that are gone). */
export async function memoryOfPids(pids: readonly number[]): Promise<ProcessMemory[]> {
  if (pids.length === 0) return [];
  const text = await output("grep", [
    "-H",
    "-E",
    "^(VmRSS|RssAnon|RssFile|VmHWM|Pss):",
    ...pids.flatMap((pid) => [`/proc/${pid}/status`, `/proc/${pid}/smaps_rollup`]),
  ]) ?? "";
  const byPid = parseStatusMemory(text);
  return pids.map((pid) => byPid.get(pid) ?? GONE);
}

/** VmRSS in bytes of each of `pids` (NaN for processes that are gone), from /proc/<pid>/status. */
export async function rssOfPids(pids: readonly number[]): Promise<number[]> {
  return (await memoryOfPids(pids)).map((m) => m.rss);
}

let clockTicks: number | undefined;

/** Clock ticks per second of /proc CPU times (`getconf CLK_TCK`, 100 on Linux). */
export async function clockTicksPerSecond(): Promise<number> {
  if (clockTicks === undefined) {
    const text = (await output("getconf", ["CLK_TCK"]))?.trim();
    const value = Number(text);
    clockTicks = Number.isInteger(value) && value > 0 ? value : 100;
  }
  return clockTicks;
}

/**
 * Parses one /proc/<pid>/stat line into user and system CPU ticks of the whole
 * process (all its threads, live and exited). The command name (field 2) may
 * contain spaces and parentheses, so fields are counted after its last ")".
 */
export function parseStatTicks(line: string): { user: number; system: number } | undefined {
  const close = line.lastIndexOf(")");
  if (close < 0) return undefined;
  const rest = line.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const user = Number(rest[11]);
  const system = Number(rest[12]);
  return Number.isFinite(user) && Number.isFinite(system) ? { user, system } : undefined;
}

/** CPU time of one process in seconds (NaN when it is gone). */
export interface ProcessCpu {
  /** User-mode CPU seconds since the process started. */
  readonly user: number;
  /** Kernel-mode CPU seconds since the process started. */
  readonly system: number;
}

/** User and system CPU seconds of each of `pids` so far (NaN for processes that are gone). */
export async function cpuOfPids(pids: readonly number[]): Promise<ProcessCpu[]> {
  if (pids.length === 0) return [];
  const hz = await clockTicksPerSecond();
  const text = await output("grep", ["-H", "", ...pids.map((pid) => `/proc/${pid}/stat`)]) ?? "";
  const byPid = new Map<number, ProcessCpu>();
  for (const match of text.matchAll(/^\/proc\/(\d+)\/stat:(.*)$/gm)) {
    const ticks = parseStatTicks(match[2]);
    if (ticks) byPid.set(Number(match[1]), { user: ticks.user / hz, system: ticks.system / hz });
  }
  return pids.map((pid) => byPid.get(pid) ?? { user: NaN, system: NaN });
}

/** Whole-machine CPU time from the first line of /proc/stat, in seconds summed over cores. */
export interface MachineCpu {
  /** Busy time: everything but idle and iowait. */
  readonly busy: number;
  /** All time (busy + idle + iowait). */
  readonly total: number;
}

/** Parses the aggregate `cpu` line of /proc/stat. */
export function parseMachineCpu(text: string, hz: number): MachineCpu | undefined {
  const line = /^cpu\s+(.*)$/m.exec(text)?.[1];
  if (!line) return undefined;
  // user nice system idle iowait irq softirq steal (guest times are inside user/nice).
  const v = line.trim().split(/\s+/).slice(0, 8).map(Number);
  if (v.length < 5 || v.some((x) => !Number.isFinite(x))) return undefined;
  const idle = v[3] + v[4];
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / hz, total: total / hz };
}

/** CPU time of the whole machine so far, or undefined when /proc/stat is unreadable. */
export async function machineCpu(): Promise<MachineCpu | undefined> {
  const text = await readProcFile("/proc/stat");
  return text === undefined ? undefined : parseMachineCpu(text, await clockTicksPerSecond());
}

/**
 * Seconds since boot from /proc/uptime (10 ms resolution). On a machine that
 * never suspended this is CLOCK_MONOTONIC, the clock of the `startTime` and
 * `endTime` of V8 CPU profiles (in µs there), so phase windows recorded with it
 * select the matching samples of `--cpu-prof` profiles.
 */
export async function monotonicSeconds(): Promise<number> {
  const text = await readProcFile("/proc/uptime");
  const value = Number(text?.trim().split(/\s+/)[0]);
  return Number.isFinite(value) ? value : NaN;
}

/**
 * Time on a CPU (user + system) of every live thread of each of `pids`, in
 * seconds with nanosecond resolution, from /proc/<pid>/task/<tid>/schedstat.
 * Threads that already exited are not counted (their time is in
 * /proc/<pid>/stat, at 10 ms resolution): use it for short, fine measurements.
 */
export async function threadCpuOfPids(pids: readonly number[]): Promise<number[]> {
  if (pids.length === 0) return [];
  const text = await output("sh", [
    "-c",
    pids.map((pid) => `for f in /proc/${pid}/task/*/schedstat; do echo "${pid} $(cat $f)"; done`)
      .join("; ") + " 2>/dev/null",
  ]) ?? "";
  const byPid = new Map<number, number>();
  for (const match of text.matchAll(/^(\d+) (\d+) /gm)) {
    const pid = Number(match[1]);
    byPid.set(pid, (byPid.get(pid) ?? 0) + Number(match[2]) / 1e9);
  }
  return pids.map((pid) => byPid.get(pid) ?? NaN);
}

/** Private memory of a process by kind of mapping, from /proc/<pid>/smaps, in bytes. */
export interface MemoryMaps {
  /** Anonymous pages of the `[heap]` mapping: glibc malloc's main arena (brk). */
  readonly mallocHeap: number;
  /** Anonymous pages of unnamed mappings: V8 heap pages, other malloc arenas, large mallocs. */
  readonly anonMappings: number;
  /** Anonymous pages of thread stacks. */
  readonly stacks: number;
  /** Anonymous pages (copy-on-write) of file mappings, e.g. the binary's data. */
  readonly fileAnon: number;
  /** Number of unnamed anonymous mappings. */
  readonly anonMappingCount: number;
}

/** Sums the `Anonymous:` lines of smaps text by kind of mapping. */
export function parseSmaps(text: string): MemoryMaps {
  let mallocHeap = 0;
  let anonMappings = 0;
  let stacks = 0;
  let fileAnon = 0;
  let count = 0;
  let name = "";
  for (const line of text.split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/.exec(line);
    if (header) {
      name = header[1].trim();
      if (name === "") count++;
      continue;
    }
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (!anon) continue;
    const bytes = Number(anon[1]) * 1024;
    if (name === "[heap]") mallocHeap += bytes;
    else if (name === "") anonMappings += bytes;
    else if (name.startsWith("[stack")) stacks += bytes;
    else fileAnon += bytes;
  }
  return { mallocHeap, anonMappings, stacks, fileAnon, anonMappingCount: count };
}

/** Private memory of `pid` by kind of mapping, or undefined when it is gone. */
export async function memoryMapsOf(pid: number): Promise<MemoryMaps | undefined> {
  const text = await readProcFile(`/proc/${pid}/smaps`);
  return text === undefined ? undefined : parseSmaps(text);
}
