/**
 * The operator commands on the emulated Azure VM, against the real plugin and dockerd: `status` names
 * the containers, and `doctor` passes on a healthy host and explains, with the fix, each thing that
 * is broken behind the plugin's back. Root only.
 */
import { expect } from "chai";
import { forwardJumpOrder } from "../helpers/host-snapshot.js";
import { fileURLToPath } from "node:url";
import { startAzureTestbed, type AzureTestbed } from "../helpers/azure-vm.js";

const MAIN = fileURLToPath(new URL("../../plugin/main.js", import.meta.url));

describe("e2e: status and doctor on the VM", function () {
  this.timeout(180_000);
  let testbed: AzureTestbed | undefined;
  const bed = () => testbed!;
  const azureVnet = (...args: string[]) =>
    bed().vnet.exec("vm1", [
      process.execPath,
      MAIN,
      ...args,
      "--socket",
      bed().plugin.socketPath,
      "--docker-socket",
      bed().dockerd.socketPath,
    ]);

  before(async () => {
    testbed = await startAzureTestbed(
      [
        { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: ["10.1.0.5", "10.1.0.6"] },
        { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.20" },
      ],
      "operator",
    );
    await bed().dockerd.createAzureNetwork("vnet", "--subnet", "10.1.0.0/24");
    await bed().dockerd.dockerOk([
      "run",
      "-d",
      "--name",
      "web",
      "--network",
      "vnet",
      "--ip",
      "10.1.0.6",
      "busybox:local",
      "sleep",
      "600",
    ]);
  });

  after(async () => {
    await testbed?.teardown();
  });

  it("status names the container and the network of each endpoint", async () => {
    const out = await azureVnet("status");
    expect(out.code, out.stderr).to.equal(0);
    expect(out.stdout).to.match(
      /^eth0\s+10\.1\.0\.0\/24\s+10\.1\.0\.4\s+10\.1\.0\.1\s+2\s+1\s+10\.1\.0\.6\s+-$/m,
    );
    expect(out.stdout).to.match(
      /^\w{12}\s+vnet\s+transparent\s+eth0\s+10\.1\.0\.0\/24\s+no\s+blocked\s+dns-only$/m,
    );
    expect(out.stdout).to.match(/^\w{12}\s+web\s+vnet\s+10\.1\.0\.6\s+0a:58:0a:01:00:06\s+az\w{13}\s+-$/m);
    expect(out.stdout).to.contain(
      "pool source imds (http://169.254.169.254/metadata/instance/network?api-version=2021-02-01): ok",
    );
  });

  it("doctor passes on a healthy host", async () => {
    const out = await azureVnet("doctor");
    expect(out.code, out.stdout).to.equal(0);
    expect(out.stdout).to.contain("ok    plugin: answers on");
    expect(out.stdout).to.contain("ok    pool source: imds answers");
    expect(out.stdout).to.contain("ok    secondary IPs: eth0 (10.1.0.0/24): 2 secondary IPs, 1 free");
    expect(out.stdout).to.contain("ok    forwarding: IPv4 forwarding is on");
    expect(out.stdout).to.match(/ok {4}firewall: network \w{12}: forwarding and outbound NAT rules in place/);
    expect(out.stdout).to.contain("ok    docker: Docker 20.10");
    expect(out.stdout).to.match(
      /^ok {4}shields: network \w{12}: IMDS blocked; the wireserver blocked \(docs\/security\.md\)$/m,
    );
    expect(out.stdout).to.match(/^ok {4}reconciliation: the plugin reconciles with Docker at \//m);
  });

  it("doctor explains broken forwarding and missing rules, with the fix, and exits 1", async () => {
    await bed().vnet.execOk("vm1", ["sysctl", "-w", "net.ipv4.ip_forward=0"]);
    const rules = (await bed().vnet.execOk("vm1", ["iptables", "-t", "nat", "-S", "POSTROUTING"])).stdout
      .split("\n")
      .filter((l) => l.includes("-j AZV-NAT-"));
    for (const rule of rules)
      await bed().vnet.execOk("vm1", ["sh", "-c", `iptables -t nat ${rule.replace(/^-A/, "-D")}`]);
    // As a release that put its jumps first left them: DOCKER-USER behind azure-vnet's jumps.
    await bed().vnet.execOk("vm1", ["iptables", "-w", "-D", "FORWARD", "-j", "DOCKER-USER"]);
    await bed().vnet.execOk("vm1", ["iptables", "-w", "-A", "FORWARD", "-j", "DOCKER-USER"]);
    const out = await azureVnet("doctor");
    expect(out.code).to.equal(1);
    expect(out.stdout).to.contain(
      "FAIL  forwarding: IPv4 forwarding is off, so containers reach nothing beyond the VM — something turned it off; restart the plugin, which turns it on again",
    );
    expect(out.stdout).to.match(
      /FAIL {2}firewall: network \w{12} is missing its POSTROUTING jump \(removed by a firewall reload\?\) — restart the plugin: it re-creates missing rules at start/,
    );
    expect(out.stdout).to.contain(
      "WARN  firewall: a FORWARD jump of azure-vnet sits ahead of DOCKER-USER, so rules there do not see its containers' traffic — restart the plugin: it moves its jumps behind DOCKER-USER at start",
    );
    // A shield whose rule went missing: the doctor says which, and the restart below restores it.
    const forward = (await bed().vnet.execOk("vm1", ["iptables", "-S", "FORWARD"])).stdout;
    const chain = /-j (AZV-FWD-\w+)/.exec(forward)![1]!;
    await bed().vnet.execOk("vm1", ["iptables", "-D", chain, "-d", "168.63.129.16/32", "-j", "DROP"]);
    const shieldless = await azureVnet("doctor");
    expect(shieldless.stdout).to.match(
      /^FAIL {2}shields: network \w{12} should block the wireserver, but the rule is missing \(removed by a firewall reload\?\) — restart the plugin: it re-creates its rules at start$/m,
    );
    // The fix the doctor names works.
    await bed().restartPlugin("SIGTERM");
    const again = await azureVnet("doctor");
    expect(again.code, again.stdout).to.equal(0);
    expect(again.stdout).to.not.contain("WARN  firewall");
    expect(again.stdout).to.not.contain("FAIL  shields");
    expect((await forwardJumpOrder(bed().vnet, "vm1")).ordered).to.equal(true);
  });

  it("doctor says when all secondary IPs are in use, and when the plugin is not running", async () => {
    await bed().dockerd.dockerOk([
      "run",
      "-d",
      "--name",
      "web2",
      "--network",
      "vnet",
      "busybox:local",
      "sleep",
      "600",
    ]);
    const full = await azureVnet("doctor");
    expect(full.stdout).to.contain(
      "WARN  secondary IPs: eth0 (10.1.0.0/24): all 2 secondary IPs are in use — the next container fails; add IP configurations to the NIC",
    );
    const down = await bed().vnet.exec("vm1", [
      process.execPath,
      MAIN,
      "doctor",
      "--socket",
      "/nonexistent/azure.sock",
      "--docker-socket",
      bed().dockerd.socketPath,
    ]);
    expect(down.code).to.equal(1);
    expect(down.stdout).to.match(
      /FAIL {2}plugin: does not answer on \/nonexistent\/azure\.sock \(connect ENOENT .*\) — start it: systemctl start azure-vnet, or docker plugin enable azure:latest/,
    );
    expect(down.stdout, "it then asks IMDS itself").to.contain(
      "ok    pool source: IMDS answers at http://169.254.169.254",
    );
  });
});
