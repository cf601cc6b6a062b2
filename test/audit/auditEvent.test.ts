import fc from 'fast-check';
import { validateResource } from '@medplum/core';
import { buildAuditEvent, outcomeForHttpStatus, AUDIT_SYSTEMS } from '../../src/audit/auditEvent';
import { AuditIdentifierError, assertNoNationalId } from '../../src/audit/nationalIdGuard';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { containsNationalId, type NationalIdKind } from '../../src/identity/nationalId';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { admin, clinic, event, openTempLog, portal } from './fixtures';

beforeAll(() => loadFhirDefinitions());

describe('building AuditEvents', () => {
  it('produces valid FHIR R4 AuditEvents for every kind of actor', () => {
    const events = [
      event(),
      buildAuditEvent({ interaction: 'search-type', resources: ['Condition'], outcome: '4', requestId: 'r' }),
      buildAuditEvent({
        principal: portal,
        actorPseudonym: '1-citizen',
        interaction: 'create',
        resources: ['QuestionnaireResponse/q1'],
        patients: ['1-citizen'],
        outcome: '0',
        requestId: 'r2',
      }),
      buildAuditEvent({
        principal: { role: 'researcher', clientId: 'uio', study: 'study-7', scopes: ['user/*.rs'] },
        interaction: 'operation',
        operation: '$export',
        personCount: 1200,
        outcome: '0',
      }),
      buildAuditEvent({
        actor: 'norpain-cli',
        interaction: 'vault-read',
        purpose: 'coverage-linkage',
        outcome: '0',
      }),
    ];
    for (const e of events) {
      expect(() => validateResource(e)).not.toThrow();
    }
  });

  it('names who, what, action, outcome and request', () => {
    const e = buildAuditEvent({
      principal: clinic,
      interaction: 'update',
      resources: ['EpisodeOfCare/e1', 'EpisodeOfCare/e1'],
      patients: ['1-personA'],
      outcome: outcomeForHttpStatus(412),
      requestId: 'req-9',
    });
    expect(e.action).toBe('U');
    expect(e.outcome).toBe('4');
    expect(e.agent.map((a) => a.who?.identifier)).toEqual([
      { system: AUDIT_SYSTEMS.oauthClient, value: 'dips-stolav' },
      { system: AUDIT_SYSTEMS.resh, value: '4001031' },
      { system: AUDIT_SYSTEMS.hpr, value: '9144889' },
    ]);
    // The health professional is the requestor, not the EPR system.
    expect(e.agent.filter((a) => a.requestor).map((a) => a.who?.identifier?.value)).toEqual(['9144889']);
    expect(e.entity?.map((x) => x.what)).toEqual([
      { identifier: { system: AUDIT_SYSTEMS.registryPseudonym, value: '1-personA' } },
      { reference: 'EpisodeOfCare/e1' },
      { identifier: { value: 'req-9' } },
    ]);
  });

  it('maps interactions to R4 actions and HTTP statuses to outcomes', () => {
    const action = (interaction: Parameters<typeof buildAuditEvent>[0]['interaction']) =>
      buildAuditEvent({ principal: admin, interaction, outcome: '0' }).action;
    expect([action('create'), action('read'), action('history-type'), action('delete')]).toEqual([
      'C',
      'R',
      'R',
      'D',
    ]);
    expect([action('search-type'), action('transaction'), action('vault-read')]).toEqual(['E', 'E', 'R']);
    expect([200, 201, 304, 400, 403, 422, 500, 503].map(outcomeForHttpStatus)).toEqual([
      '0',
      '0',
      '0',
      '4',
      '4',
      '4',
      '8',
      '12',
    ]);
  });

  it("never copies a portal principal's national id", () => {
    const e = buildAuditEvent({
      principal: portal,
      actorPseudonym: '1-citizen',
      interaction: 'read',
      outcome: '0',
    });
    expect(JSON.stringify(e)).not.toContain(portal.pid);
    expect(() => assertNoNationalId(e)).not.toThrow();
  });
});

describe('the national-id guard', () => {
  const kinds: NationalIdKind[] = ['fnr', 'dnr', 'hnr', 'fhn'];

  it('recognises synthetic national ids of every kind, also under the 2032 check-digit rule', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.boolean(),
        fc.integer(),
        fc.string(),
        fc.string(),
        (kind, rule2032, seed, before, after) => {
          const id = syntheticNationalId(kind, { rule2032, random: seededRandom(seed) });
          // Not glued to other digits: a longer digit run is a different number.
          const text = `${before.replace(/\d$/, '')} ${id}/${after}`;
          expect(containsNationalId(text)).toBe(true);
        },
      ),
    );
    expect(containsNationalId('born 109155 96784')).toBe(true);
  });

  it('passes ordinary values: ids, instants, pseudonyms, wrong check digits, longer numbers', () => {
    for (const text of [
      '2025-03-01T12:00:00.000Z',
      '1-Qm9yZ2VyIHNpbmdzIGZvciB0aGUgcmVnaXN0cnk',
      'f47ac10b-58cc-4372-a567-0e02b2c3d479',
      '10915596785', // last check digit wrong
      '109155967840', // 12 digits
      '4001031',
    ]) {
      expect(containsNationalId(text)).toBe(false);
    }
  });

  it('finds a national id glued to letters (one detector for data, audit and logs)', () => {
    // A UUID of this shape is never assigned by the server (src/identity/serverId.ts).
    for (const text of [
      'f47ac10b-58cc-4372-a567-a10915596784',
      'Condition/c10915596784',
      'abc10915596784x',
    ]) {
      expect(containsNationalId(text)).toBe(true);
    }
  });

  it('refuses an AuditEvent carrying a national id anywhere, naming the path but not the value', () => {
    const { log } = openTempLog();
    const bad = event({ resources: ['Patient/10915596784'] });
    expect(() => log.append(bad)).toThrow(AuditIdentifierError);
    try {
      log.append(bad);
    } catch (err) {
      expect((err as Error).message).toContain('$.entity[1].what.reference');
      expect((err as Error).message).not.toContain('10915596784');
    }
    expect(() => log.append(event({ patients: ['16858399649'] }))).toThrow(AuditIdentifierError);
    expect(() => log.append(event({ requestId: 'GET /Patient?identifier=16858399649' }))).toThrow(
      AuditIdentifierError,
    );
    // Serialised, a control character before the number is written `\u0000`, whose digits run on into it.
    expect(() => log.append(event({ requestId: '\u000016858399649' }))).toThrow(AuditIdentifierError);
    expect(log.search().total).toBe(0);
    expect(log.verifyChain()).toMatchObject({ ok: true, count: 0 });
    log.close();
  });
});
