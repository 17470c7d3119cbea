/**
 * A virtual clock for discrete-event simulation: a {@link Scheduler} whose
 * time moves only when the simulation runs the next event. Events at the same
 * time run in the order they were scheduled, so a run is fully determined by
 * its inputs and seed.
 *
 * Timers live in a binary heap kept in parallel arrays (time, sequence number,
 * callback), ordered by time then sequence. A timer's handle is its sequence
 * number; one byte per handle ever issued says whether it is still pending, so
 * a cancelled timer is dropped lazily when it reaches the top and cancelling
 * costs no search. (Millions of events run per simulation: no allocation per
 * timer beyond the callback itself.)
 *
 * @module
 */

import type { Scheduler, TimerHandle } from "../protocol/scheduler.ts";

/** Virtual time with one-shot timers, run by {@link VirtualClock.runUntil}. */
export class VirtualClock implements Scheduler {
  private current = 0;
  private seq = 0;
  private size = 0;
  private times = new Float64Array(1024);
  private seqs = new Float64Array(1024);
  private callbacks: ((() => void) | undefined)[] = new Array(1024);
  /** pending[handle] is 1 while the timer with that handle is scheduled. */
  private pendingFlags = new Uint8Array(1024);
  private pendingCount = 0;
  private executed = 0;

  /** Virtual milliseconds since the start. */
  now(): number {
    return this.current;
  }

  /** Events run so far. */
  get eventsRun(): number {
    return this.executed;
  }

  /** Timers scheduled and neither run nor cancelled. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Runs `callback` at `now() + delayMs` (negative or NaN delays count as 0). */
  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const at = this.current + (delayMs > 0 && delayMs !== Infinity ? delayMs : 0);
    const handle = this.seq++;
    if (handle >= this.pendingFlags.length) {
      const grown = new Uint8Array(this.pendingFlags.length * 2);
      grown.set(this.pendingFlags);
      this.pendingFlags = grown;
    }
    this.pendingFlags[handle] = 1;
    this.pendingCount++;
    this.push(at, handle, callback);
    return handle;
  }

  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void {
    if (typeof handle !== "number" || !(handle >= 0 && handle < this.seq)) return;
    if (this.pendingFlags[handle] === 0) return;
    this.pendingFlags[handle] = 0;
    this.pendingCount--;
  }

  /** Runs `callback` at the current time, after everything already due now. */
  defer(callback: () => void): void {
    this.setTimeout(callback, 0);
  }

  /**
   * Runs every event due up to `time` (inclusive), in order, then sets the
   * clock to `time`. Throws when more than `maxEvents` run (a runaway loop).
   */
  runUntil(time: number, maxEvents = 500_000_000): void {
    while (this.size > 0 && this.times[0] <= time) {
      const at = this.times[0];
      const handle = this.seqs[0];
      const callback = this.callbacks[0]!;
      this.pop();
      if (this.pendingFlags[handle] === 0) continue; // cancelled
      this.pendingFlags[handle] = 0;
      this.pendingCount--;
      this.current = at;
      if (++this.executed > maxEvents) throw new Error(`more than ${maxEvents} events`);
      callback();
    }
    if (time > this.current) this.current = time;
  }

  /** Runs for `ms` more virtual milliseconds. */
  advance(ms: number): void {
    this.runUntil(this.current + ms);
  }

  private push(at: number, handle: number, callback: () => void): void {
    if (this.size === this.times.length) this.grow();
    const times = this.times;
    const seqs = this.seqs;
    const callbacks = this.callbacks;
    let i = this.size++;
    // Sift the hole up; `handle` is larger than every sequence in the heap.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent] <= at) break;
      times[i] = times[parent];
      seqs[i] = seqs[parent];
      callbacks[i] = callbacks[parent];
      i = parent;
    }
    times[i] = at;
    seqs[i] = handle;
    callbacks[i] = callback;
  }

  /** Removes the top of the heap. */
  private pop(): void {
    const last = --this.size;
    const times = this.times;
    const seqs = this.seqs;
    const callbacks = this.callbacks;
    const at = times[last];
    const seq = seqs[last];
    const callback = callbacks[last];
    callbacks[last] = undefined;
    if (last === 0) return;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= last) break;
      const right = child + 1;
      if (
        right < last &&
        (times[right] < times[child] ||
          (times[right] === times[child] && seqs[right] < seqs[child]))
      ) child = right;
      if (times[child] > at || (times[child] === at && seqs[child] > seq)) break;
      times[i] = times[child];
      seqs[i] = seqs[child];
      callbacks[i] = callbacks[child];
      i = child;
    }
    times[i] = at;
    seqs[i] = seq;
    callbacks[i] = callback;
  }

  private grow(): void {
    const capacity = this.times.length * 2;
    const times = new Float64Array(capacity);
    times.set(this.times);
    const seqs = new Float64Array(capacity);
    seqs.set(this.seqs);
    this.times = times;
    this.seqs = seqs;
    this.callbacks.length = capacity;
  }
}
