/**
 * The whole node, simulated: runs a named scenario on a deterministic
 * discrete-event simulation of real node cores over a WAN (lib/sim/).
 *
 * ```sh
 * deno task simulate --scenario baseline --nodes 1000 --seed 1
 * deno task simulate --scenario censor --nodes 1000 --ratio 1:1 --seed 1
 * deno task simulate --scenario eclipse-one --ratio 1:1 --degree 10
 * deno task simulate --list
 * ```
 *
 * Progress goes to stderr, a summary to stdout, and the full result to
 * `<out>/<scenario>-n<N>[-r<ratio>][-d<degree>][-b<K>][-q<MS>]-s<seed>.json` with charts in the `.svg`
 * beside it. Exit code 2 with one line for bad arguments.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type ItemTrace,
  JUST_STARTED_MS,
  LONG_ECLIPSE_MS,
  RECENT_ECLIPSE_MS,
} from "../lib/sim/metrics.ts";
import { stackCharts } from "../lib/sim/plot.ts";
import { SIM_NODE_CONFIG } from "../lib/sim/network.ts";
import {
  DEFAULT_BOOTSTRAPS_PER_NODE,
  DEFAULT_STEADY_ITEMS_MS,
  type LullCost,
  runScenario,
  type ScenarioResult,
  SCENARIOS,
} from "../lib/sim/scenarios.ts";

const USAGE = `deno task simulate --scenario NAME [options]

Runs a scenario on simulated node cores over a WAN (docs/SIMULATION.md) and
writes <out>/<scenario>-n<N>[-r<ratio>][-d<degree>][-b<K>][-t][-q<MS>]-s<seed>.json and .svg.

Options:
  --scenario NAME   scenario to run (--list shows them)
  --nodes N         honest nodes (default 1000)
  --seed S          seed of every random choice (default 1)
  --ratio A:H       attackers to honest nodes, e.g. 1:10, 1:1, 4:1 (attack scenarios;
                    default 1:1); a decimal such as 0.1 works too
  --items K         tracked items (default per scenario)
  --degree D        every node's degree, attackers' too (default ${SIM_NODE_CONFIG.degree})
  --loss P          loss probability per 1460-byte segment (default 0.01)
  --no-pow          do not measure the identity proof-of-work cost
  --bootstraps-per-node K
                    each honest node joins through K distinct random earlier
                    nodes (default 2, as docs/DEPLOY.md advises; 1 is the harsher
                    setting of earlier runs; not in cold-boot, which has bootstrap nodes)
  --trusted-bootstrappers
                    honest nodes (and churn's fresh nodes) join through honest
                    nodes only, as when operators list bootstrappers they run or
                    trust (docs/DEPLOY.md); attackers still join through any node
  --steady-items MS the sieges (eclipse-one, eclipse-publishers) announce an item
                    every MS ms from the end of the build until one window before
                    the measured items (default ${DEFAULT_STEADY_ITEMS_MS}; 0: none, the quiet
                    siege of earlier rounds)
  --trace-item TAG  trace the item with this tag (1 = the first announced; repeatable):
                    its origin's sessions, scores and dials from 0 to 15 s after
                    the announcement, printed and written to the JSON (itemTraces)
  --out DIR         results directory (default sim-results)
  --quiet           no progress lines
  --list            list the scenarios
  -h, --help        show this help`;

class UsageError extends Error {}

/** `--name`'s whole number, at least `min` (0 or 1), or `fallback` when absent. */
function wholeNumber(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) < min) {
    const kind = min === 0 ? "a whole number (0 or more)" : "a positive integer";
    throw new UsageError(`--${name} must be ${kind}, got "${value}"`);
  }
  return Number(value);
}

/** "4:1" (attackers:honest) or a decimal; attackers per honest node. */
export function parseRatio(value: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?):([0-9]+(?:\.[0-9]+)?)$/.exec(value);
  const ratio = match ? Number(match[1]) / Number(match[2]) : Number(value);
  if (!Number.isFinite(ratio) || ratio < 0 || value.trim() === "") {
    throw new UsageError(`--ratio must look like 1:10, 1:1, 4:1 or 0.5, got "${value}"`);
  }
  return ratio;
}

function ratioLabel(ratio: number): string {
  if (ratio >= 1) return `${Number(ratio.toFixed(2))}:1`;
  return `1:${Number((1 / ratio).toFixed(2))}`;
}

function summary(result: ScenarioResult): string {
  const d = result.delivery;
  const ms = (v: number | null) => v === null ? "never" : `${v.toFixed(0)} ms`;
  const lines = [
    `${result.scenario}: ${result.nodes} honest nodes` +
    (result.attackers ? `, ${result.attackers} attackers (${ratioLabel(result.ratio)})` : "") +
    `, seed ${result.seed}` +
    (result.degree === SIM_NODE_CONFIG.degree ? "" : `, degree ${result.degree}`),
    `  delivery ${(100 * d.deliveryRatio).toFixed(3)}% (worst item ${
      (100 * d.worstItemDeliveryRatio).toFixed(2)
    }%, ${d.fullyDelivered}/${d.items} items to every eligible node)`,
    `  time to 50/99/100%: ${ms(d.t50.mean)} / ${ms(d.t99.mean)} / ${ms(d.t100.mean)} (mean); ` +
    `shortest-path bound ${ms(d.bound50.mean)} / ${ms(d.bound99.mean)} / ${ms(d.bound100.mean)}`,
    `  t99 / bound99: mean ${d.t99OverBound.mean ?? "n/a"}, worst ${d.t99OverBound.max ?? "n/a"}`,
    `  duplicates per delivery ${d.duplicatesPerDelivery}, largest hop count ${d.maxHops}`,
    `  gossip per node per item: ${result.traffic.gossipMessagesPerNodePerItem} messages, ${result.traffic.gossipBytesPerNodePerItem} bytes; ` +
    `background ${result.traffic.backgroundMessagesPerNodePerSecond} messages/s per node`,
  ];
  for (const [name, phase] of Object.entries(result.phases)) {
    if (Object.keys(result.phases).length < 2) break;
    lines.push(
      `  phase "${name}": delivery ${(100 * phase.deliveryRatio).toFixed(3)}%, t99 ${
        ms(phase.t99.mean)
      } (bound ${ms(phase.bound99.mean)})`,
    );
  }
  const lull = result.parameters.lull as LullCost | undefined;
  if (lull) {
    lines.push(
      `  during the ${lull.minutes}-minute lull, per honest node per minute: ${lull.dialsPerNodePerMinute} dials, ` +
        `${lull.rotatedPerNodePerMinute} rotated, ${lull.provenReturnedPerNodePerMinute} proven peers back, ` +
        `${lull.reinforcedPerNodePerMinute} extra paths; ${lull.messagesPerNodePerSecond} messages/s per node`,
    );
  }
  const steady = result.parameters;
  if (typeof steady.steadyItems === "number") {
    lines.push(
      `  steady stream: ${steady.steadyItems} items, delivery ${
        (100 * Number(steady.steadyDelivery)).toFixed(3)
      }% (worst item ${(100 * Number(steady.steadyWorstItemDelivery)).toFixed(2)}%)`,
    );
  }
  if (result.attackers) {
    lines.push(
      `  eclipsed honest nodes ${(100 * result.eclipse.eclipsedShare).toFixed(2)}%` +
        (result.eclipse.targets
          ? `, targets eclipsed ${result.eclipse.targets.eclipsed}/${result.eclipse.targets.honest}`
          : "") +
        `, attackers among honest nodes' peers ${
          (100 * result.eclipse.attackerPeerShare).toFixed(1)
        }%`,
      `  eclipsed: ${result.eclipse.eclipsed} nodes (${
        result.eclipse.eclipsedByChance.toFixed(1)
      } expected by chance at that share and those peer counts); their peers ${
        result.eclipse.eclipsedMeanPeers.toFixed(1)
      }, of them inbound ${
        result.eclipse.eclipsedMeanInbound.toFixed(1)
      } (means); ${result.eclipse.eclipsedJustStarted} up for less than ${
        JUST_STARTED_MS / 1000
      } s, ${result.eclipse.eclipsedRecently} eclipsed for less than ${
        RECENT_ECLIPSE_MS / 1000
      } s, ${result.eclipse.eclipsedAttackerBootstrapped} bootstrapped through attackers only, ${result.eclipse.eclipsedKnowingNoHonest} knowing no honest peer, ${result.eclipse.eclipsedHonestShortLived} with an honest feeler, trial or delivery session only; ${result.eclipse.oneHonestPeer} more with one honest peer among attackers`,
      `  attackers banned by honest nodes: ${result.guard.distinctAttackersBanned} distinct; honest peers banned: ${result.guard.honestBanned}`,
    );
    const time = result.eclipseTime;
    if (time) {
      lines.push(
        `  time eclipsed since T0${time.fromSeconds > 0 ? `+${time.fromSeconds} s` : ""} (${
          time.windowSeconds.toFixed(0)
        } s): ${time.nodeSeconds.toFixed(1)} node-seconds (${
          (100 * time.share).toFixed(3)
        }% of honest node-time), ${time.nodes} nodes, ${time.nodesLong} of them for ${
          LONG_ECLIPSE_MS / 1000
        } s or more; longest ${
          time.longestSeconds.toFixed(1)
        } s; ${time.eclipsedAtStart} eclipsed when counting began`,
      );
    }
    if (result.powCost) {
      lines.push(
        `  identity cost: ${result.powCost.measuredMsPerIdentity} ms of proof-of-work per identity ` +
          `per day (difficulty ${result.powCost.difficulty}); ${result.powCost.attackersCpuSecondsPerDay} CPU-s per day for all attackers`,
      );
    }
  }
  lines.push(
    `  run: ${result.run.wallSeconds} s wall, ${result.run.virtualSeconds} s virtual, ${result.run.events} events, peak RSS ${result.run.peakRssMiB} MiB`,
  );
  return lines.join("\n");
}

/** A traced item's origin over time, a line per snapshot. */
function formatTrace(trace: ItemTrace): string {
  const lines = [
    `item ${trace.tag}: origin node ${trace.origin}, announced at ${
      (trace.announcedAt / 1000).toFixed(1)
    } s, bootstrappers ${
      trace.bootstrappers.map((b) => `${b.index}${b.honest ? "h" : "a"}`).join(" ") || "none"
    } (sessions: node index, h honest / a attacker, o outbound / i inbound, score, * delivered)`,
  ];
  for (const snap of trace.snapshots) {
    const sessions = snap.sessions.map((s) =>
      `${s.index}${s.honest ? "h" : "a"}${s.direction[0]}${s.score}${s.delivered ? "*" : ""}`
    ).join(" ");
    const c = snap.connections;
    const counters = c
      ? `dials ${c.dials}, reanchored ${c.reanchored}, reinforced ${c.reinforced}, deliveries ${c.deliveries}`
      : "down";
    lines.push(
      `  +${snap.afterMs} ms: reached ${snap.reached}; ${counters}; ${sessions || "no sessions"}`,
    );
  }
  return lines.join("\n");
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      scenario: { type: "string" },
      nodes: { type: "string" },
      seed: { type: "string" },
      ratio: { type: "string" },
      items: { type: "string" },
      degree: { type: "string" },
      loss: { type: "string" },
      "no-pow": { type: "boolean" },
      "trusted-bootstrappers": { type: "boolean" },
      "trace-item": { type: "string", multiple: true },
      "bootstraps-per-node": { type: "string" },
      "steady-items": { type: "string" },
      out: { type: "string" },
      quiet: { type: "boolean" },
      list: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      console.log(`${name.padEnd(20)}${scenario.attack ? "[attack] " : ""}${scenario.description}`);
    }
    return 0;
  }
  const name = values.scenario;
  if (!name) throw new UsageError("--scenario is required (--list shows the scenarios)");
  const scenario = SCENARIOS[name];
  if (!scenario) {
    throw new UsageError(
      `unknown scenario "${name}"; one of: ${Object.keys(SCENARIOS).join(", ")}`,
    );
  }
  const nodes = wholeNumber(values.nodes, "nodes", 1000);
  const seed = wholeNumber(values.seed, "seed", 1);
  const items = values.items === undefined ? undefined : wholeNumber(values.items, "items", 20);
  const ratio = values.ratio === undefined ? 1 : parseRatio(values.ratio);
  const degree = wholeNumber(values.degree, "degree", SIM_NODE_CONFIG.degree);
  let lossRate: number | undefined;
  if (values.loss !== undefined) {
    lossRate = Number(values.loss);
    if (!(lossRate >= 0 && lossRate < 1) || values.loss.trim() === "") {
      throw new UsageError(`--loss must be a probability in [0, 1), got "${values.loss}"`);
    }
  }
  const traceItems = (values["trace-item"] ?? []).map((tag) => wholeNumber(tag, "trace-item", 1));
  const bootstrapsPerNode = wholeNumber(
    values["bootstraps-per-node"],
    "bootstraps-per-node",
    DEFAULT_BOOTSTRAPS_PER_NODE,
  );
  const steadyItemsMs = wholeNumber(
    values["steady-items"],
    "steady-items",
    DEFAULT_STEADY_ITEMS_MS,
    0,
  );
  const out = values.out ?? "sim-results";
  const result = runScenario(name, {
    nodes,
    seed,
    ratio,
    items,
    lossRate,
    measurePow: !values["no-pow"],
    traceItems,
    bootstrapsPerNode,
    trustedBootstrappers: values["trusted-bootstrappers"],
    steadyItemsMs,
    node: degree === SIM_NODE_CONFIG.degree ? undefined : { config: { degree } },
    progress: values.quiet ? undefined : (line) => console.error(line),
  });
  await Deno.mkdir(out, { recursive: true });
  const base = `${out}/${name}-n${nodes}${
    scenario.attack ? `-r${ratioLabel(ratio).replace(":", "to")}` : ""
  }${degree === SIM_NODE_CONFIG.degree ? "" : `-d${degree}`}${
    bootstrapsPerNode === DEFAULT_BOOTSTRAPS_PER_NODE ? "" : `-b${bootstrapsPerNode}`
  }${values["trusted-bootstrappers"] ? "-t" : ""}${
    steadyItemsMs === DEFAULT_STEADY_ITEMS_MS ? "" : `-q${steadyItemsMs}`
  }-s${seed}`;
  const { charts, ...figures } = result;
  await Deno.writeTextFile(`${base}.json`, JSON.stringify(figures, null, 2) + "\n");
  await Deno.writeTextFile(`${base}.svg`, stackCharts(charts));
  console.log(summary(result));
  for (const trace of result.itemTraces ?? []) console.log(formatTrace(trace));
  console.log(`wrote ${base}.json and ${base}.svg`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (
      error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      console.error(`simulate: ${(error as Error).message}`);
      Deno.exit(2);
    }
    throw error;
  }
}
