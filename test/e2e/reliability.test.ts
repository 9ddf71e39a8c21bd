/**
 * The plugin's promises across restarts and crashes, on a real dockerd in the emulated VNet: running
 * containers keep their connectivity through plugin restarts (SIGTERM and kill -9) and dockerd
 * restarts (with and without live-restore); what the plugin finds missing is repaired and what no
 * record explains is removed; a reboot (another kernel boot id) is recognised; and what Docker forgot
 * to tell the plugin is found by reconciliation. Root only.
 */
import { expect } from "chai";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startAzureTestbed, type AzureTestbed } from "../helpers/azure-vm.js";
import { forwardJumpOrder } from "../helpers/host-snapshot.js";
import { pollUntil } from "../helpers/run.js";
import { withFailingPlugin } from "../helpers/failing-plugin.js";

const SECONDARIES = ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8", "10.1.0.9", "10.1.0.10"].slice(0, 6);
const VM1 = { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: SECONDARIES };
const VM2 = { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.20" };

describe("e2e: restarts, crashes, reboot and reconciliation", function () {
  this.timeout(300_000);
  let testbed: AzureTestbed | undefined;

  const bed = () => testbed!;
  const docker = (...args: string[]) => bed().dockerd.docker(args);
  const dockerOk = async (...args: string[]) => (await bed().dockerd.dockerOk(args)).stdout.trim();
  const vm1 = (...argv: string[]) => bed().vnet.exec("vm1", argv);
  const ipOf = (container: string) =>
    dockerOk("inspect", "-f", "{{.NetworkSettings.Networks.vnet.IPAddress}}", container);
  const endpointOf = (container: string) =>
    dockerOk("inspect", "-f", "{{.NetworkSettings.Networks.vnet.EndpointID}}", container);
  const pingsVm2 = async (container: string) =>
    (await docker("exec", container, "ping", "-c", "1", "-W", "2", VM2.primary)).code === 0;
  /** Waits until the plugin's records match exactly these running containers. */
  const settlesOn = async (containers: string[]) => {
    const addresses = (await Promise.all(containers.map(ipOf))).sort();
    const endpoints = (await Promise.all(containers.map(endpointOf))).sort();
    await pollUntil(
      `the plugin to hold exactly ${addresses.join(", ") || "nothing"}`,
      async () => {
        const status = await bed().plugin.status();
        const held = [...status.pool[0]!.inUse].sort();
        const known = status.endpoints.map((e) => e.id).sort();
        return (
          JSON.stringify(held) === JSON.stringify(addresses) &&
          JSON.stringify(known) === JSON.stringify(endpoints)
        );
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  };
  /** Starts `count` pings at 10 a second in the container, in the background. */
  const startPinging = (container: string, count: number) =>
    dockerOk(
      "exec",
      "-d",
      container,
      "sh",
      "-c",
      `ping -i 0.1 -c ${count} -W 1 ${VM2.primary} > /tmp/ping.log 2>&1`,
    );
  const pingResult = (container: string) =>
    pollUntil(
      `the pings in ${container} to finish`,
      async () => {
        const log = await docker("exec", container, "cat", "/tmp/ping.log");
        return /packets transmitted/.test(log.stdout) ? log.stdout : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );

  before(async () => {
    testbed = await startAzureTestbed([VM1, VM2], "reliability", {
      pluginArgs: ["--reconcile-interval", "1", "--reconcile-grace", "2"],
    });
    await testbed.dockerd.createAzureNetwork("vnet", "--subnet", "10.1.0.0/24");
  });

  after(async () => {
    await testbed?.teardown();
  });

  it("plugin restarts (SIGTERM, then kill -9) lose no ping of a running container, and its records reload", async () => {
    await dockerOk("run", "-d", "--name", "c1", "--network", "vnet", "busybox:local", "sleep", "600");
    await startPinging("c1", 50);
    await bed().restartPlugin("SIGTERM");
    await bed().restartPlugin("SIGKILL");
    const pings = await pingResult("c1");
    expect(pings, pings).to.contain("50 packets transmitted, 50 packets received, 0% packet loss");
    await settlesOn(["c1"]);
    expect(
      bed()
        .plugin.logs()
        .some((l) => l.msg === "data path verified" && l.rebooted === false),
    ).to.equal(true);
  });

  it("at start, repairs what a live endpoint is missing and removes links and chains no record explains", async () => {
    const address = await ipOf("c1");
    const hostEnd = (await bed().plugin.status()).endpoints[0]!.hostInterface!;
    await bed().restartPlugin("SIGKILL", async () => {
      await vm1("ip", "route", "del", `${address}/32`);
      await vm1("sysctl", "-w", `net.ipv4.conf.${hostEnd}.proxy_arp=0`);
      await vm1("ip", "link", "add", "azfffffdeadbeef", "type", "veth", "peer", "name", "acfffffdeadbeef");
      await vm1("iptables", "-N", "AZV-FWD-FFFFFFFFFFFF");
      await vm1(
        "iptables",
        "-I",
        "FORWARD",
        "-i",
        "azfffff+",
        "-m",
        "comment",
        "--comment",
        "azure-vnet network ffffffffffff",
        "-j",
        "AZV-FWD-FFFFFFFFFFFF",
      );
    });
    expect((await vm1("ip", "route", "show", `${address}/32`)).stdout).to.contain(`dev ${hostEnd}`);
    expect((await vm1("sysctl", "-n", `net.ipv4.conf.${hostEnd}.proxy_arp`)).stdout.trim()).to.equal("1");
    expect((await vm1("ip", "link", "show", "azfffffdeadbeef")).code, "leftover veth removed").to.not.equal(
      0,
    );
    expect((await vm1("iptables", "-S")).stdout).to.not.contain("AZV-FWD-FFFFFFFFFFFF");
    expect(await pingsVm2("c1")).to.equal(true);
    const verified = bed()
      .plugin.logs()
      .filter((l) => l.msg === "data path verified")
      .at(-1)!;
    expect(verified).to.include({ repaired: 1 });
    expect(verified.leftovers).to.include.members(["azfffffdeadbeef", "AZV-FWD-FFFFFFFFFFFF"]);
  });

  it("reconciliation releases what Docker removed while the plugin was down", async () => {
    await dockerOk("run", "-d", "--name", "c2", "--network", "vnet", "busybox:local", "sleep", "600");
    await settlesOn(["c1", "c2"]);
    await bed().restartPlugin("SIGKILL", async () => {
      // dockerd's calls to say so fail (here at once, from a stand-in that answers every call with an
      // error; a plugin that is merely down makes dockerd retry for a while first), and it removes the
      // container anyway.
      await withFailingPlugin(bed().plugin.socketPath, () => docker("rm", "-f", "c2"));
    });
    await settlesOn(["c1"]);
    expect(
      bed()
        .plugin.logs()
        .some((l) => l.msg === "removed an endpoint Docker no longer has"),
    ).to.equal(true);
  });

  it("a dockerd restart brings a container with a restart policy back with a working address", async () => {
    await dockerOk(
      "run",
      "-d",
      "--name",
      "c3",
      "--restart",
      "always",
      "--network",
      "vnet",
      "busybox:local",
      "sleep",
      "600",
    );
    await bed().restartDockerd();
    const order = await forwardJumpOrder(bed().vnet, "vm1");
    expect(order.ordered, `dockerd put DOCKER-USER back ahead of our jumps:\n${order.rules}`).to.equal(true);
    await pollUntil(
      "c3 to run again",
      async () => (await docker("inspect", "-f", "{{.State.Running}}", "c3")).stdout.trim() === "true",
      {
        timeoutMs: 60_000,
      },
    );
    expect(SECONDARIES).to.include(await ipOf("c3"));
    expect(await pingsVm2("c3")).to.equal(true);
    // c1 had no restart policy: it stopped with dockerd, and its address came back to the pool.
    await settlesOn(["c3"]);
  });

  it("with live-restore, containers keep running and pinging through a dockerd restart", async () => {
    await bed().restartDockerd({ liveRestore: true });
    await pollUntil(
      "c3 to run again",
      async () => (await docker("inspect", "-f", "{{.State.Running}}", "c3")).stdout.trim() === "true",
      {
        timeoutMs: 60_000,
      },
    );
    const before = { address: await ipOf("c3"), endpoint: await endpointOf("c3") };
    await startPinging("c3", 50);
    await bed().restartDockerd({ liveRestore: true });
    expect(await pingResult("c3")).to.contain("50 packets transmitted, 50 packets received, 0% packet loss");
    expect({ address: await ipOf("c3"), endpoint: await endpointOf("c3") }).to.deep.equal(before);
    await settlesOn(["c3"]);
  });

  it("a reboot (another boot id) is recognised: the network is rebuilt and allocations are revalidated against Docker", async () => {
    const stateFile = join(bed().plugin.stateDir, "state.json");
    await bed().restartPlugin("SIGKILL", async () => {
      // What a reboot does to the host: every veth and rule of the old boot is gone.
      const links = (await vm1("ip", "-o", "link", "show")).stdout.match(/\baz[0-9a-f]{13}\b/g) ?? [];
      for (const link of links) await vm1("ip", "link", "del", link);
      const rules = (await vm1("iptables", "-S", "FORWARD")).stdout
        .split("\n")
        .filter((line) => line.includes("-j AZV-"));
      for (const rule of rules) await vm1("sh", "-c", `iptables ${rule.replace(/^-A/, "-D")}`);
      const natRules = (await vm1("iptables", "-t", "nat", "-S", "POSTROUTING")).stdout
        .split("\n")
        .filter((line) => line.includes("-j AZV-"));
      for (const rule of natRules) await vm1("sh", "-c", `iptables -t nat ${rule.replace(/^-A/, "-D")}`);
      const state = JSON.parse(await readFile(stateFile, "utf8")) as { bootId: string };
      state.bootId = "a-boot-before-this-one";
      await writeFile(stateFile, JSON.stringify(state));
    });
    const verified = bed()
      .plugin.logs()
      .filter((l) => l.msg === "data path verified")
      .at(-1)!;
    expect(verified).to.include({ rebooted: true, networks: 1, gone: 1 });
    const rules = (await vm1("iptables-save")).stdout;
    expect(rules).to.match(/-A FORWARD -i az\w{5}\+ .* -j AZV-FWD-/);
    expect(rules).to.match(/-A POSTROUTING -s 10\.1\.0\.0\/24 -o eth0 .* -j AZV-NAT-/);
    expect((await forwardJumpOrder(bed().vnet, "vm1")).ordered, "rebuilt behind DOCKER-USER").to.equal(true);
    // The container lost its network with the "reboot"; dockerd's restart brings it back.
    await bed().restartDockerd({ liveRestore: false });
    await pollUntil(
      "c3 to run again",
      async () => (await docker("inspect", "-f", "{{.State.Running}}", "c3")).stdout.trim() === "true",
      {
        timeoutMs: 60_000,
      },
    );
    expect(await pingsVm2("c3")).to.equal(true);
    await settlesOn(["c3"]);
  });
});
