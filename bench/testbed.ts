// Starts the e2e harness's emulated Azure VM (VNet, Azure stand-in, plugin, private dockerd) for a
// benchmark, with the plugin at its production log level, and makes sure Ctrl-C still tears it down.
import { startAzureTestbed, type PluginProcess, type TestbedOptions } from "../test/helpers/azure-vm.js";
import type { Dockerd } from "../test/helpers/dockerd.js";
import type { FakeArm } from "../test/helpers/fake-arm.js";
import type { Vnet, VmSpec } from "../test/helpers/vnet.js";
import { nodePid } from "./process-stats.js";

/** The plugin logs at its production level, not the harness's debug, so logging costs what it would. */
const PLUGIN_ARGS = ["--log-level", "info"];

export type BenchTestbed = {
  vnet: Vnet;
  plugin: PluginProcess;
  dockerd: Dockerd;
  /** The ARM stand-in, when asked for. */
  arm: FakeArm | undefined;
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
 * vm1 runs the plugin and dockerd (with busybox:local): the e2e suite's own `startAzureTestbed`, with
 * `options` (the ARM stand-in, more plugin flags) passed on.
 */
export async function startBenchTestbed(
  name: string,
  vms: VmSpec[],
  options: Pick<TestbedOptions, "arm" | "pluginArgs"> = {},
): Promise<BenchTestbed> {
  const testbed = await startAzureTestbed(vms, `bench-${name}`, {
    ...options,
    pluginArgs: [...PLUGIN_ARGS, ...(options.pluginArgs ?? [])],
  });
  const teardown = () => testbed.teardown();
  running.add(teardown);
  try {
    return {
      vnet: testbed.vnet,
      plugin: testbed.plugin,
      dockerd: testbed.dockerd,
      arm: testbed.arm,
      pluginPid: nodePid(testbed.plugin.child.pid!),
      async teardown() {
        running.delete(teardown);
        await teardown();
      },
    };
  } catch (error) {
    running.delete(teardown);
    await teardown();
    throw error;
  }
}
