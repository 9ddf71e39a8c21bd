/**
 * Puts the plugin on an emulated Azure VM: the Azure stand-in answering on 169.254.169.254 and
 * 168.63.129.16 inside the fabric, describing the VM's NIC as the fabric routes it, and the plugin
 * process itself inside the VM's namespace with its socket where the VM's dockerd looks for plugins.
 */
import { openSync, closeSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "node:child_process";
import type { PoolFile } from "../../ipam-driver/sources/file.js";
import { pollUntil, killPid } from "./run.js";
import { startDockerd, type Dockerd } from "./dockerd.js";
import { createVnet, IMDS_IP, WIRESERVER_IP, type Vnet, type VmSpec } from "./vnet.js";

const PLUGIN_MAIN = fileURLToPath(new URL("../../plugin/main.js", import.meta.url));
const FAKE_AZURE_MAIN = fileURLToPath(new URL("./fake-azure-main.js", import.meta.url));

/** The stand-in's NIC document for a VM, from what the fabric routes to it. */
export function nicDocument(vnet: Vnet, vmName: string): PoolFile {
  const vm = vnet.vm(vmName);
  return {
    interfaces: [
      {
        macAddress: vm.mac,
        primary: true,
        subnets: [{ prefix: vnet.subnet, primaryAddress: vm.primary, secondaryAddresses: vm.secondaries }],
      },
    ],
  };
}

/**
 * Starts the Azure stand-in in the fabric; it serves `vmName`'s NIC and re-reads it on every request,
 * so `updateNics` changes what IMDS reports.
 */
export async function startAzureEndpoints(
  vnet: Vnet,
  vmName: string,
  dir: string,
): Promise<{ updateNics(): Promise<void> }> {
  const nicsFile = join(dir, "nics.json");
  const updateNics = () => writeFile(nicsFile, JSON.stringify(nicDocument(vnet, vmName)));
  await updateNics();
  vnet.spawnIn("fabric", [
    process.execPath,
    FAKE_AZURE_MAIN,
    "--nics",
    nicsFile,
    "--listen",
    `${IMDS_IP}:80`,
    "--listen",
    `${WIRESERVER_IP}:80`,
  ]);
  const primary = vnet.vm(vmName).primary;
  await pollUntil(
    `the Azure stand-in to answer ${vmName}`,
    async () => {
      const probe = await vnet.tcpProbe(vmName, IMDS_IP, 80, { source: primary, timeoutMs: 500 });
      return probe.connected ? true : undefined;
    },
    { timeoutMs: 15_000 },
  );
  return { updateNics };
}

export type PluginProcess = {
  socketPath: string;
  stateDir: string;
  logFile: string;
  child: ChildProcess;
  /** Structured log lines so far. */
  logs(): Record<string, unknown>[];
  /** GET /status over the socket. */
  status(): Promise<{ pool: { nic: string; free: string[]; inUse: string[]; goneButHeld: string[] }[] }>;
  stop(): Promise<void>;
};

/**
 * Starts the plugin in `vmName`'s namespace with its socket at `<dir>/plugins/azure.sock` (give the
 * VM's dockerd `<dir>/plugins` as its plugins folder), its state and log in `dir`, which the caller owns.
 */
export async function startPluginInVm(
  vnet: Vnet,
  vmName: string,
  dir: string,
  args: string[] = [],
): Promise<PluginProcess> {
  const socketPath = join(dir, "plugins", "azure.sock");
  const stateDir = join(dir, "state");
  const logFile = join(dir, "plugin.log");
  const out = openSync(logFile, "a");
  const child = vnet.spawnIn(
    vmName,
    [
      process.execPath,
      PLUGIN_MAIN,
      "--socket",
      socketPath,
      "--state-dir",
      stateDir,
      "--log-level",
      "debug",
      ...args,
    ],
    { stdio: ["ignore", out, out] },
  );
  closeSync(out);
  const plugin: PluginProcess = {
    socketPath,
    stateDir,
    logFile,
    child,
    logs: () =>
      readFileSync(logFile, "utf8")
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    status: () => getJson(socketPath, "/status") as ReturnType<PluginProcess["status"]>,
    async stop() {
      if (child.pid !== undefined) await killPid(child.pid);
    },
  };
  await pollUntil(
    "the plugin to answer on its socket",
    async () => {
      if (child.exitCode !== null)
        throw new Error(`the plugin exited (${child.exitCode}): ${readFileSync(logFile, "utf8")}`);
      return (await getJson(socketPath, "/status").catch(() => undefined)) ? true : undefined;
    },
    { timeoutMs: 20_000 },
  );
  return plugin;
}

function getJson(socketPath: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path }, (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => {
          try {
            resolve(JSON.parse(text));
          } catch (error) {
            reject(error as Error);
          }
        });
      })
      .on("error", reject);
  });
}

/** An emulated Azure VM running the plugin and a private dockerd with the busybox image, in a VNet. */
export type AzureTestbed = {
  vnet: Vnet;
  dir: string;
  plugin: PluginProcess;
  dockerd: Dockerd;
  teardown(): Promise<void>;
};

/**
 * Builds the VNet, the Azure stand-in answering for vm1, the plugin and a dockerd in vm1, and imports
 * busybox. If any step fails, what was built is torn down before the error is rethrown.
 */
export async function startAzureTestbed(vms: VmSpec[], name: string): Promise<AzureTestbed> {
  if (process.getuid?.() !== 0) throw new Error("the e2e suite needs root (network namespaces, dockerd)");
  const dir = await mkdtemp(join(tmpdir(), `azure-vnet-${name}-`));
  let vnet: Vnet | undefined;
  const teardown = async () => {
    await vnet?.teardown();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    vnet = await createVnet({ vms });
    await startAzureEndpoints(vnet, "vm1", dir);
    const plugin = await startPluginInVm(vnet, "vm1", dir);
    const dockerd = await startDockerd(vnet, "vm1", { pluginsDir: join(dir, "plugins") });
    await dockerd.importBusybox();
    return { vnet, dir, plugin, dockerd, teardown };
  } catch (error) {
    await teardown();
    throw error;
  }
}
