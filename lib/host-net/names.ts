/**
 * Checks every name and value before it is passed to a host tool. Host tools get argument arrays, never
 * a shell, but a value starting with "-" or holding odd characters could still change what a tool does.
 * Requests are validated at the edge, so a refusal here (or of a sysctl, MAC, ebtables chain or rule
 * word elsewhere in lib/host-net) is a bug: every one is an InternalError (500), never "try later".
 */
import { InternalError } from "../errors.js";

const INTERFACE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;
const CHAIN_NAME = /^[A-Z][A-Z0-9-]{0,27}$/;
const COMMENT = /^[a-zA-Z0-9 :._/-]{1,200}$/;

/** Returns `name` if it is a plausible interface name (at most 15 characters); throws otherwise. */
export function checkInterfaceName(name: string): string {
  if (!INTERFACE_NAME.test(name)) throw new InternalError(`refusing interface name ${JSON.stringify(name)}`);
  return name;
}

/** Returns `name` if it is an iptables chain name of ours (upper case, at most 28 characters). */
export function checkChainName(name: string): string {
  if (!CHAIN_NAME.test(name)) throw new InternalError(`refusing iptables chain name ${JSON.stringify(name)}`);
  return name;
}

/** Returns `comment` if iptables' comment match can carry it without quoting surprises. */
export function checkComment(comment: string): string {
  if (!COMMENT.test(comment)) throw new InternalError(`refusing rule comment ${JSON.stringify(comment)}`);
  return comment;
}
