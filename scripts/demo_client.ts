/**
 * A small Gossip API client for scripts: the demo's stand-in for a local
 * module. It subscribes with NOTIFY, announces with ANNOUNCE and hands every
 * NOTIFICATION to a callback whose verdict it sends back as VALIDATION.
 *
 * @module
 */

import { API_FRAME_FORMAT, decodeApiMessage, encodeApiMessage } from "../lib/codec/api_messages.ts";
import { FrameDecoder } from "../lib/codec/frame_decoder.ts";
import type { SocketAddress } from "../lib/address.ts";

/** A NOTIFICATION as received. */
export interface Notification {
  /** ID to echo in the VALIDATION. */
  readonly messageId: number;
  /** Data type of the item. */
  readonly dataType: number;
  /** Item payload. */
  readonly data: Uint8Array;
  /** Arrival time, `performance.now()`. */
  readonly receivedAt: number;
}

/** Decides a NOTIFICATION's validity; the client answers with this verdict. */
export type NotificationHandler = (notification: Notification) => boolean;

/** A connection to one node's API port. */
export class DemoApiClient {
  private writes: Promise<void> = Promise.resolve();
  private readonly readLoop: Promise<void>;
  private closing = false;
  private failure: Error | undefined;

  private constructor(
    private readonly conn: Deno.TcpConn,
    private readonly onNotification: NotificationHandler,
  ) {
    this.readLoop = this.read();
  }

  /** Connects to `address`; `onNotification` is called for every NOTIFICATION. */
  static async connect(
    address: SocketAddress,
    onNotification: NotificationHandler,
  ): Promise<DemoApiClient> {
    const conn = await Deno.connect({ hostname: address.hostname, port: address.port });
    conn.setNoDelay(true);
    return new DemoApiClient(conn, onNotification);
  }

  /** The error that ended the connection, if the node closed it or sent garbage. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Subscribes to `dataType` (GOSSIP NOTIFY). */
  notify(dataType: number): Promise<void> {
    return this.write(encodeApiMessage({ kind: "notify", reserved: 0, dataType }));
  }

  /** Spreads `data` (GOSSIP ANNOUNCE); `ttl` 0 means unlimited hops. */
  announce(dataType: number, data: Uint8Array, ttl = 0): Promise<void> {
    return this.write(encodeApiMessage({ kind: "announce", ttl, reserved: 0, dataType, data }));
  }

  /** Answers a NOTIFICATION (GOSSIP VALIDATION). */
  validate(messageId: number, valid: boolean): Promise<void> {
    return this.write(encodeApiMessage({ kind: "validation", messageId, valid, reserved: 0 }));
  }

  /** Closes the connection and waits for pending writes and the read loop. */
  async close(): Promise<void> {
    if (!this.closing) {
      await this.writes;
      this.closing = true;
      try {
        this.conn.close();
      } catch {
        // already closed
      }
    }
    await this.readLoop;
  }

  /** Queues `bytes` behind earlier writes so that messages never interleave. */
  private write(bytes: Uint8Array): Promise<void> {
    const next = this.writes.then(async () => {
      if (this.closing || this.failure) throw new Error("connection closed");
      let offset = 0;
      while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
    });
    this.writes = next.catch(() => {});
    return next;
  }

  /** Decodes NOTIFICATIONs until the connection ends, answering each one. */
  private async read(): Promise<void> {
    const decoder = new FrameDecoder(API_FRAME_FORMAT);
    const buffer = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) {
          if (!this.closing) this.failure = new Error("the node closed the connection");
          break;
        }
        const receivedAt = performance.now();
        // The decoder keeps references to its input, so give it a copy.
        for (const frame of decoder.push(buffer.slice(0, n))) {
          const message = decodeApiMessage(frame);
          if (message.kind !== "notification") {
            throw new Error(`unexpected ${message.kind} message from the node`);
          }
          const valid = this.onNotification({
            messageId: message.messageId,
            dataType: message.dataType,
            data: message.data,
            receivedAt,
          });
          this.validate(message.messageId, valid).catch(() => {});
        }
      }
    } catch (error) {
      if (!this.closing) this.failure = error instanceof Error ? error : new Error(String(error));
    }
    this.closing = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}
