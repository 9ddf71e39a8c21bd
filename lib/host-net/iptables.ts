/**
 * iptables chains the plugin owns. The plugin only ever adds one jump into a built-in chain and keeps
 * everything else in its own chains, which it may flush at will; nobody else's rules are flushed,
 * reordered or touched. `-w` waits for the xtables lock that dockerd also takes.
 */
import { checkChainName, checkComment } from "./names.js";
import { chainRestoreText, ignoreMissing, isMissing, runTool } from "./run-tool.js";

/** The iptables tables the plugin keeps chains in. */
export type Table = "filter" | "nat" | "mangle";

const iptables = (args: string[]) => runTool("iptables", args[0] === "-V" ? args : ["-w", "5", ...args]);

/** Creates `chain` if missing and makes its rules exactly `rules`, atomically. */
export async function setChainRules(table: Table, chain: string, rules: string[][]): Promise<void> {
  const text = chainRestoreText(table, checkChainName(chain), "- [0:0]", rules);
  await runTool("iptables-restore", ["-w", "5", "--noflush"], { input: text });
}

/**
 * Adds a jump from a built-in chain to ours, once; `match` narrows which packets jump. The jump goes
 * first in `from`, or, when `from` jumps to chain `after`, right behind that jump: a jump that sits
 * ahead of it (made before `after` existed, or by an older release) is moved there.
 */
export async function ensureJump(
  table: Table,
  from: string,
  to: string,
  match: string[],
  comment: string,
  after?: string,
): Promise<void> {
  const rule = jumpRule(to, match, comment);
  if (await ruleExists(table, from, rule)) {
    if (after === undefined) return;
    const rules = await listRules(table, from);
    const ours = rules.findIndex((words) => sameRule(words, rule));
    if (ours > jumpIndex(rules, after)) return;
    await iptables(["-t", table, "-D", from, ...rule]);
  }
  const position = after === undefined ? 0 : jumpIndex(await listRules(table, from), after) + 1;
  await iptables(["-t", table, "-I", from, String(position + 1), ...rule]);
}

/** Removes every copy of the jump ensureJump adds (whatever its position); none there is fine. */
export async function deleteJump(
  table: Table,
  from: string,
  to: string,
  match: string[],
  comment: string,
): Promise<void> {
  const rule = jumpRule(to, match, comment);
  while (await ruleExists(table, from, rule)) await iptables(["-t", table, "-D", from, ...rule]);
}

/** Flushes and deletes our chain; a missing chain is not an error. */
export async function deleteChain(table: Table, chain: string): Promise<void> {
  checkChainName(chain);
  for (const step of ["-F", "-X"]) {
    await iptables(["-t", table, step, chain]).catch(ignoreMissing("chain"));
  }
}

/** The rules of a chain as `iptables -S` prints them (`-A ...` lines); undefined when it does not exist. */
export async function listChainRules(table: Table, chain: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await iptables(["-t", table, "-S", checkChainName(chain)]);
    return stdout.split("\n").filter((line) => line.startsWith("-A "));
  } catch (error) {
    if (isMissing(error, "chain")) return undefined;
    throw error;
  }
}

function jumpRule(to: string, match: string[], comment: string): string[] {
  return [...match, "-m", "comment", "--comment", checkComment(comment), "-j", checkChainName(to)];
}

async function ruleExists(table: Table, chain: string, rule: string[]): Promise<boolean> {
  try {
    await iptables(["-t", table, "-C", chain, ...rule]);
    return true;
  } catch (error) {
    if (isMissing(error, "rule", "chain")) return false;
    throw error;
  }
}

/** Our chains in a table whose names start with `prefix`. */
export async function listChains(table: Table, prefix: string): Promise<string[]> {
  const { stdout } = await iptables(["-t", table, "-S"]);
  return stdout
    .split("\n")
    .filter((line) => line.startsWith(`-N ${prefix}`))
    .map((line) => line.slice(3).trim());
}

/** Deletes every rule in built-in chain `from` that jumps to `chain`, whatever its match. */
export async function deleteJumpsTo(table: Table, from: string, chain: string): Promise<void> {
  checkChainName(chain);
  for (const words of await listRules(table, from)) {
    if (words.at(-1) === chain && words.at(-2) === "-j") await iptables(["-t", table, "-D", from, ...words]);
  }
}

/** The rules of `chain` in order, each as its arguments after `-A <chain>`. */
async function listRules(table: Table, chain: string): Promise<string[][]> {
  const { stdout } = await iptables(["-t", table, "-S", chain]);
  return stdout
    .split("\n")
    .map(splitRule)
    .filter((words) => words[0] === "-A")
    .map((words) => words.slice(2));
}

/** Index of the first rule that jumps to `chain`, -1 when none does. */
function jumpIndex(rules: string[][], chain: string): number {
  return rules.findIndex((words) => words.at(-1) === chain && words.at(-2) === "-j");
}

/** Whether a listed rule is `rule`; iptables may print the matches in another order than given. */
function sameRule(listed: string[], rule: string[]): boolean {
  const sorted = (words: string[]) => [...words].sort().join("\0");
  return sorted(listed) === sorted(rule);
}

/** Splits an `iptables -S` line into arguments; comments are the only quoted words it prints. */
function splitRule(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((match) => match[1] ?? match[2]!);
}

/** `iptables -V`, e.g. "iptables v1.8.9 (nf_tables)": which backend this host's rules live in. */
export async function iptablesVersion(): Promise<string> {
  return (await iptables(["-V"])).stdout.trim();
}
