import assert from "node:assert/strict";
import { type ValidationOutcome, ValidationTracker } from "../lib/protocol/validation_tracker.ts";
import { FakeScheduler } from "./support/fake_scheduler.ts";

const TIMEOUT_MS = 1000;

function setup(timeoutMs = TIMEOUT_MS) {
  const scheduler = new FakeScheduler();
  const decisions: [string, ValidationOutcome][] = [];
  const tracker = new ValidationTracker<string>({
    timeoutMs,
    scheduler,
    onDecision: (key, outcome) => decisions.push([key, outcome]),
  });
  return { scheduler, decisions, tracker };
}

function outcome(
  verdict: ValidationOutcome["verdict"],
  validCount: number,
  invalidCount: number,
  unansweredCount: number,
  timedOut: boolean,
): ValidationOutcome {
  return { verdict, validCount, invalidCount, unansweredCount, timedOut };
}

Deno.test("FakeScheduler runs due callbacks in time order, including ones they schedule", () => {
  const scheduler = new FakeScheduler(100);
  const log: string[] = [];
  scheduler.setTimeout(() => log.push(`b@${scheduler.now()}`), 20);
  scheduler.setTimeout(() => {
    log.push(`a@${scheduler.now()}`);
    scheduler.setTimeout(() => log.push(`c@${scheduler.now()}`), 5);
    scheduler.setTimeout(() => log.push(`late@${scheduler.now()}`), 50);
  }, 10);
  scheduler.setTimeout(() => log.push(`b2@${scheduler.now()}`), 20);
  const cancelled = scheduler.setTimeout(() => log.push("cancelled"), 1);
  scheduler.clearTimeout(cancelled);
  assert.equal(scheduler.pendingCount, 3);
  scheduler.advance(19);
  assert.deepEqual(log, ["a@110", "c@115"]);
  assert.equal(scheduler.now(), 119);
  scheduler.advance(1);
  assert.deepEqual(log, ["a@110", "c@115", "b@120", "b2@120"]);
  assert.equal(scheduler.pendingCount, 1);
  scheduler.advance(100);
  assert.deepEqual(log.at(-1), "late@160");
  assert.equal(scheduler.now(), 220);
  assert.equal(scheduler.pendingCount, 0);
});

Deno.test("FakeScheduler stops a runaway zero-delay timer loop", () => {
  const scheduler = new FakeScheduler();
  const loop = () => {
    scheduler.setTimeout(loop, 0);
  };
  scheduler.setTimeout(loop, 0);
  assert.throws(() => scheduler.advance(1), /callbacks in one advance/);
});

Deno.test("one subscriber answering valid decides valid at once", () => {
  const { scheduler, decisions, tracker } = setup();
  tracker.begin("item", [1]);
  assert.ok(tracker.isPending("item"));
  assert.equal(tracker.size, 1);
  assert.equal(scheduler.pendingCount, 1);
  assert.deepEqual(decisions, []);
  tracker.answer("item", 1, true);
  assert.deepEqual(decisions, [["item", outcome("valid", 1, 0, 0, false)]]);
  assert.ok(!tracker.isPending("item"));
  assert.equal(tracker.size, 0);
  assert.equal(scheduler.pendingCount, 0, "the timer is cancelled");
  scheduler.advance(10 * TIMEOUT_MS);
  assert.equal(decisions.length, 1, "no second decision at the timeout");
});

Deno.test("all subscribers answering valid decides valid when the last one answers", () => {
  const { decisions, tracker } = setup();
  tracker.begin("item", [1, 2, 3]);
  tracker.answer("item", 2, true);
  tracker.answer("item", 3, true);
  assert.deepEqual(decisions, []);
  assert.ok(tracker.isPending("item"));
  tracker.answer("item", 1, true);
  assert.deepEqual(decisions, [["item", outcome("valid", 3, 0, 0, false)]]);
});

Deno.test("a single invalid answer decides invalid at once, even after valid ones", () => {
  const { scheduler, decisions, tracker } = setup();
  tracker.begin("item", [1, 2, 3]);
  tracker.answer("item", 1, true);
  tracker.answer("item", 2, false);
  assert.deepEqual(decisions, [["item", outcome("invalid", 1, 1, 1, false)]]);
  assert.equal(scheduler.pendingCount, 0);
  tracker.answer("item", 3, true);
  scheduler.advance(TIMEOUT_MS);
  assert.equal(decisions.length, 1, "later answers and the timeout change nothing");
});

Deno.test("an invalid first answer decides invalid without waiting for the others", () => {
  const { decisions, tracker } = setup();
  tracker.begin("item", [1, 2]);
  tracker.answer("item", 2, false);
  assert.deepEqual(decisions, [["item", outcome("invalid", 0, 1, 1, false)]]);
});

Deno.test("the timeout decides with the partial answers received", () => {
  const { scheduler, decisions, tracker } = setup();
  tracker.begin("item", [1, 2, 3]);
  tracker.answer("item", 1, true);
  scheduler.advance(TIMEOUT_MS - 1);
  assert.deepEqual(decisions, [], "not before the timeout");
  scheduler.advance(1);
  assert.deepEqual(decisions, [["item", outcome("valid", 1, 0, 2, true)]]);
  assert.ok(!tracker.isPending("item"));
  tracker.answer("item", 2, false);
  assert.equal(decisions.length, 1, "a late answer is ignored");
});

Deno.test("the timeout with no answers decides unanswered", () => {
  const { scheduler, decisions, tracker } = setup(250);
  tracker.begin("item", [1, 2]);
  scheduler.advance(249);
  assert.deepEqual(decisions, []);
  scheduler.advance(1);
  assert.deepEqual(decisions, [["item", outcome("unanswered", 0, 0, 2, true)]]);
  assert.equal(tracker.size, 0);
});

Deno.test("each key has its own timeout", () => {
  const { scheduler, decisions, tracker } = setup();
  tracker.begin("a", [1]);
  scheduler.advance(400);
  tracker.begin("b", [1]);
  scheduler.advance(600);
  assert.deepEqual(decisions, [["a", outcome("unanswered", 0, 0, 1, true)]]);
  assert.ok(tracker.isPending("b"));
  scheduler.advance(400);
  assert.deepEqual(decisions.map(([key]) => key), ["a", "b"]);
});

Deno.test("no subscribers decides unanswered synchronously, without a timer", () => {
  const { scheduler, decisions, tracker } = setup();
  tracker.begin("item", []);
  assert.deepEqual(decisions, [["item", outcome("unanswered", 0, 0, 0, false)]]);
  assert.ok(!tracker.isPending("item"));
  assert.equal(tracker.size, 0);
  assert.equal(scheduler.pendingCount, 0);
  tracker.begin("other", new Set<number>());
  assert.equal(decisions.length, 2);
});

Deno.test("removing the last waited-for subscriber completes the validation", () => {
  const { scheduler, decisions, tracker } = setup();
  tracker.begin("item", [1, 2]);
  tracker.answer("item", 1, true);
  tracker.removeSubscriber(2);
  assert.deepEqual(decisions, [["item", outcome("valid", 1, 0, 1, false)]]);
  assert.equal(scheduler.pendingCount, 0);
});

Deno.test("removing the only subscriber before it answers decides unanswered", () => {
  const { decisions, tracker } = setup();
  tracker.begin("item", [7]);
  tracker.removeSubscriber(7);
  assert.deepEqual(decisions, [["item", outcome("unanswered", 0, 0, 1, false)]]);
});

Deno.test("removing a subscriber affects every key it was notified of, and only those", () => {
  const { decisions, tracker } = setup();
  tracker.begin("a", [1]);
  tracker.begin("b", [1, 2]);
  tracker.begin("c", [2]);
  tracker.removeSubscriber(1);
  assert.deepEqual(decisions, [["a", outcome("unanswered", 0, 0, 1, false)]]);
  assert.ok(tracker.isPending("b"), "b still waits for subscriber 2");
  assert.ok(tracker.isPending("c"));
  tracker.answer("b", 2, true);
  assert.deepEqual(decisions.at(-1), ["b", outcome("valid", 1, 0, 1, false)]);
  tracker.removeSubscriber(99);
  assert.ok(tracker.isPending("c"), "unknown subscribers change nothing");
});

Deno.test("removing a subscriber that already answered changes nothing", () => {
  const { decisions, tracker } = setup();
  tracker.begin("item", [1, 2]);
  tracker.answer("item", 1, true);
  tracker.removeSubscriber(1);
  assert.deepEqual(decisions, []);
  assert.ok(tracker.isPending("item"));
  tracker.answer("item", 2, true);
  assert.deepEqual(decisions, [["item", outcome("valid", 2, 0, 0, false)]]);
});

Deno.test("duplicate answers and answers from others are ignored", () => {
  const { decisions, tracker } = setup();
  tracker.begin("item", [1, 2]);
  tracker.answer("item", 1, true);
  tracker.answer("item", 1, true);
  tracker.answer("item", 1, false);
  tracker.answer("item", 3, false);
  tracker.answer("unknown", 2, false);
  assert.deepEqual(decisions, [], "none of these decides");
  assert.ok(tracker.isPending("item"));
  tracker.answer("item", 2, true);
  assert.deepEqual(decisions, [["item", outcome("valid", 2, 0, 0, false)]]);
});

Deno.test("begin on a pending key is ignored and does not restart the timer", () => {
  const { scheduler, decisions, tracker } = setup();
  tracker.begin("item", [1]);
  scheduler.advance(600);
  tracker.begin("item", [2, 3]);
  assert.equal(scheduler.pendingCount, 1);
  tracker.answer("item", 2, false);
  assert.deepEqual(decisions, [], "subscriber 2 was not added");
  scheduler.advance(400);
  assert.deepEqual(decisions, [["item", outcome("unanswered", 0, 0, 1, true)]]);
});

Deno.test("a key can be validated again after its decision", () => {
  const { decisions, tracker } = setup();
  tracker.begin("item", [1]);
  tracker.answer("item", 1, false);
  tracker.begin("item", [1]);
  assert.ok(tracker.isPending("item"));
  tracker.answer("item", 1, true);
  assert.deepEqual(decisions.map(([, o]) => o.verdict), ["invalid", "valid"]);
});

Deno.test("clear() cancels every timer without deciding", () => {
  const { scheduler, decisions, tracker } = setup();
  tracker.begin("a", [1]);
  tracker.begin("b", [1, 2]);
  assert.equal(scheduler.pendingCount, 2);
  tracker.clear();
  assert.equal(scheduler.pendingCount, 0);
  assert.equal(tracker.size, 0);
  assert.ok(!tracker.isPending("a"));
  scheduler.advance(10 * TIMEOUT_MS);
  tracker.answer("a", 1, true);
  tracker.removeSubscriber(2);
  assert.deepEqual(decisions, []);
});

Deno.test("onDecision may begin the same key again from inside the callback", () => {
  const scheduler = new FakeScheduler();
  const verdicts: string[] = [];
  const tracker: ValidationTracker<string> = new ValidationTracker<string>({
    timeoutMs: 100,
    scheduler,
    onDecision: (key, result) => {
      verdicts.push(result.verdict);
      if (verdicts.length === 1) tracker.begin(key, [5]);
    },
  });
  tracker.begin("item", [4]);
  tracker.answer("item", 4, true);
  assert.ok(tracker.isPending("item"));
  scheduler.advance(100);
  assert.deepEqual(verdicts, ["valid", "unanswered"]);
  assert.equal(scheduler.pendingCount, 0);
});

// ---- unresponsive subscribers (muting) ------------------------------------------------

function mutingSetup(muteAfterTimeouts?: number) {
  const scheduler = new FakeScheduler();
  const decisions: [string, ValidationOutcome][] = [];
  const muted: number[] = [];
  const tracker = new ValidationTracker<string>({
    timeoutMs: TIMEOUT_MS,
    muteAfterTimeouts,
    scheduler,
    onDecision: (key, result) => decisions.push([key, result]),
    onMuted: (subscriber) => muted.push(subscriber),
  });
  /** Lets `subscriber` time out on `count` validations in a row. */
  const timeOut = (subscriber: number, count: number, prefix = "t") => {
    for (let i = 0; i < count; i++) {
      tracker.begin(`${prefix}${i}`, [subscriber]);
      scheduler.advance(TIMEOUT_MS);
    }
  };
  return { scheduler, decisions, muted, tracker, timeOut };
}

Deno.test("a subscriber is muted after muteAfterTimeouts timeouts in a row (3 by default)", () => {
  const { muted, tracker, timeOut } = mutingSetup();
  timeOut(1, 2);
  assert.equal(tracker.isMuted(1), false);
  assert.deepEqual(muted, []);
  timeOut(1, 1, "third");
  assert.ok(tracker.isMuted(1));
  assert.equal(tracker.mutedCount, 1);
  assert.deepEqual(muted, [1], "reported once");
  assert.equal(tracker.timedOut, 3);
});

Deno.test("muteAfterTimeouts is configurable", () => {
  const one = mutingSetup(1);
  one.timeOut(4, 1);
  assert.ok(one.tracker.isMuted(4));
  const five = mutingSetup(5);
  five.timeOut(4, 4);
  assert.equal(five.tracker.isMuted(4), false);
  five.timeOut(4, 1, "last");
  assert.ok(five.tracker.isMuted(4));
});

Deno.test("an answer in between resets the count: only timeouts in a row mute", () => {
  const { tracker, timeOut, muted } = mutingSetup();
  timeOut(1, 2);
  tracker.begin("answered", [1]);
  tracker.answer("answered", 1, true);
  timeOut(1, 2, "again");
  assert.equal(tracker.isMuted(1), false);
  assert.deepEqual(muted, []);
});

Deno.test("only subscribers still waited for at the timeout are counted", () => {
  const { scheduler, tracker } = mutingSetup(1);
  tracker.begin("item", [1, 2]);
  tracker.answer("item", 1, true);
  scheduler.advance(TIMEOUT_MS);
  assert.equal(tracker.isMuted(1), false, "1 answered");
  assert.ok(tracker.isMuted(2), "2 let it time out");
});

Deno.test("a muted subscriber is notified but not waited for", () => {
  const { scheduler, decisions, tracker, timeOut } = mutingSetup();
  timeOut(1, 3);
  decisions.length = 0;
  tracker.begin("item", [1, 2]);
  tracker.answer("item", 2, true);
  assert.deepEqual(decisions, [["item", outcome("valid", 1, 0, 1, false)]], "no wait for 1");
  assert.equal(scheduler.pendingCount, 0);
});

Deno.test("a muted subscriber's answers still count while the verdict is open", () => {
  const { decisions, tracker, timeOut } = mutingSetup();
  timeOut(1, 3);
  decisions.length = 0;
  tracker.begin("bad", [1, 2]);
  tracker.answer("bad", 1, false);
  assert.deepEqual(decisions, [["bad", outcome("invalid", 0, 1, 1, false)]], "invalid decides");

  timeOut(1, 3, "again"); // the answer above un-muted it; mute it once more
  assert.ok(tracker.isMuted(1));
  decisions.length = 0;
  tracker.begin("good", [1, 2]);
  tracker.answer("good", 1, true);
  assert.deepEqual(decisions, [], "2 is still waited for");
  tracker.answer("good", 2, true);
  assert.deepEqual(decisions, [["good", outcome("valid", 2, 0, 0, false)]], "both counted");
});

Deno.test("any answer un-mutes: the subscriber is waited for again", () => {
  const { scheduler, decisions, tracker, timeOut } = mutingSetup();
  timeOut(1, 3);
  assert.ok(tracker.isMuted(1));
  // A late answer to a validation already decided still shows it is alive.
  tracker.answer("t0", 1, true);
  assert.equal(tracker.isMuted(1), false);
  assert.equal(tracker.mutedCount, 0);
  decisions.length = 0;
  tracker.begin("item", [1]);
  assert.deepEqual(decisions, [], "waited for again");
  assert.equal(scheduler.pendingCount, 1);
  tracker.answer("item", 1, true);
  assert.deepEqual(decisions, [["item", outcome("valid", 1, 0, 0, false)]]);
});

Deno.test("when every subscriber is muted, the verdict is unanswered at once", () => {
  const { scheduler, decisions, tracker, timeOut } = mutingSetup();
  timeOut(1, 3, "a");
  timeOut(2, 3, "b");
  decisions.length = 0;
  tracker.begin("item", [1, 2]);
  assert.deepEqual(decisions, [["item", outcome("unanswered", 0, 0, 2, false)]]);
  assert.equal(tracker.isPending("item"), false);
  assert.equal(scheduler.pendingCount, 0, "no timer");
  assert.equal(tracker.timedOut, 6, "not a timeout");
  tracker.answer("item", 1, true);
  assert.equal(decisions.length, 1, "too late: decided already");
});

Deno.test("a muted subscriber is not reported again while others time out beside it", () => {
  const { scheduler, tracker, timeOut, muted } = mutingSetup();
  timeOut(1, 3);
  for (let i = 0; i < 3; i++) {
    tracker.begin(`both${i}`, [1, 2]);
    scheduler.advance(TIMEOUT_MS);
  }
  assert.deepEqual(muted, [1, 2], "2 is muted after its third timeout, 1 not reported again");
  assert.equal(tracker.mutedCount, 2);
});

Deno.test("removeSubscriber forgets its timeouts and its muting", () => {
  const { tracker, timeOut, muted } = mutingSetup();
  timeOut(1, 3);
  tracker.removeSubscriber(1);
  assert.equal(tracker.isMuted(1), false);
  assert.equal(tracker.mutedCount, 0);
  timeOut(1, 2, "fresh"); // the identifier, if reused, starts counting afresh
  assert.equal(tracker.isMuted(1), false);
  assert.deepEqual(muted, [1]);
});

Deno.test("setTimeout applies to validations begun afterwards", () => {
  const { scheduler, decisions, tracker } = setup(1_000);
  tracker.begin("old", [1]);
  tracker.setTimeout(100);
  tracker.begin("new", [1]);
  scheduler.advance(100);
  assert.deepEqual(decisions.map(([key]) => key), ["new"]);
  scheduler.advance(900);
  assert.deepEqual(decisions.map(([key]) => key), ["new", "old"]);
});
