/**
 * The rule of the test suite: every command the README shows in its ```sh blocks runs verbatim in some
 * test, through readmeCommand/spawnReadmeCommand (test/helpers/readme.ts), with only what a user has.
 * This finds those calls in the test sources with the TypeScript parser and names every README command
 * that no test runs, and every call whose text the README does not have. No root needed.
 */
import { expect } from "chai";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { README, REPO, readmeShellCommands, stripComment } from "../helpers/readme.js";

/**
 * Functions that run a README command: the helpers, and a test's own wrappers named readmeOn<Machine>,
 * which may pass their parameter through; every other call must pass the command as a literal.
 */
const RUNNER = /^(readmeCommand|spawnReadmeCommand|readmeOn[A-Z]\w*)$/;

/**
 * README commands that no test runs, each with the reason. Keep this short: a command that a test can
 * run on an arranged machine belongs in a test instead.
 */
const NOT_RUN_BY_A_TEST: Readonly<Record<string, string>> = {
  "bash test/run-all.sh":
    "CI itself runs it verbatim (.ci/run); a test that ran it would run the whole suite inside itself",
  [`journalctl -u docker | grep "plugin=$(docker plugin inspect -f '{{.Id}}' azure:latest)"`]:
    "dockerd's log reaches journald only when systemd runs dockerd; the test's dockerd logs to a file, " +
    "where the managed-plugin test greps the same plugin=<id> tag",
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

/** Every call of a README runner in the test sources, with its first argument if that is a literal. */
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

describe("README: every command in its sh blocks runs verbatim in a test", function () {
  const commands = readmeShellCommands(readFileSync(README, "utf8"));
  const calls = runnerCalls();

  it("finds the README's commands (the extraction works)", () => {
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

  it("every runner call passes a literal README command", () => {
    const bad = calls
      .filter((call) => call.text === undefined || !commands.includes(call.text))
      .map(
        (call) => `${call.where}: ${call.text === undefined ? "(not a literal)" : JSON.stringify(call.text)}`,
      );
    expect(bad, "calls whose text is not verbatim in README.md's sh blocks").to.deep.equal([]);
  });

  it("every README command is run by a test or listed, with its reason, as not runnable here", () => {
    const run = new Set(calls.map((call) => call.text));
    const missing = [...new Set(commands)].filter(
      (command) => !run.has(command) && !(command in NOT_RUN_BY_A_TEST),
    );
    expect(missing, "README commands no test runs verbatim (readmeCommand)").to.deep.equal([]);
  });

  it("the exception list names only README commands that no test runs", () => {
    const run = new Set(calls.map((call) => call.text));
    for (const command of Object.keys(NOT_RUN_BY_A_TEST)) {
      expect(commands, "an exception for a command the README no longer has").to.include(command);
      expect(run.has(command), `${command} is run by a test: drop its exception`).to.equal(false);
    }
  });
});
