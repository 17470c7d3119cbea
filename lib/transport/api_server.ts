/**
 * The Gossip API server: accepts local modules on `api_address`, decodes their
 * messages and hands them to an {@link ApiHandler}; sends NOTIFICATIONs.
 *
 * Any ill-formed input (see the spec) closes that one connection with one log
 * line; other connections are not affected.
 *
 * @module
 */

import type { SocketAddress } from "../address.ts";
import {
  type AnnounceMessage,
  API_FRAME_FORMAT,
  ApiMessageType,
  decodeApiMessage,
  type NotifyMessage,
  type ValidationMessage,
} from "../codec/api_messages.ts";
import { DecodeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { NotificationIds } from "../protocol/notification_ids.ts";
import { FramedConnection } from "./framed_connection.ts";
import { TcpListener } from "./listener.ts";

/** Receives decoded messages from API clients. */
export interface ApiHandler {
  /** A client announced an item. */
  onAnnounce(client: ApiClient, message: AnnounceMessage): void;
  /** A client subscribed to a data type. */
  onNotify(client: ApiClient, message: NotifyMessage): void;
  /**
   * A client answered a notification. The handler resolves the message ID via
   * `client.notificationIds`; an unknown ID must throw {@link DecodeError}.
   */
  onValidation(client: ApiClient, message: ValidationMessage): void;
  /** A client's connection ended; drop its subscriptions. */
  onClientClosed(client: ApiClient): void;
}

/** Options of an {@link ApiServer}. */
export interface ApiServerOptions {
  /** Address to bind. */
  readonly address: SocketAddress;
  /** Clients connected at once. */
  readonly maxConnections: number;
  /** Per-client send queue limit in bytes; notifications beyond it are dropped. */
  readonly maxQueuedBytes: number;
  /** A started message must be complete within this time, or the client is closed. */
  readonly partialFrameTimeoutMs: number;
  /** A new client must send its first message within this time, or it is closed. */
  readonly firstMessageTimeoutMs: number;
  /** Notifications awaiting VALIDATION per client before the oldest is forgotten. */
  readonly maxOutstandingNotifications: number;
  /** Logger. */
  readonly log: Logger;
  /** Receives the clients' messages. */
  readonly handler: ApiHandler;
}

/** One connected local module. */
export class ApiClient {
  /** Outstanding NOTIFICATION IDs mapped to item IDs. */
  readonly notificationIds: NotificationIds<bigint>;

  /** Wraps a connection; `id` is unique within the server's lifetime. */
  constructor(
    readonly id: number,
    readonly connection: FramedConnection,
    maxOutstanding: number,
  ) {
    this.notificationIds = new NotificationIds(maxOutstanding);
  }

  /** Remote address for logs. */
  get remote(): string {
    return this.connection.remote;
  }

  /** Queues an encoded message; false when dropped (queue full or closed). */
  send(message: Uint8Array): boolean {
    return this.connection.send(message);
  }
}

/** The API listener and its clients. */
export class ApiServer {
  private readonly listener: TcpListener;
  private readonly clients = new Map<number, ApiClient>();
  private readonly connectionsDone = new Set<Promise<void>>();
  private nextClientId = 1;

  /** Creates the server; call {@link listen} to bind. */
  constructor(private readonly options: ApiServerOptions) {
    this.listener = new TcpListener({
      address: options.address,
      // Read at each accept: the node may change the limit while running.
      get maxConnections() {
        return options.maxConnections;
      },
      log: options.log,
      openConnections: () => this.clients.size,
      onConnection: (conn) => this.accept(conn),
    });
  }

  /** Binds and starts accepting; returns the bound address. */
  listen(): Deno.NetAddr {
    return this.listener.listen();
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.listener.addr;
  }

  /** Connected clients. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Connections refused at the limit. */
  get refusedConnections(): number {
    return this.listener.refused;
  }

  /** Stops accepting and closes every client. */
  async close(): Promise<void> {
    await this.listener.close();
    await Promise.all([...this.clients.values()].map((c) => c.connection.close("shutdown")));
    await Promise.all(this.connectionsDone);
  }

  private accept(conn: Deno.TcpConn): void {
    const id = this.nextClientId++;
    const log = this.options.log;
    let client: ApiClient | undefined = undefined;
    const connection = new FramedConnection(conn, {
      format: API_FRAME_FORMAT,
      maxQueuedBytes: this.options.maxQueuedBytes,
      partialFrameTimeoutMs: this.options.partialFrameTimeoutMs,
      firstFrameTimeoutMs: this.options.firstMessageTimeoutMs,
      log,
      onFrame: (frame) => this.dispatch(client!, frame),
      onClose: (reason) => {
        this.clients.delete(id);
        log.debug("api client disconnected", { client: id, reason });
        this.options.handler.onClientClosed(client!);
      },
    });
    client = new ApiClient(id, connection, this.options.maxOutstandingNotifications);
    this.clients.set(id, client);
    log.debug("api client connected", { client: id, remote: connection.remote });
    const done = connection.start();
    this.connectionsDone.add(done);
    done.finally(() => this.connectionsDone.delete(done));
  }

  private dispatch(client: ApiClient, frame: Uint8Array): void {
    const message = decodeApiMessage(frame);
    const handler = this.options.handler;
    switch (message.kind) {
      case "announce":
        handler.onAnnounce(client, message);
        return;
      case "notify":
        handler.onNotify(client, message);
        return;
      case "validation":
        handler.onValidation(client, message);
        return;
      case "notification":
        throw new DecodeError(
          `clients must not send NOTIFICATION (${ApiMessageType.Notification})`,
        );
    }
  }
}
