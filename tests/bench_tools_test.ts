/**
 * Unit tests of the measurement tools' parsers and arithmetic (scripts/bench):
 * /proc parsing, CPU per delivery, strace and perf output, CPU profile and
 * heap snapshot summaries, on hand-made inputs; and that every tool answers
 * --help (a child process each).
 */

import assert from "node:assert/strict";
import { cpuBetween, cpuPerDelivery, type CpuSample } from "../scripts/bench/cpu.ts";
import { AbortedError, Deadline } from "../scripts/bench/deadline.ts";
import { heapGrowth, summariseHeapSnapshot } from "../scripts/bench/heap.ts";
import {
  parseMachineCpu,
  parseSmaps,
  parseStatTicks,
  parseStatusMemory,
} from "../scripts/bench/proc.ts";
import { category, summarise } from "../scripts/bench/profile_summary.ts";
import { parsePerfStat, parseStraceSummary } from "../scripts/bench/tracers.ts";

Deno.test("parseStatTicks reads utime and stime after a command name with spaces", () => {
  // Fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  const line = "4242 (deno (main) x) S 1 2 3 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 7 0";
  assert.deepEqual(parseStatTicks(line), { user: 1234, system: 567 });
  assert.equal(parseStatTicks("garbage"), undefined);
});

Deno.test("parseMachineCpu counts idle and iowait as not busy", () => {
  const text = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n";
  assert.deepEqual(parseMachineCpu(text, 100), { busy: 1.5, total: 10 });
  assert.equal(parseMachineCpu("intr 1 2 3", 100), undefined);
});

Deno.test("parseStatusMemory groups grep -H lines by pid", () => {
  const text = [
    "/proc/10/status:VmHWM:\t  2048 kB",
    "/proc/10/status:VmRSS:\t  1024 kB",
    "/proc/10/status:RssAnon:\t   256 kB",
    "/proc/10/status:RssFile:\t   768 kB",
    "/proc/10/smaps_rollup:Pss:\t   300 kB",
    "/proc/10/smaps_rollup:Pss_Anon:\t   256 kB",
    "/proc/11/status:VmRSS:\t    10 kB",
  ].join("\n");
  const byPid = parseStatusMemory(text);
  assert.deepEqual(byPid.get(10), {
    rss: 1024 * 1024,
    rssAnon: 256 * 1024,
    rssFile: 768 * 1024,
    peakRss: 2048 * 1024,
    pss: 300 * 1024,
  });
  assert.equal(byPid.get(11)?.rss, 10 * 1024);
  assert.ok(Number.isNaN(byPid.get(11)!.rssAnon));
  assert.ok(Number.isNaN(byPid.get(11)!.pss), "no smaps_rollup line: PSS unknown");
});

Deno.test("parseSmaps splits private memory by kind of mapping", () => {
  const text = [
    "55d0c0000000-55d0c2000000 rw-p 00000000 00:00 0                          [heap]",
    "Anonymous:          2048 kB",
    "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ",
    "Anonymous:          1024 kB",
    "7f0000200000-7f0000300000 rw-p 00000000 00:00 0",
    "Anonymous:           512 kB",
    "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]",
    "Anonymous:           132 kB",
    "55d0a0000000-55d0a1000000 rw-p 00100000 08:01 1234                       /usr/bin/deno",
    "Anonymous:             8 kB",
  ].join("\n");
  assert.deepEqual(parseSmaps(text), {
    mallocHeap: 2048 * 1024,
    anonMappings: 1536 * 1024,
    stacks: 132 * 1024,
    fileAnon: 8 * 1024,
    anonMappingCount: 2,
  });
});

function sample(at: number, nodes: [number, number][], bench = 0, busy = 0): CpuSample {
  return {
    at,
    nodeCount: nodes.length,
    nodes: nodes.map(([user, system]) => ({ user, system })),
    bench: { user: bench, system: 0 },
    machine: { busy, total: busy * 2 },
  };
}

Deno.test("cpuBetween sums nodes, leaves out gone ones and derives other programs' load", () => {
  const a = sample(0, [[1, 1], [2, 0], [5, 5]], 1, 10);
  const b = sample(2000, [[2, 1.5], [3, 0], [NaN, NaN]], 1.5, 14);
  const usage = cpuBetween(a, b);
  assert.equal(usage.wallS, 2);
  assert.equal(usage.nodesUserS, 2);
  assert.equal(usage.nodesSystemS, 0.5);
  assert.equal(usage.nodesS, 2.5);
  assert.equal(usage.nodesCores, 1.25);
  assert.equal(usage.missingNodes, 1);
  assert.equal(usage.benchS, 0.5);
  // Machine busy 4 s, nodes 2.5 s, bench 0.5 s: 1 s of others over 2 s.
  assert.equal(usage.otherCores, 0.5);
});

Deno.test("cpuPerDelivery subtracts the idle background over the phase", () => {
  const phase = cpuBetween(sample(0, [[0, 0]]), sample(10_000, [[3, 1]]));
  const per = cpuPerDelivery(phase, 1000, 0.1);
  assert.equal(per.rawUs, 4000);
  // 4 s less 0.1 cores × 10 s = 3 s over 1000 deliveries.
  assert.equal(per.netUs, 3000);
  assert.ok(Number.isNaN(cpuPerDelivery(phase, 0, 0).rawUs));
});

Deno.test("parseStraceSummary reads calls, errors and time per syscall", () => {
  const text = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 45.00    0.004500          20       228           sendto
 30.00    0.003000          14       214        12 recvfrom
 25.00    0.002500          22       112        17 futex
------ ----------- ----------- --------- --------- ----------------
100.00    0.010000          18       554        29 total
`;
  const rows = parseStraceSummary(text);
  assert.deepEqual(rows.map((r) => r.syscall), ["sendto", "recvfrom", "futex"]);
  assert.deepEqual(rows[1], { syscall: "recvfrom", calls: 214, seconds: 0.003, errors: 12 });
});

Deno.test("parsePerfStat reads perf stat -x , lines", () => {
  const text = `# started on Tue Dec  1 11:28:30 2026

7802.31,msec,task-clock,7802313256,100.00,0.719,CPUs utilized
15382,,context-switches,7802313256,100.00,1.971,K/sec
`;
  assert.deepEqual(parsePerfStat(text), { "task-clock": 7802.31, "context-switches": 15382 });
});

Deno.test("profile summary counts only samples inside the window, by self and inclusive time", () => {
  const frame = (functionName: string, url = "") => ({
    functionName,
    url,
    lineNumber: 0,
    columnNumber: 0,
  });
  const profile = {
    nodes: [
      { id: 1, callFrame: frame("(root)"), children: [2, 4] },
      {
        id: 2,
        callFrame: frame("readLoop", "file:///x/lib/transport/framed_connection.ts"),
        children: [3],
      },
      { id: 3, callFrame: frame("op_write") },
      { id: 4, callFrame: frame("(garbage collector)") },
    ],
    startTime: 1000,
    endTime: 1100,
    // Samples at 1010, 1020, 1040, 1070: durations 10, 20, 30, 30 (until endTime).
    samples: [2, 3, 3, 4],
    timeDeltas: [10, 10, 20, 30],
  };
  const all = summarise([profile]);
  assert.equal(all.sampledUs, 90);
  assert.deepEqual(all.self.map((f) => [f.key, f.us]), [
    ["op_write", 50],
    ["(garbage collector)", 30],
    ["readLoop lib/transport/framed_connection.ts:1", 10],
  ]);
  assert.equal(all.inclusive.find((f) => f.key.startsWith("readLoop"))?.us, 60);
  // Window 1015..1045: the samples at 1020 (20 µs) and 1040 (cut at 1045: 5 µs).
  const window = summarise([profile], 1015, 1045);
  assert.equal(window.sampledUs, 25);
  assert.equal(category("op_write", ""), "deno ops (native, called from JS)");
  assert.equal(
    category("seal", "file:///r/lib/transport/peer_crypto.ts"),
    "gossip lib/transport/peer_crypto.ts",
  );
});

Deno.test("heap snapshot summary groups objects by constructor and reports growth", () => {
  const snapshot = (items: number) =>
    JSON.stringify({
      snapshot: {
        meta: {
          node_fields: ["type", "name", "id", "self_size", "edge_count"],
          node_types: [["hidden", "array", "string", "object", "code"]],
        },
      },
      // type, name (string index), id, self_size, edge_count
      nodes: [
        ...Array.from({ length: items }, (_, i) => [3, 0, i, 100, 0]).flat(),
        2,
        1,
        99,
        40,
        0,
        3,
        2,
        98,
        16,
        0,
      ],
      strings: ["Item", "some text", "Map @123"],
    });
  const first = summariseHeapSnapshot(snapshot(2));
  const last = summariseHeapSnapshot(snapshot(5));
  assert.deepEqual(first.get("Item"), { key: "Item", count: 2, selfBytes: 200 });
  assert.deepEqual(first.get("(strings)"), { key: "(strings)", count: 1, selfBytes: 40 });
  assert.equal(first.get("Map")?.count, 1);
  const growth = heapGrowth(first, last, 1);
  assert.deepEqual(growth, [{ key: "Item", count: [2, 5], selfBytes: [200, 500] }]);
});

Deno.test("Deadline: a signal's abort reads as interrupted, the deadline's does not", async () => {
  const signalled = new Deadline(60_000);
  signalled.abortOnSignals();
  signalled.abort("interrupted by SIGINT");
  assert.ok(signalled.interrupted);
  await assert.rejects(async () => await signalled.sleep(10_000), AbortedError);
  signalled.dispose(); // removes the signal listeners (the sanitizer checks)

  const expired = new Deadline(1);
  await assert.rejects(() => expired.sleep(10_000), /deadline of 0 s/);
  assert.equal(expired.interrupted, false);
  expired.dispose();
});

Deno.test("every tool in scripts/ prints its usage for --help and exits 0", async () => {
  const tools = [
    "scripts/attack.ts",
    "scripts/bench.ts",
    "scripts/build.ts",
    "scripts/demo.ts",
    "scripts/screenshots.ts",
    "scripts/simulate.ts",
    "scripts/simulate_report.ts",
    "scripts/soak.ts",
    "scripts/bench/compare_gossipsub.ts",
    "scripts/bench/profile_summary.ts",
    "scripts/bench/rss_baseline.ts",
    "scripts/bench/wakeup_cost.ts",
  ];
  await Promise.all(tools.map(async (tool) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", tool, "--help"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, `${tool}: ${new TextDecoder().decode(output.stderr)}`);
    assert.match(stdout, /deno (task|run)|Usage/, `${tool} printed its usage`);
  }));
});

Deno.test("wakeup_cost --relay measures a relay child that opens, asks its module and seals per peer", async () => {
  const run = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-run",
        "--allow-read",
        "scripts/bench/wakeup_cost.ts",
        ...args,
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
  const measured = await run("--relay", "2", "--messages", "5", "--intervals", "0");
  const stdout = new TextDecoder().decode(measured.stdout);
  assert.equal(measured.code, 0, new TextDecoder().decode(measured.stderr));
  // One row: "relay 0 ms <cpu> us ... <rss> (<anon>)"; a relay that broke would throw.
  assert.match(stdout, /relay \(2 peers\)/);
  assert.match(stdout, /^\s+relay\s+0 ms\s+\d+ us.*\d+\.\d \(\d+\.\d\)$/m);
  const refused = await run("--relay", "0");
  assert.equal(refused.code, 2);
  assert.match(new TextDecoder().decode(refused.stderr), /--relay takes a peer count/);
});
