/**
 * Markdown output for the reports: tables padded the way Prettier formats
 * them (so a table pasted into RESULTS.md passes `prettier --check`), and
 * number formatting that prints a missing figure as "–".
 */

export type Align = "left" | "right";

const width = (text: string) => [...text].length;

export function markdownTable(headers: string[], rows: string[][], align: Align[] = []): string {
  const widths = headers.map((header, column) =>
    Math.max(3, width(header), ...rows.map((row) => width(row[column] ?? ""))),
  );
  const pad = (text: string, column: number) => {
    const fill = " ".repeat(widths[column]! - width(text));
    return align[column] === "right" ? fill + text : text + fill;
  };
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => pad(cell, column)).join(" | ")} |`;
  const rule = widths.map((size, column) =>
    align[column] === "right" ? `${"-".repeat(size - 1)}:` : "-".repeat(size),
  );
  return [
    line(headers),
    `| ${rule.join(" | ")} |`,
    ...rows.map((row) => line(headers.map((_, column) => row[column] ?? ""))),
  ].join("\n");
}

export function fmt(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "–";
}

/** Significant digits for ratios and latencies that span orders of magnitude. */
export function fmtSig(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return "–";
  if (Math.abs(value) >= 10 ** digits) return value.toFixed(0);
  return Number(value.toPrecision(digits)).toString();
}

export function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "–";
}
