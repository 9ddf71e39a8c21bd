/**
 * ARM's error answers: the error the handlers throw and the request loop sends as
 * `{"error":{"code","message"}}`, and the errors more than one resource's handlers raise.
 */

/** What a handler answers: a status, an optional JSON body and extra headers. */
export type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

/** An error answer in ARM's shape, thrown by the handlers and sent by the request loop. */
export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A request body ARM could not read. */
export function invalidContent(detail: string): ArmError {
  return new ArmError(
    400,
    "InvalidRequestContent",
    `The request content was invalid and could not be deserialized: ${detail}.`,
  );
}

/** A resource named in a request that does not exist (or not where it is said to be). */
export function invalidReference(reference: string, by: string): ArmError {
  return new ArmError(
    400,
    "InvalidResourceReference",
    `Resource ${reference} referenced by resource ${by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
  );
}

/** A GET (or change) of a resource the resource group does not hold. */
export function resourceNotFound(type: string, name: string, resourceGroup: string): ArmError {
  return new ArmError(
    404,
    "ResourceNotFound",
    `The Resource 'Microsoft.Network/${type}/${name}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
  );
}

/** Something Azure does that the stand-in does not model. */
export function notModelled(message: string): ArmError {
  return new ArmError(501, "NotImplementedInStandIn", message);
}
