/**
 * Crash safety and concurrency under a real dockerd: 64 containers started at once get 64 distinct
 * addresses; then at least 500 container start/stop cycles run while the plugin is killed with
 * kill -9 at random moments. At the end no address was ever held by two running containers, none is
 * leaked (the pool is full again), no veth, route or rule is left over, and the containers that ran
 * throughout are still reachable. Root only; takes a few minutes.
 */
import { expect } from "chai";
import { writeFile } from "node:fs/promises";
import { startAzureTestbed, type AzureTestbed } from "../helpers/azure-vm.js";
import { expectSameHost, snapshotHost } from "../helpers/host-snapshot.js";
import { pollUntil } from "../helpers/run.js";

const SECONDARIES = Array.from({ length: 70 }, (_, i) => `10.1.0.${5 + i}`);
const VM2_IP = "10.1.0.200";
const CYCLES = 500;
const WORKERS = 4;
/** Must outlast dockerd's retries against a restarting plugin (up to ~15 s per call). */
const RECONCILE_GRACE_S = 40;

type Lease = { address: string; start: number; end: number };

describe("e2e: concurrency and a kill -9 soak", function () {
  this.timeout(1_200_000);
  let testbed: AzureTestbed | undefined;
  const bed = () => testbed!;
  const docker = (...args: string[]) => bed().dockerd.docker(args);
  const dockerOk = async (...args: string[]) => (await bed().dockerd.dockerOk(args)).stdout.trim();
  const settledEmpty = () =>
    pollUntil(
      "the plugin to hold nothing",
      async () => {
        const status = await bed().plugin.status();
        return status.pool[0]!.inUse.length === 0 && status.endpoints.length === 0;
      },
      { timeoutMs: (RECONCILE_GRACE_S + 60) * 1000, intervalMs: 500 },
    );

  before(async () => {
    testbed = await startAzureTestbed(
      [
        { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: SECONDARIES },
        { name: "vm2", mac: "00:0d:3a:00:00:02", primary: VM2_IP },
      ],
      "soak",
      { pluginArgs: ["--reconcile-interval", "2", "--reconcile-grace", String(RECONCILE_GRACE_S)] },
    );
    await testbed.dockerd.createAzureNetwork("vnet", "--subnet", "10.1.0.0/24");
  });

  after(async () => {
    await testbed?.teardown();
  });

  it("64 containers started in parallel all succeed with distinct addresses", async () => {
    const names = Array.from({ length: 64 }, (_, i) => `p${i}`);
    const runs = await Promise.all(
      names.map((name) =>
        docker("run", "-d", "--name", name, "--network", "vnet", "busybox:local", "sleep", "600"),
      ),
    );
    expect(runs.filter((r) => r.code !== 0).map((r) => r.stderr)).to.deep.equal([]);
    const addresses = await Promise.all(
      names.map((name) => dockerOk("inspect", "-f", "{{.NetworkSettings.Networks.vnet.IPAddress}}", name)),
    );
    expect(new Set(addresses).size).to.equal(64);
    expect(SECONDARIES).to.include.members(addresses);
    expect((await bed().plugin.status()).pool[0]!.inUse).to.have.length(64);
    await dockerOk("rm", "-f", ...names);
    await settledEmpty();
  });

  it(`${CYCLES} start/stop cycles with the plugin killed at random: no double assignment, no leak, no leftovers`, async () => {
    const pristine = await snapshotHost(bed().vnet, "vm1");
    await dockerOk("run", "-d", "--name", "steady1", "--network", "vnet", "busybox:local", "sleep", "3600");
    await dockerOk("run", "-d", "--name", "steady2", "--network", "vnet", "busybox:local", "sleep", "3600");
    const steady = await Promise.all(
      ["steady1", "steady2"].map((n) =>
        dockerOk("inspect", "-f", "{{.NetworkSettings.Networks.vnet.IPAddress}}", n),
      ),
    );

    const leases: Lease[] = [];
    let started = 0;
    let failed = 0;
    let kills = 0;
    let done = false;
    const worker = async () => {
      while (started < CYCLES) {
        started += 1;
        const start = Date.now();
        // The container reports its own address while it holds it.
        const run = await docker(
          "run",
          "--rm",
          "--network",
          "vnet",
          "busybox:local",
          "sh",
          "-c",
          "ip -o -4 addr show eth0",
        );
        const address = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(run.stdout)?.[1];
        if (run.code === 0 && address) leases.push({ address, start, end: Date.now() });
        else failed += 1;
      }
    };
    const chaos = async () => {
      while (!done) {
        await new Promise((resolve) => setTimeout(resolve, 1000 + Math.random() * 3000));
        if (done) break;
        await bed().restartPlugin("SIGKILL");
        kills += 1;
      }
    };
    const chaosDone = chaos();
    await Promise.all(Array.from({ length: WORKERS }, worker));
    done = true;
    await chaosDone;

    // No address in the hands of two running containers at once (the two steady ones included).
    const all = [
      ...leases,
      ...steady.map((address) => ({ address, start: 0, end: Number.MAX_SAFE_INTEGER })),
    ];
    const overlaps = all.flatMap((a, i) =>
      all
        .slice(i + 1)
        .filter((b) => a.address === b.address && a.start < b.end && b.start < a.end)
        .map(() => a.address),
    );
    expect(overlaps, "addresses held twice").to.deep.equal([]);
    expect(leases.length, "most cycles succeed despite the kills").to.be.greaterThan(CYCLES * 0.8);

    for (const name of ["steady1", "steady2"]) {
      expect(
        (await docker("exec", name, "ping", "-c", "1", "-W", "2", VM2_IP)).code,
        `${name} still reachable`,
      ).to.equal(0);
    }
    await dockerOk("rm", "-f", "steady1", "steady2");
    await settledEmpty();
    const status = await bed().plugin.status();
    expect(status.pool[0]!.free, "the pool is full again").to.have.length(SECONDARIES.length);
    const links = (await bed().vnet.execOk("vm1", ["ip", "-o", "link", "show"])).stdout;
    expect(links.match(/\ba[zc][0-9a-f]{13}\b/g) ?? [], "no orphan veths").to.deep.equal([]);
    expectSameHost(await snapshotHost(bed().vnet, "vm1"), pristine, "vm1 after the soak");

    const summary = {
      cycles: started,
      succeeded: leases.length,
      failed,
      kills,
      addresses: new Set(leases.map((l) => l.address)).size,
    };
    console.log(`      soak: ${JSON.stringify(summary)}`);
    if (process.env.SOAK_REPORT) await writeFile(process.env.SOAK_REPORT, JSON.stringify(summary) + "\n");
  });
});
