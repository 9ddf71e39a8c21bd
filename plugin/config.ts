/**
 * The plugin's configuration: command-line flags, each with an environment variable (the managed
 * plugin can only set environment), parsed once into a checked PluginConfig.
 */
import { parseArgs } from "node:util";
import { InvalidParameterError } from "../lib/errors.js";
import { LOG_LEVELS, type LogLevel } from "../lib/logger.js";

export const POOL_SOURCES = ["imds", "wireserver", "file"] as const;
/**
 * A container start that waits for pool growth must still answer inside dockerd's 30 s wait for a
 * legacy plugin, with room for the allocation itself.
 */
export const MAX_POOL_GROW_WAIT_SECONDS = 25;
export type PoolSourceName = (typeof POOL_SOURCES)[number];

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
  dockerSocket: string;
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

type OptionSpec = { flag: string; env: string; default: string | undefined; help: string };

/** Every option, in the order the help text lists them. Also the source of the README table. */
export const OPTIONS: Record<keyof PluginConfig, OptionSpec> = {
  socketPath: {
    flag: "socket",
    env: "AZURE_VNET_SOCKET",
    default: "/run/docker/plugins/azure.sock",
    help: "unix socket dockerd connects to; its file name is the driver name",
  },
  stateDir: {
    flag: "state-dir",
    env: "AZURE_VNET_STATE_DIR",
    default: "/var/lib/azure-vnet",
    help: "directory of the state file and the instance lock",
  },
  poolSource: {
    flag: "pool-source",
    env: "AZURE_VNET_POOL_SOURCE",
    default: "imds",
    help: `where the NIC's addresses come from: ${POOL_SOURCES.join(", ")}`,
  },
  poolFile: {
    flag: "pool-file",
    env: "AZURE_VNET_POOL_FILE",
    default: undefined,
    help: "JSON pool file for --pool-source file",
  },
  imdsUrl: {
    flag: "imds-url",
    env: "AZURE_VNET_IMDS_URL",
    default: "http://169.254.169.254",
    help: "Instance Metadata Service base URL",
  },
  wireserverUrl: {
    flag: "wireserver-url",
    env: "AZURE_VNET_WIRESERVER_URL",
    default: "http://168.63.129.16",
    help: "wireserver base URL",
  },
  refreshIntervalMs: {
    flag: "refresh-interval",
    env: "AZURE_VNET_REFRESH_INTERVAL",
    default: "30",
    help: "seconds between reads of the pool source",
  },
  sourceTimeoutMs: {
    flag: "source-timeout",
    env: "AZURE_VNET_SOURCE_TIMEOUT",
    default: "2",
    help: "seconds to wait for IMDS or wireserver",
  },
  logLevel: {
    flag: "log-level",
    env: "AZURE_VNET_LOG_LEVEL",
    default: "info",
    help: `${LOG_LEVELS.join(", ")}`,
  },
  dockerSocket: {
    flag: "docker-socket",
    env: "AZURE_VNET_DOCKER_SOCKET",
    default: "/var/run/docker.sock",
    help: "Docker API socket, for reconciling the plugin's records with Docker in the background",
  },
  reconcileIntervalMs: {
    flag: "reconcile-interval",
    env: "AZURE_VNET_RECONCILE_INTERVAL",
    default: "60",
    help: "seconds between reconciliations with Docker; 0 turns them off",
  },
  reconcileGraceMs: {
    flag: "reconcile-grace",
    env: "AZURE_VNET_RECONCILE_GRACE",
    default: "60",
    help: "seconds a record must have existed before reconciliation may remove it",
  },
  metricsAddress: {
    flag: "metrics-address",
    env: "AZURE_VNET_METRICS_ADDRESS",
    default: undefined,
    help: "host:port to serve Prometheus metrics on (GET /metrics), e.g. 127.0.0.1:9464; off when empty",
  },
  armEndpoint: {
    flag: "arm-endpoint",
    env: "AZURE_VNET_ARM_ENDPOINT",
    default: "https://management.azure.com",
    help: "Azure Resource Manager base URL (HTTPS), used for pool growth, public IPs and load balancers",
  },
  armCaFile: {
    flag: "arm-ca-file",
    env: "AZURE_VNET_ARM_CA_FILE",
    default: undefined,
    help: "PEM file of extra CA certificates to trust for Azure Resource Manager (e.g. a TLS-inspecting proxy)",
  },
  identityClientId: {
    flag: "identity-client-id",
    env: "AZURE_VNET_IDENTITY_CLIENT_ID",
    default: undefined,
    help: "client id of the user-assigned managed identity to use; the system-assigned one when empty",
  },
  poolMinFree: {
    flag: "pool-min-free",
    env: "AZURE_VNET_POOL_MIN_FREE",
    default: "0",
    help: "add IP configurations to the NIC through Azure when fewer addresses are free; 0 turns growth off",
  },
  poolGrowStep: {
    flag: "pool-grow-step",
    env: "AZURE_VNET_POOL_GROW_STEP",
    default: "4",
    help: "IP configurations added per growth",
  },
  poolGrowWaitMs: {
    flag: "pool-grow-wait",
    env: "AZURE_VNET_POOL_GROW_WAIT",
    default: "20",
    help: "seconds a container start that needs growth waits for it before failing",
  },
  poolMaxFree: {
    flag: "pool-max-free",
    env: "AZURE_VNET_POOL_MAX_FREE",
    default: "0",
    help: "give back IP configurations the plugin added while more addresses are free; 0 never gives back",
  },
  poolShrinkAfterMs: {
    flag: "pool-shrink-after",
    env: "AZURE_VNET_POOL_SHRINK_AFTER",
    default: "600",
    help: "seconds without an allocation or release before addresses are given back",
  },
  maxIpConfigurations: {
    flag: "max-ip-configurations",
    env: "AZURE_VNET_MAX_IP_CONFIGURATIONS",
    default: "256",
    help: "growth never takes a NIC past this many IP configurations (Azure's limit is 256)",
  },
};

/** Reads flags over environment over defaults. Throws InvalidParameterError naming the bad option. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): PluginConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: Object.fromEntries(
      Object.values(OPTIONS).map((spec) => [spec.flag, { type: "string" as const }]),
    ),
  });
  const raw = (key: keyof PluginConfig): string | undefined => {
    const spec = OPTIONS[key];
    const flagValue = values[spec.flag];
    return typeof flagValue === "string" ? flagValue : (env[spec.env] ?? spec.default);
  };
  const describe = (key: keyof PluginConfig) => `--${OPTIONS[key].flag} (${OPTIONS[key].env})`;
  const oneOf = <T extends string>(key: keyof PluginConfig, allowed: readonly T[]): T => {
    const value = raw(key);
    if (!allowed.includes(value as T)) {
      throw new InvalidParameterError(`${describe(key)} is ${JSON.stringify(value)}`, {
        hint: `use one of: ${allowed.join(", ")}`,
      });
    }
    return value as T;
  };
  const seconds = (key: keyof PluginConfig, zeroAllowed = false, max = 86_400, why = ""): number => {
    const value = Number(raw(key));
    if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed) || value > max) {
      throw new InvalidParameterError(`${describe(key)} is ${JSON.stringify(raw(key))}`, {
        hint: `give a number of seconds${zeroAllowed ? "" : " above 0"}, at most ${max}${why}`,
      });
    }
    return Math.round(value * 1000);
  };
  const url = (key: keyof PluginConfig): string => {
    const value = raw(key)!;
    if (!/^https?:\/\/[^/]+\/?$/.test(value)) {
      throw new InvalidParameterError(`${describe(key)} is ${JSON.stringify(value)}`, {
        hint: "give a base URL such as http://169.254.169.254",
      });
    }
    return value;
  };
  const optionalAddress = (key: keyof PluginConfig): string | undefined => {
    const value = raw(key);
    if (value === undefined || value === "") return undefined;
    const match = /^(\[[0-9a-fA-F:]+\]|[0-9a-zA-Z.-]+):(\d{1,5})$/.exec(value);
    if (!match || Number(match[2]) > 65535) {
      throw new InvalidParameterError(`${describe(key)} is ${JSON.stringify(value)}`, {
        hint: "give host:port, e.g. 127.0.0.1:9464",
      });
    }
    return value;
  };
  const count = (key: keyof PluginConfig, min: number, max: number): number => {
    const value = Number(raw(key));
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new InvalidParameterError(`${describe(key)} is ${JSON.stringify(raw(key))}`, {
        hint: `give a whole number from ${min} to ${max}`,
      });
    }
    return value;
  };
  const optional = (key: keyof PluginConfig): string | undefined => raw(key) || undefined;
  const config: PluginConfig = {
    socketPath: raw("socketPath")!,
    stateDir: raw("stateDir")!,
    poolSource: oneOf("poolSource", POOL_SOURCES),
    poolFile: raw("poolFile"),
    imdsUrl: url("imdsUrl"),
    wireserverUrl: url("wireserverUrl"),
    refreshIntervalMs: seconds("refreshIntervalMs"),
    sourceTimeoutMs: seconds("sourceTimeoutMs"),
    logLevel: oneOf("logLevel", LOG_LEVELS),
    dockerSocket: raw("dockerSocket")!,
    reconcileIntervalMs: seconds("reconcileIntervalMs", true),
    reconcileGraceMs: seconds("reconcileGraceMs", true),
    metricsAddress: optionalAddress("metricsAddress"),
    armEndpoint: url("armEndpoint"),
    armCaFile: optional("armCaFile"),
    identityClientId: optional("identityClientId"),
    poolMinFree: count("poolMinFree", 0, 255),
    poolGrowStep: count("poolGrowStep", 1, 255),
    poolGrowWaitMs: seconds(
      "poolGrowWaitMs",
      false,
      MAX_POOL_GROW_WAIT_SECONDS,
      ": dockerd gives up on a plugin's answer after 30 s, and the container start fails",
    ),
    poolMaxFree: count("poolMaxFree", 0, 255),
    poolShrinkAfterMs: seconds("poolShrinkAfterMs"),
    maxIpConfigurations: count("maxIpConfigurations", 2, 256),
  };
  if (!config.armEndpoint.startsWith("https://")) {
    throw new InvalidParameterError(`${describe("armEndpoint")} must be an https:// URL`, {
      hint: "Azure's client sends the identity token over HTTPS only",
    });
  }
  if (config.poolMaxFree !== 0 && config.poolMaxFree < config.poolMinFree + config.poolGrowStep) {
    throw new InvalidParameterError(
      `${describe("poolMaxFree")} ${config.poolMaxFree} is below --pool-min-free plus --pool-grow-step (${config.poolMinFree + config.poolGrowStep})`,
      { hint: "raise it, or the pool would give back what it just grew" },
    );
  }
  if (config.poolSource === "file" && !config.poolFile) {
    throw new InvalidParameterError(`--pool-source file needs ${describe("poolFile")}`, {
      hint: "give the path of the pool file",
    });
  }
  for (const key of ["socketPath", "stateDir", "dockerSocket", "armCaFile"] as const) {
    if (config[key] === undefined) continue;
    if (!config[key].startsWith("/"))
      throw new InvalidParameterError(`${describe(key)} must be an absolute path`);
  }
  return config;
}

/** The `--help` text. */
export function usageText(): string {
  const lines = Object.values(OPTIONS).map(
    (spec) =>
      `  --${spec.flag.padEnd(18)} ${spec.env.padEnd(28)} ${spec.help}${spec.default ? ` (default ${spec.default})` : ""}`,
  );
  return [
    "usage: azure-vnet [options]",
    "",
    "  flag                 environment variable",
    ...lines,
    "",
  ].join("\n");
}
