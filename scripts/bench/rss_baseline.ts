/**
 * Where a daemon's resident memory comes from: RSS of a bare Deno process, of
 * one that imports each `node:*` module the daemon uses, of one that imports
 * the whole library, and of an idle started daemon (no peers) with several
 * runtime settings (V8 flags, glibc malloc arenas, no proof-of-work at start).
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-run --allow-net --allow-env \
 *   scripts/bench/rss_baseline.ts [--settle-ms 2000] [--repeat 3] [--json FILE]
 * ```
 *
 * Each case is a fresh `deno run` child; once it has loaded (and, for the
 * daemon, answers /status) and `--settle-ms` passed, VmRSS, RssAnon (private
 * memory), RssFile (file pages of the deno binary, shared between processes)
 * and the thread count are read from /proc/<pid>/status; the median of
 * `--repeat` runs is printed.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { freePorts, loopbackIni } from "./cluster.ts";
import { ensureHostKeys } from "./keys.ts";
import { Deadline } from "./deadline.ts";
import { readProcFile } from "./proc.ts";

const RSS_USAGE = `deno run --allow-read --allow-write --allow-run --allow-net --allow-env \\
  scripts/bench/rss_baseline.ts [options]

RSS of a bare Deno process, of each node:* import, of the library and of an
idle daemon under several runtime settings (median of fresh processes).

Options:
  --settle-ms MS   wait after start-up before reading /proc (default 2000)
  --repeat N       fresh processes per case, median printed (default 3, at most 10)
  --json FILE      also write the rows as JSON
  -h, --help       this help`;

const REPO_DIR = fileURLToPath(new URL("../../", import.meta.url));
const KEYS_DIR = join(REPO_DIR, "bench-results", "keys");

/** One measured configuration. */
interface Case {
  readonly name: string;
  /** Module source run by `deno run` (written to a temp file), or "daemon". */
  readonly source: string | "daemon";
  readonly v8Flags?: string;
  readonly env?: Record<string, string>;
  readonly powDifficulty?: number;
}

/** Memory of one case. */
export interface CaseResult {
  readonly name: string;
  readonly rssMiB: number;
  readonly anonMiB: number;
  readonly fileMiB: number;
  readonly threads: number;
  readonly heapUsedMiB: number | null;
}

const WAIT = `console.log("ready"); await new Promise((r) => setTimeout(r, 600_000));`;
const NODE_MODULES = [
  "node:crypto",
  "node:buffer",
  "node:util",
  "node:path",
  "node:fs",
  "node:url",
];

function cases(): Case[] {
  const list: Case[] = [{ name: "bare deno run (empty program)", source: WAIT }];
  for (const module of NODE_MODULES) {
    list.push({ name: `import * from "${module}"`, source: `import "${module}";\n${WAIT}` });
  }
  list.push({
    name: "all six node:* modules",
    source: NODE_MODULES.map((m) => `import "${m}";`).join("\n") + `\n${WAIT}`,
  });
  list.push({
    name: "import lib/mod.ts (whole library)",
    source: `import "${join(REPO_DIR, "lib/mod.ts")}";\n${WAIT}`,
  });
  list.push({ name: "daemon, idle, no peers (pow 16)", source: "daemon" });
  list.push({ name: "daemon, pow_difficulty 0", source: "daemon", powDifficulty: 0 });
  list.push({
    name: "daemon, MALLOC_ARENA_MAX=2",
    source: "daemon",
    env: { MALLOC_ARENA_MAX: "2" },
  });
  list.push({
    name: "daemon, --max-semi-space-size=1",
    source: "daemon",
    v8Flags: "--max-semi-space-size=1",
  });
  list.push({ name: "daemon, --single-threaded", source: "daemon", v8Flags: "--single-threaded" });
  list.push({ name: "daemon, --lite-mode", source: "daemon", v8Flags: "--lite-mode" });
  list.push({
    name: "daemon, semi-space 1 + arenas 2 + pow 0",
    source: "daemon",
    v8Flags: "--max-semi-space-size=1",
    env: { MALLOC_ARENA_MAX: "2" },
    powDifficulty: 0,
  });
  return list;
}

function statusField(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

async function waitForLine(stream: ReadableStream<Uint8Array>, timeoutMs: number): Promise<void> {
  const reader = stream.getReader();
  let text = "";
  const timer = setTimeout(() => reader.cancel(), timeoutMs);
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("child ended before it was ready");
      text += new TextDecoder().decode(value);
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

async function fetchHeap(port: number): Promise<number | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/status`, {
      signal: AbortSignal.timeout(2000),
    });
    const body = await response.json() as { memory?: { heapUsed: number } };
    return body.memory ? body.memory.heapUsed / 2 ** 20 : null;
  } catch {
    return null;
  }
}

async function measureCase(
  c: Case,
  dir: string,
  keyPath: string,
  settleMs: number,
  deadline: Deadline,
): Promise<CaseResult> {
  let args: string[];
  let statusPort: number | undefined;
  if (c.source === "daemon") {
    const [api, p2p, status] = freePorts(3);
    statusPort = status;
    const ini = join(dir, `daemon-${api}.ini`);
    await Deno.writeTextFile(
      ini,
      loopbackIni(keyPath, { api, p2p, status }, [`pow_difficulty = ${c.powDifficulty ?? 16}`]),
    );
    args = [
      "run",
      ...(c.v8Flags ? [`--v8-flags=${c.v8Flags}`] : []),
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      join(REPO_DIR, "main.ts"),
      "-c",
      ini,
    ];
  } else {
    const file = join(dir, `case-${Math.random().toString(36).slice(2)}.ts`);
    await Deno.writeTextFile(file, c.source);
    // The case file lives outside the repository: name its config, which maps
    // the library's npm imports.
    args = [
      "run",
      ...(c.v8Flags ? [`--v8-flags=${c.v8Flags}`] : []),
      "--config",
      join(REPO_DIR, "deno.json"),
      "--allow-read",
      file,
    ];
  }
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_DIR,
    env: { NO_COLOR: "1", ...c.env },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    if (statusPort !== undefined) {
      const port = statusPort;
      await child.stdout.cancel();
      await deadline.waitFor(async () => await fetchHeap(port) !== null, 60_000, c.name, 100);
    } else {
      await waitForLine(child.stdout, 60_000);
    }
    await deadline.sleep(settleMs);
    const text = await readProcFile(`/proc/${child.pid}/status`) ?? "";
    const heap = statusPort !== undefined ? await fetchHeap(statusPort) : null;
    return {
      name: c.name,
      rssMiB: statusField(text, "VmRSS") / 1024,
      anonMiB: statusField(text, "RssAnon") / 1024,
      fileMiB: statusField(text, "RssFile") / 1024,
      threads: statusField(text, "Threads"),
      heapUsedMiB: heap,
    };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    if (statusPort === undefined) await child.stdout.cancel().catch(() => {});
  }
}

function medianBy(results: CaseResult[], pick: (r: CaseResult) => number): number {
  const values = results.map(pick).filter(Number.isFinite).sort((a, b) => a - b);
  return values.length === 0 ? NaN : values[Math.floor((values.length - 1) / 2)];
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      "settle-ms": { type: "string", default: "2000" },
      repeat: { type: "string", default: "3" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(RSS_USAGE);
    return 0;
  }
  const settleMs = Number(values["settle-ms"]);
  const repeat = Math.max(1, Math.min(10, Number(values.repeat)));
  const deadline = new Deadline(30 * 60_000);
  const dir = await Deno.makeTempDir({ prefix: "gossip-rss-" });
  try {
    const keys = await ensureHostKeys(KEYS_DIR, 1, 2048, deadline, console.error);
    const rows: CaseResult[] = [];
    console.log(
      `median of ${repeat} fresh processes each, ${settleMs} ms after start-up; MiB:\n` +
        `  ${"case".padEnd(42)}${"RSS".padStart(8)}${"anon".padStart(8)}${"file".padStart(8)}` +
        `${"+anon".padStart(8)}${"threads".padStart(9)}${"heap".padStart(7)}`,
    );
    let bareAnon = NaN;
    for (const c of cases()) {
      const runs: CaseResult[] = [];
      for (let i = 0; i < repeat; i++) {
        runs.push(await measureCase(c, dir, keys.paths[0], settleMs, deadline));
      }
      const heaps = runs.map((r) => r.heapUsedMiB).filter((h): h is number => h !== null);
      const row: CaseResult = {
        name: c.name,
        rssMiB: medianBy(runs, (r) => r.rssMiB),
        anonMiB: medianBy(runs, (r) => r.anonMiB),
        fileMiB: medianBy(runs, (r) => r.fileMiB),
        threads: medianBy(runs, (r) => r.threads),
        heapUsedMiB: heaps.length > 0 ? medianBy(runs, (r) => r.heapUsedMiB ?? NaN) : null,
      };
      if (rows.length === 0) bareAnon = row.anonMiB;
      rows.push(row);
      console.log(
        `  ${c.name.padEnd(42)}${row.rssMiB.toFixed(1).padStart(8)}` +
          `${row.anonMiB.toFixed(1).padStart(8)}${row.fileMiB.toFixed(1).padStart(8)}` +
          `${(row.anonMiB - bareAnon).toFixed(1).padStart(8)}${String(row.threads).padStart(9)}` +
          `${(row.heapUsedMiB === null ? "-" : row.heapUsedMiB.toFixed(1)).padStart(7)}`,
      );
    }
    console.log(
      "  (+anon: private memory above the bare process; heap: V8 heap used from /status)",
    );
    if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(rows, null, 1) + "\n");
    return 0;
  } finally {
    deadline.dispose();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
