/**
 * Every relative link of README.md and docs/*.md reaches a file of the repository and, with a `#anchor`,
 * a heading of that file (GitHub's anchors: lower case, punctuation dropped, spaces as hyphens). Moving
 * a section between files then cannot leave a link behind. No root needed.
 */
import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { documentationFiles, REPO } from "../helpers/readme.js";

/** The text of `markdown` outside fenced code blocks and inline code spans. */
function prose(markdown: string): string {
  let fenced = false;
  const lines: string[] = [];
  for (const line of markdown.split("\n")) {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (!fenced) lines.push(line.replace(/`[^`]*`/g, ""));
  }
  return lines.join("\n");
}

/** The anchors GitHub gives the headings of `markdown`, repeated ones numbered as GitHub does. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, "$1");
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

describe("README.md and docs/*.md: every relative link reaches its file and heading", () => {
  it("computes GitHub's anchors", () => {
    const anchors = headingAnchors(
      "# Networks created without `--subnet`\n## Node 24 and `--lite-mode` (2026-12-01)\n## A\n## A\n",
    );
    expect([...anchors]).to.deep.equal([
      "networks-created-without---subnet",
      "node-24-and---lite-mode-2026-12-01",
      "a",
      "a-1",
    ]);
  });

  it("no link is broken", () => {
    const broken: string[] = [];
    for (const file of documentationFiles()) {
      const path = join(REPO, file);
      const text = readFileSync(path, "utf8");
      for (const match of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1]!;
        if (/^[a-z]+:/i.test(target)) continue;
        const [link, anchor] = target.split("#") as [string, string | undefined];
        const linked = link === "" ? path : join(dirname(path), link);
        if (!existsSync(linked)) {
          broken.push(`${file}: ${target} (no file ${relative(REPO, linked)})`);
          continue;
        }
        if (anchor !== undefined && !headingAnchors(readFileSync(linked, "utf8")).has(anchor))
          broken.push(`${file}: ${target} (no heading #${anchor} in ${relative(REPO, linked)})`);
      }
    }
    expect(broken, "links in README.md and docs/*.md that lead nowhere").to.deep.equal([]);
  });
});
