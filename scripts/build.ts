/**
 * Builds self-contained `gossip` executables with `deno compile`.
 *
 * ```
 * deno task compile                          # every target into dist/
 * deno task compile --target x86_64-unknown-linux-gnu [--target ...]
 * deno task compile --help
 * ```
 *
 * `deno compile` embeds the program into a prebuilt runtime ("denort") that it
 * downloads once per target from dl.deno.land; without internet access the
 * build fails, and this script says so in one line. Deno's own output is
 * streamed as it comes. Exit codes: 0 all built, 1 a build failed, 2 bad usage.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";

/** Targets `deno compile` supports, in build order. */
export const TARGETS: readonly string[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/**
 * Permissions baked into the executables. The daemon listens and dials
 * (net), reads its config and host key (read) and writes a generated key and
 * the peers file (write); the paths come from the command line and config at
 * run time, so they cannot be scoped here. It reads no environment variable,
 * so there is no `--allow-env`: a read would fail instead of prompting
 * (`--no-prompt`). tests/bundle_smoke_test.ts runs the daemon with exactly
 * these flags.
 */
export const DAEMON_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--no-prompt",
];

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DIST = join(ROOT, "dist");
const ENTRY = join(ROOT, "main.ts");

/**
 * Text in deno's error report that means the runtime template could not be
 * fetched, e.g. `error sending request for url (https://dl.deno.land/release/
 * v2.9.6/denort-x86_64-unknown-linux-gnu.zip): ... dns error`. Only the report
 * (from the `error:` line on) is searched: the `Download https://dl.deno.land/...`
 * progress line also appears when the download worked and a later step failed.
 */
const DOWNLOAD_FAILURE =
  /dl\.deno\.land|Failed downloading|error sending request|dns error|denort\S*\.zip/i;

const USAGE = `Usage: deno task compile [--target TARGET]...

Builds gossip executables with deno compile into dist/gossip-TARGET (.exe on
Windows), with these permissions baked in: ${DAEMON_PERMISSIONS.join(" ")}.

Options:
  --target TARGET   build only TARGET (repeatable); default: all of
                    ${TARGETS.join("\n                    ")}
  -h, --help        show this help

deno compile downloads the Deno runtime template (denort) for each target from
dl.deno.land on first use; that needs internet access. To build offline, set
DENORT_BIN to a denort binary of the target being built.`;

/** Thrown for bad command-line input; exits with code 2. */
class UsageError extends Error {}

/** The executable's path for `target`. */
export function outputPath(target: string): string {
  return join(DIST, `gossip-${target}${target.includes("windows") ? ".exe" : ""}`);
}

/** The `deno compile` arguments that build `target`. */
export function compileArgs(target: string): string[] {
  return [
    "compile",
    "--target",
    target,
    "--output",
    outputPath(target),
    "--exclude-unused-npm",
    ...DAEMON_PERMISSIONS,
    ENTRY,
  ];
}

// deno-lint-ignore no-control-regex -- matching ANSI escape sequences is the point.
const ANSI = /\x1b\[[0-9;]*m/g;

/** Deno's error report without colors: its output from the first `error:` line on. */
function errorReport(stderr: string): string {
  const plain = stderr.replace(ANSI, "");
  const start = plain.search(/^error:/im);
  const report = start < 0 ? plain : plain.slice(start);
  // With RUST_BACKTRACE set, deno appends a backtrace whose frames look like causes.
  const backtrace = report.search(/^Stack backtrace:/m);
  return backtrace < 0 ? report : report.slice(0, backtrace);
}

/**
 * The most telling part of an error report, on one line: the outermost and
 * innermost causes of its "Caused by:" list, else the `error:` line.
 */
function failureReason(report: string): string {
  const lines = report.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const causedBy = lines.indexOf("Caused by:");
  const causes = causedBy < 0 ? [] : lines.slice(causedBy + 1)
    .filter((l) => /^\d+: /.test(l))
    .map((l) => l.replace(/^\d+: /, "").replace(/\.$/, ""));
  if (causes.length > 0) {
    return causes.length === 1 ? causes[0] : `${causes[0]}: ${causes[causes.length - 1]}`;
  }
  const error = lines.find((l) => /^error:/i.test(l));
  return (error?.replace(/^error:\s*/i, "") ?? lines.at(-1) ?? "no error output")
    .replace(/\.$/, "");
}

/** Runs deno compile for `target`, streaming its output; returns the exit code and stderr. */
async function compile(target: string): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: compileArgs(target),
    cwd: ROOT,
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let stderr = "";
  for await (const chunk of child.stderr) {
    await writeStderr(chunk);
    stderr += decoder.decode(chunk, { stream: true });
  }
  const { code } = await child.status;
  return { code, stderr };
}

async function writeStderr(bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await Deno.stderr.write(bytes.subarray(offset));
}

function parseTargets(args: string[]): string[] | undefined {
  const { values, positionals } = parseArgs({
    args,
    options: {
      target: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return undefined;
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}"`);
  }
  const targets = values.target ?? [...TARGETS];
  for (const target of targets) {
    if (!TARGETS.includes(target)) {
      throw new UsageError(`unknown target "${target}"; expected one of ${TARGETS.join(", ")}`);
    }
  }
  return [...new Set(targets)];
}

/** Builds the requested targets; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  let targets: string[] | undefined;
  try {
    targets = parseTargets(args);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof UsageError || code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`build: ${(error as Error).message.split(/\. /)[0]}; see --help`);
      return 2;
    }
    throw error;
  }
  if (targets === undefined) {
    console.log(USAGE);
    return 0;
  }
  await Deno.mkdir(DIST, { recursive: true });
  const built: string[] = [];
  const builtSoFar = () =>
    built.length === 0 ? "nothing was built" : `built only ${built.join(", ")}`;
  for (const target of targets) {
    const output = relative(ROOT, outputPath(target));
    console.error(`build: ${target} -> ${output}`);
    let result: { code: number; stderr: string };
    try {
      result = await compile(target);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      console.error(`build: cannot run deno compile for ${target}: ${reason}; ${builtSoFar()}`);
      return 1;
    }
    if (result.code !== 0) {
      const report = errorReport(result.stderr);
      if (DOWNLOAD_FAILURE.test(report)) {
        console.error(
          `build: cannot download the Deno runtime template for ${target} ` +
            `(no internet access?); ${builtSoFar()}`,
        );
      } else {
        console.error(
          `build: deno compile failed for ${target} (exit ${result.code}): ` +
            `${failureReason(report)}; ${builtSoFar()}`,
        );
      }
      return 1;
    }
    built.push(output);
  }
  console.error(`build: built ${built.length} executable(s): ${built.join(", ")}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
