/**
 * Sealing and opening one peer frame (AES-256-GCM), at the sizes the overlay
 * sends: a 40-byte IHAVE/PING frame, a 1.1 KiB item frame, 16 KiB and 64 KiB
 * bulk frames. `FrameSealer`/`FrameOpener` as used by sessions, next to the
 * two ways it can be done in Deno (what ASYNC_AEAD_MIN_BYTES chooses between).
 *
 * `deno task bench:micro` runs it (deno bench).
 *
 * @module
 */

import { createCipheriv, createDecipheriv } from "node:crypto";
import { FrameOpener, FrameSealer } from "../../../lib/transport/peer_crypto.ts";

const KEY = crypto.getRandomValues(new Uint8Array(32));
const SIZES: [string, number][] = [["40 B", 40], ["1.1 KiB", 1126], ["16 KiB", 16_384], [
  "64 KiB",
  65_536,
]];

function nonce(counter: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(12);
  new DataView(out.buffer).setUint32(8, counter);
  return out;
}

const webKey = await crypto.subtle.importKey("raw", KEY, "AES-GCM", false, [
  "encrypt",
  "decrypt",
]);

for (const [label, size] of SIZES) {
  const plaintext = crypto.getRandomValues(new Uint8Array(size));
  let counter = 0;

  // The session's path: seal a frame, open it with the peer's opener.
  const sealer = new FrameSealer(KEY);
  const opener = new FrameOpener(KEY);
  Deno.bench(
    `FrameSealer + FrameOpener, ${label}`,
    { group: `seal+open ${label}`, baseline: true },
    async () => {
      const frame = await sealer.sealFrame(plaintext);
      await opener.open(frame.subarray(4));
    },
  );

  Deno.bench(
    `node:crypto one-shot cipher per frame, ${label}`,
    { group: `seal+open ${label}` },
    () => {
      const iv = nonce(counter++);
      const cipher = createCipheriv("aes-256-gcm", KEY, iv);
      const body = cipher.update(plaintext);
      cipher.final();
      const tag = cipher.getAuthTag();
      const decipher = createDecipheriv("aes-256-gcm", KEY, iv);
      decipher.setAuthTag(tag);
      decipher.update(body);
      decipher.final();
    },
  );

  Deno.bench(
    `Web Crypto, key imported once, ${label}`,
    { group: `seal+open ${label}` },
    async () => {
      const iv = nonce(counter++);
      const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, webKey, plaintext);
      await crypto.subtle.decrypt({ name: "AES-GCM", iv }, webKey, sealed);
    },
  );
}
