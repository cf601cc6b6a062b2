/**
 * Validation and scoring speed for a completed NorPain baseline response, on one core:
 *   npx tsx bench/validate/run.ts
 * Prints µs per response for each part and responses per second for the whole (base validation with
 * validateResource + Questionnaire resolution + QR-vs-Questionnaire validation + score recomputation).
 * Goals (issue 5): whole ≥ 1,000/s; QR-vs-Questionnaire validation alone ≤ 100 µs.
 */
import { validateResource } from '@medplum/core';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
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

function measure(name: string, fn: () => unknown, minMs = 2000): number {
  for (let i = 0; i < 200; i++) fn(); // warm up the JIT
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const us = (elapsed * 1000) / n;
  console.log(
    `${name.padEnd(58)} ${us.toFixed(1).padStart(8)} µs   ${Math.round(1e6 / us)
      .toString()
      .padStart(7)} /s`,
  );
  return us;
}

async function measureAsync(name: string, fn: () => Promise<unknown>, minMs = 3000): Promise<number> {
  for (let i = 0; i < 200; i++) await fn();
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 50; i++) await fn();
    n += 50;
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const us = (elapsed * 1000) / n;
  console.log(
    `${name.padEnd(58)} ${us.toFixed(1).padStart(8)} µs   ${Math.round(1e6 / us)
      .toString()
      .padStart(7)} /s`,
  );
  return us;
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
  const scoring = measure('score recomputation (20 calculatedExpressions)', () =>
    applyScores(compiled, response),
  );
  const base = measure('base R4 validation (validateResource)', () => validateResource(response));
  const full = await measureAsync('whole: base + resolve + QR validation + scoring', async () => {
    validateResource(response);
    const check = await checkQuestionnaireResponse(registry, response);
    if (!check.response) throw new Error('rejected');
  });
  console.log(
    `\nsummary: whole ${Math.round(1e6 / full)}/s (goal ≥ 1000/s); QR-vs-Questionnaire ${qr.toFixed(1)} µs (goal ≤ 100 µs); ` +
      `scoring ${scoring.toFixed(0)} µs; base ${base.toFixed(0)} µs`,
  );
}

void main();
