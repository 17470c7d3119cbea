/**
 * Rate limits and bans: small pure building blocks against flooding.
 *
 * @module
 */

/** A token bucket: `ratePerSecond` tokens refill continuously up to `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /** Creates a full bucket at time `now` (ms). */
  constructor(readonly ratePerSecond: number, readonly burst: number, now: number) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes `cost` tokens at time `now`; false (and nothing taken) when too few are left. */
  take(now: number, cost = 1): boolean {
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}

/**
 * Token buckets per key (e.g. per IP address) with a bound on the number of
 * keys: when full, the least recently used key is forgotten, which only ever
 * errs towards admitting.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  /** Creates the limiter; each key gets its own bucket. */
  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    readonly maxKeys = 10_000,
  ) {}

  /** Takes one token for `key` at `now`; false when `key` is over its rate. */
  take(key: string, now: number): boolean {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key); // re-insert: most recently used last
    } else {
      if (this.buckets.size >= this.maxKeys) {
        this.buckets.delete(this.buckets.keys().next().value as string);
      }
      bucket = new TokenBucket(this.ratePerSecond, this.burst, now);
    }
    this.buckets.set(key, bucket);
    return bucket.take(now);
  }

  /** Number of keys tracked. */
  get size(): number {
    return this.buckets.size;
  }
}

/** Keys banned until a time; bounded, oldest ban forgotten first when full. */
export class BanList {
  private readonly until = new Map<string, number>();

  /** Creates an empty list holding at most `maxEntries` bans. */
  constructor(readonly maxEntries = 10_000) {}

  /** Bans `key` until `now + durationMs`. */
  ban(key: string, now: number, durationMs: number): void {
    this.until.delete(key);
    if (this.until.size >= this.maxEntries) {
      this.until.delete(this.until.keys().next().value as string);
    }
    this.until.set(key, now + durationMs);
  }

  /** True while `key` is banned. */
  isBanned(key: string, now: number): boolean {
    const expiry = this.until.get(key);
    if (expiry === undefined) return false;
    if (expiry > now) return true;
    this.until.delete(key);
    return false;
  }

  /** Number of bans held (including expired ones not yet looked at). */
  get size(): number {
    return this.until.size;
  }

  /** Bans still in force at `now`, with their end times; forgets expired ones. */
  entries(now: number): { key: string; until: number }[] {
    const out: { key: string; until: number }[] = [];
    for (const [key, until] of this.until) {
      if (until > now) out.push({ key, until });
      else this.until.delete(key);
    }
    return out;
  }
}

/**
 * Counts strikes per key within a sliding window; reports when a key reaches
 * `threshold` strikes within `windowMs`.
 */
export class StrikeCounter {
  private readonly strikes = new Map<string, number[]>();

  /** Creates a counter; at most `maxKeys` keys are tracked. */
  constructor(readonly threshold: number, readonly windowMs: number, readonly maxKeys = 10_000) {}

  /** Records a strike against `key` at `now`; true when the threshold is reached. */
  strike(key: string, now: number): boolean {
    let times = this.strikes.get(key);
    if (!times) {
      if (this.strikes.size >= this.maxKeys) {
        this.strikes.delete(this.strikes.keys().next().value as string);
      }
      this.strikes.set(key, times = []);
    }
    times.push(now);
    while (times.length > 0 && times[0] <= now - this.windowMs) times.shift();
    if (times.length > this.threshold) times.shift();
    return times.length >= this.threshold;
  }

  /** Forgets `key`'s strikes. */
  clear(key: string): void {
    this.strikes.delete(key);
  }

  /** Number of keys with strikes. */
  get size(): number {
    return this.strikes.size;
  }
}

/**
 * The network range an IP address belongs to, for per-range limits: the /24
 * of an IPv4 address (also when written as an IPv4-mapped IPv6 address, in
 * any spelling), the /48 of an IPv6 address (textual, best effort).
 */
export function addressRange(ip: string): string {
  if (!ip.includes(":")) return ip.split(".").slice(0, 3).join(".") + ".0/24";
  const groups = ipv6Groups(ip);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.0/24`;
  }
  return groups.slice(0, 3).map((g) => g.toString(16)).join(":") + "::/48";
}

/** The eight 16-bit groups of IPv6 text (`::` expanded, a trailing dotted quad converted). */
function ipv6Groups(ip: string): number[] {
  const parse = (part: string): number[] => {
    if (part === "") return [];
    return part.split(":").flatMap((g) => {
      if (!g.includes(".")) return [parseInt(g || "0", 16)];
      const [a, b, c, d] = g.split(".").map((octet) => parseInt(octet, 10) & 0xff);
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const [head, tail] = ip.split("::");
  const left = parse(head);
  if (tail === undefined) return left;
  const right = parse(tail);
  return [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill(0), ...right];
}
