/**
 * A live demonstration: a cluster of gossip nodes in this process on
 * 127.0.0.1, each with a local module that subscribes and validates, and a
 * few items announced from random nodes with a progress line per item.
 *
 * ```
 * deno task demo [--nodes N] [--items M] [--interval-ms MS] [--web [--port P]]
 * ```
 *
 * Progress goes to stderr (redrawn in place on a terminal), the summary to
 * stdout. With `--web` a page at http://127.0.0.1:P/ draws the overlay and
 * replays each item spreading over it (scripts/demo_web.ts); it stays up
 * after the last item until Ctrl-C or SIGTERM (exit code as without `--web`).
 * Exit codes: 0 when every item reached every node, 1 otherwise or on
 * error, 2 for bad usage, 130 after Ctrl-C before the end. Everything is
 * closed on every path.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type GossipOptions, gossipOptions } from "../lib/config.ts";
import { generateHostKeyPem, type HostKey, parseHostKeyPem } from "../lib/hostkey.ts";
import { GossipNode } from "../lib/node.ts";
import { DemoApiClient } from "./demo_client.ts";
import type { DemoView } from "./demo_web.ts";
import { DemoWebServer } from "./demo_web.ts";

/** Data type the demo modules subscribe to. */
export const DEMO_DATA_TYPE = 0xd0d0;

/** Command-line options of the demo. */
export interface DemoOptions {
  /** Nodes in the cluster. */
  readonly nodes: number;
  /** Items to announce. */
  readonly items: number;
  /** Pause between announcements in ms. */
  readonly intervalMs: number;
  /** Port of the web page (0: any free port); undefined without `--web`. */
  readonly webPort?: number;
}

const KEY_BITS = 2048;
const SETUP_TIMEOUT_MS = 60_000;
const OVERLAY_TIMEOUT_MS = 20_000;
const ITEM_TIMEOUT_MS = 5_000;
const TEARDOWN_TIMEOUT_MS = 10_000;
const BAR_WIDTH = 10;

const USAGE = `Usage: deno task demo [--nodes N] [--items M] [--interval-ms MS] [--web [--port P]]

Starts N gossip nodes in this process on 127.0.0.1 (degree 4, each joining
through a random earlier node), gives each a module that subscribes and
validates, announces M items from random nodes and shows how fast each one
reaches every other node.

Options:
  --nodes N          nodes in the cluster, 2..64 (default 10)
  --items M          items to announce, 1..1000 (default 5; 20 with --web)
  --interval-ms MS   pause between items, 0..60000 (default 1000; 3000 with --web)
  --web              serve a page at http://127.0.0.1:P/ that draws the overlay and
                     replays each item spreading; it stays up after the last item
                     until Ctrl-C
  --port P           port of the page, 0..65535 (default 0: any free port)
  -h, --help         show this help`;

/** Thrown for bad command-line input; exits with code 2. */
class UsageError extends Error {}

/** Thrown by waits once the demo was interrupted or ran out of time. */
class AbortedError extends Error {}

function intOption(
  name: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`--${name}: "${text}" is not an integer from ${min} to ${max}`);
  }
  return Number(text);
}

/** Parses the command line; returns undefined for `--help`. */
export function parseDemoOptions(args: string[]): DemoOptions | undefined {
  const { values, positionals } = parseArgs({
    args,
    options: {
      nodes: { type: "string" },
      items: { type: "string" },
      "interval-ms": { type: "string" },
      web: { type: "boolean" },
      port: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return undefined;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.port !== undefined && !values.web) throw new UsageError("--port needs --web");
  const web = values.web === true;
  return {
    nodes: intOption("nodes", values.nodes, 10, 2, 64),
    items: intOption("items", values.items, web ? 20 : 5, 1, 1000),
    intervalMs: intOption("interval-ms", values["interval-ms"], web ? 3000 : 1000, 0, 60_000),
    ...(web ? { webPort: intOption("port", values.port, 0, 0, 65535) } : {}),
  };
}

/** A node, its module and what the module received. */
interface Member {
  readonly index: number;
  readonly node: GossipNode;
  module?: DemoApiClient;
  /** Payload text -> arrival times (more than one would be a duplicate). */
  readonly arrivals: Map<string, number[]>;
}

/** An announced item, for the web page. */
interface Announced {
  readonly number: number;
  readonly origin: number;
  readonly text: string;
  readonly sentAt: number;
}

/** The outcome of one announced item. */
interface ItemResult {
  readonly number: number;
  readonly origin: number;
  readonly reached: number;
  readonly expected: number;
  /** Time from ANNOUNCE to the last arrival, when every node was reached. */
  readonly msToAll?: number;
}

/** Writes progress to stderr: redrawn in place on a terminal, final lines otherwise. */
class Progress {
  private readonly tty = Deno.stderr.isTerminal();
  private readonly encoder = new TextEncoder();
  private shown = "";

  /** Shows `line` as the current state (terminal only). */
  update(line: string): void {
    if (!this.tty || line === this.shown) return;
    this.shown = line;
    Deno.stderr.writeSync(this.encoder.encode(`\r${line}\x1b[K`));
  }

  /** Shows `line` as the final state and moves to a new line. */
  finish(line: string): void {
    Deno.stderr.writeSync(this.encoder.encode(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`));
    this.shown = "";
  }

  /** Ends a partly drawn line (before other output). */
  break(): void {
    if (this.shown !== "") Deno.stderr.writeSync(this.encoder.encode("\n"));
    this.shown = "";
  }
}

function bar(done: number, total: number): string {
  const filled = total === 0 ? BAR_WIDTH : Math.round((done / total) * BAR_WIDTH);
  return "█".repeat(filled) + "░".repeat(BAR_WIDTH - filled);
}

function ms(value: number): string {
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** The demo run; {@link abort} makes every pending wait throw. */
class Demo {
  private readonly controller = new AbortController();
  private readonly members: Member[] = [];
  private readonly progress = new Progress();
  private readonly announced: Announced[] = [];
  private phase = "generating keys";
  private tornDown: Promise<void> | undefined;

  constructor(private readonly options: DemoOptions) {}

  /** What the web page shows. */
  view(): DemoView {
    const byId = new Map(this.members.map((m) => [m.node.identityHex, m.index]));
    return {
      phase: this.phase,
      nodes: this.members.map((m) => ({
        index: m.index,
        identity: m.node.identityHex,
        peers: m.node.peerIdentities.flatMap((id) => {
          const index = byId.get(id);
          return index === undefined ? [] : [index];
        }),
      })),
      items: this.announced.map((a) => ({
        number: a.number,
        origin: a.origin,
        arrivals: this.members.map((m) => {
          const at = m.index === a.origin ? undefined : m.arrivals.get(a.text)?.[0];
          return at === undefined ? null : Math.round((at - a.sentAt) * 100) / 100;
        }),
      })),
    };
  }

  /** Sets the phase the page shows. */
  setPhase(phase: string): void {
    this.phase = phase;
  }

  /** True once {@link abort} was called. */
  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  /** Stops the run with `reason`; pending waits throw {@link AbortedError}. */
  abort(reason: string): void {
    if (this.aborted) return;
    this.progress.break();
    this.controller.abort(reason);
  }

  /** Runs the demo; returns the exit code. */
  async run(): Promise<number> {
    const { nodes } = this.options;
    const keys = await this.generateKeys(nodes);
    this.phase = "starting nodes";
    const setupStart = performance.now();
    for (let i = 0; i < nodes; i++) {
      const bootstrap = i === 0
        ? []
        : [this.members[Math.floor(Math.random() * i)].node.p2pAddress];
      await this.startMember(i, keys[i], bootstrap);
    }
    console.error(
      `started ${nodes} nodes on 127.0.0.1 in ${ms(performance.now() - setupStart)} ms`,
    );
    this.phase = "waiting for a connected overlay";
    await this.waitForOverlay();

    const results: ItemResult[] = [];
    for (let n = 1; n <= this.options.items; n++) {
      if (n > 1) await this.sleep(this.options.intervalMs);
      this.phase = `spreading item ${n} of ${this.options.items}`;
      results.push(await this.spreadItem(n));
    }
    const code = this.summarize(results);
    this.phase = `done: ${results.length} items` +
      (code === 0 ? ", each reached every node" : ", some did not reach every node");
    return code;
  }

  /** Closes modules, then nodes; bounded, idempotent. */
  teardown(): Promise<void> {
    this.tornDown ??= (async () => {
      this.progress.break();
      const close = (async () => {
        await Promise.allSettled(this.members.map((m) => m.module?.close()));
        await Promise.allSettled(this.members.map((m) => m.node.close()));
      })();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          console.error(`demo: teardown took over ${TEARDOWN_TIMEOUT_MS / 1000} s; giving up`);
          resolve();
        }, TEARDOWN_TIMEOUT_MS);
      });
      await Promise.race([close, timeout]);
      clearTimeout(timer);
    })();
    return this.tornDown;
  }

  private async generateKeys(count: number): Promise<HostKey[]> {
    console.error(`generating ${count} ${KEY_BITS}-bit RSA host keys...`);
    const start = performance.now();
    const keys = await this.bounded(
      Promise.all(
        Array.from(
          { length: count },
          async () => await parseHostKeyPem(await generateHostKeyPem(KEY_BITS)),
        ),
      ),
      SETUP_TIMEOUT_MS,
      "key generation",
    );
    console.error(`generated ${count} keys in ${ms(performance.now() - start)} ms`);
    return keys;
  }

  private async startMember(
    index: number,
    hostKey: HostKey,
    bootstrappers: GossipOptions["bootstrappers"],
  ): Promise<void> {
    this.throwIfAborted();
    const node = new GossipNode({
      hostKey,
      config: gossipOptions({
        apiAddress: { hostname: "127.0.0.1", port: 0 },
        p2pAddress: { hostname: "127.0.0.1", port: 0 },
        bootstrappers,
        degree: 4,
        powDifficulty: 8,
        membershipIntervalMs: 250,
      }),
    });
    const member: Member = { index, node, arrivals: new Map() };
    this.members.push(member);
    await node.start();
    member.module = await DemoApiClient.connect(node.apiAddress, (notification) => {
      const text = new TextDecoder().decode(notification.data);
      const times = member.arrivals.get(text);
      if (times) times.push(notification.receivedAt);
      else member.arrivals.set(text, [notification.receivedAt]);
      return true;
    });
    await member.module.notify(DEMO_DATA_TYPE);
  }

  /** Waits until the peer graph is connected and every node has 2+ peers. */
  private async waitForOverlay(): Promise<void> {
    const start = performance.now();
    const minPeers = Math.min(2, this.members.length - 1);
    const ready = () =>
      this.members.every((m) => m.node.peerIdentities.length >= minPeers) && this.connected();
    await this.waitUntil(ready, OVERLAY_TIMEOUT_MS, "a connected overlay");
    const links = new Set<string>();
    for (const m of this.members) {
      for (const peer of m.node.peerIdentities) {
        const self = m.node.identityHex;
        links.add(self < peer ? `${self}-${peer}` : `${peer}-${self}`);
      }
    }
    console.error(
      `overlay connected in ${ms(performance.now() - start)} ms: ${links.size} links, ` +
        `${ms((2 * links.size) / this.members.length)} peers per node on average`,
    );
  }

  private connected(): boolean {
    const byId = new Map(this.members.map((m) => [m.node.identityHex, m]));
    const seen = new Set([this.members[0].node.identityHex]);
    const queue = [this.members[0]];
    for (let member = queue.pop(); member !== undefined; member = queue.pop()) {
      for (const peer of member.node.peerIdentities) {
        const next = byId.get(peer);
        if (next !== undefined && !seen.has(peer)) {
          seen.add(peer);
          queue.push(next);
        }
      }
    }
    return seen.size === this.members.length;
  }

  private async spreadItem(number: number): Promise<ItemResult> {
    const origin = this.members[Math.floor(Math.random() * this.members.length)];
    const others = this.members.filter((m) => m !== origin);
    const nonce = crypto.getRandomValues(new Uint8Array(4));
    const text = `demo item ${number} ${Array.from(nonce, (b) => b.toString(16)).join("")}`;
    const label = `item ${number} from node ${origin.index + 1}`;
    const sentAt = performance.now();
    this.announced.push({ number, origin: origin.index, text, sentAt });
    // The node does not notify the announcing module itself, so the others count.
    await origin.module!.announce(DEMO_DATA_TYPE, new TextEncoder().encode(text));
    const reached = () => others.filter((m) => m.arrivals.has(text)).length;
    const deadline = sentAt + ITEM_TIMEOUT_MS;
    while (reached() < others.length && performance.now() < deadline) {
      this.progress.update(
        `${label}: ${bar(reached(), others.length)} ${reached()}/${others.length} nodes, ` +
          `${ms(performance.now() - sentAt)} ms`,
      );
      await this.sleep(5);
    }
    const count = reached();
    if (count < others.length) {
      this.progress.finish(
        `${label}: ${bar(count, others.length)} ${count}/${others.length} nodes ` +
          `after ${ITEM_TIMEOUT_MS} ms (incomplete)`,
      );
      return { number, origin: origin.index, reached: count, expected: others.length };
    }
    const last = Math.max(...others.map((m) => m.arrivals.get(text)![0]));
    const msToAll = last - sentAt;
    this.progress.finish(
      `${label}: ${bar(count, others.length)} ${count}/${others.length} nodes in ${ms(msToAll)} ms`,
    );
    return { number, origin: origin.index, reached: count, expected: others.length, msToAll };
  }

  private summarize(results: ItemResult[]): number {
    const delivered = results.reduce((sum, r) => sum + r.reached, 0);
    const expected = results.reduce((sum, r) => sum + r.expected, 0);
    const times = results.flatMap((r) => r.msToAll === undefined ? [] : [r.msToAll])
      .sort((a, b) => a - b);
    const stats = this.members.map((m) => m.node.stats());
    const sum = (pick: (s: (typeof stats)[number]) => number) =>
      stats.reduce((total, s) => total + pick(s), 0);
    const moduleDuplicates = this.members.reduce(
      (total, m) => total + [...m.arrivals.values()].reduce((n, t) => n + t.length - 1, 0),
      0,
    );
    const lines = [
      `summary: ${results.length} items, ${this.members.length} nodes`,
      `  delivered:      ${delivered}/${expected} (${ms((100 * delivered) / expected)}%)`,
      times.length === 0
        ? "  time to reach all: no item reached every node"
        : `  time to reach all: min ${ms(times[0])} ms, median ${
          ms(times[Math.floor((times.length - 1) / 2)])
        } ms, max ${ms(times[times.length - 1])} ms (${times.length}/${results.length} items)`,
      `  item messages sent between peers: ${sum((s) => s.spreading.itemsSent)}`,
      `  duplicate copies received by nodes: ${sum((s) => s.spreading.duplicates)} ` +
      `(${ms(sum((s) => s.spreading.duplicates) / Math.max(1, delivered))} per delivery)`,
      `  pulled by IWANT: ${sum((s) => s.spreading.pulled)}`,
      `  duplicate NOTIFICATIONs to modules: ${moduleDuplicates}`,
    ];
    console.log(lines.join("\n"));
    return delivered === expected && moduleDuplicates === 0 ? 0 : 1;
  }

  private throwIfAborted(): void {
    if (this.aborted) throw new AbortedError(String(this.controller.signal.reason));
  }

  /** Resolves after `delay` ms; throws {@link AbortedError} on abort. */
  private sleep(delay: number): Promise<void> {
    this.throwIfAborted();
    const signal = this.controller.signal;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(new AbortedError(String(signal.reason)));
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, delay);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Waits for `promise` at most `timeoutMs`; throws on timeout or abort. */
  private bounded<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    this.throwIfAborted();
    const signal = this.controller.signal;
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        done();
        reject(new AbortedError(String(signal.reason)));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what} took longer than ${timeoutMs / 1000} s`));
      }, timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (value) => {
          done();
          resolve(value);
        },
        (error) => {
          done();
          reject(error);
        },
      );
    });
  }

  private async waitUntil(
    condition: () => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (performance.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      }
      await this.sleep(10);
    }
  }
}

/** Runs the demo with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let options: DemoOptions | undefined;
  try {
    options = parseDemoOptions(args);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof UsageError || code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`demo: ${(error as Error).message.split(/\. /)[0]}; see --help`);
      return 2;
    }
    throw error;
  }
  if (options === undefined) {
    console.log(USAGE);
    return 0;
  }
  const demo = new Demo(options);
  let web: DemoWebServer | undefined;
  if (options.webPort !== undefined) {
    try {
      web = await DemoWebServer.start(options.webPort, () => demo.view());
    } catch (error) {
      console.error(
        `demo: --port: cannot listen on 127.0.0.1:${options.webPort}: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
      return 1;
    }
    console.error(`demo page: ${web.url}`);
  }
  let interrupted = false;
  /** Set while the finished demo keeps its page up: a signal ends the wait. */
  let endLinger: (() => void) | undefined;
  const onSignal = () => {
    if (endLinger) return endLinger();
    if (interrupted) Deno.exit(130); // a second Ctrl-C does not wait for the teardown
    interrupted = true;
    demo.abort("interrupted");
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  const budgetMs = SETUP_TIMEOUT_MS + OVERLAY_TIMEOUT_MS +
    options.items * (options.intervalMs + ITEM_TIMEOUT_MS);
  const deadline = setTimeout(
    () => demo.abort(`overall deadline of ${Math.round(budgetMs / 1000)} s passed`),
    budgetMs,
  );
  try {
    let code: number;
    try {
      code = await demo.run();
    } finally {
      clearTimeout(deadline);
    }
    if (web) {
      console.error(
        `the demo page stays up at ${web.url} with the cluster running; Ctrl-C to stop`,
      );
      await new Promise<void>((resolve) => endLinger = resolve);
    }
    return code;
  } catch (error) {
    if (error instanceof AbortedError) {
      console.error(`demo: ${error.message}; stopping`);
      demo.setPhase(`stopped: ${error.message}`);
      return interrupted ? 130 : 1;
    }
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await web?.close();
    await demo.teardown();
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
}

// Exit explicitly: key generation still running after an abort must not keep the process alive.
if (import.meta.main) Deno.exit(await main(Deno.args));
