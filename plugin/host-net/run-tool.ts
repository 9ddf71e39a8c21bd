/**
 * Runs a host networking tool (`ip`, later `iptables`) with an argument array, never through a shell,
 * and turns failures into errors that name the command.
 */
import { execFile } from "node:child_process";
import { UnavailableError } from "../errors.js";

export type ToolResult = { stdout: string; stderr: string };

/** Runs `tool args...` with a timeout; throws UnavailableError with stderr on a non-zero exit. */
export function runTool(tool: string, args: string[], timeoutMs = 10_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const detail = stderr.trim() || error.message;
        reject(new UnavailableError(`${tool} ${args.join(" ")} failed: ${detail}`, { cause: error }));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}
