/** The command line, run as a subprocess from source: exit codes and one-line errors. */

import assert from "node:assert/strict";
import { join } from "node:path";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function gossip(args: string[], cwd?: string) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", MAIN, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("--help prints usage and exits 0", async () => {
  const { code, stdout } = await gossip(["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /Usage:/);
  assert.match(stdout, /keygen/);
});

Deno.test("bad input exits 2 with one line naming the flag, key or file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = join(dir, "bad.ini");
    await Deno.writeTextFile(
      bad,
      "hostkey = k.pem\n[gossip]\napi_address = 127.0.0.1:7001\np2p_address = 127.0.0.1:99999\n",
    );
    const cases: [string[], RegExp][] = [
      [["-c", join(dir, "missing.ini")], /config: cannot read .*missing\.ini: no such file/],
      [["--log-level", "loud"], /--log-level: "loud" is not one of/],
      [["--nope"], /Unknown option '--nope'/],
      [["stray"], /unexpected argument "stray"/],
      [["-c", bad], /p2p_address \(line 4\): .*99999/],
      [["keygen"], /keygen takes exactly one FILE/],
      [["keygen", "--bits", "lots", join(dir, "k.pem")], /--bits: "lots" is not a number/],
    ];
    for (const [args, pattern] of cases) {
      const { code, stderr } = await gossip(args);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.equal(stderr.split("\n").length, 1, `one line for ${args.join(" ")}: ${stderr}`);
      assert.match(stderr, pattern);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing host key is generated on first start, with mode 0600", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Hold the API port so that the daemon stops right after writing the key.
    const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const config = join(dir, "gossip.ini");
    await Deno.writeTextFile(
      config,
      `hostkey = keys/host.pem\n[gossip]\napi_address = 127.0.0.1:${busy.addr.port}\n` +
        "p2p_address = 127.0.0.1:0\n",
    );
    const { code, stderr } = await gossip(["-c", config]);
    busy.close();
    // The key is written before the ports are bound; the busy API port then fails the start.
    assert.equal(code, 1, stderr);
    assert.match(stderr, /cannot start: address already in use/);
    const info = await Deno.stat(join(dir, "keys", "host.pem"));
    assert.equal(info.mode! & 0o777, 0o600);
    assert.match(await Deno.readTextFile(join(dir, "keys", "host.pem")), /BEGIN PRIVATE KEY/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
