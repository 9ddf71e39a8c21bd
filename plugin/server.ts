/**
 * The HTTP face of the plugin: decodes every body as JSON whatever its Content-Type (dockerd sends
 * none, and empty bodies for several calls), dispatches through the route table, logs one line per
 * request, and turns errors into `{"Err": ...}` with a non-200 status, which both APIs report to the user.
 * Two operator endpoints sit beside Docker's calls on the same root-only socket: `GET /status` and
 * `PUT /log-level`.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import { performance } from "node:perf_hooks";
import { InvalidParameterError, toPluginError, type PluginError } from "../lib/errors.js";
import { LOG_LEVELS, type Logger, type LogLevel } from "../lib/logger.js";
import type { RequestBody } from "../lib/request-fields.js";
import type { Handler } from "./routes.js";

export const MAX_BODY_BYTES = 1024 * 1024;
const PLUGIN_CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";
/** Request and answer fields worth a place in the request log line. */
const LOGGED_FIELDS = ["NetworkID", "EndpointID", "PoolID", "Pool", "SubPool", "V6", "Address"];

export type AppOptions = {
  routes: Map<string, Handler>;
  logger: Logger;
  /** The operator's view, for GET /status. */
  status: () => unknown;
  /** Called once per answered request, e.g. for metrics. */
  onRequest?: (call: string, status: number, durationMs: number, code: string | undefined) => void;
  /** Per call, how to take back what a request did when dockerd gave up waiting for its answer. */
  undo?: Map<string, Undo>;
};

/** Takes back a successful request's effect: what it took is given back. */
export type Undo = (body: RequestBody, answer: unknown) => Promise<unknown>;

/** The status logged for a request whose caller had gone when its answer was ready (nginx's 499). */
const ABANDONED = 499;

export function createApp({ routes, logger, status, onRequest, undo }: AppOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  const finish = (
    call: string,
    body: RequestBody,
    code: number,
    started: number,
    answer: unknown,
    error?: PluginError,
  ) => {
    const durationMs = logRequest(logger, call, body, code, started, answer, error);
    onRequest?.(call, code, durationMs, error?.code);
  };
  app.get("/status", (_req, res) => {
    res.json(status());
  });
  app.put("/log-level", express.raw({ type: () => true, limit: 1024 }), (req: Request, res: Response) => {
    try {
      const level = decodeBody(req.body).level;
      if (!LOG_LEVELS.includes(level as LogLevel)) {
        throw new InvalidParameterError(
          `log level ${JSON.stringify(level)} is not one of ${LOG_LEVELS.join(", ")}`,
        );
      }
      logger.setLevel(level as LogLevel);
      logger.info("log level changed", { level });
      res.json({ level });
    } catch (error) {
      const pluginError = toPluginError(error);
      send(res, pluginError.status, { Err: printable(pluginError.userMessage) });
    }
  });
  app.post(
    /.*/,
    express.raw({ type: () => true, limit: MAX_BODY_BYTES }),
    async (req: Request, res: Response) => {
      const started = performance.now();
      const call = req.path.slice(1);
      let body: RequestBody = {};
      try {
        const handler = routes.get(req.path);
        if (!handler) {
          send(res, 404, {
            Err: `unknown call ${printable(call)}: azure-vnet implements NetworkDriver and IpamDriver`,
          });
          finish(call, body, 404, started, {});
          return;
        }
        body = decodeBody(req.body);
        const answer = (await handler(body)) ?? {};
        if (req.socket.destroyed) {
          // dockerd stopped waiting (its timeout, or it went away): nobody will use what was taken.
          await undo?.get(req.path)?.(body, answer);
          finish(call, body, ABANDONED, started, answer);
          return;
        }
        send(res, 200, answer);
        finish(call, body, 200, started, answer);
      } catch (error) {
        const pluginError = toPluginError(error);
        send(res, pluginError.status, { Err: printable(pluginError.userMessage) });
        finish(call, body, pluginError.status, started, {}, pluginError);
      }
    },
  );
  app.use((req: Request, res: Response) => {
    send(res, 404, { Err: `unknown call ${req.method} ${printable(req.path)}` });
  });
  // Body-reader failures (too large, aborted) arrive here, before any handler ran.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status =
      typeof (error as { status?: unknown }).status === "number" ? (error as { status: number }).status : 500;
    const message =
      status === 413
        ? `request body is larger than ${MAX_BODY_BYTES} bytes`
        : `cannot read the request: ${(error as Error).message}`;
    send(res, status, { Err: message });
    logger.warn("request", { call: req.path.slice(1), status, outcome: "error", error: message });
  });
  return app;
}

/** Decodes a raw body as a JSON object; empty and whitespace-only bodies mean `{}`. */
export function decodeBody(raw: unknown): RequestBody {
  const text = Buffer.isBuffer(raw) ? raw.toString("utf8") : "";
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidParameterError(`request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidParameterError("request body must be a JSON object");
  }
  return value as RequestBody;
}

function send(res: Response, status: number, body: unknown): void {
  res.status(status).type(PLUGIN_CONTENT_TYPE).send(JSON.stringify(body));
}

/** Logs the request's one line; returns its duration in milliseconds. */
function logRequest(
  logger: Logger,
  call: string,
  body: RequestBody,
  status: number,
  started: number,
  answer: unknown,
  error?: PluginError,
): number {
  const fields: Record<string, unknown> = { call };
  for (const source of [body, answer as RequestBody]) {
    for (const name of LOGGED_FIELDS) {
      const value = source[name];
      if ((typeof value === "string" && value !== "" && value.length <= 256) || typeof value === "boolean") {
        fields[name] = value;
      }
    }
  }
  fields.status = status;
  fields.outcome = status === ABANDONED ? "abandoned" : error || status >= 400 ? "error" : "ok";
  if (error) {
    fields.code = error.code;
    fields.error = error.userMessage;
  }
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  fields.durationMs = durationMs;
  if (status >= 500) logger.warn("request", fields);
  else logger.info("request", fields);
  return durationMs;
}

/** Escapes control characters a request may have smuggled into a message, so Docker prints one line. */
export function printable(message: string): string {
  // eslint-disable-next-line no-control-regex
  return message.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}
