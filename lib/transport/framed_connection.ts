/**
 * A TCP connection that reads length-prefixed frames and writes through a
 * bounded queue.
 *
 * Reading: bytes go through a {@link FrameDecoder}; each complete frame is handed
 * to `onFrame` synchronously, in order, before the next read, so frames that
 * arrive just before EOF are still processed. A decode error or an exception from
 * `onFrame` closes the connection with one log line.
 *
 * Writing: {@link FramedConnection.send} never blocks the caller. Frames queue in
 * memory up to `maxQueuedBytes`; beyond that `send` returns false and the frame
 * is dropped, so one slow reader cannot exhaust memory or stall others. Queued
 * frames are coalesced into one write.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { FrameDecoder, type FrameFormat } from "../codec/frame_decoder.ts";
import { GossipError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** Why a connection ended. */
export type CloseReason = string;

/** Options of a {@link FramedConnection}. */
export interface FramedConnectionOptions {
  /** Frame layout of the stream. */
  readonly format: FrameFormat;
  /** Bytes that may wait in the send queue before frames are dropped. */
  readonly maxQueuedBytes: number;
  /** Logger for the one line about an abnormal close. */
  readonly log: Logger;
  /** Called for each complete frame; throwing closes the connection. */
  readonly onFrame: (frame: Uint8Array) => void;
  /** Called once when the connection has ended, with the reason. */
  readonly onClose?: (reason: CloseReason) => void;
  /** Closes the connection when a started frame is not complete within this time. */
  readonly partialFrameTimeoutMs?: number;
  /** Closes the connection when nothing is received for this long. */
  readonly idleTimeoutMs?: number;
  /** Closes the connection when no complete frame arrives within this time (half-open guard). */
  readonly firstFrameTimeoutMs?: number;
}

const READ_BUFFER_BYTES = 64 * 1024;

/** One framed TCP connection. */
export class FramedConnection {
  /** Remote address as `host:port`, for logs. */
  readonly remote: string;
  private readonly decoder: FrameDecoder;
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private writing = false;
  private closed = false;
  private closeReason: CloseReason = "";
  private readLoopDone: Promise<void> | undefined;
  private writeLoopDone: Promise<void> = Promise.resolve();
  private partialTimer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private firstFrameTimer: ReturnType<typeof setTimeout> | undefined;
  private lastReceive = 0;
  /** Frames dropped because the send queue was full. */
  droppedFrames = 0;
  /** Bytes read from the socket. */
  bytesReceived = 0;
  /** Bytes written to the socket. */
  bytesSent = 0;

  /** Wraps an accepted or connected socket; call {@link start} to read. */
  constructor(readonly conn: Deno.Conn, private readonly options: FramedConnectionOptions) {
    this.decoder = new FrameDecoder(options.format);
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.remote = addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
  }

  /** True once the connection is closing or closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes waiting to be written. */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** Starts the read loop; resolves when the connection has ended. */
  start(): Promise<void> {
    this.readLoopDone ??= this.readLoop();
    return this.readLoopDone;
  }

  /**
   * Queues `frame` for sending. Returns false (and drops it) when the
   * connection is closed or the queue is full.
   */
  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.queuedBytes + frame.length > this.options.maxQueuedBytes) {
      this.droppedFrames++;
      return false;
    }
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    if (!this.writing) {
      this.writing = true;
      this.writeLoopDone = this.writeLoop();
    }
    return true;
  }

  /** Resolves once every queued frame has been written (or the connection closed). */
  async flush(): Promise<void> {
    while (this.writing && !this.closed) await this.writeLoopDone;
  }

  /**
   * Closes the connection. Queued frames are flushed first when `flush` is true
   * (bounded by `flushTimeoutMs`). Resolves when both loops have ended.
   */
  async close(reason: CloseReason = "closed locally", flush = false, flushTimeoutMs = 1000) {
    if (flush && !this.closed) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.flush(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, flushTimeoutMs)),
      ]);
      clearTimeout(timer);
    }
    this.shutdown(reason);
    await this.readLoopDone;
    await this.writeLoopDone;
  }

  private shutdown(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    clearTimeout(this.partialTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.firstFrameTimer);
    this.queue = [];
    this.queuedBytes = 0;
    try {
      this.conn.close();
    } catch {
      // already closed by the peer or the runtime
    }
  }

  private async readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    this.armIdleTimer();
    const firstFrameTimeout = this.options.firstFrameTimeoutMs;
    if (firstFrameTimeout !== undefined) {
      this.firstFrameTimer = setTimeout(() => {
        this.options.log.info("closing connection", {
          remote: this.remote,
          reason: "no message in time",
        });
        this.shutdown("no message in time");
      }, firstFrameTimeout);
    }
    try {
      while (!this.closed) {
        const n = await this.conn.read(buffer);
        if (n === null) {
          this.shutdown("end of stream");
          break;
        }
        this.lastReceive = performance.now();
        this.bytesReceived += n;
        // Frames may be kept (items, queues): give them their own exactly sized copy.
        const frames = this.decoder.push(buffer.slice(0, n));
        if (frames.length > 0 && this.firstFrameTimer !== undefined) {
          clearTimeout(this.firstFrameTimer);
          this.firstFrameTimer = undefined;
        }
        for (const frame of frames) {
          if (this.closed) break;
          this.options.onFrame(frame);
        }
        this.armPartialTimer();
      }
    } catch (error) {
      if (!this.closed) {
        const reason = error instanceof GossipError
          ? error.message
          : error instanceof Error
          ? `${error.name}: ${error.message}`
          : String(error);
        // Bad input is worth a warning; a socket reset or closed under us is not.
        const routine = error instanceof Deno.errors.Interrupted ||
          error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.ConnectionReset ||
          error instanceof Deno.errors.BrokenPipe;
        (routine ? this.options.log.debug : this.options.log.warn).call(
          this.options.log,
          "closing connection",
          { remote: this.remote, reason },
        );
        this.shutdown(reason);
      }
    } finally {
      this.shutdown(this.closeReason || "read loop ended");
      this.options.onClose?.(this.closeReason);
    }
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue);
        this.queue = [];
        this.queuedBytes = 0;
        let offset = 0;
        while (offset < batch.length) {
          offset += await this.conn.write(batch.subarray(offset));
        }
        this.bytesSent += batch.length;
      }
    } catch (error) {
      if (!this.closed) {
        this.options.log.debug("write failed", { remote: this.remote, error: String(error) });
        this.shutdown("write failed");
      }
    } finally {
      this.writing = false;
    }
  }

  private armPartialTimer(): void {
    const timeout = this.options.partialFrameTimeoutMs;
    if (timeout === undefined || this.closed) return;
    if (this.decoder.bufferedBytes === 0) {
      clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
    } else if (this.partialTimer === undefined) {
      this.partialTimer = setTimeout(() => {
        this.options.log.warn("closing connection", {
          remote: this.remote,
          reason: "incomplete frame timeout",
        });
        this.shutdown("incomplete frame timeout");
      }, timeout);
    }
  }

  private armIdleTimer(): void {
    const timeout = this.options.idleTimeoutMs;
    if (timeout === undefined || this.closed) return;
    this.lastReceive = performance.now();
    const check = () => {
      if (this.closed) return;
      const idle = performance.now() - this.lastReceive;
      if (idle >= timeout) {
        this.options.log.info("closing idle connection", { remote: this.remote });
        this.shutdown("idle timeout");
      } else {
        this.idleTimer = setTimeout(check, timeout - idle);
      }
    };
    this.idleTimer = setTimeout(check, timeout);
  }
}
