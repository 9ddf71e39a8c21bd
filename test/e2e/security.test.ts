/**
 * What a container must not be able to do, on a real dockerd in the emulated VNet, in both modes:
 * send as an address that is not its own, put a foreign MAC on the wire, or reach the Instance
 * Metadata Service (and so the VM's managed-identity tokens) unless its network opts in. Also that
 * only root can talk to the plugin or read its state. Root only.
 */
import { expect } from "chai";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { startAzureTestbed, type AzureTestbed } from "../helpers/azure-vm.js";

const SECONDARIES = ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"];
const VM2 = { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.20" };
const IMDS_REQUEST =
  "GET /metadata/instance/network?api-version=2021-02-01 HTTP/1.0\\r\\nMetadata: true\\r\\n\\r\\n";

for (const mode of ["transparent", "bridge"] as const) {
  describe(`e2e: container isolation in ${mode} mode`, function () {
    this.timeout(180_000);
    let testbed: AzureTestbed | undefined;
    const bed = () => testbed!;
    const docker = (...args: string[]) => bed().dockerd.docker(args);
    const dockerOk = async (...args: string[]) => (await bed().dockerd.dockerOk(args)).stdout.trim();
    /** Counts ICMP packets arriving at vm2 from `source`. */
    const vm2Counts = async (source: string) => {
      const out = (await bed().vnet.execOk("vm2", ["iptables", "-L", "INPUT", "-v", "-x", "-n"])).stdout;
      // Protocol 1 is ICMP; `-n` prints the number.
      const line = out.split("\n").find((l) => l.trim().split(/\s+/)[2] === "1" && l.includes(` ${source} `));
      return Number(line?.trim().split(/\s+/)[0] ?? 0);
    };

    before(async () => {
      testbed = await startAzureTestbed(
        [{ name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: SECONDARIES }, VM2],
        `sec-${mode}`,
      );
      await testbed.dockerd.createAzureNetwork("vnet", "-o", `mode=${mode}`, "--subnet", "10.1.0.0/24");
      await dockerOk(
        "run",
        "-d",
        "--name",
        "mallory",
        "--cap-add",
        "NET_ADMIN",
        "--network",
        "vnet",
        "--ip",
        "10.1.0.5",
        "busybox:local",
        "sleep",
        "600",
      );
      for (const source of ["10.1.0.5", "10.1.0.6"]) {
        await bed().vnet.execOk("vm2", ["iptables", "-I", "INPUT", "-s", source, "-p", "icmp"]);
      }
    });

    after(async () => {
      await testbed?.teardown();
    });

    it("only root may use the plugin's socket and read its state", async () => {
      expect((await stat(bed().plugin.socketPath)).mode & 0o777).to.equal(0o600);
      expect((await stat(bed().plugin.stateDir)).mode & 0o777).to.equal(0o700);
      expect((await stat(join(bed().plugin.stateDir, "state.json"))).mode & 0o777).to.equal(0o600);
    });

    it("a container cannot send as another address", async () => {
      expect(
        (await docker("exec", "mallory", "ping", "-c", "1", "-W", "2", VM2.primary)).code,
        "its own address works",
      ).to.equal(0);
      expect(await vm2Counts("10.1.0.5")).to.be.greaterThan(0);
      // 10.1.0.6 is a secondary IP of the same NIC: the fabric alone would let it through.
      await dockerOk("exec", "mallory", "ip", "addr", "add", "10.1.0.6/24", "dev", "eth0");
      const spoofed = await docker(
        "exec",
        "mallory",
        "ping",
        "-c",
        "2",
        "-W",
        "1",
        "-I",
        "10.1.0.6",
        VM2.primary,
      );
      expect(spoofed.code).to.not.equal(0);
      expect(await vm2Counts("10.1.0.6"), "vm2 received nothing from the spoofed address").to.equal(0);
      await dockerOk("exec", "mallory", "ip", "addr", "del", "10.1.0.6/24", "dev", "eth0");
    });

    it("a container cannot put a foreign MAC on the wire", async () => {
      const dropsBefore = await bed().vnet.spoofDropCount("vm1");
      const received = await vm2Counts("10.1.0.5");
      await dockerOk("exec", "mallory", "ip", "link", "set", "dev", "eth0", "address", "02:00:00:00:00:99");
      await docker("exec", "mallory", "ping", "-c", "2", "-W", "1", VM2.primary);
      if (mode === "bridge") {
        // Its frames are bridged: the host drops those that do not carry its own MAC.
        expect(await vm2Counts("10.1.0.5"), "nothing got through").to.equal(received);
      }
      // Either way the fabric never saw a MAC other than the NIC's.
      expect(await bed().vnet.spoofDropCount("vm1")).to.equal(dropsBefore);
    });

    it("containers cannot reach IMDS, unless their network has -o imds=allow", async () => {
      const denied = await docker(
        "run",
        "--rm",
        "--network",
        "vnet",
        "busybox:local",
        "sh",
        "-c",
        `printf '${IMDS_REQUEST}' | nc -w 3 169.254.169.254 80`,
      );
      expect(denied.stdout).to.not.contain("HTTP/1.1 200");
      await testbed!.dockerd.createAzureNetwork("trusted", "-o", `mode=${mode}`, "-o", "imds=allow");
      const allowed = await docker(
        "run",
        "--rm",
        "--network",
        "trusted",
        "busybox:local",
        "sh",
        "-c",
        `printf '${IMDS_REQUEST}' | nc -w 3 169.254.169.254 80`,
      );
      expect(allowed.stdout).to.contain("HTTP/1.1 200");
      expect(allowed.stdout).to.contain('"macAddress":"000D3A000001"');
    });
  });
}
