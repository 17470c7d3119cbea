/**
 * Discrete-event simulation of the spreading engine on a random overlay.
 *
 * `N` in-memory nodes each run a real {@link Spreading} engine. Each node
 * connects outbound to `degree` random others; connections are symmetric, so a
 * node's peers are its outbound and inbound neighbours. Every message crosses a
 * simulated link with a random latency (per-link FIFO, like TCP), local
 * validation answers after a random delay, and one shared event queue drives
 * all timers, so a run is fully determined by its seed.
 *
 * Run it:
 *
 * ```sh
 * deno run scripts/simulate.ts --nodes 100 --degree 5 --items 200 --seed 1
 * ```
 *
 * It prints delivery ratio, duplicates per delivery, the slowest full
 * delivery and the pulls, once with pull repair and once with push alone.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { GossipItem } from "../lib/protocol/item.ts";
import { type RandomSource, sample, seededRandom } from "../lib/protocol/random.ts";
import type { Scheduler, TimerHandle } from "../lib/protocol/scheduler.ts";
import {
  DEFAULT_SPREADING_OPTIONS,
  type PeerKey,
  Spreading,
  type SpreadingOptions,
} from "../lib/protocol/spreading.ts";

/** Parameters of one simulation run. */
export interface SimulationOptions {
  /** Number of nodes (at least 2). */
  readonly nodes: number;
  /** Outbound connections per node, also the engines' push degree. */
  readonly degree: number;
  /** Items to originate, each at a random node. */
  readonly items: number;
  /** Seed of every random choice. */
  readonly seed: number;
  /**
   * With false, IHAVE messages are ignored on arrival: no pulls and no
   * duplicate suppression, only the one-shot eager push. Default true.
   */
  readonly repair?: boolean;
  /** TTL items are announced with (0 = unlimited). Default 0. */
  readonly ttl?: number;
  /** Time between two originations. Default 1 ms. */
  readonly itemIntervalMs?: number;
  /** Per-message latency range. Default 0.5–1.5 ms. */
  readonly latencyMs?: readonly [number, number];
  /** Local validation delay range. Default 0.2–1 ms. */
  readonly validationMs?: readonly [number, number];
  /** Local verdict of `node` for `item`. Default: always valid. */
  readonly isValid?: (node: number, item: GossipItem) => boolean;
  /** Engine tuning overrides (degree, random and scheduler are set by the simulator). */
  readonly spreading?: Partial<Omit<SpreadingOptions, "degree" | "random" | "scheduler">>;
  /** Most events processed before the run is abandoned. Default 20 million. */
  readonly maxEvents?: number;
}

/** Message counts by kind. */
export interface MessageCounts {
  /** Item messages (pushes and IWANT answers). */
  items: number;
  /** IHAVE messages (one id each). */
  haves: number;
  /** IWANT messages (one id each). */
  wants: number;
}

/** Measurements of one run. */
export interface SimulationResult {
  /** The options the run used, defaults filled in. */
  readonly nodes: number;
  /** Outbound connections per node and push degree. */
  readonly degree: number;
  /** Items originated. */
  readonly items: number;
  /** Whether pull repair was on. */
  readonly repair: boolean;
  /** Items handed to a local module at a node other than the origin. */
  readonly deliveries: number;
  /** deliveries / (items × (nodes − 1)). */
  readonly deliveryRatio: number;
  /** Item messages received by nodes that had already seen the item. */
  readonly duplicates: number;
  /** duplicates / deliveries. */
  readonly duplicatesPerDelivery: number;
  /** Items delivered at every node. */
  readonly fullyDelivered: number;
  /** Slowest time from origination to the last delivery, over fully delivered items. */
  readonly maxTimeToFullDeliveryMs: number;
  /** Mean of the same, over fully delivered items. */
  readonly meanTimeToFullDeliveryMs: number;
  /** IWANT requests sent. */
  readonly pulls: number;
  /** Items first obtained through IWANT. */
  readonly pulledItems: number;
  /** Messages sent, by kind. */
  readonly messages: MessageCounts;
  /** Events processed. */
  readonly events: number;
  /** Simulated time when the last event ran. */
  readonly endTimeMs: number;
  /** Whether the overlay is connected. */
  readonly overlayConnected: boolean;
  /** Neighbours of each node (symmetric). */
  readonly overlay: readonly (readonly number[])[];
  /** Origin node of each item. */
  readonly origins: readonly number[];
  /** Per item: nodes other than the origin that delivered it. */
  readonly deliveredTo: readonly ReadonlySet<number>[];
  /** Per item: nodes that sent an item message for it (pushed or answered IWANT). */
  readonly senders: readonly ReadonlySet<number>[];
  /** Per item: TTLs it arrived with (all copies, first receipts and duplicates). */
  readonly arrivalTtls: readonly ReadonlySet<number>[];
}

interface Event {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

/** A discrete-event queue (binary min-heap by time, then insertion order). */
class EventQueue implements Scheduler {
  private readonly heap: Event[] = [];
  private readonly cancelled = new Set<number>();
  private seq = 0;
  private time = 0;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    return this.at(this.time + Math.max(0, delayMs), callback);
  }

  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === "number") this.cancelled.add(handle);
  }

  /** Schedules `run` at absolute time `at` (not before now). */
  at(at: number, run: () => void): number {
    const event = { at: Math.max(at, this.time), seq: this.seq++, run };
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
    return event.seq;
  }

  /** Runs events in order until none is left; returns how many ran. */
  runAll(maxEvents: number): number {
    let ran = 0;
    while (this.heap.length > 0) {
      const event = this.pop();
      if (this.cancelled.delete(event.seq)) continue;
      if (ran >= maxEvents) throw new Error(`simulation exceeded ${maxEvents} events`);
      ran++;
      this.time = event.at;
      event.run();
    }
    return ran;
  }

  private pop(): Event {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let least = i;
        if (left < heap.length && before(heap[left], heap[least])) least = left;
        if (right < heap.length && before(heap[right], heap[least])) least = right;
        if (least === i) break;
        [heap[i], heap[least]] = [heap[least], heap[i]];
        i = least;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

type Message =
  | { readonly kind: "item"; readonly item: GossipItem }
  | { readonly kind: "have"; readonly id: bigint }
  | { readonly kind: "want"; readonly id: bigint };

function uniform(random: RandomSource, [low, high]: readonly [number, number]): number {
  return low + random() * (high - low);
}

/** Random overlay: each node dials `degree` random others; links are symmetric. */
function buildOverlay(nodes: number, degree: number, random: RandomSource): number[][] {
  const links = Array.from({ length: nodes }, () => new Set<number>());
  for (let node = 0; node < nodes; node++) {
    const others: number[] = [];
    for (let other = 0; other < nodes; other++) if (other !== node) others.push(other);
    for (const other of sample(others, degree, random)) {
      links[node].add(other);
      links[other].add(node);
    }
  }
  return links.map((set) => [...set].sort((a, b) => a - b));
}

function isConnected(overlay: readonly (readonly number[])[]): boolean {
  const seen = new Set<number>([0]);
  const queue = [0];
  for (let head = 0; head < queue.length; head++) {
    for (const next of overlay[queue[head]]) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen.size === overlay.length;
}

/** Runs one simulation. */
export function simulate(options: SimulationOptions): SimulationResult {
  const {
    nodes,
    degree,
    items,
    seed,
    repair = true,
    ttl = 0,
    itemIntervalMs = 1,
    latencyMs = [0.5, 1.5],
    validationMs = [0.2, 1],
    isValid = () => true,
    maxEvents = 20_000_000,
  } = options;
  if (!Number.isInteger(nodes) || nodes < 2) throw new RangeError("nodes must be an integer >= 2");
  if (!Number.isInteger(degree) || degree < 1) throw new RangeError("degree must be >= 1");
  if (!Number.isInteger(items) || items < 0) throw new RangeError("items must be >= 0");

  const random = seededRandom(seed);
  const queue = new EventQueue();
  const overlay = buildOverlay(nodes, degree, random);
  const peerKeys: PeerKey[][] = overlay.map((peers) => peers.map(String));
  const messages: MessageCounts = { items: 0, haves: 0, wants: 0 };
  /** Arrival time of the last message on each directed link (FIFO links). */
  const linkClock = new Map<number, number>();

  const itemIndex = new Map<bigint, number>();
  const origins: number[] = [];
  const originatedAt: number[] = [];
  const deliveredTo = Array.from({ length: items }, () => new Set<number>());
  const lastDeliveryAt: number[] = new Array(items).fill(0);
  const senders = Array.from({ length: items }, () => new Set<number>());
  const arrivalTtls = Array.from({ length: items }, () => new Set<number>());

  const engines: Spreading[] = [];

  const send = (from: number, to: number, message: Message): void => {
    const link = from * nodes + to;
    const arrival = Math.max(
      queue.now() + uniform(random, latencyMs),
      linkClock.get(link) ?? 0,
    );
    linkClock.set(link, arrival);
    queue.at(arrival, () => receive(to, from, message));
  };

  const receive = (node: number, from: number, message: Message): void => {
    const engine = engines[node];
    const peer = String(from);
    switch (message.kind) {
      case "item": {
        const index = itemIndex.get(message.item.id);
        if (index !== undefined) arrivalTtls[index].add(message.item.ttl);
        engine.receiveItem(peer, message.item);
        break;
      }
      case "have":
        if (repair) engine.receiveHave(peer, [message.id]);
        break;
      case "want":
        engine.receiveWant(peer, [message.id]);
        break;
    }
  };

  for (let node = 0; node < nodes; node++) {
    engines.push(
      new Spreading(
        {
          ...DEFAULT_SPREADING_OPTIONS,
          ...options.spreading,
          degree,
          random,
          scheduler: queue,
        },
        {
          peers: () => peerKeys[node],
          sendItem: (peer, item) => {
            messages.items++;
            const index = itemIndex.get(item.id);
            if (index !== undefined) senders[index].add(node);
            send(node, Number(peer), { kind: "item", item });
          },
          sendHave: (peer, id) => {
            messages.haves++;
            send(node, Number(peer), { kind: "have", id });
          },
          sendWant: (peer, id) => {
            messages.wants++;
            send(node, Number(peer), { kind: "want", id });
          },
          deliver: (item) => {
            const index = itemIndex.get(item.id);
            if (index !== undefined) {
              deliveredTo[index].add(node);
              lastDeliveryAt[index] = queue.now();
            }
            const verdict = isValid(node, item) ? "valid" : "invalid";
            queue.setTimeout(
              () => engines[node].validated(item.id, verdict),
              uniform(random, validationMs),
            );
            return true;
          },
        },
      ),
    );
  }

  for (let index = 0; index < items; index++) {
    const origin = Math.floor(random() * nodes);
    const id = BigInt(index + 1);
    const item: GossipItem = {
      id,
      ttl,
      dataType: 1,
      data: new Uint8Array([index & 0xff]),
    };
    itemIndex.set(id, index);
    origins.push(origin);
    originatedAt.push(index * itemIntervalMs);
    queue.at(index * itemIntervalMs, () => engines[origin].originate(item));
  }

  const events = queue.runAll(maxEvents);
  const endTimeMs = queue.now();

  let deliveries = 0;
  let duplicates = 0;
  let pulls = 0;
  let pulledItems = 0;
  for (const engine of engines) {
    duplicates += engine.stats.duplicates;
    pulls += engine.stats.wantsSent;
    pulledItems += engine.stats.pulled;
    engine.close();
  }
  let fullyDelivered = 0;
  let maxTime = 0;
  let sumTime = 0;
  for (let index = 0; index < items; index++) {
    deliveries += deliveredTo[index].size;
    if (deliveredTo[index].size === nodes - 1) {
      fullyDelivered++;
      const time = lastDeliveryAt[index] - originatedAt[index];
      maxTime = Math.max(maxTime, time);
      sumTime += time;
    }
  }
  return {
    nodes,
    degree,
    items,
    repair,
    deliveries,
    deliveryRatio: items === 0 ? 1 : deliveries / (items * (nodes - 1)),
    duplicates,
    duplicatesPerDelivery: deliveries === 0 ? 0 : duplicates / deliveries,
    fullyDelivered,
    maxTimeToFullDeliveryMs: fullyDelivered === 0 ? NaN : maxTime,
    meanTimeToFullDeliveryMs: fullyDelivered === 0 ? NaN : sumTime / fullyDelivered,
    pulls,
    pulledItems,
    messages,
    events,
    endTimeMs,
    overlayConnected: isConnected(overlay),
    overlay,
    origins,
    deliveredTo,
    senders,
    arrivalTtls,
  };
}

function summary(result: SimulationResult): Record<string, string | number | boolean> {
  return {
    repair: result.repair,
    deliveryRatio: result.deliveryRatio.toFixed(4),
    fullyDelivered: `${result.fullyDelivered}/${result.items}`,
    duplicatesPerDelivery: result.duplicatesPerDelivery.toFixed(3),
    maxTimeToFullDeliveryMs: result.maxTimeToFullDeliveryMs.toFixed(2),
    meanTimeToFullDeliveryMs: result.meanTimeToFullDeliveryMs.toFixed(2),
    pulls: result.pulls,
    pulledItems: result.pulledItems,
    itemMessages: result.messages.items,
    haveMessages: result.messages.haves,
    wantMessages: result.messages.wants,
    events: result.events,
  };
}

function parseCount(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new RangeError(`--${name} must be a number, got "${text}"`);
  return value;
}

function main(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      nodes: { type: "string" },
      degree: { type: "string" },
      items: { type: "string" },
      seed: { type: "string" },
      ttl: { type: "string" },
      interval: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run scripts/simulate.ts [--nodes 100] [--degree 5] [--items 200] " +
        "[--seed 1] [--ttl 0] [--interval 1] [--json]",
    );
    return;
  }
  const base = {
    nodes: parseCount(values.nodes, "nodes", 100),
    degree: parseCount(values.degree, "degree", 5),
    items: parseCount(values.items, "items", 200),
    seed: parseCount(values.seed, "seed", 1),
    ttl: parseCount(values.ttl, "ttl", 0),
    itemIntervalMs: parseCount(values.interval, "interval", 1),
  };
  const results = [simulate({ ...base, repair: true }), simulate({ ...base, repair: false })];
  if (values.json) {
    console.log(JSON.stringify({ options: base, results: results.map(summary) }, null, 2));
    return;
  }
  console.log(
    `nodes=${base.nodes} degree=${base.degree} items=${base.items} seed=${base.seed} ` +
      `ttl=${base.ttl} overlay connected=${results[0].overlayConnected}`,
  );
  console.table(results.map(summary));
}

if (import.meta.main) main(Deno.args);
