import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Condition, Observation, Patient } from '@medplum/fhirtypes';
import { registryPseudonymSystem } from '../../src/identity/pseudonym';
import { seededRandom } from '../../src/identity/synthetic';
import { EmbeddedStore } from '../../src/store/embedded';

/**
 * A compartment erasure leaves no byte of the person's Patient id or pseudonym in the embedded store's
 * files, although SQLite keeps older copies of cells it moved within a page in that page's unallocated
 * space, where secure_delete does not reach. Persons come and go in rounds, with keys of varying length
 * (codes, types) so that pages fill, split and shift their cells. Everything is seeded, ids included, so
 * each case lays out the same pages every time. These cases were picked (from seeds 1–12 at 25 and 40
 * persons a round) because each leaves such a copy of someone erased when nothing removes it; seen there:
 * Patient ids in idx_reference_target leaves, pseudonyms in idx_token_search leaves (and, by the privacy
 * fuzzer, a Patient id in a stored_reference leaf). Of these four, two leave their copy in an index's page,
 * which the erasure rebuilds (REINDEX), and two in a table's page (resource, idx_reference), which only
 * VACUUM reaches: both ways are walked.
 */
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Person {
  id: string;
  pseudonym: string;
}

/** Every place in the store's files (database, WAL) where `text` stands as bytes. */
function bytesHolding(dir: string, text: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith(basename(EmbeddedStore.defaultFile(dir))))
    .filter((f) => readFileSync(join(dir, f)).includes(Buffer.from(text)))
    .map((f) => `${f} holds ${text}`);
}

test.each([
  { seed: 6, perRound: 25 },
  { seed: 4, perRound: 40 },
  { seed: 8, perRound: 40 },
  { seed: 9, perRound: 40 },
])(
  'erasure after erasure, no byte of the person stays (seed $seed, $perRound persons a round)',
  async ({ seed, perRound }) => {
    const dir = mkdtempSync(join(tmpdir(), 'norpain-erasure-bytes-'));
    dirs.push(dir);
    const store = EmbeddedStore.open(EmbeddedStore.defaultFile(dir));
    const random = seededRandom(seed);
    const hex = (n: number) =>
      Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');
    const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${hex(12)}`;
    const live: Person[] = [];
    const left: string[] = [];
    try {
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < perRound; i++) {
          const person = { id: uuid(), pseudonym: hex(32) };
          await store.create<Patient>(
            {
              resourceType: 'Patient',
              identifier: [{ system: registryPseudonymSystem, value: person.pseudonym }],
            },
            { id: person.id },
          );
          live.push(person);
          for (let n = 1 + Math.floor(random() * 5); n > 0; n--) {
            const about = {
              subject: { reference: `Patient/${person.id}` },
              code: {
                coding: [{ system: 'urn:norpain:test', code: 'c'.repeat(1 + Math.floor(random() * 40)) }],
              },
            };
            const resource: Condition | Observation =
              random() < 0.5
                ? { resourceType: 'Condition', ...about }
                : { resourceType: 'Observation', status: 'final', ...about };
            await store.create(resource, { id: uuid() });
          }
        }
        for (let i = 0; i < 12; i++) {
          const [person] = live.splice(Math.floor(random() * live.length), 1);
          const receipt = await store.erasePatientCompartment(person.id, { texts: [person.pseudonym] });
          expect(receipt.residual).toBe(0);
          left.push(...bytesHolding(dir, person.id), ...bytesHolding(dir, person.pseudonym));
        }
      }
    } finally {
      await store.close();
    }
    expect(left).toEqual([]);
  },
  60_000,
);

test('an erasure reads the stored text a page at a time: a read asked for while it runs is answered first', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'norpain-erasure-yields-'));
  dirs.push(dir);
  const store = EmbeddedStore.open(EmbeddedStore.defaultFile(dir));
  try {
    const { resource: patient } = await store.create<Patient>({ resourceType: 'Patient' });
    const subject = { reference: `Patient/${patient.id}` };
    const code = { coding: [{ system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' }] };
    const { resource: theirs } = await store.create<Condition>({ resourceType: 'Condition', subject, code });
    // Someone else's versions, more than a page of the erasure's look at the stored text.
    const { resource: someoneElse } = await store.create<Patient>({ resourceType: 'Patient' });
    let other = '';
    for (let i = 0; i < 1200; i++) {
      const { resource } = await store.create<Condition>({
        resourceType: 'Condition',
        subject: { reference: `Patient/${someoneElse.id}` },
        code,
      });
      other = resource.id as string;
    }
    const answered: string[] = [];
    const erasure = store.erasePatientCompartment(patient.id as string).then((receipt) => {
      answered.push('erasure');
      return receipt;
    });
    const read = store.read('Condition', other).then(() => answered.push('read'));
    const [receipt] = await Promise.all([erasure, read]);
    expect(answered).toEqual(['read', 'erasure']);
    expect(receipt.residual).toBe(0);
    expect(receipt.erased).toEqual({ Patient: 1, Condition: 1 });
    expect(bytesHolding(dir, patient.id as string)).toEqual([]);
    expect(bytesHolding(dir, theirs.id as string)).toEqual([]);
  } finally {
    await store.close();
  }
});
