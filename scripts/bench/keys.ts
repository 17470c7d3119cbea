/**
 * Host keys for benchmark nodes, cached on disk so that reruns skip RSA key
 * generation: `<dir>/rsa<bits>-<index>.pem`.
 *
 * @module
 */

import { join } from "node:path";
import { generateHostKeyPem, writeHostKeyFile } from "../../lib/hostkey.ts";
import type { Deadline } from "./deadline.ts";

/** Keys generated at once (the generation runs on the runtime's thread pool). */
const KEYGEN_CONCURRENCY = 4;

/** Result of {@link ensureHostKeys}. */
export interface HostKeyFiles {
  /** Absolute paths, one per node. */
  readonly paths: string[];
  /** How many had to be generated now. */
  readonly generated: number;
  /** Time spent in ms. */
  readonly ms: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Makes sure `count` PEM keys of `bits` bits exist in `dir`, generating the
 * missing ones in parallel, and returns their paths.
 */
export async function ensureHostKeys(
  dir: string,
  count: number,
  bits: number,
  deadline: Deadline,
  progress: (line: string) => void,
): Promise<HostKeyFiles> {
  const started = performance.now();
  const paths = Array.from({ length: count }, (_, i) => join(dir, `rsa${bits}-${i}.pem`));
  const missing: string[] = [];
  for (const path of paths) if (!await exists(path)) missing.push(path);
  if (missing.length > 0) {
    progress(`generating ${missing.length} ${bits}-bit RSA host keys into ${dir}`);
  }
  let next = 0;
  const worker = async () => {
    while (next < missing.length) {
      deadline.check();
      const path = missing[next++];
      await writeHostKeyFile(path, await generateHostKeyPem(bits));
    }
  };
  await Promise.all(Array.from({ length: KEYGEN_CONCURRENCY }, worker));
  return { paths, generated: missing.length, ms: performance.now() - started };
}
