/**
 * Pool source `file`: a JSON description of the NICs, for machines outside Azure, demos and tests.
 * Re-read at every refresh, so editing the file adds or removes addresses without a restart.
 *
 * Format (docs/ipam.md, "Outside Azure: the pool file"):
 * {"interfaces": [{"macAddress": "00:0d:3a:00:00:01" | "interfaceName": "eth0", "primary": true,
 *   "subnets": [{"prefix": "10.1.0.0/24", "primaryAddress": "10.1.0.4", "secondaryAddresses": ["10.1.0.5"]}]}]}
 */
import { readFile } from "node:fs/promises";
import { UnavailableError } from "../../lib/errors.js";
import type { SourceNic } from "../inventory.js";
import type { PoolSource } from "./source.js";

export function createFileSource(path: string): PoolSource {
  return {
    name: "file",
    location: path,
    async fetchNics() {
      let body: string;
      try {
        body = await readFile(path, "utf8");
      } catch (error) {
        throw new UnavailableError(`cannot read pool file ${path}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      return parsePoolFile(body, path);
    },
  };
}

/** The pool file's shape, also used by the test stand-ins for IMDS and wireserver. */
export type PoolFile = {
  interfaces: {
    macAddress?: string;
    interfaceName?: string;
    primary?: boolean;
    subnets: { prefix: string; primaryAddress?: string; secondaryAddresses?: string[] }[];
  }[];
};

/** Parses a pool file. Throws UnavailableError naming the first problem. */
export function parsePoolFile(body: string, path = "pool file"): SourceNic[] {
  const fail = (detail: string) => new UnavailableError(`${path} is not a valid pool file: ${detail}`);
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch (error) {
    throw fail(`not JSON (${(error as Error).message})`);
  }
  const interfaces = (document as Partial<PoolFile> | null)?.interfaces;
  if (!Array.isArray(interfaces)) throw fail(`it needs an "interfaces" array`);
  return interfaces.map((entry, index) => {
    const where = `interfaces[${index}]`;
    if (typeof entry !== "object" || entry === null) throw fail(`${where} is not an object`);
    const { macAddress, interfaceName, primary, subnets } = entry;
    if (macAddress !== undefined && typeof macAddress !== "string")
      throw fail(`${where}.macAddress is not a string`);
    if (interfaceName !== undefined && typeof interfaceName !== "string") {
      throw fail(`${where}.interfaceName is not a string`);
    }
    if (macAddress === undefined && interfaceName === undefined) {
      throw fail(`${where} needs "macAddress" or "interfaceName"`);
    }
    if (!Array.isArray(subnets)) throw fail(`${where}.subnets is not an array`);
    return {
      ...(macAddress !== undefined ? { macAddress } : {}),
      ...(interfaceName !== undefined ? { interfaceName } : {}),
      isPrimary: primary === true,
      subnets: subnets.map((subnet, subnetIndex) => {
        const at = `${where}.subnets[${subnetIndex}]`;
        if (typeof subnet?.prefix !== "string") throw fail(`${at}.prefix is missing`);
        const secondaries = subnet.secondaryAddresses ?? [];
        if (!Array.isArray(secondaries) || secondaries.some((a) => typeof a !== "string")) {
          throw fail(`${at}.secondaryAddresses must be an array of strings`);
        }
        if (subnet.primaryAddress !== undefined && typeof subnet.primaryAddress !== "string") {
          throw fail(`${at}.primaryAddress is not a string`);
        }
        return {
          prefix: subnet.prefix,
          ...(subnet.primaryAddress !== undefined ? { primary: subnet.primaryAddress } : {}),
          secondaries,
        };
      }),
    };
  });
}
