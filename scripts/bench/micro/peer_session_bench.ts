/**
 * The whole transport path between two peer sessions over loopback TCP:
 * encode, seal, write, read, reassemble, open, decode. One ITEM of 1 KiB at a
 * time (each waits for the previous to arrive: latency and per-message cost),
 * a burst of 100 ITEMs (batched into frames), and a burst of 100 one-ID IHAVEs.
 *
 * @module
 */

import { type PeerMessage, PeerMessageType } from "../../../lib/codec/peer_messages.ts";
import { generateHostKeyPem, parseHostKeyPem } from "../../../lib/hostkey.ts";
import { silentLogger } from "../../../lib/log.ts";
import { powEpoch } from "../../../lib/protocol/proof_of_work.ts";
import { PeerSession, type PeerSessionOptions } from "../../../lib/transport/peer_session.ts";

async function options(): Promise<PeerSessionOptions> {
  const hostKey = await parseHostKeyPem(await generateHostKeyPem(1024), "hostkey", {
    minBits: 1024,
  });
  return {
    hostKey,
    proofOfWork: () => ({ epoch: powEpoch(), nonce: 0n }),
    powDifficulty: 0,
    listenAddress: { hostname: "127.0.0.1", port: 9 },
    handshakeTimeoutMs: 5000,
    idleTimeoutMs: 600_000,
    maxQueuedBytes: 64 * 1024 * 1024,
    minPeerKeyBits: 1024,
    log: silentLogger,
  };
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
const [serverOptions, clientOptions] = await Promise.all([options(), options()]);
const accepted = listener.accept().then((conn) =>
  PeerSession.establish(conn, "inbound", serverOptions)
);
const dialed = PeerSession.establish(
  await Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }),
  "outbound",
  clientOptions,
);
const [receiver, sender] = await Promise.all([accepted, dialed]);
listener.close();

let received = 0;
let waiter: { count: number; resolve: () => void } | undefined;
receiver.attach({
  onMessage: () => {
    received++;
    if (waiter && received >= waiter.count) waiter.resolve();
  },
  onClose: () => {},
});
sender.attach({ onMessage: () => {}, onClose: () => {} });

function arrived(count: number): Promise<void> {
  if (received >= count) return Promise.resolve();
  return new Promise((resolve) => waiter = { count, resolve });
}

const item: PeerMessage = {
  type: PeerMessageType.Item,
  id: 1n,
  nonce: 2n,
  ttl: 0,
  hops: 1,
  dataType: 1,
  data: crypto.getRandomValues(new Uint8Array(1024)),
};
const ihave: PeerMessage = { type: PeerMessageType.IHave, ids: [7n] };

Deno.bench("100 ITEMs of 1 KiB, one at a time", { group: "session" }, async () => {
  for (let i = 0; i < 100; i++) {
    sender.send(item);
    await arrived(received + 1);
  }
});

Deno.bench("100 ITEMs of 1 KiB in one burst", { group: "session" }, async () => {
  const target = received + 100;
  for (let i = 0; i < 100; i++) sender.send(item);
  await arrived(target);
});

Deno.bench("100 IHAVEs of one ID in one burst", { group: "session" }, async () => {
  const target = received + 100;
  for (let i = 0; i < 100; i++) sender.send(ihave);
  await arrived(target);
});

Deno.bench("16 ITEMs of 60 KiB in one burst", { group: "session" }, async () => {
  const big: PeerMessage = { ...item, data: new Uint8Array(60 * 1024) };
  const target = received + 16;
  for (let i = 0; i < 16; i++) sender.send(big);
  await arrived(target);
});

globalThis.addEventListener("unload", () => {
  void sender.close("bench done");
  void receiver.close("bench done");
});
