import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/config/ConfigError';
import { canonicalNationalId, type NationalId } from '../../src/identity/nationalId';
import { Pseudonymiser, pseudonymVersion } from '../../src/identity/pseudonym';
import { seededRandom } from '../../src/identity/synthetic';
import { syntheticId } from '../helpers/nationalIds';
import { MemoryVaultAuditSink } from '../../src/identity/vault/audit';
import { IdentityVault, SeveralPersonsError } from '../../src/identity/vault/IdentityVault';

const key1 = randomBytes(32);
const key2 = randomBytes(32);
const vaultKey = randomBytes(32);
const random = seededRandom(3);

const fnr = (): NationalId => syntheticId('fnr', random);
const dnr = (): NationalId => syntheticId('dnr', random);
const fhn = (): NationalId => syntheticId('fhn', random);
const ctx = { actor: 'test-client', requestId: 'req-1' };

let dir: string;
let file: string;
let audit: MemoryVaultAuditSink;
const v1 = new Pseudonymiser({ current: 1, keys: new Map([[1, key1]]) });
const v2 = new Pseudonymiser({
  current: 2,
  keys: new Map([
    [1, key1],
    [2, key2],
  ]),
});

function open(pseudonymiser = v1, key = vaultKey): IdentityVault {
  return IdentityVault.open({ file, vaultKey: key, pseudonymiser, audit });
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-vault-'));
  file = IdentityVault.defaultFile(dir);
  audit = new MemoryVaultAuditSink();
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('pseudonyms', () => {
  test('are HMAC-SHA-256 of the canonical id with the key version in front', () => {
    const p = v1.pseudonym('11835066691');
    expect(p).toMatch(/^1-[A-Za-z0-9_-]{43}$/);
    expect(pseudonymVersion(p)).toBe(1);
    expect(v1.pseudonym('11835066691')).toBe(p);
    expect(v2.pseudonym('11835066691')).toMatch(/^2-/);
    expect(v2.pseudonym('11835066691', 1)).toBe(p);
    expect(v1.pseudonym('02826809615')).not.toBe(p);
    expect(p).not.toContain('11835066691');
  });

  test('identifier hashes differ by system and are listed for every key version', () => {
    expect(v1.hashIdentifier('urn:a', '42')).not.toBe(v1.hashIdentifier('urn:b', '42'));
    expect(v2.hashIdentifierAllVersions('urn:a', '42')).toEqual([
      v2.hashIdentifier('urn:a', '42', 2),
      v1.hashIdentifier('urn:a', '42'),
    ]);
  });
});

describe('identity vault', () => {
  test('a new person gets a stable Patient id and the pseudonym of their id', () => {
    const vault = open();
    const id = fnr();
    const first = vault.link([id]);
    expect(first.created).toBe(true);
    expect(first.person.pseudonym).toBe(v1.pseudonym(canonicalNationalId(id)));
    const again = vault.link([id]);
    expect(again).toEqual({ person: first.person, created: false, merged: [] });
    expect(vault.find(id)).toEqual(first.person);
    expect(vault.findByPseudonym(first.person.pseudonym)).toEqual(first.person);
    expect(vault.count()).toBe(1);
    vault.close();
  });

  test('national ids are stored only encrypted: no byte of the vault files contains them', () => {
    const vault = open();
    const ids = Array.from({ length: 50 }, () => fnr());
    for (const id of ids) {
      vault.link([id]);
    }
    const bytes = Buffer.concat(
      fs.readdirSync(path.dirname(file)).map((f) => fs.readFileSync(path.join(path.dirname(file), f))),
    );
    for (const id of ids) {
      expect(bytes.includes(Buffer.from(id.value))).toBe(false);
    }
    vault.close();
  });

  test('a D-number later carried together with an FNR: one person, pseudonym now from the FNR', () => {
    const vault = open();
    const d = dnr();
    const f = fnr();
    const before = vault.link([d]).person;
    const after = vault.link([f, d]);
    expect(after.created).toBe(false);
    expect(after.merged).toEqual([]);
    expect(after.person.patientId).toBe(before.patientId);
    expect(after.person.pseudonym).toBe(v1.pseudonym(f.value));
    expect(vault.find(d)).toEqual(after.person);
    expect(vault.find(f)).toEqual(after.person);
    // Later the FNR alone finds the same person.
    expect(vault.link([f]).person).toEqual(after.person);
    vault.close();
  });

  test('ids of two registered persons are never linked by a write: SeveralPersonsError, nothing changed', () => {
    const vault = open();
    const h = fhn();
    const f = fnr();
    const a = vault.link([h]).person;
    const b = vault.link([f]).person;
    expect(() => vault.link([h, f])).toThrow(SeveralPersonsError);
    expect(() => vault.link([h, f, dnr()])).toThrow(SeveralPersonsError);
    expect(vault.count()).toBe(2);
    expect(vault.find(h)).toEqual(a);
    expect(vault.find(f)).toEqual(b);
    vault.close();
  });

  test('a staff merge gives the target the source ids; the pseudonym follows the best-ranked id', () => {
    const vault = open();
    const h = fhn();
    const f = fnr();
    const target = vault.link([h]).person;
    const source = vault.link([f]).person;
    const merged = vault.merge(source.patientId, target.patientId);
    expect(merged?.retired).toEqual(source);
    expect(merged?.person.patientId).toBe(target.patientId);
    expect(merged?.person.pseudonym).toBe(source.pseudonym); // FNR outranks the felles hjelpenummer
    expect(vault.count()).toBe(1);
    expect(vault.findByPatientId(source.patientId)).toBeUndefined();
    expect(vault.find(f)).toEqual(merged?.person);
    expect(
      vault
        .forFollowUp(target.patientId, ctx)
        ?.map((i) => i.value)
        .sort(),
    ).toEqual([f.value, h.value].sort());
    expect(vault.merge(source.patientId, target.patientId)).toBeUndefined(); // the source is gone
    vault.close();
  });

  test('a rehearsal links within itself but leaves nothing; commit makes the same links', () => {
    const vault = open();
    const known = vault.link([dnr()]).person;
    const f = fnr();
    const d = dnr();
    const { result, links } = vault.rehearse(() => {
      const created = vault.link([f]);
      // Later links in the same rehearsal see the earlier ones.
      expect(vault.find(f)).toEqual(created.person);
      const linked = vault.link([f, d]);
      return { created, linked };
    });
    expect(result.created.created).toBe(true);
    expect(result.linked.person).toEqual(result.created.person);
    expect(vault.find(f)).toBeUndefined();
    expect(vault.find(d)).toBeUndefined();
    expect(vault.count()).toBe(1);
    expect(links).toHaveLength(2);

    const committed = vault.commit(links);
    expect(committed.map((r) => r.person)).toEqual([result.created.person, result.created.person]);
    expect(vault.find(d)).toEqual(result.created.person);
    expect(vault.count()).toBe(2);
    expect(vault.findByPatientId(known.patientId)).toEqual(known);
    vault.close();
  });

  test('a rehearsed person the vault learnt of meanwhile is reported as merged, so its data move', () => {
    const vault = open();
    const f = fnr();
    const { result, links } = vault.rehearse(() => vault.link([f]));
    const meanwhile = vault.link([f]).person;
    expect(meanwhile.patientId).not.toBe(result.person.patientId);
    const [committed] = vault.commit(links);
    expect(committed.person).toEqual(meanwhile);
    expect(committed.merged.map((m) => m.patientId)).toEqual([result.person.patientId]);
    expect(vault.count()).toBe(1);
    vault.close();
  });

  test('a failed rehearsal leaves nothing and the vault stays usable', () => {
    const vault = open();
    const f = fnr();
    expect(() =>
      vault.rehearse(() => {
        vault.link([f]);
        throw new Error('refused');
      }),
    ).toThrow('refused');
    expect(vault.find(f)).toBeUndefined();
    expect(vault.link([f]).created).toBe(true);
    vault.close();
  });

  test('a second FNR (changed number) keeps the person and the first pseudonym', () => {
    const vault = open();
    const f1 = fnr();
    const f2 = fnr();
    const person = vault.link([f1]).person;
    expect(vault.link([f2, f1]).person).toEqual(person);
    expect(vault.find(f2)).toEqual(person);
    vault.close();
  });

  test('every read of ids goes through a purpose and is recorded without ids', () => {
    const vault = open();
    const f = fnr();
    const { person } = vault.link([f]);
    expect(vault.forFollowUp(person.patientId, ctx)).toEqual([f]);
    expect(vault.forAccessRequest(f, ctx)).toEqual({ ...person, ids: [f] });
    expect(vault.forCoverageLinkage(ctx)).toEqual([{ ...person, ids: [f] }]);
    expect(audit.records.map((r) => [r.purpose, r.patientIds, r.count, r.actor, r.requestId])).toEqual([
      ['follow-up', [person.patientId], 1, 'test-client', 'req-1'],
      ['access-request', [person.patientId], 1, 'test-client', 'req-1'],
      ['coverage-linkage', [], 1, 'test-client', 'req-1'],
    ]);
    expect(JSON.stringify(audit.records)).not.toContain(f.value);
    expect(vault.forFollowUp('no-such-patient', ctx)).toBeUndefined();
    expect(audit.records).toHaveLength(3);
    vault.close();
  });

  test('erase removes the person and returns their ids for the exclusion record', () => {
    const vault = open();
    const f = fnr();
    const d = dnr();
    const { person } = vault.link([f, d]);
    expect(
      vault
        .erase(person.patientId, ctx)
        ?.map((i) => i.kind)
        .sort(),
    ).toEqual(['dnr', 'fnr']);
    expect(vault.find(f)).toBeUndefined();
    expect(vault.find(d)).toBeUndefined();
    expect(vault.count()).toBe(0);
    expect(audit.records.at(-1)).toMatchObject({ purpose: 'erasure', patientIds: [person.patientId] });
    vault.close();
  });

  test('a wrong vault key is refused at open', () => {
    open().close();
    expect(() => open(v1, randomBytes(32))).toThrow(ConfigError);
  });

  test('rekey moves every person to the new key version, none lost or duplicated, and can be rerun', async () => {
    let vault = open(v1);
    const people = Array.from({ length: 120 }, (_, i) => (i % 3 === 0 ? [fnr(), dnr()] : [fnr()]));
    const before = people.map((ids) => vault.link(ids).person);
    vault.close();
    vault = open(v2);
    const changes: { patientId: string; pseudonym: string; previousPseudonym: string }[] = [];
    const total = await vault.rekey(async (change) => {
      changes.push(change);
    }, ctx);
    expect(total).toBe(120);
    expect(new Set(changes.map((c) => c.patientId)).size).toBe(120);
    people.forEach((ids, i) => {
      const now = vault.find(ids[0]);
      expect(now?.patientId).toBe(before[i].patientId);
      expect(now?.pseudonym).toBe(v2.pseudonym(ids[0].value));
      expect(pseudonymVersion(now?.pseudonym ?? '')).toBe(2);
      expect(vault.find(ids[ids.length - 1])).toEqual(now);
    });
    expect(vault.count()).toBe(120);
    expect(await vault.rekey(async () => undefined, ctx)).toBe(0);
    expect(audit.records.filter((r) => r.purpose === 'rekey').map((r) => r.count)).toEqual([120, 0]);
    vault.close();
  });

  test('an interrupted rekey resumes where it stopped', async () => {
    let vault = open(v1);
    for (let i = 0; i < 10; i++) {
      vault.link([fnr()]);
    }
    vault.close();
    vault = open(v2);
    let calls = 0;
    await expect(
      vault.rekey(async () => {
        if (++calls === 5) {
          throw new Error('store unavailable');
        }
      }, ctx),
    ).rejects.toThrow('store unavailable');
    expect(await vault.rekey(async () => undefined, ctx)).toBe(6);
    vault.close();
  });
});
