/**
 * Link models of the simulated network: how long a message takes from one
 * node to another.
 *
 * - {@link constantLinks}: the same one-way delay everywhere (unit tests).
 * - {@link GlobeLinks}: a WAN. Each node is placed on the globe around one of
 *   a few regions weighted roughly like the Internet's hosts; the one-way delay
 *   of a link is the great-circle distance at 150 km per ms (light in fibre at
 *   about 200 km/ms along routes about a third longer than the great circle)
 *   plus each end's access delay, so round trips range from about 10 ms inside
 *   a metro area to about 300 ms between antipodes (clamped to that range).
 *   Each message adds jitter (exponential, a fraction of the base delay) and,
 *   with probability `lossRate` per 1460-byte segment, a TCP retransmission
 *   (RTO = max(200 ms, 1.5 × RTT), doubling on repeated loss). Messages on one
 *   session stay in order (the network enforces FIFO), so a retransmission
 *   holds back what follows it, as on TCP.
 *
 * Nodes are identified by index. Models are deterministic given the random
 * source they are handed.
 *
 * @module
 */

import type { RandomSource } from "../protocol/random.ts";

/** Delays of the links between simulated nodes. */
export interface LinkModel {
  /** Places node `node` (called once per node, in index order). */
  place(node: number, random: RandomSource): void;
  /**
   * Places node `node` as a datacentre host: where the model's links are
   * fastest, nearer than the nodes placed by {@link place} around it.
   * Models without such a place leave this out ({@link place} is used).
   */
  placeCentral?(node: number, random: RandomSource): void;
  /** Base one-way delay from `from` to `to`, in ms (no jitter, no loss). */
  latency(from: number, to: number): number;
  /**
   * Delay of one message of `bytes` bytes from `from` to `to` on the wire:
   * the base delay plus jitter and retransmissions (serialisation at the
   * sender's uplink is added by the network).
   */
  transit(from: number, to: number, bytes: number, random: RandomSource): number;
}

/** Every message takes `ms` (legacy constant model). */
export function constantLinks(ms: number): LinkModel {
  return {
    place: () => {},
    latency: () => ms,
    transit: () => ms,
  };
}

/** A region nodes are placed around: centre and share of the nodes. */
export interface Region {
  /** Name, for reports. */
  readonly name: string;
  /** Latitude of the centre, degrees. */
  readonly lat: number;
  /** Longitude of the centre, degrees. */
  readonly lon: number;
  /** Relative weight. */
  readonly weight: number;
}

/** Regions weighted roughly like the Internet's server and broadband hosts. */
export const DEFAULT_REGIONS: readonly Region[] = [
  { name: "us-east", lat: 39.0, lon: -77.5, weight: 15 },
  { name: "us-central", lat: 41.6, lon: -93.6, weight: 5 },
  { name: "us-west", lat: 37.4, lon: -122.0, weight: 10 },
  { name: "brazil", lat: -23.5, lon: -46.6, weight: 5 },
  { name: "europe-west", lat: 50.1, lon: 8.7, weight: 20 },
  { name: "uk", lat: 51.5, lon: -0.1, weight: 5 },
  { name: "europe-east", lat: 52.2, lon: 21.0, weight: 5 },
  { name: "middle-east", lat: 25.2, lon: 55.3, weight: 3 },
  { name: "south-africa", lat: -26.2, lon: 28.0, weight: 2 },
  { name: "india", lat: 19.1, lon: 72.9, weight: 7 },
  { name: "singapore", lat: 1.35, lon: 103.8, weight: 6 },
  { name: "china-east", lat: 31.2, lon: 121.5, weight: 8 },
  { name: "japan", lat: 35.7, lon: 139.7, weight: 6 },
  { name: "australia", lat: -33.9, lon: 151.2, weight: 3 },
];

/** Settings of {@link GlobeLinks}. */
export interface GlobeOptions {
  /** Regions to place nodes around (default {@link DEFAULT_REGIONS}). */
  readonly regions?: readonly Region[];
  /** Standard deviation of a node's distance from its region's centre, degrees (default 4). */
  readonly spreadDegrees?: number;
  /** Range of a node's access (last-mile) one-way delay, ms (default [1, 5]). */
  readonly accessMs?: readonly [number, number];
  /** Kilometres per ms of one-way delay along the great circle (default 150). */
  readonly kmPerMs?: number;
  /** Clamp of round trips, ms (default [10, 300]). */
  readonly rttRangeMs?: readonly [number, number];
  /** Mean jitter as a fraction of the base delay (default 0.1). */
  readonly jitterFraction?: number;
  /** Loss probability per 1460-byte segment (default 0.01). */
  readonly lossRate?: number;
  /** Smallest retransmission timeout, ms (default 200, as Linux). */
  readonly minRtoMs?: number;
}

const EARTH_RADIUS_KM = 6371;
const SEGMENT_BYTES = 1460;

/** Nodes on a globe: see the module documentation. */
export class GlobeLinks implements LinkModel {
  /** Unit vectors of the nodes' positions (x, y, z per node). */
  private readonly xyz: number[] = [];
  private readonly access: number[] = [];
  /** Region index of each node. */
  readonly regionOf: number[] = [];
  private readonly regions: readonly Region[];
  private readonly cumulative: number[];
  private readonly options: Required<GlobeOptions>;

  /** Creates an empty globe. */
  constructor(options: GlobeOptions = {}) {
    this.options = {
      regions: DEFAULT_REGIONS,
      spreadDegrees: 4,
      accessMs: [1, 5],
      kmPerMs: 150,
      rttRangeMs: [10, 300],
      jitterFraction: 0.1,
      lossRate: 0.01,
      minRtoMs: 200,
      ...options,
    };
    this.regions = this.options.regions;
    let total = 0;
    this.cumulative = this.regions.map((r) => total += r.weight);
  }

  /** The regions nodes are placed around. */
  get regionList(): readonly Region[] {
    return this.regions;
  }

  /** Latitude and longitude of `node`, degrees. */
  position(node: number): { lat: number; lon: number } {
    const [x, y, z] = this.xyz.slice(3 * node, 3 * node + 3);
    return {
      lat: Math.asin(Math.max(-1, Math.min(1, z))) * 180 / Math.PI,
      lon: Math.atan2(y, x) * 180 / Math.PI,
    };
  }

  place(node: number, random: RandomSource): void {
    const region = this.pickRegion(random);
    const centre = this.regions[region];
    const [dLat, dLon] = gaussianPair(random);
    const spread = this.options.spreadDegrees;
    const lat = Math.max(-89, Math.min(89, centre.lat + dLat * spread));
    const lon = centre.lon + dLon * spread / Math.max(0.2, Math.cos(lat * Math.PI / 180));
    const [low, high] = this.options.accessMs;
    this.setPlace(node, region, lat, lon, low + random() * (high - low));
  }

  /**
   * A region drawn by weight, at its centre, with no access delay: nearer to
   * the region's nodes than they are to each other.
   */
  placeCentral(node: number, random: RandomSource): void {
    const region = this.pickRegion(random);
    const centre = this.regions[region];
    this.setPlace(node, region, centre.lat, centre.lon, 0);
  }

  private pickRegion(random: RandomSource): number {
    const total = this.cumulative[this.cumulative.length - 1];
    const pick = random() * total;
    let region = 0;
    while (this.cumulative[region] <= pick) region++;
    return region;
  }

  private setPlace(node: number, region: number, lat: number, lon: number, access: number): void {
    const phi = lat * Math.PI / 180;
    const lambda = lon * Math.PI / 180;
    this.xyz[3 * node] = Math.cos(phi) * Math.cos(lambda);
    this.xyz[3 * node + 1] = Math.cos(phi) * Math.sin(lambda);
    this.xyz[3 * node + 2] = Math.sin(phi);
    this.access[node] = access;
    this.regionOf[node] = region;
  }

  latency(from: number, to: number): number {
    const xyz = this.xyz;
    const dx = xyz[3 * from] - xyz[3 * to];
    const dy = xyz[3 * from + 1] - xyz[3 * to + 1];
    const dz = xyz[3 * from + 2] - xyz[3 * to + 2];
    const chord = Math.sqrt(dx * dx + dy * dy + dz * dz);
    const km = 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, chord / 2));
    const oneWay = km / this.options.kmPerMs + (this.access[from] + this.access[to]);
    const [minRtt, maxRtt] = this.options.rttRangeMs;
    return Math.max(minRtt / 2, Math.min(maxRtt / 2, oneWay));
  }

  transit(from: number, to: number, bytes: number, random: RandomSource): number {
    const base = this.latency(from, to);
    const { jitterFraction, lossRate, minRtoMs } = this.options;
    let delay = base - Math.log(1 - random()) * base * jitterFraction;
    if (lossRate > 0) {
      const segments = Math.max(1, Math.ceil(bytes / SEGMENT_BYTES));
      const lossPerMessage = 1 - (1 - lossRate) ** segments;
      let rto = Math.max(minRtoMs, 3 * base);
      while (random() < lossPerMessage) {
        delay += rto;
        rto *= 2;
      }
    }
    return delay;
  }
}

/** Two independent standard normal values (Box-Muller). */
function gaussianPair(random: RandomSource): [number, number] {
  const u = 1 - random();
  const v = random();
  const r = Math.sqrt(-2 * Math.log(u));
  return [r * Math.cos(2 * Math.PI * v), r * Math.sin(2 * Math.PI * v)];
}
