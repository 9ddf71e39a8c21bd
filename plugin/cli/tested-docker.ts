/**
 * The Docker versions azure-vnet is tested with: test/run-all.sh runs the end-to-end suites against
 * each (README, "Tested Docker versions"), and `azure-vnet doctor` judges the local dockerd by them.
 */

/** Tested releases, oldest first: 20.10 is Debian 12's docker.io, 26 Debian 13's, 28 Debian unstable's. */
export const TESTED_DOCKER_RELEASES = ["20.10", "26", "28"] as const;

/** How a dockerd version relates to the tested ones, as a doctor finding. */
export function judgeDockerVersion(version: string): { result: "ok" | "warn"; message: string } {
  const tested = TESTED_DOCKER_RELEASES.join(", ");
  const release = TESTED_DOCKER_RELEASES.find((r) => version === r || version.startsWith(`${r}.`));
  if (release !== undefined)
    return { result: "ok", message: `Docker ${version} is a tested release (${tested})` };
  const [major = NaN, minor = NaN] = version.split(".").map(Number);
  const newest = Number(TESTED_DOCKER_RELEASES.at(-1));
  const olderThanOldest = major < 20 || (major === 20 && minor < 10);
  if (Number.isNaN(major) || olderThanOldest || major > newest) {
    return {
      result: "warn",
      message: `Docker ${version} is outside the tested releases (${tested}) — use one of them, or run the end-to-end suites against it (README, "Tested Docker versions") before relying on it`,
    };
  }
  return { result: "ok", message: `Docker ${version} lies between tested releases (${tested})` };
}
