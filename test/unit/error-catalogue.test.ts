/**
 * Every error message the plugin can return is in the troubleshooting guide (docs/troubleshooting.md)
 * with its cause and fix, and is exercised by some test. The messages are read from the source, so a
 * new error without a guide entry or a test fails here.
 */
import { expect } from "chai";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));

function sources(folder: string): string[] {
  return readdirSync(join(REPO, folder)).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(join(REPO, path)).isDirectory()) return sources(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** `new XError(` followed by a string or template literal; placeholders become "…". */
export function errorTemplates(): { file: string; template: string }[] {
  const found: { file: string; template: string }[] = [];
  for (const file of ["lib", "driver", "ipam-driver", "plugin"].flatMap(sources)) {
    const text = readFileSync(join(REPO, file), "utf8");
    for (const match of text.matchAll(/new (\w+Error)\(\s*(`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")/g)) {
      const literal = match[2]!.slice(1, -1);
      const template = literal.replace(/\$\{(?:[^{}]|\{[^{}]*\})*\}/g, "…");
      found.push({ file, template });
    }
  }
  return found;
}

describe("error catalogue", () => {
  const templates = errorTemplates();
  const guide = readFileSync(join(REPO, "docs", "troubleshooting.md"), "utf8");
  const tests = ["test"]
    .flatMap(sources)
    .map((file) => readFileSync(join(REPO, file), "utf8"))
    .join("\n");

  it("finds the plugin's error messages in the source", () => {
    expect(templates.length).to.be.greaterThan(60);
  });

  it("lists every message in docs/troubleshooting.md", () => {
    const missing = templates
      .filter(({ template }) => !guide.includes(`\`${template}\``))
      .map((t) => `${t.file}: ${t.template}`);
    expect(missing, "add these to docs/troubleshooting.md, in backticks, with cause and fix").to.deep.equal(
      [],
    );
  });

  it("has a test that provokes every message", () => {
    const untested = templates
      .filter(({ template }) => {
        const fragments = template
          .split("…")
          .map((part) => part.trim())
          .filter((part) => part.length >= 8);
        return fragments.length > 0 && !fragments.some((fragment) => tests.includes(fragment));
      })
      .map((t) => `${t.file}: ${t.template}`);
    expect(untested, "write a test that makes the plugin say these").to.deep.equal([]);
  });
});
