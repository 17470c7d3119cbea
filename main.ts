/**
 * Command-line entry of the gossip daemon.
 *
 * ```
 * gossip [-c FILE] [--log-level LEVEL] [--log-format FORMAT] [--init-hostkey]   run a node
 * gossip [-c FILE] keygen [--bits N] [FILE]       write a new RSA host key (PKCS#8 PEM)
 * gossip [-c FILE] status [--json] [--address HOST:PORT]   ask a running node
 * gossip -h | --help | --version
 * ```
 *
 * Options given before `keygen` or `status` (as `deno task start status` does)
 * apply to them too. Every error is one line `gossip: <key>: <problem>`, where
 * the key is a config key, a flag or the command. Exit codes: 0 after a clean
 * shutdown (SIGINT/SIGTERM), 1 when the node fails at run time (e.g. a port in
 * use) or no node answers `status`, 2 for bad command-line or configuration input.
 * SIGHUP rereads the config: log level and limits change at once; other
 * changed keys are named as needing a restart.
 *
 * The daemon reads no environment variable (the executables run without
 * `--allow-env`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  formatSocketAddress,
  isIPv6Literal,
  parseSocketAddress,
  type SocketAddress,
} from "./lib/address.ts";
import { CONFIG_KEYS, configAdvice, type GossipConfig, loadConfig } from "./lib/config.ts";
import { clipText, ConfigError, GossipError, ListenError } from "./lib/errors.ts";
import {
  assertHostKeyPathFree,
  DEFAULT_MAX_BITS,
  DEFAULT_MIN_BITS,
  generateHostKeyPem,
  loadHostKey,
  MAX_BITS_REASON,
  writeHostKeyFile,
} from "./lib/hostkey.ts";
import {
  isLogFormat,
  isLogLevel,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  Logger,
  type LogLevel,
} from "./lib/log.ts";
import { GossipNode, type NodeStats, type ReconfigurableOptions } from "./lib/node.ts";
import { VERSION } from "./lib/version.ts";

const DEFAULT_CONFIG = "gossip.ini";
const DEFAULT_LOG_LEVEL: LogLevel = "warn";
const STATUS_TIMEOUT_MS = 5000;

const USAGE = `gossip ${VERSION}: peer-to-peer gossip daemon (VoidPhone Gossip API)

Usage:
  gossip [OPTIONS]                          run a node
  gossip [-c FILE] keygen [--bits N] [FILE] write a new RSA host key (PEM, mode 0600);
                                            FILE defaults to the config's hostkey
  gossip [-c FILE] status [--json] [--address HOST:PORT]
                                            show a running node's peers and counters
                                            (from status_address in the config, or HOST:PORT)
  gossip -h | --help                        show this help
  gossip --version                          show the version

Options:
  -c, --config FILE     configuration file (Windows INI, shared with other modules;
                        default: ${DEFAULT_CONFIG})
  --log-level LEVEL     ${LOG_LEVELS.join(", ")}
                        (default: log_level in the config, else ${DEFAULT_LOG_LEVEL})
  --log-format FORMAT   ${LOG_FORMATS.join(" or ")} (default: text; json is one object per line)
  --init-hostkey        create the host key named by the config if no file exists there
                        (the quick start uses this; otherwise a missing key is an error)
  --bits N              keygen: RSA modulus size, ${DEFAULT_MIN_BITS} to ${DEFAULT_MAX_BITS} (default: 4096)
  --json                status: print the node's JSON instead of a table
  --address HOST:PORT   status: ask the node at HOST:PORT, without reading a config

Signals: SIGINT and SIGTERM stop the node (exit 0); SIGHUP rereads the config,
applies log_level, validation_timeout_ms, max_api_connections and
max_peer_connections, and names other changed keys as needing a restart.`;

/** Bad command-line input: exits with code 2 as `gossip: <key>: <problem>`. */
class UsageError extends GossipError {
  /** Creates the error for the flag or command `key`. */
  constructor(readonly key: string, problem: string) {
    super(`${key}: ${problem}`);
  }
}

/** A run-time failure: exits with code 1 as `gossip: <key>: <problem>`. */
class RunError extends GossipError {
  /** Creates the error for the config key or command `key`. */
  constructor(readonly key: string, problem: string) {
    super(`${key}: ${problem}`);
  }
}

function fail(message: string, code: number): never {
  console.error(`gossip: ${message}`);
  Deno.exit(code);
}

/** Options accepted before a command, and by the node itself. */
const GLOBAL_OPTIONS = {
  config: { type: "string", short: "c" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "init-hostkey": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const;

/** Options that take a value (their value is never a command). */
const VALUE_OPTIONS = new Set(["-c", "--config", "--log-level", "--log-format"]);

type GlobalValues = {
  config?: string;
  "log-level"?: string;
  "log-format"?: string;
  "init-hostkey"?: boolean;
  help?: boolean;
  version?: boolean;
};

/** Splits `args` at the first positional argument if it names a command. */
function splitCommand(args: string[]): { global: string[]; command?: string; rest: string[] } {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") break;
    if (VALUE_OPTIONS.has(arg)) {
      i++;
      continue;
    }
    if (arg.startsWith("-")) continue;
    if (arg === "keygen" || arg === "status") {
      return { global: args.slice(0, i), command: arg, rest: args.slice(i + 1) };
    }
    break;
  }
  return { global: args, rest: [] };
}

function parseGlobal(args: string[], allowPositionals: boolean) {
  const { values, positionals } = parseArgs({
    args,
    options: GLOBAL_OPTIONS,
    allowPositionals,
    strict: true,
  });
  return { values: values as GlobalValues, positionals };
}

function logLevelOption(value: string | undefined): LogLevel | undefined {
  if (value === undefined) return undefined;
  if (!isLogLevel(value)) {
    throw new UsageError(
      "--log-level",
      `"${clipText(value)}" is not one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  return value;
}

function logFormatOption(value: string | undefined): LogFormat {
  if (value === undefined) return "text";
  if (!isLogFormat(value)) {
    throw new UsageError(
      "--log-format",
      `"${clipText(value)}" is not one of ${LOG_FORMATS.join(", ")}`,
    );
  }
  return value;
}

// ---- keygen -----------------------------------------------------------------

async function runKeygen(global: GlobalValues, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      bits: { type: "string", default: "4096" },
      config: { type: "string", short: "c" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || global.help) {
    console.log("Usage: gossip [-c FILE] keygen [--bits N] [FILE]\n\n" + USAGE);
    return;
  }
  if (positionals.length > 1) {
    throw new UsageError("keygen", "takes at most one FILE argument; see gossip --help");
  }
  if (!/^\d{1,6}$/.test(values.bits)) {
    throw new UsageError(
      "--bits",
      `"${clipText(values.bits)}" is not a number; use e.g. --bits 4096`,
    );
  }
  let path = positionals[0];
  if (path === undefined) {
    const configPath = values.config ?? global.config ?? DEFAULT_CONFIG;
    try {
      path = (await loadConfig(configPath)).hostkeyPath;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new UsageError(
        "keygen",
        `no FILE given and no hostkey from the config (${error.message}); ` +
          "use gossip keygen FILE",
      );
    }
  }
  const bits = Number(values.bits);
  if (bits < DEFAULT_MIN_BITS || bits > DEFAULT_MAX_BITS || bits % 8 !== 0) {
    const why = bits > DEFAULT_MAX_BITS
      ? `: ${MAX_BITS_REASON}`
      : bits < DEFAULT_MIN_BITS
      ? ": smaller keys are too weak"
      : "";
    throw new UsageError(
      "keygen",
      `refusing to write a ${bits}-bit key to ${clipText(path, 200)}; the daemon accepts ` +
        `multiples of 8 from ${DEFAULT_MIN_BITS} to ${DEFAULT_MAX_BITS} bits${why}`,
    );
  }
  // Fail before the slow generation when something is already there.
  await assertHostKeyPathFree(path, "keygen");
  await writeHostKeyFile(path, await generateHostKeyPem(bits), "keygen");
  console.log(`wrote ${bits}-bit RSA host key to ${path}`);
}

// ---- status -----------------------------------------------------------------

/** The parts of the status JSON the table shows (older nodes may lack some). */
type StatusJson = Partial<NodeStats> & {
  peers?: Partial<NodeStats["peers"][number]>[];
  spreading?: Partial<NodeStats["spreading"]>;
};

function hostPort(address: SocketAddress): string {
  return isIPv6Literal(address.hostname)
    ? `[${address.hostname}]:${address.port}`
    : `${address.hostname}:${address.port}`;
}

async function runStatus(global: GlobalValues, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: "string", short: "c" },
      json: { type: "boolean" },
      address: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || global.help) {
    console.log("Usage: gossip [-c FILE] status [--json] [--address HOST:PORT]\n\n" + USAGE);
    return;
  }
  if (positionals.length > 0) {
    throw new UsageError("status", `unexpected argument "${clipText(positionals[0])}"`);
  }
  let address: SocketAddress;
  if (values.address !== undefined) {
    address = parseSocketAddress(values.address, "--address");
  } else {
    const configPath = values.config ?? global.config ?? DEFAULT_CONFIG;
    const config = await loadConfig(configPath);
    if (!config.gossip.statusAddress) {
      throw new ConfigError(
        "status_address",
        `not set in ${clipText(configPath, 200)}; add e.g. \`status_address = 127.0.0.1:7002\` ` +
          "to [gossip] and restart the node, or ask a node with --address HOST:PORT",
      );
    }
    address = config.gossip.statusAddress;
  }
  const where = hostPort(address);
  let status: StatusJson;
  try {
    const response = await fetch(`http://${where}/status`, {
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status}`);
    }
    status = await response.json();
  } catch (error) {
    const reason = error instanceof Error && error.name === "TimeoutError"
      ? `no answer within ${STATUS_TIMEOUT_MS / 1000} s`
      : error instanceof Error
      ? error.message.replace(/^error sending request for url \([^)]*\): /, "")
      : String(error);
    throw new RunError("status", `no node answers at ${where} (${clipText(reason, 200)})`);
  }
  console.log(values.json ? JSON.stringify(status, null, 2) : formatStatus(status, where));
}

function bytes(n: number | undefined): string {
  const value = n ?? 0;
  if (value < 1024) return `${value} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${scaled.toFixed(scaled < 10 ? 1 : 0)} ${units[unit]}`;
}

function duration(ms: number | undefined): string {
  const s = Math.floor((ms ?? 0) / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Left-aligned columns, except those listed in `right`. */
function table(rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((row) =>
    row.map((cell, i) => right.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))
      .join("  ").trimEnd()
  ).join("\n");
}

/** The readable report of `gossip status`. */
function formatStatus(status: StatusJson, where: string): string {
  const s: Partial<NodeStats["spreading"]> = status.spreading ?? {};
  const peers = [...(status.peers ?? [])].sort((a, b) =>
    String(a.direction).localeCompare(String(b.direction)) ||
    String(a.address).localeCompare(String(b.address))
  );
  const lines = [
    `node ${status.identity ?? "?"}`,
    `  api ${status.apiAddress ?? "?"}   p2p ${status.p2pAddress ?? "?"}   status ${where}`,
    "",
    `PEERS (${peers.length})`,
  ];
  if (peers.length === 0) {
    lines.push("  none connected");
  } else {
    const rows = [
      ["IDENTITY", "DIRECTION", "ADDRESS", "CONNECTED", "RECEIVED", "SENT", "SCORE", "RTT"],
    ];
    for (const p of peers) {
      rows.push([
        String(p.identity ?? "?").slice(0, 16),
        String(p.direction ?? "?"),
        clipText(String(p.address ?? "?"), 60),
        duration(p.ageMs),
        bytes(p.bytesIn),
        bytes(p.bytesOut),
        String(p.score ?? 0),
        p.rttMs === undefined ? "-" : `${p.rttMs} ms`,
      ]);
    }
    lines.push(
      ...table(rows, new Set([3, 4, 5, 6, 7])).split("\n").map((line) => `  ${line}`),
    );
  }
  const counters: [string, number | string | undefined][] = [
    ["known peers (spares)", status.knownPeers],
    ["API clients", status.apiClients],
    ["items stored", status.itemsStored],
    ["items announced here", status.local?.announced],
    ["items received", s.received],
    ["duplicate copies", s.duplicates],
    ["items pulled (IWANT)", s.pulled],
    ["item messages sent", s.itemsSent],
    ["notifications sent", status.local?.notificationsSent],
    ["validations pending", status.pendingValidations],
    ["validations timed out", s.unanswered],
    ["items invalid", s.invalid],
    ["announcements dropped", status.local?.announceDropped],
    ["notifications dropped", status.local?.notificationsDropped],
    ["validation overflow", s.overloaded],
    ["peer messages dropped", status.peerMessagesDropped],
    ["handshake failures", status.handshakeFailureCount],
    ["connections refused", status.peersRefused],
    ["peers banned", status.guard?.banned],
    ["bytes from peers", bytes(status.bytesIn)],
    ["bytes to peers", bytes(status.bytesOut)],
  ];
  lines.push("", "COUNTERS");
  const half = Math.ceil(counters.length / 2);
  const rows = counters.slice(0, half).map(([label, value], i) => {
    const other = counters[half + i];
    return [
      label,
      String(value ?? 0),
      other ? other[0] : "",
      other ? String(other[1] ?? 0) : "",
    ];
  });
  lines.push(...table(rows, new Set([1, 3])).split("\n").map((line) => `  ${line}`));
  return lines.join("\n");
}

// ---- run --------------------------------------------------------------------

/** Config keys SIGHUP applies without a restart. */
const RELOADABLE: readonly (keyof ReconfigurableOptions)[] = [
  "validationTimeoutMs",
  "maxApiConnections",
  "maxPeerConnections",
];

/** Names of the config keys whose values differ between `before` and `after`. */
function changedKeys(before: GossipConfig, after: GossipConfig): string[] {
  const changed: string[] = [];
  for (const spec of CONFIG_KEYS) {
    const pick = (config: GossipConfig): unknown =>
      spec.field === "hostkeyPath"
        ? config.hostkeyPath
        : spec.field === "logLevel"
        ? config.logLevel
        : config.gossip[spec.field];
    if (JSON.stringify(pick(before)) !== JSON.stringify(pick(after))) changed.push(spec.name);
  }
  return changed;
}

/** Rereads the config on SIGHUP and applies what can change safely. */
class Reloader {
  constructor(
    private readonly path: string,
    private running: GossipConfig,
    private readonly node: GossipNode,
    private readonly log: Logger,
    private readonly cliLevel: LogLevel | undefined,
  ) {}

  async reload(): Promise<void> {
    let next: GossipConfig;
    try {
      next = await loadConfig(this.path);
    } catch (error) {
      this.log.error("reload failed; keeping the running configuration", {
        error: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    const changed = changedKeys(this.running, next);
    const applied: string[] = [];
    const restart: string[] = [];
    const limits: { -readonly [K in keyof ReconfigurableOptions]?: number } = {};
    for (const name of changed) {
      const spec = CONFIG_KEYS.find((s) => s.name === name)!;
      if (name === "log_level") {
        if (this.cliLevel === undefined) applied.push(name);
      } else if ((RELOADABLE as readonly string[]).includes(spec.field)) {
        const field = spec.field as keyof ReconfigurableOptions;
        limits[field] = next.gossip[field];
        applied.push(name);
      } else {
        restart.push(name);
      }
    }
    if (changed.includes("log_level")) {
      if (this.cliLevel !== undefined) {
        this.log.warn("log_level changed, but --log-level on the command line takes precedence", {
          level: this.cliLevel,
        });
      } else {
        this.log.setLevel(next.logLevel ?? DEFAULT_LOG_LEVEL);
      }
    }
    try {
      if (Object.keys(limits).length > 0) this.node.reconfigure(limits);
    } catch (error) {
      this.log.error("reload failed; keeping the running configuration", {
        error: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    // What was applied is now running; keys needing a restart keep their running values.
    this.running = {
      ...this.running,
      ...(next.logLevel === undefined ? { logLevel: undefined } : { logLevel: next.logLevel }),
      gossip: { ...this.running.gossip, ...limits },
    };
    if (restart.length > 0) {
      this.log.warn("reloaded configuration; these changes need a restart", {
        restart: restart.join(","),
        applied: applied.join(",") || undefined,
      });
    } else {
      this.log.info("reloaded configuration", {
        applied: applied.join(",") || "nothing changed",
      });
    }
  }
}

async function runNode(args: string[]): Promise<void> {
  const { values, positionals } = parseGlobal(args, true);
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.version) {
    console.log(`gossip ${VERSION}`);
    return;
  }
  if (positionals.length > 0) {
    throw new UsageError(
      "command line",
      `unexpected argument "${clipText(positionals[0])}"; commands are keygen and status ` +
        "(see gossip --help)",
    );
  }
  const cliLevel = logLevelOption(values["log-level"]);
  const format = logFormatOption(values["log-format"]);
  const configPath = values.config ?? DEFAULT_CONFIG;
  const config = await loadConfig(configPath);
  const log = new Logger(
    cliLevel ?? config.logLevel ?? DEFAULT_LOG_LEVEL,
    "gossip",
    undefined,
    format,
  );
  if (values["init-hostkey"]) await initHostKey(config.hostkeyPath, log);
  const hostKey = await loadHostKey(config.hostkeyPath);
  const node = new GossipNode({ hostKey, config: config.gossip, log });
  try {
    await node.start();
  } catch (error) {
    await node.close();
    if (error instanceof ListenError) {
      throw new RunError(error.key, error.message.slice(error.key.length + 2));
    }
    throw new RunError("start", error instanceof Error ? error.message : String(error));
  }
  for (const advice of configAdvice(config.gossip)) log.warn(advice.message, { key: advice.key });
  // Listen for signals before saying that the node runs: whoever reads that line may stop it.
  let stopping = false;
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => stopped = resolve);
  const stop = (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    node.close().then(stopped, stopped);
  };
  const windows = Deno.build.os === "windows";
  const signals: Deno.Signal[] = windows ? ["SIGINT", "SIGBREAK"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, () => stop(signal));
  if (!windows) {
    const reloader = new Reloader(configPath, config, node, log, cliLevel);
    let reloading = Promise.resolve();
    Deno.addSignalListener("SIGHUP", () => {
      if (stopping) return;
      log.info("SIGHUP: rereading the configuration", { config: configPath });
      reloading = reloading.then(() => reloader.reload());
    });
  }
  const running = {
    api: formatSocketAddress(node.apiAddress),
    p2p: formatSocketAddress(node.p2pAddress),
    status: node.statusAddress ? `http://${hostPort(node.statusAddress)}/` : undefined,
    identity: node.shortId,
  };
  // Always shown, whatever the level: where the node listens and who it is.
  console.error(
    format === "json"
      ? JSON.stringify({
        time: new Date().toISOString(),
        level: "info",
        component: "gossip",
        msg: "running",
        version: VERSION,
        ...running,
      })
      : `gossip ${VERSION} running: api ${running.api}, p2p ${running.p2p}, ` +
        (running.status ? `status ${running.status}, ` : "") + `identity ${running.identity}`,
  );
  await done;
  Deno.exit(0);
}

/** Creates the host key at `path` when nothing is there (`--init-hostkey`). */
async function initHostKey(path: string, log: Logger): Promise<void> {
  try {
    await Deno.lstat(path);
    return; // something is there: loadHostKey says whether it is usable
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) return;
  }
  await writeHostKeyFile(path, await generateHostKeyPem(4096));
  log.warn("no host key found; generated a new 4096-bit key", { path });
}

// ---- main -------------------------------------------------------------------

/** The `gossip: <key>: <problem>` text of a node:util parseArgs error. */
function parseArgsMessage(error: Error & { code: string }): string {
  const option = /'(-[^', ]+)(?:, (--[^', ]+))?[^']*'/.exec(error.message);
  const name = option?.[2] ?? option?.[1];
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `${clipText(name ?? "command line")}: unknown option; see gossip --help`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return `${clipText(name ?? "command line")}: ${
        /argument missing/.test(error.message) ? "needs a value" : "takes no value"
      }; see gossip --help`;
    default:
      return `command line: ${clipText(error.message.split(/\. /)[0], 200)}; see gossip --help`;
  }
}

async function main(args: string[]): Promise<void> {
  try {
    const { global, command, rest } = splitCommand(args);
    if (command === undefined) {
      await runNode(args);
      return;
    }
    const { values } = parseGlobal(global, false);
    logLevelOption(values["log-level"]);
    logFormatOption(values["log-format"]);
    if (command === "keygen") await runKeygen(values, rest);
    else await runStatus(values, rest);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) fail(error.message, 2);
    if (error instanceof RunError) fail(error.message, 1);
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      fail(parseArgsMessage(error as Error & { code: string }), 2);
    }
    throw error;
  }
}

if (import.meta.main) await main(Deno.args);
