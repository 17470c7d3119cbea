/**
 * Round-trip times to connected peers, measured with PING and PONG.
 *
 * A node pings every peer at the keepalive interval; a PONG that echoes the
 * nonce of the one outstanding PING to that peer gives a sample. The estimate
 * is the **smallest** sample (the propagation delay: queueing and a slow
 * reader only add to it), which a peer
 * cannot lower: the nonce is random, so a PONG sent before the PING arrived
 * cannot match, and a delayed PONG only makes the peer look farther. Once a
 * peer has proven itself, Spreading sends part of each item's pushes to the
 * nearest peers (docs/PROTOCOL.md, "Near pushes").
 *
 * Pure bookkeeping: time comes in as arguments, nonces from an injected source.
 *
 * @module
 */

import type { PeerKey } from "./item_store.ts";

/** A PING this node sent and awaits the PONG of. */
interface OutstandingPing {
  readonly nonce: bigint;
  readonly sentAt: number;
}

/** A source of PING nonces; must be unpredictable to peers. */
export type NonceSource = () => bigint;

/** 64 bits from the platform's cryptographic generator. */
export const randomNonce: NonceSource = () => crypto.getRandomValues(new BigUint64Array(1))[0];

/** Per-peer round-trip estimates of one node. */
export class RoundTrips {
  private readonly outstanding = new Map<PeerKey, OutstandingPing>();
  private readonly smallest = new Map<PeerKey, number>();

  /** Creates an empty table drawing nonces from `nonce`. */
  constructor(private readonly nonce: NonceSource = randomNonce) {}

  /**
   * Records a PING to `peer` sent at `now` and returns its nonce. A PING
   * still unanswered is superseded: its PONG no longer counts.
   */
  ping(peer: PeerKey, now: number): bigint {
    const nonce = this.nonce();
    this.outstanding.set(peer, { nonce, sentAt: now });
    return nonce;
  }

  /**
   * Takes `peer`'s PONG with `nonce` at `now`: returns the sample in ms, or
   * undefined when it answers no outstanding PING (unsolicited, stale or
   * forged), which changes nothing.
   */
  pong(peer: PeerKey, nonce: bigint, now: number): number | undefined {
    const ping = this.outstanding.get(peer);
    if (ping === undefined || ping.nonce !== nonce) return undefined;
    this.outstanding.delete(peer);
    const sample = Math.max(0, now - ping.sentAt);
    const known = this.smallest.get(peer);
    if (known === undefined || sample < known) this.smallest.set(peer, sample);
    return sample;
  }

  /** Smallest round trip measured to `peer` in ms, if any. */
  rttMs(peer: PeerKey): number | undefined {
    return this.smallest.get(peer);
  }

  /** Forgets `peer` (its session closed). */
  forget(peer: PeerKey): void {
    this.outstanding.delete(peer);
    this.smallest.delete(peer);
  }

  /** Peers with an estimate or an outstanding PING, for the status endpoint. */
  get size(): number {
    let onlyPinged = 0;
    for (const peer of this.outstanding.keys()) if (!this.smallest.has(peer)) onlyPinged++;
    return this.smallest.size + onlyPinged;
  }
}
