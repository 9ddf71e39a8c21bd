/**
 * The operator's view of a running plugin: the `status` subcommand (tables and JSON), changing the log
 * level at run time with `log-level`, and the Prometheus metrics.
 */
import { expect } from "chai";
import { join } from "node:path";
import { cli, rawPost, startPlugin, type PluginUnderTest } from "../helpers/plugin-under-test.js";

describe("operator view", function () {
  this.timeout(20_000);
  let plugin: PluginUnderTest;
  beforeEach(async () => {
    plugin = await startPlugin({ config: { metricsAddress: "127.0.0.1:0" } });
    const pool = await rawPost(
      plugin.socketPath,
      "/IpamDriver.RequestPool",
      JSON.stringify({ Pool: "10.1.0.0/24" }),
    );
    const PoolID = (pool.json as { PoolID: string }).PoolID;
    await rawPost(
      plugin.socketPath,
      "/IpamDriver.RequestAddress",
      JSON.stringify({ PoolID, Address: "10.1.0.6" }),
    );
    await rawPost(
      plugin.socketPath,
      "/IpamDriver.RequestAddress",
      JSON.stringify({ PoolID, Address: "10.1.0.99" }),
    );
  });
  afterEach(async () => {
    await plugin.stop();
  });
  const base = () => ["--socket", plugin.socketPath, "--docker-socket", join(plugin.dir, "no-docker.sock")];

  it("status prints the pool per NIC subnet, networks and endpoints as tables", async () => {
    const out = await cli(["status", ...base()]);
    expect(out.code, out.stderr).to.equal(0);
    const lines = out.stdout.split("\n");
    expect(lines[0]).to.match(
      /^NIC\s+SUBNET\s+PRIMARY\s+GATEWAY\s+SECONDARY IPS\s+FREE\s+IN USE\s+GONE BUT HELD$/,
    );
    expect(lines).to.include.members([
      "eth1  10.2.0.0/24  10.2.0.4  10.2.0.1  2              2     -         -",
      "eth0  10.1.0.0/24  10.1.0.4  10.1.0.1  4              3     10.1.0.6  -",
    ]);
    expect(out.stdout).to.contain("pool source file (");
    expect(out.stdout).to.match(/state: .*state\.json/);
  });

  it("status --json gives the same as data", async () => {
    const out = await cli(["status", "--json", ...base()]);
    const status = JSON.parse(out.stdout) as {
      pool: { nic: string; inUse: string[] }[];
      source: { name: string };
    };
    expect(status.pool.find((p) => p.nic === "eth0")!.inUse).to.deep.equal(["10.1.0.6"]);
    expect(status.source.name).to.equal("file");
  });

  it("status says clearly when the plugin is not running", async () => {
    const out = await cli(["status", "--socket", join(plugin.dir, "nothing.sock")]);
    expect(out.code).to.equal(1);
    expect(out.stderr).to.match(/^azure-vnet status: connect ENOENT .*nothing\.sock\n$/);
  });

  it("log-level changes the level of the running plugin", async () => {
    await rawPost(plugin.socketPath, "/IpamDriver.GetCapabilities", "");
    expect(plugin.logs.filter((l) => l.includes('"call":"IpamDriver.GetCapabilities"'))).to.have.length(1);
    const out = await cli(["log-level", "warn", ...base()]);
    expect(out.stdout).to.equal("log level is now warn\n");
    await rawPost(plugin.socketPath, "/IpamDriver.GetCapabilities", "");
    expect(
      plugin.logs.filter((l) => l.includes('"call":"IpamDriver.GetCapabilities"')),
      "info lines are off",
    ).to.have.length(1);
    const bad = await cli(["log-level", "loud", ...base()]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.equal(
      'azure-vnet log-level: log level "loud" is not one of debug, info, warn, error\n',
    );
  });

  it("serves Prometheus metrics: pool per subnet, requests, latency and errors", async () => {
    const text = await (await fetch(plugin.service.metricsUrl!)).text();
    expect(text).to.contain('azure_vnet_pool_addresses{nic="eth0",subnet="10.1.0.0/24",state="free"} 3');
    expect(text).to.contain('azure_vnet_pool_addresses{nic="eth0",subnet="10.1.0.0/24",state="in_use"} 1');
    expect(text).to.contain('azure_vnet_pool_size{nic="eth0",subnet="10.1.0.0/24"} 4');
    expect(text).to.contain('azure_vnet_requests_total{call="IpamDriver.RequestAddress",outcome="ok"} 1');
    expect(text).to.contain('azure_vnet_requests_total{call="IpamDriver.RequestAddress",outcome="error"} 1');
    expect(text).to.contain('azure_vnet_errors_total{code="ERR_INVALID_PARAMETER"} 1');
    expect(text).to.match(/azure_vnet_request_duration_seconds_count\{call="IpamDriver.RequestPool"\} 1/);
  });
});
