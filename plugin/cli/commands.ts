/**
 * The operator subcommands of `azure-vnet`: status, doctor and log-level. Each talks to a running
 * plugin over its socket; defaults come from the same environment variables as the plugin's.
 */
import { parseArgs } from "node:util";
import { OPTIONS } from "../config.js";
import { formatFindings, runDoctor } from "./doctor.js";
import { setLogLevel } from "./plugin-client.js";
import { statusCommand } from "./status-command.js";

/** The first arguments that run an operator subcommand instead of the plugin. */
export const SUBCOMMANDS = ["status", "doctor", "log-level"] as const;

/** The subcommands' part of `--help`. */
export const SUBCOMMAND_USAGE = [
  "       azure-vnet status [--json] [--socket PATH] [--docker-socket PATH]",
  "       azure-vnet doctor [--socket PATH] [--docker-socket PATH] [--imds-url URL]",
  "       azure-vnet log-level debug|info|warn|error [--socket PATH]",
].join("\n");

/** Runs a subcommand; resolves to the exit status after writing its output. */
export async function runSubcommand(
  name: (typeof SUBCOMMANDS)[number],
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: name === "log-level",
    options: {
      socket: { type: "string" },
      "docker-socket": { type: "string" },
      "imds-url": { type: "string" },
      json: { type: "boolean" },
    },
  });
  const fallback = (key: "socketPath" | "dockerSocket" | "imdsUrl") =>
    env[OPTIONS[key].env] ?? OPTIONS[key].default!;
  const socket = values.socket ?? fallback("socketPath");
  const dockerSocket = values["docker-socket"] ?? fallback("dockerSocket");
  switch (name) {
    case "status":
      process.stdout.write(await statusCommand({ socket, dockerSocket, json: values.json === true }));
      return 0;
    case "doctor": {
      const findings = await runDoctor({
        socket,
        dockerSocket,
        imdsUrl: values["imds-url"] ?? fallback("imdsUrl"),
      });
      process.stdout.write(formatFindings(findings));
      return findings.some((f) => f.result === "fail") ? 1 : 0;
    }
    case "log-level":
      await setLogLevel(socket, positionals[0] ?? "");
      process.stdout.write(`log level is now ${positionals[0]}\n`);
      return 0;
  }
}
