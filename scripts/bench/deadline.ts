/**
 * The run's overall deadline and cancellation: every wait of the benchmark
 * goes through {@link Deadline.sleep} or {@link Deadline.waitFor}, so a
 * SIGINT or the `--timeout-s` deadline ends each loop promptly.
 *
 * @module
 */

/** Thrown by waits once the run was aborted (deadline or signal). */
export class AbortedError extends Error {}

/** Thrown when a bounded wait gives up. */
export class WaitTimeoutError extends Error {}

/** An overall deadline that can also be aborted early. */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly endsAt: number;
  private readonly expiredReason: string;
  private readonly signalHandlers = new Map<Deno.Signal, () => void>();

  /** Starts a deadline `ms` from now. */
  constructor(ms: number) {
    this.endsAt = performance.now() + ms;
    this.expiredReason = `overall deadline of ${Math.round(ms / 1000)} s (--timeout-s) exceeded`;
    this.timer = setTimeout(() => this.abort(this.expiredReason), ms);
  }

  /** The signal aborted with the reason (a string) when the run must stop. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Milliseconds left until the deadline. */
  get remainingMs(): number {
    return Math.max(0, this.endsAt - performance.now());
  }

  /** Stops the run: pending and future waits throw {@link AbortedError}. */
  abort(reason: string): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Releases the timer and the signal listeners of {@link abortOnSignals}. */
  dispose(): void {
    clearTimeout(this.timer);
    for (const [signal, handler] of this.signalHandlers) {
      Deno.removeSignalListener(signal, handler);
    }
    this.signalHandlers.clear();
  }

  /**
   * Aborts the run on SIGINT or SIGTERM with the reason "interrupted by
   * SIGNAL" (see {@link interrupted}) until {@link dispose}.
   */
  abortOnSignals(signals: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"]): void {
    for (const signal of signals) {
      if (this.signalHandlers.has(signal)) continue;
      const handler = () => this.abort(`interrupted by ${signal}`);
      Deno.addSignalListener(signal, handler);
      this.signalHandlers.set(signal, handler);
    }
  }

  /** True when a signal (not the deadline) ended the run. */
  get interrupted(): boolean {
    return String(this.controller.signal.reason ?? "").startsWith("interrupted");
  }

  /** Throws {@link AbortedError} if the run was aborted. */
  check(): void {
    if (this.controller.signal.aborted) {
      throw new AbortedError(String(this.controller.signal.reason));
    }
  }

  /** Sleeps `ms` (at most until the deadline); throws if aborted meanwhile. */
  sleep(ms: number): Promise<void> {
    this.check();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(new AbortedError(String(this.controller.signal.reason)));
      };
      const timer = setTimeout(() => {
        this.controller.signal.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, Math.min(ms, this.remainingMs)));
      this.controller.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Polls `condition` every `pollMs` until it returns true; throws
   * {@link WaitTimeoutError} naming `what` after `timeoutMs`.
   */
  async waitFor(
    condition: () => boolean | Promise<boolean>,
    timeoutMs: number,
    what: string,
    pollMs = 50,
  ): Promise<void> {
    const until = performance.now() + timeoutMs;
    const maxPolls = Math.ceil(timeoutMs / pollMs) + 1;
    for (let poll = 0; poll <= maxPolls; poll++) {
      this.check();
      if (await condition()) return;
      const left = until - performance.now();
      if (left <= 0) break;
      await this.sleep(Math.min(pollMs, left));
    }
    this.check();
    if (this.remainingMs <= 0) throw new AbortedError(`${this.expiredReason} waiting for ${what}`);
    throw new WaitTimeoutError(`timed out after ${Math.round(timeoutMs)} ms waiting for ${what}`);
  }
}
