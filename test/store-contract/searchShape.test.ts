import { parseSearchRequest } from '@medplum/core';
import type { Condition, EpisodeOfCare, Resource } from '@medplum/fhirtypes';
import type { SearchResult } from '../../src/store/FhirStore';
import { temporaryEmbeddedStore } from '../helpers/embeddedStore';

/**
 * The embedded store reads a search's matches off the index of its most selective filter (issue 18):
 * the index table heads the query, so what SQL could get wrong there is tested here: a resource that
 * meets a filter in several index rows, counts, pages in storage order while the store is written between
 * them, and which filter drives when several match many.
 */
const store = temporaryEmbeddedStore('norpain-shape-');

const ICD10 = 'urn:oid:2.16.578.1.12.4.1.1.7110';
const search = <T extends Resource>(query: string): Promise<SearchResult<T>> =>
  store().search<T>(parseSearchRequest<T>(query));
const ids = (result: SearchResult): string[] => result.matches.map((r) => r.id as string);

function condition(subject: string, codes: [string, string][], recordedDate = '2024-02-01'): Condition {
  return {
    resourceType: 'Condition',
    subject: { reference: `Patient/${subject}` },
    code: { coding: codes.map(([system, code]) => ({ system, code })) },
    recordedDate,
  };
}

test('a resource that meets a filter in several index rows is one match and counted once', async () => {
  // The same code in two systems: a search by the code alone meets both index rows.
  const { resource: twice } = await store().create(
    condition('shape-1', [
      [ICD10, 'R52'],
      ['https://example.org/local-codes', 'R52'],
    ]),
  );
  const { resource: once } = await store().create(condition('shape-1', [[ICD10, 'R52']]));
  for (const query of [
    'Condition?code=R52&_total=accurate',
    'Condition?code=R52&subject=Patient/shape-1&_total=accurate',
    'Condition?code=R52,R52.9&_total=accurate',
  ]) {
    const result = await search(query);
    expect(ids(result)).toEqual([twice.id, once.id]);
    expect(result.total).toBe(2);
  }
  expect((await search('Condition?code=R52&_summary=count')).total).toBe(2);
  // And the other way round: two codes of one coding list meet a comma search once each.
  expect(ids(await search(`Condition?code=${ICD10}|R52,https://example.org/local-codes|R52`))).toEqual([
    twice.id,
    once.id,
  ]);
});

test('pages in storage order: resources written between pages come after, none twice or missed', async () => {
  const written: string[] = [];
  for (let i = 0; i < 25; i++) {
    written.push((await store().create(condition('shape-2', [[ICD10, 'M79.7']]))).resource.id as string);
  }
  const query = (offset: number) =>
    `Condition?subject=Patient/shape-2&code=M79.7&_count=10&_offset=${offset}`;
  const seen: string[] = [];
  let offset: number | undefined = 0;
  while (offset !== undefined) {
    const page: SearchResult = await search(query(offset));
    seen.push(...ids(page));
    if (offset === 0) {
      for (let i = 0; i < 3; i++) {
        written.push((await store().create(condition('shape-2', [[ICD10, 'M79.7']]))).resource.id as string);
      }
      // A resource of the same person that does not match, and one that no longer does.
      await store().create(condition('shape-2', [[ICD10, 'M54.5']]));
      const changed = written[12];
      await store().update({ ...condition('shape-2', [[ICD10, 'M54.5']]), id: changed });
      written.splice(written.indexOf(changed), 1);
    }
    offset = page.nextOffset;
  }
  expect(seen).toEqual(written);
  expect((await search(`${query(0)}&_total=accurate`)).total).toBe(27);
});

test('whichever filter drives, the matches are the same; a filter that matches many is probed', async () => {
  // Filters each matching more rows than the store counts at first (1000), of different sizes.
  const written: { id: string; i: number }[] = [];
  store().immediate(() => {
    for (let i = 0; i < 3000; i++) {
      const episode: EpisodeOfCare = {
        resourceType: 'EpisodeOfCare',
        status: i % 5 === 0 ? 'active' : 'finished',
        patient: { reference: `Patient/shape-3-${i % 7}` },
        managingOrganization: { reference: `Organization/shape-${i % 2}` },
        period: { start: `2023-${String(1 + (i % 12)).padStart(2, '0')}-01`, end: '2023-12-31' },
      };
      written.push({ id: store().createSync(episode).resource.id as string, i });
    }
  });
  const cases: [string, (i: number) => boolean][] = [
    ['organization=Organization/shape-1&status=finished', (i) => i % 2 === 1 && i % 5 !== 0],
    ['status=finished&organization=Organization/shape-1', (i) => i % 2 === 1 && i % 5 !== 0],
    ['organization=Organization/shape-0&status=active', (i) => i % 2 === 0 && i % 5 === 0],
    ['organization=Organization/shape-1&date=ge2023-07-01', (i) => i % 2 === 1],
    ['organization=Organization/shape-1&date=eb2023-07-01', () => false],
    ['organization=Organization/shape-1&date=sa2023-06-30', (i) => i % 2 === 1 && i % 12 >= 6],
    ['organization=Organization/shape-1&patient=Patient/shape-3-1', (i) => i % 2 === 1 && i % 7 === 1],
    ['patient=Patient/shape-3-1&status=active&date=ge2023', (i) => i % 7 === 1 && i % 5 === 0],
  ];
  for (const [query, holds] of cases) {
    const expected = written.filter((w) => holds(w.i)).map((w) => w.id);
    const first = await search(`EpisodeOfCare?${query}&_count=7&_total=accurate`);
    expect(first.total).toBe(expected.length);
    expect(ids(first)).toEqual(expected.slice(0, 7));
    const later = await search(`EpisodeOfCare?${query}&_count=50&_offset=100`);
    expect(ids(later)).toEqual(expected.slice(100, 150));
  }
});

test('a first page walked along an ordered index is the first matches', async () => {
  // More rows in the date window than the store walks at least (4000), so the page is walked along the
  // organization's index.
  const written: { id: string; i: number }[] = [];
  const N = 9000;
  store().immediate(() => {
    for (let i = 0; i < N; i++) {
      const day = String(1 + (i % 28)).padStart(2, '0');
      const episode: EpisodeOfCare = {
        resourceType: 'EpisodeOfCare',
        status: 'finished',
        patient: { reference: `Patient/shape-4-${i % 3}` },
        managingOrganization: { reference: `Organization/shape-walk-${i % 5 === 0 ? 'a' : 'b'}` },
        period: { start: `2022-03-${day}`, end: `2022-03-${day}` },
      };
      written.push({ id: store().createSync(episode).resource.id as string, i });
    }
  });
  const window = (i: number) => 1 + (i % 28) >= 3 && 1 + (i % 28) <= 16;
  const cases: [string, (i: number) => boolean][] = [
    ['organization=Organization/shape-walk-b', (i) => i % 5 !== 0 && window(i)],
    [
      'organization=Organization/shape-walk-a&patient=Patient/shape-4-1',
      (i) => i % 5 === 0 && i % 3 === 1 && window(i),
    ],
  ];
  for (const [filter, holds] of cases) {
    const query = `EpisodeOfCare?${filter}&date=ge2022-03-03&date=le2022-03-16`;
    const expected = written.filter((w) => holds(w.i)).map((w) => w.id);
    expect(ids(await search(`${query}&_count=10`))).toEqual(expected.slice(0, 10));
    expect(ids(await search(`${query}&_count=10&_offset=30`))).toEqual(expected.slice(30, 40));
    expect((await search(`${query}&_summary=count`)).total).toBe(expected.length);
  }
  // The first of these was walked: its plan reads the edge of the walk off the organization's index.
  const plans = store().explainSearch(
    parseSearchRequest(
      'EpisodeOfCare?organization=Organization/shape-walk-b&date=ge2022-03-03&date=le2022-03-16',
    ),
  );
  expect(
    plans.some((p) => p.startsWith('SELECT res FROM idx_reference') && p.includes('LIMIT 1 OFFSET')),
  ).toBe(true);
});

test('when the walk along an ordered index falls short of a page, the page is read the usual way', async () => {
  // The first 4000 rows of the code's index are all outside the date window: the walk finds nothing.
  const written: string[] = [];
  store().immediate(() => {
    for (let i = 0; i < 8400; i++) {
      const late = i >= 4200;
      const { resource } = store().createSync(
        condition('shape-5', [[ICD10, 'G44.2']], late ? '2021-06-05' : '2019-01-01'),
      );
      if (late) written.push(resource.id as string);
    }
  });
  const query = `Condition?code=${ICD10}|G44.2&recorded-date=ge2021-06-01&recorded-date=le2021-06-30`;
  expect(ids(await search(`${query}&_count=10`))).toEqual(written.slice(0, 10));
  expect(ids(await search(`${query}&_count=10&_offset=4190`))).toEqual(written.slice(4190));
  expect((await search(`${query}&_summary=count`)).total).toBe(4200);
  const plans = store().explainSearch(parseSearchRequest(`${query}&_count=10`));
  expect(plans.some((p) => p.includes('LIMIT 1 OFFSET'))).toBe(true); // the walk was tried
});

test('filter sizes kept from an earlier search steer the plan only: the matches follow the data', async () => {
  const first = (await store().create(condition('shape-6a', [[ICD10, 'R51']]))).resource.id as string;
  const query = `Condition?code=${ICD10}|R51&subject=Patient/shape-6b&_count=1000&_total=accurate`;
  expect((await search(query)).total).toBe(0); // both sizes counted now: 1 and 0
  const written: string[] = [];
  store().immediate(() => {
    for (let i = 0; i < 900; i++) {
      written.push(store().createSync(condition('shape-6b', [[ICD10, 'R51']])).resource.id as string);
    }
  });
  const result = await search(query);
  expect(ids(result)).toEqual(written);
  expect(result.total).toBe(900);
  expect(ids(await search(`Condition?code=${ICD10}|R51&subject=Patient/shape-6a`))).toEqual([first]);
});
