/**
 * Optional HTTP status endpoint (`status_address`), read-only:
 *
 * - `GET /` a live status page (lib/transport/status_page.ts);
 * - `GET /status` identity, peers and counters as JSON;
 * - `GET /metrics` the Prometheus text format (lib/transport/metrics.ts).
 *
 * It has no authentication: bind it to loopback (the config refuses anything
 * else unless `status_allow_remote = true`). Requests whose `Host` header names
 * a host other than an IP literal, `localhost` or the configured host are
 * refused (421), so that a web page the operator visits cannot read the
 * endpoint through DNS rebinding.
 *
 * @module
 */

import { formatSocketAddress, isIPv6Literal, type SocketAddress } from "../address.ts";
import { ListenError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { VERSION } from "../version.ts";
import { metricsFromStats, type NodeMetrics, type StatusSnapshot } from "./metrics.ts";
import type { MetricsRenderer } from "./metrics_renderer.ts";
import { STATUS_PAGE_HTML, statusPageHeaders } from "./status_page.ts";

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** A running status endpoint. */
export class StatusServer {
  private server: Deno.HttpServer<Deno.NetAddr> | undefined;
  /** Loaded on the first scrape (prom-client is not needed before). */
  private renderer: Promise<MetricsRenderer> | undefined;
  private pageHeaders: Promise<Record<string, string>> | undefined;

  /**
   * Serves `snapshot()` once {@link listen} is called; `metrics()` defaults to
   * {@link metricsFromStats} of the snapshot.
   */
  constructor(
    private readonly address: SocketAddress,
    private readonly snapshot: () => StatusSnapshot,
    private readonly log: Logger,
    private readonly metrics: () => NodeMetrics = () => metricsFromStats(snapshot()),
  ) {}

  /**
   * Binds and serves; returns the bound address.
   *
   * @throws {ListenError} `status_address` when the address cannot be bound.
   */
  listen(): Deno.NetAddr {
    try {
      this.server = Deno.serve({
        hostname: this.address.hostname,
        port: this.address.port,
        onListen: () => {},
        onError: (error) => {
          this.log.warn("status request failed", { error: String(error) });
          return new Response("internal error\n", { status: 500 });
        },
      }, (request) => this.handle(request));
    } catch (error) {
      throw ListenError.from("status_address", formatSocketAddress(this.address), error);
    }
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

  private async handle(request: Request): Promise<Response> {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (!this.hostAllowed(request.headers.get("host"))) {
      return new Response("unexpected Host header\n", { status: 421 });
    }
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/":
        this.pageHeaders ??= statusPageHeaders();
        return new Response(STATUS_PAGE_HTML, { headers: await this.pageHeaders });
      case "/status":
        return Response.json(this.snapshot(), { headers: { "cache-control": "no-store" } });
      case "/metrics": {
        this.renderer ??= import("./metrics_renderer.ts").then((m) =>
          new m.MetricsRenderer(VERSION)
        );
        const renderer = await this.renderer;
        return new Response(await renderer.render(this.metrics()), {
          headers: { "content-type": renderer.contentType, "cache-control": "no-store" },
        });
      }
      default:
        return new Response("not found; try /, /status or /metrics\n", { status: 404 });
    }
  }

  /** True for a missing Host, an IP literal, `localhost`, or the configured host name. */
  private hostAllowed(header: string | null): boolean {
    if (header === null) return true;
    let host = header.toLowerCase();
    if (host.startsWith("[")) return isIPv6Literal(host.slice(1, host.indexOf("]")));
    const colon = host.lastIndexOf(":");
    if (colon >= 0) host = host.slice(0, colon);
    return IPV4.test(host) || host === "localhost" || host === this.address.hostname.toLowerCase();
  }
}
