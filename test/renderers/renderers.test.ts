/**
 * Real renderers end to end (issue 5): each NorPain patient Questionnaire is rendered in headless
 * Chromium by LHC-Forms and by the portal's renderer, helsenorge Refero; a person's answers are clicked
 * and typed in; the QuestionnaireResponse the renderer produces is completed as the portal does and
 * submitted with a portal token; the server must accept it, store it pseudonymised and score it.
 * Screenshots and the renderers' responses are kept in test-output/renderers/.
 *
 * Needs Debian's chromium and the built pages: scripts/ci/install-renderers.sh.
 */
import fs from 'node:fs';
import path from 'node:path';
import type {
  Bundle,
  Patient,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import type { Page } from 'playwright-core';
import { registryPseudonymSystem, seededRandom, syntheticNationalId } from '../../src/identity';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { launchChromium, type HeadlessChromium } from './browser';
import { startPageServer, type PageServer } from './pages';
import { baselineChoices, expectedScores, followupChoices } from './people';
import { flatten, planAnswers, scoreItems, type PlannedItem } from './plan';
import { completeAsPortal } from './portal';
import { lhcForms, refero, type Renderer } from './renderers';

jest.setTimeout(180_000);

const OUTPUT = path.join(__dirname, '..', '..', 'test-output', 'renderers');
const QUESTIONNAIRES = path.join(__dirname, '..', '..', 'questionnaires');

const forms = [
  { form: 'baseline' as const, file: 'norpain-baseline.json', choices: baselineChoices },
  { form: 'followup' as const, file: 'norpain-followup-12m.json', choices: followupChoices },
];
const renderers: Renderer[] = [lhcForms, refero];

let server: TestServer;
let pages: PageServer;
let chromium: HeadlessChromium;

beforeAll(async () => {
  fs.mkdirSync(OUTPUT, { recursive: true });
  pages = await startPageServer();
  chromium = await launchChromium();
  server = await startTestServer();
});

afterAll(async () => {
  await chromium?.close();
  await pages?.close();
  await server?.stop();
});

describe.each(forms)('$file', ({ form, file, choices }) => {
  const questionnaire = JSON.parse(fs.readFileSync(path.join(QUESTIONNAIRES, file), 'utf8')) as Questionnaire;
  const plan = planAnswers(questionnaire, choices);

  test('the portal reads the Questionnaire it renders from the server', async () => {
    const token = await server.token('portal');
    const bundle = await getJson<Bundle<Questionnaire>>(
      `Questionnaire?url=${encodeURIComponent(questionnaire.url ?? '')}&version=${questionnaire.version}`,
      token,
    );
    expect(bundle.entry?.map((e) => e.resource?.item)).toEqual([questionnaire.item]);
  });

  test.each(renderers.map((r, i) => ({ renderer: r, name: r.name, seed: forms.length * i + file.length })))(
    '$name renders it, a patient fills it in, the portal submits it: stored pseudonymised and scored',
    async ({ renderer, seed }) => {
      const rendered = await renderAndFill(renderer, questionnaire, plan, `${form}-${renderer.name}`);
      // The renderer's response carries what the person entered (the order of check box answers is the
      // renderer's choice).
      expect(
        sorted(
          pick(
            answersOf(rendered),
            plan.map((p) => p.item.linkId),
          ),
        ),
      ).toEqual(sorted(plannedAnswers(plan)));

      const nationalId = syntheticNationalId('fnr', { random: seededRandom(seed) });
      const submitted = completeAsPortal(rendered, questionnaire, nationalId, new Date());
      const response = await fetch(`${server.baseUrl}/QuestionnaireResponse`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await server.token('portal', { pid: nationalId })}`,
          'content-type': 'application/fhir+json',
          prefer: 'return=representation',
        },
        body: JSON.stringify(submitted),
      });
      const created = (await response.json()) as QuestionnaireResponse;
      expect({ status: response.status, outcome: response.status === 201 ? undefined : created }).toEqual({
        status: 201,
        outcome: undefined,
      });

      // Stored pseudonymised: no national id; the subject is the pseudonymous Patient.
      const admin = await server.token('registry-admin');
      const stored = await getJson<QuestionnaireResponse>(`QuestionnaireResponse/${created.id}`, admin);
      expect(JSON.stringify(stored)).not.toContain(nationalId);
      expect(stored.subject).toEqual({
        type: 'Patient',
        reference: expect.stringMatching(/^Patient\/[\w.-]+$/),
      });
      const patient = await getJson<Patient>(stored.subject?.reference ?? '', admin);
      expect(JSON.stringify(patient)).not.toContain(nationalId);
      expect(patient.identifier?.map((i) => i.system)).toEqual([registryPseudonymSystem]);

      // Scored by the server and pinned to the Questionnaire version that produced the scores.
      expect(stored.questionnaire).toBe(`${questionnaire.url}|${questionnaire.version}`);
      const storedAnswers = answersOf(stored);
      const scores = scoreItems(questionnaire).map((i) => i.linkId);
      expect(scores.filter((linkId) => !storedAnswers.has(linkId))).toEqual([]);
      const expected = expectedScores(plan, form);
      expect(pick(storedAnswers, Object.keys(expected))).toEqual(
        Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, [v]])),
      );
      writeJson(`${form}-${renderer.name}.scores.json`, {
        server: pick(storedAnswers, scores),
        renderer: pick(answersOf(rendered), scores),
      });

      // Nothing the server wrote holds the national id in the clear: stores, vault, register, logs.
      expect(filesContaining(server.dataDir, nationalId)).toEqual([]);
      expect(JSON.stringify(server.logs)).not.toContain(nationalId);
    },
  );
});

test('Refero «Legg til» under a multi-select question: the split question is stored as one item', async () => {
  const questionnaire = JSON.parse(
    fs.readFileSync(path.join(QUESTIONNAIRES, 'norpain-baseline.json'), 'utf8'),
  ) as Questionnaire;
  const plan = planAnswers(questionnaire, baselineChoices);
  const planned = plannedAnswers(plan).smertesteder;
  const page = await chromium.browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.setDefaultTimeout(15_000);
  let rendered: QuestionnaireResponse;
  try {
    await refero.render(page, pages.origin, questionnaire);
    await refero.fill(page, plan);
    // The patient clicks «Legg til» under «Hvor har du hatt smerter …» and ticks one more region in the copy.
    await page.locator('[data-testid="smertesteder-repeat-button"]').click();
    await page
      .locator('input[name="smertesteder^1"][value="mage"]')
      .locator('xpath=ancestor::label[1]')
      .click();
    await page.screenshot({ path: path.join(OUTPUT, 'baseline-refero-legg-til.png'), fullPage: true });
    rendered = await refero.response(page);
    writeJson('baseline-refero-legg-til.response.json', rendered);
  } finally {
    await page.close();
  }
  // Refero sends the question twice: the planned regions in one item, the added one in the other.
  expect(itemsWithLinkId(rendered, 'smertesteder').map((i) => i.answer?.map(valueOf))).toEqual([
    planned,
    ['mage'],
  ]);

  const nationalId = syntheticNationalId('fnr', { random: seededRandom(97) });
  const response = await fetch(`${server.baseUrl}/QuestionnaireResponse`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await server.token('portal', { pid: nationalId })}`,
      'content-type': 'application/fhir+json',
      prefer: 'return=representation',
    },
    body: JSON.stringify(completeAsPortal(rendered, questionnaire, nationalId, new Date())),
  });
  const created = (await response.json()) as QuestionnaireResponse;
  expect({ status: response.status, outcome: response.status === 201 ? undefined : created }).toEqual({
    status: 201,
    outcome: undefined,
  });
  const stored = await getJson<QuestionnaireResponse>(
    `QuestionnaireResponse/${created.id}`,
    await server.token('registry-admin'),
  );
  expect(itemsWithLinkId(stored, 'smertesteder').map((i) => i.answer?.map(valueOf))).toEqual([
    [...(planned ?? []), 'mage'],
  ]);
  expect(answersOf(stored).get('antall-smertesteder')).toEqual([(planned?.length ?? 0) + 1]);
});

/** Renders, fills in and screenshots the form; returns the renderer's response (also kept as output). */
async function renderAndFill(
  renderer: Renderer,
  questionnaire: Questionnaire,
  plan: PlannedItem[],
  name: string,
): Promise<QuestionnaireResponse> {
  const page = await chromium.browser.newPage({ viewport: { width: 1100, height: 900 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.setDefaultTimeout(15_000);
  try {
    await renderer.render(page, pages.origin, questionnaire);
    await renderer.fill(page, plan);
    await page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });
    const seen = await visibleText(page);
    // The person sees every question they answered, in bokmål, ...
    expect(
      plan.map((p) => p.item.text ?? '').filter((text) => !seen.lines.some((l) => l.includes(text))),
    ).toEqual([]);
    // ... not the questions their answers closed (enableWhen) ...
    expect(closedQuestions(questionnaire, plan).length).toBeGreaterThan(0);
    expect(
      closedQuestions(questionnaire, plan)
        .map((i) => i.text ?? '')
        .filter((text) => seen.lines.some((l) => l.includes(text))),
    ).toEqual([]);
    // ... but no score (the server computes them on ingest; a renderer that cannot would show each as
    // unanswered) and none of the renderers' own untranslated texts.
    expect(
      scoreItems(questionnaire)
        .map((i) => i.text ?? '')
        .filter((text) => seen.lines.some((l) => l.includes(text))),
    ).toEqual([]);
    expect([...seen.lines, ...seen.placeholders].filter((t) => UNWANTED_TEXT.includes(t))).toEqual([]);
    const rendered = await renderer.response(page);
    writeJson(`${name}.response.json`, rendered);
    expect(pageErrors).toEqual([]);
    return rendered;
  } finally {
    await page.close();
  }
}

/**
 * Texts a Norwegian patient must not meet: LHC-Forms' English defaults (yes/no buttons, field
 * placeholders), Refero's English fallback for the repeat button, and Refero's «Ikke besvart» (shown
 * for a read-only item without an answer, such as a score it cannot compute).
 */
const UNWANTED_TEXT = [
  'Yes',
  'No',
  'Not Answered',
  'Type a number',
  'Type a value',
  'Select one',
  'Select one or more',
  'Search for a value',
  'Search for values',
  'MM/DD/YYYY',
  'Copy',
  'Ikke besvart',
];

/** The page's text as the person sees it, line by line (innerText leaves hidden elements out), and
 * the placeholders of the fields on screen. */
async function visibleText(page: Page): Promise<{ lines: string[]; placeholders: string[] }> {
  const lines = (await page.locator('body').innerText())
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const placeholders: string[] = [];
  for (const field of await page.locator('input[placeholder], textarea[placeholder]').all()) {
    if (await field.isVisible()) {
      placeholders.push((await field.getAttribute('placeholder')) ?? '');
    }
  }
  return { lines, placeholders };
}

/** The questions with enableWhen the plan leaves unanswered: the plan's answers close them. */
function closedQuestions(questionnaire: Questionnaire, plan: PlannedItem[]): QuestionnaireItem[] {
  return flatten(questionnaire.item ?? []).filter(
    (i) => i.enableWhen?.length && !i.readOnly && !plan.some((p) => p.item.linkId === i.linkId),
  );
}

type Value = string | number | boolean;

/** Every answer in a response, by linkId (codes for codings), wherever the item sits. */
function answersOf(response: QuestionnaireResponse): Map<string, Value[]> {
  const found = new Map<string, Value[]>();
  const visit = (items: QuestionnaireResponseItem[] | undefined): void => {
    for (const item of items ?? []) {
      for (const answer of item.answer ?? []) {
        found.set(item.linkId, [...(found.get(item.linkId) ?? []), valueOf(answer)]);
        visit(answer.item);
      }
      visit(item.item);
    }
  };
  visit(response.item);
  return found;
}

/** The response items with this linkId, wherever they sit. */
function itemsWithLinkId(response: QuestionnaireResponse, linkId: string): QuestionnaireResponseItem[] {
  const found: QuestionnaireResponseItem[] = [];
  const visit = (items: QuestionnaireResponseItem[] | undefined): void => {
    for (const item of items ?? []) {
      if (item.linkId === linkId) {
        found.push(item);
      }
      item.answer?.forEach((answer) => visit(answer.item));
      visit(item.item);
    }
  };
  visit(response.item);
  return found;
}

function valueOf(answer: QuestionnaireResponseItemAnswer): Value {
  const value =
    answer.valueCoding?.code ??
    answer.valueInteger ??
    answer.valueDecimal ??
    answer.valueBoolean ??
    answer.valueString;
  if (value === undefined) {
    throw new Error(`Unexpected answer ${JSON.stringify(answer)}`);
  }
  return value;
}

function plannedAnswers(plan: PlannedItem[]): Record<string, Value[]> {
  return Object.fromEntries(
    plan.map(({ item, answer }) => [item.linkId, answer.kind === 'coding' ? answer.codes : [answer.value]]),
  );
}

function sorted(answers: Record<string, Value[] | undefined>): Record<string, Value[] | undefined> {
  return Object.fromEntries(
    Object.entries(answers).map(([id, values]) => [id, values && [...values].sort()]),
  );
}

function pick(answers: Map<string, Value[]>, linkIds: string[]): Record<string, Value[] | undefined> {
  return Object.fromEntries(linkIds.map((id) => [id, answers.get(id)]));
}

async function getJson<T>(relative: string, token: string): Promise<T> {
  const response = await fetch(`${server.baseUrl}/${relative}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' },
  });
  const body = (await response.json()) as T;
  if (response.status !== 200) {
    throw new Error(`GET ${relative}: ${response.status} ${JSON.stringify(body)}`);
  }
  return body;
}

function filesContaining(dir: string, text: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .filter((f) => fs.readFileSync(f).includes(text))
    .map((f) => path.relative(dir, f));
}

function writeJson(name: string, value: unknown): void {
  fs.writeFileSync(path.join(OUTPUT, name), `${JSON.stringify(value, null, 2)}\n`);
}
