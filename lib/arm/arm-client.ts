/**
 * Azure Resource Manager access: the two @azure/arm-network operation groups the plugin uses, signed in
 * with the VM's managed identity, and the translation of ARM's failures into plugin errors that say what
 * to do (the permission the identity lacks, when throttling ends, why an operation failed).
 */
import { readFile } from "node:fs/promises";
import type { Agent } from "node:https";
import type {
  NetworkInterfacesOperations,
  NetworkManagementClientOptionalParams,
  PublicIPAddressesOperations,
} from "@azure/arm-network";
import type { NetworkManagementContext } from "@azure/arm-network/api";
import { InvalidParameterError, PluginError, RetryLaterError, UnavailableError } from "../errors.js";

/** The token audience of Azure Resource Manager (public cloud). */
export const ARM_SCOPE = "https://management.azure.com/.default";
/** Where @azure/identity looks for IMDS when told to look elsewhere than 169.254.169.254. */
const IMDS_HOST_VARIABLE = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
const DEFAULT_IMDS = "http://169.254.169.254";
/**
 * The SDK sleeps for whatever Retry-After a 429 names before retrying. Up to this long that is right;
 * beyond it the plugin gives up at once and backs off itself, so no request waits on a sleeping client.
 */
const LONGEST_THROTTLING_SLEEP_S = 10;

/** Where and as whom the plugin talks to Azure Resource Manager. */
export type ArmClientOptions = {
  /** ARM base URL, `https://management.azure.com` outside tests and sovereign clouds. */
  endpoint: string;
  /** Extra CA certificates (PEM) to trust for ARM, e.g. a TLS-inspecting proxy's or a test CA. */
  caFile: string | undefined;
  /** Client id of a user-assigned identity; the system-assigned identity when undefined. */
  identityClientId: string | undefined;
  /** The IMDS the pool is read from; managed-identity tokens come from the same place. */
  imdsUrl: string;
};

/** The parts of @azure/arm-network's NetworkManagementClient the plugin calls. */
export type NetworkClient = {
  networkInterfaces: NetworkInterfacesOperations;
  publicIPAddresses: PublicIPAddressesOperations;
};

/**
 * Where the two operation groups sit in @azure/arm-network (39, pinned exactly), relative to its ESM
 * entry point dist/esm/index.js. The package exports only ".", "./api" and "./models", so these are
 * loaded by their place; the image build loads them once, so a layout change fails the build.
 */
export const ARM_NETWORK_OPERATION_MODULES = {
  networkInterfaces: "./classic/networkInterfaces/index.js",
  publicIPAddresses: "./classic/publicIPAddresses/index.js",
} as const;

/** Builds the two operation groups for `subscriptionId`, loading the SDK on this first call. */
export async function createNetworkClient(
  subscriptionId: string,
  options: ArmClientOptions,
): Promise<NetworkClient> {
  // Read by @azure/identity at the first token request, once per process (a trailing slash would
  // double the path's).
  const imds = options.imdsUrl.replace(/\/+$/, "");
  if (imds !== DEFAULT_IMDS) process.env[IMDS_HOST_VARIABLE] ??= imds;
  // Loaded on first use, and only the two operation groups the plugin calls: the SDK with the identity
  // library adds about 23 MiB to the plugin's resident memory, which a plugin that never talks to Azure
  // Resource Manager should not pay, and NetworkManagementClient, which builds all 170 operation
  // groups, 9 MiB more (docs/benchmarks.md, ARM section). createNetworkManagement (the package's public
  // "./api") makes the context every operation group runs on, as NetworkManagementClient's constructor
  // does: the identity, the endpoint, ARM's scope and the SDK's user agent.
  const entry = import.meta.resolve("@azure/arm-network");
  const [
    { createNetworkManagement },
    { ManagedIdentityCredential },
    { _getNetworkInterfacesOperations },
    { _getPublicIPAddressesOperations },
  ] = await Promise.all([
    import("@azure/arm-network/api"),
    import("@azure/identity"),
    import(new URL(ARM_NETWORK_OPERATION_MODULES.networkInterfaces, entry).href) as Promise<{
      _getNetworkInterfacesOperations: (context: NetworkManagementContext) => NetworkInterfacesOperations;
    }>,
    import(new URL(ARM_NETWORK_OPERATION_MODULES.publicIPAddresses, entry).href) as Promise<{
      _getPublicIPAddressesOperations: (context: NetworkManagementContext) => PublicIPAddressesOperations;
    }>,
  ]);
  const credential = options.identityClientId
    ? new ManagedIdentityCredential({ clientId: options.identityClientId })
    : new ManagedIdentityCredential();
  // node:https and node:tls are loaded here, not on import: the plugin imports this module at start,
  // and TLS costs about 2 MiB of its resident memory on Node 24 (docs/benchmarks.md) that a plugin
  // without ARM features never needs.
  const agent = options.caFile ? await extraCaAgent(options.caFile) : undefined;
  const context = createNetworkManagement(credential, subscriptionId, {
    endpoint: options.endpoint,
    credentials: { scopes: [ARM_SCOPE] },
    userAgentOptions: { userAgentPrefix: "azure-vnet" },
    additionalPolicies: [{ position: "perRetry", policy: armPolicy(agent) }],
  });
  return {
    networkInterfaces: _getNetworkInterfacesOperations(context),
    publicIPAddresses: _getPublicIPAddressesOperations(context),
  };
}

type PipelinePolicy = NonNullable<
  NetworkManagementClientOptionalParams["additionalPolicies"]
>[number]["policy"];

/** Sends through the extra CA's agent, and fails a long throttling at once instead of sleeping. */
async function extraCaAgent(caFile: string): Promise<Agent> {
  const [{ default: https }, { rootCertificates }] = await Promise.all([
    import("node:https"),
    import("node:tls"),
  ]);
  return new https.Agent({ keepAlive: true, ca: [...rootCertificates, await readFile(caFile, "utf8")] });
}

function armPolicy(agent: Agent | undefined): PipelinePolicy {
  return {
    name: "azure-vnet-arm",
    sendRequest: async (request, next) => {
      if (agent) request.agent = agent;
      const response = await next(request);
      const retryAfter = Number(response.headers.get("retry-after"));
      if (response.status === 429 && retryAfter > LONGEST_THROTTLING_SLEEP_S) {
        throw Object.assign(new Error(`throttled for ${retryAfter} s`), {
          name: "ThrottledError",
          statusCode: 429,
          response,
        });
      }
      return response;
    },
  };
}

/** What ARM's SDK throws for an HTTP error answer (core-rest-pipeline's RestError, not exported here). */
type RestErrorLike = Error & {
  statusCode?: number;
  code?: string;
  response?: { headers: { get(name: string): string | undefined } };
};

/**
 * Turns a failure of `action` (e.g. "add 4 IP configurations to eth0") into a PluginError whose hint
 * names the fix. Plugin errors pass through unchanged.
 */
export function armFailure(action: string, error: unknown): PluginError {
  if (error instanceof PluginError) return error;
  const failure = error as RestErrorLike;
  const detail = failure.message?.split("\n")[0] ?? String(error);
  for (const explain of ARM_FAILURES) {
    const explained = explain(action, failure, detail);
    if (explained) return explained;
  }
  return new UnavailableError(`cannot ${action}: ${detail}`, {
    hint: "check that Azure Resource Manager is reachable from the VM",
    cause: error,
  });
}

/** One kind of ARM failure: the plugin error that explains it, or undefined when it is another kind. */
type ArmFailureKind = (action: string, failure: RestErrorLike, detail: string) => PluginError | undefined;

/** The kinds of ARM failure with a fix of their own, tried in order. */
const ARM_FAILURES: ArmFailureKind[] = [
  function noIdentity(action, failure, detail) {
    if (failure.name !== "CredentialUnavailableError" && failure.name !== "AuthenticationError") return;
    return new UnavailableError(`cannot ${action}: no managed identity token: ${detail}`, {
      hint: "assign a managed identity to the VM (or set --identity-client-id for a user-assigned one)",
      cause: failure,
    });
  },
  function forbidden(action, failure, detail) {
    if (failure.statusCode !== 403) return;
    const missing = /does not have (?:authorization|permission) to perform action '([^']+)'/.exec(
      detail,
    )?.[1];
    const lacking = missing ? `: the VM's identity lacks ${missing}` : "";
    return new UnavailableError(`cannot ${action}: Azure refused (${failure.code ?? "403"})${lacking}`, {
      hint: `grant the VM's managed identity ${missing ?? "the missing permission"} (the Network Contributor role on the NIC's resource group and subnet has it)`,
      cause: failure,
    });
  },
  function throttled(action, failure) {
    if (failure.statusCode !== 429) return;
    const seconds = Number(failure.response?.headers.get("retry-after") ?? "");
    const wait = Number.isFinite(seconds) && seconds > 0 ? seconds : 60;
    return new RetryLaterError(
      `cannot ${action}: Azure Resource Manager is throttling this VM's requests (retry after ${wait} s)`,
      wait * 1000,
    );
  },
  function changedMeanwhile(action, failure) {
    if (failure.statusCode !== 412) return;
    return new UnavailableError(
      `cannot ${action}: the NIC kept changing in Azure while the plugin changed it`,
      {
        hint: "the plugin tries again later; if this repeats, find what else keeps changing the NIC",
        cause: failure,
      },
    );
  },
  function rejected(action, failure, detail) {
    if (failure.statusCode !== 400 && failure.statusCode !== 409) return;
    return new InvalidParameterError(
      `cannot ${action}: Azure rejected the change (${failure.code}): ${detail}`,
      {
        hint: "fix the named resource or option",
        cause: failure,
      },
    );
  },
  function operationFailed(action, failure, detail) {
    if (!/long-running operation has failed/i.test(detail)) return;
    return new UnavailableError(`cannot ${action}: the Azure operation failed: ${detail}`, {
      hint: "the NIC is unchanged; see the activity log of the NIC in Azure",
      cause: failure,
    });
  },
];
