/**
 * The configuration file: a strict Windows-INI parser and the `[gossip]` schema.
 *
 * Why not the npm `ini` package: it never reports an error. A stray `[`, a bare
 * word or a line without `=` is silently accepted (or turned into a key whose
 * value is `true`), duplicate keys silently overwrite each other, and nothing
 * carries a line number. A daemon must do the opposite: refuse to start on a
 * typo and say which key on which line is wrong and how to fix it. The grammar
 * we need is tiny, so we parse it ourselves.
 *
 * Grammar (one construct per line):
 * - blank line;
 * - full-line comment starting with `;` or `#` (there are no inline comments);
 * - `[section]`, the name made of letters, digits, `_`, `-`, `.`;
 * - `key = value`, the key made of lower-case letters, digits and `_`; spaces
 *   around `=` and the value are trimmed; a value wrapped in double quotes has
 *   them removed (there are no escapes).
 *
 * Keys before the first section are global. The file is shared by all
 * VoidPhone modules, so other sections are syntax-checked but otherwise
 * ignored, and of the global keys only `hostkey` is read.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import {
  formatSocketAddress,
  isLoopbackHostname,
  parseSocketAddress,
  type SocketAddress,
} from "./address.ts";
import { MAX_CONFIG_BYTES, readBoundedTextFile } from "./bounded_file.ts";
import { clipText, ConfigError } from "./errors.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";

/** One `key = value` line of an INI document. */
export interface IniEntry {
  /** The key, as written (lower case). */
  readonly key: string;
  /** The value with surrounding whitespace and double quotes removed. */
  readonly value: string;
  /** 1-based line number in the file. */
  readonly line: number;
}

/** A `[name]` section and the entries that follow it. */
export interface IniSection {
  /** Section name without brackets. */
  readonly name: string;
  /** 1-based line number of the `[name]` header. */
  readonly line: number;
  /** Entries in file order; keys are unique within a section. */
  readonly entries: readonly IniEntry[];
}

/** A parsed INI file. */
export interface IniDocument {
  /** Entries before the first section header. */
  readonly global: readonly IniEntry[];
  /** Sections in file order (a name may repeat; see {@linkcode parseConfig}). */
  readonly sections: readonly IniSection[];
}

const SECTION_NAME = /^[A-Za-z0-9_.-]+$/;
const KEY = /^[a-z0-9_]+$/;
/** Longest key name accepted; longer ones are surely not ours (and not echoed whole). */
const MAX_KEY_LENGTH = 64;

/** User text quoted in a message: clipped and with control characters escaped. */
function quoted(text: string): string {
  return `"${clipText(text, 80)}"`;
}

/**
 * Parses INI `text` strictly (see the module documentation for the grammar).
 *
 * @throws {ConfigError} with the line number on any line that is not blank, a
 * comment, a section header or `key = value`, and on a key repeated within a section.
 */
export function parseIni(text: string): IniDocument {
  const global: IniEntry[] = [];
  const sections: { name: string; line: number; entries: IniEntry[] }[] = [];
  let current: IniEntry[] = global;
  let currentName = "global keys";
  let seen = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].trim();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;
    if (line.startsWith("[")) {
      const close = line.indexOf("]");
      if (close < 0) {
        throw new ConfigError(
          "config",
          `unterminated section header ${quoted(line)}; write [name]`,
          lineNo,
        );
      }
      if (close !== line.length - 1) {
        throw new ConfigError(
          "config",
          `unexpected text after "]" in ${
            quoted(line)
          }; a section header is just [name] on its own line`,
          lineNo,
        );
      }
      const name = line.slice(1, close);
      if (!SECTION_NAME.test(name)) {
        throw new ConfigError(
          "config",
          `invalid section name ${
            quoted(name)
          }; use letters, digits, "_", "-" or "." as in [gossip]`,
          lineNo,
        );
      }
      const section = { name, line: lineNo, entries: [] as IniEntry[] };
      sections.push(section);
      current = section.entries;
      currentName = `[${name}]`;
      seen = new Map();
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) {
      throw new ConfigError(
        "config",
        `cannot parse ${
          quoted(line)
        }; expected "key = value", "[section]" or a comment starting with ";" or "#"`,
        lineNo,
      );
    }
    const key = line.slice(0, eq).trim();
    if (key === "") {
      throw new ConfigError(
        "config",
        `missing key before "=" in ${quoted(line)}; write "key = value"`,
        lineNo,
      );
    }
    if (key.length > MAX_KEY_LENGTH) {
      throw new ConfigError(
        key,
        `key name is ${key.length} characters long; keys have at most ${MAX_KEY_LENGTH}`,
        lineNo,
      );
    }
    if (!KEY.test(key)) {
      const hint = KEY.test(key.toLowerCase())
        ? `; keys are lower case: write "${key.toLowerCase()}"`
        : "";
      throw new ConfigError(
        key,
        `invalid key name ${quoted(key)}; keys use lower-case letters, digits and "_"${hint}`,
        lineNo,
      );
    }
    let value = line.slice(eq + 1).trim();
    if (value.startsWith('"')) {
      if (value.length < 2 || !value.endsWith('"')) {
        throw new ConfigError(
          key,
          `unterminated quote in value ${clipText(value)}; close it with '"'`,
          lineNo,
        );
      }
      value = value.slice(1, -1);
    }
    const previous = seen.get(key);
    if (previous !== undefined) {
      throw new ConfigError(
        key,
        `duplicate key in ${currentName} (first set on line ${previous}); keep only one`,
        lineNo,
      );
    }
    seen.set(key, lineNo);
    current.push({ key, value, line: lineNo });
  }
  return { global, sections };
}

/** Settings of the gossip module (the `[gossip]` section), camelCase. */
export interface GossipOptions {
  /** Where the module API listens (`api_address`). */
  readonly apiAddress: SocketAddress;
  /** Where the peer-to-peer protocol listens (`p2p_address`). */
  readonly p2pAddress: SocketAddress;
  /**
   * Peers to join the network through (`bootstrapper`, comma-separated), in
   * the order written; host names are kept as names. Empty when unset.
   */
  readonly bootstrappers: readonly SocketAddress[];
  /** Number of peers items are pushed to (`degree`). */
  readonly degree: number;
  /** Maximum number of data items remembered; oldest dropped first (`cache_size`). */
  readonly cacheSize: number;
  /** How long to wait for subscribers' VALIDATION, in ms (`validation_timeout_ms`). */
  readonly validationTimeoutMs: number;
  /** Maximum concurrent API connections (`max_api_connections`). */
  readonly maxApiConnections: number;
  /** Maximum concurrent peer connections (`max_peer_connections`). */
  readonly maxPeerConnections: number;
  /** Number of known-but-unconnected peers kept as spares (`passive_view_size`). */
  readonly passiveViewSize: number;
  /** Period of membership maintenance, in ms (`membership_interval_ms`). */
  readonly membershipIntervalMs: number;
  /** Time allowed for a peer handshake, in ms (`handshake_timeout_ms`). */
  readonly handshakeTimeoutMs: number;
  /** Idle time after which a peer connection is dropped, in ms (`peer_idle_timeout_ms`). */
  readonly peerIdleTimeoutMs: number;
  /** Allow `api_address` to be a non-loopback address (`api_allow_remote`). */
  readonly apiAllowRemote: boolean;
  /** File where the known-peer list is persisted (`peers_file`), absolute. */
  readonly peersFile?: string;
  /** Leading zero bits required of an identity proof-of-work (`pow_difficulty`). */
  readonly powDifficulty: number;
  /** Where the optional status endpoint listens (`status_address`). */
  readonly statusAddress?: SocketAddress;
  /** Allow `status_address` to be a non-loopback address (`status_allow_remote`). */
  readonly statusAllowRemote: boolean;
}

/** The whole configuration the gossip daemon reads from the shared file. */
export interface GossipConfig {
  /** Absolute path of the PEM host key (global `hostkey`). */
  readonly hostkeyPath: string;
  /** Log level from `log_level` in [gossip], when set (the command line overrides it). */
  readonly logLevel?: LogLevel;
  /** The `[gossip]` section. */
  readonly gossip: GossipOptions;
}

/** Names of the {@linkcode GossipOptions} fields whose (non-undefined) type is `V`. */
export type FieldsOfType<V> = {
  [K in keyof GossipOptions]-?: NonNullable<GossipOptions[K]> extends V ? K : never;
}[keyof GossipOptions];

/** Option fields holding integers. */
export type IntOptionField = FieldsOfType<number>;
/** Option fields holding booleans. */
export type BoolOptionField = FieldsOfType<boolean>;
/** Option fields holding socket addresses. */
export type AddressOptionField = FieldsOfType<SocketAddress>;
/** Option fields holding lists of socket addresses. */
export type AddressListOptionField = FieldsOfType<readonly SocketAddress[]>;
/** Option fields holding file paths. */
export type PathOptionField = FieldsOfType<string>;

/** Fields shared by every {@linkcode ConfigKeySpec}. */
export interface ConfigKeyBase {
  /** The key as written in the file (lower case). */
  readonly name: string;
  /** `global` (before any section) or the `[gossip]` section. */
  readonly section: "global" | "gossip";
  /** One-line description for documentation and `--help`. */
  readonly doc: string;
}

/** An integer key with an inclusive range and a default. */
export interface IntKeySpec extends ConfigKeyBase {
  /** Value kind. */
  readonly kind: "int";
  /** The {@linkcode GossipOptions} field set by this key. */
  readonly field: IntOptionField;
  /** Value used when the key is absent. */
  readonly default: number;
  /** Smallest allowed value. */
  readonly min: number;
  /** Largest allowed value. */
  readonly max: number;
}

/** A boolean key (`true/false/yes/no/on/off/1/0`) with a default. */
export interface BoolKeySpec extends ConfigKeyBase {
  /** Value kind. */
  readonly kind: "bool";
  /** The {@linkcode GossipOptions} field set by this key. */
  readonly field: BoolOptionField;
  /** Value used when the key is absent. */
  readonly default: boolean;
}

/** A `host:port` key; optional ones may be absent or empty. */
export interface AddressKeySpec extends ConfigKeyBase {
  /** Value kind. */
  readonly kind: "address";
  /** The {@linkcode GossipOptions} field set by this key. */
  readonly field: AddressOptionField;
  /** True when the key must be present and non-empty. */
  readonly required: boolean;
}

/** A comma-separated list of `host:port` addresses; absent or empty means none. */
export interface AddressListKeySpec extends ConfigKeyBase {
  /** Value kind. */
  readonly kind: "address_list";
  /** The {@linkcode GossipOptions} field set by this key. */
  readonly field: AddressListOptionField;
  /** Most addresses accepted. */
  readonly max: number;
}

/** A key with one of a fixed set of words as its value. */
export interface LevelKeySpec extends ConfigKeyBase {
  /** Value kind. */
  readonly kind: "log_level";
  /** The field set by this key ({@linkcode GossipConfig.logLevel}). */
  readonly field: "logLevel";
}

/** A file path key, resolved against the config file's directory. */
export interface PathKeySpec extends ConfigKeyBase {
  /** Value kind. */
  readonly kind: "path";
  /** The field set by this key ({@linkcode GossipConfig.hostkeyPath} for `hostkey`). */
  readonly field: PathOptionField | "hostkeyPath";
  /** True when the key must be present and non-empty. */
  readonly required: boolean;
}

/** Description of one configuration key; see {@linkcode CONFIG_KEYS}. */
export type ConfigKeySpec =
  | IntKeySpec
  | BoolKeySpec
  | AddressKeySpec
  | AddressListKeySpec
  | PathKeySpec
  | LevelKeySpec;

const G = "gossip";

/**
 * Every key the gossip module reads, one entry per key. Adding a key means
 * adding a line here and a field to {@linkcode GossipOptions}.
 */
// deno-fmt-ignore -- one line per key keeps the table readable and diffs small.
export const CONFIG_KEYS: readonly ConfigKeySpec[] = [
  { name: "hostkey", section: "global", kind: "path", field: "hostkeyPath", required: true, doc: "PEM RSA private key of this peer (PKCS#1 or PKCS#8); create with `gossip keygen`" },
  { name: "api_address", section: G, kind: "address", field: "apiAddress", required: true, doc: "host:port where the module API listens" },
  { name: "p2p_address", section: G, kind: "address", field: "p2pAddress", required: true, doc: "host:port where the peer-to-peer protocol listens" },
  { name: "bootstrapper", section: G, kind: "address_list", field: "bootstrappers", max: 64, doc: "host:port of peers to join the network through, comma-separated; names are resolved at each try" },
  { name: "degree", section: G, kind: "int", field: "degree", default: 5, min: 1, max: 256, doc: "outbound peers kept; a forwarding node pushes each item so that this many of its peers have it (at least half of them by push)" },
  { name: "cache_size", section: G, kind: "int", field: "cacheSize", default: 1000, min: 1, max: 1_000_000, doc: "validated items kept and served to peers that ask; the oldest are dropped first" },
  { name: "validation_timeout_ms", section: G, kind: "int", field: "validationTimeoutMs", default: 5000, min: 10, max: 600_000, doc: "how long to wait for subscribers' GOSSIP VALIDATION before dropping an item" },
  { name: "max_api_connections", section: G, kind: "int", field: "maxApiConnections", default: 256, min: 1, max: 65535, doc: "maximum concurrent API connections" },
  { name: "max_peer_connections", section: G, kind: "int", field: "maxPeerConnections", default: 64, min: 1, max: 65535, doc: "maximum concurrent peer connections" },
  { name: "passive_view_size", section: G, kind: "int", field: "passiveViewSize", default: 30, min: 0, max: 10000, doc: "number of known but unconnected peers kept as spares" },
  { name: "membership_interval_ms", section: G, kind: "int", field: "membershipIntervalMs", default: 1000, min: 50, max: 3_600_000, doc: "period of membership maintenance (peer exchange, reconnects)" },
  { name: "handshake_timeout_ms", section: G, kind: "int", field: "handshakeTimeoutMs", default: 5000, min: 100, max: 600_000, doc: "time allowed for a peer handshake" },
  { name: "peer_idle_timeout_ms", section: G, kind: "int", field: "peerIdleTimeoutMs", default: 30000, min: 1000, max: 3_600_000, doc: "idle time after which a peer connection is dropped" },
  { name: "api_allow_remote", section: G, kind: "bool", field: "apiAllowRemote", default: false, doc: "allow a non-loopback api_address (the API has no authentication)" },
  { name: "peers_file", section: G, kind: "path", field: "peersFile", required: false, doc: "file where known peers, bans and the day's proof-of-work are kept across restarts" },
  { name: "pow_difficulty", section: G, kind: "int", field: "powDifficulty", default: 16, min: 0, max: 32, doc: "leading zero bits required of a peer identity's proof-of-work" },
  { name: "status_address", section: G, kind: "address", field: "statusAddress", required: false, doc: "host:port of the optional status page, /status JSON and /metrics; must be loopback unless status_allow_remote = true" },
  { name: "status_allow_remote", section: G, kind: "bool", field: "statusAllowRemote", default: false, doc: "allow a non-loopback status_address (the status page has no authentication)" },
  { name: "log_level", section: G, kind: "log_level", field: "logLevel", doc: `log level: ${LOG_LEVELS.join(", ")} (default warn; --log-level overrides it; SIGHUP rereads it)` },
];

type MutableOptions = { -readonly [K in keyof GossipOptions]?: GossipOptions[K] };

const BOOLS: Record<string, boolean> = {
  true: true,
  yes: true,
  on: true,
  "1": true,
  false: false,
  no: false,
  off: false,
  "0": false,
};

function commentHint(value: string): string {
  return /\s[;#]/.test(value) ? " (comments must be on their own line)" : "";
}

function parseIntValue(spec: IntKeySpec, value: string, line?: number): number {
  const expected = `expected an integer from ${spec.min} to ${spec.max}`;
  if (value === "") throw new ConfigError(spec.name, `is empty; ${expected}`, line);
  if (!/^[0-9]+$/.test(value)) {
    throw new ConfigError(
      spec.name,
      `"${value}" is not a decimal integer; ${expected}${commentHint(value)}`,
      line,
    );
  }
  const n = Number(value);
  if (n < spec.min || n > spec.max) {
    throw new ConfigError(spec.name, `${value} is out of range; ${expected}`, line);
  }
  return n;
}

function parseBoolValue(spec: BoolKeySpec, value: string, line?: number): boolean {
  const result = BOOLS[value.toLowerCase()];
  if (result === undefined) {
    throw new ConfigError(
      spec.name,
      `"${value}" is not a boolean; expected true or false (also yes/no, on/off, 1/0)${
        commentHint(value)
      }`,
      line,
    );
  }
  return result;
}

/** Optimal-string-alignment edit distance (insert, delete, substitute, swap). */
function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        d[i].push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2][j - 2] + 1);
      }
      d[i].push(best);
    }
  }
  return d[a.length][b.length];
}

function suggestKey(key: string): string | undefined {
  // Far longer than any key name: no suggestion, and no quadratic work on it.
  if (key.length > 40) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const spec of CONFIG_KEYS) {
    if (spec.section !== G) continue;
    const distance = editDistance(key, spec.name);
    if (distance < bestDistance) {
      best = spec.name;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 4)) ? best : undefined;
}

/** Refuses a non-loopback address for an unauthenticated local service unless allowed. */
function checkLocalAddress(
  key: "api_address" | "status_address",
  address: SocketAddress,
  allowRemote: boolean,
  line?: number,
): void {
  if (allowRemote || isLoopbackHostname(address.hostname)) return;
  const what = key === "api_address" ? "the API" : "the status page";
  const allow = key === "api_address" ? "api_allow_remote" : "status_allow_remote";
  throw new ConfigError(
    key,
    `${formatSocketAddress(address)} is not a loopback address, but ${what} has no ` +
      `authentication; use 127.0.0.1 or [::1], or set \`${allow} = true\` in [gossip] ` +
      `to expose it deliberately`,
    line,
  );
}

/**
 * Parses a comma-separated address list for `spec`; an empty value is an
 * empty list. Entries must be distinct.
 */
function parseAddressList(spec: AddressListKeySpec, value: string, line?: number): SocketAddress[] {
  if (value.trim() === "") return [];
  const parts = value.split(",").map((part) => part.trim());
  if (parts.length > spec.max) {
    throw new ConfigError(
      spec.name,
      `lists ${parts.length} addresses; at most ${spec.max} are accepted`,
      line,
    );
  }
  const seen = new Set<string>();
  return parts.map((part, index) => {
    if (part === "") {
      throw new ConfigError(
        spec.name,
        `entry ${index + 1} of the list is empty; separate host:port entries with single commas`,
        line,
      );
    }
    const address = parseSocketAddress(part, spec.name, line);
    const key = formatSocketAddress(address).toLowerCase();
    if (seen.has(key)) {
      throw new ConfigError(spec.name, `${clipText(part)} is listed twice; keep one`, line);
    }
    seen.add(key);
    return address;
  });
}

function parseLevelValue(spec: LevelKeySpec, value: string, line?: number): LogLevel {
  const level = LOG_LEVELS.find((l) => l === value.toLowerCase());
  if (level === undefined) {
    throw new ConfigError(
      spec.name,
      `"${clipText(value)}" is not a log level; expected one of ${LOG_LEVELS.join(", ")}${
        commentHint(value)
      }`,
      line,
    );
  }
  return level;
}

/**
 * Parses and validates the configuration `text`.
 *
 * @param options.baseDir directory that relative paths (`hostkey`, `peers_file`)
 * are resolved against; normally the config file's directory.
 * @throws {ConfigError} naming the key and line for any syntax error, unknown
 * `[gossip]` key, missing required key or invalid value.
 */
export function parseConfig(text: string, options: { baseDir: string }): GossipConfig {
  const doc = parseIni(text);
  const specs = new Map(CONFIG_KEYS.map((spec) => [`${spec.section}.${spec.name}`, spec]));

  let hostkeyPath: string | undefined;
  for (const entry of doc.global) {
    if (entry.key !== "hostkey") continue; // other modules' global keys
    if (entry.value === "") {
      throw new ConfigError(
        "hostkey",
        "is empty; expected the path of a PEM RSA private key",
        entry.line,
      );
    }
    hostkeyPath = resolve(options.baseDir, entry.value);
  }

  const gossipSections = doc.sections.filter((s) => s.name === G);
  const misspelt = doc.sections.find((s) => s.name !== G && s.name.toLowerCase() === G);
  if (misspelt !== undefined) {
    throw new ConfigError(
      "config",
      `section [${clipText(misspelt.name)}] must be written [gossip] (lower case)`,
      misspelt.line,
    );
  }
  if (gossipSections.length > 1) {
    throw new ConfigError(
      "config",
      `duplicate [gossip] section (first on line ${gossipSections[0].line}); merge them into one`,
      gossipSections[1].line,
    );
  }
  if (hostkeyPath === undefined) {
    const misplaced = gossipSections[0]?.entries.find((e) => e.key === "hostkey");
    throw new ConfigError(
      "hostkey",
      misplaced === undefined
        ? "missing; add `hostkey = /path/to/hostkey.pem` before the first section " +
          "(create a key with `gossip keygen <path>`)"
        : "is a global key; move it above the first [section] header",
      misplaced?.line,
    );
  }
  if (gossipSections.length === 0) {
    throw new ConfigError(
      "gossip",
      "section [gossip] is missing; add it with at least api_address and p2p_address",
    );
  }

  const out: MutableOptions = {};
  let logLevel: LogLevel | undefined;
  const lines = new Map<string, number>();
  for (const entry of gossipSections[0].entries) {
    const spec = specs.get(`${G}.${entry.key}`);
    if (spec === undefined) {
      if (entry.key === "hostkey") {
        throw new ConfigError(
          "hostkey",
          "is a global key; move it above the first [section] header",
          entry.line,
        );
      }
      const suggestion = suggestKey(entry.key);
      throw new ConfigError(
        entry.key,
        `unknown key in [gossip]` +
          (suggestion === undefined
            ? `; known keys: ${
              CONFIG_KEYS.filter((s) => s.section === G).map((s) => s.name).join(", ")
            }`
            : `; did you mean \`${suggestion}\`?`),
        entry.line,
      );
    }
    lines.set(spec.name, entry.line);
    const { value, line } = entry;
    switch (spec.kind) {
      case "int":
        out[spec.field] = parseIntValue(spec, value, line);
        break;
      case "bool":
        out[spec.field] = parseBoolValue(spec, value, line);
        break;
      case "address":
        if (value === "") {
          if (spec.required) {
            throw new ConfigError(
              spec.name,
              "is empty; expected host:port, e.g. 127.0.0.1:7001",
              line,
            );
          }
          break;
        }
        out[spec.field] = parseSocketAddress(value, spec.name, line);
        break;
      case "address_list":
        out[spec.field] = parseAddressList(spec, value, line);
        break;
      case "log_level":
        if (value !== "") logLevel = parseLevelValue(spec, value, line);
        break;
      case "path":
        if (value === "") {
          if (spec.required) {
            throw new ConfigError(spec.name, "is empty; expected a file path", line);
          }
          break;
        }
        if (spec.field !== "hostkeyPath") out[spec.field] = resolve(options.baseDir, value);
        break;
    }
  }

  for (const spec of CONFIG_KEYS) {
    if (spec.section !== G || spec.kind !== "address" || !spec.required) continue;
    if (out[spec.field] === undefined) {
      throw new ConfigError(
        spec.name,
        `missing in [gossip]; add \`${spec.name} = host:port\` (${spec.doc})`,
      );
    }
  }
  const apiAddress = out.apiAddress!;
  checkLocalAddress(
    "api_address",
    apiAddress,
    out.apiAllowRemote ?? false,
    lines.get("api_address"),
  );
  if (out.statusAddress !== undefined) {
    checkLocalAddress(
      "status_address",
      out.statusAddress,
      out.statusAllowRemote ?? false,
      lines.get("status_address"),
    );
  }
  return {
    hostkeyPath,
    ...(logLevel === undefined ? {} : { logLevel }),
    gossip: gossipOptions({ ...out, apiAddress, p2pAddress: out.p2pAddress! }),
  };
}

/** A setting that is valid but weakens the node; the daemon logs it as a warning at start. */
export interface ConfigAdvice {
  /** The config key concerned. */
  readonly key: string;
  /** What is at risk and how to fix it, in one line. */
  readonly message: string;
}

/**
 * Valid settings that leave the node easy to attack (docs/DEPLOY.md, "Several hosts"):
 * exactly one `bootstrapper` off loopback. A node with no saved peers meets
 * the network only through the peers its bootstrapper names, so a hostile
 * bootstrapper can name only its accomplices and the node never learns of an
 * honest peer (the simulation's eclipsed nodes that know no honest peer,
 * docs/SIMULATION.md). None when no bootstrapper is set (the first node of a
 * network) or when the only one is on loopback (a test on one machine).
 */
export function configAdvice(options: GossipOptions): ConfigAdvice[] {
  const advice: ConfigAdvice[] = [];
  const [only, ...others] = options.bootstrappers;
  if (only !== undefined && others.length === 0 && !isLoopbackHostname(only.hostname)) {
    advice.push({
      key: "bootstrapper",
      message: "only one bootstrapper is set: a hostile one can name only its accomplices, " +
        "and this node would meet no honest peer; list two or more, run by different people " +
        "on different networks (docs/DEPLOY.md)",
    });
  }
  return advice;
}

/**
 * Reads and parses the configuration file at `path`; relative paths inside
 * it are resolved against the file's directory.
 *
 * @throws {FileReadError} `config` when the file is missing, not a regular file,
 * larger than {@linkcode MAX_CONFIG_BYTES} or unreadable.
 * @throws {ConfigError} as {@linkcode parseConfig}.
 */
export async function loadConfig(path: string): Promise<GossipConfig> {
  const text = await readBoundedTextFile(path, MAX_CONFIG_BYTES, "config");
  return parseConfig(text, { baseDir: dirname(resolve(path)) });
}

/**
 * Builds complete {@linkcode GossipOptions} for library use: fields not given
 * take the defaults from {@linkcode CONFIG_KEYS}. Values are validated like
 * the config file's (ranges, addresses, loopback `apiAddress` unless
 * `apiAllowRemote`).
 *
 * @throws {ConfigError} naming the config key of an invalid field.
 */
export function gossipOptions(
  partial: Partial<GossipOptions> & Pick<GossipOptions, "apiAddress" | "p2pAddress">,
): GossipOptions {
  const out: MutableOptions = {};
  for (const spec of CONFIG_KEYS) {
    if (spec.section !== G) continue;
    switch (spec.kind) {
      case "int": {
        const value = partial[spec.field] ?? spec.default;
        if (!Number.isSafeInteger(value) || value < spec.min || value > spec.max) {
          throw new ConfigError(
            spec.name,
            `${value} is invalid; expected an integer from ${spec.min} to ${spec.max}`,
          );
        }
        out[spec.field] = value;
        break;
      }
      case "bool":
        out[spec.field] = partial[spec.field] ?? spec.default;
        break;
      case "address": {
        const value = partial[spec.field];
        if (value !== undefined) {
          // Round-trip through the parser to validate hostname and port.
          out[spec.field] = parseSocketAddress(formatSocketAddress(value), spec.name);
        }
        break;
      }
      case "address_list": {
        const list = partial[spec.field] ?? [];
        // Round-trip through the parser: the same checks as the config file's.
        out[spec.field] = parseAddressList(spec, list.map(formatSocketAddress).join(","));
        break;
      }
      case "log_level":
        break; // not a node option (GossipConfig.logLevel)
      case "path":
        if (spec.field !== "hostkeyPath" && partial[spec.field] !== undefined) {
          out[spec.field] = partial[spec.field];
        }
        break;
    }
  }
  checkLocalAddress("api_address", partial.apiAddress, out.apiAllowRemote ?? false);
  if (out.statusAddress !== undefined) {
    checkLocalAddress("status_address", out.statusAddress, out.statusAllowRemote ?? false);
  }
  // Every non-optional field was set above from `partial` or a default.
  return out as GossipOptions;
}
