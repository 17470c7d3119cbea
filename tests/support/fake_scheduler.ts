/**
 * A deterministic {@link Scheduler} for tests: time only moves when the test
 * calls {@link FakeScheduler.advance}, so nothing sleeps.
 *
 * @module
 */

import type { Scheduler, TimerHandle } from "../../lib/protocol/scheduler.ts";

interface FakeTimer {
  readonly id: number;
  readonly dueAt: number;
  readonly callback: () => void;
}

/** Most callbacks one {@link FakeScheduler.advance} call runs before it gives up. */
const MAX_CALLBACKS_PER_ADVANCE = 100_000;

/** Fake clock with one-shot timers that run only inside {@link FakeScheduler.advance}. */
export class FakeScheduler implements Scheduler {
  private current: number;
  private nextId = 1;
  private readonly timers = new Map<number, FakeTimer>();

  /** Starts the clock at `startMs`. */
  constructor(startMs = 0) {
    this.current = startMs;
  }

  /** The fake time in milliseconds. */
  now(): number {
    return this.current;
  }

  /** Schedules `callback` at `now() + delayMs` (negative or NaN delays count as 0). */
  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const id = this.nextId++;
    this.timers.set(id, { id, dueAt: this.current + delay, callback });
    return id;
  }

  /** Cancels a timer; unknown or already fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === "number") this.timers.delete(handle);
  }

  /** Runs `callback` at the current time, after callbacks already due (inside {@link advance}). */
  defer(callback: () => void): void {
    this.setTimeout(callback, 0);
  }

  /** Timers scheduled and neither fired nor cancelled. */
  get pendingCount(): number {
    return this.timers.size;
  }

  /**
   * Moves the clock forward by `ms`, running every timer that falls due, in
   * order of due time and then of scheduling. Timers scheduled by callbacks run
   * too when they fall due within the window. Throws if more than
   * {@link MAX_CALLBACKS_PER_ADVANCE} callbacks run (a timer loop).
   */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance by ${ms} ms`);
    const target = this.current + ms;
    for (let ran = 0;; ran++) {
      const next = this.nextDue(target);
      if (next === undefined) break;
      if (ran >= MAX_CALLBACKS_PER_ADVANCE) {
        throw new Error(`more than ${MAX_CALLBACKS_PER_ADVANCE} callbacks in one advance`);
      }
      this.timers.delete(next.id);
      this.current = next.dueAt;
      next.callback();
    }
    this.current = target;
  }

  private nextDue(target: number): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const timer of this.timers.values()) {
      if (timer.dueAt > target) continue;
      if (best === undefined || timer.dueAt < best.dueAt) best = timer;
    }
    return best;
  }
}
