import { createHash } from 'node:crypto';
import type { Questionnaire, QuestionnaireItem } from '@medplum/fhirtypes';

/**
 * The agreement suite's own Questionnaire: one item for each kind of check the HL7 validator makes on a
 * QuestionnaireResponse (the NorPain Questionnaires have no quantity, attachment, reference, url or
 * external-ValueSet items). Stored in both servers under the same canonical.
 */
export const FORM_URL = 'https://norpain.no/fhir/test/Questionnaire/agreement';
export const CS = 'https://norpain.no/fhir/test/CodeSystem/agreement';
export const UCUM = 'http://unitsofmeasure.org';

export const ext = (name: string, value: Record<string, unknown>) => ({
  url: `http://hl7.org/fhir/StructureDefinition/${name}`,
  ...value,
});
export const sdc = (name: string, value: Record<string, unknown>) => ({
  url: `http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-${name}`,
  ...value,
});
const option = (code: string, display?: string) => ({
  valueCoding: { system: CS, code, ...(display ? { display } : {}) },
});
export const kg = (value: number) => ({ value, system: UCUM, code: 'kg', unit: 'kg' });

/**
 * Items of the kinds the NorPain Questionnaires lack, as the HL7 validator checks them: quantities with
 * limits and units, an attachment, and answer ValueSets from the FHIR definitions (one that needs a
 * terminology server). Shared with test/validation/hl7-parity.test.ts.
 */
export const typedAnswerItems: QuestionnaireItem[] = [
  {
    linkId: 'mass',
    text: 'Body weight',
    type: 'quantity',
    extension: [
      sdc('minQuantity', { valueQuantity: kg(20) }),
      sdc('maxQuantity', { valueQuantity: kg(300) }),
      ...['kg', 'g', '[lb_av]'].map((code) =>
        ext('questionnaire-unitOption', { valueCoding: { system: UCUM, code } }),
      ),
    ],
  },
  {
    linkId: 'height',
    text: 'Height',
    type: 'quantity',
    extension: [
      ext('questionnaire-unitValueSet', { valueCanonical: 'http://hl7.org/fhir/ValueSet/ucum-bodylength' }),
    ],
  },
  {
    linkId: 'photo',
    text: 'A photo',
    type: 'attachment',
    extension: [ext('mimeType', { valueCode: 'image/png' }), ext('maxSize', { valueDecimal: 10 })],
  },
  {
    linkId: 'gender',
    text: 'Gender',
    type: 'choice',
    answerValueSet: 'http://hl7.org/fhir/ValueSet/administrative-gender',
  },
  {
    linkId: 'condition',
    text: 'Condition',
    type: 'choice',
    answerValueSet: 'http://hl7.org/fhir/ValueSet/condition-code',
  },
];

const content: Pick<Questionnaire, 'contained' | 'item'> = {
  contained: [
    {
      resourceType: 'ValueSet',
      id: 'sides',
      status: 'active',
      compose: { include: [{ system: CS, concept: [{ code: 'left' }, { code: 'right' }] }] },
    },
  ],
  item: [
    {
      linkId: 'pain',
      text: 'Pain now (0-10)',
      type: 'integer',
      required: true,
      extension: [ext('minValue', { valueInteger: 0 }), ext('maxValue', { valueInteger: 10 })],
    },
    {
      linkId: 'sites',
      text: 'Where does it hurt?',
      type: 'choice',
      repeats: true,
      extension: [ext('questionnaire-maxOccurs', { valueInteger: 3 })],
      answerOption: [option('back'), option('neck'), option('head'), option('legs')],
    },
    {
      // questionnaire-minOccurs is for required items only (the extension's context invariant).
      linkId: 'triggers',
      text: 'What makes it worse? (at least two)',
      type: 'choice',
      required: true,
      repeats: true,
      extension: [ext('questionnaire-minOccurs', { valueInteger: 2 })],
      answerOption: [option('stress'), option('cold'), option('work'), option('sleep')],
    },
    { linkId: 'side', text: 'Which side?', type: 'choice', answerValueSet: '#sides' },
    {
      linkId: 'worked',
      text: 'Did you work last week?',
      type: 'boolean',
    },
    {
      linkId: 'hours',
      text: 'Hours worked',
      type: 'decimal',
      enableWhen: [{ question: 'worked', operator: '=', answerBoolean: true }],
      extension: [
        ext('maxDecimalPlaces', { valueInteger: 1 }),
        ext('minValue', { valueDecimal: 0 }),
        ext('maxValue', { valueDecimal: 80 }),
      ],
    },
    {
      linkId: 'note',
      text: 'Anything else',
      type: 'string',
      maxLength: 20,
      extension: [ext('minLength', { valueInteger: 2 }), ext('regex', { valueString: '[A-Za-z ]+' })],
    },
    {
      linkId: 'onset',
      text: 'When did it start?',
      type: 'date',
      extension: [ext('minValue', { valueDate: '1900-01-01' }), ext('maxValue', { valueDate: '2030-12-31' })],
    },
    {
      linkId: 'gp',
      text: 'Your GP',
      type: 'reference',
      extension: [ext('questionnaire-referenceResource', { valueCode: 'Practitioner' })],
    },
    { linkId: 'link', text: 'A link', type: 'url' },
    ...typedAnswerItems,
    {
      linkId: 'other',
      text: 'Other complaint',
      type: 'open-choice',
      answerOption: [option('fatigue'), option('sleep')],
    },
    {
      linkId: 'visits',
      text: 'Visits',
      type: 'group',
      repeats: true,
      item: [
        { linkId: 'visit-date', text: 'Date', type: 'date', required: true },
        { linkId: 'visit-kind', text: 'Kind', type: 'choice', answerOption: [option('gp'), option('er')] },
      ],
    },
    { linkId: 'info', text: 'Thank you', type: 'display' },
    {
      linkId: 'none',
      text: 'Other symptoms',
      type: 'choice',
      repeats: true,
      answerOption: [
        { ...option('nothing'), extension: [ext('questionnaire-optionExclusive', { valueBoolean: true })] },
        option('dizzy'),
        option('nausea'),
      ],
    },
  ],
};

/**
 * The form's version is a digest of its content, so a changed form is a new url|version: HAPI caches the
 * Questionnaires its validator has resolved, and a shared HAPI may hold an older form under the old one.
 */
export const FORM_VERSION = createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 12);

export const form: Questionnaire = {
  resourceType: 'Questionnaire',
  id: `norpain-agreement-${FORM_VERSION}`,
  url: FORM_URL,
  version: FORM_VERSION,
  status: 'active',
  ...content,
};
