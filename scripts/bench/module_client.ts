/**
 * The benchmark's stand-in for a local module: a Gossip API client that
 * subscribes to the bench data type, answers every NOTIFICATION with
 * VALIDATION valid at once, and reports each item's arrival time.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  API_FRAME_FORMAT,
  decodeApiMessage,
  encodeApiMessage,
} from "../../lib/codec/api_messages.ts";
import { FrameDecoder } from "../../lib/codec/frame_decoder.ts";

/** Data type of every benchmark item. */
export const BENCH_DATA_TYPE = 0xbe0c;

/** Called for each NOTIFICATION: node index, payload, arrival time (performance.now()). */
export type NotificationHandler = (node: number, data: Uint8Array, at: number) => void;

/** Most bytes queued for writing before the client gives up (the node is stuck). */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** One module connected to one node's API port. */
export class ModuleClient {
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private writing = false;
  private writeDone: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly readDone: Promise<void>;
  /** NOTIFICATIONs received. */
  notifications = 0;
  /** Set when the connection failed or the node closed it. */
  error: string | undefined;

  private constructor(
    private readonly conn: Deno.TcpConn,
    readonly node: number,
    private readonly onNotification: NotificationHandler,
  ) {
    conn.setNoDelay(true);
    this.readDone = this.readLoop();
  }

  /** Connects to the API at 127.0.0.1:`port` and subscribes to {@link BENCH_DATA_TYPE}. */
  static async connect(
    port: number,
    node: number,
    onNotification: NotificationHandler,
  ): Promise<ModuleClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
    const client = new ModuleClient(conn, node, onNotification);
    client.enqueue(encodeApiMessage({ kind: "notify", reserved: 0, dataType: BENCH_DATA_TYPE }));
    await client.flush();
    return client;
  }

  /**
   * Queues an ANNOUNCE of `data` (TTL 0, unlimited) and returns the time it
   * was handed to the socket (performance.now()).
   */
  announce(data: Uint8Array): number {
    const frame = encodeApiMessage({
      kind: "announce",
      ttl: 0,
      reserved: 0,
      dataType: BENCH_DATA_TYPE,
      data,
    });
    const at = performance.now();
    this.enqueue(frame);
    return at;
  }

  /** Resolves once everything queued so far is written (or the connection failed). */
  async flush(): Promise<void> {
    for (let round = 0; round < 1000 && this.writing && !this.closed; round++) {
      await this.writeDone;
    }
  }

  /** Closes the connection and waits for both loops. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      try {
        this.conn.close();
      } catch {
        // already closed
      }
    }
    await Promise.allSettled([this.readDone, this.writeDone]);
  }

  /** Queues `frame` for the write loop; fails the client when the node stopped reading. */
  private enqueue(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.queuedBytes + frame.length > MAX_QUEUED_BYTES) {
      this.fail("write queue overflow: the node stopped reading");
      return;
    }
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    if (!this.writing) {
      this.writing = true;
      this.writeDone = this.writeLoop();
    }
  }

  /** Writes queued frames, coalescing those queued meanwhile into one write. */
  private async writeLoop(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue);
        this.queue = [];
        this.queuedBytes = 0;
        let offset = 0;
        while (offset < batch.length) offset += await this.conn.write(batch.subarray(offset));
      }
    } catch (error) {
      this.fail(`write failed: ${(error as Error).message}`);
    } finally {
      this.writing = false;
    }
  }

  /** Decodes NOTIFICATIONs, answers each with VALIDATION valid and reports its arrival. */
  private async readLoop(): Promise<void> {
    const decoder = new FrameDecoder(API_FRAME_FORMAT);
    const buffer = new Uint8Array(256 * 1024);
    try {
      while (!this.closed) {
        const n = await this.conn.read(buffer);
        if (n === null) {
          this.fail("connection closed by the node");
          return;
        }
        const at = performance.now();
        for (const frame of decoder.push(buffer.slice(0, n))) {
          const message = decodeApiMessage(frame);
          if (message.kind !== "notification") continue;
          this.notifications++;
          this.enqueue(encodeApiMessage({
            kind: "validation",
            messageId: message.messageId,
            valid: true,
            reserved: 0,
          }));
          this.onNotification(this.node, message.data, at);
        }
      }
    } catch (error) {
      this.fail(`read failed: ${(error as Error).message}`);
    }
  }

  /** Records the first error and closes the connection. */
  private fail(reason: string): void {
    if (this.closed) return;
    this.error ??= reason;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}
