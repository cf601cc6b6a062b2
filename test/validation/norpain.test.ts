import { validateResource } from '@medplum/core';
import type {
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import {
  applyScores,
  compileQuestionnaire,
  readNorPainQuestionnaires,
  validateQuestionnaireResponse,
} from '../../src/validation/questionnaire';
import { NORPAIN_QUESTIONNAIRES, render } from '../../questionnaires/build/build';
import { answersOf, fillResponse, type Overrides } from './responses';

const questionnaires = readNorPainQuestionnaires();
const byName = (name: string): Questionnaire => {
  const q = questionnaires.find((x) => x.url === `https://norpain.no/fhir/Questionnaire/${name}`);
  if (!q) throw new Error(name);
  return q;
};
const baseline = byName('norpain-baseline');
const followup = byName('norpain-followup-12m');
const clinician = byName('norpain-clinician-episode');
const code = (system: string, c: string): QuestionnaireResponseItemAnswer[] => [
  { valueCoding: { system, code: c } },
];
const cs = (name: string) => `https://norpain.no/fhir/CodeSystem/${name}`;

describe('the NorPain Questionnaires', () => {
  beforeAll(() => loadFhirDefinitions());

  it.each(Object.keys(NORPAIN_QUESTIONNAIRES))('%s.json is what questionnaires/build produces', (name) => {
    const make = NORPAIN_QUESTIONNAIRES[name as keyof typeof NORPAIN_QUESTIONNAIRES];
    expect(readFileSync(join(__dirname, '../../questionnaires', `${name}.json`), 'utf8')).toBe(
      render(make()),
    );
  });

  it.each(questionnaires.map((q) => [q.id, q] as const))(
    '%s is valid R4, versioned, and compiles cleanly',
    (_id, q) => {
      expect(validateResource(q)).toEqual([]);
      expect(q.url).toMatch(/^https:\/\/norpain\.no\/fhir\/Questionnaire\//);
      expect(q.version).toBe('1.0.0');
      expect(compileQuestionnaire(q).issues).toEqual([]);
    },
  );

  it('cover what the reference lists for each time point', () => {
    const groups = (q: Questionnaire) => q.item?.map((i) => i.linkId);
    expect(groups(baseline)).toEqual([
      'bakgrunn',
      'arbeid',
      'smertevarighet',
      'smerte',
      'bpi',
      'hscl',
      'isi',
      'cfq',
      'eq5d',
      'pcs',
    ]);
    expect(groups(followup)).toEqual([
      'pgic',
      'arbeid',
      'smerte',
      'bpi',
      'hscl',
      'isi',
      'cfq',
      'eq5d',
      'pcs',
    ]);
    expect(groups(clinician)).toEqual([
      'henvisning',
      'rettighet',
      'forlop-start',
      'diagnoser',
      'utredning',
      'behandling',
      'avslutning',
    ]);
    const text = JSON.stringify(baseline);
    expect(text.includes('"code":"72514-3"')).toBe(true);
    expect(text.includes('"code":"77565-0"')).toBe(true);
    expect(baseline.copyright).toContain('plassholdertekst');
  });

  it.each([baseline, followup, clinician].map((q) => [q.id, q] as const))(
    'a filled-in %s response is valid R4 and valid against its Questionnaire',
    (_id, q) => {
      const qr = fillResponse(q);
      expect(validateResource(qr)).toEqual([]);
      const compiled = compileQuestionnaire(q);
      expect(validateQuestionnaireResponse(compiled, qr)).toEqual([]);
      const scored = applyScores(compiled, qr).response;
      expect(validateResource(scored)).toEqual([]);
      expect(validateQuestionnaireResponse(compiled, scored)).toEqual([]);
    },
  );

  it('branch: work percentage only for those in work; disability questions follow the benefit answers', () => {
    const compiled = compileQuestionnaire(baseline);
    const working: Overrides = {
      arbeidssituasjon: code(cs('arbeidssituasjon'), 'deltid'),
      stillingsprosent: [{ valueInteger: 60 }],
    };
    expect(validateQuestionnaireResponse(compiled, fillResponse(baseline, working))).toEqual([]);
    const student: Overrides = {
      arbeidssituasjon: code(cs('arbeidssituasjon'), 'student'),
      stillingsprosent: [{ valueInteger: 60 }],
    };
    const issues = validateQuestionnaireResponse(compiled, fillResponse(baseline, student));
    expect(issues.map((i) => i.details?.text)).toEqual([expect.stringContaining("'stillingsprosent'")]);
  });
});

describe('the patient forms, as the portal renders them', () => {
  const YES_NO = 'http://terminology.hl7.org/CodeSystem/v2-0136';
  const HIDDEN = 'http://hl7.org/fhir/StructureDefinition/questionnaire-hidden';
  const CALCULATED = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';
  const flatten = (items: QuestionnaireItem[] = []): QuestionnaireItem[] =>
    items.flatMap((i) => [i, ...flatten(i.item)]);
  const yesNo = (c: 'Y' | 'N') => code(YES_NO, c);

  it.each([baseline, followup].map((q) => [q.id, q] as const))(
    '%s asks yes/no as Ja/Nei radio buttons (the portal shows a boolean as one check box)',
    (_id, q) => {
      const items = flatten(q.item);
      // A computed (hidden) yes/no score may stay boolean: nobody answers it.
      expect(items.filter((i) => i.type === 'boolean' && !i.readOnly).map((i) => i.linkId)).toEqual([]);
      const yesNoItems = items.filter((i) => i.answerOption?.some((o) => o.valueCoding?.system === YES_NO));
      expect(yesNoItems.length).toBeGreaterThan(0);
      for (const item of yesNoItems) {
        expect(item.answerOption?.map((o) => [o.valueCoding?.code, o.valueCoding?.display])).toEqual([
          ['Y', 'Ja'],
          ['N', 'Nei'],
        ]);
        expect(JSON.stringify(item.extension)).toContain('"code":"radio-button"');
      }
    },
  );

  it.each([baseline, followup].map((q) => [q.id, q] as const))(
    '%s branches on multi-answer questions only with = or exists (renderers disagree on !=)',
    (_id, q) => {
      const items = flatten(q.item);
      const repeating = new Set(items.filter((i) => i.repeats).map((i) => i.linkId));
      const conditions = items.flatMap((i) => (i.enableWhen ?? []).map((ew) => ({ item: i.linkId, ...ew })));
      expect(conditions.length).toBeGreaterThan(0);
      expect(
        conditions.filter((c) => repeating.has(c.question) && c.operator !== '=' && c.operator !== 'exists'),
      ).toEqual([]);
    },
  );

  it('«Har du barn?» Ja opens «Hvor mange barn har du?»; Nei closes it; a boolean answer is refused', () => {
    const compiled = compileQuestionnaire(baseline);
    const children = [{ valueInteger: 2 }];
    expect(
      validateQuestionnaireResponse(
        compiled,
        fillResponse(baseline, { 'har-barn': yesNo('Y'), 'antall-barn': children }),
      ),
    ).toEqual([]);
    expect(
      validateQuestionnaireResponse(
        compiled,
        fillResponse(baseline, { 'har-barn': yesNo('N'), 'antall-barn': children }),
      ).map((i) => i.details?.text),
    ).toEqual([expect.stringContaining("'antall-barn'")]);
    expect(
      validateQuestionnaireResponse(
        compiled,
        fillResponse(baseline, { 'har-barn': [{ valueBoolean: true }] }),
      ).map((i) => [i.expression, i.details?.text]),
    ).toEqual([
      [
        ['QuestionnaireResponse.item[0].item[1].answer[0]'],
        expect.stringContaining('takes valueCoding, not valueBoolean'),
      ],
    ]);
  });

  it('follow-up: «annen behandling» Ja opens «hva slags behandling»; Nei closes it', () => {
    const compiled = compileQuestionnaire(followup);
    const which = code(cs('behandling-etter'), 'fysioterapi');
    expect(
      validateQuestionnaireResponse(
        compiled,
        fillResponse(followup, { 'ny-behandling': yesNo('Y'), 'ny-behandling-hva': which }),
      ),
    ).toEqual([]);
    expect(
      validateQuestionnaireResponse(
        compiled,
        fillResponse(followup, { 'ny-behandling': yesNo('N'), 'ny-behandling-hva': which }),
      ).map((i) => i.details?.text),
    ).toEqual([expect.stringContaining("'ny-behandling-hva'")]);
  });

  it.each([baseline, followup].map((q) => [q.id, q] as const))(
    '%s: every score is hidden from the person filling in; the server still inserts it, and the validator accepts it',
    (_id, q) => {
      const scores = flatten(q.item).filter((i) => i.extension?.some((e) => e.url === CALCULATED));
      expect(scores.length).toBeGreaterThan(0);
      expect(
        scores.filter((i) => !(i.readOnly && i.extension?.some((e) => e.url === HIDDEN && e.valueBoolean))),
      ).toEqual([]);
      // Visible items are never hidden: only scores are.
      expect(
        flatten(q.item)
          .filter((i) => i.extension?.some((e) => e.url === HIDDEN))
          .map((i) => i.linkId),
      ).toEqual(scores.map((i) => i.linkId));
      const compiled = compileQuestionnaire(q);
      const scored = applyScores(compiled, fillResponse(q)).response;
      const inserted = scores.filter((i) => answersOf(scored, i.linkId).length > 0);
      expect(inserted.length).toBeGreaterThan(0);
      expect(validateQuestionnaireResponse(compiled, scored)).toEqual([]);
    },
  );

  it('pain sites: «no pain in the last week» can be given and counts 0 regions; regions are counted', () => {
    const compiled = compileQuestionnaire(followup);
    const region = (...codes: string[]) =>
      codes.map((c) => ({ valueCoding: { system: cs('smerteregion'), code: c } }));
    const count = (overrides: Overrides) => {
      const qr = fillResponse(followup, overrides);
      expect(validateQuestionnaireResponse(compiled, qr)).toEqual([]);
      return answersOf(applyScores(compiled, qr).response, 'antall-smertesteder');
    };
    expect(count({ smertesteder: region('ingen') })).toEqual([{ valueInteger: 0 }]);
    expect(count({ smertesteder: region('nakke', 'korsrygg', 'kjeve-v') })).toEqual([{ valueInteger: 3 }]);
  });

  it('licensed instruments: each question is marked as placeholder and shows no subscale or scoring label', () => {
    const questions = flatten(baseline.item).filter((i) =>
      /^(bpi|hscl|isi|cfq|eq5d|pcs)-\d+$/.test(i.linkId),
    );
    expect(questions).toHaveLength(7 + 25 + 7 + 11 + 5 + 13);
    expect(questions.filter((i) => !i.text?.startsWith('[Plassholder] '))).toEqual([]);
    const scaleItems = questions.filter((i) => /^(hscl|cfq|pcs)-/.test(i.linkId)).map((i) => i.text);
    const labels = /angst|depresjon|HSCL-10|fysisk|mental|grubling|forstørring|hjelpeløshet|\bledd\b/;
    expect(scaleItems.filter((text) => labels.test(text ?? ''))).toEqual([]);
  });
});

describe('scores recomputed on the server', () => {
  const compiled = compileQuestionnaire(baseline);
  const hscl = (answers: number[]): Overrides =>
    Object.fromEntries(
      Array.from({ length: 25 }, (_, i) => [
        `hscl-${i + 1}`,
        i < answers.length && answers[i] > 0 ? code(cs('hscl-skala'), String(answers[i])) : null,
      ]),
    );
  const score = (qr: QuestionnaireResponse, linkId: string) =>
    answersOf(applyScores(compiled, qr).response, linkId);

  it('HSCL-10 is the mean of its ten items and needs 7 of them', () => {
    // items 1-4, 12, 16, 17, 18, 24, 25 form HSCL-10
    const all = Array.from({ length: 25 }, (_, i) =>
      [1, 2, 3, 4, 12, 16, 17, 18, 24, 25].includes(i + 1) ? 3 : 1,
    );
    expect(score(fillResponse(baseline, hscl(all)), 'hscl10-gjennomsnitt')).toEqual([{ valueDecimal: 3 }]);
    const sevenOfTen = all.map((v, i) => ([1, 2, 3].includes(i + 1) ? 0 : v));
    expect(score(fillResponse(baseline, hscl(sevenOfTen)), 'hscl10-gjennomsnitt')).toEqual([
      { valueDecimal: 3 },
    ]);
    const sixOfTen = all.map((v, i) => ([1, 2, 3, 4].includes(i + 1) ? 0 : v));
    expect(score(fillResponse(baseline, hscl(sixOfTen)), 'hscl10-gjennomsnitt')).toEqual([]);
    // HSCL-25 total needs 20 of 25: 21 answered here
    expect(score(fillResponse(baseline, hscl(sixOfTen)), 'hscl-25-total')).toEqual([
      { valueDecimal: Number(((6 * 3 + 15) / 21).toFixed(2)) },
    ]);
  });

  it('ISI is the sum of all seven items and is left out when one is missing', () => {
    const isi = (values: (number | null)[]): Overrides =>
      Object.fromEntries(
        values.map((v, i) => [
          `isi-${i + 1}`,
          v === null
            ? null
            : code(cs(i < 3 ? 'isi-alvorlighet' : i === 3 ? 'isi-tilfredshet' : 'isi-grad'), String(v)),
        ]),
      );
    expect(score(fillResponse(baseline, isi([4, 4, 3, 2, 1, 0, 4])), 'isi-sum')).toEqual([
      { valueInteger: 18 },
    ]);
    expect(score(fillResponse(baseline, isi([4, 4, 3, 2, 1, 0, null])), 'isi-sum')).toEqual([]);
  });

  it('PCS total is prorated with one item missing, absent with two; subscales need all their items', () => {
    const pcs = (values: (number | null)[]): Overrides =>
      Object.fromEntries(
        values.map((v, i) => [`pcs-${i + 1}`, v === null ? null : code(cs('pcs-skala'), String(v))]),
      );
    const full = [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2];
    expect(score(fillResponse(baseline, pcs(full)), 'pcs-total')).toEqual([{ valueInteger: 26 }]);
    const oneMissing = [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, null];
    expect(score(fillResponse(baseline, pcs(oneMissing)), 'pcs-total')).toEqual([{ valueInteger: 52 }]);
    expect(score(fillResponse(baseline, pcs(oneMissing)), 'pcs-forstorring')).toEqual([]);
    expect(score(fillResponse(baseline, pcs(oneMissing)), 'pcs-grubling')).toEqual([{ valueInteger: 16 }]);
    expect(score(fillResponse(baseline, pcs([...oneMissing.slice(0, 11), null, null])), 'pcs-total')).toEqual(
      [],
    );
  });

  it('BPI interference needs 4 of 7', () => {
    const bpi = (values: (number | null)[]): Overrides =>
      Object.fromEntries(values.map((v, i) => [`bpi-${i + 1}`, v === null ? null : [{ valueInteger: v }]]));
    expect(score(fillResponse(baseline, bpi([2, 4, 6, 8, null, null, null])), 'bpi-paavirkning')).toEqual([
      { valueDecimal: 5 },
    ]);
    expect(score(fillResponse(baseline, bpi([2, 4, 6, null, null, null, null])), 'bpi-paavirkning')).toEqual(
      [],
    );
  });

  it("overwrites a client's score, removes one that cannot be computed, inserts a missing one in order, and pins the version", () => {
    const qr = fillResponse(baseline, { 'isi-7': null });
    const isiGroup = qr.item?.find((i) => i.linkId === 'isi');
    isiGroup?.item?.push({ linkId: 'isi-sum', answer: [{ valueInteger: 3 }] });
    const hsclGroup = qr.item?.find((i) => i.linkId === 'hscl');
    hsclGroup?.item?.push({ linkId: 'hscl-25-total', answer: [{ valueDecimal: 1.0 }] });
    qr.questionnaire = baseline.url;
    const scored = applyScores(compiled, qr).response;
    expect(answersOf(scored, 'isi-sum')).toEqual([]);
    expect(scored.item?.find((i) => i.linkId === 'isi')?.item?.some((i) => i.linkId === 'isi-sum')).toBe(
      false,
    );
    expect(answersOf(scored, 'hscl-25-total')).not.toEqual([{ valueDecimal: 1.0 }]);
    const pcsIds = scored.item?.find((i) => i.linkId === 'pcs')?.item?.map((i) => i.linkId);
    expect(pcsIds?.slice(-4)).toEqual(['pcs-total', 'pcs-grubling', 'pcs-forstorring', 'pcs-hjelpeloshet']);
    expect(scored.questionnaire).toBe('https://norpain.no/fhir/Questionnaire/norpain-baseline|1.0.0');
    expect(qr.questionnaire).toBe(baseline.url); // the input is not modified
  });

  it('follow-up: PGIC responder; clinician: 12-month follow-up date from the end date', () => {
    const f = compileQuestionnaire(followup);
    const pgic = (c: string) =>
      answersOf(
        applyScores(f, fillResponse(followup, { 'pgic-global': code(cs('pgic'), c) })).response,
        'pgic-responder',
      );
    expect(pgic('2')).toEqual([{ valueBoolean: true }]);
    expect(pgic('3')).toEqual([{ valueBoolean: false }]);
    const c = compileQuestionnaire(clinician);
    const ended = fillResponse(clinician, {
      'forlop-avsluttet': [{ valueBoolean: true }],
      sluttdato: [{ valueDate: '2025-02-10' }],
      sluttarsak: code(cs('sluttarsak'), 'fullfort'),
    });
    expect(validateQuestionnaireResponse(c, ended)).toEqual([]);
    expect(answersOf(applyScores(c, ended).response, 'oppfolging-t12')).toEqual([
      { valueDate: '2026-02-10' },
    ]);
  });
});
