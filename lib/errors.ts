/**
 * Typed errors of the plugin. Every error a handler can raise carries a stable code, the HTTP status
 * dockerd will see, and a hint that tells the user what to do. The error middleware turns them into
 * `{"Err": "<message> — <hint>"}` with a non-200 status, which both plugin APIs surface to the user.
 */

/** Options shared by every plugin error. */
export type PluginErrorOptions = { hint?: string; cause?: unknown };

/** Base class; never thrown directly. */
export abstract class PluginError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly hint: string | undefined;

  constructor(message: string, options: PluginErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }

  /** The text dockerd shows the user. */
  get userMessage(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message;
  }
}

/** The request is malformed or asks for something this VM cannot give (400). */
export class InvalidParameterError extends PluginError {
  readonly code = "ERR_INVALID_PARAMETER";
  readonly status = 400;
}

/** The request is valid but collides with existing state, such as an address held by another endpoint (409). */
export class ConflictError extends PluginError {
  readonly code = "ERR_CONFLICT";
  readonly status = 409;
}

/**
 * An id the request names is unknown. Deliberately 500, not 404: dockerd reads a 404 from some calls as
 * "not implemented" and ignores it.
 */
export class NotFoundError extends PluginError {
  readonly code = "ERR_NOT_FOUND";
  readonly status = 500;
}

/** Every usable address is taken (503: it may succeed once the NIC has more IP configurations). */
export class PoolExhaustedError extends PluginError {
  readonly code = "ERR_POOL_EXHAUSTED";
  readonly status = 503;
}

/**
 * Something we depend on (IMDS, wireserver, Azure Resource Manager, a host tool) did not answer
 * usefully (503): trying again later may help. lib/host-net's HostToolError and lib/arm's
 * IpConfigurationMissingError are kinds of it that callers catch by type.
 */
export class UnavailableError extends PluginError {
  readonly code = "ERR_UNAVAILABLE";
  readonly status = 503;
}

/** An answer that asked us to come back later (429/503 with Retry-After); 503 to dockerd. */
export class RetryLaterError extends UnavailableError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
    options: PluginErrorOptions = {},
  ) {
    super(message, options);
  }
}

/** The persisted state cannot be used as it is; an operator has to look (500). */
export class StateError extends PluginError {
  readonly code = "ERR_STATE";
  readonly status = 500;
}

/** A bug or an unexpected failure (500), such as a safety check in lib/host-net refusing a value. */
export class InternalError extends PluginError {
  readonly code = "ERR_INTERNAL";
  readonly status = 500;
}

/** Wraps anything thrown into a PluginError, keeping PluginErrors as they are. */
export function toPluginError(error: unknown): PluginError {
  if (error instanceof PluginError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InternalError(message, { cause: error });
}
