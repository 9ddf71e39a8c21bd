/**
 * The resource store: the committed network interfaces, public IP addresses and load balancer backend
 * pools, and what can be read off them (associations, pool members, which NIC is a VM's primary).
 * Changes still waiting for their operation live in operations.ts, not here.
 */
import { randomUUID } from "node:crypto";
import { resourceNotFound } from "./errors.js";
import type { ArmIds } from "./ids.js";
import { formatIpv4, requireIpv4 } from "./ipv4.js";
import type { FakeArmNic, FakeArmOptions } from "./types.js";

export type NicRecord = { nic: FakeArmNic; etag: string; resourceGuid: string };
export type PublicIpRecord = {
  name: string;
  ipAddress: string;
  tags: Record<string, string>;
  etag: string;
  resourceGuid: string;
};

export function newEtag(): string {
  return `W/"${randomUUID()}"`;
}

export class ArmStore {
  /** By lower-case name: ARM names are case-insensitive. */
  readonly nics = new Map<string, NicRecord>();
  /** By lower-case name. */
  readonly publicIps = new Map<string, PublicIpRecord>();
  /** Canonical pool ids by lower-case id: ARM ids are case-insensitive. */
  readonly pools = new Map<string, string>();
  private readonly firstPublicIp: bigint;
  /** Public addresses are never reused, like Azure's (which are random anyway). */
  private publicIpsHandedOut = 0;

  constructor(
    options: FakeArmOptions,
    private readonly ids: ArmIds,
  ) {
    for (const nic of options.nics) {
      this.nics.set(nic.name.toLowerCase(), {
        nic: structuredClone(nic),
        etag: newEtag(),
        resourceGuid: randomUUID(),
      });
    }
    for (const lb of options.loadBalancers ?? []) {
      for (const pool of lb.backendPools)
        this.pools.set(ids.pool(lb.name, pool).toLowerCase(), ids.pool(lb.name, pool));
    }
    this.firstPublicIp = requireIpv4(options.firstPublicIp, "firstPublicIp");
  }

  /** The NIC's record; ARM's 404 when there is none. */
  nicRecord(name: string): NicRecord {
    const record = this.nics.get(name.toLowerCase());
    if (!record) throw resourceNotFound("networkInterfaces", name, this.ids.resourceGroup);
    return record;
  }

  /** Replaces (or adds) a NIC's committed state with a fresh etag, keeping its resourceGuid. */
  replaceNic(nic: FakeArmNic, etag = newEtag()): void {
    const existing = this.nics.get(nic.name.toLowerCase());
    this.nics.set(nic.name.toLowerCase(), {
      nic: structuredClone(nic),
      etag,
      resourceGuid: existing?.resourceGuid ?? randomUUID(),
    });
  }

  /** The address the next created public IP gets. */
  nextPublicAddress(): string {
    return formatIpv4(this.firstPublicIp + BigInt(this.publicIpsHandedOut++));
  }

  /** Committed associations only: public address -> private address. */
  committedAssociations(): Map<string, string> {
    const byId = new Map<string, string>();
    for (const { nic } of this.nics.values()) {
      for (const config of nic.ipConfigurations) {
        if (config.publicIpId) byId.set(config.publicIpId.toLowerCase(), config.privateIp);
      }
    }
    const result = new Map<string, string>();
    for (const record of this.publicIps.values()) {
      const privateIp = byId.get(this.ids.publicIp(record.name).toLowerCase());
      if (privateIp) result.set(record.ipAddress, privateIp);
    }
    return result;
  }

  /** Id of the committed ipConfiguration the public IP is associated with, if any. */
  committedIpConfigurationOf(publicIpName: string): string | undefined {
    const id = this.ids.publicIp(publicIpName).toLowerCase();
    for (const { nic } of this.nics.values()) {
      const config = nic.ipConfigurations.find((c) => c.publicIpId?.toLowerCase() === id);
      if (config) return this.ids.ipConfig(nic.name, config.name);
    }
    return undefined;
  }

  /** A VM's first NIC is its primary one (Azure's flag; the model has no better source). */
  isPrimaryNic(nic: FakeArmNic): boolean {
    for (const { nic: other } of this.nics.values())
      if (other.vmName === nic.vmName) return other.name === nic.name;
    return true;
  }

  /** ipConfiguration ids in the pool, from the committed NICs. */
  poolMembers(canonicalPoolId: string): string[] {
    const key = canonicalPoolId.toLowerCase();
    const members: string[] = [];
    for (const { nic } of this.nics.values()) {
      for (const config of nic.ipConfigurations) {
        if (config.backendPoolIds.some((ref) => ref.toLowerCase() === key)) {
          members.push(this.ids.ipConfig(nic.name, config.name));
        }
      }
    }
    return members;
  }
}
