import { parseSearchRequest } from '@medplum/core';
import type { AuditEvent } from '@medplum/fhirtypes';
import { AUDIT_SYSTEMS, buildAuditEvent } from '../../src/audit/auditEvent';
import type { AuditLog } from '../../src/audit/log';
import { searchAuditEvents, type AuditScope } from '../../src/audit/search';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { FhirError } from '../../src/fhir/outcomes';
import { admin, clinic, openTempLog, portal } from './fixtures';

const P = AUDIT_SYSTEMS.registryPseudonym;
let log: AuditLog;

beforeAll(() => {
  loadFhirDefinitions();
  ({ log } = openTempLog());
  const at = (iso: string) => new Date(iso);
  // 1: the clinic reads A's Condition
  log.append(
    buildAuditEvent({
      principal: clinic,
      interaction: 'read',
      resources: ['Condition/c1'],
      patients: ['1-A'],
      outcome: '0',
      requestId: 'r1',
      recorded: at('2025-01-10T08:00:00Z'),
    }),
  );
  // 2: the clinic searches and gets A's and B's Conditions
  log.append(
    buildAuditEvent({
      principal: clinic,
      interaction: 'search-type',
      resources: ['Condition/c1', 'Condition/c2'],
      patients: ['1-A', '1-B'],
      outcome: '0',
      requestId: 'r2',
      recorded: at('2025-01-31T23:59:59.999Z'),
    }),
  );
  // 3: staff update B's episode, refused
  log.append(
    buildAuditEvent({
      principal: admin,
      interaction: 'update',
      resources: ['EpisodeOfCare/e2'],
      patients: ['1-B'],
      outcome: '4',
      requestId: 'r3',
      recorded: at('2025-02-01T00:00:00Z'),
    }),
  );
  // 4: B answers a questionnaire through the portal
  log.append(
    buildAuditEvent({
      principal: portal,
      actorPseudonym: '1-B',
      interaction: 'create',
      resources: ['QuestionnaireResponse/q2'],
      patients: ['1-B'],
      outcome: '0',
      requestId: 'r4',
      recorded: at('2025-03-15T12:00:00+01:00'),
    }),
  );
});

afterAll(() => log.close());

function search(query: string, scope: AuditScope = { kind: 'all' }): AuditEvent[] {
  return searchAuditEvents(log, parseSearchRequest(`AuditEvent?${query}`), scope).matches;
}

const requestIds = (events: AuditEvent[]) =>
  events.map((e) => e.entity?.find((x) => x.type?.code === 'XrequestId')?.what?.identifier?.value);

function fhirError(fn: () => unknown): FhirError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error('expected a FhirError');
}

describe('searching the audit log', () => {
  it('lists everything newest first for staff, with a total', () => {
    const result = searchAuditEvents(log, parseSearchRequest('AuditEvent'), { kind: 'all' });
    expect(result.total).toBe(4);
    expect(requestIds(result.matches)).toEqual(['r4', 'r3', 'r2', 'r1']);
    expect(requestIds(search('_sort=date'))).toEqual(['r1', 'r2', 'r3', 'r4']);
  });

  it('filters by the person concerned', () => {
    expect(requestIds(search(`patient:identifier=${P}|1-A`))).toEqual(['r2', 'r1']);
    expect(requestIds(search('patient:identifier=1-B'))).toEqual(['r4', 'r3', 'r2']);
    expect(search('patient:identifier=1-nobody')).toEqual([]);
  });

  it('filters by agent: client id, RESH id, HPR number or the citizen', () => {
    expect(requestIds(search('agent:identifier=dips-stolav'))).toEqual(['r2', 'r1']);
    expect(requestIds(search(`agent:identifier=${AUDIT_SYSTEMS.resh}|4001031`))).toEqual(['r2', 'r1']);
    expect(requestIds(search('agent:identifier=9144889'))).toEqual(['r2', 'r1']);
    expect(requestIds(search('agent:identifier=1-B'))).toEqual(['r4']);
  });

  it('filters by date ranges at the precision given', () => {
    expect(requestIds(search('date=2025-01'))).toEqual(['r2', 'r1']);
    expect(requestIds(search('date=ge2025-02'))).toEqual(['r4', 'r3']);
    expect(requestIds(search('date=gt2025-01-31'))).toEqual(['r4', 'r3']);
    expect(requestIds(search('date=le2025-01-31'))).toEqual(['r2', 'r1']);
    expect(requestIds(search('date=lt2025-02-01T00:00:00Z'))).toEqual(['r2', 'r1']);
    expect(requestIds(search('date=ge2025-01-15&date=lt2025-03-01'))).toEqual(['r3', 'r2']);
    expect(requestIds(search('date=2025-03-15T11:00:00Z'))).toEqual(['r4']);
  });

  it('filters by action and outcome', () => {
    expect(requestIds(search('action=C,U'))).toEqual(['r4', 'r3']);
    expect(requestIds(search('action=E'))).toEqual(['r2']);
    expect(requestIds(search('outcome=4'))).toEqual(['r3']);
    expect(requestIds(search('outcome=0&patient:identifier=1-B'))).toEqual(['r4', 'r2']);
  });

  it('pages with _count and _offset', () => {
    const first = searchAuditEvents(log, parseSearchRequest('AuditEvent?_count=3'), { kind: 'all' });
    expect(requestIds(first.matches)).toEqual(['r4', 'r3', 'r2']);
    expect(first.nextOffset).toBe(3);
    const second = searchAuditEvents(log, parseSearchRequest('AuditEvent?_count=3&_offset=3'), {
      kind: 'all',
    });
    expect(requestIds(second.matches)).toEqual(['r1']);
    expect(second.nextOffset).toBeUndefined();
    const count = searchAuditEvents(log, parseSearchRequest('AuditEvent?_summary=count'), { kind: 'all' });
    expect(count).toMatchObject({ matches: [], total: 4 });
  });

  it('answers bad parameters with a 400 OperationOutcome naming the parameter', () => {
    for (const [query, expression] of [
      ['foo=bar', 'foo'],
      ['patient=Patient/1', 'patient'],
      ['patient:identifier=urn:oid:2.16.578.1.12.4.1.4.1|16858399649', 'patient:identifier'],
      ['action=X', 'action'],
      ['outcome=3', 'outcome'],
      ['date=2025-02-30', 'date'],
      ['date=ne2025', 'date'],
      ['_sort=action', '_sort'],
    ]) {
      const err = fhirError(() => search(query));
      expect(err.status).toBe(400);
      expect(err.outcome.issue[0].expression).toEqual([expression]);
    }
  });
});

describe('a citizen searching their own access log', () => {
  const B: AuditScope = { kind: 'person', pseudonym: '1-B' };

  it('sees only the events about themselves', () => {
    expect(requestIds(search('', B))).toEqual(['r4', 'r3', 'r2']);
    expect(requestIds(search('outcome=4', B))).toEqual(['r3']);
    expect(requestIds(search(`patient:identifier=${P}|1-B`, B))).toEqual(['r4', 'r3', 'r2']);
  });

  it('cannot ask for someone else', () => {
    expect(fhirError(() => search('patient:identifier=1-A', B)).status).toBe(403);
  });

  it("does not see other people's pseudonyms or resource ids in shared events", () => {
    const shared = search('action=E', B)[0];
    const text = JSON.stringify(shared);
    expect(text).not.toContain('1-A');
    expect(text).not.toContain('Condition/c1');
    expect(shared.entity?.map((e) => e.what)).toEqual([
      { identifier: { system: P, value: '1-B' } },
      { type: 'Condition' },
      { identifier: { value: 'r2' } },
    ]);
    // Who did it stays visible: that is the point of the access log.
    expect(shared.agent.map((a) => a.who?.identifier?.value)).toEqual(['dips-stolav', '4001031', '9144889']);
  });
});
