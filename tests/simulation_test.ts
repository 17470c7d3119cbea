import assert from "node:assert/strict";
import { simulate, type SimulationResult } from "../scripts/simulate.ts";

/** Hop distance from `origin` to every node of the overlay (BFS). */
function distances(overlay: SimulationResult["overlay"], origin: number): Map<number, number> {
  const result = new Map<number, number>([[origin, 0]]);
  const queue = [origin];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head];
    for (const next of overlay[node]) {
      if (!result.has(next)) {
        result.set(next, result.get(node)! + 1);
        queue.push(next);
      }
    }
  }
  return result;
}

Deno.test("simulate: with repair every item reaches every node (N=100, degree=5)", () => {
  const result = simulate({ nodes: 100, degree: 5, items: 100, seed: 1 });
  assert.ok(result.overlayConnected);
  assert.equal(result.deliveries, 100 * 99);
  assert.equal(result.deliveryRatio, 1);
  assert.equal(result.fullyDelivered, 100);
  for (let index = 0; index < result.items; index++) {
    assert.ok(!result.deliveredTo[index].has(result.origins[index]), "origin not notified");
  }
  assert.ok(result.maxTimeToFullDeliveryMs > 0);
  // Each node pushes to at most `degree` peers plus IWANT answers.
  assert.ok(result.messages.items <= 100 * 100 * 5 + result.pulls);
});

Deno.test("simulate: push alone misses items that repair recovers", () => {
  const options = { nodes: 100, degree: 2, items: 100, seed: 1 };
  const withRepair = simulate(options);
  const pushOnly = simulate({ ...options, repair: false });
  assert.equal(withRepair.deliveryRatio, 1);
  assert.ok(withRepair.pulls > 0);
  assert.ok(pushOnly.deliveryRatio < 0.99, `push alone delivered ${pushOnly.deliveryRatio}`);
  assert.ok(pushOnly.fullyDelivered < pushOnly.items / 2);
  assert.equal(pushOnly.pulls, 0);
});

Deno.test("simulate: a node whose validator says invalid never forwards the item", () => {
  const nodes = 60;
  const probe = simulate({ nodes, degree: 4, items: 0, seed: 7 });
  // The best-connected node, so that it would forward a lot if it could.
  let rejecting = 0;
  for (let node = 1; node < nodes; node++) {
    if (probe.overlay[node].length > probe.overlay[rejecting].length) rejecting = node;
  }
  const result = simulate({
    nodes,
    degree: 4,
    items: 60,
    seed: 7,
    isValid: (node) => node !== rejecting,
  });
  let checked = 0;
  for (let index = 0; index < result.items; index++) {
    if (result.origins[index] === rejecting) continue; // its own items are trusted
    checked++;
    assert.ok(result.deliveredTo[index].has(rejecting), "it still sees the item");
    assert.ok(!result.senders[index].has(rejecting), `node ${rejecting} forwarded item ${index}`);
    // Everyone else still gets it through other paths.
    assert.equal(result.deliveredTo[index].size, nodes - 1);
  }
  assert.ok(checked > 50);
});

Deno.test("simulate: TTL 1 items reach exactly the origin's direct neighbours", () => {
  const result = simulate({ nodes: 80, degree: 3, items: 40, seed: 2, ttl: 1 });
  for (let index = 0; index < result.items; index++) {
    const neighbours = [...result.overlay[result.origins[index]]].sort((a, b) => a - b);
    const reached = [...result.deliveredTo[index]].sort((a, b) => a - b);
    assert.deepEqual(reached, neighbours, `item ${index}`);
    assert.deepEqual([...result.senders[index]], [result.origins[index]], "only the origin sends");
    assert.deepEqual([...result.arrivalTtls[index]], [1]);
  }
});

Deno.test("simulate: TTL 2 items never travel beyond two hops", () => {
  const result = simulate({ nodes: 80, degree: 3, items: 40, seed: 2, ttl: 2 });
  let neighboursReached = 0;
  let neighbours = 0;
  for (let index = 0; index < result.items; index++) {
    const hops = distances(result.overlay, result.origins[index]);
    for (const node of result.deliveredTo[index]) {
      assert.ok(hops.get(node)! <= 2, `item ${index} reached node ${node} at ${hops.get(node)}`);
    }
    for (const node of result.overlay[result.origins[index]]) {
      neighbours++;
      if (result.deliveredTo[index].has(node)) neighboursReached++;
    }
  }
  assert.equal(neighboursReached, neighbours, "the first hop is always complete");
});

Deno.test("simulate: a run is determined by its seed", () => {
  const options = { nodes: 40, degree: 3, items: 30, seed: 11 };
  const first = simulate(options);
  const second = simulate(options);
  assert.deepEqual(
    [first.deliveries, first.duplicates, first.pulls, first.events, first.endTimeMs],
    [second.deliveries, second.duplicates, second.pulls, second.events, second.endTimeMs],
  );
  assert.deepEqual(first.overlay, second.overlay);
  const other = simulate({ ...options, seed: 12 });
  assert.notDeepEqual(first.overlay, other.overlay);
});

Deno.test("simulate: rejects impossible options", () => {
  assert.throws(() => simulate({ nodes: 1, degree: 1, items: 1, seed: 1 }), RangeError);
  assert.throws(() => simulate({ nodes: 10, degree: 0, items: 1, seed: 1 }), RangeError);
  assert.throws(() => simulate({ nodes: 10, degree: 2, items: -1, seed: 1 }), RangeError);
});
