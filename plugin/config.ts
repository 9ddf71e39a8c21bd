/**
 * The plugin's configuration: command-line flags, each with an environment variable (the managed
 * plugin can only set environment), parsed once into a checked PluginConfig. One table of option
 * definitions drives the parsing, `--help` and the documentation's option table.
 */
import { parseArgs } from "node:util";
import { InvalidParameterError } from "../lib/errors.js";
import { LOG_LEVELS, type LogLevel } from "../lib/logger.js";

/** Where the pool of addresses can come from (`--pool-source`). */
export const POOL_SOURCES = ["imds", "wireserver", "file"] as const;
/**
 * A container start that waits for pool growth must still answer inside dockerd's 30 s wait for a
 * legacy plugin, with room for the allocation itself.
 */
export const MAX_POOL_GROW_WAIT_SECONDS = 25;
/** One of POOL_SOURCES. */
export type PoolSourceName = (typeof POOL_SOURCES)[number];

/** The checked configuration the service runs with; durations in milliseconds. */
export type PluginConfig = {
  socketPath: string;
  stateDir: string;
  poolSource: PoolSourceName;
  poolFile: string | undefined;
  imdsUrl: string;
  wireserverUrl: string;
  refreshIntervalMs: number;
  sourceTimeoutMs: number;
  logLevel: LogLevel;
  /** Undefined when the operator withholds the Docker API: reconciliation is then off. */
  dockerSocket: string | undefined;
  reconcileIntervalMs: number;
  reconcileGraceMs: number;
  /** `host:port` for Prometheus metrics, or undefined for none. */
  metricsAddress: string | undefined;
  armEndpoint: string;
  armCaFile: string | undefined;
  identityClientId: string | undefined;
  /** Pool growth through Azure: 0 turns it off. */
  poolMinFree: number;
  poolGrowStep: number;
  poolGrowWaitMs: number;
  poolMaxFree: number;
  poolShrinkAfterMs: number;
  maxIpConfigurations: number;
};

/**
 * What an option's value may be, and so how its text is read. `text` and `path` take the text as it
 * is (`emptyIsUnset`: an empty value means "not set"); an `absolute` path is checked once every option
 * has been read. `seconds` become milliseconds in PluginConfig.
 */
export type OptionValues =
  | { type: "text"; emptyIsUnset?: true }
  | { type: "path"; absolute: boolean; emptyIsUnset?: true }
  | { type: "choice"; choices: readonly string[] }
  | { type: "url"; httpsOnly?: { why: string } }
  | { type: "host-port" }
  | { type: "seconds"; zeroAllowed: boolean; max: number; why?: string }
  | { type: "count"; min: number; max: number };

/**
 * One option of the plugin: the PluginConfig field it sets, its flag (without `--`), its environment
 * variable, its default as text (undefined: none), the one line `--help` says about it, and the values
 * it allows. `--help`, docs/configuration.md, packaging/azure-vnet.default and config.json's `env` all
 * follow these definitions.
 */
export type OptionDefinition = {
  name: keyof PluginConfig;
  flag: string;
  env: string;
  default: string | undefined;
  description: string;
  values: OptionValues;
};

/** Every option, in the order `--help` lists them and loadConfig reads (and refuses) them. */
export const OPTION_DEFINITIONS: readonly OptionDefinition[] = [
  {
    name: "socketPath",
    flag: "socket",
    env: "AZURE_VNET_SOCKET",
    default: "/run/docker/plugins/azure.sock",
    description: "unix socket dockerd connects to; its file name is the driver name",
    values: { type: "path", absolute: true },
  },
  {
    name: "stateDir",
    flag: "state-dir",
    env: "AZURE_VNET_STATE_DIR",
    default: "/var/lib/azure-vnet",
    description: "directory of the state file and the instance lock",
    values: { type: "path", absolute: true },
  },
  {
    name: "poolSource",
    flag: "pool-source",
    env: "AZURE_VNET_POOL_SOURCE",
    default: "imds",
    description: `where the NIC's addresses come from: ${POOL_SOURCES.join(", ")}`,
    values: { type: "choice", choices: POOL_SOURCES },
  },
  {
    name: "poolFile",
    flag: "pool-file",
    env: "AZURE_VNET_POOL_FILE",
    default: undefined,
    description: "JSON pool file for --pool-source file",
    values: { type: "path", absolute: false },
  },
  {
    name: "imdsUrl",
    flag: "imds-url",
    env: "AZURE_VNET_IMDS_URL",
    default: "http://169.254.169.254",
    description: "Instance Metadata Service base URL",
    values: { type: "url" },
  },
  {
    name: "wireserverUrl",
    flag: "wireserver-url",
    env: "AZURE_VNET_WIRESERVER_URL",
    default: "http://168.63.129.16",
    description: "wireserver base URL",
    values: { type: "url" },
  },
  {
    name: "refreshIntervalMs",
    flag: "refresh-interval",
    env: "AZURE_VNET_REFRESH_INTERVAL",
    default: "30",
    description: "seconds between reads of the pool source",
    values: { type: "seconds", zeroAllowed: false, max: 86_400 },
  },
  {
    name: "sourceTimeoutMs",
    flag: "source-timeout",
    env: "AZURE_VNET_SOURCE_TIMEOUT",
    default: "2",
    description: "seconds to wait for IMDS or wireserver",
    values: { type: "seconds", zeroAllowed: false, max: 86_400 },
  },
  {
    name: "logLevel",
    flag: "log-level",
    env: "AZURE_VNET_LOG_LEVEL",
    default: "info",
    description: `${LOG_LEVELS.join(", ")}`,
    values: { type: "choice", choices: LOG_LEVELS },
  },
  {
    name: "dockerSocket",
    flag: "docker-socket",
    env: "AZURE_VNET_DOCKER_SOCKET",
    default: "/var/run/docker.sock",
    description:
      "Docker API socket, for reconciling the plugin's records with Docker in the background; empty: none, reconciliation off",
    values: { type: "path", absolute: true, emptyIsUnset: true },
  },
  {
    name: "reconcileIntervalMs",
    flag: "reconcile-interval",
    env: "AZURE_VNET_RECONCILE_INTERVAL",
    default: "60",
    description: "seconds between reconciliations with Docker; 0 turns them off",
    values: { type: "seconds", zeroAllowed: true, max: 86_400 },
  },
  {
    name: "reconcileGraceMs",
    flag: "reconcile-grace",
    env: "AZURE_VNET_RECONCILE_GRACE",
    default: "60",
    description: "seconds a record must have existed before reconciliation may remove it",
    values: { type: "seconds", zeroAllowed: true, max: 86_400 },
  },
  {
    name: "metricsAddress",
    flag: "metrics-address",
    env: "AZURE_VNET_METRICS_ADDRESS",
    default: undefined,
    description:
      "host:port to serve Prometheus metrics on (GET /metrics), e.g. 127.0.0.1:9464; off when empty",
    values: { type: "host-port" },
  },
  {
    name: "armEndpoint",
    flag: "arm-endpoint",
    env: "AZURE_VNET_ARM_ENDPOINT",
    default: "https://management.azure.com",
    description:
      "Azure Resource Manager base URL (HTTPS), used for pool growth, public IPs and load balancers",
    values: { type: "url", httpsOnly: { why: "Azure's client sends the identity token over HTTPS only" } },
  },
  {
    name: "armCaFile",
    flag: "arm-ca-file",
    env: "AZURE_VNET_ARM_CA_FILE",
    default: undefined,
    description:
      "PEM file of extra CA certificates to trust for Azure Resource Manager (e.g. a TLS-inspecting proxy)",
    values: { type: "path", absolute: true, emptyIsUnset: true },
  },
  {
    name: "identityClientId",
    flag: "identity-client-id",
    env: "AZURE_VNET_IDENTITY_CLIENT_ID",
    default: undefined,
    description: "client id of the user-assigned managed identity to use; the system-assigned one when empty",
    values: { type: "text", emptyIsUnset: true },
  },
  {
    name: "poolMinFree",
    flag: "pool-min-free",
    env: "AZURE_VNET_POOL_MIN_FREE",
    default: "0",
    description:
      "add IP configurations to the NIC through Azure when fewer addresses are free; 0 turns growth off",
    values: { type: "count", min: 0, max: 255 },
  },
  {
    name: "poolGrowStep",
    flag: "pool-grow-step",
    env: "AZURE_VNET_POOL_GROW_STEP",
    default: "4",
    description: "IP configurations added per growth",
    values: { type: "count", min: 1, max: 255 },
  },
  {
    name: "poolGrowWaitMs",
    flag: "pool-grow-wait",
    env: "AZURE_VNET_POOL_GROW_WAIT",
    default: "20",
    description: "seconds a container start that needs growth waits for it before failing",
    values: {
      type: "seconds",
      zeroAllowed: false,
      max: MAX_POOL_GROW_WAIT_SECONDS,
      why: ": dockerd gives up on a plugin's answer after 30 s, and the container start fails",
    },
  },
  {
    name: "poolMaxFree",
    flag: "pool-max-free",
    env: "AZURE_VNET_POOL_MAX_FREE",
    default: "0",
    description:
      "give back IP configurations the plugin added while more addresses are free; 0 never gives back",
    values: { type: "count", min: 0, max: 255 },
  },
  {
    name: "poolShrinkAfterMs",
    flag: "pool-shrink-after",
    env: "AZURE_VNET_POOL_SHRINK_AFTER",
    default: "600",
    description: "seconds without an allocation or release before addresses are given back",
    values: { type: "seconds", zeroAllowed: false, max: 86_400 },
  },
  {
    name: "maxIpConfigurations",
    flag: "max-ip-configurations",
    env: "AZURE_VNET_MAX_IP_CONFIGURATIONS",
    default: "256",
    description:
      "growth never takes a NIC past this many IP configurations (Azure's limit is 256 per NIC; the VM's 256 private IPs across its NICs hold besides)",
    values: { type: "count", min: 2, max: 256 },
  },
];

/** The definitions by PluginConfig field, for callers that need one option's flag, variable or default. */
export const OPTIONS = Object.fromEntries(
  OPTION_DEFINITIONS.map((definition) => [definition.name, definition]),
) as Record<keyof PluginConfig, OptionDefinition>;

/**
 * The values an option allows, in words, for documentation.
 * @example allowedValues(OPTIONS.poolGrowStep) // "a whole number from 1 to 255"
 */
export function allowedValues({ values }: OptionDefinition): string {
  switch (values.type) {
    case "text":
      return values.emptyIsUnset ? "any text; empty for none" : "any text";
    case "path":
      return `${values.absolute ? "an absolute path" : "a path"}${values.emptyIsUnset ? "; empty for none" : ""}`;
    case "choice":
      return values.choices.join(", ");
    case "url":
      return values.httpsOnly ? "an https:// base URL" : "an http:// or https:// base URL";
    case "host-port":
      return "host:port; empty for none";
    case "seconds":
      return values.zeroAllowed
        ? `seconds from 0 to ${values.max}`
        : `seconds above 0, at most ${values.max}`;
    case "count":
      return `a whole number from ${values.min} to ${values.max}`;
  }
}

/** Reads flags over environment over defaults. Throws InvalidParameterError naming the bad option. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): PluginConfig {
  const { values: flags } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: Object.fromEntries(
      OPTION_DEFINITIONS.map((definition) => [definition.flag, { type: "string" as const }]),
    ),
  });
  const config = Object.fromEntries(
    OPTION_DEFINITIONS.map((definition) => {
      const flagValue = flags[definition.flag];
      const text = typeof flagValue === "string" ? flagValue : (env[definition.env] ?? definition.default);
      return [definition.name, readValue(definition, text)];
    }),
  ) as PluginConfig;
  for (const check of CONFIG_CHECKS) check(config);
  return config;
}

/** `--flag (VARIABLE)`, as every configuration error names the option. */
function describe(definition: OptionDefinition): string {
  return `--${definition.flag} (${definition.env})`;
}

function refuse(definition: OptionDefinition, text: string | undefined, hint: string): never {
  throw new InvalidParameterError(`${describe(definition)} is ${JSON.stringify(text)}`, { hint });
}

/** One option's value from its text (flag, variable or default); refuses what its definition does not allow. */
function readValue(definition: OptionDefinition, text: string | undefined): unknown {
  const { values } = definition;
  switch (values.type) {
    case "text":
    case "path":
      return values.emptyIsUnset ? text || undefined : text;
    case "choice":
      if (!values.choices.includes(text!))
        refuse(definition, text, `use one of: ${values.choices.join(", ")}`);
      return text;
    case "url":
      if (!/^https?:\/\/[^/]+\/?$/.test(text!))
        refuse(definition, text, "give a base URL such as http://169.254.169.254");
      return text;
    case "host-port":
      return readHostPort(definition, text);
    case "seconds":
      return readSeconds(definition, values, text);
    case "count": {
      const value = Number(text);
      if (!Number.isInteger(value) || value < values.min || value > values.max)
        refuse(definition, text, `give a whole number from ${values.min} to ${values.max}`);
      return value;
    }
  }
}

function readHostPort(definition: OptionDefinition, text: string | undefined): string | undefined {
  if (text === undefined || text === "") return undefined;
  const match = /^(\[[0-9a-fA-F:]+\]|[0-9a-zA-Z.-]+):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) > 65535) refuse(definition, text, "give host:port, e.g. 127.0.0.1:9464");
  return text;
}

/** Seconds as milliseconds. */
function readSeconds(
  definition: OptionDefinition,
  { zeroAllowed, max, why = "" }: Extract<OptionValues, { type: "seconds" }>,
  text: string | undefined,
): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed) || value > max) {
    refuse(
      definition,
      text,
      `give a number of seconds${zeroAllowed ? "" : " above 0"}, at most ${max}${why}`,
    );
  }
  return Math.round(value * 1000);
}

/** Checks that involve more than one option, or that come after every option has been read. */
const CONFIG_CHECKS: ((config: PluginConfig) => void)[] = [
  function requireHttps(config) {
    for (const definition of OPTION_DEFINITIONS) {
      const { values } = definition;
      if (values.type !== "url" || !values.httpsOnly) continue;
      if (!String(config[definition.name]).startsWith("https://")) {
        throw new InvalidParameterError(`${describe(definition)} must be an https:// URL`, {
          hint: values.httpsOnly.why,
        });
      }
    }
  },
  function poolMaxFreeAboveGrowth({ poolMaxFree, poolMinFree, poolGrowStep }) {
    if (poolMaxFree !== 0 && poolMaxFree < poolMinFree + poolGrowStep) {
      throw new InvalidParameterError(
        `${describe(OPTIONS.poolMaxFree)} ${poolMaxFree} is below --pool-min-free plus --pool-grow-step (${poolMinFree + poolGrowStep})`,
        { hint: "raise it, or the pool would give back what it just grew" },
      );
    }
  },
  function fileSourceNeedsFile({ poolSource, poolFile }) {
    if (poolSource === "file" && !poolFile) {
      throw new InvalidParameterError(`--pool-source file needs ${describe(OPTIONS.poolFile)}`, {
        hint: "give the path of the pool file",
      });
    }
  },
  function absolutePaths(config) {
    for (const definition of OPTION_DEFINITIONS) {
      const value = config[definition.name];
      if (definition.values.type !== "path" || !definition.values.absolute || value === undefined) continue;
      if (!String(value).startsWith("/"))
        throw new InvalidParameterError(`${describe(definition)} must be an absolute path`);
    }
  },
];

/** The `--help` text. */
export function usageText(): string {
  const lines = OPTION_DEFINITIONS.map(
    (option) =>
      `  --${option.flag.padEnd(18)} ${option.env.padEnd(28)} ${option.description}${option.default ? ` (default ${option.default})` : ""}`,
  );
  return [
    "usage: azure-vnet [options]",
    "",
    "  flag                 environment variable",
    ...lines,
    "",
  ].join("\n");
}
