/** The instance lock against real processes: a live owner blocks, a dead or reused pid does not. */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConflictError } from "../../plugin/errors.js";
import { acquireInstanceLock } from "../../plugin/instance-lock.js";

function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
}

describe("instance lock", () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-lock-"));
    path = join(dir, "azure-vnet.lock");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("records the owner and removes the lock on release", async () => {
    const lock = await acquireInstanceLock(path);
    expect(JSON.parse(await readFile(path, "utf8"))).to.deep.equal({
      pid: process.pid,
      startTime: startTime(process.pid),
    });
    await lock.release();
    await acquireInstanceLock(path).then((l) => l.release());
  });

  it("refuses while a live process owns it, and takes it over once that process is gone", async () => {
    const owner = spawn("sleep", ["30"]);
    try {
      await writeFile(path, JSON.stringify({ pid: owner.pid, startTime: startTime(owner.pid!) }));
      const error = await acquireInstanceLock(path).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error).to.be.instanceOf(ConflictError);
      expect(error?.message).to.equal(
        `another azure-vnet process (pid ${owner.pid}) owns the state in ${path}`,
      );
    } finally {
      owner.kill("SIGKILL");
      await new Promise((resolve) => owner.once("exit", resolve));
    }
    const lock = await acquireInstanceLock(path);
    expect(JSON.parse(await readFile(path, "utf8"))).to.have.property("pid", process.pid);
    await lock.release();
  });

  it("treats a pid reused by another process as stale", async () => {
    const other = spawn("sleep", ["30"]);
    try {
      await writeFile(path, JSON.stringify({ pid: other.pid, startTime: "1" }));
      const lock = await acquireInstanceLock(path);
      await lock.release();
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("gives up, saying so, when something it cannot remove occupies the lock's path", async () => {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(join(path, "in-the-way"), { recursive: true });
    const error = await acquireInstanceLock(path).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).to.be.instanceOf(ConflictError);
    expect(error?.message).to.equal(`could not take the lock ${path}: something holds or occupies it`);
  });

  it("treats an unreadable lock file as stale", async () => {
    await writeFile(path, "garbage");
    const lock = await acquireInstanceLock(path);
    await lock.release();
  });
});
