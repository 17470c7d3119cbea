/** The read loop shared by the hand-written test clients (framing stays theirs). */

/**
 * Reads `conn` until EOF or an error, reassembling frames: `frameLength`
 * returns a complete frame's length once its header is buffered (undefined
 * while it is not, and it may throw to end reading); each frame goes to
 * `onFrame`. Closes `conn` at the end.
 */
export async function readFrames(
  conn: Deno.Conn,
  frameLength: (buffered: Uint8Array) => number | undefined,
  onFrame: (frame: Uint8Array) => void,
): Promise<void> {
  const chunk = new Uint8Array(65536);
  let buffer = new Uint8Array(0);
  try {
    for (;;) {
      const n = await conn.read(chunk);
      if (n === null) break;
      const merged = new Uint8Array(buffer.length + n);
      merged.set(buffer);
      merged.set(chunk.subarray(0, n), buffer.length);
      buffer = merged;
      for (;;) {
        const length = frameLength(buffer);
        if (length === undefined || buffer.length < length) break;
        onFrame(buffer.slice(0, length));
        buffer = buffer.slice(length);
      }
    }
  } catch {
    // reset by the node, closed locally, or a bad frame header
  }
  try {
    conn.close();
  } catch {
    // already closed
  }
}
