/**
 * Optional HTTP status endpoint (`status_address`): `GET /status` returns the
 * node's identity, peers and counters as JSON. Read-only; bind it to loopback.
 *
 * @module
 */

import type { SocketAddress } from "../address.ts";
import type { Logger } from "../log.ts";

/** A running status endpoint. */
export class StatusServer {
  private server: Deno.HttpServer<Deno.NetAddr> | undefined;

  /** Serves `snapshot()` as JSON at `/status` once {@link listen} is called. */
  constructor(
    private readonly address: SocketAddress,
    private readonly snapshot: () => unknown,
    private readonly log: Logger,
  ) {}

  /** Binds and serves; returns the bound address. */
  listen(): Deno.NetAddr {
    this.server = Deno.serve({
      hostname: this.address.hostname,
      port: this.address.port,
      onListen: () => {},
      onError: (error) => {
        this.log.warn("status request failed", { error: String(error) });
        return new Response("internal error\n", { status: 500 });
      },
    }, (request) => {
      const url = new URL(request.url);
      if (request.method !== "GET") return new Response("method not allowed\n", { status: 405 });
      if (url.pathname !== "/status" && url.pathname !== "/") {
        return new Response("not found; try /status\n", { status: 404 });
      }
      return Response.json(this.snapshot());
    });
    return this.server.addr;
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    if (!this.server) throw new Error("status server is not listening");
    return this.server.addr;
  }

  /** Stops serving. */
  async close(): Promise<void> {
    await this.server?.shutdown();
  }
}
