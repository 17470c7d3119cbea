/**
 * The benchmark's stand-in for a local module: a Gossip API client that
 * subscribes to the bench data type, answers every NOTIFICATION with
 * VALIDATION valid at once, and reports each item's arrival time.
 *
 * @module
 */

import {
  API_FRAME_FORMAT,
  decodeApiMessage,
  encodeApiMessage,
} from "../../lib/codec/api_messages.ts";
import { silentLogger } from "../../lib/log.ts";
import { FramedConnection } from "../../lib/transport/framed_connection.ts";

/** Data type of every benchmark item. */
export const BENCH_DATA_TYPE = 0xbe0c;

/** Called for each NOTIFICATION: node index, payload, arrival time (performance.now()). */
export type NotificationHandler = (node: number, data: Uint8Array, at: number) => void;

/** Most bytes queued for writing before the client gives up (the node is stuck). */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** One module connected to one node's API port. */
export class ModuleClient {
  private readonly connection: FramedConnection;
  private readonly readDone: Promise<void>;
  private closedLocally = false;
  /** NOTIFICATIONs received. */
  notifications = 0;
  /** Set when the connection failed or the node closed it. */
  error: string | undefined;

  private constructor(
    conn: Deno.TcpConn,
    readonly node: number,
    private readonly onNotification: NotificationHandler,
  ) {
    conn.setNoDelay(true);
    this.connection = new FramedConnection(conn, {
      format: API_FRAME_FORMAT,
      maxQueuedBytes: MAX_QUEUED_BYTES,
      log: silentLogger,
      onFrame: (frame) => this.onFrame(frame),
      onClose: (reason) => {
        if (this.closedLocally) return;
        this.error ??= reason === "end of stream" ? "connection closed by the node" : reason;
      },
    });
    this.readDone = this.connection.start();
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
  flush(): Promise<void> {
    return this.connection.flush();
  }

  /** Closes the connection and waits for it to end. */
  async close(): Promise<void> {
    this.closedLocally = true;
    await this.connection.close("bench finished");
    await this.readDone;
  }

  /** Queues `frame`; fails the client when the node stopped reading. */
  private enqueue(frame: Uint8Array): void {
    if (this.connection.isClosed) return;
    if (!this.connection.send(frame)) {
      this.error ??= "write queue overflow: the node stopped reading";
      void this.connection.close("write queue overflow");
    }
  }

  /** Answers each NOTIFICATION with VALIDATION valid and reports its arrival. */
  private onFrame(frame: Uint8Array): void {
    const at = performance.now();
    const message = decodeApiMessage(frame);
    if (message.kind !== "notification") return;
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
