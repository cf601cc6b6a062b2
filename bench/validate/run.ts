/**
 * Validation and scoring speed for a completed NorPain baseline response, on one core:
 *   npx tsx bench/validate/run.ts
 * Prints µs per response (wall and CPU) for each part, and responses per second of CPU for the whole:
 * base R4 validation (@medplum/core with the compiled item check of src/validation/fast, + required
 * bindings), NorPain profile validation, and the Questionnaire stage (resolve the canonical, validate
 * against the Questionnaire, recompute the scores, on the compiled FHIRPath subset with fhirpath as
 * fallback; fhirpath alone is timed for comparison). For comparison it also times @medplum/core's
 * validateResource on the whole response, which base and profile validation each used before.
 * Goals (issue 5): whole ≥ 1,000/s; QR-vs-Questionnaire validation alone ≤ 100 µs. Run it pinned to one
 * core (`taskset -c 0`); on a busy machine read the CPU column.
 */
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { validateResource } from '@medplum/core';
import { baseValidationIssues } from '../../src/validation/base';
import { itemsConform } from '../../src/validation/fast/response-items';
import { loadNorPainProfiles, profileIssues } from '../../src/validation/profiles';
import {
  applyScores,
  checkQuestionnaireResponse,
  compileQuestionnaire,
  listQuestionnaireSource,
  QuestionnaireRegistry,
  readNorPainQuestionnaires,
  validateQuestionnaireResponse,
} from '../../src/validation/questionnaire';
import { fillResponse } from '../../test/validation/responses';

/** Wall time and this process's CPU time per call: on a shared machine the CPU figure is the steadier one. */
interface Figure {
  wallUs: number;
  cpuUs: number;
}

function report(name: string, n: number, wallMs: number, cpu: NodeJS.CpuUsage): Figure {
  const wallUs = (wallMs * 1000) / n;
  const cpuUs = (cpu.user + cpu.system) / n;
  console.log(
    `${name.padEnd(56)} ${wallUs.toFixed(1).padStart(8)} µs wall ${cpuUs.toFixed(1).padStart(8)} µs CPU ${Math.round(
      1e6 / cpuUs,
    )
      .toString()
      .padStart(7)} /s of CPU`,
  );
  return { wallUs, cpuUs };
}

function measure(name: string, fn: () => unknown, minMs = 2000): Figure {
  for (let i = 0; i < 200; i++) fn(); // warm up the JIT
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return report(name, n, elapsed, process.cpuUsage(cpu0));
}

async function measureAsync(name: string, fn: () => Promise<unknown>, minMs = 3000): Promise<Figure> {
  for (let i = 0; i < 200; i++) await fn();
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 50; i++) await fn();
    n += 50;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return report(name, n, elapsed, process.cpuUsage(cpu0));
}

async function main(): Promise<void> {
  loadFhirDefinitions();
  const questionnaires = readNorPainQuestionnaires();
  const baseline = questionnaires.find((q) => q.url?.endsWith('/norpain-baseline'));
  if (!baseline) throw new Error('baseline Questionnaire missing');
  const response = fillResponse(baseline);
  const count = (items: typeof response.item): number =>
    (items ?? []).reduce((n, i) => n + 1 + count(i.item), 0);
  console.log(
    `baseline response: ${count(response.item)} items, ${JSON.stringify(response).length} bytes JSON`,
  );

  measure('compile the Questionnaire (once per url|version)', () => compileQuestionnaire(baseline), 1000);
  const compiled = compileQuestionnaire(baseline);
  const registry = new QuestionnaireRegistry(listQuestionnaireSource(questionnaires));

  if (validateQuestionnaireResponse(compiled, response).length) throw new Error('fixture is not valid');
  const qr = measure('QR-vs-Questionnaire validation alone', () =>
    validateQuestionnaireResponse(compiled, response),
  );
  const scoring = measure(`score recomputation (${compiled.calculated.length} calculatedExpressions)`, () =>
    applyScores(compiled, response),
  );
  const reference = measure('score recomputation, fhirpath only (the reference)', () =>
    applyScores(compiled, response, { referenceOnly: true }),
  );
  const stage = await measureAsync('Questionnaire stage: resolve + QR validation + scoring', async () => {
    const check = await checkQuestionnaireResponse(registry, response);
    if (!check.response) throw new Error('rejected');
  });
  console.log(`item tree in the common shape (compiled check): ${itemsConform(response.item)}`);
  const medplum = measure('@medplum/core validateResource, whole response (before)', () =>
    validateResource(response),
  );
  const base = measure('base R4 validation (compiled items + bindings)', () =>
    baseValidationIssues(response),
  );
  loadNorPainProfiles();
  const profile = measure('NorPain profile validation', () => profileIssues(response));
  const full = await measureAsync('whole: base + profile + Questionnaire stage', async () => {
    baseValidationIssues(response);
    profileIssues(response);
    const check = await checkQuestionnaireResponse(registry, response);
    if (!check.response) throw new Error('rejected');
  });
  const rate = (f: Figure): number => Math.round(1e6 / f.cpuUs);
  console.log(
    `\nsummary (CPU time, one core): whole ${rate(full)}/s (goal ≥ 1000/s); ` +
      `QR-vs-Questionnaire ${qr.cpuUs.toFixed(1)} µs (goal ≤ 100 µs); scoring ${scoring.cpuUs.toFixed(0)} µs ` +
      `(${reference.cpuUs.toFixed(0)} µs with fhirpath alone); ` +
      `Questionnaire stage ${stage.cpuUs.toFixed(0)} µs (${rate(stage)}/s); base ${base.cpuUs.toFixed(0)} µs; ` +
      `profile ${profile.cpuUs.toFixed(0)} µs (each was ≥ ${medplum.cpuUs.toFixed(0)} µs with validateResource)`,
  );
}

void main();
