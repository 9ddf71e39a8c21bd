/**
 * Plain-text tables for the operator commands: a header row and left-aligned columns.
 */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd();
  return [line(header), ...(rows.length ? rows.map(line) : ["(none)"])].join("\n") + "\n";
}
