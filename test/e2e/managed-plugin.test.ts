/**
 * The packaging issue, end to end: the managed plugin exactly as a Docker user gets it. One private
 * dockerd builds it offline with packaging/build-plugin.sh (from the stand-in base image) and pushes it
 * to a local registry; a fresh dockerd installs it with `docker plugin install --alias azure` and runs
 * the core scenarios with `-d azure:latest --ipam-driver azure:latest`; then disable/enable, `docker
 * plugin set` and `docker plugin upgrade` keep every allocation. The first two suites check
 * config.json and the host-service files and need no root.
 */
import { expect } from "chai";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fetchStatus } from "../../plugin/cli/plugin-client.js";
import { OPTIONS } from "../../plugin/config.js";
import { startAzureEndpoints } from "../helpers/azure-vm.js";
import { DOCKER_CLI, startDockerd, type Dockerd } from "../helpers/dockerd.js";
import { startLocalRegistry, type LocalRegistry } from "../helpers/local-registry.js";
import { pollUntil, run, type RunResult } from "../helpers/run.js";
import { createVnet, INET_HOST_IP, type Vnet } from "../helpers/vnet.js";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const SECONDARIES = ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"];
const VM1 = {
  name: "vm1",
  mac: "00:0d:3a:00:00:01",
  primary: "10.1.0.4",
  secondaries: SECONDARIES,
  publicIp: "198.51.100.4",
};
const VM2 = { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.10" };
const HTTP_PORT = 8080;
const PLUGIN = "azure:latest";

type PluginConfigFile = {
  entrypoint: string[];
  interface: { types: string[]; socket: string };
  network: { type: string };
  linux: { capabilities: string[] };
  mounts: { name: string; source: string; destination: string; settable?: string[] }[];
  env: { name: string; value: string; settable?: string[] }[];
};

const pluginConfig = () => JSON.parse(readFileSync(join(REPO, "config.json"), "utf8")) as PluginConfigFile;

describe("packaging: config.json of the managed plugin", function () {
  it("serves both interfaces on azure.sock, on the host network, with only NET_ADMIN and SYS_ADMIN", function () {
    const config = pluginConfig();
    expect(config.interface).to.deep.equal({
      types: ["docker.networkdriver/1.0", "docker.ipamdriver/1.0"],
      socket: "azure.sock",
    });
    expect(config.network.type).to.equal("host");
    expect([...config.linux.capabilities].sort()).to.deep.equal(["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
  });

  it("has an environment entry for every plugin option, with the plugin's default, settable but the socket", function () {
    const config = pluginConfig();
    const env = new Map(config.env.map((entry) => [entry.name, entry]));
    for (const [key, spec] of Object.entries(OPTIONS)) {
      const entry = env.get(spec.env);
      expect(entry, `config.json env has no ${spec.env} (${key})`).to.not.equal(undefined);
      expect(entry!.value, spec.env).to.equal(spec.default ?? "");
      expect(entry!.settable ?? [], spec.env).to.deep.equal(
        spec.env === "AZURE_VNET_SOCKET" ? [] : ["value"],
      );
    }
    expect(env.size, "no entries for options the plugin does not have").to.equal(Object.keys(OPTIONS).length);
    expect(env.get("AZURE_VNET_SOCKET")!.value).to.equal(`/run/docker/plugins/${config.interface.socket}`);
  });

  it("keeps the state directory on a host mount, and the Docker API socket mounted for reconciliation", function () {
    const config = pluginConfig();
    const mounts = new Map(config.mounts.map((m) => [m.name, m]));
    const stateDir = config.env.find((e) => e.name === "AZURE_VNET_STATE_DIR")!.value;
    const state = mounts.get("state")!;
    expect(stateDir.startsWith(`${state.destination}/`), "the state dir lies on the host mount").to.equal(
      true,
    );
    expect(state.settable).to.deep.equal(["source"]);
    const socket = config.env.find((e) => e.name === "AZURE_VNET_DOCKER_SOCKET")!.value;
    expect(mounts.get("docker-socket")).to.deep.include({ destination: socket, settable: ["source"] });
  });
});

describe("packaging: the host service", function () {
  this.timeout(180_000);

  it("azure-vnet.default lists every plugin option with its default, commented out", function () {
    const settings = readFileSync(join(REPO, "packaging", "azure-vnet.default"), "utf8");
    for (const spec of Object.values(OPTIONS)) {
      expect(settings).to.contain(`\n#${spec.env}=${spec.default ?? ""}\n`);
    }
  });

  it("the systemd unit passes systemd-analyze verify", async function () {
    expect(
      existsSync("/usr/bin/systemd-analyze"),
      "systemd-analyze (Debian package systemd) is installed",
    ).to.equal(true);
    const verify = await run("/usr/bin/systemd-analyze", [
      "verify",
      join(REPO, "packaging", "azure-vnet.service"),
    ]);
    expect(verify.code, verify.stderr).to.equal(0);
  });

  it("install-host-service.sh installs the compiled plugin with only its production dependencies", async () => {
    const destdir = await mkdtemp(join(tmpdir(), "azure-vnet-host-service-"));
    try {
      const install = await run(
        "bash",
        [join(REPO, "packaging", "install-host-service.sh"), "--destdir", destdir],
        {
          timeoutMs: 170_000,
        },
      );
      expect(install.code, install.stderr).to.equal(0);
      const app = join(destdir, "opt", "azure-vnet");
      expect(readdirSync(join(app, "dist")).sort()).to.deep.equal(["driver", "ipam-driver", "plugin"]);
      const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as PackageJson;
      // The build and test tools; some @types packages are dependencies of production packages too.
      for (const dev of ["typescript", "mocha", "eslint", "prettier"]) {
        expect(pkg.devDependencies, dev).to.have.property(dev);
        expect(existsSync(join(app, "node_modules", dev)), `dev dependency ${dev}`).to.equal(false);
      }
      for (const dependency of Object.keys(pkg.dependencies)) {
        expect(existsSync(join(app, "node_modules", dependency)), dependency).to.equal(true);
      }
      const unit = readFileSync(join(destdir, "etc", "systemd", "system", "azure-vnet.service"), "utf8");
      // The node the script found on PATH, by absolute path: systemd does not search PATH the same way.
      expect(unit).to.match(
        /^ExecStart=\/\S*node --max-semi-space-size=2 \/opt\/azure-vnet\/dist\/plugin\/main\.js$/m,
      );
      // A node that test/node24.sh put in the checkout is copied, so the service outlives the checkout.
      const nodeOnPath = (await run("bash", ["-c", 'readlink -f "$(command -v node)"'])).stdout.trim();
      if (nodeOnPath.startsWith(join(REPO, ".node") + "/")) {
        expect(unit).to.match(/^ExecStart=\/opt\/azure-vnet\/bin\/node /m);
        expect(statSync(join(app, "bin", "node")).size).to.equal(statSync(nodeOnPath).size);
      } else {
        expect(unit).to.contain(`ExecStart=${(await run("bash", ["-c", "command -v node"])).stdout.trim()} `);
      }
      expect(existsSync(join(destdir, "etc", "default", "azure-vnet"))).to.equal(true);
    } finally {
      await rm(destdir, { recursive: true, force: true });
    }
  });
});

describe("e2e: the managed plugin, built offline, pushed to a local registry and installed from it", function () {
  this.timeout(300_000);
  // Each step builds on the one before; after a failure the rest would only wait on a broken plugin.
  this.bail(true);
  let dir: string | undefined;
  let vnet: Vnet | undefined;
  let registry: LocalRegistry;
  let dockerd: Dockerd;
  let reference: string;
  let stateRoot: string;
  let pluginId = "";
  let c1Address = "";
  const timings: string[] = [];

  const dockerOk = async (...args: string[]) => (await dockerd.dockerOk(args)).stdout.trim();
  const docker = (...args: string[]) => dockerd.docker(args);
  // The test's own state folder and dockerd socket, instead of the host's /var/lib and /var/run/docker.sock.
  const mountSettings = () => [`state.source=${stateRoot}`, `docker-socket.source=${dockerd.socketPath}`];
  const socketPath = () => join(dockerd.pluginsDir, pluginId, "azure.sock");
  const status = () => fetchStatus(socketPath());
  const ipOf = (container: string) =>
    dockerOk("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container);
  const timed = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await step();
    timings.push(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  };
  /** The plugin's own log lines, which dockerd writes into its log tagged with the plugin's id. */
  const pluginLogLines = (fromByte: number) =>
    readFileSync(dockerd.logFile)
      .subarray(fromByte)
      .toString("utf8")
      .split("\n")
      .filter((line) => line.includes(`plugin=${pluginId}`));
  const logSize = () => readFileSync(dockerd.logFile).length;
  const vm2ReachesC1 = async () => {
    const probe = await vnet!.tcpProbe("vm2", c1Address, HTTP_PORT, { payload: "GET / HTTP/1.0\r\n\r\n" });
    return probe.connected && /^HTTP\/1\.[01] /.test(probe.data);
  };

  const teardown = async () => {
    if (timings.length > 0) console.log(`      timings: ${timings.join("; ")}`);
    await vnet?.teardown();
    vnet = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  };

  before(async function () {
    if (process.getuid?.() !== 0) throw new Error("the e2e suite needs root (network namespaces, dockerd)");
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-managed-"));
    try {
      vnet = await createVnet({ vms: [VM1, VM2] });
      await startAzureEndpoints(vnet, "vm1", dir);
      registry = await startLocalRegistry(vnet, "vm1", join(dir, "registry"));
      reference = `${registry.address}/azure-vnet:latest`;
      // The builder stands for a CI machine: no bridge or iptables of its own, so that it leaves vm1's
      // network exactly as the dockerd under test will find it, and builds with no network at all.
      const builder = await startDockerd(vnet, "vm1", { extraArgs: ["--bridge=none", "--iptables=false"] });
      try {
        await timed("offline base image", () => packaging(builder, "offline-base-image.sh", []));
        const built = await timed("build, rootfs, plugin create, push", () =>
          packaging(builder, "build-plugin.sh", ["--name", reference, "--push", "--", "--network", "none"]),
        );
        const size = /^== rootfs (\S+) \((\d+) bytes\)$/m.exec(built.stdout);
        const seconds = /^== built in (\d+) s$/m.exec(built.stdout);
        if (size) timings.push(`rootfs ${size[1]} (${size[2]} bytes)`);
        if (seconds) timings.push(`docker build alone: ${seconds[1]} s`);
        const pushed = await run("du", ["-sh", "--apparent-size", join(dir, "registry", "data")]);
        timings.push(`in the registry: ${pushed.stdout.split("\t")[0]}`);
      } finally {
        await builder.stop();
      }
      dockerd = await startDockerd(vnet, "vm1");
      await dockerd.importBusybox();
      stateRoot = join(dir, "host-var-lib");
      await mkdir(stateRoot);
    } catch (error) {
      await teardown();
      throw error;
    }
  });

  after(async () => {
    await teardown();
  });

  it("installs from the registry with --alias azure on a dockerd that has never seen it", async () => {
    expect(await dockerOk("plugin", "ls", "--format", "{{.Name}}")).to.equal("");
    const install = await timed("docker plugin install", () =>
      docker(
        "plugin",
        "install",
        "--grant-all-permissions",
        "--alias",
        "azure",
        reference,
        ...mountSettings(),
      ),
    );
    expect(install.code, `${install.stderr}\n${dockerd.logTail()}`).to.equal(0);
    const [inspect] = JSON.parse(await dockerOk("plugin", "inspect", PLUGIN)) as PluginInspect[];
    expect(inspect!.Enabled).to.equal(true);
    expect(inspect!.PluginReference).to.equal(reference);
    expect(inspect!.Config.Interface.Types).to.deep.equal([
      "docker.networkdriver/1.0",
      "docker.ipamdriver/1.0",
    ]);
    pluginId = inspect!.Id;
    // The plugin's socket is where dockerd bind-mounts the plugin's /run/docker/plugins from.
    const pool = (await pollUntil("the plugin's /status", status, { timeoutMs: 15_000 })).pool[0]!;
    expect(pool.free).to.deep.equal(SECONDARIES);
  });

  it("a. gives a container on -d azure:latest --ipam-driver azure:latest a secondary IP of the NIC", async () => {
    await dockerOk(
      "network",
      "create",
      "-d",
      PLUGIN,
      "--ipam-driver",
      PLUGIN,
      "--subnet",
      "10.1.0.0/24",
      "vnet",
    );
    await dockerOk(
      "run",
      "-d",
      "--name",
      "c1",
      "--network",
      "vnet",
      "busybox:local",
      "httpd",
      "-f",
      "-p",
      String(HTTP_PORT),
      "-h",
      "/",
    );
    c1Address = await ipOf("c1");
    expect(SECONDARIES).to.include(c1Address);
    const addr = await dockerOk("exec", "c1", "ip", "-o", "-4", "addr", "show", "eth0");
    expect(addr).to.contain(`inet ${c1Address}/24 `);
  });

  it("b. the other VM reaches the container at its address", async () => {
    expect(await vm2ReachesC1()).to.equal(true);
  });

  it("c. an internet host sees the container's traffic arrive from the VM's public address", async () => {
    const recorder = await vnet!.startTcpRecorder("inet", INET_HOST_IP, 9092);
    try {
      await dockerOk("exec", "c1", "sh", "-c", `echo hi | nc ${INET_HOST_IP} 9092`);
      const [connection] = await recorder.waitForConnections(1);
      expect(connection!.remoteAddress).to.equal(VM1.publicIp);
    } finally {
      await recorder.close();
    }
  });

  it("d. keeps its state on the host: the running container's address is in the host's state file", async () => {
    const state = await readFile(join(stateRoot, "azure-vnet", "state.json"), "utf8");
    expect(state).to.contain(`"${c1Address}"`);
    expect((await status()).pool[0]!.inUse).to.deep.equal([c1Address]);
  });

  it("e. refuses a plain disable while a network uses it (users pass -f, see the README)", async () => {
    const disable = await docker("plugin", "disable", PLUGIN);
    expect(disable.code).to.not.equal(0);
    expect(disable.stderr).to.contain("in use");
  });

  it("f. disable -f, docker plugin set, enable: the setting reaches the plugin and the allocation survives", async () => {
    await dockerOk("plugin", "disable", "-f", PLUGIN);
    // The data path lives in the kernel, so the running container does not notice the plugin is gone.
    expect(await vm2ReachesC1(), "c1 stays reachable while the plugin is disabled").to.equal(true);
    await dockerOk("plugin", "set", PLUGIN, "AZURE_VNET_LOG_LEVEL=warn");
    const mark = logSize();
    await dockerOk("plugin", "enable", PLUGIN);
    expect(await pluginEnvironment(vnet!, "vm1")).to.include("AZURE_VNET_LOG_LEVEL=warn");
    expect((await status()).pool[0]!.inUse, "c1 keeps its address").to.deep.equal([c1Address]);
    expect(await vm2ReachesC1(), "c1 stays reachable").to.equal(true);
    // Another container gets a different address, and at level warn the plugin logs no request lines.
    const other = await dockerOk(
      "run",
      "--rm",
      "--network",
      "vnet",
      "busybox:local",
      "ip",
      "-o",
      "-4",
      "addr",
      "show",
      "eth0",
    );
    const address = /inet (\S+)\/24/.exec(other)?.[1];
    expect(SECONDARIES).to.include(address);
    expect(address).to.not.equal(c1Address);
    expect(pluginLogLines(mark).filter((line) => line.includes('\\"msg\\":\\"request\\"'))).to.deep.equal([]);

    await dockerOk("plugin", "disable", "-f", PLUGIN);
    await dockerOk("plugin", "set", PLUGIN, "AZURE_VNET_LOG_LEVEL=debug");
    const mark2 = logSize();
    await dockerOk("plugin", "enable", PLUGIN);
    expect(await pluginEnvironment(vnet!, "vm1")).to.include("AZURE_VNET_LOG_LEVEL=debug");
    await dockerOk("run", "--rm", "--network", "vnet", "busybox:local", "true");
    expect(pluginLogLines(mark2).some((line) => line.includes('\\"msg\\":\\"request\\"'))).to.equal(true);
    expect((await status()).pool[0]!.inUse).to.deep.equal([c1Address]);
  });

  it("g. docker plugin upgrade keeps the allocations and the settings", async () => {
    await dockerOk("plugin", "disable", "-f", PLUGIN);
    await dockerOk("plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", PLUGIN, reference);
    // dockerd keeps environment settings across an upgrade but takes mount sources from the new
    // config.json, so a changed mount source is set again (the README says so).
    await dockerOk("plugin", "set", PLUGIN, ...mountSettings());
    await dockerOk("plugin", "enable", PLUGIN);
    expect(await pluginEnvironment(vnet!, "vm1")).to.include("AZURE_VNET_LOG_LEVEL=debug");
    expect((await status()).pool[0]!.inUse).to.deep.equal([c1Address]);
    expect(await vm2ReachesC1()).to.equal(true);
  });

  it("h. bridge mode works too: the rootfs's own ebtables programs the host", async () => {
    await dockerOk("rm", "-f", "c1");
    await dockerOk("network", "rm", "vnet");
    await dockerOk(
      "network",
      "create",
      "-d",
      PLUGIN,
      "--ipam-driver",
      PLUGIN,
      "-o",
      "mode=bridge",
      "--subnet",
      "10.1.0.0/24",
      "br",
    );
    try {
      await dockerOk(
        "run",
        "-d",
        "--name",
        "b1",
        "--network",
        "br",
        "busybox:local",
        "httpd",
        "-f",
        "-p",
        String(HTTP_PORT),
        "-h",
        "/",
      );
      c1Address = await ipOf("b1");
      expect(await vm2ReachesC1()).to.equal(true);
      const ebtables = await vnet!.execOk("vm1", ["ebtables", "--concurrent", "-t", "nat", "-L"]);
      expect(ebtables.stdout).to.match(/AZV-BR-/);
    } finally {
      await docker("rm", "-f", "b1");
      await docker("network", "rm", "br");
    }
    expect((await status()).pool[0]!.free).to.deep.equal(SECONDARIES);
  });
});

type PluginInspect = {
  Id: string;
  Enabled: boolean;
  PluginReference: string;
  Config: { Interface: { Types: string[] } };
};

type PackageJson = { dependencies: Record<string, string>; devDependencies: Record<string, string> };

/**
 * Runs a packaging script against `dockerd` as a user would, from the host: the scripts only talk to
 * the Docker API (and, for the base image, to npm's cache on this machine).
 */
async function packaging(dockerd: Dockerd, script: string, args: string[]): Promise<RunResult> {
  const result = await run("bash", [join(REPO, "packaging", script), ...args], {
    timeoutMs: 600_000,
    env: {
      ...process.env,
      DOCKER: DOCKER_CLI,
      DOCKER_HOST: dockerd.host,
      DOCKER_API_VERSION: "1.41",
      DOCKER_CONFIG: join(dockerd.dir, "cli"),
      DOCKER_CONTEXT: "",
      DOCKER_BUILDKIT: "1",
    },
  });
  if (result.code !== 0) {
    const tail = `${result.stdout}\n${result.stderr}`.trimEnd().split("\n").slice(-40).join("\n");
    throw new Error(
      `packaging/${script} exited ${result.code}:\n${tail}\n--- dockerd ---\n${dockerd.logTail(20)}`,
    );
  }
  return result;
}

/** The environment of the plugin's process, found among the processes of `vm`'s network namespace. */
async function pluginEnvironment(vnet: Vnet, vm: string): Promise<string[]> {
  return pollUntil(
    "the plugin's process",
    async () => {
      const pids = (await run("ip", ["netns", "pids", vnet.nsName(vm)])).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
          if (argv.includes("/opt/azure-vnet/dist/plugin/main.js"))
            return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
        } catch {
          // That process exited while we looked.
        }
      }
      return undefined;
    },
    { timeoutMs: 15_000 },
  );
}
