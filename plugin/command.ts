/**
 * The `azure-vnet` command (started by main.ts): reads the configuration, runs the plugin service
 * until SIGTERM/SIGINT, and exits non-zero with a sentence that says what to do when it cannot start.
 * `status`, `doctor` and `log-level` are operator subcommands that talk to the running plugin.
 */
import { runSubcommand, SUBCOMMAND_USAGE, SUBCOMMANDS } from "./cli/commands.js";
import { loadConfig, usageText } from "./config.js";
import { toPluginError } from "../lib/errors.js";
import { createLogger, type Logger } from "../lib/logger.js";
import { startService } from "./service.js";

/** How long shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

/** Runs the command line `argv` (process.argv); resolves to the exit status. */
export async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${usageText()}\n${SUBCOMMAND_USAGE}\n`);
    return 0;
  }
  const subcommand = SUBCOMMANDS.find((name) => name === argv[0]);
  if (subcommand) {
    try {
      return await runSubcommand(subcommand, argv.slice(1), process.env);
    } catch (error) {
      process.stderr.write(`azure-vnet ${subcommand}: ${(error as Error).message}\n`);
      return 1;
    }
  }
  const bootLogger = createLogger("info");
  let config;
  try {
    config = loadConfig(argv, process.env);
  } catch (error) {
    bootLogger.error("invalid configuration", { error: toPluginError(error).userMessage });
    process.stderr.write(`azure-vnet: ${toPluginError(error).userMessage}\n\n${usageText()}`);
    return 2;
  }
  const logger = createLogger(config.logLevel);
  let service;
  try {
    service = await startService(config, { logger });
  } catch (error) {
    const message = toPluginError(error).userMessage;
    logger.error("cannot start", { error: message });
    process.stderr.write(`azure-vnet: ${message}\n`);
    return 1;
  }
  await shutdownSignal(logger);
  await service.close();
  logger.info("stopped");
  return 0;
}

/**
 * Resolves on the first SIGTERM or SIGINT. From then on the process has SHUTDOWN_GRACE_MS to stop
 * before it exits anyway, so a stuck close never keeps dockerd or systemd waiting.
 */
function shutdownSignal(logger: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info("shutting down", { signal });
      setTimeout(() => {
        logger.error("shutdown took too long; exiting", { graceMs: SHUTDOWN_GRACE_MS });
        process.exit(1);
      }, SHUTDOWN_GRACE_MS).unref();
      resolve();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}
