/**
 * The connection manager: which peer sessions a node keeps, whom it dials,
 * whom it recommends, and how it joins.
 *
 * - **Sessions.** One session per identity: when two exist (both dialled each
 *   other at once), both ends keep the one opened by the smaller identity. A
 *   node with `min(max_peer_connections, 2 × degree)` inbound peers evicts
 *   one for a newcomer ({@link ConnectionManager.sessionOpened}) or, when
 *   all are protected, refers the newcomer to its verified peers (PEERS) and
 *   says GOODBYE full, so that the nodes everyone bootstraps through do not
 *   become hubs. A session younger than `evictionGraceMs` is protected: under
 *   a rush of newcomers (a cold boot, or nodes re-anchoring through a
 *   bootstrapper) each newcomer used to evict the one before it, so no
 *   session lived long enough to carry an item (docs/SIMULATION.md, "Round of
 *   fc4d3e4"). Sessions that relayed an item within a minute go after the
 *   silent ones (attackers that drop items hold slots only while no silent
 *   session is left), and a newcomer that brought this node items first in
 *   an earlier session (its score outlives the session) is not kept out by
 *   the grace of sessions that proved nothing. A newcomer that set HELLO's
 *   `deliver` flag (an origin whose peers have proven nothing,
 *   {@link ConnectionManager.reinforce}) is heard out in a delivery session
 *   beyond the slots instead: outside the views,
 *   nothing sent to it but the referral that ends it after
 *   `deliverySessionMs` (after 2 s if it brought no item first), at most as
 *   many as inbound slots, a newer claimant displacing the oldest that
 *   brought nothing. It says DELIVERY first, so that the origin asks that
 *   session for nothing and takes its end as planned
 *   ({@link ConnectionManager.deliveryGranted}).
 * - **Dialling** keeps `degree` outbound sessions ({@link Membership} decides
 *   whom); failed dials back off.
 * - **Rotation.** About every `rotationIntervalMs` a node with all its
 *   outbound slots taken replaces the outbound peer with the lowest score
 *   (random among equals) by a peer from its passive view, so that
 *   the overlay stays random: without it the two sides of a healed partition,
 *   whose passive views still know each other, never meet again (nobody with
 *   full outbound slots dials), and a node whose outbound peers all withhold
 *   items keeps them. Not while items have stopped (the silence watch's
 *   suspicion): no score moves then, so the choice would be blind, and each
 *   replacement's dial evicts a session elsewhere. A **withholder** (score at or below
 *   {@link WITHHOLDER_MERIT}: it left an IWANT unanswered within about a
 *   score half-life) among the outbound peers is replaced at the next round
 *   instead, as GossipSub prunes negative scores from its mesh at every
 *   heartbeat: under the distrust floor it would otherwise hold its slot for
 *   up to 1.5 rotation intervals, and attackers that each withhold a little
 *   held whole nodes (docs/SIMULATION.md, "Round of withholders"). After
 *   replacing one the node re-anchors, as after dropping a distrusted peer:
 *   a bootstrapper takes the slot once (without it the replacements came
 *   from views the withholders had poisoned, and a cold boot lost ground).
 *   And while none of its peers is proven, a proven peer that can be
 *   dialled again (it had left; {@link Membership.dialProven}) is dialled
 *   beyond `degree`, and once it has answered it takes the slot of the
 *   lowest-scored other outbound peer at the next round (docs/SIMULATION.md,
 *   "Round of proven peers back" and "Round of room made after the answer").
 *   Sessions with distrusted peers (score below the guard's `distrustScore`)
 *   are closed in every round.
 * - **Silence.** When no item has come first for several usual gaps
 *   ({@link SilenceWatch}), the peers may all be black holes that relayed
 *   to earn their scores and then turned: relays from before the silence
 *   no longer count, and **feelers** test known peers one at a time beyond
 *   `degree`: one that brings an item first stays, and the lowest-scored
 *   other outbound peer makes room ({@link ConnectionManager.round};
 *   docs/SIMULATION.md, "Round of feelers"). A full node hears other nodes'
 *   feelers on trial beside its inbound slots (HELLO flag `feel`). Alarms,
 *   which replaced the lowest-scored outbound peer (docs/SIMULATION.md,
 *   "Round of the silent covert flash"), are an option, off by default
 *   ("Round of feelers on trial").
 * - **Exchange.** Every membership round the node offers one random peer
 *   some descriptors (PUSH, itself included) and, if that peer may vouch for
 *   others, asks it for descriptors (PULL_REQUEST). Brahms-style limits: PEERS
 *   are accepted only in answer to this node's pull, one PUSH per peer per
 *   round, and at most `maxLearnPerRound` new descriptors per round from all
 *   peers together. Only peers that may vouch are heard: peers this node
 *   dialled (it chose them), proven peers (score above 0: they brought items
 *   first) and configured bootstrappers. An inbound peer that has proven
 *   nothing gets no say in whom this node knows: anyone can dial in, and in a
 *   Sybil attack most who do are attackers naming attackers
 *   (docs/SIMULATION.md, "Round of the vouching rule").
 * - **Joining.** With bootstrappers configured and no peer, a warning is
 *   logged every `joinWarningMs` until one answers; an info line when the node
 *   has its first peer.
 *
 * Pure state: sending and dialling are delegated.
 *
 * @module
 */

import { formatSocketAddress, type SocketAddress } from "../address.ts";
import {
  GoodbyeReason,
  MAX_DESCRIPTORS,
  type PeerDescriptor,
  type PeerMessage,
  PeerMessageType,
} from "../codec/peer_messages.ts";
import { hexToBytes, identityHex } from "../hex.ts";
import type { Logger } from "../log.ts";
import type { PeerKey } from "../protocol/item_store.ts";
import {
  type AddressedPeer,
  type Direction,
  type KnownPeer,
  Membership,
  type SavedPeer,
  WITHHOLDER_MERIT,
} from "../protocol/membership.ts";
import { allWithLargest, type RandomSource } from "../protocol/random.ts";
import { addressRange } from "../protocol/rate_limit.ts";
import type { Scheduler } from "../protocol/scheduler.ts";
import {
  DEFAULT_SILENCE_WATCH_OPTIONS,
  SilenceWatch,
  type SilenceWatchOptions,
} from "../protocol/silence_watch.ts";

/** Descriptors asked for and offered in one exchange. */
const EXCHANGE_SIZE = 16;
/** PUSH messages accepted from one peer per round (rounds are not synchronised). */
const MAX_PUSHES_PER_ROUND = 2;
/** A failed address probe is retried after this long. */
const PROBE_RETRY_MS = 10 * 60_000;
/** Default least interval between two reinforcements ({@link ConnectionManager.reinforce}). */
const REINFORCE_INTERVAL_MS = 10_000;
/**
 * Default time a relayed item spares an inbound session from eviction, and
 * keeps a proven peer one that still relays ({@link ConnectionManager.sessionClosed}).
 */
const RELAY_MEMORY_MS = 60_000;

/** Which relays {@link ConnectionManager.stillRelays} counts: the current session's, or any session's. */
type RelayScope = "session" | "any session";

/** Default age before an inbound session may be evicted for a newcomer. */
const EVICTION_GRACE_MS = 5_000;
/** Default length of a delivery session ({@link ConnectionManager.sessionOpened}). */
const DELIVERY_SESSION_MS = 5_000;
/** Default time after which a delivery session that brought no item first is ended. */
const DELIVERY_PROOF_MS = 2_000;
/** A feeler that brought no item first by then is closed ({@link ConnectionManager.round}). */
const FEELER_PROOF_MS = 4_000;
/** Default length of a feeler's trial beyond full inbound slots ({@link ConnectionManager.sessionOpened}). */
const FEELER_TRIAL_MS = 10_000;

/**
 * Why a node dials: to fill an outbound slot (`member`), to deliver a local
 * item while no peer is proven (`deliver`, HELLO flag `deliver`:
 * {@link ConnectionManager.reinforce}), or to test a known peer while items
 * have stopped (`feel`, HELLO flag `feel`: a feeler, {@link SilenceWatch.feelerDue}).
 */
export type DialPurpose = "member" | "deliver" | "feel";

/**
 * What an accepted session is for ({@link ConnectionManager.sessionKind}):
 * only `member` sessions are lasting peers; the others end within seconds
 * unless they prove themselves.
 */
export type SessionKind = "member" | "feeler" | "trial" | "delivery";

/** What the connection manager asks the node to do. */
export interface ConnectionActions {
  /** Queues `message` to the session of `peer`. */
  send(peer: PeerKey, message: PeerMessage): void;
  /** Closes the session of `peer` (already forgotten here) with a GOODBYE. */
  close(peer: PeerKey, reason: string, goodbye: number): void;
  /**
   * Dials `address` (its key `addressKey`) and runs the outbound handshake;
   * `purpose` sets HELLO's flags: `deliver` asks a full responder for a
   * delivery session, `feel` for a feeler's trial.
   */
  dial(address: SocketAddress, addressKey: string, purpose: DialPurpose): void;
  /** Runs a probe handshake at `address` to learn who listens there. */
  probe(address: SocketAddress, addressKey: string): void;
  /** The session of `peer` ended or was replaced: forget per-peer state elsewhere. */
  forgotten(peer: PeerKey): void;
  /**
   * A new session was accepted (a delivery session too: see
   * {@link PeerSessionState.delivery}; nothing is offered to it).
   */
  accepted(peer: PeerKey, direction: Direction): void;
  /** The guard's score of `peer` now. */
  score(peer: PeerKey): number;
  /** False when `peer` is distrusted (its session is closed). */
  isTrusted(peer: PeerKey): boolean;
}

/** An authenticated session, as the transport reports it. */
export interface SessionInfo {
  /** The peer's hex identity. */
  readonly peer: PeerKey;
  /** Who opened the connection. */
  readonly direction: Direction;
  /** The listening address the peer advertised (wildcards already replaced). */
  readonly address: SocketAddress;
  /** The IP address the connection comes from. */
  readonly ip: string;
  /** For an outbound session: the address key this node dialled. */
  readonly dialed?: string;
  /**
   * The initiator set HELLO's `deliver` flag: for an inbound session the peer
   * (it has a local item and no peer that proved it relays), for an outbound
   * one this node (an extra path).
   */
  readonly deliver?: boolean;
  /**
   * The initiator set HELLO's `feel` flag: for an inbound session the peer is
   * a feeler (its items stopped; it tests this node), for an outbound one this
   * node's feeler.
   */
  readonly feel?: boolean;
}

/** A connected peer, as the manager tracks it. */
export interface PeerSessionState {
  /** Who opened the connection. */
  readonly direction: Direction;
  /** The advertised listening address. */
  readonly address: SocketAddress;
  /** Remote IP address. */
  readonly ip: string;
  /** Its /24 or /48 address range. */
  readonly range: string;
  /** When the session was accepted. */
  readonly since: number;
  /** For an outbound session: the address key this node dialled. */
  readonly dialed?: string;
  /** HELLO's `deliver` flag was set ({@link SessionInfo.deliver}). */
  readonly deliver?: boolean;
  /**
   * A delivery session. Inbound: beyond the inbound slots, outside the views,
   * nothing pushed or offered to it; ended after `deliverySessionMs`, or
   * sooner when it brings no item first ({@link ConnectionManager.sessionOpened}).
   * Outbound: the responder said so (DELIVERY); outside the views, never
   * asked for items, its closing GOODBYE full no reason to back off
   * ({@link ConnectionManager.deliveryGranted}).
   */
  readonly delivery?: boolean;
  /**
   * An inbound feeler accepted beyond the full inbound slots, on trial: it
   * evicted nobody. If its initiator still keeps it after `feelerTrialMs`
   * (the feeler brought it an item first), it takes an inbound slot then:
   * an unprotected inbound session makes room for it, or it is referred
   * elsewhere ({@link ConnectionManager.round}).
   */
  readonly trial?: boolean;
}

/** Tuning of a {@link ConnectionManager}. */
export interface ConnectionManagerOptions {
  /** This node's hex identity. */
  readonly selfIdentity: string;
  /** The address this node advertises. */
  readonly selfAddress: SocketAddress;
  /** Outbound sessions to keep (`degree`). */
  readonly degree: number;
  /** Hard cap on inbound sessions (`max_peer_connections`). */
  readonly maxPeerConnections: number;
  /** Passive view size (`passive_view_size`). */
  readonly passiveViewSize: number;
  /** Membership round (`membership_interval_ms`). */
  readonly membershipIntervalMs: number;
  /** Bootstrappers (`bootstrapper`). */
  readonly bootstrappers: readonly SocketAddress[];
  /** New descriptors accepted per round from all peers together. */
  readonly maxLearnPerRound: number;
  /** Verified peers known this long are recommended first. */
  readonly establishedAfterMs: number;
  /** Interval of the warning while no bootstrapper answers and no peer is connected. */
  readonly joinWarningMs: number;
  /** Mean interval of outbound rotation (0: never). */
  readonly rotationIntervalMs: number;
  /** An inbound session this young is not evicted for a newcomer (default 5 s). */
  readonly evictionGraceMs?: number;
  /**
   * An inbound session that sent a valid item (first or not) within this long
   * is evicted only when no silent one is left, and a proven peer that did
   * still relays: while one is connected, the departure of another proven
   * peer is no reason to re-anchor (default 60 s; {@link ConnectionManager.noteRelay}).
   */
  readonly relayMemoryMs?: number;
  /** Length of a delivery session (default 5 s; {@link ConnectionManager.sessionOpened}). */
  readonly deliverySessionMs?: number;
  /** A delivery session that brought no item first by then is ended (default 2 s). */
  readonly deliveryProofMs?: number;
  /** When a silence of items raises an alarm ({@link SilenceWatch}; default {@link DEFAULT_SILENCE_WATCH_OPTIONS}). */
  readonly silenceWatch?: SilenceWatchOptions;
  /** Least interval between two reinforcements ({@link ConnectionManager.reinforce}; default 10 s). */
  readonly reinforceIntervalMs?: number;
  /** A feeler that brought no item first by then is closed (default 4 s; {@link ConnectionManager.round}). */
  readonly feelerProofMs?: number;
  /**
   * How long an inbound feeler is on trial beyond full inbound slots before it
   * takes a slot (default 10 s: its initiator closes a feeler that brought
   * nothing after `feelerProofMs`; {@link PeerSessionState.trial}).
   */
  readonly feelerTrialMs?: number;
  /** Randomness. */
  readonly random: RandomSource;
}

/** Counters of a {@link ConnectionManager}. */
export interface ConnectionStats {
  /** Peer descriptors ignored (unsolicited, or over the per-round limit). */
  offersIgnored: number;
  /** Sessions refused because the inbound slots were full (referred elsewhere). */
  referred: number;
  /** Inbound sessions ended to make room for a newcomer. */
  evicted: number;
  /** Duplicate sessions closed. */
  duplicates: number;
  /** Dials started. */
  dials: number;
  /** Dials that failed (connect or handshake). */
  dialFailures: number;
  /** Probe handshakes made to verify an inbound peer's address. */
  probes: number;
  /** Probes that proved the address. */
  probesVerified: number;
  /** Outbound peers replaced by rotation. */
  rotated: number;
  /**
   * Of those, outbound peers that made room for a proven peer dialled again
   * while no peer was proven (see {@link ConnectionManager.round}).
   */
  provenReturned: number;
  /** Sessions closed because the peer became distrusted. */
  distrustedDropped: number;
  /** Bootstrappers dialled after dropping a distrusted peer. */
  reanchored: number;
  /** Dials beyond `degree` for a local item while no peer was proven. */
  reinforced: number;
  /** Delivery sessions granted beyond the inbound slots (instead of a referral). */
  deliveries: number;
  /** Delivery sessions that brought nothing, ended for a newer claimant. */
  deliveriesDisplaced: number;
  /** Alarms of the silence watch: no item came for several usual gaps ({@link SilenceWatch}). */
  silenceAlarms: number;
  /** Delivery sessions this node's extra paths were granted (DELIVERY received). */
  deliveriesGranted: number;
  /** Feelers dialled while items had stopped ({@link SilenceWatch.feelerDue}). */
  feelers: number;
  /** Feelers that brought an item first and kept their session. */
  feelersKept: number;
  /** Inbound feelers heard on trial beyond full inbound slots, instead of evicting a session. */
  feelersHeard: number;
}

/** Sessions, dialling and exchange of one node. */
export class ConnectionManager {
  /** The views. */
  readonly membership: Membership;
  private readonly sessions = new Map<PeerKey, PeerSessionState>();
  private readonly pullsOutstanding = new Set<PeerKey>();
  /** Probes in flight: address key -> the identity that claimed the address. */
  private readonly probing = new Map<string, PeerKey>();
  /** PUSH messages per peer in this round. */
  private readonly pushedThisRound = new Map<PeerKey, number>();
  private learnedThisRound = 0;
  private joined = false;
  private maxPeerConnections: number;
  private lonelySince: number;
  private lastJoinWarning: number;
  /** Counters. */
  readonly stats: ConnectionStats = {
    offersIgnored: 0,
    referred: 0,
    evicted: 0,
    duplicates: 0,
    dials: 0,
    dialFailures: 0,
    probes: 0,
    probesVerified: 0,
    rotated: 0,
    provenReturned: 0,
    distrustedDropped: 0,
    reanchored: 0,
    reinforced: 0,
    silenceAlarms: 0,
    deliveries: 0,
    deliveriesDisplaced: 0,
    deliveriesGranted: 0,
    feelers: 0,
    feelersKept: 0,
    feelersHeard: 0,
  };
  private lastReinforced = -Infinity;
  /** Address keys of this reinforcement's extra paths, dialled or connected. */
  private readonly extraPaths = new Set<string>();
  /** Extra paths that may still replace one that was refused or failed. */
  private extraReplacements = 0;
  /** Bootstrappers an ordinary dial was in flight to when an extra path was due. */
  private readonly extraPathsAfterDial = new Set<string>();
  private nextRotation: number;
  /** A peer was dropped as distrusted: re-anchor through a bootstrapper. */
  private anchorDue = false;
  /** When each connected peer last sent a valid item ({@link noteRelay}). */
  private readonly lastRelayAt = new Map<PeerKey, number>();
  /**
   * When each peer last sent a valid item, across its sessions; entries
   * older than `relayMemoryMs` are dropped at each relay (oldest first).
   */
  private readonly lastRelayByPeer = new Map<PeerKey, number>();
  /**
   * A proven peer dialled beyond `degree` to take a slot back (see
   * {@link round}): its address while the dial is in flight, and its
   * identity once its session opened, until the next round makes room.
   */
  private returning: { addressKey: string; peer?: PeerKey } | undefined;
  /** Notices when items stop coming ({@link round}). */
  private readonly silence: SilenceWatch;
  /**
   * The feeler of this silence ({@link feel}): its address while the dial is
   * in flight; its identity and start once its session opened; whether it
   * brought an item first.
   */
  private feeler:
    | { addressKey: string; peer?: PeerKey; since?: number; brought?: boolean }
    | undefined;
  /** Addresses dialled as feelers in this silence: not drawn again until an item comes. */
  private readonly feltAddresses = new Set<string>();
  /** Feelers of this silence that brought nothing: suspects like the connected peers. */
  private readonly feltNothing = new Set<PeerKey>();

  /** Creates the manager at time `now`. */
  constructor(
    private readonly options: ConnectionManagerOptions,
    private readonly actions: ConnectionActions,
    private readonly log: Logger,
    private readonly scheduler: Scheduler,
    now: number,
  ) {
    this.membership = new Membership({
      selfIdentity: options.selfIdentity,
      selfAddress: options.selfAddress,
      degree: options.degree,
      passiveSize: options.passiveViewSize,
      maxLearnPerMessage: 8,
      backoffBaseMs: Math.min(500, options.membershipIntervalMs),
      backoffMaxMs: 30_000,
      establishedAfterMs: options.establishedAfterMs,
      bootstrappers: options.bootstrappers,
      welcome: (identity) => this.actions.isTrusted(identity),
      merit: (identity) => this.actions.score(identity),
      random: options.random,
    });
    this.lonelySince = now;
    this.lastJoinWarning = now;
    this.maxPeerConnections = options.maxPeerConnections;
    this.nextRotation = now + this.rotationDelay();
    this.silence = new SilenceWatch(options.silenceWatch ?? DEFAULT_SILENCE_WATCH_OPTIONS);
  }

  /** Changes the cap on inbound sessions (`max_peer_connections`) for new sessions. */
  setMaxPeerConnections(limit: number): void {
    this.maxPeerConnections = limit;
  }

  /** Connected peers' identities. */
  get peers(): PeerKey[] {
    return [...this.sessions.keys()];
  }

  /**
   * Peers that items and digests go to: every session but delivery sessions,
   * which only bring an item here (see {@link sessionOpened}).
   */
  get relayPeers(): PeerKey[] {
    const peers: PeerKey[] = [];
    for (const [peer, session] of this.sessions) if (!session.delivery) peers.push(peer);
    return peers;
  }

  /**
   * True when a connected peer is proven (its score is above 0: it brought
   * this node an item first). From then on only proven outbound peers are
   * saved as anchors ({@link Membership.knownPeers}).
   */
  get hasProvenPeer(): boolean {
    return this.membership.hasProvenPeer();
  }

  /** Number of connected peers. */
  get size(): number {
    return this.sessions.size;
  }

  /** The session of `peer`. */
  session(peer: PeerKey): PeerSessionState | undefined {
    return this.sessions.get(peer);
  }

  /**
   * What the session of `peer` is for: `member` (a peer of the views),
   * `feeler` (this node's feeler, until it brought an item and stays),
   * `trial` (another node's feeler heard beyond full inbound slots) or
   * `delivery` (it only brings items); undefined without a session.
   */
  sessionKind(peer: PeerKey): SessionKind | undefined {
    const session = this.sessions.get(peer);
    if (session === undefined) return undefined;
    if (session.delivery) return "delivery";
    if (session.trial) return "trial";
    if (this.feeler?.peer === peer) return "feeler";
    return "member";
  }

  /** Every session. */
  entries(): IterableIterator<[PeerKey, PeerSessionState]> {
    return this.sessions.entries();
  }

  /** True when `peer` has an accepted session. */
  isConnected(peer: PeerKey): boolean {
    return this.sessions.has(peer);
  }

  /**
   * True when the session of `peer` is an extra path of this node's current
   * reinforcement ({@link reinforce}): its local items are pushed there,
   * since a full peer takes items from it but asks for none.
   */
  isExtraPath(peer: PeerKey): boolean {
    const dialed = this.sessions.get(peer)?.dialed;
    return dialed !== undefined && this.extraPaths.has(dialed);
  }

  /**
   * `peer` sent a valid item (the first copy, or a copy of one this node
   * holds, with its content): its inbound session relays, and is evicted for
   * a newcomer only after the silent ones ({@link ConnectionManager.sessionOpened}).
   * `first`: the peer brought it first, which ends a silence ({@link SilenceWatch}).
   */
  noteRelay(peer: PeerKey, now: number, first = false): void {
    if (first) {
      this.silence.itemArrived(now);
      if (this.feeler?.peer === peer) this.feeler.brought = true;
      this.feltAddresses.clear();
      this.feltNothing.clear();
    }
    if (!this.sessions.has(peer)) return;
    this.lastRelayAt.set(peer, now);
    this.lastRelayByPeer.delete(peer);
    this.lastRelayByPeer.set(peer, now);
    for (const [key, at] of this.lastRelayByPeer) {
      if (now - at < this.relayMemoryMs) break;
      this.lastRelayByPeer.delete(key);
    }
  }

  /** `relayMemoryMs`, or its default. */
  private get relayMemoryMs(): number {
    return this.options.relayMemoryMs ?? RELAY_MEMORY_MS;
  }

  /**
   * Whether `peer` sent a valid item, first or not, within `relayMemoryMs`
   * ({@link noteRelay}): in its current session, or in any of its sessions.
   * Not while items have stopped coming for a while, nor a relay from before
   * the last long silence ({@link SilenceWatch.lastLongSilence}): a peer that turned into a silent
   * black hole relayed until it turned.
   */
  private stillRelays(peer: PeerKey, now: number, scope: RelayScope = "session"): boolean {
    const relayed = (scope === "session" ? this.lastRelayAt : this.lastRelayByPeer).get(peer);
    return relayed !== undefined && now - relayed < this.relayMemoryMs &&
      relayed > this.silence.lastLongSilence && !this.silence.suspect(now);
  }

  /**
   * Whether a connected peer (no delivery session) is proven, score above 0,
   * and still relays ({@link stillRelays}), since a peer that relayed and
   * then turned keeps the score it earned. Re-anchoring, when a proven peer
   * leaves, asks about the current session. The extra paths for a local
   * item ({@link reinforce}) ask about any session: a proven peer that
   * reconnects has relayed nothing in its new session yet, and counting only
   * that session fired extra paths for such peers, which cost a simulated
   * cold boot 6 points of its first minute at one seed of ten
   * (docs/SIMULATION.md, "Round of stale scores").
   */
  private hasRelayingProvenPeer(now: number, scope: RelayScope): boolean {
    for (const [peer, session] of this.sessions) {
      if (!session.delivery && this.actions.score(peer) > 0 && this.stillRelays(peer, now, scope)) {
        return true;
      }
    }
    return false;
  }

  /** Sizes of the per-peer tables, for the status endpoint. */
  get sizes(): Record<string, number> {
    return {
      sessions: this.sessions.size,
      passivePeers: this.membership.passiveCount,
      dialsInProgress: this.membership.dialsInProgress,
      pullsOutstanding: this.pullsOutstanding.size,
      probesInFlight: this.probing.size,
      pushedThisRound: this.pushedThisRound.size,
    };
  }

  /**
   * Decides on a new authenticated session: accepted (registered here), or
   * refused with a GOODBYE reason and, when full, a referral to send first.
   * `refusal` is the guard's verdict, checked first.
   */
  sessionOpened(
    info: SessionInfo,
    now: number,
    refusal: string | undefined,
  ): SessionDecision {
    const { peer } = info;
    // Our own completed handshake proves who listens at the address we dialled.
    if (info.dialed !== undefined) this.membership.markVerified(peer, info.dialed, now, true);
    const returning = info.dialed !== undefined && this.returning?.addressKey === info.dialed
      ? info.dialed
      : undefined;
    if (returning !== undefined) this.returning = undefined;
    if (refusal !== undefined) {
      return this.refuse(info, now, refusal, GoodbyeReason.Banned);
    }
    const existing = this.sessions.get(peer);
    if (existing) {
      // Simultaneous dials: keep the connection opened by the smaller identity.
      const self = this.options.selfIdentity;
      const initiator = info.direction === "outbound" ? self : peer;
      const preferred = self < peer ? self : peer;
      this.stats.duplicates++;
      if (initiator !== preferred) {
        // The handshake itself succeeded (a verification probe, or a crossed dial).
        if (info.dialed !== undefined) this.membership.dialFinished(info.dialed, true, now, peer);
        return { accept: false, reason: "duplicate connection", goodbye: GoodbyeReason.Duplicate };
      }
      this.forget(peer, now, "replaced by preferred duplicate");
      this.actions.close(peer, "replaced by preferred duplicate", GoodbyeReason.Duplicate);
    }
    let delivery = false;
    let trial = false;
    if (info.direction === "inbound") {
      // Inbound peers beyond twice the degree: evict an unprotected one for the
      // newcomer, or, when all are protected, refer the newcomer elsewhere
      // (or, when it comes to deliver a local item, hear it out first).
      const limit = this.inboundLimit;
      if (this.inboundSlotsFull()) {
        const victim = info.feel
          ? undefined
          : this.evictionCandidate(now, this.actions.score(peer) > 0);
        if (info.feel && this.trialCount() < this.options.degree) {
          // A feeler: its node's items stopped, and it tests whether this
          // node has them. Evicting a session for each (a feeler is closed
          // after a few seconds unless it brought an item first) tore honest
          // sessions apart in every lull, most of all in a network-wide one,
          // while attackers' sessions stayed (docs/SIMULATION.md, "Round of
          // feelers on trial"). So it is heard on trial beyond the slots; it
          // takes a slot only if its initiator keeps it ({@link round}). A
          // feeler never evicts on arrival: with `degree` on trial, it is
          // referred elsewhere (below), as when all are protected.
          trial = true;
          this.stats.feelersHeard++;
        } else if (victim !== undefined) {
          this.stats.evicted++;
          this.referAndClose(victim, now, "evicted for a newcomer");
        } else if (info.deliver && this.roomForDelivery(limit, now)) {
          // Its origin has no peer that proved it relays (they may all drop
          // items): refusing would leave the item to them. A delivery
          // session only brings items here: it is not a member of the views
          // (never recommended, never a partner), and nothing is pushed or
          // offered to it, so an attacker that claims one gains nothing but
          // a moment: it ends in the first round after `deliverySessionMs`,
          // or after `deliveryProofMs` if it brought no item first by then,
          // and a newer claimant displaces the oldest that brought nothing.
          // The origin pushes its items at once, one round trip after this.
          delivery = true;
          this.stats.deliveries++;
        } else {
          this.stats.referred++;
          const referral = this.descriptors(this.membership.sample(EXCHANGE_SIZE, now, peer));
          return { ...this.refuse(info, now, "peer limit reached", GoodbyeReason.Full), referral };
        }
      }
    }
    this.sessions.set(peer, {
      direction: info.direction,
      address: info.address,
      ip: info.ip,
      range: addressRange(info.ip),
      since: now,
      dialed: info.dialed,
      deliver: info.deliver,
      delivery,
      ...(trial ? { trial } : {}),
    });
    if (delivery) {
      this.log.debug("delivery session", { peer: peer.slice(0, 8) });
      this.actions.accepted(peer, info.direction);
      // Tell the origin (once the shell has registered the session), so that
      // it neither asks this session for items nor backs off at its end.
      this.scheduler.defer(() => {
        if (this.sessions.get(peer)?.delivery) {
          this.actions.send(peer, { type: PeerMessageType.Delivery });
        }
      });
      return { accept: true };
    }
    this.membership.connected(
      { identity: peer, address: info.address, direction: info.direction },
      now,
    );
    if (info.dialed !== undefined) this.membership.dialFinished(info.dialed, true, now, peer);
    if (info.dialed !== undefined && this.feeler?.addressKey === info.dialed) {
      this.feeler = { addressKey: info.dialed, peer, since: now };
    }
    // A proven peer back: the next round makes room for it, if it stays.
    if (returning !== undefined) this.returning = { addressKey: returning, peer };
    this.log.info("peer connected", {
      peer: peer.slice(0, 8),
      address: formatSocketAddress(info.address),
      direction: info.direction,
      peers: this.sessions.size,
    });
    if (!this.joined) {
      this.joined = true;
      this.log.info("joined the network", {
        via: formatSocketAddress(info.address),
        direction: info.direction,
      });
    }
    this.actions.accepted(peer, info.direction);
    // Ask a peer we chose for more at once (after the session is registered); a
    // referral may already be on its way and counts as the answer.
    if (info.direction === "outbound") {
      this.pullsOutstanding.add(peer);
      this.scheduler.defer(() => {
        if (this.pullsOutstanding.has(peer)) {
          this.actions.send(peer, { type: PeerMessageType.PullRequest, max: EXCHANGE_SIZE });
        }
      });
    }
    return { accept: true };
  }

  /**
   * The responder of `peer`'s session says it is a delivery session
   * (DELIVERY). Accepted only on an outbound session this node opened with
   * the `deliver` flag, once; false otherwise (a protocol violation). The
   * session leaves the views (another peer is dialled for its outbound
   * slot), is asked for nothing, and its closing GOODBYE full is the planned
   * end, not a reason to back off from the address: the responder took the
   * items, and the next local item may come back. Its closing referral is
   * used like any: the path is replaced by a peer it names (while no peer
   * is proven), the best tip an origin with no proven peer can get.
   */
  deliveryGranted(peer: PeerKey, now: number): boolean {
    const session = this.sessions.get(peer);
    if (!session || session.direction !== "outbound" || !session.deliver || session.delivery) {
      return false;
    }
    this.sessions.set(peer, { ...session, delivery: true });
    this.pullsOutstanding.delete(peer);
    this.membership.disconnected(peer, now);
    this.stats.deliveriesGranted++;
    this.log.debug("granted a delivery session", { peer: peer.slice(0, 8) });
    this.dialMore(now);
    return true;
  }

  /**
   * An accepted session ended; `goodbye` is the reason the peer gave, if any,
   * `reason` the transport's words for the log.
   */
  sessionClosed(peer: PeerKey, now: number, goodbye?: number, reason?: string): void {
    const session = this.sessions.get(peer);
    if (!session) return;
    const proven = !session.delivery && this.actions.score(peer) > 0;
    this.forget(peer, now, reason);
    // Its last proven peer that still relays went away (churn, or it evicted
    // this node): the node re-anchors through a bootstrapper, as after
    // dropping a distrusted peer, rather than refill the slot only from a view
    // attackers may fill. A peer that relayed items and then turned keeps its
    // score while this node gets items elsewhere first, so a score alone is
    // no proof that a peer still relays (docs/SIMULATION.md, "Round of
    // trusted bootstrappers").
    if (proven && !this.hasRelayingProvenPeer(now, "session")) this.anchorDue = true;
    if (goodbye === GoodbyeReason.Full) {
      // It referred us elsewhere: do not come back soon, unless this was the
      // planned end of a delivery session granted to this node.
      const granted = session.delivery && session.direction === "outbound";
      if (!granted) this.membership.backOff(formatSocketAddress(session.address), now);
      if (session.dialed !== undefined) this.replaceExtraPath(session.dialed, now);
    }
    if (session.dialed !== undefined) this.extraPathAfterDial(session.dialed, now);
    if (this.returning?.peer === peer) this.returnedThenReferred(now, goodbye);
    this.dialMore(now);
  }

  /**
   * The session of a proven peer dialled again ({@link dialProvenBack})
   * ended before the round that would have made room for it. If it answered
   * and then referred this node elsewhere (full), its referral names peers
   * it vouches for (proven peers' tips), and the lowest-scored outbound peer
   * makes room for one of them now: in a simulated cold boot, where most of
   * an honest node's unproven outbound peers are attackers, waiting for the
   * rotation instead cost a whole item at one seed of eight and a point of
   * the first minute at another (docs/SIMULATION.md, "Round of room made
   * after the answer").
   */
  private returnedThenReferred(now: number, goodbye: number | undefined): void {
    this.returning = undefined;
    if (goodbye === GoodbyeReason.Full) this.makeRoom(now);
  }

  /** Closes and forgets `peer` (banned, or broke the protocol). */
  drop(peer: PeerKey, now: number, reason: string, goodbye: number): void {
    if (!this.sessions.has(peer)) return;
    this.forget(peer, now, reason);
    this.actions.close(peer, reason, goodbye);
    this.dialMore(now);
  }

  /**
   * A probe of `addressKey` ended: `identity` answered there (undefined when
   * nobody did). Returns the identity that claimed the address when someone
   * else answered (a false claim), so the caller can hold it against it.
   */
  probeFinished(addressKey: string, now: number, identity?: PeerKey): PeerKey | undefined {
    const expected = this.probing.get(addressKey);
    this.probing.delete(addressKey);
    this.membership.probeEnded(addressKey);
    if (expected === undefined || identity === undefined) return undefined;
    if (identity === expected) {
      this.stats.probesVerified++;
      this.membership.markVerified(identity, addressKey, now, false);
      return undefined;
    }
    return expected;
  }

  /** A dial of `addressKey` failed (no connection, or no session). */
  dialFailed(addressKey: string, now: number, identity?: string): void {
    this.stats.dialFailures++;
    this.membership.dialFinished(addressKey, false, now, identity);
    if (this.returning?.addressKey === addressKey && this.returning.peer === undefined) {
      this.returning = undefined;
    }
    if (this.feeler?.addressKey === addressKey && this.feeler.peer === undefined) {
      this.feeler = undefined;
    }
    this.replaceExtraPath(addressKey, now);
    this.extraPathAfterDial(addressKey, now);
  }

  /** Dials known peers until `degree` outbound sessions exist or are pending. */
  dialMore(now: number): void {
    if (this.anchorDue) {
      this.anchorDue = false;
      if (this.dial(this.membership.nextBootstrapper(now))) this.stats.reanchored++;
    }
    for (const known of this.membership.nextDials(now)) this.dial(known);
  }

  /**
   * Dials `known` (marked as dialling by the membership) for `purpose`
   * (HELLO's flags); false when there is none, narrowing it.
   */
  private dial(known: KnownPeer | undefined, purpose: DialPurpose = "member"): known is KnownPeer {
    if (!known) return false;
    this.stats.dials++;
    this.actions.dial(known.address, known.addressKey, purpose);
    return true;
  }

  /**
   * A local module announced an item. While none of this node's peers has
   * proven itself (brought an item first: score above 0) and relayed
   * lately (a valid item within `relayMemoryMs`,
   * {@link hasRelayingProvenPeer}: a peer that relayed and then
   * turned keeps its score), the node cannot tell whether they relay at
   * all: they may all be attackers that accept items and drop them, and the
   * item would reach nobody. So, at most once per `reinforceIntervalMs`, it
   * adds two paths of its own choosing beyond `degree`: a configured
   * bootstrapper and a known peer (proven, tried, or named by a peer it
   * dialled), unless it already has two outbound
   * sessions or dials beyond `degree`. While items have stopped (the silence
   * watch's suspicion), every configured bootstrapper goes before the known
   * peer, within the same two paths. Anti-entropy offers the new sessions
   * the item; rotation trims the extra outbound sessions later. An extra
   * path that fails, or that refers this node elsewhere because it is full
   * (a bootstrapper others are rushing to), is replaced by another known
   * peer, the peers it referred to first, at most twice per reinforcement.
   * Extra paths ask for a delivery session (HELLO flag `deliver`): a full
   * node whose inbound sessions are all protected hears the node out (a
   * delivery session, up to `deliverySessionMs`) before it refers it
   * elsewhere, so that an item whose origin has only withholding
   * peers still reaches the bootstrapper everybody rushes to. The
   * bootstrapper is dialled even while ordinary dials of it back off (it
   * referred them as full): a delivery is another request, and re-anchoring
   * after each replaced withholder kept bootstrappers backing off at the
   * moment an origin needed one. If an ordinary dial of the bootstrapper is
   * in flight (an address is never dialled twice at once), the delivery
   * dial follows as soon as that one ends (docs/SIMULATION.md, "Round of
   * withholders": whole items lost in simulated cold boots without it).
   * Returns the dials started.
   */
  reinforce(now: number): number {
    const interval = this.options.reinforceIntervalMs ?? REINFORCE_INTERVAL_MS;
    if (now - this.lastReinforced < interval) return 0;
    // At most two extra outbound sessions at a time: a node whose peers never
    // bring it an item first (it only publishes) must not keep adding more.
    const outbound = this.membership.outboundCount + this.membership.dialsInProgress;
    if (outbound >= this.options.degree + 2) return 0;
    if (this.hasRelayingProvenPeer(now, "any session")) return 0;
    this.lastReinforced = now;
    this.extraPaths.clear();
    this.extraReplacements = 2;
    let dials = 0;
    // A bootstrapper that referred an ordinary dial (full) may still hear out
    // a delivery: its back-off does not apply here.
    const bootstrapper = this.membership.nextBootstrapper(now, true);
    // An ordinary dial in flight to the bootstrapper (a re-anchoring) would
    // be referred if it is full: the delivery dial follows when it ends.
    this.extraPathsAfterDial.clear();
    if (!bootstrapper) {
      for (const key of this.membership.bootstrappersDialling()) this.extraPathsAfterDial.add(key);
    }
    if (this.dialExtraPath(bootstrapper)) dials++;
    // While items have stopped (the silence watch), the views the known
    // peers come from are in doubt: every configured bootstrapper goes before
    // a known peer, within the same two paths.
    const silent = this.silence.suspect(now);
    while (silent && dials < 2) {
      if (!this.dialExtraPath(this.membership.nextBootstrapper(now, true))) break;
      dials++;
    }
    if (dials < 2 && this.dialExtraPath(this.membership.extraDial(now))) dials++;
    if (dials > 0) {
      this.log.debug("no proven peer: dialling extra paths for a local item", { dials });
    }
    return dials;
  }

  /** An extra path at `addressKey` failed or was refused: dial another (see {@link reinforce}). */
  private replaceExtraPath(addressKey: string, now: number): void {
    if (!this.extraPaths.delete(addressKey) || this.extraReplacements === 0) return;
    if (this.hasRelayingProvenPeer(now, "any session")) return;
    if (this.dialExtraPath(this.membership.extraDial(now))) this.extraReplacements--;
  }

  /**
   * An ordinary dial of a bootstrapper that was in flight when an extra path
   * was due ended (see {@link reinforce}): dial a bootstrapper as the extra
   * path now, unless a proven peer has relayed lately.
   */
  private extraPathAfterDial(addressKey: string, now: number): void {
    if (!this.extraPathsAfterDial.delete(addressKey)) return;
    if (this.hasRelayingProvenPeer(now, "any session")) return;
    this.dialExtraPath(this.membership.nextBootstrapper(now, true));
  }

  /** Dials `known` as an extra path (counted, and remembered for replacement). */
  private dialExtraPath(known: KnownPeer | undefined): boolean {
    if (!this.dial(known, "deliver")) return false;
    this.extraPaths.add(known.addressKey);
    this.stats.reinforced++;
    return true;
  }

  /** Answers a PULL_REQUEST. */
  answerPull(peer: PeerKey, max: number, now: number): void {
    this.actions.send(peer, {
      type: PeerMessageType.Peers,
      peers: this.descriptors(this.membership.sample(max, now, peer)),
      marked: true,
    });
  }

  /**
   * Handles PEERS (an answer) or PUSH (an offer) from `peer`. Returns
   * "unsolicited" for PEERS nobody asked for or more PUSHes than a peer's own
   * round can explain (two per round here: rounds are not synchronised),
   * "limit" when this round's learning budget is spent (nobody's fault), and
   * "unvouched" when `peer` may not vouch for others ({@link mayVouch}: an
   * inbound peer that has proven nothing; not an offence either). In all
   * three cases the descriptors are ignored.
   */
  receiveOffer(
    peer: PeerKey,
    kind: "peers" | "push",
    descriptors: readonly PeerDescriptor[],
    now: number,
  ): "learned" | "unsolicited" | "limit" | "unvouched" {
    let solicited: boolean;
    if (kind === "peers") {
      solicited = this.pullsOutstanding.delete(peer);
    } else {
      const pushes = (this.pushedThisRound.get(peer) ?? 0) + 1;
      this.pushedThisRound.set(peer, pushes);
      solicited = pushes <= MAX_PUSHES_PER_ROUND;
    }
    if (!solicited || this.learnedThisRound >= this.options.maxLearnPerRound) {
      this.stats.offersIgnored++;
      return solicited ? "limit" : "unsolicited";
    }
    if (!this.mayVouch(peer)) {
      this.stats.offersIgnored++;
      return "unvouched";
    }
    const session = this.sessions.get(peer);
    this.learnedThisRound += this.membership.learn(
      descriptors.map((d) => ({
        identity: identityHex(d.identity),
        address: d.address,
        ...(d.proven ? { proven: true } : {}),
      })),
      now,
      session?.direction === "outbound" ? "outbound" : "inbound",
      peer,
      this.mayDisplace(peer, session, now),
    );
    this.dialMore(now);
    return "learned";
  }

  /**
   * Whether the tips of `peer` (its `session`) may displace known peers.
   * While items have stopped, the sessions that were open when they stopped
   * are what the silence accuses, and a feeler is untested until it brings
   * an item (which ends the silence): their tips fill free room in the view
   * but displace no known peer. Without this, the tips of an eclipsed
   * node's silent attackers, and of the attackers its feelers reached,
   * washed out the few honest peers it still knew before its feelers drew
   * them (docs/SIMULATION.md, "Round of the accused sessions' tips"). Other
   * sessions opened since (new peers, dials that refill a slot) are heard
   * as before: a cold-booting node's view is poisoned before any silence,
   * and freezing it all kept the poison.
   */
  private mayDisplace(
    peer: PeerKey,
    session: PeerSessionState | undefined,
    now: number,
  ): boolean {
    const silentSince = this.silence.suspectSince(now);
    if (silentSince === undefined) return true;
    return session !== undefined && session.since > silentSince && this.feeler?.peer !== peer;
  }

  /**
   * One membership round: limits reset, distrusted peers dropped, rotation,
   * dials, one exchange, one probe, the join watchdog.
   */
  round(now: number): void {
    this.pushedThisRound.clear();
    this.learnedThisRound = 0;
    for (const peer of [...this.sessions.keys()]) {
      if (this.actions.isTrusted(peer)) continue;
      this.stats.distrustedDropped++;
      this.anchorDue = true;
      this.forget(peer, now);
      this.actions.close(peer, "distrusted", GoodbyeReason.Banned);
    }
    const deliveryMs = this.options.deliverySessionMs ?? DELIVERY_SESSION_MS;
    const proofMs = this.options.deliveryProofMs ?? DELIVERY_PROOF_MS;
    for (const [peer, session] of this.deliverySessions()) {
      const age = now - session.since;
      const brought = this.actions.score(peer) > 0;
      if (age >= deliveryMs || (age >= proofMs && !brought)) {
        this.referAndClose(peer, now, "delivery session over");
      }
    }
    this.endTrials(now);
    if (this.makeRoomForReturned(now)) {
      // A proven peer dialled again at an earlier round answered and stayed:
      // the lowest-scored other outbound peer has made room for it.
    } else if (this.silence.check(now)) {
      // No item for several usual gaps: the peers may all be black holes
      // that turned (they keep their scores). Replace one; relays before the
      // alarm no longer count. No re-anchoring: every node of a network
      // whose items stop raises its alarm at once, and dialling the
      // bootstrappers all together cost a simulated cold boot 4 points of
      // its first minute (docs/SIMULATION.md, "Round of the silent covert flash").
      this.stats.silenceAlarms++;
      this.log.debug("no item for several usual gaps: replacing a peer", {
        usualGapMs: Math.round(this.silence.usualGap ?? 0),
      });
      this.rotate(now);
    } else if (this.feel(now)) {
      // A feeler brought an item first: it kept its session, and the
      // lowest-scored other outbound peer made room for it.
    } else if (this.options.rotationIntervalMs > 0 && now >= this.nextRotation) {
      this.nextRotation = now + this.rotationDelay();
      // Not while items have stopped: nothing tells the peers apart then (no
      // score moves), so the choice is blind, and the replacement's dial
      // evicts a session at a full node; in a silence of the whole network
      // honest nodes churned while attackers held their sessions
      // (docs/SIMULATION.md, "Round of feelers on trial"). Feelers test
      // peers meanwhile.
      if (!this.silence.suspect(now)) this.rotate(now);
    } else if (this.lowestOutboundScore() <= WITHHOLDER_MERIT && this.rotate(now)) {
      // A withholding outbound peer goes at the next round, not at the next
      // rotation (as GossipSub prunes negative scores from its mesh at every
      // heartbeat), and the node re-anchors as after a distrusted one.
      this.anchorDue = true;
    } else if (!this.membership.hasProvenPeer()) {
      this.dialProvenBack(now);
    }
    this.dialMore(now);
    const partner = this.membership.exchangePartner();
    if (partner) {
      if (this.mayVouch(partner.identity)) this.pull(partner.identity);
      const offer = this.membership.sample(EXCHANGE_SIZE / 2, now, partner.identity);
      offer.push({ identity: this.options.selfIdentity, address: this.options.selfAddress });
      this.actions.send(partner.identity, {
        type: PeerMessageType.Push,
        peers: this.descriptors(offer),
        marked: true,
      });
    }
    // Verify one inbound peer's address per round with a probe handshake.
    const probe = this.membership.probeCandidate(now, PROBE_RETRY_MS);
    if (probe) {
      const key = formatSocketAddress(probe.address);
      this.probing.set(key, probe.identity);
      this.stats.probes++;
      this.actions.probe(probe.address, key);
    }
    this.watchJoin(now);
  }

  /** Verified peers worth saving across restarts. */
  knownPeers(): SavedPeer[] {
    return this.membership.knownPeers();
  }

  /** Adds peers saved by an earlier run. */
  restore(peers: readonly SavedPeer[], now: number): number {
    return this.membership.restore(peers, now);
  }

  /** Closes every session with GOODBYE shutdown. */
  closeAll(now: number): void {
    for (const peer of [...this.sessions.keys()]) {
      this.forget(peer, now, "shutdown");
      this.actions.close(peer, "shutdown", GoodbyeReason.Shutdown);
    }
  }

  /** A uniformly random delay between a half and one and a half rotation intervals. */
  private rotationDelay(): number {
    return this.options.rotationIntervalMs * (0.5 + this.options.random());
  }

  /** The lowest score among outbound peers (Infinity when there is none). */
  private lowestOutboundScore(): number {
    let lowest = Infinity;
    for (const [peer, session] of this.sessions) {
      if (session.direction === "outbound") lowest = Math.min(lowest, this.actions.score(peer));
    }
    return lowest;
  }

  /**
   * While none of its peers is proven (none has brought it an item first),
   * a proven peer that can be dialled again (it had left, and its slot went
   * to a peer from a view attackers may have filled) is dialled beyond
   * `degree`, one at a time; it takes back a slot only once it answered
   * ({@link makeRoomForReturned}). Without this, honest nodes whose proven
   * peers churned kept attackers as all their peers until the next
   * rotation. Making room before the dial cost a peer for every dial of a
   * proven peer that was still down (no answer, no referral): at one dial a
   * second, the nodes restarted under siege dropped their honest peers one
   * by one
   * (docs/SIMULATION.md, "Round of room made after the answer"). Only while
   * no peer is proven: replacing every unproven outbound peer as soon as a
   * proven one is back cost 7 times the rotations in a churning honest
   * network and 0.6 points of a cold boot's first minute.
   */
  private dialProvenBack(now: number): void {
    if (this.returning !== undefined) return;
    if (this.membership.outboundCount < this.options.degree) return;
    const known = this.membership.dialProven(now);
    if (this.dial(known)) this.returning = { addressKey: known.addressKey };
  }

  /**
   * A proven peer dialled by {@link dialProvenBack} whose session opened at
   * an earlier round and is still up takes the slot of the lowest-scored
   * other outbound peer (none if a slot is free). A round later, not at
   * once: a full peer completes the handshake and then refers the dialler
   * elsewhere, and then the slot goes to a peer of its referral instead
   * ({@link returnedThenReferred}). True when one was closed.
   */
  private makeRoomForReturned(now: number): boolean {
    const peer = this.returning?.peer;
    if (peer === undefined) return false;
    this.returning = undefined;
    return this.sessions.get(peer)?.direction === "outbound" && this.makeRoom(now, peer);
  }

  /**
   * The lowest-scored outbound peer other than `spared` makes room for a
   * proven peer or its referral, when those others take every outbound slot.
   * True when one was closed.
   */
  private makeRoom(now: number, spared?: PeerKey): boolean {
    const others = this.membership.outboundCount - (spared === undefined ? 0 : 1);
    if (others < this.options.degree || !this.closeLowestOutbound(now, spared)) return false;
    this.stats.provenReturned++;
    return true;
  }

  /**
   * Feelers, while items have stopped ({@link SilenceWatch.feelerDue}): a
   * short outbound session beyond `degree` to a known peer that none of the
   * connected peers named ({@link Membership.feelerDial}), as Bitcoin Core's
   * feeler connections test addresses without giving up a slot; not one
   * dialled as a feeler before in this silence, nor one that a feeler which
   * brought nothing named (attackers answer a feeler's pull with attackers).
   * An honest peer of a network whose items still flow offers its recent
   * items at once (anti-entropy): if one comes first, the feeler keeps its
   * session and the lowest-scored other outbound peer makes room for it
   * (true). Otherwise it is closed after `feelerProofMs`. In a lull, honest
   * feelers bring nothing and replace nobody: a feeler costs a dial, not a
   * slot. True when a feeler made room.
   */
  private feel(now: number): boolean {
    const feeler = this.feeler;
    if (feeler !== undefined) {
      if (feeler.peer === undefined || feeler.since === undefined) return false;
      if (feeler.brought) {
        this.feeler = undefined;
        this.stats.feelersKept++;
        // Items had stopped while another peer had them: the operator may
        // want to know (one line per kept feeler, a few per silence at most).
        this.log.info("items had stopped; a feeler brought one first and stays", {
          peer: feeler.peer.slice(0, 8),
        });
        return this.makeRoom(now, feeler.peer);
      }
      if (now - feeler.since >= (this.options.feelerProofMs ?? FEELER_PROOF_MS)) {
        this.feeler = undefined;
        this.feltNothing.add(feeler.peer);
        // Another outbound peer left meanwhile: the feeler keeps the slot.
        if (this.membership.outboundCount <= this.options.degree) return false;
        this.forget(feeler.peer, now, "feeler brought nothing");
        this.actions.close(feeler.peer, "feeler brought nothing", GoodbyeReason.Shutdown);
      }
      return false;
    }
    if (this.membership.outboundCount < this.options.degree || !this.silence.feelerDue(now)) {
      return false;
    }
    const suspects = new Set([...this.sessions.keys(), ...this.feltNothing]);
    const known = this.membership.feelerDial(now, suspects, this.feltAddresses);
    if (!this.dial(known, "feel")) return false;
    this.feeler = { addressKey: known.addressKey };
    this.feltAddresses.add(known.addressKey);
    this.stats.feelers++;
    return false;
  }

  /** Inbound slots: `min(max_peer_connections, 2 × degree)`. */
  private get inboundLimit(): number {
    return Math.min(this.maxPeerConnections, 2 * this.options.degree);
  }

  /** Whether the inbound sessions other than feelers on trial fill the inbound slots. */
  private inboundSlotsFull(): boolean {
    return this.membership.inboundCount - this.trialCount() >= this.inboundLimit;
  }

  /** Inbound feelers on trial now (at most `degree`; {@link PeerSessionState.trial}). */
  private trialCount(): number {
    let count = 0;
    for (const session of this.sessions.values()) if (session.trial) count++;
    return count;
  }

  /**
   * Feelers on trial whose initiator still keeps them after `feelerTrialMs`
   * (it closes one that brought it nothing after `feelerProofMs`) take an
   * inbound slot: the one the eviction rules pick makes room, or, when every
   * inbound session is protected, the feeler is referred elsewhere.
   */
  private endTrials(now: number): void {
    const trialMs = this.options.feelerTrialMs ?? FEELER_TRIAL_MS;
    const over = [...this.sessions].filter(([, session]) =>
      session.trial && now - session.since >= trialMs
    );
    for (const [peer, session] of over) {
      if (this.inboundSlotsFull()) {
        const victim = this.evictionCandidate(now, this.actions.score(peer) > 0);
        if (victim === undefined) {
          this.referAndClose(peer, now, "feeler's trial over, slots full");
          continue;
        }
        this.stats.evicted++;
        this.referAndClose(victim, now, "evicted for a feeler kept by its node");
      }
      this.sessions.set(peer, { ...session, trial: false });
    }
  }

  /** Replaces one outbound peer when all outbound slots are taken (see the module documentation). */
  private rotate(now: number): boolean {
    if (this.membership.outboundCount < this.options.degree) return false;
    if (!this.membership.hasDialCandidate(now)) return false;
    return this.closeLowestOutbound(now);
  }

  /**
   * Closes the outbound peer that earned least (random among equals), other
   * than `spared`: once items flow, peers that withhold them (score 0 or
   * below) go before peers that bring items first. False when there is none.
   */
  private closeLowestOutbound(now: number, spared?: PeerKey): boolean {
    const outbound: PeerKey[] = [];
    for (const [peer, session] of this.sessions) {
      if (session.direction === "outbound" && peer !== spared) outbound.push(peer);
    }
    const { items: victims } = allWithLargest(outbound, (peer) => -this.actions.score(peer));
    const victim = victims[Math.floor(this.options.random() * victims.length)];
    if (victim === undefined) return false;
    this.stats.rotated++;
    this.forget(victim, now);
    this.actions.close(victim, "rotated out", GoodbyeReason.Shutdown);
    return true;
  }

  private refuse(
    info: SessionInfo,
    now: number,
    reason: string,
    goodbye: number,
  ): SessionDecision & { accept: false } {
    if (info.dialed !== undefined) this.membership.dialFinished(info.dialed, false, now, info.peer);
    if (info.dialed !== undefined && this.feeler?.addressKey === info.dialed) {
      this.feeler = undefined;
    }
    return { accept: false, reason, goodbye };
  }

  /**
   * Whether a delivery session fits: fewer than `limit` (as many as the
   * inbound slots) are open, or the oldest that has brought no item first is
   * ended for the newcomer (so that claimants that bring nothing cannot hold
   * them: each lasts only until the next claimant).
   */
  private roomForDelivery(limit: number, now: number): boolean {
    const open = this.deliverySessions();
    if (open.length < limit) return true;
    let oldest: { peer: PeerKey; since: number } | undefined;
    for (const [peer, { since }] of open) {
      if (this.actions.score(peer) > 0) continue;
      if (oldest === undefined || since < oldest.since) oldest = { peer, since };
    }
    if (oldest === undefined) return false;
    this.stats.deliveriesDisplaced++;
    this.referAndClose(oldest.peer, now, "delivery session displaced");
    return true;
  }

  /** The delivery sessions open now (a snapshot: the caller may end them). */
  private deliverySessions(): [PeerKey, PeerSessionState][] {
    return [...this.sessions].filter(([, session]) => session.delivery);
  }

  /**
   * Ends the inbound session of `victim` for room: a referral first, as a
   * PUSH (the victim asked for nothing, and a PEERS that answers no pull
   * costs the sender a strike; an honest node would pay it), then GOODBYE full.
   */
  private referAndClose(victim: PeerKey, now: number, reason: string): void {
    const referral = this.descriptors(this.membership.sample(EXCHANGE_SIZE, now, victim));
    this.forget(victim, now, reason);
    this.actions.send(victim, { type: PeerMessageType.Push, peers: referral, marked: true });
    this.actions.close(victim, reason, GoodbyeReason.Full);
  }

  private forget(peer: PeerKey, now: number, reason?: string): void {
    const session = this.sessions.get(peer);
    if (!session) return;
    this.sessions.delete(peer);
    this.lastRelayAt.delete(peer);
    if (this.feeler?.peer === peer) this.feeler = undefined;
    this.pullsOutstanding.delete(peer);
    this.pushedThisRound.delete(peer);
    this.membership.disconnected(peer, now);
    if (this.sessions.size === 0) {
      this.lonelySince = now;
      this.joined = false;
    }
    this.log.info("peer disconnected", {
      peer: peer.slice(0, 8),
      reason,
      peers: this.sessions.size,
    });
    this.actions.forgotten(peer);
  }

  /**
   * The inbound session to end for a newcomer when the inbound slots are full
   * (after Bitcoin Core's eviction): the quarter of them up longest and the
   * quarter with the best scores are protected, and so is every session
   * younger than `evictionGraceMs`; of the rest, the silent ones (no valid
   * item within `relayMemoryMs`, {@link noteRelay}) go first, if any: the
   * youngest session from the address range with the most of them. Undefined
   * when every inbound session is protected. A `proven` newcomer (it brought
   * this node items first, in an earlier session: scores outlive sessions)
   * is not kept out by the grace of sessions that proved nothing: a peer
   * that restarted and dials the nodes it relayed to found them full of
   * sessions in their first seconds, attackers' among them.
   */
  private evictionCandidate(now: number, proven = false): PeerKey | undefined {
    const inbound: { peer: PeerKey; since: number; score: number; range: string }[] = [];
    for (const [peer, session] of this.sessions) {
      if (session.direction !== "inbound" || session.delivery || session.trial) continue;
      inbound.push({
        peer,
        since: session.since,
        score: this.actions.score(peer),
        range: session.range,
      });
    }
    const protect = Math.ceil(inbound.length / 4);
    const protectedPeers = new Set<PeerKey>();
    for (const entry of [...inbound].sort((a, b) => a.since - b.since).slice(0, protect)) {
      protectedPeers.add(entry.peer);
    }
    const byScore = inbound.filter((e) => e.score > 0 && !protectedPeers.has(e.peer));
    for (const entry of byScore.sort((a, b) => b.score - a.score).slice(0, protect)) {
      protectedPeers.add(entry.peer);
    }
    const grace = this.options.evictionGraceMs ?? EVICTION_GRACE_MS;
    let unprotected = inbound.filter((e) => !protectedPeers.has(e.peer) && now - e.since >= grace);
    if (unprotected.length === 0 && proven) {
      unprotected = inbound.filter((e) => !protectedPeers.has(e.peer) && e.score <= 0);
    }
    if (unprotected.length === 0) return undefined;
    // Sessions that relay items go after the silent ones: attackers that
    // drop items hold slots only while no silent session is left. While items
    // have stopped (the silence watch), no session counts as relaying.
    const silent = unprotected.filter((e) => !this.stillRelays(e.peer, now));
    const candidates = silent.length > 0 ? silent : unprotected;
    const perRange = new Map<string, number>();
    for (const entry of candidates) perRange.set(entry.range, (perRange.get(entry.range) ?? 0) + 1);
    const crowded = Math.max(...perRange.values());
    let victim: (typeof candidates)[number] | undefined;
    for (const entry of candidates) {
      if (perRange.get(entry.range) !== crowded) continue;
      if (victim === undefined || entry.since > victim.since) victim = entry;
    }
    return victim?.peer;
  }

  /**
   * Whether descriptors from `peer` are heard: a peer this node dialled, a
   * proven one (score above 0) or a configured bootstrapper.
   */
  private mayVouch(peer: PeerKey): boolean {
    return this.sessions.get(peer)?.direction === "outbound" || this.actions.score(peer) > 0 ||
      this.membership.isBootstrapper(peer);
  }

  private pull(peer: PeerKey): void {
    this.pullsOutstanding.add(peer);
    this.actions.send(peer, { type: PeerMessageType.PullRequest, max: EXCHANGE_SIZE });
  }

  private watchJoin(now: number): void {
    if (this.sessions.size > 0 || this.membership.bootstrapperCount === 0) return;
    const { joinWarningMs } = this.options;
    if (now - this.lonelySince < joinWarningMs || now - this.lastJoinWarning < joinWarningMs) {
      return;
    }
    this.lastJoinWarning = now;
    this.log.warn("no peer and no bootstrapper answers; still trying", {
      bootstrappers: this.options.bootstrappers.map(formatSocketAddress).join(","),
      seconds: Math.round((now - this.lonelySince) / 1000),
    });
  }

  private descriptors(peers: readonly AddressedPeer[]): PeerDescriptor[] {
    return peers.slice(0, MAX_DESCRIPTORS).map((p) => ({
      identity: hexToBytes(p.identity),
      address: p.address,
      ...(p.proven ? { proven: true } : {}),
    }));
  }
}

/** The core's answer to a new authenticated session. */
export type SessionDecision =
  | { readonly accept: true }
  | {
    readonly accept: false;
    /** Why, for the log. */
    readonly reason: string;
    /** The GOODBYE reason to send. */
    readonly goodbye: number;
    /** Peers to recommend before saying goodbye (when full). */
    readonly referral?: readonly PeerDescriptor[];
  };
