/** The tested Docker releases: one list for the doctor, the e2e harness and the README's table. */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { judgeDockerVersion, TESTED_DOCKER_RELEASES } from "../../plugin/cli/tested-docker.js";
import { DOCKERD_RELEASES } from "../helpers/dockerd.js";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));

describe("tested Docker releases", () => {
  it("are the releases the e2e harness runs and the rows of the README's table", () => {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const section = readme.split(/^### Tested Docker versions$/m)[1]?.split(/^#/m)[0] ?? "";
    const rows = [...section.matchAll(/^\| (\d+(?:\.\d+)*) /gm)].map((match) => match[1]);
    expect(rows.map((row) => row!.replace(/^(2[1-9])\.\d+$/, "$1"))).to.deep.equal([
      ...TESTED_DOCKER_RELEASES,
    ]);
    expect(Object.keys(DOCKERD_RELEASES).sort()).to.deep.equal([...TESTED_DOCKER_RELEASES].sort());
  });

  it("the doctor calls a tested release ok, one between them ok, and one outside them a warning", () => {
    expect(judgeDockerVersion("20.10.24+dfsg1")).to.deep.include({ result: "ok" });
    expect(judgeDockerVersion("20.10.24+dfsg1").message).to.contain("is a tested release (20.10, 26, 28)");
    expect(judgeDockerVersion("28.5.2")).to.deep.include({ result: "ok" });
    expect(judgeDockerVersion("27.3.1").message).to.equal(
      "Docker 27.3.1 lies between tested releases (20.10, 26, 28)",
    );
    expect(judgeDockerVersion("27.3.1").result).to.equal("ok");
    for (const outside of ["19.03.15", "20.04.1", "29.0.0", "nightly"]) {
      expect(judgeDockerVersion(outside), outside).to.deep.equal({
        result: "warn",
        message: `Docker ${outside} is outside the tested releases (20.10, 26, 28) — use one of them, or run the end-to-end suites against it (README, "Tested Docker versions") before relying on it`,
      });
    }
  });
});
