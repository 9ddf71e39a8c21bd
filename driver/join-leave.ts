/**
 * Join and Leave: Join wires a recorded endpoint on the host through its network's data path and
 * returns the interface Docker moves into the container, with its gateway; Leave undoes the wiring.
 */
import type { DriverContext } from "./context.js";
import { knownEndpoint, knownNetwork } from "./records.js";
import type { JoinResponse } from "./types.js";

/** Creates the endpoint's veth and host side; recorded before answering, undone if recording fails. */
export async function join(ctx: DriverContext, networkId: string, endpointId: string): Promise<JoinResponse> {
  const network = knownNetwork(ctx.state.current, networkId);
  const endpoint = knownEndpoint(ctx.state.current, endpointId);
  const dataPath = ctx.dataPath(network.mode);
  const state = ctx.state.current;
  const { hostEnd, containerEnd } = await dataPath.setupEndpoint(ctx.host, network, endpoint, state);
  try {
    await ctx.state.update((draft) => {
      draft.endpoints[endpointId]!.hostInterface = hostEnd;
    });
  } catch (error) {
    await dataPath.teardownEndpoint(ctx.host, network, endpoint, state).catch(() => undefined);
    throw error;
  }
  return {
    InterfaceName: { SrcName: containerEnd, DstPrefix: "eth" },
    Gateway: dataPath.gateway(network),
    StaticRoutes: [],
    DisableGatewayService: false,
  };
}

/** Removes what Join made; an unknown network or endpoint is fine. */
export async function leave(ctx: DriverContext, networkId: string, endpointId: string): Promise<void> {
  const state = ctx.state.current;
  const network = state.networks[networkId];
  const endpoint = state.endpoints[endpointId];
  if (!network || !endpoint) return;
  await ctx.dataPath(network.mode).teardownEndpoint(ctx.host, network, endpoint, state);
  await ctx.state.update((draft) => {
    draft.endpoints[endpointId]!.hostInterface = undefined;
  });
}
