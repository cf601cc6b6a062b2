import type {
  Extension,
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import fc from 'fast-check';
import {
  applyScores,
  compileQuestionnaire,
  readNorPainQuestionnaires,
  type CompiledItem,
} from '../../src/validation/questionnaire';
import { seededRandom } from '../../src/identity';
import { compileSubset } from '../../src/validation/questionnaire/fhirpath-subset';

/**
 * The compiled FHIRPath subset must give exactly what `fhirpath` gives: for random completed and partial
 * responses (including malformed answers the subset must hand over), the scored response and the issues
 * of the fast path equal those of the reference evaluation, and the input is left untouched.
 */

const CALCULATED = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression';
const VARIABLE = 'http://hl7.org/fhir/StructureDefinition/variable';

const variable = (name: string, expression: string): Extension => ({
  url: VARIABLE,
  valueExpression: { name, language: 'text/fhirpath', expression },
});
const calculated = (
  linkId: string,
  type: QuestionnaireItem['type'],
  expression: string,
): QuestionnaireItem => ({
  linkId,
  type,
  readOnly: true,
  extension: [{ url: CALCULATED, valueExpression: { language: 'text/fhirpath', expression } }],
});

const scale = [0, 1, 2, 3].map((n) => ({
  valueCoding: { system: 'http://loinc.org', code: `LA${6568 + n}-5`, display: `${n}` },
}));

/** A staff-loaded form like PHQ-2 (scored from %resource), with expressions beyond the NorPain ones. */
const staffForm: Questionnaire = {
  resourceType: 'Questionnaire',
  url: 'http://example.org/fhir/Questionnaire/phq-2-plus',
  version: '2024',
  status: 'active',
  extension: [
    variable('answered', "%resource.item.where(linkId in ('q1' | 'q2')).answer"),
    variable('numbers', "%resource.item.where(linkId in ('n1' | 'n2' | 'd1')).answer.value"),
  ],
  item: [
    { linkId: 'q1', type: 'choice', answerOption: scale },
    { linkId: 'q2', type: 'choice', answerOption: scale },
    { linkId: 'n1', type: 'integer' },
    { linkId: 'n2', type: 'integer', repeats: true },
    { linkId: 'd1', type: 'decimal' },
    { linkId: 's1', type: 'string' },
    calculated('answered-count', 'integer', '%answered.count()'),
    calculated('sum', 'decimal', '%numbers.sum()'),
    calculated('mean', 'decimal', 'iif(%numbers.exists(), %numbers.avg().round(1), 0)'),
    calculated('above', 'boolean', '%numbers.sum() / 2 > 1.5'),
    calculated('big', 'integer', '%numbers.where($this >= 2).count()'),
    calculated('both', 'boolean', 'not(%answered.empty()) and %numbers.exists() or %numbers.count() = 1'),
    calculated('diff', 'decimal', '(%numbers.sum() - 1) * 2'),
    calculated('first', 'decimal', '%numbers.first()'),
    calculated('echo', 'string', "item.where(linkId = 's1').answer.value"),
    calculated(
      'code-low',
      'boolean',
      "%answered.value.code.select($this = 'LA6568-5' or $this = 'LA6569-5')",
    ),
    calculated('has-two', 'boolean', "%answered.exists(value.code = 'LA6570-5')"),
    calculated('has-three', 'boolean', "item.answer.value.exists(code = 'LA6571-5')"),
    calculated('power', 'decimal', "(item.where(linkId = 'd1').answer.value / 10).power(2).round(3)"),
  ],
};

const forms: Questionnaire[] = [...readNorPainQuestionnaires(), staffForm];

/**
 * A response to `q`: mostly well-formed answers, with items left out (more often for a partial response),
 * and now and then what a careless client sends: a client-computed score, a Coding without code, a
 * number as text, an extension on a value, two answers, a repeated group.
 */
function respond(q: Questionnaire, seed: number, partial: boolean): QuestionnaireResponse {
  // The response generator's own random numbers, from one fast-check seed per run.
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const omit = partial ? 0.45 : 0.06;
  const answer = (item: QuestionnaireItem): QuestionnaireResponseItemAnswer => {
    if (rnd() < 0.04) {
      return pick<QuestionnaireResponseItemAnswer>([
        { valueCoding: { system: 'urn:x' } },
        { valueCoding: { code: '7' } },
        { valueString: '2' },
        { valueString: 'tekst' },
        { valueInteger: 3 },
        { valueDecimal: 2.5 },
        { valueBoolean: true },
        { valueDate: '2024-02-29' },
        { valueInteger: 2, _valueInteger: { extension: [] } } as QuestionnaireResponseItemAnswer,
        { valueCoding: { code: '1', _code: { id: 'x' } } } as QuestionnaireResponseItemAnswer,
      ]);
    }
    switch (item.type) {
      case 'choice':
      case 'open-choice':
        return item.answerOption?.length
          ? { valueCoding: pick(item.answerOption).valueCoding }
          : { valueCoding: { system: 'urn:oid:2.16.578.1.12.4.1.1.7110', code: 'M79.7' } };
      case 'integer':
        return { valueInteger: Math.floor(rnd() * 260) - 10 };
      case 'decimal':
        return { valueDecimal: Math.round(rnd() * 2500) / 10 };
      case 'boolean':
        return { valueBoolean: rnd() < 0.5 };
      case 'date':
        return {
          valueDate: `20${10 + Math.floor(rnd() * 15)}-0${1 + Math.floor(rnd() * 9)}-1${Math.floor(rnd() * 9)}`,
        };
      case 'dateTime':
        return { valueDateTime: '2024-03-01T10:00:00+01:00' };
      default:
        return { valueString: pick(['tekst', '12', '']) || 'x' };
    }
  };
  const fill = (items: QuestionnaireItem[] | undefined): QuestionnaireResponseItem[] => {
    const out: QuestionnaireResponseItem[] = [];
    for (const item of items ?? []) {
      if (item.type === 'display' || rnd() < omit) {
        continue;
      }
      if (item.readOnly) {
        if (rnd() < 0.3) {
          out.push({ linkId: item.linkId, answer: [{ valueDecimal: 99 }] }); // a client's own score
        }
        continue;
      }
      if (item.type === 'group') {
        const copies = rnd() < 0.03 ? 2 : 1;
        for (let i = 0; i < copies; i++) {
          const children = fill(item.item);
          if (children.length) {
            out.push({ linkId: item.linkId, text: item.text, item: children });
          }
        }
        continue;
      }
      const answers = [answer(item)];
      if (rnd() < 0.03) {
        answers.push(answer(item));
      }
      out.push({ linkId: item.linkId, answer: answers });
    }
    return out;
  };
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: `${q.url}|${q.version}`,
    status: partial ? 'in-progress' : 'completed',
    item: fill(q.item),
  };
}

/** JSON as stored: drops fhirpath's hidden metadata and undefined keys. */
const json = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe('the compiled FHIRPath subset gives the reference (fhirpath) scores', () => {
  const compiled = forms.map((q) => compileQuestionnaire(q));

  it.each(compiled.map((c) => [c.canonical, c] as const))(
    'random completed and partial responses to %s',
    (_name, c) => {
      fc.assert(
        fc.property(fc.integer(), fc.boolean(), (seed, partial) => {
          const response = respond(c.questionnaire, seed, partial);
          const before = json(response);
          const fast = applyScores(c, response);
          const reference = applyScores(c, response, { referenceOnly: true });
          expect(json(fast.response)).toEqual(json(reference.response));
          expect(fast.issues).toEqual(reference.issues);
          expect(json(response)).toEqual(before);
        }),
        { seed: 20250301, numRuns: 250 },
      );
    },
  );

  it('covers every NorPain scoring expression except date arithmetic', () => {
    const outside: string[] = [];
    for (const c of compiled.slice(0, -1)) {
      const visit = (def: CompiledItem): void => {
        for (const v of def.variables) {
          if (!v.constant && !v.expr.fast) outside.push(v.expr.expression);
        }
        if (def.calculated && !def.calculated.fast) outside.push(def.calculated.expression);
        def.children.forEach(visit);
      };
      visit(c.root);
    }
    expect(outside).toEqual(['iif(%sluttdato.exists(), %sluttdato + 12 months)']);
  });

  it('hands over what it does not cover', () => {
    expect(compileSubset("item.where(linkId = 'a').answer.value.first()")).toBeUndefined();
    expect(compileSubset('%date + 12 months')).toBeUndefined();
    expect(compileSubset("where(code = 'x')")).toBeUndefined(); // `code` at the start may be a type filter
    expect(compileSubset('item.where(linkId in %list).answer.value.code.select(toInteger())')).toBeDefined();
  });

  it('scores a completed baseline exactly as fhirpath does, and its missing-item rules leave scores out', () => {
    const baseline = compiled.find((c) => c.canonical.includes('norpain-baseline'));
    if (!baseline) throw new Error('baseline missing');
    const full = respond(baseline.questionnaire, 7, false);
    const scored = applyScores(baseline, full).response;
    expect(json(scored)).toEqual(json(applyScores(baseline, full, { referenceOnly: true }).response));
    // Without any HSCL answers the HSCL-25 rule (20 of 25) is not met: no score, fast or reference.
    const noHscl = { ...full, item: full.item?.filter((i) => i.linkId !== 'hscl') };
    const fast = applyScores(baseline, noHscl).response;
    const find = (r: QuestionnaireResponse, linkId: string): QuestionnaireResponseItem | undefined => {
      const walk = (items?: QuestionnaireResponseItem[]): QuestionnaireResponseItem | undefined => {
        for (const i of items ?? []) {
          const hit = i.linkId === linkId ? i : walk(i.item);
          if (hit) return hit;
        }
        return undefined;
      };
      return walk(r.item);
    };
    expect(find(fast, 'hscl-25-total')).toBeUndefined();
    expect(json(fast)).toEqual(json(applyScores(baseline, noHscl, { referenceOnly: true }).response));
  });
});
