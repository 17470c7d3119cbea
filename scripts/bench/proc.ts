/**
 * Reading Linux /proc files. Deno treats /proc paths as privileged (reading
 * them asks for `--allow-all`), and `deno task bench` grants only net, read,
 * write, env and run, so files are read through `cat` and `grep` subprocesses
 * when a direct read is refused.
 *
 * @module
 */

async function output(command: string, args: string[]): Promise<string | undefined> {
  try {
    const result = await new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    // grep exits 1 when nothing matched, 2 when a file was missing; keep what it printed.
    return new TextDecoder().decode(result.stdout);
  } catch {
    return undefined;
  }
}

/** The text of /proc file `path`, or undefined when it cannot be read. */
export async function readProcFile(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    const text = await output("cat", [path]);
    return text === "" ? undefined : text;
  }
}

/** VmRSS in bytes of each of `pids` (NaN for processes that are gone), from /proc/<pid>/status. */
export async function rssOfPids(pids: readonly number[]): Promise<number[]> {
  if (pids.length === 0) return [];
  const text = await output("grep", [
    "-H",
    "^VmRSS:",
    ...pids.map((pid) => `/proc/${pid}/status`),
  ]) ?? "";
  const byPid = new Map<number, number>();
  for (const match of text.matchAll(/^\/proc\/(\d+)\/status:VmRSS:\s+(\d+)\s+kB$/gm)) {
    byPid.set(Number(match[1]), Number(match[2]) * 1024);
  }
  return pids.map((pid) => byPid.get(pid) ?? NaN);
}
