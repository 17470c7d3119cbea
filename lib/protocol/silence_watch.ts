/**
 * The silence watch: notices when items stop reaching a node that used to
 * get them, which is how a node whose peers all turned into silent black
 * holes looks from the inside.
 *
 * A black hole that drops every item and advertises nothing breaks no
 * promise (no IHAVE goes unanswered), and a peer that brought items before
 * it turned keeps the score it earned, so no score or offence gives it
 * away. Only the flow stops. A node learns the usual gap between the items
 * it gets first (a moving average); when no item has come for `factor`
 * times that gap (at least `floorMs`) it raises an alarm, and then again
 * after twice as long, four times as long, up to `maxAlarms` alarms per
 * silence. The next item ends the silence. Before the first alarm, after
 * `suspectFactor` usual gaps (at least `suspectFloorMs`), the silence is
 * already long enough that what the peers relayed before it no longer shows
 * that they still relay ({@link SilenceWatch.suspect}). From the first
 * alarm's wait on, **feelers** are due: short sessions beyond `degree` that
 * test known peers without giving up a slot, every 2 s at first, less often
 * as the silence lasts ({@link SilenceWatch.feelerDue}; the connection
 * manager dials them).
 *
 * The cost falls on quiet networks: a lull looks like an eclipse for the
 * first alarms, so each silence costs at most `maxAlarms` alarms, and the
 * threshold grows with the gap a network usually has (a network with an
 * item a minute raises its first alarm after minutes, not seconds). Alarms
 * are off by default (`maxAlarms` 0): feelers find honest peers without
 * giving up a slot first. A silence as long as the first alarm's wait still
 * voids the relays before it ({@link SilenceWatch.lastLongSilence}).
 *
 * Pure state: time is passed in.
 *
 * @module
 */

/** Tuning of a {@link SilenceWatch}. */
export interface SilenceWatchOptions {
  /** Shortest silence that raises an alarm (ms). */
  readonly floorMs: number;
  /** An alarm is raised after this many usual gaps without an item. */
  readonly factor: number;
  /** Alarms per silence at most (each after twice the wait of the one before). */
  readonly maxAlarms: number;
  /** Weight of the newest gap in the moving average (0 < weight <= 1). */
  readonly gapWeight: number;
  /**
   * A silence of this many usual gaps (at least `suspectFloorMs`) already
   * makes the peers' past relays suspect ({@link SilenceWatch.suspect}),
   * before any alarm.
   */
  readonly suspectFactor: number;
  /** Shortest silence that makes past relays suspect (ms). */
  readonly suspectFloorMs: number;
  /**
   * From the first alarm's wait on, a **feeler** (a short extra session to
   * a peer outside the suspect ones, {@link SilenceWatch.feelerDue}) is due
   * every `feelerIntervalMs`, the interval doubling after every
   * `feelersPerStep` feelers of one silence; 0: no feelers.
   */
  readonly feelerIntervalMs: number;
  /** Feelers at one interval before it doubles. */
  readonly feelersPerStep: number;
}

/**
 * Defaults: feelers from 4 usual gaps on (at least 10 s), no alarms (an
 * option: feelers do their work, and in a simulated lull or silent covert
 * flash three alarms per silence only churned honest sessions,
 * docs/SIMULATION.md "Round of feelers on trial"); past relays suspect
 * after 3 usual gaps, at least 5 s.
 */
export const DEFAULT_SILENCE_WATCH_OPTIONS: SilenceWatchOptions = {
  floorMs: 10_000,
  factor: 4,
  maxAlarms: 0,
  gapWeight: 0.25,
  suspectFactor: 3,
  suspectFloorMs: 5_000,
  feelerIntervalMs: 2_000,
  feelersPerStep: 2,
};

/** Watches the gaps between items a node gets first; see the module documentation. */
export class SilenceWatch {
  private lastItemAt: number | undefined;
  private usualGapMs: number | undefined;
  private alarmsThisSilence = 0;
  private lastLongSilenceAt = -Infinity;
  private feelersThisSilence = 0;
  private nextFeelerAt = -Infinity;

  /** Creates a watch with `options` (the defaults unless given). */
  constructor(private readonly options: SilenceWatchOptions = DEFAULT_SILENCE_WATCH_OPTIONS) {}

  /** A valid item reached this node first (not a copy): the silence, if any, is over. */
  itemArrived(now: number): void {
    if (this.lastItemAt !== undefined) {
      // A silence that lasted the first alarm's wait voids the relays before
      // it, whether alarms are on or not ({@link lastLongSilence}).
      const wait = this.waitMs(this.options.factor, this.options.floorMs);
      if (wait !== undefined && now - this.lastItemAt >= wait) {
        this.lastLongSilenceAt = Math.max(this.lastLongSilenceAt, this.lastItemAt + wait);
      }
      const gap = Math.max(0, now - this.lastItemAt);
      const weight = this.options.gapWeight;
      this.usualGapMs = this.usualGapMs === undefined
        ? gap
        : (1 - weight) * this.usualGapMs + weight * gap;
    }
    this.lastItemAt = now;
    this.alarmsThisSilence = 0;
    this.feelersThisSilence = 0;
    this.nextFeelerAt = -Infinity;
  }

  /**
   * True when a feeler is due now (it is counted): from the first alarm's
   * wait on (`factor` usual gaps, at least `floorMs`), one every
   * `feelerIntervalMs`, the interval doubling after every `feelersPerStep`
   * feelers of this silence (in a lull: at 0, 2, 4, 8, 12, 20, 28, 44 and
   * 60 s after that wait, ...: nine in its first minute, two more per
   * doubling after it). Not from the suspicion's shorter wait: in a
   * simulated cold boot, feelers of nodes whose items had stopped for 5 s
   * cost the first minute 0.2 points on average (docs/SIMULATION.md,
   * "Round of feelers").
   */
  feelerDue(now: number): boolean {
    const interval = this.options.feelerIntervalMs;
    if (interval <= 0 || now < this.nextFeelerAt) return false;
    if (!this.lasted(now, this.options.factor, this.options.floorMs)) return false;
    const step = Math.floor(this.feelersThisSilence / Math.max(1, this.options.feelersPerStep));
    this.feelersThisSilence++;
    this.nextFeelerAt = now + interval * 2 ** step;
    return true;
  }

  /**
   * True when an alarm is due now (it is counted: the next one waits twice
   * as long). Never before two items have shown what the usual gap is.
   */
  check(now: number): boolean {
    const due = this.nextAlarmAt;
    if (due === undefined || now < due) return false;
    this.alarmsThisSilence++;
    this.lastLongSilenceAt = now;
    return true;
  }

  /** When the next alarm is due; undefined when none will be in this silence. */
  get nextAlarmAt(): number | undefined {
    const first = this.waitMs(this.options.factor, this.options.floorMs);
    if (this.lastItemAt === undefined || first === undefined) return undefined;
    if (this.alarmsThisSilence >= this.options.maxAlarms) return undefined;
    // Alarms at 1, 3, 7, ... first waits: each waits twice as long as the one before.
    return this.lastItemAt + first * (2 ** (this.alarmsThisSilence + 1) - 1);
  }

  /**
   * True while the silence has lasted `suspectFactor` usual gaps (at least
   * `suspectFloorMs`): what the peers relayed before it no longer shows
   * that they still relay.
   */
  suspect(now: number): boolean {
    return this.lasted(now, this.options.suspectFactor, this.options.suspectFloorMs);
  }

  /**
   * When the items stopped, while the silence is {@link suspect}; undefined
   * otherwise. The sessions already open then are the ones the silence
   * accuses.
   */
  suspectSince(now: number): number | undefined {
    return this.suspect(now) ? this.lastItemAt : undefined;
  }

  /** `factor` usual gaps, at least `floorMs`; undefined before two items. */
  private waitMs(factor: number, floorMs: number): number | undefined {
    return this.usualGapMs === undefined ? undefined : Math.max(floorMs, factor * this.usualGapMs);
  }

  /** Whether the silence has lasted {@link waitMs} by `now`. */
  private lasted(now: number, factor: number, floorMs: number): boolean {
    const wait = this.waitMs(factor, floorMs);
    return this.lastItemAt !== undefined && wait !== undefined && now - this.lastItemAt >= wait;
  }

  /**
   * When a silence last reached the first alarm's wait (once it has ended),
   * or its last alarm: relays before it no longer show that a peer still
   * relays (-Infinity: never).
   */
  get lastLongSilence(): number {
    return this.lastLongSilenceAt;
  }

  /** The usual gap between items (ms), once two items have come. */
  get usualGap(): number | undefined {
    return this.usualGapMs;
  }
}
