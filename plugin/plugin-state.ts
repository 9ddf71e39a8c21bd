/**
 * The plugin's state document: one file, one section per driver. Versioned so that a future layout can
 * be migrated instead of misread.
 */
import { emptyIpamState, validateIpamState, type IpamState } from "../ipam-driver/ipam-state.js";
import type { StateCodec } from "./state-file.js";

export const STATE_VERSION = 1;

export type PluginState = { version: typeof STATE_VERSION; ipam: IpamState };

export const pluginStateCodec: StateCodec<PluginState> = {
  empty: () => ({ version: STATE_VERSION, ipam: emptyIpamState() }),
  validate(document) {
    if (typeof document !== "object" || document === null) throw new Error("it is not a JSON object");
    const { version, ipam } = document as Partial<PluginState>;
    if (version !== STATE_VERSION)
      throw new Error(`version ${JSON.stringify(version)} is not ${STATE_VERSION}`);
    return { version, ipam: validateIpamState(ipam) };
  },
};
