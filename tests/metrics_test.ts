/**
 * The status endpoint of real nodes on 127.0.0.1: `/metrics` in the Prometheus
 * text format (parsed here independently of prom-client), `/status` peers with
 * age, bytes and score, the page's security headers and the Host check.
 */

import assert from "node:assert/strict";
import {
  DROP_REASONS,
  HANDSHAKE_FAILURE_REASONS,
  type NodeMetrics,
  PEER_MESSAGE_TYPES,
} from "../lib/transport/metrics.ts";
import { MetricsRenderer } from "../lib/transport/metrics_renderer.ts";
import { PeerMessageType } from "../lib/codec/peer_messages.ts";
import { CLUSTER_TYPE, receivedCount, startMember, stopMembers } from "./support/cluster.ts";
import { startTestNode, waitUntil } from "./support/nodes.ts";

/** One sample line of the exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition format (0.0.4): samples, and the TYPE of each family. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/
      .exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    const value = match[3] === "+Inf" ? Infinity : Number(match[3]);
    assert.ok(!Number.isNaN(value), `bad value in ${line}`);
    samples.push({ name: match[1], labels, value });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0].value;
}

const ZERO_METRICS: NodeMetrics = {
  identity: "ab".repeat(32),
  peers: { inbound: 0, outbound: 0 },
  knownPeers: 0,
  apiClients: 0,
  itemsStored: 0,
  itemsAnnounced: 0,
  itemsReceived: 0,
  itemsDuplicate: 0,
  itemsPulled: 0,
  itemsSent: 0,
  notificationsSent: 0,
  validationsPending: 0,
  validationsTimedOut: 0,
  drops: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as NodeMetrics["drops"],
  peersBanned: 0,
  connectionsRefused: 0,
  offersIgnored: 0,
  extraPathDials: 0,
  silenceAlarms: 0,
  feelers: 0,
  feelersKept: 0,
  feelersHeard: 0,
  sessionsEvicted: 0,
  newcomersReferred: 0,
  deliverySessions: 0,
  deliverySessionsGranted: 0,
  handshakeFailures: Object.fromEntries(
    HANDSHAKE_FAILURE_REASONS.map((r) => [r, 0]),
  ) as NodeMetrics["handshakeFailures"],
  bytesIn: 0,
  bytesOut: 0,
  peerReads: 0,
  peerWrites: 0,
  messagesReceived: Object.fromEntries(
    PEER_MESSAGE_TYPES.map((t) => [t, 0]),
  ) as NodeMetrics["messagesReceived"],
  hopCounts: [],
};

Deno.test("the message type label covers every peer message type handled after the handshake", () => {
  const sessionOnly = ["Hello", "Auth", "Goodbye"];
  assert.deepEqual(
    [...PEER_MESSAGE_TYPES].sort(),
    Object.keys(PeerMessageType).filter((name) => !sessionOnly.includes(name)).sort(),
  );
});

Deno.test("the renderer writes every NodeMetrics field as a typed sample", async () => {
  const renderer = new MetricsRenderer("9.9.9");
  const hopCounts = [0, 5, 3, 0, 2];
  hopCounts[40] = 1; // beyond the last bucket: only in +Inf
  const text = await renderer.render({
    ...ZERO_METRICS,
    peers: { inbound: 2, outbound: 3 },
    itemsReceived: 17,
    itemsDuplicate: 4,
    drops: { ...ZERO_METRICS.drops, invalid: 6, announce_queue_full: 1 },
    handshakeFailures: { ...ZERO_METRICS.handshakeFailures, timeout: 7 },
    bytesIn: 123456789,
    peerReads: 41,
    peerWrites: 43,
    extraPathDials: 2,
    silenceAlarms: 3,
    feelers: 6,
    feelersKept: 1,
    feelersHeard: 4,
    sessionsEvicted: 5,
    newcomersReferred: 8,
    deliverySessions: 3,
    deliverySessionsGranted: 2,
    messagesReceived: { ...ZERO_METRICS.messagesReceived, IHave: 9, Item: 12 },
    hopCounts,
  });
  assert.match(renderer.contentType, /^text\/plain; version=0\.0\.4/);
  const { samples, types } = parseExposition(text);
  assert.equal(value(samples, "gossip_node_info", { version: "9.9.9" }), 1);
  assert.equal(
    samples.find((s) => s.name === "gossip_node_info")!.labels.identity,
    "ab".repeat(32),
  );
  assert.equal(value(samples, "gossip_peers", { direction: "inbound" }), 2);
  assert.equal(value(samples, "gossip_peers", { direction: "outbound" }), 3);
  assert.equal(value(samples, "gossip_items_received_total"), 17);
  assert.equal(value(samples, "gossip_items_duplicate_total"), 4);
  assert.equal(value(samples, "gossip_peer_received_bytes_total"), 123456789);
  assert.equal(value(samples, "gossip_peer_reads_total"), 41);
  assert.equal(value(samples, "gossip_peer_writes_total"), 43);
  assert.equal(value(samples, "gossip_extra_path_dials_total"), 2);
  assert.equal(value(samples, "gossip_silence_alarms_total"), 3);
  assert.equal(value(samples, "gossip_feelers_total"), 6);
  assert.equal(value(samples, "gossip_feelers_kept_total"), 1);
  assert.equal(value(samples, "gossip_feelers_heard_total"), 4);
  assert.equal(value(samples, "gossip_peer_sessions_evicted_total"), 5);
  assert.equal(value(samples, "gossip_peer_newcomers_referred_total"), 8);
  assert.equal(value(samples, "gossip_peer_delivery_sessions_total"), 3);
  assert.equal(value(samples, "gossip_peer_delivery_sessions_granted_total"), 2);
  assert.equal(value(samples, "gossip_peer_messages_received_total", { type: "IHave" }), 9);
  assert.equal(value(samples, "gossip_peer_messages_received_total", { type: "Item" }), 12);
  for (const type of PEER_MESSAGE_TYPES) {
    value(samples, "gossip_peer_messages_received_total", { type });
  }
  assert.equal(value(samples, "gossip_items_dropped_total", { reason: "invalid" }), 6);
  assert.equal(value(samples, "gossip_items_dropped_total", { reason: "announce_queue_full" }), 1);
  for (const reason of DROP_REASONS) value(samples, "gossip_items_dropped_total", { reason });
  assert.equal(value(samples, "gossip_handshake_failures_total", { reason: "timeout" }), 7);
  for (const reason of HANDSHAKE_FAILURE_REASONS) {
    value(samples, "gossip_handshake_failures_total", { reason });
  }
  // Cumulative buckets, sum and count.
  assert.equal(types.get("gossip_item_hops"), "histogram");
  assert.equal(value(samples, "gossip_item_hops_bucket", { le: "1" }), 5);
  assert.equal(value(samples, "gossip_item_hops_bucket", { le: "2" }), 8);
  assert.equal(value(samples, "gossip_item_hops_bucket", { le: "3" }), 8);
  assert.equal(value(samples, "gossip_item_hops_bucket", { le: "4" }), 10);
  assert.equal(value(samples, "gossip_item_hops_bucket", { le: "32" }), 10);
  assert.equal(value(samples, "gossip_item_hops_bucket", { le: "+Inf" }), 11);
  assert.equal(value(samples, "gossip_item_hops_count"), 11);
  assert.equal(value(samples, "gossip_item_hops_sum"), 5 + 6 + 8 + 40);
  // Counters end in _total and are typed so; every sample's family has a TYPE.
  for (const sample of samples) {
    const family = sample.name.replace(/_(bucket|sum|count)$/, "");
    const type = types.get(sample.name) ?? types.get(family);
    assert.ok(type, `no TYPE for ${sample.name}`);
    if (sample.name.endsWith("_total")) assert.equal(type, "counter", sample.name);
  }
  // A second render with new values replaces the old ones (no stale label sets).
  const again = parseExposition(await renderer.render(ZERO_METRICS)).samples;
  assert.equal(value(again, "gossip_items_dropped_total", { reason: "invalid" }), 0);
  assert.equal(value(again, "gossip_item_hops_count"), 0);
  assert.equal(value(again, "gossip_items_received_total"), 0);
});

Deno.test("GET /metrics and /status of a node with a peer and a delivered item", async () => {
  const a = await startMember(undefined, {
    config: { statusAddress: { hostname: "127.0.0.1", port: 0 } },
  });
  const b = await startMember(a.node);
  try {
    await waitUntil(
      () => a.node.peerIdentities.length === 1 && b.node.peerIdentities.length === 1,
      5000,
      "a and b connected",
    );
    const text = "metrics item";
    await b.module.announce(CLUSTER_TYPE, new TextEncoder().encode(text));
    await waitUntil(() => receivedCount(a, text) === 1, 5000, "a received the item");
    await waitUntil(() => a.node.stats().local.verdicts.valid === 1, 5000, "a validated it");
    const base = `http://127.0.0.1:${a.node.statusAddress!.port}`;

    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const { samples } = parseExposition(await response.text());
    const info = samples.find((s) => s.name === "gossip_node_info")!;
    assert.equal(info.labels.identity, a.node.identityHex);
    assert.equal(value(samples, "gossip_peers", { direction: "inbound" }), 1);
    assert.equal(value(samples, "gossip_peers", { direction: "outbound" }), 0);
    assert.equal(value(samples, "gossip_api_clients"), 1);
    assert.equal(value(samples, "gossip_items_received_total"), 1);
    assert.equal(value(samples, "gossip_items_stored"), 1);
    assert.equal(value(samples, "gossip_notifications_sent_total"), 1);
    assert.ok(value(samples, "gossip_peer_received_bytes_total") > 0);
    assert.ok(value(samples, "gossip_peer_sent_bytes_total") > 0);
    assert.equal(value(samples, "gossip_peer_messages_received_total", { type: "Item" }), 1);
    // At least the handshake and the ITEM frame were read, and the handshake written.
    assert.ok(value(samples, "gossip_peer_reads_total") >= 2);
    assert.ok(value(samples, "gossip_peer_writes_total") >= 1);
    assert.ok(value(samples, "process_resident_memory_bytes") > 1_000_000);

    const status = await (await fetch(`${base}/status`)).json();
    assert.equal(status.peers.length, 1);
    const peer = status.peers[0];
    assert.equal(peer.identity, b.node.identityHex);
    assert.equal(peer.direction, "inbound");
    assert.equal(peer.address, `127.0.0.1:${b.node.p2pAddress.port}`);
    assert.ok(peer.ageMs >= 0 && peer.ageMs < 60_000, `age ${peer.ageMs}`);
    assert.ok(peer.bytesIn > 0 && peer.bytesOut > 0, JSON.stringify(peer));
    assert.equal(peer.score, 1, "the sender earned a point for the valid item");
    assert.ok(status.bytesIn >= peer.bytesIn);
  } finally {
    await stopMembers([a, b]);
  }
});

/** Sends a raw HTTP/1.1 GET with `host` as the Host header; returns the status code. */
async function statusWithHost(port: number, path: string, host: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const buffer = new Uint8Array(256);
    const n = await conn.read(buffer);
    const head = new TextDecoder().decode(buffer.subarray(0, n ?? 0));
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  } finally {
    conn.close();
  }
}

Deno.test("the status page: security headers, its script allowed by hash, Host names checked", async () => {
  const node = await startTestNode({
    config: { statusAddress: { hostname: "127.0.0.1", port: 0 } },
  });
  try {
    const port = node.statusAddress!.port;
    const response = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    const html = await response.text();
    assert.doesNotMatch(html, /<script[^>]+src=|https?:\/\/(?!www\.w3\.org)/, "self-contained");
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    assert.equal(scripts.length, 1);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(scripts[0]));
    const hash = btoa(String.fromCharCode(...new Uint8Array(digest)));
    const csp = response.headers.get("content-security-policy")!;
    assert.match(csp, /default-src 'none'/);
    assert.ok(csp.includes(`script-src 'sha256-${hash}'`), csp);
    assert.match(csp, /connect-src 'self'/);

    assert.equal(await statusWithHost(port, "/status", `127.0.0.1:${port}`), 200);
    assert.equal(await statusWithHost(port, "/metrics", `localhost:${port}`), 200);
    assert.equal(await statusWithHost(port, "/status", `[::1]:${port}`), 200);
    // A page on another site that rebinds its name to 127.0.0.1 sends its own name.
    assert.equal(await statusWithHost(port, "/status", `attacker.example:${port}`), 421);
    assert.equal(await statusWithHost(port, "/", "rebind.attacker.example"), 421);
    const head = await fetch(`http://127.0.0.1:${port}/status`, { method: "HEAD" });
    assert.equal(head.status, 200);
    await head.body?.cancel();
  } finally {
    await node.close();
  }
});
