import assert from "node:assert/strict";
import { DEFAULT_SILENCE_WATCH_OPTIONS, SilenceWatch } from "../lib/protocol/silence_watch.ts";

/** Items at `times` (ms), with three alarms per silence (an option, off by default). */
function fed(times: number[], maxAlarms = 3): SilenceWatch {
  const watch = new SilenceWatch({ ...DEFAULT_SILENCE_WATCH_OPTIONS, maxAlarms });
  for (const t of times) watch.itemArrived(t);
  return watch;
}

Deno.test("silence watch: no alarm before two items have shown the usual gap", () => {
  const watch = new SilenceWatch({ ...DEFAULT_SILENCE_WATCH_OPTIONS, maxAlarms: 3 });
  assert.equal(watch.check(1_000_000), false, "no item yet");
  watch.itemArrived(0);
  assert.equal(watch.nextAlarmAt, undefined);
  assert.equal(watch.check(1_000_000), false, "one item: no gap known");
});

Deno.test("silence watch: the first alarm after the floor, then after 2 and 4 times as long, three per silence", () => {
  const watch = fed([0, 1_000, 2_000, 3_000]); // usual gap 1 s: 8 s, under the 10 s floor
  assert.equal(watch.usualGap, 1_000);
  assert.equal(watch.check(12_999), false);
  assert.equal(watch.check(13_000), true, "10 s after the last item");
  assert.equal(watch.lastLongSilence, 13_000);
  assert.equal(watch.check(13_001), false, "counted: the next waits 20 s more");
  assert.equal(watch.check(32_999), false);
  assert.equal(watch.check(33_000), true, "30 s after the last item");
  assert.equal(watch.check(73_000), true, "70 s after the last item");
  assert.equal(watch.nextAlarmAt, undefined, "three alarms: a lull costs no more");
  assert.equal(watch.check(10_000_000), false);
});

Deno.test("silence watch: the next item ends the silence; the alarm waits for 4 usual gaps when that is longer than the floor", () => {
  const watch = fed([0, 5_000, 10_000]); // usual gap 5 s: 20 s
  assert.equal(watch.nextAlarmAt, 30_000);
  assert.equal(watch.check(29_999), false);
  assert.equal(watch.check(30_000), true);
  watch.itemArrived(55_000); // the gap of 45 s moves the average by a quarter: 3.75 + 11.25 = 15 s
  assert.equal(watch.usualGap, 15_000);
  assert.equal(watch.nextAlarmAt, 55_000 + 60_000, "a fresh silence, a longer usual gap");
  assert.equal(watch.lastLongSilence, 30_000, "the last alarm is remembered");
});

Deno.test("silence watch: without alarms, a silence as long as the first alarm's wait voids the relays before it once it ends", () => {
  const short = fed([0, 1_000, 2_000, 3_000], 0); // usual gap 1 s: the wait is the 10 s floor
  assert.equal(short.check(100_000), false, "no alarm");
  short.itemArrived(12_999); // 9.999 s: shorter than the wait
  assert.equal(short.lastLongSilence, -Infinity);
  const long = fed([0, 1_000, 2_000, 3_000], 0);
  long.itemArrived(20_000); // 17 s
  assert.equal(long.lastLongSilence, 13_000, "the moment the silence reached the wait");
});

Deno.test("silence watch: past relays are suspect after 3 usual gaps, at least 5 s, before any alarm", () => {
  const none = new SilenceWatch();
  none.itemArrived(0);
  assert.equal(none.suspect(1_000_000), false, "one item: no gap known");
  const fast = fed([0, 1_000, 2_000]); // 3 s: under the 5 s floor
  assert.equal(fast.suspect(6_999), false);
  assert.equal(fast.suspect(7_000), true);
  assert.equal(fast.lastLongSilence, -Infinity, "suspicion raises no alarm");
  const slow = fed([0, 5_000, 10_000]); // 15 s
  assert.equal(slow.suspect(24_999), false);
  assert.equal(slow.suspect(25_000), true);
  slow.itemArrived(26_000);
  assert.equal(slow.suspect(26_000), false, "the next item ends it");
});

Deno.test("silence watch: suspectSince is when the items stopped, while the silence is suspect", () => {
  const watch = fed([0, 1_000, 2_000]);
  assert.equal(watch.suspectSince(6_999), undefined, "not suspect yet");
  assert.equal(watch.suspectSince(7_000), 2_000, "the last item");
  assert.equal(watch.suspectSince(60_000), 2_000);
  watch.itemArrived(61_000);
  assert.equal(watch.suspectSince(61_000), undefined, "the next item ends it");
  assert.equal(new SilenceWatch().suspectSince(1_000_000), undefined, "no item yet");
});

Deno.test("silence watch: the defaults are the documented ones", () => {
  assert.deepEqual(DEFAULT_SILENCE_WATCH_OPTIONS, {
    floorMs: 10_000,
    factor: 4,
    maxAlarms: 0,
    gapWeight: 0.25,
    suspectFactor: 3,
    suspectFloorMs: 5_000,
    feelerIntervalMs: 2_000,
    feelersPerStep: 2,
  });
});

Deno.test("silence watch: feelers from the first alarm's wait, every 2 s, the interval doubling after every 2", () => {
  const watch = fed([0, 1_000, 2_000]); // suspect from 7 s; the first alarm's wait ends at 12 s
  assert.equal(watch.feelerDue(11_999), false, "suspect, but not yet the first alarm's wait");
  const due: number[] = [];
  for (let t = 12_000; t <= 75_000; t += 100) if (watch.feelerDue(t)) due.push(t - 12_000);
  assert.deepEqual(due, [0, 2_000, 4_000, 8_000, 12_000, 20_000, 28_000, 44_000, 60_000]);
  watch.itemArrived(75_000);
  assert.equal(watch.feelerDue(75_000), false, "the next item ends the silence");
  // The gap of 73 s lengthened the usual gap to 19 s: the first alarm's wait is 76 s.
  assert.equal(watch.feelerDue(150_999), false);
  assert.equal(watch.feelerDue(151_000), true, "a new silence starts again at 2 s");
  assert.equal(watch.feelerDue(152_999), false);
  assert.equal(watch.feelerDue(153_000), true);
  const off = new SilenceWatch({ ...DEFAULT_SILENCE_WATCH_OPTIONS, feelerIntervalMs: 0 });
  for (const t of [0, 1_000, 2_000]) off.itemArrived(t);
  assert.equal(off.feelerDue(60_000), false, "0: no feelers");
});
