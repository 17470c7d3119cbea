/**
 * Every tunable of the node core and its default, in one place. The config
 * file sets the documented keys (README); these are the limits and timings
 * behind them, overridable by library users and tests.
 *
 * @module
 */

import { DEFAULT_ITEM_STORE_OPTIONS, type ItemStoreOptions } from "../protocol/item_store.ts";
import {
  DEFAULT_SILENCE_WATCH_OPTIONS,
  type SilenceWatchOptions,
} from "../protocol/silence_watch.ts";
import { DEFAULT_SPREADING_OPTIONS, type SpreadingOptions } from "../protocol/spreading.ts";
import {
  DEFAULT_VALIDATION_QUEUE_OPTIONS,
  type ValidationQueueOptions,
} from "../protocol/validation_queue.ts";
import type { SecurityOptions } from "./peer_guard.ts";

/** Internal limits and timings of a node core. */
export interface CoreTuning {
  /** Spreading and pull repair. */
  readonly spreading: Omit<SpreadingOptions, "degree" | "random">;
  /** Item store bounds besides `cache_size`. */
  readonly store: Omit<ItemStoreOptions, "maxItems">;
  /** The fair queue in front of local validation. */
  readonly validationQueue: ValidationQueueOptions;
  /** Local announcements waiting before new ones are dropped. */
  readonly maxAnnounceQueue: number;
  /** Unanswered NOTIFICATION IDs kept per API client (oldest forgotten beyond). */
  readonly maxOutstandingNotifications: number;
  /** Validation timeouts in a row after which a module is no longer waited for. */
  readonly muteAfterTimeouts: number;
  /** IWANT is answered only while less than this is queued to the peer. */
  readonly maxPeerBacklogBytes: number;
  /** How often the peers file is written (also at once when the first peer is proven). */
  readonly persistIntervalMs: number;
  /** Verified peers known this long are recommended before younger ones. */
  readonly establishedAfterMs: number;
  /** Interval of the warning while no peer is connected and no bootstrapper answers. */
  readonly joinWarningMs: number;
  /** Mean interval at which a node replaces one outbound peer (0: never). */
  readonly outboundRotationMs: number;
  /** An inbound session this young is not evicted for a newcomer (the newcomer is referred). */
  readonly evictionGraceMs: number;
  /**
   * A peer that sent a valid item within this long still relays: its inbound
   * session is evicted after silent ones, and while a proven peer that still
   * relays is connected, another one's departure is no reason to re-anchor.
   */
  readonly relayMemoryMs: number;
  /**
   * How long a full node hears out a newcomer that came to deliver a local
   * item (HELLO flag `deliver`) before it refers it elsewhere.
   */
  readonly deliverySessionMs: number;
  /** A delivery session that brought no item first by then is ended. */
  readonly deliveryProofMs: number;
  /**
   * How long a full node hears a feeler (HELLO flag `feel`) on trial beyond
   * its inbound slots before the feeler, if its node keeps it, takes a slot.
   */
  readonly feelerTrialMs: number;
  /**
   * Least interval between two reinforcements: extra paths dialled for a
   * local item while no peer is proven.
   */
  readonly reinforceIntervalMs: number;
  /**
   * When a silence of items makes past relays suspect and sends feelers:
   * the peers may all be black holes that turned, so feelers test known
   * peers beyond `degree`. Alarms (an outbound peer replaced per alarm, no
   * re-anchoring: every node's alarm comes at once) are an option, off by
   * default.
   */
  readonly silenceWatch: SilenceWatchOptions;
}

/** Defaults of {@link CoreTuning}. */
export const DEFAULT_CORE_TUNING: CoreTuning = {
  spreading: DEFAULT_SPREADING_OPTIONS,
  store: DEFAULT_ITEM_STORE_OPTIONS,
  validationQueue: DEFAULT_VALIDATION_QUEUE_OPTIONS,
  maxAnnounceQueue: 10_000,
  maxOutstandingNotifications: 16_384,
  muteAfterTimeouts: 3,
  maxPeerBacklogBytes: 2 * 1024 * 1024,
  persistIntervalMs: 30_000,
  establishedAfterMs: 60_000,
  joinWarningMs: 30_000,
  outboundRotationMs: 60_000,
  evictionGraceMs: 5_000,
  relayMemoryMs: 60_000,
  deliverySessionMs: 5_000,
  deliveryProofMs: 2_000,
  feelerTrialMs: 10_000,
  reinforceIntervalMs: 10_000,
  silenceWatch: DEFAULT_SILENCE_WATCH_OPTIONS,
};

/** Defaults of {@link SecurityOptions}. */
export const DEFAULT_SECURITY_OPTIONS: SecurityOptions = {
  connectionsPerIpPerSecond: 5,
  connectionBurstPerIp: 20,
  connectionsPerRangePerSecond: 20,
  connectionBurstPerRange: 60,
  maxInboundPerRange: 8,
  maxPreAuthConnections: 64,
  sessionsPerIdentityPerSecond: 1,
  sessionBurstPerIdentity: 10,
  handshakesPerIdentityPerSecond: 2,
  handshakeBurstPerIdentity: 20,
  messagesPerSecond: 5_000,
  messageBurst: 20_000,
  serveBytesPerSecond: 8 * 1024 * 1024,
  serveBurstBytes: 16 * 1024 * 1024,
  invalidItemsBeforeBan: 10,
  strikeWindowMs: 60_000,
  banDurationMs: 10 * 60_000,
  distrustScore: -20,
  banScore: -100,
  scoreHalfLifeMs: 5 * 60_000,
  maxLearnPerRound: 32,
  limitLoopback: false,
};
