import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type {
  OperationOutcome,
  OperationOutcomeIssue,
  Questionnaire,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import { DEFAULT_PROFILES_DIR } from '../../src/validation/profiles';
import { ext, kg, typedAnswerItems, UCUM } from '../conformance/form';
import type { Client } from '../http/client';
import type { TestServer } from '../helpers/testServer';
import { startWithPatient } from './server';
import { answersOf } from './responses';

/**
 * QuestionnaireResponse checks the HL7 validator (HAPI's FhirInstanceValidator, core 6.7.9) makes, made
 * by the server too, through HTTP: `$validate` reports them, a write is refused with 422 on an error.
 */
const S = 'http://example.org/fhir/CodeSystem/parity';
const URL = 'http://example.org/fhir/Questionnaire/parity';
const option = (code: string) => ({ valueCoding: { system: S, code } });

const form: Questionnaire = {
  resourceType: 'Questionnaire',
  url: URL,
  version: '1',
  status: 'active',
  item: [
    {
      linkId: 'sites',
      text: 'Where does it hurt?',
      type: 'choice',
      repeats: true,
      extension: [
        ext('questionnaire-minOccurs', { valueInteger: 2 }),
        ext('questionnaire-maxOccurs', { valueInteger: 3 }),
      ],
      answerOption: ['a', 'b', 'c', 'd'].map(option),
    },
    {
      linkId: 'local',
      text: 'A local code',
      type: 'choice',
      answerOption: [{ valueCoding: { code: 'x' } }],
    },
    {
      linkId: 'diagnosis',
      text: 'Diagnosis',
      type: 'choice',
      answerValueSet: 'http://example.org/fhir/ValueSet/somewhere-else',
    },
    {
      linkId: 'weight',
      text: 'Weight (kg)',
      type: 'decimal',
      extension: [ext('maxDecimalPlaces', { valueInteger: 1 })],
    },
    {
      linkId: 'gp',
      text: 'Your GP',
      type: 'reference',
      extension: [
        ext('questionnaire-referenceResource', { valueCode: 'Practitioner' }),
        ext('questionnaire-referenceResource', { valueCode: 'PractitionerRole' }),
      ],
    },
    { linkId: 'link', text: 'A link', type: 'url' },
    {
      linkId: 'count',
      text: 'Number of sites',
      type: 'integer',
      readOnly: true,
      extension: [
        {
          url: 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression',
          valueExpression: {
            language: 'text/fhirpath',
            expression: "%resource.item.where(linkId = 'sites').answer.count()",
          },
        },
      ],
    },
    ...typedAnswerItems,
  ],
};

let server: TestServer;
let client: Client;
let patientRef: string;

beforeAll(async () => {
  ({ server, client, patientRef } = await startWithPatient());
  expect((await client.post('Questionnaire', form)).status).toBe(201);
});
afterAll(async () => {
  await server.stop();
});

const sites = (...codes: string[]): QuestionnaireResponseItem => ({
  linkId: 'sites',
  text: 'Where does it hurt?',
  answer: codes.map(option),
});

/** A response with the two sites it needs and `items` after them (in Questionnaire order). */
function response(
  items: QuestionnaireResponseItem[] = [],
  first: QuestionnaireResponseItem = sites('a', 'b'),
): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: `${URL}|1`,
    status: 'completed',
    subject: { reference: patientRef },
    item: [first, ...items],
  };
}

const answer = (linkId: string, value: QuestionnaireResponseItemAnswer): QuestionnaireResponseItem => ({
  linkId,
  answer: [value],
});

async function validate(qr: QuestionnaireResponse): Promise<OperationOutcomeIssue[]> {
  const outcome = await client.post<OperationOutcome>('QuestionnaireResponse/$validate', qr);
  expect(outcome.status).toBe(200);
  return outcome.body.issue ?? [];
}

/** The error texts `$validate` gives. */
async function errors(qr: QuestionnaireResponse): Promise<string[]> {
  return (await validate(qr)).filter((i) => i.severity === 'error').map((i) => i.details?.text ?? '');
}

describe('questionnaire-minOccurs and questionnaire-maxOccurs on a question', () => {
  it('takes an answer count within them', async () => {
    expect(await errors(response([], sites('a', 'b')))).toEqual([]);
    expect(await errors(response([], sites('a', 'b', 'c')))).toEqual([]);
  });
  it('refuses too few answers, also in a response still in progress, and a write with them', async () => {
    expect(await errors(response([], sites('a')))).toEqual([
      "Question 'sites' (Where does it hurt?) takes at least 2 answers; 1 were given",
    ]);
    expect(await errors({ ...response([], sites('a')), status: 'in-progress' })).toHaveLength(1);
    const refused = await client.post<OperationOutcome>('QuestionnaireResponse', response([], sites('a')));
    expect(refused.status).toBe(422);
    expect(refused.body.issue?.[0].expression).toEqual(['QuestionnaireResponse.item[0]']);
  });
  it('refuses too many answers', async () => {
    expect(await errors(response([], sites('a', 'b', 'c', 'd')))).toEqual([
      "Question 'sites' (Where does it hurt?) takes at most 3 answers; 4 were given",
    ]);
  });
});

describe('maxDecimalPlaces', () => {
  it('takes a value within the places', async () => {
    expect(await errors(response([answer('weight', { valueDecimal: 72.5 })]))).toEqual([]);
  });
  it.each([
    [72.55, 2],
    [0.0000001, 7], // JSON.parse gives 1e-7: the places are counted from the exponent, not the printed text
  ])('refuses %d (%d places)', async (value, places) => {
    expect(await errors(response([answer('weight', { valueDecimal: value })]))).toEqual([
      expect.stringContaining(`has ${places} decimal places; at most 1 are allowed`),
    ]);
  });
});

describe('questionnaire-referenceResource', () => {
  it('takes a reference to an allowed resource type', async () => {
    const texts = await errors(
      response([answer('gp', { valueReference: { reference: 'Practitioner/p1' } })]),
    );
    expect(texts.filter((t) => t.includes('may be referenced'))).toEqual([]);
  });
  it('refuses a reference to another resource type', async () => {
    expect(await errors(response([answer('gp', { valueReference: { reference: patientRef } })]))).toEqual([
      `The reference ${patientRef} is to a Patient; only Practitioner, PractitionerRole may be referenced for 'gp' (Your GP)`,
    ]);
  });
});

describe('a Coding answer without a system', () => {
  it('is refused for an option with a system and for a value set held elsewhere', async () => {
    const noSystem = response([], { ...sites(), answer: [{ valueCoding: { code: 'a' } }, option('b')] });
    expect(await errors(noSystem)).toEqual([expect.stringContaining("The Coding answer to 'sites'")]);
    const refused = await client.post<OperationOutcome>('QuestionnaireResponse', noSystem);
    expect(refused.status).toBe(422);
    expect(refused.body.issue?.[0].expression).toEqual([
      'QuestionnaireResponse.item[0].answer[0].valueCoding',
    ]);

    expect(await errors(response([answer('diagnosis', { valueCoding: { code: 'M54.5' } })]))).toEqual([
      expect.stringContaining('has no system'),
    ]);
    expect(
      await errors(response([answer('diagnosis', { valueCoding: { system: S, code: 'M54.5' } })])),
    ).toEqual([]);
  });
  it("is taken where the Questionnaire's own option has no system, and only that code", async () => {
    expect(await errors(response([answer('local', { valueCoding: { code: 'x' } })]))).toEqual([]);
    expect(await errors(response([answer('local', { valueCoding: { code: 'y' } })]))).toEqual([
      expect.stringContaining("The Coding answer to 'local'"),
    ]);
  });
});

describe('uri answers', () => {
  it.each(['https://example.org/a', 'urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301', 'urn:oid:2.16.578.1'])(
    'takes %s',
    async (valueUri) => {
      expect(await errors(response([answer('link', { valueUri })]))).toEqual([]);
    },
  );
  it.each([
    ['urn:uuid:3F2504E0-4F89-41D3-9A0C-0305E82C3301', 'lower-case UUID'],
    ['urn:uuid:not-a-uuid', 'lower-case UUID'],
    ['uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301', "must begin with 'urn:uuid:'"],
    ['oid:2.16.578', "must begin with 'urn:oid:'"],
    ['urn:oid:2.016.578', 'valid OID'],
    ['urn:oid:9.1', 'valid OID'],
  ])('refuses %s', async (valueUri, why) => {
    expect(await errors(response([answer('link', { valueUri })]))).toEqual([expect.stringContaining(why)]);
  });
});

describe('item text', () => {
  it("takes the Questionnaire's text without a word", async () => {
    const told = await client.post<OperationOutcome>(
      'QuestionnaireResponse',
      response([{ linkId: 'weight', text: 'Weight (kg)', answer: [{ valueDecimal: 70 }] }]),
      { prefer: 'return=OperationOutcome' },
    );
    expect(told.status).toBe(201);
    expect(told.body.issue?.filter((i) => i.code === 'invalid')).toEqual([]);
  });
  it('takes a text that differs, with a warning (HAPI 8.8 makes it an error: see validate.ts)', async () => {
    const sent = response([{ linkId: 'weight', text: 'Weight', answer: [{ valueDecimal: 70 }] }]);
    expect(await errors(sent)).toEqual([]);
    const told = await client.post<OperationOutcome>('QuestionnaireResponse', sent, {
      prefer: 'return=OperationOutcome',
    });
    expect(told.status).toBe(201);
    expect(told.body.issue?.filter((i) => i.code === 'invalid')).toEqual([
      expect.objectContaining({ severity: 'warning', expression: ['QuestionnaireResponse.item[1].text'] }),
    ]);
  });
});

describe('an answer sent for a calculated item', () => {
  it('is checked like any answer: one of the wrong type is refused', async () => {
    expect(await errors(response([answer('count', { valueString: 'two' })]))).toEqual([
      expect.stringContaining('is of type integer and takes valueInteger, not valueString'),
    ]);
  });
  it('is replaced by the computed value, and the sender is told so (a warning, not an error)', async () => {
    const sent = response([answer('count', { valueInteger: 99 })]);
    expect(await errors(sent)).toEqual([]);
    const told = await client.post<OperationOutcome>('QuestionnaireResponse', sent, {
      prefer: 'return=OperationOutcome',
    });
    expect(told.status).toBe(201);
    expect(told.body.issue?.filter((i) => i.code === 'business-rule')).toEqual([
      {
        severity: 'warning',
        code: 'business-rule',
        details: {
          text: "'count' is computed by the server: the answer sent differs and was replaced by the computed one",
        },
        expression: ['QuestionnaireResponse'],
      },
    ]);
    const stored = await client.get<QuestionnaireResponse>(told.headers.get('location') ?? '');
    expect(answersOf(stored.body, 'count')).toEqual([{ valueInteger: 2 }]);
  });
  it('that agrees with the computed value gives no warning', async () => {
    const told = await client.post<OperationOutcome>(
      'QuestionnaireResponse',
      response([answer('count', { valueInteger: 2 })]),
      { prefer: 'return=OperationOutcome' },
    );
    expect(told.status).toBe(201);
    expect(told.body.issue?.filter((i) => i.code === 'business-rule')).toEqual([]);
  });
});

describe("the profiles' QuestionnaireResponse example (profiles/input/fsh/examples.fsh)", () => {
  const example = JSON.parse(
    fs.readFileSync(
      path.join(DEFAULT_PROFILES_DIR, 'QuestionnaireResponse-norpain-questionnaireresponse-example.json'),
      'utf8',
    ),
  ) as QuestionnaireResponse;

  it('is valid against the Questionnaire it names', async () => {
    expect(await errors({ ...example, subject: { reference: patientRef } })).toEqual([]);
  });
  it('would not be, marked completed: the baseline form has required items it leaves out', async () => {
    const completed = await errors({ ...example, status: 'completed', subject: { reference: patientRef } });
    expect(completed.length).toBeGreaterThan(0);
    expect(completed.every((t) => t.startsWith('Required'))).toBe(true);
  });
});

describe('quantities (sdc-questionnaire-minQuantity/maxQuantity, questionnaire-unitOption/unitValueSet)', () => {
  const mass = (valueQuantity: QuestionnaireResponseItemAnswer['valueQuantity']) =>
    response([answer('mass', { valueQuantity })]);
  it.each([
    ['70 kg', kg(70)],
    ['20 kg, the minimum itself', kg(20)],
    ['70000 g, converted through UCUM', { value: 70000, system: UCUM, code: 'g', unit: 'g' }],
    ['600 lb (272 kg)', { value: 600, system: UCUM, code: '[lb_av]', unit: 'lb' }],
  ])('takes %s', async (_, quantity) => {
    expect(await errors(mass(quantity))).toEqual([]);
  });
  it.each([
    ['10 kg', kg(10), 'The quantity 10 kg is below the allowed minimum 20 kg'],
    ['400 kg', kg(400), 'The quantity 400 kg is above the allowed maximum 300 kg'],
    [
      '700 g',
      { value: 700, system: UCUM, code: 'g' },
      'The quantity 700 g is below the allowed minimum 20 kg',
    ],
    ['700 lb', { value: 700, system: UCUM, code: '[lb_av]' }, 'is above the allowed maximum 300 kg'],
  ])('refuses %s', async (_, quantity, why) => {
    expect(await errors(mass(quantity))).toEqual([expect.stringContaining(why)]);
  });
  it('refuses a unit UCUM cannot compare with the limits, and one the question does not offer', async () => {
    expect(await errors(mass({ value: 70, system: UCUM, code: 'm' }))).toEqual([
      expect.stringContaining(
        'cannot be compared with the allowed minimum 20 kg: UCUM cannot convert m to kg',
      ),
      expect.stringContaining('cannot be compared with the allowed maximum 300 kg'),
      expect.stringContaining('The unit of 70 m is not one the question offers (kg, g, [lb_av])'),
    ]);
    expect(await errors(mass({ value: 70000000, system: UCUM, code: 'mg' }))).toEqual([
      expect.stringContaining('The unit of 70000000 mg is not one the question offers'),
    ]);
  });
  it('refuses a quantity without a coded unit, and a write with it', async () => {
    const uncoded = mass({ value: 70, unit: 'kg' });
    expect(await errors(uncoded)).toEqual([
      expect.stringContaining('both need a coded unit (system and code)'),
      expect.stringContaining('both need a coded unit (system and code)'),
      expect.stringContaining('is not one the question offers'),
    ]);
    const refused = await client.post<OperationOutcome>('QuestionnaireResponse', uncoded);
    expect(refused.status).toBe(422);
    expect(refused.body.issue?.[0].expression).toEqual(['QuestionnaireResponse.item[1].answer[0]']);
  });
  it('takes a unit from the unit ValueSet and refuses one outside it', async () => {
    const height = (code: string) =>
      response([answer('height', { valueQuantity: { value: 170, system: UCUM, code } })]);
    expect(await errors(height('cm'))).toEqual([]);
    expect(await errors(height('kg'))).toEqual([
      expect.stringContaining(
        'The unit of 170 kg is not in the unit ValueSet http://hl7.org/fhir/ValueSet/ucum-bodylength',
      ),
    ]);
  });
});

describe('attachments (mimeType, maxSize, size and hash against the data)', () => {
  const photo = (valueAttachment: QuestionnaireResponseItemAnswer['valueAttachment']) =>
    response([answer('photo', { valueAttachment })]);
  const data = (bytes: number) => Buffer.alloc(bytes).toString('base64');
  it('takes an allowed type (parameters aside) within the size, with its own size and hash', async () => {
    const bytes = Buffer.alloc(10);
    expect(
      await errors(
        photo({
          contentType: 'image/png; charset=binary',
          data: bytes.toString('base64'),
          size: 10,
          hash: createHash('sha1').update(bytes).digest('base64'),
        }),
      ),
    ).toEqual([]);
  });
  it.each([
    [
      { contentType: 'image/jpeg', data: data(3) },
      'The attachment type image/jpeg is not allowed; use image/png',
    ],
    [{ data: data(3) }, 'The attachment has no contentType'],
    [{ contentType: 'image/png', data: data(12) }, 'The attachment is 12 bytes; at most 10 are allowed'],
    [{ contentType: 'image/png', url: 'https://example.org/a.png', size: 100 }, 'is 100 bytes; at most 10'],
    [{ contentType: 'image/png', data: data(3), size: 7 }, 'given as 7 bytes, but its data has 3'],
    [{ contentType: 'image/png', data: data(3), hash: 'AAAA' }, 'hash is not the SHA-1 of its data'],
  ])('refuses %j', async (attachment, why) => {
    expect(await errors(photo(attachment))).toEqual(expect.arrayContaining([expect.stringContaining(why)]));
  });
});

describe("an answer ValueSet that is not the Questionnaire's own", () => {
  const gender = (coding: Record<string, string>) => response([answer('gender', { valueCoding: coding })]);
  const GENDER = 'http://hl7.org/fhir/administrative-gender';
  it('is expanded from the FHIR definitions where it can be: members pass, others are refused', async () => {
    expect(await errors(gender({ system: GENDER, code: 'male' }))).toEqual([]);
    expect(await errors(gender({ system: GENDER, code: 'man' }))).toEqual([
      expect.stringContaining(
        "The code 'man' (http://hl7.org/fhir/administrative-gender) is not one of the permitted",
      ),
    ]);
    const refused = await client.post<OperationOutcome>(
      'QuestionnaireResponse',
      gender({ system: GENDER, code: 'man' }),
    );
    expect(refused.status).toBe(422);
  });
  it('that needs a terminology server gives a warning, not a silent pass; a code from a system it does not draw on is refused', async () => {
    const condition = (system: string) =>
      response([answer('condition', { valueCoding: { system, code: '22253000' } })]);
    const warned = await validate(condition('http://snomed.info/sct'));
    expect(warned.filter((i) => i.severity === 'error')).toEqual([]);
    expect(warned).toContainEqual(
      expect.objectContaining({
        severity: 'warning',
        code: 'code-invalid',
        expression: ['QuestionnaireResponse.item[1].answer[0]'],
      }),
    );
    expect(await errors(condition('http://example.org/codes'))).toEqual([
      expect.stringContaining('which draws only on http://snomed.info/sct'),
    ]);
  });
  it("checks a code's display against a code system we hold: a mismatch is a warning", async () => {
    expect(await validate(gender({ system: GENDER, code: 'male', display: 'Male' }))).not.toContainEqual(
      expect.objectContaining({ severity: 'warning' }),
    );
    const mismatch = await validate(gender({ system: GENDER, code: 'male', display: 'Mann' }));
    expect(mismatch.filter((i) => i.severity === 'error')).toEqual([]);
    expect(mismatch).toContainEqual(
      expect.objectContaining({
        severity: 'warning',
        details: { text: expect.stringContaining("The display 'Mann' is not the display of 'male'") },
      }),
    );
  });
});

describe('a Questionnaire contained in the response', () => {
  const contained: QuestionnaireResponse = {
    resourceType: 'QuestionnaireResponse',
    questionnaire: '#form',
    status: 'completed',
    contained: [{ ...form, id: 'form' }],
    item: [sites('a', 'b')],
  };
  it('is refused by $validate and on a write with a 422 that says to name the canonical', async () => {
    const checked = await validate({ ...contained, subject: { reference: patientRef } });
    expect(checked.filter((i) => i.severity === 'error')).toEqual([
      expect.objectContaining({
        code: 'not-supported',
        expression: ['QuestionnaireResponse.questionnaire'],
        details: { text: expect.stringContaining('takes answers only to its own Questionnaires') },
      }),
    ]);
    const refused = await client.post<OperationOutcome>('QuestionnaireResponse', {
      ...contained,
      subject: { reference: patientRef },
    });
    expect(refused.status).toBe(422);
    expect(refused.body.issue?.[0].details?.text).toContain("instead of the contained Questionnaire '#form'");
  });
});
