/**
 * Spreading rules over real TCP (docs/PROTOCOL.md, "Spreading"), against
 * hostile test peers that complete a genuine handshake, record what the node
 * sends them and send what the test wants:
 * - lazy IHAVE (step 3): a node pushes a local item to `degree` peers and tells
 *   the others IHAVE no sooner than `haveDelayMs` later, once per peer and
 *   item, and never to a peer it pushed the item to;
 * - pull order (step 4): of the peers that advertised a missing item, the one
 *   with the best score is asked first, not the first heard.
 */

import assert from "node:assert/strict";
import { type PeerMessage, PeerMessageType } from "../lib/codec/peer_messages.ts";
import { type ReceivedMessage, TestApiClient } from "./support/api_client.ts";
import { type AdversaryPeer, connectAdversary, contentItem } from "./support/adversary.ts";
import { startTestNode, waitUntil } from "./support/nodes.ts";
import { DEFAULT_SPREADING_OPTIONS } from "../lib/protocol/spreading.ts";

const TYPE = 0x1a2b;
/** The wait docs/PROTOCOL.md states (`haveDelayMs`). */
const HAVE_DELAY_MS = 30;

/** When each peer heard of each item, and how. */
interface Heard {
  readonly peer: number;
  readonly kind: "item" | "have";
  readonly id: bigint;
  readonly at: number;
}

async function listeningPeer(port: number, index: number, heard: Heard[]): Promise<AdversaryPeer> {
  const peer = await connectAdversary(port);
  peer.onMessage((message: PeerMessage) => {
    const at = performance.now();
    if (message.type === PeerMessageType.Item) {
      heard.push({ peer: index, kind: "item", id: message.id, at });
    } else if (message.type === PeerMessageType.IHave) {
      for (const id of message.ids) heard.push({ peer: index, kind: "have", id, at });
    }
  });
  return peer;
}

Deno.test("a local item is pushed to degree peers and advertised to the rest haveDelayMs later, once", async () => {
  // Degree 1, two inbound peers: one gets the ITEM, the other an IHAVE. No
  // membership round during the test (it would carry waiting IHAVEs earlier).
  const node = await startTestNode({
    config: { degree: 1, passiveViewSize: 0, membershipIntervalMs: 600_000 },
  });
  const heard: Heard[] = [];
  const peers: AdversaryPeer[] = [];
  let module: TestApiClient | undefined;
  try {
    for (let i = 0; i < 2; i++) peers.push(await listeningPeer(node.p2pAddress.port, i, heard));
    await waitUntil(() => node.peerIdentities.length === 2, 5000, "two peers");
    module = await TestApiClient.connect(node.apiAddress.port);
    const log: ReceivedMessage[] = [];
    module.autoValidate(log, () => true);
    await module.notify(TYPE);
    const pushedTo = [0, 0];
    const items = 16;
    for (let n = 0; n < items; n++) {
      const before = heard.length;
      const announcedAt = performance.now();
      await module.announce(TYPE, new TextEncoder().encode(`item ${n}`));
      await waitUntil(() => heard.length >= before + 2, 5000, `item ${n} at both peers`);
      const [first, second] = heard.slice(before, before + 2);
      assert.equal(first.kind, "item", `item ${n}: the push comes first`);
      assert.equal(second.kind, "have", `item ${n}: then the IHAVE`);
      assert.equal(first.id, second.id);
      assert.notEqual(first.peer, second.peer, "never advertised to the peer it was pushed to");
      assert.ok(
        second.at - announcedAt >= HAVE_DELAY_MS,
        `item ${n}: IHAVE ${(second.at - announcedAt).toFixed(1)} ms after the ANNOUNCE`,
      );
      pushedTo[first.peer]++;
    }
    // Nothing more follows: once no IHAVE waits, a PING's PONG (same connection,
    // so after everything sent before it) shows each peer heard of each item once.
    await waitUntil(
      () => node.stats().structures.pendingAdvertisements === 0,
      3000,
      "no IHAVE waiting",
    );
    for (const peer of peers) peer.send({ type: PeerMessageType.Ping, nonce: 77n });
    await waitUntil(
      () =>
        peers.every((peer) =>
          peer.received.some((m) => m.type === PeerMessageType.Pong && m.nonce === 77n)
        ),
      3000,
      "both PONGs",
    );
    assert.equal(heard.length, 2 * items);
    assert.ok(pushedTo[0] > 0 && pushedTo[1] > 0, `push targets chosen at random: ${pushedTo}`);
  } finally {
    await module?.close();
    await Promise.all(peers.map((peer) => peer.close()));
    await node.close();
  }
});

Deno.test("a missing item is asked of the advertiser that brought items first, not the first heard", async () => {
  // A pull wait long enough for both IHAVEs to be heard before the first IWANT.
  const spreading = { ...DEFAULT_SPREADING_OPTIONS, pullDelayMs: 300, maxPullDelayMs: 300 };
  const node = await startTestNode({ node: { tuning: { spreading } } });
  const peers: AdversaryPeer[] = [];
  let module: TestApiClient | undefined;
  try {
    const proven = await connectAdversary(node.p2pAddress.port);
    const first = await connectAdversary(node.p2pAddress.port);
    peers.push(proven, first);
    module = await TestApiClient.connect(node.apiAddress.port);
    const log: ReceivedMessage[] = [];
    module.autoValidate(log, () => true);
    await module.notify(TYPE);
    await waitUntil(() => node.stats().apiClients === 1, 3000, "module connected");
    // `proven` brings an item first: its score rises above `first`'s 0.
    proven.send(contentItem({ dataType: TYPE, data: new TextEncoder().encode("earned") }));
    await waitUntil(() => log.length === 1, 3000, "the first item validated");
    // (`first` has sent nothing yet, so the one peer with a positive score is `proven`.)
    await waitUntil(
      () => node.stats().peers.some((peer) => peer.score > 0),
      3000,
      "proven peer credited",
    );
    // A second item: `first` advertises it first, then `proven`.
    const missing = contentItem({ dataType: TYPE, data: new TextEncoder().encode("wanted") });
    const wants = (peer: AdversaryPeer) =>
      peer.received.filter((m) => m.type === PeerMessageType.IWant && m.ids.includes(missing.id))
        .length;
    first.send({ type: PeerMessageType.IHave, ids: [missing.id] });
    await waitUntil(() => node.stats().structures.missingItems === 1, 3000, "first IHAVE heard");
    proven.send({ type: PeerMessageType.IHave, ids: [missing.id] });
    await waitUntil(() => wants(proven) + wants(first) > 0, 3000, "an IWANT");
    assert.equal(wants(proven), 1, "the proven peer is asked first");
    assert.equal(wants(first), 0, "the first advertiser waits its turn");
    proven.send(missing);
    await waitUntil(() => log.length === 2, 3000, "the pulled item validated");
    assert.equal(node.stats().spreading.pulled, 1);
    assert.equal(wants(first), 0, "nobody else is asked once it arrived");
  } finally {
    await module?.close();
    await Promise.all(peers.map((peer) => peer.close()));
    await node.close();
  }
});
