import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { ConfigError } from "../lib/errors.ts";
import {
  assertHostKeyPathFree,
  DEFAULT_MAX_BITS,
  generateHostKeyPem,
  type HostKey,
  identityHex,
  loadHostKey,
  parseHostKeyPem,
  shortId,
  signWithHostKey,
  verifyPeerSignature,
  writeHostKeyFile,
} from "../lib/hostkey.ts";

const SMALL = { minBits: 1024 };

let cachedPem: string | undefined;
/** A 1024-bit PKCS#8 key, generated once per test run (never written to the repo). */
async function testPem(): Promise<string> {
  cachedPem ??= await generateHostKeyPem(1024);
  return cachedPem;
}

function toPkcs1(pem: string): string {
  return createPrivateKey(pem).export({ type: "pkcs1", format: "pem" }) as string;
}

async function assertConfigError(
  promise: Promise<unknown>,
  key: string,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    assert.equal(error.key, key);
    assert.match(error.message, pattern);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

Deno.test("generateHostKeyPem returns PKCS#8 PEM of the requested size", async () => {
  const pem = await testPem();
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  const key = await parseHostKeyPem(pem, "hostkey", SMALL);
  assert.equal(key.modulusBits, 1024);
  await assertConfigError(generateHostKeyPem(512), "bits", /1024 to 4096/);
  await assertConfigError(generateHostKeyPem(2047.5), "bits", /1024 to 4096/);
  // Deno cannot verify signatures of larger keys, so none are made.
  await assertConfigError(generateHostKeyPem(8192), "bits", /1024 to 4096/);
});

Deno.test("parseHostKeyPem reads PKCS#8 and PKCS#1 to the same key", async () => {
  const pkcs8 = await testPem();
  const pkcs1 = toPkcs1(pkcs8);
  assert.match(pkcs1, /^-----BEGIN RSA PRIVATE KEY-----\n/);
  const a = await parseHostKeyPem(pkcs8, "hostkey", SMALL);
  const b = await parseHostKeyPem(pkcs1, "hostkey", SMALL);
  assert.deepEqual(a.publicKeyDer, b.publicKeyDer);
  assert.deepEqual(a.identity, b.identity);
  assert.equal(b.modulusBits, 1024);
  assert.equal(a.privateKey.type, "private");
  assert.equal(a.privateKey.extractable, false);
  assert.deepEqual(a.privateKey.usages, ["sign"]);
  assert.equal(a.privateKey.algorithm.name, "RSA-PSS");
});

Deno.test("identity is SHA-256 of the SPKI DER public key", async () => {
  const pem = await testPem();
  const key = await parseHostKeyPem(pem, "hostkey", SMALL);
  const spki = new Uint8Array(createPublicKey(pem).export({ type: "spki", format: "der" }));
  assert.deepEqual(key.publicKeyDer, spki);
  assert.equal(key.identity.length, 32);
  assert.deepEqual(key.identity, await sha256(spki));
  assert.equal(identityHex(key.identity).length, 64);
  assert.match(identityHex(key.identity), /^[0-9a-f]{64}$/);
  assert.equal(shortId(key.identity), identityHex(key.identity).slice(0, 8));
});

Deno.test("identityHex and shortId", () => {
  const id = new Uint8Array(32);
  id.set([0x00, 0x0f, 0xa0, 0xff, 0x12]);
  assert.equal(identityHex(id), "000fa0ff12" + "0".repeat(54));
  assert.equal(shortId(id), "000fa0ff");
  assert.equal(identityHex(new Uint8Array()), "");
});

Deno.test("sign/verify round trip; tampering is detected", async () => {
  const key = await parseHostKeyPem(await testPem(), "hostkey", SMALL);
  const data = new TextEncoder().encode("hello gossip");
  const signature = await signWithHostKey(key, data);
  assert.equal(signature.length, 128);
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, signature, SMALL), true);
  // PSS is randomized: two signatures differ but both verify.
  const again = await signWithHostKey(key, data);
  assert.notDeepEqual(again, signature);
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, again, SMALL), true);

  const tampered = signature.slice();
  tampered[10] ^= 1;
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, tampered, SMALL), false);
  const otherData = new TextEncoder().encode("hello gossiq");
  assert.equal(await verifyPeerSignature(key.publicKeyDer, otherData, signature, SMALL), false);
  assert.equal(
    await verifyPeerSignature(key.publicKeyDer, data, signature.subarray(1), SMALL),
    false,
  );
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, new Uint8Array(), SMALL), false);
  // A view into a larger buffer works too.
  const padded = new Uint8Array(data.length + 4);
  padded.set(data, 2);
  const viewSig = await signWithHostKey(key, padded.subarray(2, 2 + data.length));
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, viewSig, SMALL), true);
});

Deno.test("verifyPeerSignature is false for another peer's key and unusable keys", async () => {
  const key = await parseHostKeyPem(await testPem(), "hostkey", SMALL);
  const other: HostKey = await parseHostKeyPem(await generateHostKeyPem(1024), "hostkey", SMALL);
  const data = new Uint8Array([1, 2, 3]);
  const signature = await signWithHostKey(key, data);
  assert.equal(await verifyPeerSignature(other.publicKeyDer, data, signature, SMALL), false);
  // Default minimum is 2048 bits: a 1024-bit peer key is refused.
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, signature), false);
  // A maximum can also be set.
  assert.equal(
    await verifyPeerSignature(key.publicKeyDer, data, signature, { minBits: 512, maxBits: 1023 }),
    false,
  );
  // Garbage, empty, truncated and non-RSA SPKI.
  assert.equal(await verifyPeerSignature(new Uint8Array(), data, signature, SMALL), false);
  assert.equal(
    await verifyPeerSignature(new Uint8Array([0x30, 0x03, 1, 2, 3]), data, signature, SMALL),
    false,
  );
  assert.equal(
    await verifyPeerSignature(key.publicKeyDer.subarray(0, 100), data, signature, SMALL),
    false,
  );
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ecSpki = new Uint8Array(ec.publicKey.export({ type: "spki", format: "der" }));
  assert.equal(await verifyPeerSignature(ecSpki, data, signature, SMALL), false);
  // Repeated (cached) lookups give the same answers.
  assert.equal(await verifyPeerSignature(ecSpki, data, signature, SMALL), false);
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, signature, SMALL), true);
});

Deno.test("parseHostKeyPem: 2048-bit minimum by default", async () => {
  const pem = await testPem();
  await assertConfigError(
    parseHostKeyPem(pem),
    "hostkey",
    /is a 1024-bit RSA key; at least 2048 bits are required/,
  );
  await assertConfigError(
    parseHostKeyPem(pem, "key_file", { minBits: 4096 }),
    "key_file",
    /at least 4096 bits/,
  );
});

Deno.test("parseHostKeyPem rejects encrypted, public, non-RSA and garbage keys", async () => {
  const pem = await testPem();
  const object = createPrivateKey(pem);
  const encrypted8 = object.export({
    type: "pkcs8",
    format: "pem",
    cipher: "aes-256-cbc",
    passphrase: "secret",
  }) as string;
  const encrypted1 = object.export({
    type: "pkcs1",
    format: "pem",
    cipher: "aes-256-cbc",
    passphrase: "secret",
  }) as string;
  const publicPem = createPublicKey(object).export({ type: "spki", format: "pem" }) as string;
  const publicPkcs1 = createPublicKey(object).export({ type: "pkcs1", format: "pem" }) as string;
  const ecPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey
    .export({ type: "pkcs8", format: "pem" }) as string;
  const ecSec1 = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey
    .export({ type: "sec1", format: "pem" }) as string;
  const edPem = generateKeyPairSync("ed25519").privateKey
    .export({ type: "pkcs8", format: "pem" }) as string;
  const cases: [string, RegExp][] = [
    [encrypted8, /is encrypted/],
    [encrypted1, /is encrypted/],
    [publicPem, /contains a public key, not a private key/],
    [publicPkcs1, /contains a rsa public key, not a private key/],
    [ecPem, /is a ec key; gossip needs a plain RSA key/],
    [ecSec1, /unsupported "EC PRIVATE KEY"/],
    [edPem, /is a ed25519 key/],
    ["", /is not a PEM private key/],
    ["hello world", /is not a PEM private key/],
    ["-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", /cannot parse/],
    ["-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----\n", /cannot parse/],
    [pem.slice(0, 200), /cannot parse/],
    ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", /contains a certificate/],
    ["-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", /unsupported "OPENSSH PRIVATE KEY"/],
  ];
  for (const [text, pattern] of cases) {
    await assertConfigError(parseHostKeyPem(text, "hostkey", SMALL), "hostkey", pattern);
  }
});

Deno.test("writeHostKeyFile + loadHostKey: mode 0600, parent dirs, no overwrite", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pem = await testPem();
    const path = join(dir, "nested", "deeper", "hostkey.pem");
    await writeHostKeyFile(path, toPkcs1(pem));
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    }
    const key = await loadHostKey(path, SMALL);
    const expected = await parseHostKeyPem(pem, "hostkey", SMALL);
    assert.deepEqual(key.identity, expected.identity);
    assert.deepEqual(key.publicKeyDer, expected.publicKeyDer);
    await assertConfigError(writeHostKeyFile(path, pem), "hostkey", /already exists; refusing/);
    // The existing key is untouched.
    assert.match(await Deno.readTextFile(path), /BEGIN RSA PRIVATE KEY/);
    await assertConfigError(loadHostKey(path), "hostkey", /at least 2048 bits/);

    const missing = join(dir, "missing.pem");
    await assertConfigError(
      loadHostKey(missing),
      "hostkey",
      new RegExp(
        `missing\\.pem: no such file; create the key with \`gossip keygen .*missing\\.pem\``,
      ),
    );
    await assertConfigError(loadHostKey(dir), "hostkey", /is a directory; expected a regular file/);
    // A file where a directory is needed.
    await assertConfigError(
      writeHostKeyFile(join(path, "x.pem"), pem),
      "hostkey",
      /cannot write /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseHostKeyPem: at most 4096 bits by default, with the reason", async () => {
  const pem = await testPem();
  await assertConfigError(
    parseHostKeyPem(pem, "hostkey", { minBits: 512, maxBits: 1000 }),
    "hostkey",
    /is a 1024-bit RSA key; at most 1000 bits are supported because gossip nodes run on Deno, whose RSA implementation cannot verify signatures of larger keys/,
  );
  assert.equal(DEFAULT_MAX_BITS, 4096);
});

Deno.test("loadHostKey reads only regular files of at most 64 KiB, without hanging", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = join(dir, "fifo.pem");
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    const big = join(dir, "big.pem");
    await Deno.writeTextFile(big, (await testPem()) + "x".repeat(64 * 1024));
    const loop = join(dir, "loop.pem");
    await Deno.symlink(join(dir, "loop2.pem"), loop);
    await Deno.symlink(loop, join(dir, "loop2.pem"));
    const cases: [string, RegExp][] = [
      ["/dev/zero", /\/dev\/zero: is a character device; expected a regular file/],
      [fifo, /fifo\.pem: is a FIFO \(named pipe\); expected a regular file/],
      [big, /big\.pem: is \d+ bytes; at most 65536 are accepted/],
      [loop, /loop\.pem: cannot read: too many levels of symbolic links/],
    ];
    for (const [path, pattern] of cases) {
      await assertConfigError(loadHostKey(path, SMALL), "hostkey", pattern);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("no key is generated or written through a dangling link or a link loop", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dangling = join(dir, "dangling.pem");
    await Deno.symlink(join(dir, "nowhere", "key.pem"), dangling);
    const loop = join(dir, "loop.pem");
    await Deno.symlink(join(dir, "loop2.pem"), loop);
    await Deno.symlink(loop, join(dir, "loop2.pem"));
    for (const path of [dangling, loop]) {
      await assertConfigError(
        assertHostKeyPathFree(path),
        "hostkey",
        /is a symbolic link \(to a missing file, or a link loop\); refusing to write a key/,
      );
      await assertConfigError(
        writeHostKeyFile(path, await testPem(), "keygen"),
        "keygen",
        /is a symbolic link/,
      );
    }
    await assertHostKeyPathFree(join(dir, "free.pem"));
    await Deno.writeTextFile(join(dir, "taken.pem"), "x");
    await assertConfigError(
      assertHostKeyPathFree(join(dir, "taken.pem"), "keygen"),
      "keygen",
      /taken\.pem already exists; refusing to overwrite a key/,
    );
    // Nothing was created behind the dangling link.
    await assert.rejects(Deno.stat(join(dir, "nowhere")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a 2048-bit key works with default options", async () => {
  const key = await parseHostKeyPem(await generateHostKeyPem(2048));
  assert.equal(key.modulusBits, 2048);
  const data = new TextEncoder().encode("default sizes");
  const signature = await signWithHostKey(key, data);
  assert.equal(signature.length, 256);
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, signature), true);
});

Deno.test("verifyPeerSignature keeps working after many distinct bad keys", async () => {
  const key = await parseHostKeyPem(await testPem(), "hostkey", SMALL);
  const data = new Uint8Array([9]);
  const signature = await signWithHostKey(key, data);
  for (let i = 0; i < 1100; i++) {
    const junk = new Uint8Array([0x30, 0x02, i & 0xff, i >> 8]);
    assert.equal(await verifyPeerSignature(junk, data, signature, SMALL), false);
  }
  assert.equal(await verifyPeerSignature(key.publicKeyDer, data, signature, SMALL), true);
});
