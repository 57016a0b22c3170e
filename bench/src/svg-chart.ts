/**
 * Line charts as plain SVG text: panels side by side sharing one legend,
 * with linear, logarithmic or "nines" axes (a percentile p drawn at
 * -log10(1 - p), so p50, p90, p99 and p99.9 are evenly spaced and the tail
 * gets room). No script, no external font: any browser or GitHub renders it.
 */

export interface Series {
  name: string;
  color: string;
  points: Array<[x: number, y: number]>;
  dashed?: boolean;
}

export interface Axis {
  label: string;
  scale: "linear" | "log" | "nines";
  min?: number;
  max?: number;
}

export interface Panel {
  title: string;
  x: Axis;
  y: Axis;
  series: Series[];
}

export const PALETTE = ["#6b7280", "#2563eb", "#16a34a", "#ea580c", "#9333ea", "#dc2626"];

const PANEL_W = 380;
const PANEL_H = 280;
const MARGIN = { left: 62, right: 24, top: 30, bottom: 46 };
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

const escape = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function transform(scale: Axis["scale"], value: number): number {
  if (scale === "log") return Math.log10(value);
  if (scale === "nines") return -Math.log10(1 - value);
  return value;
}

function niceStep(span: number): number {
  const raw = span / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10) * power;
}

function formatNumber(value: number): string {
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 10_000) return `${Math.round(value / 1000)}k`;
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 1) return Number(value.toFixed(1)).toString();
  return Number(value.toPrecision(2)).toString();
}

/** Tick values (untransformed) and their labels across [lo, hi] in transformed units. */
function ticks(axis: Axis, lo: number, hi: number): Array<[number, string]> {
  if (axis.scale === "nines") {
    const out: Array<[number, string]> = [];
    for (let nines = 0; nines <= Math.ceil(hi); nines++) {
      const p = 1 - 10 ** -nines;
      const label = nines === 0 ? "p0" : `p${Number((p * 100).toFixed(nines))}`;
      if (nines >= lo - 1e-9 && nines <= hi + 1e-9) out.push([p, label]);
      if (nines === 0 && lo <= Math.log10(2) && hi >= Math.log10(2)) out.push([0.5, "p50"]);
    }
    return out;
  }
  if (axis.scale === "log") {
    const out: Array<[number, string]> = [];
    for (let power = Math.floor(lo); power <= Math.ceil(hi); power++) {
      for (const mantissa of hi - lo > 2.5 ? [1] : [1, 2, 5]) {
        const value = mantissa * 10 ** power;
        const t = Math.log10(value);
        if (t >= lo - 1e-9 && t <= hi + 1e-9) out.push([value, formatNumber(value)]);
      }
    }
    return out;
  }
  const step = niceStep(hi - lo || 1);
  const out: Array<[number, string]> = [];
  for (let value = Math.ceil(lo / step) * step; value <= hi + step * 1e-9; value += step) {
    out.push([value, formatNumber(value)]);
  }
  return out;
}

function range(axis: Axis, values: number[]): [number, number] {
  const finite = values.filter((value) => Number.isFinite(value));
  let lo = axis.min !== undefined ? transform(axis.scale, axis.min) : Math.min(...finite);
  let hi = axis.max !== undefined ? transform(axis.scale, axis.max) : Math.max(...finite);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (axis.scale === "log" && axis.min === undefined) lo = Math.floor(lo * 2) / 2;
  if (axis.scale === "log" && axis.max === undefined) hi = Math.ceil(hi * 2) / 2;
  if (axis.scale === "linear" && axis.min === undefined && lo > 0) lo = 0;
  if (axis.scale === "linear" && axis.max === undefined) hi += (hi - lo) * 0.05;
  if (hi - lo < 1e-9) hi = lo + 1;
  return [lo, hi];
}

function renderPanel(panel: Panel, offsetX: number, offsetY: number, panelW: number): string {
  const plotW = panelW - MARGIN.left - MARGIN.right;
  const plotH = PANEL_H - MARGIN.top - MARGIN.bottom;
  const tx = (value: number) => transform(panel.x.scale, value);
  const ty = (value: number) => transform(panel.y.scale, value);
  const usable = (x: number, y: number) =>
    Number.isFinite(tx(x)) && Number.isFinite(ty(y)) && (panel.y.scale !== "log" || y > 0);
  const points = panel.series.flatMap((series) => series.points).filter(([x, y]) => usable(x, y));
  const [x0, x1] = range(
    panel.x,
    points.map(([x]) => tx(x)),
  );
  const [y0, y1] = range(
    panel.y,
    points.map(([, y]) => ty(y)),
  );
  const px = (value: number) => MARGIN.left + ((tx(value) - x0) / (x1 - x0)) * plotW;
  const py = (value: number) => MARGIN.top + plotH - ((ty(value) - y0) / (y1 - y0)) * plotH;
  const parts: string[] = [`<g transform="translate(${offsetX},${offsetY})">`];
  parts.push(
    `<text x="${MARGIN.left + plotW / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">${escape(panel.title)}</text>`,
  );
  for (const [value, label] of ticks(panel.y, y0, y1)) {
    const y = py(value).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`,
      `<text x="${MARGIN.left - 6}" y="${y}" dy="4" text-anchor="end" font-size="11" fill="#374151">${label}</text>`,
    );
  }
  for (const [value, label] of ticks(panel.x, x0, x1)) {
    const x = px(value).toFixed(1);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#e5e7eb"/>`,
      `<text x="${x}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" font-size="11" fill="#374151">${label}</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${PANEL_H - 8}" text-anchor="middle" font-size="11" fill="#111827">${escape(panel.x.label)}</text>`,
    `<text transform="translate(14,${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="11" fill="#111827">${escape(panel.y.label)}</text>`,
  );
  for (const series of panel.series) {
    let path = "";
    let pen = "M";
    for (const [x, y] of series.points) {
      if (!usable(x, y)) {
        pen = "M";
        continue;
      }
      path += `${pen}${px(x).toFixed(1)},${py(y).toFixed(1)} `;
      pen = "L";
    }
    if (path === "") continue;
    const dash = series.dashed ? ' stroke-dasharray="5 3"' : "";
    parts.push(
      `<path d="${path.trim()}" fill="none" stroke="${series.color}" stroke-width="1.8"${dash}><title>${escape(series.name)}</title></path>`,
    );
  }
  parts.push("</g>");
  return parts.join("\n");
}

/** One SVG document: a title, a legend of every series name, then the panels in a grid. */
export function renderChart(title: string, panels: Panel[], columns = panels.length): string {
  const legend = new Map<string, Series>();
  for (const series of panels.flatMap((panel) => panel.series)) {
    if (!legend.has(series.name)) legend.set(series.name, series);
  }
  const rows = Math.ceil(panels.length / columns);
  const perLine = Math.min(columns, panels.length);
  // Wide enough for the title at about 8.5 px per character of 15 px text.
  const width = Math.max(PANEL_W * perLine, Math.ceil(24 + title.length * 8.5));
  // A title wider than the panels widens them.
  const panelW = width / perLine;
  const legendRows = Math.ceil(legend.size / Math.max(1, Math.floor(width / 260)));
  const top = 34 + legendRows * 18;
  const height = top + rows * PANEL_H;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="600">${escape(title)}</text>`,
  ];
  const perRow = Math.max(1, Math.floor(width / 260));
  [...legend.values()].forEach((series, index) => {
    const x = 12 + (index % perRow) * 260;
    const y = 40 + Math.floor(index / perRow) * 18;
    const dash = series.dashed ? ' stroke-dasharray="5 3"' : "";
    parts.push(
      `<line x1="${x}" x2="${x + 22}" y1="${y - 4}" y2="${y - 4}" stroke="${series.color}" stroke-width="2.5"${dash}/>`,
      `<text x="${x + 28}" y="${y}" font-size="12">${escape(series.name)}</text>`,
    );
  });
  panels.forEach((panel, index) => {
    parts.push(
      renderPanel(
        panel,
        (index % columns) * panelW,
        top + Math.floor(index / columns) * PANEL_H,
        panelW,
      ),
    );
  });
  parts.push("</svg>", "");
  return parts.join("\n");
}
