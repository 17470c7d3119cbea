/**
 * Time as a dependency: state machines take a {@link Scheduler} so that unit
 * tests drive them with a fake clock instead of sleeping.
 *
 * @module
 */

/** Opaque handle of a scheduled callback. */
export type TimerHandle = ReturnType<typeof setTimeout> | number;

/** Clock and one-shot timers. */
export interface Scheduler {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Runs `callback` once after `delayMs`. */
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  /** Cancels a callback scheduled with {@link Scheduler.setTimeout}. */
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock (performance.now) and the platform timers. */
export const realScheduler: Scheduler = {
  now: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle),
};
