/**
 * Benchmark overlays on 127.0.0.1: {@link startProcessCluster} runs every
 * node as its own `deno run main.ts -c <ini>` process, {@link
 * startInProcessCluster} runs them as {@link GossipNode} objects in this
 * process. Both hand out each node's API port, its counters and its memory.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gossipOptions } from "../../lib/config.ts";
import { identityHex, parseHostKeyPem } from "../../lib/hostkey.ts";
import { Logger, type LogLevel } from "../../lib/log.ts";
import { GossipNode, type NodeStats } from "../../lib/node.ts";
import { powEpoch, solveProofOfWork } from "../../lib/protocol/proof_of_work.ts";
import type { RandomSource } from "../../lib/protocol/random.ts";
import process from "node:process";
import type { Deadline } from "./deadline.ts";
import { cpuOfPids, memoryOfPids, type ProcessCpu, type ProcessMemory } from "./proc.ts";

/** One node of a benchmark overlay. */
export interface ClusterNode {
  /** Position in the overlay (start order). */
  readonly index: number;
  /** API port on 127.0.0.1. */
  readonly apiPort: number;
  /** P2P port on 127.0.0.1. */
  readonly p2pPort: number;
  /** Index of the node it bootstrapped through, if any. */
  readonly bootstrap?: number;
  /** OS process id (process mode). */
  readonly pid?: number;
}

/** A running overlay. */
export interface Cluster {
  /** How the nodes run. */
  readonly mode: "process" | "in-process";
  /** The nodes in start order. */
  readonly nodes: readonly ClusterNode[];
  /** Time from the first spawn until every node answered, in ms. */
  readonly startupMs: number;
  /** Where configs and logs are (process mode) or undefined. */
  readonly runDir?: string;
  /** Every node's counters (its `/status` document). */
  stats(): Promise<NodeStats[]>;
  /** Memory per node process (process mode) or of this whole process (in-process). */
  memory(): Promise<ProcessMemory[]>;
  /** CPU used so far per node process (process mode) or by this whole process (in-process). */
  cpu(): Promise<ProcessCpu[]>;
  /** Nodes that are no longer running, with the reason. */
  failures(): string[];
  /** Stops every node; bounded in time; never throws. */
  close(): Promise<void>;
}

/** A process-mode overlay whose nodes can be killed and restarted (the soak test). */
export interface ProcessCluster extends Cluster {
  readonly mode: "process";
  /** `/status` of node `index`; throws when it does not answer within `timeoutMs`. */
  statsOf(index: number, timeoutMs?: number): Promise<NodeStats>;
  /** Sends `signal` to node `index`; resolves once the process has exited. */
  kill(index: number, signal: Deno.Signal): Promise<void>;
  /**
   * Starts node `index` again with the same configuration, key and ports, its
   * log appended to the old one; resolves once it answers `/status`.
   */
  restart(index: number, timeoutMs: number): Promise<void>;
}

/** Settings shared by both kinds of overlay. */
export interface ClusterOptions {
  /** Number of nodes. */
  readonly nodes: number;
  /** `degree` of every node. */
  readonly degree: number;
  /** `pow_difficulty` of every node. */
  readonly powDifficulty: number;
  /** PEM host key files, one per node. */
  readonly keyPaths: readonly string[];
  /** RSA modulus of the keys (in-process mode accepts peers down to it). */
  readonly keyBits: number;
  /** Directory for configs, logs and caches of this run. */
  readonly runDir: string;
  /** Directory of the key cache (holds the proof-of-work cache too). */
  readonly keysDir: string;
  /** Chooses bootstrappers. */
  readonly random: RandomSource;
  /** Overall deadline. */
  readonly deadline: Deadline;
  /** Progress lines. */
  readonly progress: (line: string) => void;
  /** Process mode: run the daemons with `--cpu-prof` into `<runDir>/prof`. */
  readonly cpuProf?: boolean;
  /** Process mode: `--v8-flags=` of the daemons. */
  readonly v8Flags?: string;
  /** Process mode: every node after the first bootstraps through this node (default: random). */
  readonly bootstrapThrough?: number;
  /** Process mode: extra `deno run` flags of node `index` (e.g. `--inspect=...`). */
  readonly denoFlags?: (index: number) => string[];
}

const MAIN_PATH = fileURLToPath(new URL("../../main.ts", import.meta.url));
const REPO_DIR = fileURLToPath(new URL("../../", import.meta.url));

/** Grace period between SIGTERM and SIGKILL. */
const TERM_GRACE_MS = 5000;

/**
 * Returns `count` distinct free TCP ports on 127.0.0.1, none of them in
 * `exclude`: binds port 0 until enough are held, then releases them all. The
 * chosen ports are added to `exclude`, so later calls never hand them out
 * again while the nodes given them may still be starting.
 */
export function freePorts(count: number, exclude: Set<number> = new Set()): number[] {
  const listeners: Deno.TcpListener[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count && attempt < count * 20 + 100; attempt++) {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
      listeners.push(listener);
      const port = listener.addr.port;
      if (!exclude.has(port)) {
        exclude.add(port);
        ports.push(port);
      }
    }
  } finally {
    for (const listener of listeners) listener.close();
  }
  if (ports.length < count) throw new Error(`found only ${ports.length} of ${count} free ports`);
  return ports;
}

/**
 * Start batches: node 0, then node 1, then 2–3, 4–7, ... Every node of a batch
 * bootstraps through a random node of the earlier batches, which is already
 * listening, so nobody waits on a dial back-off.
 */
export function startBatches(nodes: number): number[][] {
  const batches: number[][] = [];
  let start = 0;
  let size = 1;
  while (start < nodes) {
    const end = Math.min(nodes, start + size);
    batches.push(Array.from({ length: end - start }, (_, i) => start + i));
    if (start > 0) size *= 2;
    start = end;
  }
  return batches;
}

/** Ports of one daemon on 127.0.0.1. */
export interface LoopbackPorts {
  readonly api: number;
  readonly p2p: number;
  readonly status: number;
}

/**
 * The config file of a daemon with host key `keyPath` listening on 127.0.0.1
 * at `ports`; `settings` are further `[gossip]` lines (`key = value`).
 */
export function loopbackIni(
  keyPath: string,
  ports: LoopbackPorts,
  settings: readonly string[] = [],
): string {
  return [
    `hostkey = ${keyPath}`,
    "",
    "[gossip]",
    `api_address = 127.0.0.1:${ports.api}`,
    `p2p_address = 127.0.0.1:${ports.p2p}`,
    `status_address = 127.0.0.1:${ports.status}`,
    ...settings,
    "",
  ].join("\n");
}

function iniText(
  keyPath: string,
  ports: LoopbackPorts,
  degree: number,
  powDifficulty: number,
  bootstrapPort: number | undefined,
): string {
  return "; generated by scripts/bench.ts\n" + loopbackIni(keyPath, ports, [
    `degree = ${degree}`,
    `pow_difficulty = ${powDifficulty}`,
    ...(bootstrapPort === undefined ? [] : [`bootstrapper = 127.0.0.1:${bootstrapPort}`]),
  ]);
}

interface Child {
  readonly node: ClusterNode;
  readonly statusPort: number;
  readonly logPath: string;
  readonly process: Deno.ChildProcess;
  readonly logDone: Promise<void>;
  exit?: Deno.CommandStatus;
}

async function tail(path: string, lines = 5): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-lines).join(" | ");
  } catch {
    return "(no log)";
  }
}

async function fetchStatus(port: number, timeoutMs: number): Promise<NodeStats> {
  const response = await fetch(`http://127.0.0.1:${port}/status`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`status ${response.status} from port ${port}`);
  }
  const body = await response.json() as NodeStats;
  if (typeof body !== "object" || body === null || !Array.isArray(body.peers)) {
    throw new Error(`malformed /status from port ${port}`);
  }
  return body;
}

async function stopChildren(children: readonly Child[]): Promise<void> {
  const alive = () => children.filter((c) => c.exit === undefined);
  for (const child of alive()) {
    try {
      child.process.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
  const settled = (ms: number) =>
    Promise.race([
      Promise.allSettled(children.map((c) => c.process.status)),
      new Promise((resolve) => setTimeout(resolve, ms)),
    ]);
  // Re-arm a timer each time to avoid leaving one behind for long.
  for (let i = 0; i < TERM_GRACE_MS / 100 && alive().length > 0; i++) await settled(100);
  for (const child of alive()) {
    try {
      child.process.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 50 && alive().length > 0; i++) await settled(100);
  await Promise.race([
    Promise.allSettled(children.map((c) => c.logDone)),
    new Promise((resolve) => setTimeout(resolve, 1000)),
  ]);
}

/** Start attempts per node: a port found free may be taken before the node binds it. */
const START_ATTEMPTS = 3;

/**
 * Starts `options.nodes` daemons as child processes and waits until each
 * answers `/status`. Ports are found by binding port 0 right before each
 * spawn; a node that loses one of its ports to another socket in the
 * meantime ("address already in use") is restarted on fresh ports.
 */
export async function startProcessCluster(options: ClusterOptions): Promise<ProcessCluster> {
  const { deadline, progress } = options;
  const children: Child[] = [];
  const started = performance.now();
  const usedPorts = new Set<number>();
  const spawnNode = async (
    index: number,
    bootstrap: number | undefined,
    [api, p2p, status]: number[],
    appendLog = false,
  ): Promise<Child> => {
    const nodePorts = { api, p2p, status };
    const iniPath = join(options.runDir, `node-${index}.ini`);
    const logPath = join(options.runDir, `node-${index}.log`);
    await Deno.writeTextFile(
      iniPath,
      iniText(
        options.keyPaths[index],
        nodePorts,
        options.degree,
        options.powDifficulty,
        bootstrap === undefined ? undefined : children[bootstrap].node.p2pPort,
      ),
    );
    const log = await Deno.open(logPath, {
      write: true,
      create: true,
      truncate: !appendLog,
      append: appendLog,
    });
    let process: Deno.ChildProcess;
    try {
      process = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...(options.cpuProf
            ? [
              "--cpu-prof",
              `--cpu-prof-dir=${join(options.runDir, "prof")}`,
              `--cpu-prof-name=node-${index}.cpuprofile`,
            ]
            : []),
          // Some V8 flags (e.g. --perf-basic-prof) also write a V8 log; keep it in the run directory.
          ...(options.v8Flags
            ? [
              `--v8-flags=${options.v8Flags},--no-logfile-per-isolate,` +
              `--logfile=${join(options.runDir, `node-${index}-v8.log`)}`,
            ]
            : []),
          ...(options.denoFlags?.(index) ?? []),
          "--allow-net",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          MAIN_PATH,
          "-c",
          iniPath,
        ],
        cwd: REPO_DIR,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      log.close();
      throw error;
    }
    const child: Child = {
      node: { index, apiPort: api, p2pPort: p2p, bootstrap, pid: process.pid },
      statusPort: status,
      logPath,
      process,
      logDone: process.stderr.pipeTo(log.writable).catch(() => {}),
    };
    process.status.then((status) => child.exit = status);
    children[index] = child;
    return child;
  };
  try {
    for (const batch of startBatches(options.nodes)) {
      const pending = new Set<Child>();
      const attempts = new Map<number, number>();
      const ports = freePorts(3 * batch.length, usedPorts);
      for (const [i, index] of batch.entries()) {
        const bootstrap = index === 0
          ? undefined
          : options.bootstrapThrough ?? Math.floor(options.random() * batch[0]);
        pending.add(await spawnNode(index, bootstrap, ports.slice(3 * i, 3 * i + 3)));
        attempts.set(index, 1);
      }
      await deadline.waitFor(
        async () => {
          for (const exited of [...pending].filter((c) => c.exit !== undefined)) {
            const index = exited.node.index;
            const log = await tail(exited.logPath);
            const tries = attempts.get(index)!;
            if (!/address already in use/i.test(log) || tries >= START_ATTEMPTS) {
              throw new Error(
                `node ${index} exited during start-up (code ${exited.exit!.code}): ${log}`,
              );
            }
            await exited.logDone;
            progress(`  node ${index} lost a port before binding it; restarting on new ports`);
            pending.delete(exited);
            attempts.set(index, tries + 1);
            pending.add(await spawnNode(index, exited.node.bootstrap, freePorts(3, usedPorts)));
          }
          await Promise.all([...pending].map(async (child) => {
            try {
              const status = await fetchStatus(child.statusPort, 1000);
              // The answer must come from this child: its API port, not another node's.
              if (status.apiAddress.endsWith(`:${child.node.apiPort}`)) pending.delete(child);
            } catch {
              // not up yet
            }
          }));
          return pending.size === 0;
        },
        Math.min(deadline.remainingMs, 30_000 + 2_000 * batch.length),
        `nodes ${batch[0]}-${batch[batch.length - 1]} to answer /status`,
        100,
      );
      progress(`  ${children.length}/${options.nodes} nodes up`);
    }
  } catch (error) {
    await stopChildren(children);
    throw error;
  }
  const startupMs = performance.now() - started;
  return {
    mode: "process",
    get nodes() {
      return children.map((c) => c.node);
    },
    startupMs,
    runDir: options.runDir,
    stats: () => Promise.all(children.map((c) => fetchStatus(c.statusPort, 10_000))),
    memory: () => memoryOfPids(children.map((c) => c.node.pid!)),
    cpu: () => cpuOfPids(children.map((c) => c.node.pid!)),
    failures: () =>
      children.filter((c) => c.exit !== undefined).map((c) =>
        `node ${c.node.index} (pid ${c.node.pid}) exited with code ${
          c.exit!.code
        }; log ${c.logPath}`
      ),
    close: () => stopChildren(children),
    statsOf: (index, timeoutMs = 10_000) => fetchStatus(children[index].statusPort, timeoutMs),
    async kill(index, signal) {
      const child = children[index];
      if (child.exit !== undefined) return;
      try {
        child.process.kill(signal);
      } catch {
        // already gone
      }
      await child.process.status;
      await Promise.race([child.logDone, new Promise((r) => setTimeout(r, 1000))]);
    },
    async restart(index, timeoutMs) {
      const old = children[index];
      if (old.exit === undefined) throw new Error(`node ${index} is still running`);
      const child = await spawnNode(
        index,
        old.node.bootstrap,
        [old.node.apiPort, old.node.p2pPort, old.statusPort],
        true,
      );
      await deadline.waitFor(
        async () => {
          if (child.exit !== undefined) {
            throw new Error(
              `node ${index} exited on restart (code ${child.exit.code}): ` +
                await tail(child.logPath),
            );
          }
          try {
            await fetchStatus(child.statusPort, 1000);
            return true;
          } catch {
            return false;
          }
        },
        timeoutMs,
        `node ${index} to answer /status after a restart`,
        100,
      );
    },
  };
}

type PowCache = Record<string, string>;

async function readPowCache(path: string): Promise<PowCache> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(path)) as unknown;
    return typeof parsed === "object" && parsed !== null ? parsed as PowCache : {};
  } catch {
    return {};
  }
}

/**
 * Starts `options.nodes` {@link GossipNode}s in this process (peers accepted
 * down to `keyBits`); proof-of-work nonces are cached next to the keys.
 */
export async function startInProcessCluster(options: ClusterOptions): Promise<Cluster> {
  const { deadline, progress } = options;
  const started = performance.now();
  const warnings: string[] = [];
  const logLevel: LogLevel = "warn";
  const log = new Logger(logLevel, "gossip", (_level, line) => {
    if (warnings.length < 1000) warnings.push(line);
  });
  const powPath = join(options.keysDir, "pow.json");
  const powCache = await readPowCache(powPath);
  let powChanged = false;
  const gossipNodes: GossipNode[] = [];
  const nodes: ClusterNode[] = [];
  const closeAll = async () => {
    await Promise.race([
      Promise.allSettled(gossipNodes.map((n) => n.close())),
      new Promise((resolve) => setTimeout(resolve, 10_000)),
    ]);
    if (warnings.length > 0) {
      await Deno.writeTextFile(join(options.runDir, "nodes.log"), warnings.join("\n") + "\n")
        .catch(() => {});
    }
  };
  try {
    for (let index = 0; index < options.nodes; index++) {
      deadline.check();
      const hostKey = await parseHostKeyPem(
        await Deno.readTextFile(options.keyPaths[index]),
        "hostkey",
        { minBits: options.keyBits },
      );
      const epoch = powEpoch();
      const powKey = `${identityHex(hostKey.identity)}:${options.powDifficulty}:${epoch}`;
      let powNonce = powCache[powKey] === undefined ? undefined : BigInt(powCache[powKey]);
      if (powNonce === undefined) {
        powNonce = solveProofOfWork(hostKey.identity, epoch, options.powDifficulty);
        powCache[powKey] = powNonce.toString();
        powChanged = true;
      }
      const bootstrap = index === 0 ? undefined : Math.floor(options.random() * index);
      const node = new GossipNode({
        hostKey,
        proofOfWork: { epoch, nonce: powNonce },
        minPeerKeyBits: options.keyBits,
        log: log.child(`node-${index}`),
        config: gossipOptions({
          apiAddress: { hostname: "127.0.0.1", port: 0 },
          p2pAddress: { hostname: "127.0.0.1", port: 0 },
          degree: options.degree,
          powDifficulty: options.powDifficulty,
          bootstrappers: bootstrap === undefined ? [] : [gossipNodes[bootstrap].p2pAddress],
        }),
      });
      gossipNodes.push(node);
      await node.start();
      nodes.push({
        index,
        apiPort: node.apiAddress.port,
        p2pPort: node.p2pAddress.port,
        bootstrap,
      });
      if ((index + 1) % 10 === 0 || index + 1 === options.nodes) {
        progress(`  ${index + 1}/${options.nodes} nodes up`);
      }
    }
    if (powChanged) await Deno.writeTextFile(powPath, JSON.stringify(powCache, null, 1) + "\n");
  } catch (error) {
    await closeAll();
    throw error;
  }
  return {
    mode: "in-process",
    nodes,
    startupMs: performance.now() - started,
    runDir: options.runDir,
    stats: () => Promise.resolve(gossipNodes.map((n) => n.stats())),
    memory: () => memoryOfPids([Deno.pid]),
    cpu: () => {
      const usage = process.cpuUsage();
      return Promise.resolve([{ user: usage.user / 1e6, system: usage.system / 1e6 }]);
    },
    failures: () => [],
    close: closeAll,
  };
}
