/** Black-box tests of one node's Gossip API over real TCP on 127.0.0.1. */

import assert from "node:assert/strict";
import {
  announceBytes,
  notifyBytes,
  rawMessage,
  TestApiClient,
  validationBytes,
} from "./support/api_client.ts";
import { startTestNode } from "./support/nodes.ts";
import type { GossipNode } from "../lib/node.ts";

const DATA = new TextEncoder().encode("hello gossip");

async function withNode(fn: (node: GossipNode, port: number) => Promise<void>): Promise<void> {
  const node = await startTestNode();
  const clients: TestApiClient[] = [];
  try {
    await fn(node, node.apiAddress.port);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await node.close();
  }
}

/** Sends NOTIFY and ANNOUNCE from a third client to prove the subscription is active. */
async function subscribed(port: number, dataType: number): Promise<TestApiClient> {
  const client = await TestApiClient.connect(port);
  await client.notify(dataType);
  return client;
}

Deno.test("NOTIFICATION reaches other subscribers but not the announcer, byte-exact", async () => {
  await withNode(async (_node, port) => {
    const subscriber = await subscribed(port, 4242);
    const announcer = await subscribed(port, 4242);
    const other = await subscribed(port, 7);
    try {
      await announcer.announce(4242, DATA, 3);
      const message = await subscriber.next();
      assert.equal(message.type, 502);
      assert.equal(message.size, 8 + DATA.length);
      assert.equal(message.dataType, 4242);
      assert.deepEqual(message.data, DATA);
      // size | 502 | id | type | data, exactly.
      assert.deepEqual(message.raw.subarray(0, 4), new Uint8Array([0, 20, 0x01, 0xf6]));
      assert.deepEqual(message.raw.subarray(6, 8), new Uint8Array([0x10, 0x92]));
      assert.equal((await announcer.collect(1, 200)).length, 0, "announcer is not notified");
      assert.equal((await other.collect(1, 50)).length, 0, "other data types are not notified");
    } finally {
      await Promise.all([subscriber.close(), announcer.close(), other.close()]);
    }
  });
});

Deno.test("message IDs are fresh per NOTIFICATION and VALIDATION is accepted", async () => {
  await withNode(async (_node, port) => {
    const subscriber = await subscribed(port, 1);
    const announcer = await TestApiClient.connect(port);
    try {
      const ids = new Set<number>();
      for (let i = 0; i < 20; i++) await announcer.announce(1, new Uint8Array([i]));
      for (let i = 0; i < 20; i++) {
        const message = await subscriber.next();
        assert.deepEqual(message.data, new Uint8Array([i]), "order preserved");
        ids.add(message.messageId);
        await subscriber.validate(message.messageId, i % 2 === 0);
      }
      assert.equal(ids.size, 20, "20 distinct message IDs");
      // The connection stays open after valid and invalid answers.
      await announcer.announce(1, DATA);
      assert.deepEqual((await subscriber.next()).data, DATA);
    } finally {
      await Promise.all([subscriber.close(), announcer.close()]);
    }
  });
});

Deno.test("ANNOUNCE immediately followed by EOF is still delivered", async () => {
  await withNode(async (_node, port) => {
    const subscriber = await subscribed(port, 99);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      // The official test client's pattern: NOTIFY then ANNOUNCE in one write, then close.
      const bytes = new Uint8Array([...notifyBytes(98), ...announceBytes(1, 99, DATA)]);
      await conn.write(bytes);
      conn.close();
      const message = await subscriber.next();
      assert.deepEqual(message.data, DATA);
    } finally {
      await subscriber.close();
    }
  });
});

Deno.test("messages split across writes and coalesced in one write are framed", async () => {
  await withNode(async (_node, port) => {
    const subscriber = await TestApiClient.connect(port);
    const announcer = await TestApiClient.connect(port);
    try {
      // NOTIFY one byte at a time.
      for (const byte of notifyBytes(5)) await subscriber.send(new Uint8Array([byte]));
      await subscriber.send(notifyBytes(6));
      // Wait until the subscription is known: an announce of type 6 arrives.
      await announcer.announce(6, DATA);
      assert.equal((await subscriber.next()).dataType, 6);
      const stream = new Uint8Array([
        ...announceBytes(0, 5, new Uint8Array([1])),
        ...announceBytes(0, 5, new Uint8Array([2, 2])),
        ...announceBytes(0, 5, new Uint8Array(1000).fill(3)),
      ]);
      await announcer.send(stream.subarray(0, 3));
      await announcer.send(stream.subarray(3, 15));
      await announcer.send(stream.subarray(15));
      const got = [await subscriber.next(), await subscriber.next(), await subscriber.next()];
      assert.deepEqual(got.map((m) => m.data.length), [1, 2, 1000]);
    } finally {
      await Promise.all([subscriber.close(), announcer.close()]);
    }
  });
});

Deno.test("largest ANNOUNCE (65535 bytes) is delivered intact", async () => {
  await withNode(async (_node, port) => {
    const subscriber = await subscribed(port, 3);
    const announcer = await TestApiClient.connect(port);
    try {
      const data = new Uint8Array(65535 - 8).map((_, i) => i % 251);
      await announcer.announce(3, data);
      const message = await subscriber.next();
      assert.equal(message.size, 65535);
      assert.deepEqual(message.data, data);
    } finally {
      await Promise.all([subscriber.close(), announcer.close()]);
    }
  });
});

const illFormed: [string, Uint8Array][] = [
  ["size below the header", new Uint8Array([0, 3, 1, 0xf5])],
  ["size 0", new Uint8Array([0, 0, 1, 0xf5])],
  ["NOTIFY of 9 bytes", rawMessage(501, new Uint8Array([0, 0, 0, 1, 9]))],
  ["NOTIFY of 7 bytes", rawMessage(501, new Uint8Array([0, 0, 1]))],
  ["VALIDATION of 9 bytes", rawMessage(503, new Uint8Array([0, 0, 0, 1, 0]))],
  ["ANNOUNCE without data", rawMessage(500, new Uint8Array([1, 0, 0, 1]))],
  ["ANNOUNCE shorter than 8", rawMessage(500, new Uint8Array([1, 0]))],
  ["unknown type 504", rawMessage(504, new Uint8Array([0, 0, 0, 0]))],
  ["unknown type 0", rawMessage(0, new Uint8Array([0, 0, 0, 0]))],
  ["client sends NOTIFICATION", rawMessage(502, new Uint8Array([0, 1, 0, 1, 42]))],
  ["VALIDATION for an unknown message ID", validationBytes(1234, true)],
];

for (const [name, bytes] of illFormed) {
  Deno.test(`ill-formed input closes only that connection: ${name}`, async () => {
    await withNode(async (_node, port) => {
      const bystander = await subscribed(port, 11);
      const announcer = await TestApiClient.connect(port);
      const offender = await TestApiClient.connect(port);
      try {
        await offender.send(bytes);
        assert.equal(await offender.waitClosed(5000), true, "offender is disconnected");
        await announcer.announce(11, DATA);
        assert.deepEqual((await bystander.next()).data, DATA, "others are unaffected");
      } finally {
        await Promise.all([bystander.close(), announcer.close(), offender.close()]);
      }
    });
  });
}

Deno.test("subscriptions end when the connection closes", async () => {
  await withNode(async (node, port) => {
    const leaving = await subscribed(port, 21);
    const staying = await subscribed(port, 21);
    const announcer = await TestApiClient.connect(port);
    try {
      await leaving.close();
      await announcer.announce(21, DATA);
      assert.deepEqual((await staying.next()).data, DATA);
      assert.equal(
        node.stats().local.notificationsSent,
        1,
        "only the remaining subscriber was notified",
      );
    } finally {
      await Promise.all([staying.close(), announcer.close()]);
    }
  });
});

Deno.test("a subscriber that never reads does not stall others", async () => {
  const node = await startTestNode({ node: { maxApiQueueBytes: 64 * 1024 } });
  const port = node.apiAddress.port;
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = await subscribed(port, 31);
  const announcer = await TestApiClient.connect(port);
  try {
    await stalled.write(notifyBytes(31));
    await reader.notify(31);
    const data = new Uint8Array(60_000);
    // Lock-step: 12 MB in total, far beyond the stalled socket's kernel buffers.
    for (let i = 0; i < 200; i++) {
      await announcer.announce(31, data);
      assert.equal((await reader.next()).data.length, 60_000);
    }
    assert.ok(
      node.stats().local.notificationsDropped > 0,
      "the stalled subscriber's surplus is dropped",
    );
  } finally {
    stalled.close();
    await Promise.all([reader.close(), announcer.close()]);
    await node.close();
  }
});

Deno.test("the API listens on IPv6 loopback", async () => {
  const node = await startTestNode({ config: { apiAddress: { hostname: "::1", port: 0 } } });
  try {
    const port = node.apiAddress.port;
    const subscriber = await TestApiClient.connect(port, "::1");
    const announcer = await TestApiClient.connect(port, "::1");
    try {
      await subscriber.notify(8);
      await announcer.announce(8, DATA);
      assert.deepEqual((await subscriber.next()).data, DATA);
    } finally {
      await Promise.all([subscriber.close(), announcer.close()]);
    }
  } finally {
    await node.close();
  }
});

Deno.test("NOTIFY twice for a type still gives one NOTIFICATION per item", async () => {
  await withNode(async (_node, port) => {
    const subscriber = await subscribed(port, 41);
    const announcer = await TestApiClient.connect(port);
    try {
      await subscriber.notify(41);
      await subscriber.notify(42);
      // Type 42 arriving proves both later NOTIFYs were processed (same connection, in order).
      await announcer.announce(42, DATA);
      assert.equal((await subscriber.next()).dataType, 42);
      await announcer.announce(41, DATA);
      const got = await subscriber.collect(2, 300);
      assert.deepEqual(got.map((m) => m.dataType), [41]);
    } finally {
      await Promise.all([subscriber.close(), announcer.close()]);
    }
  });
});
