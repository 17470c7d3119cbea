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
import { API_FRAME_FORMAT, type ApiMessage, decodeApiMessage } from "../codec/api_messages.ts";
import type { Logger } from "../log.ts";
import { FramedConnection } from "./framed_connection.ts";
import { TcpListener } from "./listener.ts";

/** Receives API clients' connections and decoded messages. */
export interface ApiHandler {
  /** A client connected. */
  onClientOpened(client: number): void;
  /** A client sent a well-framed, decodable message. */
  onMessage(client: number, message: ApiMessage): void;
  /** A client's connection ended. */
  onClientClosed(client: number): void;
}

/** Options of an {@link ApiServer}. */
export interface ApiServerOptions {
  /** Address to bind. */
  readonly address: SocketAddress;
  /** Clients connected at once. */
  readonly maxConnections: number;
  /** Per-client send queue limit in bytes; messages beyond it are dropped. */
  readonly maxQueuedBytes: number;
  /**
   * Limit of all clients' send queues together: beyond it, a message is
   * dropped for a client holding more than its fair share, so clients that
   * subscribe and never read cannot make memory grow with their number
   * (bounded by about twice this value in all).
   */
  readonly maxTotalQueuedBytes: number;
  /** A started message must be complete within this time, or the client is closed. */
  readonly partialFrameTimeoutMs: number;
  /** A new client must send its first message within this time, or it is closed. */
  readonly firstMessageTimeoutMs: number;
  /** Logger. */
  readonly log: Logger;
  /** Receives the clients' messages. */
  readonly handler: ApiHandler;
}

/** The API listener and its clients. */
export class ApiServer {
  private readonly listener: TcpListener;
  private readonly clients = new Map<number, FramedConnection>();
  private readonly connectionsDone = new Set<Promise<void>>();
  private nextClientId = 1;
  private maxConnections: number;

  /** Creates the server; call {@link listen} to bind. */
  constructor(private readonly options: ApiServerOptions) {
    this.maxConnections = options.maxConnections;
    this.listener = new TcpListener({
      address: options.address,
      maxConnections: () => this.maxConnections,
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

  /** Changes the limit of clients connected at once (new connections only). */
  setMaxConnections(limit: number): void {
    this.maxConnections = limit;
  }

  /** Bytes waiting in all clients' send queues. */
  get queuedBytes(): number {
    let total = 0;
    for (const connection of this.clients.values()) total += connection.pendingBytes;
    return total;
  }

  /**
   * Queues an encoded message to `client`; false when dropped: its own queue is
   * full, or all queues together are and this client holds more than its fair
   * share of them (so a client that reads keeps being served while others
   * that do not have filled the budget), or it is closed.
   */
  send(client: number, message: Uint8Array): boolean {
    return this.sendEncoded(client, message.length, () => message);
  }

  /**
   * Like {@link send}, but builds the message with `encode()` only once it is
   * known to fit: a message dropped for a slow client costs no allocation.
   */
  sendEncoded(client: number, size: number, encode: () => Uint8Array): boolean {
    const connection = this.clients.get(client);
    if (!connection || connection.isClosed) return false;
    const { maxTotalQueuedBytes, maxQueuedBytes } = this.options;
    if (connection.pendingBytes + size > maxQueuedBytes) {
      connection.droppedFrames++;
      return false;
    }
    if (this.queuedBytes + size > maxTotalQueuedBytes) {
      const fairShare = maxTotalQueuedBytes / this.clients.size;
      if (connection.pendingBytes + size > fairShare) {
        connection.droppedFrames++;
        return false;
      }
    }
    return connection.send(encode());
  }

  /** Closes `client` for breaking the API protocol, with one log line. */
  closeClient(client: number, reason: string): void {
    const connection = this.clients.get(client);
    if (!connection) return;
    this.options.log.warn("closing connection", { remote: connection.remote, reason });
    void connection.close(reason);
  }

  /** Stops accepting and closes every client. */
  async close(): Promise<void> {
    await this.listener.close();
    await Promise.all([...this.clients.values()].map((c) => c.close("shutdown")));
    await Promise.all(this.connectionsDone);
  }

  private accept(conn: Deno.TcpConn): void {
    const id = this.nextClientId++;
    const { log, handler } = this.options;
    const connection = new FramedConnection(conn, {
      format: API_FRAME_FORMAT,
      maxQueuedBytes: this.options.maxQueuedBytes,
      partialFrameTimeoutMs: this.options.partialFrameTimeoutMs,
      firstFrameTimeoutMs: this.options.firstMessageTimeoutMs,
      log,
      onFrame: (frame) => handler.onMessage(id, decodeApiMessage(frame)),
      onClose: (reason) => {
        this.clients.delete(id);
        log.debug("api client disconnected", { client: id, reason });
        handler.onClientClosed(id);
      },
    });
    this.clients.set(id, connection);
    handler.onClientOpened(id);
    log.debug("api client connected", { client: id, remote: connection.remote });
    const done = connection.start();
    this.connectionsDone.add(done);
    done.finally(() => this.connectionsDone.delete(done));
  }
}
