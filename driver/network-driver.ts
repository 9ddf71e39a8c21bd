/**
 * The NetworkDriver API. This release serves the calls dockerd makes while probing a plugin; the data
 * path (CreateNetwork … Leave) arrives with the network driver issue and answers a clear error until then.
 */
import { InternalError } from "../plugin/errors.js";

export type NetworkCapabilities = { Scope: "local"; ConnectivityScope: "local" };

export class NetworkDriver {
  getCapabilities(): NetworkCapabilities {
    return { Scope: "local", ConnectivityScope: "local" };
  }

  notYetImplemented(call: string): never {
    throw new InternalError(`${call} is not implemented in this build of azure-vnet`, {
      hint: "use --ipam-driver azure with Docker's macvlan driver until the azure network driver ships",
    });
  }
}
