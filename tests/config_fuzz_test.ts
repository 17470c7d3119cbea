/** Property tests: the config parser fails only with ConfigError, whatever the text. */

import assert from "node:assert/strict";
import fc from "fast-check";
import { parseConfig, parseIni } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";

const VALID = `hostkey = key.pem

[gossip]
api_address = 127.0.0.1:7001
p2p_address = 127.0.0.1:6001
degree = 5
cache_size = 50
bootstrapper = [::1]:6002
`;

function onlyConfigErrors(text: string): void {
  try {
    parseConfig(text, { baseDir: "/etc/gossip" });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    assert.match(error.message, /\S/);
  }
}

Deno.test("random text never makes the config parser throw anything but ConfigError", () => {
  fc.assert(fc.property(fc.string({ maxLength: 400, size: "max" }), onlyConfigErrors), {
    numRuns: 3000,
  });
});

Deno.test("mutated valid configs either parse or fail with ConfigError", () => {
  const lines = VALID.split("\n");
  const mutation = fc.record({
    line: fc.nat({ max: lines.length - 1 }),
    at: fc.nat({ max: 40 }),
    insert: fc.string({ maxLength: 5 }),
    remove: fc.nat({ max: 5 }),
  });
  fc.assert(
    fc.property(fc.array(mutation, { maxLength: 4 }), (mutations) => {
      const copy = [...lines];
      for (const m of mutations) {
        const text = copy[m.line];
        const at = Math.min(m.at, text.length);
        copy[m.line] = text.slice(0, at) + m.insert + text.slice(at + m.remove);
      }
      onlyConfigErrors(copy.join("\n"));
    }),
    { numRuns: 3000 },
  );
});

Deno.test("the INI layer accepts every line-structured document it produces", () => {
  const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/);
  const value = fc.stringMatching(/^[A-Za-z0-9.:\/_-]{0,12}$/);
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(key, value), { selector: ([k]) => k, maxLength: 8 }), (
      entries,
    ) => {
      const text = "[section]\n" + entries.map(([k, v]) => `${k} = ${v}`).join("\n");
      const document = parseIni(text);
      assert.equal(document.sections[0].entries.length, entries.length);
    }),
    { numRuns: 500 },
  );
});
