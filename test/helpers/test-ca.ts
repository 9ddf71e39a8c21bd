/**
 * Makes a throw-away certificate authority and one server certificate signed by it, so a local stand-in
 * can speak HTTPS: the Azure SDK sends bearer tokens only over TLS, and a test should trust exactly
 * this CA rather than turn certificate checking off.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runOk } from "./run.js";

/** What {@link createTestCa} made; the private key of the CA stays in `dir` and is never needed again. */
export type TestCa = {
  /** Path of the CA certificate (PEM): what a client is told to trust. */
  caFile: string;
  /** The server certificate (PEM), with the requested addresses and names as subjectAltName. */
  certPem: string;
  /** The server's private key (PEM). */
  keyPem: string;
};

/**
 * Creates `ca.pem`/`ca.key` and `server.pem`/`server.key` in `dir` (the caller owns and removes it).
 * Keys are EC P-256, which openssl makes instantly; both certificates are valid for one day.
 * The server certificate names `subject.ips` as IP addresses and `subject.dnsNames` (default
 * `["localhost"]`) as DNS names, since Node checks the URL's host against subjectAltName only.
 */
export async function createTestCa(
  dir: string,
  subject: { ips: string[]; dnsNames?: string[] },
): Promise<TestCa> {
  const caKey = join(dir, "ca.key");
  const caFile = join(dir, "ca.pem");
  const serverKey = join(dir, "server.key");
  const serverCsr = join(dir, "server.csr");
  const serverCert = join(dir, "server.pem");
  const extensions = join(dir, "server.ext");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

  await runOk("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    caKey,
    "-out",
    caFile,
    "-days",
    "1",
    "-subj",
    "/CN=azure-vnet test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);

  const altNames = [
    ...subject.ips.map((ip) => `IP:${ip}`),
    ...(subject.dnsNames ?? ["localhost"]).map((name) => `DNS:${name}`),
  ];
  await writeFile(
    extensions,
    [
      `subjectAltName=${altNames.join(",")}`,
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectKeyIdentifier=hash",
      "authorityKeyIdentifier=keyid",
      "",
    ].join("\n"),
  );
  await runOk("openssl", [
    "req",
    ...ec,
    "-keyout",
    serverKey,
    "-out",
    serverCsr,
    "-subj",
    "/CN=azure-vnet test server",
  ]);
  await runOk("openssl", [
    "x509",
    "-req",
    "-in",
    serverCsr,
    "-CA",
    caFile,
    "-CAkey",
    caKey,
    // A random serial instead of -CAcreateserial, which would leave a serial file behind.
    "-set_serial",
    `0x${randomBytes(8).toString("hex")}`,
    "-days",
    "1",
    "-extfile",
    extensions,
    "-out",
    serverCert,
  ]);

  return {
    caFile,
    certPem: await readFile(serverCert, "utf8"),
    keyPem: await readFile(serverKey, "utf8"),
  };
}
