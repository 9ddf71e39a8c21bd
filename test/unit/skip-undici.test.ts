/** plugin/skip-undici.ts keeps Node 24's undici (loaded by node:http's lazy WebSocket exports) out. */
import { expect } from "chai";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const SKIP = fileURLToPath(new URL("../../plugin/skip-undici.js", import.meta.url));
const COMMAND = fileURLToPath(new URL("../../plugin/command.js", import.meta.url));

/** Loads the whole command in a fresh node, after skip-undici.js or not; whether undici got loaded. */
function undiciLoaded(skip: boolean): Promise<boolean> {
  const script =
    (skip ? `await import(${JSON.stringify(SKIP)});\n` : "") +
    `await import(${JSON.stringify(COMMAND)});\n` +
    `console.log(process.moduleLoadList.some((m) => m.includes("undici")));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--input-type=module", "-e", script], (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}: ${stderr}`));
      else resolve(stdout.trim() === "true");
    });
  });
}

describe("skip-undici", () => {
  it("loading the command after it loads no undici", async () => {
    expect(await undiciLoaded(true)).to.equal(false);
  });

  it("is still needed: without it, this Node loads undici for the command's node:http imports", async () => {
    expect(await undiciLoaded(false)).to.equal(true);
  });
});
