import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { main } from '../../src/cli/main';
import { launchChromium, type HeadlessChromium } from '../renderers/browser';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { recoverableCells, type LineEquation } from '../statistics/attacker';
import { submitPeople, type Answers, type PersonSpec } from '../statistics/registryData';

/**
 * `norpain report` end to end: clinics send the data through HTTP, the command reads the store and
 * writes HTML, CSV and PDF; the page is opened in Chromium (no console errors, screenshots into
 * test-output/reports/) and its figures are compared with those this test counts from the people it made.
 * Unit B has fewer than 5 persons: its cells carry the suppression mark, and no hidden value follows
 * from the totals the page shows. Then the published report is fetched without a token.
 */

const OUTPUT = path.join(__dirname, '..', '..', 'test-output', 'reports');
const A = '999001';
const B = '999002';
const C = '999003';
const YEAR = 2024;

const round2 = (v: number) => Math.round(v * 100) / 100;
const mean = (vs: number[]) => vs.reduce((a, b) => a + b, 0) / vs.length;

function answers(i: number): Answers {
  return {
    nrs: [7 + (i % 3), 2 + (i % 2), 5 + (i % 4), 6],
    bpi: [4, 5, 6, 5, 4, 6, 5 + (i % 3)],
    hscl: Array.from({ length: 25 }, (_, k) => 1 + ((i + k) % (i % 2 === 0 ? 2 : 4))),
    isi: Array.from({ length: 7 }, (_, k) => (i + k) % 5),
    cfq: Array.from({ length: 11 }, (_, k) => (i * k) % 4),
    eqVas: 30 + (i % 20) * 3,
  };
}

function referredIn(unit: string, i: number, answered: boolean): PersonSpec {
  const day = String(1 + (i % 27)).padStart(2, '0');
  return {
    unit,
    gender: i % 3 === 0 ? 'male' : 'female',
    birthDate: `${1950 + (i % 25) * 2}-05-10`,
    referral: `${YEAR}-01-${day}`,
    // Every third person's referral is assessed late (more than 10 working days).
    decision: {
      granted: true,
      date: `${YEAR}-${i % 3 === 0 ? '03' : '01'}-${day}`,
      deadline: `${YEAR}-05-${day}`,
    },
    start: `${YEAR}-0${4 + (i % 3)}-${day}`,
    baseline: answered ? answers(i) : undefined,
  };
}

function endedBefore(unit: string, i: number): PersonSpec {
  const day = String(1 + (i % 27)).padStart(2, '0');
  const before = answers(i);
  return {
    unit,
    gender: i % 2 === 0 ? 'male' : 'female',
    birthDate: `${1960 + (i % 30)}-02-10`,
    referral: `${YEAR - 1}-01-${day}`,
    decision: { granted: true, date: `${YEAR - 1}-01-${day}` },
    start: `${YEAR - 1}-02-${day}`,
    end: `${YEAR - 1}-06-${day}`,
    baseline: before,
    followUp: {
      ...before,
      nrs: [before.nrs[0] - 3, before.nrs[1], before.nrs[2] - (i % 4), before.nrs[3] - 2],
      pgic: 1 + (i % 7),
      authored: `${YEAR}-06-${day}`,
    },
  };
}

// Referred in the year: A 12 (6 answered), B 3 (all answered), C 7 (5 answered). Ended the year
// before: A 8, B 2, C 6.
const people: PersonSpec[] = [
  ...Array.from({ length: 12 }, (_, i) => referredIn(A, i, i < 6)),
  ...Array.from({ length: 3 }, (_, i) => referredIn(B, 20 + i, true)),
  ...Array.from({ length: 7 }, (_, i) => referredIn(C, 30 + i, i < 5)),
  ...Array.from({ length: 8 }, (_, i) => endedBefore(A, 40 + i)),
  ...Array.from({ length: 2 }, (_, i) => endedBefore(B, 50 + i)),
  ...Array.from({ length: 6 }, (_, i) => endedBefore(C, 60 + i)),
];
const ofYear = people.filter((p) => p.referral.startsWith(String(YEAR)));
const painScore = (a: Answers) => round2(mean(a.nrs));

let server: TestServer;
let chromium: HeadlessChromium;
let html: string;
let reportsDir: string;

interface Figure {
  table: string;
  unit: string;
  category?: string;
  statistic: string;
  value?: number;
  suppressed: boolean;
}
let figures: Figure[];

beforeAll(async () => {
  fs.mkdirSync(OUTPUT, { recursive: true });
  server = await startTestServer();
  await submitPeople(server, people);
  reportsDir = path.join(server.dataDir, 'reports');
  fs.mkdirSync(reportsDir, { recursive: true });
  // What norpain coverage leaves (aggregates only); the national counts are linked across units.
  fs.writeFileSync(
    path.join(reportsDir, `coverage-${YEAR}.json`),
    JSON.stringify({
      year: YEAR,
      units: {
        [A]: { nprOnly: 10, registryOnly: 5, both: 30, reserved: 0, coverage: 0.7778 },
        [B]: { nprOnly: 2, registryOnly: 1, both: 3, reserved: 0, coverage: 0.6667 },
        [C]: { nprOnly: 6, registryOnly: 2, both: 20, reserved: 0, coverage: 0.7857 },
      },
      national: { nprOnly: 17, registryOnly: 7, both: 54, reserved: 0, coverage: 0.7821 },
    }),
  );
  const code = await main(['report', '--year', String(YEAR)], {
    NODE_ENV: 'development',
    DATA_DIR: server.dataDir,
    LOG_LEVEL: 'silent',
  });
  expect(code).toBe(0);
  html = fs.readFileSync(path.join(reportsDir, `annual-${YEAR}.html`), 'utf8');
  chromium = await launchChromium();
}, 240_000);

afterAll(async () => {
  await chromium?.close();
  await server?.stop();
});

describe('the annual report', () => {
  test('opens in Chromium without console errors; screenshots land in test-output/reports', async () => {
    const page = await chromium.browser.newPage({ viewport: { width: 1100, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`file://${path.join(reportsDir, `annual-${YEAR}.html`)}`);
    await page.screenshot({ path: path.join(OUTPUT, `annual-${YEAR}.png`), fullPage: true });
    await page.screenshot({ path: path.join(OUTPUT, `annual-${YEAR}-first-page.png`) });
    await page.locator('#baseline').screenshot({ path: path.join(OUTPUT, `annual-${YEAR}-baseline.png`) });
    await page.locator(`#unit-${B}`).screenshot({ path: path.join(OUTPUT, `annual-${YEAR}-unit-${B}.png`) });
    figures = await page.$$eval('td[data-statistic]', (cells) =>
      cells.map((td) => ({
        table: td.closest('table')?.getAttribute('data-table') ?? '',
        unit: td.getAttribute('data-unit') ?? '',
        category: td.getAttribute('data-category') ?? undefined,
        statistic: td.getAttribute('data-statistic') ?? '',
        value: td.hasAttribute('data-value') ? Number(td.getAttribute('data-value')) : undefined,
        suppressed: td.getAttribute('data-suppressed') === 'true',
        text: td.textContent,
      })),
    );
    expect(problems).toEqual([]);
    expect(await page.locator('svg').count()).toBeGreaterThan(10);
    await page.close();
    expect(fs.statSync(path.join(OUTPUT, `annual-${YEAR}.png`)).size).toBeGreaterThan(10_000);
  });

  const figure = (table: string, unit: string, statistic: string, category?: string) =>
    figures.find(
      (f) => f.table === table && f.unit === unit && f.statistic === statistic && f.category === category,
    ) as Figure;

  test('its figures are those counted from the people the clinics sent', () => {
    // Each expected figure is counted here from the people made above; a figure the page hides must
    // carry no value, and a shown one must equal the count.
    const units = [A, B, C, '999004', '999005'];
    const inUnit = (ps: PersonSpec[], unit: string) =>
      ps.filter((p) => unit === 'national' || p.unit === unit);
    const ended = people.filter((p) => p.end?.startsWith(String(YEAR - 1)));
    const expected: [Figure, number][] = [];
    const expect_ = (
      table: string,
      unit: string,
      statistic: string,
      category: string | undefined,
      value: number,
    ) => expected.push([figure(table, unit, statistic, category), value]);
    for (const unit of [...units, 'national']) {
      const year = inUnit(ofYear, unit);
      expect_('persons', unit, 'persons', undefined, year.length);
      expect_('response-baseline', unit, 'episodes', 'yes', year.filter((p) => p.baseline).length);
      expect_('response-baseline', unit, 'episodes', 'no', year.filter((p) => !p.baseline).length);
      expect_('response-baseline', unit, 'episodes', 'total', year.length);
      expect_('response-followup', unit, 'episodes', 'yes', inUnit(ended, unit).length);
      const answered = year.filter((p) => p.baseline).map((p) => painScore(p.baseline as Answers));
      expect_('pain', unit, 'n', undefined, answered.length);
      if (answered.length > 0) expect_('pain', unit, 'mean', undefined, round2(mean(answered)));
      // Assessed within 10 working days: every third person was assessed two months after referral.
      expect_(
        'decision-deadline',
        unit,
        'episodes',
        'late',
        year.filter((p) => p.decision?.date.slice(5, 7) === '03').length,
      );
      const changes = inUnit(ended, unit).map((p) =>
        round2(painScore(p.followUp as Answers) - painScore(p.baseline as Answers)),
      );
      if (changes.length > 0) expect_('pain-change', unit, 'mean', undefined, round2(mean(changes)));
    }
    expect_('coverage', A, 'episodes', 'total', 45);
    expect_('coverage', 'national', 'episodes', 'both', 54);
    // Coverage = (registry only + both) / all three, nationally from the linked counts.
    expect_('coverage', 'national', 'rate', undefined, Math.round(((54 + 7) / 78) * 1000) / 10);
    let shown = 0;
    for (const [f, value] of expected) {
      expect(f).toBeDefined();
      if (f.suppressed) {
        expect(f.value).toBeUndefined();
      } else {
        expect({ ...f, value: f.value === undefined ? undefined : round2(f.value) }).toEqual({ ...f, value });
        shown++;
      }
    }
    // Enough is shown for the comparison to mean something: A and the national figures of most tables.
    expect(shown).toBeGreaterThan(25);
    expect(figure('persons', A, 'persons')).toMatchObject({ value: 12, suppressed: false });
    expect(figure('persons', 'national', 'persons')).toMatchObject({
      value: ofYear.length,
      suppressed: false,
    });
  });

  test('unit B (3 persons) shows the suppression mark, and no hidden value follows from the totals', () => {
    const b = figure('persons', B, 'persons');
    expect(b).toMatchObject({ suppressed: true, value: undefined });
    expect(html).toContain('data-suppressed="true"');
    expect(figure('pain', B, 'mean').suppressed).toBe(true);
    // Every table of the page: each row's categories add up to its total, each column's units to the
    // national row (not for coverage, whose national row is linked across units, not a sum).
    const tables = [...new Set(figures.map((f) => f.table))].filter((t) => !t.startsWith('unit-'));
    for (const table of tables) {
      const cells = figures.filter((f) => f.table === table);
      const statistic =
        cells[0].statistic === 'persons' ? 'persons' : cells[0].statistic === 'n' ? 'n' : 'episodes';
      const own = cells.filter((f) => f.statistic === statistic);
      const index = new Map(own.map((f, i) => [`${f.unit}|${f.category ?? ''}`, i]));
      const units = [...new Set(own.map((f) => f.unit))].filter((u) => u !== 'national');
      const categories = [...new Set(own.map((f) => f.category ?? ''))].filter((c) => c !== 'total');
      const lines: LineEquation[] = [];
      if (categories.length > 1) {
        for (const unit of [...units, 'national']) {
          lines.push({
            total: index.get(`${unit}|total`)!,
            cells: categories.map((c) => index.get(`${unit}|${c}`)!),
          });
        }
      }
      if (table !== 'coverage') {
        for (const category of categories.length > 1 ? [...categories, 'total'] : ['']) {
          lines.push({
            total: index.get(`national|${category}`)!,
            cells: units.map((u) => index.get(`${u}|${category}`)!),
          });
        }
      }
      expect(lines.every((l) => l.total !== undefined && l.cells.every((c) => c !== undefined))).toBe(true);
      expect({
        table,
        recoverable: recoverableCells(
          lines,
          own.map((f) => f.suppressed),
        ),
      }).toEqual({
        table,
        recoverable: [],
      });
    }
  });

  test('the CSV holds the same figures, suppressed ones without a value; the PDF was printed', () => {
    const rows = parse(fs.readFileSync(path.join(reportsDir, `annual-${YEAR}.csv`)), {
      columns: true,
    }) as Record<string, string>[];
    const row = (table: string, unit: string, statistic: string, category = '') =>
      rows.find(
        (r) => r.table === table && r.unit === unit && r.statistic === statistic && r.category === category,
      );
    expect(Number(row('persons', A, 'persons')?.value)).toBe(figure('persons', A, 'persons').value);
    expect(row('persons', B, 'persons')).toMatchObject({ value: '', suppressed: 'true' });
    expect(rows.filter((r) => r.suppressed === 'true').every((r) => r.value === '')).toBe(true);
    const pdf = fs.readFileSync(path.join(reportsDir, `annual-${YEAR}.pdf`));
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
  });

  test('GET /public/annual/{year} serves the report without a token, with the date it was made', async () => {
    const page = await fetch(`${server.origin}/public/annual/${YEAR}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('last-modified')).toBeTruthy();
    const text = await page.text();
    expect(text).toBe(html);
    expect(text).toMatch(/Laget <time datetime="\d{4}-\d\d-\d\dT/);
    const csv = await fetch(`${server.origin}/public/annual/${YEAR}.csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toContain('text/csv');
    for (const year of ['1999', 'abcd', '2024.pdf', '..%2F..%2Fkeys']) {
      const missing = await fetch(`${server.origin}/public/annual/${year}`);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    }
  });

  test('a year without coverage figures says coverage was not measured', async () => {
    const out = fs.mkdtempSync(path.join(server.dataDir, 'other-'));
    const code = await main(['report', '--year', String(YEAR + 1), '--unit', A, '--out', out], {
      NODE_ENV: 'development',
      DATA_DIR: server.dataDir,
      LOG_LEVEL: 'silent',
    });
    expect(code).toBe(0);
    const page = fs.readFileSync(path.join(out, `annual-${YEAR + 1}-${A}.html`), 'utf8');
    expect(page).toContain('ikke målt');
    expect(page).toContain(`id="unit-${A}"`);
    expect(page).not.toContain(`id="unit-${B}"`);
  });
});
