import type { Bundle, Identifier, Condition, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from './client';

/** FHIR search through HTTP. Patients are synthetic persons found by their fødselsnummer (which the
 * server translates to the registry pseudonym: the stored Patient carries no national id). */
let server: TestServer;
let fhir: Client;
const random = seededRandom(1302);
const token = (identifier: Identifier): string => `${identifier.system}|${identifier.value}`;

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

const link = (bundle: Bundle, relation: string): string | undefined =>
  bundle.link?.find((l) => l.relation === relation)?.url;

describe('search basics', () => {
  let created: Patient;
  let startedAt: string;
  const FNR = syntheticIdentifier('fnr', { random });
  const P1 = token(FNR);

  beforeAll(async () => {
    startedAt = new Date(Date.now() - 1000).toISOString();
    created = (
      await fhir.post<Patient>('Patient', {
        resourceType: 'Patient',
        identifier: [FNR],
        gender: 'male',
        birthDate: '1970-05-05',
      })
    ).body;
  });

  test('by identifier', async () => {
    const found = await fhir.get<Bundle<Patient>>(`Patient?identifier=${P1}`);
    expect(found.status).toBe(200);
    expect(found.body.type).toBe('searchset');
    expect(found.body.entry?.map((e) => e.resource?.id)).toEqual([created.id]);
    expect(found.body.entry?.[0].fullUrl).toBe(`${server.baseUrl}/Patient/${created.id}`);
    expect(found.body.entry?.[0].search?.mode).toBe('match');
    const none = await fhir.get<Bundle>(
      `Patient?identifier=${token(syntheticIdentifier('fnr', { random }))}`,
    );
    expect(none.status).toBe(200);
    expect(none.body.entry ?? []).toHaveLength(0);
  });

  test('by _lastUpdated', async () => {
    const since = await fhir.get<Bundle<Patient>>(`Patient?_lastUpdated=ge${encodeURIComponent(startedAt)}`);
    expect(since.body.entry?.map((e) => e.resource?.id)).toContain(created.id);
    const before = await fhir.get<Bundle<Patient>>(`Patient?_lastUpdated=lt${encodeURIComponent(startedAt)}`);
    expect(before.body.entry?.map((e) => e.resource?.id) ?? []).not.toContain(created.id);
  });

  test('POST _search with a form body finds the same as GET', async () => {
    const form = await fhir.request<Bundle<Patient>>('POST', 'Patient/_search', {
      raw: new URLSearchParams({ identifier: P1 }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(200);
    expect(form.body.entry?.map((e) => e.resource?.id)).toEqual([created.id]);
    const json = await fhir.post<OperationOutcome>('Patient/_search', { identifier: 'x' });
    expect(json.status).toBe(415);
  });

  test('_elements keeps the asked elements plus id and meta, and tags SUBSETTED', async () => {
    const found = await fhir.get<Bundle<Patient>>(`Patient?identifier=${P1}&_elements=gender`);
    const resource = found.body.entry?.[0].resource;
    expect(resource?.gender).toBe('male');
    expect(resource?.birthDate).toBeUndefined();
    expect(resource?.identifier).toBeUndefined();
    expect(resource?.id).toBe(created.id);
    expect(resource?.meta?.tag?.map((t) => t.code)).toContain('SUBSETTED');
    expect(link(found.body, 'self')).toContain('_elements=gender');
  });

  test('_summary=count gives the total only; _summary=true the summary elements', async () => {
    const count = await fhir.get<Bundle>(`Patient?identifier=${P1}&_summary=count`);
    expect(count.body.total).toBe(1);
    expect(count.body.entry ?? []).toHaveLength(0);
    const summary = await fhir.get<Bundle<Patient>>(`Patient?identifier=${P1}&_summary=true`);
    const resource = summary.body.entry?.[0].resource;
    expect(resource?.gender).toBe('male');
    expect(resource?.meta?.tag?.map((t) => t.code)).toContain('SUBSETTED');
  });

  test('unknown parameters, unknown modifiers and malformed controls are 400', async () => {
    for (const query of [
      'Patient?nonsense=1',
      'Patient?gender:bogus=male',
      'Patient?_count=abc',
      'Patient?_sort=nonsense',
      'Patient?_total=lots',
      'Patient?_include=Patient:nonsense',
      'Patient?_elements=nonsense',
      'Patient?_summary=maybe',
      'Patient?gender.name=x',
    ]) {
      const reply = await fhir.get<OperationOutcome>(query);
      expect({ query, status: reply.status }).toEqual({ query, status: 400 });
      expect(reply.body.resourceType).toBe('OperationOutcome');
    }
  });
});

describe('paging', () => {
  // Only this run's 120: the suite also runs against a shared HAPI server.
  let since = '';
  beforeAll(async () => {
    since = new Date().toISOString();
    const entry = Array.from({ length: 120 }, (_, i) => ({
      fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      resource: {
        resourceType: 'Patient',
        identifier: [syntheticIdentifier('fnr', { random })],
        gender: 'unknown',
      },
      request: { method: 'POST', url: 'Patient' },
    }));
    const loaded = await fhir.post<Bundle>('', { resourceType: 'Bundle', type: 'transaction', entry });
    expect(loaded.status).toBe(200);
  });

  test('120 results in pages of 50 by following next links; previous links work too', async () => {
    const seen: string[] = [];
    const pages: Bundle[] = [];
    let url: string | undefined =
      `Patient?gender=unknown&_lastUpdated=ge${encodeURIComponent(since)}&_count=50&_total=accurate&_sort=_id`;
    while (url) {
      const page: Bundle<Patient> = (await fhir.get<Bundle<Patient>>(url)).body;
      pages.push(page);
      expect(page.total).toBe(120);
      seen.push(...(page.entry ?? []).map((e) => e.resource?.id ?? ''));
      url = link(page, 'next');
    }
    expect(pages.map((p) => p.entry?.length ?? 0)).toEqual([50, 50, 20]);
    expect(new Set(seen).size).toBe(120);
    expect([...seen].sort()).toEqual(seen);
    expect(link(pages[0], 'previous')).toBeUndefined();
    const back = await fhir.get<Bundle<Patient>>(link(pages[2], 'previous') ?? '');
    expect(back.body.entry?.map((e) => e.resource?.id)).toEqual(pages[1].entry?.map((e) => e.resource?.id));
  });
});

describe('_sort, _include, _revinclude, _total', () => {
  let patientId: string;

  beforeAll(async () => {
    patientId = (
      await fhir.post<Patient>('Patient', {
        resourceType: 'Patient',
        identifier: [syntheticIdentifier('fnr', { random })],
      })
    ).body.id as string;
    for (const value of [3, 1, 2]) {
      await fhir.post<Condition>('Condition', {
        resourceType: 'Condition',
        code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' }] },
        subject: { reference: `Patient/${patientId}` },
        recordedDate: `2024-01-0${value}`,
      });
    }
  });

  test('_sort by a value, ascending and descending', async () => {
    const up = await fhir.get<Bundle<Condition>>(
      `Condition?subject=Patient/${patientId}&_sort=recorded-date`,
    );
    expect(up.body.entry?.map((e) => e.resource?.recordedDate)).toEqual([
      '2024-01-01',
      '2024-01-02',
      '2024-01-03',
    ]);
    const down = await fhir.get<Bundle<Condition>>(
      `Condition?subject=Patient/${patientId}&_sort=-recorded-date`,
    );
    expect(down.body.entry?.map((e) => e.resource?.recordedDate)).toEqual([
      '2024-01-03',
      '2024-01-02',
      '2024-01-01',
    ]);
  });

  test('_include brings the subject, marked include', async () => {
    const found = await fhir.get<Bundle>(`Condition?subject=Patient/${patientId}&_include=Condition:subject`);
    const included = found.body.entry?.filter((e) => e.search?.mode === 'include') ?? [];
    expect(included.map((e) => `${e.resource?.resourceType}/${e.resource?.id}`)).toEqual([
      `Patient/${patientId}`,
    ]);
  });

  test('_revinclude brings the conditions of a patient', async () => {
    const found = await fhir.get<Bundle>(`Patient?_id=${patientId}&_revinclude=Condition:subject`);
    const modes = found.body.entry?.map((e) => `${e.search?.mode}:${e.resource?.resourceType}`).sort();
    expect(modes).toEqual(['include:Condition', 'include:Condition', 'include:Condition', 'match:Patient']);
  });

  test('_total=accurate gives a total', async () => {
    const found = await fhir.get<Bundle>(`Condition?subject=Patient/${patientId}&_total=accurate&_count=1`);
    expect(found.body.total).toBe(3);
    expect(found.body.entry).toHaveLength(1);
  });
});
