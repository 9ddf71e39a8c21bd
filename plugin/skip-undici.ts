/**
 * Keeps Node 24 from loading undici, which the plugin never uses (about 3 MiB of its resident memory,
 * 14 MiB in a bare node). Node 24's node:http exports WebSocket, CloseEvent and MessageEvent as
 * getters that load undici on first read, and an ESM import of node:http (the plugin's own, the Azure
 * SDK's) reads every export to build the module's namespace, so undici would be loaded by the import
 * alone. main.ts runs this module before it loads any module that imports node:http, and this module
 * replaces those three getters by undefined. The plugin uses no WebSocket and no fetch; the globals of
 * the same names stay as they are.
 */
import { createRequire } from "node:module";

/** The exports of node:http that load undici when read. */
export const UNDICI_GETTERS = ["WebSocket", "CloseEvent", "MessageEvent"] as const;

const http = createRequire(import.meta.url)("node:http") as object;
for (const name of UNDICI_GETTERS) {
  const descriptor = Object.getOwnPropertyDescriptor(http, name);
  if (descriptor?.get && descriptor.configurable) {
    Object.defineProperty(http, name, {
      value: undefined,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
}
