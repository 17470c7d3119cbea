/**
 * The floor under the daemon's per-event cost: CPU that a bare Deno process
 * spends to receive one message on a TCP connection and answer it, with the
 * messages spaced like gossip traffic (a few per 100 ms) or back to back.
 *
 * ```sh
 * deno run --allow-net --allow-run --allow-read scripts/bench/wakeup_cost.ts
 * deno run --allow-net --allow-run --allow-read scripts/bench/wakeup_cost.ts \
 *   --messages 300 --size 1100 --intervals 0,1,10,100
 * deno run --allow-net --allow-run --allow-read --allow-write \
 *   scripts/bench/wakeup_cost.ts --relay 5 --json relay.json
 * ```
 *
 * For each variant and interval a fresh child `deno run` process echoes
 * length-prefixed messages on 127.0.0.1; this process sends `--messages`
 * messages `interval` ms apart, each after the previous echo came back, and
 * reads the child's CPU time before and after: all its threads' time on a CPU
 * from /proc/<pid>/task/<tid>/schedstat (ns), split into user and system by
 * /proc/<pid>/stat (10 ms ticks, so the split is coarse for short cells).
 * Variants of the child: `plain` (read, copy, write), `cipher` (plus one
 * node:crypto AES-256-GCM createDecipheriv and createCipheriv per message, as
 * lib/transport/peer_crypto.ts does per frame), and `webcrypto` (plus a Web
 * Crypto AES-GCM decrypt and encrypt with keys imported once).
 *
 * `--relay D` measures instead the least any gossip node must do per delivery,
 * whatever its protocol: the child reads a sealed item from one peer and opens
 * it (node:crypto AES-256-GCM, as peer_crypto.ts), writes it to its module on a
 * second connection, reads the module's one-byte verdict (the module answers at
 * once), then seals it for each of D peers and writes it to each: one copy per
 * delivery, no IHAVE, no duplicate, no membership traffic. This process plays
 * the upstream peer, the module and the D downstream peers.
 *
 * @module
 */

import { createCipheriv, createDecipheriv } from "node:crypto";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { cpuOfPids, memoryOfPids, threadCpuOfPids } from "./proc.ts";

const SELF = fileURLToPath(import.meta.url);
const VARIANTS = ["plain", "cipher", "webcrypto"] as const;
type Variant = typeof VARIANTS[number];

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array<ArrayBuffer> | null> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) return null;
    got += r;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function frame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** Seals `body` for one peer: AES-256-GCM, one cipher object per frame as peer_crypto.ts. */
function seal(key: Uint8Array, counter: number, body: Uint8Array): Uint8Array {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, counter);
  const c = createCipheriv("aes-256-gcm", key, iv);
  const sealed = c.update(body);
  c.final();
  const out = new Uint8Array(sealed.length + 16);
  out.set(sealed);
  out.set(c.getAuthTag(), sealed.length);
  return out;
}

/** Opens a frame sealed by {@link seal}; throws if it was altered. */
function open(key: Uint8Array, counter: number, frame: Uint8Array): Uint8Array<ArrayBuffer> {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, counter);
  const d = createDecipheriv("aes-256-gcm", key, iv);
  d.setAuthTag(frame.subarray(frame.length - 16));
  const body = new Uint8Array(d.update(frame.subarray(0, frame.length - 16)));
  d.final();
  return body;
}

async function readFrame(conn: Deno.Conn): Promise<Uint8Array<ArrayBuffer> | null> {
  const header = await readExactly(conn, 4);
  if (!header) return null;
  return await readExactly(conn, new DataView(header.buffer).getUint32(0));
}

const RELAY_KEY = new Uint8Array(32).fill(9);

/**
 * Listens on 127.0.0.1, prints the port for the parent, and accepts `count`
 * connections in order.
 */
async function acceptConnections(count: number): Promise<Deno.Conn[]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(String(listener.addr.port));
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await listener.accept();
    conn.setNoDelay(true);
    conns.push(conn);
  }
  listener.close();
  return conns;
}

/** The child: accepts one connection and echoes messages, transformed per `variant`. */
async function child(variant: Variant): Promise<void> {
  const [conn] = await acceptConnections(1);
  const key = new Uint8Array(32).fill(7);
  const iv = new Uint8Array(12);
  const webKey = await crypto.subtle.importKey("raw", key, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
  let counter = 0;
  for (let i = 0; i < 1_000_000; i++) {
    let body = await readFrame(conn);
    if (!body) break;
    if (variant === "cipher") {
      body = open(key, counter, seal(key, counter, body));
      counter++;
    } else if (variant === "webcrypto") {
      new DataView(iv.buffer).setUint32(8, counter++);
      const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, webKey, body);
      body = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, webKey, sealed));
    } else {
      body = body.slice();
    }
    await writeAll(conn, frame(body));
  }
  conn.close();
}

/**
 * The relay child: accepts its upstream peer, its module and `degree`
 * downstream peers (in that order), then per item: open, to the module, wait
 * for the verdict, seal and send to every downstream peer.
 */
async function relayChild(degree: number): Promise<void> {
  const conns = await acceptConnections(degree + 2);
  const [upstream, module, ...downstream] = conns;
  for (let counter = 0; counter < 1_000_000; counter++) {
    const sealed = await readFrame(upstream);
    if (!sealed) break;
    const item = open(RELAY_KEY, counter, sealed);
    await writeAll(module, frame(item));
    const verdict = await readExactly(module, 1);
    if (!verdict || verdict[0] !== 1) break;
    await Promise.all(
      downstream.map((conn) => writeAll(conn, frame(seal(RELAY_KEY, counter, item)))),
    );
  }
  for (const conn of conns) conn.close();
}

/** Voluntary context switches of all threads of `pid` (times a thread went to sleep). */
async function contextSwitches(pid: number): Promise<number> {
  const result = await new Deno.Command("sh", {
    args: ["-c", `cat /proc/${pid}/task/*/status 2>/dev/null`],
    stdout: "piped",
    stderr: "null",
  }).output();
  let total = 0;
  const text = new TextDecoder().decode(result.stdout);
  for (const m of text.matchAll(/^voluntary_ctxt_switches:\s+(\d+)$/gm)) total += Number(m[1]);
  return total;
}

interface Row {
  variant: Variant | "relay";
  intervalMs: number;
  messages: number;
  cpuUsPerMessage: number;
  wakeupsPerMessage: number;
  userUs: number;
  systemUs: number;
  roundTripUsP50: number;
  /** The child's resident memory after the cell (MiB), and its private part. */
  rssMiB: number;
  anonMiB: number;
}

/** A child `deno run` of this script in a role; resolves with the port it listens on. */
async function spawnChild(
  args: string[],
): Promise<{ proc: Deno.ChildProcess; port: number; drained: Promise<void> }> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", SELF, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("child exited before listening");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { proc, port: Number(text.trim()), drained: proc.stdout.cancel() };
}

async function connectTo(port: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  return conn;
}

/**
 * One cell: 200 warm-up messages (JIT and first-use allocations), then
 * `messages` timed ones `intervalMs` apart, each a call of `trip`; the child's
 * CPU and sleeps per message.
 */
async function cell(
  variant: Row["variant"],
  pid: number,
  intervalMs: number,
  messages: number,
  trip: () => Promise<void>,
): Promise<Row> {
  for (let i = 0; i < 200; i++) await trip();
  await new Promise((r) => setTimeout(r, 200));
  const [before] = await cpuOfPids([pid]);
  const [threadsBefore] = await threadCpuOfPids([pid]);
  const switchesBefore = await contextSwitches(pid);
  const trips: number[] = [];
  for (let i = 0; i < messages; i++) {
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    const t = performance.now();
    await trip();
    trips.push((performance.now() - t) * 1000);
  }
  const [threadsAfter] = await threadCpuOfPids([pid]);
  const switchesAfter = await contextSwitches(pid);
  const [after] = await cpuOfPids([pid]);
  const [memory] = await memoryOfPids([pid]);
  trips.sort((a, b) => a - b);
  return {
    variant,
    intervalMs,
    messages,
    cpuUsPerMessage: (threadsAfter - threadsBefore) * 1e6 / messages,
    wakeupsPerMessage: (switchesAfter - switchesBefore) / messages,
    userUs: (after.user - before.user) * 1e6 / messages,
    systemUs: (after.system - before.system) * 1e6 / messages,
    roundTripUsP50: trips[Math.floor(trips.length / 2)],
    rssMiB: memory.rss / 2 ** 20,
    anonMiB: memory.rssAnon / 2 ** 20,
  };
}

async function measure(
  variant: Variant,
  intervalMs: number,
  messages: number,
  size: number,
): Promise<Row> {
  const { proc, port, drained } = await spawnChild(["--child", variant]);
  const conn = await connectTo(port);
  const payload = frame(new Uint8Array(size).fill(1));
  const row = await cell(variant, proc.pid, intervalMs, messages, async () => {
    await writeAll(conn, payload);
    await readExactly(conn, payload.length);
  });
  conn.close();
  await proc.status;
  await drained;
  return row;
}

/** The relay cell: this process is the upstream peer, the module and `degree` peers. */
async function measureRelay(
  degree: number,
  intervalMs: number,
  messages: number,
  size: number,
): Promise<Row> {
  const { proc, port, drained } = await spawnChild(["--relay-child", String(degree)]);
  const upstream = await connectTo(port);
  const module = await connectTo(port);
  const downstream: Deno.Conn[] = [];
  for (let i = 0; i < degree; i++) downstream.push(await connectTo(port));
  const item = new Uint8Array(size).fill(1);
  let counter = 0;
  const verdict = new Uint8Array([1]);
  const row = await cell("relay", proc.pid, intervalMs, messages, async () => {
    const n = counter++;
    await writeAll(upstream, frame(seal(RELAY_KEY, n, item)));
    const notification = await readFrame(module);
    if (notification?.length !== size) throw new Error("relay: no item at the module");
    await writeAll(module, verdict);
    const copies = await Promise.all(downstream.map(readFrame));
    for (const copy of copies) {
      if (!copy || open(RELAY_KEY, n, copy).length !== size) throw new Error("relay: bad copy");
    }
  });
  for (const conn of [upstream, module, ...downstream]) conn.close();
  await proc.status;
  await drained;
  return row;
}

const WAKEUP_USAGE =
  `deno run --allow-net --allow-run --allow-read scripts/bench/wakeup_cost.ts [options]

CPU a bare Deno echo process spends per message received and answered on a TCP
connection, by message spacing and per-message work.

Options:
  --messages N         messages per cell (default 300)
  --size BYTES         message size (default 1100)
  --intervals LIST     spacing in ms, comma-separated (default 0,1,10,100)
  --variants LIST      plain, cipher, webcrypto (default all)
  --relay D            instead: the least per delivery of any gossip node with D
                       peers to forward to (open, module round trip, D seals)
  --json FILE          also write the rows as JSON (needs --allow-write)
  -h, --help           this help`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      child: { type: "string" },
      "relay-child": { type: "string" },
      relay: { type: "string" },
      messages: { type: "string", default: "300" },
      size: { type: "string", default: "1100" },
      intervals: { type: "string", default: "0,1,10,100" },
      variants: { type: "string", default: VARIANTS.join(",") },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(WAKEUP_USAGE);
    return 0;
  }
  if (values.child !== undefined) {
    await child(values.child as Variant);
    return 0;
  }
  if (values["relay-child"] !== undefined) {
    await relayChild(Number(values["relay-child"]));
    return 0;
  }
  const messages = Number(values.messages);
  const size = Number(values.size);
  const intervals = values.intervals.split(",").map(Number);
  const relay = values.relay === undefined ? undefined : Number(values.relay);
  if (relay !== undefined && !(Number.isInteger(relay) && relay >= 1 && relay <= 64)) {
    console.error("wakeup_cost: --relay takes a peer count from 1 to 64");
    return 2;
  }
  const variants = values.variants.split(",") as Variant[];
  if (variants.some((v) => !VARIANTS.includes(v))) {
    console.error(`wakeup_cost: --variants takes ${VARIANTS.join(", ")}`);
    return 2;
  }
  console.log(
    `${
      relay === undefined ? "echo" : `relay (${relay} peers)`
    } child's CPU per message (${size}-byte messages, ${messages} per cell; CPU from ` +
      `schedstat (ns); user/system split from 10 ms ticks; sleeps = voluntary context ` +
      `switches of all its threads per message):`,
  );
  console.log(
    `  ${"variant".padEnd(10)}${"interval".padStart(10)}${"CPU/msg".padStart(12)}` +
      `${"user".padStart(10)}${"system".padStart(10)}${"sleeps".padStart(8)}` +
      `${"RTT p50".padStart(12)}${"RSS (anon)".padStart(16)}`,
  );
  const rows: Row[] = [];
  for (const variant of relay === undefined ? variants : ["relay" as const]) {
    for (const interval of intervals) {
      const row = variant === "relay"
        ? await measureRelay(relay!, interval, messages, size)
        : await measure(variant, interval, messages, size);
      rows.push(row);
      console.log(
        `  ${variant.padEnd(10)}${`${interval} ms`.padStart(10)}` +
          `${`${row.cpuUsPerMessage.toFixed(0)} us`.padStart(12)}` +
          `${`${row.userUs.toFixed(0)} us`.padStart(10)}` +
          `${`${row.systemUs.toFixed(0)} us`.padStart(10)}` +
          `${row.wakeupsPerMessage.toFixed(1).padStart(8)}` +
          `${`${row.roundTripUsP50.toFixed(0)} us`.padStart(12)}` +
          `${`${row.rssMiB.toFixed(1)} (${row.anonMiB.toFixed(1)})`.padStart(16)}`,
      );
    }
  }
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(rows, null, 1) + "\n");
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
