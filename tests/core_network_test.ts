/**
 * Protocol properties of whole networks of node cores, driven on a virtual
 * clock without sockets (lib/sim/network.ts): fast and deterministic. The
 * real-TCP end-to-end tests (p2p_cluster_test.ts) check a smaller set of the
 * same properties through the I/O shell.
 */

import assert from "node:assert/strict";
import { Logger } from "../lib/log.ts";
import { tagOf } from "../lib/sim/metrics.ts";
import {
  SimNetwork,
  type SimNode,
  type SimNodeOptions,
  type SimObserver,
} from "../lib/sim/network.ts";

/** Builds `count` nodes, each bootstrapping through a random earlier one, and lets them settle. */
function network(
  count: number,
  options: {
    seed?: number;
    node?: SimNodeOptions;
    settleMs?: number;
    observer?: SimObserver;
  } = {},
): SimNetwork {
  const net = new SimNetwork({
    seed: options.seed ?? 1,
    delay: () => 2,
    observer: options.observer,
  });
  net.addNode(options.node);
  for (let i = 1; i < count; i++) {
    net.addNode({ ...options.node, bootstrap: [net.nodes[Math.floor(net.rng() * i)]] });
    net.run(10);
  }
  net.run(options.settleMs ?? 5_000);
  return net;
}

/** Nodes (other than `origin`) whose module got item `tag`, and how often each did. */
function receptions(nodes: readonly SimNode[], tag: number, origin?: SimNode): number[] {
  return nodes.filter((n) => n !== origin).map((n) => n.received.get(tag)?.count ?? 0);
}

/** True when the graph of sessions among `nodes` is connected. */
function connected(nodes: readonly SimNode[]): boolean {
  const seen = new Set([nodes[0].identity]);
  const byId = new Map(nodes.map((n) => [n.identity, n]));
  const queue = [nodes[0]];
  while (queue.length > 0) {
    for (const peer of queue.pop()!.sessions.keys()) {
      const next = byId.get(peer);
      if (next && !seen.has(peer)) {
        seen.add(peer);
        queue.push(next);
      }
    }
  }
  return seen.size === nodes.length;
}

Deno.test("core: 60 nodes form an overlay, each with at least degree sessions", () => {
  const net = network(60);
  assert.ok(connected(net.nodes));
  let full = 0;
  for (const node of net.nodes) {
    const { inbound, outbound } = node.core.stats().peerCounts;
    // A node that just rotated an outbound peer out is dialling its replacement.
    const dialling = node.core.structureSizes().dialsInProgress;
    assert.ok(
      inbound + outbound + dialling >= 5,
      `node ${node.index} has ${inbound + outbound} sessions and ${dialling} dials`,
    );
    assert.ok(outbound <= 5 && inbound <= 10, "outbound at most degree, inbound twice that");
    if (outbound === 5) full++;
  }
  // Only early nodes whose peers all dialled them may lack outbound choices.
  assert.ok(full >= 55, `${full} of 60 nodes have degree outbound peers`);
});

Deno.test("core: every item reaches every node exactly once", () => {
  const net = network(60);
  for (let tag = 0; tag < 30; tag++) {
    net.announce(net.nodes[Math.floor(net.rng() * 60)], tag);
    net.run(20);
  }
  net.run(3_000);
  for (let tag = 0; tag < 30; tag++) {
    const counts = receptions(net.nodes, tag).filter((c) => c > 0);
    assert.equal(counts.length, 59, `item ${tag} reached all 59 other nodes`);
    assert.ok(counts.every((c) => c === 1), `item ${tag} delivered once per node`);
  }
});

Deno.test("core: a run is determined by its seed", () => {
  const trace = (seed: number) => {
    const net = network(20, { seed });
    net.announce(net.nodes[3], 7);
    net.run(1_000);
    return net.nodes.map((n) =>
      `${n.core.peerIdentities.sort().join(",")}@${n.received.get(7)?.first}`
    )
      .join(";");
  };
  assert.equal(trace(5), trace(5));
  assert.notEqual(trace(5), trace(6));
});

Deno.test("core: TTL 1 reaches only the origin's neighbours, TTL 2 at most two hops", () => {
  // Where each copy came from, not a snapshot of the neighbours: a session
  // that opens after the announce legitimately gets the item offered too.
  const copies: { tag: number; from: SimNode; to: SimNode }[] = [];
  const net = network(40, {
    observer: {
      itemArrived: (to, from, message) => copies.push({ tag: tagOf(message.data), from, to }),
    },
  });
  const origin = net.nodes[7];
  const neighbours = net.nodes.filter((n) => origin.core.peerIdentities.includes(n.identity));
  net.announce(origin, 1, { ttl: 1 });
  net.run(2_000);
  const ttl1 = copies.filter((c) => c.tag === 1);
  assert.ok(ttl1.length >= neighbours.length);
  assert.ok(ttl1.every((c) => c.from === origin), "TTL 1: only the origin sent a copy");
  for (const n of neighbours) assert.equal(n.received.get(1)?.count, 1);
  assert.ok(receptions(net.nodes, 1, origin).every((c) => c <= 1), "TTL 1: at most once each");

  net.announce(origin, 2, { ttl: 2 });
  net.run(2_000);
  const ttl2 = copies.filter((c) => c.tag === 2);
  const firstHop = new Set(ttl2.filter((c) => c.from === origin).map((c) => c.to));
  assert.ok(ttl2.some((c) => c.from !== origin), "TTL 2: some copies travel a second hop");
  for (const c of ttl2) {
    assert.ok(
      c.from === origin || firstHop.has(c.from),
      `node ${c.from.index} forwarded item 2 without getting it from the origin`,
    );
  }
  for (const n of neighbours) assert.equal(n.received.get(2)?.count, 1);
});

Deno.test("core: an item judged invalid by a node's module goes no further than that node", () => {
  const net = new SimNetwork({ seed: 3, delay: () => 2 });
  // A line a - b - c (no spares: nobody learns of anyone else): b's module rejects everything.
  const config = { degree: 1, passiveViewSize: 0 };
  const a = net.addNode({ config });
  const b = net.addNode({ config, bootstrap: [a], validate: () => false });
  const c = net.addNode({ config, bootstrap: [b] });
  net.run(2_000);
  assert.deepEqual(b.core.peerIdentities.sort(), [a.identity, c.identity].sort());
  net.announce(a, 9);
  net.run(3_000);
  assert.equal(b.received.get(9)?.count, 1, "b's module was asked");
  assert.equal(c.received.get(9), undefined, "c never got it through b");
  assert.equal(b.core.stats().spreading.invalid, 1);
});

Deno.test("core: items of a type with no local subscriber are not forwarded", () => {
  const net = new SimNetwork({ seed: 4, delay: () => 2 });
  const config = { degree: 1, passiveViewSize: 0 };
  const a = net.addNode({ config, dataTypes: [1, 2] });
  const b = net.addNode({ config, bootstrap: [a], dataTypes: [1] });
  const c = net.addNode({ config, bootstrap: [b], dataTypes: [1, 2] });
  net.run(2_000);
  net.announce(a, 5, { dataType: 2 });
  net.run(2_000);
  assert.equal(c.received.get(5), undefined);
  assert.equal(b.core.stats().spreading.unsubscribed, 1);
});

Deno.test("core: anti-entropy heals a partition; every item reaches every node once", () => {
  const net = network(24, { seed: 9 });
  const left = (n: SimNode) => n.index % 2 === 0;
  net.partition((a, b) => left(a) !== left(b));
  net.run(3_000);
  assert.ok(
    net.nodes.every((n) =>
      n.core.peerIdentities.every((p) => {
        const other = net.nodes.find((m) => m.identity === p)!;
        return left(other) === left(n);
      })
    ),
    "no session crosses the cut",
  );
  // Items on both sides while cut.
  const origins: SimNode[] = [];
  for (let tag = 0; tag < 10; tag++) {
    const side = net.nodes.filter((n) => left(n) === (tag % 2 === 0));
    origins.push(side[Math.floor(net.rng() * side.length)]);
    net.announce(origins[tag], 100 + tag);
    net.run(50);
  }
  net.run(3_000);
  for (let tag = 0; tag < 10; tag++) {
    const otherSide = net.nodes.filter((n) => left(n) !== (tag % 2 === 0));
    assert.ok(otherSide.every((n) => !n.received.has(100 + tag)), `item ${tag} stayed on its side`);
  }
  // Heal: links come back (dials succeed again) and the stores are offered.
  net.heal();
  net.run(20_000);
  assert.ok(connected(net.nodes), "the overlay is one again");
  for (let tag = 0; tag < 10; tag++) {
    const counts = receptions(net.nodes, 100 + tag, origins[tag]);
    assert.ok(counts.every((c) => c === 1), `item ${tag} reached every node once: ${counts}`);
  }
});

Deno.test("core: an item announced while its node has no peer spreads once it joins", () => {
  const net = network(10, { seed: 11 });
  const loner = net.addNode(); // no bootstrapper: no peer
  net.run(1_000);
  assert.equal(loner.core.peerIdentities.length, 0);
  net.announce(loner, 42);
  net.run(1_000);
  assert.ok(net.nodes.every((n) => !n.received.has(42)));
  // Someone learns of the loner and dials it (as after a restart, through its peers file).
  net.nodes[0].core.start({
    peers: [{ identity: loner.identity, address: loner.address }],
    bans: [],
  });
  net.run(10_000);
  assert.ok(loner.core.peerIdentities.length > 0, "the loner got a peer");
  const counts = receptions(net.nodes, 42, loner);
  assert.ok(counts.every((c) => c === 1), `every node got it once: ${counts}`);
});

Deno.test("core: killing 30% of the nodes leaves every live node served", () => {
  const net = network(50, { seed: 13 });
  const victims = net.nodes.filter((_, i) => i % 10 < 3 && i > 0);
  for (const node of victims) net.kill(node);
  net.run(10_000);
  const live = net.nodes.filter((n) => n.alive);
  assert.ok(connected(live), "the survivors reconnected");
  for (let tag = 0; tag < 10; tag++) {
    net.announce(live[Math.floor(net.rng() * live.length)], 200 + tag);
    net.run(50);
  }
  net.run(5_000);
  for (let tag = 0; tag < 10; tag++) {
    const got = live.filter((n) => (n.received.get(200 + tag)?.count ?? 0) === 1).length;
    assert.equal(got, live.length - 1, `item ${tag}: ${got} of ${live.length - 1}`);
  }
});

Deno.test("core: a restarted node rejoins from its saved state and is served again", () => {
  const net = network(20, { seed: 17 });
  const node = net.nodes[12];
  net.run(31_000); // the core saves its state every 30 s
  assert.ok(node.saved && node.saved.peers.length > 0, "state saved");
  net.kill(node);
  net.run(2_000);
  net.restart(node);
  net.run(5_000);
  assert.ok(node.core.peerIdentities.length >= 5, "rejoined with its outbound peers");
  net.announce(net.nodes[3], 300);
  net.run(2_000);
  assert.equal(node.received.get(300)?.count, 1);
});

Deno.test("core: a module that never answers stops delaying forwarding after three timeouts", () => {
  const net = new SimNetwork({ seed: 19, delay: () => 2 });
  const config = { degree: 1, passiveViewSize: 0, validationTimeoutMs: 1_000 };
  const a = net.addNode({ config });
  // b has a module that never answers; items still need b's other module's verdict.
  const b = net.addNode({ config, bootstrap: [a], validationDelayMs: Infinity });
  const c = net.addNode({ config, bootstrap: [b] });
  net.run(2_000);
  // With b's only module silent, b decides "unanswered" at the timeout: not forwarded.
  for (let tag = 0; tag < 4; tag++) {
    net.announce(a, tag);
    net.run(1_500);
  }
  assert.equal(b.core.stats().validationsTimedOut, 3, "three timeouts, then no more waiting");
  assert.equal(b.core.stats().spreading.unanswered, 4);
  assert.equal(c.received.size, 0, "an unvalidated item is not forwarded");
});

Deno.test("core: 10 Sybils joining through a victim cannot eclipse a newcomer (40 seeds)", () => {
  let kept = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const net = new SimNetwork({ seed, delay: () => 5 });
    const honest = [net.addNode()];
    for (let i = 1; i < 8; i++) {
      honest.push(net.addNode({ bootstrap: [honest[Math.floor(net.rng() * i)]] }));
      net.run(50);
    }
    net.run(120_000); // an honest network that has run for two minutes
    const victim = honest[0];
    // Censoring Sybils (no module: they forward nothing) bootstrap through the victim.
    const sybils = Array.from(
      { length: 10 },
      () => net.addNode({ bootstrap: [victim], dataTypes: [] }),
    );
    net.run(5_000);
    const newcomer = net.addNode({ bootstrap: [victim] });
    net.run(10_000);
    const bad = new Set(sybils.map((s) => s.identity));
    const honestOutbound = newcomer.core.peers()
      .filter((p) => p.direction === "outbound" && !bad.has(p.identity)).length;
    for (let k = 0; k < 5; k++) net.announce(newcomer, 500 + k);
    net.run(5_000);
    const reachedAll = [0, 1, 2, 3, 4].every((k) => honest.every((h) => h.received.has(500 + k)));
    if (honestOutbound >= 1 && reachedAll) kept++;
  }
  assert.equal(
    kept,
    40,
    `${kept}/40 runs: an honest outbound peer and every item at every honest node`,
  );
});

Deno.test("core: at debug level a pulled item is logged", () => {
  const lines: string[] = [];
  const log = new Logger("debug", "x", (_level, line) => lines.push(line));
  const net = new SimNetwork({ seed: 23, delay: () => 2 });
  // Four nodes, degree 1: the origin pushes to one peer and advertises to the
  // others, whose slow modules leave the pull wait time to run out first.
  const config = { degree: 1 };
  const origin = net.addNode({ config });
  const nodes = [origin];
  for (let i = 0; i < 3; i++) {
    nodes.push(net.addNode({ config, bootstrap: [origin], validationDelayMs: 100, log }));
  }
  net.run(3_000);
  net.announce(origin, 77);
  net.run(1_000);
  const pulled = nodes.reduce((sum, n) => sum + n.core.stats().spreading.pulled, 0);
  assert.ok(pulled >= 1, "an item was pulled");
  assert.ok(lines.some((line) => /item pulled item=[0-9a-f]{16} from=/.test(line)));
});
