// The README's commands, run verbatim. Every command line of the README's ```sh blocks runs in some
// test exactly as printed, through `sh -c`, with only the environment a root login shell has; where
// this machine differs from the user's, the test arranges the machine (a private mount namespace, see
// MachineOptions in dockerd.ts), never the command. test/unit/readme-commands.test.ts checks that
// every README command has such a test.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MACHINE_SCRIPT, mountSteps, type Dockerd, type MachineMount } from "./dockerd.js";
import { pidAlive, pollUntil, run, type RunResult } from "./run.js";

export const REPO = fileURLToPath(new URL("../../../", import.meta.url));
export const README = join(REPO, "README.md");

/** What a root login shell on Debian has, and nothing else: no DOCKER_*, no test variables. */
export const USER_ENV: Readonly<Record<string, string>> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  USER: "root",
  LOGNAME: "root",
  SHELL: "/bin/bash",
  LANG: "C.UTF-8",
  TERM: "xterm",
};

/**
 * The command lines of `markdown`'s ```sh blocks: indentation and a trailing ` # comment` removed,
 * comment-only and blank lines dropped.
 */
export function readmeShellCommands(markdown: string): string[] {
  const commands: string[] = [];
  let inSh = false;
  for (const line of markdown.split("\n")) {
    const fence = /^\s*```(\S*)\s*$/.exec(line);
    if (fence) {
      inSh = !inSh && fence[1] === "sh";
      continue;
    }
    if (!inSh) continue;
    const command = stripComment(line).trim();
    if (command !== "") commands.push(command);
  }
  return commands;
}

/** `line` without a shell comment: a `#` at the start of a word, outside quotes. */
export function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "\\") i++;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i).trimEnd();
  }
  return line;
}

/** Throws unless `text` is one of the README's commands, character for character. */
export function assertReadmeCommand(text: string): void {
  const commands = readmeShellCommands(readFileSync(README, "utf8"));
  if (!commands.includes(text)) {
    throw new Error(`not a command of README.md's sh blocks (verbatim): ${JSON.stringify(text)}`);
  }
}

/** Where a README command runs: namespaces to enter and the folder it starts in. */
export type Machine = {
  /** `/run/netns/...` to enter; default: this process's (the host's) network namespace. */
  netnsPath?: string;
  /** A process whose mount namespace is the machine (a {@link Dockerd}'s anchor); default: ours. */
  mountNsPid?: number;
  /** The working directory: where the user stands (a checkout for packaging/ and npm commands). */
  cwd: string;
  /** A fresh private mount namespace with these mounts, for this command only (after the above). */
  mounts?: MachineMount[];
};

/** The machine of `dockerd`: its network namespace and its arranged mount namespace. */
export function machineOf(dockerd: Dockerd, cwd = REPO): Machine {
  return { netnsPath: dockerd.netnsPath, mountNsPid: dockerd.anchorPid, cwd };
}

function argv(text: string, machine: Machine): string[] {
  const env = Object.entries(USER_ENV).map(([key, value]) => `${key}=${value}`);
  const user = ["env", "-i", "-C", machine.cwd, ...env, "sh", "-c", text];
  const command =
    machine.mounts === undefined
      ? user
      : ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", MACHINE_SCRIPT, "sh"]
          .concat(mountSteps(machine.mounts))
          .concat(["--", ...user]);
  const namespaces = [
    ...(machine.netnsPath !== undefined ? [`--net=${machine.netnsPath}`] : []),
    ...(machine.mountNsPid !== undefined ? [`--mount=/proc/${machine.mountNsPid}/ns/mnt`] : []),
  ];
  return namespaces.length > 0 ? ["nsenter", ...namespaces, "--", ...command] : command;
}

/**
 * Runs a README command verbatim on `machine` and returns its result (a non-zero exit is data).
 * Throws first if `text` is not exactly a README command. {@link machineCommand} runs other setup
 * commands the same way.
 */
export function readmeCommand(text: string, machine: Machine, timeoutMs = 120_000): Promise<RunResult> {
  assertReadmeCommand(text);
  return machineCommand(text, machine, timeoutMs);
}

/** Runs a shell command as a user would on `machine`, like {@link readmeCommand}; for setup steps. */
export function machineCommand(text: string, machine: Machine, timeoutMs = 120_000): Promise<RunResult> {
  const [file, ...args] = argv(text, machine);
  // The test's own environment must not leak in: env -i clears it, this keeps nsenter's clean too.
  return run(file!, args, { timeoutMs, env: { ...USER_ENV } });
}

/** A long-running README command (the plugin itself) started by {@link spawnReadmeCommand}. */
export type SpawnedCommand = {
  child: ChildProcess;
  /** Everything it wrote so far (stdout and stderr). */
  output(): string;
  /** SIGTERM to its whole process group, SIGKILL after a grace period; true once all are gone. */
  stop(): Promise<boolean>;
};

/**
 * Starts a README command that does not end (`npm start`) in its own process group, its output going to
 * `logFile`. Stop it with {@link SpawnedCommand.stop}, also on failure.
 */
export function spawnReadmeCommand(text: string, machine: Machine, logFile: string): SpawnedCommand {
  assertReadmeCommand(text);
  const [file, ...args] = argv(text, machine);
  const log = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(file!, args, { stdio: ["ignore", log, log], env: { ...USER_ENV }, detached: true });
  } finally {
    closeSync(log);
  }
  child.on("error", () => undefined);
  const pgid = child.pid;
  const groupAlive = (): boolean => {
    if (pgid === undefined) return false;
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  return {
    child,
    output: () => {
      try {
        return readFileSync(logFile, "utf8");
      } catch {
        return "";
      }
    },
    stop: async () => {
      if (pgid === undefined) return true;
      // The group is the one this call created (detached: its leader is our child), nothing else's.
      const signal = (sig: NodeJS.Signals) => {
        try {
          process.kill(-pgid, sig);
        } catch {
          // Already gone.
        }
      };
      const gone = (timeoutMs: number) =>
        pollUntil(`process group ${pgid} to exit`, () => Promise.resolve(!groupAlive()), {
          timeoutMs,
        }).then(
          () => true,
          () => false,
        );
      signal("SIGTERM");
      if (!(await gone(10_000))) {
        signal("SIGKILL");
        await gone(5_000);
      }
      return !groupAlive() && !pidAlive(pgid);
    },
  };
}
