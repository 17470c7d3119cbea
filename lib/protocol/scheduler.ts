/**
 * Time as a dependency: state machines take a {@link Scheduler} so that unit
 * tests and the simulator drive them with a virtual clock instead of sleeping.
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
  /**
   * Runs `callback` after the current event and everything it triggers
   * synchronously, before time moves on (a microtask on the real clock). Used
   * to batch what one event produces.
   */
  defer(callback: () => void): void;
}

/** The real clock (performance.now) and the platform timers. */
export const realScheduler: Scheduler = {
  now: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle),
  defer: (callback) => queueMicrotask(callback),
};
