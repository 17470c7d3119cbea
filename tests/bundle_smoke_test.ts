/**
 * CI substitute for `deno task compile` (which needs internet access to fetch
 * the runtime template): bundles main.ts into one JavaScript file with
 * `deno bundle` and runs it as a separate process with exactly the permissions
 * scripts/build.ts bakes into the executables, outside the project (no
 * deno.json), on 127.0.0.1. Checks the command line, a config typo, `keygen`,
 * and two daemons joined over the peer protocol (status endpoint and peers
 * file on): one NOTIFY/ANNOUNCE/NOTIFICATION/VALIDATION round reaching a
 * subscriber on each, then a clean exit 0 on SIGTERM with no permission error.
 * If `deno bundle` cannot run, the test fails.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DAEMON_PERMISSIONS } from "../scripts/build.ts";
import { type ReceivedMessage, TestApiClient } from "./support/api_client.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DATA_TYPE = 0x5e5e;

/** Output of a finished process. */
interface Finished {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** A port that was free a moment ago on 127.0.0.1. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A running `deno` subprocess whose output is collected in the background. */
class Proc {
  readonly child: Deno.ChildProcess;
  /** Resolves with the status and all output once the process exited. */
  readonly finished: Promise<Finished>;
  private exited = false;

  constructor(args: string[], cwd: string) {
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.child = child;
    const stdout = new Response(child.stdout).text();
    const stderr = new Response(child.stderr).text();
    this.finished = (async () => {
      const status = await child.status;
      this.exited = true;
      return {
        code: status.code,
        signal: status.signal,
        stdout: await stdout,
        stderr: await stderr,
      };
    })();
  }

  /** True once the process exited. */
  get hasExited(): boolean {
    return this.exited;
  }

  /** Waits at most `timeoutMs` for the exit; kills the process and throws on timeout. */
  async wait(timeoutMs: number, what: string): Promise<Finished> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      const result = await Promise.race([this.finished, timeout]);
      if (result !== "timeout") return result;
    } finally {
      clearTimeout(timer);
    }
    const output = await this.kill();
    throw new Error(`${what} did not exit within ${timeoutMs} ms; stderr:\n${output.stderr}`);
  }

  /** Kills the process if it still runs and waits for it (always bounded by SIGKILL). */
  async kill(): Promise<Finished> {
    if (!this.exited) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // exited in the meantime
      }
    }
    return await this.finished;
  }
}

/** Runs `deno args...` in `cwd` to completion, at most `timeoutMs`. */
function runDeno(args: string[], cwd: string, timeoutMs: number): Promise<Finished> {
  return new Proc(args, cwd).wait(timeoutMs, `deno ${args.join(" ")}`);
}

/** Runs the bundled daemon with the executables' permissions. */
function daemonArgs(bundle: string, ...args: string[]): string[] {
  return ["run", "--no-config", ...DAEMON_PERMISSIONS, bundle, ...args];
}

/** Connects to 127.0.0.1:`port`, retrying until `timeoutMs` passed or `daemon` exited. */
async function connectWhenUp(
  port: number,
  daemon: Proc,
  timeoutMs: number,
): Promise<TestApiClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await TestApiClient.connect(port);
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
    }
    if (daemon.hasExited) {
      const { code, stderr } = await daemon.finished;
      throw new Error(`daemon exited with code ${code} before its API was up; stderr:\n${stderr}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`the daemon's API port ${port} did not accept within ${timeoutMs} ms`);
    }
    await delay(100);
  }
}

/** Ports and config file of one test daemon. */
interface DaemonConfig {
  config: string;
  apiPort: number;
  p2pPort: number;
  statusPort: number;
}

/** Writes `<name>.ini` for a daemon with key `keys/<name>.pem`, joining through `bootstrapPort`. */
async function writeDaemonConfig(
  dir: string,
  name: string,
  bootstrapPort?: number,
): Promise<DaemonConfig> {
  const ports = { apiPort: freePort(), p2pPort: freePort(), statusPort: freePort() };
  const config = join(dir, `${name}.ini`);
  await Deno.writeTextFile(
    config,
    [
      `hostkey = keys/${name}.pem`,
      "[gossip]",
      `api_address = 127.0.0.1:${ports.apiPort}`,
      `p2p_address = 127.0.0.1:${ports.p2pPort}`,
      `status_address = 127.0.0.1:${ports.statusPort}`,
      bootstrapPort === undefined ? "" : `bootstrapper = 127.0.0.1:${bootstrapPort}`,
      `peers_file = ${name}-peers.json`,
      "pow_difficulty = 8",
      "membership_interval_ms = 200",
      "",
    ].join("\n"),
  );
  return { config, ...ports };
}

/**
 * Starts daemon `name` of `bundle` (config from {@link writeDaemonConfig}) and
 * connects an API client once it is up. Another socket may take a port between
 * the pick and the daemon's bind; then the daemon exits with "address already
 * in use" and this tries again with new ports (3 attempts).
 */
async function startBundleDaemon(
  bundle: string,
  dir: string,
  name: string,
  bootstrapPort?: number,
): Promise<{ ports: DaemonConfig; daemon: Proc; client: TestApiClient }> {
  for (let attempt = 1;; attempt++) {
    const ports = await writeDaemonConfig(dir, name, bootstrapPort);
    const daemon = new Proc(daemonArgs(bundle, "-c", ports.config, "--log-level", "info"), dir);
    try {
      return { ports, daemon, client: await connectWhenUp(ports.apiPort, daemon, 20_000) };
    } catch (error) {
      const { stderr } = await daemon.kill();
      if (!stderr.includes("address already in use") || attempt === 3) throw error;
    }
  }
}

/** Polls the status endpoint on `port` until it lists a peer; at most `timeoutMs`. */
async function waitForPeer(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/status`);
      const status = await response.json() as { peers?: unknown[] };
      if ((status.peers?.length ?? 0) > 0) return;
      last = JSON.stringify(status.peers);
    } catch (error) {
      last = String(error);
    }
    await delay(100);
  }
  throw new Error(`no peer on the status endpoint :${port} within ${timeoutMs} ms (${last})`);
}

/** Asserts that deno's output carries no permission failure. */
function assertNoPermissionError(stderr: string): void {
  assert.doesNotMatch(stderr, /NotCapable|Requires \w+ access|PermissionDenied/, stderr);
}

Deno.test("bundled daemon with the baked permissions: CLI, config, two-node round", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "gossip_bundle_" });
  try {
    const bundle = join(dir, "gossip.js");

    const bundled = await t.step("deno bundle builds main.ts into one file", async () => {
      const result = await runDeno(
        ["bundle", "--quiet", "--platform", "deno", "--output", bundle, "main.ts"],
        ROOT,
        60_000,
      );
      assert.equal(result.code, 0, `deno bundle failed:\n${result.stderr}`);
      const stat = await Deno.stat(bundle);
      assert.ok(stat.isFile && stat.size > 10_000, `bundle is only ${stat.size} bytes`);
    });
    // The failed step already fails the test; the others would only add noise.
    if (!bundled) return;

    await t.step("--version prints the version", async () => {
      const result = await runDeno(daemonArgs(bundle, "--version"), dir, 15_000);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^gossip \d+\.\d+\.\d+\S*\n$/);
    });

    await t.step("an unknown flag exits 2 with one line on stderr", async () => {
      const result = await runDeno(daemonArgs(bundle, "--no-such-flag"), dir, 15_000);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, "");
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`);
      assert.match(lines[0], /--no-such-flag/);
    });

    await t.step("a config key typo exits 2 naming the key and its line", async () => {
      const config = join(dir, "typo.ini");
      await Deno.writeTextFile(
        config,
        [
          "hostkey = typo-key.pem",
          "[gossip]",
          "api_address = 127.0.0.1:1",
          "p2p_address = 127.0.0.1:2",
          "degre = 3",
          "",
        ].join("\n"),
      );
      const result = await runDeno(daemonArgs(bundle, "-c", config), dir, 15_000);
      assert.equal(result.code, 2, result.stderr);
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`);
      assert.match(lines[0], /\bdegre\b.*\bline 5\b/);
      assert.match(lines[0], /\bdegree\b/, "suggests the right key");
    });

    await t.step("keygen writes private host key files", async () => {
      const results = await Promise.all(["a", "b"].map((name) =>
        runDeno(
          daemonArgs(bundle, "keygen", "--bits", "2048", join(dir, "keys", `${name}.pem`)),
          dir,
          30_000,
        )
      ));
      for (const result of results) {
        assert.equal(result.code, 0, result.stderr);
        assertNoPermissionError(result.stderr);
      }
      for (const name of ["a", "b"]) {
        const key = join(dir, "keys", `${name}.pem`);
        assert.match(await Deno.readTextFile(key), /^-----BEGIN PRIVATE KEY-----/);
        if (Deno.build.os !== "windows") {
          assert.equal((await Deno.stat(key)).mode! & 0o777, 0o600);
        }
      }
    });

    await t.step("two daemons relay NOTIFICATIONs and exit 0 on SIGTERM", async () => {
      const daemons: Proc[] = [];
      const clients: TestApiClient[] = [];
      try {
        const start = async (name: string, bootstrapPort?: number) => {
          const started = await startBundleDaemon(bundle, dir, name, bootstrapPort);
          daemons.push(started.daemon);
          clients.push(started.client);
          return started;
        };
        const { ports: a, client: subscriberA } = await start("a");
        const { ports: b, client: subscriberB } = await start("b", a.p2pPort);
        await waitForPeer(b.statusPort, 10_000);
        // prom-client is bundled and needs no permission beyond the baked ones.
        const metrics = await (await fetch(`http://127.0.0.1:${b.statusPort}/metrics`)).text();
        assert.match(metrics, /^gossip_peers\{direction="outbound"\} 1$/m);
        await subscriberA.notify(DATA_TYPE);
        await subscriberB.notify(DATA_TYPE);
        const announcer = await TestApiClient.connect(a.apiPort);
        clients.push(announcer);

        // NOTIFY and ANNOUNCE travel on different connections, so the first
        // ANNOUNCE may overtake a subscription: repeat until both subscribers
        // (one on a, one behind the peer link on b) have a NOTIFICATION.
        const sent: string[] = [];
        const got = new Map<TestApiClient, ReceivedMessage>();
        for (let attempt = 0; got.size < 2 && attempt < 10; attempt++) {
          const text = `smoke ${attempt}`;
          sent.push(text);
          await announcer.announce(DATA_TYPE, new TextEncoder().encode(text));
          await Promise.all(
            [subscriberA, subscriberB].filter((s) => !got.has(s)).map(async (s) => {
              const message = await s.next(1000).catch(() => undefined);
              if (message !== undefined) got.set(s, message);
            }),
          );
        }
        assert.equal(got.size, 2, "both subscribers got a NOTIFICATION within 10 ANNOUNCEs");
        for (const [subscriber, message] of got) {
          assert.equal(message.type, 502);
          assert.equal(message.dataType, DATA_TYPE);
          assert.ok(sent.includes(new TextDecoder().decode(message.data)), "data as announced");
          await subscriber.validate(message.messageId, true);
        }
        await Promise.all(clients.splice(0).map((c) => c.close()));

        for (const daemon of daemons) daemon.child.kill("SIGTERM");
        for (const [i, daemon] of daemons.entries()) {
          const result = await daemon.wait(10_000, `daemon ${i} after SIGTERM`);
          assert.equal(result.code, 0, `exit code ${result.code}; stderr:\n${result.stderr}`);
          assertNoPermissionError(result.stderr);
          const { apiPort } = [a, b][i];
          assert.match(result.stderr, new RegExp(`running: api 127\\.0\\.0\\.1:${apiPort}\\b`));
        }
      } finally {
        await Promise.all(clients.map((c) => c.close()));
        await Promise.all(daemons.map((d) => d.kill()));
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
