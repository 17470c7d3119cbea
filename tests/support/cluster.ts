/** In-process clusters of real nodes on 127.0.0.1, each with a validating module. */

import type { GossipNode } from "../../lib/node.ts";
import { type ReceivedMessage, TestApiClient } from "./api_client.ts";
import { startTestNode, type TestNodeOptions, waitUntil } from "./nodes.ts";

/** Data type every member subscribes to. */
export const CLUSTER_TYPE = 0x6f70;

/** A node with its local module: a client that subscribes and validates. */
export interface Member {
  node: GossipNode;
  module: TestApiClient;
  /** NOTIFICATIONs received by the module. */
  received: ReceivedMessage[];
}

/** Validators answer invalid for payloads starting with this text. */
export const INVALID_PREFIX = "BAD";

function verdict(message: ReceivedMessage): boolean {
  return new TextDecoder().decode(message.data.subarray(0, 3)) !== INVALID_PREFIX;
}

/** Starts one member, bootstrapping through `bootstrap` if given. */
export async function startMember(
  bootstrap?: GossipNode,
  options: TestNodeOptions = {},
): Promise<Member> {
  const node = await startTestNode({
    ...options,
    config: {
      ...options.config,
      bootstrappers: bootstrap ? [bootstrap.p2pAddress] : options.config?.bootstrappers ?? [],
    },
  });
  const module = await TestApiClient.connect(node.apiAddress.port);
  const received: ReceivedMessage[] = [];
  module.autoValidate(received, verdict);
  await module.notify(CLUSTER_TYPE);
  return { node, module, received };
}

/** Starts `count` members; each bootstraps through a random earlier one. */
export async function startCluster(
  count: number,
  options: TestNodeOptions = {},
  random: () => number = Math.random,
): Promise<Member[]> {
  const members: Member[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const bootstrap = i === 0 ? undefined : members[Math.floor(random() * i)].node;
      members.push(await startMember(bootstrap, options));
    }
  } catch (error) {
    await stopMembers(members);
    throw error;
  }
  return members;
}

/** Closes modules and nodes. */
export async function stopMembers(members: Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.module.close()));
  await Promise.all(members.map((m) => m.node.close()));
}

/** True when the peer graph among `members` is connected. */
export function isConnected(members: Member[]): boolean {
  if (members.length === 0) return true;
  const byId = new Map(members.map((m) => [m.node.identityHex, m]));
  const seen = new Set<string>([members[0].node.identityHex]);
  const queue = [members[0]];
  while (queue.length > 0) {
    const member = queue.pop()!;
    for (const peer of member.node.peerIdentities) {
      const next = byId.get(peer);
      if (next && !seen.has(peer)) {
        seen.add(peer);
        queue.push(next);
      }
    }
  }
  return seen.size === members.length;
}

/** Waits until every member has `minPeers` peers and the overlay is connected. */
export async function waitForOverlay(
  members: Member[],
  minPeers: number,
  timeoutMs = 15_000,
): Promise<void> {
  await waitUntil(
    () => members.every((m) => m.node.peerIdentities.length >= minPeers) && isConnected(members),
    timeoutMs,
    `a connected overlay with ${minPeers}+ peers per node`,
  );
}

/**
 * Waits until the overlay is connected, every member has `minPeers` peers, and
 * no member's peer list has changed for `quietMs`: tests of hop distances take
 * a snapshot of the peer lists and need it to stay true. (Nodes only dial to
 * fill missing outbound slots; a node that cannot fill them because the others
 * are full keeps its peers, and the full nodes refer it away without ever
 * carrying items over those short sessions.)
 */
export async function waitForStableOverlay(
  members: Member[],
  minPeers: number,
  quietMs = 500,
  timeoutMs = 15_000,
): Promise<void> {
  const signature = () => members.map((m) => [...m.node.peerIdentities].sort().join(",")).join(";");
  let last = "";
  let since = Date.now();
  await waitUntil(
    () => {
      const now = signature();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
      return Date.now() - since >= quietMs && isConnected(members) &&
        members.every((m) => m.node.peerIdentities.length >= minPeers);
    },
    timeoutMs,
    `a connected overlay with ${minPeers}+ peers per node, unchanged for ${quietMs} ms`,
  );
}

/** How many times `member`'s module received a payload equal to `text`. */
export function receivedCount(member: Member, text: string): number {
  let count = 0;
  for (const message of member.received) {
    if (message.type === 502 && new TextDecoder().decode(message.data) === text) count++;
  }
  return count;
}

/** Announces `text` from `member`'s module. */
export function announceText(member: Member, text: string, ttl = 0): Promise<void> {
  return member.module.announce(CLUSTER_TYPE, new TextEncoder().encode(text), ttl);
}

/** Waits until every member in `targets` received `text` at least once. */
export function waitForDelivery(
  targets: Member[],
  text: string,
  timeoutMs = 10_000,
): Promise<void> {
  return waitUntil(
    () => targets.every((m) => receivedCount(m, text) >= 1),
    timeoutMs,
    `delivery of "${text}" to ${targets.length} nodes`,
  );
}

/** Resolves after `ms`; only for checking that nothing more arrives. */
export function quietPeriod(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
