import { auditVerifyCommand } from '../audit/verifyCommand';
import { isConfigError } from '../config';
import { dispatchCommand, ratesCommand } from '../followup/commands';
import { rekeyCommand } from '../identity/rekeyCommand';
import type { CliCommand } from './command';
import { UsageError } from './command';
import { serveCommand } from './serve';
import { tokenCommand } from './token';

/** Every subcommand; add new ones here. */
const COMMANDS: CliCommand[] = [
  serveCommand,
  tokenCommand,
  auditVerifyCommand,
  rekeyCommand,
  dispatchCommand,
  ratesCommand,
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: norpain <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'norpain help <command> shows a command’s options.',
  ].join('\n');
}

/** The longest command name that prefixes the arguments, so "audit verify" and "audit" can coexist. */
function findCommand(args: string[]): { command: CliCommand; rest: string[] } | undefined {
  const matches = COMMANDS.map((command) => ({ command, words: command.name.split(' ') }))
    .filter(({ words }) => words.every((word, i) => args[i] === word))
    .sort((a, b) => b.words.length - a.words.length);
  const best = matches[0];
  return best === undefined ? undefined : { command: best.command, rest: args.slice(best.words.length) };
}

export async function main(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(overview() + '\n');
    return args.length === 0 ? 2 : 0;
  }
  if (args[0] === 'help') {
    const found = findCommand(args.slice(1));
    process.stdout.write((found?.command.usage ?? overview()) + '\n');
    return found ? 0 : 2;
  }
  const found = findCommand(args);
  if (found === undefined) {
    process.stderr.write(`norpain: unknown command "${args[0]}"\n\n${overview()}\n`);
    return 2;
  }
  try {
    return await found.command.run(found.rest, env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `norpain ${found.command.name}: ${err.message}\n\nusage: ${found.command.usage}\n`,
      );
      return 2;
    }
    if (isConfigError(err)) {
      // An operator error: one clear line, no stack trace.
      process.stderr.write(`norpain: configuration error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Entry point for bin/norpain.js: runs the command and sets the exit code. */
export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // Unexpected failures: the error's class and message, without a stack trace.
      const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      process.stderr.write(`norpain: failed: ${text}\n`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) {
  runCli();
}
