/** Shared output helpers: `--json` for machines, aligned tables for people. */

export function printJson(value: unknown): void {
  process.stdout.write(
    `${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`,
  );
}

/** Render rows as a left-aligned table; `right` lists columns to right-align (numbers). */
export function formatTable(
  headers: string[],
  rows: (string | number | bigint)[][],
  right: Set<number> = new Set(),
): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
