/**
 * Unit tests of FramedConnection over real loopback sockets: the test owns
 * both ends, builds frames by hand (tests/support/bytes.ts) and watches the
 * socket the connection uses through a tap that counts reads, writes and
 * closes.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { FrameFormat } from "../lib/codec/frame_decoder.ts";
import { DecodeError } from "../lib/errors.ts";
import { Logger, type LogLevel } from "../lib/log.ts";
import { BufferBudget } from "../lib/transport/buffer_budget.ts";
import {
  FramedConnection,
  type FramedConnectionOptions,
  type WriteSource,
} from "../lib/transport/framed_connection.ts";
import { concat, peerFrame } from "./support/bytes.ts";

/** `length u32` counting the payload, then the payload; whole frames of 5 bytes to 64 KiB. */
const FORMAT: FrameFormat = {
  lengthBytes: 4,
  lengthIncludesHeader: false,
  minFrameBytes: 5,
  maxFrameBytes: 64 * 1024,
};

/** A payload of `length` bytes that differs with `seed`. */
function payload(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return out;
}

/** The frames in `bytes`, parsed by hand (`length u32` of the payload, then the payload). */
function parseFrames(bytes: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let offset = 0;
  for (let i = 0; i < 100_000 && offset + 4 <= bytes.length; i++) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + offset).getUint32(0);
    assert.ok(offset + 4 + length <= bytes.length, "the stream ends inside a frame");
    frames.push(bytes.slice(offset, offset + 4 + length));
    offset += 4 + length;
  }
  assert.equal(offset, bytes.length, "trailing bytes after the last frame");
  return frames;
}

/** A connected pair of loopback sockets. */
async function socketPair(): Promise<{ server: Deno.TcpConn; client: Deno.TcpConn }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const [server, client] = await Promise.all([
      listener.accept(),
      Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    ]);
    return { server, client };
  } finally {
    listener.close();
  }
}

/**
 * A socket seen through a proxy that records every read, write and close the
 * connection makes. The read loop calls `read` again only after it has handled
 * everything it read before, so {@link Tap.handled} is an event, not a guess.
 */
class Tap {
  readonly conn: Deno.Conn;
  /** Calls of `read`. */
  readCalls = 0;
  /** Sizes of the reads that returned bytes. */
  readonly readSizes: number[] = [];
  /** Bytes passed to each `write` call, and what each call wrote. */
  readonly writes: { offered: number; written: number }[] = [];
  /** Calls of `close`. */
  closeCalls = 0;
  /** Bytes read so far. */
  received = 0;
  private waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(inner: Deno.Conn) {
    // deno-lint-ignore no-this-alias -- the proxy's trap needs the tap.
    const tap = this;
    this.conn = new Proxy(inner, {
      get(target, property) {
        if (property === "read") {
          return (buffer: Uint8Array) => tap.read(target, buffer);
        }
        if (property === "write") {
          return async (data: Uint8Array) => {
            const written = await target.write(data);
            tap.writes.push({ offered: data.length, written });
            return written;
          };
        }
        if (property === "close") {
          return () => {
            tap.closeCalls++;
            tap.settle(true);
            target.close();
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  /** Resolves once the reader has handled at least `bytes` bytes (or the socket was closed). */
  handled(bytes: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ bytes, resolve });
      this.settle(false);
    });
  }

  private read(target: Deno.Conn, buffer: Uint8Array): Promise<number | null> {
    this.readCalls++;
    // The reader asks for more: what it read before is handled.
    this.settle(false);
    return target.read(buffer).then((n) => {
      if (n !== null) {
        this.received += n;
        this.readSizes.push(n);
      }
      return n;
    });
  }

  private settle(closed: boolean): void {
    // Only waiters already handled: bytes of the read in progress are not.
    const handledBytes = this.received;
    const reading = this.readCalls > this.readSizes.length;
    this.waiters = this.waiters.filter((waiter) => {
      if (closed || (reading && handledBytes >= waiter.bytes)) {
        waiter.resolve();
        return false;
      }
      return true;
    });
  }
}

/** A log line captured by {@link capturingLogger}. */
interface Line {
  level: LogLevel;
  line: string;
}

function capturingLogger(lines: Line[]): Logger {
  return new Logger("debug", "test", (level, line) => lines.push({ level, line }));
}

/** A FramedConnection on the server end of a socket pair, and what it reported. */
interface Harness {
  connection: FramedConnection;
  tap: Tap;
  /** The raw client end: the test's side of the socket. */
  client: Deno.TcpConn;
  /** Copies of the frames handed to `onFrame`, in order. */
  frames: Uint8Array[];
  /** Every reason `onClose` was called with. */
  closeReasons: string[];
  /** The first close reason. */
  closed: Promise<string>;
  lines: Line[];
  /** Ends the test: closes both ends and waits for the read loop. */
  done(): Promise<void>;
}

async function harness(options: Partial<FramedConnectionOptions> = {}): Promise<Harness> {
  const { server, client } = await socketPair();
  const tap = new Tap(server);
  const frames: Uint8Array[] = [];
  const closeReasons: string[] = [];
  const lines: Line[] = [];
  let closedWith!: (reason: string) => void;
  const closed = new Promise<string>((resolve) => closedWith = resolve);
  const connection = new FramedConnection(tap.conn, {
    format: FORMAT,
    maxQueuedBytes: 1024 * 1024,
    log: capturingLogger(lines),
    onFrame: (frame) => {
      frames.push(frame.slice());
    },
    ...options,
    onClose: (reason) => {
      closeReasons.push(reason);
      closedWith(reason);
      options.onClose?.(reason);
    },
  });
  void connection.start();
  return {
    connection,
    tap,
    client,
    frames,
    closeReasons,
    closed,
    lines,
    async done() {
      await connection.close("test done");
      await connection.start();
      try {
        client.close();
      } catch {
        // closed by the test already
      }
    },
  };
}

/** Reads `conn` until EOF (or a reset), at most `limit` bytes; returns what arrived. */
async function readToEnd(conn: Deno.Conn, limit = 64 * 1024 * 1024): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const chunk = new Uint8Array(256 * 1024);
  let total = 0;
  try {
    while (total <= limit) {
      const n = await conn.read(chunk);
      if (n === null) break;
      parts.push(chunk.slice(0, n));
      total += n;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  }
  return concat(parts);
}

/** Reads exactly `count` bytes from `conn`. */
async function readExactly(conn: Deno.Conn, count: number): Promise<Uint8Array> {
  const out = new Uint8Array(count);
  let offset = 0;
  while (offset < count) {
    const n = await conn.read(out.subarray(offset));
    if (n === null) throw new Error(`EOF after ${offset} of ${count} bytes`);
    offset += n;
  }
  return out;
}

/** Writes all of `bytes` to `conn`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Lines about closing the connection. */
function closingLines(lines: readonly Line[]): Line[] {
  return lines.filter((line) => line.line.includes("closing"));
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- reading ------------------------------------------------------------------------

Deno.test("frames split at every byte are reassembled and delivered in order", async () => {
  const h = await harness();
  const sent = [peerFrame(payload(1, 1)), peerFrame(payload(13, 2)), peerFrame(payload(300, 3))];
  const stream = concat(sent);
  for (let i = 0; i < stream.length; i++) {
    await writeAll(h.client, stream.subarray(i, i + 1));
    await h.tap.handled(i + 1);
  }
  assert.equal(h.tap.readSizes.length, stream.length, "one read per byte");
  assert.ok(h.tap.readSizes.every((n) => n === 1));
  assert.deepEqual(h.frames, sent);
  assert.equal(h.connection.bytesReceived, stream.length);
  assert.equal(h.connection.bufferedBytes, 0, "nothing held after the last frame");
  await h.done();
});

Deno.test("a read buffer smaller than the frames still yields every frame in order", async () => {
  const h = await harness({ readBufferBytes: 7 });
  const sent = Array.from({ length: 20 }, (_, i) => peerFrame(payload((i * 37) % 90 + 1, i)));
  const stream = concat(sent);
  await writeAll(h.client, stream);
  await h.tap.handled(stream.length);
  assert.ok(h.tap.readSizes.every((n) => n <= 7));
  assert.ok(h.tap.readSizes.length >= Math.ceil(stream.length / 7));
  assert.deepEqual(h.frames, sent);
  await h.done();
});

Deno.test("frames coalesced in one read are all delivered, in order", async () => {
  const h = await harness();
  const sent = Array.from({ length: 8 }, (_, i) => peerFrame(payload(i * 3 + 1, i)));
  const stream = concat(sent);
  await writeAll(h.client, stream);
  await h.tap.handled(stream.length);
  assert.ok(
    h.tap.readSizes.length < sent.length,
    `some read carried several frames (reads: ${h.tap.readSizes.join(",")})`,
  );
  assert.deepEqual(h.frames, sent);
  await h.done();
});

Deno.test("property: any chunking of any frames delivers exactly the frames sent", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 30 }),
      async (payloads, cuts) => {
        const h = await harness({ readBufferBytes: 64 });
        try {
          const sent = payloads.map((p) => peerFrame(p));
          const stream = concat(sent);
          let offset = 0;
          for (let i = 0; offset < stream.length && i < stream.length; i++) {
            const end = Math.min(stream.length, offset + cuts[i % cuts.length]);
            await writeAll(h.client, stream.subarray(offset, end));
            await h.tap.handled(end);
            offset = end;
          }
          assert.deepEqual(h.frames, sent);
        } finally {
          await h.done();
        }
      },
    ),
    { numRuns: 25 },
  );
});

Deno.test("frames right before EOF are delivered, then onClose says end of stream", async () => {
  const h = await harness();
  const sent = [peerFrame(payload(10, 1)), peerFrame(payload(2000, 2))];
  await writeAll(h.client, concat([...sent, peerFrame(payload(50, 3)).subarray(0, 20)]));
  h.client.close();
  assert.equal(await h.closed, "end of stream");
  assert.deepEqual(h.frames, sent, "both whole frames, not the cut one");
  assert.deepEqual(h.closeReasons, ["end of stream"]);
  assert.equal(h.tap.closeCalls, 1);
  assert.equal(closingLines(h.lines).length, 0, "a peer hanging up is not worth a line");
  assert.equal(h.connection.bufferedBytes, 0, "the cut frame is released");
  await h.connection.start();
});

Deno.test("borrowFrames hands out views of the one read buffer", async () => {
  const views: Uint8Array[] = [];
  const copies: Uint8Array[] = [];
  const h = await harness({
    borrowFrames: true,
    readBufferBytes: 4096,
    onFrame: (frame) => {
      views.push(frame);
      copies.push(frame.slice());
    },
  });
  const first = [peerFrame(payload(10, 1)), peerFrame(payload(10, 2))];
  await writeAll(h.client, concat(first));
  await h.tap.handled(28);
  const third = peerFrame(payload(10, 3));
  await writeAll(h.client, third);
  await h.tap.handled(42);
  assert.deepEqual(copies, [...first, third], "valid while onFrame ran");
  assert.equal(views[0].buffer.byteLength, 4096, "a view of the read buffer");
  assert.ok(views.every((view) => view.buffer === views[0].buffer), "one buffer for all reads");
  assert.deepEqual(views.map((view) => view.byteOffset), [0, 14, 0]);
  // The second read overwrote the first frame: a borrowed frame is valid only during onFrame.
  assert.deepEqual(views[0], third);
  await h.done();
});

Deno.test("without borrowFrames each frame is its own copy that later reads leave intact", async () => {
  const kept: Uint8Array[] = [];
  const h = await harness({ readBufferBytes: 4096, onFrame: (frame) => void kept.push(frame) });
  const sent = [peerFrame(payload(10, 1)), peerFrame(payload(10, 2)), peerFrame(payload(10, 3))];
  await writeAll(h.client, concat(sent.slice(0, 2)));
  await h.tap.handled(28);
  await writeAll(h.client, sent[2]);
  await h.tap.handled(42);
  assert.deepEqual(kept, sent);
  for (const frame of kept) {
    assert.equal(frame.byteOffset, 0);
    assert.equal(frame.buffer.byteLength, frame.length, "a buffer of its own");
  }
  assert.equal(new Set(kept.map((frame) => frame.buffer)).size, 3);
  await h.done();
});

Deno.test("a promise from onFrame is awaited before the next read; a borrowed frame stays valid", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  let firstArrived!: () => void;
  const arrived = new Promise<void>((resolve) => firstArrived = resolve);
  let readsAtFirstFrame = -1;
  const seen: Uint8Array[] = [];
  const sent = [peerFrame(payload(30, 1)), peerFrame(payload(30, 2))];
  const h = await harness({
    borrowFrames: true,
    onFrame: (frame) => {
      seen.push(frame.slice());
      if (seen.length > 1) return;
      readsAtFirstFrame = h.tap.readCalls;
      firstArrived();
      return released.then(() => {
        assert.deepEqual(frame, sent[0], "unchanged while onFrame's promise was pending");
      });
    },
  });
  await writeAll(h.client, sent[0]);
  await arrived;
  await writeAll(h.client, sent[1]);
  // Nothing to await: the point is that no read happens while onFrame's promise is pending.
  await delay(30);
  assert.equal(h.tap.readCalls, readsAtFirstFrame, "no read while onFrame's promise is pending");
  assert.equal(seen.length, 1);
  release();
  await h.tap.handled(68);
  assert.deepEqual(seen, sent);
  assert.deepEqual(h.closeReasons, [], "the check in onFrame's promise passed");
  await h.done();
});

// ---- closing on bad input ------------------------------------------------------------

/** Sends `bytes`, waits for the close and checks the close happened once with one line. */
async function expectOneClose(
  h: Harness,
  bytes: Uint8Array,
  reason: string | RegExp,
  level: LogLevel = "warn",
): Promise<void> {
  await writeAll(h.client, bytes);
  const got = await h.closed;
  if (typeof reason === "string") assert.equal(got, reason);
  else assert.match(got, reason);
  await h.connection.start();
  assert.deepEqual(h.closeReasons, [got], "onClose exactly once");
  assert.equal(h.tap.closeCalls, 1, "the socket is closed once");
  assert.equal(h.lines.length, 1, `one log line, got ${JSON.stringify(h.lines)}`);
  assert.equal(h.lines[0].level, level);
  assert.match(h.lines[0].line, /closing connection/);
  assert.ok(h.lines[0].line.includes(got), "the line names the reason");
  assert.equal(h.connection.isClosed, true);
  assert.equal(h.connection.send(peerFrame([1])), false, "a closed connection sends nothing");
  // The peer sees the end.
  assert.equal((await readToEnd(h.client)).length, 0);
  h.client.close();
}

Deno.test("onFrame throwing closes once with one warning; later frames are not delivered", async () => {
  const h = await harness({
    onFrame: (frame) => {
      if (frame[4] === 0xee) throw new Error("boom");
      frames.push(frame.slice());
    },
  });
  const frames: Uint8Array[] = [];
  const good = peerFrame([1, 2, 3]);
  await expectOneClose(
    h,
    concat([good, peerFrame([0xee]), peerFrame([4, 5]), peerFrame([6])]),
    "Error: boom",
  );
  assert.deepEqual(frames, [good]);
});

Deno.test("a rejected onFrame promise closes like a throw", async () => {
  let calls = 0;
  const h = await harness({
    onFrame: () => {
      calls++;
      return Promise.reject(new DecodeError("bad message inside"));
    },
  });
  await expectOneClose(h, concat([peerFrame([1]), peerFrame([2])]), "bad message inside");
  assert.equal(calls, 1);
});

Deno.test("a frame length below the minimum closes once with one warning", async () => {
  const h = await harness();
  await writeAll(h.client, peerFrame([7]));
  await h.tap.handled(5);
  await expectOneClose(h, peerFrame([]), /below the minimum of 5/);
  assert.deepEqual(h.frames, [peerFrame([7])]);
});

Deno.test("good frames and a bad length in one read: the frames are handled, then one close", async () => {
  const h = await harness();
  const good = [peerFrame([1, 2]), peerFrame([3])];
  // Both frames and the bad length reach the node in one write (one read here).
  await expectOneClose(h, concat([...good, peerFrame([])]), /below the minimum of 5/);
  assert.deepEqual(h.frames, good, "the frames before the garbage were delivered");
});

Deno.test("an oversized frame length closes once with one warning and reserves nothing", async () => {
  const budget = new BufferBudget(1024 * 1024);
  const h = await harness({ budget });
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, 64 * 1024);
  await expectOneClose(h, concat([header, payload(100, 1)]), /exceeds the limit of 65536/);
  assert.equal(budget.peak, 0);
  assert.equal(budget.accountCount, 0);
});

// ---- writing ------------------------------------------------------------------------

Deno.test("frames sent in one turn reach the peer in order, in one write", async () => {
  const h = await harness();
  const batch = Array.from({ length: 5 }, (_, i) => peerFrame(payload(i * 11 + 1, i)));
  for (const frame of batch) assert.equal(h.connection.send(frame), true);
  assert.equal(h.connection.pendingBytes, concat(batch).length);
  await h.connection.flush();
  assert.deepEqual(h.tap.writes, [{
    offered: concat(batch).length,
    written: concat(batch).length,
  }]);
  assert.equal(h.connection.bytesSent, concat(batch).length);
  assert.equal(h.connection.pendingBytes, 0);
  assert.deepEqual(parseFrames(await readExactly(h.client, concat(batch).length)), batch);
  // A later turn is a later write.
  const next = [peerFrame([1]), peerFrame([2])];
  for (const frame of next) h.connection.send(frame);
  await h.connection.flush();
  assert.equal(h.tap.writes.length, 2);
  assert.equal(h.tap.writes[1].offered, 10);
  assert.deepEqual(parseFrames(await readExactly(h.client, 10)), next);
  await h.done();
});

Deno.test("frames sent while a write is in flight go out together in the next write", async () => {
  const h = await harness({ maxQueuedBytes: 64 * 1024 * 1024 });
  // Larger than loopback's socket buffers: the write waits for the reader.
  const big = peerFrame(payload(16 * 1024 * 1024, 1));
  h.connection.send(big);
  // Let the write start; it cannot finish while nobody reads.
  await delay(0);
  const written = () => h.tap.writes.reduce((sum, write) => sum + write.written, 0);
  assert.ok(written() < big.length, "the big write is still in flight");
  const small = [peerFrame([1]), peerFrame([2, 2]), peerFrame([3, 3, 3])];
  for (const frame of small) {
    assert.equal(h.connection.send(frame), true);
    await delay(0); // separate turns
  }
  const received = readExactly(h.client, big.length + concat(small).length);
  await h.connection.flush();
  const bytes = await received;
  assert.deepEqual(parseFrames(bytes), [big, ...small]);
  assert.equal(written(), big.length + 18);
  assert.deepEqual(
    h.tap.writes.at(-1),
    { offered: 18, written: 18 },
    "the small ones in one write",
  );
  assert.equal(
    h.tap.writes.slice(0, -1).reduce((sum, write) => sum + write.written, 0),
    big.length,
    "the big frame's write held nothing else",
  );
  await h.done();
});

Deno.test("send beyond maxQueuedBytes returns false, drops the frame and counts it", async () => {
  const h = await harness({ maxQueuedBytes: 100 });
  const a = peerFrame(payload(56, 1)); // 60 bytes
  const b = peerFrame(payload(56, 2)); // 60: would make 120
  const c = peerFrame(payload(36, 3)); // 40: exactly 100
  assert.equal(h.connection.send(a), true);
  assert.equal(h.connection.send(b), false);
  assert.equal(h.connection.droppedFrames, 1);
  assert.equal(h.connection.send(c), true);
  assert.equal(h.connection.send(peerFrame([9])), false);
  assert.equal(h.connection.droppedFrames, 2);
  await h.connection.flush();
  assert.deepEqual(parseFrames(await readExactly(h.client, 100)), [a, c]);
  // Written frames no longer count against the limit.
  assert.equal(h.connection.send(b), true);
  await h.connection.flush();
  assert.deepEqual(parseFrames(await readExactly(h.client, 60)), [b]);
  await h.connection.close("bye");
  assert.equal(h.connection.send(a), false, "closed");
  assert.equal(h.connection.droppedFrames, 2, "a closed connection does not count drops");
  await h.done();
});

Deno.test("close with flush writes what is queued first; without flush it is dropped", async () => {
  const sent = [peerFrame(payload(100, 1)), peerFrame(payload(5000, 2)), peerFrame([3])];
  const flushing = await harness();
  for (const frame of sent) flushing.connection.send(frame);
  await flushing.connection.close("bye", true);
  assert.deepEqual(flushing.closeReasons, ["bye"]);
  assert.deepEqual(parseFrames(await readToEnd(flushing.client)), sent);
  await flushing.done();

  const dropping = await harness();
  for (const frame of sent) dropping.connection.send(frame);
  await dropping.connection.close("bye");
  assert.deepEqual(dropping.closeReasons, ["bye"]);
  assert.equal((await readToEnd(dropping.client)).length, 0);
  assert.equal(dropping.connection.bytesSent, 0);
  await dropping.done();
});

Deno.test("close with flush gives up after flushTimeoutMs when the peer does not read", async () => {
  const h = await harness({ maxQueuedBytes: 64 * 1024 * 1024 });
  const big = peerFrame(payload(16 * 1024 * 1024, 1));
  h.connection.send(big);
  await h.connection.close("impatient", true, 50);
  assert.deepEqual(h.closeReasons, ["impatient"]);
  const arrived = await readToEnd(h.client);
  assert.ok(arrived.length < big.length, `only part arrived (${arrived.length} bytes)`);
  await h.done();
});

Deno.test("a WriteSource is asked for bytes only when the connection writes, after the queue", async () => {
  const h = await harness();
  const items = [peerFrame(payload(20, 1)), peerFrame(payload(30, 2))];
  const pending = [...items];
  let calls = 0;
  let served = 0;
  const source: WriteSource = {
    get pendingBytes() {
      return pending.reduce((sum, item) => sum + item.length, 0);
    },
    next() {
      calls++;
      const item = pending.shift();
      if (item) served++;
      // One answer asynchronously, as the encrypter does for large frames.
      return item && item === items[1] ? Promise.resolve(item) : item;
    },
  };
  h.connection.setSource(source);
  assert.equal(h.connection.pendingBytes, 58, "the source's bytes count as pending");
  await delay(10);
  assert.equal(calls, 0, "not asked before anything writes");
  assert.equal(h.tap.writes.length, 0);
  const queued = peerFrame([7, 7]);
  h.connection.send(queued);
  await h.connection.flush();
  assert.equal(served, 2);
  assert.equal(h.tap.writes.length, 1, "queue and source in one write");
  assert.deepEqual(parseFrames(await readExactly(h.client, 64)), [queued, ...items]);

  // requestWrite alone drains the source.
  pending.push(peerFrame([5]));
  const before = calls;
  await delay(10);
  assert.equal(calls, before, "not asked until a write is requested");
  h.connection.requestWrite();
  await h.connection.flush();
  assert.equal(served, 3);
  assert.deepEqual(parseFrames(await readExactly(h.client, 5)), [peerFrame([5])]);

  // flush() alone notices what the source holds; a closed connection never asks it.
  pending.push(peerFrame([6]));
  await h.connection.flush();
  assert.deepEqual(parseFrames(await readExactly(h.client, 5)), [peerFrame([6])]);
  const asked = calls;
  pending.push(peerFrame([8]));
  h.connection.requestWrite();
  await h.connection.close("done");
  assert.equal(calls, asked, "not asked once closed");
  await h.done();
});

// ---- timeouts -----------------------------------------------------------------------

/** Checks one close by a timer: the reason, onClose once, one line at `level`. */
async function expectTimeout(h: Harness, reason: string, level: LogLevel): Promise<void> {
  assert.equal(await h.closed, reason);
  await h.connection.start();
  assert.deepEqual(h.closeReasons, [reason]);
  assert.equal(h.tap.closeCalls, 1);
  assert.equal(h.lines.length, 1, JSON.stringify(h.lines));
  assert.equal(h.lines[0].level, level);
  assert.match(h.lines[0].line, /closing/);
  assert.equal((await readToEnd(h.client)).length, 0);
  h.client.close();
}

Deno.test("a started frame not completed in time closes with incomplete frame timeout", async () => {
  const budget = new BufferBudget(1024 * 1024);
  const h = await harness({ partialFrameTimeoutMs: 40, budget });
  const frame = peerFrame(payload(100, 1));
  await writeAll(h.client, concat([peerFrame([1]), frame.subarray(0, 50)]));
  await expectTimeout(h, "incomplete frame timeout", "warn");
  assert.deepEqual(h.frames, [peerFrame([1])]);
  assert.equal(budget.used, 0);
});

Deno.test("the partial-frame deadline ends when the frame completes", async () => {
  // Idle closes the connection later; had the partial-frame timer not been cleared, it would have.
  const h = await harness({ partialFrameTimeoutMs: 100, idleTimeoutMs: 300 });
  const frame = peerFrame(payload(100, 1));
  await writeAll(h.client, frame.subarray(0, 50));
  await h.tap.handled(50);
  await writeAll(h.client, frame.subarray(50));
  await h.tap.handled(frame.length);
  await expectTimeout(h, "idle timeout", "info");
  assert.deepEqual(h.frames, [frame]);
});

Deno.test("each started frame has its own deadline, also when a read ends inside the next one", async () => {
  // A steady stream whose reads never end on a frame boundary: every frame is
  // complete within 20 ms of its start, the whole stream takes much longer than
  // the partial-frame timeout.
  const h = await harness({ partialFrameTimeoutMs: 150 });
  const frames = Array.from({ length: 13 }, (_, i) => peerFrame(payload(40, i)));
  await writeAll(h.client, frames[0].subarray(0, 20));
  await h.tap.handled(20);
  const started = performance.now();
  let sent = 20;
  for (let i = 0; i + 1 < frames.length; i++) {
    await delay(20);
    await writeAll(h.client, concat([frames[i].subarray(20), frames[i + 1].subarray(0, 20)]));
    sent += 44;
    await h.tap.handled(sent);
    assert.equal(h.connection.isClosed, false, `open after ${i + 1} frames`);
  }
  assert.ok(performance.now() - started > 150, "the stream outlasted the timeout");
  await writeAll(h.client, frames.at(-1)!.subarray(20));
  await h.tap.handled(sent + 24);
  assert.deepEqual(h.frames, frames);
  assert.deepEqual(h.closeReasons, []);
  await h.done();
});

Deno.test("a connection receiving nothing closes with idle timeout", async () => {
  const h = await harness({ idleTimeoutMs: 40 });
  await expectTimeout(h, "idle timeout", "info");
});

Deno.test("frames keep a connection from going idle", async () => {
  const h = await harness({ idleTimeoutMs: 150 });
  const sent: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) {
    await delay(30);
    sent.push(peerFrame([i]));
    await writeAll(h.client, sent[i]);
    await h.tap.handled(5 * (i + 1));
  }
  assert.equal(h.connection.isClosed, false, "open after 240 ms of 30 ms gaps");
  await expectTimeout(h, "idle timeout", "info");
  assert.deepEqual(h.frames, sent);
});

Deno.test("no complete frame in time closes with no message in time", async () => {
  const h = await harness({ firstFrameTimeoutMs: 40 });
  await writeAll(h.client, peerFrame(payload(10, 1)).subarray(0, 6));
  await expectTimeout(h, "no message in time", "info");
});

Deno.test("a first frame in time disarms the first-frame timer", async () => {
  const h = await harness({ firstFrameTimeoutMs: 60, idleTimeoutMs: 200 });
  await writeAll(h.client, peerFrame([1]));
  await expectTimeout(h, "idle timeout", "info");
  assert.deepEqual(h.frames, [peerFrame([1])]);
});

Deno.test("no byte in time closes with no byte in time", async () => {
  const h = await harness({ firstByteTimeoutMs: 40, firstFrameTimeoutMs: 1000 });
  await expectTimeout(h, "no byte in time", "info");
});

Deno.test("a first byte in time disarms the first-byte timer", async () => {
  const h = await harness({ firstByteTimeoutMs: 60, firstFrameTimeoutMs: 200 });
  await writeAll(h.client, new Uint8Array([0]));
  await expectTimeout(h, "no message in time", "info");
});

// ---- buffer budget ------------------------------------------------------------------

/** A frame header announcing `length` payload bytes. */
function header(length: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, length);
  return out;
}

Deno.test("partial-frame memory follows what was sent, not what the header announces", async () => {
  const budget = new BufferBudget(1024 * 1024);
  const h = await harness({ budget });
  assert.equal(budget.accountCount, 1);
  await writeAll(h.client, concat([header(60_000), payload(6, 1)]));
  await h.tap.handled(10);
  assert.ok(h.connection.bufferedBytes <= 256, `${h.connection.bufferedBytes} held for 10 bytes`);
  assert.equal(budget.used, h.connection.bufferedBytes);
  let sent = 10;
  for (const size of [100, 1000, 5000]) {
    await writeAll(h.client, payload(size, 2));
    sent += size;
    await h.tap.handled(sent);
    assert.ok(
      h.connection.bufferedBytes <= Math.max(256, 2 * sent),
      `${h.connection.bufferedBytes} held for ${sent} bytes`,
    );
    assert.ok(h.connection.bufferedBytes >= sent);
    assert.equal(budget.used, h.connection.bufferedBytes);
  }
  // Completing the frame gives everything back.
  await writeAll(h.client, payload(60_004 - sent, 3));
  await h.tap.handled(60_004);
  assert.equal(h.frames.length, 1);
  assert.equal(h.frames[0].length, 60_004);
  assert.equal(h.connection.bufferedBytes, 0);
  assert.equal(budget.used, 0);
  await h.done();
  assert.equal(budget.accountCount, 0, "the account is closed with the connection");
});

Deno.test("an exhausted budget closes the connection holding the most, and only it", async () => {
  const budget = new BufferBudget(3000);
  const a = await harness({ budget });
  const b = await harness({ budget });
  const c = await harness({ budget });
  // A holds about 2000 bytes for 1004 sent, B about 800 for 404.
  await writeAll(a.client, concat([header(50_000), payload(1000, 1)]));
  await a.tap.handled(1004);
  await writeAll(b.client, concat([header(1500), payload(400, 2)]));
  await b.tap.handled(404);
  const aHeld = a.connection.bufferedBytes;
  const bHeld = b.connection.bufferedBytes;
  assert.ok(aHeld > bHeld && aHeld + bHeld <= 3000, `A ${aHeld}, B ${bHeld}`);
  assert.equal(budget.used, aHeld + bHeld);
  // C's 300 bytes do not fit next to A and B: A, the largest holder, is closed for them.
  await writeAll(c.client, concat([header(1500), payload(300, 3)]));
  assert.equal(await a.closed, "partial-frame memory budget exhausted");
  await c.tap.handled(304);
  assert.equal(budget.evictions, 1);
  assert.equal(budget.refusals, 0);
  assert.deepEqual(a.closeReasons, ["partial-frame memory budget exhausted"]);
  assert.equal(a.lines.length, 1);
  assert.equal(a.lines[0].level, "warn");
  assert.match(a.lines[0].line, /holds the most partial-frame memory/);
  assert.equal(b.connection.isClosed, false);
  assert.equal(c.connection.isClosed, false);
  assert.equal(budget.used, b.connection.bufferedBytes + c.connection.bufferedBytes);
  assert.equal(budget.accountCount, 2);
  // B and C finish their frames, one after the other (together they would not fit).
  await writeAll(b.client, payload(1500 - 400, 4));
  await b.tap.handled(1504);
  await writeAll(c.client, payload(1500 - 300, 5));
  await c.tap.handled(1504);
  assert.equal(b.frames.length, 1);
  assert.equal(c.frames.length, 1);
  assert.equal(budget.used, 0);
  await Promise.all([a.done(), b.done(), c.done()]);
  assert.equal(budget.accountCount, 0);
});

Deno.test("a connection that would hold the most of an exhausted budget is refused itself", async () => {
  const budget = new BufferBudget(3000);
  const small = await harness({ budget });
  const big = await harness({ budget });
  await writeAll(small.client, concat([header(50_000), payload(200, 1)]));
  await small.tap.handled(204);
  await writeAll(big.client, concat([header(50_000), payload(2000, 2)]));
  const reason = await big.closed;
  assert.match(reason, /exceed their memory budget/);
  assert.equal(budget.refusals, 1);
  assert.equal(budget.evictions, 0);
  assert.equal(big.lines.length, 1);
  assert.equal(big.lines[0].level, "warn");
  assert.equal(small.connection.isClosed, false);
  assert.equal(budget.used, small.connection.bufferedBytes);
  await Promise.all([small.done(), big.done()]);
  assert.equal(budget.used, 0);
  assert.equal(budget.accountCount, 0);
});

Deno.test("partial frames are released on every kind of close", async () => {
  const budget = new BufferBudget(1024 * 1024);
  const local = await harness({ budget });
  const hangup = await harness({ budget });
  const timeout = await harness({ budget, partialFrameTimeoutMs: 30 });
  for (const h of [local, hangup, timeout]) {
    await writeAll(h.client, concat([header(10_000), payload(3000, 1)]));
    await h.tap.handled(3004);
  }
  assert.ok(budget.used >= 2 * 3004);
  await local.connection.close("closed locally");
  hangup.client.close();
  assert.equal(await hangup.closed, "end of stream");
  assert.equal(await timeout.closed, "incomplete frame timeout");
  assert.equal(budget.used, 0);
  assert.equal(budget.accountCount, 0);
  await Promise.all([local.done(), hangup.connection.start(), timeout.done()]);
});
