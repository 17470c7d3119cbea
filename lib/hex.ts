/**
 * Hex encoding of identities and other bytes (hot in peer exchange: every
 * descriptor crosses it), table-driven.
 *
 * @module
 */

const BYTE_TO_HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i;
  HEX_VALUE["0123456789ABCDEF".charCodeAt(i)] = i;
}

/** Lower-case hex of `bytes`. */
export function identityHex(bytes: Uint8Array): string {
  let hex = "";
  for (let i = 0; i < bytes.length; i++) hex += BYTE_TO_HEX[bytes[i]];
  return hex;
}

/**
 * Bytes of an even-length hex string; throws RangeError on any other
 * character or an odd length.
 */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new RangeError("hex string of odd length");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const high = HEX_VALUE[hex.charCodeAt(2 * i) & 127];
    const low = HEX_VALUE[hex.charCodeAt(2 * i + 1) & 127];
    if (high < 0 || low < 0 || hex.charCodeAt(2 * i) > 127 || hex.charCodeAt(2 * i + 1) > 127) {
      throw new RangeError(`not a hex string: "${hex.slice(0, 16)}"`);
    }
    out[i] = (high << 4) | low;
  }
  return out;
}
