/**
 * Markdown tables of simulation results: reads every `*.json` written by
 * `deno task simulate` in a directory and prints one table of delivery and
 * latency, one of traffic and cost, and one of the attack figures.
 *
 * ```sh
 * deno run --allow-read scripts/simulate_report.ts docs/sim
 * ```
 *
 * @module
 */

import { aggregate } from "../lib/sim/metrics.ts";
import type { ScenarioResult } from "../lib/sim/scenarios.ts";

type Result = Omit<ScenarioResult, "charts">;

const ORDER = [
  "baseline",
  "churn",
  "mass-failure",
  "partition",
  "eclipse-one",
  "eclipse-publishers",
  "censor",
  "degrade",
  "cold-boot",
  "covert-flash",
  "covert-flash-silent",
  "offer-flood",
  "id-squat",
];

function ratio(result: Result): string {
  if (!result.attackers) return "-";
  return result.ratio >= 1
    ? `${+result.ratio.toFixed(2)}:1`
    : `1:${+(1 / result.ratio).toFixed(1)}`;
}

function ms(value: number | null): string {
  return value === null ? "never" : value.toFixed(0);
}

function pct(value: number, digits = 2): string {
  return `${(100 * value).toFixed(digits)}%`;
}

function row(cells: (string | number)[]): string {
  return `| ${cells.join(" | ")} |`;
}

/** The delivery table's cells after the first three (`lead`) for summary `d`. */
function deliveryCells(
  lead: (string | number)[],
  d: ReturnType<typeof aggregate>,
): (string | number)[] {
  return [
    ...lead,
    d.items,
    pct(d.deliveryRatio, 3),
    pct(d.worstItemDeliveryRatio),
    ms(d.t50.mean),
    ms(d.t99.mean),
    ms(d.t100.mean),
    d.bound50.mean === null
      ? "nobody reachable"
      : `${ms(d.bound50.mean)} / ${ms(d.bound99.mean)} / ${ms(d.bound100.mean)}`,
    d.t99OverBound.mean === null ? "n/a" : `${d.t99OverBound.mean}, ${d.t99OverBound.max}`,
    d.duplicatesPerDelivery,
    d.maxHops,
  ];
}

/** The three tables for `results`, as markdown. */
export function report(results: readonly Result[]): string {
  const sorted = [...results].sort((a, b) =>
    ORDER.indexOf(a.scenario) - ORDER.indexOf(b.scenario) || a.nodes - b.nodes ||
    a.ratio - b.ratio
  );
  const out: string[] = [];
  out.push(
    row([
      "scenario",
      "honest",
      "attackers",
      "items",
      "delivery",
      "worst item",
      "t50 ms",
      "t99 ms",
      "t100 ms",
      "bound 50/99/100 ms",
      "t99/bound (mean, worst)",
      "dup/delivery",
      "max hops",
    ]),
    row(new Array(13).fill("---")),
  );
  for (const r of sorted) {
    // Recomputed from the items, so that results written by older versions read alike
    // (they gave a bound of 0 for an item whose eligible nodes were all unreachable).
    const d = aggregate(
      r.items.map((i) =>
        i.unreachable === i.eligible ? { ...i, bound50: null, bound99: null, bound100: null } : i
      ),
    );
    out.push(row(deliveryCells(
      [r.scenario, r.nodes, r.attackers ? `${r.attackers} (${ratio(r)})` : "-"],
      d,
    )));
    // Scenarios with phases (partition, cold boot, covert flash): one row each.
    const phases = Object.entries(r.phases ?? {});
    for (const [name, p] of phases.length > 1 ? phases : []) {
      out.push(row(deliveryCells([`↳ ${name}`, "", ""], p)));
    }
  }
  out.push("");
  out.push(
    row([
      "scenario",
      "honest",
      "attackers",
      "gossip msgs/node/item",
      "gossip bytes/node/item",
      "background msgs/node/s",
      "dials/node (join)",
      "wall s",
      "virtual s",
      "events",
      "peak RSS MiB",
    ]),
    row(new Array(11).fill("---")),
  );
  for (const r of sorted) {
    out.push(row([
      r.scenario,
      r.nodes,
      r.attackers ? `${r.attackers} (${ratio(r)})` : "-",
      r.traffic.gossipMessagesPerNodePerItem,
      r.traffic.gossipBytesPerNodePerItem.toFixed(0),
      r.traffic.backgroundMessagesPerNodePerSecond,
      r.joining.dialsPerNode,
      r.run.wallSeconds.toFixed(0),
      r.run.virtualSeconds.toFixed(0),
      r.run.events.toLocaleString("en-US"),
      r.run.peakRssMiB,
    ]));
  }
  const attacks = sorted.filter((r) => r.attackers > 0);
  if (attacks.length > 0) {
    out.push("");
    out.push(
      row([
        "scenario",
        "ratio",
        "delivery",
        "eclipsed honest (end)",
        "of them by chance",
        "of them up < 30 s / bootstrapped through attackers only / knowing no honest peer",
        "of them eclipsed < 10 s",
        "one honest peer among attackers",
        "worst eclipsed (timeline)",
        "targets eclipsed",
        "attackers among peers",
        "attackers banned / sessions dropped as distrusted",
        "honest banned",
        "PoW CPU-s/day (all attackers)",
      ]),
      row(new Array(14).fill("---")),
    );
    for (const r of attacks) {
      const worst = Math.max(r.eclipse.eclipsedShare, ...r.timeline.map((p) => p.eclipsedShare));
      out.push(row([
        r.scenario,
        ratio(r),
        pct(r.delivery.deliveryRatio, 3),
        `${r.eclipse.eclipsed} (${pct(r.eclipse.eclipsedShare)})`,
        // Runs written before the figure existed lack it.
        "eclipsedByChance" in r.eclipse ? r.eclipse.eclipsedByChance.toFixed(1) : "-",
        "eclipsedJustStarted" in r.eclipse
          ? `${r.eclipse.eclipsedJustStarted} / ${r.eclipse.eclipsedAttackerBootstrapped}` +
            ("eclipsedKnowingNoHonest" in r.eclipse
              ? ` / ${r.eclipse.eclipsedKnowingNoHonest}`
              : "")
          : "-",
        "eclipsedRecently" in r.eclipse ? r.eclipse.eclipsedRecently : "-",
        "oneHonestPeer" in r.eclipse ? r.eclipse.oneHonestPeer : "-",
        pct(worst),
        r.eclipse.targets ? `${r.eclipse.targets.eclipsed}/${r.eclipse.targets.honest}` : "-",
        pct(r.eclipse.attackerPeerShare, 1),
        `${r.guard.distinctAttackersBanned} / ${r.guard.distrustedDropped}`,
        r.guard.honestBanned,
        r.powCost ? r.powCost.attackersCpuSecondsPerDay : "-",
      ]));
    }
  }
  return out.join("\n") + "\n";
}

if (import.meta.main) {
  if (Deno.args[0] === "--help" || Deno.args[0] === "-h") {
    console.log(
      "deno run --allow-read scripts/simulate_report.ts [DIR]\n\n" +
        "Markdown tables of every simulation result (*.json) in DIR (default docs/sim).",
    );
    Deno.exit(0);
  }
  const dir = Deno.args[0] ?? "docs/sim";
  const results: Result[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    results.push(JSON.parse(Deno.readTextFileSync(`${dir}/${entry.name}`)));
  }
  console.log(report(results));
}
