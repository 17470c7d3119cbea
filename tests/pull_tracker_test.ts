/**
 * Unit and property tests of lib/protocol/pull_tracker.ts: waiting for missing
 * items, asking advertisers in turn, the adaptive wait and the bounds.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { PeerKey } from "../lib/protocol/item_store.ts";
import {
  type PullActions,
  PullTracker,
  type PullTrackerOptions,
} from "../lib/protocol/pull_tracker.ts";
import { FakeScheduler } from "./support/fake_scheduler.ts";
import { advanceStep } from "./support/arbitraries.ts";

/** Records the tracker's requests; `reachable` decides `canAsk`. */
class Recorder implements PullActions {
  readonly wants: string[] = [];
  readonly exhaustions: { id: bigint; asked: readonly PeerKey[] }[] = [];
  readonly unreachable = new Set<PeerKey>();

  canAsk(peer: PeerKey): boolean {
    return !this.unreachable.has(peer);
  }

  want(peer: PeerKey, id: bigint): void {
    this.wants.push(`${peer}:${id}`);
  }

  exhausted(id: bigint, asked: readonly PeerKey[]): void {
    this.exhaustions.push({ id, asked: [...asked] });
  }
}

const OPTIONS: PullTrackerOptions = {
  pullDelayMs: 10,
  maxPullDelayMs: 10,
  pullTimeoutMs: 100,
  maxCandidates: 3,
  maxWanted: 5,
  maxWantedPerPeer: 3,
};

function setup(options: Partial<PullTrackerOptions> = {}) {
  const clock = new FakeScheduler();
  const actions = new Recorder();
  const tracker = new PullTracker({ ...OPTIONS, ...options }, clock, actions);
  return { clock, actions, tracker };
}

Deno.test("a missing item is asked for after the wait, then from each advertiser in turn", () => {
  const { clock, actions, tracker } = setup();
  assert.ok(tracker.heard(1n, "a"));
  assert.ok(tracker.heard(1n, "b"));
  assert.ok(tracker.has(1n));
  assert.equal(tracker.size, 1);
  clock.advance(9);
  assert.deepEqual(actions.wants, []);
  clock.advance(1);
  assert.deepEqual(actions.wants, ["a:1"]);
  assert.equal(tracker.wantsSent, 1);
  clock.advance(99);
  assert.deepEqual(actions.wants, ["a:1"]);
  clock.advance(1);
  assert.deepEqual(actions.wants, ["a:1", "b:1"]);
  assert.deepEqual(actions.exhaustions, []);
  clock.advance(100);
  assert.deepEqual(actions.exhaustions, [{ id: 1n, asked: ["a", "b"] }]);
  assert.equal(tracker.has(1n), false, "forgotten once nobody is left to ask");
  assert.equal(tracker.size, 0);
  assert.equal(tracker.advertisers, 0);
  assert.equal(clock.pendingCount, 0);
  assert.equal(tracker.wantsSent, 2);
});

Deno.test("an advertiser heard after the first IWANT is asked in its turn", () => {
  const { clock, actions, tracker } = setup();
  tracker.heard(1n, "a");
  clock.advance(10);
  tracker.heard(1n, "c");
  clock.advance(100);
  assert.deepEqual(actions.wants, ["a:1", "c:1"]);
});

Deno.test("repeated advertisers are remembered once; at most maxCandidates", () => {
  const { clock, actions, tracker } = setup({ maxCandidates: 2 });
  for (const peer of ["a", "a", "b", "a", "c", "d"]) assert.ok(tracker.heard(1n, peer));
  clock.advance(10 + 5 * 100);
  assert.deepEqual(actions.wants, ["a:1", "b:1"]);
  assert.deepEqual(actions.exhaustions, [{ id: 1n, asked: ["a", "b"] }]);
});

Deno.test("the wait can be given per item", () => {
  const { clock, actions, tracker } = setup();
  tracker.heard(1n, "a", 500);
  tracker.heard(2n, "a", 0);
  clock.advance(0);
  assert.deepEqual(actions.wants, ["a:2"]);
  clock.advance(499);
  assert.deepEqual(actions.wants, ["a:2"]);
  clock.advance(1);
  assert.deepEqual(actions.wants, ["a:2", "a:1"]);
});

Deno.test("arrival stops the wait and names the advertisers; unknown IDs give undefined", () => {
  const { clock, actions, tracker } = setup();
  tracker.heard(1n, "a");
  tracker.heard(1n, "b");
  clock.advance(5);
  assert.deepEqual(tracker.arrived(1n), { advertisers: ["a", "b"], pulled: false });
  assert.equal(tracker.has(1n), false);
  assert.equal(clock.pendingCount, 0);
  clock.advance(1_000);
  assert.deepEqual(actions.wants, []);
  assert.equal(tracker.arrived(1n), undefined);
  assert.equal(tracker.arrived(2n), undefined);

  tracker.heard(2n, "c");
  clock.advance(10);
  assert.deepEqual(tracker.arrived(2n), { advertisers: ["c"], pulled: true });
  assert.deepEqual(actions.exhaustions, []);
});

Deno.test("cancel stops the wait without asking anybody or reporting exhaustion", () => {
  const { clock, actions, tracker } = setup();
  tracker.heard(1n, "a");
  tracker.cancel(1n);
  tracker.cancel(1n);
  tracker.cancel(9n);
  assert.equal(tracker.size, 0);
  assert.equal(tracker.advertisers, 0);
  assert.equal(clock.pendingCount, 0);
  clock.advance(1_000);
  assert.deepEqual(actions.wants, []);
  assert.deepEqual(actions.exhaustions, []);
});

Deno.test("clear cancels every timer", () => {
  const { clock, actions, tracker } = setup();
  tracker.heard(1n, "a");
  tracker.heard(2n, "b");
  clock.advance(10); // both asked, waiting for answers
  tracker.heard(3n, "c");
  assert.equal(clock.pendingCount, 3);
  tracker.clear();
  assert.equal(clock.pendingCount, 0);
  assert.equal(tracker.size, 0);
  assert.equal(tracker.advertisers, 0);
  clock.advance(10_000);
  assert.deepEqual(actions.wants, ["a:1", "b:2"]);
  assert.deepEqual(actions.exhaustions, []);
});

Deno.test("advertisers that cannot be asked are skipped", () => {
  const { clock, actions, tracker } = setup();
  tracker.heard(1n, "a");
  tracker.heard(1n, "b");
  actions.unreachable.add("a");
  clock.advance(10);
  assert.deepEqual(actions.wants, ["b:1"]);
});

Deno.test("exhaustion names only the advertisers that were actually asked", () => {
  // An advertiser that disconnected (or is distrusted) before its turn was never
  // sent IWANT, so it cannot be blamed for not answering one.
  const { clock, actions, tracker } = setup();
  tracker.heard(1n, "a");
  tracker.heard(1n, "b");
  tracker.heard(1n, "c");
  actions.unreachable.add("b");
  clock.advance(10);
  assert.deepEqual(actions.wants, ["a:1"]);
  clock.advance(100);
  assert.deepEqual(actions.wants, ["a:1", "c:1"]);
  clock.advance(100);
  assert.deepEqual(actions.exhaustions, [{ id: 1n, asked: ["a", "c"] }]);

  // Nobody reachable at all: the item is forgotten, and nobody is blamed.
  tracker.heard(2n, "b");
  clock.advance(10);
  assert.equal(tracker.has(2n), false);
  assert.deepEqual(actions.exhaustions.at(-1), { id: 2n, asked: [] });
  assert.equal(clock.pendingCount, 0);
});

Deno.test("maxWanted bounds the missing items; a freed slot is reusable", () => {
  const { tracker } = setup({ maxWanted: 2, maxWantedPerPeer: 2 });
  assert.ok(tracker.heard(1n, "a"));
  assert.ok(tracker.heard(2n, "b"));
  assert.equal(tracker.heard(3n, "c"), false);
  assert.equal(tracker.has(3n), false);
  assert.ok(tracker.heard(1n, "c"), "another advertiser of a tracked item is still welcome");
  tracker.arrived(1n);
  assert.ok(tracker.heard(3n, "c"));
  assert.equal(tracker.size, 2);
  tracker.clear();
});

Deno.test("one peer fills at most maxWantedPerPeer slots; they return when its items settle", () => {
  const { clock, tracker } = setup({ maxWanted: 10, maxWantedPerPeer: 2 });
  assert.ok(tracker.heard(1n, "a"));
  assert.ok(tracker.heard(2n, "a"));
  assert.equal(tracker.heard(3n, "a"), false);
  assert.ok(tracker.heard(3n, "b"), "other peers are not affected");
  assert.ok(tracker.heard(1n, "b"), "being a later advertiser does not count");
  assert.ok(tracker.heard(4n, "b"));
  assert.equal(tracker.heard(5n, "b"), false);
  assert.equal(tracker.advertisers, 2);
  tracker.arrived(1n); // a's share: arrival
  assert.ok(tracker.heard(5n, "a"));
  tracker.cancel(2n); // a's share: cancel
  assert.ok(tracker.heard(6n, "a"));
  assert.equal(tracker.heard(7n, "a"), false);
  clock.advance(10 + 3 * 100); // everything exhausted
  assert.equal(tracker.size, 0);
  assert.equal(tracker.advertisers, 0, "exhaustion returns the share too");
  assert.ok(tracker.heard(7n, "a"));
  tracker.clear();
});

Deno.test("a fixed wait (maxPullDelayMs = pullDelayMs) never adapts", () => {
  const { clock, tracker } = setup({ pullDelayMs: 10, maxPullDelayMs: 10 });
  for (let i = 0n; i < 20n; i++) {
    tracker.heard(i, "a");
    clock.advance(8);
    tracker.arrived(i);
  }
  assert.equal(tracker.pullDelayMs, 10);
});

Deno.test("the adaptive wait is the smoothed lag plus two deviations (RFC 6298 gains)", () => {
  const { clock, tracker } = setup({ pullDelayMs: 10, maxPullDelayMs: 500, maxWantedPerPeer: 5 });
  assert.equal(tracker.pullDelayMs, 10);
  const observe = (id: bigint, lag: number) => {
    tracker.heard(id, "a", 10_000);
    clock.advance(lag);
    tracker.arrived(id);
  };
  observe(1n, 40); // lag 40, deviation 20: 80
  assert.equal(tracker.pullDelayMs, 80);
  observe(2n, 40); // deviation 0.75 * 20 = 15, lag 40: 70
  assert.equal(tracker.pullDelayMs, 70);
  observe(3n, 120); // deviation 0.75 * 15 + 0.25 * 80 = 31.25, lag 50: 112.5
  assert.equal(tracker.pullDelayMs, 112.5);
  // The next IHAVE waits the adapted time.
  const wants: string[] = [];
  const probe = new PullTracker(
    { ...OPTIONS, pullDelayMs: 10, maxPullDelayMs: 500 },
    clock,
    { canAsk: () => true, want: (peer, id) => wants.push(`${peer}:${id}`), exhausted: () => {} },
  );
  probe.heard(9n, "a");
  clock.advance(10);
  assert.deepEqual(wants, ["a:9"], "a fresh tracker starts at pullDelayMs");
  probe.clear();
  tracker.heard(4n, "a");
  clock.advance(112);
  assert.ok(tracker.has(4n));
  tracker.clear();
});

Deno.test("the adaptive wait stays within its bounds", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 50 }),
      fc.integer({ min: 1, max: 1_000 }),
      fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 40 }),
      (low, span, lags) => {
        const high = low + span;
        const { clock, tracker } = setup({
          pullDelayMs: low,
          maxPullDelayMs: high,
          maxWanted: 1,
          maxWantedPerPeer: 1,
        });
        for (const [index, lag] of lags.entries()) {
          assert.ok(tracker.heard(BigInt(index), "a", 1e9));
          clock.advance(lag);
          tracker.arrived(BigInt(index));
          assert.ok(tracker.pullDelayMs >= low && tracker.pullDelayMs <= high);
        }
        tracker.clear();
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("a constant lag makes the wait converge to it", () => {
  const { clock, tracker } = setup({ pullDelayMs: 1, maxPullDelayMs: 1_000, maxWantedPerPeer: 1 });
  for (let i = 0n; i < 100n; i++) {
    tracker.heard(i, "a", 1e9);
    clock.advance(60);
    tracker.arrived(i);
  }
  assert.ok(Math.abs(tracker.pullDelayMs - 60) < 0.5, `wait ${tracker.pullDelayMs}`);
});

// ---- property test --------------------------------------------------------------------

type Op =
  | { kind: "heard"; id: number; peer: number }
  | { kind: "arrived"; id: number }
  | { kind: "cancel"; id: number }
  | { kind: "toggle"; peer: number }
  | { kind: "advance"; ms: number };

const PEERS = ["p0", "p1", "p2", "p3"];

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("heard" as const),
      id: fc.integer({ min: 0, max: 9 }),
      peer: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("arrived" as const),
      id: fc.integer({ max: 9, min: 0 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("cancel" as const),
      id: fc.integer({ max: 9, min: 0 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("toggle" as const),
      peer: fc.integer({ min: 0, max: 3 }),
    }),
  },
  advanceStep(150, 3),
);

Deno.test("property: bounds hold, one timer per missing item, only advertisers that can be asked are asked, once", () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
      const clock = new FakeScheduler();
      const unreachable = new Set<PeerKey>();
      /** Per missing item: its advertisers, and who was asked. */
      const model = new Map<bigint, { advertisers: Set<PeerKey>; asked: PeerKey[] }>();
      const tracker = new PullTracker(OPTIONS, clock, {
        canAsk: (peer) => !unreachable.has(peer),
        want: (peer, id) => {
          const entry = model.get(id);
          assert.ok(entry, `IWANT for ${id}, which is not missing`);
          assert.ok(entry.advertisers.has(peer), `${peer} never advertised ${id}`);
          assert.ok(!unreachable.has(peer), `${peer} cannot be asked`);
          assert.ok(!entry.asked.includes(peer), `${peer} asked twice for ${id}`);
          entry.asked.push(peer);
        },
        exhausted: (id, asked) => {
          const entry = model.get(id);
          assert.ok(entry);
          assert.deepEqual([...asked], entry.asked, "exhaustion names exactly the asked peers");
          model.delete(id);
        },
      });
      const firstBy = new Map<bigint, PeerKey>();
      for (const step of ops) {
        const id = "id" in step ? BigInt(step.id) : 0n;
        switch (step.kind) {
          case "heard": {
            const peer = PEERS[step.peer];
            if (tracker.heard(id, peer)) {
              if (!model.has(id)) {
                model.set(id, { advertisers: new Set(), asked: [] });
                firstBy.set(id, peer);
              }
              const entry = model.get(id)!;
              if (entry.advertisers.size < OPTIONS.maxCandidates) entry.advertisers.add(peer);
            } else {
              assert.ok(!model.has(id), "a tracked item never refuses an advertiser");
            }
            break;
          }
          case "arrived": {
            const arrival = tracker.arrived(id);
            assert.equal(arrival !== undefined, model.has(id));
            if (arrival) {
              assert.deepEqual(new Set(arrival.advertisers), model.get(id)!.advertisers);
              assert.equal(arrival.pulled, model.get(id)!.asked.length > 0);
            }
            model.delete(id);
            break;
          }
          case "cancel":
            tracker.cancel(id);
            model.delete(id);
            break;
          case "toggle": {
            const peer = PEERS[step.peer];
            if (!unreachable.delete(peer)) unreachable.add(peer);
            break;
          }
          case "advance":
            clock.advance(step.ms);
            break;
        }
        assert.equal(tracker.size, model.size, "tracked items match the model");
        assert.ok(tracker.size <= OPTIONS.maxWanted);
        assert.equal(clock.pendingCount, tracker.size, "exactly one timer per missing item");
        const perPeer = new Map<PeerKey, number>();
        for (const key of model.keys()) {
          const peer = firstBy.get(key)!;
          perPeer.set(peer, (perPeer.get(peer) ?? 0) + 1);
        }
        for (const count of perPeer.values()) assert.ok(count <= OPTIONS.maxWantedPerPeer);
        assert.equal(tracker.advertisers, perPeer.size);
        for (const key of model.keys()) assert.ok(tracker.has(key));
      }
      tracker.clear();
      assert.equal(clock.pendingCount, 0);
    }),
    { numRuns: 300 },
  );
});
