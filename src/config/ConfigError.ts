/**
 * A configuration problem the operator must fix. Its message names the variable and the value's problem;
 * the CLI prints it as one line without a stack trace.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}
