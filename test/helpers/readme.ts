// The documentation's commands, run verbatim. Every command line of the ```sh blocks of README.md and
// of every docs/*.md runs in some test exactly as printed, through `sh -c`, with only the environment a
// root login shell has; where this machine differs from the user's, the test arranges the machine (a
// private mount namespace, see MachineOptions in dockerd.ts), never the command. A command is its
// text: the same line in two files is one command. test/unit/readme-commands.test.ts checks that every
// documented command has such a test.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MACHINE_SCRIPT, mountSteps, USER_NODE, type Dockerd, type MachineMount } from "./dockerd.js";
import { killPid, pidAlive, pollUntil, run, type RunResult } from "./run.js";

export const REPO = fileURLToPath(new URL("../../../", import.meta.url));
export const README = join(REPO, "README.md");
export const DOCS = join(REPO, "docs");

/** The files whose ```sh blocks users run: README.md and every docs/*.md, as paths from the repository. */
export function documentationFiles(): string[] {
  const docs = readdirSync(DOCS)
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`);
  return ["README.md", ...docs];
}

/** Every documented command, with the files that show it (a command is its text). */
export function documentedCommands(): Map<string, string[]> {
  const commands = new Map<string, string[]>();
  for (const file of documentationFiles()) {
    for (const command of readmeShellCommands(readFileSync(join(REPO, file), "utf8"))) {
      const files = commands.get(command) ?? [];
      if (!files.includes(file)) files.push(file);
      commands.set(command, files);
    }
  }
  return commands;
}

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

/** Throws unless `text` is a command of README.md's or a docs/*.md's sh blocks, character for character. */
export function assertReadmeCommand(text: string): void {
  if (!documentedCommands().has(text)) {
    throw new Error(
      `not a command of the sh blocks of README.md or docs/*.md (verbatim): ${JSON.stringify(text)}`,
    );
  }
}

/** Where a documented command runs: namespaces to enter and the folder it starts in. */
export type Machine = {
  /** `/run/netns/...` to enter; default: this process's (the host's) network namespace. */
  netnsPath?: string;
  /** A process whose mount namespace is the machine (a {@link Dockerd}'s anchor); default: ours. */
  mountNsPid?: number;
  /** The working directory: where the user stands (a checkout for packaging/ and npm commands). */
  cwd: string;
  /** A fresh private mount namespace with these mounts, for this command only (after the above). */
  mounts?: MachineMount[];
  /** Also enter the pid namespace of `mountNsPid` (an {@link ImageMachine}). */
  pidNs?: boolean;
  /** Run the command chrooted here (a path in the mount namespace entered). */
  chroot?: string;
};

/** The machine of `dockerd`: its network namespace and its arranged mount namespace. */
export function machineOf(dockerd: Dockerd, cwd = REPO): Machine {
  return { netnsPath: dockerd.netnsPath, mountNsPid: dockerd.anchorPid, cwd };
}

function argv(text: string, machine: Machine): string[] {
  const env = Object.entries(USER_ENV).map(([key, value]) => `${key}=${value}`);
  const user = [
    ...(machine.chroot !== undefined ? ["chroot", machine.chroot] : []),
    ...["env", "-i", "-C", machine.cwd, ...env, "sh", "-c", text],
  ];
  const command =
    machine.mounts === undefined
      ? user
      : ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", MACHINE_SCRIPT, "sh"]
          .concat(mountSteps(machine.mounts))
          .concat(["--", ...user]);
  const namespaces = [
    ...(machine.netnsPath !== undefined ? [`--net=${machine.netnsPath}`] : []),
    ...(machine.mountNsPid !== undefined ? [`--mount=/proc/${machine.mountNsPid}/ns/mnt`] : []),
    ...(machine.pidNs === true ? [`--pid=/proc/${machine.mountNsPid}/ns/pid`] : []),
  ];
  return namespaces.length > 0 ? ["nsenter", ...namespaces, "--", ...command] : command;
}

/**
 * Runs a documented command (README.md or docs/*.md) verbatim on `machine` and returns its result (a
 * non-zero exit is data). Throws first if `text` is not exactly such a command. {@link machineCommand}
 * runs other setup commands the same way.
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

/** A long-running documented command (the plugin itself) started by {@link spawnReadmeCommand}. */
export type SpawnedCommand = {
  child: ChildProcess;
  /** Everything it wrote so far (stdout and stderr). */
  output(): string;
  /** SIGTERM to its whole process group, SIGKILL after a grace period; true once all are gone. */
  stop(): Promise<boolean>;
};

/**
 * Starts a documented command that does not end (`npm start`) in its own process group, its output going to
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

// Runs as PID 1 of a new pid namespace, in a new mount namespace: makes ROOT an overlay of the whole
// file system whose writes all go to a tmpfs, with its own /proc (of this pid namespace), /dev and
// /run, then sleeps outside it, so that commands chrooted into ROOT find a PID 1 whose root is not theirs.
const IMAGE_SCRIPT = `set -e
layers=$1
root=$2
mount -t tmpfs tmpfs "$layers"
mkdir "$layers/upper" "$layers/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$layers/upper,workdir=$layers/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
if [ -n "$3" ]; then mount --bind "$3" "$root/usr/bin/node"; fi
exec sleep 2147483647`;

/**
 * A machine image being provisioned: a chroot of this machine's whole file system in which every write
 * lands in a tmpfs of the test (so nothing of the machine changes), with its own pid namespace. There,
 * as in any chroot, `systemctl` changes unit files (enable, disable) and says "Running in chroot,
 * ignoring request" for what needs the running systemd (daemon-reload, start, restart, stop).
 */
export type ImageMachine = {
  /** The machine for {@link readmeCommand}, standing in `cwd`. */
  machine(cwd?: string): Machine;
  /** Where `path` of the image is, seen from the test. */
  path(path: string): string;
  stop(): Promise<void>;
};

/** Starts an {@link ImageMachine}; `dir` (the caller's, empty) holds its mount points. */
export async function startImageMachine(dir: string): Promise<ImageMachine> {
  const layers = join(dir, "layers");
  const root = join(dir, "root");
  await mkdir(layers);
  await mkdir(root);
  const child = spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "--pid",
      "--fork",
      "--",
      "sh",
      "-c",
      IMAGE_SCRIPT,
      "sh",
      layers,
      root,
      USER_NODE[0]?.type === "bind" ? USER_NODE[0].source : "",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let errors = "";
  child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  child.on("error", () => undefined);
  let init: number | undefined;
  const stop = async () => {
    // unshare waits for its child, PID 1 of the namespace; killing PID 1 ends the namespace.
    if (init !== undefined) await killPid(init, 5_000);
    if (child.pid !== undefined) await killPid(child.pid, 5_000);
  };
  try {
    init = await pollUntil(
      "the image machine's PID 1",
      () => {
        if (child.exitCode !== null) throw new Error(`unshare exited (${child.exitCode}): ${errors}`);
        const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim();
        const pid = Number(children.split(" ")[0]);
        if (!Number.isInteger(pid) || pid <= 0) return Promise.resolve(undefined);
        const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
        return Promise.resolve(argv0 === "sleep" ? pid : undefined);
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const pid = init;
  return {
    machine: (cwd = "/root") => ({ mountNsPid: pid, pidNs: true, chroot: root, cwd }),
    path: (path) => join(`/proc/${pid}/root`, root, path),
    stop,
  };
}
