/**
 * The rule of the test suite: every command that README.md or a docs/*.md shows in its ```sh blocks runs
 * verbatim in some test, through readmeCommand/spawnReadmeCommand (test/helpers/readme.ts), with only
 * what a user has. A command is its text, whichever file shows it, so moving one between files needs
 * no test change. This finds those calls in the test sources with the TypeScript parser and names every
 * documented command that no test runs, and every call whose text no documentation file has. No root
 * needed.
 */
import { expect } from "chai";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { documentationFiles, documentedCommands, REPO, stripComment } from "../helpers/readme.js";

/**
 * Functions that run a README command: the helpers, and a test's own wrappers named readmeOn<Machine>,
 * which may pass their parameter through; every other call must pass the command as a literal.
 */
const RUNNER = /^(readmeCommand|spawnReadmeCommand|readmeOn[A-Z]\w*)$/;

/**
 * Documented commands that no test runs, each with the reason. Keep this short: a command that a test
 * can run on an arranged machine belongs in a test instead.
 */
const NOT_RUN_BY_A_TEST: Readonly<Record<string, string>> = {
  "bash test/run-all.sh":
    "CI itself runs it verbatim (.ci/run); a test that ran it would run the whole suite inside itself",
  [`journalctl -u docker | grep "plugin=$(docker plugin inspect -f '{{.Id}}' azure:latest)"`]:
    "dockerd's log reaches journald only when systemd runs dockerd; the test's dockerd logs to a file, " +
    "where the managed-plugin test greps the same plugin=<id> tag",
  ...Object.fromEntries(
    ["datapath", "control", "scale", "ipam", "arm", "all"].map((name) => [
      `npm run bench -- ${name}`,
      "a benchmark (docs/benchmarks.md): it runs for minutes on the emulated VNet and writes its " +
        "measurements into docs/benchmarks.md; benchmarks are not part of CI and no test asserts on a time",
    ]),
  ),
};

function testSources(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...testSources(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

type Call = { text: string | undefined; where: string };

/** The name a function-like node is known by: its own, or the variable it is assigned to. */
function functionName(fn: ts.SignatureDeclaration): string | undefined {
  if (fn.name !== undefined && ts.isIdentifier(fn.name)) return fn.name.text;
  const parent = fn.parent;
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  return undefined;
}

/** True when `argument` is a parameter of the runner wrapper that encloses `call`. */
function passesThroughParameter(argument: ts.Expression, call: ts.Node): boolean {
  if (!ts.isIdentifier(argument)) return false;
  for (let node: ts.Node | undefined = call.parent; node !== undefined; node = node.parent) {
    if (ts.isFunctionLike(node)) {
      const name = functionName(node);
      return (
        name !== undefined &&
        RUNNER.test(name) &&
        node.parameters.some((p) => ts.isIdentifier(p.name) && p.name.text === argument.text)
      );
    }
  }
  return false;
}

/** Every call of a command runner in the test sources, with its first argument if that is a literal. */
function runnerCalls(): Call[] {
  const calls: Call[] = [];
  for (const file of testSources(join(REPO, "test"))) {
    const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (
        ts.isCallExpression(node) &&
        ts.isIdentifier(node.expression) &&
        RUNNER.test(node.expression.text)
      ) {
        const first = node.arguments[0];
        const { line } = source.getLineAndCharacterOfPosition(node.getStart());
        const where = `${file.slice(REPO.length)}:${line + 1}`;
        const literal =
          first !== undefined && (ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first));
        if (literal) calls.push({ text: first.text, where });
        else if (!(first !== undefined && passesThroughParameter(first, node)))
          calls.push({ text: undefined, where });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return calls;
}

describe("README.md and docs/*.md: every command in their sh blocks runs verbatim in a test", function () {
  const documented = documentedCommands();
  const commands = [...documented.keys()];
  const calls = runnerCalls();
  const shownIn = (command: string) => `${JSON.stringify(command)} (${documented.get(command)!.join(", ")})`;

  it("reads README.md and every docs/*.md", () => {
    const files = documentationFiles();
    expect(files[0]).to.equal("README.md");
    expect(files).to.include.members(["docs/installing.md", "docs/troubleshooting.md"]);
    expect(files.every((file) => file === "README.md" || /^docs\/[^/]+\.md$/.test(file))).to.equal(true);
  });

  it("finds the documented commands (the extraction works)", () => {
    expect(commands).to.include(
      "packaging/build-plugin.sh --name registry.example.com/azure-vnet:0.1.0 --push",
    );
    expect(commands).to.include("bash test/run-all.sh");
    expect(commands.every((c) => c === c.trim() && c !== "" && !c.startsWith("#"))).to.equal(true);
  });

  it("strips trailing comments but not a # inside quotes or a word", () => {
    expect(stripComment("npm run build && npm run demo     # as root")).to.equal(
      "npm run build && npm run demo",
    );
    expect(stripComment(`echo '# not a comment' a#b`)).to.equal(`echo '# not a comment' a#b`);
    expect(stripComment(`grep "plugin=$(x -f '{{.Id}}' y)"`)).to.equal(`grep "plugin=$(x -f '{{.Id}}' y)"`);
  });

  it("every runner call passes a literal documented command", () => {
    const bad = calls
      .filter((call) => call.text === undefined || !documented.has(call.text))
      .map(
        (call) => `${call.where}: ${call.text === undefined ? "(not a literal)" : JSON.stringify(call.text)}`,
      );
    expect(bad, "calls whose text is not verbatim in the sh blocks of README.md or docs/*.md").to.deep.equal(
      [],
    );
  });

  it("every documented command is run by a test or listed, with its reason, as not runnable here", () => {
    const run = new Set(calls.map((call) => call.text));
    const missing = commands
      .filter((command) => !run.has(command) && !(command in NOT_RUN_BY_A_TEST))
      .map(shownIn);
    expect(missing, "documented commands no test runs verbatim (readmeCommand)").to.deep.equal([]);
  });

  it("the exception list names only documented commands that no test runs", () => {
    const run = new Set(calls.map((call) => call.text));
    for (const command of Object.keys(NOT_RUN_BY_A_TEST)) {
      expect(commands, "an exception for a command no documentation file has any more").to.include(command);
      expect(run.has(command), `${command} is run by a test: drop its exception`).to.equal(false);
    }
  });
});
