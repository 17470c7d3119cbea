import assert from "node:assert/strict";
import { DEFAULT_SILENCE_WATCH_OPTIONS, SilenceWatch } from "../lib/protocol/silence_watch.ts";

/** Items at `times` (ms). */
function fed(times: number[]): SilenceWatch {
  const watch = new SilenceWatch();
  for (const t of times) watch.itemArrived(t);
  return watch;
}

Deno.test("silence watch: no alarm before two items have shown the usual gap", () => {
  const watch = new SilenceWatch();
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
  assert.equal(watch.lastAlarm, 13_000);
  assert.equal(watch.check(13_001), false, "counted: the next waits 20 s more");
  assert.equal(watch.check(32_999), false);
  assert.equal(watch.check(33_000), true, "30 s after the last item");
  assert.equal(watch.check(73_000), true, "70 s after the last item");
  assert.equal(watch.nextAlarmAt, undefined, "three alarms: a lull costs no more");
  assert.equal(watch.check(10_000_000), false);
});

Deno.test("silence watch: the next item ends the silence; the alarm waits for 8 usual gaps when that is longer than the floor", () => {
  const watch = fed([0, 5_000, 10_000]); // usual gap 5 s: 40 s
  assert.equal(watch.nextAlarmAt, 50_000);
  assert.equal(watch.check(49_999), false);
  assert.equal(watch.check(50_000), true);
  watch.itemArrived(55_000); // the gap of 45 s moves the average by a quarter: 5 + 10 = 15 s
  assert.equal(watch.usualGap, 15_000);
  assert.equal(watch.nextAlarmAt, 55_000 + 120_000, "a fresh silence, a longer usual gap");
  assert.equal(watch.lastAlarm, 50_000, "the last alarm is remembered");
});

Deno.test("silence watch: the defaults are the documented ones", () => {
  assert.deepEqual(DEFAULT_SILENCE_WATCH_OPTIONS, {
    floorMs: 10_000,
    factor: 8,
    maxAlarms: 3,
    gapWeight: 0.25,
  });
});
