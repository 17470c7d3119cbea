/**
 * Reassembles length-prefixed frames from a TCP byte stream.
 *
 * TCP delivers bytes, not messages: one read may hold half a frame, or several
 * frames at once. {@link FrameDecoder} yields each complete frame exactly once.
 * A frame that lies inside the chunk it was given is returned as a view of that
 * chunk (no copy); the bytes of a frame that spans chunks are copied into one
 * reassembly buffer, which grows with what actually arrived (at most twice the
 * bytes buffered, and never beyond the frame's size), not with what the length
 * field announces. Growth can be charged to a {@link ReassemblyAccount}, so that
 * all connections of a process share one budget. It performs no I/O, so it is
 * tested by feeding it bytes.
 *
 * @module
 */

import { DecodeError, FrameTooLargeError, ResourceLimitError } from "../errors.ts";

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

/** Where a decoder charges the bytes of its reassembly buffer (see `BufferBudget`). */
export interface ReassemblyAccount {
  /** Asks for `bytes` more; false refuses (the decoder then throws {@link ResourceLimitError}). */
  reserve(bytes: number): boolean;
  /** Gives `bytes` back. */
  release(bytes: number): void;
}

/** Smallest reassembly buffer allocated for a partial frame. */
const MIN_REASSEMBLY_BYTES = 256;

/** Incremental frame reassembly for one connection. */
export class FrameDecoder {
  /** Bytes of the partial frame (or partial length field) carried over between chunks. */
  private partial: Uint8Array | undefined;
  private partialLength = 0;
  /** Whole length of the partial frame once its length field is complete, else 0. */
  private partialTotal = 0;
  /**
   * The error met after the frames the last {@link push} returned, if any:
   * handle those frames, then close the connection with it.
   */
  failure: Error | undefined;

  /** Creates a decoder for frames of `format`, charging its buffer to `account`. */
  constructor(readonly format: FrameFormat, private readonly account?: ReassemblyAccount) {}

  /** Bytes received but not yet returned as part of a frame. */
  get bufferedBytes(): number {
    return this.partialLength;
  }

  /** Bytes held by the reassembly buffer (its capacity), as charged to the account. */
  get heldBytes(): number {
    return this.partial?.length ?? 0;
  }

  /**
   * Adds `chunk` and returns every frame it completes, each including its length
   * field. A frame inside `chunk` is a view of it; a frame assembled from
   * several chunks is a buffer of its own. Throws {@link DecodeError} for a
   * length below the minimum, {@link FrameTooLargeError} above the maximum, and
   * {@link ResourceLimitError} when the account refuses to let the reassembly
   * buffer grow; after an error the decoder must be discarded (the stream
   * cannot be resynchronised). When the error comes after complete frames of
   * the same chunk, those frames are returned first and the error is kept in
   * {@link failure} (and thrown by the next call): a client that sends a valid
   * message and garbage in one write has its message handled, then is closed.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure) throw this.failure;
    const frames: Uint8Array[] = [];
    try {
      this.decode(chunk, frames);
    } catch (error) {
      if (frames.length === 0 || !(error instanceof Error)) throw error;
      this.failure = error;
    }
    return frames;
  }

  private decode(chunk: Uint8Array, frames: Uint8Array[]): void {
    let offset = 0;
    if (this.partialLength > 0) {
      offset = this.continuePartial(chunk, frames);
      if (this.partialLength > 0) return;
    }
    const end = chunk.length;
    while (offset < end) {
      const available = end - offset;
      const total = this.frameLength(chunk, offset, available);
      if (total === undefined || available < total) {
        this.startPartial(chunk.subarray(offset), total ?? 0);
        break;
      }
      frames.push(chunk.subarray(offset, offset + total));
      offset += total;
    }
  }

  /** Releases the reassembly buffer (the connection is gone). */
  dispose(): void {
    this.setPartial(undefined);
    this.partialLength = 0;
    this.partialTotal = 0;
  }

  /** Whole-frame length read at `offset`, or undefined when the length field is incomplete. */
  private frameLength(bytes: Uint8Array, offset: number, available: number): number | undefined {
    const { lengthBytes, lengthIncludesHeader, minFrameBytes, maxFrameBytes } = this.format;
    if (available < lengthBytes) return undefined;
    let value = 0;
    for (let i = 0; i < lengthBytes; i++) value = value * 256 + bytes[offset + i];
    const total = lengthIncludesHeader ? value : value + lengthBytes;
    if (total < minFrameBytes) {
      throw new DecodeError(`frame size ${total} is below the minimum of ${minFrameBytes}`);
    }
    if (total > maxFrameBytes) {
      throw new FrameTooLargeError(`frame size ${total} exceeds the limit of ${maxFrameBytes}`);
    }
    return total;
  }

  /** Keeps `rest` (the start of a frame) for the next chunk. */
  private startPartial(rest: Uint8Array, total: number): void {
    this.partialLength = 0;
    this.partialTotal = total;
    this.append(rest);
  }

  /** Feeds `chunk` to the partial frame; returns the offset where the rest of `chunk` starts. */
  private continuePartial(chunk: Uint8Array, frames: Uint8Array[]): number {
    let offset = 0;
    if (this.partialTotal === 0) {
      // The length field itself was split: complete it first.
      const need = this.format.lengthBytes - this.partialLength;
      const take = Math.min(need, chunk.length);
      this.append(chunk.subarray(0, take));
      offset = take;
      if (this.partialLength < this.format.lengthBytes) return offset;
      this.partialTotal = this.frameLength(this.partial!, 0, this.partialLength)!;
    }
    const take = Math.min(this.partialTotal - this.partialLength, chunk.length - offset);
    this.append(chunk.subarray(offset, offset + take));
    offset += take;
    if (this.partialLength === this.partialTotal) {
      const buffer = this.partial!;
      const total = this.partialTotal;
      // The buffer reached exactly the frame's size: hand it over instead of copying.
      frames.push(buffer.length === total ? buffer : buffer.slice(0, total));
      this.setPartial(undefined);
      this.partialLength = 0;
      this.partialTotal = 0;
    }
    return offset;
  }

  /** Appends to the reassembly buffer, growing it with what arrived. */
  private append(bytes: Uint8Array): void {
    const needed = this.partialLength + bytes.length;
    const current = this.partial;
    if (current === undefined || current.length < needed) {
      const cap = this.partialTotal > 0 ? this.partialTotal : this.format.lengthBytes;
      const size = Math.min(cap, Math.max(needed * 2, MIN_REASSEMBLY_BYTES));
      const next = new Uint8Array(Math.max(size, needed));
      if (current !== undefined) next.set(current.subarray(0, this.partialLength));
      this.setPartial(next);
    }
    this.partial!.set(bytes, this.partialLength);
    this.partialLength = needed;
  }

  /** Replaces the reassembly buffer, settling the difference with the account. */
  private setPartial(next: Uint8Array | undefined): void {
    const before = this.partial?.length ?? 0;
    const after = next?.length ?? 0;
    if (after > before && this.account && !this.account.reserve(after - before)) {
      throw new ResourceLimitError(
        `partial frames of all connections exceed their memory budget (this one: ${after} bytes)`,
      );
    }
    if (after < before) this.account?.release(before - after);
    this.partial = next;
  }
}
