/**
 * docs/security.md and test/e2e/security.test.ts say the same thing: every line of the threat model's
 * tables is the title of an e2e check, and every check of that file is a line of the tables. A line
 * without a check would be a promise nobody tests; a check without a line, a guarantee nobody reads.
 * No root needed: both files are read as text.
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../helpers/readme.js";

/** The first cell of every body row of the markdown tables in `markdown`. */
function tableLines(markdown: string): string[] {
  return markdown
    .split("\n")
    .filter((line) => line.startsWith("|") && !/^\|\s*-/.test(line))
    .map((line) => line.split("|")[1]!.trim())
    .filter((cell) => cell !== "What");
}

/** The titles of the `it(...)` calls in `source` (string literals only). */
function checkTitles(source: string): string[] {
  return [...source.matchAll(/\bit\(\s*"((?:[^"\\]|\\.)*)"/g)].map(
    (match) => JSON.parse(`"${match[1]}"`) as string,
  );
}

describe("docs/security.md: every line of the threat model is an e2e check", () => {
  const lines = tableLines(readFileSync(join(REPO, "docs", "security.md"), "utf8"));
  const checks = checkTitles(readFileSync(join(REPO, "test", "e2e", "security.test.ts"), "utf8"));

  it("finds the lines and the checks (the extraction works)", () => {
    expect(lines.length).to.be.greaterThan(10);
    expect(checks.length).to.be.greaterThan(10);
  });

  it("has a check for every line", () => {
    expect(
      lines.filter((line) => !checks.includes(line)),
      "lines of docs/security.md without a check",
    ).to.deep.equal([]);
  });

  it("has a line for every check", () => {
    expect(
      checks.filter((check) => !lines.includes(check)),
      "checks missing from docs/security.md",
    ).to.deep.equal([]);
  });
});
