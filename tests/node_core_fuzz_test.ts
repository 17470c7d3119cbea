/**
 * Fuzz of the node core (lib/core/node_core.ts) with hostile but well-formed
 * peer messages: any message type from any peer in any order (handshake
 * messages after the handshake, forged and real items, IHAVE/IWANT of real and
 * unknown IDs, unsolicited descriptors), mixed with sessions opening and
 * closing, a module answering, and time passing. The core must never throw
 * (a throw in the daemon is a remote crash), never send to or close a peer
 * whose session the transport already closed, and stop cleanly.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type PeerMessage, PeerMessageType } from "../lib/codec/peer_messages.ts";
import { type CoreActions, NodeCore } from "../lib/core/node_core.ts";
import { newItem } from "../lib/protocol/item.ts";
import { seededRandom } from "../lib/protocol/random.ts";
import { SIM_NODE_CONFIG } from "../lib/sim/network.ts";
import { advanceStep, peerMessage } from "./support/arbitraries.ts";
import { FakeScheduler } from "./support/fake_scheduler.ts";

const SELF = "ee".repeat(32);
const PEERS = [1, 2, 3, 4].map((n) => n.toString(16).padStart(64, "0"));
const CLIENT = 1;
/** Real items: content-bound IDs, types 1 and 2 (subscribed) and 9 (not). */
const ITEMS = Array.from(
  { length: 8 },
  (_, n) => newItem(n % 4, [1, 2, 9][n % 3], new Uint8Array([n, n + 1]), BigInt(n + 1)),
);

type CoreOp =
  | { kind: "hostile"; peer: number; message: PeerMessage }
  | { kind: "item"; peer: number; n: number; hops: number }
  | { kind: "have"; peer: number; n: number; want: boolean }
  | { kind: "open"; peer: number; inbound: boolean }
  | { kind: "close"; peer: number }
  | { kind: "answer"; pick: number; valid: boolean }
  | { kind: "announce"; dataType: number }
  | { kind: "advance"; ms: number };

const peerIndex = fc.integer({ min: 0, max: PEERS.length - 1 });
const itemIndex = fc.integer({ min: 0, max: ITEMS.length - 1 });
const coreOp: fc.Arbitrary<CoreOp> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("hostile" as const),
      peer: peerIndex,
      message: peerMessage,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("item" as const),
      peer: peerIndex,
      n: itemIndex,
      hops: fc.integer({ min: 0, max: 255 }),
    }),
  },
  fc.record({
    kind: fc.constant("have" as const),
    peer: peerIndex,
    n: itemIndex,
    want: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("open" as const), peer: peerIndex, inbound: fc.boolean() }),
  fc.record({ kind: fc.constant("close" as const), peer: peerIndex }),
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("answer" as const),
      pick: fc.nat(),
      valid: fc.boolean(),
    }),
  },
  fc.record({ kind: fc.constant("announce" as const), dataType: fc.constantFrom(1, 2, 9) }),
  advanceStep(3_000, 2),
);

Deno.test("fuzz: the node core survives any sequence of well-formed hostile peer messages", () => {
  fc.assert(
    fc.property(fc.array(coreOp, { maxLength: 80, size: "max" }), fc.integer(), (ops, seed) => {
      const clock = new FakeScheduler();
      const open = new Set<string>(); // sessions the transport holds open
      const notifications: number[] = []; // message IDs given to the module, unanswered
      const actions: CoreActions = {
        sendToPeer: (peer) => assert.ok(open.has(peer), `sent to ${peer.slice(-1)}, closed`),
        closePeer: (peer) => {
          assert.ok(open.delete(peer), `closed ${peer.slice(-1)} twice`);
          assert.ok(!core.peerIdentities.includes(peer), "closed only once forgotten");
        },
        peerBacklog: () => 0,
        dial: () => {},
        probe: () => {},
        closeConnection: () => {},
        notifyClient: (client, messageId) => {
          assert.equal(client, CLIENT);
          notifications.push(messageId);
          return true;
        },
        closeClient: () => assert.fail("the module answers only IDs it was given"),
        persist: () => {},
      };
      const core: NodeCore = new NodeCore({
        selfIdentity: SELF,
        selfAddress: { hostname: "10.9.0.1", port: 7000 },
        config: {
          ...SIM_NODE_CONFIG,
          degree: 2,
          cacheSize: 6,
          validationTimeoutMs: 1_000,
          bootstrappers: [],
        },
        scheduler: clock,
        random: seededRandom(seed),
        wallClock: () => 1_700_000_000_000 + clock.now(),
      }, actions);
      core.clientOpened(CLIENT);
      for (const dataType of [1, 2]) {
        core.clientMessage(CLIENT, { kind: "notify", reserved: 0, dataType });
      }
      core.start();
      const openSession = (n: number, inbound: boolean) => {
        const peer = PEERS[n];
        if (open.has(peer)) return;
        const decision = core.sessionOpened({
          peer,
          direction: inbound ? "inbound" : "outbound",
          address: { hostname: `10.9.1.${n}`, port: 7000 },
          ip: `10.9.${n}.1`,
        });
        if (decision.accept) open.add(peer);
      };
      PEERS.forEach((_, n) => openSession(n, n % 2 === 0));
      for (const op of ops) {
        const peer = "peer" in op ? PEERS[op.peer] : "";
        switch (op.kind) {
          case "hostile":
            if (open.has(peer)) core.peerMessage(peer, op.message);
            break;
          case "item":
            if (open.has(peer)) {
              core.peerMessage(peer, { type: PeerMessageType.Item, ...ITEMS[op.n], hops: op.hops });
            }
            break;
          case "have":
            if (open.has(peer)) {
              core.peerMessage(peer, {
                type: op.want ? PeerMessageType.IWant : PeerMessageType.IHave,
                ids: [ITEMS[op.n].id],
              });
            }
            break;
          case "open":
            openSession(op.peer, op.inbound);
            break;
          case "close":
            if (open.delete(peer)) core.sessionClosed(peer);
            break;
          case "answer": {
            if (notifications.length === 0) break;
            const [messageId] = notifications.splice(op.pick % notifications.length, 1);
            core.clientMessage(CLIENT, {
              kind: "validation",
              messageId,
              valid: op.valid,
              reserved: 0,
            });
            break;
          }
          case "announce":
            core.clientMessage(CLIENT, {
              kind: "announce",
              ttl: 2,
              reserved: 0,
              dataType: op.dataType,
              data: new Uint8Array([op.dataType]),
            });
            break;
          case "advance":
            clock.advance(op.ms);
            break;
        }
        clock.advance(0);
        // The core's sessions are among those the transport holds.
        for (const known of core.peerIdentities) assert.ok(open.has(known));
        for (const [table, size] of Object.entries(core.structureSizes())) {
          assert.ok(size <= 1_000, `${table} holds ${size}`);
        }
        // Round trips are kept for connected peers only.
        assert.ok(core.structureSizes().roundTrips <= core.peerIdentities.length, "round trips");
      }
      core.stop();
      clock.advance(0); // deferred work already queued runs, and finds the core stopped
      assert.equal(open.size, 0, "every session closed at stop");
      assert.equal(clock.pendingCount, 0, "no timer left");
    }),
    { numRuns: 200 },
  );
});
