/**
 * Lazy IHAVE over real TCP (docs/PROTOCOL.md, "Spreading", step 3): a node
 * pushes a local item to `degree` peers and tells the others IHAVE no sooner
 * than `haveDelayMs` later, once per peer and item, and never to a peer it
 * pushed the item to. The two peers are hostile test peers that complete a
 * genuine handshake and record what the node sends them.
 */

import assert from "node:assert/strict";
import { type PeerMessage, PeerMessageType } from "../lib/codec/peer_messages.ts";
import { type ReceivedMessage, TestApiClient } from "./support/api_client.ts";
import { type AdversaryPeer, connectAdversary } from "./support/adversary.ts";
import { startTestNode, waitUntil } from "./support/nodes.ts";

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
    // Nothing more follows: each peer heard of each item exactly once.
    await new Promise((resolve) => setTimeout(resolve, 3 * HAVE_DELAY_MS));
    assert.equal(heard.length, 2 * items);
    assert.ok(pushedTo[0] > 0 && pushedTo[1] > 0, `push targets chosen at random: ${pushedTo}`);
  } finally {
    await module?.close();
    await Promise.all(peers.map((peer) => peer.close()));
    await node.close();
  }
});
