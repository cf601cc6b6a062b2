/**
 * Compiles the NorPain profiles (profiles/input/fsh) with SUSHI, offline, into profiles/fsh-generated,
 * with snapshots (the validator in @medplum/core needs them). The generated JSON is committed so the
 * server starts without SUSHI; `--check` rebuilds into a temporary folder and fails if the committed
 * output differs, so a FSH change without a rebuild is caught.
 *
 * Usage: tsx scripts/build-profiles.ts [--check] [--fhir-home DIR]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildFhirCache, DEFAULT_FHIR_HOME } from './build-fhir-cache';

export const PROFILES_DIR = path.resolve(__dirname, '..', 'profiles');
export const GENERATED_DIR = path.join(PROFILES_DIR, 'fsh-generated');

export interface SushiRun {
  /** SUSHI's exit status: the number of errors it reported, capped by the OS. */
  status: number;
  /** SUSHI's log (warnings and errors only). */
  log: string;
  /** The folder given to SUSHI (`--out`); remove it when done. */
  outRoot: string;
  /** Where SUSHI put the output (`<outRoot>/fsh-generated`): `resources/`, `data/`, `fsh-index.txt`. */
  outDir: string;
}

/**
 * Runs SUSHI on the FSH project into `outRoot`, with HOME pointing at `fhirHome` so SUSHI reads the
 * package cache built there instead of a user's ~/.fhir (and never needs the package registry).
 */
export function runSushi(outRoot: string, fhirHome: string = DEFAULT_FHIR_HOME): SushiRun {
  buildFhirCache(fhirHome);
  const sushiPackage = require.resolve('fsh-sushi/package.json');
  const sushiBin = path.join(
    path.dirname(sushiPackage),
    (JSON.parse(fs.readFileSync(sushiPackage, 'utf8')) as { bin: { sushi: string } }).bin.sushi,
  );
  const result = spawnSync(
    process.execPath,
    [sushiBin, 'build', PROFILES_DIR, '--snapshot', '--log-level', 'warn', '--out', outRoot],
    {
      encoding: 'utf8',
      env: { ...process.env, HOME: fhirHome, USERPROFILE: fhirHome },
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  if (result.error) {
    throw result.error;
  }
  return {
    status: result.status ?? 1,
    log: `${result.stdout}${result.stderr}`,
    outRoot,
    outDir: path.join(outRoot, 'fsh-generated'),
  };
}

function listFiles(dir: string, prefix = ''): string[] {
  if (!fs.existsSync(dir)) {
    return [];
  }
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory()
        ? listFiles(path.join(dir, entry.name), path.join(prefix, entry.name))
        : [path.join(prefix, entry.name)],
    )
    .sort();
}

/** Files that differ, are missing or are extra in `actual` compared with `expected`. */
export function compareTrees(expected: string, actual: string): string[] {
  const expectedFiles = listFiles(expected);
  const actualFiles = listFiles(actual);
  const all = [...new Set([...expectedFiles, ...actualFiles])].sort();
  return all.filter((file) => {
    const a = path.join(expected, file);
    const b = path.join(actual, file);
    return !fs.existsSync(a) || !fs.existsSync(b) || !fs.readFileSync(a).equals(fs.readFileSync(b));
  });
}

/** Builds into a temporary folder; the caller decides whether to install or compare it. */
export function buildToTemp(fhirHome?: string): SushiRun {
  return runSushi(fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-profiles-')), fhirHome);
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const homeIndex = argv.indexOf('--fhir-home');
  const fhirHome = homeIndex >= 0 ? path.resolve(argv[homeIndex + 1]) : DEFAULT_FHIR_HOME;
  const run = buildToTemp(fhirHome);
  try {
    if (run.status !== 0) {
      process.stderr.write(run.log);
      console.error(`SUSHI reported errors (exit ${run.status}); profiles/fsh-generated left unchanged.`);
      return 1;
    }
    // SUSHI always tries to add the tools, terminology and extensions packages, which are not reachable
    // offline; that is harmless as long as the FSH does not use them. Any other warning is shown.
    for (const line of run.log.split('\n')) {
      if (line.startsWith('warn') && !line.includes('automatically-provided')) {
        console.warn(line);
      }
    }
    if (check) {
      const differences = compareTrees(GENERATED_DIR, run.outDir);
      if (differences.length > 0) {
        console.error(
          `profiles/fsh-generated is out of date (${differences.join(', ')}); run npm run build:profiles.`,
        );
        return 1;
      }
      console.log('profiles/fsh-generated matches the FSH sources.');
      return 0;
    }
    fs.rmSync(GENERATED_DIR, { recursive: true, force: true });
    fs.cpSync(run.outDir, GENERATED_DIR, { recursive: true });
    console.log(
      `Wrote ${listFiles(path.join(GENERATED_DIR, 'resources')).length} resources to profiles/fsh-generated.`,
    );
    return 0;
  } finally {
    fs.rmSync(run.outRoot, { recursive: true, force: true });
  }
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
