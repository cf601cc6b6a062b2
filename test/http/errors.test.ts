import type { CapabilityStatement, Identifier, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from './client';

const random = seededRandom(1304);
const newPerson = (): Identifier => syntheticIdentifier('fnr', { random });
const token = (identifier: Identifier): string => `${identifier.system}|${identifier.value}`;

let server: TestServer;
let fhir: Client;

beforeAll(async () => {
  server = await startTestServer({ MAX_BODY_BYTES: '20000' });
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

describe('authentication', () => {
  test('metadata needs no token; everything else does (401 OperationOutcome)', async () => {
    const metadata = await fetch(`${server.baseUrl}/metadata`);
    expect(metadata.status).toBe(200);
    const anonymous = await fetch(`${server.baseUrl}/Patient`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toBe(FHIR_JSON);
    expect(((await anonymous.json()) as OperationOutcome).resourceType).toBe('OperationOutcome');
    const badToken = await fetch(`${server.baseUrl}/Patient`, {
      headers: { authorization: 'Bearer nonsense' },
    });
    expect(badToken.status).toBe(401);
  });
});

describe('content negotiation', () => {
  test('application/json and charset variants are accepted; other bodies get 415', async () => {
    for (const type of [
      'application/json',
      'application/fhir+json; charset=utf-8',
      'application/json;charset=UTF-8',
    ]) {
      const reply = await fhir.post(
        'Patient',
        { resourceType: 'Patient', identifier: [newPerson()] },
        { 'content-type': type },
      );
      expect({ type, status: reply.status }).toEqual({ type, status: 201 });
      expect(reply.headers.get('content-type')).toBe(FHIR_JSON);
    }
    for (const type of ['application/xml', 'text/plain', 'application/fhir+json; charset=latin1']) {
      const reply = await fhir.request<OperationOutcome>('POST', 'Patient', {
        raw: JSON.stringify({ resourceType: 'Patient', identifier: [newPerson()] }),
        headers: { 'content-type': type },
      });
      expect({ type, status: reply.status }).toEqual({ type, status: 415 });
      expect(reply.body.resourceType).toBe('OperationOutcome');
    }
  });

  test('an Accept that allows no JSON is 406; */* and fhir+json are fine; _format overrides', async () => {
    const xml = await fhir.get<OperationOutcome>('Patient', { accept: 'application/fhir+xml' });
    expect(xml.status).toBe(406);
    expect(xml.body.resourceType).toBe('OperationOutcome');
    expect((await fhir.get('Patient', { accept: '*/*' })).status).toBe(200);
    expect((await fhir.get('Patient', { accept: 'application/fhir+json' })).status).toBe(200);
    expect((await fhir.get('Patient?_format=json', { accept: 'text/html' })).status).toBe(200);
    expect((await fhir.get('Patient?_format=xml')).status).toBe(406);
    expect((await fetch(`${server.baseUrl}/metadata`, { headers: { accept: 'text/html' } })).status).toBe(
      406,
    );
  });
});

describe('bad input', () => {
  test('malformed JSON is 400', async () => {
    const reply = await fhir.request<OperationOutcome>('POST', 'Patient', {
      raw: '{"resourceType": "Patient",',
      headers: { 'content-type': 'application/fhir+json' },
    });
    expect(reply.status).toBe(400);
    expect(reply.body.issue[0].code).toBe('invalid');
  });

  test('resourceType not matching the URL is 400', async () => {
    const reply = await fhir.post<OperationOutcome>('Patient', { resourceType: 'Observation' });
    expect(reply.status).toBe(400);
    expect(reply.body.issue[0].expression).toEqual(['resourceType']);
  });

  test('a body over the limit is 413 and nothing is written', async () => {
    const person = newPerson();
    const big: Patient = {
      resourceType: 'Patient',
      identifier: [person],
      name: [{ text: 'x'.repeat(30000) }],
    };
    const reply = await fhir.post<OperationOutcome>('Patient', big);
    expect(reply.status).toBe(413);
    expect(reply.body.resourceType).toBe('OperationOutcome');
    const found = await fhir.get<{ total?: number }>(`Patient?identifier=${token(person)}&_summary=count`);
    expect(found.body.total).toBe(0);
  });

  test('an invalid resource is 422 with expression paths, for every problem', async () => {
    const reply = await fhir.post<OperationOutcome>('Patient', {
      resourceType: 'Patient',
      gender: 'bogus',
      birthDate: 'yesterday',
      unknownElement: true,
    });
    expect(reply.status).toBe(422);
    const expressions = reply.body.issue.flatMap((i) => i.expression ?? []).sort();
    expect(expressions).toEqual(['Patient.birthDate', 'Patient.gender', 'Patient.unknownElement']);
    expect(reply.text).not.toMatch(/at .*\.ts|node_modules/);
  });

  test('a bogus QuestionnaireResponse.status is 422 with its path', async () => {
    const reply = await fhir.post<OperationOutcome>('QuestionnaireResponse', {
      resourceType: 'QuestionnaireResponse',
      status: 'done',
    });
    expect(reply.status).toBe(422);
    expect(reply.body.issue[0].expression).toEqual(['QuestionnaireResponse.status']);
    expect(reply.body.issue[0].details?.text).toContain('completed');
  });

  test('required bindings inside data types are checked too', async () => {
    const reply = await fhir.post<OperationOutcome>('Patient', {
      resourceType: 'Patient',
      name: [{ use: 'nickname' }, { use: 'alias', family: 'X' }],
    });
    expect(reply.status).toBe(422);
    expect(reply.body.issue[0].expression).toEqual(['Patient.name[1].use']);
  });
});

describe('$validate', () => {
  test('returns an OperationOutcome for valid and invalid resources without storing', async () => {
    const person = newPerson();
    const valid = await fhir.post<OperationOutcome>('Patient/$validate', {
      resourceType: 'Patient',
      identifier: [person],
    });
    expect(valid.status).toBe(200);
    expect(valid.body.issue[0].severity).toBe('information');
    const invalid = await fhir.post<OperationOutcome>('Patient/$validate', {
      resourceType: 'Parameters',
      parameter: [{ name: 'resource', resource: { resourceType: 'Patient', gender: 'x' } }],
    });
    expect(invalid.status).toBe(200);
    expect(invalid.body.issue[0].expression).toEqual(['Patient.gender']);
    const found = await fhir.get<{ total?: number }>(`Patient?identifier=${token(person)}&_summary=count`);
    expect(found.body.total).toBe(0);
  });
});

describe('CapabilityStatement', () => {
  test('lists the interactions, search parameters and operations that work', async () => {
    const reply = await fhir.get<CapabilityStatement>('metadata');
    expect(reply.status).toBe(200);
    const statement = reply.body;
    expect(statement.fhirVersion).toBe('4.0.1');
    expect(statement.implementation?.url).toBe(server.baseUrl);
    const rest = statement.rest?.[0];
    expect(rest?.interaction?.map((i) => i.code).sort()).toEqual(['batch', 'transaction']);
    const patient = rest?.resource?.find((r) => r.type === 'Patient');
    expect(patient?.interaction?.map((i) => i.code)).toEqual(
      expect.arrayContaining([
        'read',
        'vread',
        'update',
        'delete',
        'create',
        'search-type',
        'history-instance',
      ]),
    );
    expect(patient?.conditionalCreate).toBe(true);
    const params = patient?.searchParam?.map((p) => p.name) ?? [];
    expect(params).toEqual(expect.arrayContaining(['identifier', 'birthdate', '_lastUpdated', '_id']));
    expect(rest?.operation?.map((o) => o.name)).toContain('validate');
    // Every advertised Patient search parameter is accepted by the search endpoint.
    for (const param of patient?.searchParam ?? []) {
      const value = param.type === 'date' ? 'ge2000-01-01' : param.type === 'number' ? '1' : 'x';
      const probe = await fhir.get(`Patient?${param.name}=${value}&_summary=count`);
      expect({ param: param.name, status: probe.status }).toEqual({ param: param.name, status: 200 });
    }
  });
});

describe('client errors that Express raises before a handler of ours', () => {
  test('a path that is not validly percent-encoded is a 400 OperationOutcome, not an internal error', async () => {
    const logsBefore = server.logs.length;
    const reply = await fetch(`${server.origin}/public/annual/%E0`);
    expect(reply.status).toBe(400);
    expect(reply.headers.get('content-type')).toBe(FHIR_JSON);
    const outcome = (await reply.json()) as OperationOutcome;
    expect(outcome.issue).toEqual([
      expect.objectContaining({
        code: 'invalid',
        details: { text: 'The URL is not validly percent-encoded.' },
      }),
    ]);
    expect(server.logs.slice(logsBefore).filter((line) => line.level === 'error')).toEqual([]);
  });
});

describe('unexpected errors', () => {
  test('become a 500 OperationOutcome without internals', async () => {
    const broken = await startTestServer();
    const client = await clientFor(broken);
    try {
      // A store that has gone away underneath the router throws a plain Error, not a FhirError.
      await broken.server.store.close();
      const reply = await client.get<OperationOutcome>('Patient?gender=male');
      expect(reply.status).toBe(500);
      expect(reply.headers.get('content-type')).toBe(FHIR_JSON);
      expect(reply.body.resourceType).toBe('OperationOutcome');
      expect(reply.body.issue[0].code).toBe('exception');
      expect(reply.text).not.toMatch(/sqlite|database|\.ts|at /i);
      // Logged once, by the server's logger, without a stack: the error's class and where it was thrown.
      const logged = broken.logs.filter((line) => line.msg === 'unhandled error');
      expect(logged).toEqual([
        expect.objectContaining({
          method: 'GET',
          route: '/fhir/Patient',
          errorType: expect.stringMatching(/Error$/),
          errorAt: expect.any(String),
        }),
      ]);
      expect(JSON.stringify(logged)).not.toMatch(/\\n|\bat /);
    } finally {
      await broken.stop().catch(() => undefined);
    }
  });
});
