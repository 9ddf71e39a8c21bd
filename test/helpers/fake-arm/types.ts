/**
 * The ARM stand-in's public face: the constants, options and handle that tests import through
 * test/helpers/fake-arm.ts.
 */

/** The only bearer token the stand-in accepts; the IMDS stand-in hands out the same one. */
export const FAKE_MI_TOKEN = "fake-managed-identity-token";

/** The api-version the SDK sends; written into the operation URLs the stand-in hands out. */
export const FAKE_ARM_API_VERSION = "2026-01-01";

export type FakeArmIpConfig = {
  name: string;
  privateIp: string;
  primary: boolean;
  /** Azure keeps a Dynamic address for the configuration's lifetime; default Dynamic. */
  allocation?: "Static" | "Dynamic";
  /** Full resource id of an associated public IP address. */
  publicIpId?: string;
  /** Full resource ids of load balancer backend pools this configuration is a member of. */
  backendPoolIds: string[];
};

export type FakeArmNic = {
  name: string;
  vmName: string;
  /** Colon form, e.g. 00:0d:3a:1b:c7:21 (what the host sees); ARM shows it as 00-0D-3A-1B-C7-21. */
  mac: string;
  /**
   * Name of the subnet all its ipConfigurations are in: `subnet` of the options (the default) or one
   * of `subnets`. The stand-in models one subnet per NIC.
   */
  subnet?: string;
  ipConfigurations: FakeArmIpConfig[];
};

/** A subnet of the VNet. */
export type FakeArmSubnet = { name: string; vnetName: string; prefix: string };

export type FakeArmOptions = {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  /** The subnet of every NIC that names none. */
  subnet: FakeArmSubnet;
  /**
   * More subnets, for NICs in other subnets, e.g. a VM's second NIC. Names differ from each other and
   * from `subnet`'s; prefixes do not overlap.
   */
  subnets?: FakeArmSubnet[];
  nics: FakeArmNic[];
  loadBalancers?: { name: string; backendPools: string[] }[];
  /** First public address handed out; following ones count up. e.g. "198.51.100.200" */
  firstPublicIp: string;
  tls: { certPem: string; keyPem: string };
  listen: { host: string; port: number } | { socketPath: string };
  /** Base URL clients reach the stand-in at; required with `socketPath`, default https://127.0.0.1:<port>. */
  publicUrl?: string;
  /** InProgress answers before an operation reports its final status; default 1. */
  operationPolls?: number;
  /** Retry-After seconds sent with every LRO answer; default 1. */
  retryAfterSeconds?: number;
  /** Awaited when a NIC change takes effect (before the operation reports Succeeded), so a test can make the emulated network follow ARM. */
  onNicChange?: (nic: FakeArmNic) => Promise<void>;
  /** Awaited when a public IP's association changes (created/associated/dissociated/deleted). */
  onPublicIpChange?: (change: { publicIp: string; privateIp: string | undefined }) => Promise<void>;
};

export type FakeArmFault =
  | {
      kind: "status";
      status: 403 | 429 | 500 | 400 | 409 | 412;
      code: string;
      message: string;
      retryAfterSeconds?: number;
    }
  /** The PUT/DELETE is accepted, the async operation ends "Failed", nothing changes. */
  | { kind: "operation-failed"; code: string; message: string };

export type FakeArmPublicIp = {
  name: string;
  id: string;
  ipAddress: string;
  /** Id of the ipConfiguration the address is associated with, if any. */
  ipConfigurationId?: string;
  tags: Record<string, string>;
};

export type FakeArm = {
  url: string;
  /** Every request received, in order; `path` without the query. */
  requests: {
    method: string;
    path: string;
    authorization: string | undefined;
    ifMatch: string | undefined;
  }[];
  /**
   * The next `count` requests whose method matches and whose path contains `pathIncludes` get `fault`.
   * A "status" fault answers instead of ARM; an "operation-failed" fault goes to the next matching
   * PUT/DELETE that ARM accepts (an invalid one is still refused with its 400).
   */
  injectFault(match: { method: string; pathIncludes: string }, fault: FakeArmFault, count?: number): void;
  /** Deep copy of the NIC's committed state. */
  nic(name: string): FakeArmNic;
  /** Replaces (or adds) a NIC's committed state, without callbacks; throws if it names an unknown subnet. */
  setNic(nic: FakeArmNic): void;
  publicIps(): FakeArmPublicIp[];
  /** ipConfiguration ids in the pool, from the committed NICs. */
  backendPoolMembers(lbName: string, poolName: string): string[];
  close(): Promise<void>;
};
