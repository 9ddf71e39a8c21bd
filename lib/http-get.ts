/**
 * A bounded HTTP GET for the Azure metadata endpoints. Both answer on plain HTTP from inside the VM and
 * must never go through a proxy, so this uses node:http directly rather than fetch (which honours no
 * proxy here but gives less control over socket timeouts).
 */
import http from "node:http";
import { RetryLaterError, UnavailableError } from "./errors.js";

export type HttpGetOptions = { headers?: Record<string, string>; timeoutMs: number; maxBytes?: number };

/** GETs `url` and returns the body of a 200 answer; anything else becomes an UnavailableError. */
export function httpGet(url: string, options: HttpGetOptions): Promise<string> {
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: options.headers, timeout: options.timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          request.destroy(new Error(`answer larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (response.statusCode === 200) {
          resolve(body);
          return;
        }
        const retryAfter = Number(response.headers["retry-after"]);
        const message = `${url} answered HTTP ${response.statusCode}: ${body.slice(0, 200)}`;
        reject(
          Number.isFinite(retryAfter) && retryAfter >= 0
            ? new RetryLaterError(`${message} (Retry-After ${retryAfter} s)`, retryAfter * 1000)
            : new UnavailableError(message),
        );
      });
      response.on("error", (error) => reject(unavailable(url, error)));
    });
    request.on("timeout", () => request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    request.on("error", (error) => reject(unavailable(url, error)));
  });
}

function unavailable(url: string, error: Error): UnavailableError {
  return new UnavailableError(`GET ${url} failed: ${error.message}`, { cause: error });
}
