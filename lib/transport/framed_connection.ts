/**
 * A TCP connection that reads length-prefixed frames and writes through a
 * bounded queue.
 *
 * Reading: each connection reads into one buffer of its own, reused for every
 * read (no allocation per read). Complete frames are handed to `onFrame`
 * synchronously, in order, before the next read, so frames that arrive just
 * before EOF are still processed. Only the unfinished tail of a read is kept,
 * in a {@link FrameDecoder} whose reassembly buffer is charged to a
 * {@link BufferBudget} shared by all connections: what a connection holds is
 * bounded by what it sent, and all partial frames together by the budget. A
 * decode error, a refused budget request or an exception from `onFrame` closes
 * the connection with one log line.
 *
 * Writing: {@link FramedConnection.send} never blocks the caller. Frames queue
 * in memory up to `maxQueuedBytes`; beyond that `send` returns false and the
 * frame is dropped, so one slow reader cannot exhaust memory or stall others.
 * A {@link WriteSource} (the peer session's encrypter) can instead supply bytes
 * when the connection is ready to write, so nothing is produced for a write
 * that cannot happen yet. Everything queued in one turn of the event loop goes
 * out in one write; while a write is in flight, new frames gather for the next.
 *
 * @module
 */

import { FrameDecoder, type FrameFormat } from "../codec/frame_decoder.ts";
import { GossipError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type BudgetAccount, type BufferBudget, sharedBufferBudget } from "./buffer_budget.ts";

/** Why a connection ended. */
export type CloseReason = string;

/** Supplies bytes to write when the connection is ready (see {@link FramedConnection.setSource}). */
export interface WriteSource {
  /** Bytes the source holds that are not yet handed to the connection. */
  readonly pendingBytes: number;
  /**
   * Returns the next bytes to write (one or more whole frames), or undefined
   * when it has nothing. Called only when the connection is about to write.
   */
  next(): Uint8Array | Promise<Uint8Array> | undefined;
}

/** Options of a {@link FramedConnection}. */
export interface FramedConnectionOptions {
  /** Frame layout of the stream. */
  readonly format: FrameFormat;
  /** Bytes that may wait in the send queue before frames are dropped. */
  readonly maxQueuedBytes: number;
  /** Logger for the one line about an abnormal close. */
  readonly log: Logger;
  /**
   * Called for each complete frame; throwing closes the connection. With
   * `borrowFrames` the frame may be a view of the read buffer, valid only until
   * `onFrame` returns; otherwise it is the frame's own copy. A returned
   * promise is awaited before the next frame (a borrowed frame stays valid).
   */
  readonly onFrame: (frame: Uint8Array) => void | Promise<void>;
  /** Called once when the connection has ended, with the reason. */
  readonly onClose?: (reason: CloseReason) => void;
  /** Closes the connection when a started frame is not complete within this time. */
  readonly partialFrameTimeoutMs?: number;
  /** Closes the connection when nothing is received for this long. */
  readonly idleTimeoutMs?: number;
  /** Closes the connection when no complete frame arrives within this time (half-open guard). */
  readonly firstFrameTimeoutMs?: number;
  /** Closes the connection when not a single byte arrives within this time. */
  readonly firstByteTimeoutMs?: number;
  /** Budget of partial-frame memory (default: {@link sharedBufferBudget}). */
  readonly budget?: BufferBudget;
  /** Hand frames to `onFrame` as views of the read buffer (no copy); see `onFrame`. */
  readonly borrowFrames?: boolean;
  /** Size of the connection's read buffer (default 16 KiB). */
  readonly readBufferBytes?: number;
}

const DEFAULT_READ_BUFFER_BYTES = 16 * 1024;
/** Largest write assembled from queued frames and the source in one go. */
const MAX_WRITE_BYTES = 256 * 1024;
/** A write buffer up to this size is kept for the next write. */
const KEEP_WRITE_BUFFER_BYTES = 128 * 1024;

/** One framed TCP connection. */
export class FramedConnection {
  /** Remote address as `host:port`, for logs. */
  readonly remote: string;
  private readonly decoder: FrameDecoder;
  private readonly account: BudgetAccount;
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private inFlightBytes = 0;
  private source: WriteSource | undefined;
  private writing = false;
  private writeScheduled = false;
  private writeBuffer: Uint8Array | undefined;
  private closed = false;
  private closeReason: CloseReason = "";
  private readLoopDone: Promise<void> | undefined;
  private writeLoopDone: Promise<void> = Promise.resolve();
  private partialTimer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private firstFrameTimer: ReturnType<typeof setTimeout> | undefined;
  private firstByteTimer: ReturnType<typeof setTimeout> | undefined;
  private lastReceive = 0;
  /** Frames dropped because the send queue was full. */
  droppedFrames = 0;
  /** Bytes received. */
  bytesReceived = 0;
  /** Bytes written. */
  bytesSent = 0;
  /** Reads that returned bytes (each one a wake-up of this process for input). */
  reads = 0;
  /** Writes to the socket (a batch of frames may take more than one). */
  writes = 0;

  /** Wraps an accepted or connected socket; call {@link start} to read. */
  constructor(readonly conn: Deno.Conn, private readonly options: FramedConnectionOptions) {
    this.account = (options.budget ?? sharedBufferBudget).open(() => {
      this.options.log.warn("closing connection", {
        remote: this.remote,
        reason: "holds the most partial-frame memory while the budget is exhausted",
      });
      this.shutdown("partial-frame memory budget exhausted");
    });
    this.decoder = new FrameDecoder(options.format, this.account);
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.remote = addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
  }

  /** True once the connection is closing or closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes waiting to be written: queued frames, the source's bytes and the write in flight. */
  get pendingBytes(): number {
    return this.queuedBytes + this.inFlightBytes + (this.source?.pendingBytes ?? 0);
  }

  /** Bytes of partial frames this connection holds. */
  get bufferedBytes(): number {
    return this.decoder.heldBytes;
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
    this.requestWrite();
    return true;
  }

  /** Sets the source asked for bytes after the queued frames, at each write. */
  setSource(source: WriteSource): void {
    this.source = source;
  }

  /** Makes the connection write soon (at the end of this turn) if it is not writing already. */
  requestWrite(): void {
    if (this.writing || this.writeScheduled || this.closed) return;
    this.writeScheduled = true;
    queueMicrotask(() => {
      this.writeScheduled = false;
      if (this.writing || this.closed) return;
      this.writing = true;
      this.writeLoopDone = this.writeLoop();
    });
  }

  /** Resolves once everything queued so far is written (or the connection closed). */
  async flush(): Promise<void> {
    for (let i = 0; i < 1_000_000 && !this.closed; i++) {
      if (this.writeScheduled) await Promise.resolve();
      else if (this.writing) await this.writeLoopDone;
      else if (this.hasOutput()) this.requestWrite();
      else return;
    }
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

  private hasOutput(): boolean {
    return this.queue.length > 0 || (this.source?.pendingBytes ?? 0) > 0;
  }

  private shutdown(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    clearTimeout(this.partialTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.firstFrameTimer);
    clearTimeout(this.firstByteTimer);
    this.queue = [];
    this.queuedBytes = 0;
    this.writeBuffer = undefined;
    this.decoder.dispose();
    this.account.close();
    try {
      this.conn.close();
    } catch {
      // already closed by the peer or the runtime
    }
  }

  private startTimer(timeoutMs: number | undefined, reason: string) {
    if (timeoutMs === undefined) return undefined;
    return setTimeout(() => {
      this.options.log.info("closing connection", { remote: this.remote, reason });
      this.shutdown(reason);
    }, timeoutMs);
  }

  private async readLoop(): Promise<void> {
    const buffer = new Uint8Array(this.options.readBufferBytes ?? DEFAULT_READ_BUFFER_BYTES);
    const borrow = this.options.borrowFrames === true;
    this.armIdleTimer();
    this.firstFrameTimer = this.startTimer(this.options.firstFrameTimeoutMs, "no message in time");
    this.firstByteTimer = this.startTimer(this.options.firstByteTimeoutMs, "no byte in time");
    try {
      while (!this.closed) {
        const n = await this.conn.read(buffer);
        if (n === null) {
          this.shutdown("end of stream");
          break;
        }
        this.lastReceive = performance.now();
        this.bytesReceived += n;
        this.reads++;
        if (this.firstByteTimer !== undefined) {
          clearTimeout(this.firstByteTimer);
          this.firstByteTimer = undefined;
        }
        const chunk = buffer.subarray(0, n);
        const frames = this.decoder.push(chunk);
        if (frames.length > 0 && this.firstFrameTimer !== undefined) {
          clearTimeout(this.firstFrameTimer);
          this.firstFrameTimer = undefined;
        }
        for (const frame of frames) {
          if (this.closed) break;
          // A frame in the read buffer is overwritten by the next read: copy it unless borrowed.
          const inBuffer = frame.buffer === buffer.buffer;
          const pending = this.options.onFrame(inBuffer && !borrow ? frame.slice() : frame);
          if (pending) await pending;
        }
        // Bad bytes after good frames: the good ones were handled, now close.
        if (this.decoder.failure) throw this.decoder.failure;
        this.armPartialTimer(frames.length > 0);
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

  /** Takes what is queued plus what the source supplies, up to {@link MAX_WRITE_BYTES}. */
  private async nextWrite(): Promise<Uint8Array | undefined> {
    const parts = this.queue;
    let total = this.queuedBytes;
    this.queue = [];
    this.queuedBytes = 0;
    this.inFlightBytes = total;
    const source = this.source;
    while (source && total < MAX_WRITE_BYTES && !this.closed) {
      let next = source.next();
      if (next === undefined) break;
      if (next instanceof Promise) next = await next;
      parts.push(next);
      total += next.length;
      this.inFlightBytes = total;
    }
    if (parts.length <= 1) return parts[0];
    let out = this.writeBuffer;
    if (out === undefined || out.length < total) out = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    this.writeBuffer = out.length <= KEEP_WRITE_BUFFER_BYTES ? out : undefined;
    return out.subarray(0, total);
  }

  private async writeLoop(): Promise<void> {
    try {
      while (!this.closed) {
        const batch = await this.nextWrite();
        if (batch === undefined || this.closed) break;
        let offset = 0;
        while (offset < batch.length) {
          offset += await this.conn.write(batch.subarray(offset));
          this.writes++;
        }
        this.bytesSent += batch.length;
        this.inFlightBytes = 0;
      }
    } catch (error) {
      if (!this.closed) {
        this.options.log.debug("write failed", { remote: this.remote, error: String(error) });
        this.shutdown("write failed");
      }
    } finally {
      this.inFlightBytes = 0;
      this.writing = false;
      // Frames queued while the last (empty) round was being assembled.
      if (!this.closed && this.hasOutput()) this.requestWrite();
    }
  }

  /**
   * Keeps the deadline of the frame being received: started with the frame,
   * ended when it completes. A read that completed a frame and ends inside the
   * next one starts a new deadline for that next frame.
   */
  private armPartialTimer(frameCompleted: boolean): void {
    const timeout = this.options.partialFrameTimeoutMs;
    if (timeout === undefined || this.closed) return;
    if (frameCompleted || this.decoder.bufferedBytes === 0) {
      clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
    }
    if (this.decoder.bufferedBytes > 0 && this.partialTimer === undefined) {
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
