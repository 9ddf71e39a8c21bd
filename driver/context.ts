/**
 * What the work behind each NetworkDriver call (network.ts, endpoint.ts, join-leave.ts) is done with:
 * the driver's records, the IPAM driver's address book, the host, and the data path of each mode. The
 * NetworkDriver class builds it once; the calls that change anything run one at a time in its queue.
 */
import type { Inventory } from "../ipam-driver/inventory.js";
import type { HostNetwork } from "../lib/host-net/host-network.js";
import type { Logger } from "../lib/logger.js";
import type { StateSection } from "../lib/state-section.js";
import type { AddressBook } from "./address-book.js";
import type { AzureLinker } from "./azure-links.js";
import type { DataPath } from "./data-path.js";
import type { DriverState, NetworkMode } from "./driver-state.js";

export type DriverContext = {
  /** The network driver's own records. */
  readonly state: StateSection<DriverState>;
  /** The IPAM driver's pools and reservations, as far as networks and endpoints need them. */
  readonly addresses: AddressBook;
  readonly host: HostNetwork;
  readonly logger: Logger;
  /** The NIC inventory the IPAM driver keeps current. */
  readonly inventory: () => Inventory | undefined;
  readonly dataPath: (mode: NetworkMode) => DataPath;
  /** Does the Azure side of endpoints in the background; absent when Azure links are not available. */
  readonly linker: AzureLinker | undefined;
  readonly now: () => Date;
};
