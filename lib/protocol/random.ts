/**
 * Randomness as a dependency, so tests can make choices repeatable.
 *
 * @module
 */

/** Returns a float in [0, 1). */
export type RandomSource = () => number;

/** `Math.random`: peer choice needs unpredictability, not secrecy. */
export const defaultRandom: RandomSource = Math.random;

/** Up to `count` distinct elements of `items` in random order (partial Fisher-Yates). */
export function sample<T>(items: readonly T[], count: number, random: RandomSource): T[] {
  const pool = items.slice();
  const take = Math.min(count, pool.length);
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  pool.length = take;
  return pool;
}

/**
 * The elements of `items` whose `key` is largest, in their order (every one
 * of them on a tie: the candidates of a random choice among equals), and that
 * key (-Infinity when `items` is empty).
 */
export function allWithLargest<T>(
  items: Iterable<T>,
  key: (item: T) => number,
): { largest: number; items: T[] } {
  let largest = -Infinity;
  let chosen: T[] = [];
  for (const item of items) {
    const value = key(item);
    if (value > largest) {
      largest = value;
      chosen = [item];
    } else if (value === largest) chosen.push(item);
  }
  return { largest, items: chosen };
}

/** A seeded generator (mulberry32) for reproducible tests and simulations. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
