/**
 * Measures the node under the transport attacks of docs/SECURITY.md, with the
 * victim as a separate daemon process (its CPU and RSS read from /proc) and
 * the attacker as another process (its own CPU reported by itself).
 *
 * ```
 * deno task attack handshake [--rate 162] [--seconds 20] [--victim-bits 4096]
 * deno task attack dribble [--seconds 30] [--connections 16] [--api-connections 32]
 * ```
 *
 * `handshake`: the attacker reads the victim's HELLO, answers with a HELLO and
 * a valid AUTH of one reused identity and closes at once, `--rate` times a
 * second. Before and during the attack an honest node's module announces an
 * item every 100 ms (the victim's module times its NOTIFICATION, and the other
 * way round), and an honest prober completes a fresh handshake with the victim
 * every 250 ms. Prints CPU of victim and attacker, delivery and handshake
 * times, unloaded and under attack.
 *
 * `dribble`: connections that each declare a maximal frame and then send it one
 * byte per write, reconnecting when closed, first on the P2P port, then on the
 * API port. Prints the victim's RSS when idle, at its peak and 10 s after.
 *
 * Everything runs on 127.0.0.1, bounded in time; children are killed at the end.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeApiMessage } from "../lib/codec/api_messages.ts";
import { loadHostKey } from "../lib/hostkey.ts";
import { silentLogger } from "../lib/log.ts";
import { powEpoch, solveProofOfWork } from "../lib/protocol/proof_of_work.ts";
import { PeerSession } from "../lib/transport/peer_session.ts";
import { forgeHandshake, type HandshakeForger } from "./attack/forge.ts";
import { Deadline } from "./bench/deadline.ts";
import { ensureHostKeys } from "./bench/keys.ts";
import { freePorts, loopbackIni } from "./bench/cluster.ts";
import { BENCH_DATA_TYPE, ModuleClient } from "./bench/module_client.ts";
import { percentile } from "./bench/stats.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;
const KEY_DIR = new URL("../bench-results/keys/", import.meta.url).pathname;
const encoder = new TextEncoder();

// ---- /proc -------------------------------------------------------------------

/** User plus system CPU seconds of `pid` (Linux, clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident set size of `pid` in MiB. */
async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  return Math.round(kb / 1024 * 10) / 10;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- daemons -------------------------------------------------------------------

interface Daemon {
  readonly pid: number;
  readonly api: number;
  readonly p2p: number;
  readonly status: number;
  stop(): Promise<void>;
}

async function startDaemon(
  dir: string,
  name: string,
  keyPath: string,
  extra: string[] = [],
): Promise<Daemon> {
  const [api, p2p, status] = freePorts(3);
  const ini = join(dir, `${name}.ini`);
  await Deno.writeTextFile(ini, loopbackIni(keyPath, { api, p2p, status }, extra));
  const log = await Deno.open(join(dir, `${name}.log`), { write: true, create: true });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(Deno.env.get("ATTACK_CPU_PROF") && name === "victim"
        ? ["--cpu-prof", `--cpu-prof-dir=${Deno.env.get("ATTACK_CPU_PROF")}`]
        : []),
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      MAIN,
      "-c",
      ini,
      "--log-level",
      Deno.env.get("ATTACK_LOG_LEVEL") ?? "warn",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logged = child.stderr.pipeTo(log.writable).catch(() => {});
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // gone
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    await logged;
  };
  for (let i = 0; i < 200; i++) {
    try {
      const response = await fetch(`http://127.0.0.1:${status}/status`);
      await response.body?.cancel();
      if (response.ok) return { pid: child.pid, api, p2p, status, stop };
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`${name} did not start`);
}

async function peerCount(daemon: Daemon): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${daemon.status}/status`);
  const body = await response.json() as { peers: unknown[] };
  return body.peers.length;
}

// ---- helpers ---------------------------------------------------------------------

function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(1)} ms` : "-";
}

interface ChildReport {
  [key: string]: number;
}

function runChild(args: string[]): { done: Promise<ChildReport>; kill: () => void } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const done = child.output().then((out) => {
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "{}";
    return JSON.parse(text) as ChildReport;
  });
  return {
    done,
    kill: () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
    },
  };
}

/** This process's user + system CPU seconds. */
async function ownCpuSeconds(): Promise<number> {
  return await cpuSeconds(Deno.pid);
}

// ---- handshake flood -------------------------------------------------------------------

interface PhaseResult {
  label: string;
  seconds: number;
  victimCpuPct: number;
  attackerCpuPct: number;
  attacks: number;
  deliveries: number[];
  handshakes: number[];
  handshakeFailures: number;
  failureReasons: string[];
}

async function handshakeScenario(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      rate: { type: "string", default: "162" },
      seconds: { type: "string", default: "20" },
      "victim-bits": { type: "string", default: "4096" },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const deadline = new Deadline(600_000);
  const [victimKey] = (await ensureHostKeys(
    KEY_DIR,
    1,
    Number(values["victim-bits"]),
    deadline,
    console.log,
  )).paths;
  // Six prober identities in turn: an honest node does not handshake four times a
  // second with one identity, and the node's per-identity session rate refuses that.
  const [honestKey, attackerKey, ...proberKeys] = (await ensureHostKeys(
    KEY_DIR,
    8,
    2048,
    deadline,
    console.log,
  )).paths;
  const dir = await Deno.makeTempDir({ prefix: "gossip-attack-" });
  const victim = await startDaemon(dir, "victim", victimKey);
  const honest = await startDaemon(dir, "honest", honestKey, [
    `bootstrapper = 127.0.0.1:${victim.p2p}`,
  ]);
  const arrivals = new Map<string, number>();
  const onNotification = (_node: number, data: Uint8Array, at: number) => {
    arrivals.set(new TextDecoder().decode(data), at);
  };
  const modules = [
    await ModuleClient.connect(victim.api, 0, onNotification),
    await ModuleClient.connect(honest.api, 1, onNotification),
  ];
  const probers = await Promise.all(proberKeys.map(async (path) => {
    const key = await loadHostKey(path);
    return { key, pow: solveProofOfWork(key.identity, powEpoch(), 16) };
  }));
  let nextProber = 0;
  try {
    for (let i = 0; i < 100 && await peerCount(victim) < 1; i++) await sleep(100);
    if (await peerCount(victim) < 1) throw new Error("honest node did not connect");
    await sleep(1000);
    const results: PhaseResult[] = [];
    for (const label of ["unloaded", "attack"]) {
      const attacker = label === "attack"
        ? runChild([
          "_handshake-attacker",
          String(victim.p2p),
          attackerKey,
          String(rate),
          String(seconds),
        ])
        : undefined;
      if (attacker) await sleep(1500); // the attacker solves its proof-of-work first
      const victimCpu0 = await cpuSeconds(victim.pid);
      const started = performance.now();
      const deliveries: number[] = [];
      const handshakes: number[] = [];
      let handshakeFailures = 0;
      const failureReasons = new Map<string, number>();
      const probes: Promise<void>[] = [];
      let seq = 0;
      const end = started + seconds * 1000 - 500;
      let nextProbe = started;
      while (performance.now() < end) {
        const from = seq % 2;
        const tag = `${label}-${seq++}-${"x".repeat(200)}`;
        const at = modules[from].announce(encoder.encode(tag));
        const target = tag;
        probes.push((async () => {
          for (let i = 0; i < 300 && !arrivals.has(target); i++) await sleep(10);
          deliveries.push(arrivals.has(target) ? arrivals.get(target)! - at : Infinity);
        })());
        if (performance.now() >= nextProbe) {
          nextProbe += 250;
          const prober = probers[nextProber++ % probers.length];
          probes.push((async () => {
            const t0 = performance.now();
            try {
              const conn = await Deno.connect({ hostname: "127.0.0.1", port: victim.p2p });
              const session = await PeerSession.establish(conn, "outbound", {
                hostKey: prober.key,
                proofOfWork: () => ({ epoch: powEpoch(), nonce: prober.pow }),
                powDifficulty: 16,
                listenAddress: { hostname: "127.0.0.1", port: 9 },
                handshakeTimeoutMs: 5000,
                idleTimeoutMs: 60_000,
                maxQueuedBytes: 1 << 20,
                minPeerKeyBits: 2048,
                log: silentLogger,
              });
              handshakes.push(performance.now() - t0);
              session.attach({ onMessage: () => {}, onClose: () => {} });
              await session.close("probe done");
            } catch (error) {
              handshakeFailures++;
              const reason = error instanceof Error ? error.message : String(error);
              failureReasons.set(reason, (failureReasons.get(reason) ?? 0) + 1);
            }
          })());
        }
        await sleep(100);
      }
      await Promise.all(probes);
      const victimCpu = await cpuSeconds(victim.pid) - victimCpu0;
      const elapsed = (performance.now() - started) / 1000;
      let attackerCpuPct = 0;
      let attacks = 0;
      if (attacker) {
        const report = await attacker.done;
        attackerCpuPct = report.cpuSeconds / report.seconds * 100;
        attacks = report.completed / report.seconds;
        console.log(`attacker: ${JSON.stringify(report)}`);
      }
      results.push({
        label,
        seconds: elapsed,
        victimCpuPct: victimCpu / elapsed * 100,
        attackerCpuPct,
        attacks,
        deliveries,
        handshakes,
        handshakeFailures,
        failureReasons: [...failureReasons].map(([reason, n]) => `${n}x ${reason}`),
      });
      await sleep(1000);
    }
    console.log(
      "\nphase     | victim CPU | attacker CPU | attacks/s | delivery p50 / p99 | honest handshake p50 / p99 (n, failed)",
    );
    for (const r of results) {
      console.log(
        `${r.label.padEnd(9)} | ${r.victimCpuPct.toFixed(1).padStart(8)} % | ${
          r.attackerCpuPct.toFixed(1).padStart(10)
        } % | ${r.attacks.toFixed(0).padStart(9)} | ${ms(percentile(r.deliveries, 50))} / ${
          ms(percentile(r.deliveries, 99))
        } | ${ms(percentile(r.handshakes, 50))} / ${
          ms(percentile(r.handshakes, 99))
        } (${r.handshakes.length}, ${r.handshakeFailures})`,
      );
      if (r.failureReasons.length > 0) {
        console.log(`  failed probes: ${r.failureReasons.join("; ")}`);
      }
    }
  } finally {
    console.error("closing modules");
    await Promise.all(modules.map((m) => m.close()));
    console.error("stopping honest");
    await honest.stop();
    console.error("stopping victim");
    await victim.stop();
    console.error(`logs in ${dir}`);
  }
}

/** The attacker process: `rate` forged handshakes a second for `seconds`. */
async function handshakeAttacker(args: string[]): Promise<void> {
  const [port, keyPath, rateText, secondsText] = args;
  const rate = Number(rateText);
  const seconds = Number(secondsText);
  const key = await loadHostKey(keyPath);
  const forger: HandshakeForger = await forgeHandshake(key, 16);
  const cpu0 = await ownCpuSeconds();
  const started = performance.now();
  let launched = 0;
  let completed = 0;
  let failed = 0;
  const reasons = new Map<string, number>();
  const inFlight = new Set<Promise<void>>();
  const attempt = async () => {
    let conn: Deno.TcpConn | undefined;
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
      conn.setNoDelay(true);
      const hello = await readFrame(conn);
      const bytes = await forger(hello);
      let offset = 0;
      while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
      completed++;
    } catch (error) {
      failed++;
      const reason = error instanceof Error ? error.message : String(error);
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    } finally {
      try {
        conn?.close();
      } catch {
        // closed
      }
    }
  };
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor((performance.now() - started) / 1000 * rate);
    while (launched < due && inFlight.size < 256) {
      launched++;
      const p = attempt();
      inFlight.add(p);
      p.finally(() => inFlight.delete(p));
    }
    await sleep(2);
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - started) / 1000;
  console.log(JSON.stringify({
    seconds: elapsed,
    cpuSeconds: await ownCpuSeconds() - cpu0,
    launched,
    completed,
    failed,
    reasons: Object.fromEntries(reasons),
  }));
}

/** Reads one `u32 length | payload` frame and returns the payload. */
async function readFrame(conn: Deno.Conn): Promise<Uint8Array> {
  let buffer = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  for (;;) {
    if (buffer.length >= 4) {
      const length = new DataView(buffer.buffer, buffer.byteOffset).getUint32(0);
      if (buffer.length >= 4 + length) return buffer.slice(4, 4 + length);
    }
    const n = await conn.read(chunk);
    if (n === null) throw new Error("closed before a frame");
    const merged = new Uint8Array(buffer.length + n);
    merged.set(buffer);
    merged.set(chunk.subarray(0, n), buffer.length);
    buffer = merged;
  }
}

// ---- dribbling -------------------------------------------------------------------------

async function dribbleScenario(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: "string", default: "30" },
      connections: { type: "string", default: "16" },
      "api-connections": { type: "string", default: "32" },
    },
  });
  const seconds = Number(values.seconds);
  const [victimKey] = (await ensureHostKeys(KEY_DIR, 1, 2048, new Deadline(600_000), console.log))
    .paths;
  const dir = await Deno.makeTempDir({ prefix: "gossip-attack-" });
  const victim = await startDaemon(dir, "victim", victimKey);
  try {
    for (
      const [port, portName, connections] of [
        [victim.p2p, "p2p", Number(values.connections)],
        [victim.api, "api", Number(values["api-connections"])],
      ] as const
    ) {
      await sleep(3000);
      const idle = await rssMiB(victim.pid);
      const attacker = runChild([
        "_dribble-attacker",
        String(port),
        portName,
        String(connections),
        String(seconds),
      ]);
      let peak = idle;
      const started = performance.now();
      while (performance.now() - started < seconds * 1000) {
        await sleep(1000);
        peak = Math.max(peak, await rssMiB(victim.pid));
      }
      const report = await attacker.done;
      peak = Math.max(peak, await rssMiB(victim.pid));
      await sleep(10_000);
      const after = await rssMiB(victim.pid);
      await sleep(20_000);
      const later = await rssMiB(victim.pid);
      console.log(
        `${portName}: ${connections} connections dribbling 1 byte per write for ${seconds} s ` +
          `(${(report.bytes / 1e6).toFixed(2)} MB sent, ${report.connects} connections opened): ` +
          `victim RSS idle ${idle} MiB, peak ${peak} MiB (+${(peak - idle).toFixed(1)}), ` +
          `10 s after ${after} MiB (+${(after - idle).toFixed(1)}), 30 s after ${later} MiB ` +
          `(+${(later - idle).toFixed(1)})`,
      );
    }
  } finally {
    await victim.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The dribbling process: `connections` loops sending one byte per write. */
async function dribbleAttacker(args: string[]): Promise<void> {
  const [portText, portName, connectionsText, secondsText] = args;
  const port = Number(portText);
  const stopAt = performance.now() + Number(secondsText) * 1000;
  // A header that announces the largest frame the port accepts, then filler.
  const header = portName === "p2p"
    ? new Uint8Array([0x00, 0x01, 0x7f, 0xfc]) // payload 98,300: a 96 KiB frame
    : encodeApiMessage({
      kind: "announce",
      ttl: 0,
      reserved: 0,
      dataType: BENCH_DATA_TYPE,
      data: new Uint8Array(65535 - 8),
    }).subarray(0, 4);
  let bytes = 0;
  let connects = 0;
  const one = new Uint8Array([0x41]);
  const loop = async () => {
    while (performance.now() < stopAt) {
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
        connects++;
        conn.setNoDelay(true);
        for (const byte of header) {
          await conn.write(new Uint8Array([byte]));
          bytes++;
        }
        while (performance.now() < stopAt) {
          await conn.write(one);
          bytes++;
        }
      } catch {
        // closed by the victim: open another
      } finally {
        try {
          conn?.close();
        } catch {
          // closed
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Number(connectionsText) }, loop));
  console.log(JSON.stringify({ bytes, connects }));
}

// ---- main ----------------------------------------------------------------------------------

const ATTACK_USAGE = `deno task attack handshake|dribble [options]

  handshake [--rate 162] [--seconds 20] [--victim-bits 4096]
      forced handshakes (one reused identity) against a victim daemon; CPU of
      victim and attacker, delivery and handshake times, unloaded and attacked
  dribble [--seconds 30] [--connections 16] [--api-connections 32]
      frames sent one byte per write on the P2P, then the API port; the
      victim's RSS idle, at its peak and 10 s after`;

const [command, ...rest] = Deno.args;
switch (command) {
  case "--help":
  case "-h":
    console.log(ATTACK_USAGE);
    break;
  case "handshake":
    await handshakeScenario(rest);
    break;
  case "dribble":
    await dribbleScenario(rest);
    break;
  case "_handshake-attacker":
    await handshakeAttacker(rest);
    break;
  case "_dribble-attacker":
    await dribbleAttacker(rest);
    break;
  default:
    console.error(ATTACK_USAGE);
    Deno.exit(2);
}
