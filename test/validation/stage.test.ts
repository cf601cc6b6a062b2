import type { Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { questionnaireStage } from '../../src/ingest/questionnaire-stage';
import { isFhirError, type FhirError } from '../../src/fhir/outcomes';
import type { Write } from '../../src/ingest/write';
import {
  checkQuestionnaireResponse,
  listQuestionnaireSource,
  QuestionnaireRegistry,
  readNorPainQuestionnaires,
} from '../../src/validation/questionnaire';
import { answersOf, fillResponse } from './responses';

const norpain = readNorPainQuestionnaires();
const baseline = norpain.find((q) => q.url?.endsWith('/norpain-baseline')) as Questionnaire;
const v2: Questionnaire = { ...baseline, id: 'norpain-baseline-2.0.0', version: '2.0.0' };
const registry = new QuestionnaireRegistry(listQuestionnaireSource([...norpain, v2]));
const ctx = {
  principal: { role: 'portal' as const, clientId: 'portal', scopes: [] },
  requestId: 'r1',
  base: 'http://localhost/fhir',
};
const single = (resource: QuestionnaireResponse | Questionnaire): Write => ({
  transaction: false,
  entries: [{ method: 'POST', resourceType: resource.resourceType, resource }],
});

async function refusal(promise: Promise<unknown>): Promise<FhirError> {
  try {
    await promise;
  } catch (err) {
    if (isFhirError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('Questionnaire resolution', () => {
  it('url|version names that version; a plain url the latest', async () => {
    expect((await registry.resolve(`${baseline.url}|1.0.0`)).canonical).toBe(`${baseline.url}|1.0.0`);
    expect((await registry.resolve(baseline.url)).canonical).toBe(`${baseline.url}|2.0.0`);
  });
  it('compiles each Questionnaire once', async () => {
    expect(await registry.resolve(`${baseline.url}|1.0.0`)).toBe(
      await registry.resolve(`${baseline.url}|1.0.0`),
    );
  });
  it.each([`${baseline.url}|9.9.9`, 'https://example.org/unknown', undefined])(
    'refuses %s with 422 at questionnaire',
    async (reference) => {
      const err = await refusal(registry.resolve(reference));
      expect(err.status).toBe(422);
      expect(err.outcome.issue?.[0].expression).toEqual(['QuestionnaireResponse.questionnaire']);
    },
  );
});

describe('the ingest stage', () => {
  const stage = questionnaireStage(registry);

  it('accepts a valid response, recomputes its scores and pins the version', async () => {
    const qr = fillResponse(baseline);
    qr.questionnaire = baseline.url;
    const out = await stage(single(qr), ctx);
    const stored = out.entries[0].resource as QuestionnaireResponse;
    expect(stored.questionnaire).toBe(`${baseline.url}|2.0.0`);
    expect(answersOf(stored, 'isi-sum')).toHaveLength(1);
  });

  it('refuses an invalid response with 422 and expressions into it', async () => {
    const qr = fillResponse(baseline, {
      'isi-1': [{ valueCoding: { system: 'https://norpain.no/fhir/CodeSystem/isi-alvorlighet', code: '9' } }],
    });
    const err = await refusal(Promise.resolve(stage(single(qr), ctx)));
    expect(err.status).toBe(422);
    expect(err.outcome.issue?.[0].expression?.[0]).toMatch(
      /^QuestionnaireResponse\.item\[6\]\.item\[0\]\.answer\[0\]$/,
    );
  });

  it('points into the Bundle entry in a transaction', async () => {
    const qr = fillResponse(baseline, { 'isi-1': [{ valueInteger: 2 }] });
    const write: Write = {
      transaction: true,
      entries: [
        { method: 'POST', resourceType: 'Patient', resource: { resourceType: 'Patient' } },
        ...single(qr).entries,
      ],
    };
    const err = await refusal(Promise.resolve(stage(write, ctx)));
    expect(err.outcome.issue?.[0].expression?.[0]).toMatch(/^Bundle\.entry\[1\]\.resource\.item\[6\]/);
  });

  it('validates against a Questionnaire written in the same transaction', async () => {
    const q: Questionnaire = {
      resourceType: 'Questionnaire',
      url: 'https://example.org/new',
      version: '1',
      status: 'active',
      item: [{ linkId: 'a', type: 'integer', required: true }],
    };
    const qr: QuestionnaireResponse = {
      resourceType: 'QuestionnaireResponse',
      questionnaire: 'https://example.org/new',
      status: 'completed',
      item: [{ linkId: 'a', answer: [{ valueInteger: 1 }] }],
    };
    const out = await stage(
      { transaction: true, entries: [...single(q).entries, ...single(qr).entries] },
      ctx,
    );
    expect((out.entries[1].resource as QuestionnaireResponse).questionnaire).toBe(
      'https://example.org/new|1',
    );
  });

  it('refuses a Questionnaire whose enableWhen names a missing question', async () => {
    const q: Questionnaire = {
      resourceType: 'Questionnaire',
      status: 'active',
      item: [
        {
          linkId: 'a',
          type: 'string',
          enableWhen: [{ question: 'x', operator: 'exists', answerBoolean: true }],
        },
      ],
    };
    const err = await refusal(Promise.resolve(stage(single(q), ctx)));
    expect(err.outcome.issue?.[0].expression).toEqual(['Questionnaire.item[0].enableWhen[0].question']);
  });

  it('$validate reports issues and stores nothing', async () => {
    const check = await checkQuestionnaireResponse(registry, {
      resourceType: 'QuestionnaireResponse',
      questionnaire: `${baseline.url}|1.0.0`,
      status: 'completed',
      item: [{ linkId: 'bakgrunn', item: [] }],
    });
    expect(check.response).toBeUndefined();
    expect(check.issues.map((i) => i.details?.text)).toEqual([
      expect.stringContaining("Required item 'utdanning'"),
    ]);
    const ok = await checkQuestionnaireResponse(registry, fillResponse(baseline));
    expect(ok.issues).toEqual([]);
    expect(answersOf(ok.response as QuestionnaireResponse, 'pcs-total')).toHaveLength(1);
  });
});
