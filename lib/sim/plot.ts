/**
 * SVG line charts of simulation results (scales and paths from d3).
 *
 * {@link lineChart} draws one chart; {@link stackCharts} puts several one
 * above the other in one SVG document.
 *
 * @module
 */

// @ts-types="@types/d3-scale"
import { scaleLinear, scaleLog } from "d3-scale";
// @ts-types="@types/d3-shape"
import { line } from "d3-shape";

/** One line of a chart. */
export interface Series {
  /** Legend text. */
  readonly name: string;
  /** Points (x, y); points with a non-finite coordinate break the line. */
  readonly points: readonly (readonly [number, number])[];
  /** Dashed line. */
  readonly dashed?: boolean;
  /** Draw markers at the points instead of a line. */
  readonly markers?: boolean;
}

/** A chart. */
export interface ChartSpec {
  /** Title above the chart. */
  readonly title: string;
  /** X axis label. */
  readonly xLabel: string;
  /** Y axis label. */
  readonly yLabel: string;
  /** The lines. */
  readonly series: readonly Series[];
  /** Fixed y domain (default: from the data, starting at 0). */
  readonly yDomain?: readonly [number, number];
  /** Fixed x domain (default: from the data). */
  readonly xDomain?: readonly [number, number];
  /** Logarithmic x axis. */
  readonly xLog?: boolean;
  /** Width in px (default 720). */
  readonly width?: number;
  /** Height in px (default 300). */
  readonly height?: number;
}

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f"];
const MARGIN = { top: 28, right: 16, bottom: 40, left: 56 };

/** An SVG `<g>` of one chart at (0, 0), with its size. */
export function lineChart(spec: ChartSpec): { svg: string; width: number; height: number } {
  const width = spec.width ?? 720;
  const height = spec.height ?? 300;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of spec.series) {
    for (const [x, y] of s.points) {
      if (Number.isFinite(x) && (!spec.xLog || x > 0)) xs.push(x);
      if (Number.isFinite(y)) ys.push(y);
    }
  }
  const xDomain = spec.xDomain ??
    [xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1] as const;
  const yDomain = spec.yDomain ?? [0, ys.length ? Math.max(...ys) || 1 : 1] as const;
  const x = spec.xLog
    ? scaleLog().domain([Math.max(1e-3, xDomain[0]), Math.max(xDomain[1], xDomain[0] * 10)])
      .range([0, plotW])
    : scaleLinear().domain([xDomain[0], xDomain[1] > xDomain[0] ? xDomain[1] : xDomain[0] + 1])
      .range([0, plotW]).nice();
  const y = scaleLinear().domain([yDomain[0], yDomain[1]]).range([plotH, 0]).nice();
  const parts: string[] = [];
  parts.push(
    `<text x="${MARGIN.left}" y="18" font-size="14" font-weight="bold">${
      escape(spec.title)
    }</text>`,
  );
  parts.push(`<g transform="translate(${MARGIN.left},${MARGIN.top})">`);
  // Grid and axes.
  const xTicks = spec.xLog ? x.ticks(6) : x.ticks(8);
  const xFormat = x.tickFormat(8);
  for (const tick of xTicks) {
    const px = x(tick).toFixed(1);
    parts.push(`<line x1="${px}" x2="${px}" y1="0" y2="${plotH}" stroke="#eee"/>`);
    parts.push(
      `<text x="${px}" y="${plotH + 14}" font-size="10" text-anchor="middle">${
        escape(xFormat(tick))
      }</text>`,
    );
  }
  for (const tick of y.ticks(6)) {
    const py = y(tick).toFixed(1);
    parts.push(`<line x1="0" x2="${plotW}" y1="${py}" y2="${py}" stroke="#eee"/>`);
    parts.push(
      `<text x="-6" y="${py}" font-size="10" text-anchor="end" dominant-baseline="middle">${
        escape(y.tickFormat(6)(tick))
      }</text>`,
    );
  }
  parts.push(`<rect x="0" y="0" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  parts.push(
    `<text x="${plotW / 2}" y="${plotH + 32}" font-size="11" text-anchor="middle">${
      escape(spec.xLabel)
    }</text>`,
  );
  parts.push(
    `<text transform="translate(-42,${
      plotH / 2
    }) rotate(-90)" font-size="11" text-anchor="middle">${escape(spec.yLabel)}</text>`,
  );
  // Lines.
  const path = line<readonly [number, number]>()
    .defined(([px, py]) => Number.isFinite(px) && Number.isFinite(py) && (!spec.xLog || px > 0))
    .x(([px]) => x(px))
    .y(([, py]) => y(py));
  spec.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    if (s.markers) {
      for (const [px, py] of s.points) {
        if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
        parts.push(
          `<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="2.5" fill="${colour}"/>`,
        );
      }
    } else {
      parts.push(
        `<path d="${path(s.points) ?? ""}" fill="none" stroke="${colour}" stroke-width="1.6"${
          s.dashed ? ' stroke-dasharray="5,3"' : ""
        }/>`,
      );
    }
    // Legend, top right.
    const ly = 10 + 14 * i;
    parts.push(
      `<line x1="${plotW - 170}" x2="${
        plotW - 150
      }" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"${
        s.dashed ? ' stroke-dasharray="5,3"' : ""
      }/>`,
    );
    parts.push(
      `<text x="${plotW - 145}" y="${ly}" font-size="10" dominant-baseline="middle">${
        escape(s.name)
      }</text>`,
    );
  });
  parts.push("</g>");
  return { svg: parts.join("\n"), width, height };
}

/** One SVG document with `charts` one above the other. */
export function stackCharts(charts: readonly ChartSpec[]): string {
  const drawn = charts.map(lineChart);
  const width = Math.max(...drawn.map((d) => d.width));
  const height = drawn.reduce((sum, d) => sum + d.height, 0);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  let top = 0;
  for (const chart of drawn) {
    parts.push(`<g transform="translate(0,${top})">`, chart.svg, "</g>");
    top += chart.height;
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
