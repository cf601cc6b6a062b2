import { types } from 'node:util';
import type { LogLevel } from '../config';
import { redactNationalIdsWith } from '../identity/nationalId';

/**
 * Structured JSON logs, one object per line on stdout, for the container's log collector.
 * Callers pass only safe fields: never request bodies, query strings, tokens or person identifiers.
 */
export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line (e.g. { component: 'followup' }). */
  child(fields: LogFields): Logger;
}

export type LogSink = (line: string) => void;

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

const stdoutSink: LogSink = (line) => {
  process.stdout.write(line + '\n');
};

export function createLogger(options: { level?: LogLevel; sink?: LogSink; fields?: LogFields } = {}): Logger {
  const threshold = SEVERITY[options.level ?? 'info'];
  const sink = options.sink ?? stdoutSink;
  const base = options.fields ?? {};
  const write = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (SEVERITY[level] < threshold) {
      return;
    }
    // The log guard: callers pass only safe fields, but whatever looks like a national id is redacted
    // on the way out all the same (the one detector, src/identity/nationalId.ts).
    sink(
      redactNationalIdsWith(
        JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }),
      ),
    );
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    child: (fields) => createLogger({ level: options.level, sink, fields: { ...base, ...fields } }),
  };
}

let current: Logger = createLogger({ level: levelFromEnv() });

/** The process-wide logger, for modules that are not handed one. `norpain serve` configures it. */
export function getLogger(): Logger {
  return current;
}

export function setLogger(logger: Logger): void {
  current = logger;
}

/** Before configuration is loaded, honour LOG_LEVEL if it is a valid level; Jest workers stay quiet. */
function levelFromEnv(): LogLevel {
  const raw = process.env.LOG_LEVEL;
  if (raw === 'debug' || raw === 'info' || raw === 'warn' || raw === 'error' || raw === 'silent') {
    return raw;
  }
  return process.env.JEST_WORKER_ID !== undefined ? 'warn' : 'info';
}

/**
 * What may be logged about an error: its class and code, and where it was thrown. Not its message,
 * which may quote input (identifiers), and not the stack, which does not belong in logs.
 */
export function describeError(err: unknown): LogFields {
  // An error made in another realm (a native module's, a test runner's sandbox) is no `instanceof Error`.
  if (!(err instanceof Error) && !types.isNativeError(err)) {
    return { errorType: typeof err };
  }
  const frame = err.stack
    ?.split('\n')
    .find((line) => line.trimStart().startsWith('at '))
    ?.trim()
    .replace(/^at\s+/, '');
  const code = (err as { code?: unknown }).code;
  return {
    errorType: err.name,
    errorCode: typeof code === 'string' || typeof code === 'number' ? String(code) : undefined,
    errorAt: frame,
  };
}
