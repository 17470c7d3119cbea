/**
 * Command-line entry of the gossip daemon.
 *
 * ```
 * gossip [-c FILE] [--log-level LEVEL]   run a node
 * gossip keygen [--bits N] FILE          write a new RSA host key (PKCS#8 PEM)
 * gossip -h | --help | --version
 * ```
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the node fails
 * at run time (e.g. a port in use), 2 for bad command-line or configuration
 * input, with one line naming the flag or key and the fix.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { loadConfig } from "./lib/config.ts";
import { ConfigError } from "./lib/errors.ts";
import { generateHostKeyPem, loadHostKey, writeHostKeyFile } from "./lib/hostkey.ts";
import { isLogLevel, LOG_LEVELS, Logger, type LogLevel } from "./lib/log.ts";
import { GossipNode } from "./lib/node.ts";
import { VERSION } from "./lib/version.ts";

const USAGE = `gossip ${VERSION}: peer-to-peer gossip daemon (VoidPhone Gossip API)

Usage:
  gossip [-c FILE] [--log-level LEVEL]   run a node (default config: gossip.ini)
  gossip keygen [--bits N] FILE          write a new RSA host key (PEM, mode 0600)
  gossip status [-c FILE]                show a running node's peers and counters
                                         (needs status_address in the config)
  gossip -h | --help                     show this help
  gossip --version                       show the version

Options:
  -c, --config FILE     configuration file (Windows INI, shared with other modules)
  --log-level LEVEL     ${LOG_LEVELS.join(", ")} (default: warn)
  --bits N              keygen: RSA modulus size (default: 4096)

A missing host key file named by the config is generated on first start.`;

/** Thrown for bad command-line input; exits with code 2. */
class UsageError extends Error {}

function fail(message: string, code: number): never {
  console.error(`gossip: ${message}`);
  Deno.exit(code);
}

async function runKeygen(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { bits: { type: "string", default: "4096" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log("Usage: gossip keygen [--bits N] FILE");
    return;
  }
  if (positionals.length !== 1) throw new UsageError("keygen takes exactly one FILE argument");
  if (!/^\d+$/.test(values.bits)) {
    throw new UsageError(`--bits: "${values.bits}" is not a number; use e.g. --bits 4096`);
  }
  const path = positionals[0];
  await writeHostKeyFile(path, await generateHostKeyPem(Number(values.bits)));
  console.log(`wrote ${values.bits}-bit RSA host key to ${path}`);
}

async function runStatus(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { config: { type: "string", short: "c", default: "gossip.ini" } },
    strict: true,
  });
  const config = await loadConfig(values.config);
  const address = config.gossip.statusAddress;
  if (!address) {
    throw new ConfigError("status_address", "not set; add e.g. `status_address = 127.0.0.1:7002`");
  }
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  let response: Response;
  try {
    response = await fetch(`http://${host}:${address.port}/status`);
  } catch (error) {
    fail(`no node answers at ${host}:${address.port}: ${(error as Error).message}`, 1);
  }
  console.log(JSON.stringify(await response.json(), null, 2));
}

async function runNode(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: "string", short: "c", default: "gossip.ini" },
      "log-level": { type: "string", default: "warn" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.version) {
    console.log(`gossip ${VERSION}`);
    return;
  }
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}"; see gossip --help`);
  }
  const level = values["log-level"];
  if (!isLogLevel(level)) {
    throw new UsageError(`--log-level: "${level}" is not one of ${LOG_LEVELS.join(", ")}`);
  }
  const log = new Logger(level as LogLevel);
  const config = await loadConfig(values.config);
  if (!existsSync(config.hostkeyPath)) {
    await writeHostKeyFile(config.hostkeyPath, await generateHostKeyPem(4096));
    log.warn("no host key found; generated a new 4096-bit key", { path: config.hostkeyPath });
  }
  const hostKey = await loadHostKey(config.hostkeyPath);
  const node = new GossipNode({ hostKey, config: config.gossip, log });
  try {
    await node.start();
  } catch (error) {
    await node.close();
    const reason = error instanceof Deno.errors.AddrInUse
      ? "address already in use (is another node running?)"
      : error instanceof Error
      ? error.message
      : String(error);
    fail(`cannot start: ${reason}`, 1);
  }
  console.error(
    `gossip ${VERSION} running: api ${node.stats().apiAddress}, p2p ${node.stats().p2pAddress}, ` +
      `identity ${node.shortId}`,
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: Deno.Signal) => {
      if (stopping) return;
      stopping = true;
      log.info("shutting down", { signal });
      node.close().then(resolve, resolve);
    };
    const signals: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT", "SIGBREAK"]
      : ["SIGINT", "SIGTERM"];
    for (const signal of signals) Deno.addSignalListener(signal, () => stop(signal));
  });
  Deno.exit(0);
}

async function main(args: string[]): Promise<void> {
  try {
    if (args[0] === "keygen") await runKeygen(args.slice(1));
    else if (args[0] === "status") await runStatus(args.slice(1));
    else await runNode(args);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) fail(error.message, 2);
    // node:util parseArgs reports unknown or malformed flags with a code.
    const code = (error as { code?: string }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      // Keep the first sentence: "Unknown option '--x'" without the long advice.
      const first = (error as Error).message.split(/\. /)[0];
      fail(`${first}; see gossip --help`, 2);
    }
    throw error;
  }
}

if (import.meta.main) await main(Deno.args);
