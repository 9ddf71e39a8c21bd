/**
 * Runs the Azure stand-in as its own process, for the end-to-end VNet where it must listen on
 * 169.254.169.254:80 and 168.63.129.16:80 inside the fabric namespace.
 * usage: node fake-azure-main.js --nics FILE --listen HOST:PORT [--listen HOST:PORT ...]
 * The NIC file (pool-file format) is re-read on every request, so a test changes the NIC by editing it.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { PoolFile } from "../../ipam-driver/sources/file.js";
import { startFakeAzure } from "./fake-azure.js";

const { values } = parseArgs({
  options: { nics: { type: "string" }, listen: { type: "string", multiple: true } },
});
if (!values.nics || !values.listen?.length) {
  process.stderr.write("usage: fake-azure-main --nics FILE --listen HOST:PORT [--listen HOST:PORT ...]\n");
  process.exit(2);
}
const nicsFile = values.nics;
const fake = await startFakeAzure({
  nics: () => JSON.parse(readFileSync(nicsFile, "utf8")) as PoolFile,
  listen: values.listen.map((entry) => {
    const at = entry.lastIndexOf(":");
    return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
  }),
});
process.stdout.write(`fake-azure listening ${values.listen.join(" ")}\n`);
process.once("SIGTERM", () => void fake.close().then(() => process.exit(0)));
