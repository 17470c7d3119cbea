/**
 * Validation bookkeeping: which local subscribers were notified of an item,
 * what they answered, and the resulting verdict.
 *
 * Rule (the spec leaves it open): an item is **valid** when at least one notified
 * subscriber answered valid and none answered invalid. A single invalid answer
 * decides at once (invalid). Otherwise the verdict is reached when every
 * subscriber waited for has answered or disconnected, or when the timeout runs
 * out, counting only the answers received by then. No valid answer at all means
 * the item is not forwarded (`unanswered`).
 *
 * Unresponsive subscribers: a subscriber that lets `muteAfterTimeouts`
 * validations in a row time out is no longer waited for (it is still notified,
 * and its answers still count while the verdict is open); its next answer makes
 * it count again. So one module that reads but never answers cannot make every
 * item wait the full timeout at every hop.
 *
 * @module
 */

import { realScheduler, type Scheduler, type TimerHandle } from "./scheduler.ts";

/** Identifies a local subscriber (an API connection). */
export type SubscriberId = number;

/** Final verdict on an item. */
export type Verdict = "valid" | "invalid" | "unanswered";

/** The verdict with the answer counts that led to it. */
export interface ValidationOutcome {
  /** The decision. */
  readonly verdict: Verdict;
  /** Subscribers that answered valid. */
  readonly validCount: number;
  /** Subscribers that answered invalid. */
  readonly invalidCount: number;
  /** Subscribers notified that did not answer (timed out or disconnected). */
  readonly unansweredCount: number;
  /** True when the timeout, not the answers, ended the wait. */
  readonly timedOut: boolean;
}

/** Options of a {@link ValidationTracker}. */
export interface ValidationTrackerOptions<K> {
  /** How long to wait for answers. */
  timeoutMs: number;
  /** Timeouts in a row after which a subscriber is no longer waited for (default 3). */
  readonly muteAfterTimeouts?: number;
  /** Called exactly once per begun key with its outcome. */
  readonly onDecision: (key: K, outcome: ValidationOutcome) => void;
  /** Called when a subscriber stops being waited for. */
  readonly onMuted?: (subscriber: SubscriberId) => void;
  /** Clock and timers (a fake one in tests). */
  readonly scheduler?: Scheduler;
}

interface PendingValidation {
  /** Subscribers whose answer is waited for. */
  readonly waiting: Set<SubscriberId>;
  /** Subscribers notified but not waited for (muted); their answers still count. */
  readonly optional: Set<SubscriberId>;
  readonly notified: number;
  valid: number;
  invalid: number;
  timer: TimerHandle | undefined;
}

/** Tracks outstanding validations per item key. */
export class ValidationTracker<K> {
  private readonly pending = new Map<K, PendingValidation>();
  private readonly scheduler: Scheduler;
  /** Consecutive timeouts per subscriber (only subscribers with at least one). */
  private readonly timeouts = new Map<SubscriberId, number>();
  private readonly muted = new Set<SubscriberId>();
  private timedOutCount = 0;

  /** Creates a tracker. */
  constructor(private readonly options: ValidationTrackerOptions<K>) {
    this.scheduler = options.scheduler ?? realScheduler;
  }

  /** Items waiting for a verdict. */
  get size(): number {
    return this.pending.size;
  }

  /** Validations decided by the timeout, since creation. */
  get timedOut(): number {
    return this.timedOutCount;
  }

  /** Subscribers currently not waited for. */
  get mutedCount(): number {
    return this.muted.size;
  }

  /** True while `key` waits for a verdict. */
  isPending(key: K): boolean {
    return this.pending.has(key);
  }

  /** True when `subscriber` is currently not waited for. */
  isMuted(subscriber: SubscriberId): boolean {
    return this.muted.has(subscriber);
  }

  /** Changes the timeout of validations begun from now on. */
  setTimeout(timeoutMs: number): void {
    this.options.timeoutMs = timeoutMs;
  }

  /**
   * Starts collecting `subscribers`' answers on `key`. When no subscriber is
   * waited for, the verdict (`unanswered`) is delivered synchronously.
   * Beginning a key that is already pending is ignored.
   */
  begin(key: K, subscribers: Iterable<SubscriberId>): void {
    if (this.pending.has(key)) return;
    const waiting = new Set<SubscriberId>();
    const optional = new Set<SubscriberId>();
    for (const subscriber of subscribers) {
      (this.muted.has(subscriber) ? optional : waiting).add(subscriber);
    }
    const entry: PendingValidation = {
      waiting,
      optional,
      notified: waiting.size + optional.size,
      valid: 0,
      invalid: 0,
      timer: undefined,
    };
    this.pending.set(key, entry);
    if (waiting.size === 0) {
      this.finish(key, false);
      return;
    }
    entry.timer = this.scheduler.setTimeout(() => this.finish(key, true), this.options.timeoutMs);
  }

  /** Records `subscriber`'s answer on `key`; answers not waited for are ignored. */
  answer(key: K, subscriber: SubscriberId, valid: boolean): void {
    this.timeouts.delete(subscriber);
    this.muted.delete(subscriber);
    const entry = this.pending.get(key);
    if (!entry) return;
    if (!entry.waiting.delete(subscriber) && !entry.optional.delete(subscriber)) return;
    if (valid) entry.valid++;
    else entry.invalid++;
    if (!valid || entry.waiting.size === 0) this.finish(key, false);
  }

  /** Stops waiting for `subscriber` on every key (its connection closed). */
  removeSubscriber(subscriber: SubscriberId): void {
    this.timeouts.delete(subscriber);
    this.muted.delete(subscriber);
    for (const [key, entry] of [...this.pending]) {
      entry.optional.delete(subscriber);
      if (entry.waiting.delete(subscriber) && entry.waiting.size === 0) this.finish(key, false);
    }
  }

  /** Cancels every pending validation without deciding; used on shutdown. */
  clear(): void {
    for (const entry of this.pending.values()) {
      if (entry.timer !== undefined) this.scheduler.clearTimeout(entry.timer);
    }
    this.pending.clear();
  }

  private finish(key: K, timedOut: boolean): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    this.pending.delete(key);
    if (entry.timer !== undefined) this.scheduler.clearTimeout(entry.timer);
    if (timedOut) {
      this.timedOutCount++;
      for (const subscriber of entry.waiting) this.countTimeout(subscriber);
    }
    const unanswered = entry.notified - entry.valid - entry.invalid;
    const verdict: Verdict = entry.invalid > 0
      ? "invalid"
      : entry.valid > 0
      ? "valid"
      : "unanswered";
    this.options.onDecision(key, {
      verdict,
      validCount: entry.valid,
      invalidCount: entry.invalid,
      unansweredCount: unanswered,
      timedOut,
    });
  }

  private countTimeout(subscriber: SubscriberId): void {
    const count = (this.timeouts.get(subscriber) ?? 0) + 1;
    this.timeouts.set(subscriber, count);
    if (count >= (this.options.muteAfterTimeouts ?? 3) && !this.muted.has(subscriber)) {
      this.muted.add(subscriber);
      this.options.onMuted?.(subscriber);
    }
  }
}
