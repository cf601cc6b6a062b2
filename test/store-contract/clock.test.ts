import type { Bundle, Patient } from '@medplum/fhirtypes';
import { temporaryEmbeddedStore } from '../helpers/embeddedStore';

/**
 * The embedded store hands out strictly increasing `lastUpdated` instants (1 ms apart at least), so a burst
 * of writes runs its stamps ahead of the wall clock. "Everything written so far" is then bounded by the
 * store's clock (`now()`), which a Bulk Data export takes as its transactionTime: with the wall clock it
 * would leave out what was written just before it was kicked off.
 */
const store = temporaryEmbeddedStore('norpain-clock-');

test("the store's clock is never behind the lastUpdated of what it holds, after a burst that outran the wall clock", async () => {
  const burst: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Array.from({ length: 3000 }, (_, i) => ({
      resource: { resourceType: 'Patient', gender: i % 2 === 0 ? 'female' : 'male' } as Patient,
      request: { method: 'POST', url: 'Patient' },
    })),
  };
  await store().transaction(burst);
  const wallClock = Date.now();
  const stored = await store().search({
    resourceType: 'Patient',
    sortRules: [{ code: '_lastUpdated', descending: true }],
    count: 1,
  });
  const newest = Date.parse(stored.matches[0]?.meta?.lastUpdated as string);
  // The premise: 3000 writes in one transaction take far less than 3 s, so the stamps ran ahead.
  expect(newest).toBeGreaterThan(wallClock);
  expect(store().now().getTime()).toBeGreaterThanOrEqual(newest);
  // And the clock moves on from there: the next write is stamped after it.
  const before = store().now().getTime();
  const { resource } = await store().create<Patient>({ resourceType: 'Patient', gender: 'other' });
  expect(Date.parse(resource.meta?.lastUpdated as string)).toBeGreaterThan(before);
});
