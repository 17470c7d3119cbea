/** Starting real nodes on loopback for black-box tests. */

import { type GossipOptions, gossipOptions } from "../../lib/config.ts";
import { generateHostKeyPem, type HostKey, parseHostKeyPem } from "../../lib/hostkey.ts";
import { GossipNode, type GossipNodeOptions } from "../../lib/node.ts";
import { Logger, type LogLevel } from "../../lib/log.ts";

/** RSA size of test keys: small for speed; nodes accept it via minPeerKeyBits. */
export const TEST_KEY_BITS = 1024;

/** A fresh small host key. */
export async function testHostKey(): Promise<HostKey> {
  return await parseHostKeyPem(await generateHostKeyPem(TEST_KEY_BITS), "hostkey", {
    minBits: TEST_KEY_BITS,
  });
}

/** Settings of a test node. */
export interface TestNodeOptions {
  config?: Partial<GossipOptions>;
  node?: Partial<GossipNodeOptions>;
  hostKey?: HostKey;
}

/** Log level of test nodes: set GOSSIP_TEST_LOG=debug to see them. */
function testLogger(): Logger {
  const level = (Deno.env.get("GOSSIP_TEST_LOG") ?? "silent") as LogLevel;
  return new Logger(level);
}

/** Starts a node on 127.0.0.1 with ephemeral ports and fast timers. */
export async function startTestNode(options: TestNodeOptions = {}): Promise<GossipNode> {
  const hostKey = options.hostKey ?? await testHostKey();
  const node = new GossipNode({
    hostKey,
    config: gossipOptions({
      apiAddress: { hostname: "127.0.0.1", port: 0 },
      p2pAddress: { hostname: "127.0.0.1", port: 0 },
      degree: 4,
      powDifficulty: 4,
      membershipIntervalMs: 100,
      validationTimeoutMs: 2000,
      ...options.config,
    }),
    minPeerKeyBits: TEST_KEY_BITS,
    log: testLogger().child(""),
    ...options.node,
  });
  await node.start();
  return node;
}

/** Waits until `condition` holds, polling every 10 ms, at most `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
