#!/usr/bin/env node
/**
 * Entry point of the `azure-vnet` command (command.ts). It first makes node:http's exports that load
 * undici plain values (skip-undici.ts), and only then loads the rest: every module that imports
 * node:http is loaded by the dynamic import below, after that change, which keeps undici out of the
 * plugin on Node 24. A static import would not do: Node reads a built-in module's exports in ESM's
 * link step for the whole importing graph, before any module of it runs.
 */
import "./skip-undici.js";

const { main } = await import("./command.js");
process.exitCode = await main();
