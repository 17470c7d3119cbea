/**
 * Validation bookkeeping: which local subscribers were notified of an item,
 * what they answered, and the resulting verdict.
 *
 * Rule (the spec leaves it open): an item is **valid** when at least one notified
 * subscriber answered valid and none answered invalid. A single invalid answer
 * decides at once (invalid). Otherwise the verdict is reached when every notified
 * subscriber has answered or disconnected, or when the timeout runs out, counting
 * only the answers received by then. No valid answer at all means the item is not
 * forwarded (`unanswered`).
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
  readonly timeoutMs: number;
  /** Called exactly once per begun key with its outcome. */
  readonly onDecision: (key: K, outcome: ValidationOutcome) => void;
  /** Clock and timers (a fake one in tests). */
  readonly scheduler?: Scheduler;
}

interface PendingValidation {
  readonly waiting: Set<SubscriberId>;
  notified: number;
  valid: number;
  invalid: number;
  timer: TimerHandle;
}

/** Tracks outstanding validations per item key. */
export class ValidationTracker<K> {
  private readonly pending = new Map<K, PendingValidation>();
  private readonly scheduler: Scheduler;

  /** Creates a tracker. */
  constructor(private readonly options: ValidationTrackerOptions<K>) {
    this.scheduler = options.scheduler ?? realScheduler;
  }

  /** Items waiting for a verdict. */
  get size(): number {
    return this.pending.size;
  }

  /** True while `key` waits for a verdict. */
  isPending(key: K): boolean {
    return this.pending.has(key);
  }

  /**
   * Starts waiting for `subscribers`' answers on `key`. With no subscribers the
   * verdict (`unanswered`) is delivered synchronously. Beginning a key that is
   * already pending is ignored.
   */
  begin(key: K, subscribers: Iterable<SubscriberId>): void {
    if (this.pending.has(key)) return;
    const waiting = new Set(subscribers);
    if (waiting.size === 0) {
      this.options.onDecision(key, outcome("unanswered", 0, 0, 0, false));
      return;
    }
    const entry: PendingValidation = {
      waiting,
      notified: waiting.size,
      valid: 0,
      invalid: 0,
      timer: this.scheduler.setTimeout(() => this.finish(key, true), this.options.timeoutMs),
    };
    this.pending.set(key, entry);
  }

  /** Records `subscriber`'s answer on `key`; answers not waited for are ignored. */
  answer(key: K, subscriber: SubscriberId, valid: boolean): void {
    const entry = this.pending.get(key);
    if (!entry || !entry.waiting.delete(subscriber)) return;
    if (valid) entry.valid++;
    else entry.invalid++;
    if (!valid || entry.waiting.size === 0) this.finish(key, false);
  }

  /** Stops waiting for `subscriber` on every key (its connection closed). */
  removeSubscriber(subscriber: SubscriberId): void {
    for (const [key, entry] of [...this.pending]) {
      if (entry.waiting.delete(subscriber) && entry.waiting.size === 0) this.finish(key, false);
    }
  }

  /** Cancels every pending validation without deciding; used on shutdown. */
  clear(): void {
    for (const entry of this.pending.values()) this.scheduler.clearTimeout(entry.timer);
    this.pending.clear();
  }

  private finish(key: K, timedOut: boolean): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    this.pending.delete(key);
    this.scheduler.clearTimeout(entry.timer);
    const unanswered = entry.notified - entry.valid - entry.invalid;
    const verdict: Verdict = entry.invalid > 0
      ? "invalid"
      : entry.valid > 0
      ? "valid"
      : "unanswered";
    this.options.onDecision(
      key,
      outcome(verdict, entry.valid, entry.invalid, unanswered, timedOut),
    );
  }
}

function outcome(
  verdict: Verdict,
  validCount: number,
  invalidCount: number,
  unansweredCount: number,
  timedOut: boolean,
): ValidationOutcome {
  return { verdict, validCount, invalidCount, unansweredCount, timedOut };
}
