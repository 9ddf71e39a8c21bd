/**
 * ebtables (bridge nat table) chains the plugin owns, for the bridge data path's MAC rewriting. As with
 * iptables, built-in chains get only one jump and our chains are ours to flush. ebtables has no comment
 * match, so the chain names carry the ownership.
 */
import { InternalError } from "../errors.js";
import { checkInterfaceName } from "./names.js";
import { chainRestoreText, ignoreMissing, runTool } from "./run-tool.js";

const EBTABLES_CHAIN = /^AZV-[A-Za-z0-9_.-]{1,24}$/;
const ebtables = (args: string[]) => runTool("ebtables", ["--concurrent", "-t", "nat", ...args]);

function checkChain(name: string): string {
  if (!EBTABLES_CHAIN.test(name))
    throw new InternalError(`refusing ebtables chain name ${JSON.stringify(name)}`);
  return name;
}

/**
 * Creates `chain` (policy RETURN, so frames go on through the built-in chain) and makes its rules
 * exactly `rules`, atomically.
 */
export async function setBridgeChainRules(chain: string, rules: string[][]): Promise<void> {
  await runTool("ebtables-restore", ["--noflush"], {
    input: chainRestoreText("nat", checkChain(chain), "RETURN", rules),
  });
}

/** Jumps from a built-in chain to ours for frames matching `match` (e.g. `["-i", "eth0"]`), once. */
export async function ensureBridgeJump(
  from: "PREROUTING" | "POSTROUTING",
  match: string[],
  to: string,
): Promise<void> {
  const rule = jumpRule(match, to);
  if (!(await listRules(from)).includes(rule.join(" "))) await ebtables(["-A", from, ...rule]);
}

/** Removes every copy of the jump ensureBridgeJump adds; none there is fine. */
export async function deleteBridgeJump(
  from: "PREROUTING" | "POSTROUTING",
  match: string[],
  to: string,
): Promise<void> {
  const rule = jumpRule(match, to);
  while ((await listRules(from)).includes(rule.join(" "))) await ebtables(["-D", from, ...rule]);
}

function jumpRule(match: string[], to: string): string[] {
  const [direction, port, ...rest] = match;
  if (
    match.length > 0 &&
    (rest.length > 0 || (direction !== "-i" && direction !== "-o") || port === undefined)
  ) {
    throw new InternalError(`refusing ebtables jump match ${JSON.stringify(match)}`);
  }
  return [...(port === undefined ? [] : [direction!, checkInterfaceName(port)]), "-j", checkChain(to)];
}

/** Flushes and deletes our chain; a missing chain is not an error. */
export async function deleteBridgeChain(chain: string): Promise<void> {
  for (const step of ["-F", "-X"]) {
    await ebtables([step, checkChain(chain)]).catch(ignoreMissing("chain"));
  }
}

async function listRules(chain: string): Promise<string[]> {
  const { stdout } = await ebtables(["-L", chain]);
  return stdout.split("\n").map((line) => line.trim());
}
