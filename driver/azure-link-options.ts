/**
 * Parsing the options that link containers to Azure: a public IP (`public-ip=`) and load-balancer
 * backend pools (`lb-backend-pool=`), given per network with `-o` and per endpoint with `--driver-opt`.
 */
import { InvalidParameterError } from "../lib/errors.js";
import type { RequestBody } from "../lib/request-fields.js";
import type { AzureLinkRequest } from "./driver-state.js";

export const PUBLIC_IP_OPTION = "public-ip";
export const BACKEND_POOL_OPTION = "lb-backend-pool";
const BACKEND_POOL_ID =
  /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Network\/loadBalancers\/[^/]+\/backendAddressPools\/[^/]+$/i;
const PUBLIC_IP_ID =
  /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Network\/publicIPAddresses\/[^/]+$/i;
const PUBLIC_IP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/**
 * The Azure links an endpoint asks for with `--driver-opt`, over its network's `-o` defaults. Docker's
 * own endpoint options (`com.docker.*`) are passed over; other unknown keys are refused.
 */
export function parseEndpointLinks(
  options: RequestBody,
  network: AzureLinkRequest | undefined,
): AzureLinkRequest | undefined {
  const links: Record<string, string> = {};
  for (const [key, value] of Object.entries(options)) {
    if (key.startsWith("com.docker.")) continue;
    if ((key !== PUBLIC_IP_OPTION && key !== BACKEND_POOL_OPTION) || typeof value !== "string") {
      throw new InvalidParameterError(`unknown --driver-opt ${key}`, {
        hint: `supported: ${PUBLIC_IP_OPTION}=true|<public IP name or id>|false, ${BACKEND_POOL_OPTION}=<backend pool id>`,
      });
    }
    links[key] = value;
  }
  return parseAzureLinks(links, "--driver-opt", network);
}

/**
 * The Azure links `options` (`-o` of a network, `--driver-opt` of an endpoint, named by `flag`) ask for,
 * over `defaults`; undefined when they ask for none.
 */
export function parseAzureLinks(
  options: Record<string, string>,
  flag: string,
  defaults: AzureLinkRequest | undefined,
): AzureLinkRequest | undefined {
  let publicIp = defaults?.publicIp;
  let backendPools = defaults?.backendPools ?? [];
  const publicIpText = options[PUBLIC_IP_OPTION]?.trim();
  if (publicIpText !== undefined) {
    if (["true", "yes", "create"].includes(publicIpText)) publicIp = "create";
    else if (["false", "no", "none", ""].includes(publicIpText)) publicIp = undefined;
    else if (PUBLIC_IP_ID.test(publicIpText) || PUBLIC_IP_NAME.test(publicIpText)) publicIp = publicIpText;
    else {
      throw new InvalidParameterError(
        `${flag} ${PUBLIC_IP_OPTION}=${publicIpText} is not true, false, or a public IP`,
        {
          hint: "give true (a new public IP per container), false, or the name or resource id of an existing public IP",
        },
      );
    }
  }
  const poolsText = options[BACKEND_POOL_OPTION];
  if (poolsText !== undefined) {
    backendPools = poolsText
      .split(",")
      .map((id) => id.trim())
      .filter((id) => id !== "");
    for (const id of backendPools) {
      if (!BACKEND_POOL_ID.test(id)) {
        throw new InvalidParameterError(
          `${flag} ${BACKEND_POOL_OPTION}: ${JSON.stringify(id)} is not a backend pool id`,
          {
            hint: "give /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/loadBalancers/<lb>/backendAddressPools/<pool>",
          },
        );
      }
    }
  }
  return publicIp || backendPools.length > 0 ? { publicIp, backendPools } : undefined;
}
