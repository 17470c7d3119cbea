/**
 * Attackers: hostile variants of the node core.
 *
 * An attacker runs the daemon's own {@link NodeCore} (so it joins, keeps
 * sessions, answers probes and pings like any node) with a hostile layer
 * between the core and the network:
 * - an **outgoing filter** drops or delays the ITEMs the core sends (pushes
 *   and IWANT answers alike), may hold back its IHAVEs (a silent black hole),
 *   and rewrites every PEERS, PUSH and referral so that it names attackers
 *   only;
 * - a **driver**, run every round, sends what no honest core sends: IHAVEs of
 *   items that do not exist, unsolicited PUSH floods, and dials forced at
 *   target nodes to hold their inbound slots, rotating so that each attacker
 *   gets its address verified by the target and then frees the slot for the
 *   next one;
 * - an **inspector** of incoming messages for ID squatting: each item ID the
 *   attacker hears of is pushed at once to its other peers with other content;
 * - every dial may claim a delivery session (HELLO flag `deliver`), to hold
 *   the sessions beyond their slots that full nodes keep for origins.
 *
 * Each behaviour is a flag of {@link HostileBehaviour}; scenarios combine
 * them (censorship, degradation, eclipse, covert flash, cold boot, offer
 * flooding, ID squatting). A behaviour is in force from `activeFrom`
 * (covert flash: the attackers behave well until then).
 *
 * @module
 */

import { type PeerDescriptor, type PeerMessage, PeerMessageType } from "../codec/peer_messages.ts";
import { hexToBytes } from "../hex.ts";
import { type RandomSource, sample, seededRandom } from "../protocol/random.ts";
import { DEFAULT_SPREADING_OPTIONS } from "../protocol/spreading.ts";
import type { SimNetwork, SimNode, SimNodeOptions } from "./network.ts";

/** What attackers do; every field is off by default. */
export interface HostileBehaviour {
  /** Drop every ITEM the core sends (pushes and IWANT answers): censorship. */
  readonly dropItems?: boolean;
  /** Send every ITEM this much later than the core decides (ms): degradation. */
  readonly lateItemsMs?: number;
  /**
   * Send no IHAVE at all: a black hole that never advertises what it drops
   * breaks no promise, so no unanswered IWANT marks it.
   */
  readonly silent?: boolean;
  /** IHAVEs of random, nonexistent item IDs per peer and round. */
  readonly bogusHaves?: number;
  /** PEERS, PUSH and referrals name attackers only. */
  readonly poisonDescriptors?: boolean;
  /** Unsolicited PUSH messages (64 descriptors each) per peer and round. */
  readonly offerFlood?: number;
  /** Whom flood descriptors name: attackers, or addresses where nobody listens. */
  readonly floodWith?: "attackers" | "nowhere";
  /** Nodes whose inbound slots the attackers try to hold (eclipse). */
  readonly targets?: readonly SimNode[];
  /** Forced dials per target and round (spread over the attackers). */
  readonly dialsPerTargetPerRound?: number;
  /**
   * An attacker with a session to a target for this long closes it (ms), so
   * that it rests verified in the target's passive view and another attacker
   * takes the slot. 0: never.
   */
  readonly rotateAfterMs?: number;
  /** Push an ITEM with every item ID heard of, with other content. */
  readonly squat?: boolean;
  /**
   * Set HELLO's `deliver` flag on every dial (it costs nothing), so that full
   * nodes hear attackers out in the delivery sessions meant for origins.
   */
  readonly claimDelivery?: boolean;
}

/** Settings of an {@link Adversary}. */
export interface AdversaryOptions {
  /** The behaviour. */
  readonly behaviour: HostileBehaviour;
  /** Virtual time from which the behaviour is in force (default 0). */
  readonly activeFrom?: number;
  /** Interval of the driver (default 1000 ms). */
  readonly roundMs?: number;
  /** Seed of the attackers' own choices. */
  readonly seed: number;
}

/** Counters of what the attackers did. */
export interface AdversaryStats {
  /** ITEMs dropped. */
  itemsDropped: number;
  /** ITEMs sent late. */
  itemsDelayed: number;
  /** Descriptor messages rewritten to name attackers only. */
  descriptorsPoisoned: number;
  /** IHAVEs the core sent that a silent attacker held back. */
  haveSuppressed: number;
  /** Bogus item IDs advertised. */
  bogusIds: number;
  /** Unsolicited PUSH messages sent. */
  floodPushes: number;
  /** Forced dials at targets. */
  forcedDials: number;
  /** Sessions with targets closed to rotate. */
  rotations: number;
  /** Squatting ITEMs sent. */
  squatItems: number;
}

/** A group of colluding attackers. */
export class Adversary {
  /** The attacker nodes, in the order they were added. */
  readonly nodes: SimNode[] = [];
  /** Counters. */
  readonly stats: AdversaryStats = {
    itemsDropped: 0,
    itemsDelayed: 0,
    descriptorsPoisoned: 0,
    haveSuppressed: 0,
    bogusIds: 0,
    floodPushes: 0,
    forcedDials: 0,
    rotations: 0,
    squatItems: 0,
  };
  private behaviour: HostileBehaviour;
  private readonly random: RandomSource;
  private readonly descriptors: PeerDescriptor[] = [];
  private readonly squatted = new Set<bigint>();
  private readonly nowhere: PeerDescriptor[] = [];
  private timer: number | undefined;

  /** Creates an empty group on `net`. */
  constructor(private readonly net: SimNetwork, private readonly options: AdversaryOptions) {
    this.behaviour = options.behaviour;
    this.random = seededRandom(options.seed);
  }

  /** Replaces the behaviour (for example once the targets are chosen). */
  configure(behaviour: HostileBehaviour): void {
    this.behaviour = behaviour;
  }

  /** True once the behaviour is in force. */
  get active(): boolean {
    return this.net.clock.now() >= (this.options.activeFrom ?? 0);
  }

  /**
   * Adds one attacker node (role "attacker") with `options` on top of the
   * hostile layer. Its core advertises every item at once on receipt
   * (`haveDelayMs` 0), which is the attacker's best play: honest peers then
   * count it as a holder and wait for it instead of for an honest push.
   */
  add(options: SimNodeOptions = {}): SimNode {
    const tuning = options.tuning ?? {};
    const node = this.net.addNode({
      ...options,
      tuning: {
        ...tuning,
        spreading: { ...(tuning.spreading ?? DEFAULT_SPREADING_OPTIONS), haveDelayMs: 0 },
      },
      role: "attacker",
      outgoing: (from, to, message) => this.outgoing(from, to, message),
      inspect: this.behaviour.squat
        ? (at, from, message) => this.inspect(at, from, message)
        : undefined,
      claimsDelivery: () => this.active && this.behaviour.claimDelivery === true,
    });
    this.nodes.push(node);
    // Marked proven: the worst case (a proven attacker's marks are heard).
    this.descriptors.push({
      identity: hexToBytes(node.identity),
      address: node.address,
      proven: true,
    });
    return node;
  }

  /** Starts the driver (every `roundMs`). */
  start(): void {
    const round = this.options.roundMs ?? 1000;
    const tick = () => {
      this.round();
      this.timer = this.net.clock.setTimeout(tick, round) as number;
    };
    this.timer = this.net.clock.setTimeout(tick, round * this.random()) as number;
  }

  /** Stops the driver. */
  stop(): void {
    if (this.timer !== undefined) this.net.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  // ---- the hostile layer -----------------------------------------------------------

  private outgoing(from: SimNode, to: SimNode, message: PeerMessage): PeerMessage | undefined {
    if (!this.active) return message;
    const b = this.behaviour;
    if (message.type === PeerMessageType.Item) {
      if (b.dropItems) {
        this.stats.itemsDropped++;
        return undefined;
      }
      if (b.lateItemsMs) {
        this.stats.itemsDelayed++;
        this.net.clock.setTimeout(() => this.net.inject(from, to.identity, message), b.lateItemsMs);
        return undefined;
      }
      return message;
    }
    if (b.silent && message.type === PeerMessageType.IHave) {
      this.stats.haveSuppressed++;
      return undefined;
    }
    if (
      b.poisonDescriptors &&
      (message.type === PeerMessageType.Peers || message.type === PeerMessageType.Push)
    ) {
      this.stats.descriptorsPoisoned++;
      const count = Math.max(message.peers.length, 8);
      return { type: message.type, peers: this.attackerDescriptors(count, to), marked: true };
    }
    return message;
  }

  private inspect(at: SimNode, from: SimNode, message: PeerMessage): void {
    if (!this.behaviour.squat || !this.active || !at.alive) return;
    let ids: readonly bigint[];
    if (message.type === PeerMessageType.IHave) ids = message.ids;
    else if (message.type === PeerMessageType.Item) ids = [message.id];
    else return;
    for (const id of ids) {
      if (this.squatted.has(id)) continue;
      this.squatted.add(id);
      // Every attacker that has a session pushes its forgery to all its peers.
      for (const attacker of this.nodes) {
        if (!attacker.alive) continue;
        for (const peer of attacker.sessions.keys()) {
          if (peer === from.identity || this.isAttacker(peer)) continue;
          this.stats.squatItems++;
          this.net.inject(attacker, peer, this.forgery(id));
        }
      }
    }
  }

  /** One round of the driver: bogus IHAVEs, offer floods, forced dials and rotation. */
  private round(): void {
    if (!this.active) return;
    const b = this.behaviour;
    for (const attacker of this.nodes) {
      if (!attacker.alive) continue;
      for (const peer of attacker.sessions.keys()) {
        if (this.isAttacker(peer)) continue;
        if (b.bogusHaves) {
          const ids: bigint[] = [];
          for (let i = 0; i < b.bogusHaves; i++) ids.push(this.randomId());
          this.stats.bogusIds += ids.length;
          this.net.inject(attacker, peer, { type: PeerMessageType.IHave, ids });
        }
        for (let i = 0; i < (b.offerFlood ?? 0); i++) {
          this.stats.floodPushes++;
          const to = this.net.byId(peer);
          const peers = b.floodWith === "attackers" && to
            ? this.attackerDescriptors(64, to)
            : this.nowhereDescriptors(64);
          this.net.inject(attacker, peer, { type: PeerMessageType.Push, peers });
        }
      }
    }
    if (b.targets && b.targets.length > 0) this.besiege(b.targets);
  }

  /** Forced dials at the targets and rotation of the attackers holding their slots. */
  private besiege(targets: readonly SimNode[]): void {
    const b = this.behaviour;
    const live = this.nodes.filter((n) => n.alive);
    if (live.length === 0) return;
    for (const target of targets) {
      if (!target.alive) continue;
      const holding = live.filter((a) => a.sessions.has(target.identity));
      if (b.rotateAfterMs) {
        for (const attacker of holding) {
          const since = attacker.core.peers().find((p) => p.identity === target.identity)?.ageMs;
          if (since !== undefined && since >= b.rotateAfterMs) {
            this.stats.rotations++;
            this.net.disconnect(attacker, target.identity);
          }
        }
      }
      const idle = live.filter((a) => !a.sessions.has(target.identity));
      for (const attacker of sample(idle, b.dialsPerTargetPerRound ?? 2, this.random)) {
        this.stats.forcedDials++;
        this.net.connect(attacker, target);
      }
    }
  }

  private isAttacker(identity: string): boolean {
    return this.net.byId(identity)?.role === "attacker";
  }

  private attackerDescriptors(count: number, exclude: SimNode): PeerDescriptor[] {
    const pool = this.descriptors.length <= 4 * count ? this.descriptors : Array.from(
      { length: 4 * count },
      () => this.descriptors[Math.floor(this.random() * this.descriptors.length)],
    );
    return sample(pool, count, this.random).filter((d) =>
      d.address.hostname !== exclude.address.hostname
    );
  }

  /** `count` descriptors of addresses where nobody listens (from a pool made once). */
  private nowhereDescriptors(count: number): PeerDescriptor[] {
    if (this.nowhere.length === 0) {
      for (let i = 0; i < 8192; i++) {
        const identity = new Uint8Array(32);
        const view = new DataView(identity.buffer);
        for (let j = 0; j < 32; j += 4) view.setUint32(j, Math.floor(this.random() * 2 ** 32));
        const hostname = `172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
        this.nowhere.push({ identity, address: { hostname, port: 6001 } });
      }
    }
    const out: PeerDescriptor[] = [];
    for (let i = 0; i < count; i++) {
      out.push(this.nowhere[Math.floor(this.random() * this.nowhere.length)]);
    }
    return out;
  }

  private randomId(): bigint {
    return (BigInt(Math.floor(this.random() * 2 ** 32)) << 32n) |
      BigInt(Math.floor(this.random() * 2 ** 32));
  }

  private forgery(id: bigint): PeerMessage {
    const data = new Uint8Array(1024);
    // A tag no scenario tracks (0xffffffff), then noise.
    data.fill(0xff, 0, 4);
    for (let i = 4; i < 64; i++) data[i] = Math.floor(this.random() * 256);
    return {
      type: PeerMessageType.Item,
      id,
      nonce: this.randomId(),
      ttl: 0,
      hops: 1,
      dataType: 1,
      data,
    };
  }
}
