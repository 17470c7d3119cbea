/**
 * The P2P port's connections before they are sessions: the listener,
 * outbound dials, probe handshakes, and the unauthenticated connections in
 * between, each with an ID so that admission can evict one.
 *
 * Every handshake runs to an authenticated {@link PeerSession} or fails; the
 * connector hands sessions (and failures, by category) to its owner and keeps
 * track of everything in flight, so that {@link PeerConnector.close} can wait
 * until no socket is left.
 *
 * @module
 */

import type { SocketAddress } from "../address.ts";
import { GoodbyeReason, HelloFlags } from "../codec/peer_messages.ts";
import type { Logger } from "../log.ts";
import { TcpListener } from "./listener.ts";
import { PeerSession, type PeerSessionOptions } from "./peer_session.ts";

/** What the connector reports to its owner. */
export interface PeerConnectorHandler {
  /** A new inbound connection `id` from `ip`: false closes it at once. */
  admit(id: number, ip: string): boolean;
  /**
   * The inbound connection `id` sent its HELLO naming `identity`: false ends
   * the handshake before any key agreement or signature check.
   */
  identify(id: number, identity: string, ip: string): boolean;
  /** Admitted connection `id` finished its handshake, failed, or was closed. */
  ended(id: number): void;
  /** An authenticated session (not a probe); `dialed` is the address key of an outbound dial. */
  session(session: PeerSession, dialed?: string): void;
  /** A handshake failed, with a short category of why. */
  handshakeFailed(reason: string, message: string): void;
}

/** Options of a {@link PeerConnector}. */
export interface PeerConnectorOptions {
  /** Address to listen at. */
  readonly address: SocketAddress;
  /** Connections (sessions and handshakes) open at once; beyond, new ones are closed. */
  readonly maxConnections: () => number;
  /** Sessions currently open, counted against `maxConnections`. */
  readonly openSessions: () => number;
  /** Logger. */
  readonly log: Logger;
  /** Receives sessions and failures. */
  readonly handler: PeerConnectorHandler;
}

/** Listener, dials, probes and handshakes of one node's P2P port. */
export class PeerConnector {
  private readonly listener: TcpListener;
  private readonly handshakes = new Map<number, Deno.TcpConn>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private sessionOptions: PeerSessionOptions | undefined;
  private nextId = 1;
  private closing = false;

  /** Creates the connector; call {@link listen} to bind. */
  constructor(private readonly options: PeerConnectorOptions) {
    this.listener = new TcpListener({
      address: options.address,
      maxConnections: options.maxConnections,
      log: options.log,
      openConnections: () => options.openSessions() + this.handshakes.size,
      onConnection: (conn) => this.accept(conn),
    });
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.listener.addr;
  }

  /** Unauthenticated connections open. */
  get handshaking(): number {
    return this.handshakes.size;
  }

  /** Handshakes, dials and probes in flight. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Binds the port; handshakes use `sessionOptions` (known only once bound). */
  listen(): Deno.NetAddr {
    return this.listener.listen();
  }

  /** Sets the handshake settings (the advertised address needs the bound port). */
  configure(sessionOptions: PeerSessionOptions): void {
    this.sessionOptions = sessionOptions;
  }

  /**
   * Connects to `address` and runs the outbound handshake with HELLO's
   * `flags` ({@link HelloFlags}: `Deliver`, `Feel`); the session goes to the
   * handler, a failure (no connection or no session) to `failed`.
   */
  dial(address: SocketAddress, key: string, failed: () => void, flags = 0): void {
    this.track((async () => {
      const session = await this.connect(address, flags).catch((error) => {
        if (!(error instanceof ConnectFailed)) this.failed(error);
        this.options.log.debug("dial failed", { peer: key, error: String(error) });
        return undefined;
      });
      if (session) this.options.handler.session(session, key);
      else if (!this.closing) failed();
    })());
  }

  /** Runs a probe handshake at `address`; reports who answered (undefined: nobody). */
  probe(address: SocketAddress, done: (identity: string | undefined) => void): void {
    this.track((async () => {
      let identity: string | undefined;
      try {
        const session = await this.connect(address, HelloFlags.Probe);
        identity = session.identityHex;
        session.attach({ onMessage: () => {}, onClose: () => {} });
        await session.close("probe done", GoodbyeReason.Probe);
      } catch (error) {
        this.options.log.debug("probe failed", { address: address.hostname, error: String(error) });
      }
      if (!this.closing) done(identity);
    })());
  }

  /** Closes the unauthenticated connection `id` (admission evicted it). */
  evict(id: number): void {
    const conn = this.handshakes.get(id);
    if (conn) closeQuietly(conn);
  }

  /** Remembers `work` (a closing session, say) so that {@link close} waits for it. */
  track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    work.finally(() => this.inFlight.delete(work));
  }

  /** Stops listening, closes unauthenticated connections and waits for everything in flight. */
  async close(): Promise<void> {
    this.closing = true;
    await this.listener.close();
    for (const conn of this.handshakes.values()) closeQuietly(conn);
    // Work in flight settles once its sockets are closed; new work may follow it once.
    for (let round = 0; round < 100 && this.inFlight.size > 0; round++) {
      await Promise.allSettled([...this.inFlight]);
    }
  }

  private accept(conn: Deno.TcpConn): void {
    const id = this.nextId++;
    const ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    if (this.closing || !this.sessionOptions || !this.options.handler.admit(id, ip)) {
      closeQuietly(conn);
      return;
    }
    this.handshakes.set(id, conn);
    const options: PeerSessionOptions = {
      ...this.sessionOptions,
      admitIdentity: (identity, from) => this.options.handler.identify(id, identity, from),
    };
    this.track(
      PeerSession.establish(conn, "inbound", options).then(
        (session) => this.inbound(session),
        (error) => this.failed(error),
      ).finally(() => {
        this.handshakes.delete(id);
        this.options.handler.ended(id);
      }),
    );
  }

  private inbound(session: PeerSession): void {
    if (!session.isProbe) {
      this.options.handler.session(session);
      return;
    }
    // The peer only checks that we listen here; it closes after the handshake.
    session.attach({ onMessage: () => {}, onClose: () => {} });
    const timeout = this.sessionOptions?.handshakeTimeoutMs ?? 5_000;
    const timer = setTimeout(() => session.close("probe answered"), timeout);
    this.track(session.done.finally(() => clearTimeout(timer)));
  }

  private async connect(address: SocketAddress, flags: number): Promise<PeerSession> {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: address.hostname, port: address.port });
    } catch (error) {
      throw new ConnectFailed(String(error));
    }
    if (this.closing || !this.sessionOptions) {
      closeQuietly(conn);
      throw new ConnectFailed("shutting down");
    }
    conn.setNoDelay(true);
    const id = this.nextId++;
    this.handshakes.set(id, conn);
    try {
      return await PeerSession.establish(conn, "outbound", this.sessionOptions, flags);
    } finally {
      this.handshakes.delete(id);
    }
  }

  /** Counts a failed handshake; one that close() ended did not fail and is not counted. */
  private failed(error: unknown): void {
    if (this.closing) return;
    const message = error instanceof Error ? error.message : String(error);
    this.options.handler.handshakeFailed(failureReason(message), message);
  }
}

/** How PeerSession words a handshake that ended because its connection closed. */
const CLOSED_DURING_HANDSHAKE = "connection closed during handshake: ";

/**
 * A short category of a handshake failure, for counters (the metrics' reasons).
 * A handshake ended by a closed connection is categorised by why it closed:
 * a refused HELLO or a timer closes the connection too.
 */
function failureReason(message: string): string {
  const cause = message.startsWith(CLOSED_DURING_HANDSHAKE)
    ? message.slice(CLOSED_DURING_HANDSHAKE.length)
    : message;
  if (/timed out|timeout|in time$/.test(cause)) return "timeout";
  if (/proof-of-work/.test(cause)) return "proof_of_work";
  if (/signature|does not verify/.test(cause)) return "bad_signature";
  if (/too many new credentials/.test(cause)) return "credential_rate";
  if (/version/.test(cause)) return "protocol_version";
  if (/to self/.test(cause)) return "self";
  if (
    /end of stream|closed|write failed|^(Interrupted|BadResource|ConnectionReset|BrokenPipe|ConnectionAborted|NotConnected):/
      .test(cause)
  ) {
    return "connection_closed";
  }
  return "protocol";
}

/** No TCP connection could be made (not a handshake failure). */
class ConnectFailed extends Error {}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
