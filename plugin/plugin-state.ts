/**
 * The plugin's state document: one file, one section per driver. Versioned so that a future layout can
 * be migrated instead of misread.
 */
import { emptyDriverState, validateDriverState, type DriverState } from "../driver/driver-state.js";
import { emptyIpamState, validateIpamState, type IpamState } from "../ipam-driver/ipam-state.js";
import type { StateCodec } from "../lib/state-file.js";

export const STATE_VERSION = 1;

export type PluginState = {
  version: typeof STATE_VERSION;
  /** The kernel boot the host changes in this document were made in. */
  bootId?: string;
  ipam: IpamState;
  driver: DriverState;
};

export const pluginStateCodec: StateCodec<PluginState> = {
  empty: () => ({ version: STATE_VERSION, ipam: emptyIpamState(), driver: emptyDriverState() }),
  validate(document) {
    if (typeof document !== "object" || document === null) throw new Error("it is not a JSON object");
    const { version, bootId, ipam, driver } = document as Partial<PluginState>;
    if (version !== STATE_VERSION)
      throw new Error(`version ${JSON.stringify(version)} is not ${STATE_VERSION}`);
    if (bootId !== undefined && typeof bootId !== "string") throw new Error(`"bootId" is not a string`);
    return { version, bootId, ipam: validateIpamState(ipam), driver: validateDriverState(driver) };
  },
};
