/**
 * The README's own commands for the plugin as a process (`npm start`), for using it, and for the demo,
 * run verbatim (see test/helpers/readme.ts) on an emulated Azure VM. The machine is arranged, never the
 * command: in the VM's private mount namespace the user's /var/run/docker.sock is the test dockerd's,
 * /run/docker/plugins is the test's plugins folder, /var/lib is a test folder, /etc/azure-vnet/pool.json
 * is the test's pool file, /usr/bin/node is Node.js 24 (the README's requirement; this machine's may be
 * older), and npm is configured offline because the emulated VM cannot reach the npm
 * registry (npm ci then installs from this machine's npm cache). The commands run in a copy of the
 * checkout, so `npm ci` never replaces the node_modules this test itself runs from.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fetchStatus } from "../../plugin/cli/plugin-client.js";
import { startAzureEndpoints } from "../helpers/azure-vm.js";
import { startDockerd, USER_NODE, type Dockerd } from "../helpers/dockerd.js";
import {
  machineCommand,
  machineOf,
  readmeCommand,
  REPO,
  spawnReadmeCommand,
  type SpawnedCommand,
} from "../helpers/readme.js";
import { pollUntil, type RunResult } from "../helpers/run.js";
import { createVnet, type Vnet } from "../helpers/vnet.js";

const SECONDARIES = ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"];
const VM1 = {
  name: "vm1",
  mac: "00:0d:3a:00:00:01",
  primary: "10.1.0.4",
  secondaries: SECONDARIES,
  publicIp: "198.51.100.4",
};
/** The README's pool file, with two of the NIC's secondaries. */
const POOL_FILE = {
  interfaces: [
    {
      interfaceName: "eth0",
      primary: true,
      subnets: [
        { prefix: "10.1.0.0/24", primaryAddress: "10.1.0.4", secondaryAddresses: ["10.1.0.5", "10.1.0.6"] },
      ],
    },
  ],
};

/** Copies the checkout's files (tracked and untracked, not ignored) to `target`. */
async function copyCheckout(target: string): Promise<void> {
  const files = execFileSync("git", [
    "-C",
    REPO,
    "ls-files",
    "-z",
    "--cached",
    "--others",
    "--exclude-standard",
  ])
    .toString("utf8")
    .split("\0")
    .filter((file) => file !== "" && existsSync(join(REPO, file)));
  for (const file of files) {
    await mkdir(dirname(join(target, file)), { recursive: true });
    await copyFile(join(REPO, file), join(target, file));
  }
}

describe("e2e: the README's commands for the plugin as a process, for using it, and the demo", function () {
  this.timeout(300_000);
  this.bail(true);
  let dir: string | undefined;
  let vnet: Vnet | undefined;
  let dockerd: Dockerd;
  let checkout: string;
  let plugin: SpawnedCommand | undefined;
  const timings: string[] = [];

  const socketPath = () => join(dockerd.pluginsDir, "azure.sock");
  const readmeOnVm = async (command: string): Promise<RunResult> => {
    const result = await readmeCommand(command, machineOf(dockerd, checkout));
    expect(result.code, `${command}\n${result.stdout}\n${result.stderr}\n${dockerd.logTail(15)}`).to.equal(0);
    return result;
  };
  const timed = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await step();
    timings.push(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  };
  /** Waits for the plugin that `plugin` started to answer on its socket. */
  const pluginAnswers = (timeoutMs: number) =>
    pollUntil(
      "the plugin started by the README command to answer",
      async () => {
        if (plugin!.child.exitCode !== null)
          throw new Error(`it exited (${plugin!.child.exitCode}): ${plugin!.output().slice(-3000)}`);
        return existsSync(socketPath()) ? await fetchStatus(socketPath()) : undefined;
      },
      { timeoutMs, intervalMs: 500 },
    );
  const stopPlugin = async () => {
    if (plugin === undefined) return;
    const stopped = await plugin.stop();
    plugin = undefined;
    expect(stopped, "the README command's processes stopped").to.equal(true);
  };

  const teardown = async () => {
    if (timings.length > 0) console.log(`      timings: ${timings.join("; ")}`);
    await plugin?.stop();
    plugin = undefined;
    await vnet?.teardown();
    vnet = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  };

  before(async function () {
    if (process.getuid?.() !== 0) throw new Error("the e2e suite needs root (network namespaces, dockerd)");
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-readme-"));
    try {
      checkout = join(dir, "checkout");
      await copyCheckout(checkout);
      vnet = await createVnet({ vms: [VM1] });
      await startAzureEndpoints(vnet, "vm1", dir);
      const varLib = join(dir, "var-lib");
      const etcUpper = join(dir, "etc-upper");
      const npmEtcUpper = join(dir, "usr-etc-upper");
      for (const folder of [varLib, join(etcUpper, "azure-vnet"), join(dir, "etc-work"), npmEtcUpper])
        await mkdir(folder, { recursive: true });
      await mkdir(join(dir, "usr-etc-work"));
      await writeFile(join(etcUpper, "azure-vnet", "pool.json"), JSON.stringify(POOL_FILE, null, 2) + "\n");
      // npm's global config (prefix /usr): this VM cannot reach the registry, so npm must not try.
      await writeFile(join(npmEtcUpper, "npmrc"), "offline=true\n");
      dockerd = await startDockerd(vnet, "vm1", {
        machine: {
          mounts: [
            { type: "bind", source: varLib, target: "/var/lib" },
            { type: "overlay", target: "/etc", upper: etcUpper, work: join(dir, "etc-work") },
            { type: "overlay", target: "/usr/etc", upper: npmEtcUpper, work: join(dir, "usr-etc-work") },
          ],
        },
      });
      await dockerd.importBusybox("busybox:latest");
    } catch (error) {
      await teardown();
      throw error;
    }
  });

  after(async () => {
    await teardown();
  });

  it("npm ci && npm run build && npm start: the plugin serves the VM's NIC from IMDS", async () => {
    plugin = spawnReadmeCommand(
      "npm ci && npm run build && npm start",
      machineOf(dockerd, checkout),
      join(dir!, "npm-start.log"),
    );
    const node = await machineCommand("node --version", machineOf(dockerd, checkout));
    expect(node.stdout.trim(), "the user's node is Node.js 24, as the README asks").to.match(/^v24\./);
    const status = await timed("npm ci, build, start", () => pluginAnswers(240_000));
    expect(status.pool[0]!.free).to.deep.equal(SECONDARIES);
  });

  it("the README's networks and containers get secondary IPs of the NIC", async () => {
    await readmeOnVm("docker network create -d azure --ipam-driver azure azure-vnet");
    const any = await readmeOnVm("docker run --rm --network azure-vnet busybox ip addr");
    expect(SECONDARIES, any.stdout).to.include(/inet (10\.1\.0\.\d+)\/24 /.exec(any.stdout)?.[1]);
    await readmeOnVm("docker network create -d azure --ipam-driver azure --subnet 10.1.0.0/24 vnet");
    const asked = await readmeOnVm("docker run --rm --network vnet --ip 10.1.0.7 busybox ip addr");
    expect(asked.stdout).to.contain("inet 10.1.0.7/24 ");
    await readmeOnVm(
      "docker network create -d azure --ipam-driver azure -o imds=allow -o wireserver=allow azure-trusted",
    );
    const trusted = (await pluginAnswers(5_000)).networks.find((n) => n.imdsAccess);
    expect(trusted, "docs/security.md's network opens both shields").to.deep.include({
      imdsAccess: true,
      wireserverAccess: true,
    });
    await dockerd.dockerOk(["network", "rm", "azure-vnet", "vnet", "azure-trusted"]);
  });

  it("npm start -- --pool-source file --pool-file /etc/azure-vnet/pool.json serves the pool file", async () => {
    await stopPlugin();
    plugin = spawnReadmeCommand(
      "npm start -- --pool-source file --pool-file /etc/azure-vnet/pool.json",
      machineOf(dockerd, checkout),
      join(dir!, "npm-start-file.log"),
    );
    const status = await pluginAnswers(60_000);
    expect(status.pool[0]!.free).to.deep.equal(["10.1.0.5", "10.1.0.6"]);
    await stopPlugin();
  });

  it("npm run build && npm run demo passes every step and exits 0", async () => {
    // The demo builds its own emulated VNet on this machine; it runs as the user runs it, as root here.
    const demo = await timed("npm run build && npm run demo", () =>
      readmeCommand("npm run build && npm run demo", { cwd: checkout, mounts: [...USER_NODE] }, 240_000),
    );
    expect(demo.code, `${demo.stdout}\n${demo.stderr}`).to.equal(0);
  });
});
