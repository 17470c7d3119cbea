/** The logger: levels shared with children and changed at run time, text and JSON lines. */

import assert from "node:assert/strict";
import { type LogFormat, Logger, type LogLevel, silentLogger } from "../lib/log.ts";

function capture(level: LogLevel, format: LogFormat = "text") {
  const lines: string[] = [];
  const logger = new Logger(level, "node", (_level, line) => lines.push(line), format);
  return { logger, lines };
}

Deno.test("text lines: time, level, component, message and quoted fields", () => {
  const { logger, lines } = capture("info");
  logger.child("p2p").info("peer connected", {
    peer: "ab12",
    address: "127.0.0.1:6001",
    reason: "peer said goodbye: shutting down",
    big: 2n ** 70n,
    empty: "",
    skipped: undefined,
  });
  logger.debug("not shown");
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}\[p2p\] peer connected peer=ab12 address=127\.0\.0\.1:6001 reason="peer said goodbye: shutting down" big=1180591620717411303424 empty=""$/,
  );
});

Deno.test("a message with a newline stays on one line", () => {
  const { logger, lines } = capture("warn");
  logger.warn("bad\ninput\r\u001b[31m", { error: "two\nlines" });
  assert.equal(lines.length, 1);
  assert.ok(!lines[0].includes("\n") && !lines[0].includes("\r") && !lines[0].includes("\u001b"));
  assert.match(lines[0], /error="two\\nlines"$/);
});

Deno.test("json lines: one object per line with typed fields", () => {
  const { logger, lines } = capture("debug", "json");
  logger.child("api").debug("item delivered", {
    item: "00ff",
    bytes: 12,
    valid: true,
    id: 12345678901234567890n,
    level: "clash",
    skipped: undefined,
  });
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0]);
  assert.equal(typeof record.time, "string");
  assert.ok(!Number.isNaN(Date.parse(record.time)));
  assert.deepEqual({ ...record, time: undefined }, {
    time: undefined,
    level: "debug",
    component: "api",
    msg: "item delivered",
    item: "00ff",
    bytes: 12,
    valid: true,
    id: "12345678901234567890",
    field_level: "clash",
  });
});

Deno.test("setLevel changes the level of the logger and all its children at once", () => {
  const { logger, lines } = capture("warn");
  const child = logger.child("p2p");
  const grandchild = child.child("session");
  grandchild.info("hidden");
  assert.equal(lines.length, 0);
  child.setLevel("debug");
  assert.equal(logger.level, "debug");
  grandchild.debug("now shown");
  logger.info("also shown");
  assert.equal(lines.length, 2);
  logger.setLevel("error");
  assert.equal(grandchild.enabled("warn"), false);
  assert.equal(grandchild.enabled("error"), true);
  assert.equal(grandchild.format, "text");
});

Deno.test("the shared silent logger cannot be made to talk", () => {
  silentLogger.child("x").setLevel("debug");
  silentLogger.setLevel("debug");
  assert.equal(silentLogger.level, "silent");
  assert.equal(silentLogger.child("y").enabled("error"), false);
});
