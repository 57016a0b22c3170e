/**
 * Plain-text tables for the operator commands (`gust fleet`, `gust runtime`,
 * `gust rollout`): columns padded to their widest cell, numbers
 * right-aligned below the header row, trailing spaces trimmed.
 */
export function textTable(
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
  indent = "",
): string {
  const cells = rows.map((row) => row.map((cell) => String(cell)));
  const widths: number[] = [];
  for (const row of cells) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return cells
    .map(
      (row, r) =>
        indent +
        row
          .map((cell, i) => {
            const width = widths[i] ?? 0;
            const numeric = r > 0 && typeof rows[r]?.[i] === "number";
            return numeric ? cell.padStart(width) : cell.padEnd(width);
          })
          .join("  ")
          .trimEnd(),
    )
    .join("\n");
}
