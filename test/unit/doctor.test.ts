/**
 * The doctor without a running plugin or Docker: every host read goes through HostNetwork (here the
 * recording fake), the checks report in their fixed order, and a check that cannot read the host says
 * so without stopping the others.
 */
import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDoctor } from "../../plugin/cli/doctor.js";
import { createFakeHost } from "../helpers/fake-host.js";

const NOWHERE = { socket: "/nonexistent/azure.sock", dockerSocket: "/nonexistent/docker.sock" };

describe("doctor", () => {
  it("reads the host only through HostNetwork and lists the checks in order", async () => {
    const host = createFakeHost();
    const findings = await runDoctor({ ...NOWHERE, imdsUrl: "http://127.0.0.1:9", host });
    expect(findings.map((f) => `${f.check} ${f.result}`)).to.deep.equal([
      "plugin fail",
      "pool source fail",
      "forwarding ok",
      "firewall ok",
      "docker warn",
    ]);
    expect(findings[2]!.message).to.equal("IPv4 forwarding is off; the first azure network turns it on");
    expect(findings[3]!.message).to.equal(
      "iptables v1.8.9 (nf_tables) (the plugin and dockerd use the same iptables)",
    );
    expect(host.calls.map((c) => [c.name, ...c.args])).to.deep.equal([
      ["readSysctl", "net/ipv4/ip_forward"],
      ["iptablesVersion"],
      ["listChainRules", "filter", "FORWARD"],
      ["listChainRules", "nat", "POSTROUTING"],
    ]);
  });

  it("a check that cannot read the host fails with the reason, and the next checks still run", async () => {
    const host = createFakeHost();
    host.failOn("iptablesVersion");
    const findings = await runDoctor({ ...NOWHERE, imdsUrl: "http://127.0.0.1:9", host });
    expect(findings.find((f) => f.check === "firewall")).to.deep.equal({
      check: "firewall",
      result: "fail",
      message: "could not be checked: injected failure of iptablesVersion",
    });
    expect(findings.at(-1)!.check).to.equal("docker");
  });

  describe("with a plugin that answers", () => {
    let dir: string;
    let plugin: http.Server;
    let status: object;
    const network = (id: string, imdsAccess: boolean, wireserverAccess: boolean) => ({
      id,
      imdsAccess,
      wireserverAccess,
      internal: true,
      mode: "transparent",
      interfaceName: "eth0",
    });
    const baseStatus = {
      pool: [],
      networks: [network("a".repeat(64), false, false), network("b".repeat(64), true, true)],
      endpoints: [],
      unlinks: [],
      growth: [],
      source: { name: "file", location: "/pool.json", failures: 0 },
      stateFile: "/nonexistent/state.json",
      reconciliation: { on: false },
    };
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "azure-vnet-doctor-"));
      status = baseStatus;
      plugin = http.createServer((_req, res) => res.end(JSON.stringify(status)));
      await new Promise<void>((resolve) => plugin.listen(join(dir, "azure.sock"), resolve));
    });
    afterEach(async () => {
      await new Promise((resolve) => plugin.close(resolve));
      await rm(dir, { recursive: true, force: true });
    });

    it("names each network's shields, and a shield whose rule is missing; warns when reconciliation is off", async () => {
      const host = createFakeHost();
      await host.setChainRules("filter", "AZV-FWD-AAAAAAAAAAAA", [
        ["-d", "169.254.169.254/32", "-j", "DROP"],
      ]);
      const findings = await runDoctor({ ...NOWHERE, socket: join(dir, "azure.sock"), imdsUrl: "", host });
      expect(findings.filter((f) => f.check === "shields")).to.deep.equal([
        {
          check: "shields",
          result: "fail",
          message:
            "network aaaaaaaaaaaa should block the wireserver, but the rule is missing (removed by a firewall reload?) — restart the plugin: it re-creates its rules at start",
        },
        {
          check: "shields",
          result: "ok",
          message:
            "network bbbbbbbbbbbb: IMDS open: its containers can act as the VM's managed identity; the wireserver open: its containers can read the VM's goal state and extension settings (docs/security.md)",
        },
      ]);
      expect(findings.find((f) => f.check === "reconciliation")).to.deep.equal({
        check: "reconciliation",
        result: "warn",
        message:
          "the plugin runs without the Docker API socket, so reconciliation is off: records that dockerd fails to delete (after a crash) stay until removed by hand — give it the socket if you accept what that grants (docs/security.md)",
      });
    });

    it("explains a network on a secondary NIC whose containers would answer through the primary one", async () => {
      const routed = { ...network("c".repeat(64), false, false), interfaceName: "eth1", routeTable: 30001 };
      const joined = {
        id: "e".repeat(64),
        networkId: routed.id,
        address: "10.2.0.5",
        hostInterface: "azccccceeeeeeee",
      };
      status = { ...baseStatus, networks: [routed], endpoints: [joined] };
      const host = createFakeHost();
      await host.setTableRoutes(30001, [{ dst: "0.0.0.0/0", device: "eth1", gateway: "10.2.0.1" }]);
      const check = () => runDoctor({ ...NOWHERE, socket: join(dir, "azure.sock"), imdsUrl: "", host });
      expect((await check()).filter((f) => f.check === "routing")).to.deep.equal([
        {
          check: "routing",
          result: "fail",
          message:
            "network cccccccccccc on eth1 is missing the rule for 10.2.0.5, so its containers answer through the primary NIC with addresses it does not own, and Azure drops those replies — restart the plugin: it re-creates its routing at start",
        },
      ]);
      await host.ensureRule({ priority: 30001, table: 30001, from: "10.2.0.5" });
      expect((await check()).filter((f) => f.check === "routing")).to.deep.equal([
        {
          check: "routing",
          result: "ok",
          message: "network cccccccccccc on eth1: its containers leave through eth1 (routing table 30001)",
        },
      ]);
    });

    it("checks the AZURE_VNET_IP this node advertises to the swarm scheduler against its addresses", async () => {
      const subnet = {
        nic: "eth0",
        subnet: "10.1.0.0/24",
        primary: "10.1.0.4",
        gateway: "10.1.0.1",
        secondaries: 4,
      };
      status = {
        ...baseStatus,
        networks: [],
        pool: [{ ...subnet, free: ["10.1.0.5"], inUse: [], goneButHeld: [] }],
      };
      let advertised = 10;
      const docker = http.createServer((req, res) =>
        res.end(
          JSON.stringify(
            req.url === "/info"
              ? { GenericResources: [{ DiscreteResourceSpec: { Kind: "AZURE_VNET_IP", Value: advertised } }] }
              : { Version: "28.5.2", ApiVersion: "1.51" },
          ),
        ),
      );
      await new Promise<void>((resolve) => docker.listen(join(dir, "docker.sock"), resolve));
      try {
        const swarm = async () =>
          (
            await runDoctor({
              socket: join(dir, "azure.sock"),
              dockerSocket: join(dir, "docker.sock"),
              imdsUrl: "",
              host: createFakeHost(),
            })
          ).filter((f) => f.check === "swarm");
        expect(await swarm()).to.deep.equal([
          {
            check: "swarm",
            result: "warn",
            message:
              "this node advertises AZURE_VNET_IP=10 to the swarm scheduler but has 4 secondary IPs, so tasks placed here beyond that get no address — set node-generic-resources to AZURE_VNET_IP=4 or less, or add IP configurations to the NIC",
          },
        ]);
        advertised = 4;
        expect(await swarm()).to.deep.equal([
          {
            check: "swarm",
            result: "ok",
            message: "this node advertises AZURE_VNET_IP=4 and has 4 secondary IPs",
          },
        ]);
      } finally {
        await new Promise((resolve) => docker.close(resolve));
      }
    });
  });
});
