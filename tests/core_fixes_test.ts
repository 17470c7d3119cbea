/**
 * Protocol fixes the simulation showed to be needed (docs/SIMULATION.md), each
 * checked on a small network of real node cores (lib/sim/network.ts) or on
 * the state machine it changed.
 */

import assert from "node:assert/strict";
import { SimNetwork, type SimNode, type SimNodeOptions } from "../lib/sim/network.ts";

/** `count` nodes, each bootstrapping through a random earlier one. */
function network(count: number, seed: number, node: SimNodeOptions = {}): SimNetwork {
  const net = new SimNetwork({ seed, delay: () => 2 });
  net.addNode(node);
  for (let i = 1; i < count; i++) {
    net.addNode({ ...node, bootstrap: [net.nodes[Math.floor(net.rng() * i)]] });
    net.run(10);
  }
  net.run(5_000);
  return net;
}

function crossing(net: SimNetwork, side: (n: SimNode) => boolean): number {
  let count = 0;
  for (const node of net.nodes) {
    for (const peer of node.sessions.keys()) if (side(net.byId(peer)!) !== side(node)) count++;
  }
  return count / 2;
}

Deno.test("fix: a healed partition reconnects although every node has its outbound peers", () => {
  const run = (rotationMs: number) => {
    const net = network(40, 21, { tuning: { outboundRotationMs: rotationMs } });
    const left = (n: SimNode) => n.index < 20;
    assert.ok(crossing(net, left) > 0);
    net.partition((a, b) => left(a) !== left(b));
    net.run(30_000);
    const full = net.nodes.filter((n) => n.core.stats().peerCounts.outbound === 5).length;
    net.announce(net.nodes[3], 1);
    net.run(1_000);
    net.heal();
    net.run(180_000);
    const reached = net.nodes.filter((n) => n.received.has(1)).length;
    return { crossing: crossing(net, left), reached, full };
  };
  const stuck = run(0);
  assert.equal(stuck.full, 40, "each side refilled every outbound slot on its own side");
  assert.equal(stuck.crossing, 0, "without rotation the two sides never meet again");
  assert.equal(stuck.reached, 19, "the item stays on its side");
  const healed = run(60_000);
  assert.ok(healed.crossing > 0, "with rotation sessions cross the former cut");
  assert.equal(healed.reached, 39, "and the item announced while cut reaches everyone");
});
