import fs from 'node:fs';
import path from 'node:path';
import type {
  Bundle,
  BundleEntry,
  Condition,
  Encounter,
  EpisodeOfCare,
  OperationOutcome,
  Procedure,
  QuestionnaireResponse,
  Resource,
} from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity/nationalId';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * The data dictionary (src/dictionary) through HTTP: what it names is stored, what it does not is
 * reported as not stored (never echoing the value) or refused, and no marker (a synthetic national id, a
 * name, a phone number, a street) placed in any element kind reaches a file under DATA_DIR.
 */
const random = seededRandom(4711);
const ICD10 = 'urn:oid:2.16.578.1.12.4.1.1.7110';
const NKPK = 'urn:oid:2.16.578.1.12.4.1.1.7275';
const RESH = 'urn:oid:2.16.578.1.12.4.1.4.102';
const QUESTIONNAIRE = 'https://norpain.no/fhir/Questionnaire/dictionary-check';
const BODY = 'https://norpain.no/fhir/CodeSystem/dictionary-check-body';
const person = syntheticNationalId('fnr', { random });
const marker = syntheticNationalId('fnr', { random }); // a national id in places it must never be kept
const NAME = 'Ordbokslekt';
const PHONE = '41234987';
const STREET = 'Ordboksgata';

let server: TestServer;
let clinic: string;

beforeAll(async () => {
  server = await startTestServer();
  clinic = await server.token('clinic');
  const admin = await server.token('registry-admin');
  const created = await call(admin, 'POST', 'Questionnaire', {
    resourceType: 'Questionnaire',
    url: QUESTIONNAIRE,
    version: '1',
    status: 'active',
    item: [
      { linkId: 'pain', text: 'Pain now (0-10)', type: 'integer' },
      {
        linkId: 'where',
        text: 'Where',
        type: 'choice',
        answerOption: [
          { valueCoding: { system: BODY, code: 'back' } },
          { valueCoding: { system: BODY, code: 'neck' } },
        ],
      },
      { linkId: 'comment', text: 'Anything else', type: 'string' },
    ],
  });
  expect(created.status).toBe(201);
});

afterAll(async () => {
  await server?.stop();
});

async function call<T = Resource>(
  token: string,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T; text: string }> {
  const response = await fetch(`${server.baseUrl}/${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, text };
}

const free = `${NAME}, tlf ${PHONE}, ${STREET} 4, fnr ${marker}`;

/** A realistic EPR transaction, with identifying text and codes in every element kind besides. */
function submission(): Bundle {
  const patient = 'urn:uuid:0d1c7f4e-0000-4000-8000-000000000001';
  const episode = 'urn:uuid:0d1c7f4e-0000-4000-8000-000000000002';
  const encounter = 'urn:uuid:0d1c7f4e-0000-4000-8000-000000000003';
  const condition = 'urn:uuid:0d1c7f4e-0000-4000-8000-000000000004';
  const entry = (fullUrl: string, resource: Resource): BundleEntry => ({
    fullUrl,
    resource,
    request: { method: 'POST', url: resource.resourceType },
  });
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      entry(patient, {
        resourceType: 'Patient',
        identifier: [{ system: preferredSystem.fnr, value: person }],
        name: [{ family: NAME, given: ['Kari'] }],
        telecom: [{ system: 'phone', value: PHONE }],
        gender: 'female',
        birthDate: '1970-05-17',
        address: [
          {
            line: [`${STREET} 4`],
            city: 'Trondheim',
            postalCode: '7030',
            district: 'Trondheim',
            _district: {
              extension: [
                {
                  url: 'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode',
                  valueCoding: {
                    system:
                      'https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle',
                    code: '5001',
                  },
                },
              ],
            },
          },
        ],
        meta: { tag: [{ system: 'urn:epr:tag', code: marker }], source: `urn:epr:${marker}` },
      } as unknown as Resource),
      entry(episode, {
        resourceType: 'EpisodeOfCare',
        meta: { profile: ['https://norpain.no/fhir/StructureDefinition/norpain-episodeofcare'] },
        extension: [
          { url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: '2024-01-15' },
          {
            url: 'https://norpain.no/fhir/StructureDefinition/right-to-care',
            extension: [
              {
                url: 'decision',
                valueCoding: {
                  system: 'https://norpain.no/fhir/CodeSystem/right-to-care-decision',
                  code: 'granted',
                  display: NAME,
                },
              },
              { url: 'date', valueDate: '2024-02-01' },
              { url: 'deadline', valueDate: '2024-07-15' },
            ],
          },
          { url: 'urn:epr:case-worker', valueCode: marker },
          { url: `urn:epr:${marker}`, valueUri: `urn:epr:${marker}` },
        ],
        status: 'active',
        patient: { reference: patient, display: NAME },
        managingOrganization: { identifier: { system: RESH, value: '999001' }, display: 'St. Olavs' },
        period: { start: '2024-03-04' },
        careManager: { reference: `Practitioner/${marker}`, display: NAME },
      } as Resource),
      entry(encounter, {
        resourceType: 'Encounter',
        status: 'finished',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: NAME },
        subject: { reference: patient },
        episodeOfCare: [{ reference: episode }],
        period: { start: '2024-03-04T09:00:00+01:00', end: '2024-03-04T10:00:00+01:00' },
        serviceProvider: { identifier: { system: RESH, value: '999001' } },
        participant: [{ individual: { reference: `Practitioner/${marker}`, display: NAME } }],
      }),
      entry(condition, {
        resourceType: 'Condition',
        code: {
          coding: [
            { system: ICD10, code: 'M79.7', display: `Fibromyalgi hos ${NAME}` },
            { system: 'urn:epr:local-codes', code: marker },
          ],
          text: free,
        },
        subject: { reference: patient },
        encounter: { reference: encounter },
        onsetDateTime: '2019-06',
        note: [{ text: free }],
      }),
      entry('urn:uuid:0d1c7f4e-0000-4000-8000-000000000005', {
        resourceType: 'Procedure',
        status: 'completed',
        code: { coding: [{ system: NKPK, code: 'QXGX99' }], text: free },
        subject: { reference: patient },
        encounter: { reference: encounter },
        performedDateTime: '2024-03-04',
        reasonReference: [{ reference: condition }],
      }),
      entry('urn:uuid:0d1c7f4e-0000-4000-8000-000000000006', {
        resourceType: 'QuestionnaireResponse',
        questionnaire: `${QUESTIONNAIRE}|1`,
        status: 'completed',
        subject: { reference: patient },
        authored: '2024-03-01T10:00:00+01:00',
        item: [
          { linkId: 'pain', text: free, answer: [{ valueInteger: 7 }] },
          { linkId: 'where', answer: [{ valueCoding: { system: BODY, code: 'back', display: NAME } }] },
          { linkId: 'comment', definition: `urn:epr:${marker}`, answer: [{ valueString: free }] },
        ],
      } as Resource),
    ],
  };
}

/** Every file under DATA_DIR (the clinical store with its -wal, the vault, the audit log, ...). */
function dataFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const file = path.join(dir, d.name);
    return d.isDirectory() ? dataFiles(file) : [file];
  });
}

test('a full EPR submission keeps every analysis variable and nothing else; no marker reaches a file', async () => {
  const reply = await call<Bundle>(clinic, 'POST', '', submission());
  expect(reply.status).toBe(200);
  const locations = (reply.body.entry ?? []).map((e) => e.response?.location?.split('/_history')[0] ?? '');
  const read = async <T>(i: number) =>
    (await call<T>(clinic, 'GET', locations[i].replace(`${server.baseUrl}/`, ''))).body;

  // The analysis variables the profiles and reports need.
  const patient = await read<{ id: string; gender: string; birthDate: string; address: unknown }>(0);
  expect(patient).toMatchObject({ gender: 'female', birthDate: '1970-05' });
  expect(JSON.stringify(patient.address)).toContain('5001');
  const episode = await read<EpisodeOfCare>(1);
  expect(episode).toMatchObject({
    status: 'active',
    patient: { reference: `Patient/${patient.id}` },
    managingOrganization: { identifier: { system: RESH, value: '999001' } },
    period: { start: '2024-03-04' },
  });
  expect(episode.extension?.map((e) => e.url)).toEqual([
    'https://norpain.no/fhir/StructureDefinition/referral-date',
    'https://norpain.no/fhir/StructureDefinition/right-to-care',
  ]);
  expect(episode.extension?.[1].extension?.map((e) => e.url)).toEqual(['decision', 'date', 'deadline']);
  expect(episode.careManager).toBeUndefined();
  const encounter = await read<Encounter>(2);
  expect(encounter).toMatchObject({
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    period: { start: '2024-03-04T09:00:00+01:00' },
    episodeOfCare: [{ reference: `EpisodeOfCare/${episode.id}` }],
  });
  expect(encounter.participant).toBeUndefined();
  const condition = await read<Condition>(3);
  expect(condition.code).toEqual({ coding: [{ system: ICD10, code: 'M79.7' }] });
  expect(condition).toMatchObject({
    onsetDateTime: '2019-06',
    subject: { reference: `Patient/${patient.id}` },
  });
  const procedure = await read<Procedure>(4);
  expect(procedure.code).toEqual({ coding: [{ system: NKPK, code: 'QXGX99' }] });
  expect(procedure.reasonReference).toEqual([{ reference: `Condition/${condition.id}` }]);
  const response = await read<QuestionnaireResponse>(5);
  expect(response.item).toEqual([
    { linkId: 'pain', answer: [{ valueInteger: 7 }] },
    { linkId: 'where', answer: [{ valueCoding: { system: BODY, code: 'back' } }] },
    { linkId: 'comment' },
  ]);

  // What was not stored is listed per entry, by path, never with the value.
  const warnings = (i: number) =>
    (reply.body.entry?.[i].response?.outcome as OperationOutcome | undefined)?.issue?.map(
      (x) => x.expression?.[0],
    ) ?? [];
  expect(warnings(1)).toEqual(
    expect.arrayContaining([
      "Bundle.entry[1].resource.extension('https://norpain.no/fhir/StructureDefinition/right-to-care').extension('decision').valueCoding.display",
      'Bundle.entry[1].resource.extension',
      'Bundle.entry[1].resource.patient.display',
      'Bundle.entry[1].resource.careManager',
    ]),
  );
  expect(warnings(3)).toEqual(
    expect.arrayContaining([
      'Bundle.entry[3].resource.code.coding',
      'Bundle.entry[3].resource.code.coding.display',
      'Bundle.entry[3].resource.code.text',
      'Bundle.entry[3].resource.note',
    ]),
  );
  expect(warnings(5)).toEqual(
    expect.arrayContaining([
      'Bundle.entry[5].resource.item.text',
      'Bundle.entry[5].resource.item.definition',
      'Bundle.entry[5].resource.item.answer.valueString',
    ]),
  );
  const unbound = reply.body.entry?.[3].response?.outcome?.issue?.find(
    (x) => x.expression?.[0] === 'Bundle.entry[3].resource.code.coding',
  );
  expect(unbound?.severity).toBe('warning');
  expect(unbound?.details?.text).toContain(ICD10);
  for (const secret of [marker, person, NAME, PHONE, STREET, 'urn:epr']) {
    expect(reply.text).not.toContain(secret);
  }

  // Nothing of it in any file the server wrote (store and its WAL included).
  const bytes = Buffer.concat(dataFiles(server.dataDir).map((f) => fs.readFileSync(f))).toString('latin1');
  for (const secret of [marker, person, NAME, PHONE, STREET, 'Kari', 'urn:epr']) {
    expect(bytes).not.toContain(secret);
  }
});

test('Prefer: return=OperationOutcome lists what was not stored, by path, without the values', async () => {
  const reply = await call<OperationOutcome>(
    clinic,
    'POST',
    'Condition',
    {
      resourceType: 'Condition',
      code: { coding: [{ system: ICD10, code: 'M54.5' }], text: free },
      subject: { identifier: { system: preferredSystem.fnr, value: person } },
      meta: { source: `urn:epr:${marker}` },
    },
    { prefer: 'return=OperationOutcome' },
  );
  expect(reply.status).toBe(201);
  expect(reply.body.issue?.filter((i) => i.severity === 'warning').map((i) => i.expression?.[0])).toEqual([
    'Condition.code.text',
    'Condition.meta.source',
  ]);
  expect(reply.text).not.toContain(marker);
  expect(reply.text).not.toContain(NAME);
});

describe('refused with 422, nothing written', () => {
  const refused = async (body: Resource, type = body.resourceType) => {
    const before = dataFiles(server.dataDir).length;
    const reply = await call<OperationOutcome>(clinic, 'POST', type, body);
    expect(reply.status).toBe(422);
    expect(reply.body.issue?.[0].details?.text).toMatch(/Remove|It accepts|Refer to/); // says what to do
    expect(reply.text).not.toContain(marker);
    expect(dataFiles(server.dataDir).length).toBe(before);
    return reply.body.issue?.[0];
  };
  const subject = { identifier: { system: preferredSystem.fnr, value: person } };

  test('a resource type outside the registry', async () => {
    const found = await refused({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      subject,
    } as Resource);
    expect(found?.details?.text).toContain('does not store Observation');
    const tx = await call<OperationOutcome>(clinic, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Observation' }, request: { method: 'POST', url: 'Observation' } }],
    });
    expect(tx.status).toBe(422);
    expect(tx.body.issue?.[0].expression).toEqual(['Bundle.entry[0].resource.resourceType']);
  });

  test('a national id in a kept code, identifier system or reference id', async () => {
    const klass = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' };
    const encounter = (extra: Partial<Encounter>): Resource =>
      ({ resourceType: 'Encounter', status: 'finished', class: klass, subject, ...extra }) as Resource;
    expect(
      (await refused(encounter({ identifier: [{ system: `urn:epr:${marker}`, value: '1' }] })))?.expression,
    ).toEqual(['Encounter.identifier.system']);
    expect(
      (await refused(encounter({ identifier: [{ system: preferredSystem.fnr, value: marker }] })))
        ?.expression,
    ).toEqual(['Encounter.identifier']);
    expect((await refused(encounter({ partOf: { reference: `Encounter/${marker}` } })))?.expression).toEqual([
      'Encounter.partOf.reference',
    ]);
    expect(
      (
        await refused({
          resourceType: 'Condition',
          subject,
          code: { coding: [{ system: ICD10, code: marker }] },
        } as Resource)
      )?.expression,
    ).toEqual(['Condition.code.coding.code']);
  });

  test('a modifier extension', async () => {
    await refused({
      resourceType: 'Condition',
      subject,
      modifierExtension: [{ url: 'urn:epr:negated', valueBoolean: true }],
    } as Resource);
  });
});
