/**
 * The instance lock against real processes: a live holder blocks and is named, a killed one frees the
 * lock at once, and of many processes starting together exactly one wins.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConflictError } from "../../lib/errors.js";
import { acquireInstanceLock } from "../../plugin/instance-lock.js";

const LOCK_MODULE = fileURLToPath(new URL("../../plugin/instance-lock.js", import.meta.url));

/**
 * A process that tries to take the lock of `dir` and says "won" or "lost"; a winner holds it until
 * killed.
 */
function contender(dir: string): { child: ChildProcess; outcome: Promise<string> } {
  const script = `
    const { acquireInstanceLock } = await import(${JSON.stringify(LOCK_MODULE)});
    try {
      await acquireInstanceLock(${JSON.stringify(dir)}, "/contender.sock");
      console.log("won");
      setInterval(() => undefined, 60_000);
    } catch (error) {
      console.log("lost: " + error.message);
    }`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const outcome = new Promise<string>((resolve) => {
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("\n")) resolve(text.trim());
    });
    // "close", not "exit": a loser prints and exits at once, and "exit" can come before its output is read.
    child.once("close", (code, signal) =>
      resolve(text.trim() || `exited (${signal ?? code}) without a word`),
    );
  });
  return { child, outcome };
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

describe("instance lock", function () {
  this.timeout(10_000); // each contender is a node process
  let dir: string;
  const children: ChildProcess[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-lock-"));
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map(kill));
    await rm(dir, { recursive: true, force: true });
  });

  it("is free again once released, and leaves no file behind", async () => {
    const lock = await acquireInstanceLock(dir, "/a.sock");
    expect(lock.name).to.match(/^@azure-vnet-lock\/\d+:\d+$/);
    await lock.release();
    await (await acquireInstanceLock(dir, "/a.sock")).release();
  });

  it("refuses while a live process holds it, naming that process, and is free the moment it is killed", async () => {
    const holder = contender(dir);
    children.push(holder.child);
    expect(await holder.outcome).to.equal("won");
    const error = await acquireInstanceLock(dir, "/b.sock").then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).to.be.instanceOf(ConflictError);
    expect(error?.message).to.equal(
      `another azure-vnet process (pid ${holder.child.pid} in its PID namespace, serving /contender.sock) owns the state in ${dir}`,
    );
    await kill(holder.child);
    await (await acquireInstanceLock(dir, "/b.sock")).release();
  });

  it("has exactly one winner among 8 processes that start at once, round after round", async function () {
    this.timeout(60_000); // 40 node processes
    for (let round = 0; round < 5; round++) {
      const racers = Array.from({ length: 8 }, () => contender(dir));
      children.push(...racers.map((r) => r.child));
      const outcomes = await Promise.all(racers.map((r) => r.outcome));
      expect(
        outcomes.filter((o) => o === "won"),
        outcomes.join("\n"),
      ).to.have.length(1);
      expect(
        outcomes.filter((o) => o.startsWith("lost: another azure-vnet process")),
        outcomes.join("\n"),
      ).to.have.length(7);
      await Promise.all(children.splice(0).map(kill));
    }
  });

  it("is per state directory", async () => {
    const other = await mkdtemp(join(tmpdir(), "azure-vnet-lock-"));
    try {
      const a = await acquireInstanceLock(dir, "/a.sock");
      const b = await acquireInstanceLock(other, "/b.sock");
      await Promise.all([a.release(), b.release()]);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
