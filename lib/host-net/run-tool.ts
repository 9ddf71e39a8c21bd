/**
 * Runs a host networking tool (`ip`, `iptables`, `ebtables`) with an argument array, never through a
 * shell, and turns its failures into typed errors that name the command. This is the one place that
 * knows how each tool words "that is not there", so callers tolerate absence by type, not by text.
 */
import { execFile } from "node:child_process";
import { InternalError, UnavailableError, type PluginErrorOptions } from "../errors.js";

/** What a tool that exited 0 printed. */
export type ToolResult = { stdout: string; stderr: string };

/** A host tool exited non-zero, timed out or could not start (503: the kernel may be busy). */
export class HostToolError extends UnavailableError {
  constructor(
    message: string,
    /** The tool's stderr, trimmed; empty when it said nothing. */
    readonly stderr: string,
    options: PluginErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** What a tool can report as not there. */
export type MissingObject = "device" | "route" | "address" | "chain" | "rule" | "table";

/**
 * A host tool failed because the object it was asked about is not there. Deletions and existence
 * checks catch this one (see `ignoreMissing`); everything else stays a failure.
 */
export class HostObjectMissingError extends HostToolError {
  constructor(
    message: string,
    stderr: string,
    /** Which kind of object the tool said is missing. */
    readonly missing: MissingObject,
    options: PluginErrorOptions = {},
  ) {
    super(message, stderr, options);
  }
}

/**
 * How each tool says "not there", per kind of object. iproute2: `Device "x" does not exist.`, `Cannot
 * find device "x"`, `FIB table does not exist`, and RTNETLINK's ESRCH (no such route), EADDRNOTAVAIL (no
 * such address) and ENOENT (no such rule).
 * iptables (legacy and nft): "No chain/target/match by that name", "Chain 'x' does not exist", and
 * "Bad rule (does a matching rule exist in that chain?)". ebtables words a chain as iptables does.
 */
const MISSING_WORDING: Record<string, [RegExp, MissingObject][]> = {
  ip: [
    [/FIB table does not exist/, "table"],
    [/does not exist|Cannot find device/, "device"],
    [/No such process/, "route"],
    [/Cannot assign requested address/, "address"],
    // `ip rule del` of a rule that is not there: RTNETLINK's ENOENT.
    [/No such file or directory/, "rule"],
  ],
  iptables: [
    [/does a matching rule exist|Bad rule/, "rule"],
    [/No chain|does not exist/, "chain"],
  ],
  ebtables: [[/No chain|does not exist/, "chain"]],
};

/** What a tool's stderr says is missing, if that is why it failed. */
export function missingObject(tool: string, stderr: string): MissingObject | undefined {
  return MISSING_WORDING[tool]?.find(([wording]) => wording.test(stderr))?.[1];
}

/**
 * A catch handler for deletions and checks that tolerate absence: it swallows a
 * HostObjectMissingError of one of `kinds` and rethrows anything else.
 * @example await iptables(["-F", chain]).catch(ignoreMissing("chain"));
 */
export function ignoreMissing(...kinds: MissingObject[]): (error: unknown) => undefined {
  return (error) => {
    if (isMissing(error, ...kinds)) return undefined;
    throw error;
  };
}

/** Whether `error` is a tool saying one of `kinds` is not there. */
export function isMissing(error: unknown, ...kinds: MissingObject[]): boolean {
  return error instanceof HostObjectMissingError && kinds.includes(error.missing);
}

/**
 * Runs `tool args...` with a timeout, feeding `input` on stdin when given. A non-zero exit throws a
 * HostToolError with stderr, or a HostObjectMissingError when the tool said the object is not there.
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
          reject(toolFailure(tool, args, stderr.trim(), error));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

function toolFailure(tool: string, args: string[], stderr: string, cause: Error): HostToolError {
  const message = `${tool} ${args.join(" ")} failed: ${stderr || cause.message}`;
  // iptables-restore and ebtables-restore word their failures as iptables and ebtables do.
  const missing = missingObject(tool.replace(/-restore$/, ""), stderr);
  return missing
    ? new HostObjectMissingError(message, stderr, missing, { cause })
    : new HostToolError(message, stderr, { cause });
}

/**
 * The text `iptables-restore`/`ebtables-restore --noflush` read to replace one chain's rules in a
 * single transaction: declaring the chain empties it (creating it if needed), then its rules follow.
 * Packets never see a half-written chain, as they would between a flush and the re-adds.
 */
export function chainRestoreText(table: string, chain: string, policy: string, rules: string[][]): string {
  const words = rules.flat();
  if (words.some((word) => word === "" || /[\s"'#]/.test(word))) {
    throw new InternalError(`refusing a rule word for ${chain}: ${JSON.stringify(words)}`);
  }
  return [
    `*${table}`,
    `:${chain} ${policy}`,
    ...rules.map((rule) => `-A ${chain} ${rule.join(" ")}`),
    "COMMIT",
    "",
  ].join("\n");
}
