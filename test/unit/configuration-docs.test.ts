/**
 * docs/configuration.md's table of settings says what the plugin itself says: every option that
 * `azure-vnet --help` prints has a row with the same flag, environment variable and default, and the
 * table has no other rows. The source of truth is the help text of the built plugin, as a user sees it,
 * so the test does not depend on how plugin/config.ts defines its options. No root needed.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../helpers/readme.js";

const CONFIGURATION_DOC = join(REPO, "docs", "configuration.md");

/** One option as the help text or the table states it; `default` is undefined when there is none. */
type Option = { flag: string; env: string; default: string | undefined };

/** The options of `node dist/plugin/main.js --help`: lines `--flag ENV_VAR description (default X)`. */
function helpOptions(help: string): Option[] {
  const options: Option[] = [];
  for (const line of help.split("\n")) {
    const match = /^\s+--([a-z0-9-]+)\s.*?\b(AZURE_VNET_[A-Z0-9_]+)\b(.*)$/.exec(line);
    if (!match) continue;
    const fallback = /\(default:?\s+([^\s()]+)\)\s*$/.exec(match[3]!);
    options.push({ flag: `--${match[1]}`, env: match[2]!, default: fallback?.[1] });
  }
  return options;
}

/**
 * The rows of the doc's table whose first cell is a flag: `| \`--flag\` | \`ENV\` | default | meaning |`.
 * The default is the first code span of its cell; a cell without one (`—`, `— (off)`) means none.
 */
function tableOptions(markdown: string): Option[] {
  const options: Option[] = [];
  for (const line of markdown.split("\n")) {
    if (!/^\|\s*`--/.test(line)) continue;
    const cells = line
      .split("|")
      .slice(1, -1)
      .map((cell) => cell.trim());
    const code = (cell: string | undefined) => /`([^`]*)`/.exec(cell ?? "")?.[1];
    options.push({ flag: code(cells[0])!, env: code(cells[1]) ?? "", default: code(cells[2]) });
  }
  return options;
}

describe("docs/configuration.md: the table of settings is what --help says", function () {
  let help = "";
  let fromHelp: Option[] = [];
  let fromDoc: Option[] = [];
  before(() => {
    help = execFileSync(process.execPath, [join(REPO, "dist", "plugin", "main.js"), "--help"], {
      encoding: "utf8",
    });
    fromHelp = helpOptions(help);
    fromDoc = tableOptions(readFileSync(CONFIGURATION_DOC, "utf8"));
  });

  it("reads every option of --help and every row of the table", () => {
    const helpLines = help.split("\n").filter((line) => /^\s+--\S.*\bAZURE_VNET_/.test(line));
    expect(fromHelp.length, "options parsed from --help").to.equal(helpLines.length);
    expect(fromHelp.length, "options in --help").to.be.greaterThan(10);
    expect(fromDoc.length, "rows of the table in docs/configuration.md").to.be.greaterThan(10);
  });

  it("every option has the same flag, environment variable and default in both", () => {
    const differences: string[] = [];
    const describe = (value: string | undefined) => (value === undefined ? "none" : JSON.stringify(value));
    for (const option of fromHelp) {
      const row = fromDoc.find((r) => r.flag === option.flag);
      if (!row) {
        differences.push(`${option.flag} (${option.env}): in --help, but no row in docs/configuration.md`);
        continue;
      }
      if (row.env !== option.env)
        differences.push(`${option.flag}: --help says ${option.env}, docs/configuration.md ${row.env}`);
      if (row.default !== option.default)
        differences.push(
          `${option.flag}: --help says default ${describe(option.default)}, docs/configuration.md ${describe(row.default)}`,
        );
    }
    for (const row of fromDoc) {
      if (!fromHelp.some((option) => option.flag === row.flag))
        differences.push(`${row.flag} (${row.env}): a row in docs/configuration.md, but not in --help`);
    }
    const flags = fromDoc.map((row) => row.flag);
    for (const flag of new Set(flags.filter((flag, i) => flags.indexOf(flag) !== i)))
      differences.push(`${flag}: more than one row in docs/configuration.md`);
    expect(differences, "options where docs/configuration.md and --help differ").to.deep.equal([]);
  });
});
