import Database from 'better-sqlite3';
import fc from 'fast-check';
import { getResourceTypes } from '@medplum/core';
import type { Role } from '../../src/auth/principal';
import { ReservationRegister } from '../../src/consent/register';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { syntheticIdentifier } from '../../src/identity/synthetic';
import { EmbeddedStore } from '../../src/store/embedded';
import type { TestServer } from './testServer';

/**
 * The malformed-request fuzzer of issue 11, shared by test/robust/fuzz.property.test.ts (CI, fixed seed)
 * and bench/fuzz/run.ts (100,000 requests). It starts from valid requests over every interaction
 * (read, vread, search by GET and POST, create, update, conditional update, delete, history, batch,
 * transaction, the operations) and resource type, and mutates them: wrong types and nulls, deep nesting,
 * prototype-named keys, huge values, bad headers, bad JSON and bad query strings.
 */

export interface FuzzRequest {
  role: Role;
  method: string;
  /** Below the FHIR base, with its query string; already encoded. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const FNR = 'urn:oid:2.16.578.1.12.4.1.4.1';
const REGISTRY_TYPES = [
  'Patient',
  'EpisodeOfCare',
  'Encounter',
  'Condition',
  'Procedure',
  'QuestionnaireResponse',
  'Questionnaire',
  'Consent',
  'AuditEvent',
  'Organization',
  'Observation',
  'Provenance',
] as const;

let allTypes: string[] | undefined;
function resourceTypes(): string[] {
  if (!allTypes) {
    loadFhirDefinitions();
    allTypes = getResourceTypes();
  }
  return allTypes;
}

/** A resource type: mostly the registry's own, any FHIR R4 type often enough. */
function typeArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...REGISTRY_TYPES) },
    { weight: 1, arbitrary: fc.constantFrom(...resourceTypes()) },
  );
}

/** A plausible resource of `type` (valid enough to reach the pipeline, not necessarily accepted). */
function resourceFor(type: string, nationalId: string, id?: string): Record<string, unknown> {
  const subject = { reference: 'Patient/p1' };
  const base: Record<string, unknown> = { resourceType: type, ...(id ? { id } : {}) };
  switch (type) {
    case 'Patient':
      return {
        ...base,
        identifier: [{ system: FNR, value: nationalId }],
        gender: 'female',
        birthDate: '1980-01-01',
      };
    case 'Condition':
      return {
        ...base,
        subject,
        clinicalStatus: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }],
        },
        code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'M54.5' }] },
      };
    case 'EpisodeOfCare':
      return { ...base, status: 'active', patient: subject, period: { start: '2024-01-01' } };
    case 'Encounter':
      return { ...base, status: 'finished', class: { code: 'AMB' }, subject };
    case 'Procedure':
      return { ...base, status: 'completed', subject };
    case 'QuestionnaireResponse':
      return {
        ...base,
        status: 'completed',
        subject,
        questionnaire: 'https://norpain.no/fhir/Questionnaire/bpi',
        item: [{ linkId: '1', answer: [{ valueInteger: 3 }], item: [{ linkId: '1.1', text: 'x' }] }],
      };
    case 'Consent':
      return {
        ...base,
        status: 'active',
        scope: { coding: [{ code: 'research' }] },
        category: [{ coding: [{ code: 'reservation' }] }],
        patient: { identifier: { system: FNR, value: nationalId } },
        extension: [
          { url: 'https://norpain.no/fhir/StructureDefinition/reservation-channel', valueCode: 'letter' },
        ],
      };
    case 'Observation':
      return {
        ...base,
        status: 'final',
        code: { text: 'x' },
        subject,
        valueQuantity: { value: 1.5, unit: 'mg' },
      };
    default:
      return {
        ...base,
        extension: [{ url: 'urn:x', valueString: 'y' }],
        text: { status: 'generated', div: '<div/>' },
      };
  }
}

type Json = unknown;

const ODD_KEYS = [
  'constructor',
  'toString',
  'hasOwnProperty',
  '__proto__',
  'valueOf',
  'prototype',
  '',
  'resourceType',
  'id',
  'extension',
  'item',
  'coding',
  'reference',
];

const oddValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.constant({}),
  fc.constant([]),
  fc.constant([null]),
  fc.constant({ coding: {} }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('Patient/$01818040071', '01818040071', '1e999999', '-', '../../x', '\u0000', 'urn:uuid:x'),
  fc.integer({ min: 1_000, max: 60_000 }).map((n) => '9'.repeat(n)),
  fc.integer({ min: 10, max: 3_000 }).map((depth) => ({ __deep: depth })),
);

/** The JSON paths (keys and indexes) of a value, as lists. */
function pathsOf(
  value: Json,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(prefix);
  if (out.length > 200) return out;
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}

function setAt(value: Json, at: (string | number)[], replacement: Json): Json {
  if (at.length === 0) return replacement;
  const [head, ...rest] = at;
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? setAt(v, rest, replacement) : v));
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, Json> = { ...(value as Record<string, Json>) };
    Object.defineProperty(copy, head, {
      value: setAt(copy[head], rest, replacement),
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return copy;
  }
  return value;
}

/** JSON text; `{__deep: n}` placeholders become n levels of nested extensions (too deep for stringify). */
function toText(value: Json): string {
  return JSON.stringify(value).replace(/\{"__deep":(\d+)\}/g, (_m, n: string) => {
    const depth = Number(n);
    return '{"extension":['.repeat(depth) + '{"url":"x"}' + ']}'.repeat(depth);
  });
}

type Mutation = (body: Json) => fc.Arbitrary<Json>;

const replaceSomewhere: Mutation = (body) =>
  fc.tuple(fc.constantFrom(...pathsOf(body)), oddValue).map(([at, v]) => setAt(body, at, v));
const addOddKey: Mutation = (body) =>
  fc
    .tuple(
      fc.constantFrom(...pathsOf(body).filter((p) => p.length < 6)),
      fc.constantFrom(...ODD_KEYS),
      oddValue,
    )
    .map(([at, key, v]) => setAt(body, [...at, key], v));

const bodyMutation = (body: Json): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant(toText(body)) },
    { weight: 4, arbitrary: replaceSomewhere(body).map(toText) },
    { weight: 3, arbitrary: addOddKey(body).map(toText) },
    { weight: 1, arbitrary: replaceSomewhere(body).chain(addOddKey).map(toText) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.nat(), fc.constantFrom('', '}', '{', '"', ',', '\\', '\u0000', ']]]]'))
        .map(([cut, junk]) => {
          const text = toText(body);
          const at = cut % (text.length + 1);
          return text.slice(0, at) + junk + text.slice(at + (cut % 3));
        }),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('', 'null', '[]', '"x"', '42', '{}', '['.repeat(5000), '{"a":'.repeat(3000)),
    },
  );

const oddQuery: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    'identifier=' + encodeURIComponent(`${FNR}|01818040071`),
    '_count=abc',
    '_count=99999999999',
    '_offset=-1',
    '_sort=constructor',
    '_include=*',
    '_revinclude=Provenance:target',
    '_elements=constructor,id',
    '_summary=count',
    '_total=accurate',
    'constructor=1',
    '__proto__=x',
    'hasOwnProperty=1',
    'subject:Patient.identifier=' + encodeURIComponent(`${FNR}|01818040071`),
    'value-quantity=gt5.4|http://unitsofmeasure.org|mg',
    'date=ge2024-13-45',
    'date=eb2024',
    'code:toString=x',
    'a=%zz',
    '%E0%A4%A=1',
    'x[]=1&x[]=2',
    '_has:Observation:subject:code=1',
    'patient.identifier=' + encodeURIComponent(`${FNR}|01818040071`),
  ),
  fc
    .integer({ min: 90, max: 30_000 })
    .map((n) => `gender=${Array.from({ length: n }, () => 'male').join(',')}`),
  fc.integer({ min: 2_000, max: 40_000 }).map((n) => `probability=${'1'.repeat(n)}x`),
  fc.integer({ min: 2_000, max: 40_000 }).map((n) => `value-quantity=${'1'.repeat(n)}.`),
  fc.integer({ min: 60, max: 3_000 }).map((n) => Array.from({ length: n }, (_, i) => `p${i}=1`).join('&')),
  fc
    .tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 30 }))
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`),
);

const ODD_HEADER_VALUES: Record<string, fc.Arbitrary<string>> = {
  'content-type': fc.constantFrom(
    'application/fhir+json',
    'application/json',
    'application/fhir+json; charset=latin1',
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/fhir+xml',
    'multipart/form-data; boundary=x',
  ),
  'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x'),
  'if-match': fc.constantFrom('W/"1"', '"abc', '*', 'W/"' + '9'.repeat(100) + '"', ''),
  'if-none-exist': fc.constantFrom(
    'identifier=' + encodeURIComponent(`${FNR}|01818040071`),
    '?',
    'constructor=1',
    '',
  ),
  prefer: fc.constantFrom(
    'return=minimal',
    'return=OperationOutcome',
    'return=constructor',
    'handling=strict',
  ),
  accept: fc.constantFrom('application/fhir+json', 'text/html', '*/*;q=0', 'application/fhir+xml', ''),
  'x-request-id': fc.constantFrom('01818040071', 'a'.repeat(80), 'ok-1', '\t'),
};

/** One or two damaged headers. */
const oddHeaders: fc.Arbitrary<Record<string, string>> = fc
  .uniqueArray(fc.constantFrom(...Object.keys(ODD_HEADER_VALUES)), { minLength: 1, maxLength: 2 })
  .chain((names) =>
    fc.tuple(...names.map((name) => ODD_HEADER_VALUES[name].map((value) => [name, value] as const))),
  )
  .map((pairs) => Object.fromEntries(pairs));

/** A valid request over one interaction, with ids the server has (`known`) or not. */
function validRequest(
  known: { patientId: string; conditionId: string },
  nationalId: string,
): fc.Arbitrary<Omit<FuzzRequest, 'role'> & { json?: Json }> {
  const id = fc.constantFrom(known.patientId, known.conditionId, 'nope', 'x'.repeat(64));
  return fc.oneof(
    typeArb().map((type) => ({ method: 'GET', path: type, headers: {} })),
    fc.tuple(typeArb(), oddQuery).map(([type, q]) => ({ method: 'GET', path: `${type}?${q}`, headers: {} })),
    fc.tuple(typeArb(), oddQuery).map(([type, q]) => ({
      method: 'POST',
      path: `${type}/_search`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: q,
    })),
    fc.tuple(typeArb(), id).map(([type, i]) => ({ method: 'GET', path: `${type}/${i}`, headers: {} })),
    fc
      .tuple(typeArb(), id)
      .map(([type, i]) => ({ method: 'GET', path: `${type}/${i}/_history/1`, headers: {} })),
    fc
      .tuple(typeArb(), id)
      .map(([type, i]) => ({ method: 'GET', path: `${type}/${i}/_history`, headers: {} })),
    typeArb().map((type) => ({ method: 'GET', path: `${type}/_history`, headers: {} })),
    fc.constant({ method: 'GET', path: '_history', headers: {} }),
    typeArb().map((type) => ({
      method: 'POST',
      path: type,
      headers: {},
      json: resourceFor(type, nationalId),
    })),
    fc.tuple(typeArb(), id).map(([type, i]) => ({
      method: 'PUT',
      path: `${type}/${i}`,
      headers: {},
      json: resourceFor(type, nationalId, i),
    })),
    typeArb().map((type) => ({
      method: 'PUT',
      path: `${type}?identifier=${encodeURIComponent(`${FNR}|${nationalId}`)}`,
      headers: {},
      json: resourceFor(type, nationalId),
    })),
    fc.tuple(typeArb(), id).map(([type, i]) => ({ method: 'DELETE', path: `${type}/${i}`, headers: {} })),
    fc
      .tuple(fc.constantFrom('batch', 'transaction'), fc.array(typeArb(), { minLength: 1, maxLength: 4 }))
      .map(([type, types]) => ({
        method: 'POST',
        path: '',
        headers: {},
        json: {
          resourceType: 'Bundle',
          type,
          entry: types.map((t, i) =>
            i % 2 === 0
              ? {
                  fullUrl: `urn:uuid:00000000-0000-4000-8000-00000000000${i}`,
                  resource: resourceFor(t, nationalId),
                  request: { method: 'POST', url: t },
                }
              : { request: { method: 'GET', url: `${t}?_count=1` } },
          ),
        },
      })),
    typeArb().map((type) => ({
      method: 'POST',
      path: `${type}/$validate`,
      headers: {},
      json: resourceFor(type, nationalId),
    })),
    fc.constant({ method: 'GET', path: 'Patient/$everything', headers: {} }),
    id.map((i) => ({
      method: 'POST',
      path: `Condition/${i}/$correct`,
      headers: {},
      json: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'resource', resource: resourceFor('Condition', nationalId, i) },
          { name: 'reason', valueString: 'typo' },
        ],
      },
    })),
    fc.constant({ method: 'POST', path: 'Consent', headers: {}, json: resourceFor('Consent', nationalId) }),
    fc.constantFrom(
      { method: 'GET', path: 'Patient/$01818040071', headers: {} },
      { method: 'GET', path: '$meta', headers: {} },
      { method: 'PATCH', path: 'Patient/x', headers: {} },
      { method: 'GET', path: 'Patient/%E0%A4%A', headers: {} },
      { method: 'GET', path: 'constructor/1', headers: {} },
      { method: 'GET', path: '__proto__', headers: {} },
      { method: 'POST', path: 'metadata', headers: {} },
      {
        method: 'GET',
        path: `AuditEvent?patient.identifier=${encodeURIComponent(`${FNR}|${nationalId}`)}`,
        headers: {},
      },
    ),
  );
}

/** A mutated request: the valid one, with its body, query or headers damaged (or not, sometimes). */
export function malformedRequest(known: {
  patientId: string;
  conditionId: string;
}): fc.Arbitrary<FuzzRequest> {
  const nationalId = syntheticIdentifier('fnr', { random: () => 0.37 }).value as string;
  return fc
    .tuple(
      fc.constantFrom<Role>('clinic', 'clinic', 'registry-admin', 'registry-admin', 'portal', 'researcher'),
      validRequest(known, nationalId),
      oddHeaders,
      fc.nat(9),
    )
    .chain(([role, request, headers, dice]) => {
      const { json, ...rest } = request;
      const body: fc.Arbitrary<string | undefined> =
        json === undefined
          ? fc.constant(rest.body)
          : dice < 2
            ? fc.constant(toText(json))
            : bodyMutation(json);
      return body.map((text) => ({
        ...rest,
        role,
        body: text,
        headers: {
          ...(text !== undefined ? { 'content-type': 'application/fhir+json' } : {}),
          ...rest.headers,
          // Bad headers on a third of the requests.
          ...(dice % 3 === 0 ? headers : {}),
        },
      }));
    });
}

export interface FuzzOutcome {
  status: number;
  /** Statuses of a batch or transaction response's entries. */
  entryStatuses: number[];
}

/** Sends a fuzz request; a request not answered within `timeoutMs` throws (a hang). */
export async function send(
  server: TestServer,
  tokens: Record<Role, string>,
  request: FuzzRequest,
  timeoutMs = 15_000,
): Promise<FuzzOutcome> {
  const response = await fetch(`${server.baseUrl}/${request.path}`, {
    method: request.method,
    headers: { authorization: `Bearer ${tokens[request.role]}`, ...request.headers },
    body: request.method === 'GET' || request.method === 'HEAD' ? undefined : request.body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let entryStatuses: number[] = [];
  if (response.status === 200 && text.includes('-response"')) {
    const bundle = JSON.parse(text) as { entry?: { response?: { status?: string } }[] };
    entryStatuses = (bundle.entry ?? []).map((e) => Number(e.response?.status?.slice(0, 3)));
  }
  return { status: response.status, entryStatuses };
}

export async function tokensFor(server: TestServer): Promise<Record<Role, string>> {
  return {
    clinic: await server.token('clinic'),
    portal: await server.token('portal'),
    'registry-admin': await server.token('registry-admin'),
    researcher: await server.token('researcher'),
  };
}

/**
 * What a refused request must not change: the clinical store's versions and the reservation register,
 * read through read-only connections of their own.
 */
export function storeFingerprint(dataDir: string): { read(): string; close(): void } {
  const store = new Database(EmbeddedStore.defaultFile(dataDir), { readonly: true });
  const register = new Database(ReservationRegister.defaultFile(dataDir), { readonly: true });
  const versions = store.prepare<[], { n: number; last: number | null }>(
    'SELECT count(*) AS n, max(rowid) AS last FROM resource_version',
  );
  const reservations = register.prepare<[], { n: number; states: string | null }>(
    "SELECT count(*) AS n, group_concat(id || status, ',') AS states FROM reservation",
  );
  return {
    read: () => JSON.stringify([versions.get(), reservations.get()]),
    close: () => {
      store.close();
      register.close();
    },
  };
}
