/** Status endpoint and peer-list persistence of real nodes on 127.0.0.1. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startTestNode, testHostKey, waitUntil } from "./support/nodes.ts";

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
  const dir = await Deno.makeTempDir();
  const peersFile = join(dir, "peers.json");
  const a = await startTestNode();
  const b = await startTestNode({ config: { bootstrappers: [a.p2pAddress] } });
  const key = await testHostKey();
  let c = await startTestNode({
    hostKey: key,
    config: { bootstrappers: [a.p2pAddress], peersFile },
  });
  try {
    await waitUntil(() => c.peerIdentities.length === 2, 5000, "c connected to a and b");
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
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a damaged peers file is ignored, not fatal", async () => {
  const dir = await Deno.makeTempDir();
  const peersFile = join(dir, "peers.json");
  await Deno.writeTextFile(peersFile, "{ not json");
  const node = await startTestNode({ config: { peersFile } });
  try {
    assert.equal(node.stats().knownPeers, 0);
  } finally {
    await node.close();
    await Deno.remove(dir, { recursive: true });
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
