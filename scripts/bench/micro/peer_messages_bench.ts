/**
 * Encoding and decoding peer messages and the records of a sealed frame: an
 * ITEM of 1 KiB, an IHAVE of one and of 64 IDs, and a batch of 20 records.
 *
 * @module
 */

import {
  decodePeerMessage,
  encodePeerMessage,
  joinRecords,
  type PeerMessage,
  PeerMessageType,
  splitRecords,
} from "../../../lib/codec/peer_messages.ts";

const item: PeerMessage = {
  type: PeerMessageType.Item,
  id: 0x0123456789abcdefn,
  nonce: 7n,
  ttl: 0,
  hops: 3,
  dataType: 0xbe0c,
  data: crypto.getRandomValues(new Uint8Array(1024)),
};
const ihave: PeerMessage = { type: PeerMessageType.IHave, ids: [42n] };
const ihave64: PeerMessage = {
  type: PeerMessageType.IHave,
  ids: Array.from({ length: 64 }, (_, i) => BigInt(i) * 0x10001n),
};

for (
  const [label, message] of [["ITEM 1 KiB", item], ["IHAVE 1 id", ihave], [
    "IHAVE 64 ids",
    ihave64,
  ]] as const
) {
  const encoded = encodePeerMessage(message).slice();
  Deno.bench(`encode ${label}`, { group: "encode" }, () => {
    encodePeerMessage(message);
  });
  Deno.bench(`decode ${label}`, { group: "decode" }, () => {
    decodePeerMessage(encoded);
  });
}

const batch = Array.from(
  { length: 20 },
  (_, i) => encodePeerMessage(i % 4 === 0 ? item : ihave).slice(),
);
const joined = joinRecords(batch);
Deno.bench("joinRecords, 20 messages (5 ITEMs, 15 IHAVEs)", { group: "records" }, () => {
  joinRecords(batch);
});
Deno.bench("splitRecords + decode, 20 messages", { group: "records" }, () => {
  for (const record of splitRecords(joined)) decodePeerMessage(record);
});
