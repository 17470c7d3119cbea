/**
 * Which local connections subscribed (NOTIFY) to which data types.
 *
 * @module
 */

/** Map of data type to subscribers, with per-subscriber cleanup. */
export class Subscriptions<S> {
  private readonly byType = new Map<number, Set<S>>();
  private readonly bySubscriber = new Map<S, Set<number>>();

  /** Subscribes `subscriber` to `dataType`; repeating it is harmless. */
  add(subscriber: S, dataType: number): void {
    let set = this.byType.get(dataType);
    if (!set) this.byType.set(dataType, set = new Set());
    set.add(subscriber);
    let types = this.bySubscriber.get(subscriber);
    if (!types) this.bySubscriber.set(subscriber, types = new Set());
    types.add(dataType);
  }

  /** Removes every subscription of `subscriber`. */
  remove(subscriber: S): void {
    const types = this.bySubscriber.get(subscriber);
    if (!types) return;
    this.bySubscriber.delete(subscriber);
    for (const type of types) {
      const set = this.byType.get(type);
      set?.delete(subscriber);
      if (set?.size === 0) this.byType.delete(type);
    }
  }

  /** Subscribers of `dataType` (empty when none). */
  subscribers(dataType: number): ReadonlySet<S> {
    return this.byType.get(dataType) ?? EMPTY;
  }

  /** True when some subscriber wants `dataType`. */
  has(dataType: number): boolean {
    return this.byType.has(dataType);
  }
}

const EMPTY: ReadonlySet<never> = new Set();
