/**
 * Bulk Data export benchmark (not a test): a synthetic cohort in the embedded store, exported through
 * HTTP as a bulk client does it (kick-off, poll, download), with resources per second and the process's
 * peak RSS (the server, kick-off and polling are this process; the files are downloaded by `curl` in a
 * child process, whose output is only counted here, so that a client's buffers are not taken for the
 * server's; the cohort is loaded by a child process beforehand, so its memory is not counted either).
 *
 *   npx tsx bench/export/run.ts [--persons 100000] [--data-dir DIR (reuse a loaded cohort)] [--keep] [--researcher]
 *                               [--profile FILE.cpuprofile (the job's CPU profile, kick-off to manifest)]
 *
 * Issue 13's goal: ≥ 30,000 resources/s with RSS under 250 MB throughout, at 100,000 persons.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ResearchStudy } from '@medplum/fhirtypes';
import { issueDevToken } from '../../src/auth/devTokens';
import { loadConfig } from '../../src/config';
import { awaitManifest, kickOff } from '../../src/export/client';
import { createLogger } from '../../src/logging/logger';
import { createServer } from '../../src/server';
import { readUnits, RESH_SYSTEM } from '../../src/units/units';
import { NORPAIN_QUESTIONNAIRE_URLS } from '../../src/validation/questionnaire';

const BENCH_STUDY = 'bench-export';
const EXT = 'https://norpain.no/fhir/StructureDefinition/';

function benchApproval(units: string[]): ResearchStudy {
  const variables = [
    'Patient.gender',
    'EpisodeOfCare.period',
    'EpisodeOfCare.patient',
    'Encounter.period',
    'Encounter.subject',
    'Condition.code',
    'Condition.subject',
    'Procedure.code',
    'Procedure.subject',
    'QuestionnaireResponse.subject',
    'QuestionnaireResponse.authored',
    `${NORPAIN_QUESTIONNAIRE_URLS.baseline}#nrs-gjennomsnitt`,
    `${NORPAIN_QUESTIONNAIRE_URLS.followUp12m}#nrs-gjennomsnitt`,
  ];
  return {
    resourceType: 'ResearchStudy',
    id: BENCH_STUDY,
    meta: { profile: ['https://norpain.no/fhir/StructureDefinition/norpain-researchstudy-approval'] },
    extension: [
      ...variables.map((v) => ({ url: `${EXT}approved-variable`, valueString: v })),
      { url: `${EXT}date-precision`, valueCode: 'month' },
      { url: `${EXT}age-band`, valuePositiveInt: 10 },
      ...units.map((unit) => ({
        url: `${EXT}covered-unit`,
        valueIdentifier: { system: RESH_SYSTEM, value: unit },
      })),
    ],
    identifier: [{ system: 'https://norpain.no/fhir/NamingSystem/research-approval', value: 'bench-1' }],
    title: 'Export benchmark',
    status: 'active',
    period: { start: '2020-01-01', end: '2030-12-31' },
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const USAGE = `usage: npx tsx bench/export/run.ts [--persons N] [--data-dir DIR] [--keep] [--researcher] [--profile FILE]
  --persons N       size of the cohort loaded into a new DATA_DIR (default 100000)
  --data-dir DIR    export a cohort already loaded there (test/generators/cohort.ts); the bench writes its
                    approval, export files and audit entries into it
  --keep            keep the new DATA_DIR
  --researcher      export as a researcher (the study view) instead of as registry staff
  --profile FILE    write the CPU profile of the job (kick-off to manifest) to FILE (.cpuprofile)
`;

/** The CPU profile of what runs between start and the returned stop, written to `file`. */
async function startProfile(file: string): Promise<() => Promise<void>> {
  const session = new inspector.Session();
  session.connect();
  const post = (method: string) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, (err, result) => (err ? reject(err) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.start');
  return async () => {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  const persons = Number(arg('persons') ?? 100_000);
  const given = arg('data-dir');
  const dataDir = given ?? fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-bench-export-'));
  if (given === undefined) {
    process.stdout.write(`loading a cohort of ${persons} persons into ${dataDir} …\n`);
    const load = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'test/generators/cohort.ts', '--persons', String(persons), '--data-dir', dataDir],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (load.status !== 0) throw new Error('loading the cohort failed');
  }

  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 50);
  const config = loadConfig({
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
  });
  const server = await createServer(config, { logger: createLogger({ level: 'warn' }), identityEnv: {} });
  const listening = await server.listen(0, '127.0.0.1');
  const base = `${listening.url}/fhir`;
  const staff = await issueDevToken(config, { role: 'registry-admin', expiresIn: '2h' });
  // As a researcher: the study view of an approval covering every unit and type (projection, project
  // pseudonyms and the cohort check on each resource); else as registry staff (the store as it is).
  const researcher = process.argv.includes('--researcher');
  if (researcher) {
    const put = await fetch(`${base}/ResearchStudy/${BENCH_STUDY}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${staff}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(benchApproval(readUnits(config.unitsFile).map((u) => u.resh))),
    });
    if (put.status >= 300) throw new Error(`the approval was refused: ${put.status} ${await put.text()}`);
  }
  const token = researcher
    ? await issueDevToken(config, { role: 'researcher', study: BENCH_STUDY, expiresIn: '2h' })
    : staff;
  const bearer = async () => token;
  const rssAtStart = process.memoryUsage.rss();

  const profileFile = arg('profile');
  const stopProfile = profileFile === undefined ? undefined : await startProfile(profileFile);
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  const manifest = await awaitManifest(await kickOff(`${base}/$export`, bearer), bearer, { maxWaitMs: 200 });
  const written = performance.now();
  const jobCpu = process.cpuUsage(cpuAtStart);
  await stopProfile?.();
  const jobPeakRss = Math.max(peakRss, process.memoryUsage.rss());
  let resources = 0;
  let bytes = 0;
  for (const file of manifest.output) {
    // The token goes in on stdin, not in the command line that every process can read.
    const curl = spawn('curl', ['--silent', '--fail', '--header', '@-', file.url], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    curl.stdin.end(`Authorization: Bearer ${token}\n`);
    const exited = new Promise<number | null>((resolve) => curl.once('exit', resolve));
    await pipeline(
      curl.stdout,
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          bytes += chunk.length;
          for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) resources += 1;
          done();
        },
      }),
    );
    if ((await exited) !== 0) throw new Error(`curl could not download ${file.url}`);
  }
  const finished = performance.now();
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());

  const seconds = (finished - started) / 1000;
  const jobSeconds = (written - started) / 1000;
  const jobCpuSeconds = (jobCpu.user + jobCpu.system) / 1e6;
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
  const perType = manifest.output.map((f) => `${f.type} ${f.count}`).join(', ');
  process.stdout.write(
    [
      `${researcher ? 'researcher (study view)' : 'staff'} export of ${resources} resources (${perType}), ${mb(bytes)} of NDJSON, ${manifest.output.length} files`,
      `  job (kick-off to manifest): ${jobSeconds.toFixed(1)} s, ${(resources / jobSeconds).toFixed(0)} resources/s; ` +
        `${jobCpuSeconds.toFixed(1)} CPU s, ${(resources / jobCpuSeconds).toFixed(0)} resources per CPU second`,
      `  with downloads:             ${seconds.toFixed(1)} s, ${(resources / seconds).toFixed(0)} resources/s`,
      `  RSS: ${mb(rssAtStart)} after start, peak ${mb(jobPeakRss)} during the job, ${mb(peakRss)} with the downloads (sampled every 50 ms)`,
      `  load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`,
      '',
    ].join('\n'),
  );
  await listening.close();
  await server.close();
  if (given === undefined && !process.argv.includes('--keep'))
    fs.rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/export: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  // Not only the exit code: the server would keep the process (and its sweeper, on DATA_DIR) alive.
  process.exit(1);
});
