/**
 * Reading fields out of a decoded request body, for both plugin APIs. Each reader checks the type once,
 * here at the edge, and names the field in its error; deeper code gets typed values only.
 */
import { InvalidParameterError } from "./errors.js";

export type RequestBody = Record<string, unknown>;

const MAX_FIELD_LENGTH = 4096;

/** A string field; "" and absence both give "" unless `required`. */
export function stringField(body: RequestBody, name: string, required = false): string {
  const value = body[name];
  if (value === undefined || value === null) {
    if (required) throw missing(name);
    return "";
  }
  if (typeof value !== "string")
    throw new InvalidParameterError(`"${name}" must be a string, not ${typeName(value)}`);
  if (value.length > MAX_FIELD_LENGTH)
    throw new InvalidParameterError(`"${name}" is longer than ${MAX_FIELD_LENGTH} characters`);
  if (required && value === "") throw missing(name);
  return value;
}

/** A boolean field; absent gives false. */
export function booleanField(body: RequestBody, name: string): boolean {
  const value = body[name];
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean")
    throw new InvalidParameterError(`"${name}" must be true or false, not ${typeName(value)}`);
  return value;
}

/** A map of string to string (Docker's option maps); absent gives {}. */
export function stringMapField(body: RequestBody, name: string): Record<string, string> {
  const value = body[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidParameterError(`"${name}" must be an object of strings, not ${typeName(value)}`);
  }
  const result: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string")
      throw new InvalidParameterError(`"${name}.${key}" must be a string, not ${typeName(entry)}`);
    result[key] = entry;
  }
  return result;
}

function missing(name: string): InvalidParameterError {
  return new InvalidParameterError(`"${name}" is required`);
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value).slice(0, 40)}`;
}
