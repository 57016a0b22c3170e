/**
 * One run as an SVG line chart: the maximum M, the temporary limit T, the
 * fleet's inflight, and per frontend its share (solid) and its inflight
 * (faint). Written by hand; no charting dependency.
 */
import type { Sample } from "./metrics.js";

const WIDTH = 960;
const HEIGHT = 440;
const MARGIN = { left: 60, right: 20, top: 56, bottom: 40 };
const FRONTEND_COLOURS = ["#d9480f", "#2b8a3e", "#7048e8", "#1098ad", "#c2255c", "#5c940d"];
const MAX_POINTS = 1500;

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Round numbers for axis ticks: 1, 2 or 5 times a power of ten. */
function tickStep(range: number, wanted: number): number {
  const raw = range / Math.max(1, wanted);
  const power = 10 ** Math.floor(Math.log10(raw));
  const factor = raw / power;
  return power * (factor <= 1 ? 1 : factor <= 2 ? 2 : factor <= 5 ? 5 : 10);
}

export function renderChart(title: string, subtitle: string, samples: readonly Sample[]): string {
  const stride = Math.max(1, Math.ceil(samples.length / MAX_POINTS));
  const points = samples.filter((_s, i) => i % stride === 0);
  const first = points[0];
  const last = points[points.length - 1];
  if (!first || !last)
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="60"><text x="10" y="30">no samples</text></svg>\n`;
  const frontends = first.shares.length;
  const tMax = Math.max(1, last.t);
  let yMax = first.max;
  for (const s of points) {
    yMax = Math.max(yMax, s.limit, s.fleetInflight, ...s.shares.filter((x) => !Number.isNaN(x)));
  }
  yMax *= 1.05;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (t: number) => MARGIN.left + (t / tMax) * plotW;
  const y = (v: number) => MARGIN.top + plotH - (v / yMax) * plotH;
  const path = (value: (s: Sample) => number) => {
    let d = "";
    let pen = false;
    for (const s of points) {
      const v = value(s);
      if (Number.isNaN(v)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(s.t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    return d;
  };
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`);
  out.push(
    `<text x="${MARGIN.left}" y="20" font-size="15" font-weight="bold">${escape(title)}</text>`,
  );
  out.push(`<text x="${MARGIN.left}" y="34" fill="#555">${escape(subtitle)}</text>`);

  const yStep = tickStep(yMax, 6);
  for (let v = 0; v <= yMax; v += yStep) {
    out.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`,
    );
    out.push(
      `<text x="${MARGIN.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v}</text>`,
    );
  }
  const tStep = tickStep(tMax / 1000, 10);
  for (let t = 0; t <= tMax / 1000; t += tStep) {
    const px = x(t * 1000).toFixed(1);
    out.push(
      `<line x1="${px}" x2="${px}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#555"/>`,
    );
    out.push(
      `<text x="${px}" y="${MARGIN.top + plotH + 18}" text-anchor="middle" fill="#555">${Number(t.toFixed(3))}</text>`,
    );
  }
  out.push(
    `<text x="${WIDTH - MARGIN.right}" y="${HEIGHT - 6}" text-anchor="end" fill="#555">time (s)</text>`,
  );
  out.push(
    `<text x="14" y="${MARGIN.top + plotH / 2}" transform="rotate(-90 14 ${MARGIN.top + plotH / 2})" text-anchor="middle" fill="#555">concurrent executions</text>`,
  );

  const line = (d: string, stroke: string, extra = "") =>
    d ? out.push(`<path d="${d}" fill="none" stroke="${stroke}" ${extra}/>`) : undefined;
  for (let f = 0; f < frontends; f++) {
    const colour = FRONTEND_COLOURS[f % FRONTEND_COLOURS.length] ?? "#333";
    line(
      path((s) => s.inflight[f] ?? Number.NaN),
      colour,
      `stroke-width="1" stroke-opacity="0.35"`,
    );
    line(
      path((s) => s.shares[f] ?? Number.NaN),
      colour,
      `stroke-width="2"`,
    );
  }
  line(
    path((s) => s.fleetInflight),
    "#1c7ed6",
    `stroke-width="1.5" stroke-opacity="0.8"`,
  );
  line(
    path((s) => s.limit),
    "#000",
    `stroke-width="2"`,
  );
  line(
    path((s) => s.max),
    "#868e96",
    `stroke-width="1.5" stroke-dasharray="6 4"`,
  );

  const legend: Array<[string, string, string]> = [
    ["M (maximum)", "#868e96", `stroke-dasharray="6 4"`],
    ["T (temporary limit)", "#000", ""],
    ["fleet inflight", "#1c7ed6", ""],
  ];
  for (let f = 0; f < frontends; f++) {
    legend.push([
      `frontend ${f} share / inflight`,
      FRONTEND_COLOURS[f % FRONTEND_COLOURS.length] ?? "#333",
      "",
    ]);
  }
  let lx = MARGIN.left;
  for (const [label, colour, dash] of legend) {
    out.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="47" y2="47" stroke="${colour}" stroke-width="2" ${dash}/>`,
    );
    out.push(`<text x="${lx + 22}" y="52" fill="#333">${escape(label)}</text>`);
    lx += 28 + label.length * 5.6;
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
