import { randomBytes } from 'node:crypto';
import { parseSearchRequest } from '@medplum/core';
import { vaultAuditSink } from '../../src/audit/vaultSink';
import { searchAuditEvents } from '../../src/audit/search';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { parseNationalIdValue, type NationalId } from '../../src/identity/nationalId';
import { Pseudonymiser } from '../../src/identity/pseudonym';
import { IdentityVault } from '../../src/identity/vault/IdentityVault';
import { openTempLog } from './fixtures';

function fnr(value: string): NationalId {
  const parsed = parseNationalIdValue('fnr', value, { production: false });
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.id;
}

describe('identity vault reads in the audit log', () => {
  beforeAll(() => loadFhirDefinitions());

  it('records each read with its purpose, findable by the person and free of national ids', () => {
    const { log, dataDir } = openTempLog();
    const vault: IdentityVault = IdentityVault.open({
      file: IdentityVault.defaultFile(dataDir),
      vaultKey: randomBytes(32),
      pseudonymiser: new Pseudonymiser({ current: 1, keys: new Map([[1, randomBytes(32)]]) }),
      audit: vaultAuditSink(log, (patientId) => vault.findByPatientId(patientId)?.pseudonym),
    });
    const { person } = vault.link([fnr('10915596784')]);
    vault.link([fnr('16858399649')]);

    vault.forFollowUp(person.patientId, { actor: 'followup-dispatcher', requestId: 'job-1' });
    vault.forCoverageLinkage({ actor: 'norpain-cli' });
    vault.erase(person.patientId, { actor: 'norpain-staff', requestId: 'req-erase' });

    const mine = searchAuditEvents(log, parseSearchRequest('AuditEvent?_sort=date'), {
      kind: 'person',
      pseudonym: person.pseudonym,
    }).matches;
    expect(mine.map((e) => e.purposeOfEvent?.[0].coding?.[0].code)).toEqual(['follow-up', 'erasure']);
    expect(mine.every((e) => e.subtype?.[0].code === 'vault-read' && e.action === 'R')).toBe(true);

    const all = log.search({ sort: 'oldest' }).matches;
    expect(all).toHaveLength(3);
    const coverage = all[1];
    expect(coverage.agent[0].who?.identifier?.value).toBe('norpain-cli');
    expect(coverage.entity?.find((e) => e.detail)?.detail).toEqual([
      { type: 'person-count', valueString: '2' },
    ]);
    expect(JSON.stringify(all)).not.toMatch(/10915596784|16858399649/);
    expect(log.verifyChain()).toMatchObject({ ok: true, count: 3 });
    vault.close();
    log.close();
  });
});
