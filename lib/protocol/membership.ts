/**
 * Membership: which peers this node is connected to (the active view), which
 * others it knows of (the passive view), whom to dial next and whom to
 * recommend to others.
 *
 * The node keeps `degree` outbound connections that it chose itself; inbound
 * connections come on top and cannot displace them.
 *
 * Addresses are claims until proven. A peer's address is **verified** only
 * when this node itself dialled that address (a dial or a probe) and the
 * handshake proved the identity there (or it was restored from this node's
 * own peers file, which holds only verified peers). An inbound session proves
 * nothing about the address its peer advertises. Only verified peers are
 * passed on to others (pull answers, referrals), preferring those verified
 * longest and, up to half, peers that brought items first, so peers that
 * merely connected to a node a moment ago cannot be recommended by it to a
 * newcomer.
 *
 * When dialling, **anchors** come first, once after a restart: the outbound
 * peers this node still trusted when it saved its peers file (Bitcoin Core's
 * `anchors.dat`; once one of its peers was proven, only the proven ones), so
 * that attackers that filled its view while it was up do not choose all its
 * first peers. Then **proven** peers (they brought this node items first: the
 * guard's score is above 0; after a restart, those its peers file marks
 * proven, until a dial reaches them), which the passive view keeps longest.
 * Then, for half the dials, **proven peers' tips**, peers a proven peer named (while it is still
 * proven): a node whose honest peers leave (churn) otherwise replaced them
 * from a view that attackers had filled. While none of its peers is proven
 * (before items flow, nothing tells an attacker from an honest peer), half the
 * dials go to peers a configured bootstrapper named (**bootstrapper tips**),
 * while there are any: an attacker among this node's outbound peers names only
 * attackers, so tips from peers compound the attackers' share of a node's peers
 * at every dial (94 % of honest nodes' outbound peers in the simulated cold
 * boot at 1:1), while a bootstrapper's recommendations follow its own verified
 * and proven peers. The other dials go with equal odds to a **tried** peer
 * (this node chose to dial it and found it where claimed; a probe of a peer
 * that dialled in does not count: anyone can dial in) or to a new one (verified
 * by a probe, or learned from an outbound peer), as Bitcoin Core's addrman
 * does; peers learned only from inbound peers (which anyone can be) come last,
 * and **withholders** ({@link WITHHOLDER_MERIT}: they advertised items they
 * did not deliver) after them, with the unverified peers that a withholder or
 * a distrusted peer named (no bootstrapper tips, even from a bootstrapper).
 * A full passive view evicts the least trustworthy spare; among equals, one
 * named by the source that named most of them (as Bitcoin Core's addrman
 * buckets new addresses by source), so that the claims of the peers a node
 * exchanges with every round cannot wash out what another source named.
 * Dialling tried peers first sent every node back to the few it once reached:
 * they filled up and evicted without end while others had no inbound peer
 * (docs/SECURITY.md, "Eclipse attacks").
 *
 * Peers are learned from bootstrappers and from push-pull exchanges; each
 * exchange accepts only a bounded number of new descriptors (a Brahms-style
 * push limit). Failed dials back off exponentially with jitter; bootstrappers
 * are retried forever. Pure state: the node performs the I/O.
 *
 * @module
 */

import { formatSocketAddress, type SocketAddress } from "../address.ts";
import { allWithLargest, defaultRandom, type RandomSource, sample } from "./random.ts";

/** Direction of a connection as seen from this node. */
export type Direction = "outbound" | "inbound";

/** Where a passive peer came from, in order of trust. */
export type PeerSource =
  /** A configured bootstrapper. */
  | "bootstrap"
  /** Learned from a peer this node dialled. */
  | "outbound"
  /** Learned from a peer that dialled this node (or its own advertisement). */
  | "inbound";

/**
 * Merit at or below which a peer is a **withholder**: within about a score
 * half-life it advertised an item it did not deliver (the guard's
 * "unanswered-want" penalty, 5, halves to 2.5 in one half-life) beyond what it
 * brought first. Withholders are dialled last, and an outbound one is replaced
 * at the next round (the connection manager). Milder marks do not count: an
 * honest peer's PUSH that crossed a round boundary costs it 0.5.
 */
export const WITHHOLDER_MERIT = -2.5;

/** Largest share of the passive view that one proven peer's tips may hold. */
export const MAX_VOUCHED_SHARE = 0.25;

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
  /** A configured bootstrapper (never evicted). */
  readonly bootstrap: boolean;
  /** Where this node learned of it. */
  source: PeerSource;
  /**
   * The peer that told this node of it (unverified entries learned from
   * exchanges); once that peer is distrusted or a withholder, its tips are
   * dialled last and evicted first, and the passive view evicts equals from
   * the source that named most of them.
   */
  learnedFrom?: string;
  /**
   * A configured bootstrapper named it (answering a pull, referring this
   * node elsewhere, or pushing): while no connected peer is proven, half the
   * dials go to such peers.
   */
  bootstrapTip?: boolean;
  /**
   * The proven peer (it had brought this node items first) that named it, if
   * one did: half the dials go to such tips, and the passive view keeps them
   * as it keeps tried peers, while that peer is still proven (an attacker
   * that relayed items to earn a score, then turned, loses its sway at its
   * first unanswered IWANT).
   */
  vouchedBy?: string;
  /**
   * The proven peer that named it marked it proven too (it had brought that
   * peer items first): dialled with this node's own proven peers, while the
   * peer that vouched for it is still proven. A proven peer's proven peers
   * relay; its other recommendations are attackers as often as its views
   * hold them (docs/SIMULATION.md, "Round of proven marks").
   */
  provenTip?: boolean;
  /**
   * When this node first proved that `identity` listens at `address` (by
   * dialling it); undefined while the address is only claimed.
   */
  verifiedAt: number | undefined;
  /**
   * This node chose to dial the address and found `identity` there (Bitcoin
   * Core's "tried" table). A probe of a peer that dialled in verifies its
   * address but does not make it tried: anyone can dial in.
   */
  tried: boolean;
  /**
   * One of this node's outbound peers when its state was last saved, restored
   * from its peers file: dialled before any other peer, once (Bitcoin Core's
   * `anchors.dat`). Cleared by that dial, whatever its outcome.
   */
  anchor?: boolean;
  /**
   * It had brought this node items first (merit above 0) when the state was
   * last saved, restored from the peers file: ranked with proven peers (the
   * guard's scores do not survive a restart) until a dial reaches it.
   */
  provenBefore?: boolean;
}

/** A connected peer. */
export interface ActivePeer {
  /** Hex identity. */
  readonly identity: string;
  /** Its advertised listening address. */
  readonly address: SocketAddress;
  /** Who opened the connection. */
  readonly direction: Direction;
  /** When the session was established. */
  readonly since: number;
  /** When the address was first verified, if it ever was. */
  verifiedAt?: number;
  /** When this node last dialled the address to verify it. */
  probedAt?: number;
  /** This node dialled it by choice, now or before (see {@link KnownPeer.tried}). */
  tried?: boolean;
}

/** A descriptor offered to or by peers. */
export interface AddressedPeer {
  /** Hex identity. */
  readonly identity: string;
  /** Listening address. */
  readonly address: SocketAddress;
  /**
   * Proven to the node that lists it (it brought that node items first):
   * set by {@link Membership.sample}, and on descriptors a peer marked.
   */
  readonly proven?: boolean;
}

/** A verified peer saved across restarts. */
export interface SavedPeer extends AddressedPeer {
  /** Whether it was tried (see {@link KnownPeer.tried}); absent means not. */
  readonly tried?: boolean;
  /** An outbound peer when saved (see {@link KnownPeer.anchor}); absent means not. */
  readonly anchor?: boolean;
  /** Proven when saved (see {@link KnownPeer.provenBefore}); absent means not. */
  readonly proven?: boolean;
}

/** Tuning of a {@link Membership}. */
export interface MembershipOptions {
  /** This node's hex identity (never added to its own views). */
  readonly selfIdentity: string;
  /** This node's advertised address, also never dialled. */
  readonly selfAddress?: SocketAddress;
  /** Outbound connections to maintain. */
  readonly degree: number;
  /** Most peers kept in the passive view (bootstrappers not counted). */
  readonly passiveSize: number;
  /** Most new descriptors accepted from one message (push limit). */
  readonly maxLearnPerMessage: number;
  /** First retry delay after a failed dial. */
  readonly backoffBaseMs: number;
  /** Largest retry delay. */
  readonly backoffMaxMs: number;
  /**
   * Verified peers known at least this long are recommended before younger
   * ones (default 60 s).
   */
  readonly establishedAfterMs?: number;
  /** The configured bootstrappers, if any. */
  readonly bootstrappers?: readonly SocketAddress[];
  /**
   * False for identities not worth a session (distrusted by the guard): never
   * dialled, and the first to be evicted from the passive view.
   */
  readonly welcome?: (identity: string) => boolean;
  /**
   * What `identity` earned by bringing items first (the guard's score; 0 for
   * unknown peers). Peers with merit above 0 are proven: dialled before
   * others, and up to half of every recommendation.
   */
  readonly merit?: (identity: string) => number;
  /** Randomness of choices. */
  readonly random?: RandomSource;
}

const SOURCE_RANK: Record<PeerSource, number> = { bootstrap: 0, outbound: 1, inbound: 2 };
/** Failed dials in a row after which a verified spare no longer outranks a claim. */
const DEAD_AFTER_FAILURES = 3;

/** Whether `peer` is a tip of `voucher` that has not failed DEAD_AFTER_FAILURES dials in a row. */
function isLiveTipOf(peer: Pick<KnownPeer, "vouchedBy" | "failures">, voucher: string): boolean {
  return peer.vouchedBy === voucher && peer.failures < DEAD_AFTER_FAILURES;
}

/** A proven peer ranks with tried ones for this many times their failed dials. */
const PROVEN_FAILURE_SPAN = 3;

/**
 * True for a passive peer this node chose to dial and found where it was
 * claimed to be (Bitcoin Core's "tried" table), as long as it has not failed
 * {@link DEAD_AFTER_FAILURES} dials in a row since. A peer verified only by a
 * probe after it dialled in is not tried: anyone can dial in.
 */
function isTried(peer: Pick<KnownPeer, "tried" | "failures">): boolean {
  return peer.tried && peer.failures < DEAD_AFTER_FAILURES;
}

/** Removes and returns a random element of a non-empty `pool` (order not kept). */
function takeRandom<T>(pool: T[], random: RandomSource): T {
  const index = Math.floor(random() * pool.length);
  const taken = pool[index];
  pool[index] = pool[pool.length - 1];
  pool.pop();
  return taken;
}

/** Active and passive views of one node. */
export class Membership {
  private readonly active = new Map<string, ActivePeer>();
  private readonly passive = new Map<string, KnownPeer>();
  private readonly dialing = new Set<string>();
  private readonly random: RandomSource;
  private readonly welcome: (identity: string) => boolean;
  private readonly merit: (identity: string) => number;
  private readonly selfAddressKey: string | undefined;
  private bootstrapCount = 0;

  /** Creates the views; the bootstrappers, if any, are the first known peers. */
  constructor(private readonly options: MembershipOptions) {
    this.random = options.random ?? defaultRandom;
    this.welcome = options.welcome ?? (() => true);
    this.merit = options.merit ?? (() => 0);
    this.selfAddressKey = options.selfAddress && formatSocketAddress(options.selfAddress);
    for (const address of options.bootstrappers ?? []) {
      const addressKey = formatSocketAddress(address);
      if (addressKey === this.selfAddressKey || this.passive.has(addressKey)) continue;
      this.passive.set(addressKey, {
        address,
        addressKey,
        failures: 0,
        nextAttemptAt: 0,
        bootstrap: true,
        source: "bootstrap",
        verifiedAt: undefined,
        tried: false,
      });
      this.bootstrapCount++;
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

  /** Number of inbound connections. */
  get inboundCount(): number {
    return this.active.size - this.outboundCount;
  }

  /** True when `identity` answered at a configured bootstrapper's address. */
  isBootstrapper(identity: string): boolean {
    if (this.bootstrapCount === 0) return false;
    for (const peer of this.passive.values()) {
      if (peer.bootstrap && peer.identity === identity) return true;
    }
    return false;
  }

  /** True when a connected peer has merit above 0 (it brought this node an item first). */
  hasProvenPeer(): boolean {
    for (const identity of this.active.keys()) if (this.merit(identity) > 0) return true;
    return false;
  }

  /** Known but unconnected peers (bootstrappers included). */
  get passivePeers(): KnownPeer[] {
    return [...this.passive.values()];
  }

  /** Number of known but unconnected peers (bootstrappers included). */
  get passiveCount(): number {
    return this.passive.size;
  }

  /** True when `identity` is connected. */
  isConnected(identity: string): boolean {
    return this.active.has(identity);
  }

  /** The connected peer with `identity`. */
  get(identity: string): ActivePeer | undefined {
    return this.active.get(identity);
  }

  /**
   * Records a completed handshake. An outbound session verifies the address
   * it was dialled at (`now` is the verification time).
   */
  connected(
    peer: Omit<ActivePeer, "verifiedAt" | "since" | "probedAt" | "tried">,
    now = 0,
  ): void {
    const key = formatSocketAddress(peer.address);
    // A dial ends only in dialFinished, for the address that was dialled: a dial
    // of this address still in flight (the peer dialled in meanwhile, or another
    // peer answered elsewhere and advertises it) stays counted, and the address
    // is not dialled again before it ends.
    const known = this.passive.get(key);
    const sameIdentity = known?.identity === undefined || known.identity === peer.identity;
    let verifiedAt = sameIdentity ? known?.verifiedAt : undefined;
    if (peer.direction === "outbound") verifiedAt ??= now;
    const tried = peer.direction === "outbound" || (sameIdentity && known?.tried === true);
    this.active.set(peer.identity, { ...peer, since: now, verifiedAt, tried });
    if (known?.bootstrap) {
      // Keep the bootstrapper known for rejoining, now with its identity.
      known.identity = peer.identity;
      known.failures = 0;
      if (peer.direction === "outbound") known.verifiedAt ??= now;
    } else if (known && (sameIdentity || peer.direction === "outbound")) {
      // Connected now, or (dialled) proven not to be there. An inbound peer's claim
      // to another identity's address proves nothing: that entry stays.
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
      if (known.identity === identity && peer.verifiedAt !== undefined) {
        known.verifiedAt ??= peer.verifiedAt;
        known.tried ||= peer.tried === true;
      }
    } else {
      this.addPassive(
        { identity, address: peer.address },
        now + this.options.backoffBaseMs,
        peer.direction === "outbound" ? "outbound" : "inbound",
        peer.verifiedAt,
        undefined,
        peer.tried === true,
      );
    }
  }

  /**
   * Peers to dial now so that outbound connections plus dials in progress reach
   * `degree`. Each returned peer is marked as dialling until
   * {@link dialFinished}. Anchors (restored, see {@link KnownPeer.anchor}) are
   * dialled alone, the others from the next call on. Proven peers are chosen
   * first, then (while no
   * connected peer is proven) bootstrapper tips for half the dials, and tried
   * and new peers with equal odds for the rest (see the module
   * documentation), then (only while
   * fewer than `degree` sessions exist) peers learned from inbound peers;
   * bootstrappers when nothing else is known or nothing is connected. Peers
   * the `welcome` option rejects (distrusted) are not dialled, and tips from a
   * peer it rejects come last.
   */
  nextDials(now: number): KnownPeer[] {
    const wanted = this.options.degree - this.outboundCount - this.dialing.size;
    if (wanted <= 0) return [];
    // Once a connected peer is proven, items sort peers out: tips rank with the others.
    const { anchors, proven, vouched, tips, tried, fresh, bootstrappers } = this.dialCandidates(
      now,
      !this.hasProvenPeer(),
    );
    // After a restart, its anchors alone first (choose takes them first):
    // the first sessions and the first exchanges of a restarted node are with
    // peers it chose and still trusted, not whoever of a view attackers fill
    // answers first (the rest follow at the next call: an anchor's PEERS, or
    // the next round). Dialled together, attackers' sessions often opened
    // before the anchors' did.
    const count = anchors.length > 0 ? Math.min(wanted, anchors.length) : wanted;
    // Claims that only inbound peers made (anyone can be an inbound peer) are
    // dialled only while this node has fewer than `degree` sessions in all: a
    // well-connected node does not fill its own choices with them.
    if (this.active.size >= this.options.degree) fresh[1] = [];
    const chosen = this.choose(count, anchors, proven, vouched, 0.5, tips, 0.5, tried, fresh);
    if (chosen.length < count && (this.active.size === 0 || chosen.length === 0)) {
      chosen.push(...sample(bootstrappers, 1, this.random));
    }
    for (const peer of chosen) this.dialing.add(peer.addressKey);
    return chosen;
  }

  /**
   * One known peer to dial beyond `degree` (a path of this node's own
   * choosing when its peers may all be withholding), chosen as by
   * {@link nextDials} but bootstrapper tips before tried and new peers, and
   * never on an inbound peer's word alone; marked as dialling. Undefined when
   * there is none.
   */
  extraDial(now: number): KnownPeer | undefined {
    const { anchors, proven, vouched, tips, tried, fresh } = this.dialCandidates(now, true);
    const [chosen] = this.choose(1, anchors, proven, vouched, 1, tips, 1, tried, [
      fresh[0],
      [],
      [],
    ]);
    if (chosen) this.dialing.add(chosen.addressKey);
    return chosen;
  }

  /**
   * A known peer to test with a feeler while items have stopped (marked as
   * dialling): not one of the `suspects` (the connected peers, and feelers
   * that brought nothing), none of them named it, it was not `felt` already
   * (address keys), and it is not a configured bootstrapper (extra paths
   * reach those); drawn uniformly, so that no table an attacker can climb
   * into (proven, tried, tips) decides. Withholders and the tips of
   * distrusted peers and of withholders only when nothing else is left,
   * then the suspects' tips, then peers felt before.
   */
  feelerDial(
    now: number,
    suspects: ReadonlySet<string>,
    felt: ReadonlySet<string>,
  ): KnownPeer | undefined {
    const { anchors, proven, vouched, tips, tried, fresh } = this.dialCandidates(now, true);
    const suspect = (peer: KnownPeer) =>
      (peer.identity !== undefined && suspects.has(peer.identity)) ||
      (peer.learnedFrom !== undefined && suspects.has(peer.learnedFrom)) ||
      (peer.vouchedBy !== undefined && suspects.has(peer.vouchedBy));
    const all = [...anchors, ...proven, ...vouched, ...tips, ...tried, ...fresh[0], ...fresh[1]];
    const plausible = all.filter((peer) => !felt.has(peer.addressKey));
    const unlikely = fresh[2].filter((peer) => !felt.has(peer.addressKey));
    const pools = [
      plausible.filter((peer) => !suspect(peer)),
      unlikely.filter((peer) => !suspect(peer)),
      [...plausible, ...unlikely],
      [...all, ...fresh[2]],
    ];
    const pool = pools.find((candidates) => candidates.length > 0);
    if (pool === undefined) return undefined;
    const chosen = pool[Math.floor(this.random() * pool.length)];
    this.dialing.add(chosen.addressKey);
    return chosen;
  }

  /**
   * Known peers that may be dialled now, by table (see the module
   * documentation); bootstrapper tips in a table of their own when
   * `tipsApart`, else each in the table it would be in without the tip.
   */
  private dialCandidates(now: number, tipsApart: boolean): {
    anchors: KnownPeer[];
    proven: KnownPeer[];
    vouched: KnownPeer[];
    tips: KnownPeer[];
    tried: KnownPeer[];
    fresh: KnownPeer[][];
    bootstrappers: KnownPeer[];
  } {
    const welcome = this.welcome;
    const activeAddresses = new Set<string>();
    for (const peer of this.active.values()) activeAddresses.add(formatSocketAddress(peer.address));
    const eligible: KnownPeer[] = [];
    for (const peer of this.passive.values()) {
      if (
        peer.nextAttemptAt <= now && !this.dialing.has(peer.addressKey) &&
        !activeAddresses.has(peer.addressKey) &&
        !(peer.identity !== undefined &&
          (this.active.has(peer.identity) || !welcome(peer.identity)))
      ) eligible.push(peer);
    }
    // Tried: addresses this node chose to dial and found the claimed identity
    // at. New: everything else, in tiers: addresses verified only by a probe of
    // a peer that dialled in, or claimed by a peer this node dialled; claims of
    // peers that dialled in; tips from distrusted peers.
    const anchors: KnownPeer[] = [];
    const proven: KnownPeer[] = [];
    const vouched: KnownPeer[] = [];
    const tips: KnownPeer[] = [];
    const tried: KnownPeer[] = [];
    const fresh: KnownPeer[][] = [[], [], []];
    const bootstrappers: KnownPeer[] = [];
    for (const peer of eligible) {
      // An anchor first, even at a configured bootstrapper's address.
      if (peer.anchor) anchors.push(peer);
      else if (peer.bootstrap) bootstrappers.push(peer);
      else if (this.isProven(peer) || (peer.provenTip && this.isVouched(peer))) proven.push(peer);
      else if (this.isVouched(peer)) vouched.push(peer);
      // Withholders: last, with the tips of distrusted peers and of withholders.
      else if (this.isWithholder(peer.identity)) {
        fresh[2].push(peer);
      } else if (
        tipsApart && peer.bootstrapTip && peer.failures < DEAD_AFTER_FAILURES &&
        !this.discredited(peer.learnedFrom)
      ) {
        tips.push(peer);
      } else if (isTried(peer)) tried.push(peer);
      else if (
        peer.verifiedAt === undefined && this.discredited(peer.learnedFrom)
      ) fresh[2].push(peer);
      else if (peer.verifiedAt !== undefined || peer.source !== "inbound") fresh[0].push(peer);
      else fresh[1].push(peer);
    }
    return { anchors, proven, vouched, tips, tried, fresh, bootstrappers };
  }

  /**
   * Up to `wanted` of the candidates (the arrays are consumed): anchors first,
   * then proven peers, then for each dial a proven peer's tip with odds
   * `vouchedShare`, else a bootstrapper tip with odds `tipShare`, else tried
   * and new with equal odds (each table also when nothing else is left).
   */
  private choose(
    wanted: number,
    anchors: KnownPeer[],
    proven: KnownPeer[],
    vouched: KnownPeer[],
    vouchedShare: number,
    tips: KnownPeer[],
    tipShare: number,
    tried: KnownPeer[],
    fresh: KnownPeer[][],
  ): KnownPeer[] {
    // This node's own outbound peers before a restart, then peers that brought
    // items first (attackers that withhold never do).
    const chosen: KnownPeer[] = sample(anchors, wanted, this.random);
    chosen.push(...sample(proven, wanted - chosen.length, this.random));
    while (chosen.length < wanted) {
      const others = tried.length > 0 || fresh.some((tier) => tier.length > 0);
      if (
        vouched.length > 0 &&
        ((!others && tips.length === 0) || this.random() < vouchedShare)
      ) {
        chosen.push(takeRandom(vouched, this.random));
        continue;
      }
      if (tips.length > 0 && (!others || this.random() < tipShare)) {
        chosen.push(takeRandom(tips, this.random));
        continue;
      }
      // Half from each table when both have candidates (as Bitcoin Core's
      // addrman): dialling only tried peers would send every node back to
      // the few it once reached, which fill up while others stay unknown.
      // Tips of inbound and of distrusted peers only when nothing else is left.
      const [newPool] = fresh;
      const pool = tried.length > 0 && (newPool.length === 0 || this.random() < 0.5)
        ? tried
        : fresh.find((tier) => tier.length > 0);
      if (pool === undefined) break;
      chosen.push(takeRandom(pool, this.random));
    }
    return chosen;
  }

  /**
   * A configured bootstrapper to dial now (not connected, not being dialled,
   * not backing off unless `despiteBackoff`, not a withholder), marked as
   * dialling; undefined when there is none. A bootstrapper that withheld items
   * from this node is no anchor: re-anchoring to it after replacing it as a
   * withholder made a loop that took half of a besieged node's dials.
   */
  nextBootstrapper(now: number, despiteBackoff = false): KnownPeer | undefined {
    const ready: KnownPeer[] = [];
    for (const peer of this.passive.values()) {
      if (
        peer.bootstrap && (despiteBackoff || peer.nextAttemptAt <= now) &&
        !this.dialing.has(peer.addressKey) &&
        !(peer.identity !== undefined &&
          (this.active.has(peer.identity) || this.isWithholder(peer.identity)))
      ) ready.push(peer);
    }
    const [chosen] = sample(ready, 1, this.random);
    if (chosen) this.dialing.add(chosen.addressKey);
    return chosen;
  }

  /** Address keys of configured bootstrappers being dialled now. */
  bootstrappersDialling(): string[] {
    const keys: string[] = [];
    for (const peer of this.passive.values()) {
      if (peer.bootstrap && this.dialing.has(peer.addressKey)) keys.push(peer.addressKey);
    }
    return keys;
  }

  /**
   * True when a known peer other than a bootstrapper could be dialled now
   * (not connected, not being dialled, not backing off, welcome).
   */
  hasDialCandidate(now: number): boolean {
    const welcome = this.welcome;
    for (const peer of this.passive.values()) {
      if (
        !peer.bootstrap && peer.nextAttemptAt <= now && !this.dialing.has(peer.addressKey) &&
        !(peer.identity !== undefined &&
          (this.active.has(peer.identity) || !welcome(peer.identity)))
      ) return true;
    }
    return false;
  }

  /**
   * One proven peer (merit above 0, or restored as proven) that could be
   * dialled now, marked as dialling: known, not connected, not being dialled,
   * not backing off, welcome, and not failed as many dials in a row as the
   * passive view keeps it for (a proven peer that left for good stops
   * counting after about two minutes of back-off). Undefined when there is
   * none.
   */
  dialProven(now: number): KnownPeer | undefined {
    const candidates = this.dialCandidates(now, false).proven.filter((peer) =>
      peer.failures < PROVEN_FAILURE_SPAN * DEAD_AFTER_FAILURES
    );
    const [chosen] = sample(candidates, 1, this.random);
    if (chosen) this.dialing.add(chosen.addressKey);
    return chosen;
  }

  /**
   * Ends a dial; a failure backs the peer off exponentially with jitter.
   * `identity` is who answered at that address (when the handshake completed):
   * recorded so that a bootstrapper configured by hostname, which advertises
   * another address, is not dialled again while connected. A peer that turned
   * out to be someone other than claimed loses its entry.
   */
  dialFinished(addressKey: string, succeeded: boolean, now: number, identity?: string): void {
    this.dialing.delete(addressKey);
    const peer = this.passive.get(addressKey);
    if (!peer) return;
    peer.anchor = false;
    if (identity !== undefined && peer.identity !== identity) {
      if (!peer.bootstrap) {
        // The claim was false: whoever listens there is not who we were told.
        this.passive.delete(addressKey);
        return;
      }
      peer.identity = identity;
    }
    if (succeeded) {
      peer.failures = 0;
      // Reached: from now on its merit says whether it is proven.
      peer.provenBefore = false;
    } else this.backOffPeer(peer, now);
  }

  /**
   * Backs the peer at `addressKey` off as after a failed dial (it said it is
   * full), without ending a dial of it that may be in flight.
   */
  backOff(addressKey: string, now: number): void {
    const peer = this.passive.get(addressKey);
    if (peer) this.backOffPeer(peer, now);
  }

  private backOffPeer(peer: KnownPeer, now: number): void {
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
   * Records that this node's own handshake at `addressKey` proved `identity`
   * listens there (an outbound handshake completed, whether or not the
   * session is kept): `tried` for a dial of this node's choosing, not for a
   * probe of a peer that dialled in.
   */
  markVerified(identity: string, addressKey: string, now: number, tried: boolean): void {
    const active = this.active.get(identity);
    if (active && formatSocketAddress(active.address) === addressKey) {
      active.verifiedAt ??= now;
      active.tried ||= tried;
    }
    const known = this.passive.get(addressKey);
    if (known && (known.identity === undefined || known.identity === identity)) {
      known.identity = identity;
      known.verifiedAt ??= now;
      known.tried ||= tried;
    }
  }

  /**
   * An inbound peer whose address was never verified and not probed in the
   * last `retryMs`: a probe handshake at its address proves (or disproves)
   * that it listens where it says. Marked as probed and as being dialled
   * until {@link probeEnded}.
   */
  probeCandidate(now: number, retryMs: number): ActivePeer | undefined {
    for (const peer of this.active.values()) {
      if (peer.direction !== "inbound" || peer.verifiedAt !== undefined) continue;
      if (peer.probedAt !== undefined && now - peer.probedAt < retryMs) continue;
      const key = formatSocketAddress(peer.address);
      if (key === this.selfAddressKey || this.dialing.has(key)) continue;
      peer.probedAt = now;
      this.dialing.add(key);
      return peer;
    }
    return undefined;
  }

  /** A probe of `addressKey` ended (its outcome is recorded with {@link markVerified}). */
  probeEnded(addressKey: string): void {
    this.dialing.delete(addressKey);
  }

  /** True when every bootstrapper has failed at least once and none is connected. */
  get bootstrappersFailing(): boolean {
    if (this.bootstrapCount === 0) return false;
    for (const peer of this.passive.values()) {
      if (peer.bootstrap && peer.failures === 0) return false;
    }
    return true;
  }

  /** Number of configured bootstrappers. */
  get bootstrapperCount(): number {
    return this.bootstrapCount;
  }

  /**
   * Adds descriptors learned from a peer to the passive view as unverified
   * claims; at most `maxLearnPerMessage` new ones per call. `source` says
   * whether the peer that sent them was dialled by this node. Without
   * `evict`, they only fill free room: none displaces a known peer. Returns
   * how many were added.
   */
  learn(
    peers: readonly AddressedPeer[],
    now: number,
    source: PeerSource = "inbound",
    from?: string,
    evict = true,
  ): number {
    // Once per message, not per descriptor: finding a bootstrapper scans the view.
    const fromBootstrapper = from !== undefined && this.isBootstrapper(from);
    const vouchedBy = from !== undefined && this.merit(from) > 0 ? from : undefined;
    let vouchRoom = vouchedBy === undefined ? 0 : this.vouchRoom(vouchedBy);
    let added = 0;
    for (const peer of sample(peers, peers.length, this.random)) {
      if (added >= this.options.maxLearnPerMessage) break;
      const addressKey = formatSocketAddress(peer.address);
      // A proven peer's mark outranks its plain tips: one of those gives way.
      if (
        vouchRoom <= 0 && vouchedBy !== undefined && peer.proven === true &&
        this.passive.get(addressKey)?.vouchedBy !== vouchedBy &&
        this.unvouchPlainTip(vouchedBy)
      ) vouchRoom++;
      const voucher = vouchRoom > 0 ? vouchedBy : undefined;
      if (this.addPassive(peer, now, source, undefined, from, false, voucher, evict)) {
        added++;
        if (voucher !== undefined) vouchRoom--;
      }
      if (fromBootstrapper || vouchedBy !== undefined) {
        const known = this.passive.get(addressKey);
        if (known?.identity === peer.identity) {
          if (fromBootstrapper) known.bootstrapTip = true;
          if (vouchedBy !== undefined && known.vouchedBy !== vouchedBy && vouchRoom > 0) {
            known.vouchedBy = vouchedBy;
            vouchRoom--;
          }
          // A proven peer's word that it is proven too.
          if (known.vouchedBy === vouchedBy && peer.proven === true) known.provenTip = true;
        }
      }
    }
    return added;
  }

  /**
   * Adds peers remembered from an earlier run (this node's own peers file,
   * which holds only peers it verified), without the per-message limit of
   * {@link learn}. Returns how many were added.
   */
  restore(peers: readonly SavedPeer[], now: number): number {
    let added = 0;
    for (const peer of peers) {
      const entry = { identity: peer.identity, address: peer.address };
      if (this.addPassive(entry, now, "outbound", now, undefined, peer.tried === true)) added++;
      const known = this.passive.get(formatSocketAddress(peer.address));
      if (known?.identity === peer.identity) {
        if (peer.anchor === true) known.anchor = true;
        if (peer.proven === true) known.provenBefore = true;
      }
    }
    return added;
  }

  /**
   * Every verified peer, worth remembering across restarts: connected ones
   * first. Proven peers (merit above 0, or restored as proven and not reached
   * since) are marked. Anchors are the outbound peers this node still trusts;
   * once one of its peers is proven, only the proven ones: outbound slots
   * drift towards attackers while items flow elsewhere (a dial draws from a
   * view they fill), and an attacker anchor would choose a restarted node's
   * first peers for them.
   */
  knownPeers(): SavedPeer[] {
    const out: SavedPeer[] = [];
    const provenMark = (peer: Pick<KnownPeer, "identity" | "provenBefore">) =>
      this.isProven(peer) ? { proven: true } : {};
    const anchorsMustBeProven = this.hasProvenPeer();
    for (const peer of this.active.values()) {
      if (peer.verifiedAt !== undefined) {
        const anchor = peer.direction === "outbound" && this.welcome(peer.identity) &&
          (!anchorsMustBeProven || this.isProven(peer));
        out.push({
          identity: peer.identity,
          address: peer.address,
          tried: peer.tried === true,
          // Its own choices that it still trusts: dialled first after a restart.
          ...(anchor ? { anchor: true } : {}),
          ...provenMark(peer),
        });
      }
    }
    for (const peer of this.passive.values()) {
      if (
        peer.identity !== undefined && peer.verifiedAt !== undefined &&
        !this.active.has(peer.identity)
      ) {
        out.push({
          identity: peer.identity,
          address: peer.address,
          tried: peer.tried,
          ...provenMark(peer),
        });
      }
    }
    return out;
  }

  /**
   * Up to `count` descriptors to recommend, excluding `exclude`. Only peers
   * whose address this node verified are recommended: those verified at least
   * `establishedAfterMs` before `now` first, then recently verified ones, at
   * most half as many as established ones (any number when there are none,
   * as in a network starting up). Only when this node has verified nobody does
   * it fall back to unverified inbound peers, so that newcomers can still find
   * each other.
   */
  sample(count: number, now: number, exclude?: string): AddressedPeer[] {
    const proven: AddressedPeer[] = [];
    const established: AddressedPeer[] = [];
    const recent: AddressedPeer[] = [];
    const claimed: AddressedPeer[] = [];
    const cutoff = now - (this.options.establishedAfterMs ?? 60_000);
    for (const peer of this.active.values()) {
      if (peer.identity === exclude) continue;
      const entry = { identity: peer.identity, address: peer.address };
      if (peer.verifiedAt === undefined) claimed.push(entry);
      else if (peer.verifiedAt > cutoff) recent.push(entry);
      else if (this.merit(peer.identity) > 0) proven.push({ ...entry, proven: true });
      else established.push(entry);
    }
    for (const peer of this.passive.values()) {
      // A connected bootstrapper is listed once, as active.
      if (
        peer.identity === undefined || peer.identity === exclude || peer.failures > 0 ||
        peer.verifiedAt === undefined || this.active.has(peer.identity)
      ) continue;
      const entry = { identity: peer.identity, address: peer.address };
      if (peer.verifiedAt > cutoff) recent.push(entry);
      else if (this.merit(peer.identity) > 0) proven.push({ ...entry, proven: true });
      else established.push(entry);
    }
    // Up to half established peers that are proven (they brought this node
    // items first, and are marked so: a proven peer's mark is heard); not
    // all, so that recommendations do not all name the same few fast nodes.
    const first = sample(proven, Math.ceil(count / 2), this.random);
    established.push(...proven.filter((p) => !first.includes(p)));
    const chosen = first.concat(sample(established, count - first.length, this.random));
    // Recently verified peers fill up, but never outnumber half the established
    // ones: peers that arrived a moment ago cannot crowd out long-standing ones.
    const room = Math.min(
      count - chosen.length,
      chosen.length === 0 ? count : Math.floor(chosen.length / 2),
    );
    const all = chosen.concat(sample(recent, room, this.random));
    return all.length > 0 ? all : sample(claimed, count, this.random);
  }

  /**
   * How many more of the passive view's peers `voucher` may vouch for: at most
   * a quarter of the view ({@link MAX_VOUCHED_SHARE}) holds the live tips of one
   * peer. An attacker that relayed items before it turned keeps its score
   * while its victims get items elsewhere first, and its exchanges, all
   * attackers marked proven, otherwise filled the whole view with tips that
   * rank with proven peers (simulated sieges with a steady stream of items,
   * docs/SIMULATION.md "Round of the steady stream"); the tips it gave before
   * it turned stay.
   */
  private vouchRoom(voucher: string): number {
    const cap = Math.max(1, Math.floor(this.options.passiveSize * MAX_VOUCHED_SHARE));
    let held = 0;
    for (const peer of this.passive.values()) if (isLiveTipOf(peer, voucher)) held++;
    return cap - held;
  }

  /**
   * Takes the rank from one of `voucher`'s live tips it did not mark proven, so
   * that a tip it marks proven can have its place; false when there is none.
   * In a simulated cold boot the first tips of a proven peer, named before any
   * item flowed, otherwise held its places against the proven peers it marked
   * later.
   */
  private unvouchPlainTip(voucher: string): boolean {
    for (const peer of this.passive.values()) {
      if (isLiveTipOf(peer, voucher) && !peer.provenTip) {
        peer.vouchedBy = undefined;
        return true;
      }
    }
    return false;
  }

  /**
   * Whether `peer` is a tip of a proven peer that is still proven (its merit
   * is above 0), and has not failed DEAD_AFTER_FAILURES dials in a row. An
   * attacker that relayed items to earn a score and then turned names only
   * attackers from its first poisoned exchange on, while its score is still
   * up; its first unanswered IWANT (5 points) takes away what a few relayed
   * items gave, and with it the sway of every tip it gave. Waiting for
   * distrust (-20) kept that sway for good: the node replaces a withholder
   * long before (docs/SIMULATION.md, "Round of the steady stream").
   */
  private isVouched(peer: Pick<KnownPeer, "failures" | "vouchedBy">): boolean {
    return peer.vouchedBy !== undefined && peer.failures < DEAD_AFTER_FAILURES &&
      this.merit(peer.vouchedBy) > 0;
  }

  /** A random connected peer, for a push-pull exchange. */
  exchangePartner(): ActivePeer | undefined {
    const peers = [...this.active.values()];
    return peers.length === 0 ? undefined : peers[Math.floor(this.random() * peers.length)];
  }

  private addPassive(
    peer: AddressedPeer,
    nextAttemptAt: number,
    source: PeerSource,
    verifiedAt: number | undefined,
    learnedFrom?: string,
    tried = false,
    vouchedBy?: string,
    mayEvict = true,
  ): boolean {
    if (peer.identity === this.options.selfIdentity) return false;
    if (this.active.has(peer.identity)) return false;
    const addressKey = formatSocketAddress(peer.address);
    if (addressKey === this.selfAddressKey) return false;
    const existing = this.passive.get(addressKey);
    if (existing) {
      // Only first-hand knowledge may name who is at an address.
      if (verifiedAt !== undefined) {
        existing.identity = peer.identity;
        existing.verifiedAt ??= verifiedAt;
        existing.tried ||= tried;
      } else if (SOURCE_RANK[source] < SOURCE_RANK[existing.source]) {
        existing.source = source;
        existing.learnedFrom = learnedFrom;
      }
      return false;
    }
    if (this.options.passiveSize <= 0) return false;
    const regular = this.passive.size - this.bootstrapCount;
    if (
      regular >= this.options.passiveSize &&
      !(mayEvict && this.evictOne(
        source,
        verifiedAt,
        tried || vouchedBy !== undefined || this.isProven(peer),
      ))
    ) {
      return false;
    }
    this.passive.set(addressKey, {
      identity: peer.identity,
      address: peer.address,
      addressKey,
      failures: 0,
      nextAttemptAt,
      bootstrap: false,
      source,
      verifiedAt,
      tried,
      learnedFrom: verifiedAt === undefined ? learnedFrom : undefined,
      bootstrapTip: false,
      vouchedBy,
    });
    return true;
  }

  /** Proven: merit above 0, or restored as proven and not reached since. */
  private isProven(peer: Pick<KnownPeer, "identity" | "provenBefore">): boolean {
    return peer.identity !== undefined &&
      (this.merit(peer.identity) > 0 || peer.provenBefore === true);
  }

  /**
   * Evicts the least trustworthy passive peer (distrusted, then learned from a
   * distrusted peer, then untried peers and tried peers that failed
   * DEAD_AFTER_FAILURES dials in a row by failures, claims from inbound peers
   * first; random among equals), if it is not more trustworthy than the
   * newcomer described by `source`, `verifiedAt` and `tried`.
   */
  private evictOne(source: PeerSource, verifiedAt: number | undefined, tried: boolean): boolean {
    // A tried peer is worth keeping over any other until it has failed
    // DEAD_AFTER_FAILURES dials in a row; then it ranks with the untried. A
    // peer verified only by a probe ranks with the claims of outbound peers:
    // anyone can dial in and get probed, so verification alone must not let
    // such peers crowd out what this node's own choices told it.
    // A proven peer (it brought this node items first) is kept as a tried
    // one, and for three times as many failed dials (about 2 minutes of
    // back-off): when it comes back from a restart, it is the peer to dial
    // again, and an honest peer is often down for longer than three dials.
    const badness = (
      peer: Pick<
        KnownPeer,
        "failures" | "source" | "verifiedAt" | "tried" | "vouchedBy" | "identity" | "provenBefore"
      >,
    ) =>
      this.isProven(peer)
        ? Math.floor(peer.failures / PROVEN_FAILURE_SPAN)
        : isTried(peer) || this.isVouched(peer)
        ? peer.failures
        : DEAD_AFTER_FAILURES + 2 * Math.min(peer.failures, 20) +
          (peer.source === "inbound" && peer.verifiedAt === undefined ? 1 : 0);
    const evictable = [...this.passive.values()].filter((peer) =>
      !peer.bootstrap && !this.dialing.has(peer.addressKey)
    );
    const { largest: worst, items: pool } = allWithLargest(evictable, (peer) => {
      // A distrusted peer goes first, verified or not: verification proves an
      // address, not good behaviour.
      const distrusted = peer.identity !== undefined && !this.welcome(peer.identity);
      const badTip = this.discredited(peer.learnedFrom);
      return badness(peer) + (distrusted ? 1000 : 0) + (badTip ? 500 : 0);
    });
    if (pool.length === 0 || worst < badness({ failures: 0, source, verifiedAt, tried })) {
      return false;
    }
    // Among equals, the source that named most of them loses one (Bitcoin
    // Core's addrman buckets new addresses by source for the same reason): the
    // claims that the peers a node exchanges with pour in every round must not
    // wash out the few another source gave, such as the referral of an honest
    // node that was full (docs/SIMULATION.md, "Round of whose word counts").
    // Bootstrapper tips go last: a configured bootstrapper is the most
    // prolific source of all, and its tips are what a node dials half the
    // time while none of its peers is proven (by source alone, a simulated
    // cold boot lost an item and 0.5 points of its first minute).
    const others = pool.filter((peer) => !peer.bootstrapTip);
    const bySource = Map.groupBy(others.length > 0 ? others : pool, (peer) => peer.learnedFrom);
    const { items: groups } = allWithLargest(bySource.values(), (group) => group.length);
    const group = groups[Math.floor(this.random() * groups.length)];
    const victim = group[Math.floor(this.random() * group.length)];
    this.passive.delete(victim.addressKey);
    return true;
  }

  /**
   * Whether `identity`'s word counts for nothing: it is distrusted, or a
   * withholder ({@link WITHHOLDER_MERIT}). The peers it named and this node
   * has not verified are dialled last and evicted first, and are no
   * bootstrapper tips: an attacker that besieges a node names only attackers,
   * and withholding is how it shows itself first.
   */
  private discredited(identity: string | undefined): boolean {
    return identity !== undefined && (!this.welcome(identity) || this.isWithholder(identity));
  }

  /** Whether `identity` is a withholder ({@link WITHHOLDER_MERIT}). */
  private isWithholder(identity: string | undefined): boolean {
    return identity !== undefined && this.merit(identity) <= WITHHOLDER_MERIT;
  }
}
