import type { Bundle, OperationOutcome, Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import type { Client } from '../http/client';
import type { TestServer } from '../helpers/testServer';
import { startWithPatient } from './server';
import { answersOf, fillResponse } from './responses';

/**
 * The Questionnaire stage through real HTTP: the shipped Questionnaires are served, responses are
 * validated against the version they name and stored with server-computed scores, `$validate` reports
 * without storing, and staff can load any R4 Questionnaire to validate against.
 */
const NORPAIN = 'https://norpain.no/fhir/Questionnaire';
const baseline = readNorPainQuestionnaires().find((q) => q.url === `${NORPAIN}/norpain-baseline`);
if (!baseline) throw new Error('the baseline Questionnaire is missing');
const code = (system: string, c: string) => [{ valueCoding: { system, code: c } }];
const ISI = (name: string) => `https://norpain.no/fhir/CodeSystem/${name}`;

let server: TestServer;
let client: Client;
let patientRef: string;

beforeAll(async () => {
  ({ server, client, patientRef } = await startWithPatient());
});
afterAll(async () => {
  await server.stop();
});

function response(overrides: Parameters<typeof fillResponse>[1] = {}): QuestionnaireResponse {
  return { ...fillResponse(baseline as Questionnaire, overrides), subject: { reference: patientRef } };
}

async function countResponses(): Promise<number> {
  const found = await client.get<Bundle>('QuestionnaireResponse?_summary=count');
  expect(found.status).toBe(200);
  return found.body.total ?? -1;
}

describe('the NorPain Questionnaires over HTTP', () => {
  it.each(['norpain-baseline', 'norpain-followup-12m', 'norpain-clinician-episode'])(
    '%s is served by its canonical url',
    async (name) => {
      const found = await client.get<Bundle<Questionnaire>>(
        `Questionnaire?url=${encodeURIComponent(`${NORPAIN}/${name}`)}`,
      );
      expect(found.status).toBe(200);
      expect(found.body.entry?.map((e) => [e.resource?.url, e.resource?.version])).toEqual([
        [`${NORPAIN}/${name}`, '1.0.0'],
      ]);
    },
  );
});

describe('a QuestionnaireResponse write', () => {
  it("is stored with the server's scores (a client's bogus score overwritten) and pinned to the version", async () => {
    const sent = response({
      'isi-1': code(ISI('isi-alvorlighet'), '4'),
      'isi-2': code(ISI('isi-alvorlighet'), '4'),
      'isi-3': code(ISI('isi-alvorlighet'), '3'),
      'isi-4': code(ISI('isi-tilfredshet'), '2'),
      'isi-5': code(ISI('isi-grad'), '1'),
      'isi-6': code(ISI('isi-grad'), '0'),
      'isi-7': code(ISI('isi-grad'), '4'),
    });
    sent.questionnaire = `${NORPAIN}/norpain-baseline`; // no version: the latest is used and pinned
    sent.item
      ?.find((i) => i.linkId === 'isi')
      ?.item?.push({ linkId: 'isi-sum', answer: [{ valueInteger: 99 }] });

    const created = await client.post<QuestionnaireResponse>('QuestionnaireResponse', sent, {
      prefer: 'return=representation',
    });
    expect(created.status).toBe(201);
    const stored = await client.get<QuestionnaireResponse>(`QuestionnaireResponse/${created.body.id}`);
    expect(stored.status).toBe(200);
    expect(stored.body.questionnaire).toBe(`${NORPAIN}/norpain-baseline|1.0.0`);
    expect(answersOf(stored.body, 'isi-sum')).toEqual([{ valueInteger: 18 }]);
    expect(answersOf(stored.body, 'hscl-25-total')).toHaveLength(1);
    expect(answersOf(stored.body, 'pcs-total')).toHaveLength(1);
  });

  it('naming an unknown Questionnaire version is refused with 422 and stores nothing', async () => {
    const before = await countResponses();
    const sent = { ...response(), questionnaire: `${NORPAIN}/norpain-baseline|9.9.9` };
    const refused = await client.post<OperationOutcome>('QuestionnaireResponse', sent);
    expect(refused.status).toBe(422);
    expect(refused.body.issue?.[0].expression).toEqual(['QuestionnaireResponse.questionnaire']);
    expect(refused.body.issue?.[0].details?.text).toContain('norpain-baseline|9.9.9');
    expect(await countResponses()).toBe(before);
  });

  it('that breaks its Questionnaire is refused with 422 pointing at the answer', async () => {
    const sent = response({ 'isi-1': code(ISI('isi-alvorlighet'), '9') });
    const refused = await client.post<OperationOutcome>('QuestionnaireResponse', sent);
    expect(refused.status).toBe(422);
    const isiIndex = sent.item?.findIndex((i) => i.linkId === 'isi');
    const itemIndex = sent.item?.[isiIndex ?? -1].item?.findIndex((i) => i.linkId === 'isi-1');
    expect(refused.body.issue?.map((i) => i.expression?.[0])).toEqual([
      `QuestionnaireResponse.item[${isiIndex}].item[${itemIndex}].answer[0]`,
    ]);
  });
});

describe('QuestionnaireResponse/$validate', () => {
  it('reports the issues against the Questionnaire and stores nothing', async () => {
    const before = await countResponses();
    const invalid = response({ 'isi-1': code(ISI('isi-alvorlighet'), '9') });
    const outcome = await client.post<OperationOutcome>('QuestionnaireResponse/$validate', invalid);
    expect(outcome.status).toBe(200);
    expect(outcome.body.resourceType).toBe('OperationOutcome');
    expect(outcome.body.issue?.some((i) => i.severity === 'error' && i.code === 'code-invalid')).toBe(true);

    const valid = await client.post<OperationOutcome>('QuestionnaireResponse/$validate', {
      resourceType: 'Parameters',
      parameter: [{ name: 'resource', resource: response() }],
    });
    expect(valid.status).toBe(200);
    expect(valid.body.issue?.filter((i) => i.severity === 'error')).toEqual([]);
    expect(await countResponses()).toBe(before);
  });
});

describe('a repeating question split over two items (Refero «Legg til»)', () => {
  const region = (c: string) => code('https://norpain.no/fhir/CodeSystem/smerteregion', c);
  function split(first: string, copy: string): QuestionnaireResponse {
    const sent = response({ smertesteder: region(first) });
    const group = sent.item?.find((g) => g.item?.some((i) => i.linkId === 'smertesteder'));
    const at = group?.item?.findIndex((i) => i.linkId === 'smertesteder') ?? -1;
    group?.item?.splice(at + 1, 0, { linkId: 'smertesteder', answer: region(copy) });
    return sent;
  }

  it('is validated and stored as one item; $validate judges the same merged response', async () => {
    const checked = await client.post<OperationOutcome>(
      'QuestionnaireResponse/$validate',
      split('nakke', 'mage'),
    );
    expect(checked.status).toBe(200);
    expect(checked.body.issue?.filter((i) => i.severity === 'error')).toEqual([]);
    const refused = await client.post<OperationOutcome>(
      'QuestionnaireResponse/$validate',
      split('nakke', 'ingen'),
    );
    expect(refused.body.issue?.filter((i) => i.severity === 'error').map((i) => i.details?.text)).toEqual([
      expect.stringContaining('excludes every other answer'),
    ]);

    const created = await client.post<QuestionnaireResponse>(
      'QuestionnaireResponse',
      split('nakke', 'mage'),
      {
        prefer: 'return=representation',
      },
    );
    expect(created.status).toBe(201);
    const stored = await client.get<QuestionnaireResponse>(`QuestionnaireResponse/${created.body.id}`);
    expect(answersOf(stored.body, 'smertesteder').map((a) => a.valueCoding?.code)).toEqual(['nakke', 'mage']);
    expect(answersOf(stored.body, 'antall-smertesteder')).toEqual([{ valueInteger: 2 }]);
  });
});

describe('a Questionnaire from the wider world', () => {
  const url = 'http://example.org/fhir/Questionnaire/phq-2';
  const scale = [0, 1, 2, 3].map((n) => ({
    valueCoding: { system: 'http://loinc.org', code: `LA${6568 + n}-5`, display: `${n}` },
    extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/ordinalValue', valueDecimal: n }],
  }));
  const phq2: Questionnaire = {
    resourceType: 'Questionnaire',
    url,
    version: '2024',
    status: 'active',
    extension: [
      {
        url: 'http://hl7.org/fhir/StructureDefinition/variable',
        valueExpression: {
          name: 'answered',
          language: 'text/fhirpath',
          expression: "%resource.item.where(linkId in ('q1' | 'q2')).answer",
        },
      },
    ],
    item: [
      {
        linkId: 'q1',
        text: 'Little interest or pleasure',
        type: 'choice',
        required: true,
        answerOption: scale,
      },
      { linkId: 'q2', text: 'Feeling down', type: 'choice', required: true, answerOption: scale },
      {
        linkId: 'answered-count',
        text: 'Questions answered',
        type: 'integer',
        readOnly: true,
        extension: [
          {
            url: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression',
            valueExpression: { language: 'text/fhirpath', expression: '%answered.count()' },
          },
        ],
      },
    ],
  };
  const answer = (linkId: string, n: number) => ({ linkId, answer: [{ valueCoding: scale[n].valueCoding }] });

  it('can be loaded by registry staff, and responses to it are validated against it and scored', async () => {
    const created = await client.post<Questionnaire>('Questionnaire', phq2);
    expect(created.status).toBe(201);

    const base: QuestionnaireResponse = {
      resourceType: 'QuestionnaireResponse',
      questionnaire: `${url}|2024`,
      status: 'completed',
      subject: { reference: patientRef },
    };
    const missing = await client.post<OperationOutcome>('QuestionnaireResponse', {
      ...base,
      item: [answer('q1', 1)],
    });
    expect(missing.status).toBe(422);
    expect(missing.body.issue?.[0].code).toBe('required');
    expect(missing.body.issue?.[0].details?.text).toContain("'q2'");

    const accepted = await client.post<QuestionnaireResponse>(
      'QuestionnaireResponse',
      { ...base, item: [answer('q1', 1), answer('q2', 3)] },
      { prefer: 'return=representation' },
    );
    expect(accepted.status).toBe(201);
    const stored = await client.get<QuestionnaireResponse>(`QuestionnaireResponse/${accepted.body.id}`);
    expect(stored.body.questionnaire).toBe(`${url}|2024`);
    expect(answersOf(stored.body, 'answered-count')).toEqual([{ valueInteger: 2 }]);
  });

  it('a broken Questionnaire is refused, so no response can be judged against it', async () => {
    const broken: Questionnaire = {
      resourceType: 'Questionnaire',
      url: 'http://example.org/fhir/Questionnaire/broken',
      status: 'draft',
      item: [
        {
          linkId: 'a',
          type: 'string',
          enableWhen: [{ question: 'nowhere', operator: 'exists', answerBoolean: true }],
        },
      ],
    };
    const refused = await client.post<OperationOutcome>('Questionnaire', broken);
    expect(refused.status).toBe(422);
    expect(refused.body.issue?.[0].expression).toEqual(['Questionnaire.item[0].enableWhen[0].question']);
  });
});
