/**
 * The command line, run as a subprocess from source: exit codes, one-line
 * errors of the form `gossip: <key>: <problem>`, keygen, `status` against a
 * running daemon, SIGHUP and JSON logs.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { generateHostKeyPem } from "../lib/hostkey.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
/** The daemon's permissions (no --allow-env: it reads no environment variable). */
const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--no-prompt"];
const decoder = new TextDecoder();

function denoArgs(args: string[]): string[] {
  return ["run", "--config", CONFIG, ...PERMISSIONS, MAIN, ...args];
}

async function gossip(args: string[], cwd?: string) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: denoArgs(args),
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout).trim(),
    stderr: decoder.decode(output.stderr).trim(),
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A daemon subprocess whose stderr is collected line by line. */
class Daemon {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly reading: Promise<void>;
  private exited = false;

  constructor(args: string[], cwd: string) {
    const child = new Deno.Command(Deno.execPath(), {
      args: denoArgs(args),
      cwd,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.child = child;
    this.reading = (async () => {
      let buffered = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        this.lines.push(...parts);
        for (const wake of this.waiters) wake();
      }
      if (buffered !== "") this.lines.push(buffered);
      this.exited = true;
      for (const wake of this.waiters) wake();
    })();
  }

  /** Waits until a stderr line matches `pattern`; returns it. */
  async waitForLine(pattern: RegExp, timeoutMs: number, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.slice(from).find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (this.exited) throw new Error(`daemon exited; stderr:\n${this.lines.join("\n")}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `no line matching ${pattern} in ${timeoutMs} ms:\n${this.lines.join("\n")}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        const wake = () => resolve();
        this.waiters.add(wake);
        timer = setTimeout(wake, left);
      }).finally(() => {
        clearTimeout(timer);
        this.waiters.clear();
      });
    }
  }

  /** Sends `signal` and waits (at most 10 s, then SIGKILL) for the exit code. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    try {
      this.child.kill(signal);
    } catch {
      // exited already
    }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }, 10_000);
    const status = await this.child.status;
    clearTimeout(timer);
    await this.reading;
    return status.code;
  }
}

/** Writes a config in `dir` with a pre-made host key; returns its path and ports. */
async function writeConfig(dir: string, extra: string[] = []) {
  const ports = { api: freePort(), p2p: freePort(), status: freePort() };
  await Deno.mkdir(join(dir, "keys"), { recursive: true });
  const key = join(dir, "keys", "host.pem");
  try {
    await Deno.writeTextFile(key, await generateHostKeyPem(2048), { createNew: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  const path = join(dir, "gossip.ini");
  const lines = [
    "hostkey = keys/host.pem",
    "[gossip]",
    `api_address = 127.0.0.1:${ports.api}`,
    `p2p_address = 127.0.0.1:${ports.p2p}`,
    `status_address = 127.0.0.1:${ports.status}`,
    "pow_difficulty = 4",
    ...extra,
    "",
  ];
  await Deno.writeTextFile(path, lines.join("\n"));
  return { path, ports, lines };
}

/**
 * Writes a config in `dir` (ports free a moment ago) and starts a daemon with
 * it and `args`, waiting for a stderr line matching `ready`. Another socket
 * may take a port between the test's pick and the daemon's bind; then the
 * daemon exits with "address already in use" and this tries again with new
 * ports (3 attempts).
 */
async function startDaemon(
  dir: string,
  options: { extra?: string[]; args?: string[]; ready?: RegExp } = {},
) {
  for (let attempt = 1;; attempt++) {
    const config = await writeConfig(dir, options.extra);
    const daemon = new Daemon(["-c", config.path, ...(options.args ?? [])], dir);
    try {
      const running = await daemon.waitForLine(options.ready ?? /running: api/, 30_000);
      return { ...config, daemon, running };
    } catch (error) {
      await daemon.stop();
      const taken = daemon.lines.some((line) => line.includes("address already in use"));
      if (!taken || attempt === 3) throw error;
    }
  }
}

Deno.test("--help prints usage and exits 0; the README's default log level is --help's", async () => {
  const { code, stdout } = await gossip(["--help"]);
  assert.equal(code, 0);
  for (
    const text of ["Usage:", "keygen", "status [--json] [--address HOST:PORT]", "--log-format"]
  ) {
    assert.ok(stdout.includes(text), text);
  }
  assert.match(stdout, /--init-hostkey/);
  assert.match(stdout, /default: log_level in the config, else warn/);
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  assert.match(readme, /`--log-level` is one of .*\(default: `warn`/s);
});

Deno.test("bad input exits 2 with one line `gossip: <key>: <problem>`", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = join(dir, "bad.ini");
    await Deno.writeTextFile(
      bad,
      "hostkey = k.pem\n[gossip]\napi_address = 127.0.0.1:7001\np2p_address = 127.0.0.1:99999\n",
    );
    const remote = join(dir, "remote.ini");
    await Deno.writeTextFile(
      remote,
      "hostkey = k.pem\n[gossip]\napi_address = 127.0.0.1:7001\np2p_address = 127.0.0.1:7002\n" +
        "status_address = 0.0.0.0:7003\n",
    );
    const noStatus = join(dir, "nostatus.ini");
    await Deno.writeTextFile(
      noStatus,
      "hostkey = k.pem\n[gossip]\napi_address = 127.0.0.1:7001\np2p_address = 127.0.0.1:7002\n",
    );
    const typoKey = join(dir, "typo.ini");
    await Deno.writeTextFile(
      typoKey,
      "hostkey = keys/hots.pem\n[gossip]\napi_address = 127.0.0.1:1\np2p_address = 127.0.0.1:2\n",
    );
    const fifo = join(dir, "fifo.pem");
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    const special = (name: string, key: string) =>
      Deno.writeTextFile(
        join(dir, name),
        `hostkey = ${key}\n[gossip]\napi_address = 127.0.0.1:1\np2p_address = 127.0.0.1:2\n`,
      ).then(() => join(dir, name));
    const zeroKey = await special("zero.ini", "/dev/zero");
    const fifoKey = await special("fifo.ini", fifo);
    const existing = join(dir, "existing.pem");
    await Deno.writeTextFile(existing, "not a key");
    const long = "x".repeat(100_000);
    const cases: [string[], RegExp][] = [
      [["-c", join(dir, "missing.ini")], /^gossip: config: .*missing\.ini: no such file$/],
      [["-c", "/dev/zero"], /^gossip: config: \/dev\/zero: is a character device/],
      [["--log-level", "loud"], /^gossip: --log-level: "loud" is not one of debug, info/],
      [["--log-format", "xml"], /^gossip: --log-format: "xml" is not one of text, json$/],
      [["--nope"], /^gossip: --nope: unknown option; see gossip --help$/],
      [["-c"], /^gossip: --config: needs a value/],
      [["stray"], /^gossip: command line: unexpected argument "stray"/],
      [["-c", bad], /^gossip: p2p_address: line 4: invalid address .*99999/],
      [["-c", remote], /^gossip: status_address: line 5: 0\.0\.0\.0:7003 is not a loopback/],
      [
        ["-c", typoKey],
        /^gossip: hostkey: .*keys\/hots\.pem: no such file; create the key with `gossip keygen .*hots\.pem`/,
      ],
      [["-c", zeroKey], /^gossip: hostkey: \/dev\/zero: is a character device/],
      [["-c", fifoKey], /^gossip: hostkey: .*fifo\.pem: is a FIFO \(named pipe\)/],
      [["keygen", "a", "b"], /^gossip: keygen: takes at most one FILE argument/],
      [["keygen", "--bits", "lots", join(dir, "k.pem")], /^gossip: --bits: "lots" is not a number/],
      [
        ["keygen", "--bits", "1024", join(dir, "k.pem")],
        /^gossip: keygen: refusing to write a 1024-bit key to .*k\.pem; the daemon accepts multiples of 8 from 2048 to 4096 bits/,
      ],
      [
        ["keygen", "--bits", "8192", join(dir, "k.pem")],
        /^gossip: keygen: refusing to write a 8192-bit key to .*k\.pem; .* cannot verify/,
      ],
      [["keygen", existing], /^gossip: keygen: .*existing\.pem already exists; refusing/],
      [["-c", join(dir, "missing.ini"), "keygen"], /^gossip: keygen: no FILE given/],
      [["status", "-c", noStatus], /^gossip: status_address: not set in .*--address HOST:PORT$/],
      [["status", "--address", "nope"], /^gossip: --address: invalid address "nope"/],
      [["status", "--json", "extra"], /^gossip: status: unexpected argument "extra"$/],
      [["-c", join(dir, "missing.ini"), "status"], /^gossip: config: .*no such file$/],
      [[`--${long}`], /^gossip: --x{78}… \(100002 characters\): unknown option/],
    ];
    for (const [args, pattern] of cases) {
      const { code, stdout, stderr } = await gossip(args, dir);
      const shown = args.join(" ").slice(0, 80);
      assert.equal(code, 2, `${shown}: ${stderr}`);
      assert.equal(stdout, "", shown);
      assert.equal(stderr.split("\n").length, 1, `one line for ${shown}: ${stderr}`);
      assert.ok(stderr.length < 1200, `${shown}: ${stderr.length} characters`);
      assert.match(stderr, pattern);
    }
    // Nothing was generated for the refused sizes or the typo.
    await assert.rejects(Deno.stat(join(dir, "k.pem")), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(join(dir, "keys")), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(existing), "not a key");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--init-hostkey creates a missing key (mode 0600); a busy port names its key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Hold the P2P port so that the daemon stops right after writing the key.
    const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const config = join(dir, "gossip.ini");
    await Deno.writeTextFile(
      config,
      `hostkey = keys/host.pem\n[gossip]\napi_address = 127.0.0.1:0\n` +
        `p2p_address = 127.0.0.1:${busy.addr.port}\n`,
    );
    const { code, stderr } = await gossip(["-c", config, "--init-hostkey"]);
    busy.close();
    // The key is written before the ports are bound; the busy P2P port then fails the start.
    assert.equal(code, 1, stderr);
    const last = stderr.split("\n").at(-1)!;
    assert.equal(
      last,
      `gossip: p2p_address: cannot listen on 127.0.0.1:${busy.addr.port}: address already in ` +
        "use (is another node running? choose another port)",
    );
    assert.match(stderr, /WARN .*no host key found; generated a new 4096-bit key/);
    const info = await Deno.stat(join(dir, "keys", "host.pem"));
    assert.equal(info.mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(join(dir, "keys", "host.pem")), /BEGIN PRIVATE KEY/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keygen writes the config's hostkey when no FILE is given", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "gossip.ini"),
      "hostkey = state/key.pem\n[gossip]\napi_address = 127.0.0.1:1\np2p_address = 127.0.0.1:2\n",
    );
    const { code, stdout, stderr } = await gossip(["keygen", "--bits", "2048"], dir);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, `wrote 2048-bit RSA host key to ${join(dir, "state", "key.pem")}`);
    assert.equal((await Deno.stat(join(dir, "state", "key.pem"))).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status: a table, --json and --address against a running daemon", async () => {
  const dir = await Deno.makeTempDir();
  const { path, ports, daemon, running } = await startDaemon(dir);
  try {
    assert.equal(
      running.replace(/identity \w+$/, "identity X"),
      `gossip 0.1.0 running: api 127.0.0.1:${ports.api}, p2p 127.0.0.1:${ports.p2p}, ` +
        `status http://127.0.0.1:${ports.status}/, identity X`,
    );
    const table = await gossip(["status", "-c", path]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^node [0-9a-f]{64}\n/);
    assert.match(
      table.stdout,
      new RegExp(`api 127\\.0\\.0\\.1:${ports.api} +p2p 127\\.0\\.0\\.1:`),
    );
    assert.match(table.stdout, /\nPEERS \(0\)\n {2}none connected\n/);
    assert.match(table.stdout, /\nCOUNTERS\n/);
    assert.match(table.stdout, / items received +0 /);
    assert.match(table.stdout, / bytes to peers +0 B/);

    const json = await gossip(["status", "--json", "--address", `127.0.0.1:${ports.status}`]);
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout);
    assert.ok(table.stdout.startsWith(`node ${status.identity}\n`));
    assert.deepEqual(status.peers, []);
    assert.equal(status.apiAddress, `127.0.0.1:${ports.api}`);

    // What `deno task start status` runs: global options before the command.
    const task = await gossip(["-c", path, "--init-hostkey", "status", "--json"]);
    assert.equal(task.code, 0, task.stderr);
    assert.equal(JSON.parse(task.stdout).identity, status.identity);

    const nobody = await gossip(["status", "--address", `127.0.0.1:${freePort()}`]);
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /^gossip: status: no node answers at 127\.0\.0\.1:\d+ \(/);
  } finally {
    assert.equal(await daemon.stop(), 0, daemon.lines.join("\n"));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status shows peers with direction, address, age, bytes, score and round trip", async () => {
  const dir = await Deno.makeTempDir();
  const daemons: Daemon[] = [];
  try {
    // Keepalive PINGs every second measure the round trip soon.
    const a = await startDaemon(join(dir, "a"), { extra: ["peer_idle_timeout_ms = 3000"] });
    daemons.push(a.daemon);
    const b = await startDaemon(join(dir, "b"), {
      extra: [`bootstrapper = 127.0.0.1:${a.ports.p2p}`],
    });
    daemons.push(b.daemon);
    let table = "";
    // Until the first PONG the round trip shows "-".
    for (let attempt = 0; attempt < 100 && !/PEERS \(1\)[^]* ms\n/.test(table); attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      table = (await gossip(["status", "-c", a.path])).stdout;
    }
    assert.match(table, /PEERS \(1\)/, table);
    const header = /\n {2}IDENTITY +DIRECTION +ADDRESS +CONNECTED +RECEIVED +SENT +SCORE +RTT\n/;
    assert.match(table, header);
    assert.match(
      table,
      new RegExp(
        `\\n {2}[0-9a-f]{16} +inbound +127\\.0\\.0\\.1:${b.ports.p2p} +\\d+ s +[\\d.]+ (B|KiB) +[\\d.]+ (B|KiB) +0 +[\\d.]+ ms\\n`,
      ),
      table,
    );
  } finally {
    for (const daemon of daemons) assert.equal(await daemon.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a single bootstrapper off loopback is warned of at start, before the running line", async () => {
  const dir = await Deno.makeTempDir();
  const daemons: Daemon[] = [];
  try {
    // Names in the reserved .invalid domain never resolve (RFC 6761): nothing is dialled.
    const one = await startDaemon(join(dir, "one"), {
      extra: ["bootstrapper = seed.invalid:6001"],
    });
    daemons.push(one.daemon);
    const warning = one.daemon.lines.findIndex((line) =>
      / WARN .*only one bootstrapper/.test(line)
    );
    assert.ok(warning >= 0, one.daemon.lines.join("\n"));
    assert.match(one.daemon.lines[warning], /key=bootstrapper/);
    assert.ok(warning < one.daemon.lines.findIndex((line) => /running: api/.test(line)));
    const two = await startDaemon(join(dir, "two"), {
      extra: ["bootstrapper = seed.invalid:6001, seed2.invalid:6001"],
    });
    daemons.push(two.daemon);
    assert.deepEqual(two.daemon.lines.filter((line) => / WARN /.test(line)), []);
  } finally {
    for (const daemon of daemons) assert.equal(await daemon.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGHUP rereads the config: applies level and limits, names what needs a restart", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const dir = await Deno.makeTempDir();
  const { path, lines, daemon } = await startDaemon(dir);
  try {
    // At the default level (warn), info lines are not shown yet.
    await Deno.writeTextFile(
      path,
      [...lines.slice(0, -1), "log_level = info", "max_api_connections = 7", "degree = 9", ""]
        .join("\n"),
    );
    let from = daemon.lines.length;
    daemon.child.kill("SIGHUP");
    const reloaded = await daemon.waitForLine(/reloaded configuration/, 10_000, from);
    assert.match(reloaded, /WARN .*these changes need a restart restart=degree applied=/);
    assert.match(
      reloaded,
      /applied=log_level,max_api_connections|applied=max_api_connections,log_level/,
    );
    assert.ok(
      daemon.lines.slice(from).some((l) => /INFO .*limits changed .*maxApiConnections=7/.test(l)),
    );

    // A broken config on reload is reported and the node keeps running.
    await Deno.writeTextFile(path, lines.join("\n") + "degre = 3\n");
    from = daemon.lines.length;
    daemon.child.kill("SIGHUP");
    const failed = await daemon.waitForLine(/reload failed/, 10_000, from);
    assert.match(
      failed,
      /ERROR .*keeping the running configuration error="degre: line \d+: unknown key/,
    );
    const status = await gossip(["status", "--json", "-c", join(dir, "gossip.ini")]);
    // The file is broken, so ask by address: the node still answers.
    assert.equal(status.code, 2);
    const port = /status_address = 127\.0\.0\.1:(\d+)/.exec(lines.join("\n"))![1];
    const alive = await fetch(`http://127.0.0.1:${port}/status`);
    assert.equal(alive.status, 200);
    await alive.body?.cancel();
  } finally {
    assert.equal(await daemon.stop(), 0, daemon.lines.join("\n"));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--log-format json writes one JSON object per line", async () => {
  const dir = await Deno.makeTempDir();
  let started: Awaited<ReturnType<typeof startDaemon>>;
  try {
    started = await startDaemon(dir, {
      args: ["--log-format", "json", "--log-level", "info"],
      ready: /"msg":"running"/,
    });
    assert.equal(await started.daemon.stop(), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const { ports, daemon } = started;
  const records = daemon.lines.filter((l) => l !== "").map((line) => JSON.parse(line));
  assert.ok(records.length >= 4, daemon.lines.join("\n"));
  for (const record of records) {
    assert.equal(typeof record.time, "string");
    assert.ok(["debug", "info", "warn", "error"].includes(record.level));
    assert.equal(typeof record.msg, "string");
  }
  const running = records.find((r) => r.msg === "running");
  assert.equal(running.api, `127.0.0.1:${ports.api}`);
  assert.ok(records.some((r) => r.msg === "node started" && r.component === "gossip"));
  assert.ok(records.some((r) => r.msg === "shutting down" && r.signal === "SIGTERM"));
});
