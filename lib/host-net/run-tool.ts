/**
 * Runs a host networking tool (`ip`, `iptables`, `ebtables`) with an argument array, never through a
 * shell, and turns failures into errors that name the command.
 */
import { execFile } from "node:child_process";
import { UnavailableError } from "../errors.js";

export type ToolResult = { stdout: string; stderr: string };

/**
 * Runs `tool args...` with a timeout, feeding `input` on stdin when given; throws UnavailableError with
 * stderr on a non-zero exit.
 */
export function runTool(
  tool: string,
  args: string[],
  options: { timeoutMs?: number; input?: string } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      tool,
      args,
      { timeout: options.timeoutMs ?? 10_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const detail = stderr.trim() || error.message;
          reject(new UnavailableError(`${tool} ${args.join(" ")} failed: ${detail}`, { cause: error }));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * The text `iptables-restore`/`ebtables-restore --noflush` read to replace one chain's rules in a
 * single transaction: declaring the chain empties it (creating it if needed), then its rules follow.
 * Packets never see a half-written chain, as they would between a flush and the re-adds.
 */
export function chainRestoreText(table: string, chain: string, policy: string, rules: string[][]): string {
  const words = rules.flat();
  if (words.some((word) => word === "" || /[\s"'#]/.test(word))) {
    throw new UnavailableError(`refusing a rule word for ${chain}: ${JSON.stringify(words)}`);
  }
  return [
    `*${table}`,
    `:${chain} ${policy}`,
    ...rules.map((rule) => `-A ${chain} ${rule.join(" ")}`),
    "COMMIT",
    "",
  ].join("\n");
}
