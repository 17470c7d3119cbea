/**
 * Unit and property tests of lib/protocol/validation_queue.ts: fair per-peer
 * queues in front of local validation, in-flight limits, eviction of the
 * hog's newest item and refusal of the hog.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { PeerKey } from "../lib/protocol/item_store.ts";
import {
  DEFAULT_VALIDATION_QUEUE_OPTIONS,
  type QueuedValidation,
  ValidationQueue,
  type ValidationQueueOptions,
} from "../lib/protocol/validation_queue.ts";

interface Recorded {
  readonly started: QueuedValidation[];
  readonly evicted: QueuedValidation[];
  readonly overShare: PeerKey[];
}

function setup(options: Partial<ValidationQueueOptions> = {}) {
  const recorded: Recorded = { started: [], evicted: [], overShare: [] };
  const queue = new ValidationQueue<QueuedValidation>(
    {
      maxInFlight: 1,
      maxInFlightBytes: 1_000_000,
      maxQueuedBytes: 1_000_000,
      maxQueuedPerPeer: 100,
      ...options,
    },
    {
      start: (entry) => recorded.started.push(entry),
      evicted: (entry) => recorded.evicted.push(entry),
      overShare: (peer) => recorded.overShare.push(peer),
    },
  );
  let next = 1n;
  const offer = (peer: PeerKey, bytes = 1) => {
    const entry = { id: next++, bytes, peer };
    return { entry, outcome: queue.offer(entry) };
  };
  const names = (list: readonly QueuedValidation[]) => list.map((e) => `${e.peer}${e.id}`);
  return { queue, recorded, offer, names };
}

Deno.test("the defaults are sane", () => {
  const d = DEFAULT_VALIDATION_QUEUE_OPTIONS;
  assert.ok(d.maxInFlight >= 1 && d.maxQueuedPerPeer >= 1);
  assert.ok(d.maxInFlightBytes >= 65_527, "one largest item fits in flight");
  assert.ok(d.maxQueuedBytes >= d.maxInFlightBytes);
});

Deno.test("an item starts at once while nothing waits and a slot is free", () => {
  const { queue, recorded, offer } = setup({ maxInFlight: 2 });
  const first = offer("a");
  assert.equal(first.outcome, "started");
  assert.deepEqual(recorded.started, [first.entry]);
  assert.equal(offer("b").outcome, "started");
  assert.equal(queue.running, 2);
  assert.equal(queue.waiting, 0);
  const third = offer("c", 7);
  assert.equal(third.outcome, "queued");
  assert.equal(recorded.started.length, 2);
  assert.equal(queue.waiting, 1);
  assert.equal(queue.waitingBytes, 7);
  assert.equal(queue.peersWaiting, 1);
  // A finished validation frees its slot for the next item.
  queue.finished(first.entry.id);
  assert.deepEqual(recorded.started.at(-1), third.entry);
  assert.equal(queue.running, 2);
  assert.equal(queue.waiting, 0);
  assert.equal(queue.waitingBytes, 0);
  assert.equal(queue.peersWaiting, 0);
});

Deno.test("finished for an unknown or already finished ID changes nothing", () => {
  const { queue, recorded, offer } = setup();
  const first = offer("a");
  offer("a");
  queue.finished(999n);
  assert.equal(queue.running, 1);
  assert.equal(recorded.started.length, 1);
  queue.finished(first.entry.id);
  queue.finished(first.entry.id);
  assert.equal(queue.running, 1, "the second finish did not free another slot");
  assert.equal(recorded.started.length, 2);
});

Deno.test("maxInFlightBytes limits bytes in flight, but one item always fits when idle", () => {
  const { queue, recorded, offer } = setup({ maxInFlight: 10, maxInFlightBytes: 100 });
  const a = offer("a", 60);
  assert.equal(a.outcome, "started");
  assert.equal(offer("b", 40).outcome, "started", "exactly the limit");
  assert.equal(offer("c", 1).outcome, "queued");
  queue.finished(a.entry.id);
  assert.equal(recorded.started.length, 3);
  queue.clear();

  const big = setup({ maxInFlight: 10, maxInFlightBytes: 100 });
  assert.equal(big.offer("a", 500).outcome, "started", "larger than the limit, but nothing runs");
  assert.equal(big.offer("b", 1).outcome, "queued", "while it runs nothing else fits");
});

Deno.test("free slots go to the peers in round-robin order", () => {
  const { queue, recorded, offer, names } = setup();
  const running = offer("x").entry;
  for (const peer of ["a", "a", "a", "b", "b", "c"]) offer(peer);
  assert.equal(queue.peersWaiting, 3);
  let current = running;
  for (let i = 0; i < 6; i++) {
    queue.finished(current.id);
    current = recorded.started.at(-1)!;
  }
  assert.deepEqual(names(recorded.started), ["x1", "a2", "b5", "c7", "a3", "b6", "a4"]);
  assert.equal(queue.waiting, 0);
});

Deno.test("a flooding peer delays only its own items", () => {
  const { queue, recorded, offer } = setup({ maxInFlight: 2 });
  for (let i = 0; i < 100; i++) offer("hog");
  const honest = offer("honest").entry;
  let finishes = 0;
  while (!recorded.started.includes(honest)) {
    const oldest = recorded.started[finishes++];
    queue.finished(oldest.id);
    assert.ok(finishes <= 2, "the honest item starts within one round of the peers");
  }
  assert.equal(queue.waiting, 100 - 2 - finishes + 1);
});

Deno.test("the head of the round blocks smaller items behind it (no overtaking)", () => {
  const { queue, recorded, offer, names } = setup({ maxInFlight: 5, maxInFlightBytes: 100 });
  const first = offer("a", 50).entry;
  offer("b", 60); // does not fit beside a
  offer("c", 10); // would fit, but waits its turn behind b
  assert.deepEqual(names(recorded.started), ["a1"]);
  queue.finished(first.id);
  assert.deepEqual(names(recorded.started), ["a1", "b2", "c3"]);
});

Deno.test("maxQueuedPerPeer refuses a peer's further items and reports it", () => {
  const { queue, recorded, offer } = setup({ maxQueuedPerPeer: 2 });
  offer("a"); // runs
  assert.equal(offer("a").outcome, "queued");
  assert.equal(offer("a").outcome, "queued");
  assert.equal(offer("a").outcome, "refused");
  assert.deepEqual(recorded.overShare, ["a"]);
  assert.equal(queue.dropped, 1);
  assert.equal(queue.waiting, 2);
  assert.equal(offer("b").outcome, "queued", "other peers are not affected");
  assert.deepEqual(recorded.evicted, []);
});

Deno.test("a full waiting room evicts the newest item of the peer with the most bytes", () => {
  const { queue, recorded, offer, names } = setup({ maxQueuedBytes: 100 });
  offer("x"); // runs
  offer("hog", 30);
  offer("hog", 30);
  offer("small", 20);
  offer("hog", 20); // 100 bytes waiting
  assert.equal(queue.waitingBytes, 100);
  const newcomer = offer("new", 10);
  assert.equal(newcomer.outcome, "queued");
  assert.deepEqual(names(recorded.evicted), ["hog5"], "the hog's newest item");
  assert.equal(queue.dropped, 1);
  assert.deepEqual(recorded.overShare, [], "making room is not the newcomer's fault");
  assert.equal(queue.waitingBytes, 90);
  assert.equal(queue.waiting, 4);
});

Deno.test("one large item may take several of the hog's newest items", () => {
  const { queue, recorded, offer, names } = setup({ maxQueuedBytes: 100 });
  offer("x"); // runs
  for (let i = 0; i < 6; i++) offer("hog", 10); // hog2..hog7: 60 bytes
  offer("small", 20);
  offer("new", 10); // 90 bytes waiting
  assert.equal(offer("big", 30).outcome, "queued");
  assert.deepEqual(names(recorded.evicted), ["hog7", "hog6"]);
  assert.equal(queue.waitingBytes, 100);
  assert.equal(queue.dropped, 2);
});

Deno.test("an item refused after evictions leaves the bounds intact", () => {
  // The hog (60 bytes) shrinks below the newcomer's 45 after one eviction, so the
  // newcomer is refused. Not asserted either way (see the report): that one
  // eviction has already happened by then, and made room for nothing.
  const { queue, recorded, offer } = setup({ maxQueuedBytes: 100 });
  offer("x"); // runs
  offer("hog", 30);
  offer("hog", 30);
  offer("small", 20);
  offer("new", 10);
  offer("other", 10); // 100 bytes waiting
  assert.equal(offer("big", 45).outcome, "refused");
  assert.deepEqual(recorded.overShare, ["big"]);
  assert.ok(queue.waitingBytes <= 100);
  assert.equal(queue.dropped, 1 + recorded.evicted.length);
});

Deno.test("the hog itself is refused while the waiting room is full", () => {
  const { queue, recorded, offer } = setup({ maxQueuedBytes: 50 });
  offer("x"); // runs
  offer("hog", 30);
  offer("other", 20);
  assert.equal(offer("hog", 5).outcome, "refused");
  assert.deepEqual(recorded.overShare, ["hog"]);
  assert.deepEqual(recorded.evicted, []);
  assert.equal(queue.waitingBytes, 50);
  assert.equal(queue.dropped, 1);
});

Deno.test("a peer that would match the hog's bytes is refused instead of evicting", () => {
  const { queue, recorded, offer } = setup({ maxQueuedBytes: 100 });
  offer("x"); // runs
  offer("hog", 60);
  offer("p", 20);
  offer("q", 20);
  assert.equal(offer("p", 40).outcome, "refused", "p would hold 60 bytes, as many as the hog");
  assert.deepEqual(recorded.overShare, ["p"]);
  assert.equal(queue.waitingBytes, 100);
  assert.equal(offer("q", 39).outcome, "queued", "q stays below the hog");
  assert.equal(recorded.evicted.length, 1);
});

Deno.test("with nothing waiting, an item larger than the waiting room is refused", () => {
  const { recorded, offer } = setup({ maxQueuedBytes: 10 });
  offer("x"); // runs
  assert.equal(offer("a", 11).outcome, "refused");
  assert.deepEqual(recorded.overShare, ["a"]);
});

Deno.test("an emptied victim queue no longer counts as a waiting peer", () => {
  const { queue, recorded, offer } = setup({ maxQueuedBytes: 10 });
  offer("x"); // runs
  offer("hog", 10);
  assert.equal(queue.peersWaiting, 1);
  offer("a", 3);
  assert.equal(recorded.evicted.length, 1);
  assert.equal(queue.peersWaiting, 1, "only a waits now");
  assert.equal(queue.waiting, 1);
});

Deno.test("clear forgets everything without callbacks", () => {
  const { queue, recorded, offer } = setup();
  const running = offer("a").entry;
  offer("a");
  offer("b");
  queue.clear();
  assert.equal(queue.running, 0);
  assert.equal(queue.waiting, 0);
  assert.equal(queue.waitingBytes, 0);
  assert.equal(queue.peersWaiting, 0);
  queue.finished(running.id);
  assert.equal(recorded.started.length, 1);
  assert.deepEqual(recorded.evicted, []);
  assert.equal(offer("c").outcome, "started", "usable afterwards");
});

Deno.test("validations that end inside start() drain a long queue without deep recursion", () => {
  // E.g. every subscriber muted or its NOTIFICATION queue full: each verdict is
  // reached synchronously while the item starts.
  let synchronous = false;
  const started: bigint[] = [];
  const queue: ValidationQueue<QueuedValidation> = new ValidationQueue({
    ...DEFAULT_VALIDATION_QUEUE_OPTIONS,
    maxInFlight: 1,
    maxQueuedPerPeer: 100_000,
  }, {
    start: (entry) => {
      started.push(entry.id);
      if (synchronous) queue.finished(entry.id);
    },
    evicted: () => assert.fail("nothing is evicted"),
    overShare: () => assert.fail("nobody is over its share"),
  });
  queue.offer({ id: 0n, bytes: 1, peer: "first" });
  const count = 20_000;
  for (let i = 1; i <= count; i++) queue.offer({ id: BigInt(i), bytes: 1, peer: `p${i % 50}` });
  assert.equal(queue.waiting, count);
  synchronous = true;
  queue.finished(0n);
  assert.equal(started.length, count + 1);
  assert.equal(queue.waiting, 0);
  assert.equal(queue.running, 0);
  assert.equal(new Set(started).size, count + 1, "each item started once");
});

// ---- property test --------------------------------------------------------------------

type Op =
  | { kind: "offer"; peer: number; bytes: number }
  | { kind: "finish"; pick: number }
  | { kind: "finishUnknown" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("offer" as const),
      peer: fc.integer({ min: 0, max: 3 }),
      bytes: fc.integer({ min: 1, max: 40 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("finish" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("finishUnknown" as const) }) },
);

Deno.test("property: accounting matches a model, never goes negative, and every entry ends exactly once", () => {
  fc.assert(
    fc.property(
      fc.record({
        maxInFlight: fc.integer({ min: 1, max: 4 }),
        maxInFlightBytes: fc.integer({ min: 1, max: 80 }),
        maxQueuedBytes: fc.integer({ min: 1, max: 120 }),
        maxQueuedPerPeer: fc.integer({ min: 1, max: 5 }),
      }),
      fc.array(op, { maxLength: 100 }),
      (options, ops) => {
        const fate = new Map<bigint, "started" | "evicted" | "refused">();
        const inFlight = new Map<bigint, number>();
        /** Per peer, its waiting entries oldest first (the model of the queues). */
        const waiting = new Map<PeerKey, QueuedValidation[]>();
        const offeredOrder = new Map<PeerKey, bigint[]>();
        const startedOrder = new Map<PeerKey, bigint[]>();
        let refusedCount = 0;
        let evictedCount = 0;
        const end = (id: bigint, how: "started" | "evicted" | "refused") => {
          assert.equal(fate.get(id), undefined, `entry ${id} ended twice`);
          fate.set(id, how);
        };
        const unwait = (entry: QueuedValidation) => {
          const list = waiting.get(entry.peer) ?? [];
          const index = list.findIndex((e) => e.id === entry.id);
          if (index >= 0) list.splice(index, 1);
          if (list.length === 0) waiting.delete(entry.peer);
        };
        const queue: ValidationQueue<QueuedValidation> = new ValidationQueue(options, {
          start: (entry) => {
            end(entry.id, "started");
            unwait(entry);
            inFlight.set(entry.id, entry.bytes);
            startedOrder.set(entry.peer, [...(startedOrder.get(entry.peer) ?? []), entry.id]);
          },
          evicted: (entry) => {
            // The victim is the newest entry of a peer with the most bytes waiting.
            const bytesOf = (peer: PeerKey) =>
              (waiting.get(peer) ?? []).reduce((sum, e) => sum + e.bytes, 0);
            const most = Math.max(...[...waiting.keys()].map(bytesOf));
            assert.equal(bytesOf(entry.peer), most, "the victim's peer is the hog");
            assert.equal(waiting.get(entry.peer)!.at(-1)!.id, entry.id, "its newest entry");
            end(entry.id, "evicted");
            evictedCount++;
            unwait(entry);
          },
          overShare: () => {},
        });
        let nextId = 1n;
        for (const step of ops) {
          if (step.kind === "offer") {
            const peer = `p${step.peer}`;
            const entry = { id: nextId++, bytes: step.bytes, peer };
            offeredOrder.set(peer, [...(offeredOrder.get(peer) ?? []), entry.id]);
            waiting.set(peer, [...(waiting.get(peer) ?? []), entry]);
            const outcome = queue.offer(entry);
            if (outcome === "refused") {
              unwait(entry);
              end(entry.id, "refused");
              refusedCount++;
            } else if (outcome === "started") {
              assert.equal(fate.get(entry.id), "started");
            }
          } else if (step.kind === "finish") {
            const ids = [...inFlight.keys()];
            if (ids.length === 0) continue;
            const id = ids[step.pick % ids.length];
            inFlight.delete(id);
            queue.finished(id);
          } else {
            queue.finished(-1n);
          }
          // Invariants.
          const waitingEntries = [...waiting.values()].flat();
          const waitingBytes = waitingEntries.reduce((sum, e) => sum + e.bytes, 0);
          const flightBytes = [...inFlight.values()].reduce((sum, b) => sum + b, 0);
          assert.equal(queue.running, inFlight.size);
          assert.equal(queue.waiting, waitingEntries.length);
          assert.equal(queue.waitingBytes, waitingBytes);
          assert.equal(queue.peersWaiting, waiting.size);
          assert.ok(queue.running >= 0 && queue.waiting >= 0 && queue.waitingBytes >= 0);
          assert.ok(queue.running <= options.maxInFlight, "in-flight count bound");
          assert.ok(
            flightBytes <= options.maxInFlightBytes || inFlight.size === 1,
            "in-flight byte bound (one oversized item may run alone)",
          );
          assert.ok(waitingBytes <= options.maxQueuedBytes, "waiting byte bound");
          for (const list of waiting.values()) {
            assert.ok(list.length <= options.maxQueuedPerPeer, "per-peer bound");
          }
          if (queue.waiting > 0) assert.ok(queue.running > 0, "never idle while items wait");
          assert.equal(queue.dropped, refusedCount + evictedCount);
        }
        // Drain: finish everything; every entry then ended exactly once.
        for (let round = 0; round < 1_000 && inFlight.size > 0; round++) {
          const [id] = inFlight.keys();
          inFlight.delete(id);
          queue.finished(id);
        }
        assert.equal(queue.running, 0);
        assert.equal(queue.waiting, 0);
        assert.equal(fate.size, Number(nextId - 1n), "every offered entry ended exactly once");
        // Each peer's items started in the order it sent them.
        for (const [peer, startedIds] of startedOrder) {
          const offered = offeredOrder.get(peer)!.filter((id) => fate.get(id) === "started");
          assert.deepEqual(startedIds, offered, `FIFO per peer (${peer})`);
        }
      },
    ),
    { numRuns: 400 },
  );
});
