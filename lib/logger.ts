/**
 * Structured logging: one JSON object per line on stdout, which both dockerd (managed plugin) and
 * journald (host service) capture as they are.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export type Logger = {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  setLevel(level: LogLevel): void;
};

/** Writes log lines to `write` (stdout by default); tests pass a collector. */
export function createLogger(
  level: LogLevel = "info",
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  let threshold = LOG_LEVELS.indexOf(level);
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(lvl) < threshold) return;
    write(
      JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }, errorReplacer) + "\n",
    );
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    setLevel: (lvl) => {
      threshold = LOG_LEVELS.indexOf(lvl);
    },
  };
}

/** A logger that drops everything, for unit tests that do not look at logs. */
export const silentLogger: Logger = createLogger("error", () => undefined);

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}
