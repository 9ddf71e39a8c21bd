/**
 * The packaging issue, end to end: the managed plugin exactly as a Docker user gets it, with the
 * README's commands run verbatim (test/helpers/readme.ts) on machines the test arranges. A build
 * machine's dockerd builds it offline with packaging/build-plugin.sh (from the stand-in base image),
 * pushes it to 127.0.0.1:5000, and makes the release with the README's own line for
 * registry.example.com (an HTTPS registry in vm1 that the machines' /etc/hosts name); a fresh
 * live-restore dockerd on the VM installs it with `docker plugin install --alias azure` and runs the
 * core scenarios with `-d azure:latest --ipam-driver azure:latest`; then disable/enable, `docker plugin
 * set`, `docker plugin upgrade` and a dockerd restart keep every allocation and reconciliation, and
 * the README's uninstall lines remove it. The first two suites check config.json and the host-service
 * files.
 */
import { expect } from "chai";
import { existsSync, lstatSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { fetchStatus } from "../../plugin/cli/plugin-client.js";
import { OPTIONS } from "../../plugin/config.js";
import { startAzureEndpoints } from "../helpers/azure-vm.js";
import { startDockerd, type Dockerd, type MachineMount } from "../helpers/dockerd.js";
import { startLocalRegistry } from "../helpers/local-registry.js";
import { rawPost } from "../helpers/plugin-under-test.js";
import {
  machineCommand,
  machineOf,
  readmeCommand,
  startImageMachine,
  type ImageMachine,
} from "../helpers/readme.js";
import { pollUntil, run, type RunResult } from "../helpers/run.js";
import { createTestCa } from "../helpers/test-ca.js";
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
/** The README's registry; the machines find it on 127.0.0.1:443 of vm1 through their /etc/hosts. */
const EXAMPLE_REGISTRY = "registry.example.com";

type PluginConfigFile = {
  entrypoint: string[];
  interface: { types: string[]; socket: string };
  network: { type: string };
  linux: { capabilities: string[] };
  mounts: {
    name: string;
    source: string;
    destination: string;
    type: string;
    options: string[];
    settable?: string[];
  }[];
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

  it("keeps the state directory, and only it, on a host mount, and the Docker API socket mounted for reconciliation", function () {
    const config = pluginConfig();
    const mounts = new Map(config.mounts.map((m) => [m.name, m]));
    const stateDir = config.env.find((e) => e.name === "AZURE_VNET_STATE_DIR")!.value;
    const state = mounts.get("state")!;
    // Only the plugin's own folder: a mount of /var/lib would put Docker's data and every other
    // service's in the plugin's reach.
    expect(state).to.deep.include({ source: "/var/lib/azure-vnet", destination: stateDir, type: "bind" });
    expect(state.settable).to.deep.equal(["source"]);
    // The socket's folder, not the socket file: a restarted dockerd (live-restore keeps the plugin
    // running) replaces the file, and a bind mount of the file would keep the old one. Read-only,
    // non-recursive: connecting needs neither write access nor the folder's submounts.
    const socket = config.env.find((e) => e.name === "AZURE_VNET_DOCKER_SOCKET")!.value;
    expect(mounts.get("docker-socket")).to.deep.include({
      source: "/var/run",
      destination: dirname(socket),
      type: "bind",
      settable: ["source"],
    });
    expect(mounts.get("docker-socket")!.options).to.deep.equal(["bind", "ro"]);
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
      expect(readdirSync(join(app, "dist")).sort()).to.deep.equal(["driver", "ipam-driver", "lib", "plugin"]);
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
        /^ExecStart=\/\S*node --max-semi-space-size=2 --lite-mode \/opt\/azure-vnet\/dist\/plugin\/main\.js$/m,
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

describe("e2e: the host service, installed and removed with the README's commands on a machine image", function () {
  this.timeout(300_000);
  this.bail(true);
  let dir: string | undefined;
  let image: ImageMachine | undefined;
  const hostHad = new Map<string, boolean>();
  const UNIT = "/etc/systemd/system/azure-vnet.service";
  const WANTS = ["docker.service.wants", "multi-user.target.wants"].map(
    (w) => `/etc/systemd/system/${w}/azure-vnet.service`,
  );
  const readmeOnImage = async (command: string, cwd = "/root"): Promise<RunResult> => {
    const result = await readmeCommand(command, image!.machine(cwd), 280_000);
    expect(result.code, `${command}\n${result.stdout}\n${result.stderr}`).to.equal(0);
    return result;
  };

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error("the e2e suite needs root (mount and pid namespaces)");
    for (const path of ["/opt/azure-vnet", UNIT, ...WANTS]) hostHad.set(path, present(path));
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-image-"));
    image = await startImageMachine(dir);
  });

  after(async () => {
    await image?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("packaging/install-host-service.sh installs, and enables the unit for docker.service and multi-user", async () => {
    const install = await readmeOnImage("packaging/install-host-service.sh", REPO);
    // A chroot has no running systemd: systemctl changed the unit files and skipped the rest.
    expect(install.stderr).to.contain("Running in chroot, ignoring");
    expect(present(image!.path("/opt/azure-vnet/dist/plugin/main.js"))).to.equal(true);
    expect(readFileSync(image!.path(UNIT), "utf8")).to.match(
      /^ExecStart=\/\S*node --max-semi-space-size=2 --lite-mode \/opt\/azure-vnet\/dist\/plugin\/main\.js$/m,
    );
    expect(present(image!.path("/etc/default/azure-vnet"))).to.equal(true);
    for (const link of WANTS) expect(present(image!.path(link)), link).to.equal(true);
    for (const path of ["/opt/azure-vnet", UNIT, ...WANTS])
      expect(present(path), `${path} of the machine itself`).to.equal(hostHad.get(path));
  });

  it("the README's uninstall lines disable the unit and remove every file", async () => {
    await readmeOnImage("systemctl stop azure-vnet && systemctl disable azure-vnet");
    for (const link of WANTS) expect(present(image!.path(link)), link).to.equal(false);
    await readmeOnImage(
      "rm -rf /opt/azure-vnet /etc/systemd/system/azure-vnet.service /etc/default/azure-vnet",
    );
    await readmeOnImage("systemctl daemon-reload");
    for (const path of ["/opt/azure-vnet", UNIT, "/etc/default/azure-vnet"])
      expect(present(image!.path(path)), path).to.equal(false);
  });
});

describe("e2e: the managed plugin, built offline, pushed to a local registry and installed from it", function () {
  this.timeout(300_000);
  // Each step builds on the one before; after a failure the rest would only wait on a broken plugin.
  this.bail(true);
  let dir: string | undefined;
  let vnet: Vnet | undefined;
  let dockerd: Dockerd;
  let stateRoot: string;
  let pluginId = "";
  let c1Address = "";
  const timings: string[] = [];

  const dockerOk = async (...args: string[]) => (await dockerd.dockerOk(args)).stdout.trim();
  const docker = (...args: string[]) => dockerd.docker(args);
  /** A README command, verbatim, on the VM: dockerd's machine, in vm1's network namespace. */
  const readmeOnVm = async (command: string): Promise<RunResult> => {
    const result = await readmeCommand(command, machineOf(dockerd));
    expect(result.code, `${command}\n${result.stdout}\n${result.stderr}\n${dockerd.logTail(15)}`).to.equal(0);
    return result;
  };
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
      // The README's two registries: 127.0.0.1:5000 for the offline build, and registry.example.com, an
      // HTTPS registry that the machines find through /etc/hosts.
      await startLocalRegistry(vnet, "vm1", join(dir, "registry"));
      await mkdir(join(dir, "ca"));
      await createTestCa(join(dir, "ca"), { ips: ["127.0.0.1"], dnsNames: [EXAMPLE_REGISTRY] });
      await startLocalRegistry(vnet, "vm1", join(dir, "registry-example"), 443, {
        tls: { certFile: join(dir, "ca", "server.pem"), keyFile: join(dir, "ca", "server.key") },
      });
      const hosts = join(dir, "hosts");
      await writeFile(hosts, `${await readFile("/etc/hosts", "utf8")}\n127.0.0.1 ${EXAMPLE_REGISTRY}\n`);
      const etcHosts: MachineMount = { type: "bind", source: hosts, target: "/etc/hosts" };
      // The build machine stands for a CI machine: no bridge or iptables of its own, so that it leaves
      // vm1's network exactly as the dockerd under test will find it. Its commands run in the host's
      // network namespace, where npm may still reach its registry, as on a build machine.
      const builder = await startDockerd(vnet, "vm1", {
        extraArgs: ["--bridge=none", "--iptables=false"],
        machine: { mounts: [etcHosts] },
      });
      try {
        const buildMachine = { mountNsPid: builder.anchorPid, cwd: REPO };
        const checked = (command: string, result: RunResult): RunResult => {
          if (result.code !== 0) {
            const tail = `${result.stdout}\n${result.stderr}`.trimEnd().split("\n").slice(-40).join("\n");
            throw new Error(
              `${command} exited ${result.code}:\n${tail}\n--- dockerd ---\n${builder.logTail(20)}`,
            );
          }
          return result;
        };
        const readmeOnBuilder = async (command: string) =>
          checked(command, await readmeCommand(command, buildMachine, 600_000));
        await timed("offline base image", () => readmeOnBuilder("packaging/offline-base-image.sh"));
        const built = await timed("build, rootfs, plugin create, push", () =>
          readmeOnBuilder(
            "packaging/build-plugin.sh --name 127.0.0.1:5000/azure-vnet:latest --push -- --network none",
          ),
        );
        const size = /^== rootfs (\S+) \((\d+) bytes\)$/m.exec(built.stdout);
        const seconds = /^== built in (\d+) s$/m.exec(built.stdout);
        if (size) timings.push(`rootfs ${size[1]} (${size[2]} bytes)`);
        if (seconds) timings.push(`docker build alone: ${seconds[1]} s`);
        const pushed = await run("du", ["-sh", "--apparent-size", join(dir, "registry", "data")]);
        timings.push(`in the registry: ${pushed.stdout.split("\t")[0]}`);
        // The release build, exactly as the README prints it (it once recursed until bash segfaulted
        // whenever DOCKER was unset, which every user's shell has).
        await timed("release build and push", () =>
          readmeOnBuilder("packaging/build-plugin.sh --name registry.example.com/azure-vnet:0.1.0 --push"),
        );
        // The next release, for the README's upgrade (a setup step, not a README command).
        const next = `packaging/build-plugin.sh --name ${EXAMPLE_REGISTRY}/azure-vnet:0.2.0 --push`;
        checked(next, await machineCommand(next, buildMachine, 600_000));
      } finally {
        await builder.stop();
      }
      // The VM: the host's /var/lib is a test folder (the plugin's state mount and `rm -rf
      // /var/lib/azure-vnet` meet it there), dockerd listens on /var/run/docker.sock and keeps
      // containers and plugins running across its restarts.
      stateRoot = join(dir, "host-var-lib");
      await mkdir(stateRoot);
      dockerd = await startDockerd(vnet, "vm1", {
        extraArgs: ["--live-restore"],
        machine: { mounts: [etcHosts, { type: "bind", source: stateRoot, target: "/var/lib" }] },
      });
      await dockerd.importBusybox("busybox:latest");
      await dockerd.importBusybox();
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
    await timed("docker plugin install", () =>
      readmeOnVm(
        "mkdir -p /var/lib/azure-vnet && docker plugin install --grant-all-permissions --alias azure registry.example.com/azure-vnet:0.1.0",
      ),
    );
    const [inspect] = JSON.parse(await dockerOk("plugin", "inspect", PLUGIN)) as PluginInspect[];
    expect(inspect!.Enabled).to.equal(true);
    expect(inspect!.PluginReference).to.equal(`${EXAMPLE_REGISTRY}/azure-vnet:0.1.0`);
    expect(inspect!.Config.Interface.Types).to.deep.equal([
      "docker.networkdriver/1.0",
      "docker.ipamdriver/1.0",
    ]);
    pluginId = inspect!.Id;
    // The plugin's socket is where dockerd bind-mounts the plugin's /run/docker/plugins from.
    const pool = (await pollUntil("the plugin's /status", status, { timeoutMs: 15_000 })).pool[0]!;
    expect(pool.free).to.deep.equal(SECONDARIES);
  });

  it("runs node with CAP_NET_ADMIN alone: the entrypoint's CAP_SYS_ADMIN is dropped before node starts", async () => {
    const status = readFileSync(`/proc/${await pluginProcess(vnet!, "vm1")}/status`, "utf8");
    const capabilities = (field: string) =>
      BigInt(`0x${new RegExp(`^${field}:\\s*([0-9a-f]+)$`, "m").exec(status)![1]}`);
    const NET_ADMIN = 1n << 12n;
    for (const field of ["CapEff", "CapPrm", "CapBnd"])
      expect(capabilities(field), field).to.equal(NET_ADMIN);
    for (const field of ["CapInh", "CapAmb"]) expect(capabilities(field), field).to.equal(0n);
    expect(/^NoNewPrivs:\s*1$/m.test(status), "no_new_privs").to.equal(true);
  });

  it("sees only its own folder of the host's /var/lib", async () => {
    const root = `/proc/${await pluginProcess(vnet!, "vm1")}/root`;
    expect(readdirSync(`${root}/var/lib`)).to.deep.equal(["azure-vnet"]);
    expect(readdirSync(`${root}/var/lib/azure-vnet`)).to.include("state.json");
  });

  it("the README's first network and container: a secondary IP of the NIC", async () => {
    await readmeOnVm("docker network create -d azure:latest --ipam-driver azure:latest azure-vnet");
    const run = await readmeOnVm("docker run --rm --network azure-vnet busybox ip addr");
    const address = /inet (10\.1\.0\.\d+)\/24 /.exec(run.stdout)?.[1];
    expect(SECONDARIES, run.stdout).to.include(address);
    await dockerOk("network", "rm", "azure-vnet");
  });

  it("the README's status line answers on the plugin's socket", async () => {
    const curl = await readmeOnVm(
      "curl --unix-socket /run/docker/plugins/$(docker plugin inspect -f '{{.Id}}' azure:latest)/azure.sock http://plugin/status",
    );
    const answer = JSON.parse(curl.stdout) as { pool: { free: string[] }[] };
    expect(answer.pool[0]!.free).to.deep.equal(SECONDARIES);
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

  it("d2. a host service on the same state is refused, though the managed plugin has a PID namespace of its own", async () => {
    // Both at once on one state would hand out one address twice. The managed plugin's node is pid 1
    // of its own PID namespace: a pid-based lock took it for the host's init, and so for stale.
    const hostService = await vnet!.exec("vm1", [
      process.execPath,
      join(REPO, "dist", "plugin", "main.js"),
      "--socket",
      join(dir!, "host-service.sock"),
      "--state-dir",
      join(stateRoot, "azure-vnet"),
    ]);
    expect(hostService.code, hostService.stderr).to.not.equal(0);
    expect(hostService.stderr).to.equal(
      `azure-vnet: another azure-vnet process (pid 1 in its PID namespace, serving /run/docker/plugins/azure.sock) owns the state in ${join(stateRoot, "azure-vnet")} — stop it first, or give this instance its own --state-dir\n`,
    );
    expect(existsSync(join(dir!, "host-service.sock"))).to.equal(false);
    expect((await status()).pool[0]!.inUse, "the managed plugin serves on").to.deep.equal([c1Address]);
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

    // The README's three lines.
    await readmeOnVm("docker plugin disable -f azure:latest");
    await readmeOnVm("docker plugin set azure:latest AZURE_VNET_LOG_LEVEL=debug");
    const mark2 = logSize();
    await readmeOnVm("docker plugin enable azure:latest");
    expect(await pluginEnvironment(vnet!, "vm1")).to.include("AZURE_VNET_LOG_LEVEL=debug");
    await dockerOk("run", "--rm", "--network", "vnet", "busybox:local", "true");
    expect(pluginLogLines(mark2).some((line) => line.includes('\\"msg\\":\\"request\\"'))).to.equal(true);
    expect((await status()).pool[0]!.inUse).to.deep.equal([c1Address]);
  });

  it("g. docker plugin upgrade keeps the allocations and the settings", async () => {
    await readmeOnVm("docker plugin disable -f azure:latest");
    await readmeOnVm(
      "docker plugin upgrade --grant-all-permissions --skip-remote-check azure:latest registry.example.com/azure-vnet:0.2.0",
    );
    await readmeOnVm("docker plugin enable azure:latest");
    const [inspect] = JSON.parse(await dockerOk("plugin", "inspect", PLUGIN)) as PluginInspect[];
    expect(inspect!.PluginReference).to.equal(`${EXAMPLE_REGISTRY}/azure-vnet:0.2.0`);
    expect(await pluginEnvironment(vnet!, "vm1")).to.include("AZURE_VNET_LOG_LEVEL=debug");
    expect((await status()).pool[0]!.inUse).to.deep.equal([c1Address]);
    expect(await vm2ReachesC1()).to.equal(true);
  });

  it("h. across a live-restore restart of dockerd, reconciliation still reaches the new Docker socket", async () => {
    await dockerOk("plugin", "disable", "-f", PLUGIN);
    await dockerOk(
      "plugin",
      "set",
      PLUGIN,
      "AZURE_VNET_RECONCILE_INTERVAL=1",
      "AZURE_VNET_RECONCILE_GRACE=1",
    );
    await dockerOk("plugin", "enable", PLUGIN);
    const pluginPid = await pluginProcess(vnet!, "vm1");
    await pollUntil("the plugin's /status", status, { timeoutMs: 15_000 });
    const previous = dockerd;
    await previous.stop({ keepDir: true, keepContainers: true });
    // While dockerd is down, an address is reserved that Docker will never know about: what a dockerd
    // that forgot to release an address leaves behind. Only reconciliation, which asks Docker through
    // the docker-socket mount, can give it back.
    const state = JSON.parse(await readFile(join(stateRoot, "azure-vnet", "state.json"), "utf8")) as {
      ipam: { pools: Record<string, unknown> };
    };
    const [poolId] = Object.keys(state.ipam.pools);
    const orphan = (await status()).pool[0]!.free[0]!;
    const reserved = await rawPost(
      socketPath(),
      "/IpamDriver.RequestAddress",
      JSON.stringify({ PoolID: poolId, Address: orphan, Options: {} }),
    );
    expect(reserved.status, JSON.stringify(reserved.json)).to.equal(200);
    dockerd = await startDockerd(vnet!, "vm1", { restartOf: previous, extraArgs: ["--live-restore"] });
    expect(await pluginProcess(vnet!, "vm1"), "live-restore kept the plugin running").to.equal(pluginPid);
    await pollUntil(
      `reconciliation to release ${orphan} after dockerd's restart`,
      async () => (await status()).pool[0]!.free.includes(orphan),
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect((await status()).pool[0]!.inUse, "c1, which Docker has, keeps its address").to.deep.equal([
      c1Address,
    ]);
    expect(await vm2ReachesC1()).to.equal(true);
  });

  it("i. bridge mode works too: the rootfs's own ebtables programs the host", async () => {
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

  it("i2. withheld the Docker socket as docs/security.md says: the plugin works, reconciliation is off", async () => {
    await readmeOnVm(
      "docker plugin disable -f azure:latest && docker plugin set azure:latest docker-socket.source=/var/lib/azure-vnet AZURE_VNET_DOCKER_SOCKET= && docker plugin enable azure:latest",
    );
    const root = `/proc/${await pluginProcess(vnet!, "vm1")}/root`;
    expect(readdirSync(`${root}/var/run`), "no Docker socket in the plugin's reach").to.not.include(
      "docker.sock",
    );
    const withheld = await pollUntil("the plugin's /status", status, { timeoutMs: 15_000 });
    expect(withheld.reconciliation).to.deep.equal({ on: false });
    await readmeOnVm("docker network create -d azure:latest --ipam-driver azure:latest azure-vnet");
    const run = await readmeOnVm("docker run --rm --network azure-vnet busybox ip addr");
    expect(SECONDARIES, run.stdout).to.include(/inet (10\.1\.0\.\d+)\/24 /.exec(run.stdout)?.[1]);
    await dockerOk("network", "rm", "azure-vnet");
  });

  it("j. uninstalls as the README says, and forgets the allocations", async () => {
    expect(existsSync(join(stateRoot, "azure-vnet", "state.json"))).to.equal(true);
    await readmeOnVm("docker plugin disable azure:latest && docker plugin rm azure:latest");
    expect(await dockerOk("plugin", "ls", "--format", "{{.Name}}")).to.equal("");
    await readmeOnVm("rm -rf /var/lib/azure-vnet");
    expect(existsSync(join(stateRoot, "azure-vnet"))).to.equal(false);
  });
});

/** Whether `path` exists itself (a symlink counts, wherever it points). */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

type PluginInspect = {
  Id: string;
  Enabled: boolean;
  PluginReference: string;
  Config: { Interface: { Types: string[] } };
};

type PackageJson = { dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** The environment of the plugin's process, found among the processes of `vm`'s network namespace. */
async function pluginEnvironment(vnet: Vnet, vm: string): Promise<string[]> {
  return readFileSync(`/proc/${await pluginProcess(vnet, vm)}/environ`, "utf8").split("\0");
}

/** The pid of the plugin's node process, found among the processes of `vm`'s network namespace. */
async function pluginProcess(vnet: Vnet, vm: string): Promise<number> {
  return pollUntil(
    "the plugin's process",
    async () => {
      const pids = (await run("ip", ["netns", "pids", vnet.nsName(vm)])).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
          if (argv.includes("/opt/azure-vnet/dist/plugin/main.js")) return Number(pid);
        } catch {
          // That process exited while we looked.
        }
      }
      return undefined;
    },
    { timeoutMs: 15_000 },
  );
}
