/**
 * Reassembles length-prefixed frames from a TCP byte stream.
 *
 * TCP delivers bytes, not messages: one read may hold half a frame, or several
 * frames at once. {@link FrameDecoder} buffers what it is given and yields each
 * complete frame exactly once, without copying when a frame lies inside a single
 * chunk. It performs no I/O, so it is tested by feeding it bytes.
 *
 * @module
 */

import { DecodeError, FrameTooLargeError } from "../errors.ts";

/** How a frame's length is written at its start. */
export interface FrameFormat {
  /** Width of the big-endian length field at offset 0: 2 or 4 bytes. */
  readonly lengthBytes: 2 | 4;
  /**
   * True when the length counts the whole frame including the length field (the
   * Gossip API's `size`); false when it counts only the bytes after it.
   */
  readonly lengthIncludesHeader: boolean;
  /** Smallest valid whole-frame size in bytes (including the length field). */
  readonly minFrameBytes: number;
  /** Largest accepted whole-frame size in bytes; larger frames are an error. */
  readonly maxFrameBytes: number;
}

/** Incremental frame reassembly for one connection. */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  /** Creates a decoder for frames of `format`. */
  constructor(readonly format: FrameFormat) {}

  /** Bytes received but not yet returned as part of a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Adds `chunk` and returns every frame it completes, each including its length
   * field. Throws {@link DecodeError} for a length below the minimum and
   * {@link FrameTooLargeError} above the maximum; after an error the decoder must
   * be discarded (the stream cannot be resynchronised).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (chunk.length === 0) return frames;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      const total = this.peekFrameLength();
      if (total === undefined || this.buffered < total) break;
      frames.push(this.take(total));
    }
    return frames;
  }

  /** Whole-frame length of the next frame, or undefined if its header is incomplete. */
  private peekFrameLength(): number | undefined {
    const { lengthBytes, lengthIncludesHeader, minFrameBytes, maxFrameBytes } = this.format;
    if (this.buffered < lengthBytes) return undefined;
    let value = 0;
    let index = 0;
    let offset = 0;
    for (let i = 0; i < lengthBytes; i++) {
      while (offset >= this.chunks[index].length) {
        offset = 0;
        index++;
      }
      value = value * 256 + this.chunks[index][offset++];
    }
    const total = lengthIncludesHeader ? value : value + lengthBytes;
    if (total < minFrameBytes) {
      throw new DecodeError(`frame size ${total} is below the minimum of ${minFrameBytes}`);
    }
    if (total > maxFrameBytes) {
      throw new FrameTooLargeError(`frame size ${total} exceeds the limit of ${maxFrameBytes}`);
    }
    return total;
  }

  /** Removes and returns the first `length` buffered bytes. */
  private take(length: number): Uint8Array {
    const first = this.chunks[0];
    this.buffered -= length;
    if (first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    const frame = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const head = this.chunks[0];
      const part = Math.min(head.length, length - filled);
      frame.set(head.subarray(0, part), filled);
      filled += part;
      if (part === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(part);
    }
    return frame;
  }
}
