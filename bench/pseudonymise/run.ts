/**
 * Pseudonymisation throughput, in-process: `npx tsx bench/pseudonymise/run.ts`.
 *
 * Input: Patients with an FNR, a local MRN, name, phone, address with municipality code, birth date.
 * 1. policy: national id validation + registry pseudonym (HMAC) + the full policy walk — the CPU cost
 *    of pseudonymising a resource (goal ≥ 100,000/s).
 * 2. stage, known persons: the real pseudonymise stage with the real vault (SQLite file) for persons
 *    the vault already knows (the usual case: follow-up data about registered patients).
 * 3. stage, new persons: as 2 but every person is new (one durable vault insert each).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Address, Patient } from '@medplum/fhirtypes';
import type { Principal } from '../../src/auth/principal';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { canonicalNationalId, extractNationalIds, preferredSystem } from '../../src/identity/nationalId';
import { PolicyEngine } from '../../src/identity/policyEngine';
import { Pseudonymiser } from '../../src/identity/pseudonym';
import { pseudonymIdentifier } from '../../src/identity/relink';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { MemoryVaultAuditSink } from '../../src/identity/vault/audit';
import { IdentityVault } from '../../src/identity/vault/IdentityVault';
import { createPseudonymiseStage } from '../../src/ingest/pseudonymise';
import { dataDictionary } from '../../src/dictionary';
import { EmbeddedStore } from '../../src/store/embedded';

loadFhirDefinitions();
const random = seededRandom(1);

function patient(i: number): Patient {
  return {
    resourceType: 'Patient',
    identifier: [
      { system: preferredSystem.fnr, value: syntheticNationalId('fnr', { random }) },
      { system: 'urn:oid:2.16.578.1.12.4.1.2.4001031', value: `MRN-${i}` },
    ],
    name: [{ use: 'official', family: `Nordmann${i}`, given: ['Kari', 'Marie'] }],
    telecom: [{ system: 'phone', value: `9${String(i).padStart(7, '0')}`, use: 'mobile' }],
    gender: i % 2 ? 'female' : 'male',
    birthDate: '1980-01-15',
    address: [
      {
        use: 'home',
        line: [`Storgata ${i}`],
        postalCode: '7030',
        city: 'Trondheim',
        district: 'Trondheim',
        _district: {
          extension: [
            {
              url: 'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode',
              valueCoding: { system: 'urn:oid:2.16.578.1.12.4.1.1.3402', code: '5001' },
            },
          ],
        },
        country: 'NO',
      } as Address,
    ],
  };
}

function rate(label: string, n: number, ms: number): void {
  console.log(
    `${label.padEnd(34)} ${String(n).padStart(7)} resources  ${Math.round((n / ms) * 1000)
      .toLocaleString('en')
      .padStart(9)} /s`,
  );
}

async function main(): Promise<void> {
  const pseudonymiser = new Pseudonymiser({ current: 1, keys: new Map([[1, randomBytes(32)]]) });
  const engine = new PolicyEngine(dataDictionary);
  const N = 200_000;
  const patients = Array.from({ length: 20_000 }, (_, i) => patient(i));

  // 1. policy + pseudonym, no I/O
  const policyOnce = (p: Patient) => {
    const [first] = extractNationalIds(p.identifier, 'Patient.identifier', { production: false });
    const pseudonym = pseudonymiser.pseudonym(canonicalNationalId(first.id));
    return engine.apply(p, {
      patientIdentifiers: [pseudonymIdentifier(pseudonym)],
      rewritePatientReference: () => undefined,
      referenceForNationalId: () => {
        throw new Error('unused');
      },
      hashIdentifier: (system, value) => pseudonymiser.hashIdentifier(system, value),
    });
  };
  for (let i = 0; i < 20_000; i++) {
    policyOnce(patients[i % patients.length]); // warm-up (JIT, plan cache)
  }
  let start = performance.now();
  for (let i = 0; i < N; i++) {
    policyOnce(patients[i % patients.length]);
  }
  rate('policy + pseudonym (in memory)', N, performance.now() - start);

  // 2./3. the stage with the real vault
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-bench-'));
  try {
    const vault = IdentityVault.open({
      file: IdentityVault.defaultFile(dir),
      vaultKey: randomBytes(32),
      pseudonymiser,
      audit: new MemoryVaultAuditSink(),
    });
    const store = EmbeddedStore.open(path.join(dir, 'store.sqlite'));
    const stage = createPseudonymiseStage({ vault, pseudonymiser, store, production: false });
    const ctx = {
      principal: { role: 'clinic', clientId: 'bench', scopes: [] } as Principal,
      requestId: 'bench',
      base: 'http://localhost/fhir',
    };
    // The stage wraps persist (here: nothing) and then makes the vault links it rehearsed.
    const run = (p: Patient) =>
      stage.guard(
        { transaction: false, entries: [{ method: 'POST', resourceType: 'Patient', resource: p }] },
        ctx,
        async (written) => written,
      );
    const NEW = 2_000;
    start = performance.now();
    for (let i = 0; i < NEW; i++) {
      await run(patients[i]);
    }
    rate('stage, new persons (vault insert)', NEW, performance.now() - start);
    const KNOWN = 50_000;
    start = performance.now();
    for (let i = 0; i < KNOWN; i++) {
      await run(patients[i % NEW]);
    }
    rate('stage, known persons (vault lookup)', KNOWN, performance.now() - start);
    vault.close();
    await store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
