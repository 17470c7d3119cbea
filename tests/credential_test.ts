/**
 * Session credentials: issuing, renewal, verification, the cache and the pace
 * of new credentials per identity (time injected).
 */

import assert from "node:assert/strict";
import {
  CREDENTIAL_LIFETIME_SECONDS,
  CREDENTIAL_RENEW_SECONDS,
  CredentialIssuer,
  credentialStats,
  issueCredential,
  NEW_CREDENTIAL_BURST,
  NEW_CREDENTIAL_RATE_PER_SECOND,
  verifyCredential,
} from "../lib/transport/credential.ts";
import { TEST_KEY_BITS, testHostKey } from "./support/nodes.ts";

Deno.test("a credential verifies against its host key once; repeats come from the cache", async () => {
  const hostKey = await testHostKey();
  const credential = await issueCredential(hostKey);
  const rsaBefore = credentialStats.rsaVerifications;
  assert.equal(await verifyCredential(hostKey.publicKeyDer, credential, TEST_KEY_BITS), "valid");
  for (let i = 0; i < 5; i++) {
    assert.equal(await verifyCredential(hostKey.publicKeyDer, credential, TEST_KEY_BITS), "valid");
  }
  assert.equal(credentialStats.rsaVerifications - rsaBefore, 1);
});

Deno.test("a credential signed by another key, or with another expiry, is invalid", async () => {
  const hostKey = await testHostKey();
  const other = await testHostKey();
  const foreign = await issueCredential(other);
  assert.equal(await verifyCredential(hostKey.publicKeyDer, foreign, TEST_KEY_BITS), "invalid");
  const own = await issueCredential(hostKey);
  const extended = { ...own, expiry: own.expiry + 1 };
  assert.equal(await verifyCredential(hostKey.publicKeyDer, extended, TEST_KEY_BITS), "invalid");
});

Deno.test("new credentials of one identity: a burst, then one a minute, without RSA work beyond", async () => {
  const hostKey = await testHostKey();
  const credentials = await Promise.all(
    Array.from({ length: NEW_CREDENTIAL_BURST + 3 }, () => issueCredential(hostKey)),
  );
  const start = 1_000_000;
  const check = (index: number, now: number) =>
    verifyCredential(hostKey.publicKeyDer, credentials[index], TEST_KEY_BITS, now);
  const rsaBefore = credentialStats.rsaVerifications;
  for (let i = 0; i < NEW_CREDENTIAL_BURST; i++) assert.equal(await check(i, start), "valid");
  assert.equal(await check(NEW_CREDENTIAL_BURST, start + 1000), "too-many-new");
  assert.equal(credentialStats.rsaVerifications - rsaBefore, NEW_CREDENTIAL_BURST);
  // Verified ones still pass (cached), however many new ones were refused.
  assert.equal(await check(0, start + 2000), "valid");
  // One more a minute later (a node that restarted again), not two.
  const minute = 1000 / NEW_CREDENTIAL_RATE_PER_SECOND;
  assert.equal(await check(NEW_CREDENTIAL_BURST, start + minute + 1000), "valid");
  assert.equal(await check(NEW_CREDENTIAL_BURST + 1, start + minute + 1000), "too-many-new");
  assert.equal(await check(NEW_CREDENTIAL_BURST + 2, start + 2 * minute + 1000), "valid");
  assert.equal(credentialStats.rsaVerifications - rsaBefore, NEW_CREDENTIAL_BURST + 2);
});

Deno.test("another identity is paced on its own", async () => {
  const first = await testHostKey();
  const second = await testHostKey();
  const now = 5_000_000;
  for (let i = 0; i < NEW_CREDENTIAL_BURST; i++) {
    const credential = await issueCredential(first);
    assert.equal(
      await verifyCredential(first.publicKeyDer, credential, TEST_KEY_BITS, now),
      "valid",
    );
  }
  const late = await issueCredential(first);
  assert.equal(
    await verifyCredential(first.publicKeyDer, late, TEST_KEY_BITS, now),
    "too-many-new",
  );
  const fresh = await issueCredential(second);
  assert.equal(await verifyCredential(second.publicKeyDer, fresh, TEST_KEY_BITS, now), "valid");
});

Deno.test("CredentialIssuer signs once, then renews when less than a day of life is left", async () => {
  const hostKey = await testHostKey();
  let clock = 1_800_000_000_000;
  const issuer = new CredentialIssuer(hostKey, () => clock);
  const first = await issuer.current();
  assert.equal(first.expiry, Math.floor(clock / 1000) + CREDENTIAL_LIFETIME_SECONDS);
  assert.equal(await issuer.current(), first);
  assert.equal(issuer.signatures, 1);
  clock += (CREDENTIAL_LIFETIME_SECONDS - CREDENTIAL_RENEW_SECONDS + 1) * 1000;
  // The old one still serves while its successor is signed.
  assert.equal(await issuer.current(), first);
  // Once the old one has expired, current() waits for the successor (the same signing).
  clock = first.expiry * 1000 + 1;
  const renewed = await issuer.current();
  assert.notEqual(renewed, first);
  assert.ok(renewed.expiry > first.expiry);
  assert.equal(issuer.signatures, 2);
});
