/**
 * Makes sure only one plugin process owns a state directory. The lock file records the owner's pid and
 * the kernel's start time for it, so a lock left by a crashed process (or a reused pid) is recognised as
 * stale and taken over.
 */
import { readFileSync } from "node:fs";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { ConflictError } from "./errors.js";

type LockOwner = { pid: number; startTime: string };

export type InstanceLock = { path: string; release(): Promise<void> };

/** Takes the lock at `path`, replacing a stale one; throws ConflictError while a live owner holds it. */
export async function acquireInstanceLock(path: string): Promise<InstanceLock> {
  const me: LockOwner = { pid: process.pid, startTime: processStartTime(process.pid) ?? "" };
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const candidate = `${path}.${process.pid}`;
  await writeFile(candidate, JSON.stringify(me) + "\n", { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        // link() fails if the lock exists, so two starting processes cannot both win.
        await link(candidate, path);
        return { path, release: () => releaseIfOwned(path, me) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const owner = await readOwner(path);
      if (owner && isAlive(owner)) {
        throw new ConflictError(`another azure-vnet process (pid ${owner.pid}) owns the state in ${path}`, {
          hint: "stop it first, or give this instance its own --state-dir",
        });
      }
      await unlink(path).catch(() => undefined);
    }
    throw new ConflictError(`could not take the lock ${path}: something holds or occupies it`, {
      hint: "another azure-vnet may be starting at the same time (start only one), or something else is at that path (remove it)",
    });
  } finally {
    await unlink(candidate).catch(() => undefined);
  }
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path, "utf8")) as Partial<LockOwner>;
    return typeof owner.pid === "number"
      ? { pid: owner.pid, startTime: String(owner.startTime ?? "") }
      : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.pid === process.pid) return false;
  const startTime = processStartTime(owner.pid);
  return startTime !== undefined && (owner.startTime === "" || startTime === owner.startTime);
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

async function releaseIfOwned(path: string, me: LockOwner): Promise<void> {
  const owner = await readOwner(path);
  if (owner?.pid === me.pid && owner.startTime === me.startTime) await unlink(path).catch(() => undefined);
}
