/**
 * Bounds-checked big-endian readers and writers used by the peer codec.
 *
 * @module
 */

import { DecodeError } from "../errors.ts";

/** Reads big-endian fields from a byte array; every overrun throws {@link DecodeError}. */
export class ByteReader {
  private offset = 0;
  private readonly view: DataView;

  /** Reads `bytes` from the start. */
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private need(count: number, what: string): number {
    if (this.offset + count > this.bytes.length) {
      throw new DecodeError(`truncated ${what}: need ${count} bytes, have ${this.remaining}`);
    }
    const at = this.offset;
    this.offset += count;
    return at;
  }

  /** Reads one byte. */
  u8(what: string): number {
    return this.view.getUint8(this.need(1, what));
  }

  /** Reads a 16-bit integer. */
  u16(what: string): number {
    return this.view.getUint16(this.need(2, what));
  }

  /** Reads a 32-bit integer. */
  u32(what: string): number {
    return this.view.getUint32(this.need(4, what));
  }

  /** Reads a 64-bit integer. */
  u64(what: string): bigint {
    return this.view.getBigUint64(this.need(8, what));
  }

  /** Returns the next `count` bytes as a view (no copy). */
  bytesOf(count: number, what: string): Uint8Array {
    const at = this.need(count, what);
    return this.bytes.subarray(at, at + count);
  }

  /** Returns every remaining byte as a view. */
  rest(): Uint8Array {
    const at = this.offset;
    this.offset = this.bytes.length;
    return this.bytes.subarray(at);
  }

  /** Throws unless every byte was consumed. */
  end(what: string): void {
    if (this.remaining !== 0) {
      throw new DecodeError(`${this.remaining} unexpected trailing bytes after ${what}`);
    }
  }
}

/** Builds a byte array from big-endian fields, growing as needed. */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;

  /** Starts with room for `capacity` bytes. */
  constructor(capacity = 64) {
    this.buffer = new Uint8Array(capacity);
    this.view = new DataView(this.buffer.buffer);
  }

  private grow(count: number): number {
    const at = this.length;
    if (at + count > this.buffer.length) {
      const next = new Uint8Array(Math.max(this.buffer.length * 2, at + count));
      next.set(this.buffer.subarray(0, at));
      this.buffer = next;
      this.view = new DataView(next.buffer);
    }
    this.length += count;
    return at;
  }

  /** Appends one byte. */
  u8(value: number): this {
    const at = this.grow(1);
    this.view.setUint8(at, value);
    return this;
  }

  /** Appends a 16-bit integer. */
  u16(value: number): this {
    const at = this.grow(2);
    this.view.setUint16(at, value);
    return this;
  }

  /** Appends a 32-bit integer. */
  u32(value: number): this {
    const at = this.grow(4);
    this.view.setUint32(at, value);
    return this;
  }

  /** Appends a 64-bit integer. */
  u64(value: bigint): this {
    const at = this.grow(8);
    this.view.setBigUint64(at, value);
    return this;
  }

  /** Appends raw bytes. */
  bytes(value: Uint8Array): this {
    const at = this.grow(value.length); // grow first: it may replace the buffer
    this.buffer.set(value, at);
    return this;
  }

  /** The bytes written so far (a view of the internal buffer). */
  finish(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
