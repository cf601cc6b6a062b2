import { createHash } from 'node:crypto';
import type {
  Questionnaire,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import { CS, form, FORM_URL, FORM_VERSION, kg, UCUM } from './form';
import type { Known } from './known';

/** One QuestionnaireResponse both validators judge; `known` names a documented disagreement. */
export interface Case {
  name: string;
  /** The check it exercises, for the per-check table. */
  check: string;
  response: QuestionnaireResponse;
  known?: Known;
}

type Answer = QuestionnaireResponseItemAnswer;
const a = (linkId: string, ...answer: Answer[]): QuestionnaireResponseItem => ({ linkId, answer });
const code = (c: string, display?: string): Answer => ({
  valueCoding: { system: CS, code: c, ...(display ? { display } : {}) },
});
const pain = (n = 4) => a('pain', { valueInteger: n });
const sites = (...codes: string[]) => a('sites', ...(codes.length ? codes : ['back']).map((c) => code(c)));
const triggers = (...codes: string[]) =>
  a('triggers', ...(codes.length ? codes : ['stress', 'cold', 'work']).map((c) => code(c)));
const gender = (c: string, display?: string) =>
  a('gender', { valueCoding: { system: 'http://hl7.org/fhir/administrative-gender', code: c, display } });
const condition = (system: string, c: string) => a('condition', { valueCoding: { system, code: c } });
const bytes = (n: number) => Buffer.alloc(n).toString('base64');

/**
 * A response to the agreement form: `head` (by default the required pain score and a site), the two
 * three triggers the form requires (at least two) unless `head` names them, then `items`.
 */
function qr(
  items: QuestionnaireResponseItem[] = [],
  head: QuestionnaireResponseItem[] = [pain(), sites()],
  status: QuestionnaireResponse['status'] = 'completed',
): QuestionnaireResponse {
  return {
    resourceType: 'QuestionnaireResponse',
    questionnaire: `${FORM_URL}|${FORM_VERSION}`,
    status,
    item: [...head, ...(head.some((i) => i.linkId === 'triggers') ? [] : [triggers()]), ...items],
  };
}

const c = (check: string, name: string, response: QuestionnaireResponse, known?: Known): Case => ({
  check,
  name,
  response,
  ...(known ? { known } : {}),
});

/** The agreement form without what a contained resource may not have (its own contained ValueSet). */
const containedForm: Questionnaire = {
  resourceType: 'Questionnaire',
  id: 'form',
  status: 'active',
  item: form.item?.filter((i) => ['pain', 'sites', 'triggers'].includes(i.linkId)),
};

/** Hand-written cases: each check the HL7 validator makes, taken and broken. */
export const handWritten: Case[] = [
  c('valid', 'the two required answers', qr()),
  c(
    'valid',
    'every item answered',
    qr([
      a('side', { valueCoding: { system: CS, code: 'left' } }),
      a('worked', { valueBoolean: true }),
      a('hours', { valueDecimal: 37.5 }),
      a('note', { valueString: 'Bad days' }),
      a('onset', { valueDate: '2020-05-01' }),
      a('gp', { valueReference: { reference: 'Practitioner/p1' } }),
      a('link', { valueUri: 'https://example.org/a' }),
      a('mass', { valueQuantity: kg(20) }), // the minimum: HAPI 8.8 refuses any more (quantityMinInverted)
      a('height', { valueQuantity: { value: 170, system: UCUM, code: 'cm', unit: 'cm' } }),
      a('photo', { valueAttachment: { contentType: 'image/png', data: bytes(3) } }),
      gender('female'),
      a('other', { valueString: 'headache' }),
      { linkId: 'visits', item: [a('visit-date', { valueDate: '2024-01-02' }), a('visit-kind', code('gp'))] },
      { linkId: 'visits', item: [a('visit-date', { valueDate: '2024-02-03' })] },
      a('none', code('dizzy'), code('nausea')),
    ]),
  ),
  c('valid', 'in progress without the required pain score', qr([], [sites()], 'in-progress')),

  c('linkId', 'an unknown linkId', qr([a('nope', { valueString: 'x' })])),
  c(
    'linkId',
    'an item nested where the Questionnaire does not put it',
    qr([
      {
        linkId: 'visits',
        item: [a('visit-date', { valueDate: '2024-01-02' }), a('pain', { valueInteger: 1 })],
      },
    ]),
  ),
  c('order', 'items out of order', qr([], [sites(), pain()])),
  c('required', 'the required pain score missing', qr([], [sites()])),
  c(
    'required',
    'a required item inside a group missing',
    qr([{ linkId: 'visits', item: [a('visit-kind', code('er'))] }]),
  ),
  c('required', 'a required question with an empty answer list', qr([], [{ linkId: 'pain' }, sites()])),
  c('type', 'a string answer to an integer question', qr([], [a('pain', { valueString: '4' }), sites()])),
  c('type', 'a decimal answer to an integer question', qr([], [a('pain', { valueDecimal: 4.5 }), sites()])),
  c('type', 'an integer answer to a boolean question', qr([a('worked', { valueInteger: 1 })])),
  c('type', 'a Coding answer to a date question', qr([a('onset', code('back'))])),
  c(
    'repeats',
    'two answers to a question that does not repeat',
    qr([], [a('pain', { valueInteger: 1 }, { valueInteger: 2 }), sites()]),
  ),
  c('repeats', 'a question given as two items', qr([], [pain(), sites('back'), sites('neck')])),
  c(
    'repeats',
    'a repeating group given twice',
    qr([
      { linkId: 'visits', item: [a('visit-date', { valueDate: '2024-01-02' })] },
      { linkId: 'visits', item: [a('visit-date', { valueDate: '2024-01-03' })] },
    ]),
  ),
  c('options', 'a code that is not an option', qr([], [pain(), sites('arms')])),
  c(
    'options',
    'a code from another system',
    qr([], [pain(), a('sites', { valueCoding: { system: 'http://example.org/x', code: 'back' } })]),
  ),
  c(
    'options',
    'a member of the contained ValueSet',
    qr([a('side', { valueCoding: { system: CS, code: 'right' } })]),
  ),
  c(
    'options',
    'a code outside the contained ValueSet',
    qr([a('side', { valueCoding: { system: CS, code: 'middle' } })]),
    'containedValueSetCrash',
  ),
  c('options', 'open-choice free text', qr([a('other', { valueString: 'itching' })])),
  c('options', 'open-choice code that is no option', qr([a('other', code('itching'))])),
  c(
    'codings',
    'a Coding answer without a system',
    qr([], [pain(), a('sites', { valueCoding: { code: 'back' } })]),
  ),
  c('codings', 'an option with a display', qr([], [pain(), a('sites', code('back', 'Back'))])),
  c('exclusive', 'an exclusive option alone', qr([a('none', code('nothing'))])),
  c('exclusive', 'an exclusive option with another answer', qr([a('none', code('nothing'), code('dizzy'))])),
  c('minOccurs', 'one trigger (minOccurs 2)', qr([], [pain(), sites(), triggers('stress')])),
  c(
    'minOccurs',
    'three triggers (minOccurs 2)',
    qr([], [pain(), sites(), triggers('stress', 'cold', 'work')]),
  ),
  c(
    'minOccurs',
    'two triggers (minOccurs 2)',
    qr([], [pain(), sites(), triggers('stress', 'cold')]),
    'occursBoundsExclusive',
  ),
  c('maxOccurs', 'two sites (maxOccurs 3)', qr([], [pain(), sites('back', 'neck')])),
  c(
    'maxOccurs',
    'three sites (maxOccurs 3)',
    qr([], [pain(), sites('back', 'neck', 'head')]),
    'occursBoundsExclusive',
  ),
  c('maxOccurs', 'four sites (maxOccurs 3)', qr([], [pain(), sites('back', 'neck', 'head', 'legs')])),
  c('min/max', 'the pain score at its maximum', qr([], [pain(10), sites()])),
  c('min/max', 'the pain score above its maximum', qr([], [pain(11), sites()])),
  c('min/max', 'the pain score below its minimum', qr([], [pain(-1), sites()])),
  c(
    'min/max',
    'hours above the decimal maximum',
    qr([a('worked', { valueBoolean: true }), a('hours', { valueDecimal: 81 })]),
  ),
  c('min/max', 'a date before the minimum', qr([a('onset', { valueDate: '1899-12-31' })])),
  c('min/max', 'a date after the maximum', qr([a('onset', { valueDate: '2031-01-01' })])),
  c(
    'decimals',
    'hours with one decimal place',
    qr([a('worked', { valueBoolean: true }), a('hours', { valueDecimal: 7.5 })]),
  ),
  c(
    'decimals',
    'hours with two decimal places',
    qr([a('worked', { valueBoolean: true }), a('hours', { valueDecimal: 7.25 })]),
  ),
  c('lengths', 'a note at its maximum length', qr([a('note', { valueString: 'A'.repeat(20) })])),
  c('lengths', 'a note too long', qr([a('note', { valueString: 'A'.repeat(21) })])),
  c('lengths', 'a note too short', qr([a('note', { valueString: 'A' })])),
  c('regex', 'a note that does not match the pattern', qr([a('note', { valueString: 'Bad 42' })])),
  c(
    'enableWhen',
    'hours answered while work was answered no',
    qr([a('worked', { valueBoolean: false }), a('hours', { valueDecimal: 8 })]),
  ),
  c('enableWhen', 'hours answered without the work question', qr([a('hours', { valueDecimal: 8 })])),
  c(
    'groups',
    'an answer on a group',
    qr([
      {
        linkId: 'visits',
        answer: [{ valueString: 'x' }],
        item: [a('visit-date', { valueDate: '2024-01-02' })],
      },
    ]),
  ),
  c('groups', 'an answer on a display item', qr([a('info', { valueString: 'x' })])),
  c(
    'groups',
    'items nested under a question item',
    qr([{ ...a('worked', { valueBoolean: true }), item: [a('hours', { valueDecimal: 1 })] }]),
  ),
  c(
    'referenceResource',
    'a reference to a Practitioner',
    qr([a('gp', { valueReference: { reference: 'Practitioner/p1' } })]),
  ),
  c(
    'referenceResource',
    'a reference to an Organization',
    qr([a('gp', { valueReference: { reference: 'Organization/o1' } })]),
    'referenceResourceUnchecked',
  ),
  c('uri', 'a urn:uuid', qr([a('link', { valueUri: 'urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301' })])),
  c(
    'uri',
    'an upper-case urn:uuid',
    qr([a('link', { valueUri: 'urn:uuid:3F2504E0-4F89-41D3-9A0C-0305E82C3301' })]),
  ),
  c('uri', 'a malformed urn:oid', qr([a('link', { valueUri: 'urn:oid:2.016.578' })])),
  c('item text', "the Questionnaire's item text", qr([], [{ ...pain(), text: 'Pain now (0-10)' }, sites()])),
  c(
    'item text',
    'an item text that differs',
    qr([], [{ ...pain(), text: 'Pain' }, sites()]),
    'itemTextWarning',
  ),

  c(
    'quantity',
    'a weight within the limits',
    qr([a('mass', { valueQuantity: kg(70) })]),
    'quantityMinInverted',
  ),
  c('quantity', 'a weight at the minimum', qr([a('mass', { valueQuantity: kg(20) })])),
  c(
    'quantity',
    'a weight below the minimum',
    qr([a('mass', { valueQuantity: kg(10) })]),
    'quantityMinInverted',
  ),
  c('quantity', 'a weight above the maximum', qr([a('mass', { valueQuantity: kg(400) })])),
  c(
    'quantity',
    'a weight in grams within the limits',
    qr([a('mass', { valueQuantity: { value: 70000, system: UCUM, code: 'g', unit: 'g' } })]),
    'noUcum',
  ),
  c(
    'quantity',
    'a weight in grams below the minimum',
    qr([a('mass', { valueQuantity: { value: 700, system: UCUM, code: 'g', unit: 'g' } })]),
  ),
  c(
    'quantity',
    'a weight in metres',
    qr([a('mass', { valueQuantity: { value: 70, system: UCUM, code: 'm', unit: 'm' } })]),
  ),
  c(
    'quantity',
    'a weight without a coded unit',
    qr([a('mass', { valueQuantity: { value: 70, unit: 'kg' } })]),
  ),
  c(
    'unitValueSet',
    'a height in centimetres',
    qr([a('height', { valueQuantity: { value: 170, system: UCUM, code: 'cm' } })]),
  ),
  c(
    'unitValueSet',
    'a height in kilograms',
    qr([a('height', { valueQuantity: { value: 170, system: UCUM, code: 'kg' } })]),
  ),

  c(
    'attachment',
    'a png within the size',
    qr([a('photo', { valueAttachment: { contentType: 'image/png', data: bytes(9) } })]),
  ),
  c(
    'attachment',
    'a png of exactly maxSize',
    qr([a('photo', { valueAttachment: { contentType: 'image/png', data: bytes(10) } })]),
    'maxSizeInclusive',
  ),
  c(
    'attachment',
    'a png over the size',
    qr([a('photo', { valueAttachment: { contentType: 'image/png', data: bytes(12) } })]),
  ),
  c(
    'attachment',
    'a jpeg',
    qr([a('photo', { valueAttachment: { contentType: 'image/jpeg', data: bytes(3) } })]),
  ),
  c('attachment', 'no content type', qr([a('photo', { valueAttachment: { data: bytes(3) } })])),
  c(
    'attachment',
    'a stated size that is not the data',
    qr([a('photo', { valueAttachment: { contentType: 'image/png', data: bytes(3), size: 7 } })]),
  ),
  c(
    'attachment',
    'a stated size that is the data',
    qr([a('photo', { valueAttachment: { contentType: 'image/png', data: bytes(3), size: 3 } })]),
  ),
  c(
    'attachment',
    'a hash that is not the data',
    qr([
      a('photo', {
        valueAttachment: {
          contentType: 'image/png',
          data: bytes(3),
          hash: Buffer.alloc(20).toString('base64'),
        },
      }),
    ]),
  ),
  c(
    'attachment',
    'a hash that is the data',
    qr([
      a('photo', {
        valueAttachment: {
          contentType: 'image/png',
          data: bytes(3),
          hash: createHash('sha1').update(Buffer.alloc(3)).digest('base64'),
        },
      }),
    ]),
  ),
  c(
    'attachment',
    'a large file by url only',
    qr([
      a('photo', {
        valueAttachment: { contentType: 'image/png', url: 'https://example.org/a.png', size: 100 },
      }),
    ]),
    'maxSizeStated',
  ),

  c('valueSet', 'a member of a FHIR ValueSet', qr([gender('male')])),
  c('valueSet', 'a code outside a FHIR ValueSet', qr([gender('man')])),
  c(
    'valueSet',
    'a code from a system the FHIR ValueSet does not use',
    qr([a('gender', { valueCoding: { system: 'http://example.org/x', code: 'male' } })]),
  ),
  c(
    'valueSet',
    'a SNOMED CT code for a ValueSet that needs a terminology server',
    qr([condition('http://snomed.info/sct', '22253000')]),
    'noTerminologyServer',
  ),
  c(
    'valueSet',
    'a code from another system for a SNOMED CT ValueSet',
    qr([condition('http://example.org/x', '1')]),
  ),
  c('display', 'the display of a FHIR code', qr([gender('male', 'Male')])),
  c('display', 'a wrong display of a FHIR code (a warning)', qr([gender('male', 'Mann')])),

  c('questionnaire', 'an unresolvable Questionnaire', {
    ...qr(),
    questionnaire: 'https://norpain.no/fhir/Questionnaire/never-loaded|1',
  }),
  c(
    'questionnaire',
    'a Questionnaire contained in the response',
    {
      ...qr(),
      questionnaire: '#form',
      contained: [containedForm],
    },
    'containedRefused',
  ),
  c(
    'questionnaire',
    'an invalid response to a contained Questionnaire',
    {
      ...qr([], [pain(11), sites()]),
      questionnaire: '#form',
      contained: [containedForm],
    },
    'containedRefused',
  ),
  c('status', 'a status that is not a QuestionnaireResponse status', {
    ...qr(),
    status: 'done' as 'completed',
  }),
];
