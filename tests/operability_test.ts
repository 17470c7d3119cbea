/** Status endpoint and peer-list persistence of real nodes on 127.0.0.1. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { GoodbyeReason, goodbyeReasonName } from "../lib/codec/peer_messages.ts";
import { ConfigError, ListenError } from "../lib/errors.ts";
import { Logger } from "../lib/log.ts";
import { powEpoch, verifyProofOfWork } from "../lib/protocol/proof_of_work.ts";
import { type ReceivedMessage, TestApiClient } from "./support/api_client.ts";
import { CLUSTER_TYPE, startMember, stopMembers } from "./support/cluster.ts";
import { startTestNode, testHostKey, waitUntil } from "./support/nodes.ts";

/** A peers file path in a fresh temporary directory, removed when disposed. */
async function tempPeersFile(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir();
  return {
    path: join(dir, "peers.json"),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("the status endpoint reports identity, peers and counters as JSON", async () => {
  const a = await startTestNode({ config: { statusAddress: { hostname: "127.0.0.1", port: 0 } } });
  const b = await startTestNode({ config: { bootstrappers: [a.p2pAddress] } });
  try {
    await waitUntil(() => a.peerIdentities.length === 1, 5000, "a and b connected");
    const base = `http://127.0.0.1:${a.statusAddress!.port}`;
    const response = await fetch(`${base}/status`);
    assert.equal(response.status, 200);
    const status = await response.json();
    assert.equal(status.identity, a.identityHex);
    assert.deepEqual(status.peers.map((p: { identity: string }) => p.identity), [b.identityHex]);
    assert.equal(status.peers[0].direction, "inbound");
    assert.equal(typeof status.spreading.received, "number");
    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(`${base}/status`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("a restarted node rejoins from its peers file without a bootstrapper", async () => {
  await using file = await tempPeersFile();
  const peersFile = file.path;
  const a = await startTestNode();
  const b = await startTestNode({ config: { bootstrappers: [a.p2pAddress] } });
  const key = await testHostKey();
  let c = await startTestNode({
    hostKey: key,
    config: { bootstrappers: [a.p2pAddress], peersFile },
  });
  try {
    // A peer that dialled c is saved only once c has verified its address:
    // by a probe, or by c's own dial when both dialled each other at once and
    // the session b opened was kept (a duplicate: c's handshake at b's address
    // completed). b may dial c, or c b: whichever learns of the other first.
    const inbound = () => c.stats().peers.filter((p) => p.direction === "inbound").length;
    const verified = () => {
      const { probesVerified, duplicates } = c.stats().connections;
      return probesVerified + duplicates;
    };
    await waitUntil(
      () => c.peerIdentities.length === 2 && verified() >= inbound(),
      5000,
      "c connected to a and b, and verified the address of any that dialled in",
    );
    await c.close();
    const saved = JSON.parse(await Deno.readTextFile(peersFile));
    assert.deepEqual(
      saved.peers.map((p: { identity: string }) => p.identity).sort(),
      [a.identityHex, b.identityHex].sort(),
    );
    // Same key, no bootstrapper: only the file says where the others are.
    c = await startTestNode({ hostKey: key, config: { peersFile } });
    await waitUntil(() => c.peerIdentities.length === 2, 5000, "c rejoined a and b");
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

Deno.test("the peers file marks peers this node dialled as tried, not peers that dialled in", async () => {
  // A peer that dials in and answers the probe has a verified address, but it
  // chose this node: anyone can. Only peers this node chose to dial are
  // "tried" and win half of its dials after a restart (docs/SECURITY.md).
  await using file = await tempPeersFile();
  const peersFile = file.path;
  const a = await startTestNode();
  const c = await startTestNode({ config: { bootstrappers: [a.p2pAddress], peersFile } });
  const d = await startTestNode({ config: { bootstrappers: [c.p2pAddress] } });
  try {
    await waitUntil(
      () => c.peerIdentities.length === 2 && c.stats().connections.probesVerified >= 1,
      5000,
      "c dialled a, d dialled c, and c verified d's address with a probe",
    );
    await c.close();
    const saved = JSON.parse(await Deno.readTextFile(peersFile)) as {
      peers: { identity: string; tried?: boolean }[];
    };
    const entry = (identity: string) => saved.peers.find((p) => p.identity === identity);
    assert.equal(entry(a.identityHex)?.tried, true, "a: dialled by c");
    assert.ok(entry(d.identityHex), "d: verified by the probe, so saved");
    assert.equal(entry(d.identityHex)?.tried, undefined, "but not tried");
  } finally {
    await Promise.all([a.close(), c.close(), d.close()]);
  }
});

Deno.test("a node restarted the same day takes its proof-of-work from the peers file instead of solving it", async () => {
  await using file = await tempPeersFile();
  const peersFile = file.path;
  const hostKey = await testHostKey();
  const difficulty = 8;
  const epoch = powEpoch();
  // A valid nonce that the solver (which counts up from 0) would not find first:
  // about 2^8 tries expected.
  let nonce = 1n << 40n;
  for (let tries = 0; !verifyProofOfWork(hostKey.identity, epoch, nonce, difficulty); tries++) {
    assert.ok(tries < 1_000_000, "no valid nonce in a million tries");
    nonce++;
  }
  const proofOf = async () =>
    (JSON.parse(await Deno.readTextFile(peersFile)) as {
      proof?: { identity: string; epoch: number; nonce: string };
    }).proof;
  const saveProof = (identity: string, saved: bigint) =>
    Deno.writeTextFile(
      peersFile,
      JSON.stringify({ proof: { identity, epoch, nonce: saved.toString() } }),
    );
  /** Starts and stops the node; returns the epoch of the proof it presented. */
  const startAndStop = async () => {
    const node = await startTestNode({ hostKey, config: { peersFile, powDifficulty: difficulty } });
    const presented = node.stats().powEpoch;
    await node.close();
    return { identity: node.identityHex, presented };
  };
  // First start: solved, and saved at shutdown.
  const { identity } = await startAndStop();
  const solved = await proofOf();
  assert.equal(solved?.identity, identity);
  assert.equal(solved?.epoch, epoch);
  assert.ok(verifyProofOfWork(hostKey.identity, epoch, BigInt(solved!.nonce), difficulty));
  assert.ok(BigInt(solved!.nonce) < nonce);
  // A saved proof of today is used as it is (the node saves what it presents).
  await saveProof(identity, nonce);
  assert.equal((await startAndStop()).presented, epoch);
  assert.equal((await proofOf())?.nonce, nonce.toString(), "not solved again");
  // One that does not hold (another identity's, or too weak) is solved afresh.
  for (const [who, saved] of [["0".repeat(64), nonce], [identity, 1n]] as const) {
    await saveProof(who, saved);
    await startAndStop();
    assert.equal((await proofOf())?.nonce, solved!.nonce, "solved again");
  }
});

Deno.test("a damaged peers file is ignored, not fatal", async () => {
  await using file = await tempPeersFile();
  const peersFile = file.path;
  await Deno.writeTextFile(peersFile, "{ not json");
  const node = await startTestNode({ config: { peersFile } });
  try {
    assert.equal(node.stats().knownPeers, 0);
  } finally {
    await node.close();
  }
});

Deno.test("a node renews its proof-of-work when the day changes and stays admissible", async () => {
  const day = 86_400_000;
  let now = Date.now();
  const a = await startTestNode({ config: { powDifficulty: 8 }, node: { wallClock: () => now } });
  try {
    const first = a.stats().powEpoch;
    assert.equal(first, Math.floor(now / day));
    now += day; // a's clock moves to tomorrow; the others' stay today: still within a day
    await waitUntil(() => a.stats().powEpoch === first + 1, 5000, "renewed proof");
    const c = await startTestNode({ config: { powDifficulty: 8, bootstrappers: [a.p2pAddress] } });
    try {
      await waitUntil(() => c.peerIdentities.includes(a.identityHex), 5000, "c admits a");
    } finally {
      await c.close();
    }
  } finally {
    await a.close();
  }
});

Deno.test("a busy address fails the start with a ListenError naming its key", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = { hostname: "127.0.0.1", port: busy.addr.port };
  try {
    for (
      const [key, config] of [
        ["api_address", { apiAddress: taken }],
        ["p2p_address", { p2pAddress: taken }],
        ["status_address", { statusAddress: taken }],
      ] as const
    ) {
      await assert.rejects(startTestNode({ config }), (error: unknown) => {
        assert.ok(error instanceof ListenError, String(error));
        assert.equal(error.key, key);
        assert.equal(error.address, `127.0.0.1:${busy.addr.port}`);
        assert.equal(
          error.message,
          `${key}: cannot listen on 127.0.0.1:${busy.addr.port}: address already in use ` +
            "(is another node running? choose another port)",
        );
        return true;
      });
    }
  } finally {
    busy.close();
  }
});

Deno.test("reconfigure changes connection limits and the validation timeout of a running node", async () => {
  const a = await startTestNode({ config: { maxApiConnections: 1, validationTimeoutMs: 600_000 } });
  const b = await startMember(a);
  const clients: TestApiClient[] = [];
  try {
    const first = await TestApiClient.connect(a.apiAddress.port);
    clients.push(first);
    await first.notify(CLUSTER_TYPE); // subscribes, and never answers
    await waitUntil(() => a.stats().apiClients === 1, 5000, "first client counted");
    const second = await TestApiClient.connect(a.apiAddress.port);
    clients.push(second);
    assert.equal(await second.waitClosed(5000), true, "over the limit of 1");

    assert.throws(() => a.reconfigure({ maxApiConnections: 0 }), ConfigError);
    a.reconfigure({ maxApiConnections: 2, validationTimeoutMs: 50 });
    const third = await TestApiClient.connect(a.apiAddress.port);
    clients.push(third);
    await third.notify(CLUSTER_TYPE + 1);
    await waitUntil(() => a.stats().apiClients === 2, 5000, "third client admitted");

    // An item from b waits for first's answer only 50 ms now, not 10 minutes.
    await waitUntil(
      () => a.peerIdentities.length === 1 && b.node.peerIdentities.length === 1,
      5000,
      "a and b connected",
    );
    await b.module.announce(CLUSTER_TYPE, new TextEncoder().encode("unanswered"));
    await first.next(5000);
    await waitUntil(() => a.stats().spreading.unanswered === 1, 5000, "validation timed out");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await stopMembers([b]);
    await a.close();
  }
});

Deno.test("a peer's GOODBYE reason is logged in words", async () => {
  const lines: string[] = [];
  const log = new Logger("info", "a", (_level, line) => lines.push(line));
  const a = await startTestNode({ node: { log } });
  const b = await startTestNode({ config: { bootstrappers: [a.p2pAddress] } });
  try {
    // Both ends: b says GOODBYE only on a session its own side has opened.
    await waitUntil(
      () => a.peerIdentities.length === 1 && b.peerIdentities.length === 1,
      5000,
      "a and b connected",
    );
    await b.close();
    await waitUntil(() => a.peerIdentities.length === 0, 5000, "a saw b leave");
    const line = lines.find((l) => l.includes("peer disconnected"));
    assert.ok(line, lines.join("\n"));
    assert.match(line, /reason="peer said goodbye: shutting down"/);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  assert.equal(goodbyeReasonName(GoodbyeReason.Full), "peer limit reached");
  assert.equal(goodbyeReasonName(GoodbyeReason.Banned), "banned");
  assert.equal(goodbyeReasonName(77), "reason 77");
});

Deno.test("at debug level each item's life is logged: received, delivered, validated, forwarded", async () => {
  const lines: string[] = [];
  const logger = new Logger("debug", "b", (_level, line) => {
    if (lines.length < 10_000) lines.push(line);
  });
  // A line a - b - c (no spares): b receives, delivers, validates and forwards.
  const config = { degree: 1, passiveViewSize: 0 };
  const a = await startTestNode({ config });
  const b = await startTestNode({
    config: { ...config, bootstrappers: [a.p2pAddress] },
    node: { log: logger },
  });
  const c = await startTestNode({ config: { ...config, bootstrappers: [b.p2pAddress] } });
  const clients = await Promise.all([a, b, c].map((n) => TestApiClient.connect(n.apiAddress.port)));
  try {
    const logs: ReceivedMessage[][] = [[], [], []];
    for (let i = 0; i < 3; i++) {
      clients[i].autoValidate(logs[i], () => true);
      await clients[i].notify(0x6f70);
    }
    await waitUntil(() => b.peerIdentities.length === 2, 5000, "a - b - c");
    await clients[0].announce(0x6f70, new TextEncoder().encode("traced"));
    await waitUntil(() => logs[2].length === 1, 5000, "at c");
    await waitUntil(() => lines.some((l) => l.includes("item forwarded")), 5000, "forwarded");
    for (const event of ["item received", "item delivered", "item validated", "item forwarded"]) {
      assert.ok(lines.some((line) => line.includes(event)), `${event} is logged`);
    }
    assert.ok(lines.some((line) => /item received .*outcome=validating/.test(line)));
    assert.ok(lines.some((line) => /item validated .*verdict=valid/.test(line)));
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all([a, b, c].map((n) => n.close()));
  }
});
