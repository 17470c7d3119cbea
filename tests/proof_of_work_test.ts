/** Identity proof-of-work: binding to identity and day, freshness window, solvers. */

import assert from "node:assert/strict";
import {
  isFreshEpoch,
  leadingZeroBits,
  POW_EPOCH_SECONDS,
  powEpoch,
  solveProofOfWork,
  solveProofOfWorkInSlices,
  verifyProofOfWork,
} from "../lib/protocol/proof_of_work.ts";

const IDENTITY = new Uint8Array(32).map((_, i) => i);
const OTHER = new Uint8Array(32).map((_, i) => 255 - i);

Deno.test("leadingZeroBits counts across byte boundaries", () => {
  assert.equal(leadingZeroBits(new Uint8Array([0x80])), 0);
  assert.equal(leadingZeroBits(new Uint8Array([0x01])), 7);
  assert.equal(leadingZeroBits(new Uint8Array([0, 0, 0x20])), 18);
  assert.equal(leadingZeroBits(new Uint8Array([0, 0])), 16);
});

Deno.test("a solved nonce verifies for its identity and epoch only", () => {
  const epoch = 20_000;
  const nonce = solveProofOfWork(IDENTITY, epoch, 12);
  assert.ok(verifyProofOfWork(IDENTITY, epoch, nonce, 12));
  // The same nonce for another identity or day is a fresh 12-bit lottery (1 in 4096);
  // across 8 neighbouring epochs and the other identity it must fail somewhere.
  const elsewhere = [
    verifyProofOfWork(OTHER, epoch, nonce, 12),
    ...Array.from({ length: 8 }, (_, i) => verifyProofOfWork(IDENTITY, epoch + 1 + i, nonce, 12)),
  ];
  assert.ok(elsewhere.some((ok) => !ok));
  // Difficulty 0 accepts anything.
  assert.ok(verifyProofOfWork(OTHER, 0, 12345n, 0));
  assert.equal(solveProofOfWork(IDENTITY, epoch, 0), 0n);
});

Deno.test("the solver gives up after maxAttempts", () => {
  assert.throws(() => solveProofOfWork(IDENTITY, 1, 30, 10), RangeError);
});

Deno.test("the sliced solver finds the same nonce and can be aborted", async () => {
  const epoch = 20_001;
  const sync = solveProofOfWork(IDENTITY, epoch, 10);
  assert.equal(await solveProofOfWorkInSlices(IDENTITY, epoch, 10, { sliceAttempts: 64 }), sync);
  const abort = new AbortController();
  abort.abort(new Error("stop"));
  await assert.rejects(
    solveProofOfWorkInSlices(IDENTITY, epoch, 30, { signal: abort.signal }),
    /stop/,
  );
});

Deno.test("epochs are days; a proof is fresh within one day either way", () => {
  const day = POW_EPOCH_SECONDS * 1000;
  const now = 20_417 * day + 5_000;
  assert.equal(powEpoch(now), 20_417);
  assert.equal(powEpoch(now + day), 20_418);
  assert.ok(isFreshEpoch(20_417, now));
  assert.ok(isFreshEpoch(20_416, now));
  assert.ok(isFreshEpoch(20_418, now));
  assert.ok(!isFreshEpoch(20_415, now));
  assert.ok(!isFreshEpoch(20_419, now));
});
