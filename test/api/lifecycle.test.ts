/**
 * The plugin process's life: allocations across restarts, stale sockets and locks left by a crash,
 * refusing a second live instance, clean SIGTERM, and the messages it exits with when it cannot start.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { rawPost, startPlugin, twoNicPool, type PluginUnderTest } from "../helpers/plugin-under-test.js";
import { socketAnswers } from "../../plugin/unix-socket.js";
import { acquireInstanceLock } from "../../plugin/instance-lock.js";

const postJson = async (socketPath: string, path: string, body: unknown) =>
  (await rawPost(socketPath, path, JSON.stringify(body))).json;
import { pollUntil } from "../helpers/run.js";

const MAIN = fileURLToPath(new URL("../../plugin/main.js", import.meta.url));

type Exit = { code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string };

function runPlugin(args: string[]): { child: ChildProcess; exited: Promise<Exit> } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal, stderr, stdout })),
  );
  return { child, exited };
}

describe("plugin lifecycle", function () {
  this.timeout(20_000);

  describe("in process", () => {
    let plugin: PluginUnderTest;
    beforeEach(async () => {
      plugin = await startPlugin();
    });
    afterEach(async () => {
      await plugin.stop();
    });
    const post = (path: string, body: unknown) => plugin.api().post(path).send(JSON.stringify(body));

    it("keeps pools and allocations across a restart", async () => {
      const poolId = (await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" })).body.PoolID as string;
      const first = await post("/IpamDriver.RequestAddress", { PoolID: poolId });
      await plugin.restart();
      const held = await post("/IpamDriver.RequestAddress", {
        PoolID: poolId,
        Address: (first.body.Address as string).split("/")[0],
      });
      expect(held.status).to.equal(409);
      const next = await post("/IpamDriver.RequestAddress", { PoolID: poolId });
      expect(next.body.Address).to.not.equal(first.body.Address);
    });

    it("starts with the saved pool when the source does not answer after a restart", async () => {
      await plugin.restart({ poolFile: join(plugin.dir, "missing.json") });
      const res = await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" });
      expect(res.status).to.equal(200);
      expect(plugin.logs.some((l) => l.includes("starting with the pool saved before the restart"))).to.equal(
        true,
      );
    });

    it("refuses to start on a corrupt state file and leaves it untouched", async () => {
      await plugin.service.close();
      await writeFile(plugin.stateFile, '{"version": 1, "ipam": {"pools": {}, "reservations": ');
      const restartError = () =>
        plugin.restart().then(
          () => undefined,
          (e: Error) => e,
        );
      let error = await restartError();
      expect(error?.message).to.match(/^state file .*state\.json is corrupt: /);
      expect((error as { userMessage?: string }).userMessage).to.match(/never replaced automatically/);
      expect(await readFile(plugin.stateFile, "utf8")).to.equal(
        '{"version": 1, "ipam": {"pools": {}, "reservations": ',
      );
      await writeFile(
        plugin.stateFile,
        JSON.stringify({ version: 1, ipam: { pools: { a: { id: "b" } }, reservations: {} } }),
      );
      error = await restartError();
      expect(error?.message).to.match(/pool record "a" is malformed/);
      await rm(plugin.stateFile);
      await plugin.restart();
    });
  });

  describe("as a process", () => {
    let dir: string;
    const children: ChildProcess[] = [];
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "azure-vnet-cli-"));
      await writeFile(join(dir, "pool.json"), JSON.stringify(twoNicPool()));
    });
    afterEach(async () => {
      for (const child of children.splice(0))
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    });
    const args = (name = "a") => [
      "--socket",
      join(dir, `${name}.sock`),
      "--state-dir",
      join(dir, "state"),
      "--pool-source",
      "file",
      "--pool-file",
      join(dir, "pool.json"),
      "--log-level",
      "debug",
    ];
    const startServing = async (name = "a") => {
      const run = runPlugin(args(name));
      children.push(run.child);
      await pollUntil(`plugin ${name} to listen`, () => socketAnswers(join(dir, `${name}.sock`)), {
        timeoutMs: 10_000,
      });
      return run;
    };

    it("shuts down cleanly on SIGTERM: exit 0, socket removed, lock free", async () => {
      const a = await startServing();
      a.child.kill("SIGTERM");
      const exit = await a.exited;
      expect(exit.code).to.equal(0);
      expect(existsSync(join(dir, "a.sock"))).to.equal(false);
      expect(exit.stdout).to.match(/"msg":"stopped"/);
      await (await acquireInstanceLock(join(dir, "state"), "/check.sock")).release();
    });

    it("refuses a second live instance on the same state, and on the same socket", async () => {
      const a = await startServing();
      const sameState = runPlugin(args("b"));
      const exit = await sameState.exited;
      expect(exit.code).to.equal(1);
      expect(exit.stderr).to.equal(
        `azure-vnet: another azure-vnet process (pid ${a.child.pid} in its PID namespace, serving ${join(dir, "a.sock")}) owns the state in ${join(dir, "state")} — stop it first, or give this instance its own --state-dir\n`,
      );
      const sameSocket = runPlugin([
        ...args("a").slice(0, 2),
        "--state-dir",
        join(dir, "other"),
        ...args("a").slice(4),
      ]);
      const exit2 = await sameSocket.exited;
      expect(exit2.code).to.equal(1);
      expect(exit2.stderr).to.contain(`${join(dir, "a.sock")} is already served by another process`);
      expect(await socketAnswers(join(dir, "a.sock"))).to.equal(true);
    });

    it("replaces the stale socket of a killed instance and keeps its allocations", async () => {
      const a = await startServing();
      const reply = await postJson(join(dir, "a.sock"), "/IpamDriver.RequestPool", {
        Pool: "10.1.0.0/24",
      });
      const poolId = (reply as { PoolID: string }).PoolID;
      await postJson(join(dir, "a.sock"), "/IpamDriver.RequestAddress", {
        PoolID: poolId,
        Address: "10.1.0.5",
      });
      a.child.kill("SIGKILL");
      await a.exited;
      expect(existsSync(join(dir, "a.sock"))).to.equal(true);
      await startServing();
      const again = await postJson(join(dir, "a.sock"), "/IpamDriver.RequestAddress", {
        PoolID: poolId,
        Address: "10.1.0.5",
      });
      expect(again)
        .to.have.property("Err")
        .that.match(/already held/);
    });

    it("outside Azure with no pool configured, exits saying so and how to give a pool by hand", async () => {
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const port = (closed.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const run = runPlugin([
        "--socket",
        join(dir, "x.sock"),
        "--state-dir",
        join(dir, "state"),
        "--imds-url",
        `http://127.0.0.1:${port}`,
      ]);
      const exit = await run.exited;
      expect(exit.code).to.equal(1);
      expect(exit.stderr).to.match(
        /^azure-vnet: no address pool: the imds pool source \(http:\/\/127\.0\.0\.1:\d+\/metadata\/instance\/network\?api-version=2021-02-01\) did not answer: GET .* failed: connect ECONNREFUSED .* — this does not look like an Azure VM\. Outside Azure, describe the NIC's addresses in a JSON file and start with --pool-source file --pool-file PATH \(format in docs\/ipam\.md, 'Outside Azure: the pool file'\)\n$/,
      );
      expect(existsSync(join(dir, "x.sock"))).to.equal(false);
    });

    it("exits 2 with the option's name on a bad configuration", async () => {
      const exit = await runPlugin(["--pool-source", "dhcp"]).exited;
      expect(exit.code).to.equal(2);
      expect(exit.stderr).to.match(
        /^azure-vnet: --pool-source \(AZURE_VNET_POOL_SOURCE\) is "dhcp" — use one of: imds, wireserver, file\n/,
      );
    });
  });
});
