/**
 * Every NetworkDriver call over the real unix socket, with a recording fake host: request checking,
 * the host changes each call asks for, idempotency, rollback when a host change fails, and what is
 * persisted. The real kernel side is covered by the e2e suite.
 */
import { expect } from "chai";
import { readFile, writeFile } from "node:fs/promises";
import { ETH0_MAC, ETH1_MAC, startPlugin, type PluginUnderTest } from "../helpers/plugin-under-test.js";

const NET = "adf4fa8e1772" + "0".repeat(52);
const NET2 = "bb00112233445566" + "1".repeat(48);
const EP = "e1e2e3e4e5e6" + "2".repeat(52);
const EP2 = "f1f2f3f4f5f6" + "3".repeat(52);

const createBody = (overrides: Record<string, unknown> = {}, generic: Record<string, unknown> = {}) => ({
  NetworkID: NET,
  Options: {
    "com.docker.network.generic": generic,
    "com.docker.network.enable_ipv6": false,
    "com.docker.network.internal": false,
  },
  IPv4Data: [{ AddressSpace: "azure-local", Pool: "10.1.0.0/24", Gateway: "10.1.0.1/24", AuxAddresses: {} }],
  IPv6Data: [],
  ...overrides,
});

/** The FORWARD chain's wireserver shield: Azure DNS only. */
const WIRESERVER_SHIELD = [
  ["-d", "168.63.129.16/32", "-p", "udp", "--dport", "53", "-j", "ACCEPT"],
  ["-d", "168.63.129.16/32", "-p", "tcp", "--dport", "53", "-j", "ACCEPT"],
  ["-d", "168.63.129.16/32", "-j", "DROP"],
];
/** The FORWARD chain's end for a transparent network on eth0: its NIC and azure containers only. */
const FORWARD_TAIL = [
  ["-o", "eth0", "-j", "ACCEPT"],
  ["-o", "az+", "-j", "ACCEPT"],
  ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "RETURN"],
  ["-j", "DROP"],
];

describe("NetworkDriver API over the unix socket", () => {
  let plugin: PluginUnderTest;
  beforeEach(async () => {
    plugin = await startPlugin();
    // What the start-up verification looked at is not what these tests are about.
    plugin.host.calls.length = 0;
  });
  afterEach(async () => {
    await plugin.stop();
  });

  const post = (path: string, body: unknown) => plugin.api().post(path).send(JSON.stringify(body));
  const calls = (name: string) => plugin.host.calls.filter((c) => c.name === name).map((c) => c.args);
  const stateOnDisk = async () =>
    JSON.parse(await readFile(plugin.stateFile, "utf8")) as {
      driver: {
        networks: Record<string, { mode: string }>;
        endpoints: Record<string, { hostInterface?: string; macAddress: string }>;
      };
      ipam: { reservations: Record<string, { endpointId?: string }> };
    };
  const reserve = async (address: string) => {
    const pool = await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" });
    await post("/IpamDriver.RequestAddress", { PoolID: pool.body.PoolID, Address: address }).expect(200);
    return pool.body.PoolID as string;
  };

  describe("CreateNetwork", () => {
    it("sets up forwarding, a FORWARD chain and an SNAT chain that keeps VNet destinations unNATed", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200, {});
      expect(calls("writeSysctl")).to.deep.equal([["net/ipv4/ip_forward", "1"]]);
      expect(calls("setChainRules")).to.deep.equal([
        [
          "filter",
          "AZV-FWD-ADF4FA8E1772",
          [["-d", "169.254.169.254/32", "-j", "DROP"], ...WIRESERVER_SHIELD, ...FORWARD_TAIL],
        ],
        [
          "nat",
          "AZV-NAT-ADF4FA8E1772",
          [
            ["-s", "10.1.0.4/32", "-j", "RETURN"],
            ["-d", "10.1.0.0/24", "-j", "RETURN"],
            ["-d", "168.63.129.16/32", "-j", "RETURN"],
            ["-d", "10.0.0.0/8", "-j", "RETURN"],
            ["-d", "172.16.0.0/12", "-j", "RETURN"],
            ["-d", "192.168.0.0/16", "-j", "RETURN"],
            ["-j", "SNAT", "--to-source", "10.1.0.4"],
          ],
        ],
      ]);
      expect(calls("ensureJump")).to.deep.equal([
        [
          "filter",
          "FORWARD",
          "AZV-FWD-ADF4FA8E1772",
          ["-i", "azadf4f+"],
          "azure-vnet network adf4fa8e1772",
          "DOCKER-USER",
        ],
        [
          "filter",
          "FORWARD",
          "AZV-FWD-ADF4FA8E1772",
          ["-o", "azadf4f+"],
          "azure-vnet network adf4fa8e1772",
          "DOCKER-USER",
        ],
        [
          "nat",
          "POSTROUTING",
          "AZV-NAT-ADF4FA8E1772",
          ["-s", "10.1.0.0/24", "-o", "eth0"],
          "azure-vnet network adf4fa8e1772",
          undefined,
        ],
      ]);
      expect((await stateOnDisk()).driver.networks[NET]).to.include({ mode: "transparent" });
      expect(plugin.host.sysctls.get("net/ipv4/ip_forward")).to.equal("1");
    });

    it("takes -o vnet-ranges=, -o mtu= and the old plugin's mode option", async () => {
      await post(
        "/NetworkDriver.CreateNetwork",
        createBody(
          {},
          {
            "vnet-ranges": "10.0.0.0/16, 192.168.50.0/24",
            mtu: "1400",
            "com.microsoft.azure.network.mode": "transparent",
          },
        ),
      ).expect(200);
      const natRules = calls("setChainRules").find((args) => args[0] === "nat")![2] as string[][];
      expect(natRules.map((r) => r[1])).to.deep.equal([
        "10.1.0.4/32",
        "10.1.0.0/24",
        "168.63.129.16/32",
        "10.0.0.0/16",
        "192.168.50.0/24",
        "SNAT",
      ]);
      const status = await plugin.api().get("/status").expect(200);
      expect(status.body.networks[0]).to.include({ mtu: 1400 });
    });

    it("refuses a second network on the subnet with other -o vnet-ranges: they would share one NAT", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody({}, { "vnet-ranges": "10.0.0.0/16" })).expect(
        200,
      );
      const refused = await post(
        "/NetworkDriver.CreateNetwork",
        createBody({ NetworkID: NET2 }, { "vnet-ranges": "10.0.0.0/8" }),
      ).expect(409);
      expect(refused.body.Err).to.equal(
        "network adf4fa8e1772 on eth0 (10.1.0.0/24) has -o vnet-ranges=10.0.0.0/16 — networks on one NIC subnet share outbound NAT; give this one the same -o vnet-ranges, or use another NIC",
      );
      await post(
        "/NetworkDriver.CreateNetwork",
        createBody({ NetworkID: NET2 }, { "vnet-ranges": "10.0.0.0/16" }),
      ).expect(200);
    });

    it("gives --internal networks no SNAT, and a mangle chain that passes only container-to-container traffic", async () => {
      await post(
        "/NetworkDriver.CreateNetwork",
        createBody({ Options: { "com.docker.network.internal": true } }),
      ).expect(200);
      expect(calls("setChainRules")).to.deep.equal([
        [
          "filter",
          "AZV-FWD-ADF4FA8E1772",
          [["-d", "169.254.169.254/32", "-j", "DROP"], ...WIRESERVER_SHIELD, ...FORWARD_TAIL],
        ],
        [
          "mangle",
          "AZV-ISO-ADF4FA8E1772",
          [
            ["-i", "azadf4f+", "-o", "azadf4f+", "-j", "RETURN"],
            ["-j", "DROP"],
          ],
        ],
      ]);
      const comment = "azure-vnet network adf4fa8e1772";
      expect(calls("ensureJump").filter((args) => args[0] === "mangle")).to.deep.equal([
        ["mangle", "FORWARD", "AZV-ISO-ADF4FA8E1772", ["-i", "azadf4f+"], comment, undefined],
        ["mangle", "FORWARD", "AZV-ISO-ADF4FA8E1772", ["-o", "azadf4f+"], comment, undefined],
      ]);
      await post("/NetworkDriver.DeleteNetwork", { NetworkID: NET }).expect(200);
      expect(calls("deleteChain").map((args) => args.slice(0, 2))).to.deep.include([
        "mangle",
        "AZV-ISO-ADF4FA8E1772",
      ]);
      const { chains, jumps } = JSON.parse(plugin.host.snapshot()) as { chains: unknown[]; jumps: unknown[] };
      expect({ chains, jumps }, "no chain or jump left").to.deep.equal({ chains: [], jumps: [] });
    });

    it("lets containers reach 168.63.129.16 beyond DNS only with -o wireserver=allow", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody({}, { wireserver: "allow" })).expect(200);
      expect(calls("setChainRules")[0]).to.deep.equal([
        "filter",
        "AZV-FWD-ADF4FA8E1772",
        [["-d", "169.254.169.254/32", "-j", "DROP"], ...FORWARD_TAIL],
      ]);
      const bad = await post(
        "/NetworkDriver.CreateNetwork",
        createBody({ NetworkID: NET2 }, { wireserver: "open" }),
      );
      expect(bad.body.Err).to.equal(
        "-o wireserver=open is not allow or deny — containers reach 168.63.129.16 only for DNS (port 53) unless -o wireserver=allow opens the VM's agent channel to them",
      );
    });

    it("lets containers reach IMDS only with -o imds=allow", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody({}, { imds: "allow" })).expect(200);
      expect(calls("setChainRules")[0]).to.deep.equal([
        "filter",
        "AZV-FWD-ADF4FA8E1772",
        [...WIRESERVER_SHIELD, ...FORWARD_TAIL],
      ]);
      const bad = await post(
        "/NetworkDriver.CreateNetwork",
        createBody({ NetworkID: NET2 }, { imds: "yes" }),
      );
      expect(bad.body.Err).to.equal(
        "-o imds=yes is not allow or deny — containers reach the Instance Metadata Service (and the VM's identity tokens) only with -o imds=allow",
      );
    });

    it("is idempotent", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200);
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200);
      expect(Object.keys((await stateOnDisk()).driver.networks)).to.deep.equal([NET]);
    });

    it("undoes its host changes and records nothing when a step fails", async () => {
      plugin.host.failOn("ensureJump");
      const res = await post("/NetworkDriver.CreateNetwork", createBody());
      expect(res.status).to.equal(503);
      expect(res.body.Err).to.equal("injected failure of ensureJump");
      expect(calls("deleteChain").map((a) => a[1])).to.deep.equal([
        "AZV-NAT-ADF4FA8E1772",
        "AZV-FWD-ADF4FA8E1772",
      ]);
      expect(plugin.host.sysctls.get("net/ipv4/ip_forward"), "forwarding stays on").to.equal("1");
      expect((await plugin.api().get("/status")).body.networks).to.deep.equal([]);
    });

    const refusals: [string, Record<string, unknown>, string][] = [
      [
        "an unknown -o",
        createBody({}, { colour: "blue" }),
        "unknown option -o colour — supported: mode=..., com.microsoft.azure.network.mode=..., mtu=..., com.docker.network.driver.mtu=..., vnet-ranges=..., imds=..., wireserver=..., public-ip=..., lb-backend-pool=...",
      ],
      [
        "an unknown mode",
        createBody({}, { mode: "overlay" }),
        "-o mode=overlay is not a mode — use transparent or bridge",
      ],
      [
        "a bad MTU",
        createBody({}, { mtu: "99999" }),
        "-o mtu=99999 is not a usable MTU — give a number from 576 to 9000",
      ],
      [
        "a bad range",
        createBody({}, { "vnet-ranges": "10.0.0.0/8,nope" }),
        '-o vnet-ranges: "nope" is not an IPv4 prefix — list the VNet, peered and on-premises ranges as network/length, separated by commas',
      ],
      [
        "--ipv6",
        createBody({ Options: { "com.docker.network.enable_ipv6": true } }),
        "the azure network driver does not support IPv6 yet — create the network without --ipv6",
      ],
      [
        "addresses from Docker's default IPAM",
        createBody({
          IPv4Data: [{ AddressSpace: "LocalDefault", Pool: "10.1.0.0/24", Gateway: "10.1.0.1/24" }],
        }),
        'the network\'s addresses come from address space "LocalDefault", not from the azure IPAM driver — create azure networks with --ipam-driver azure (azure:latest for the managed plugin): only its addresses are secondary IPs of the NIC',
      ],
      [
        "a gateway outside the pool",
        createBody({
          IPv4Data: [{ AddressSpace: "azure-local", Pool: "10.1.0.0/24", Gateway: "10.2.0.1/24" }],
        }),
        "gateway 10.2.0.1 is not in the network's pool 10.1.0.0/24 — create azure networks with --ipam-driver azure",
      ],
      [
        "another IPAM driver's gateway",
        createBody({
          IPv4Data: [{ AddressSpace: "azure-local", Pool: "172.18.0.0/16", Gateway: "172.18.0.1/16" }],
        }),
        "gateway 172.18.0.1 is not the gateway of a subnet of this VM's NICs — create azure networks with --ipam-driver azure",
      ],
      [
        "no IPv4 data",
        createBody({ IPv4Data: [] }),
        "the network has no IPv4 gateway from its IPAM driver — create azure networks with --ipam-driver azure",
      ],
      [
        "a non-hex id",
        createBody({ NetworkID: "../../etc" }),
        '"NetworkID" "../../etc" is not a Docker id (12 to 64 lower-case hex digits, or a swarm id of 25 lower-case letters and digits)',
      ],
      [
        "bridge mode with --internal",
        createBody({
          Options: { "com.docker.network.internal": true, "com.docker.network.generic": { mode: "bridge" } },
        }),
        "--internal networks need transparent mode — bridged containers reach the NIC at layer 2, past the host's firewall; drop -o mode=bridge",
      ],
    ];
    for (const [what, body, message] of refusals) {
      it(`refuses ${what} without touching the host`, async () => {
        const res = await post("/NetworkDriver.CreateNetwork", body);
        expect(res.status).to.equal(400);
        expect(res.body).to.deep.equal({ Err: message });
        expect(plugin.host.calls.filter((c) => c.name !== "listInterfaces")).to.deep.equal([]);
      });
    }

    it("refuses a network whose id shares the veth-name prefix of another", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200);
      const twin = "adf4f" + "9".repeat(59);
      const res = await post("/NetworkDriver.CreateNetwork", createBody({ NetworkID: twin }));
      expect(res.status).to.equal(409);
      expect(res.body.Err).to.equal(
        "network adf4f9999999 shares its interface prefix with network adf4fa8e1772 — remove this network and create it again (it will get another id)",
      );
    });

    it("refuses a NIC that is not an interface of this host, and a subnet without a primary IP", async () => {
      await plugin.setPool({
        interfaces: [
          {
            macAddress: "00:0d:3a:00:00:01",
            subnets: [{ prefix: "10.1.0.0/24", secondaryAddresses: ["10.1.0.5"] }],
          },
          {
            macAddress: "00:0d:3a:00:00:09",
            subnets: [{ prefix: "10.9.0.0/24", primaryAddress: "10.9.0.4" }],
          },
        ],
      });
      await plugin.service.refreshPool();
      const elsewhere = await post(
        "/NetworkDriver.CreateNetwork",
        createBody({
          IPv4Data: [{ AddressSpace: "azure-local", Pool: "10.9.0.0/24", Gateway: "10.9.0.1/24" }],
        }),
      );
      expect(elsewhere.body.Err).to.equal(
        "NIC 00:0d:3a:00:00:09 of subnet 10.9.0.0/24 is not an interface of this host — run the plugin in the VM's network namespace (host network for the managed plugin)",
      );
      const noPrimary = await post("/NetworkDriver.CreateNetwork", createBody());
      expect(noPrimary.body.Err).to.equal(
        "the pool source gives no primary IP for eth0 — check the pool source",
      );
    });

    it("refuses a second mode on the same NIC", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200);
      const res = await post(
        "/NetworkDriver.CreateNetwork",
        createBody({ NetworkID: NET2 }, { mode: "bridge" }),
      );
      expect(res.status).to.equal(409);
      expect(res.body.Err).to.equal(
        "eth0 already carries transparent network adf4fa8e1772 — a NIC serves one mode at a time; use -o mode=transparent or remove that network first",
      );
    });
  });

  describe("endpoints", () => {
    beforeEach(async () => {
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200);
      plugin.host.calls.length = 0;
    });
    /** CreateEndpoint as dockerd sends it, after RequestAddress reserved the address (when it could). */
    const endpoint = async (Interface: Record<string, string>, EndpointID = EP) => {
      const address = Interface.Address?.split("/")[0];
      if (address) await reserve(address).catch(() => undefined);
      return post("/NetworkDriver.CreateEndpoint", { NetworkID: NET, EndpointID, Interface, Options: {} });
    };

    it("CreateEndpoint fills in only the MAC Docker left empty, and records who holds the address", async () => {
      const res = await endpoint({ Address: "10.1.0.5/24", AddressIPv6: "", MacAddress: "" });
      expect(res.body).to.deep.equal({ Interface: { MacAddress: "0a:58:0a:01:00:05" } });
      const given = await endpoint({ Address: "10.1.0.6/24", MacAddress: "02:42:0a:01:00:06" }, EP2);
      expect(given.body, "never echoes what Docker gave").to.deep.equal({});
      expect((await stateOnDisk()).driver.endpoints[EP2]!.macAddress).to.equal("02:42:0a:01:00:06");
      expect((await stateOnDisk()).ipam.reservations["10.1.0.5"]!.endpointId).to.equal(EP);
      const pool = await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" });
      const conflict = await post("/IpamDriver.RequestAddress", {
        PoolID: pool.body.PoolID,
        Address: "10.1.0.5",
      });
      expect(conflict.body.Err).to.equal(
        `10.1.0.5 is already held by endpoint ${EP} — choose another address or omit --ip`,
      );
    });

    it("CreateEndpoint refuses addresses outside the subnet and endpoints without an address", async () => {
      const outside = await endpoint({ Address: "10.2.0.5/24" });
      expect(outside.body.Err).to.equal(
        "endpoint address 10.2.0.5 is not in the network's subnet 10.1.0.0/24 — create azure networks with --ipam-driver azure",
      );
      const none = await endpoint({ Address: "" });
      expect(none.body.Err).to.equal(
        "the endpoint has no IPv4 address — create azure networks with --ipam-driver azure",
      );
      const badLength = await endpoint({ Address: "10.1.0.5/99" });
      expect(badLength.body.Err).to.equal('"Interface.Address" "10.1.0.5/99" is not an address/length');
      const badMac = await endpoint({ Address: "10.1.0.5/24", MacAddress: "zz" });
      expect(badMac.body.Err).to.equal('"Interface.MacAddress" "zz" is not a MAC address');
      const unknownNet = await post("/NetworkDriver.CreateEndpoint", {
        NetworkID: NET2,
        EndpointID: EP,
        Interface: { Address: "10.1.0.5/24" },
      });
      expect(unknownNet.status).to.equal(500);
      expect(unknownNet.body.Err).to.equal(
        "network bb0011223344 is not known to the azure plugin — its record was lost; remove the network and create it again",
      );
    });

    it("Join creates the veth with proxy ARP and a host route, and answers interface, gateway and no extra routes", async () => {
      expect((await endpoint({ Address: "10.1.0.5/24" })).status).to.equal(200);
      const res = await post("/NetworkDriver.Join", {
        NetworkID: NET,
        EndpointID: EP,
        SandboxKey: "/var/run/docker/netns/x",
        Options: {},
      });
      expect(res.body).to.deep.equal({
        InterfaceName: { SrcName: "acadf4fe1e2e3e4", DstPrefix: "eth" },
        Gateway: "10.1.0.1",
        StaticRoutes: [],
        DisableGatewayService: false,
      });
      expect(calls("createVethPair")).to.deep.equal([
        ["azadf4fe1e2e3e4", "acadf4fe1e2e3e4", 1500, "0a:58:0a:01:00:05"],
      ]);
      expect(calls("writeSysctl")).to.deep.equal([
        ["net/ipv4/conf/azadf4fe1e2e3e4/proxy_arp", "1"],
        ["net/ipv4/neigh/azadf4fe1e2e3e4/proxy_delay", "0"],
        ["net/ipv4/conf/azadf4fe1e2e3e4/rp_filter", "1"],
      ]);
      expect(calls("replaceHostRoute")).to.deep.equal([["10.1.0.5", "azadf4fe1e2e3e4"]]);
      expect((await stateOnDisk()).driver.endpoints[EP]!.hostInterface).to.equal("azadf4fe1e2e3e4");
      const info = await post("/NetworkDriver.EndpointOperInfo", { NetworkID: NET, EndpointID: EP });
      expect(info.body).to.deep.equal({
        Value: {
          "azure.mode": "transparent",
          "azure.nic": "eth0",
          "azure.address": "10.1.0.5",
          "azure.hostInterface": "azadf4fe1e2e3e4",
        },
      });
    });

    it("Join removes the veth again when a later step fails", async () => {
      expect((await endpoint({ Address: "10.1.0.5/24" })).status).to.equal(200);
      plugin.host.failOn("replaceHostRoute");
      const res = await post("/NetworkDriver.Join", { NetworkID: NET, EndpointID: EP, SandboxKey: "x" });
      expect(res.status).to.equal(503);
      expect(plugin.host.links.has("azadf4fe1e2e3e4")).to.equal(false);
      expect((await stateOnDisk()).driver.endpoints[EP]!.hostInterface).to.equal(undefined);
    });

    it("Leave, DeleteEndpoint and DeleteNetwork remove what was made and can be repeated", async () => {
      expect((await endpoint({ Address: "10.1.0.5/24" })).status).to.equal(200);
      await post("/NetworkDriver.Join", { NetworkID: NET, EndpointID: EP, SandboxKey: "x" }).expect(200);
      for (let i = 0; i < 2; i++) {
        await post("/NetworkDriver.Leave", { NetworkID: NET, EndpointID: EP }).expect(200, {});
        expect(plugin.host.links.size).to.equal(0);
      }
      for (let i = 0; i < 2; i++)
        await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200, {});
      for (let i = 0; i < 2; i++)
        await post("/NetworkDriver.DeleteNetwork", { NetworkID: NET }).expect(200, {});
      // dockerd's own networks need forwarding too, and dockerd may have started after the plugin
      // read 0 at boot: the last network never turns it off.
      expect(plugin.host.sysctls.get("net/ipv4/ip_forward"), "left on after the last network").to.equal("1");
      expect(await stateOnDisk()).to.deep.include({
        driver: { networks: {}, endpoints: {}, unlinks: {} },
      });
    });

    it("answers the calls that have nothing to do", async () => {
      await post("/NetworkDriver.ProgramExternalConnectivity", {
        NetworkID: NET,
        EndpointID: EP,
        Options: {},
      }).expect(200, {});
      await post("/NetworkDriver.RevokeExternalConnectivity", { NetworkID: NET, EndpointID: EP }).expect(
        200,
        {},
      );
      await post("/NetworkDriver.AllocateNetwork", { NetworkID: NET }).expect(200, { Options: {} });
      await post("/NetworkDriver.FreeNetwork", { NetworkID: NET }).expect(200, {});
      await post("/NetworkDriver.DiscoverNew", { DiscoveryType: 1 }).expect(200, {});
      await post("/NetworkDriver.DiscoverDelete", { DiscoveryType: 1 }).expect(200, {});
    });
  });

  describe("bridge mode", () => {
    it("moves the NIC onto a bridge with MAC rewriting, and answers the host as gateway", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody({}, { mode: "bridge" })).expect(200);
      expect(calls("createBridge")).to.deep.equal([["azbr-eth0", "00:0d:3a:00:00:01", 1500]]);
      expect(calls("setLinkMaster")).to.deep.equal([["eth0", "azbr-eth0"]]);
      expect(calls("setBridgeChainRules")[0]).to.deep.equal([
        "AZV-BR-OUT-eth0",
        [
          [
            "-s",
            "!",
            "00:0d:3a:00:00:01",
            "-j",
            "snat",
            "--to-source",
            "00:0d:3a:00:00:01",
            "--snat-arp",
            "--snat-target",
            "ACCEPT",
          ],
        ],
      ]);
      await reserve("10.1.0.5");
      await post("/NetworkDriver.CreateEndpoint", {
        NetworkID: NET,
        EndpointID: EP,
        Interface: { Address: "10.1.0.5/24" },
      }).expect(200);
      const join = await post("/NetworkDriver.Join", { NetworkID: NET, EndpointID: EP, SandboxKey: "x" });
      expect(join.body.Gateway).to.equal("10.1.0.4");
      const rules = (chain: string) =>
        calls("setBridgeChainRules")
          .filter((args) => args[0] === chain)
          .at(-1);
      expect(rules("AZV-BR-IN-eth0")).to.deep.equal([
        "AZV-BR-IN-eth0",
        [
          [
            "-p",
            "IPv4",
            "--ip-dst",
            "10.1.0.5",
            "-j",
            "dnat",
            "--to-destination",
            "0a:58:0a:01:00:05",
            "--dnat-target",
            "ACCEPT",
          ],
          [
            "-p",
            "ARP",
            "--arp-ip-dst",
            "10.1.0.5",
            "-j",
            "dnat",
            "--to-destination",
            "0a:58:0a:01:00:05",
            "--dnat-target",
            "ACCEPT",
          ],
        ],
      ]);
    });
  });

  describe("where an endpoint's address comes from", () => {
    const createEndpoint = (EndpointID: string, address: string, NetworkID = NET) =>
      post("/NetworkDriver.CreateEndpoint", {
        NetworkID,
        EndpointID,
        Interface: { Address: `${address}/24` },
        Options: {},
      });
    const unchanged = async (attempt: () => Promise<unknown>) => {
      const before = await readFile(plugin.stateFile, "utf8");
      const host = plugin.host.snapshot();
      await attempt();
      expect(await readFile(plugin.stateFile, "utf8"), "state file").to.equal(before);
      expect(plugin.host.snapshot(), "host").to.equal(host);
    };
    beforeEach(async () => {
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200);
    });

    it("refuses the VM's primary IP and addresses the IPAM driver did not hand out, changing nothing", async () => {
      for (const address of ["10.1.0.4", "10.1.0.6"]) {
        await unchanged(async () => {
          const res = await createEndpoint(EP, address);
          expect(res.status, address).to.equal(400);
          expect(res.body.Err).to.equal(
            `endpoint address ${address} was not handed out by the azure IPAM driver — create azure networks with --ipam-driver azure, so that every address is a free secondary IP of the NIC`,
          );
        });
      }
    });

    it("refuses an address another endpoint holds, so no Join can steal its route", async () => {
      await reserve("10.1.0.5");
      await createEndpoint(EP, "10.1.0.5").expect(200);
      await createEndpoint(EP, "10.1.0.5").expect(200);
      await unchanged(async () => {
        const res = await createEndpoint(EP2, "10.1.0.5");
        expect(res.status).to.equal(409);
        expect(res.body.Err).to.equal(
          `endpoint address 10.1.0.5 is held by endpoint e1e2e3e4e5e6 — remove that container first, or let the IPAM driver choose an address`,
        );
      });
    });

    it("refuses an endpoint whose veth name another endpoint of the network has", async () => {
      await reserve("10.1.0.5");
      await reserve("10.1.0.6");
      await createEndpoint(EP, "10.1.0.5").expect(200);
      const twin = EP.slice(0, 8) + "9".repeat(56);
      await unchanged(async () => {
        const res = await createEndpoint(twin, "10.1.0.6");
        expect(res.status).to.equal(409);
        expect(res.body.Err).to.equal(
          "endpoint e1e2e3e49999 would get interface azadf4fe1e2e3e4, which endpoint e1e2e3e4e5e6 has — start the container again: it gets a new endpoint id",
        );
      });
    });
  });

  describe("a network on a NIC other than the primary: its containers leave through that NIC", () => {
    const onEth1 = (NetworkID: string, generic: Record<string, unknown> = {}) =>
      createBody(
        {
          NetworkID,
          IPv4Data: [
            { AddressSpace: "azure-local", Pool: "10.2.0.0/24", Gateway: "10.2.0.1/24", AuxAddresses: {} },
          ],
        },
        generic,
      );
    const joinOnEth1 = async (NetworkID: string, EndpointID: string, address: string) => {
      const pool = await post("/IpamDriver.RequestPool", { Pool: "10.2.0.0/24" });
      await post("/IpamDriver.RequestAddress", { PoolID: pool.body.PoolID, Address: address }).expect(200);
      await post("/NetworkDriver.CreateEndpoint", {
        NetworkID,
        EndpointID,
        Interface: { Address: `${address}/24` },
      }).expect(200);
      await post("/NetworkDriver.Join", { NetworkID, EndpointID, SandboxKey: "x" }).expect(200);
    };
    const TABLE = 30001;
    const HOST_ROUTES = { priority: 30000, table: 254, suppressPrefixLength: 31 };

    it("gives the NIC a routing table and each container address a rule, shared by the NIC's networks, all removed with the last", async () => {
      await post("/NetworkDriver.CreateNetwork", onEth1(NET)).expect(200);
      expect(calls("setTableRoutes")).to.deep.equal([
        [
          TABLE,
          [
            { dst: "10.2.0.0/24", device: "eth1" },
            { dst: "0.0.0.0/0", device: "eth1", gateway: "10.2.0.1" },
          ],
        ],
      ]);
      expect(calls("ensureRule")).to.deep.equal([[HOST_ROUTES]]);
      await post("/NetworkDriver.CreateNetwork", onEth1(NET2)).expect(200);
      await joinOnEth1(NET, EP, "10.2.0.5");
      expect(calls("ensureRule").at(-1)).to.deep.equal([{ priority: 30001, table: TABLE, from: "10.2.0.5" }]);
      const networks = (await plugin.api().get("/status")).body.networks as { routeTable?: number }[];
      expect(
        networks.map((n) => n.routeTable),
        "both networks of eth1 share its table",
      ).to.deep.equal([TABLE, TABLE]);

      await post("/NetworkDriver.Leave", { NetworkID: NET, EndpointID: EP }).expect(200);
      expect(calls("deleteRule")).to.deep.equal([[{ priority: 30001, table: TABLE, from: "10.2.0.5" }]]);
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200);
      await post("/NetworkDriver.DeleteNetwork", { NetworkID: NET }).expect(200);
      expect(calls("flushTable"), "eth1's other network still uses the table").to.deep.equal([]);
      await post("/NetworkDriver.DeleteNetwork", { NetworkID: NET2 }).expect(200);
      expect(calls("flushTable")).to.deep.equal([[TABLE]]);
      const { rules, tables } = JSON.parse(plugin.host.snapshot()) as { rules: unknown[]; tables: unknown[] };
      expect({ rules, tables }, "no rule or table left").to.deep.equal({ rules: [], tables: [] });
    });

    it("gives a network on the primary NIC no table and no rule", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200);
      await reserve("10.1.0.5");
      await post("/NetworkDriver.CreateEndpoint", {
        NetworkID: NET,
        EndpointID: EP,
        Interface: { Address: "10.1.0.5/24" },
      }).expect(200);
      await post("/NetworkDriver.Join", { NetworkID: NET, EndpointID: EP, SandboxKey: "x" }).expect(200);
      expect([...calls("setTableRoutes"), ...calls("ensureRule")]).to.deep.equal([]);
    });

    it("at start, puts back a missing rule of a live container and removes rules no record explains", async () => {
      await post("/NetworkDriver.CreateNetwork", onEth1(NET)).expect(200);
      await joinOnEth1(NET, EP, "10.2.0.5");
      await plugin.host.deleteRule({ priority: 30001, table: TABLE, from: "10.2.0.5" });
      await plugin.host.ensureRule({ priority: 30001, table: 30002, from: "10.2.0.9" });
      await plugin.restart();
      const { rules } = JSON.parse(plugin.host.snapshot()) as { rules: string[] };
      expect(rules.map((r) => JSON.parse(r) as unknown[])).to.deep.equal([
        [30000, 254, null, 31],
        [30001, TABLE, "10.2.0.5", null],
      ]);
      expect(calls("flushTable")).to.deep.include([30002]);
    });

    it("at start, gives a network that an earlier release made on eth1 (no table in its record) its table and rules", async () => {
      await post("/NetworkDriver.CreateNetwork", onEth1(NET)).expect(200);
      await joinOnEth1(NET, EP, "10.2.0.5");
      await plugin.restart(undefined, async () => {
        const onDisk = JSON.parse(await readFile(plugin.stateFile, "utf8")) as {
          driver: { networks: Record<string, { routeTable?: number }> };
        };
        delete onDisk.driver.networks[NET]!.routeTable;
        await writeFile(plugin.stateFile, JSON.stringify(onDisk));
        await plugin.host.deleteRule({ priority: 30001, table: TABLE, from: "10.2.0.5" });
        await plugin.host.deleteRule(HOST_ROUTES);
        await plugin.host.flushTable(TABLE);
      });
      const { rules, tables } = JSON.parse(plugin.host.snapshot()) as { rules: string[]; tables: unknown[] };
      expect(rules.map((r) => JSON.parse(r) as unknown[])).to.deep.equal([
        [30000, 254, null, 31],
        [30001, TABLE, "10.2.0.5", null],
      ]);
      expect(tables, "eth1's table is back").to.have.length(1);
      const networks = (await plugin.api().get("/status")).body.networks as { routeTable?: number }[];
      expect(networks.map((n) => n.routeTable)).to.deep.equal([TABLE]);
      expect(JSON.parse(await readFile(plugin.stateFile, "utf8")).driver.networks[NET].routeTable).to.equal(
        TABLE,
      );
      await post("/NetworkDriver.Leave", { NetworkID: NET, EndpointID: EP }).expect(200);
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200);
      await post("/NetworkDriver.DeleteNetwork", { NetworkID: NET }).expect(200);
      const after = JSON.parse(plugin.host.snapshot()) as { rules: unknown[]; tables: unknown[] };
      expect({ rules: after.rules, tables: after.tables }, "no rule or table left").to.deep.equal({
        rules: [],
        tables: [],
      });
    });

    it("in bridge mode, at start, removes a container's /32 route to the bridge that no record explains (a crash mid-Join)", async () => {
      await post("/NetworkDriver.CreateNetwork", onEth1(NET, { mode: "bridge" })).expect(200);
      await joinOnEth1(NET, EP, "10.2.0.5");
      expect(plugin.host.hostRoutes("azbr-eth1")).to.deep.equal(["10.2.0.5"]);
      await plugin.restart(undefined, () => plugin.host.replaceHostRoute("10.2.0.9", "azbr-eth1"));
      expect(plugin.host.hostRoutes("azbr-eth1"), "the live container's route stays").to.deep.equal([
        "10.2.0.5",
      ]);
      expect(plugin.logs.filter((l) => l.includes("verified")).join("\n")).to.include(
        "route 10.2.0.9/32 dev azbr-eth1",
      );
    });
  });

  describe("swarm networks (ids of 25 characters of base 36)", () => {
    const SWARM_NET = "3x7kq9m2w8p1r5t0v6y4z2a1b";

    it("serves a swarm network in transparent mode: its veths and chains are named from its id", async () => {
      await post("/NetworkDriver.CreateNetwork", createBody({ NetworkID: SWARM_NET })).expect(200);
      expect(calls("setChainRules")[0]![1]).to.equal("AZV-FWD-3X7KQ9M2W8P1");
      await reserve("10.1.0.5");
      await post("/NetworkDriver.CreateEndpoint", {
        NetworkID: SWARM_NET,
        EndpointID: EP,
        Interface: { Address: "10.1.0.5/24" },
      }).expect(200);
      const join = await post("/NetworkDriver.Join", {
        NetworkID: SWARM_NET,
        EndpointID: EP,
        SandboxKey: "x",
      });
      expect(join.status).to.equal(200);
      expect(join.body.InterfaceName.SrcName).to.equal(`ac3x7kq${EP.slice(0, 8)}`);
      await post("/NetworkDriver.Leave", { NetworkID: SWARM_NET, EndpointID: EP }).expect(200);
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: SWARM_NET, EndpointID: EP }).expect(200);
      await post("/NetworkDriver.DeleteNetwork", { NetworkID: SWARM_NET }).expect(200);
      const { links, chains } = JSON.parse(plugin.host.snapshot()) as { links: unknown[]; chains: unknown[] };
      expect({ links, chains }).to.deep.equal({ links: [], chains: [] });
    });

    it("refuses bridge mode for a swarm network, without touching the host", async () => {
      const res = await post(
        "/NetworkDriver.CreateNetwork",
        createBody({ NetworkID: SWARM_NET }, { mode: "bridge" }),
      );
      expect(res.status).to.equal(400);
      expect(res.body.Err).to.equal(
        "swarm networks need transparent mode — drop -o mode=bridge from the --config-only network the swarm network takes its options from",
      );
      expect(plugin.host.calls).to.deep.equal([]);
    });

    it("tells a swarm network with Docker's own addresses to take its IPAM from --config-from", async () => {
      const ipv4 = [
        { AddressSpace: "LocalDefault", Pool: "10.0.1.0/24", Gateway: "10.0.1.1/24", AuxAddresses: {} },
      ];
      const res = await post(
        "/NetworkDriver.CreateNetwork",
        createBody({ NetworkID: SWARM_NET, IPv4Data: ipv4 }),
      );
      expect(res.body.Err).to.equal(
        'the network\'s addresses come from address space "LocalDefault", not from the azure IPAM driver — create the swarm network with --config-from a --config-only network made on every VM with --ipam-driver azure:latest (docs/swarm.md)',
      );
    });

    it("answers AllocateNetwork and FreeNetwork, which a swarm manager may send, with nothing to allocate", async () => {
      const allocate = await post("/NetworkDriver.AllocateNetwork", { NetworkID: SWARM_NET, Options: {} });
      expect(allocate.body).to.deep.equal({ Options: {} });
      await post("/NetworkDriver.FreeNetwork", { NetworkID: SWARM_NET }).expect(200, {});
    });
  });

  describe("two NICs in one subnet", () => {
    const sharedSubnet = {
      interfaces: [ETH0_MAC, ETH1_MAC].map((macAddress, i) => ({
        macAddress,
        subnets: [
          {
            prefix: "10.1.0.0/24",
            primaryAddress: `10.1.0.${4 + 10 * i}`,
            secondaryAddresses: [`10.1.0.${5 + 10 * i}`, `10.1.0.${6 + 10 * i}`],
          },
        ],
      })),
    };
    const poolOn = async (nic: string) =>
      (
        await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24", Options: { interface: nic } }).expect(
          200,
        )
      ).body.PoolID as string;
    beforeEach(async () => {
      await plugin.setPool(sharedSubnet);
      await plugin.restart();
    });

    it("builds each network on the NIC its pool is on, and keeps addresses on their NIC", async () => {
      const refused = await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" });
      expect(refused.body.Err).to.equal(
        "--subnet 10.1.0.0/24 is on 2 NICs: eth0, eth1 — pick one with --ipam-opt interface=eth0 (or mac=...)",
      );
      const eth1Pool = await poolOn("eth1");
      await post("/NetworkDriver.CreateNetwork", createBody()).expect(200);
      await poolOn("eth0");
      await post("/NetworkDriver.CreateNetwork", createBody({ NetworkID: NET2 })).expect(200);
      const networks = (await plugin.api().get("/status")).body.networks as {
        id: string;
        interfaceName: string;
      }[];
      expect(networks.map((n) => [n.id, n.interfaceName])).to.deep.equal([
        [NET, "eth1"],
        [NET2, "eth0"],
      ]);
      await post("/IpamDriver.RequestAddress", { PoolID: eth1Pool, Address: "10.1.0.15" }).expect(200);
      const res = await post("/NetworkDriver.CreateEndpoint", {
        NetworkID: NET2,
        EndpointID: EP,
        Interface: { Address: "10.1.0.15/24" },
      });
      expect(res.status).to.equal(409);
      expect(res.body.Err).to.equal(
        `endpoint address 10.1.0.15 is a secondary IP of NIC ${ETH1_MAC}, but network bb0011223344 is on eth0 — create the network with --ipam-opt interface=eth0`,
      );
    });

    it("refuses a network whose pool does not say which NIC it is for", async () => {
      const res = await post("/NetworkDriver.CreateNetwork", createBody());
      expect(res.status).to.equal(409);
      expect(res.body.Err).to.equal(
        "subnet 10.1.0.0/24 is on NICs eth0, eth1, and the network's pool does not say which one it is for — create it with --ipam-driver azure --ipam-opt interface=NAME, one network at a time",
      );
    });
  });
});
