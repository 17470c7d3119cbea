/**
 * Named simulation scenarios: each builds a WAN of real node cores, applies
 * failures, churn or attackers, publishes tracked items and measures them.
 *
 * Every scenario follows one timeline (virtual time):
 * 1. **build**: honest nodes (and attackers, in attack scenarios) join in
 *    random order, about 200 per second, each through one random node that
 *    joined before (`joinMs`);
 * 2. **settle** for 30 s: membership rounds, address probes;
 * 3. the scenario's event at `T0` (failure, partition, churn, attack);
 * 4. **items**: tracked 1 KiB items from random honest origins, each
 *    measured for `windowMs` (see lib/sim/metrics.ts for the definitions).
 *
 * Nodes run the daemon's defaults (degree 5, passive view 30, membership
 * round 1 s, cache 1000); each node's module answers VALIDATION after 1 ms.
 * Links come from {@link GlobeLinks} (round trips 10-300 ms, 10% jitter, 1%
 * loss per segment); uplinks are 10 Mbit/s for a quarter of the nodes,
 * 100 Mbit/s for half and 1 Gbit/s for the rest.
 *
 * @module
 */

import { PeerMessageType } from "../codec/peer_messages.ts";
import { solveProofOfWork } from "../protocol/proof_of_work.ts";
import type { TimerHandle } from "../protocol/scheduler.ts";
import { type RandomSource, sample, seededRandom } from "../protocol/random.ts";
import { Adversary, type AdversaryStats, type HostileBehaviour } from "./hostile.ts";
import { GlobeLinks } from "./links.ts";
import {
  aggregate,
  type DeliverySummary,
  type EclipseCensus,
  eclipseCensus,
  type EclipseTime,
  eclipseTime,
  gossipTraffic,
  type ItemSummary,
  type ItemTrace,
  Metrics,
  snapshotTraffic,
  type TrackedItem,
} from "./metrics.ts";
import { SIM_NODE_CONFIG, SimNetwork, type SimNode, type SimNodeOptions } from "./network.ts";
import type { ChartSpec } from "./plot.ts";

/** Settings of a scenario run. */
export interface ScenarioOptions {
  /** Honest nodes. */
  readonly nodes: number;
  /** Seed of every random choice. */
  readonly seed: number;
  /** Attackers per honest node (attack scenarios; default 1). */
  readonly ratio?: number;
  /** Tracked items (default per scenario). */
  readonly items?: number;
  /** Loss probability per segment (default 0.01). */
  readonly lossRate?: number;
  /** Measure the identity proof-of-work cost (default true for attack scenarios). */
  readonly measurePow?: boolean;
  /** Progress lines (stderr in the CLI). */
  readonly progress?: (line: string) => void;
  /** Overrides of every node's settings (experiments with the protocol's tunables). */
  readonly node?: Pick<SimNodeOptions, "config" | "security" | "tuning">;
  /** Tags of items whose origin to trace (see {@link Metrics.traceTags}). */
  readonly traceItems?: readonly number[];
  /**
   * Bootstrappers each honest node configures while the network is built,
   * each a distinct random node that joined before it (default
   * {@link DEFAULT_BOOTSTRAPS_PER_NODE}; attackers always take 1; scenarios
   * with dedicated bootstrap nodes ignore it).
   */
  readonly bootstrapsPerNode?: number;
  /**
   * Honest nodes (those of the build and churn's fresh nodes) draw their
   * bootstrappers among honest nodes only, as when operators list nodes they
   * run or trust (docs/DEPLOY.md); attackers still join through any node.
   * Default false: any random node, attackers included, so that at 1:1 a
   * quarter of the honest nodes draw two attackers.
   */
  readonly trustedBootstrappers?: boolean;
  /**
   * Sieges: one item every this many ms from a random publisher, from the end
   * of the build until the measured items, as a running network carries
   * (default {@link DEFAULT_STEADY_ITEMS_MS}; 0: none, the quiet siege of the
   * rounds before 2026-12-04). Not tracked as a phase; their delivery (mean
   * and worst item) is in the result's parameters.
   */
  readonly steadyItemsMs?: number;
}

/**
 * Sieges' steady stream by default: an item every 5 s from the end of the
 * build. Without it no item flows before T0+92 s, so no peer can prove
 * itself by relaying before the attack, unlike in a network in service (and
 * in the GossipSub v1.1 evaluation, whose publishers publish throughout).
 */
export const DEFAULT_STEADY_ITEMS_MS = 5_000;

/** Traffic figures. */
export interface TrafficSummary {
  /** Gossip messages (ITEM, IHAVE, IWANT) per honest node per item, sent by anyone. */
  readonly gossipMessagesPerNodePerItem: number;
  /** Gossip bytes per honest node per item (wire bytes, frames and tags included). */
  readonly gossipBytesPerNodePerItem: number;
  /** Gossip messages by type over the item phase. */
  readonly gossipMessages: Record<string, number>;
  /** Other messages (membership, keepalive) per node per second over the item phase. */
  readonly backgroundMessagesPerNodePerSecond: number;
  /** Their bytes per node per second. */
  readonly backgroundBytesPerNodePerSecond: number;
}

/** The outcome of one scenario run (the JSON the CLI writes). */
export interface ScenarioResult {
  /** Scenario name. */
  readonly scenario: string;
  /** What it does. */
  readonly description: string;
  /** Honest nodes at the start. */
  readonly nodes: number;
  /** Attackers. */
  readonly attackers: number;
  /** Attackers per honest node. */
  readonly ratio: number;
  /** Seed. */
  readonly seed: number;
  /** Every node's `degree` (attackers' too). */
  readonly degree: number;
  /** Scenario parameters. */
  readonly parameters: Record<string, unknown>;
  /** Delivery over every measured item. */
  readonly delivery: DeliverySummary;
  /** Delivery per phase, where the scenario has phases. */
  readonly phases: Record<string, DeliverySummary>;
  /** Per-item summaries. */
  readonly items: ItemSummary[];
  /** Traffic. */
  readonly traffic: TrafficSummary;
  /** Joining cost: dials and referrals per honest node during the build. */
  readonly joining: { dialsPerNode: number; referralsPerNode: number };
  /** Eclipse census at the end (targets: of the attacked nodes only). */
  readonly eclipse: EclipseCensus & { targets?: EclipseCensus };
  /** Census over time. */
  readonly timeline: CensusPoint[];
  /** Time honest nodes spent eclipsed from T0 to the end (attack scenarios). */
  readonly eclipseTime?: EclipseTime;
  /** What honest nodes' guards did. */
  readonly guard: GuardSummary;
  /** What the attackers did. */
  readonly adversary?: AdversaryStats;
  /** Proof-of-work cost of the attackers' identities. */
  readonly powCost?: PowCost;
  /** Cost of the run. */
  readonly run: RunCost;
  /** Charts for the SVG (not part of the figures). */
  readonly charts: ChartSpec[];
  /** Traces of the items named by {@link ScenarioOptions.traceItems} (absent without). */
  readonly itemTraces?: ItemTrace[];
}

/** The census at one time. */
export interface CensusPoint {
  /** Seconds since T0. */
  readonly t: number;
  /** Honest live nodes. */
  readonly honest: number;
  /** Share of them with only attackers as peers. */
  readonly eclipsedShare: number;
  /** Share of them with no peer. */
  readonly isolatedShare: number;
  /** Mean share of attackers among their peers. */
  readonly attackerPeerShare: number;
  /** Of the targets (eclipse scenarios): share eclipsed. */
  readonly targetsEclipsedShare?: number;
}

/** Honest nodes' guard figures at the end. */
export interface GuardSummary {
  /** Bans in force on honest nodes naming an attacker identity. */
  readonly attackersBanned: number;
  /** Distinct attackers banned by at least one honest node. */
  readonly distinctAttackersBanned: number;
  /** Bans in force on honest nodes naming an honest identity (false positives). */
  readonly honestBanned: number;
  /** Offences recorded by honest nodes, by kind. */
  readonly offences: Record<string, number>;
  /** Dial failures per honest node over the run. */
  readonly dialFailuresPerNode: number;
  /** Sessions honest nodes closed because the peer became distrusted. */
  readonly distrustedDropped: number;
  /** Outbound peers honest nodes replaced by rotation. */
  readonly rotated: number;
  /** Connection counters of the live honest nodes, summed (dials, evictions, referrals...). */
  readonly connections: Record<string, number>;
}

/** Identity cost of the attackers at `pow_difficulty`. */
export interface PowCost {
  /** Leading zero bits. */
  readonly difficulty: number;
  /** Expected SHA-256 computations per identity per day (2^difficulty). */
  readonly hashesPerIdentityPerDay: number;
  /** Measured mean solving time per identity on this machine, ms. */
  readonly measuredMsPerIdentity: number;
  /** Identities measured. */
  readonly samples: number;
  /** CPU seconds per day to keep all attackers' identities. */
  readonly attackersCpuSecondsPerDay: number;
}

/** Wall-clock and memory cost of a run. */
export interface RunCost {
  /** Wall-clock seconds. */
  readonly wallSeconds: number;
  /** Virtual seconds simulated. */
  readonly virtualSeconds: number;
  /** Events run by the virtual clock. */
  readonly events: number;
  /** Nodes ever created (honest, attackers, churn replacements). */
  readonly nodesCreated: number;
  /** Largest resident set size seen, MiB. */
  readonly peakRssMiB: number;
  /** V8 heap used at the end, MiB. */
  readonly heapUsedMiB: number;
}

/** Runs the scenario `name` (see {@link SCENARIOS}). */
export function runScenario(name: string, options: ScenarioOptions): ScenarioResult {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new RangeError(`unknown scenario "${name}"`);
  return { ...scenario.run(options), scenario: name };
}

/** A named scenario. */
export interface Scenario {
  /** One line. */
  readonly description: string;
  /** Whether it has attackers (takes `ratio`). */
  readonly attack: boolean;
  /** Runs it. */
  run(options: ScenarioOptions): ScenarioResult;
}

/**
 * Bootstrappers per honest node by default: two, as docs/DEPLOY.md advises
 * and as churn's fresh nodes take. With one, a node whose only bootstrapper
 * is an attacker hears of attackers only, and no rule of the protocol can
 * lead it out (docs/SIMULATION.md, "Round of whose word counts").
 */
export const DEFAULT_BOOTSTRAPS_PER_NODE = 2;

const SETTLE_MS = 30_000;
const ITEM_BYTES = 1024;
const VALIDATION_DELAY_MS = 1;

/** A network under construction and measurement. */
export class World {
  /** The network. */
  readonly net: SimNetwork;
  /** The metrics observer. */
  readonly metrics = new Metrics();
  /** The link model. */
  readonly globe: GlobeLinks;
  /** Honest nodes ever created. */
  readonly honest: SimNode[] = [];
  /** The attackers, if any. */
  adversary: Adversary | undefined;
  /** Scenario randomness. */
  readonly random: RandomSource;
  /** Census over time. */
  readonly timeline: CensusPoint[] = [];
  /** Scenario event time (set by the scenario). */
  t0 = 0;
  /** When eclipsed time started to count ({@link countEclipsesFromNow}). */
  eclipsesCountedFrom = 0;
  /**
   * Bootstrappers per honest node of the last {@link build} that drew them
   * from earlier nodes; undefined when every node joined through dedicated
   * bootstrap nodes.
   */
  bootstrapsUsed: number | undefined;
  private nextTag = 1;
  private readonly started = performance.now();
  private lastProgress = performance.now();
  private peakRss = 0;

  /** Creates an empty WAN. */
  constructor(readonly options: ScenarioOptions) {
    this.random = seededRandom(options.seed * 7919 + 17);
    this.globe = new GlobeLinks({ lossRate: options.lossRate ?? 0.01 });
    this.net = new SimNetwork({
      seed: options.seed,
      links: this.globe,
      uplinkBytesPerSecond: (_index, random) => {
        const tier = random();
        return tier < 0.25 ? 1.25e6 : tier < 0.75 ? 12.5e6 : 125e6;
      },
      observer: this.metrics,
    });
    this.metrics.attach(this.net);
    this.metrics.validationDelayMs = VALIDATION_DELAY_MS;
    this.metrics.traceTags = new Set(options.traceItems ?? []);
  }

  /** Bootstrappers per honest node asked for (see {@link ScenarioOptions.bootstrapsPerNode}). */
  get bootstrapsPerNode(): number {
    return this.options.bootstrapsPerNode ?? DEFAULT_BOOTSTRAPS_PER_NODE;
  }

  /** Options of an honest node joining through `bootstrap`. */
  honestOptions(bootstrap: readonly SimNode[]): SimNodeOptions {
    return { ...this.options.node, bootstrap, validationDelayMs: VALIDATION_DELAY_MS };
  }

  /** Adds an honest node bootstrapping through `bootstrap`. */
  addHonest(bootstrap: readonly SimNode[]): SimNode {
    const node = this.net.addNode(this.honestOptions(bootstrap));
    this.honest.push(node);
    return node;
  }

  /** Live nodes (any role). */
  liveNodes(): SimNode[] {
    return this.net.nodes.filter((n) => n.alive);
  }

  /** Honest live nodes. */
  liveHonest(): SimNode[] {
    return this.honest.filter((n) => n.alive);
  }

  /**
   * Joins `honest` honest nodes and `attackers` attackers (through
   * `adversary`) in random order over `joinMs`, each through one random node
   * that joined before (any role; honest nodes through
   * {@link ScenarioOptions.bootstrapsPerNode} distinct ones, honest ones with
   * {@link ScenarioOptions.trustedBootstrappers}), or with
   * `bootstrappers`, through one of the first `bootstrappers` honest nodes (a
   * deployment's configured bootstrap nodes).
   */
  build(honest: number, attackers: number, options: BuildOptions = {}): void {
    const total = honest + attackers;
    const joinMs = joinDuration(total);
    const seeds = Math.min(options.bootstrappers ?? 0, honest);
    if (seeds === 0) this.bootstrapsUsed = this.bootstrapsPerNode;
    const roles: boolean[] = [];
    for (let i = seeds; i < honest; i++) roles.push(true);
    for (let i = 0; i < attackers; i++) roles.push(false);
    // The first node (and the bootstrap nodes) are honest; the rest in random order.
    const order = [
      ...new Array(Math.max(1, seeds)).fill(true),
      ...sample(
        roles.slice(seeds === 0 ? 1 : 0),
        roles.length - (seeds === 0 ? 1 : 0),
        this.random,
      ),
    ];
    const joined: SimNode[] = [];
    const step = joinMs / total;
    const joinedHonest: SimNode[] = [];
    const trusted = this.options.trustedBootstrappers === true;
    for (let i = 0; i < order.length; i++) {
      const pool = seeds > 0 ? joined.slice(0, seeds) : trusted && order[i] ? joinedHonest : joined;
      const bootstrap = pool.length === 0 ? [] : [pool[Math.floor(this.random() * pool.length)]];
      // Extra bootstrappers are drawn after the first, so that one per node
      // draws the very same random numbers as before they existed.
      const wanted = seeds > 0 || !order[i] ? 1 : this.bootstrapsPerNode;
      if (wanted > 1) {
        const others = pool.filter((node) => node !== bootstrap[0]);
        bootstrap.push(...sample(others, Math.min(wanted - 1, others.length), this.random));
      }
      const node = order[i] || !this.adversary ? this.addHonest(bootstrap) : this.adversary.add({
        ...this.options.node,
        bootstrap,
        validationDelayMs: VALIDATION_DELAY_MS,
        wellConnected: options.attackersWellConnected,
      });
      joined.push(node);
      if (order[i]) joinedHonest.push(node);
      this.runFor(step, "build");
    }
  }

  /**
   * Counts eclipsed time from now on ({@link SimNetwork.resetEclipseTime}):
   * at T0, or in the covert flash when the attackers turn.
   */
  countEclipsesFromNow(): void {
    this.eclipsesCountedFrom = this.net.clock.now();
    this.net.resetEclipseTime();
  }

  /** Runs the clock for `ms`, reporting progress about every 5 s of wall time. */
  runFor(ms: number, phase: string): void {
    const end = this.net.clock.now() + ms;
    while (this.net.clock.now() < end) {
      this.net.clock.runUntil(Math.min(end, this.net.clock.now() + 1000));
      const wall = performance.now();
      if (wall - this.lastProgress > 5000) {
        this.lastProgress = wall;
        const rss = Deno.memoryUsage().rss / 2 ** 20;
        this.peakRss = Math.max(this.peakRss, rss);
        this.options.progress?.(
          `[${((wall - this.started) / 1000).toFixed(0)} s] ${phase}: t=${
            (this.net.clock.now() / 1000).toFixed(1)
          } s, ${this.liveNodes().length} nodes, ${this.net.clock.eventsRun} events, ${
            rss.toFixed(0)
          } MiB`,
        );
      }
    }
  }

  /** Records the census now (seconds since T0). */
  census(targets?: readonly SimNode[]): EclipseCensus {
    const all = eclipseCensus(this.net);
    const of = targets ? eclipseCensus(this.net, targets) : undefined;
    this.timeline.push({
      t: round((this.net.clock.now() - this.t0) / 1000),
      honest: all.honest,
      eclipsedShare: all.eclipsedShare,
      isolatedShare: all.honest === 0 ? 0 : all.isolated / all.honest,
      attackerPeerShare: round(all.attackerPeerShare, 4),
      ...(of ? { targetsEclipsedShare: of.eclipsedShare } : {}),
    });
    return all;
  }

  /** Takes a census every `everyMs` until `untilMs` (absolute virtual time). */
  censusEvery(everyMs: number, untilMs: number, targets?: readonly SimNode[]): void {
    const tick = () => {
      this.census(targets);
      if (this.net.clock.now() + everyMs <= untilMs) this.net.clock.setTimeout(tick, everyMs);
    };
    this.net.clock.setTimeout(tick, 0);
  }

  /**
   * Publishes `count` items `spacingMs` apart from origins chosen by `pick`
   * (default: a random live honest node up for at least 5 s with a peer);
   * runs the clock meanwhile. Returns them.
   */
  publish(
    count: number,
    spacingMs: number,
    pick: () => SimNode | undefined = () => this.randomOrigin(),
  ): TrackedItem[] {
    const items: TrackedItem[] = [];
    for (let i = 0; i < count; i++) {
      const origin = pick();
      if (origin) items.push(this.metrics.announce(origin, this.nextTag++, ITEM_BYTES));
      this.runFor(spacingMs, "items");
    }
    return items;
  }

  /**
   * Announces an item every `everyMs` from `pick`'s origin, by timers beside
   * whatever phase runs, until {@link SteadyStream.stop}. Its own random
   * source leaves every other draw of the run as without it.
   */
  stream(everyMs: number, pick: (random: RandomSource) => SimNode | undefined): SteadyStream {
    const random = seededRandom(this.options.seed * 6151 + 29);
    const items: TrackedItem[] = [];
    let timer: TimerHandle | undefined;
    const next = () => {
      timer = this.net.clock.setTimeout(() => {
        const origin = pick(random);
        if (origin) items.push(this.metrics.announce(origin, this.nextTag++, ITEM_BYTES));
        next();
      }, everyMs);
    };
    next();
    return {
      items,
      stop: () => {
        if (timer !== undefined) this.net.clock.clearTimeout(timer);
        timer = undefined;
      },
    };
  }

  /** A random live honest node up for 5 s or more with at least one peer. */
  randomOrigin(
    pool: readonly SimNode[] = this.honest,
    random: RandomSource = this.random,
  ): SimNode | undefined {
    const now = this.net.clock.now();
    const candidates = pool.filter((n) =>
      n.alive && now - n.startedAt >= 5_000 && n.sessions.size > 0
    );
    return candidates.length === 0
      ? undefined
      : candidates[Math.floor(random() * candidates.length)];
  }

  /** Peak RSS seen so far (MiB), sampling now. */
  sampleRss(): number {
    this.peakRss = Math.max(this.peakRss, Deno.memoryUsage().rss / 2 ** 20);
    return this.peakRss;
  }

  /** Wall seconds since the world was created. */
  get wallSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }
}

/** Build duration: about 200 joins per second, at least 10 s. */
export function joinDuration(nodes: number): number {
  return Math.max(10_000, nodes * 5);
}

/** Items announced by {@link World.stream}. */
export interface SteadyStream {
  /** The items announced so far. */
  readonly items: TrackedItem[];
  /** Announces no more. */
  stop(): void;
}

/** How {@link World.build} joins the network. */
export interface BuildOptions {
  /** Every node joins through one of the first this many honest nodes (the bootstrappers). */
  readonly bootstrappers?: number;
  /** Attackers are datacentre hosts ({@link SimNodeOptions.wellConnected}). */
  readonly attackersWellConnected?: boolean;
}

/** Settings of {@link startChurn}. */
export interface ChurnOptions {
  /** Scale (minimum) of the Pareto session length, ms. */
  readonly sessionScaleMs: number;
  /** Pareto shape (heavier tail when smaller; > 1). */
  readonly sessionShape: number;
  /** Mean offline time (exponential), ms. */
  readonly offlineMeanMs: number;
  /** Share of departures replaced by a fresh node instead of coming back. */
  readonly freshShare: number;
  /** No departures after this virtual time. */
  readonly untilMs: number;
  /** Nodes never taken down. */
  readonly spare?: ReadonlySet<SimNode>;
}

/** Counters of churn. */
export interface ChurnStats {
  /** Departures. */
  departures: number;
  /** Restarts with saved state. */
  restarts: number;
  /** Fresh nodes joined. */
  fresh: number;
}

/**
 * Heavy-tailed churn of the honest nodes: each node stays up for a Pareto
 * session length, goes down abruptly, and after an exponential offline time
 * either comes back with its saved state or is replaced by a fresh node that
 * joins through two random live nodes (honest ones with
 * {@link ScenarioOptions.trustedBootstrappers}).
 */
export function startChurn(world: World, options: ChurnOptions): ChurnStats {
  const stats: ChurnStats = { departures: 0, restarts: 0, fresh: 0 };
  const { net, random } = world;
  const session = () => options.sessionScaleMs / Math.pow(1 - random(), 1 / options.sessionShape);
  const offline = () => -Math.log(1 - random()) * options.offlineMeanMs;
  const live = (node: SimNode) => {
    const at = session();
    if (net.clock.now() + at > options.untilMs) return;
    net.clock.setTimeout(() => {
      if (!node.alive) return;
      stats.departures++;
      net.kill(node);
      net.clock.setTimeout(() => {
        if (random() < options.freshShare) {
          const others = world.options.trustedBootstrappers
            ? world.liveHonest()
            : world.liveNodes();
          const fresh = world.addHonest(sample(others, 2, random));
          stats.fresh++;
          live(fresh);
        } else {
          net.restart(node);
          stats.restarts++;
          live(node);
        }
      }, offline());
    }, at);
  };
  for (const node of world.liveHonest()) if (!options.spare?.has(node)) live(node);
  return stats;
}

/** Measures the identity proof-of-work at `difficulty` over `samples` identities. */
export function measurePow(difficulty: number, samples: number, attackers: number): PowCost {
  const started = performance.now();
  for (let i = 0; i < samples; i++) {
    const identity = new Uint8Array(32);
    crypto.getRandomValues(identity);
    solveProofOfWork(identity, 20_000, difficulty);
  }
  const ms = (performance.now() - started) / samples;
  return {
    difficulty,
    hashesPerIdentityPerDay: 2 ** difficulty,
    measuredMsPerIdentity: round(ms),
    samples,
    attackersCpuSecondsPerDay: round((ms * attackers) / 1000),
  };
}

// ---- the scenarios ---------------------------------------------------------------------

interface Plan {
  /** Items per phase: name -> items, and the window they are measured over. */
  readonly phases: { name: string; items: TrackedItem[]; windowMs: number }[];
  /** Parameters to report. */
  readonly parameters: Record<string, unknown>;
  /** Nodes the attack targets. */
  readonly targets?: readonly SimNode[];
  /** Extra figures. */
  readonly extra?: Record<string, unknown>;
  /** Traffic snapshot window (item phase). */
  readonly trafficFrom: ReturnType<typeof snapshotTraffic>;
  /** Virtual time of the traffic window's start. */
  readonly trafficFromMs: number;
}

type Body = (world: World, options: ScenarioOptions) => Plan;

function scenario(description: string, attack: boolean, body: Body): Scenario {
  return {
    description,
    attack,
    run(options: ScenarioOptions): ScenarioResult {
      const world = new World(options);
      const plan = body(world, options);
      return finish(world, options, plan, description);
    },
  };
}

/** Builds honest nodes only, settles, and sets T0. */
function buildHonest(world: World, nodes: number): void {
  world.build(nodes, 0);
  world.runFor(SETTLE_MS, "settle");
  world.t0 = world.net.clock.now();
  world.countEclipsesFromNow();
}

/**
 * Builds honest nodes and `ratio × nodes` attackers with `behaviour` from
 * `activeFrom`; every attacker also claims delivery sessions on its dials
 * (`claimDelivery`: it costs nothing, and an attacker who read the docs would).
 */
function buildWithAttackers(
  world: World,
  options: ScenarioOptions,
  behaviour: HostileBehaviour | ((world: World) => HostileBehaviour),
  activeFrom: "t0" | "start" | number,
  buildOptions: BuildOptions = {},
  onBuilt?: () => void,
): Adversary {
  const attackers = Math.round((options.ratio ?? 1) * options.nodes);
  const joinMs = joinDuration(options.nodes + attackers);
  const from = activeFrom === "start"
    ? 0
    : activeFrom === "t0"
    ? joinMs + SETTLE_MS
    : joinMs + SETTLE_MS + activeFrom;
  const claiming = (b: HostileBehaviour): HostileBehaviour => ({ claimDelivery: true, ...b });
  const adversary = new Adversary(world.net, {
    behaviour: claiming(typeof behaviour === "function" ? {} : behaviour),
    activeFrom: from,
    seed: options.seed + 101,
  });
  world.adversary = adversary;
  world.build(options.nodes, attackers, buildOptions);
  if (typeof behaviour === "function") adversary.configure(claiming(behaviour(world)));
  adversary.start();
  onBuilt?.();
  world.runFor(SETTLE_MS, "settle");
  world.t0 = world.net.clock.now();
  world.countEclipsesFromNow();
  return adversary;
}

const BASE_WINDOW_MS = 20_000;
/** Items of the cold boot's first minute (one per second), reported apart. */
const COLD_BOOT_WARMUP_MS = 60_000;

/** Every scenario by name. */
export const SCENARIOS: Record<string, Scenario> = {
  baseline: scenario(
    "Honest nodes only: a WAN overlay, then items from random origins.",
    false,
    (world, options) => {
      buildHonest(world, options.nodes);
      const from = snapshotTraffic(world.net.traffic);
      const fromMs = world.net.clock.now();
      const items = world.publish(options.items ?? 20, 500);
      world.runFor(BASE_WINDOW_MS, "window");
      world.census();
      return {
        phases: [{ name: "all", items, windowMs: BASE_WINDOW_MS }],
        parameters: { itemSpacingMs: 500 },
        trafficFrom: from,
        trafficFromMs: fromMs,
      };
    },
  ),

  churn: scenario(
    "Heavy-tailed churn: Pareto sessions (scale 60 s, shape 1.5), offline ~30 s, half come back, " +
      "half replaced by fresh nodes joining through two random live nodes; items throughout.",
    false,
    (world, options) => {
      buildHonest(world, options.nodes);
      const durationMs = 120_000;
      const churn = startChurn(world, {
        sessionScaleMs: 60_000,
        sessionShape: 1.5,
        offlineMeanMs: 30_000,
        freshShare: 0.5,
        untilMs: world.t0 + durationMs,
      });
      world.censusEvery(5_000, world.t0 + durationMs + BASE_WINDOW_MS);
      world.runFor(10_000, "churn");
      const from = snapshotTraffic(world.net.traffic);
      const fromMs = world.net.clock.now();
      const count = options.items ?? 50;
      const items = world.publish(count, (durationMs - 10_000) / count);
      world.runFor(BASE_WINDOW_MS, "window");
      return {
        phases: [{ name: "during churn", items, windowMs: BASE_WINDOW_MS }],
        parameters: {
          durationMs,
          sessionScaleMs: 60_000,
          sessionShape: 1.5,
          offlineMeanMs: 30_000,
          freshShare: 0.5,
        },
        extra: { churn },
        trafficFrom: from,
        trafficFromMs: fromMs,
      };
    },
  ),

  lull: scenario(
    "Honest nodes only: items, then five minutes without any, then items again: what a quiet " +
      "network costs (dials, peers replaced, background messages) and whether it still delivers.",
    false,
    (world, options) => {
      buildHonest(world, options.nodes);
      const count = options.items ?? 20;
      const before = world.publish(count, 500);
      world.runFor(BASE_WINDOW_MS, "window");
      const lullConnections = connectionCounts(world);
      const lullTraffic = snapshotTraffic(world.net.traffic);
      world.runFor(LULL_MS, "lull");
      const lull = lullCost(world, lullConnections, lullTraffic);
      const from = snapshotTraffic(world.net.traffic);
      const fromMs = world.net.clock.now();
      const after = world.publish(count, 500);
      world.runFor(BASE_WINDOW_MS, "window");
      world.census();
      return {
        phases: [
          { name: "before the lull", items: before, windowMs: BASE_WINDOW_MS },
          { name: "after the lull", items: after, windowMs: BASE_WINDOW_MS },
        ],
        parameters: { itemSpacingMs: 500, lullMs: LULL_MS },
        extra: { lull },
        trafficFrom: from,
        trafficFromMs: fromMs,
      };
    },
  ),

  "mass-failure": scenario(
    "30% of the honest nodes fail at once (T0); items from T0 on, while the overlay repairs.",
    false,
    (world, options) => {
      buildHonest(world, options.nodes);
      const victims = sample(world.liveHonest(), Math.round(0.3 * options.nodes), world.random);
      for (const node of victims) world.net.kill(node);
      world.censusEvery(2_000, world.t0 + 60_000);
      const from = snapshotTraffic(world.net.traffic);
      const fromMs = world.net.clock.now();
      world.runFor(100, "failure");
      const count = options.items ?? 30;
      const first = world.publish(10, 500);
      const later = world.publish(Math.max(0, count - 10), 2_000);
      world.runFor(BASE_WINDOW_MS, "window");
      return {
        phases: [
          { name: "first 5 s after the failure", items: first, windowMs: BASE_WINDOW_MS },
          { name: "later", items: later, windowMs: BASE_WINDOW_MS },
        ],
        parameters: { failed: victims.length },
        trafficFrom: from,
        trafficFromMs: fromMs,
      };
    },
  ),

  partition: scenario(
    "The Americas are cut from the rest of the world for 30 s (T0 to T0+30 s); items on both " +
      "sides while cut, then after the heal.",
    false,
    (world, options) => {
      buildHonest(world, options.nodes);
      const americas = (n: SimNode) => world.globe.position(n.index).lon < -30;
      world.net.partition((a, b) => americas(a) !== americas(b));
      world.censusEvery(2_000, world.t0 + 90_000);
      const from = snapshotTraffic(world.net.traffic);
      const fromMs = world.net.clock.now();
      world.runFor(2_000, "partition");
      const count = options.items ?? 20;
      const cut = world.publish(Math.ceil(count / 2), 2_000);
      world.runFor(Math.max(0, world.t0 + 30_000 - world.net.clock.now()), "partition");
      world.net.heal();
      const healed = world.publish(Math.floor(count / 2), 500);
      world.runFor(60_000, "window");
      const side = world.honest.filter(americas).length;
      return {
        phases: [
          {
            name: "announced while cut (measured until 60 s after the heal)",
            items: cut,
            windowMs: 120_000,
          },
          { name: "announced after the heal", items: healed, windowMs: BASE_WINDOW_MS },
        ],
        parameters: { americas: side, rest: world.honest.length - side, cutMs: 30_000 },
        trafficFrom: from,
        trafficFromMs: fromMs,
      };
    },
  ),

  "eclipse-one": scenario(
    "Attackers besiege one target: they hold its inbound slots (rotating so that each gets " +
      "verified), name only attackers in every PEERS, PUSH and referral, and drop items; honest " +
      "nodes churn mildly and the target restarts at T0+60 s. An item every 5 s from the end of " +
      "the build (the steady stream), then the measured ones.",
    true,
    (world, options) => eclipse(world, options, 1),
  ),

  "eclipse-publishers": scenario(
    "As eclipse-one against 10 publishers at once (all items come from them); the publishers " +
      "restart one by one from T0+60 s.",
    true,
    (world, options) => eclipse(world, options, 10),
  ),

  censor: scenario(
    "Attackers take part in membership like honest nodes but drop every ITEM (pushes and IWANT " +
      "answers) while still advertising IHAVE.",
    true,
    (world, options) => attackItems(world, options, { dropItems: true }),
  ),

  "censor-near": scenario(
    "As censor, but every attacker is a datacentre host at its region's centre with no access " +
      "delay, nearer to the honest nodes around it than they are to each other: once an honest " +
      "node has a proven peer, the attackers near it take most of its pushes to the nearest.",
    true,
    (world, options) =>
      attackItems(world, options, { dropItems: true }, { attackersWellConnected: true }),
  ),

  degrade: scenario(
    "Attackers forward every ITEM and IWANT answer 2 s late and send 16 IHAVEs of nonexistent " +
      "items per peer per second.",
    true,
    (world, options) => attackItems(world, options, { lateItemsMs: 2_000, bogusHaves: 16 }),
  ),

  "cold-boot": scenario(
    "Attackers are present from the first second: honest nodes and attackers join in random " +
      "order through 5 honest bootstrap nodes; attackers name only attackers and drop items " +
      "from the start. Items 1 s apart: the first minute (while scores build up), then the " +
      "measured ones.",
    true,
    (world, options) => {
      buildWithAttackers(
        world,
        options,
        { dropItems: true, poisonDescriptors: true },
        "start",
        { bootstrappers: 5 },
      );
      const from = snapshotTraffic(world.net.traffic);
      const fromMs = world.net.clock.now();
      world.censusEvery(10_000, world.t0 + COLD_BOOT_WARMUP_MS + 60_000);
      // Until items flow nothing tells an attacker from an honest node; the
      // first minute of items is when scores (and the overlay) sort them out.
      const warmup = world.publish(COLD_BOOT_WARMUP_MS / 1000, 1_000);
      const items = world.publish(options.items ?? 20, 1_000);
      world.runFor(BASE_WINDOW_MS, "window");
      return {
        phases: [
          { name: "first minute of items", items: warmup, windowMs: BASE_WINDOW_MS },
          { name: "after the first minute", items, windowMs: BASE_WINDOW_MS },
        ],
        parameters: { warmupItems: warmup.length },
        trafficFrom: from,
        trafficFromMs: fromMs,
      };
    },
  ),

  "covert-flash": scenario(
    "Attackers behave well (relay, answer, build scores) until T0+60 s, then all at once drop " +
      "every ITEM, name only attackers and send bogus IHAVEs.",
    true,
    (world, options) =>
      covertFlash(world, options, { dropItems: true, poisonDescriptors: true, bogusHaves: 16 }),
  ),

  "covert-flash-silent": scenario(
    "As covert-flash, but the attackers turn into silent black holes: they drop every ITEM, " +
      "name only attackers and advertise nothing (no IHAVE, bogus or real), so that no " +
      "unanswered IWANT gives them away; only the relays they stop making do.",
    true,
    (world, options) =>
      covertFlash(world, options, { dropItems: true, poisonDescriptors: true, silent: true }),
  ),

  "offer-flood": scenario(
    "Attackers send 10 unsolicited PUSH messages of 64 descriptors of addresses where nobody " +
      "listens, per peer per second; honest nodes churn mildly so that they redial.",
    true,
    (world, options) => {
      buildWithAttackers(world, options, { offerFlood: 10, floodWith: "nowhere" }, "t0");
      startChurn(world, {
        sessionScaleMs: 120_000,
        sessionShape: 1.5,
        offlineMeanMs: 20_000,
        freshShare: 0,
        untilMs: world.t0 + 100_000,
      });
      world.runFor(60_000, "flood");
      const plan = itemPhase(world, options, { churn: "mild" });
      return plan;
    },
  ),

  "id-squat": scenario(
    "Attackers push, for every item ID they hear of, an ITEM with that ID and other content to " +
      "all their peers (content-bound IDs reject it).",
    true,
    (world, options) => attackItems(world, options, { squat: true }),
  ),
};

/** Attackers from T0 with `behaviour`; items after 10 s. */
function attackItems(
  world: World,
  options: ScenarioOptions,
  behaviour: HostileBehaviour,
  buildOptions: BuildOptions = {},
): Plan {
  buildWithAttackers(world, options, behaviour, "t0", buildOptions);
  world.runFor(10_000, "attack");
  return itemPhase(world, options, {});
}

/** Items from random honest origins, 1 s apart, then the window. */
function itemPhase(
  world: World,
  options: ScenarioOptions,
  parameters: Record<string, unknown>,
  pick?: () => SimNode | undefined,
): Plan {
  const from = snapshotTraffic(world.net.traffic);
  const fromMs = world.net.clock.now();
  world.census();
  const items = world.publish(options.items ?? 20, 1_000, pick);
  world.runFor(BASE_WINDOW_MS, "window");
  world.census();
  return {
    phases: [{ name: "under attack", items, windowMs: BASE_WINDOW_MS }],
    parameters,
    trafficFrom: from,
    trafficFromMs: fromMs,
  };
}

/**
 * The covert flash: attackers behave well until T0+60 s (10 items, one
 * every 5 s), then all turn to `behaviour` at once; 20 more items, one every
 * 2 s. Eclipsed time counts from the flash.
 */
function covertFlash(world: World, options: ScenarioOptions, behaviour: HostileBehaviour): Plan {
  buildWithAttackers(world, options, behaviour, 60_000);
  const from = snapshotTraffic(world.net.traffic);
  const fromMs = world.net.clock.now();
  world.censusEvery(5_000, world.t0 + 60_000 + 90_000);
  const before = world.publish(10, 5_000); // T0 .. T0+50 s
  world.runFor(Math.max(0, world.t0 + 60_000 - world.net.clock.now()), "covert");
  // Until now the attackers relayed like honest nodes: a node with only
  // attackers as peers was served. Eclipsed time counts from the flash.
  world.countEclipsesFromNow();
  const count = options.items ?? 30;
  const after = world.publish(count - 10, 2_000);
  world.runFor(BASE_WINDOW_MS, "window");
  return {
    phases: [
      { name: "before the flash", items: before, windowMs: BASE_WINDOW_MS },
      { name: "after the flash", items: after, windowMs: BASE_WINDOW_MS },
    ],
    parameters: { flashAtMs: 60_000 },
    trafficFrom: from,
    trafficFromMs: fromMs,
  };
}

/** Count, delivery and worst item's delivery of a siege's steady stream (nothing without one). */
function steadyDelivery(world: World, steady: SteadyStream | undefined): Record<string, number> {
  if (!steady) return {};
  const summary = aggregate(
    steady.items.map((item) => world.metrics.summarizeItem(item, { windowMs: BASE_WINDOW_MS })),
  );
  return {
    steadyItems: steady.items.length,
    steadyDelivery: summary.deliveryRatio,
    steadyWorstItemDelivery: summary.worstItemDeliveryRatio,
  };
}

/** Eclipse of `count` targets (see the scenarios' descriptions). */
function eclipse(world: World, options: ScenarioOptions, count: number): Plan {
  let targets: SimNode[] = [];
  let steady: SteadyStream | undefined;
  buildWithAttackers(
    world,
    options,
    (w) => {
      targets = sample(w.honest, count, w.random);
      return {
        dropItems: true,
        poisonDescriptors: true,
        targets,
        dialsPerTargetPerRound: 3,
        rotateAfterMs: 20_000,
      };
    },
    "t0",
    {},
    () => {
      const everyMs = options.steadyItemsMs ?? DEFAULT_STEADY_ITEMS_MS;
      const pool = count > 1 ? targets : world.honest;
      if (everyMs > 0) steady = world.stream(everyMs, (random) => world.randomOrigin(pool, random));
    },
  );
  const spare = new Set(targets);
  startChurn(world, {
    sessionScaleMs: 120_000,
    sessionShape: 1.5,
    offlineMeanMs: 20_000,
    freshShare: 0,
    untilMs: world.t0 + 150_000,
    spare,
  });
  world.censusEvery(5_000, world.t0 + 150_000, targets);
  world.runFor(60_000, "siege");
  // The targets restart, 2 s apart, each down for 5 s (their vulnerable moment).
  const outboundAttackers = (t: SimNode) =>
    t.core.peers().filter((p) => p.direction === "outbound" && !world.net.byId(p.identity)?.honest)
      .length;
  const atRestart: number[] = [];
  targets.forEach((target, i) => {
    world.net.clock.setTimeout(() => {
      atRestart[i] = outboundAttackers(target);
      world.net.kill(target);
      world.net.clock.setTimeout(() => world.net.restart(target), 5_000);
    }, 2_000 * i);
  });
  // The stream stops one window before the measured items, whose traffic it
  // would otherwise swell.
  world.runFor(30_000 + 2_000 * count - BASE_WINDOW_MS, "siege");
  steady?.stop();
  world.runFor(BASE_WINDOW_MS, "siege");
  const from = snapshotTraffic(world.net.traffic);
  const fromMs = world.net.clock.now();
  const pick = count > 1 ? () => world.randomOrigin(targets) : undefined;
  const items = world.publish(options.items ?? 20, 2_000, pick);
  world.runFor(BASE_WINDOW_MS, "window");
  const delivered = targets.map((t) =>
    items.filter((item) => !Number.isNaN(item.deliveredAt[t.index])).length
  );
  return {
    phases: [{ name: "under siege", items, windowMs: BASE_WINDOW_MS }],
    parameters: { targets: count, restartAtMs: 60_000 },
    targets,
    extra: {
      targetItemsDelivered: delivered,
      targetOutboundAttackers: targets.map(outboundAttackers),
      targetOutboundAttackersAtRestart: atRestart,
      ...steadyDelivery(world, steady),
    },
    trafficFrom: from,
    trafficFromMs: fromMs,
  };
}

/** Summaries, traffic, guard figures, costs and charts of a finished run. */
function finish(
  world: World,
  options: ScenarioOptions,
  plan: Plan,
  description: string,
): ScenarioResult {
  const net = world.net;
  const phases: Record<string, DeliverySummary> = {};
  const all: ItemSummary[] = [];
  for (const phase of plan.phases) {
    const summaries = phase.items.map((item) =>
      world.metrics.summarizeItem(item, { windowMs: phase.windowMs })
    );
    phases[phase.name] = aggregate(summaries);
    all.push(...summaries);
  }
  const honestLive = world.liveHonest();
  const itemCount = Math.max(1, all.length);
  const traffic = gossipTraffic(plan.trafficFrom, net.traffic);
  let backgroundMessages = 0;
  let backgroundBytes = 0;
  for (const [type, count] of Object.entries(net.traffic.messages)) {
    const t = Number(type);
    if (t === PeerMessageType.Item || t === PeerMessageType.IHave || t === PeerMessageType.IWant) {
      continue;
    }
    backgroundMessages += count - (plan.trafficFrom.messages[t] ?? 0);
    backgroundBytes += (net.traffic.bytes[t] ?? 0) - (plan.trafficFrom.bytes[t] ?? 0);
  }
  const seconds = Math.max(1e-9, (net.clock.now() - plan.trafficFromMs) / 1000);
  const liveNodes = world.liveNodes().length;
  const attackers = world.adversary?.nodes.length ?? 0;
  const censusAll = eclipseCensus(net);
  const result: ScenarioResult = {
    scenario: "",
    description,
    nodes: options.nodes,
    attackers,
    ratio: attackers / options.nodes,
    seed: options.seed,
    degree: options.node?.config?.degree ?? SIM_NODE_CONFIG.degree,
    parameters: {
      ...plan.parameters,
      ...(plan.extra ?? {}),
      ...(world.bootstrapsUsed === undefined ? {} : { bootstrapsPerNode: world.bootstrapsUsed }),
      ...(options.trustedBootstrappers ? { trustedBootstrappers: true } : {}),
    },
    delivery: aggregate(all),
    phases,
    items: all,
    traffic: {
      gossipMessagesPerNodePerItem: round(traffic.totalMessages / honestLive.length / itemCount),
      gossipBytesPerNodePerItem: round(traffic.totalBytes / honestLive.length / itemCount),
      gossipMessages: traffic.messages,
      backgroundMessagesPerNodePerSecond: round(backgroundMessages / liveNodes / seconds),
      backgroundBytesPerNodePerSecond: round(backgroundBytes / liveNodes / seconds),
    },
    joining: joiningCost(world),
    eclipse: {
      ...censusAll,
      ...(plan.targets ? { targets: eclipseCensus(net, plan.targets) } : {}),
    },
    timeline: world.timeline,
    ...(attackers > 0
      ? { eclipseTime: eclipseTime(net, world.eclipsesCountedFrom, world.t0) }
      : {}),
    guard: guardSummary(world),
    adversary: world.adversary ? { ...world.adversary.stats } : undefined,
    powCost: attackers > 0 && (options.measurePow ?? true)
      ? measurePow(16, 8, attackers)
      : undefined,
    run: {
      wallSeconds: round(world.wallSeconds),
      virtualSeconds: round(net.clock.now() / 1000),
      events: net.clock.eventsRun,
      nodesCreated: net.nodes.length,
      peakRssMiB: Math.round(world.sampleRss()),
      heapUsedMiB: Math.round(Deno.memoryUsage().heapUsed / 2 ** 20),
    },
    charts: [],
    ...(options.traceItems?.length ? { itemTraces: world.metrics.traces } : {}),
  };
  result.charts.push(...charts(world, plan, result));
  return result;
}

function joiningCost(world: World): { dialsPerNode: number; referralsPerNode: number } {
  let dials = 0;
  let referrals = 0;
  for (const node of world.honest) {
    const stats = node.core.stats().connections;
    dials += stats.dials;
    referrals += stats.referred;
  }
  return {
    dialsPerNode: round(dials / world.honest.length),
    referralsPerNode: round(referrals / world.honest.length),
  };
}

/** Adds each count of `from` to the same key of `into`. */
function addCounts(into: Record<string, number>, from: object): void {
  for (const [key, count] of Object.entries(from)) into[key] = (into[key] ?? 0) + count;
}

/** Connection counters (dials, rotations, proven peers back...) summed over live honest nodes. */
function connectionCounts(world: World): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const node of world.liveHonest()) addCounts(counts, node.core.stats().connections);
  return counts;
}

/** The lull scenario's quiet time without items. */
const LULL_MS = 300_000;

/** What honest nodes did during a lull, per node per minute (the `lull` scenario). */
export interface LullCost {
  /** Minutes of the lull. */
  readonly minutes: number;
  /** Dials per honest node per minute. */
  readonly dialsPerNodePerMinute: number;
  /** Outbound peers replaced by rotation, per honest node per minute. */
  readonly rotatedPerNodePerMinute: number;
  /** Proven peers dialled back that took a slot, per honest node per minute. */
  readonly provenReturnedPerNodePerMinute: number;
  /** Extra paths dialled for local items, per honest node per minute. */
  readonly reinforcedPerNodePerMinute: number;
  /** Peer messages of every type per live node per second. */
  readonly messagesPerNodePerSecond: number;
}

/** {@link LullCost} since `connections` and `traffic` were taken, `LULL_MS` ago. */
function lullCost(
  world: World,
  connections: Record<string, number>,
  traffic: ReturnType<typeof snapshotTraffic>,
): LullCost {
  const now = connectionCounts(world);
  const nodes = Math.max(1, world.liveHonest().length);
  const minutes = LULL_MS / 60_000;
  const rate = (key: string) =>
    round(((now[key] ?? 0) - (connections[key] ?? 0)) / nodes / minutes, 3);
  let messages = 0;
  for (const [type, count] of Object.entries(world.net.traffic.messages)) {
    messages += count - (traffic.messages[Number(type)] ?? 0);
  }
  return {
    minutes,
    dialsPerNodePerMinute: rate("dials"),
    rotatedPerNodePerMinute: rate("rotated"),
    provenReturnedPerNodePerMinute: rate("provenReturned"),
    reinforcedPerNodePerMinute: rate("reinforced"),
    messagesPerNodePerSecond: round(
      messages / Math.max(1, world.liveNodes().length) / (LULL_MS / 1000),
      3,
    ),
  };
}

function guardSummary(world: World): GuardSummary {
  const net = world.net;
  let attackersBanned = 0;
  let honestBanned = 0;
  const distinct = new Set<string>();
  const offences: Record<string, number> = {};
  const connections: Record<string, number> = {};
  const live = world.liveHonest();
  for (const node of live) {
    const stats = node.core.stats();
    addCounts(connections, stats.connections);
    addCounts(offences, stats.guard.offences);
    for (const ban of node.core.persistentState().bans) {
      const banned = net.byId(ban.key);
      if (!banned) continue; // an IP address
      if (banned.honest) honestBanned++;
      else {
        attackersBanned++;
        distinct.add(ban.key);
      }
    }
  }
  return {
    attackersBanned,
    distinctAttackersBanned: distinct.size,
    honestBanned,
    offences,
    dialFailuresPerNode: round((connections.dialFailures ?? 0) / Math.max(1, live.length)),
    distrustedDropped: connections.distrustedDropped ?? 0,
    rotated: connections.rotated ?? 0,
    connections,
  };
}

function charts(world: World, plan: Plan, result: ScenarioResult): ChartSpec[] {
  const out: ChartSpec[] = [];
  const name = (phase: string) => plan.phases.length > 1 ? ` (${phase})` : "";
  // Reach over time since the announcement, against the shortest-path bound.
  const main = plan.phases[plan.phases.length - 1];
  const horizon = Math.min(
    main.windowMs,
    Math.max(
      1_000,
      ...result.items.map((i) => i.t100 ?? i.t99 ?? 0),
      ...result.items.map((i) => i.bound100 ?? 0),
    ) * 1.2,
  );
  const grid = Array.from({ length: 201 }, (_, i) => (horizon * i) / 200);
  const series = plan.phases.flatMap((phase) => {
    const curve = world.metrics.reachCurve(phase.items, grid, { windowMs: phase.windowMs });
    return [
      {
        name: `honest nodes reached${name(phase.name)}`,
        points: grid.map((t, i) => [t, 100 * curve.actual[i]] as const),
      },
      {
        name: `shortest-path bound${name(phase.name)}`,
        points: grid.map((t, i) => [t, 100 * curve.bound[i]] as const),
        dashed: true,
      },
    ];
  });
  out.push({
    title: `${result.nodes} honest nodes${
      result.attackers ? ` + ${result.attackers} attackers` : ""
    }: reach of an item (mean over ${result.items.length} items)`,
    xLabel: "ms since the announcement",
    yLabel: "% of eligible honest nodes",
    series,
    yDomain: [0, 100],
    xDomain: [0, horizon],
  });
  // Per-item delivery over the run.
  out.push({
    title: "Delivery ratio of each item, by announcement time",
    xLabel: "s since T0 (the scenario's event)",
    yLabel: "% of eligible honest nodes",
    series: plan.phases.map((phase) => ({
      name: phase.name,
      markers: true,
      points: result.items
        .filter((i) => phase.items.some((p) => p.tag === i.tag))
        .map((i) => [(i.announcedAt - world.t0) / 1000, 100 * i.deliveryRatio] as const),
    })),
    yDomain: [0, 100],
  });
  if (world.timeline.length > 1) {
    const series = [
      {
        name: "isolated honest nodes",
        points: world.timeline.map((p) => [p.t, 100 * p.isolatedShare] as const),
      },
    ];
    if (world.adversary) {
      series.push(
        {
          name: "eclipsed honest nodes",
          points: world.timeline.map((p) => [p.t, 100 * p.eclipsedShare] as const),
        },
        {
          name: "attackers among peers",
          points: world.timeline.map((p) => [p.t, 100 * p.attackerPeerShare] as const),
        },
      );
      if (world.timeline.some((p) => p.targetsEclipsedShare !== undefined)) {
        series.push({
          name: "eclipsed targets",
          points: world.timeline.map((p) => [p.t, 100 * (p.targetsEclipsedShare ?? 0)] as const),
        });
      }
    }
    out.push({
      title: "Honest nodes' peers over time",
      xLabel: "s since T0",
      yLabel: "%",
      series,
      yDomain: [0, 100],
    });
  }
  return out;
}

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
