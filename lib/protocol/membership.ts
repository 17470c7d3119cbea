/**
 * Membership: which peers this node is connected to (the active view) and which
 * others it knows of (the passive view), and whom to dial next.
 *
 * The node keeps `degree` outbound connections that it chose itself; inbound
 * connections come on top and cannot displace them. Peers are learned from the
 * bootstrapper and from push-pull exchanges; each exchange accepts only a bounded
 * number of new descriptors per source (a Brahms-style push limit). Failed dials
 * back off exponentially with jitter; the bootstrapper is retried forever, and
 * any known peer can serve to rejoin. Pure state: the node performs the I/O.
 *
 * @module
 */

import { formatSocketAddress, type SocketAddress } from "../address.ts";
import { defaultRandom, type RandomSource, sample } from "./random.ts";

/** Direction of a connection as seen from this node. */
export type Direction = "outbound" | "inbound";

/** A peer this node knows an address for. */
export interface KnownPeer {
  /** Hex identity, unknown for a configured bootstrapper before first contact. */
  identity?: string;
  /** Listening address. */
  readonly address: SocketAddress;
  /** `formatSocketAddress(address)`, the key of the passive view. */
  readonly addressKey: string;
  /** Consecutive failed dials. */
  failures: number;
  /** Earliest time of the next dial. */
  nextAttemptAt: number;
  /** The configured bootstrapper (never evicted). */
  readonly bootstrap: boolean;
  /**
   * True once this node has had a session with the peer (or restored it from its
   * own peers file). Only verified peers are passed on to others, so addresses
   * invented by an attacker do not spread beyond the node it told them to.
   */
  verified: boolean;
}

/** A connected peer. */
export interface ActivePeer {
  /** Hex identity. */
  readonly identity: string;
  /** Its advertised listening address. */
  readonly address: SocketAddress;
  /** Who opened the connection. */
  readonly direction: Direction;
}

/** A descriptor offered to or by peers. */
export interface AddressedPeer {
  /** Hex identity. */
  readonly identity: string;
  /** Listening address. */
  readonly address: SocketAddress;
}

/** Tuning of a {@link Membership}. */
export interface MembershipOptions {
  /** This node's hex identity (never added to its own views). */
  readonly selfIdentity: string;
  /** This node's advertised address, also never dialed. */
  readonly selfAddress?: SocketAddress;
  /** Outbound connections to maintain. */
  readonly degree: number;
  /** Most peers kept in the passive view. */
  readonly passiveSize: number;
  /** Most new descriptors accepted from one message (push limit). */
  readonly maxLearnPerMessage: number;
  /** First retry delay after a failed dial. */
  readonly backoffBaseMs: number;
  /** Largest retry delay. */
  readonly backoffMaxMs: number;
  /** The configured bootstrapper, if any. */
  readonly bootstrapper?: SocketAddress;
  /** Randomness of choices. */
  readonly random?: RandomSource;
}

/** Active and passive views of one node. */
export class Membership {
  private readonly active = new Map<string, ActivePeer>();
  private readonly passive = new Map<string, KnownPeer>();
  private readonly dialing = new Set<string>();
  private readonly random: RandomSource;
  private readonly selfAddressKey: string | undefined;

  /** Creates the views; the bootstrapper, if any, is the first known peer. */
  constructor(private readonly options: MembershipOptions) {
    this.random = options.random ?? defaultRandom;
    this.selfAddressKey = options.selfAddress && formatSocketAddress(options.selfAddress);
    if (options.bootstrapper) {
      const addressKey = formatSocketAddress(options.bootstrapper);
      if (addressKey !== this.selfAddressKey) {
        this.passive.set(addressKey, {
          address: options.bootstrapper,
          addressKey,
          failures: 0,
          nextAttemptAt: 0,
          bootstrap: true,
          verified: false,
        });
      }
    }
  }

  /** Connected peers. */
  get activePeers(): ActivePeer[] {
    return [...this.active.values()];
  }

  /** Number of connected peers. */
  get activeCount(): number {
    return this.active.size;
  }

  /** Number of outbound connections. */
  get outboundCount(): number {
    let count = 0;
    for (const peer of this.active.values()) if (peer.direction === "outbound") count++;
    return count;
  }

  /** Known but unconnected peers. */
  get passivePeers(): KnownPeer[] {
    return [...this.passive.values()];
  }

  /** True when `identity` is connected. */
  isConnected(identity: string): boolean {
    return this.active.has(identity);
  }

  /** The connected peer with `identity`. */
  get(identity: string): ActivePeer | undefined {
    return this.active.get(identity);
  }

  /** Records a completed handshake. */
  connected(peer: ActivePeer): void {
    this.active.set(peer.identity, peer);
    const key = formatSocketAddress(peer.address);
    this.dialing.delete(key);
    const known = this.passive.get(key);
    if (known?.bootstrap) {
      // Keep the bootstrapper known for rejoining, now with its identity.
      known.identity = peer.identity;
      known.failures = 0;
      known.verified = true;
    } else {
      this.passive.delete(key);
    }
    for (const [otherKey, other] of this.passive) {
      if (other.identity === peer.identity && !other.bootstrap) this.passive.delete(otherKey);
    }
  }

  /** Records a closed connection; the peer stays known for later dials. */
  disconnected(identity: string, now: number): void {
    const peer = this.active.get(identity);
    if (!peer) return;
    this.active.delete(identity);
    const key = formatSocketAddress(peer.address);
    const known = this.passive.get(key);
    if (known) {
      known.nextAttemptAt = Math.max(known.nextAttemptAt, now + this.options.backoffBaseMs);
      known.verified = true;
    } else {
      this.addPassive({ identity, address: peer.address }, now + this.options.backoffBaseMs, true);
    }
  }

  /**
   * Peers to dial now so that outbound connections plus dials in progress reach
   * `degree`. Each returned peer is marked as dialing until
   * {@link dialFinished}. The bootstrapper is chosen when nothing else is.
   */
  nextDials(now: number): KnownPeer[] {
    const wanted = this.options.degree - this.outboundCount - this.dialing.size;
    if (wanted <= 0) return [];
    const activeAddresses = new Set(
      [...this.active.values()].map((peer) => formatSocketAddress(peer.address)),
    );
    const eligible = [...this.passive.values()].filter((peer) =>
      peer.nextAttemptAt <= now &&
      !this.dialing.has(peer.addressKey) &&
      !activeAddresses.has(peer.addressKey) &&
      !(peer.identity !== undefined && this.active.has(peer.identity))
    );
    const regular = eligible.filter((peer) => !peer.bootstrap);
    let chosen = sample(regular, wanted, this.random);
    if (chosen.length < wanted && (this.active.size === 0 || chosen.length === 0)) {
      chosen = chosen.concat(eligible.filter((peer) => peer.bootstrap).slice(0, 1));
    }
    for (const peer of chosen) this.dialing.add(peer.addressKey);
    return chosen;
  }

  /**
   * Ends a dial; a failure backs the peer off exponentially with jitter.
   * `identity` is who answered at that address (when the handshake completed):
   * recorded so that a bootstrapper configured by hostname, which advertises
   * another address, is not dialed again while connected.
   */
  dialFinished(addressKey: string, succeeded: boolean, now: number, identity?: string): void {
    this.dialing.delete(addressKey);
    const peer = this.passive.get(addressKey);
    if (!peer) return;
    if (identity !== undefined) peer.identity = identity;
    if (succeeded) {
      peer.failures = 0;
      return;
    }
    peer.failures++;
    const { backoffBaseMs, backoffMaxMs } = this.options;
    const delay = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(peer.failures - 1, 20));
    peer.nextAttemptAt = now + delay * (0.5 + this.random() * 0.5);
  }

  /** Dials in progress. */
  get dialsInProgress(): number {
    return this.dialing.size;
  }

  /**
   * Adds descriptors learned from a peer to the passive view; at most
   * `maxLearnPerMessage` new ones per call. Returns how many were added.
   */
  learn(peers: readonly AddressedPeer[], now: number): number {
    let added = 0;
    for (const peer of sample(peers, peers.length, this.random)) {
      if (added >= this.options.maxLearnPerMessage) break;
      if (this.addPassive(peer, now)) added++;
    }
    return added;
  }

  /**
   * Adds peers remembered from an earlier run (the peers file), without the
   * per-message limit of {@link learn}. Returns how many were added.
   */
  restore(peers: readonly AddressedPeer[], now: number): number {
    let added = 0;
    for (const peer of peers) if (this.addPassive(peer, now, true)) added++;
    return added;
  }

  /** Every peer worth remembering across restarts: connected ones first. */
  knownPeers(): AddressedPeer[] {
    const out: AddressedPeer[] = [...this.active.values()];
    for (const peer of this.passive.values()) {
      if (peer.identity !== undefined && !this.active.has(peer.identity)) {
        out.push({ identity: peer.identity, address: peer.address });
      }
    }
    return out;
  }

  /** Up to `count` random descriptors with known identity, excluding `exclude`. */
  sample(count: number, exclude?: string): AddressedPeer[] {
    const pool: AddressedPeer[] = [];
    for (const peer of this.active.values()) {
      if (peer.identity !== exclude) pool.push(peer);
    }
    for (const peer of this.passive.values()) {
      if (
        peer.verified && peer.identity !== undefined && peer.identity !== exclude &&
        peer.failures === 0 && !this.active.has(peer.identity) // a connected bootstrapper is listed once
      ) {
        pool.push({ identity: peer.identity, address: peer.address });
      }
    }
    return sample(pool, count, this.random);
  }

  /** A random connected peer, for a push-pull exchange. */
  exchangePartner(): ActivePeer | undefined {
    const peers = [...this.active.values()];
    return peers.length === 0 ? undefined : peers[Math.floor(this.random() * peers.length)];
  }

  private addPassive(peer: AddressedPeer, nextAttemptAt: number, verified = false): boolean {
    if (peer.identity === this.options.selfIdentity) return false;
    if (this.active.has(peer.identity)) return false;
    const addressKey = formatSocketAddress(peer.address);
    if (addressKey === this.selfAddressKey) return false;
    const existing = this.passive.get(addressKey);
    if (existing) {
      // Only first-hand knowledge may name who is at an address.
      if (verified) {
        existing.identity = peer.identity;
        existing.verified = true;
      }
      return false;
    }
    if (this.options.passiveSize <= 0) return false;
    if (this.passive.size >= this.options.passiveSize && !this.evictOne()) return false;
    this.passive.set(addressKey, {
      identity: peer.identity,
      address: peer.address,
      addressKey,
      failures: 0,
      nextAttemptAt,
      bootstrap: false,
      verified,
    });
    return true;
  }

  /** Evicts the passive peer with most failures (random among equals, unverified first). */
  private evictOne(): boolean {
    const candidates = [...this.passive.values()].filter((peer) =>
      !peer.bootstrap && !this.dialing.has(peer.addressKey)
    );
    if (candidates.length === 0) return false;
    // Most failures first; among equals, second-hand (unverified) peers first.
    const score = (peer: KnownPeer) => peer.failures * 2 + (peer.verified ? 0 : 1);
    const worst = Math.max(...candidates.map(score));
    const pool = candidates.filter((peer) => score(peer) === worst);
    const victim = pool[Math.floor(this.random() * pool.length)];
    this.passive.delete(victim.addressKey);
    return true;
  }
}
