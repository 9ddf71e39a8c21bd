/**
 * Issue 16, Docker Swarm services on VNet addresses across VMs, end to end: two emulated Azure VMs, each
 * with its own dockerd (the version under test, E2E_DOCKERD) and its own azure-vnet plugin (the
 * managed plugin: swarmkit refuses legacy plugins for swarm networks), form a swarm. With the user's commands — a config-only network per node
 * (`--ipam-driver azure:latest --subnet <the VM's subnet>`), one attachable swarm network on the manager
 * (`-d azure:latest --scope swarm --config-from azure-cfg`), a dnsrr service — every task gets a
 * secondary IP of its own VM's NIC; tasks reach each other across VMs by address and by name and see
 * each other's own addresses, the on-premises host reaches them, and their internet traffic leaves
 * under their own VM's public address. Scaling to 0, a rolling update, draining a node, a standalone
 * container on the worker and `docker stack deploy` leave no address held that no task uses, and the
 * hosts' networking returns to what it was once the service is gone. Setups that cannot work fail with
 * a clear error in `docker service ps --no-trunc` and leave nothing behind. A second swarm puts vm2 in
 * another subnet of the VNet, each node's config-only network naming its own subnet. Root only.
 */
import { expect } from "chai";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  expectSameHost,
  snapshotHost,
  withoutDockerPlumbing,
  type HostSnapshot,
} from "../helpers/host-snapshot.js";
import { makePluginFolder } from "../helpers/plugin-folder.js";
import { machineOf, readmeCommand } from "../helpers/readme.js";
import { pollUntil, type RunResult } from "../helpers/run.js";
import {
  MANAGED_PLUGIN,
  startSwarm,
  SWARM_VM1,
  SWARM_VM2,
  type Swarm,
  type SwarmNode,
  type TaskContainer,
} from "../helpers/swarm.js";
import { INET_HOST_IP, ONPREM_HOST_IP } from "../helpers/vnet.js";

const CONFIG = "azure-cfg";
const NETWORK = "azure-sw";
const INET_PORT = 7000;
const IMAGE = "busybox:local";
/** The bridge on which Docker connects swarm containers that no network of theirs gives a gateway. */
const GWBRIDGE = "docker_gwbridge";
/** busybox httpd hands a CGI script the caller's address: GET /cgi-bin/ip answers it. */
const CGI = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$REMOTE_ADDR"\n';
const SERVE =
  'mkdir -p /www/cgi-bin && printf "%s\\n" "$CGI" >/www/cgi-bin/ip && chmod 755 /www/cgi-bin/ip && exec httpd -f -p 80 -h /www';
/**
 * What every service and container of this suite runs: the image, then an httpd that says who asked.
 * With an init (Docker's tini) in front, so that SIGTERM stops httpd at once: as PID 1 it would ignore
 * it, and every stop, scale-down and rolling update step would wait out the 10 s grace period.
 */
const SERVER = ["--init", "--env", `CGI=${CGI}`, IMAGE, "sh", "-c", SERVE];
const ASK_IP = "GET /cgi-bin/ip HTTP/1.0\r\n\r\n";
const IPV4 = /(\d{1,3}(?:\.\d{1,3}){3})/;

const sorted = (values: Iterable<string>) => [...values].sort();

/** The IPv4 address in an HTTP answer of GET /cgi-bin/ip ("[::ffff:10.1.0.5]" on busybox). */
function callerIn(answer: string): string {
  const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
  return IPV4.exec(body)?.[1] ?? `(no address in ${JSON.stringify(answer)})`;
}

/** The addresses an nslookup answer lists for the name (not the server's own "Address: …:53"). */
function resolvedIn(output: string): string[] {
  return output
    .split("\n")
    .map((line) => /^Address:\s*(\d{1,3}(?:\.\d{1,3}){3})\s*$/.exec(line.trim())?.[1])
    .filter((a): a is string => a !== undefined);
}

describe("e2e: Docker Swarm services on VNet addresses across VMs (issue 16)", function () {
  this.timeout(300_000);
  let folderDir: string | undefined;
  let pluginFolder = "";

  before(async function () {
    if (process.getuid?.() !== 0)
      throw new Error("the swarm e2e suite needs root (network namespaces, dockerd)");
    folderDir = await mkdtemp(join(tmpdir(), "azure-vnet-swarm-plugin-"));
    pluginFolder = await makePluginFolder(join(folderDir, "plugin"));
  });

  after(async () => {
    if (folderDir !== undefined) await rm(folderDir, { recursive: true, force: true });
  });

  /** Runs `argv` in a task's or container's namespaces on its node. */
  const execIn = (node: SwarmNode, container: string, ...argv: string[]) =>
    node.docker("exec", container, ...argv);
  /**
   * GET /cgi-bin/ip from a container to `address` (or a name, which busybox nc resolves through Docker's
   * DNS): the address the server saw the request come from.
   */
  const askFrom = async (node: SwarmNode, container: string, address: string) => {
    const answer = await execIn(node, container, "sh", "-c", `printf '${ASK_IP}' | nc -w 3 ${address} 80`);
    return callerIn(answer.stdout);
  };
  /** nslookup `name` in a container (busybox's own resolver, asking Docker's at 127.0.0.11). */
  const lookupFrom = async (node: SwarmNode, container: string, name: string) =>
    sorted(resolvedIn((await execIn(node, container, "nslookup", name)).stdout));
  /** Waits until `name` resolves in a container to exactly `addresses` (gossip brings other VMs' records). */
  const expectResolves = (on: SwarmNode, container: string, name: string, addresses: string[]) =>
    pollUntil(
      `${name} in ${container} on ${on.name} to resolve to ${addresses.join(" ")}`,
      async () => {
        const found = await lookupFrom(on, container, name);
        if (JSON.stringify(found) !== JSON.stringify(sorted(addresses)))
          throw new Error(`resolved ${found.join(" ")}`);
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
  /**
   * `docker network create --config-only --ipam-driver azure:latest --subnet <the VM's subnet> OPTIONS NAME`
   * on a node (another IPAM driver name when given).
   */
  const createConfigOnly = (
    on: SwarmNode,
    name: string,
    options: string[] = [],
    ipamDriver = MANAGED_PLUGIN,
  ) =>
    on.dockerOk(
      "network",
      "create",
      "--config-only",
      "--ipam-driver",
      ipamDriver,
      "--subnet",
      on.vm.subnet,
      ...options,
      name,
    );
  /** `docker network create -d azure:latest --scope swarm --config-from CONFIG …` on the manager. */
  const createSwarmNetwork = (swarm: Swarm, name: string, config: string, ...options: string[]) =>
    swarm.manager.dockerOk(
      "network",
      "create",
      "-d",
      MANAGED_PLUGIN,
      "--scope",
      "swarm",
      "--config-from",
      config,
      ...options,
      name,
    );
  /** `docker service create` on the manager, without asking a registry for the image (none is reachable). */
  const createService = (swarm: Swarm, name: string, ...options: string[]) =>
    swarm.manager.dockerOk("service", "create", "--detach", "--no-resolve-image", "--name", name, ...options);
  /** The on-premises host reaches every task, and the task sees the on-premises address (no NAT). */
  const expectOnPremisesReaches = async (swarm: Swarm, tasks: TaskContainer[]) => {
    for (const task of tasks) {
      const probe = await swarm.vnet.tcpProbe("onprem", task.address, 80, { payload: ASK_IP });
      expect(callerIn(probe.data), task.taskName).to.equal(ONPREM_HOST_IP);
    }
  };
  /** Every task's connection to the internet host arrives from its own VM's public address. */
  const expectEgressUnderPublicIps = async (swarm: Swarm, tasks: TaskContainer[]) => {
    const recorder = await swarm.vnet.startTcpRecorder("inet", INET_HOST_IP, INET_PORT, "inet");
    try {
      for (const task of tasks) {
        const on = swarm.node(task.node);
        const seen = await execIn(on, task.containerId, "nc", "-w", "3", INET_HOST_IP, String(INET_PORT));
        expect(seen.stdout.trim(), task.taskName).to.equal(`inet ${on.vm.publicIp}`);
      }
    } finally {
      await recorder.close();
    }
  };

  describe("the plugin as a legacy plugin (a process on each VM)", function () {
    let swarm: Swarm | undefined;

    before(async () => {
      swarm = await startSwarm({ name: "swarm-legacy", plugin: "legacy" });
    });

    after(async () => {
      await swarm?.teardown();
    });

    it("swarmkit refuses a swarm network on it: legacy plugins are not supported in swarm mode", async () => {
      const manager = swarm!.manager;
      await createConfigOnly(manager, CONFIG, [], "azure");
      const create = await manager.docker(
        "network",
        "create",
        "-d",
        "azure",
        "--scope",
        "swarm",
        "--config-from",
        CONFIG,
        NETWORK,
      );
      expect(create.code).to.not.equal(0);
      expect(create.stderr.trim()).to.equal(
        "Error response from daemon: rpc error: code = InvalidArgument desc = legacy plugin azure of type NetworkDriver is not supported in swarm mode",
      );
    });
  });

  describe("vm2 in another subnet: each node's config-only network names its own VM's subnet", function () {
    this.bail(true);
    let swarm: Swarm | undefined;
    let tasks: TaskContainer[] = [];
    const VM2_OTHER_SUBNET = {
      ...SWARM_VM2,
      subnet: "10.1.1.0/24",
      primary: "10.1.1.20",
      secondaries: ["10.1.1.21", "10.1.1.22"],
    };

    before(async () => {
      swarm = await startSwarm({
        name: "swarm-subnets",
        pluginFolder,
        vms: [{ ...SWARM_VM1, secondaries: ["10.1.0.5", "10.1.0.6"] }, VM2_OTHER_SUBNET],
        extraSubnets: ["10.1.1.0/24"],
      });
    });

    after(async () => {
      await swarm?.teardown();
    });

    it("a service in the default endpoint mode with one task per VM: each task on a secondary IP of its own VM, in its own subnet", async () => {
      const s = swarm!;
      for (const on of s.nodes) {
        await createConfigOnly(on, CONFIG);
      }
      await createSwarmNetwork(s, NETWORK, CONFIG, "--attachable");
      await createService(
        s,
        "web",
        "--replicas",
        "2",
        "--replicas-max-per-node",
        "1",
        "--network",
        NETWORK,
        ...SERVER,
      );
      tasks = await s.waitForRunning("web", NETWORK, 2);
      expect(sorted(tasks.map((t) => t.node))).to.deep.equal(["vm1", "vm2"]);
      for (const task of tasks)
        expect(s.node(task.node).vm.secondaries, task.taskName).to.include(task.address);
      // vip mode, but swarm allocates no virtual IP on a network whose driver is node-local (nor a
      // load-balancer endpoint, which would take a secondary IP): the name leads to the tasks, as dnsrr.
      const [endpoint] = JSON.parse(
        await s.manager
          .dockerOk("service", "inspect", "-f", "{{json .Endpoint}}", "web")
          .then((o) => `[${o}]`),
      ) as { Spec: { Mode: string }; VirtualIPs?: { Addr?: string }[] }[];
      expect(endpoint!.Spec.Mode).to.equal("vip");
      expect((endpoint!.VirtualIPs ?? []).filter((vip) => vip.Addr)).to.deep.equal([]);
    });

    it("the tasks reach each other across the subnets by address and by name and see each other's own addresses; on-premises reaches both; each leaves under its VM's public address", async () => {
      const s = swarm!;
      const [a, b] = tasks as [TaskContainer, TaskContainer];
      expect(await askFrom(s.node(a.node), a.containerId, b.address)).to.equal(a.address);
      expect(await askFrom(s.node(b.node), b.containerId, a.address)).to.equal(b.address);
      for (const name of ["tasks.web", "web"])
        await expectResolves(s.node(b.node), b.containerId, name, [a.address, b.address]);
      await expectOnPremisesReaches(s, tasks);
      await expectEgressUnderPublicIps(s, tasks);
    });
  });

  describe("a dnsrr service on two VMs in one subnet", function () {
    // Each step builds on the one before.
    this.bail(true);
    let swarm: Swarm;
    let swarmStarted: Swarm | undefined;
    const pristine = new Map<string, HostSnapshot>();
    let tasks: TaskContainer[] = [];
    const timings: string[] = [];
    const node = (name: string) => swarm.node(name);
    const timed = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
      const started = Date.now();
      try {
        return await step();
      } finally {
        timings.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
    };

    /** Every address on `network` of a running container on `node`. */
    const addressesOn = async (on: SwarmNode, network = NETWORK) => {
      const ids = (await on.dockerOk("ps", "-q")).split("\n").filter(Boolean);
      const addresses: string[] = [];
      for (const id of ids) {
        const inspected = await on.docker("inspect", id);
        if (inspected.code !== 0) continue;
        const [container] = JSON.parse(inspected.stdout) as {
          NetworkSettings: { Networks: Record<string, { IPAddress?: string }> };
        }[];
        const address = container?.NetworkSettings.Networks[network]?.IPAddress;
        if (address) addresses.push(address);
      }
      return sorted(addresses);
    };
    /** The addresses `node`'s plugin holds (in use, per its /status). */
    const heldOn = async (on: SwarmNode) => sorted((await on.plugin.status()).pool.flatMap((p) => p.inUse));
    /**
     * Waits until every node's plugin holds exactly the addresses its running containers use on the
     * swarm network: no address held that no task uses, and none in use that the plugin forgot.
     */
    const expectHeldMatchesRunning = (what: string) =>
      pollUntil(
        `${what}: every VM's plugin to hold exactly its running containers' addresses`,
        async () => {
          for (const on of swarm.nodes) {
            const [held, used] = [await heldOn(on), await addressesOn(on)];
            if (JSON.stringify(held) !== JSON.stringify(used))
              throw new Error(
                `${on.name} holds ${held.join(" ") || "nothing"}, its containers use ${used.join(" ") || "nothing"}`,
              );
          }
          return true;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
    /**
     * Waits until `host`'s networking equals its snapshot from before any azure network, but for
     * Docker's own ingress sandbox on docker_gwbridge, which dockerd builds in the background when the
     * node joins (20.10: or with its first task) and keeps for the node's life. That bridge must hold
     * nothing else: a task container on it would mean Docker found no gateway on our network.
     */
    const expectPristine = (host: string) =>
      pollUntil(
        `${host}'s host networking to be back to its snapshot`,
        async () => {
          const on = node(host);
          const gwbridge = await on.docker(
            "network",
            "inspect",
            "--format",
            "{{json .Containers}}",
            GWBRIDGE,
          );
          if (gwbridge.code === 0) {
            const containers = Object.keys((JSON.parse(gwbridge.stdout) as object | null) ?? {});
            expect(
              containers.filter((name) => name !== "ingress-sbox"),
              `${host}: on ${GWBRIDGE}`,
            ).to.deep.equal([]);
          }
          const now = await snapshotHost(swarm.vnet, host);
          expectSameHost(
            withoutDockerPlumbing(now, GWBRIDGE),
            withoutDockerPlumbing(pristine.get(host)!, GWBRIDGE),
            host,
          );
          return true;
        },
        { timeoutMs: 30_000, intervalMs: 500 },
      );
    const expectNothingHeld = async () => {
      for (const on of swarm.nodes) {
        const status = await on.plugin.status();
        expect(
          status.pool.flatMap((p) => p.inUse),
          `${on.name} holds`,
        ).to.deep.equal([]);
        expect(status.endpoints, `${on.name} endpoints`).to.deep.equal([]);
        expect(status.networks, `${on.name} networks`).to.deep.equal([]);
      }
    };
    /** `docker service update` on the manager, without asking a registry for the image. */
    const updateService = (name: string, ...options: string[]) =>
      swarm.manager.dockerOk("service", "update", "--detach", "--no-resolve-image", ...options, name);
    /** The first error `docker service ps --no-trunc` shows for `service`, once a task failed. */
    const firstTaskError = (service: string) =>
      pollUntil(
        `a task of ${service} to fail`,
        async () => (await swarm.serviceTasks(service)).find((t) => t.error !== "")?.error,
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    const removeService = async (name: string) => {
      await swarm.manager.dockerOk("service", "rm", name);
      await pollUntil(
        `the containers of ${name} to be gone`,
        async () => (await swarm.serviceContainers(name, NETWORK)).length === 0,
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    };

    before(async () => {
      // Reconciliation every 2 s, for records 2 s old: it must tell swarm tasks' networks, endpoints and
      // addresses from leftovers, while tasks come and go on both VMs.
      const pluginSettings = ["AZURE_VNET_RECONCILE_INTERVAL=2", "AZURE_VNET_RECONCILE_GRACE=2"];
      swarmStarted = await timed("swarm up", () =>
        startSwarm({ name: "swarm", pluginFolder, pluginSettings }),
      );
      swarm = swarmStarted;
      for (const on of swarm.nodes) pristine.set(on.name, await snapshotHost(swarm.vnet, on.name));
    });

    after(async () => {
      if (timings.length > 0) console.log(`      timings: ${timings.join("; ")}`);
      await swarmStarted?.teardown();
    });

    it("the swarm: vm1 manager and vm2 worker, each with its own host name and its own plugin's view of its own NIC", async () => {
      const nodes = await swarm.manager.dockerOk(
        "node",
        "ls",
        "--format",
        "{{.Hostname}}:{{.ManagerStatus}}",
      );
      expect(sorted(nodes.split("\n").map((line) => line.trim()))).to.deep.equal(["vm1:Leader", "vm2:"]);
      for (const on of swarm.nodes) {
        const [pool] = (await on.plugin.status()).pool;
        expect(pool?.primary, on.name).to.equal(on.vm.primary);
        expect(pool?.free, on.name).to.deep.equal(on.vm.secondaries);
      }
    });

    it("config-only networks per node hold the IPAM and driver options; the swarm network only names the driver and the config", async () => {
      for (const on of swarm.nodes) {
        expect(on.vm.subnet, "the documented command names this swarm's subnet").to.equal("10.1.0.0/24");
        succeeded(
          await readmeCommand(
            "docker network create --config-only --ipam-driver azure:latest --subnet 10.1.0.0/24 azure-cfg",
            machineOf(on.dockerd, "/"),
          ),
        );
      }
      const manager = swarm.manager;
      const refused = async (...args: string[]) => {
        const result = await manager.docker("network", "create", ...args);
        expect(result.code, args.join(" ")).to.not.equal(0);
        return result.stderr.trim();
      };
      const swarmNetwork = ["-d", MANAGED_PLUGIN, "--scope", "swarm", "--config-from", CONFIG];
      expect(await refused(...swarmNetwork, "--ipam-driver", MANAGED_PLUGIN, "x1")).to.equal(
        "Error response from daemon: user specified configurations are not supported if the network depends on a configuration network",
      );
      expect(await refused(...swarmNetwork, "-o", "mode=transparent", "x2")).to.equal(
        "Error response from daemon: network driver options are not supported if the network depends on a configuration network",
      );
      // A managed plugin's name carries its tag; swarm does not find it without.
      expect(await refused("-d", "azure", "--scope", "swarm", "--config-from", CONFIG, "x3")).to.equal(
        "Error response from daemon: could not resolve driver azure in registry",
      );
      succeeded(
        await readmeCommand(
          "docker network create -d azure:latest --scope swarm --config-from azure-cfg --attachable azure-sw",
          machineOf(manager.dockerd, "/"),
        ),
      );
      const [network] = JSON.parse(await manager.dockerOk("network", "inspect", NETWORK)) as {
        Driver: string;
        Scope: string;
        Attachable: boolean;
        ConfigFrom: { Network: string };
      }[];
      expect(network).to.deep.include({ Driver: MANAGED_PLUGIN, Scope: "swarm", Attachable: true });
      expect(network!.ConfigFrom.Network).to.equal(CONFIG);
    });

    it("the documented service: 4 tasks on both VMs, each on a secondary IP of its own VM's NIC", async () => {
      for (const on of swarm.nodes) await on.dockerOk("tag", "busybox:local", "busybox:latest");
      succeeded(
        await readmeCommand(
          "docker service create --name web --replicas 4 --endpoint-mode dnsrr --network azure-sw --init busybox httpd -f -p 80 -h /",
          machineOf(swarm.manager.dockerd, "/"),
          180_000,
        ),
      );
      const documented = await swarm.waitForRunning("web", NETWORK, 4);
      expect(sorted(new Set(documented.map((t) => t.node)))).to.deep.equal(["vm1", "vm2"]);
      for (const task of documented)
        expect(node(task.node).vm.secondaries, task.taskName).to.include(task.address);
      await swarm.manager.dockerOk("service", "rm", "web");
      await pollUntil(
        "the documented service's tasks to be gone",
        async () => (await swarm.serviceContainers("web", NETWORK)).length === 0,
        { timeoutMs: 60_000 },
      );
    });

    it("docker service create: tasks on both VMs, each on a secondary IP of its own VM's NIC", async () => {
      await createService(
        swarm,
        "web",
        "--replicas",
        "4",
        "--endpoint-mode",
        "dnsrr",
        "--network",
        NETWORK,
        ...SERVER,
      );
      tasks = await timed("4 tasks running", () => swarm.waitForRunning("web", NETWORK, 4));
      expect(sorted(new Set(tasks.map((t) => t.node)))).to.deep.equal(["vm1", "vm2"]);
      for (const task of tasks)
        expect(node(task.node).vm.secondaries, task.taskName).to.include(task.address);
      expect(new Set(tasks.map((t) => t.address)).size).to.equal(4);
      await expectHeldMatchesRunning("after create");
    });

    it("tasks reach each other across VMs by address, and see each other's own addresses", async () => {
      for (const from of tasks) {
        for (const to of tasks.filter((t) => t.node !== from.node)) {
          expect(
            await askFrom(node(from.node), from.containerId, to.address),
            `${from.taskName} → ${to.taskName}`,
          ).to.equal(from.address);
        }
      }
    });

    it("tasks find each other by the names tasks.web and web, and by container name, on both VMs", async () => {
      const all = tasks.map((t) => t.address);
      for (const from of [tasks.find((t) => t.node === "vm1")!, tasks.find((t) => t.node === "vm2")!]) {
        const on = node(from.node);
        for (const name of ["tasks.web", "web"]) await expectResolves(on, from.containerId, name, all);
        // Connecting by name, as an application would: tasks.web, and the other VM's task by its
        // container name once gossip has brought it. Whoever answers sees the caller's own address.
        expect(await askFrom(on, from.containerId, "tasks.web"), `${from.taskName} → tasks.web`).to.equal(
          from.address,
        );
        const other = tasks.find((t) => t.node !== from.node)!;
        await expectResolves(on, from.containerId, other.taskName, [other.address]);
        expect(
          await askFrom(on, from.containerId, other.taskName),
          `${from.taskName} → ${other.taskName}`,
        ).to.equal(from.address);
      }
    });

    it("the on-premises host reaches every task, which sees the on-premises address", async () => {
      await expectOnPremisesReaches(swarm, tasks);
    });

    it("each task's internet traffic leaves under its own VM's public address", async () => {
      await expectEgressUnderPublicIps(swarm, tasks);
    });

    it("scaling to 0 gives back every address on both VMs, and scaling up lands on both VMs again", async () => {
      await updateService("web", "--replicas", "0");
      await timed("scale to 0", async () => {
        await pollUntil(
          "no running task of web",
          async () => (await swarm.serviceContainers("web", NETWORK)).every((c) => c.address === ""),
          { timeoutMs: 60_000, intervalMs: 250 },
        );
        await expectHeldMatchesRunning("after scaling to 0");
      });
      await expectNothingHeld();
      await updateService("web", "--replicas", "4");
      tasks = await timed("scale to 4", () => swarm.waitForRunning("web", NETWORK, 4));
      expect(sorted(new Set(tasks.map((t) => t.node)))).to.deep.equal(["vm1", "vm2"]);
      await expectHeldMatchesRunning("after scaling up");
    });

    it("a rolling update (--env-add) leaves each VM holding exactly its running tasks' addresses", async () => {
      const before = new Set(tasks.map((t) => t.containerId));
      await updateService("web", "--env-add", "ROLLED=1");
      await timed("rolling update", () =>
        pollUntil(
          "the rolling update to complete",
          async () => {
            const state = await swarm.manager.dockerOk(
              "service",
              "inspect",
              "-f",
              "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
              "web",
            );
            return state === "completed";
          },
          { timeoutMs: 120_000, intervalMs: 500 },
        ),
      );
      tasks = await swarm.waitForRunning("web", NETWORK, 4);
      expect(
        tasks.filter((t) => before.has(t.containerId)),
        "containers from before the update",
      ).to.deep.equal([]);
      for (const task of tasks)
        expect(node(task.node).vm.secondaries, task.taskName).to.include(task.address);
      await expectHeldMatchesRunning("after the rolling update");
    });

    it("an attachable standalone docker run --network azure-sw on the worker (vm2) works", async () => {
      const worker = node("vm2");
      await worker.dockerOk("run", "-d", "--name", "standalone", "--network", NETWORK, ...SERVER);
      const address = (await addressesOn(worker)).find((a) => !tasks.some((t) => t.address === a));
      expect(worker.vm.secondaries).to.include(address);
      const onVm1 = tasks.find((t) => t.node === "vm1")!;
      expect(await askFrom(node("vm1"), onVm1.containerId, address!), "a vm1 task → standalone").to.equal(
        onVm1.address,
      );
      expect(await askFrom(worker, "standalone", onVm1.address), "standalone → a vm1 task").to.equal(address);
      await expectResolves(
        worker,
        "standalone",
        "tasks.web",
        tasks.map((t) => t.address),
      );
      await worker.dockerOk("rm", "-f", "standalone");
      await expectHeldMatchesRunning("after removing the standalone container");
    });

    it("docker stack deploy with a compose file naming the external swarm network", async () => {
      const stackDir = await mkdtemp(join(swarm.dir, "stack-"));
      const compose = join(stackDir, "compose.yml");
      await writeFile(
        compose,
        [
          'version: "3.8"',
          "services:",
          "  api:",
          `    image: ${IMAGE}`,
          '    command: ["httpd", "-f", "-p", "80", "-h", "/"]',
          "    init: true",
          `    networks: [${NETWORK}]`,
          "    deploy:",
          "      replicas: 2",
          "      endpoint_mode: dnsrr",
          "      placement:",
          "        max_replicas_per_node: 1",
          "networks:",
          `  ${NETWORK}:`,
          "    external: true",
          "",
        ].join("\n"),
      );
      await swarm.manager.dockerOk("stack", "deploy", "--resolve-image", "never", "-c", compose, "st");
      const api = await timed("stack deploy", () => swarm.waitForRunning("st_api", NETWORK, 2));
      expect(sorted(api.map((t) => t.node))).to.deep.equal(["vm1", "vm2"]);
      for (const task of api) expect(node(task.node).vm.secondaries, task.taskName).to.include(task.address);
      const from = tasks.find((t) => t.node === "vm1")!;
      await expectResolves(
        node("vm1"),
        from.containerId,
        "tasks.st_api",
        api.map((t) => t.address),
      );
      for (const task of api) {
        const answer = await execIn(
          node("vm1"),
          from.containerId,
          "sh",
          "-c",
          `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${task.address} 80`,
        );
        expect(answer.stdout, `web → ${task.taskName}`).to.match(/^HTTP\/1\.[01] /);
      }
      await expectHeldMatchesRunning("with the stack");
      await swarm.manager.dockerOk("stack", "rm", "st");
      await pollUntil(
        "the stack's tasks to be gone",
        async () => (await swarm.serviceContainers("st_api", NETWORK)).length === 0,
        {
          timeoutMs: 60_000,
          intervalMs: 250,
        },
      );
      await expectHeldMatchesRunning("after docker stack rm");
    });

    it("draining vm2 moves its tasks to vm1, which then holds only their addresses, and vm2 none", async () => {
      await swarm.manager.dockerOk("node", "update", "--availability", "drain", "vm2");
      tasks = await timed("drain vm2", () =>
        pollUntil(
          "every task of web on vm1",
          async () => {
            const running = (await swarm.serviceContainers("web", NETWORK)).filter((c) => c.address !== "");
            return running.length === 4 && running.every((c) => c.node === "vm1") && running;
          },
          { timeoutMs: 90_000, intervalMs: 250 },
        ),
      );
      expect(sorted(tasks.map((t) => t.address))).to.deep.equal(sorted(node("vm1").vm.secondaries));
      await expectHeldMatchesRunning("after draining vm2");
      expect(await heldOn(node("vm2"))).to.deep.equal([]);
      await swarm.manager.dockerOk("node", "update", "--availability", "active", "vm2");
    });

    it("each VM's plugin reconciled with its own dockerd all along, without an error", async () => {
      for (const on of swarm.nodes) {
        const reconciliation = (await on.plugin.status()).reconciliation;
        expect(reconciliation, on.name).to.deep.include({ on: true });
        expect(reconciliation?.lastError, on.name).to.equal(undefined);
      }
    });

    it("once the service is gone, no address is held and each VM's host networking is back to its snapshot", async () => {
      await removeService("web");
      await expectHeldMatchesRunning("after docker service rm");
      await expectNothingHeld();
      for (const on of swarm.nodes) await expectPristine(on.name);
    });

    it("a node without the config-only network: the task fails with a clear error, and nothing is left", async () => {
      const worker = node("vm2");
      await worker.dockerOk("network", "rm", CONFIG);
      await createService(
        swarm,
        "nocfg",
        "--constraint",
        "node.hostname==vm2",
        "--endpoint-mode",
        "dnsrr",
        "--network",
        NETWORK,
        ...SERVER,
      );
      expect(await firstTaskError("nocfg")).to.equal(`configuration network "${CONFIG}" does not exist`);
      await removeService("nocfg");
      await createConfigOnly(worker, CONFIG);
      await expectNothingHeld();
      await expectPristine("vm2");
    });

    it("bridge mode on a swarm network: the task fails with the plugin's error about transparent mode, and nothing is left", async () => {
      for (const on of swarm.nodes) {
        await createConfigOnly(on, "azure-cfg-bridge", ["-o", "mode=bridge"]);
      }
      await createSwarmNetwork(swarm, "azure-br", "azure-cfg-bridge");
      await createService(swarm, "bridged", "--endpoint-mode", "dnsrr", "--network", "azure-br", ...SERVER);
      const error = await firstTaskError("bridged");
      console.log(`      the task's error: ${error}`);
      expect(error).to.match(/^NetworkDriver\.CreateNetwork: .*swarm networks need transparent mode/);
      await removeService("bridged");
      await swarm.manager.dockerOk("network", "rm", "azure-br");
      await expectNothingHeld();
      for (const on of swarm.nodes) {
        expect((await on.plugin.status()).networks, `${on.name}'s plugin networks`).to.deep.equal([]);
        await expectPristine(on.name);
      }
    });

    it("a config-only network naming the plugin without its tag: the task fails with Docker's error", async () => {
      const manager = swarm.manager;
      await createConfigOnly(manager, "azure-cfg-bare", [], "azure");
      await createSwarmNetwork(swarm, "azure-bare", "azure-cfg-bare");
      await createService(
        swarm,
        "bare",
        "--constraint",
        "node.hostname==vm1",
        "--endpoint-mode",
        "dnsrr",
        "--network",
        "azure-bare",
        ...SERVER,
      );
      // A managed plugin's name is azure:latest; Docker looks for a legacy plugin called azure and finds none.
      expect(await firstTaskError("bare")).to.equal('invalid ipam driver: "azure"');
      await removeService("bare");
      await manager.dockerOk("network", "rm", "azure-bare", "azure-cfg-bare");
      await expectNothingHeld();
      await expectPristine("vm1");
    });

    it("a swarm network without --config-from (with or without IPAM options): swarm keeps no IPAM for it, and the task fails with the plugin's error", async () => {
      const manager = swarm.manager;
      const errors: string[] = [];
      // As the issue has it, and with what a user would try next: the standalone network's IPAM options.
      for (const [name, ipam] of [
        ["azure-noconfig", []],
        ["azure-noconfig-ipam", ["--ipam-driver", MANAGED_PLUGIN, "--subnet", "10.1.0.0/24"]],
      ] as const) {
        await manager.dockerOk("network", "create", "-d", MANAGED_PLUGIN, "--scope", "swarm", ...ipam, name);
        const [network] = JSON.parse(await manager.dockerOk("network", "inspect", name)) as {
          IPAM: { Driver: string; Config: unknown[] };
        }[];
        // Swarm keeps no IPAM for a network whose driver is node-local: each node uses Docker's default.
        expect(network!.IPAM, name).to.deep.include({ Driver: "", Config: [] });
        await createService(swarm, name, "--endpoint-mode", "dnsrr", "--network", name, ...SERVER);
        errors.push(await firstTaskError(name));
        await removeService(name);
        await manager.dockerOk("network", "rm", name);
      }
      await expectNothingHeld();
      for (const on of swarm.nodes) await expectPristine(on.name);
      for (const error of errors) console.log(`      the task's error: ${error}`);
      for (const error of errors) {
        // The plugin sees Docker's default pool. Its hint must lead to what works for a swarm network (a
        // --config-only network with the IPAM options on every node, named by --config-from): swarm
        // drops --ipam-driver from a swarm network, so "create it with --ipam-driver azure" goes round
        // in a circle.
        expect(error).to.match(/^NetworkDriver\.CreateNetwork: .*not from the azure IPAM driver/);
        expect(error).to.match(/--config-from/);
      }
    });
  });
});

/** A documented command's result, asserted to have succeeded. */
function succeeded(result: RunResult): RunResult {
  expect(result.code, `${result.stdout}\n${result.stderr}`).to.equal(0);
  return result;
}
