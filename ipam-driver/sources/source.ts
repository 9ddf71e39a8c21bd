/**
 * The contract every pool source fulfils: read this VM's NICs, their subnets and their addresses from
 * wherever the source looks (IMDS, wireserver, a file).
 */
import type { SourceNic } from "../inventory.js";

export type PoolSource = {
  /** Short name for logs and errors: "imds", "wireserver", "file". */
  readonly name: string;
  /** Where it reads from, for messages. */
  readonly location: string;
  /** Reads the NIC list once. Throws UnavailableError when the source did not answer usefully. */
  fetchNics(): Promise<SourceNic[]>;
};
