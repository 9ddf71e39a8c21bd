/**
 * Checks every name and value before it is passed to a host tool. Host tools get argument arrays, never
 * a shell, but a value starting with "-" or holding odd characters could still change what a tool does.
 */
import { InternalError } from "../errors.js";

const INTERFACE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/;
const CHAIN_NAME = /^[A-Z][A-Z0-9-]{0,27}$/;
const COMMENT = /^[a-zA-Z0-9 :._/-]{1,200}$/;

export function checkInterfaceName(name: string): string {
  if (!INTERFACE_NAME.test(name)) throw new InternalError(`refusing interface name ${JSON.stringify(name)}`);
  return name;
}

export function checkChainName(name: string): string {
  if (!CHAIN_NAME.test(name)) throw new InternalError(`refusing iptables chain name ${JSON.stringify(name)}`);
  return name;
}

export function checkComment(comment: string): string {
  if (!COMMENT.test(comment)) throw new InternalError(`refusing rule comment ${JSON.stringify(comment)}`);
  return comment;
}
