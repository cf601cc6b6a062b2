import type { Questionnaire, QuestionnaireResponse } from '@medplum/fhirtypes';
import type { Locator, Page } from 'playwright-core';
import type { PlannedItem } from './plan';

/**
 * A form renderer driven the way a person uses it: load its page, render the Questionnaire, click and
 * type the planned answers, and take back the QuestionnaireResponse it produces.
 */
export interface Renderer {
  name: 'lhc-forms' | 'refero';
  render(page: Page, origin: string, questionnaire: Questionnaire): Promise<void>;
  fill(page: Page, plan: PlannedItem[]): Promise<void>;
  response(page: Page): Promise<QuestionnaireResponse>;
}

/** CSS attribute values are quoted with ", so linkIds and codes must not hold one. */
function attr(value: string): string {
  if (/["\\]/.test(value)) {
    throw new Error(`Unexpected character in ${value}`);
  }
  return value;
}

interface BrowserGlobals {
  LForms: {
    Util: {
      addFormToPage(q: unknown, container: string, options?: Record<string, unknown>): Promise<void>;
      getFormFHIRData(type: string, version: string, source: unknown): unknown;
    };
  };
  norpainReady?: boolean;
  norpainRender(q: unknown): void;
  norpainResponse?: unknown;
}
// The page's globals, as the scripts evaluated in the browser see them.
declare const window: BrowserGlobals;
declare const document: { getElementById(id: string): unknown };

/**
 * LHC-Forms (lforms), from its prebuilt distribution. Element ids are `<linkId>/<path>` for a question
 * and `<linkId>/<path>|<system>|<code>` for an answer's radio button or check box.
 */
export const lhcForms: Renderer = {
  name: 'lhc-forms',
  async render(page, origin, questionnaire) {
    await page.goto(`${origin}/lforms.html`);
    await page.waitForFunction(() => typeof window.LForms?.Util?.addFormToPage === 'function');
    // The embedding page decides whether option labels carry their ordinalValue («Ikke plaget - 1»): a
    // portal for patients shows the labels alone, as Refero does. The scores stay in the Questionnaire.
    await page.evaluate(
      (q) => window.LForms.Util.addFormToPage(q, 'formContainer', { displayScoreWithAnswerText: false }),
      questionnaire,
    );
    await page.locator('lhc-item').first().waitFor();
  },
  async fill(page, plan) {
    for (const { item, answer } of plan) {
      const id = attr(item.linkId);
      switch (answer.kind) {
        case 'coding':
          for (const code of answer.codes) {
            await page.locator(`[id^="${id}/"][id$="|${attr(code)}"]`).click();
          }
          break;
        case 'integer':
          await typeNumber(page.locator(`lhc-input input[id^="${id}/"]`), answer.value);
          break;
      }
    }
  },
  async response(page) {
    return (await page.evaluate(() =>
      window.LForms.Util.getFormFHIRData(
        'QuestionnaireResponse',
        'R4',
        document.getElementById('formContainer'),
      ),
    )) as QuestionnaireResponse;
  },
};

/**
 * helsenorge Refero, built into a React page. Radio buttons and check boxes carry the linkId as `name`
 * (with `^n` for repeating items) and the code as `value`; numbers have id `item_<linkId>`.
 * The response is what Refero hands to onSubmit when the person presses «Send inn».
 */
export const refero: Renderer = {
  name: 'refero',
  async render(page, origin, questionnaire) {
    await page.goto(`${origin}/index.html`);
    await page.waitForFunction(() => window.norpainReady === true);
    await page.evaluate((q) => window.norpainRender(q), questionnaire);
    await page.locator('[data-testid="refero-submit-button"]').waitFor();
  },
  async fill(page, plan) {
    for (const { item, answer } of plan) {
      const id = attr(item.linkId);
      switch (answer.kind) {
        case 'coding':
          for (const code of answer.codes) {
            const value = attr(code);
            await clickLabelOf(
              page.locator(`input[name="${id}"][value="${value}"], input[name^="${id}^"][value="${value}"]`),
            );
          }
          break;
        case 'integer':
          await typeNumber(page.locator(`[id="item_${id}"]`), answer.value);
          break;
      }
    }
  },
  async response(page) {
    await page.locator('[data-testid="refero-submit-button"]').click();
    try {
      await page.waitForFunction(() => window.norpainResponse !== undefined, undefined, { timeout: 10_000 });
    } catch {
      // Refero refused to submit: its validation summary says why.
      const summary = await page
        .locator('[data-testid="validation-summary"], [role="alert"]')
        .allInnerTexts();
      throw new Error(`Refero did not submit the form: ${summary.join(' | ') || 'no validation message'}`);
    }
    return (await page.evaluate(() => window.norpainResponse)) as QuestionnaireResponse;
  },
};

/**
 * Clicks the label of a radio button or check box, as a person does (the design system draws the
 * input itself off-screen), until the renderer has it checked: leaving a required question shows its
 * error message on mousedown, which can move the option away before the click lands, and a person
 * would simply click again.
 */
async function clickLabelOf(input: Locator): Promise<void> {
  const label = input.locator('xpath=ancestor::label[1]');
  for (let attempt = 1; ; attempt++) {
    await label.click();
    if (await input.isChecked()) {
      return;
    }
    if (attempt === 3) {
      throw new Error(`${await input.getAttribute('id')} stays unchecked after ${attempt} clicks`);
    }
  }
}

/** Types a number into a field and leaves it (blur), as a person moving on to the next question does. */
async function typeNumber(field: Locator, value: number): Promise<void> {
  await field.fill(String(value));
  await field.blur();
}
