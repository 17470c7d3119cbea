/**
 * The peer guard: who may connect, how much each peer may send and ask for,
 * how well each peer behaved, and who is banned.
 *
 * - **Admission of connections** (before any handshake): bans by address, a
 *   rate per IP address and per address range (/24, /48), a cap on peers per
 *   range, and a fixed number of pre-authentication slots. When the slots are
 *   full the oldest unauthenticated connection is evicted rather than the
 *   newest refused, so an attacker holding slots open cannot keep honest
 *   handshakes out. The exact loopback addresses 127.0.0.1 and ::1 are exempt
 *   from the per-address limits unless `limitLoopback` is set, so that a whole
 *   test cluster can run on one host; the rest of 127.0.0.0/8 is treated like
 *   any other address.
 * - **Admission of sessions** (after the handshake): bans by identity, a rate
 *   of sessions per identity, and a score floor (`distrustScore`: a distrusted
 *   peer is disconnected and may come back once its score has decayed).
 * - **Budgets**: messages per second per peer (a flood bans it) and bytes per
 *   second served in answer to IWANT.
 * - **Score**: each identity has a score that offences lower and useful work
 *   raises, decaying towards 0 with a half-life. Below `distrustScore` a peer
 *   is neither pushed to nor pulled from; below `banScore`, or after
 *   `invalidItemsBeforeBan` invalid items within `strikeWindowMs`, it is banned
 *   (identity, and address unless exempt) for `banDurationMs`.
 *
 * Every per-key table is bounded (least recently used entries go first), so
 * state does not grow with peers ever seen. Pure state; time is passed in.
 *
 * @module
 */

import {
  addressRange,
  BanList,
  KeyedRateLimiter,
  StrikeCounter,
  TokenBucket,
} from "../protocol/rate_limit.ts";
import type { PeerKey } from "../protocol/item_store.ts";

/** Limits against hostile peers (docs/SECURITY.md). */
export interface SecurityOptions {
  /** New inbound connections per second from one IP address. */
  readonly connectionsPerIpPerSecond: number;
  /** Burst of new inbound connections from one IP address. */
  readonly connectionBurstPerIp: number;
  /** New inbound connections per second from one /24 or /48 address range. */
  readonly connectionsPerRangePerSecond: number;
  /** Burst of new inbound connections from one address range. */
  readonly connectionBurstPerRange: number;
  /** Inbound peers (connected or in handshake) from one /24 or /48 address range. */
  readonly maxInboundPerRange: number;
  /** Unauthenticated inbound connections at once; beyond, the oldest is evicted. */
  readonly maxPreAuthConnections: number;
  /** Sessions per second one identity may establish (sustained). */
  readonly sessionsPerIdentityPerSecond: number;
  /** Burst of sessions of one identity. */
  readonly sessionBurstPerIdentity: number;
  /** Inbound handshakes per second one identity may start (sustained). */
  readonly handshakesPerIdentityPerSecond: number;
  /** Burst of inbound handshakes of one identity. */
  readonly handshakeBurstPerIdentity: number;
  /** Messages per second one peer may send on average. */
  readonly messagesPerSecond: number;
  /** Burst of messages one peer may send. */
  readonly messageBurst: number;
  /** Payload bytes per second served to one peer in answer to IWANT. */
  readonly serveBytesPerSecond: number;
  /** Burst of payload bytes served to one peer. */
  readonly serveBurstBytes: number;
  /** Invalid items from one peer within `strikeWindowMs` that get it banned. */
  readonly invalidItemsBeforeBan: number;
  /** Window of the invalid-item count. */
  readonly strikeWindowMs: number;
  /** How long a ban lasts. */
  readonly banDurationMs: number;
  /** Score below which a peer is neither pushed to nor pulled from. */
  readonly distrustScore: number;
  /** Score below which a peer is banned. */
  readonly banScore: number;
  /** Half-life of scores, in ms. */
  readonly scoreHalfLifeMs: number;
  /** New descriptors accepted per membership round from all peers together. */
  readonly maxLearnPerRound: number;
  /** Whether per-address limits also apply to 127.0.0.1 and ::1. */
  readonly limitLoopback: boolean;
}

/** Misbehaviour the guard scores. */
export type Offence =
  /** An item whose ID does not match its content. */
  | "item-id-mismatch"
  /** An item local validation judged invalid. */
  | "invalid-item"
  /** Advertised an item, then did not deliver it when asked. */
  | "unanswered-want"
  /** Sent items faster than its share of validation while it was full. */
  | "validation-over-share"
  /** Offered peer descriptors without being asked, or too many. */
  | "unsolicited-offer"
  /** A message that broke the protocol after the handshake. */
  | "protocol-violation"
  /** Advertised an address where someone else answered. */
  | "false-address-claim";

/** Score change of each offence. */
export const OFFENCE_PENALTY: Readonly<Record<Offence, number>> = {
  "item-id-mismatch": 25,
  "invalid-item": 5,
  "unanswered-want": 5,
  "validation-over-share": 1,
  "unsolicited-offer": 0.5,
  "protocol-violation": 100,
  "false-address-claim": 10,
};

/**
 * Offences that are poor service rather than misbehaviour: an honest but
 * overloaded peer commits them too (it evicted an item it had advertised). They
 * can make a peer distrusted, never banned: alone they lower the score at most
 * to {@link SERVICE_FLOOR_BELOW_DISTRUST} under `distrustScore`.
 */
const SERVICE_OFFENCES: ReadonlySet<Offence> = new Set(["unanswered-want"]);
/** How far below `distrustScore` poor service alone can lower a score. */
const SERVICE_FLOOR_BELOW_DISTRUST = 10;

/** Each offence in words, for logs. */
export const OFFENCE_DESCRIPTION: Readonly<Record<Offence, string>> = {
  "item-id-mismatch": "item ID does not match its content",
  "invalid-item": "repeated invalid items",
  "unanswered-want": "advertised items it did not deliver",
  "validation-over-share": "flooded validation beyond its share",
  "unsolicited-offer": "unsolicited peer offers",
  "protocol-violation": "protocol violation",
  "false-address-claim": "false address claim",
};

/** Score a peer earns for bringing a valid item first. */
const CREDIT_PER_ITEM = 1;
/** Highest score (so a long good record cannot bank unlimited misbehaviour). */
const MAX_SCORE = 50;
/** Identities whose score, strikes and session rate are remembered. */
const MAX_TRACKED_IDENTITIES = 10_000;

/** A ban to persist: what is banned (identity or address) and until when (wall clock ms). */
export interface PersistedBan {
  /** Hex identity or IP address. */
  readonly key: string;
  /** Wall-clock time (ms since the Unix epoch) the ban ends. */
  readonly until: number;
}

/** Why an inbound connection or a session is refused. */
export type Refusal =
  | "banned address"
  | "connection rate"
  | "range connection rate"
  | "too many peers from one range"
  | "banned identity"
  | "session rate"
  | "handshake rate"
  | "low score";

/** Answer to {@link PeerGuard.admitConnection}. */
export interface ConnectionAdmission {
  /** Why it is refused; undefined when admitted. */
  readonly refusal?: Refusal;
  /** Unauthenticated connections to close to make room (oldest first). */
  readonly evict: readonly number[];
}

interface Score {
  value: number;
  at: number;
}

interface PreAuth {
  readonly ip: string;
  readonly range: string | undefined;
  /** True once its HELLO arrived: it is handshaking, not merely holding a slot. */
  progressed: boolean;
}

/** Counters of a {@link PeerGuard}. */
export interface GuardStats {
  /** Inbound connections refused, by reason. */
  readonly refused: Record<string, number>;
  /** Unauthenticated connections evicted to make room. */
  evicted: number;
  /** Peers banned. */
  banned: number;
  /** Offences recorded, by kind. */
  readonly offences: Record<string, number>;
}

/** Admission, budgets, scores and bans of one node. */
export class PeerGuard {
  private readonly bans = new BanList();
  private readonly ipRate: KeyedRateLimiter;
  private readonly rangeRate: KeyedRateLimiter;
  private readonly identityRate: KeyedRateLimiter;
  private readonly handshakeRate: KeyedRateLimiter;
  private readonly strikes: StrikeCounter;
  private readonly scores = new Map<string, Score>();
  private readonly preAuth = new Map<number, PreAuth>();
  /** Inbound sessions and pre-auth connections per limited range. */
  private readonly perRange = new Map<string, number>();
  private readonly sessionRange = new Map<PeerKey, string>();
  private readonly messageBudgets = new Map<PeerKey, TokenBucket>();
  private readonly serveBudgets = new Map<PeerKey, TokenBucket>();
  /** Counters. */
  readonly stats: GuardStats = { refused: {}, evicted: 0, banned: 0, offences: {} };

  /** Creates a guard with `options`. */
  constructor(private options: SecurityOptions) {
    this.ipRate = new KeyedRateLimiter(
      options.connectionsPerIpPerSecond,
      options.connectionBurstPerIp,
    );
    this.rangeRate = new KeyedRateLimiter(
      options.connectionsPerRangePerSecond,
      options.connectionBurstPerRange,
    );
    this.identityRate = new KeyedRateLimiter(
      options.sessionsPerIdentityPerSecond,
      options.sessionBurstPerIdentity,
    );
    this.handshakeRate = new KeyedRateLimiter(
      options.handshakesPerIdentityPerSecond,
      options.handshakeBurstPerIdentity,
    );
    this.strikes = new StrikeCounter(options.invalidItemsBeforeBan, options.strikeWindowMs);
  }

  /** The limits in force. */
  get limits(): SecurityOptions {
    return this.options;
  }

  /** Replaces limits that can change at run time (budgets and thresholds of new peers). */
  reconfigure(changes: Partial<SecurityOptions>): void {
    this.options = { ...this.options, ...changes };
  }

  /** Sizes of the per-key tables, for the status endpoint. */
  get sizes(): Record<string, number> {
    return {
      bans: this.bans.size,
      scores: this.scores.size,
      preAuthConnections: this.preAuth.size,
      ranges: this.perRange.size,
      ipRateKeys: this.ipRate.size,
      rangeRateKeys: this.rangeRate.size,
      identityRateKeys: this.identityRate.size,
      handshakeRateKeys: this.handshakeRate.size,
      strikeKeys: this.strikes.size,
      messageBudgets: this.messageBudgets.size,
      serveBudgets: this.serveBudgets.size,
    };
  }

  /** Unauthenticated connections held. */
  get preAuthCount(): number {
    return this.preAuth.size;
  }

  /** True when per-address limits apply to `ip`. */
  isLimited(ip: string): boolean {
    return this.options.limitLoopback || !isExemptLoopback(ip);
  }

  /**
   * Admits a new inbound connection `conn` from `ip`, before its handshake:
   * refuses it, or admits it and names older unauthenticated connections to
   * evict to make room. An admitted connection holds a pre-authentication slot
   * until {@link preAuthEnded}.
   */
  admitConnection(conn: number, ip: string, now: number): ConnectionAdmission {
    const refusal = this.connectionRefusal(ip, now);
    if (refusal) {
      this.count(this.stats.refused, refusal);
      return { refusal, evict: [] };
    }
    // The slowest go first: connections that have not even sent their HELLO,
    // oldest first, then (only if need be) the oldest of the rest.
    const evict: number[] = [];
    const excess = () => this.preAuth.size - evict.length >= this.options.maxPreAuthConnections;
    for (const silentOnly of [true, false]) {
      for (const [conn, entry] of this.preAuth) {
        if (!excess()) break;
        if (silentOnly === !entry.progressed && !evict.includes(conn)) evict.push(conn);
      }
    }
    for (const victim of evict) this.preAuthEnded(victim);
    this.stats.evicted += evict.length;
    const range = this.isLimited(ip) ? addressRange(ip) : undefined;
    this.preAuth.set(conn, { ip, range, progressed: false });
    if (range) this.perRange.set(range, (this.perRange.get(range) ?? 0) + 1);
    return { evict };
  }

  /** Connection `conn` sent its HELLO: it is evicted only after silent ones. */
  preAuthProgressed(conn: number): void {
    const entry = this.preAuth.get(conn);
    if (entry) entry.progressed = true;
  }

  /** An admitted connection finished its handshake (or failed): frees its slot. */
  preAuthEnded(conn: number): void {
    const entry = this.preAuth.get(conn);
    if (!entry) return;
    this.preAuth.delete(conn);
    if (entry.range) this.decrementRange(entry.range);
  }

  /**
   * Whether an inbound handshake from identity `peer` at `ip` may go on, asked
   * as soon as its HELLO arrives: not banned, and within the handshake rate per
   * identity (a reused identity cannot make this node verify and sign for it
   * again and again).
   */
  admitHandshake(peer: PeerKey, ip: string, now: number): boolean {
    let refusal: Refusal | undefined;
    if (this.bans.isBanned(peer, now)) refusal = "banned identity";
    else if (this.bans.isBanned(ip, now)) refusal = "banned address";
    else if (!this.handshakeRate.take(peer, now)) refusal = "handshake rate";
    if (refusal === undefined) return true;
    this.count(this.stats.refused, refusal);
    return false;
  }

  /** Why a session of `peer` must be refused now, or undefined to admit it. */
  sessionRefusal(peer: PeerKey, now: number): Refusal | undefined {
    let refusal: Refusal | undefined;
    if (this.bans.isBanned(peer, now)) refusal = "banned identity";
    else if (!this.identityRate.take(peer, now)) refusal = "session rate";
    else if (this.score(peer, now) < this.options.distrustScore) refusal = "low score";
    if (refusal) this.count(this.stats.refused, refusal);
    return refusal;
  }

  /** Tracks an accepted session of `peer` from `ip` until {@link sessionClosed}. */
  sessionAdmitted(peer: PeerKey, ip: string, inbound: boolean, now: number): void {
    if (inbound && this.isLimited(ip)) {
      const range = addressRange(ip);
      this.sessionRange.set(peer, range);
      this.perRange.set(range, (this.perRange.get(range) ?? 0) + 1);
    }
    const { messagesPerSecond, messageBurst, serveBytesPerSecond, serveBurstBytes } = this.options;
    this.messageBudgets.set(peer, new TokenBucket(messagesPerSecond, messageBurst, now));
    this.serveBudgets.set(peer, new TokenBucket(serveBytesPerSecond, serveBurstBytes, now));
  }

  /** A session admitted by {@link sessionAdmitted} ended. */
  sessionClosed(peer: PeerKey): void {
    this.messageBudgets.delete(peer);
    this.serveBudgets.delete(peer);
    const range = this.sessionRange.get(peer);
    if (range !== undefined) {
      this.sessionRange.delete(peer);
      this.decrementRange(range);
    }
  }

  /** Takes one message from `peer`'s budget; false when it floods. */
  takeMessage(peer: PeerKey, now: number): boolean {
    return this.messageBudgets.get(peer)?.take(now) ?? false;
  }

  /** Takes `bytes` from what may be served to `peer` now; false when over budget. */
  takeServe(peer: PeerKey, bytes: number, now: number): boolean {
    return this.serveBudgets.get(peer)?.take(now, bytes) ?? false;
  }

  /** True while `key` (identity or address) is banned. */
  isBanned(key: string, now: number): boolean {
    return this.bans.isBanned(key, now);
  }

  /** `peer`'s current score (0 for unknown peers). */
  score(peer: PeerKey, now: number): number {
    const entry = this.scores.get(peer);
    if (!entry) return 0;
    return entry.value * 0.5 ** ((now - entry.at) / this.options.scoreHalfLifeMs);
  }

  /** True unless `peer`'s score is below `distrustScore`. */
  isTrusted(peer: PeerKey, now: number): boolean {
    const threshold = this.options.distrustScore;
    const entry = this.scores.get(peer);
    // Scores decay towards 0: with a threshold at or below 0, a score at or
    // above it stays there (no need to compute the decay: hot in dial choices).
    if (threshold <= 0 && (!entry || entry.value >= threshold)) return true;
    return this.score(peer, now) >= threshold;
  }

  /** `peer` did useful work (brought a valid item first). */
  credit(peer: PeerKey, now: number): void {
    this.adjust(peer, CREDIT_PER_ITEM, now);
  }

  /**
   * Records `offence` by `peer`; returns true when the peer must now be banned
   * (the caller bans it with {@link ban} and closes its session).
   */
  penalize(peer: PeerKey, offence: Offence, now: number): boolean {
    this.count(this.stats.offences, offence);
    let penalty = OFFENCE_PENALTY[offence];
    if (SERVICE_OFFENCES.has(offence)) {
      const floor = this.options.distrustScore - SERVICE_FLOOR_BELOW_DISTRUST;
      penalty = Math.max(0, Math.min(penalty, this.score(peer, now) - floor));
    }
    const score = this.adjust(peer, -penalty, now);
    if (offence === "invalid-item" && this.strikes.strike(peer, now)) {
      this.strikes.clear(peer);
      return true;
    }
    return score < this.options.banScore;
  }

  /**
   * Bans `peer` and, when limited, its address `ip`, for `banDurationMs`.
   * Returns false when it was banned already.
   */
  ban(peer: PeerKey, ip: string | undefined, now: number): boolean {
    if (this.bans.isBanned(peer, now)) return false;
    this.stats.banned++;
    this.bans.ban(peer, now, this.options.banDurationMs);
    if (ip !== undefined && this.isLimited(ip)) this.bans.ban(ip, now, this.options.banDurationMs);
    this.scores.delete(peer);
    return true;
  }

  /** Bans still in force, with wall-clock end times, for the peers file. */
  exportBans(now: number, wallNow: number): PersistedBan[] {
    return this.bans.entries(now).map(({ key, until }) => ({ key, until: wallNow + until - now }));
  }

  /** Restores persisted bans still in force. */
  importBans(bans: readonly PersistedBan[], now: number, wallNow: number): number {
    let restored = 0;
    for (const { key, until } of bans) {
      if (until <= wallNow) continue;
      this.bans.ban(key, now, Math.min(until - wallNow, this.options.banDurationMs));
      restored++;
    }
    return restored;
  }

  private connectionRefusal(ip: string, now: number): Refusal | undefined {
    if (this.bans.isBanned(ip, now)) return "banned address";
    if (!this.isLimited(ip)) return undefined;
    if (!this.ipRate.take(ip, now)) return "connection rate";
    const range = addressRange(ip);
    if (!this.rangeRate.take(range, now)) return "range connection rate";
    if ((this.perRange.get(range) ?? 0) >= this.options.maxInboundPerRange) {
      return "too many peers from one range";
    }
    return undefined;
  }

  private decrementRange(range: string): void {
    const left = (this.perRange.get(range) ?? 1) - 1;
    if (left <= 0) this.perRange.delete(range);
    else this.perRange.set(range, left);
  }

  private adjust(peer: PeerKey, delta: number, now: number): number {
    const value = Math.min(MAX_SCORE, this.score(peer, now) + delta);
    this.scores.delete(peer);
    if (Math.abs(value) < 0.01) return 0;
    if (this.scores.size >= MAX_TRACKED_IDENTITIES) {
      this.scores.delete(this.scores.keys().next().value as string);
    }
    this.scores.set(peer, { value, at: now });
    return value;
  }

  private count(table: Record<string, number>, key: string): void {
    table[key] = (table[key] ?? 0) + 1;
  }
}

/** True for the exact loopback addresses 127.0.0.1 and ::1 (and ::ffff:127.0.0.1). */
export function isExemptLoopback(ip: string): boolean {
  return ip === "127.0.0.1" || ip === "::1" || ip === "::ffff:127.0.0.1";
}
