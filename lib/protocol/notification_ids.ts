/**
 * Per-connection NOTIFICATION message IDs.
 *
 * Each NOTIFICATION gets a fresh random 16-bit ID that is not outstanding on
 * the same connection; the module's VALIDATION names it. IDs stay known until
 * answered (even after the verdict timed out, so a slow module is not cut off
 * for answering late) or until more than `capacity` are outstanding, when the
 * oldest is forgotten. A VALIDATION for an ID that is not known is ill-formed.
 *
 * @module
 */

/** Outstanding notification IDs of one connection, mapped to item keys. */
export class NotificationIds<K> {
  private readonly outstanding = new Map<number, K>();

  /**
   * Creates the table; `random` returns a uniformly random 16-bit integer.
   * `capacity` must stay well below 65536 so a free ID is found quickly.
   */
  constructor(
    readonly capacity = 4096,
    private readonly random: () => number = randomU16,
  ) {
    if (capacity < 1 || capacity > 32768) throw new RangeError("capacity must be 1..32768");
  }

  /** Number of IDs awaiting a VALIDATION. */
  get size(): number {
    return this.outstanding.size;
  }

  /** Allocates a fresh ID for `key`. */
  allocate(key: K): number {
    if (this.outstanding.size >= this.capacity) {
      const oldest = this.outstanding.keys().next().value as number;
      this.outstanding.delete(oldest);
    }
    let id = this.random();
    // At most half the ID space is in use, so this ends after ~2 tries on average;
    // the linear probe bounds it even with a poor random source.
    for (let probe = 0; this.outstanding.has(id) && probe < 65536; probe++) {
      id = (id + 1) & 0xffff;
    }
    this.outstanding.set(id, key);
    return id;
  }

  /** Returns and forgets the key of `id`, or undefined if `id` is not outstanding. */
  resolve(id: number): K | undefined {
    const key = this.outstanding.get(id);
    if (key !== undefined) this.outstanding.delete(id);
    return key;
  }
}

const randomBuffer = new Uint16Array(256);
let randomIndex = randomBuffer.length;

/** A uniformly random 16-bit integer from the platform CSPRNG. */
export function randomU16(): number {
  if (randomIndex >= randomBuffer.length) {
    crypto.getRandomValues(randomBuffer);
    randomIndex = 0;
  }
  return randomBuffer[randomIndex++];
}
