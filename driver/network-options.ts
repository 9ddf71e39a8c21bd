/**
 * Parsing and checking CreateNetwork and the ids of the other calls, once at the edge: `-o` options,
 * `--internal`, `--ipv6`, and the IPAM data the network is built from.
 */
import { parseIp, parsePrefix, prefixContains, type IpAddress } from "../lib/ip.js";
import { ANY_IPV4_POOL, LOCAL_ADDRESS_SPACE } from "../lib/ipam-wire.js";
import { InvalidParameterError } from "../lib/errors.js";
import { stringField, type RequestBody } from "../lib/request-fields.js";
import { BACKEND_POOL_OPTION, parseAzureLinks, PUBLIC_IP_OPTION } from "./azure-link-options.js";
import type { AzureLinkRequest, NetworkMode } from "./driver-state.js";
import { ENABLE_IPV6_OPTION, GENERIC_OPTIONS, INTERNAL_OPTION } from "./types.js";

/** Reached with the container's own address unless `-o vnet-ranges=` says otherwise: the private ranges. */
export const DEFAULT_VNET_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

const MODE_OPTIONS = ["mode", "com.microsoft.azure.network.mode"];
const MTU_OPTIONS = ["mtu", "com.docker.network.driver.mtu"];
const VNET_RANGES_OPTION = "vnet-ranges";
const IMDS_OPTION = "imds";
const WIRESERVER_OPTION = "wireserver";
const MODES: NetworkMode[] = ["transparent", "bridge"];

export type CreateNetworkRequest = {
  networkId: string;
  mode: NetworkMode;
  mtu: number | undefined;
  vnetRanges: string[];
  internal: boolean;
  /** Whether containers may reach the Instance Metadata Service (and so the VM's identity tokens). */
  imdsAccess: boolean;
  /** Whether containers may reach the wireserver's agent ports, not only Azure DNS on 53. */
  wireserverAccess: boolean;
  /** The subnet gateway the IPAM driver chose; it identifies the NIC subnet. */
  gateway: IpAddress;
  /** The pool the IPAM driver answered (the NIC's subnet, or 0.0.0.0/0 without --subnet). */
  pool: string;
  azureLinks: AzureLinkRequest | undefined;
};

/**
 * Docker's ids: 64 hex digits (we accept 12 or more), or, for a swarm network, swarmkit's 25 characters
 * of base 36. Anything else is refused.
 */
export function dockerId(body: RequestBody, name: "NetworkID" | "EndpointID"): string {
  const id = stringField(body, name, true);
  if (!/^[0-9a-f]{12,64}$/.test(id) && !isSwarmId(id)) {
    throw new InvalidParameterError(
      `"${name}" ${JSON.stringify(id.slice(0, 70))} is not a Docker id (12 to 64 lower-case hex digits, or a swarm id of 25 lower-case letters and digits)`,
    );
  }
  return id;
}

/** Whether `id` is a swarm object's id (swarmkit's identity.NewID: 25 characters of base 36). */
export function isSwarmId(id: string): boolean {
  return /^[0-9a-z]{25}$/.test(id);
}

export function parseCreateNetwork(body: RequestBody): CreateNetworkRequest {
  const networkId = dockerId(body, "NetworkID");
  const options = objectField(body, "Options");
  if (options[ENABLE_IPV6_OPTION] === true) {
    throw new InvalidParameterError("the azure network driver does not support IPv6 yet", {
      hint: "create the network without --ipv6",
    });
  }
  const generic = options[GENERIC_OPTIONS] === undefined ? {} : objectField(options, GENERIC_OPTIONS);
  let mode: NetworkMode = "transparent";
  let mtu: number | undefined;
  let vnetRanges = DEFAULT_VNET_RANGES;
  let imdsAccess = false;
  let wireserverAccess = false;
  const links: Record<string, string> = {};
  for (const [key, raw] of Object.entries(generic)) {
    const value = typeof raw === "string" ? raw : String(raw);
    if (key === PUBLIC_IP_OPTION || key === BACKEND_POOL_OPTION) links[key] = value;
    else if (MODE_OPTIONS.includes(key)) {
      if (!MODES.includes(value as NetworkMode)) {
        throw new InvalidParameterError(`-o ${key}=${value} is not a mode`, {
          hint: `use ${MODES.join(" or ")}`,
        });
      }
      mode = value as NetworkMode;
    } else if (MTU_OPTIONS.includes(key)) {
      mtu = Number(value);
      if (!/^\d+$/.test(value) || mtu < 576 || mtu > 9000) {
        throw new InvalidParameterError(`-o ${key}=${value} is not a usable MTU`, {
          hint: "give a number from 576 to 9000",
        });
      }
    } else if (key === VNET_RANGES_OPTION) {
      vnetRanges = parseRanges(value);
    } else if (key === IMDS_OPTION) {
      imdsAccess = allowOrDeny(
        key,
        value,
        "containers reach the Instance Metadata Service (and the VM's identity tokens) only with -o imds=allow",
      );
    } else if (key === WIRESERVER_OPTION) {
      wireserverAccess = allowOrDeny(
        key,
        value,
        "containers reach 168.63.129.16 only for DNS (port 53) unless -o wireserver=allow opens the VM's agent channel to them",
      );
    } else {
      throw new InvalidParameterError(`unknown option -o ${key}`, {
        hint: `supported: ${[...MODE_OPTIONS, ...MTU_OPTIONS, VNET_RANGES_OPTION, IMDS_OPTION, WIRESERVER_OPTION, PUBLIC_IP_OPTION, BACKEND_POOL_OPTION].map((k) => `${k}=...`).join(", ")}`,
      });
    }
  }
  const internal = options[INTERNAL_OPTION] === true;
  if (mode === "bridge" && isSwarmId(networkId)) {
    // Swarm creates the network on a VM when its first task arrives and deletes it after the last:
    // in bridge mode each of those would move the NIC's addresses and routes to a bridge and back.
    throw new InvalidParameterError("swarm networks need transparent mode", {
      hint: "drop -o mode=bridge from the --config-only network the swarm network takes its options from",
    });
  }
  const azureLinks = parseAzureLinks(links, "-o", undefined);
  if (azureLinks?.publicIp !== undefined && azureLinks.publicIp !== "create") {
    throw new InvalidParameterError(
      `-o ${PUBLIC_IP_OPTION}=${azureLinks.publicIp}: one public IP cannot serve a whole network`,
      {
        hint: `use -o ${PUBLIC_IP_OPTION}=true for a new one per container, or name it per container with --driver-opt ${PUBLIC_IP_OPTION}=<name>`,
      },
    );
  }
  if (azureLinks && internal) {
    throw new InvalidParameterError("--internal networks cannot have public IPs or load balancers", {
      hint: `drop -o ${PUBLIC_IP_OPTION} and -o ${BACKEND_POOL_OPTION}, or --internal`,
    });
  }
  const { gateway, pool } = ipv4Data(body, isSwarmId(networkId));
  return {
    networkId,
    mode,
    mtu,
    vnetRanges,
    internal,
    imdsAccess,
    wireserverAccess,
    gateway,
    pool,
    azureLinks,
  };
}

function parseRanges(value: string): string[] {
  const ranges = value
    .split(",")
    .map((text) => text.trim())
    .filter((text) => text !== "");
  return ranges.map((text) => {
    const prefix = parsePrefix(text);
    if (!prefix || prefix.family !== 4) {
      throw new InvalidParameterError(`-o vnet-ranges: ${JSON.stringify(text)} is not an IPv4 prefix`, {
        hint: "list the VNet, peered and on-premises ranges as network/length, separated by commas",
      });
    }
    return prefix.text;
  });
}

/** The IPv4 pool dockerd got from the network's IPAM driver, which must be this plugin's. */
function ipv4Data(body: RequestBody, swarm: boolean): { gateway: IpAddress; pool: string } {
  const data = body.IPv4Data;
  const first: unknown = Array.isArray(data) ? data[0] : undefined;
  const fields = typeof first === "object" && first !== null ? (first as RequestBody) : {};
  const gatewayText = fields.Gateway;
  const gateway = typeof gatewayText === "string" ? parseIp(gatewayText.split("/")[0]!) : undefined;
  if (!gateway) {
    throw new InvalidParameterError("the network has no IPv4 gateway from its IPAM driver", {
      hint: "create azure networks with --ipam-driver azure",
    });
  }
  if (fields.AddressSpace !== LOCAL_ADDRESS_SPACE) {
    throw new InvalidParameterError(
      `the network's addresses come from address space ${JSON.stringify(fields.AddressSpace ?? "")}, not from the azure IPAM driver`,
      {
        // Swarm drops --ipam-driver from a swarm network: its IPAM comes only from --config-from.
        hint: swarm
          ? "create the swarm network with --config-from a --config-only network made on every VM with --ipam-driver azure:latest (docs/swarm.md)"
          : "create azure networks with --ipam-driver azure (azure:latest for the managed plugin): only its addresses are secondary IPs of the NIC",
      },
    );
  }
  const pool = typeof fields.Pool === "string" ? fields.Pool : "";
  const prefix = parsePrefix(pool);
  if (pool !== ANY_IPV4_POOL && !(prefix && prefixContains(prefix, gateway))) {
    throw new InvalidParameterError(`gateway ${gateway.text} is not in the network's pool ${pool}`, {
      hint: "create azure networks with --ipam-driver azure",
    });
  }
  return { gateway, pool };
}

/** An object-valued field of a request; absent and null read as empty. */
export function objectField(body: RequestBody, name: string): RequestBody {
  const value = body[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value))
    throw new InvalidParameterError(`"${name}" must be an object`);
  return value as RequestBody;
}

/** A shield option's value: true for allow, false for deny, an error naming the option otherwise. */
function allowOrDeny(key: string, value: string, hint: string): boolean {
  if (value !== "allow" && value !== "deny") {
    throw new InvalidParameterError(`-o ${key}=${value} is not allow or deny`, { hint });
  }
  return value === "allow";
}
