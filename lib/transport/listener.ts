/**
 * A TCP accept loop with a connection limit, shared by the API and P2P servers.
 *
 * @module
 */

import type { SocketAddress } from "../address.ts";
import type { Logger } from "../log.ts";

/** Options of a {@link TcpListener}. */
export interface TcpListenerOptions {
  /** Address to bind; port 0 picks a free port. */
  readonly address: SocketAddress;
  /** Connections open at once; further ones are closed right after accept. */
  readonly maxConnections: () => number;
  /** Logger for refusals and accept errors. */
  readonly log: Logger;
  /** Takes ownership of each accepted connection. */
  readonly onConnection: (conn: Deno.TcpConn) => void;
  /** Number of connections currently owned (checked against the limit). */
  readonly openConnections: () => number;
}

/** Accepts connections until closed. */
export class TcpListener {
  private listener: Deno.TcpListener | undefined;
  private acceptLoopDone: Promise<void> = Promise.resolve();
  private closing = false;
  /** Connections refused because the limit was reached. */
  refused = 0;

  /** Creates the listener; call {@link listen} to bind. */
  constructor(private readonly options: TcpListenerOptions) {}

  /** Binds the address and starts accepting; returns the bound address. */
  listen(): Deno.NetAddr {
    const { hostname, port } = this.options.address;
    this.listener = Deno.listen({ hostname, port, transport: "tcp" });
    this.acceptLoopDone = this.acceptLoop(this.listener);
    return this.listener.addr;
  }

  /** The bound address (after {@link listen}). */
  get addr(): Deno.NetAddr {
    if (!this.listener) throw new Error("listener is not bound");
    return this.listener.addr;
  }

  /** Stops accepting; resolves when the accept loop has ended. */
  async close(): Promise<void> {
    this.closing = true;
    try {
      this.listener?.close();
    } catch {
      // already closed
    }
    await this.acceptLoopDone;
  }

  private async acceptLoop(listener: Deno.TcpListener): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.closing) return;
        if (error instanceof Deno.errors.BadResource) return;
        // EMFILE and similar: keep serving the connections we have.
        this.options.log.warn("accept failed", { error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (this.closing) {
        conn.close();
        return;
      }
      const limit = this.options.maxConnections();
      if (this.options.openConnections() >= limit) {
        this.refused++;
        if (this.refused === 1 || this.refused % 1000 === 0) {
          this.options.log.warn("connection limit reached, refusing", {
            limit,
            refused: this.refused,
          });
        }
        conn.close();
        continue;
      }
      try {
        conn.setNoDelay(true);
      } catch {
        // not fatal
      }
      this.options.onConnection(conn);
    }
  }
}
