/**
 * An in-memory network of real node cores, for tests and the simulator.
 *
 * Every simulated node runs the daemon's own {@link NodeCore} (membership,
 * spreading, guard, store: the same code as `lib/node.ts` drives) on a shared
 * {@link VirtualClock}. The network carries out the cores' actions: sessions
 * are per-pair FIFO channels whose messages take the delay of a pluggable
 * {@link LinkModel} (constant, or a WAN on a globe with jitter and loss) after
 * waiting for the sender's uplink (a bandwidth per node), a dial or a probe
 * takes a connect round trip plus the handshake, and each node has one local
 * module that subscribes and answers VALIDATION after a delay. Partitions close
 * the sessions that cross them and refuse dials until healed; nodes can be
 * stopped and restarted with their saved state. An observer sees every item
 * copy and every notification (metrics), and every message's wire size is
 * counted by type.
 *
 * Deterministic: the same options and seed give the same run.
 *
 * @module
 */

import type { SocketAddress } from "../address.ts";
import { type ItemMessage, type PeerMessage, PeerMessageType } from "../codec/peer_messages.ts";
import {
  type CoreActions,
  type CoreConfig,
  type DialPurpose,
  NodeCore,
  type PersistentState,
} from "../core/node_core.ts";
import type { SecurityOptions } from "../core/peer_guard.ts";
import type { CoreTuning } from "../core/tuning.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { GossipItem } from "../protocol/item.ts";
import type { PeerKey } from "../protocol/item_store.ts";
import { type RandomSource, seededRandom } from "../protocol/random.ts";
import { type LinkModel } from "./links.ts";
import { VirtualClock } from "./virtual_clock.ts";
import { wireBytes } from "./wire_size.ts";

/** The API client ID of every simulated node's one module. */
const MODULE_CLIENT = 1;

/** Delay of one message from `from` to `to` of `bytes` bytes, in virtual ms. */
export type DelayModel = (from: SimNode, to: SimNode, bytes: number) => number;

/** Sees what the network carries, for metrics. */
export interface SimObserver {
  /** A copy of an item reached the core of `to` from `from` (before the core sees it). */
  itemArrived?(to: SimNode, from: SimNode, message: ItemMessage): void;
  /** The module of `node` got a NOTIFICATION of `item`. */
  notified?(node: SimNode, item: GossipItem): void;
}

/** How often every honest node's eclipse is looked at again ({@link SimNetwork.resetEclipseTime}). */
export const ECLIPSE_RECHECK_MS = 1_000;

/**
 * Whether `node` is eclipsed: it has member sessions (its core's
 * session kind `member`: feelers, feelers on trial and delivery
 * sessions end within seconds unless they prove themselves, so they do not
 * count) and every one is with an attacker. A session its core no longer
 * knows (closing) does not count either.
 */
export function memberEclipsed(
  node: SimNode,
  byIdentity: (peer: PeerKey) => SimNode | undefined,
): boolean {
  let members = 0;
  for (const peer of node.sessions.keys()) {
    if (node.core.sessionKind(peer) !== "member") continue;
    if (byIdentity(peer)?.honest ?? true) return false;
    members++;
  }
  return members > 0;
}

/**
 * The config keys of every simulated node unless overridden: the daemon's
 * defaults (README's config table), with a peers file (`persist`).
 */
export const SIM_NODE_CONFIG: Omit<CoreConfig, "bootstrappers"> = {
  degree: 5,
  cacheSize: 1000,
  validationTimeoutMs: 5000,
  maxPeerConnections: 64,
  passiveViewSize: 30,
  membershipIntervalMs: 1000,
  peerIdleTimeoutMs: 30_000,
  persist: true,
};

/** Settings of one simulated node. */
export interface SimNodeOptions {
  /** Overrides of the config keys (defaults: {@link SIM_NODE_CONFIG}). */
  readonly config?: Partial<CoreConfig>;
  /**
   * A datacentre host: placed where the link model's links are fastest
   * ({@link LinkModel.placeCentral}), nearer than other nodes to its region.
   */
  readonly wellConnected?: boolean;
  /** Limits against hostile peers. */
  readonly security?: Partial<SecurityOptions>;
  /** Internal limits and timings. */
  readonly tuning?: Partial<CoreTuning>;
  /** Nodes to bootstrap through. */
  readonly bootstrap?: readonly SimNode[];
  /** Data types the module subscribes to (default: [1]; empty: none). */
  readonly dataTypes?: readonly number[];
  /** The module's verdict on an item (default: valid). */
  readonly validate?: (item: { dataType: number; data: Uint8Array }) => boolean;
  /** Delay before the module answers VALIDATION (default 0.5 ms); Infinity: never. */
  readonly validationDelayMs?: number;
  /** IP address (default: 10.x.y.1, one /24 per node). */
  readonly ip?: string;
  /** Uplink bandwidth in bytes per second (default: the network's; 0: unlimited). */
  readonly uplinkBytesPerSecond?: number;
  /** A label for nodes that are not honest (attackers); undefined for honest nodes. */
  readonly role?: string;
  /**
   * Wraps the node's actions, for hostile variants: the wrapper may drop,
   * delay or alter what the honest core decides.
   */
  readonly wrapActions?: (actions: CoreActions, node: SimNode) => CoreActions;
  /**
   * Filters every message the node sends, referrals included (hostile
   * variants): returns what to send instead, or undefined to send nothing.
   */
  readonly outgoing?: (node: SimNode, to: SimNode, message: PeerMessage) => PeerMessage | undefined;
  /** Sees every message delivered to the node, before its core does (hostile variants). */
  readonly inspect?: (node: SimNode, from: SimNode, message: PeerMessage) => void;
  /** True while every dial of this node sets HELLO's `deliver` flag, whatever its core asked. */
  readonly claimsDelivery?: () => boolean;
  /** Logger (silent by default). */
  readonly log?: Logger;
}

/** Settings of a {@link SimNetwork}. */
export interface SimNetworkOptions {
  /** Seed of every random choice. */
  readonly seed: number;
  /** Delay of each message as a function (default: 1 ms); `links` takes precedence. */
  readonly delay?: DelayModel;
  /** The link model (default: {@link delay}). */
  readonly links?: LinkModel;
  /**
   * Uplink bandwidth of each node in bytes per second, or a function of the
   * node's index and the network's randomness (default 0: unlimited).
   */
  readonly uplinkBytesPerSecond?: number | ((index: number, random: RandomSource) => number);
  /** Sees item copies and notifications. */
  readonly observer?: SimObserver;
}

/** What one node's module received of one tagged item. */
export interface Reception {
  /** Virtual time of the first NOTIFICATION. */
  readonly first: number;
  /** NOTIFICATIONs received (more than 1 means a duplicate delivery). */
  count: number;
}

interface Session {
  readonly initiator: SimNode;
  readonly responder: SimNode;
  /** Arrival time of the last message scheduled in each direction (FIFO). */
  lastToResponder: number;
  lastToInitiator: number;
}

/** Message and byte counters of the whole network. */
export interface TrafficCounters {
  /** Messages carried, by peer message type. */
  readonly messages: Record<number, number>;
  /** Bytes carried on the wire (frame and tag included), by peer message type. */
  readonly bytes: Record<number, number>;
}

/** One simulated node: its core, address, module and what the module received. */
export class SimNode {
  /** The node's core. */
  core: NodeCore;
  /** Whether the node is running. */
  alive = true;
  /** Accepted sessions by peer identity. */
  readonly sessions = new Map<PeerKey, Session>();
  /** Receptions by tag (the first 4 bytes of an item's data, big-endian). */
  readonly received = new Map<number, Reception>();
  /** The state the core last saved. */
  saved: PersistentState | undefined;
  /** Virtual time the node (re)started. */
  startedAt = 0;
  /** Virtual time its last session with an honest peer ended (-Infinity: never). */
  honestPeerLostAt = -Infinity;
  /**
   * Virtual time its sessions last became all attackers' (at least one);
   * undefined while it has an honest peer or none ({@link SimNetwork.resetEclipseTime}).
   */
  eclipsedSince: number | undefined;
  /** Time eclipsed before `eclipsedSince`, ms, since the last reset. */
  eclipsedMs = 0;
  /** Longest single eclipse that ended since the last reset, ms. */
  longestEclipseMs = 0;
  /** Uplink bandwidth in bytes per virtual ms (0: unlimited). */
  uplinkBytesPerMs = 0;
  /** Virtual time the uplink finishes sending what is queued. */
  uplinkFreeAt = 0;

  /** Creates a node; {@link SimNetwork.addNode} is the way to add one. */
  constructor(
    /** Index in the network. */
    readonly index: number,
    /** Hex identity. */
    readonly identity: PeerKey,
    /** The address it listens at. */
    readonly address: SocketAddress,
    /** Its IP address. */
    readonly ip: string,
    /** Its settings. */
    readonly options: SimNodeOptions,
    core: NodeCore,
  ) {
    this.core = core;
  }

  /** `formatSocketAddress(address)`. */
  get addressKey(): string {
    return `${this.address.hostname}:${this.address.port}`;
  }

  /** The attacker label, undefined for an honest node. */
  get role(): string | undefined {
    return this.options.role;
  }

  /** True for a node without an attacker label. */
  get honest(): boolean {
    return this.options.role === undefined;
  }
}

/** A simulated network of node cores on one virtual clock. */
export class SimNetwork {
  /** The shared clock. */
  readonly clock = new VirtualClock();
  /** Every node ever added, by index. */
  readonly nodes: SimNode[] = [];
  /** Traffic counters. */
  readonly traffic: TrafficCounters = { messages: {}, bytes: {} };
  /** Honest nodes eclipsed when {@link resetEclipseTime} last ran. */
  eclipsedAtReset = 0;
  private recheckingEclipses = false;
  /** The link model. */
  readonly links: LinkModel;
  private readonly random: RandomSource;
  /** Randomness of jitter and loss (apart, so that it does not shift other choices). */
  private readonly noise: RandomSource;
  private readonly byAddress = new Map<string, SimNode>();
  private readonly byIdentity = new Map<PeerKey, SimNode>();
  private blocked: ((a: SimNode, b: SimNode) => boolean) | undefined;
  private nextConnection = 1;
  private readonly observer: SimObserver | undefined;

  /** Creates an empty network. */
  constructor(private readonly options: SimNetworkOptions) {
    this.random = seededRandom(options.seed);
    this.noise = seededRandom(options.seed ^ 0x5eed);
    this.observer = options.observer;
    if (options.links) {
      this.links = options.links;
    } else {
      const delay = options.delay ?? (() => 1);
      const nodes = this.nodes;
      this.links = {
        place: () => {},
        latency: (a, b) => delay(nodes[a], nodes[b], 64),
        transit: (a, b, bytes) => delay(nodes[a], nodes[b], bytes),
      };
    }
  }

  /** The node with hex identity `identity`. */
  byId(identity: PeerKey): SimNode | undefined {
    return this.byIdentity.get(identity);
  }

  /** The network's seeded randomness (for scenario choices). */
  get rng(): RandomSource {
    return this.random;
  }

  /** Adds and starts a node. */
  addNode(options: SimNodeOptions = {}): SimNode {
    const index = this.nodes.length;
    const ip = options.ip ?? `10.${(index >> 8) & 255}.${index & 255}.1`;
    const address = { hostname: ip, port: 6001 };
    const identity = this.randomIdentity();
    const node = new SimNode(
      index,
      identity,
      address,
      ip,
      options,
      undefined as unknown as NodeCore,
    );
    this.nodes.push(node);
    if (options.wellConnected && this.links.placeCentral) {
      this.links.placeCentral(index, this.random);
    } else this.links.place(index, this.random);
    const bandwidth = options.uplinkBytesPerSecond ?? this.options.uplinkBytesPerSecond ?? 0;
    node.uplinkBytesPerMs =
      (typeof bandwidth === "number" ? bandwidth : bandwidth(index, this.random)) / 1000;
    node.core = this.makeCore(node);
    this.byAddress.set(node.addressKey, node);
    this.byIdentity.set(identity, node);
    this.startCore(node, undefined);
    return node;
  }

  /** Runs the network for `ms` virtual milliseconds. */
  run(ms: number): void {
    this.clock.advance(ms);
  }

  /**
   * The local module of `node` announces an item whose data starts with the
   * 4-byte `tag`, padded to `size` bytes.
   */
  announce(
    node: SimNode,
    tag: number,
    options: { size?: number; ttl?: number; dataType?: number } = {},
  ): void {
    const data = new Uint8Array(Math.max(4, options.size ?? 16));
    new DataView(data.buffer).setUint32(0, tag);
    node.core.clientMessage(MODULE_CLIENT, {
      kind: "announce",
      ttl: options.ttl ?? 0,
      reserved: 0,
      dataType: options.dataType ?? 1,
      data,
    });
  }

  /**
   * Cuts the network: every session between nodes for which `cut(a, b)` holds
   * is closed, and dials and probes between them fail until {@link heal}.
   */
  partition(cut: (a: SimNode, b: SimNode) => boolean): void {
    this.blocked = cut;
    for (const node of this.nodes) {
      for (const [peer, session] of [...node.sessions]) {
        const other = session.initiator === node ? session.responder : session.initiator;
        if (!cut(node, other)) continue;
        // The link is cut: both ends notice (here at once, as on a reset).
        this.breakSession(node, peer, session);
        node.core.sessionClosed(peer);
      }
    }
  }

  /** Ends the partition. */
  heal(): void {
    this.blocked = undefined;
  }

  /** Stops `node` abruptly (as SIGKILL): its peers see its sessions end. */
  kill(node: SimNode): void {
    if (!node.alive) return;
    node.alive = false;
    for (const [peer, session] of [...node.sessions]) this.breakSession(node, peer, session);
    node.core.stop();
  }

  /**
   * Restarts a stopped `node` with the same identity, address and saved state
   * (`fresh`: without it, as after losing its peers file).
   */
  restart(node: SimNode, fresh = false): void {
    if (node.alive) return;
    node.alive = true;
    node.received.clear();
    node.uplinkFreeAt = this.clock.now();
    node.core = this.makeCore(node);
    this.startCore(node, fresh ? undefined : node.saved);
  }

  /**
   * Makes `from` dial `to` now, whatever its membership decided (hostile
   * nodes forcing their way in). The outcome reaches `from`'s core as for its
   * own dials.
   */
  connect(from: SimNode, to: SimNode): void {
    if (!from.alive || from === to) return;
    this.dial(from, to.address, to.addressKey);
  }

  /**
   * Sends `message` from `from` on its session with `peer`, as if its core had
   * decided it but past its `outgoing` filter (hostile nodes sending what no
   * honest core would). False when there is no such session.
   */
  inject(from: SimNode, peer: PeerKey, message: PeerMessage): boolean {
    const session = from.sessions.get(peer);
    if (!session || !from.alive) return false;
    const to = session.initiator === from ? session.responder : session.initiator;
    this.carry(from, to, session, message, true);
    return true;
  }

  /** `node` closes its session with `peer` (without GOODBYE), as its core would. */
  disconnect(node: SimNode, peer: PeerKey): void {
    const session = node.sessions.get(peer);
    if (!session) return;
    this.breakSession(node, peer, session);
    node.core.sessionClosed(peer);
  }

  // ---- internals ---------------------------------------------------------------

  private randomIdentity(): PeerKey {
    let hex = "";
    for (let i = 0; i < 8; i++) {
      hex += Math.floor(this.random() * 2 ** 32).toString(16).padStart(8, "0");
    }
    return hex;
  }

  private makeCore(node: SimNode): NodeCore {
    const { options } = node;
    const base = this.actionsOf(node);
    const actions = options.wrapActions ? options.wrapActions(base, node) : base;
    return new NodeCore({
      selfIdentity: node.identity,
      selfAddress: node.address,
      config: {
        ...SIM_NODE_CONFIG,
        ...options.config,
        bootstrappers: (options.bootstrap ?? []).map((b) => b.address),
      },
      security: options.security,
      tuning: options.tuning,
      scheduler: this.clock,
      random: seededRandom(Math.floor(this.random() * 2 ** 32)),
      wallClock: () => 1_700_000_000_000 + this.clock.now(),
      log: options.log ?? silentLogger,
    }, actions);
  }

  private startCore(node: SimNode, restored: PersistentState | undefined): void {
    node.startedAt = this.clock.now();
    node.core.clientOpened(MODULE_CLIENT);
    for (const dataType of node.options.dataTypes ?? [1]) {
      node.core.clientMessage(MODULE_CLIENT, { kind: "notify", reserved: 0, dataType });
    }
    node.core.start(restored);
  }

  private actionsOf(node: SimNode): CoreActions {
    return {
      sendToPeer: (peer, message) => this.send(node, peer, message),
      closePeer: (peer, _reason, goodbye) => {
        const session = node.sessions.get(peer);
        if (session) this.breakSession(node, peer, session, goodbye);
      },
      peerBacklog: () =>
        Math.max(0, (node.uplinkFreeAt - this.clock.now()) * node.uplinkBytesPerMs),
      dial: (address, key, purpose) => this.dial(node, address, key, purpose),
      probe: (_address, key) => this.probe(node, key),
      closeConnection: () => {},
      notifyClient: (_client, messageId, item) => this.notifyModule(node, messageId, item),
      closeClient: () => {},
      persist: (state) => node.saved = state,
    };
  }

  private reachable(from: SimNode, key: string): SimNode | undefined {
    const target = this.byAddress.get(key);
    if (!target || !target.alive || target === from) return undefined;
    if (this.blocked?.(from, target)) return undefined;
    return target;
  }

  private dial(
    from: SimNode,
    _address: SocketAddress,
    key: string,
    purpose: DialPurpose = "member",
  ): void {
    const core = from.core;
    const deliver = purpose === "deliver" || (from.options.claimsDelivery?.() ?? false);
    const feel = purpose === "feel";
    const target = this.reachable(from, key);
    if (!target) {
      const rtt = this.rttTo(from, this.byAddress.get(key));
      this.clock.setTimeout(() => from.core === core && core.dialFailed(key), rtt);
      return;
    }
    const there = this.links.transit(from.index, target.index, 300, this.noise);
    const back = this.links.transit(target.index, from.index, 300, this.noise);
    const conn = this.nextConnection++;
    const targetCore = target.core;
    // The connection reaches the responder, which admits it or not.
    this.clock.setTimeout(() => {
      if (!from.alive || from.core !== core) return;
      if (!target.alive || target.core !== targetCore || this.blocked?.(from, target)) {
        this.clock.setTimeout(() => from.core === core && core.dialFailed(key), back);
        return;
      }
      if (!targetCore.connectionOpened(conn, from.ip)) {
        this.clock.setTimeout(() => from.core === core && core.dialFailed(key), back);
        return;
      }
      // HELLOs cross, the initiator's AUTH arrives: the responder decides.
      this.clock.setTimeout(() => {
        targetCore.connectionEnded(conn);
        if (!from.alive || from.core !== core) return;
        // A responder that went away during the handshake: the dial fails (it
        // must end, or the initiator counts it as in flight for ever).
        if (!target.alive || target.core !== targetCore || this.blocked?.(from, target)) {
          this.clock.setTimeout(() => from.core === core && core.dialFailed(key), back);
          return;
        }
        const session: Session = {
          initiator: from,
          responder: target,
          lastToResponder: 0,
          lastToInitiator: 0,
        };
        const decision = targetCore.sessionOpened({
          peer: from.identity,
          direction: "inbound",
          address: from.address,
          ip: from.ip,
          deliver,
          feel,
        });
        if (decision.accept) {
          target.sessions.set(from.identity, session);
          this.noteEclipse(target);
        }
        // The responder's AUTH reaches the initiator.
        const opened = this.clock.now() + back;
        session.lastToInitiator = opened;
        this.clock.setTimeout(() => {
          if (!from.alive || from.core !== core) return;
          const dead = !target.alive || target.core !== targetCore;
          if (dead || this.blocked?.(from, target)) {
            // The responder went away while its AUTH was on the way.
            core.dialFailed(key);
            return;
          }
          // A responder that accepted and then closed at once (it evicted this
          // session for a newcomer) still sent its AUTH: like the real
          // transport, the session opens, the messages sent before the close
          // (a referral) are delivered, then the close.
          const mine = core.sessionOpened({
            peer: target.identity,
            direction: "outbound",
            address: target.address,
            ip: target.ip,
            dialed: key,
            deliver,
            feel,
          });
          if (mine.accept) {
            from.sessions.set(target.identity, session);
            this.noteEclipse(from);
          } else if (decision.accept) this.breakSession(from, target.identity, session);
        }, back);
        if (!decision.accept) {
          if (decision.referral) {
            this.carry(target, from, session, {
              type: PeerMessageType.Peers,
              peers: decision.referral,
              marked: true,
            });
          }
          this.scheduleClose(target, from, session, decision.goodbye);
        }
      }, there + back + there);
    }, there);
  }

  private probe(from: SimNode, key: string): void {
    const core = from.core;
    const target = this.reachable(from, key);
    const rtt = this.rttTo(from, this.byAddress.get(key));
    this.clock.setTimeout(
      () =>
        from.core === core && core.probeFinished(key, target?.alive ? target.identity : undefined),
      target ? 2 * rtt : rtt,
    );
  }

  private rttTo(from: SimNode, to: SimNode | undefined): number {
    // An address nobody listens at: the connect attempt fails after a round
    // trip to somewhere like the sender's own region.
    return to
      ? 2 * this.links.latency(from.index, to.index)
      : 2 * this.links.latency(from.index, from.index);
  }

  private send(from: SimNode, peer: PeerKey, message: PeerMessage): void {
    const session = from.sessions.get(peer);
    if (!session) return;
    const to = session.initiator === from ? session.responder : session.initiator;
    this.carry(from, to, session, message);
  }

  /** Schedules `message` from `from` to `to` on `session`, FIFO (`raw`: past the filter). */
  private carry(
    from: SimNode,
    to: SimNode,
    session: Session,
    original: PeerMessage,
    raw = false,
  ): void {
    const filter = raw ? undefined : from.options.outgoing;
    const message = filter ? filter(from, to, original) : original;
    if (message === undefined) return;
    const bytes = wireBytes(message);
    const { messages, bytes: byteCounts } = this.traffic;
    messages[message.type] = (messages[message.type] ?? 0) + 1;
    byteCounts[message.type] = (byteCounts[message.type] ?? 0) + bytes;
    const arrival = this.arrival(from, to, session, bytes);
    const core = to.core;
    this.clock.setTimeout(() => {
      if (to.core === core && to.sessions.get(from.identity) === session) {
        if (message.type === PeerMessageType.Item) this.observer?.itemArrived?.(to, from, message);
        to.options.inspect?.(to, from, message);
        core.peerMessage(from.identity, message);
      }
    }, arrival - this.clock.now());
  }

  /**
   * Arrival time of a message of `bytes` from `from` to `to` on `session`: it
   * waits for the sender's uplink, crosses the link, and never overtakes the
   * session's previous message in that direction.
   */
  private arrival(from: SimNode, to: SimNode, session: Session, bytes: number): number {
    const now = this.clock.now();
    let departure = now;
    if (from.uplinkBytesPerMs > 0) {
      departure = from.uplinkFreeAt = Math.max(now, from.uplinkFreeAt) +
        bytes / from.uplinkBytesPerMs;
    }
    const toResponder = session.initiator === from;
    const last = toResponder ? session.lastToResponder : session.lastToInitiator;
    const arrival = Math.max(
      departure + this.links.transit(from.index, to.index, bytes, this.noise),
      last,
    );
    if (toResponder) session.lastToResponder = arrival;
    else session.lastToInitiator = arrival;
    return arrival;
  }

  /**
   * `node` ends its session with `peer` (with GOODBYE `goodbye`, if given): the
   * other end learns it after the delay.
   */
  private breakSession(node: SimNode, peer: PeerKey, session: Session, goodbye?: number): void {
    const other = session.initiator === node ? session.responder : session.initiator;
    if (node.sessions.get(peer) === session) this.endSession(node, other);
    this.scheduleClose(node, other, session, goodbye);
  }

  /** Removes `node`'s session with `peer`, noting when it lost an honest one. */
  private endSession(node: SimNode, peer: SimNode): void {
    node.sessions.delete(peer.identity);
    if (peer.honest) node.honestPeerLostAt = this.clock.now();
    this.noteEclipse(node);
  }

  /**
   * Opens or closes `node`'s current eclipse after its sessions changed: an
   * honest node is eclipsed while it has member sessions and all are with
   * attackers ({@link memberEclipsed}). A session's kind can also change
   * without a session change (a feeler kept, a trial over): every honest
   * node is looked at again each {@link ECLIPSE_RECHECK_MS} from the first
   * {@link resetEclipseTime} on.
   */
  private noteEclipse(node: SimNode): void {
    if (!node.honest) return;
    const eclipsed = memberEclipsed(node, (peer) => this.byIdentity.get(peer));
    const now = this.clock.now();
    if (eclipsed && node.eclipsedSince === undefined) node.eclipsedSince = now;
    else if (!eclipsed && node.eclipsedSince !== undefined) {
      const lasted = now - node.eclipsedSince;
      node.eclipsedMs += lasted;
      node.longestEclipseMs = Math.max(node.longestEclipseMs, lasted);
      node.eclipsedSince = undefined;
    }
  }

  /**
   * Starts counting eclipsed time afresh now (at a scenario's T0, or when
   * the attackers turn): eclipses in progress count from now on
   * ({@link eclipseTime}); their number is kept in {@link eclipsedAtReset}.
   */
  resetEclipseTime(): void {
    if (!this.recheckingEclipses) {
      this.recheckingEclipses = true;
      const recheck = () => {
        for (const node of this.nodes) if (node.alive) this.noteEclipse(node);
        this.clock.setTimeout(recheck, ECLIPSE_RECHECK_MS);
      };
      this.clock.setTimeout(recheck, ECLIPSE_RECHECK_MS);
    }
    const now = this.clock.now();
    let inProgress = 0;
    for (const node of this.nodes) {
      node.eclipsedMs = 0;
      node.longestEclipseMs = 0;
      if (node.eclipsedSince !== undefined) {
        node.eclipsedSince = now;
        inProgress++;
      }
    }
    this.eclipsedAtReset = inProgress;
  }

  private scheduleClose(from: SimNode, to: SimNode, session: Session, goodbye?: number): void {
    const arrival = this.arrival(from, to, session, 16);
    const core = to.core;
    this.clock.setTimeout(() => {
      if (to.core !== core || to.sessions.get(from.identity) !== session) return;
      this.endSession(to, from);
      core.sessionClosed(from.identity, goodbye);
    }, arrival - this.clock.now());
  }

  private notifyModule(node: SimNode, messageId: number, item: GossipItem): boolean {
    this.observer?.notified?.(node, item);
    if (item.data.length >= 4) {
      const tag = new DataView(item.data.buffer, item.data.byteOffset, 4).getUint32(0);
      const reception = node.received.get(tag);
      if (reception) reception.count++;
      else node.received.set(tag, { first: this.clock.now(), count: 1 });
    }
    const delay = node.options.validationDelayMs ?? 0.5;
    if (Number.isFinite(delay)) {
      const valid = node.options.validate?.(item) ?? true;
      const core = node.core;
      this.clock.setTimeout(() => {
        if (node.core !== core) return;
        core.clientMessage(MODULE_CLIENT, { kind: "validation", messageId, reserved: 0, valid });
      }, delay);
    }
    return true;
  }
}
