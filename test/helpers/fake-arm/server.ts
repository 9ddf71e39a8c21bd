/**
 * The HTTPS server: logs each request, hands it to the router, and writes the answer, or the thrown
 * ArmError, as ARM writes them (JSON, an x-ms-request-id on everything).
 */
import { randomUUID } from "node:crypto";
import type http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { ArmContext } from "./context.js";
import { ArmError, type Answer } from "./errors.js";
import { dispatch } from "./routes.js";

export type ArmServer = { url: string; close(): Promise<void> };

/** Listens as the options say; the URL is `publicUrl`, or https://127.0.0.1:<port> on TCP. */
export async function serveArm(ctx: ArmContext): Promise<ArmServer> {
  const { tls, listen } = ctx.options;
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) =>
    handle(ctx, req, res),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if ("socketPath" in listen) server.listen(listen.socketPath, () => resolve());
    else server.listen(listen.port, listen.host, () => resolve());
  });
  if (ctx.ids.publicUrl === undefined) {
    if ("socketPath" in listen) {
      server.close();
      throw new Error("startFakeArm: publicUrl is required when listening on a unix socket");
    }
    ctx.ids.publicUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { url: ctx.ids.publicUrl, close };
}

function handle(ctx: ArmContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? "/", "https://fake-arm");
  const method = (req.method ?? "GET").toUpperCase();
  ctx.requests.push({
    method,
    path: url.pathname,
    authorization: req.headers.authorization,
    ifMatch: req.headers["if-match"],
  });
  dispatch(ctx, req, method, url).then(
    (answer) => send(res, answer),
    (error: unknown) => send(res, errorAnswer(error)),
  );
}

/** An ArmError as ARM sends it; anything else is a bug of the stand-in, sent as a 500 that says so. */
function errorAnswer(error: unknown): Answer {
  if (error instanceof ArmError) {
    return {
      status: error.status,
      body: { error: { code: error.code, message: error.message } },
      headers: error.headers,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    status: 500,
    body: { error: { code: "InternalServerError", message: `stand-in bug: ${message}` } },
  };
}

function send(res: http.ServerResponse, { status, body, headers }: Answer): void {
  const common = { "x-ms-request-id": randomUUID(), ...headers };
  if (body === undefined) {
    res.writeHead(status, common);
    res.end();
    return;
  }
  res.writeHead(status, { ...common, "Content-Type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}
