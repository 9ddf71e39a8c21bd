/**
 * Puts the plugin on an emulated Azure VM: the Azure stand-in answering on 169.254.169.254 and
 * 168.63.129.16 inside the fabric, describing the VM's NICs as the fabric routes them, and the plugin
 * process itself inside the VM's namespace with its socket where the VM's dockerd looks for plugins.
 */
import { openSync, closeSync, readFileSync } from "node:fs";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "node:child_process";
import { fetchStatus, type PluginStatus } from "../../plugin/cli/plugin-client.js";
import { startFakeArm, type FakeArm, type FakeArmOptions } from "./fake-arm.js";
import { FAKE_COMPUTE, type FakeAzureNics } from "./fake-azure.js";
import { createTestCa } from "./test-ca.js";
import { pollUntil, killPid } from "./run.js";
import { startDockerd, type Dockerd } from "./dockerd.js";
import { createVnet, IMDS_IP, WIRESERVER_IP, type NicInfo, type Vnet, type VmSpec } from "./vnet.js";

const PLUGIN_MAIN = fileURLToPath(new URL("../../plugin/main.js", import.meta.url));
/** The V8 flag every launcher gives the plugin (package.json, systemd unit, plugin entrypoint). */
export const PLUGIN_NODE_FLAGS = ["--max-semi-space-size=2", "--lite-mode"];
const FAKE_AZURE_MAIN = fileURLToPath(new URL("./fake-azure-main.js", import.meta.url));

/** Where Azure Resource Manager answers inside the emulated VNet (on the fabric, like IMDS). */
export const ARM_IP = "192.0.2.10";

/**
 * The stand-in's NIC document for a VM, from what the fabric routes to it: every NIC in IMDS order
 * (eth0 first, the only one marked primary), each with its MAC, subnet, primary and secondaries.
 * Public addresses are those associated with secondaries (setPublicIp), as before.
 */
export function nicDocument(vnet: Vnet, vmName: string): FakeAzureNics {
  return {
    publicIps: vnet.publicIpAssociations,
    interfaces: vnet.vm(vmName).nics.map((nic) => ({
      macAddress: nic.mac,
      primary: nic.index === 0,
      subnets: [{ prefix: nic.subnet, primaryAddress: nic.primary, secondaryAddresses: nic.secondaries }],
    })),
  };
}

/** ARM's name of a VM's NIC in the ARM stand-in: `<vm>-nic` for eth0, `<vm>-nic-<ifname>` for the others. */
export function armNicName(nic: Pick<NicInfo, "vmName" | "ifname" | "index">): string {
  return nic.index === 0 ? `${nic.vmName}-nic` : `${nic.vmName}-nic-${nic.ifname}`;
}

/** ARM's name of a VNet subnet in the ARM stand-in: "default" for the first, "subnet2", "subnet3"… after. */
export function armSubnetName(index: number): string {
  return index === 0 ? "default" : `subnet${index + 1}`;
}

/**
 * Starts the Azure stand-in in the fabric; it serves `vmName`'s NIC and re-reads it on every request,
 * so `updateNics` changes what IMDS reports. Given several VMs, it answers each one (by the source
 * address of the request: its eth0 primary, the only address the fabric lets reach IMDS) about its own
 * NICs, as Azure does, and `updateNics` rewrites every VM's document.
 */
export async function startAzureEndpoints(
  vnet: Vnet,
  vmName: string | readonly string[],
  dir: string,
): Promise<{ updateNics(): Promise<void> }> {
  const vmNames = typeof vmName === "string" ? [vmName] : [...vmName];
  if (vmNames.length === 0) throw new Error("startAzureEndpoints needs at least one VM");
  // One VM: its document answers every client, as before; several: one document per VM's primary.
  const files = vmNames.map((name) => ({
    name,
    file: join(dir, vmNames.length === 1 ? "nics.json" : `nics-${name}.json`),
  }));
  const updateNics = async () => {
    for (const { name, file } of files) await writeFile(file, JSON.stringify(nicDocument(vnet, name)));
  };
  await updateNics();
  const nicArgs =
    files.length === 1
      ? ["--nics", files[0]!.file]
      : files.flatMap(({ name, file }) => ["--nics-for", `${vnet.vm(name).primary}=${file}`]);
  vnet.spawnIn("fabric", [
    process.execPath,
    FAKE_AZURE_MAIN,
    ...nicArgs,
    "--listen",
    `${IMDS_IP}:80`,
    "--listen",
    `${WIRESERVER_IP}:80`,
  ]);
  for (const name of vmNames) {
    const primary = vnet.vm(name).primary;
    await pollUntil(
      `the Azure stand-in to answer ${name}`,
      async () => {
        const probe = await vnet.tcpProbe(name, IMDS_IP, 80, { source: primary, timeoutMs: 500 });
        return probe.connected ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
  }
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
  status(): Promise<PluginStatus>;
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
      ...PLUGIN_NODE_FLAGS,
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
    status: () => fetchStatus(socketPath),
    async stop() {
      if (child.pid !== undefined) await killPid(child.pid);
    },
  };
  await pollUntil(
    "the plugin to answer on its socket",
    async () => {
      if (child.exitCode !== null)
        throw new Error(`the plugin exited (${child.exitCode}): ${readFileSync(logFile, "utf8")}`);
      return (await fetchStatus(socketPath).catch(() => undefined)) ? true : undefined;
    },
    { timeoutMs: 20_000 },
  );
  return plugin;
}

/**
 * Starts the ARM stand-in for the VNet's VMs in the test process, served at https://ARM_IP inside the
 * fabric with a fresh test CA. Every NIC of every VM is its own ARM resource ({@link armNicName}: eth0 is
 * `<vm>-nic`, primary `ipconfig1`), in its subnet ({@link armSubnetName}). What ARM commits is what the
 * VNet then does: secondary IPs move in the fabric (on that NIC) and in IMDS (`updateNics`), public IPs
 * are NATed on the internet link. Returns the stand-in and the plugin flags that point at it.
 */
export async function startArmInVnet(
  vnet: Vnet,
  dir: string,
  updateNics: () => Promise<void>,
  options: Pick<FakeArmOptions, "loadBalancers" | "operationPolls"> = {},
): Promise<{ arm: FakeArm; pluginArgs: string[] }> {
  const ca = await createTestCa(dir, { ips: [ARM_IP, "127.0.0.1"] });
  const socketPath = join(dir, "arm.sock");
  const subnets = vnet.subnets;
  const nics = new Map(vnet.vms.flatMap((vm) => vm.nics.map((nic) => [armNicName(nic), nic] as const)));
  const arm = await startFakeArm({
    subscriptionId: FAKE_COMPUTE.subscriptionId,
    resourceGroup: FAKE_COMPUTE.resourceGroupName,
    location: FAKE_COMPUTE.location,
    subnet: { name: armSubnetName(0), vnetName: "vnet", prefix: vnet.subnet },
    subnets: subnets
      .slice(1)
      .map((s, i) => ({ name: armSubnetName(i + 1), vnetName: "vnet", prefix: s.prefix })),
    nics: [...nics].map(([name, nic]) => {
      const subnetIndex = subnets.findIndex((s) => s.prefix === nic.subnet);
      return {
        name,
        vmName: nic.vmName,
        mac: nic.mac,
        ...(subnetIndex > 0 ? { subnet: armSubnetName(subnetIndex) } : {}),
        ipConfigurations: [nic.primary, ...nic.secondaries].map((privateIp, index) => ({
          name: `ipconfig${index + 1}`,
          privateIp,
          primary: index === 0,
          backendPoolIds: [],
        })),
      };
    }),
    firstPublicIp: "198.51.100.200",
    tls: { certPem: ca.certPem, keyPem: ca.keyPem },
    listen: { socketPath },
    publicUrl: `https://${ARM_IP}`,
    retryAfterSeconds: 1,
    ...options,
    onNicChange: async (nic) => {
      const local = nics.get(nic.name);
      if (local === undefined) throw new Error(`ARM changed NIC ${nic.name}, which the VNet does not have`);
      await vnet.setSecondaries(
        local.vmName,
        nic.ipConfigurations.filter((c) => !c.primary).map((c) => c.privateIp),
        local.ifname,
      );
      await updateNics();
    },
    onPublicIpChange: async ({ publicIp, privateIp }) => {
      const previous = Object.entries(vnet.publicIpAssociations).find(([, pub]) => pub === publicIp);
      if (previous) await vnet.setPublicIp(previous[0], undefined);
      if (privateIp) await vnet.setPublicIp(privateIp, publicIp);
      await updateNics();
    },
  });
  vnet.onTeardown(() => arm.close());
  await vnet.serveInFabric(ARM_IP, 443, socketPath);
  return { arm, pluginArgs: ["--arm-endpoint", `https://${ARM_IP}`, "--arm-ca-file", ca.caFile] };
}

/** An emulated Azure VM running the plugin and a private dockerd with the busybox image, in a VNet. */
export type AzureTestbed = {
  vnet: Vnet;
  dir: string;
  plugin: PluginProcess;
  dockerd: Dockerd;
  /** The ARM stand-in, when asked for with `arm`. */
  arm: FakeArm | undefined;
  /**
   * Stops the plugin with `signal`, runs `whileDown` (to change the host or Docker behind its back),
   * and starts it again on the same state.
   */
  restartPlugin(signal: "SIGTERM" | "SIGKILL", whileDown?: () => Promise<unknown>): Promise<PluginProcess>;
  /** Stops dockerd (leaving running containers when `liveRestore`) and starts it again on the same data. */
  restartDockerd(options?: { liveRestore?: boolean }): Promise<Dockerd>;
  teardown(): Promise<void>;
};

export type TestbedOptions = {
  /** Extra plugin flags (e.g. a short --reconcile-interval). */
  pluginArgs?: string[];
  /** Start dockerd with --live-restore. */
  liveRestore?: boolean;
  /** Also run the ARM stand-in (see {@link startArmInVnet}) and point the plugin at it. */
  arm?: Pick<FakeArmOptions, "loadBalancers" | "operationPolls">;
  /** Further subnets of the VNet (see VnetOptions.extraSubnets), for VMs with NICs in them. */
  extraSubnets?: string[];
};

/**
 * Builds the VNet, the Azure stand-in answering for vm1, the plugin and a dockerd in vm1, and imports
 * busybox. The plugin reconciles against that dockerd. If any step fails, what was built is torn down
 * before the error is rethrown.
 */
export async function startAzureTestbed(
  vms: VmSpec[],
  name: string,
  options: TestbedOptions = {},
): Promise<AzureTestbed> {
  if (process.getuid?.() !== 0) throw new Error("the e2e suite needs root (network namespaces, dockerd)");
  const dir = await mkdtemp(join(tmpdir(), `azure-vnet-${name}-`));
  const pluginsDir = join(dir, "plugins");
  // The plugin finds dockerd's API through a link made once dockerd has its folder.
  const dockerSocketLink = join(dir, "docker.sock");
  const pluginArgs = ["--docker-socket", dockerSocketLink, ...(options.pluginArgs ?? [])];
  let arm: FakeArm | undefined;
  const liveRestoreArgs = (liveRestore: boolean | undefined) => (liveRestore ? ["--live-restore"] : []);
  let vnet: Vnet | undefined;
  const teardown = async () => {
    await vnet?.teardown();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    vnet = await createVnet({ vms, extraSubnets: options.extraSubnets });
    const net = vnet;
    const endpoints = await startAzureEndpoints(net, "vm1", dir);
    if (options.arm) {
      const wiring = await startArmInVnet(net, dir, () => endpoints.updateNics(), options.arm);
      arm = wiring.arm;
      pluginArgs.push(...wiring.pluginArgs);
    }
    const testbed: AzureTestbed = {
      vnet: net,
      dir,
      arm,
      plugin: await startPluginInVm(net, "vm1", dir, pluginArgs),
      dockerd: await startDockerd(net, "vm1", {
        pluginsDir,
        extraArgs: liveRestoreArgs(options.liveRestore),
      }),
      async restartPlugin(signal, whileDown) {
        const child = testbed.plugin.child;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        await exited;
        await whileDown?.();
        testbed.plugin = await startPluginInVm(net, "vm1", dir, pluginArgs);
        return testbed.plugin;
      },
      async restartDockerd(restart = {}) {
        const previous = testbed.dockerd;
        await previous.stop({ keepDir: true, keepContainers: restart.liveRestore === true });
        const extraArgs = liveRestoreArgs(restart.liveRestore ?? options.liveRestore);
        testbed.dockerd = await startDockerd(net, "vm1", { restartOf: previous, extraArgs });
        return testbed.dockerd;
      },
      teardown,
    };
    await symlink(testbed.dockerd.socketPath, dockerSocketLink);
    await testbed.dockerd.importBusybox();
    return testbed;
  } catch (error) {
    await teardown();
    throw error;
  }
}
