// Process plumbing for the root-only e2e harness: run a command with an argument array, poll for a
// condition with a deadline, and stop a process by pid.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";

/** Outcome of {@link run}; a non-zero exit is data, not an exception, so callers can assert on it. */
export type RunResult = {
  stdout: string;
  stderr: string;
  /** Exit status; 128 + signal number when the process was killed by a signal. */
  code: number;
  /** True when the process was killed because it outlived `timeoutMs`. */
  timedOut: boolean;
};

/** Options of {@link run}. */
export type RunOptions = {
  /** Kill the process (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  /** Written to the process's stdin, which is then closed. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
};

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * Runs `file` with `args` (never through a shell) and collects its output. Used for every `ip`,
 * `iptables` and `docker` call the harness makes. Rejects only when the program cannot be started.
 */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`, { cause: error }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code: code ?? 128 + (signal === null ? 0 : (SIGNAL_NUMBERS[signal] ?? 0)),
        timedOut,
      });
    });
    // A program that exits without reading stdin makes the write fail with EPIPE; that is not our error.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/**
 * Like {@link run} but rejects on a non-zero exit, with the command line and stderr in the message.
 * Used for setup steps whose failure means the harness itself is broken.
 */
export async function runOk(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await run(file, args, options);
  if (result.code !== 0) {
    const why = result.timedOut ? "timed out" : `exited ${result.code}`;
    throw new Error(`${file} ${args.join(" ")} ${why}: ${(result.stderr || result.stdout).trim()}`);
  }
  return result;
}

/** Options of {@link pollUntil}. */
export type PollOptions = {
  timeoutMs: number;
  /** Pause between attempts; default 100 ms. */
  intervalMs?: number;
};

/**
 * Calls `check` until it returns something other than `undefined`/`false` and returns that, or throws
 * after `timeoutMs` naming `what` and the last error `check` threw. This is how the harness waits for
 * readiness instead of sleeping a guessed amount.
 */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  options: PollOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${detail}`, {
        cause: lastError,
      });
    }
    await delay(options.intervalMs ?? 100);
  }
}

/**
 * True while `pid` names a process that has not exited. A zombie counts as gone: its parent may be an
 * init that reaps late, and it holds no resources the harness cares about.
 */
export function pidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // The command name in parentheses may itself contain spaces or parentheses: the state follows the last ")".
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "Z" && state !== "X";
}

/**
 * Stops one process by pid: SIGTERM, then SIGKILL if it is still alive after `graceMs`, then waits
 * (bounded) for it to disappear. Returns false if it could not be confirmed gone. Used by every teardown.
 */
export async function killPid(pid: number, graceMs = 5_000): Promise<boolean> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone (ESRCH): exactly what we want.
    }
  };
  if (!pidAlive(pid)) return true;
  signal("SIGTERM");
  const gone = async (timeoutMs: number): Promise<boolean> =>
    pollUntil(`pid ${pid} to exit`, () => Promise.resolve(!pidAlive(pid)), {
      timeoutMs,
      intervalMs: 50,
    }).then(
      () => true,
      () => false,
    );
  if (await gone(graceMs)) return true;
  signal("SIGKILL");
  return gone(5_000);
}
