/**
 * The Node version is written once, in the Dockerfile's NODE_IMAGE, and everything else must agree with
 * it; and test/audit.sh tells a vulnerable dependency (fail) from an audit endpoint that is down (say so
 * loudly, pass), run against a stand-in npm that answers as the real one does.
 */
import { expect } from "chai";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));

/** The Node release the plugin image is built on: NODE_IMAGE's tag, e.g. 24.22.3. */
function imageNodeVersion(): string {
  const dockerfile = readFileSync(join(REPO, "Dockerfile"), "utf8");
  const version = /^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-bookworm-slim$/m.exec(dockerfile)?.[1];
  if (!version) throw new Error("Dockerfile has no ARG NODE_IMAGE=node:X.Y.Z-bookworm-slim");
  return version;
}

describe("Node version", () => {
  const major = imageNodeVersion().split(".")[0]!;
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
    engines: { node: string };
    devDependencies: Record<string, string>;
  };

  it("package.json's engines and @types/node name the Dockerfile's Node major", () => {
    expect(major).to.equal("24");
    expect(pkg.engines.node).to.equal(`>=${major}`);
    expect(pkg.devDependencies["@types/node"]).to.match(new RegExp(`^${major}\\.\\d+\\.\\d+$`));
  });

  it("the tests run on that Node major (test/node24.sh puts it on PATH)", () => {
    expect(process.versions.node.split(".")[0]).to.equal(major);
  });

  it("test/node24.sh and the offline base image take the version from the Dockerfile", () => {
    const node24 = readFileSync(join(REPO, "test", "node24.sh"), "utf8");
    expect(node24).to.contain("ARG NODE_IMAGE=node:");
    expect(node24).to.not.match(/\b24\.\d+\.\d+\b/);
    expect(readFileSync(join(REPO, "packaging", "offline-base-image.sh"), "utf8")).to.contain(
      "ARG NODE_IMAGE=",
    );
  });
});

describe("test/audit.sh", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-audit-test-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs test/audit.sh with an npm that prints `stdout` and `stderr` and exits with `status`. */
  async function audit(stdout: object, stderr: string, status: number) {
    await writeFile(join(dir, "stdout.json"), JSON.stringify(stdout, null, 2));
    await writeFile(join(dir, "stderr.txt"), stderr);
    const npm = join(dir, "npm");
    await writeFile(
      npm,
      `#!/bin/sh\n[ "$*" = "audit --omit=dev --json" ] || { echo "unexpected: $*" >&2; exit 99; }\n` +
        `cat '${dir}/stdout.json'; cat '${dir}/stderr.txt' >&2; exit ${status}\n`,
    );
    await chmod(npm, 0o755);
    return new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(
        "bash",
        [join(REPO, "test", "audit.sh")],
        { env: { ...process.env, NPM: npm } },
        (error, out, err) => resolve({ code: typeof error?.code === "number" ? error.code : 0, out, err }),
      );
    });
  }

  const counts = (total: number) => ({
    vulnerabilities: { info: 0, low: 0, moderate: 0, high: total, critical: 0, total },
    dependencies: { prod: 80, dev: 260, optional: 0, peer: 0, peerOptional: 0, total: 340 },
  });

  it("passes when no production dependency has an advisory", async () => {
    const result = await audit({ auditReportVersion: 2, vulnerabilities: {}, metadata: counts(0) }, "", 0);
    expect(result.code).to.equal(0);
    expect(result.out).to.contain("no advisories for the 80 production dependencies");
  });

  it("fails and names each advisory when a production dependency has one", async () => {
    const result = await audit(
      {
        auditReportVersion: 2,
        vulnerabilities: {
          "fast-xml-parser": {
            name: "fast-xml-parser",
            severity: "high",
            isDirect: true,
            via: [
              { source: 1, title: "Entity expansion", url: "https://advisories.invalid/1", severity: "high" },
            ],
            effects: [],
            range: "<5.3.0",
            fixAvailable: true,
          },
        },
        metadata: counts(1),
      },
      "",
      1,
    );
    expect(result.code).to.equal(1);
    expect(result.err).to.contain("fast-xml-parser <5.3.0: high: Entity expansion");
  });

  it("says loudly that it did not run, and passes, when the audit endpoint refuses", async () => {
    const result = await audit(
      {
        message: "405 Method Not Allowed - POST https://registry.invalid/-/npm/v1/security/advisories/bulk",
        statusCode: 405,
      },
      "npm error audit endpoint returned an error\n",
      1,
    );
    expect(result.code).to.equal(0);
    expect(result.out).to.match(/^!! npm audit NOT RUN: .*HTTP 405.*NOT checked/m);
  });

  it("says the same when the audit endpoint cannot be reached", async () => {
    const result = await audit(
      { message: "request to https://registry.invalid/ failed, reason: connect ECONNREFUSED" },
      "npm error audit endpoint returned an error\n",
      1,
    );
    expect(result.code).to.equal(0);
    expect(result.out).to.match(/^!! npm audit NOT RUN: .*could not be reached.*ECONNREFUSED/m);
  });

  it("fails when npm fails for a reason of the project's own", async () => {
    const result = await audit(
      { error: { code: "ENOLOCK", summary: "This command requires an existing lockfile.", detail: "" } },
      "npm error code ENOLOCK\n",
      1,
    );
    expect(result.code).to.equal(1);
    expect(result.err).to.contain("npm audit failed (ENOLOCK)");
  });
});
