/**
 * Optional diagnostics attached to node processes during the latency phase:
 * `strace -c -f` on one node (syscall counts and kernel time per syscall) and
 * `perf stat` over all nodes (task clock, context switches, migrations, page
 * faults). Both write their report to the run directory; both are stopped
 * with SIGINT, which makes them print their summary.
 *
 * strace stops the traced process at every syscall and slows it several-fold,
 * so a run with `--strace` is a diagnostic, not a measurement of speed.
 *
 * @module
 */

/** A running tracer. */
export interface Tracer {
  /** Which tool. */
  readonly kind: "strace" | "perf-stat" | "perf-record";
  /** What runs, for the summary. */
  readonly label: string;
  /** Where the report goes. */
  readonly outputPath: string;
  /** Stops the tracer (SIGINT) and returns its report text ("" if none). */
  stop(): Promise<string>;
}

async function startTracer(
  kind: Tracer["kind"],
  label: string,
  command: string,
  args: string[],
  outputPath: string,
  settleMs: number,
): Promise<Tracer> {
  const child = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  // Give it time to attach before the phase starts.
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  return {
    kind,
    label,
    outputPath,
    async stop() {
      try {
        child.kill("SIGINT");
      } catch {
        // already gone
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        child.status,
        new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 10_000)),
      ]);
      clearTimeout(timer);
      if (status === undefined) {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
        await child.status;
      }
      const errors = (await stderr).trim();
      try {
        return (await Deno.stat(outputPath)).size > 10_000_000
          ? "(binary)"
          : await Deno.readTextFile(outputPath);
      } catch {
        return errors === "" ? "" : `${label} failed: ${errors.split("\n").slice(-3).join(" | ")}`;
      }
    },
  };
}

/** Attaches `strace -c -f` (summary of every thread's syscalls) to process `pid`. */
export function startStrace(pid: number, outputPath: string): Promise<Tracer> {
  return startTracer(
    "strace",
    `strace -c -f -p ${pid}`,
    "strace",
    ["-c", "-f", "-qq", "-o", outputPath, "-p", String(pid)],
    outputPath,
    300,
  );
}

/** Events counted by {@link startPerfStat}. */
export const PERF_EVENTS = ["task-clock", "context-switches", "cpu-migrations", "page-faults"];

/** Attaches `perf stat` (software events, summed over all threads) to `pids`. */
export function startPerfStat(pids: readonly number[], outputPath: string): Promise<Tracer> {
  return startTracer(
    "perf-stat",
    `perf stat -p <${pids.length} node pids>`,
    "perf",
    ["stat", "-x", ",", "-e", PERF_EVENTS.join(","), "-o", outputPath, "-p", pids.join(",")],
    outputPath,
    300,
  );
}

/**
 * Attaches `perf record` (CPU-time sampling of user and kernel code, all
 * threads) to `pids`. Unlike V8's `--cpu-prof`, whose samples are wall-clock
 * spaced and so charge a descheduled process's waiting time to whatever it was
 * running, perf samples only time on a CPU. Start the nodes with
 * `--node-v8-flags=--perf-basic-prof` to name JIT-compiled JavaScript.
 */
export function startPerfRecord(pids: readonly number[], outputPath: string): Promise<Tracer> {
  return startTracer(
    "perf-record",
    `perf record -F 997 -p <${pids.length} node pids>`,
    "perf",
    ["record", "-q", "-F", "997", "-o", outputPath, "-p", pids.join(",")],
    outputPath,
    500,
  );
}

/** Runs `perf report` on `dataPath` sorted by `sort` and returns its text (top `lines`). */
export async function perfReport(dataPath: string, sort: string, lines = 60): Promise<string> {
  try {
    const result = await new Deno.Command("perf", {
      args: ["report", "-i", dataPath, "--stdio", "--no-children", "--sort", sort, "-q"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(result.stdout).split("\n")
      .filter((l) => l.trim() !== "").slice(0, lines).join("\n");
  } catch (error) {
    return `perf report failed: ${String(error)}`;
  }
}

/** One row of `strace -c` output. */
export interface SyscallRow {
  /** Syscall name. */
  readonly syscall: string;
  /** Calls. */
  readonly calls: number;
  /** Kernel time in seconds as strace measured it. */
  readonly seconds: number;
  /** Calls that returned an error. */
  readonly errors: number;
}

/** Parses the table of `strace -c` (the "total" row excluded). */
export function parseStraceSummary(text: string): SyscallRow[] {
  const rows: SyscallRow[] = [];
  for (const line of text.split("\n")) {
    // % time  seconds  usecs/call  calls  [errors]  syscall
    const m = /^\s*[\d.]+\s+([\d.]+)\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (!m || m[4] === "total") continue;
    rows.push({
      syscall: m[4],
      calls: Number(m[2]),
      seconds: Number(m[1]),
      errors: m[3] === undefined ? 0 : Number(m[3]),
    });
  }
  return rows.sort((a, b) => b.calls - a.calls);
}

/** Parses `perf stat -x ,` output into event → count. */
export function parsePerfStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const fields = line.split(",");
    if (fields.length < 3 || line.startsWith("#")) continue;
    const value = Number(fields[0]);
    const event = fields[2].trim();
    if (event !== "" && Number.isFinite(value)) out[event] = value;
  }
  return out;
}
