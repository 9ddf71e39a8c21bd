// Starts the e2e harness's emulated Azure VM (VNet, Azure stand-in, plugin, private dockerd) for a
// benchmark, also with a subnet other than /24, and makes sure Ctrl-C still tears everything down.
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  startAzureEndpoints,
  startAzureTestbed,
  startPluginInVm,
  type PluginProcess,
} from "../test/helpers/azure-vm.js";
import { startDockerd, type Dockerd } from "../test/helpers/dockerd.js";
import { createVnet, type Vnet, type VmSpec } from "../test/helpers/vnet.js";
import { nodePid } from "./process-stats.js";

/** The plugin logs at its production level, not the harness's debug, so logging costs what it would. */
const PLUGIN_ARGS = ["--log-level", "info"];

export type BenchTestbed = {
  vnet: Vnet;
  plugin: PluginProcess;
  dockerd: Dockerd;
  /** The plugin's node process. */
  pluginPid: number;
  teardown(): Promise<void>;
};

const running = new Set<() => Promise<void>>();

/** Tears down every testbed still running (for SIGINT/SIGTERM), then exits. */
export function teardownOnSignals(): void {
  const stop = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: tearing down the benchmark testbed…\n`);
    void Promise.allSettled([...running].map((teardown) => teardown())).then(() => process.exit(130));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/**
 * vm1 runs the plugin and dockerd (with busybox:local). Without `subnet` this is exactly the e2e
 * suite's `startAzureTestbed`; that one has no subnet option, so with a subnet the same steps are
 * composed here from the harness's own parts.
 */
export async function startBenchTestbed(
  name: string,
  vms: VmSpec[],
  options: { subnet?: string } = {},
): Promise<BenchTestbed> {
  let vnet: Vnet;
  let plugin: PluginProcess;
  let dockerd: Dockerd;
  let teardown: () => Promise<void>;
  if (options.subnet === undefined) {
    const testbed = await startAzureTestbed(vms, `bench-${name}`, { pluginArgs: PLUGIN_ARGS });
    ({ vnet, plugin, dockerd } = testbed);
    teardown = () => testbed.teardown();
  } else {
    const dir = await mkdtemp(join(tmpdir(), `azure-vnet-bench-${name}-`));
    let built: Vnet | undefined;
    teardown = async () => {
      await built?.teardown();
      await rm(dir, { recursive: true, force: true });
    };
    try {
      built = await createVnet({ vms, subnet: options.subnet });
      vnet = built;
      await startAzureEndpoints(vnet, "vm1", dir);
      const dockerSocketLink = join(dir, "docker.sock");
      plugin = await startPluginInVm(vnet, "vm1", dir, ["--docker-socket", dockerSocketLink, ...PLUGIN_ARGS]);
      dockerd = await startDockerd(vnet, "vm1", { pluginsDir: join(dir, "plugins") });
      await symlink(dockerd.socketPath, dockerSocketLink);
      await dockerd.importBusybox();
    } catch (error) {
      await teardown();
      throw error;
    }
  }
  running.add(teardown);
  return {
    vnet,
    plugin,
    dockerd,
    pluginPid: nodePid(plugin.child.pid!),
    async teardown() {
      running.delete(teardown);
      await teardown();
    },
  };
}
