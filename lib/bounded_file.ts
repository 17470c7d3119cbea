/**
 * Reading the small files an operator names (configuration, host key, peers
 * file) without trusting them: only regular files, never more than a cap.
 *
 * Without this, `hostkey = /dev/zero` reads until memory runs out, a FIFO
 * blocks the start forever, and a symbolic-link loop looks like a missing file.
 * The file is checked with `stat` (which follows links) before it is opened,
 * so a FIFO or device is refused without opening it; after opening, the open
 * file is checked again and at most `maxBytes + 1` bytes are read, so a file
 * swapped or grown in between is still refused. What remains: a FIFO swapped
 * in between the check and the open (by someone who can write to that
 * directory) would block the open.
 *
 * @module
 */

import { clipText, FileReadError } from "./errors.ts";

/** Largest configuration file read (the shared VoidPhone INI file). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Largest host key file read (a 4096-bit PEM key is about 3.3 KB). */
export const MAX_HOSTKEY_BYTES = 64 * 1024;
/** Largest peers file read (1000 peers take about 150 KB). */
export const MAX_PEERS_FILE_BYTES = 1024 * 1024;

/** Longest path kept in a message. */
const MAX_PATH_CHARS = 200;

/** `path` clipped and escaped for a one-line message. */
export function displayPath(path: string): string {
  return clipText(path, MAX_PATH_CHARS);
}

function kindOf(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return "not allowed by Deno's --allow-read";
  if (error instanceof Deno.errors.FilesystemLoop) return "too many levels of symbolic links";
  if (error instanceof Deno.errors.NotADirectory) return "a part of the path is not a directory";
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads the UTF-8 text file at `path`, named by the configuration `key` (or
 * flag) in errors, refusing anything but a regular file of at most `maxBytes`.
 *
 * @throws {FileReadError} with `problem` `missing` (no such file), `not_regular`
 * (directory, FIFO, device, socket), `too_large`, or `unreadable` (permission,
 * link loop, I/O error); the message names `key` and the clipped path.
 */
export async function readBoundedTextFile(
  path: string,
  maxBytes: number,
  key: string,
): Promise<string> {
  const shown = displayPath(path);
  const fail = (problem: FileReadError["problem"], why: string): never => {
    throw new FileReadError(key, path, problem, `${shown}: ${why}`);
  };
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) fail("missing", "no such file");
    fail("unreadable", `cannot read: ${describe(error)}`);
  }
  const check = (stat: Deno.FileInfo) => {
    if (!stat.isFile) fail("not_regular", `is ${kindOf(stat)}; expected a regular file`);
    if (stat.size > maxBytes) {
      fail("too_large", `is ${stat.size} bytes; at most ${maxBytes} are accepted`);
    }
  };
  check(info!);
  let file: Deno.FsFile | undefined;
  try {
    try {
      file = await Deno.open(path, { read: true });
      check(await file.stat());
    } catch (error) {
      if (error instanceof FileReadError) throw error;
      if (error instanceof Deno.errors.NotFound) fail("missing", "no such file");
      fail("unreadable", `cannot read: ${describe(error)}`);
    }
    const buffer = new Uint8Array(maxBytes + 1);
    let length = 0;
    for (;;) {
      let n: number | null = null;
      try {
        n = await file!.read(buffer.subarray(length));
      } catch (error) {
        fail("unreadable", `cannot read: ${describe(error)}`);
      }
      if (n === null) break;
      length += n;
      if (length > maxBytes) fail("too_large", `is over ${maxBytes} bytes`);
    }
    return new TextDecoder().decode(buffer.subarray(0, length));
  } finally {
    file?.close();
  }
}
