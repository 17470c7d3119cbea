/**
 * A virtual clock for discrete-event simulation: a {@link Scheduler} whose
 * time moves only when the simulation runs the next event. Events at the same
 * time run in the order they were scheduled, so a run is fully determined by
 * its inputs and seed.
 *
 * Timers live in a binary heap; a cancelled timer is dropped lazily when it
 * reaches the top.
 *
 * @module
 */

import type { Scheduler, TimerHandle } from "../protocol/scheduler.ts";

interface Timer {
  readonly at: number;
  readonly seq: number;
  callback: (() => void) | undefined;
}

/** Virtual time with one-shot timers, run by {@link VirtualClock.runUntil}. */
export class VirtualClock implements Scheduler {
  private current = 0;
  private seq = 0;
  private readonly heap: Timer[] = [];
  private readonly byHandle = new Map<number, Timer>();
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
    return this.byHandle.size;
  }

  /** Runs `callback` at `now() + delayMs` (negative or NaN delays count as 0). */
  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const timer: Timer = { at: this.current + delay, seq: this.seq++, callback };
    this.push(timer);
    this.byHandle.set(timer.seq, timer);
    return timer.seq;
  }

  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void {
    if (typeof handle !== "number") return;
    const timer = this.byHandle.get(handle);
    if (!timer) return;
    timer.callback = undefined;
    this.byHandle.delete(handle);
  }

  /** Runs `callback` at the current time, after everything already due now. */
  defer(callback: () => void): void {
    this.setTimeout(callback, 0);
  }

  /**
   * Runs every event due up to `time` (inclusive), in order, then sets the
   * clock to `time`. Throws when more than `maxEvents` run (a runaway loop).
   */
  runUntil(time: number, maxEvents = 50_000_000): void {
    while (this.heap.length > 0 && this.heap[0].at <= time) {
      const timer = this.pop()!;
      const callback = timer.callback;
      if (!callback) continue;
      this.byHandle.delete(timer.seq);
      this.current = timer.at;
      if (++this.executed > maxEvents) throw new Error(`more than ${maxEvents} events`);
      callback();
    }
    if (time > this.current) this.current = time;
  }

  /** Runs for `ms` more virtual milliseconds. */
  advance(ms: number): void {
    this.runUntil(this.current + ms);
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left], heap[smallest])) smallest = left;
      if (right < heap.length && before(heap[right], heap[smallest])) smallest = right;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest], heap[i]];
      i = smallest;
    }
    return top;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
