/**
 * Socket addresses as written in the configuration file: `host:port`,
 * `1.2.3.4:port` or `[v6]:port` (IPv6 literals must be bracketed, as the
 * VoidPhone specification requires).
 *
 * @module
 */

import { clipText, ConfigError } from "./errors.ts";

/** A host and a TCP port. IPv6 literals are stored without brackets. */
export interface SocketAddress {
  /** Hostname, IPv4 dotted quad, or IPv6 literal without brackets. */
  hostname: string;
  /** TCP port, 0..65535 (0 asks the OS for an ephemeral port). */
  port: number;
}

const EXPECTED = "expected host:port, e.g. 127.0.0.1:7001, localhost:7001 or [::1]:7001";
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Parses `text` as a socket address for the configuration key `key`.
 *
 * Accepts `hostname:port` (RFC 1123 hostname), `a.b.c.d:port` and
 * `[ipv6]:port`; the port is a decimal integer 0..65535.
 *
 * @param text the address text, e.g. `[::1]:7001`.
 * @param key the configuration key (or flag) the text came from, for errors.
 * @param line the config file line, for errors.
 * @throws {ConfigError} naming `key` when `text` is not such an address.
 */
export function parseSocketAddress(text: string, key: string, line?: number): SocketAddress {
  const fail = (why: string): never => {
    throw new ConfigError(key, `invalid address "${clipText(text)}": ${why}; ${EXPECTED}`, line);
  };
  if (text.length === 0) fail("empty");
  if (/\s/.test(text)) fail("contains whitespace");
  let hostname: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) fail("missing `]` after the IPv6 address");
    hostname = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest === "") fail("missing port");
    if (!rest.startsWith(":")) fail("expected `:port` after `]`");
    portText = rest.slice(1);
    if (hostname === "") fail("empty host");
    if (hostname.includes("%")) fail("IPv6 zone ids (`%iface`) are not supported");
    if (parseIPv6(hostname) === undefined) {
      fail(`"${clipText(hostname)}" is not a valid IPv6 address`);
    }
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) fail("missing port");
    hostname = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (hostname.includes(":")) {
      fail("IPv6 addresses must be in brackets, e.g. [::1]:7001");
    }
    if (hostname.includes("[") || hostname.includes("]")) fail("misplaced bracket");
    if (hostname === "") fail("empty host");
    if (!isValidHostOrIPv4(hostname)) {
      fail(`"${clipText(hostname)}" is neither a valid hostname nor an IPv4 address`);
    }
  }
  if (portText === "") fail("missing port");
  if (!/^[0-9]{1,5}$/.test(portText)) fail(`port "${clipText(portText)}" is not a decimal number`);
  const port = Number(portText);
  if (port > 65535) fail(`port ${port} is out of range 0..65535`);
  return { hostname, port };
}

/** Formats an address as `host:port`, bracketing IPv6 literals (`[::1]:7001`). */
export function formatSocketAddress(address: SocketAddress): string {
  return isIPv6Literal(address.hostname)
    ? `[${address.hostname}]:${address.port}`
    : `${address.hostname}:${address.port}`;
}

/** True when `host` is an IPv6 literal (without brackets), e.g. `::1`. */
export function isIPv6Literal(host: string): boolean {
  return host.includes(":") && parseIPv6(host) !== undefined;
}

/**
 * True when `host` certainly refers to this machine's loopback interface:
 * `localhost`, an address in 127.0.0.0/8, `::1`, or an IPv4-mapped 127.x address.
 */
export function isLoopbackHostname(host: string): boolean {
  const lower = host.toLowerCase();
  if (lower === "localhost" || lower === "localhost.") return true;
  const v4 = parseIPv4(host);
  if (v4 !== undefined) return v4[0] === 127;
  const v6 = parseIPv6(host);
  if (v6 === undefined) return false;
  if (v6.slice(0, 7).every((g) => g === 0) && v6[7] === 1) return true;
  // IPv4-mapped ::ffff:127.x.y.z
  return v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff && v6[6] >> 8 === 127;
}

function isValidHostOrIPv4(host: string): boolean {
  const labels = host.split(".");
  // Anything made only of digits and dots must be a real dotted quad; this
  // rejects `1.2.3.256` and `1.2.3` instead of treating them as names.
  if (labels.every((label) => /^[0-9]*$/.test(label))) return parseIPv4(host) !== undefined;
  if (host.length > 253) return false;
  return labels.every((label) => HOST_LABEL.test(label));
}

/** Parses a strict dotted quad (no leading zeros); returns the four octets. */
function parseIPv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const octets: number[] = [];
  for (const part of parts) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    octets.push(value);
  }
  return octets;
}

/** Parses an IPv6 literal (optionally with embedded IPv4) into eight 16-bit groups. */
function parseIPv6(text: string): number[] | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string, allowV4: boolean): number[] | undefined => {
    if (part === "") return [];
    const groups: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (allowV4 && i === items.length - 1 && item.includes(".")) {
        const v4 = parseIPv4(item);
        if (v4 === undefined) return undefined;
        groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(item)) return undefined;
        groups.push(parseInt(item, 16));
      }
    }
    return groups;
  };
  if (halves.length === 1) {
    const groups = parseGroups(halves[0], true);
    return groups?.length === 8 ? groups : undefined;
  }
  const head = parseGroups(halves[0], false);
  const tail = parseGroups(halves[1], true);
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
