import type { AuditEvent, Bundle, Consent, Parameters } from '@medplum/fhirtypes';
import { AuditLog, auditLogPath } from '../../src/audit/log';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { reservation } from '../consent/fixtures';
import { clientFor, type Client, type FhirReply } from './client';

/**
 * A request is classified once (src/fhir/classify.ts), and the matrix, the handler that answers it and
 * its audit entry all go by that one classification. These requests have paths, methods and bodies that
 * a handler reading the method and path (or the audit reading the body) again could take for something
 * other than what the classifier says: each gets the answer of the interaction the classifier names,
 * and its audit entry names that same interaction.
 */
let server: TestServer;
let fhir: Client;
let clinic: string;
/** The server's audit log, wherever its state keeps it (a file, or PostgreSQL in .ci/run's state pass). */
let auditLog: AuditLog;
let requests = 0;

const random = seededRandom(4711);
const person = syntheticIdentifier('fnr', { random });
const lookup = `patient.identifier=${encodeURIComponent(`${person.system}|${person.value}`)}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
  clinic = await server.token('clinic');
  auditLog = AuditLog.open(auditLogPath(server.dataDir), server.server.config.state);
});
afterAll(async () => {
  auditLog.close();
  await server.stop();
});

interface Answer<T> extends FhirReply<T> {
  /** The audit entry's interaction: its restful-interaction code, and the operation's name if any. */
  audited: string[];
}

/** The request, with its own request id, and how the one audit entry it got names it. */
async function send<T = Bundle>(
  method: string,
  path: string,
  init: { body?: unknown; raw?: string; headers?: Record<string, string>; token?: string } = {},
): Promise<Answer<T>> {
  const { token, ...rest } = init;
  const requestId = `classification-${++requests}`;
  const reply = await fhir.request<T>(method, path, {
    ...rest,
    headers: {
      'x-request-id': requestId,
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...rest.headers,
    },
  });
  const events: AuditEvent[] = auditLog.search({ requestId, count: 10 }).matches;
  expect([method, path, events.length]).toEqual([method, path, 1]);
  return { ...reply, audited: (events[0].subtype ?? []).map((coding) => coding.code as string) };
}

describe('reservations (Consent) answer the interaction the classifier names', () => {
  let id: string;

  beforeAll(async () => {
    const reserved = await send<Parameters>('POST', 'Consent', {
      body: reservation(person.value as string, { channel: 'letter' }),
    });
    expect([reserved.status, reserved.audited]).toEqual([201, ['create']]);
    id = (reserved.body.parameter?.find((p) => p.name === 'reservation')?.resource as Consent).id as string;
  });

  test('POST Consent/_search is the search GET Consent?… is, the national id in the form', async () => {
    const byGet = await send('GET', `Consent?${lookup}`);
    const byPost = await send('POST', 'Consent/_search', { raw: lookup, headers: FORM });
    expect([byGet.status, byGet.audited]).toEqual([200, ['search-type']]);
    expect([byPost.status, byPost.audited]).toEqual([200, ['search-type']]);
    expect(byPost.body.entry?.map((e) => e.resource?.id)).toEqual([id]);
    expect(byPost.body.entry).toEqual(byGet.body.entry);
    // The matrix refuses a clinic the search, whichever way it is sent.
    const clinicByPost = await send('POST', 'Consent/_search', { raw: lookup, headers: FORM, token: clinic });
    const clinicByGet = await send('GET', `Consent?${lookup}`, { token: clinic });
    expect([clinicByPost.status, clinicByPost.audited]).toEqual([403, ['search-type']]);
    expect([clinicByGet.status, clinicByGet.audited]).toEqual([403, ['search-type']]);
  });

  test('history is refused as history, not read as a reservation with the id "_history"', async () => {
    const typeHistory = await send('GET', 'Consent/_history');
    expect([typeHistory.status, typeHistory.audited]).toEqual([405, ['history-type']]);
    const instanceHistory = await send('GET', `Consent/${id}/_history`);
    expect([instanceHistory.status, instanceHistory.audited]).toEqual([405, ['history-instance']]);
    const vread = await send('GET', `Consent/${id}/_history/1`);
    expect([vread.status, vread.audited]).toEqual([405, ['vread']]);
  });

  test('an instance path answers by its method as classified; extra segments name no endpoint', async () => {
    const read = await send<Consent>('GET', `Consent/${id}/`);
    expect([read.status, read.audited, read.body.id]).toEqual([200, ['read'], id]);
    const put = await send('PUT', `Consent/${id}`, { body: { ...reservation(person.value as string), id } });
    expect([put.status, put.audited]).toEqual([405, ['update']]);
    const del = await send('DELETE', `Consent/${id}`);
    expect([del.status, del.audited]).toEqual([405, ['delete']]);
    const post = await send('POST', `Consent/${id}`, { body: reservation(person.value as string) });
    expect([post.status, post.audited]).toEqual([405, ['operation', 'unknown']]);
    const below = await send('GET', `Consent/${id}/extra`);
    expect([below.status, below.audited]).toEqual([404, ['operation', 'unknown']]);
    // None of these changed the reservation.
    const after = await send<Consent>('GET', `Consent/${id}`);
    expect([after.status, after.body.status]).toEqual([200, 'active']);
  });

  test('an operation name is matched exactly: another case is no operation', async () => {
    const odd = await send('POST', 'Consent/$VALIDATE', { body: reservation(person.value as string) });
    expect([odd.status, odd.audited]).toEqual([404, ['operation', 'unknown']]);
    const validated = await send('POST', 'Consent/$validate', { body: reservation(person.value as string) });
    expect([validated.status, validated.audited]).toEqual([200, ['operation', '$validate']]);
  });
});

describe('the audit log and the OperationDefinitions answer the interaction the classifier names', () => {
  test('POST AuditEvent/_search is a search of the log; its history is refused as history', async () => {
    const byPost = await send('POST', 'AuditEvent/_search', { raw: '_count=1', headers: FORM });
    expect([byPost.status, byPost.audited, byPost.body.type]).toEqual([200, ['search-type'], 'searchset']);
    expect(byPost.body.entry).toHaveLength(1);
    const history = await send('GET', 'AuditEvent/_history');
    expect([history.status, history.audited]).toEqual([405, ['history-type']]);
  });

  test('POST OperationDefinition/_search lists them as GET does; their history is refused', async () => {
    const byGet = await send('GET', 'OperationDefinition');
    const byPost = await send('POST', 'OperationDefinition/_search', { raw: '', headers: FORM });
    expect([byPost.status, byPost.audited]).toEqual([200, ['search-type']]);
    expect(byPost.body.entry).toEqual(byGet.body.entry);
    const history = await send('GET', 'OperationDefinition/_history');
    expect([history.status, history.audited]).toEqual([405, ['history-type']]);
  });
});

describe('a Bundle posted to the base is audited by the type the server read from it, once', () => {
  const batch: Bundle = { resourceType: 'Bundle', type: 'batch', entry: [] };

  test('a batch is audited as a batch, a transaction as a transaction', async () => {
    const asBatch = await send('POST', '', { body: batch });
    expect([asBatch.status, asBatch.audited]).toEqual([200, ['batch']]);
    const asTransaction = await send('POST', '', { body: { ...batch, type: 'transaction' } });
    expect([asTransaction.status, asTransaction.audited]).toEqual([200, ['transaction']]);
  });

  test('a Bundle without a type, or with one that is not a string, is refused and audited as a transaction', async () => {
    for (const body of [
      { resourceType: 'Bundle', entry: [] },
      { ...batch, type: ['batch'] },
    ]) {
      const reply = await send('POST', '', { body });
      expect([reply.status, reply.audited]).toEqual([400, ['transaction']]);
    }
  });

  test('a body the server refused unread is not read for the audit either', async () => {
    const nested = JSON.stringify({ ...batch, extension: [] }).replace(
      '"extension":[]',
      `"extension":${'['.repeat(100)}${']'.repeat(100)}`,
    );
    const tooDeep = await send('POST', '', {
      raw: nested,
      headers: { 'content-type': 'application/fhir+json' },
    });
    expect(tooDeep.status).toBe(400);
    expect(tooDeep.text).toContain('nested more than');
    expect(tooDeep.audited).toEqual(['transaction']);
    const notJson = await send('POST', '', {
      raw: JSON.stringify(batch),
      headers: { 'content-type': 'text/plain' },
    });
    expect([notJson.status, notJson.audited]).toEqual([415, ['transaction']]);
  });
});
