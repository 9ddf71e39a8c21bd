/**
 * Runs the Azure stand-in as its own process, for the end-to-end VNet where it must listen on
 * 169.254.169.254:80 and 168.63.129.16:80 inside the fabric namespace.
 * usage: node fake-azure-main.js (--nics FILE | --nics-for IP=FILE ...) --listen HOST:PORT [--listen ...]
 * A NIC file (pool-file format) is re-read on every request, so a test changes a NIC by editing it.
 * `--nics-for IP=FILE` answers a client whose address is IP from FILE (one VM each, as Azure's IMDS and
 * wireserver answer every VM about itself); `--nics FILE` answers every other client.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { PoolFile } from "../../ipam-driver/sources/file.js";
import { startFakeAzure } from "./fake-azure.js";

const { values } = parseArgs({
  options: {
    nics: { type: "string" },
    "nics-for": { type: "string", multiple: true },
    listen: { type: "string", multiple: true },
  },
});
const perSource = new Map(
  (values["nics-for"] ?? []).map((entry) => {
    const at = entry.indexOf("=");
    return [entry.slice(0, at), entry.slice(at + 1)] as const;
  }),
);
if ((!values.nics && perSource.size === 0) || !values.listen?.length) {
  process.stderr.write(
    "usage: fake-azure-main (--nics FILE | --nics-for IP=FILE ...) --listen HOST:PORT [--listen HOST:PORT ...]\n",
  );
  process.exit(2);
}
const fallback = values.nics;
const fake = await startFakeAzure({
  nics: (source) => {
    const file = perSource.get(source) ?? fallback;
    if (file === undefined) throw new Error(`no VM of this stand-in has the address ${source}`);
    return JSON.parse(readFileSync(file, "utf8")) as PoolFile;
  },
  listen: values.listen.map((entry) => {
    const at = entry.lastIndexOf(":");
    return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
  }),
});
process.stdout.write(`fake-azure listening ${values.listen.join(" ")}\n`);
process.once("SIGTERM", () => void fake.close().then(() => process.exit(0)));
