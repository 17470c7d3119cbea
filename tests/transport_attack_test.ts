/**
 * Attacks on the peer transport over real TCP (docs/SECURITY.md, "Transport
 * attacks"): a hostile peer speaking the wire protocol against real nodes or
 * real peer sessions on 127.0.0.1, showing that each attack now fails. Figures
 * are printed for the record.
 */

import assert from "node:assert/strict";
import {
  type HelloMessage,
  type ItemMessage,
  PEER_MAX_FRAME_BYTES,
  PeerMessageType,
} from "../lib/codec/peer_messages.ts";
import type { HostKey } from "../lib/hostkey.ts";
import { Logger } from "../lib/log.ts";
import { powEpoch, solveProofOfWork } from "../lib/protocol/proof_of_work.ts";
import { BufferBudget, sharedBufferBudget } from "../lib/transport/buffer_budget.ts";
import {
  credentialIssuerFor,
  credentialStats,
  issueCredential,
  NEW_CREDENTIAL_BURST,
} from "../lib/transport/credential.ts";
import {
  HandshakeLoad,
  handshakeLoadFor,
  PeerSession,
  type PeerSessionOptions,
} from "../lib/transport/peer_session.ts";
import { decodePeerMessage } from "../lib/codec/peer_messages.ts";
import { TestApiClient } from "./support/api_client.ts";
import {
  AdversaryPeer,
  handshakeByHand,
  memorySnapshot,
  RawPeerClient,
  unusedPorts,
} from "./support/adversary.ts";
import { CLUSTER_TYPE, startMember, stopMembers, waitForDelivery } from "./support/cluster.ts";
import { startTestNode, TEST_KEY_BITS, testHostKey, waitUntil } from "./support/nodes.ts";

/** A raw peer-protocol client connected to 127.0.0.1:`port`. */
function rawFrom(port: number): Promise<RawPeerClient> {
  return RawPeerClient.connect(port);
}

/**
 * A bare responder: accepts on 127.0.0.1 and runs PeerSession handshakes with
 * `options`, recording established sessions and why the others failed.
 */
function sessionServer(hostKey: HostKey, options: Partial<PeerSessionOptions> = {}) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const sessions: PeerSession[] = [];
  const failures: string[] = [];
  const pending = new Set<Promise<unknown>>();
  const log = new Logger("silent");
  const proof = { epoch: powEpoch(), nonce: solveProofOfWork(hostKey.identity, powEpoch(), 8) };
  const sessionOptions: PeerSessionOptions = {
    hostKey,
    proofOfWork: () => proof,
    powDifficulty: 8,
    listenAddress: { hostname: "127.0.0.1", port: 9 },
    handshakeTimeoutMs: 5000,
    idleTimeoutMs: 60_000,
    maxQueuedBytes: 1 << 20,
    minPeerKeyBits: TEST_KEY_BITS,
    log,
    ...options,
  };
  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      const handshake = PeerSession.establish(conn, "inbound", sessionOptions).then(
        (session) => {
          sessions.push(session);
          session.attach({ onMessage: () => {}, onClose: () => {} });
        },
        (error: Error) => failures.push(error.message),
      );
      pending.add(handshake);
      handshake.finally(() => pending.delete(handshake));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    sessions,
    failures,
    options: sessionOptions,
    async close() {
      listener.close();
      await accepting;
      await Promise.all(pending);
      await Promise.all(sessions.map((s) => s.close("test done")));
    },
  };
}

// ---- one IWANT must not break the stream (finding 7) --------------------------------------

Deno.test("one IWANT for 4.5 MB is answered with at most 1 MiB and keeps the stream intact", async () => {
  const victim = await startMember(undefined, { config: { powDifficulty: 8 } });
  const adversaries: AdversaryPeer[] = [];
  try {
    const port = victim.node.p2pAddress.port;
    const connect = async () => {
      const { peer, error } = await AdversaryPeer.connect(port, {
        hostKey: await testHostKey(),
        powDifficulty: 8,
        listenPort: unusedPorts(1)[0],
      });
      assert.ok(peer, `adversary handshake: ${error}`);
      adversaries.push(peer);
      return peer;
    };
    // A spy learns the IDs of 150 items of 30,000 bytes (4.5 MB together) as they are pushed.
    const spy = await connect();
    await waitUntil(() => victim.node.peerIdentities.length === 1, 3000, "spy connected");
    const count = 150;
    const items = () =>
      spy.received.filter((m): m is ItemMessage => m.type === PeerMessageType.Item);
    for (let i = 0; i < count; i++) {
      const data = new Uint8Array(30_000).fill(i & 0xff);
      await victim.module.announce(CLUSTER_TYPE, data);
      await waitUntil(() => items().length > i, 3000, `item ${i} pushed to the spy`);
    }
    const ids = items().map((item) => item.id);
    await spy.close();

    // The attack: a fresh peer asks for all of them in one 1,204-byte IWANT, then PINGs.
    const requester = await connect();
    await waitUntil(() => victim.node.peerIdentities.length === 1, 3000, "requester connected");
    requester.send({ type: PeerMessageType.IWant, ids });
    const received = () =>
      new Set(
        requester.received.filter((m): m is ItemMessage => m.type === PeerMessageType.Item)
          .map((m) => m.id),
      ).size;
    let pongs = 0;
    for (let round = 0; round < 50 && pongs === 0 && !requester.isClosed; round++) {
      requester.send({ type: PeerMessageType.Ping, nonce: BigInt(round) });
      await new Promise((resolve) => setTimeout(resolve, 100)); // pacing the PINGs, not a sync
      pongs = requester.received.filter((m) => m.type === PeerMessageType.Pong).length;
    }
    const firstAnswer = received();
    const refused = victim.node.stats().peerMessagesDropped;
    // What one IWANT may cost is bounded (1 MiB of items); asking again for what is
    // still missing, as an honest peer's pull repair does, fetches the rest.
    for (let round = 0; round < 20 && received() < ids.length && !requester.isClosed; round++) {
      const have = new Set(
        requester.received.filter((m): m is ItemMessage => m.type === PeerMessageType.Item)
          .map((m) => m.id),
      );
      const before = received();
      const missing = ids.filter((id) => !have.has(id));
      requester.send({ type: PeerMessageType.IWant, ids: missing });
      // The whole answer (as many items as the first one held) before asking
      // again: asking while it is still arriving wastes rounds on a loaded machine.
      const whole = before + Math.min(firstAnswer, missing.length);
      await waitUntil(() => received() >= whole || requester.isClosed, 3000, "a whole answer")
        .catch(() => {}); // a smaller answer (the send budget) is checked below
      assert.ok(received() > before || requester.isClosed, "each IWANT is answered");
    }
    console.log(
      `[iwant] one IWANT for ${ids.length} items of 30,000 bytes (4.5 MB, send queue 4 MiB): ` +
        `answered with ${firstAnswer} items (at most 1 MiB per IWANT), victim refused ` +
        `${refused} messages; all ${received()} after repeated IWANTs; requester session ${
          requester.isClosed ? `closed: ${requester.closeReason}` : "still open"
        }, PONGs ${pongs}`,
    );
    assert.equal(requester.isClosed, false, `stream intact (${requester.closeReason})`);
    assert.ok(pongs >= 1, "the victim still answers on the same stream");
    assert.ok(
      firstAnswer >= 1 && firstAnswer * 30_000 <= 1024 * 1024 + 30_000,
      "one IWANT's answer is bounded",
    );
    assert.equal(received(), ids.length, "every item could be fetched (each once), IWANT by IWANT");
  } finally {
    await Promise.all(adversaries.map((a) => a.close()));
    await stopMembers([victim]);
  }
});

// ---- forced signatures (finding 3) -----------------------------------------------------------

Deno.test("forged handshakes of one reused identity cost the victim no RSA signature and one RSA check", async () => {
  const victimKey = await testHostKey();
  const victim = await startTestNode({ hostKey: victimKey, config: { powDifficulty: 8 } });
  const clients: RawPeerClient[] = [];
  try {
    const attacker = await testHostKey();
    const powNonce = solveProofOfWork(attacker.identity, powEpoch(), 8);
    const issuer = credentialIssuerFor(victimKey);
    const load = handshakeLoadFor(victimKey);
    const rsaBefore = credentialStats.rsaVerifications;
    const signaturesBefore = load.authSignatures;
    const rounds = 30;
    for (let i = 0; i < rounds; i++) {
      // Read HELLO, answer with HELLO and a valid AUTH, hang up at once.
      const client = await rawFrom(victim.p2pAddress.port);
      clients.push(client);
      await handshakeByHand(client, { presented: attacker, powNonce });
      await client.close();
    }
    await waitUntil(
      () => victim.stats().handshakeFailureCount + load.authSignatures - signaturesBefore >= rounds,
      5000,
      "every forged handshake processed",
    );
    const rsaChecks = credentialStats.rsaVerifications - rsaBefore;
    console.log(
      `[handshake] ${rounds} forged handshakes of one identity: victim RSA signatures ` +
        `${issuer.signatures} (its credential), RSA verifications ${rsaChecks}, Ed25519 AUTH ` +
        `signatures ${load.authSignatures - signaturesBefore}`,
    );
    assert.equal(issuer.signatures, 1, "the host key signed only the credential");
    assert.ok(rsaChecks <= 1, `one RSA verification for one identity (${rsaChecks})`);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await victim.close();
  }
});

Deno.test("fresh credentials of one identity: a burst is checked by RSA, the rest refused without", async () => {
  const victim = await startTestNode({ config: { powDifficulty: 8 } });
  const clients: RawPeerClient[] = [];
  try {
    const attacker = await testHostKey();
    const powNonce = solveProofOfWork(attacker.identity, powEpoch(), 8);
    const rounds = NEW_CREDENTIAL_BURST + 4;
    // Validly signed by the identity's own key (what a node that restarts
    // makes, and what an attacker with one identity can mint at will).
    const credentials = await Promise.all(
      Array.from({ length: rounds }, () => issueCredential(attacker)),
    );
    const rsaBefore = credentialStats.rsaVerifications;
    const failures = () => victim.stats().handshakeFailures["credential_rate"] ?? 0;
    for (const credential of credentials) {
      const client = await rawFrom(victim.p2pAddress.port);
      clients.push(client);
      await handshakeByHand(client, { presented: attacker, powNonce, credential });
    }
    await waitUntil(() => failures() >= rounds - NEW_CREDENTIAL_BURST, 5000, "rate refusals");
    const rsaChecks = credentialStats.rsaVerifications - rsaBefore;
    console.log(
      `[credentials] ${rounds} fresh credentials of one identity: RSA verifications ` +
        `${rsaChecks}, refused by rate ${failures()}`,
    );
    assert.equal(rsaChecks, NEW_CREDENTIAL_BURST);
    assert.equal(failures(), rounds - NEW_CREDENTIAL_BURST);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await victim.close();
  }
});

Deno.test("the responder never signs for a connection closed before its AUTH", async () => {
  const victimKey = await testHostKey();
  const server = sessionServer(victimKey, { load: new HandshakeLoad() });
  const clients: RawPeerClient[] = [];
  try {
    const load = server.options.load!;
    const rounds = 10;
    const reused = await testHostKey();
    for (let i = 0; i < rounds; i++) {
      // Fresh identities (the credential's RSA check takes a while) and one reused
      // identity (its credential is cached: verified at once).
      const attacker = i % 2 === 0 ? await testHostKey() : reused;
      const client = await rawFrom(server.port);
      clients.push(client);
      await handshakeByHand(client, {
        presented: attacker,
        powNonce: solveProofOfWork(attacker.identity, powEpoch(), 8),
      });
      client.conn.closeWrite();
      assert.ok(await client.waitClosed(3000), "the victim hangs up");
    }
    await waitUntil(() => server.failures.length === rounds, 3000, "handshakes failed");
    console.log(
      `[handshake] ${rounds} connections closed right after HELLO and AUTH: victim AUTH ` +
        `signatures ${load.authSignatures}; failures: ${server.failures[0]}`,
    );
    assert.equal(load.authSignatures, 0, "no signature for a connection already gone");
    assert.equal(server.sessions.length, 0);
    assert.ok(server.failures.every((reason) => /closed during handshake/.test(reason)));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  }
});

Deno.test("under a handshake flood HELLO demands a puzzle: unsolved AUTH is refused, solvers get in", async () => {
  const victimKey = await testHostKey();
  // Puzzles from the third handshake within a second: 8 bits (about 256 hashes).
  const server = sessionServer(victimKey, { load: new HandshakeLoad(2, 8) });
  const clients: RawPeerClient[] = [];
  const honest: PeerSession[] = [];
  try {
    const attacker = await testHostKey();
    const powNonce = solveProofOfWork(attacker.identity, powEpoch(), 8);
    const puzzles: number[] = [];
    for (let i = 0; i < 6; i++) {
      const client = await rawFrom(server.port);
      clients.push(client);
      const hello = decodePeerMessage(await client.nextFrame(2000)) as HelloMessage;
      puzzles.push(hello.puzzleBits);
      await client.close();
    }
    assert.deepEqual(puzzles.slice(0, 2), [0, 0], "no puzzle below the threshold");
    assert.ok(puzzles.slice(2).every((bits) => bits === 8), `puzzles demanded: ${puzzles}`);

    // Still flooded: an AUTH without the solution is refused before any signature check...
    const lazy = await rawFrom(server.port);
    clients.push(lazy);
    await handshakeByHand(lazy, { presented: attacker, powNonce, solvePuzzle: false });
    assert.ok(await lazy.waitClosed(3000), "unsolved AUTH closed");
    await waitUntil(
      () => server.failures.some((r) => /lacks the solution of the 8-bit puzzle/.test(r)),
      3000,
      "refused for the puzzle",
    );
    // ...and one that solved it gets a session, as does an honest PeerSession initiator.
    const solver = await rawFrom(server.port);
    clients.push(solver);
    await handshakeByHand(solver, { presented: attacker, powNonce });
    const peer = await testHostKey();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    honest.push(
      await PeerSession.establish(conn, "outbound", {
        ...server.options,
        hostKey: peer,
        proofOfWork: () => ({
          epoch: powEpoch(),
          nonce: solveProofOfWork(peer.identity, powEpoch(), 8),
        }),
        load: new HandshakeLoad(),
      }),
    );
    honest[0].attach({ onMessage: () => {}, onClose: () => {} });
    await waitUntil(() => server.sessions.length === 2, 3000, "solver and honest peer admitted");
    console.log(
      `[puzzle] HELLO puzzle bits per handshake: ${puzzles.join(", ")}; puzzles demanded ` +
        `${server.options.load!.puzzlesDemanded}; unsolved AUTH refused, solvers admitted`,
    );
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(honest.map((s) => s.close("done")));
    await server.close();
  }
});

// ---- dribbling (finding 4) and the first-byte deadline (finding 5) ----------------------------

/** Writes a header announcing the largest frame, then `bytes` filler bytes one per write. */
async function dribble(client: RawPeerClient, header: Uint8Array, bytes: number): Promise<number> {
  let sent = 0;
  for (const byte of header) if (await client.write(new Uint8Array([byte]))) sent++;
  const one = new Uint8Array([0x41]);
  for (let i = 0; i < bytes && await client.write(one); i++) sent++;
  return sent;
}

Deno.test("dribbled frames hold only what was sent, on both ports; the node serves on", async () => {
  const options = { config: { powDifficulty: 8 } };
  const victim = await startMember(undefined, options);
  const honest = await startMember(victim.node, options);
  const clients: (RawPeerClient | TestApiClient)[] = [];
  try {
    await waitUntil(() => victim.node.peerIdentities.length === 1, 3000, "honest peer joined");
    const before = memorySnapshot();
    const budgetBefore = sharedBufferBudget.used;
    const p2pHeader = new Uint8Array(4);
    new DataView(p2pHeader.buffer).setUint32(0, PEER_MAX_FRAME_BYTES - 4);
    const apiHeader = new Uint8Array([0xff, 0xff, 0x01, 0xf4]); // a 65,535-byte ANNOUNCE
    const p2p = await Promise.all(
      Array.from({ length: 16 }, () => rawFrom(victim.node.p2pAddress.port)),
    );
    const api = await Promise.all(
      Array.from({ length: 32 }, () => TestApiClient.connect(victim.node.apiAddress.port)),
    );
    clients.push(...p2p, ...api);
    // 1,000 bytes per connection, one byte per write: 48,000 writes.
    const sent = await Promise.all([
      ...p2p.map((c) => dribble(c, p2pHeader, 1000)),
      ...api.map(async (c) => {
        for (const byte of apiHeader) await c.send(new Uint8Array([byte]));
        for (let i = 0; i < 1000; i++) await c.send(new Uint8Array([0x41]));
        return apiHeader.length + 1000;
      }),
    ]);
    const total = sent.reduce((a, b) => a + b, 0);
    await waitUntil(
      () => sharedBufferBudget.used - budgetBefore >= total,
      5000,
      "the victim read every dribbled byte",
    );
    const held = sharedBufferBudget.used - budgetBefore;
    const during = memorySnapshot();
    console.log(
      `[dribble] 16 P2P + 32 API connections, ${total} bytes one per write: partial frames ` +
        `hold ${held} bytes (budget ${sharedBufferBudget.limitBytes}); heap+external ` +
        `${
          (during.heapUsedMiB + during.externalMiB - before.heapUsedMiB - before.externalMiB)
            .toFixed(1)
        } MiB`,
    );
    // At most twice what arrived, rounded up to a 256-byte buffer per connection.
    assert.ok(held <= 2 * total + 48 * 256, `held ${held} for ${total} bytes sent`);
    await announceAndDeliver(victim, honest);
    await Promise.all(clients.map((c) => c.close()));
    await waitUntil(
      () => sharedBufferBudget.used <= budgetBefore,
      5000,
      "budget released when the connections close",
    );
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await stopMembers([honest, victim]);
  }
});

async function announceAndDeliver(
  from: Awaited<ReturnType<typeof startMember>>,
  to: Awaited<ReturnType<typeof startMember>>,
) {
  const text = `still-served-${Math.random()}`;
  await from.module.announce(CLUSTER_TYPE, new TextEncoder().encode(text));
  await waitForDelivery([to], text);
}

Deno.test("when partial frames exhaust the budget, the connection holding the most is closed", async () => {
  const budget = new BufferBudget(64 * 1024);
  const server = sessionServer(await testHostKey(), { budget, firstByteTimeoutMs: 5000 });
  const clients: RawPeerClient[] = [];
  try {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, PEER_MAX_FRAME_BYTES - 4);
    const send = async (client: RawPeerClient, bytes: number) => {
      const before = budget.used;
      await client.write(new Uint8Array(bytes));
      await waitUntil(() => budget.used > before, 3000, "bytes buffered");
    };
    const [big, medium, small, late] = await Promise.all(
      Array.from({ length: 4 }, () => rawFrom(server.port)),
    );
    clients.push(big, medium, small, late);
    for (const client of clients) await client.write(header);
    await send(big, 20_000);
    await send(medium, 8_000);
    await send(small, 2_000);
    // The late one pushes the total over 64 KiB: the biggest holder goes, not the newcomer.
    await late.write(new Uint8Array(9_000));
    assert.ok(await big.waitClosed(3000), "the biggest holder is closed");
    assert.ok(!medium.closedByPeer && !small.closedByPeer && !late.closedByPeer);
    await waitUntil(() => server.failures.length === 1, 3000, "one handshake failed");
    assert.match(server.failures[0], /partial-frame memory budget exhausted/);
    // Asking for more than the rest hold refuses the asker itself.
    await late.write(new Uint8Array(40_000));
    assert.ok(await late.waitClosed(3000), "a requester that would hold the most is refused");
    console.log(
      `[budget] 64 KiB budget: evictions ${budget.evictions}, refusals ${budget.refusals}, ` +
        `peak ${budget.peak} bytes, now ${budget.used}`,
    );
    assert.equal(budget.evictions, 1);
    assert.ok(budget.refusals >= 1);
    assert.ok(budget.peak <= budget.limitBytes);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  }
});

Deno.test("a peer connection that sends no byte is closed after 2 s, long before the handshake timeout", async () => {
  const victim = await startTestNode({ config: { powDifficulty: 8, handshakeTimeoutMs: 10_000 } });
  const clients: RawPeerClient[] = [];
  try {
    const silent = await rawFrom(victim.p2pAddress.port);
    const started = await rawFrom(victim.p2pAddress.port);
    clients.push(silent, started);
    await started.write(new Uint8Array([0])); // one byte of a HELLO's length field
    assert.ok(await silent.waitClosed(4000), "silent connection closed");
    console.log(
      `[first byte] silent connection closed after ${silent.lifetimeMs.toFixed(0)} ms ` +
        `(handshake timeout 10,000 ms)`,
    );
    assert.ok(silent.lifetimeMs >= 1900 && silent.lifetimeMs < 4000, `${silent.lifetimeMs} ms`);
    assert.equal(started.closedByPeer, false, "a connection that started talking is not");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await victim.close();
  }
});
