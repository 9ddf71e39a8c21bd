/**
 * A Docker Swarm across emulated Azure VMs: one VNet, and on every VM its own dockerd (own plugins
 * folder at /run/docker/plugins in its mount namespace, own UTS namespace whose host name is the VM's
 * name) with the busybox image, and its own plugin (own state dir, own IMDS view of its own NIC). The
 * first VM runs `docker swarm init --advertise-addr <its primary>`, the others join it as workers
 * through the emulated fabric. Everything is torn down by {@link Swarm.teardown}, also when setup
 * fails halfway. Root only.
 *
 * The plugin is by default the managed plugin, made with `docker plugin create` on every node from a
 * folder ({@link makePluginFolder}): swarmkit refuses legacy plugins for swarm networks ("legacy plugin
 * azure of type NetworkDriver is not supported in swarm mode"), so that is what a swarm user installs.
 * Its name carries the tag (`azure:latest`, as after `docker plugin install --alias azure`), and swarm
 * networks must name it so. `plugin: "legacy"` runs the plugin as a process on the VM instead.
 */
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fetchStatus, type PluginStatus } from "../../plugin/cli/plugin-client.js";
import { startAzureEndpoints, startPluginInVm } from "./azure-vm.js";
import {
  DOCKERD_RELEASES,
  dockerdVersionUnderTest,
  startDockerd,
  type Dockerd,
  type DockerdVersion,
} from "./dockerd.js";
import { makePluginFolder } from "./plugin-folder.js";
import { pollUntil } from "./run.js";
import type { RunResult } from "./run.js";
import { createVnet, type VmInfo, type VmSpec, type Vnet } from "./vnet.js";

/** The managed plugin's name on every node: what `docker plugin install --alias azure` gives. */
export const MANAGED_PLUGIN = "azure:latest";

/** The swarm's manager: 10.1.0.4 with four secondaries, public 198.51.100.4. */
export const SWARM_VM1: VmSpec = {
  name: "vm1",
  mac: "00:0d:3a:00:16:01",
  primary: "10.1.0.4",
  secondaries: ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"],
  publicIp: "198.51.100.4",
};

/** The swarm's worker, in the same subnet: 10.1.0.20 with four secondaries, public 198.51.100.20. */
export const SWARM_VM2: VmSpec = {
  name: "vm2",
  mac: "00:0d:3a:00:16:02",
  primary: "10.1.0.20",
  secondaries: ["10.1.0.21", "10.1.0.22", "10.1.0.23", "10.1.0.24"],
  publicIp: "198.51.100.20",
};

/** Options of {@link startSwarm}. */
export type SwarmOptions = {
  /** Names the temp dir. */
  name: string;
  /** The VMs; the first is the manager, the others join as workers. Default [SWARM_VM1, SWARM_VM2]. */
  vms?: VmSpec[];
  /** Further subnets of the VNet, for VMs placed in them. */
  extraSubnets?: string[];
  /** "managed" (default): the managed plugin on every dockerd; "legacy": a plugin process per VM. */
  plugin?: "managed" | "legacy";
  /**
   * The managed plugin's folder ({@link makePluginFolder}), made once and shared by several swarms;
   * default: made in the swarm's own folder.
   */
  pluginFolder?: string;
  /** Settings of every node's managed plugin (`docker plugin set`), e.g. AZURE_VNET_RECONCILE_INTERVAL=5. */
  pluginSettings?: string[];
  /** Extra flags for every VM's legacy plugin. */
  pluginArgs?: string[];
  /** Which dockerd; default {@link dockerdVersionUnderTest} (E2E_DOCKERD). */
  version?: DockerdVersion;
  /** Image imported on every node; default "busybox:local". */
  image?: string;
};

/** A node's plugin, managed or legacy. */
export type SwarmPlugin = {
  kind: "managed" | "legacy";
  /** Where it answers on this machine (for a managed plugin, through a short link to its folder). */
  socketPath: string;
  /** GET /status. */
  status(): Promise<PluginStatus>;
  /** Its structured log lines so far. */
  logs(): Record<string, unknown>[];
};

/** One VM of the swarm. */
export type SwarmNode = {
  /** The VM's name, also its host name and the swarm node's hostname. */
  name: string;
  /** The VM as the fabric knows it when the swarm was made (its secondaries, public IP…). */
  vm: VmInfo;
  role: "manager" | "worker";
  /** The swarm's id of this node. */
  nodeId: string;
  /** The VM's own folder: plugins/ (dockerd's /run/docker/plugins), plugin/ (a link to the managed plugin's socket folder) or the legacy plugin's state/ and plugin.log. */
  dir: string;
  plugin: SwarmPlugin;
  dockerd: Dockerd;
  /** The docker CLI against this node's dockerd; a non-zero exit is returned. */
  docker(...args: string[]): Promise<RunResult>;
  /** Like {@link docker}, throwing on a non-zero exit; returns stdout, trimmed. */
  dockerOk(...args: string[]): Promise<string>;
};

/** A running task's container, as the node that runs it sees it. */
export type TaskContainer = {
  /** The node (VM) name. */
  node: string;
  containerId: string;
  /** The swarm task id (label com.docker.swarm.task.id). */
  taskId: string;
  /** The task container's name (label com.docker.swarm.task.name): "web.2.<task id>". */
  taskName: string;
  /** IPv4 address on the network asked about ("" when not attached). */
  address: string;
};

/** One line of `docker service ps --no-trunc`. */
export type ServiceTask = {
  id: string;
  name: string;
  node: string;
  desiredState: string;
  currentState: string;
  error: string;
};

export type Swarm = {
  vnet: Vnet;
  dir: string;
  manager: SwarmNode;
  workers: SwarmNode[];
  /** Every node, the manager first. */
  nodes: SwarmNode[];
  node(name: string): SwarmNode;
  /** The containers of `service`'s tasks on every node (running or not), with their address on `network`. */
  serviceContainers(service: string, network: string): Promise<TaskContainer[]>;
  /** `docker service ps --no-trunc` of `service` on the manager, every task (also finished ones). */
  serviceTasks(service: string): Promise<ServiceTask[]>;
  /**
   * Waits until `service` has exactly `count` running task containers on its nodes, every one with an
   * address on `network`, and returns them; fails early with the tasks' errors when a task failed.
   */
  waitForRunning(
    service: string,
    network: string,
    count: number,
    timeoutMs?: number,
  ): Promise<TaskContainer[]>;
  teardown(): Promise<void>;
};

const SERVICE_PS_FORMAT = "{{json .}}";

/**
 * Builds the VNet, the Azure stand-in answering each VM about its own NIC, and on every VM a plugin and
 * a dockerd; imports the image on every node; makes the first VM a swarm manager and joins the others as
 * workers, and waits until every node is Ready. If any step fails, what was built is torn down before
 * the error is rethrown.
 */
export async function startSwarm(options: SwarmOptions): Promise<Swarm> {
  if (process.getuid?.() !== 0)
    throw new Error("the swarm e2e suite needs root (network namespaces, dockerd)");
  const specs = options.vms ?? [SWARM_VM1, SWARM_VM2];
  if (specs.length < 2) throw new Error("a swarm across VMs needs at least two VMs");
  const dir = await mkdtemp(join(tmpdir(), `azure-vnet-${options.name}-`));
  let vnet: Vnet | undefined;
  const teardown = async () => {
    try {
      await vnet?.teardown();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    vnet = await createVnet({ vms: specs, extraSubnets: options.extraSubnets });
    const net = vnet;
    await startAzureEndpoints(
      net,
      specs.map((s) => s.name),
      dir,
    );
    const kind = options.plugin ?? "managed";
    const pluginFolder =
      kind === "managed"
        ? (options.pluginFolder ?? (await makePluginFolder(join(dir, "plugin-folder"))))
        : "";
    const nodes: SwarmNode[] = [];
    for (const [index, spec] of specs.entries()) {
      const role = index === 0 ? "manager" : "worker";
      const nodeDir = join(dir, spec.name);
      nodes.push(
        kind === "managed"
          ? await startManagedNode(net, spec.name, nodeDir, role, pluginFolder, options)
          : await startLegacyNode(net, spec.name, nodeDir, role, options),
      );
    }
    const manager = nodes[0]!;
    const managerAddress = manager.vm.primary;
    await manager.dockerOk("swarm", "init", "--advertise-addr", managerAddress);
    const token = await manager.dockerOk("swarm", "join-token", "-q", "worker");
    for (const worker of nodes.slice(1)) {
      await worker.dockerOk(
        "swarm",
        "join",
        "--token",
        token,
        "--advertise-addr",
        worker.vm.primary,
        `${managerAddress}:2377`,
      );
    }
    for (const node of nodes) node.nodeId = await node.dockerOk("info", "--format", "{{.Swarm.NodeID}}");
    await pollUntil(
      "every swarm node to be Ready",
      async () => {
        const lines = (await manager.dockerOk("node", "ls", "--format", "{{.Hostname}} {{.Status}}")).split(
          "\n",
        );
        const ready = new Set(lines.filter((l) => l.endsWith(" Ready")).map((l) => l.split(" ")[0]));
        return nodes.every((n) => ready.has(n.name));
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const swarm: Swarm = {
      vnet: net,
      dir,
      manager,
      workers: nodes.slice(1),
      nodes,
      node(name) {
        const found = nodes.find((n) => n.name === name);
        if (!found) throw new Error(`no swarm node ${name} (have ${nodes.map((n) => n.name).join(", ")})`);
        return found;
      },
      serviceContainers: (service, network) => serviceContainers(nodes, service, network),
      serviceTasks: (service) => serviceTasks(manager, service),
      async waitForRunning(service, network, count, timeoutMs = 90_000) {
        return pollUntil(
          `${count} running task(s) of ${service} with an address on ${network}`,
          async () => {
            const failed = (await serviceTasks(manager, service)).filter(
              (t) => t.desiredState === "Running" && t.error !== "",
            );
            const containers = (await serviceContainers(nodes, service, network, true)).filter(
              (c) => c.address !== "",
            );
            if (containers.length === count && failed.length === 0) return containers;
            const errors = failed.map((t) => `${t.name}@${t.node}: ${t.error}`).join("; ");
            throw new Error(`${containers.length} running${errors ? `; failing: ${errors}` : ""}`);
          },
          { timeoutMs, intervalMs: 250 },
        );
      },
      teardown,
    };
    return swarm;
  } catch (error) {
    await teardown();
    throw error;
  }
}

/** A VM's dockerd (own plugins folder, own host name) with the image imported. */
async function startNodeDockerd(
  vnet: Vnet,
  name: string,
  dir: string,
  options: SwarmOptions,
): Promise<Dockerd> {
  await mkdir(join(dir, "plugins"), { recursive: true });
  const version = options.version ?? dockerdVersionUnderTest();
  const dockerd = await startDockerd(vnet, name, {
    version,
    // The machine's own dockerd gets a user's /run and /var/run/docker.sock as a root filesystem's
    // has, so that documented commands (machineOf) reach it on every version.
    ...(DOCKERD_RELEASES[version] === "bookworm" ? { machine: {} } : {}),
    pluginsDir: join(dir, "plugins"),
    hostname: name,
    // No registry is reachable here: without this every task start first waits for a pull to time out.
    env: { DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: "1" },
  });
  await dockerd.importBusybox(options.image ?? "busybox:local");
  return dockerd;
}

function swarmNode(
  vnet: Vnet,
  name: string,
  dir: string,
  role: SwarmNode["role"],
  dockerd: Dockerd,
  plugin: SwarmPlugin,
): SwarmNode {
  return {
    name,
    vm: vnet.vm(name),
    role,
    nodeId: "",
    dir,
    plugin,
    dockerd,
    docker: (...args) => dockerd.docker(args),
    dockerOk: async (...args) => (await dockerd.dockerOk(args)).stdout.trim(),
  };
}

/**
 * The managed plugin on the VM's dockerd: `docker plugin create` from the folder, its state on a
 * folder of this dockerd (Docker refuses a missing mount source, and the rootfs dockerd's /var/lib is
 * shared by every run), the Docker API socket folder pointed at this dockerd's, then enabled.
 */
async function startManagedNode(
  vnet: Vnet,
  name: string,
  dir: string,
  role: SwarmNode["role"],
  pluginFolder: string,
  options: SwarmOptions,
): Promise<SwarmNode> {
  const dockerd = await startNodeDockerd(vnet, name, dir, options);
  const stateDir = join(dockerd.dir, "azure-vnet");
  await mkdir(stateDir);
  await dockerd.dockerOk(["plugin", "create", MANAGED_PLUGIN, pluginFolder], { timeoutMs: 120_000 });
  await dockerd.dockerOk([
    "plugin",
    "set",
    MANAGED_PLUGIN,
    `state.source=${stateDir}`,
    `docker-socket.source=${dockerd.dir}`,
    "AZURE_VNET_LOG_LEVEL=debug",
    ...(options.pluginSettings ?? []),
  ]);
  await dockerd.dockerOk(["plugin", "enable", MANAGED_PLUGIN], { timeoutMs: 60_000 });
  const id = (await dockerd.dockerOk(["plugin", "inspect", "-f", "{{.Id}}", MANAGED_PLUGIN])).stdout.trim();
  // <pluginsDir>/<64-hex id>/azure.sock is longer than a unix socket path may be: reach it through a link.
  const link = join(dir, "plugin");
  await symlink(join(dockerd.pluginsDir, id), link);
  const socketPath = join(link, "azure.sock");
  await pollUntil("the managed plugin to answer on its socket", () => fetchStatus(socketPath), {
    timeoutMs: 20_000,
  });
  return swarmNode(vnet, name, dir, role, dockerd, {
    kind: "managed",
    socketPath,
    status: () => fetchStatus(socketPath),
    // dockerd logs the plugin's stdout, one line each, tagged plugin=<id>.
    logs: () =>
      readFileSync(dockerd.logFile, "utf8")
        .split("\n")
        .filter((line) => line.endsWith(`plugin=${id}`))
        .flatMap((line) => {
          const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
          if (msg === undefined) return [];
          try {
            return [JSON.parse(JSON.parse(`"${msg}"`) as string) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
  });
}

/** The plugin as a process in the VM (what swarm refuses for swarm networks), then the dockerd. */
async function startLegacyNode(
  vnet: Vnet,
  name: string,
  dir: string,
  role: SwarmNode["role"],
  options: SwarmOptions,
): Promise<SwarmNode> {
  await mkdir(dir, { recursive: true });
  // The plugin finds its dockerd's API through a link made once dockerd has its folder.
  const dockerSocketLink = join(dir, "docker.sock");
  const plugin = await startPluginInVm(vnet, name, dir, [
    "--docker-socket",
    dockerSocketLink,
    ...(options.pluginArgs ?? []),
  ]);
  const dockerd = await startNodeDockerd(vnet, name, dir, options);
  await symlink(dockerd.socketPath, dockerSocketLink);
  return swarmNode(vnet, name, dir, role, dockerd, {
    kind: "legacy",
    socketPath: plugin.socketPath,
    status: () => plugin.status(),
    logs: () => plugin.logs(),
  });
}

async function serviceContainers(
  nodes: readonly SwarmNode[],
  service: string,
  network: string,
  runningOnly = false,
): Promise<TaskContainer[]> {
  const found: TaskContainer[] = [];
  for (const node of nodes) {
    const ids = (
      await node.dockerOk(
        "ps",
        ...(runningOnly ? [] : ["-a"]),
        "-q",
        "--no-trunc",
        "--filter",
        `label=com.docker.swarm.service.name=${service}`,
      )
    )
      .split("\n")
      .filter(Boolean);
    for (const id of ids) {
      const inspected = await node.docker("inspect", id);
      // The container may be removed between ps and inspect (a rolling update): skip it.
      if (inspected.code !== 0) continue;
      const [container] = JSON.parse(inspected.stdout) as {
        Config: { Labels: Record<string, string> };
        NetworkSettings: { Networks: Record<string, { IPAddress?: string }> };
      }[];
      if (!container) continue;
      found.push({
        node: node.name,
        containerId: id,
        taskId: container.Config.Labels["com.docker.swarm.task.id"] ?? "",
        taskName: container.Config.Labels["com.docker.swarm.task.name"] ?? "",
        address: container.NetworkSettings.Networks[network]?.IPAddress ?? "",
      });
    }
  }
  return found;
}

async function serviceTasks(manager: SwarmNode, service: string): Promise<ServiceTask[]> {
  const out = await manager.dockerOk("service", "ps", "--no-trunc", "--format", SERVICE_PS_FORMAT, service);
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const t = JSON.parse(line) as Record<string, string>;
      return {
        id: t["ID"] ?? "",
        name: t["Name"] ?? "",
        node: t["Node"] ?? "",
        desiredState: t["DesiredState"] ?? "",
        currentState: t["CurrentState"] ?? "",
        // The CLI shows a task's error in quotes.
        error: (t["Error"] ?? "").replace(/^"([\s\S]*)"$/, "$1"),
      };
    });
}
