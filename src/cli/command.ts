import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * A `norpain` subcommand. To add one (rekey, audit verify, report …), write a module exporting a
 * CliCommand and list it in main.ts.
 */
export interface CliCommand {
  /** One word or several ("audit verify"): the words the user types after `norpain`. */
  name: string;
  /** One line for the usage overview. */
  summary: string;
  /** Full usage text shown by `norpain help NAME` and on a usage error. */
  usage: string;
  /** Runs with the remaining arguments; resolves to the process exit code. */
  run(args: string[], env: NodeJS.ProcessEnv): Promise<number>;
}

/** Wrong arguments: main prints the message and the command's usage and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses a subcommand's options (no positionals, unknown options refused) into a UsageError on mistakes. */
export function parseOptions<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A `--year YYYY` option's value as a number; a UsageError for anything but a four-digit year. */
export function yearOption(text: string): number {
  if (!/^(19|20)\d{2}$/.test(text)) {
    throw new UsageError('--year must be a year such as 2024');
  }
  return Number(text);
}
