#!/usr/bin/env bash
# Checks the production dependencies (package-lock.json without devDependencies) against the npm
# registry's security advisories: `npm audit --omit=dev --json`.
#
#   exit 0  no advisory for any production dependency, or the audit could not run because the
#           registry's audit endpoint did not answer (a problem outside this project): then one line
#           starting with "!! npm audit NOT RUN" says so and why, and nothing was checked
#   exit 1  an advisory concerns a production dependency (each is listed), or npm failed for a reason
#           of this project's own (no lockfile, a broken package.json, ...)
#
# usage: bash test/audit.sh   (from anywhere; the environment variable NPM names the npm to run)
set -euo pipefail
cd "$(dirname "$0")/.."

report=$(mktemp "${TMPDIR:-/tmp}/azure-vnet-audit-XXXXXX")
errors=$(mktemp "${TMPDIR:-/tmp}/azure-vnet-audit-XXXXXX")
trap 'rm -f "$report" "$errors"' EXIT
status=0
"${NPM:-npm}" audit --omit=dev --json >"$report" 2>"$errors" || status=$?

# npm's JSON is one of three shapes: a report (metadata.vulnerabilities), the audit endpoint's failure
# (a top-level message: an HTTP status or a connection error), or npm's own error ({error: {code}}).
node - "$report" "$errors" "$status" <<'EOF'
const { readFileSync } = require("node:fs");
const [reportFile, errorsFile, status] = process.argv.slice(2);
const text = readFileSync(reportFile, "utf8");
const stderr = readFileSync(errorsFile, "utf8").trim();
let report;
try {
  report = JSON.parse(text);
} catch {
  console.error(`npm audit: npm exited ${status} without a JSON answer:\n${stderr || text}`);
  process.exit(1);
}
const counts = report?.metadata?.vulnerabilities;
if (counts && typeof counts.total === "number") {
  const dependencies = report.metadata.dependencies?.prod ?? report.metadata.dependencies?.total ?? "?";
  if (counts.total === 0) {
    console.log(`== npm audit: no advisories for the ${dependencies} production dependencies`);
    process.exit(0);
  }
  console.error(`npm audit: ${counts.total} vulnerable production dependencies:`);
  for (const [name, entry] of Object.entries(report.vulnerabilities ?? {})) {
    const advisories = (entry.via ?? [])
      .map((via) => (typeof via === "string" ? `through ${via}` : `${via.title ?? via.source} (${via.url ?? ""})`))
      .join("; ");
    console.error(`  ${name} ${entry.range ?? ""}: ${entry.severity}: ${advisories}` +
      (entry.fixAvailable ? "; a fix is available (npm audit fix --omit=dev)" : ""));
  }
  process.exit(1);
}
if (typeof report?.message === "string") {
  const why = report.statusCode ? `it answered HTTP ${report.statusCode}` : "it could not be reached";
  console.log(
    `!! npm audit NOT RUN: the registry's audit endpoint is unavailable (${why}: ${report.message}); ` +
      "the production dependencies were NOT checked for advisories",
  );
  process.exit(0);
}
const code = report?.error?.code ?? `exit status ${status}`;
console.error(`npm audit failed (${code}): ${report?.error?.summary ?? ""}\n${stderr}`);
process.exit(1);
EOF
