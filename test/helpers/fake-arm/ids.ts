/**
 * The resource ids and operation URLs the stand-in writes, all derived from the subscription,
 * resource group, location and the base URL clients reach it at.
 */
import { FAKE_ARM_API_VERSION, type FakeArmOptions, type FakeArmSubnet } from "./types.js";

export class ArmIds {
  readonly subscription: string;
  readonly resourceGroup: string;
  /** `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network` */
  readonly network: string;
  /** The subnet of every NIC that names none (`subnet` of the options). */
  readonly subnet: string;
  /** Base URL clients reach the stand-in at, without a trailing slash; known once it listens. */
  publicUrl: string | undefined;

  constructor(private readonly options: FakeArmOptions) {
    this.subscription = options.subscriptionId;
    this.resourceGroup = options.resourceGroup;
    this.network = `/subscriptions/${this.subscription}/resourceGroups/${this.resourceGroup}/providers/Microsoft.Network`;
    this.subnet = this.subnetId(options.subnet);
    this.publicUrl = options.publicUrl?.replace(/\/+$/, "");
  }

  subnetId(subnet: FakeArmSubnet): string {
    return `${this.network}/virtualNetworks/${subnet.vnetName}/subnets/${subnet.name}`;
  }

  nic(name: string): string {
    return `${this.network}/networkInterfaces/${name}`;
  }

  ipConfig(nic: string, config: string): string {
    return `${this.nic(nic)}/ipConfigurations/${config}`;
  }

  publicIp(name: string): string {
    return `${this.network}/publicIPAddresses/${name}`;
  }

  pool(lb: string, pool: string): string {
    return `${this.network}/loadBalancers/${lb}/backendAddressPools/${pool}`;
  }

  virtualMachine(name: string): string {
    return `/subscriptions/${this.subscription}/resourceGroups/${this.resourceGroup}/providers/Microsoft.Compute/virtualMachines/${name}`;
  }

  /** Where a client polls an operation's status (the Azure-AsyncOperation header). */
  operationUrl(id: string): string {
    return this.locationUrl("operations", id);
  }

  /** Where a client polls an operation's result (the Location header). */
  operationResultUrl(id: string): string {
    return this.locationUrl("operationResults", id);
  }

  private locationUrl(kind: "operations" | "operationResults", id: string): string {
    return `${this.publicUrl}/subscriptions/${this.subscription}/providers/Microsoft.Network/locations/${this.options.location}/${kind}/${id}?api-version=${FAKE_ARM_API_VERSION}`;
  }
}
