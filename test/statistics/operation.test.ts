import type {
  CapabilityStatement,
  OperationOutcome,
  Parameters,
  ParametersParameter,
} from '@medplum/fhirtypes';
import { call } from '../consent/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { recoverableCells, type LineEquation } from './attacker';
import { approval, putApproval, RUN } from '../research/fixtures';
import { BASELINE, submitPeople, type PersonSpec } from './registryData';

/**
 * `$stats` through HTTP against the real server and store, on data the clinics sent. The expected
 * figures are counted here from the people the test made, not by the server's code.
 */

const A = '999001';
const B = '999002';
const PAIN = `${BASELINE}#smerteintensitet`;

function person(
  unit: string,
  gender: PersonSpec['gender'],
  birthYear: number,
  year: number,
  i: number,
): PersonSpec {
  const nrs: [number, number, number, number] = [8, (i % 4) + 1, 5 + (i % 3), 6];
  return {
    unit,
    gender,
    birthDate: `${birthYear}-0${1 + (i % 9)}-15`,
    referral: `${year}-02-0${1 + (i % 9)}`,
    decision: { granted: true, date: `${year}-02-20`, deadline: `${year}-06-01` },
    start: `${year}-03-10`,
    baseline: { nrs },
  };
}

const people: PersonSpec[] = [
  // 2024, unit A: 8 women and 6 men; unit B: 3 women and 7 men.
  ...Array.from({ length: 8 }, (_, i) => person(A, 'female', 1960 + i * 3, 2024, i)),
  ...Array.from({ length: 6 }, (_, i) => person(A, 'male', 1965 + i * 4, 2024, i + 8)),
  ...Array.from({ length: 3 }, (_, i) => person(B, 'female', 1970 + i, 2024, i + 14)),
  ...Array.from({ length: 7 }, (_, i) => person(B, 'male', 1955 + i * 5, 2024, i + 17)),
  // 2023: one person alone, at unit B, whose episode also ended in 2023.
  { ...person(B, 'female', 1980, 2023, 24), end: '2023-09-01' },
];

/** The NRS mean as the Questionnaire's score has it (rounded to 2 decimals), then averaged. */
function painMean(ps: readonly PersonSpec[]): number {
  const scores = ps.map((p) => Math.round((p.baseline!.nrs.reduce((a, b) => a + b, 0) / 4) * 100) / 100);
  return Math.round((scores.reduce((a, b) => a + b, 0) / scores.length) * 100) / 100;
}

interface Cell {
  year: number;
  unit?: string;
  sex?: string;
  ageBand?: string;
  variable?: string;
  statistic: string;
  value?: number;
  suppressed: boolean;
}

function cellsOf(body: Parameters): Cell[] {
  return (body.parameter ?? [])
    .filter((p) => p.name === 'cell')
    .map((p) => {
      const part = (name: string): ParametersParameter | undefined => p.part?.find((x) => x.name === name);
      return {
        year: part('year')?.valueInteger as number,
        unit: part('unit')?.valueString,
        sex: part('sex')?.valueCode,
        ageBand: part('age-band')?.valueString,
        variable: part('variable')?.valueString,
        statistic: part('statistic')?.valueCode as string,
        value: part('value')?.valueInteger ?? part('value')?.valueDecimal,
        suppressed: part('suppressed')?.valueBoolean as boolean,
      };
    });
}

/**
 * Cells of 2024 by unit and sex checked as an attacker would use them (every unit's total over the sexes
 * and every sex's total over the units: no hidden cell follows from them), and every shown figure
 * against the people the test made.
 */
function expectSafeAndTrue(cells: Cell[], units: readonly string[]): void {
  const key = (c: { unit?: string; sex?: string }) => `${c.unit ?? '*'}|${c.sex ?? '*'}`;
  const index = new Map(cells.map((c, i) => [key(c), i]));
  const sexes = ['female', 'male', 'other'];
  const lines: LineEquation[] = [
    ...[...units, undefined].map((unit) => ({
      total: index.get(key({ unit }))!,
      cells: sexes.map((sex) => index.get(key({ unit, sex }))!),
    })),
    ...[...sexes, undefined].map((sex) => ({
      total: index.get(key({ sex }))!,
      cells: units.map((unit) => index.get(key({ unit, sex }))!),
    })),
  ];
  expect(lines.every((l) => l.total !== undefined && l.cells.every((c) => c !== undefined))).toBe(true);
  expect(
    recoverableCells(
      lines,
      cells.map((c) => c.suppressed),
    ),
  ).toEqual([]);
  for (const c of cells.filter((c) => !c.suppressed)) {
    const expected = people.filter(
      (p) =>
        p.referral.startsWith('2024') &&
        (c.unit === undefined || p.unit === c.unit) &&
        (c.sex === undefined || p.gender === c.sex),
    ).length;
    expect([c.year, c.unit, c.sex, c.value]).toEqual([2024, c.unit, c.sex, expected]);
  }
}

let server: TestServer;
let staff: string;

async function stats(query: string, token = staff) {
  return call<Parameters | OperationOutcome>(server, token, 'GET', `$stats?${query}`);
}

beforeAll(async () => {
  server = await startTestServer();
  staff = await server.token('registry-admin');
  await submitPeople(server, people);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('$stats for registry staff', () => {
  test('persons by unit: each unit and the national total, none small', async () => {
    const reply = await stats('groupBy=unit&from=2024&to=2024');
    expect(reply.status).toBe(200);
    const cells = cellsOf(reply.body as Parameters);
    const at = (unit?: string) => cells.find((c) => c.unit === unit && c.year === 2024);
    expect(at(A)).toMatchObject({ value: 14, suppressed: false });
    expect(at(B)).toMatchObject({ value: 10, suppressed: false });
    expect(at(undefined)).toMatchObject({ value: 24, suppressed: false });
    expect(cells.every((c) => c.year === 2024)).toBe(true);
  });

  test('by unit and sex: the 3 women of unit B are hidden, and nothing hidden follows from the totals', async () => {
    const reply = await stats('groupBy=unit,sex&from=2024&to=2024');
    expect(reply.status).toBe(200);
    const cells = cellsOf(reply.body as Parameters);
    const bWomen = cells.find((c) => c.unit === B && c.sex === 'female')!;
    expect(bWomen.suppressed).toBe(true);
    expect(bWomen.value).toBeUndefined();
    expect(cells.find((c) => c.unit === undefined && c.sex === undefined)).toMatchObject({ value: 24 });
    expectSafeAndTrue(cells, [A, B, '999003', '999004', '999005']);
  });

  test('two calls whose populations differ by one person cannot be differenced', async () => {
    // The 2023 person is alone: any answer that covers 2023 shows their year hidden, and no answer has a
    // total over a span of years that a second call without 2023 could be subtracted from.
    const withPerson = cellsOf((await stats('groupBy=unit&from=2023&to=2024')).body as Parameters);
    const without = cellsOf((await stats('groupBy=unit&from=2024&to=2024')).body as Parameters);
    const lone = withPerson.filter((c) => c.year === 2023 && (c.unit === B || c.unit === undefined));
    expect(lone).toHaveLength(2);
    expect(lone.every((c) => c.suppressed && c.value === undefined)).toBe(true);
    const strip = (cells: Cell[]) => cells.filter((c) => c.year === 2024);
    expect(strip(withPerson)).toEqual(without);
    // Grouped differently, the shared cells are the same cells of the same table.
    const bySex = cellsOf((await stats('groupBy=unit,sex&from=2024&to=2024')).body as Parameters);
    for (const c of without) {
      expect(bySex.find((d) => d.unit === c.unit && d.sex === undefined)).toEqual(c);
    }
  });

  test('mean and median of baseline pain intensity by unit, computed from what the clinics sent', async () => {
    const reply = await stats(
      `variable=${encodeURIComponent(PAIN)}&statistic=mean&statistic=count&groupBy=unit&from=2024&to=2024`,
    );
    expect(reply.status).toBe(200);
    const cells = cellsOf(reply.body as Parameters);
    const mean = (unit?: string) => cells.find((c) => c.unit === unit && c.statistic === 'mean');
    const inUnit = (unit: string) => people.filter((p) => p.unit === unit && p.referral.startsWith('2024'));
    expect(mean(A)?.value).toBeCloseTo(painMean(inUnit(A)), 2);
    expect(mean(B)?.value).toBeCloseTo(painMean(inUnit(B)), 2);
    expect(mean(undefined)?.value).toBeCloseTo(painMean([...inUnit(A), ...inUnit(B)]), 2);
    expect(cells.find((c) => c.unit === A && c.statistic === 'count')?.value).toBe(14);
  });

  test('POST with a Parameters body answers the same as GET', async () => {
    const body: Parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'groupBy', valueCode: 'unit' },
        { name: 'from', valueInteger: 2024 },
        { name: 'to', valueInteger: 2024 },
      ],
    };
    const post = await call<Parameters>(server, staff, 'POST', '$stats', body);
    const get = await stats('groupBy=unit&from=2024&to=2024');
    expect(post.status).toBe(200);
    expect(post.body).toEqual(get.body);
  });

  test('the CapabilityStatement names $stats and its OperationDefinition is readable', async () => {
    const meta = await call<CapabilityStatement>(server, staff, 'GET', 'metadata');
    const op = meta.body.rest?.[0].operation?.find((o) => o.name === 'stats');
    expect(op?.definition).toBe('https://norpain.no/fhir/OperationDefinition/stats');
    const definition = await call(server, staff, 'GET', 'OperationDefinition/stats');
    expect(definition.status).toBe(200);
    expect(definition.body).toMatchObject({
      resourceType: 'OperationDefinition',
      code: 'stats',
      url: op?.definition,
    });
  });
});

describe('$stats for a researcher, over the study view', () => {
  const study = approval({
    id: `stats-${RUN}`,
    variables: [
      'Patient.gender',
      'EpisodeOfCare.patient',
      'EpisodeOfCare.period',
      'EpisodeOfCare.managingOrganization',
      'QuestionnaireResponse.subject',
      'QuestionnaireResponse.authored',
      PAIN,
    ],
    units: [A, B],
    ageBand: 10,
    period: { start: '2024-01-01', end: '2030-12-31' },
  });
  let researcher: string;

  beforeAll(async () => {
    const put = await putApproval(server, staff, study);
    expect(put.status).toBe(201);
    researcher = await server.token('researcher', { study: study.id });
  });

  test("counts and means are the study's persons, the same figures staff see", async () => {
    const query = `variable=${encodeURIComponent(PAIN)}&statistic=count&statistic=mean&groupBy=unit`;
    const reply = await stats(query, researcher);
    expect(reply.status).toBe(200);
    expect((reply.body as Parameters).parameter?.[0]).toEqual({
      name: 'population',
      valueString: `study ${study.id}`,
    });
    const cells = cellsOf(reply.body as Parameters);
    // The 2023 person's episode ended before the approval's period: not in the view, so no 2023 at all.
    expect(new Set(cells.map((c) => c.year))).toEqual(new Set([2024]));
    const staffCells = cellsOf((await stats(`${query}&from=2024&to=2024`)).body as Parameters);
    // The view shows the unit of the covered units (src/research/project.ts): per unit and nationally.
    for (const unit of [A, B, undefined]) {
      for (const statistic of ['count', 'mean']) {
        const mine = cells.find((c) => c.unit === unit && c.statistic === statistic);
        const theirs = staffCells.find((c) => c.unit === unit && c.statistic === statistic);
        expect(mine?.value).toBeDefined();
        expect(mine?.value).toBe(theirs?.value);
      }
    }
  });

  test('by unit and sex in the view: the 3 women of unit B are hidden, and nothing hidden follows', async () => {
    const reply = await stats('groupBy=unit,sex', researcher);
    expect(reply.status).toBe(200);
    const cells = cellsOf(reply.body as Parameters);
    expect(cells.find((c) => c.unit === B && c.sex === 'female')).toMatchObject({ suppressed: true });
    expect(cells.find((c) => c.unit === B && c.sex === 'female')?.value).toBeUndefined();
    expect(cells.find((c) => c.unit === A && c.sex === undefined)).toMatchObject({ value: 14 });
    expect(cells.find((c) => c.unit === 'unknown')?.value ?? 0).toBe(0);
    expectSafeAndTrue(cells, [A, B, 'unknown']);
  });

  test('grouping by unit needs the unit approved', async () => {
    const unapproved = approval({
      id: `stats-nounit-${RUN}`,
      variables: ['Patient.gender', 'EpisodeOfCare.patient', 'EpisodeOfCare.period'],
      units: [A, B],
    });
    expect((await putApproval(server, staff, unapproved)).status).toBe(201);
    const token = await server.token('researcher', { study: unapproved.id });
    const reply = await stats('groupBy=unit', token);
    expect(reply.status).toBe(403);
    expect(JSON.stringify(reply.body)).toContain('EpisodeOfCare.managingOrganization');
  });

  test('a variable the study has not approved is refused (403, naming it)', async () => {
    const bpi = `${BASELINE}#bpi-paavirkning`;
    const reply = await stats(`variable=${encodeURIComponent(bpi)}&statistic=mean`, researcher);
    expect(reply.status).toBe(403);
    expect(JSON.stringify((reply.body as OperationOutcome).issue)).toContain(bpi);
  });

  test('a researcher of a study that is not approved gets 403', async () => {
    const reply = await stats('groupBy=unit', await server.token('researcher', { study: `none-${RUN}` }));
    expect(reply.status).toBe(403);
  });
});

describe('$stats refuses what it cannot answer, with an OperationOutcome', () => {
  test.each([
    ['an unknown parameter', 'groupBy=unit&patient=Patient/1', 400, 'patient'],
    ['a statistic it does not have', 'statistic=max', 400, 'statistic'],
    ['a grouping it does not have', 'groupBy=municipality', 400, 'groupBy'],
    ['a mean without a variable', 'statistic=mean', 400, 'variable'],
    [
      'a variable that is not a numeric item',
      `variable=${encodeURIComponent(`${BASELINE}#utdanning`)}`,
      422,
      'variable',
    ],
    ['a year that is not one', 'from=24', 400, 'from'],
    ['a span that ends before it starts', 'from=2025&to=2024', 400, 'from'],
  ])('%s', async (_what, query, status, expression) => {
    const reply = await stats(query);
    expect(reply.status).toBe(status);
    const outcome = reply.body as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue?.[0].expression).toEqual([expression]);
  });

  test.each(['clinic', 'portal'] as const)('a %s token is refused (403)', async (role) => {
    const reply = await stats('groupBy=unit', await server.token(role));
    expect(reply.status).toBe(403);
    expect((reply.body as OperationOutcome).issue?.[0].code).toBe('forbidden');
  });
});
