import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  CONFIG_KEYS,
  configAdvice,
  type GossipConfig,
  gossipOptions,
  loadConfig,
  parseConfig,
  parseIni,
} from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";

const BASE = "/etc/voidphone";

/** The example from the spec, plus the opt-in its public api_address needs. */
const SPEC_EXAMPLE = `hostkey = /hostkey.pem

[gossip]
cache_size = 50
degree = 30
bootstrapper = p2psec.net.in.tum.de:6001
p2p_address = 131.159.15.61:6001
api_address = 131.159.15.61:7001
`;

const MINIMAL = `hostkey = key.pem
[gossip]
api_address = 127.0.0.1:7001
p2p_address = 0.0.0.0:6001
`;

function parse(text: string): GossipConfig {
  return parseConfig(text, { baseDir: BASE });
}

/** Minimal valid config with `lines` appended to the [gossip] section. */
function withGossip(...lines: string[]): string {
  return MINIMAL + lines.join("\n") + "\n";
}

function assertConfigError(
  fn: () => unknown,
  key: string,
  pattern: RegExp,
  line?: number,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    assert.equal(error.key, key, error.message);
    assert.match(error.message, pattern);
    assert.doesNotMatch(error.message, /\n/);
    if (line !== undefined) assert.equal(error.line, line, error.message);
    return true;
  });
}

Deno.test("parseIni: sections, global keys, comments, quotes and line numbers", () => {
  const doc = parseIni(
    [
      "; comment",
      "# another comment",
      "",
      "hostkey = /k.pem",
      "  spaced   =   some value  ",
      "[gossip]",
      'quoted = " padded "',
      "empty =",
      'empty_quoted = ""',
      "with_eq = a=b",
      "[onion-auth.v2]",
      "quoted = x",
    ].join("\r\n"),
  );
  assert.deepEqual(doc.global, [
    { key: "hostkey", value: "/k.pem", line: 4 },
    { key: "spaced", value: "some value", line: 5 },
  ]);
  assert.deepEqual(doc.sections, [
    {
      name: "gossip",
      line: 6,
      entries: [
        { key: "quoted", value: " padded ", line: 7 },
        { key: "empty", value: "", line: 8 },
        { key: "empty_quoted", value: "", line: 9 },
        { key: "with_eq", value: "a=b", line: 10 },
      ],
    },
    { name: "onion-auth.v2", line: 11, entries: [{ key: "quoted", value: "x", line: 12 }] },
  ]);
});

Deno.test("parseIni: a byte-order mark and an empty file are fine", () => {
  assert.deepEqual(parseIni(""), { global: [], sections: [] });
  assert.deepEqual(parseIni("\uFEFFa = 1").global, [{ key: "a", value: "1", line: 1 }]);
});

Deno.test("parseIni: syntax errors name the line", () => {
  const cases: [string, string, RegExp, number][] = [
    ["a = 1\n[gossip\nb = 2", "config", /unterminated section header/, 2],
    ["[", "config", /unterminated section header/, 1],
    ["[gossip] x", "config", /unexpected text after "]"/, 1],
    ["[]", "config", /invalid section name/, 1],
    ["[gos sip]", "config", /invalid section name/, 1],
    ["[gossip]\ndegree = 5\nbareword", "config", /cannot parse "bareword"/, 3],
    ["[gossip]\n= value", "config", /missing key before "="/, 2],
    ["[gossip]\nDegree = 5", "Degree", /keys are lower case: write "degree"/, 2],
    ["[gossip]\ncache-size = 5", "cache-size", /invalid key name/, 2],
    ["[gossip]\nmy key = 5", "my key", /invalid key name/, 2],
    ['[gossip]\nkey = "abc', "key", /unterminated quote/, 2],
    ['[gossip]\nkey = "', "key", /unterminated quote/, 2],
    ["[gossip]\ndegree = 5\ndegree = 6", "degree", /duplicate key in \[gossip\].*line 2/, 3],
    ["a = 1\na = 2", "a", /duplicate key in global keys/, 2],
    ["[other]\nx = 1\n\nx = 2", "x", /duplicate key in \[other\]/, 4],
  ];
  for (const [text, key, pattern, line] of cases) {
    assertConfigError(() => parseIni(text), key, pattern, line);
  }
});

Deno.test("parseIni: the same key in different sections is fine", () => {
  const doc = parseIni("a = 1\n[x]\na = 2\n[y]\na = 3");
  assert.equal(doc.sections.length, 2);
});

Deno.test("parseConfig: the spec's example parses once api_allow_remote is set", () => {
  // As printed in the spec, the example's api_address is a public address;
  // our secure default refuses it and explains how to opt in.
  assertConfigError(
    () => parse(SPEC_EXAMPLE),
    "api_address",
    /131\.159\.15\.61:7001 is not a loopback address.*api_allow_remote = true/,
    8,
  );
  const config = parse(SPEC_EXAMPLE + "api_allow_remote = true\n");
  assert.equal(config.hostkeyPath, "/hostkey.pem");
  const g = config.gossip;
  assert.equal(g.cacheSize, 50);
  assert.equal(g.degree, 30);
  assert.deepEqual(g.bootstrappers, [{ hostname: "p2psec.net.in.tum.de", port: 6001 }]);
  assert.deepEqual(g.p2pAddress, { hostname: "131.159.15.61", port: 6001 });
  assert.deepEqual(g.apiAddress, { hostname: "131.159.15.61", port: 7001 });
  assert.equal(g.apiAllowRemote, true);
});

Deno.test("parseConfig: defaults come from CONFIG_KEYS", () => {
  const config = parse(MINIMAL);
  assert.equal(config.hostkeyPath, join(BASE, "key.pem"));
  assert.deepEqual(config.gossip, {
    apiAddress: { hostname: "127.0.0.1", port: 7001 },
    p2pAddress: { hostname: "0.0.0.0", port: 6001 },
    bootstrappers: [],
    degree: 5,
    cacheSize: 1000,
    validationTimeoutMs: 5000,
    maxApiConnections: 256,
    maxPeerConnections: 64,
    passiveViewSize: 30,
    membershipIntervalMs: 1000,
    handshakeTimeoutMs: 5000,
    peerIdleTimeoutMs: 30000,
    apiAllowRemote: false,
    powDifficulty: 16,
    statusAllowRemote: false,
  });
  assert.equal(config.logLevel, undefined);
});

Deno.test("parseConfig: every key can be set", () => {
  const config = parse(
    withGossip(
      "bootstrapper = [2001:db8::1]:6001, peer.example.org:6001,10.0.0.1:1",
      "degree = 256",
      "cache_size = 1000000",
      "validation_timeout_ms = 10",
      "max_api_connections = 1",
      "max_peer_connections = 65535",
      "passive_view_size = 0",
      "membership_interval_ms = 3600000",
      "handshake_timeout_ms = 100",
      "peer_idle_timeout_ms = 1000",
      "api_allow_remote = no",
      "peers_file = state/peers.json",
      "pow_difficulty = 0",
      "status_address = [::1]:8080",
      "status_allow_remote = no",
      "log_level = Info",
    ),
  );
  assert.equal(config.logLevel, "info");
  assert.deepEqual(config.gossip, {
    apiAddress: { hostname: "127.0.0.1", port: 7001 },
    p2pAddress: { hostname: "0.0.0.0", port: 6001 },
    bootstrappers: [
      { hostname: "2001:db8::1", port: 6001 },
      { hostname: "peer.example.org", port: 6001 },
      { hostname: "10.0.0.1", port: 1 },
    ],
    degree: 256,
    cacheSize: 1000000,
    validationTimeoutMs: 10,
    maxApiConnections: 1,
    maxPeerConnections: 65535,
    passiveViewSize: 0,
    membershipIntervalMs: 3600000,
    handshakeTimeoutMs: 100,
    peerIdleTimeoutMs: 1000,
    apiAllowRemote: false,
    peersFile: join(BASE, "state/peers.json"),
    powDifficulty: 0,
    statusAddress: { hostname: "::1", port: 8080 },
    statusAllowRemote: false,
  });
});

Deno.test("parseConfig: IPv6 and localhost api addresses, port 0", () => {
  const v6 = parse("hostkey = k\n[gossip]\napi_address = [::1]:0\np2p_address = [::]:0\n");
  assert.deepEqual(v6.gossip.apiAddress, { hostname: "::1", port: 0 });
  assert.deepEqual(v6.gossip.p2pAddress, { hostname: "::", port: 0 });
  const local = parse("hostkey = k\n[gossip]\napi_address = localhost:7001\np2p_address = x:1\n");
  assert.equal(local.gossip.apiAddress.hostname, "localhost");
  assertConfigError(
    () => parse("hostkey = k\n[gossip]\napi_address = ::1:7001\np2p_address = x:1\n"),
    "api_address",
    /must be in brackets/,
    3,
  );
});

Deno.test("parseConfig: quoted values, comments and blank lines", () => {
  const config = parse(
    [
      "; VoidPhone configuration",
      'hostkey = "/keys/my host.pem"',
      "",
      "# the gossip module",
      "[gossip]",
      '  api_address = "127.0.0.1:7001"  ',
      "p2p_address=0.0.0.0:6001",
      "; degree = 99",
      'degree = "7"',
      'api_allow_remote = "On"',
    ].join("\n"),
  );
  assert.equal(config.hostkeyPath, "/keys/my host.pem");
  assert.equal(config.gossip.degree, 7);
  assert.equal(config.gossip.apiAllowRemote, true);
});

Deno.test("parseConfig: relative paths resolve against baseDir; absolute stay", () => {
  const config = parse(withGossip("peers_file = ../var/peers"));
  assert.equal(config.hostkeyPath, "/etc/voidphone/key.pem");
  assert.equal(config.gossip.peersFile, "/etc/var/peers");
  const abs = parse(
    "hostkey = /a/b.pem\n[gossip]\napi_address = [::1]:1\np2p_address = x:1\n" +
      "peers_file = /var/lib/gossip/peers\n",
  );
  assert.equal(abs.hostkeyPath, "/a/b.pem");
  assert.equal(abs.gossip.peersFile, "/var/lib/gossip/peers");
  const relBase = parseConfig(MINIMAL, { baseDir: "conf" });
  assert.equal(relBase.hostkeyPath, resolve("conf", "key.pem"));
});

Deno.test("parseConfig: other sections and unknown global keys are ignored", () => {
  const config = parse(
    [
      "hostkey = /k.pem",
      "log_level = debug",
      "[onion]",
      "api_address = not an address at all",
      "hop_count = many",
      "[gossip]",
      "api_address = 127.0.0.1:7001",
      "p2p_address = 127.0.0.1:6001",
      "[dht]",
      "degree = -1",
    ].join("\n"),
  );
  assert.equal(config.gossip.degree, 5);
  assert.deepEqual(config.gossip.apiAddress, { hostname: "127.0.0.1", port: 7001 });
  // ...but other sections must still be syntactically valid.
  assertConfigError(() => parse(MINIMAL + "[onion]\nbroken line\n"), "config", /cannot parse/, 6);
});

Deno.test("parseConfig: bool values", () => {
  const values: [string, boolean][] = [
    ["true", true],
    ["yes", true],
    ["on", true],
    ["1", true],
    ["TRUE", true],
    ["false", false],
    ["no", false],
    ["off", false],
    ["0", false],
    ["Off", false],
  ];
  for (const [text, expected] of values) {
    assert.equal(
      parse(withGossip(`api_allow_remote = ${text}`)).gossip.apiAllowRemote,
      expected,
      text,
    );
  }
  for (const bad of ["", "2", "maybe", "enabled", "t", "true ; yes"]) {
    assertConfigError(
      () => parse(withGossip(`api_allow_remote = ${bad}`)),
      "api_allow_remote",
      /is not a boolean; expected true or false/,
      5,
    );
  }
});

Deno.test("parseConfig: every integer key rejects bad values and names its range", () => {
  const ints = CONFIG_KEYS.filter((spec) => spec.kind === "int");
  assert.equal(ints.length, 10);
  for (const spec of ints) {
    if (spec.kind !== "int") continue;
    const range = new RegExp(`expected an integer from ${spec.min} to ${spec.max}`);
    const bad = [
      "",
      "5x",
      "1e3",
      "0x10",
      "-1",
      "+5",
      "1.5",
      " 5 5",
      "five",
      "99999999999999999999",
      String(spec.max + 1),
    ];
    if (spec.min > 0) bad.push(String(spec.min - 1));
    for (const value of bad) {
      assertConfigError(() => parse(withGossip(`${spec.name} = ${value}`)), spec.name, range, 5);
    }
    const lo = parse(withGossip(`${spec.name} = ${spec.min}`)).gossip[spec.field];
    const hi = parse(withGossip(`${spec.name} = ${spec.max}`)).gossip[spec.field];
    assert.equal(lo, spec.min, spec.name);
    assert.equal(hi, spec.max, spec.name);
  }
  assertConfigError(
    () => parse(withGossip("degree = 5 ; five")),
    "degree",
    /comments must be on their own line/,
  );
  assertConfigError(() => parse(withGossip("degree = 0")), "degree", /0 is out of range/);
});

Deno.test("parseConfig: every address key rejects bad values", () => {
  for (const name of ["api_address", "p2p_address", "bootstrapper", "status_address"]) {
    const base = "hostkey = k\n[gossip]\n" +
      (name === "api_address" ? "" : "api_address = 127.0.0.1:1\n") +
      (name === "p2p_address" ? "" : "p2p_address = 127.0.0.1:2\n");
    for (const bad of ["localhost", "::1:80", "[::1]", "host:99999", ":80", "a b:1", "host:x"]) {
      const line = name === "api_address" || name === "p2p_address" ? 4 : 5;
      assertConfigError(() => parse(`${base}${name} = ${bad}\n`), name, /invalid address/, line);
    }
  }
});

Deno.test("parseConfig: optional keys may be empty, required ones may not", () => {
  const config = parse(withGossip("bootstrapper =", "peers_file = ", 'status_address = ""'));
  assert.deepEqual(config.gossip.bootstrappers, []);
  assert.equal(config.gossip.peersFile, undefined);
  assert.equal(config.gossip.statusAddress, undefined);
  assertConfigError(
    () => parse("hostkey = k\n[gossip]\napi_address =\np2p_address = x:1\n"),
    "api_address",
    /is empty; expected host:port/,
    3,
  );
  assertConfigError(
    () => parse('hostkey = k\n[gossip]\napi_address = [::1]:1\np2p_address = ""\n'),
    "p2p_address",
    /is empty/,
    4,
  );
  assertConfigError(
    () => parse(MINIMAL.replace("hostkey = key.pem", "hostkey =")),
    "hostkey",
    /is empty/,
    1,
  );
});

Deno.test("parseConfig: missing required keys and sections", () => {
  assertConfigError(
    () => parse("[gossip]\napi_address = [::1]:1\np2p_address = x:1\n"),
    "hostkey",
    /missing; add `hostkey = .*before the first section.*gossip keygen/,
  );
  assertConfigError(
    () => parse("[gossip]\nhostkey = k\napi_address = [::1]:1\np2p_address = x:1\n"),
    "hostkey",
    /is a global key; move it above the first \[section\]/,
    2,
  );
  assertConfigError(
    () => parse("hostkey = k\n[gossip]\nhostkey = k\napi_address = [::1]:1\np2p_address = x:1\n"),
    "hostkey",
    /is a global key/,
    3,
  );
  assertConfigError(() => parse("hostkey = k\n"), "gossip", /section \[gossip\] is missing/);
  assertConfigError(
    () => parse("hostkey = k\n[onion]\napi_address = [::1]:1\n"),
    "gossip",
    /section \[gossip\] is missing/,
  );
  assertConfigError(
    () => parse("hostkey = k\n[gossip]\np2p_address = x:1\n"),
    "api_address",
    /missing in \[gossip\]; add `api_address = host:port`/,
  );
  assertConfigError(
    () => parse("hostkey = k\n[gossip]\napi_address = [::1]:1\n"),
    "p2p_address",
    /missing in \[gossip\]/,
  );
});

Deno.test("parseConfig: duplicate or misspelt [gossip] section", () => {
  assertConfigError(
    () => parse(MINIMAL + "[other]\n[gossip]\ndegree = 3\n"),
    "config",
    /duplicate \[gossip\] section \(first on line 2\)/,
    6,
  );
  assertConfigError(
    () => parse("hostkey = k\n[Gossip]\napi_address = [::1]:1\np2p_address = x:1\n"),
    "config",
    /\[Gossip\] must be written \[gossip\]/,
    2,
  );
});

Deno.test("parseConfig: unknown keys in [gossip] get a suggestion", () => {
  const cases: [string, string][] = [
    ["degre", "degree"],
    ["dgeree", "degree"],
    ["cachesize", "cache_size"],
    ["api_adress", "api_address"],
    ["peer_idle_timeout", "peer_idle_timeout_ms"],
    ["validation_timeout", "validation_timeout_ms"],
    ["bootstraper", "bootstrapper"],
    ["pow_dificulty", "pow_difficulty"],
    ["max_peer_connection", "max_peer_connections"],
  ];
  for (const [typo, suggestion] of cases) {
    assertConfigError(
      () => parse(withGossip(`${typo} = 1`)),
      typo,
      new RegExp(`unknown key in \\[gossip\\]; did you mean \`${suggestion}\`\\?`),
      5,
    );
  }
  assertConfigError(
    () => parse(withGossip("frobnicate = 1")),
    "frobnicate",
    /unknown key in \[gossip\]; known keys: api_address, p2p_address, .*status_address/,
    5,
  );
});

Deno.test("parseConfig: a non-loopback api_address needs api_allow_remote", () => {
  const text = "hostkey = k\n[gossip]\napi_address = 0.0.0.0:7001\np2p_address = x:1\n";
  assertConfigError(
    () => parse(text),
    "api_address",
    /0\.0\.0\.0:7001 is not a loopback address.*set `api_allow_remote = true`/,
    3,
  );
  assertConfigError(
    () => parse(text + "api_allow_remote = false\n"),
    "api_address",
    /not a loopback/,
  );
  assert.equal(parse(text + "api_allow_remote = true\n").gossip.apiAllowRemote, true);
  // Order within the section does not matter.
  const before = "hostkey = k\n[gossip]\napi_allow_remote = yes\napi_address = [2001:db8::1]:1\n" +
    "p2p_address = x:1\n";
  assert.equal(parse(before).gossip.apiAddress.hostname, "2001:db8::1");
});

Deno.test("CONFIG_KEYS: unique lower-case names with docs and sane defaults", () => {
  const names = new Set<string>();
  for (const spec of CONFIG_KEYS) {
    assert.match(spec.name, /^[a-z0-9_]+$/);
    assert.ok(!names.has(spec.name), spec.name);
    names.add(spec.name);
    assert.ok(spec.doc.length > 10, spec.name);
    if (spec.kind === "int") {
      assert.ok(spec.min <= spec.default && spec.default <= spec.max, spec.name);
    }
  }
  assert.ok(names.has("hostkey") && names.has("api_address") && names.has("status_address"));
});

Deno.test("gossipOptions fills defaults and validates", () => {
  const apiAddress = { hostname: "127.0.0.1", port: 0 };
  const p2pAddress = { hostname: "127.0.0.1", port: 0 };
  const options = gossipOptions({ apiAddress, p2pAddress, degree: 3 });
  assert.equal(options.degree, 3);
  assert.equal(options.cacheSize, 1000);
  assert.equal(options.powDifficulty, 16);
  assert.equal(options.apiAllowRemote, false);
  assert.deepEqual(options.bootstrappers, []);
  assert.deepEqual(
    options,
    parse(
      "hostkey = k\n[gossip]\napi_address = 127.0.0.1:0\np2p_address = 127.0.0.1:0\ndegree = 3\n",
    ).gossip,
  );
  assert.equal(
    gossipOptions({ apiAddress, p2pAddress, peersFile: "/tmp/p" }).peersFile,
    "/tmp/p",
  );
  assertConfigError(
    () => gossipOptions({ apiAddress, p2pAddress, degree: 0 }),
    "degree",
    /1 to 256/,
  );
  assertConfigError(
    () => gossipOptions({ apiAddress, p2pAddress, cacheSize: 1.5 }),
    "cache_size",
    /expected an integer/,
  );
  assertConfigError(
    () => gossipOptions({ apiAddress: { hostname: "0.0.0.0", port: 1 }, p2pAddress }),
    "api_address",
    /api_allow_remote/,
  );
  assert.equal(
    gossipOptions({
      apiAddress: { hostname: "0.0.0.0", port: 1 },
      p2pAddress,
      apiAllowRemote: true,
    })
      .apiAllowRemote,
    true,
  );
  assertConfigError(
    () => gossipOptions({ apiAddress, p2pAddress: { hostname: "bad host", port: 1 } }),
    "p2p_address",
    /invalid address/,
  );
  assertConfigError(
    () => gossipOptions({ apiAddress, p2pAddress: { hostname: "x", port: 70000 } }),
    "p2p_address",
    /invalid address/,
  );
});

Deno.test("loadConfig reads a file and resolves paths against its directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "gossip.ini");
    await Deno.writeTextFile(path, MINIMAL + "peers_file = peers.json\n");
    const config = await loadConfig(path);
    assert.equal(config.hostkeyPath, join(dir, "key.pem"));
    assert.equal(config.gossip.peersFile, join(dir, "peers.json"));
    const missing = join(dir, "nope.ini");
    await assert.rejects(loadConfig(missing), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.key, "config");
      assert.equal(error.message, `config: ${missing}: no such file`);
      return true;
    });
    await assert.rejects(loadConfig(dir), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /^config: .* is a directory; expected a regular file$/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("configAdvice: warns of exactly one bootstrapper off loopback, names the key", () => {
  const advice = (value?: string) =>
    configAdvice(parse(withGossip(value === undefined ? "" : `bootstrapper = ${value}`)).gossip);
  const [one] = advice("seed.example.org:6001");
  assert.equal(one.key, "bootstrapper");
  assert.match(one.message, /only one bootstrapper.*two or more.*docs\/DEPLOY\.md/);
  assert.equal(advice("10.0.0.2:6001").length, 1, "a private address is no exemption");
  assert.equal(advice("[2001:db8::1]:6001").length, 1);
  assert.deepEqual(advice(), [], "the first node of a network has none");
  assert.deepEqual(advice("seed.example.org:6001, 10.0.0.3:6001"), []);
  for (const loopback of ["127.0.0.1:6002", "127.1.2.3:6002", "[::1]:6002", "localhost:6002"]) {
    assert.deepEqual(advice(loopback), [], `${loopback}: a test on one machine`);
  }
});

Deno.test("parseConfig: bootstrapper takes a comma-separated list and checks each entry", () => {
  const one = parse(withGossip("bootstrapper = seed.example.org:6001"));
  assert.deepEqual(one.gossip.bootstrappers, [{ hostname: "seed.example.org", port: 6001 }]);
  const cases: [string, RegExp][] = [
    ["a:1,,b:2", /entry 2 of the list is empty/],
    ["a:1,", /entry 2 of the list is empty/],
    [",a:1", /entry 1 of the list is empty/],
    ["a:1, b:2, A:1", /A:1 is listed twice/],
    ["a:1, nope", /invalid address "nope": missing port/],
    [Array.from({ length: 65 }, (_, i) => `h${i}:1`).join(","), /lists 65 addresses; at most 64/],
  ];
  for (const [value, pattern] of cases) {
    assertConfigError(
      () => parse(withGossip(`bootstrapper = ${value}`)),
      "bootstrapper",
      pattern,
      5,
    );
  }
  assertConfigError(
    () => gossipOptions({ ...LOOPBACK, bootstrappers: [{ hostname: "bad host", port: 1 }] }),
    "bootstrapper",
    /invalid address/,
  );
});

const LOOPBACK = {
  apiAddress: { hostname: "127.0.0.1", port: 0 },
  p2pAddress: { hostname: "127.0.0.1", port: 0 },
};

Deno.test("parseConfig: a non-loopback status_address needs status_allow_remote", () => {
  for (const address of ["0.0.0.0:8080", "[::]:8080", "192.0.2.1:8080", "status.example.org:80"]) {
    assertConfigError(
      () => parse(withGossip(`status_address = ${address}`)),
      "status_address",
      /is not a loopback address, but the status page has no authentication.*status_allow_remote = true/,
      5,
    );
    const allowed = parse(withGossip(`status_address = ${address}`, "status_allow_remote = true"));
    assert.equal(allowed.gossip.statusAllowRemote, true);
  }
  for (const address of ["127.0.0.1:8080", "[::1]:8080", "localhost:8080", "127.1.2.3:1"]) {
    assert.ok(parse(withGossip(`status_address = ${address}`)).gossip.statusAddress, address);
  }
  assertConfigError(
    () => gossipOptions({ ...LOOPBACK, statusAddress: { hostname: "0.0.0.0", port: 1 } }),
    "status_address",
    /status_allow_remote/,
  );
});

Deno.test("parseConfig: log_level names a level", () => {
  assert.equal(parse(withGossip("log_level = debug")).logLevel, "debug");
  assert.equal(parse(withGossip("log_level =")).logLevel, undefined);
  assertConfigError(
    () => parse(withGossip("log_level = loud")),
    "log_level",
    /"loud" is not a log level; expected one of debug, info, warn, error, silent/,
    5,
  );
});

Deno.test("parseConfig: huge keys and values give a short error, fast", () => {
  const long = "k".repeat(1_000_000);
  for (
    const [text, key] of [
      [withGossip(`${long} = 1`), long.slice(0, 64)],
      [withGossip(`x${"y".repeat(50)} = 1`), `x${"y".repeat(50)}`],
      [withGossip(`degree = ${"9".repeat(1_000_000)}`), "degree"],
      [withGossip(`api_address = ${"a".repeat(1_000_000)}:1`), "api_address"],
      [withGossip(`bootstrapper = ${"a.".repeat(500_000)}`), "bootstrapper"],
      [withGossip(`junk ${"j".repeat(1_000_000)}`), "config"],
      [`[${"s".repeat(1_000_000)}`, "config"],
    ] as const
  ) {
    // Before the fix a 1 MB unknown key took 1.5 GiB and a long time for its "did you mean".
    assert.throws(() => parse(text), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.ok(error.key.startsWith(key.slice(0, 60)), error.key.slice(0, 100));
      assert.ok(error.message.length < 1200, `message of ${error.message.length} characters`);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
  }
});

Deno.test("parseConfig: control characters in user text are escaped in messages", () => {
  assertConfigError(
    () => parse(withGossip("api_allow_remote = a\u001b[31mb")),
    "api_allow_remote",
    /"a\\x1b\[31mb" is not a boolean/,
  );
});

Deno.test("loadConfig: only regular files of at most 1 MiB", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const big = join(dir, "big.ini");
    await Deno.writeTextFile(big, MINIMAL + "; " + "x".repeat(1024 * 1024) + "\n");
    const fifo = join(dir, "fifo.ini");
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    const loop = join(dir, "loop.ini");
    await Deno.symlink(join(dir, "loop2.ini"), loop);
    await Deno.symlink(loop, join(dir, "loop2.ini"));
    const link = join(dir, "link.ini");
    await Deno.writeTextFile(join(dir, "real.ini"), MINIMAL);
    await Deno.symlink(join(dir, "real.ini"), link);
    const cases: [string, RegExp][] = [
      [big, /big\.ini: is \d+ bytes; at most 1048576 are accepted/],
      [fifo, /fifo\.ini: is a FIFO \(named pipe\); expected a regular file/],
      ["/dev/zero", /\/dev\/zero: is a character device; expected a regular file/],
      [loop, /loop\.ini: cannot read: too many levels of symbolic links/],
    ];
    for (const [path, pattern] of cases) {
      await assert.rejects(loadConfig(path), (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.equal(error.key, "config");
        assert.match(error.message, pattern);
        return true;
      });
    }
    // A link to a regular file is fine; paths resolve against the link's directory.
    assert.equal((await loadConfig(link)).hostkeyPath, join(dir, "key.pem"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
