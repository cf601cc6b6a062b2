import zlib from 'node:zlib';
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from '../http/client';

/** Issue 11: bad input never gives 5xx; each limit is a 4xx OperationOutcome naming it. */

const random = seededRandom(1111);
let server: TestServer;
let fhir: Client;
let clinic: Client;

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
  const token = await server.token('clinic');
  clinic = {
    ...fhir,
    request: (method, path, init = {}) =>
      fhir.request(method, path, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } }),
  } as Client;
  clinic.post = (path, body, headers) => clinic.request('POST', path, { body, headers });
  clinic.get = (path, headers) => clinic.request('GET', path, { headers });
});
afterAll(async () => {
  await server.stop();
});

function patient(): Record<string, unknown> {
  return { resourceType: 'Patient', identifier: [syntheticIdentifier('fnr', { random })], gender: 'female' };
}

function diagnostics(body: unknown): string {
  return ((body as OperationOutcome).issue ?? []).map((i) => i.details?.text ?? '').join(' ');
}

/** `{"key":[{"key":[ … leaf … ]}]}` nested `depth` times, as JSON text (too deep for JSON.stringify). */
function nested(depth: number, key: string, leaf: string): string {
  return `{"${key}":[`.repeat(depth) + leaf + ']}'.repeat(depth);
}

async function postRaw(path: string, text: string) {
  return clinic.request('POST', path, { raw: text, headers: { 'content-type': 'application/fhir+json' } });
}

describe('prototype-named keys', () => {
  test.each(['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf'])(
    '%s anywhere in a body or query is a 4xx',
    async (key) => {
      const top = await clinic.request('POST', 'Patient', {
        raw: `{"resourceType":"Patient","${key}":{"a":1}}`,
        headers: { 'content-type': 'application/fhir+json' },
      });
      expect(top.status).toBeGreaterThanOrEqual(400);
      expect(top.status).toBeLessThan(500);
      const deep = await clinic.request('POST', 'Patient', {
        raw: `{"resourceType":"Patient","name":[{"${key}":"x"}],"meta":{"${key}":[1]}}`,
        headers: { 'content-type': 'application/fhir+json' },
      });
      expect(deep.status).toBeLessThan(500);
      expect(deep.status).toBeGreaterThanOrEqual(400);
      for (const query of [`Patient?${key}=1`, `Patient?gender=${key}`, `Patient?${key}:exact=x`]) {
        const search = await clinic.get(query);
        expect(search.status).toBeLessThan(500);
      }
    },
  );
});

describe('deep nesting', () => {
  test('extensions 2,000 deep are refused naming the depth limit', async () => {
    const deep = nested(2000, 'extension', '{"url":"x","valueString":"y"}');
    const reply = await postRaw('Patient', `{"resourceType":"Patient",${deep.slice(1)}`);
    expect(reply.status).toBe(400);
    expect(diagnostics(reply.body)).toMatch(/nest(ed|ing).*64/);
  });

  test('QuestionnaireResponse items 5,000 deep are refused naming the depth limit', async () => {
    const deep = nested(5000, 'item', '{"linkId":"a"}');
    const reply = await postRaw(
      'QuestionnaireResponse',
      `{"resourceType":"QuestionnaireResponse","status":"completed",${deep.slice(1)}`,
    );
    expect(reply.status).toBe(400);
    expect(diagnostics(reply.body)).toMatch(/64/);
  });

  test('deep nesting is refused also inside a batch, a transaction and $validate', async () => {
    const deep = nested(500, 'extension', '{"url":"x"}').slice(1, -1);
    const resource = `{"resourceType":"Patient",${deep}}`;
    for (const [path, text] of [
      [
        '',
        `{"resourceType":"Bundle","type":"batch","entry":[{"resource":${resource},"request":{"method":"POST","url":"Patient"}}]}`,
      ],
      [
        '',
        `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":${resource},"request":{"method":"POST","url":"Patient"}}]}`,
      ],
      ['Patient/$validate', resource],
    ]) {
      const reply = await postRaw(path, text);
      expect(reply.status).toBe(400);
    }
  });
});

describe('query limits', () => {
  test('tens of thousands of values in one parameter are refused naming the limit', async () => {
    const values = Array.from({ length: 1000 }, () => 'm').join(',');
    const reply = await clinic.request('POST', 'Patient/_search', {
      raw: `gender=${values}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(reply.status).toBe(400);
    expect(diagnostics(reply.body)).toMatch(/values/);
    const repeated = Array.from({ length: 5000 }, () => 'gender=male').join('&');
    const many = await clinic.request('POST', 'Patient/_search', {
      raw: repeated,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(many.status).toBe(400);
  });

  test('a very long parameter value is refused naming the limit', async () => {
    const reply = await clinic.request('POST', 'Patient/_search', {
      raw: `family=${'a'.repeat(20000)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(reply.status).toBe(400);
    expect(diagnostics(reply.body)).toMatch(/characters/);
  });

  test('number and quantity values are parsed in linear time (32,000 digits answer at once)', async () => {
    const digits = '1'.repeat(32000);
    for (const query of [`value-quantity=${digits}x`, `probability=${digits}x`]) {
      const reply = await clinic.request(
        'POST',
        query.startsWith('value') ? 'Observation/_search' : 'RiskAssessment/_search',
        {
          raw: query,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        },
      );
      expect(reply.status).toBe(400);
    }
  });
});

describe('odd shapes', () => {
  test('clinicalStatus with an object coding is a 4xx', async () => {
    const reply = await clinic.post('Condition', {
      resourceType: 'Condition',
      clinicalStatus: { coding: {} },
      subject: { reference: 'Patient/x' },
    });
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
  });

  test.each([
    ['_gender', ['x'], 'Patient._gender'],
    ['name', [{ family: 'Nordmann', _family: true }], 'Patient.name[0]._family'],
  ])(
    'a malformed primitive extension (%s) is a 422 saying what "_" elements hold, not the validator\'s words',
    async (key, value, expression) => {
      const reply = await clinic.post<OperationOutcome>('Patient', { ...patient(), [key]: value });
      expect(reply.status).toBe(422);
      expect(reply.body.issue).toEqual([
        expect.objectContaining({ code: 'structure', expression: [expression] }),
      ]);
      expect(diagnostics(reply.body)).toMatch(/holds the id and extensions of the primitive value/);
      expect(reply.text).not.toMatch(/Cannot assign|read only|must be an object|TypeError/);
    },
  );

  test('a Consent whose extension is an object is a 4xx', async () => {
    const reply = await clinic.post('Consent', {
      resourceType: 'Consent',
      status: 'active',
      extension: { url: 'x' },
    });
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
  });

  test.each([
    { parameter: {} },
    { parameter: 'x' },
    { parameter: [null, 1, 'x'] },
    {
      parameter: [
        { name: 'resource', resource: 'x' },
        { name: 'reason', valueString: 5 },
      ],
    },
    {
      parameter: [
        { name: 'resource', resource: null },
        { name: 'reason', valueString: 'r' },
      ],
    },
    {
      parameter: [
        { name: 'resource', resource: { resourceType: 'Condition' } },
        { name: 'reason', valueString: 5 },
      ],
    },
    { parameter: [{ name: 'resource', resource: { resourceType: 'Condition' } }, { name: 'reason' }] },
  ])('$correct with parameter %j is a 4xx', async (shape) => {
    const reply = await fhir.post('Condition/abc/$correct', { resourceType: 'Parameters', ...shape });
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
  });

  test('a body that claims gzip but is not compressed is 400; really compressed is 415', async () => {
    const plain = await clinic.request('POST', 'Patient', {
      raw: JSON.stringify(patient()),
      headers: { 'content-type': 'application/fhir+json', 'content-encoding': 'gzip' },
    });
    expect([400, 415]).toContain(plain.status);
    const response = await fetch(`${server.baseUrl}/Patient`, {
      method: 'POST',
      headers: {
        authorization: (await server.token('clinic')).replace(/^/, 'Bearer '),
        'content-type': 'application/fhir+json',
        'content-encoding': 'gzip',
      },
      body: zlib.gzipSync(JSON.stringify(patient())),
    });
    expect(response.status).toBeLessThan(500);
  });

  test('an unknown operation is 404 and audited', async () => {
    const reply = await clinic.get('Patient/$01818040071');
    expect(reply.status).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
    const audit = await fhir.get<Bundle>(`AuditEvent?_count=1`);
    expect(audit.status).toBe(200);
    const last = audit.body.entry?.[0]?.resource as { outcome?: string; subtype?: { code?: string }[] };
    expect(last.outcome).not.toBe('0');
  });
});
