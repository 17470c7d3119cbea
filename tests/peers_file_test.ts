/** The peers file: which peers survive a restart, and whether this node had tried them. */

import assert from "node:assert/strict";
import { silentLogger } from "../lib/log.ts";
import { parsePeersFile, readPeersFile, writePeersFile } from "../lib/peers_file.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);

Deno.test("the peers file keeps whether each peer was tried, an anchor or proven, across a write and a read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/peers.json`;
    await writePeersFile(path, {
      peers: [
        { identity: A, address: { hostname: "127.0.0.2", port: 6001 }, tried: true, anchor: true },
        { identity: B, address: { hostname: "::1", port: 6002 }, tried: false, proven: true },
      ],
      bans: [{ key: "127.0.0.9", until: 1_900_000_000_000 }],
    }, silentLogger);
    const text = await Deno.readTextFile(path);
    assert.ok(text.includes('"tried": true'));
    assert.equal(text.match(/tried/g)?.length, 1, "only tried peers carry the flag");
    assert.equal(text.match(/anchor/g)?.length, 1, "only anchors carry theirs");
    assert.equal(text.match(/proven/g)?.length, 1, "only proven peers carry theirs");
    assert.deepEqual(await readPeersFile(path, silentLogger), {
      peers: [
        { identity: A, address: { hostname: "127.0.0.2", port: 6001 }, tried: true, anchor: true },
        { identity: B, address: { hostname: "::1", port: 6002 }, tried: false, proven: true },
      ],
      bans: [{ key: "127.0.0.9", until: 1_900_000_000_000 }],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a peers file without the flag (older versions) restores peers as not tried", () => {
  const state = parsePeersFile(JSON.stringify({
    version: 2,
    peers: [{ identity: A, address: "127.0.0.2:6001" }],
  }));
  assert.deepEqual(state.peers, [
    { identity: A, address: { hostname: "127.0.0.2", port: 6001 }, tried: false },
  ]);
});

Deno.test("malformed entries are skipped and a non-boolean flag is not trusted", () => {
  const state = parsePeersFile(JSON.stringify({
    peers: [
      { identity: "short", address: "127.0.0.2:6001" },
      { identity: A, address: 7 },
      { identity: B, address: "127.0.0.3:6001", tried: "yes", anchor: 1, proven: "true" },
      null,
    ],
    bans: [{ key: 5, until: 1 }, { key: "x".repeat(65), until: 1 }],
  }));
  assert.deepEqual(state.peers, [
    { identity: B, address: { hostname: "127.0.0.3", port: 6001 }, tried: false },
  ]);
  assert.deepEqual(state.bans, []);
});

Deno.test("a missing peers file is a first start; a damaged one is ignored", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await readPeersFile(`${dir}/none.json`, silentLogger), undefined);
    await Deno.writeTextFile(`${dir}/bad.json`, "{not json");
    assert.equal(await readPeersFile(`${dir}/bad.json`, silentLogger), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the node's own proof-of-work survives a write and a read, alone if need be", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/peers.json`;
    const proof = { identity: A, epoch: 20_423, nonce: 2n ** 63n + 5n };
    await writePeersFile(path, { peers: [], bans: [], proof }, silentLogger);
    assert.ok((await Deno.readTextFile(path)).includes(`"nonce": "${2n ** 63n + 5n}"`));
    assert.deepEqual(await readPeersFile(path, silentLogger), { peers: [], bans: [], proof });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a malformed saved proof-of-work is dropped, the rest of the file kept", () => {
  const peers = `"peers": [{"identity": "${A}", "address": "127.0.0.2:6001"}]`;
  for (
    const proof of [
      `{"identity": "xyz", "epoch": 1, "nonce": "5"}`,
      `{"identity": "${B}", "epoch": -1, "nonce": "5"}`,
      `{"identity": "${B}", "epoch": 1.5, "nonce": "5"}`,
      `{"identity": "${B}", "epoch": 1, "nonce": 5}`,
      `{"identity": "${B}", "epoch": 1, "nonce": "0x10"}`,
      `{"identity": "${B}", "epoch": 1, "nonce": "18446744073709551616"}`,
      `"proof"`,
    ]
  ) {
    const parsed = parsePeersFile(`{${peers}, "proof": ${proof}}`);
    assert.equal(parsed.proof, undefined, proof);
    assert.equal(parsed.peers.length, 1);
  }
  assert.equal(
    parsePeersFile(
      `{${peers}, "proof": {"identity": "${B}", "epoch": 1, "nonce": "18446744073709551615"}}`,
    )
      .proof?.nonce,
    2n ** 64n - 1n,
  );
});
