/**
 * Unit tests of PeerConnector: two connectors in one process on loopback,
 * each with a recording handler, plus raw sockets where the test must hold a
 * connection before its handshake.
 */

import assert from "node:assert/strict";
import type { SocketAddress } from "../lib/address.ts";
import type { HostKey } from "../lib/hostkey.ts";
import { identityHex } from "../lib/hostkey.ts";
import { silentLogger } from "../lib/log.ts";
import { powEpoch, solveProofOfWork } from "../lib/protocol/proof_of_work.ts";
import { PeerConnector, type PeerConnectorHandler } from "../lib/transport/peer_connector.ts";
import { HandshakeLoad, type PeerSession } from "../lib/transport/peer_session.ts";
import { failingPowNonce, silentConnection } from "./support/adversary.ts";
import { peerFrame } from "./support/bytes.ts";
import { TEST_KEY_BITS, testHostKey } from "./support/nodes.ts";

const POW_DIFFICULTY = 4;
/** Longest wait for any one event; a test that waits longer fails instead of hanging. */
const EVENT_TIMEOUT_MS = 10_000;

const [KEY_A, KEY_B] = await Promise.all([testHostKey(), testHostKey()]);

/** What a connector reported to its owner, with a way to wait for it. */
class Recorder implements PeerConnectorHandler {
  admitAnswer = true;
  identifyAnswer = true;
  readonly admitted: { id: number; ip: string }[] = [];
  readonly identified: { id: number; identity: string; ip: string }[] = [];
  readonly endedIds: number[] = [];
  readonly sessions: { session: PeerSession; dialed?: string }[] = [];
  readonly failures: { reason: string; message: string }[] = [];
  private waiters: { ready: () => boolean; resolve: () => void }[] = [];

  admit(id: number, ip: string): boolean {
    this.admitted.push({ id, ip });
    this.changed();
    return this.admitAnswer;
  }

  identify(id: number, identity: string, ip: string): boolean {
    this.identified.push({ id, identity, ip });
    this.changed();
    return this.identifyAnswer;
  }

  ended(id: number): void {
    this.endedIds.push(id);
    this.changed();
  }

  session(session: PeerSession, dialed?: string): void {
    this.sessions.push({ session, dialed });
    this.changed();
  }

  handshakeFailed(reason: string, message: string): void {
    this.failures.push({ reason, message });
    this.changed();
  }

  /** Resolves once `ready()` holds, checked at each report. */
  until(ready: () => boolean, what: string): Promise<void> {
    return waitFor((resolve) => {
      if (ready()) return resolve();
      this.waiters.push({ ready, resolve });
    }, what);
  }

  /** Closes every session it was given. */
  async closeSessions(): Promise<void> {
    await Promise.all(this.sessions.map(({ session }) => session.close("test done")));
  }

  private changed(): void {
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.ready()) return true;
      waiter.resolve();
      return false;
    });
  }
}

/** A promise settled by `start`'s callback, rejected after {@link EVENT_TIMEOUT_MS}. */
function waitFor<T = void>(start: (resolve: (value: T) => void) => void, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), EVENT_TIMEOUT_MS);
    start(resolve);
  }).finally(() => clearTimeout(timer));
}

/** One node's P2P port, configured as lib/node.ts configures it. */
interface Side {
  connector: PeerConnector;
  recorder: Recorder;
  identity: string;
  address: SocketAddress;
  load: HandshakeLoad;
}

/** Settings of a {@link Side} that tests change. */
interface SideOptions {
  maxConnections?: number;
  /** Proof-of-work nonce to present (default: a valid one). */
  powNonce?: bigint;
  firstByteTimeoutMs?: number;
}

function startSide(hostKey: HostKey, options: SideOptions = {}): Side {
  const recorder = new Recorder();
  const connector = new PeerConnector({
    address: { hostname: "127.0.0.1", port: 0 },
    maxConnections: () => options.maxConnections ?? 16,
    openSessions: () => 0,
    log: silentLogger,
    handler: recorder,
  });
  const { port } = connector.listen();
  const epoch = powEpoch();
  const proof = {
    epoch,
    nonce: options.powNonce ?? solveProofOfWork(hostKey.identity, epoch, POW_DIFFICULTY),
  };
  const load = new HandshakeLoad();
  connector.configure({
    hostKey,
    proofOfWork: () => proof,
    powDifficulty: POW_DIFFICULTY,
    listenAddress: { hostname: "127.0.0.1", port },
    handshakeTimeoutMs: 3000,
    idleTimeoutMs: 60_000,
    maxQueuedBytes: 4 * 1024 * 1024,
    minPeerKeyBits: TEST_KEY_BITS,
    log: silentLogger,
    load,
    firstByteTimeoutMs: options.firstByteTimeoutMs,
  });
  return {
    connector,
    recorder,
    identity: identityHex(hostKey.identity),
    address: { hostname: "127.0.0.1", port },
    load,
  };
}

async function stopSides(...sides: Side[]): Promise<void> {
  await Promise.all(sides.map((side) => side.connector.close()));
  await Promise.all(sides.map((side) => side.recorder.closeSessions()));
}

/** Dials and resolves with whether `failed` was called (false: it was not, the dial is done). */
function dial(from: Side, to: SocketAddress, key: string): Promise<"failed"> {
  return waitFor((resolve) => from.connector.dial(to, key, () => resolve("failed")), `dial ${key}`);
}

/** A port nothing listens at. */
function deadPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Reads `conn` until EOF or a reset; returns the byte count (rejects after a while). */
function drain(conn: Deno.Conn): Promise<number> {
  return waitFor((resolve) => void drainFully(conn).then(resolve), "the end of a connection");
}

async function drainFully(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(4096);
  let total = 0;
  try {
    for (let i = 0; i < 10_000; i++) {
      const n = await conn.read(buffer);
      if (n === null) break;
      total += n;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  }
  return total;
}

Deno.test("dial hands each side an authenticated session; the dialer's carries the dialled key", async () => {
  const a = startSide(KEY_A);
  const b = startSide(KEY_B);
  let failed = 0;
  a.connector.dial(b.address, "key-of-b", () => failed++);
  await a.recorder.until(() => a.recorder.sessions.length === 1, "A's session");
  await b.recorder.until(() => b.recorder.endedIds.length === 1, "B's handshake to end");

  const [outbound] = a.recorder.sessions;
  assert.equal(outbound.dialed, "key-of-b");
  assert.equal(outbound.session.identityHex, b.identity);
  assert.equal(outbound.session.direction, "outbound");
  assert.equal(outbound.session.isProbe, false);
  assert.deepEqual(outbound.session.listenAddress, b.address);

  assert.equal(b.recorder.sessions.length, 1);
  const [inbound] = b.recorder.sessions;
  assert.equal(inbound.dialed, undefined);
  assert.equal(inbound.session.identityHex, a.identity);
  assert.equal(inbound.session.direction, "inbound");
  assert.deepEqual(inbound.session.listenAddress, a.address);

  const [{ id }] = b.recorder.admitted;
  assert.deepEqual(b.recorder.admitted, [{ id, ip: "127.0.0.1" }]);
  assert.deepEqual(b.recorder.identified, [{ id, identity: a.identity, ip: "127.0.0.1" }]);
  assert.deepEqual(b.recorder.endedIds, [id]);
  assert.equal(a.recorder.admitted.length, 0, "a dial is not admitted by its own side");
  assert.deepEqual([...a.recorder.failures, ...b.recorder.failures], []);
  assert.equal(failed, 0);
  assert.equal(a.connector.handshaking + b.connector.handshaking, 0);
  assert.equal(a.connector.pending + b.connector.pending, 0);
  await stopSides(a, b);
});

Deno.test("admit false closes the connection at once, before any byte", async () => {
  const b = startSide(KEY_B);
  b.recorder.admitAnswer = false;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: b.address.port });
  assert.equal(await drain(conn), 0, "not even HELLO");
  conn.close();
  await b.recorder.until(() => b.recorder.admitted.length === 1, "admit");

  // From a source address of its own: admit sees that address.
  const other = await silentConnection(b.address.port, "127.0.0.3");
  assert.equal(await other.closed, true, "closed by the connector");
  assert.equal(b.recorder.admitted[1].ip, "127.0.0.3");

  // A real dial fails the same way.
  const a = startSide(KEY_A);
  assert.equal(await dial(a, b.address, "b"), "failed");
  assert.equal(a.recorder.failures.length, 1);
  assert.equal(a.recorder.failures[0].reason, "connection_closed");
  assert.equal(b.recorder.admitted.length, 3);
  assert.deepEqual(b.recorder.identified, []);
  assert.deepEqual(b.recorder.endedIds, [], "only admitted connections end");
  assert.deepEqual(b.recorder.failures, [], "no handshake was started");
  assert.equal(b.connector.handshaking, 0);
  assert.equal(b.load.authSignatures, 0);
  await stopSides(a, b);
  assert.deepEqual([...a.recorder.sessions, ...b.recorder.sessions], []);
});

Deno.test("identify false ends the handshake before any session or signature", async () => {
  const a = startSide(KEY_A);
  const b = startSide(KEY_B);
  b.recorder.identifyAnswer = false;
  assert.equal(await dial(a, b.address, "b"), "failed");
  await b.recorder.until(() => b.recorder.endedIds.length === 1, "B's handshake to end");
  const [{ id }] = b.recorder.admitted;
  assert.deepEqual(b.recorder.identified, [{ id, identity: a.identity, ip: "127.0.0.1" }]);
  assert.deepEqual(b.recorder.endedIds, [id]);
  assert.equal(b.recorder.failures.length, 1);
  assert.equal(b.recorder.failures[0].reason, "protocol");
  assert.match(b.recorder.failures[0].message, /identity refused/);
  assert.equal(b.load.authSignatures, 0, "B signed nothing");
  assert.equal(a.recorder.failures.length, 1);
  assert.equal(b.connector.handshaking, 0);
  await stopSides(a, b);
  assert.deepEqual([...a.recorder.sessions, ...b.recorder.sessions], []);
});

Deno.test("handshake failures are reported by why the connection ended", async () => {
  const b = startSide(KEY_B, { firstByteTimeoutMs: 50 });
  const failures = b.recorder.failures;
  /** The `n`th failure (from 1), once reported. */
  const failure = async (n: number, what: string) => {
    await b.recorder.until(() => failures.length >= n, what);
    return failures[n - 1];
  };
  const port = b.address.port;

  const silent = await Deno.connect({ hostname: "127.0.0.1", port });
  assert.equal((await failure(1, "first-byte timeout")).reason, "timeout");
  await drain(silent);
  silent.close();

  const garbage = await Deno.connect({ hostname: "127.0.0.1", port });
  await garbage.write(peerFrame([0xff, 0xff, 0, 0, 0, 0]));
  const decodeFailure = await failure(2, "a frame that is not a message");
  assert.equal(decodeFailure.reason, "protocol", decodeFailure.message);
  await drain(garbage);
  garbage.close();

  const unpaid = startSide(KEY_A, { powNonce: failingPowNonce(KEY_A.identity, POW_DIFFICULTY) });
  assert.equal(await dial(unpaid, b.address, "b"), "failed");
  const powFailure = await failure(3, "a HELLO without proof-of-work");
  assert.equal(powFailure.reason, "proof_of_work", powFailure.message);
  assert.deepEqual(unpaid.recorder.failures.map((f) => f.reason), ["connection_closed"]);

  // A node that dials itself fails on both ends with "self".
  assert.equal(await dial(b, b.address, "b itself"), "failed");
  await b.recorder.until(() => failures.length === 5, "both ends of the dial to self");
  assert.deepEqual(failures.slice(3).map((f) => f.reason), ["self", "self"]);
  assert.equal(b.load.authSignatures, 0);
  await stopSides(b, unpaid);
});

Deno.test("a dial to a port where nothing listens calls failed, not handshakeFailed", async () => {
  const a = startSide(KEY_A);
  assert.equal(await dial(a, { hostname: "127.0.0.1", port: deadPort() }, "nobody"), "failed");
  assert.deepEqual(a.recorder.failures, []);
  assert.deepEqual(a.recorder.sessions, []);
  await stopSides(a);
  assert.equal(a.connector.pending, 0);
});

Deno.test("probe reports who answered, and the responder keeps the probe session to itself", async () => {
  const a = startSide(KEY_A);
  const b = startSide(KEY_B);
  const answered = await waitFor<string | undefined>(
    (resolve) => a.connector.probe(b.address, resolve),
    "probe",
  );
  assert.equal(answered, b.identity);
  await b.recorder.until(() => b.recorder.endedIds.length === 1, "B's handshake to end");
  assert.deepEqual(b.recorder.identified.map((entry) => entry.identity), [a.identity]);
  // close() waits for everything in flight, the probe session on B included.
  await stopSides(a, b);
  assert.deepEqual(b.recorder.sessions, [], "B never handed the probe session over");
  assert.deepEqual(a.recorder.sessions, [], "nor did A");
  assert.deepEqual([...a.recorder.failures, ...b.recorder.failures], []);
});

Deno.test("probe reports nobody when nothing listens or the handshake is refused", async () => {
  const a = startSide(KEY_A);
  const b = startSide(KEY_B);
  const probe = (address: SocketAddress) =>
    waitFor<string | undefined>((resolve) => a.connector.probe(address, resolve), "probe");
  assert.equal(await probe({ hostname: "127.0.0.1", port: deadPort() }), undefined);
  b.recorder.identifyAnswer = false;
  assert.equal(await probe(b.address), undefined);
  await stopSides(a, b);
  assert.deepEqual([...a.recorder.sessions, ...b.recorder.sessions], []);
});

Deno.test("evict closes an unauthenticated connection and ended follows", async () => {
  const b = startSide(KEY_B);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: b.address.port });
  await b.recorder.until(() => b.recorder.admitted.length === 1, "admit");
  const [{ id }] = b.recorder.admitted;
  assert.equal(b.connector.handshaking, 1);
  b.connector.evict(id + 1000); // unknown: nothing happens
  assert.equal(b.connector.handshaking, 1);
  b.connector.evict(id);
  await drain(conn); // rejects unless B ends the connection
  conn.close();
  await b.recorder.until(() => b.recorder.endedIds.length === 1, "ended");
  assert.deepEqual(b.recorder.endedIds, [id]);
  assert.equal(b.connector.handshaking, 0);
  assert.equal(b.recorder.failures.length, 1);
  assert.equal(b.recorder.failures[0].reason, "connection_closed");
  await stopSides(b);
});

Deno.test("connections beyond maxConnections are closed before admission", async () => {
  const b = startSide(KEY_B, { maxConnections: 1 });
  const held = await silentConnection(b.address.port, "127.0.0.2");
  await b.recorder.until(() => b.recorder.admitted.length === 1, "admit");
  const refused = await silentConnection(b.address.port, "127.0.0.4");
  assert.equal(await refused.closed, true);
  assert.equal(b.recorder.admitted.length, 1, "the refused one never reached admit");
  await stopSides(b);
  assert.equal(await held.closed, true, "close() closed the held handshake");
});

Deno.test("close() ends handshakes in both directions and reports no failed dial", async () => {
  const a = startSide(KEY_A);
  const b = startSide(KEY_B);
  // A dials a socket that accepts and reads but never answers.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let dialFailed = false;
  a.connector.dial({ hostname: "127.0.0.1", port: silent.addr.port }, "silent", () => {
    dialFailed = true;
  });
  const accepted = await silent.accept();
  const hello = new Uint8Array(4);
  assert.equal(await accepted.read(hello), 4, "A's HELLO starts");
  assert.equal(a.connector.handshaking, 1);
  // B holds an inbound connection that never sends a byte.
  const inbound = await Deno.connect({ hostname: "127.0.0.1", port: b.address.port });
  await b.recorder.until(() => b.recorder.admitted.length === 1, "admit");
  assert.equal(b.connector.handshaking, 1);

  await stopSides(a, b);
  assert.equal(a.connector.handshaking + b.connector.handshaking, 0);
  assert.equal(a.connector.pending + b.connector.pending, 0);
  assert.equal(dialFailed, false, "a dial ended by close() is not a failed dial");
  assert.ok(await drain(accepted) >= 4, "the rest of A's HELLO, then the end");
  await drain(inbound); // rejects unless B ended the connection
  assert.deepEqual(b.recorder.endedIds, [b.recorder.admitted[0].id]);
  // After close, neither listening nor dialling.
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port: b.address.port }),
    Deno.errors.ConnectionRefused,
  );
  a.connector.dial({ hostname: "127.0.0.1", port: silent.addr.port }, "again", () => {
    dialFailed = true;
  });
  const late = await silent.accept();
  await a.connector.close();
  assert.equal(await drain(late), 0, "closed without a HELLO");
  assert.equal(dialFailed, false);
  // What close() ended is not a handshake failure either.
  assert.deepEqual([...a.recorder.failures, ...b.recorder.failures], []);
  for (const conn of [accepted, inbound, late]) conn.close();
  silent.close();
});
