/**
 * The threat model of docs/security.md, line by line, from inside containers on a real dockerd in the
 * emulated VNet, in both modes: what a container on an azure network reaches (and under which
 * address), and what it cannot reach or do, the negative lines included. Every `it` title here is a
 * line of that document's tables (test/unit/security-doc.test.ts holds the two together). Root only.
 */
import { expect } from "chai";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { startAzureTestbed, type AzureTestbed } from "../helpers/azure-vm.js";
import { pollUntil } from "../helpers/run.js";
import { INET_HOST_IP, WIRESERVER_IP } from "../helpers/vnet.js";

const SECONDARIES = ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8", "10.1.0.9", "10.1.0.10", "10.1.0.11"];
const VM1 = { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: SECONDARIES };
const VM1_PUBLIC = "198.51.100.4";
const VM2 = { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.20" };
const MALLORY = "10.1.0.5";
const VICTIM = "10.1.0.6";
const WITNESS = "10.1.0.7";
const NEIGHBOUR = "10.1.0.8";
const PORT = 7000;
const IMDS_REQUEST =
  "GET /metadata/instance/network?api-version=2021-02-01 HTTP/1.0\\r\\nMetadata: true\\r\\n\\r\\n";
const WIRESERVER_REQUEST = "GET /machine?comp=goalstate HTTP/1.0\\r\\nx-ms-version: 2012-11-30\\r\\n\\r\\n";

/** A UDP listener in a namespace that prints the source address of each datagram and answers it. */
const UDP_RECORDER_SCRIPT = `
const socket = require("node:dgram").createSocket("udp4");
const [ip, port] = process.argv.slice(1);
socket.on("message", (message, peer) => {
  process.stdout.write(peer.address + "\\n");
  socket.send("ok " + peer.address, peer.port, peer.address);
});
socket.bind(Number(port), ip, () => process.stdout.write("listening\\n"));
`;

for (const mode of ["transparent", "bridge"] as const) {
  describe(`e2e: the threat model (docs/security.md) in ${mode} mode`, function () {
    this.timeout(180_000);
    let testbed: AzureTestbed | undefined;
    const bed = () => testbed!;
    const docker = (...args: string[]) => bed().dockerd.docker(args);
    const dockerOk = async (...args: string[]) => (await bed().dockerd.dockerOk(args)).stdout.trim();
    const udpSenders: string[] = [];
    /** What the TCP recorder at `ip:port` answered container `name` ("<reply> <source>"), or "" if nothing. */
    const tcpFrom = async (name: string, ip: string, port: number) =>
      (await docker("exec", name, "nc", "-w", "3", ip, String(port))).stdout.trim();
    const pings = async (name: string, ip: string) =>
      (await docker("exec", name, "ping", "-c", "1", "-W", "2", ip)).code === 0;
    const runOn = (network: string, script: string) =>
      docker("run", "--rm", "--network", network, "busybox:local", "sh", "-c", script);
    const container = (name: string, network: string, ip: string, ...extra: string[]) =>
      dockerOk(
        "run",
        "-d",
        "--name",
        name,
        ...extra,
        "--network",
        network,
        "--ip",
        ip,
        "busybox:local",
        "sleep",
        "600",
      );

    before(async () => {
      testbed = await startAzureTestbed([{ ...VM1, publicIp: VM1_PUBLIC }, VM2], `sec-${mode}`);
      const net = testbed.vnet;
      await testbed.dockerd.createAzureNetwork("vnet", "-o", `mode=${mode}`, "--subnet", "10.1.0.0/24");
      await testbed.dockerd.createAzureNetwork("other", "-o", `mode=${mode}`, "--subnet", "10.1.0.0/24");
      await container("mallory", "vnet", MALLORY, "--cap-add", "NET_ADMIN");
      await container("victim", "vnet", VICTIM);
      await container("witness", "vnet", WITNESS);
      await container("neighbour", "other", NEIGHBOUR);
      await dockerOk("network", "create", "plain");
      await dockerOk(
        "run",
        "-d",
        "--name",
        "bystander",
        "--network",
        "plain",
        "busybox:local",
        "sleep",
        "600",
      );
      for (const [host, ip] of [
        ["vm2", VM2.primary],
        ["inet", INET_HOST_IP],
        ["vm1", VM1.primary],
      ] as const) {
        await net.startTcpRecorder(host, ip, PORT, host);
      }
      for (const port of [53, 32526])
        await net.startTcpRecorder("fabric", WIRESERVER_IP, port, `wireserver:${port}`);
      const udp = net.spawnIn("fabric", [process.execPath, "-e", UDP_RECORDER_SCRIPT, WIRESERVER_IP, "53"], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      await new Promise<void>((resolve, reject) => {
        udp.stdout!.on("data", (chunk: Buffer) => {
          for (const line of chunk.toString().split("\n").filter(Boolean)) {
            if (line === "listening") resolve();
            else udpSenders.push(line);
          }
        });
        udp.once("exit", (code) => reject(new Error(`UDP recorder exited with ${code}`)));
      });
      for (const source of [MALLORY, VICTIM]) {
        await net.execOk("vm2", ["iptables", "-I", "INPUT", "-s", source, "-p", "icmp"]);
      }
    });

    after(async () => {
      await testbed?.teardown();
    });

    describe("a container on an azure network", () => {
      it("reaches the other containers of its network", async () => {
        expect(await pings("witness", VICTIM)).to.equal(true);
      });

      it("reaches the VNet under its own address", async () => {
        expect(await tcpFrom("witness", VM2.primary, PORT)).to.equal(`vm2 ${WITNESS}`);
      });

      it("reaches the internet under the VM's public address", async () => {
        expect(await tcpFrom("witness", INET_HOST_IP, PORT)).to.equal(`inet ${VM1_PUBLIC}`);
      });

      it("reaches the VM's own services on its primary address, under its own address", async () => {
        expect(await tcpFrom("witness", VM1.primary, PORT)).to.equal(`vm1 ${WITNESS}`);
      });

      it("reaches the containers of the VM's other azure networks", async () => {
        expect(await pings("witness", NEIGHBOUR)).to.equal(true);
      });

      it("reaches Azure DNS at 168.63.129.16 on port 53, over UDP and TCP, under its own address", async () => {
        expect(await tcpFrom("witness", WIRESERVER_IP, 53)).to.equal(`wireserver:53 ${WITNESS}`);
        await docker("exec", "witness", "nslookup", "example.com", WIRESERVER_IP);
        await pollUntil(
          "a DNS datagram from the witness",
          () => Promise.resolve(udpSenders.includes(WITNESS)),
          {
            timeoutMs: 5_000,
          },
        );
      });

      it("cannot reach the wireserver's other ports (80, 32526), unless its network has -o wireserver=allow", async () => {
        expect(await tcpFrom("witness", WIRESERVER_IP, 32526)).to.equal("");
        const denied = await runOn("vnet", `printf '${WIRESERVER_REQUEST}' | nc -w 3 ${WIRESERVER_IP} 80`);
        expect(denied.stdout).to.not.contain("HTTP/1.1");
        await bed().dockerd.createAzureNetwork("agent", "-o", `mode=${mode}`, "-o", "wireserver=allow");
        const allowed = await runOn("agent", `printf '${WIRESERVER_REQUEST}' | nc -w 3 ${WIRESERVER_IP} 80`);
        expect(allowed.stdout).to.contain("HTTP/1.1");
        const agent = await runOn("agent", `nc -w 3 ${WIRESERVER_IP} 32526`);
        expect(agent.stdout).to.match(/^wireserver:32526 10\.1\.0\.\d+$/m);
        await dockerOk("network", "rm", "agent");
      });

      it("cannot reach IMDS (169.254.169.254), unless its network has -o imds=allow", async () => {
        const request = `printf '${IMDS_REQUEST}' | nc -w 3 169.254.169.254 80`;
        expect((await runOn("vnet", request)).stdout).to.not.contain("HTTP/1.1 200");
        await bed().dockerd.createAzureNetwork("trusted", "-o", `mode=${mode}`, "-o", "imds=allow");
        const allowed = await runOn("trusted", request);
        expect(allowed.stdout).to.contain("HTTP/1.1 200");
        expect(allowed.stdout).to.contain('"macAddress":"000D3A000001"');
        await dockerOk("network", "rm", "trusted");
      });

      it("cannot reach the containers of Docker's bridge networks", async () => {
        const address = await dockerOk(
          "inspect",
          "-f",
          "{{.NetworkSettings.Networks.plain.IPAddress}}",
          "bystander",
        );
        expect(address).to.match(/^\d+\.\d+\.\d+\.\d+$/);
        expect(await pings("witness", address)).to.equal(false);
      });

      it("cannot send as another address", async () => {
        expect(await pings("mallory", VM2.primary), "its own address works").to.equal(true);
        expect(await vm2Counts(MALLORY)).to.be.greaterThan(0);
        // The victim's address is a secondary IP of the same NIC: the fabric alone would let it through.
        await dockerOk("exec", "mallory", "ip", "addr", "add", `${VICTIM}/24`, "dev", "eth0");
        try {
          const spoofed = await docker(
            "exec",
            "mallory",
            "ping",
            "-c",
            "2",
            "-W",
            "1",
            "-I",
            VICTIM,
            VM2.primary,
          );
          expect(spoofed.code).to.not.equal(0);
          expect(await vm2Counts(VICTIM), "vm2 received nothing from the spoofed address").to.equal(0);
        } finally {
          await dockerOk("exec", "mallory", "ip", "addr", "del", `${VICTIM}/24`, "dev", "eth0");
        }
      });

      it("cannot take over another container's address by ARP", async () => {
        expect(await pings("witness", VICTIM), "the witness knows the victim").to.equal(true);
        const malloryMac = await dockerOk("exec", "mallory", "cat", "/sys/class/net/eth0/address");
        await dockerOk("exec", "mallory", "ip", "addr", "add", `${VICTIM}/32`, "dev", "eth0");
        try {
          // Unsolicited announcements, then unsolicited replies: both ways a neighbour learns a MAC.
          for (const kind of ["-U", "-A"])
            await docker(
              "exec",
              "mallory",
              "arping",
              kind,
              "-c",
              "3",
              "-w",
              "3",
              "-I",
              "eth0",
              "-s",
              VICTIM,
              VICTIM,
            );
        } finally {
          await dockerOk("exec", "mallory", "ip", "addr", "del", `${VICTIM}/32`, "dev", "eth0");
        }
        const witnessArp = await dockerOk("exec", "witness", "cat", "/proc/net/arp");
        expect(witnessArp, "the witness's ARP cache").to.not.contain(malloryMac);
        const hostNeighbours = (await bed().vnet.execOk("vm1", ["ip", "neigh", "show", VICTIM])).stdout;
        expect(hostNeighbours, "the VM's neighbour table").to.not.contain(malloryMac);
        expect(await pings("witness", VICTIM), "the victim still answers").to.equal(true);
      });

      it("cannot put a foreign MAC on the wire", async () => {
        const dropsBefore = await bed().vnet.spoofDropCount("vm1");
        const received = await vm2Counts(MALLORY);
        const mac = await dockerOk("exec", "mallory", "cat", "/sys/class/net/eth0/address");
        await dockerOk("exec", "mallory", "ip", "link", "set", "dev", "eth0", "address", "02:00:00:00:00:99");
        try {
          await docker("exec", "mallory", "ping", "-c", "2", "-W", "1", VM2.primary);
          // Bridged frames that do not carry the container's own MAC are dropped on the host.
          if (mode === "bridge") expect(await vm2Counts(MALLORY), "nothing got through").to.equal(received);
          // Either way the fabric never saw a MAC other than the NIC's.
          expect(await bed().vnet.spoofDropCount("vm1")).to.equal(dropsBefore);
        } finally {
          await dockerOk("exec", "mallory", "ip", "link", "set", "dev", "eth0", "address", mac);
        }
      });
    });

    describe("a container on an --internal azure network", () => {
      it("reaches the other containers of its network, and nothing else: not the VNet, the internet or Azure DNS", async () => {
        if (mode === "bridge") {
          // Bridged containers reach the NIC at layer 2, past the host's firewall: no such network.
          const refused = await docker(...internalNetwork("sealed"));
          expect(refused.stderr).to.contain("--internal networks need transparent mode");
          return;
        }
        await dockerOk(...internalNetwork("sealed"));
        try {
          const peer = await dockerOk("run", "-d", "--network", "sealed", "busybox:local", "sleep", "600");
          const peerIp = await dockerOk(
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.sealed.IPAddress}}",
            peer,
          );
          const probe = await runOn(
            "sealed",
            [
              `ping -c 1 -W 2 ${peerIp} >/dev/null && echo peer`,
              `nc -w 2 ${VM2.primary} ${PORT}`,
              `nc -w 2 ${INET_HOST_IP} ${PORT}`,
              `nc -w 2 ${WIRESERVER_IP} 53`,
              "true",
            ].join("; "),
          );
          expect(probe.stdout.trim().split("\n")).to.deep.equal(["peer"]);
          await dockerOk("rm", "-f", peer);
        } finally {
          await docker("network", "rm", "sealed");
        }
      });
    });

    describe("the plugin itself", () => {
      it("only root may use the plugin's socket and read its state", async () => {
        expect((await stat(bed().plugin.socketPath)).mode & 0o777).to.equal(0o600);
        expect((await stat(bed().plugin.stateDir)).mode & 0o777).to.equal(0o700);
        expect((await stat(join(bed().plugin.stateDir, "state.json"))).mode & 0o777).to.equal(0o600);
      });
    });

    function internalNetwork(name: string): string[] {
      return [
        "network",
        "create",
        "-d",
        "azure",
        "--ipam-driver",
        "azure",
        "-o",
        `mode=${mode}`,
        "--internal",
        name,
      ];
    }

    /** Counts ICMP packets arriving at vm2 from `source`. */
    async function vm2Counts(source: string): Promise<number> {
      const out = (await bed().vnet.execOk("vm2", ["iptables", "-L", "INPUT", "-v", "-x", "-n"])).stdout;
      // Protocol 1 is ICMP; `-n` prints the number.
      const line = out.split("\n").find((l) => l.trim().split(/\s+/)[2] === "1" && l.includes(` ${source} `));
      return Number(line?.trim().split(/\s+/)[0] ?? 0);
    }
  });
}
