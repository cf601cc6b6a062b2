import fs from 'node:fs';
import path from 'node:path';
import { getAllDataTypes, OperationOutcomeError, validateResource } from '@medplum/core';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { FhirError } from '../../src/fhir/outcomes';
import type { IngestContext, Write } from '../../src/ingest/write';
import {
  DEFAULT_PROFILES_DIR,
  loadNorPainProfiles,
  NORPAIN_PROFILES,
  profileFor,
  profileIssues,
  validateAgainstProfile,
  validateProfilesAsReceived,
  validatePseudonymisedProfiles,
} from '../../src/validation/profiles';

/** The synthetic examples SUSHI compiled from profiles/input/fsh/examples.fsh. */
function example<T extends Resource>(file: string): T {
  return JSON.parse(fs.readFileSync(path.join(DEFAULT_PROFILES_DIR, file), 'utf8')) as T;
}
const patient = example<Resource & Record<string, unknown>>('Patient-norpain-patient-example.json');
const episode = example<Resource & Record<string, unknown>>(
  'EpisodeOfCare-norpain-episodeofcare-example.json',
);
const response = example<Resource & Record<string, unknown>>(
  'QuestionnaireResponse-norpain-questionnaireresponse-example.json',
);
const reservation = example<Resource & Record<string, unknown>>('Consent-norpain-reservation-example.json');
const study = example<Resource & Record<string, unknown>>(
  'ResearchStudy-norpain-researchstudy-approval-example.json',
);

const REFERRAL = 'https://norpain.no/fhir/StructureDefinition/referral-date';
const RIGHT_TO_CARE = 'https://norpain.no/fhir/StructureDefinition/right-to-care';
const FNR = 'urn:oid:2.16.578.1.12.4.1.4.1';
const SYNTHETIC_FNR = '10915596784';
const municipality = (code: string) => ({
  extension: [
    {
      url: 'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode',
      valueCoding: {
        system: 'https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle',
        code,
      },
    },
  ],
});
const rightToCare = (decision: string) => ({
  url: RIGHT_TO_CARE,
  extension: [
    {
      url: 'decision',
      valueCoding: { system: 'https://norpain.no/fhir/CodeSystem/right-to-care-decision', code: decision },
    },
    { url: 'date', valueDate: '2024-02-01' },
  ],
});

function rejection(resource: Resource): FhirError {
  try {
    validateAgainstProfile(resource);
  } catch (err) {
    if (err instanceof FhirError) {
      return err;
    }
    throw err;
  }
  throw new Error('expected the resource to be rejected');
}

beforeAll(() => loadNorPainProfiles());

describe('loading', () => {
  test('each profiled type has its NorPain profile, with a snapshot', () => {
    for (const [type, url] of Object.entries(NORPAIN_PROFILES)) {
      const sd = profileFor(type);
      expect(sd?.url).toBe(url);
      expect(sd?.snapshot?.element?.length).toBeGreaterThan(10);
    }
    expect(profileFor('Encounter')).toBeUndefined();
  });

  test('the pre-parsed profiles are not listed as resource types', () => {
    const resourceKinds = Object.values(getAllDataTypes())
      .filter((schema) => schema.kind === 'resource')
      .map((schema) => schema.name);
    expect(resourceKinds).toContain('Patient');
    expect(resourceKinds.filter((name) => name.startsWith('NorPain') || name.includes('/'))).toEqual([]);
  });
});

interface Case {
  name: string;
  resource: Resource;
  expression: string;
  text: string;
}

const accepted: [string, Resource][] = [
  ['Patient example', patient],
  [
    'Patient with the pseudonym only',
    { resourceType: 'Patient', identifier: patient.identifier } as Resource,
  ],
  [
    'Patient with deceasedDateTime as year and month',
    { ...patient, deceasedDateTime: '2023-11' } as Resource,
  ],
  ['EpisodeOfCare example', episode],
  [
    'EpisodeOfCare on the waiting list, before its start and decision',
    {
      ...episode,
      status: 'waitlist',
      period: undefined,
      extension: [episode.extension as unknown[]][0].slice(0, 1),
    } as Resource,
  ],
  ['QuestionnaireResponse example', response],
  [
    'QuestionnaireResponse in progress, without authored, subject by identifier (as the portal sends it)',
    {
      ...response,
      status: 'in-progress',
      authored: undefined,
      questionnaire: 'https://norpain.no/fhir/Questionnaire/norpain-baseline',
      subject: { identifier: { system: FNR, value: SYNTHETIC_FNR } },
    } as Resource,
  ],
  ['Consent (reservation) example', reservation],
  ['Consent withdrawing a reservation', { ...reservation, status: 'inactive' } as Resource],
  [
    'Consent with scope research and a D-number',
    {
      ...reservation,
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] },
      patient: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.2', value: '50915596784' } },
    } as Resource,
  ],
  ['ResearchStudy approval example', study],
];

const rejected: Case[] = [
  // Patient (pseudonymised)
  {
    name: 'Patient with a full birth date',
    resource: { ...patient, birthDate: '1981-04-12' } as Resource,
    expression: 'Patient.birthDate',
    text: 'norpain-pat-2',
  },
  {
    name: 'Patient with a name',
    resource: { ...patient, name: [{ family: 'Nordmann' }] } as Resource,
    expression: 'Patient.name',
    text: 'expected 0..0',
  },
  {
    name: 'Patient with a national id',
    resource: { ...patient, identifier: [{ system: FNR, value: SYNTHETIC_FNR }] } as Resource,
    expression: 'Patient.identifier.system',
    text: 'pattern',
  },
  {
    name: 'Patient whose pseudonym is a national id',
    resource: {
      ...patient,
      identifier: [
        { system: 'https://norpain.no/fhir/NamingSystem/registry-pseudonym', value: SYNTHETIC_FNR },
      ],
    } as Resource,
    expression: 'Patient.identifier[0]',
    text: 'norpain-pat-1',
  },
  {
    name: 'Patient with two identifiers',
    resource: {
      ...patient,
      identifier: [...(patient.identifier as unknown[]), ...(patient.identifier as unknown[])],
    } as Resource,
    expression: 'Patient.identifier',
    text: 'expected 1..1',
  },
  {
    name: 'Patient without identifier',
    resource: { ...patient, identifier: undefined } as Resource,
    expression: 'Patient.identifier',
    text: 'Missing required property',
  },
  {
    name: 'Patient with telecom',
    resource: { ...patient, telecom: [{ system: 'phone', value: '+4799999999' }] } as Resource,
    expression: 'Patient.telecom',
    text: 'expected 0..0',
  },
  {
    name: 'Patient with a photo',
    resource: { ...patient, photo: [{ contentType: 'image/png' }] } as Resource,
    expression: 'Patient.photo',
    text: 'expected 0..0',
  },
  {
    name: 'Patient with a contact',
    resource: { ...patient, contact: [{ relationship: [{ text: 'mor' }] }] } as Resource,
    expression: 'Patient.contact',
    text: 'expected 0..0',
  },
  {
    name: 'Patient with a street address',
    resource: { ...patient, address: [{ line: ['Storgata 1'] }] } as Resource,
    expression: 'Patient.address.line',
    text: 'expected 0..0',
  },
  {
    name: 'Patient with a postal code',
    resource: { ...patient, address: [{ postalCode: '7030' }] } as Resource,
    expression: 'Patient.address.postalCode',
    text: 'expected 0..0',
  },
  {
    name: 'Patient with a five-digit municipality code',
    resource: {
      ...patient,
      address: [{ district: 'Trondheim', _district: municipality('50011') }],
    } as Resource,
    expression: 'Patient.address[0]',
    text: 'norpain-pat-4',
  },
  {
    name: 'Patient with a good and a bad municipality code on one address',
    resource: {
      ...patient,
      address: [
        {
          district: 'Trondheim',
          _district: { extension: [...municipality('5001').extension, ...municipality('TRD').extension] },
        },
      ],
    } as Resource,
    expression: 'Patient.address[0]',
    text: 'norpain-pat-4',
  },
  {
    name: 'Patient with a full date of death',
    resource: { ...patient, deceasedDateTime: '2023-11-02' } as Resource,
    expression: 'Patient.deceased[x]',
    text: 'norpain-pat-3',
  },
  {
    name: 'Patient with a narrative',
    resource: {
      ...patient,
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Kari</div>' },
    } as Resource,
    expression: 'Patient.text',
    text: 'expected 0..0',
  },
  // EpisodeOfCare
  {
    name: 'EpisodeOfCare without referral date',
    resource: { ...episode, extension: [rightToCare('granted')] } as Resource,
    expression: 'EpisodeOfCare.extension',
    text: "slice 'referralDate'",
  },
  {
    name: 'EpisodeOfCare with a referral date that is not a date',
    resource: { ...episode, extension: [{ url: REFERRAL, valueString: 'januar' }] } as Resource,
    expression: 'EpisodeOfCare.extension[0]',
    text: 'norpain-eoc-5',
  },
  {
    name: 'EpisodeOfCare with an unknown right-to-care decision',
    resource: {
      ...episode,
      extension: [{ url: REFERRAL, valueDate: '2024-01-15' }, rightToCare('maybe')],
    } as Resource,
    expression: 'EpisodeOfCare.extension[1]',
    text: 'norpain-eoc-6',
  },
  {
    name: 'EpisodeOfCare with a right-to-care decision without date',
    resource: {
      ...episode,
      extension: [
        { url: REFERRAL, valueDate: '2024-01-15' },
        { url: RIGHT_TO_CARE, extension: [rightToCare('granted').extension[0]] },
      ],
    } as Resource,
    expression: 'EpisodeOfCare.extension[1]',
    text: 'norpain-eoc-6',
  },
  {
    name: 'EpisodeOfCare with two right-to-care decisions',
    resource: {
      ...episode,
      extension: [
        { url: REFERRAL, valueDate: '2024-01-15' },
        rightToCare('granted'),
        rightToCare('not-granted'),
      ],
    } as Resource,
    expression: 'EpisodeOfCare',
    text: 'norpain-eoc-7',
  },
  {
    name: 'EpisodeOfCare decided before the referral came',
    resource: {
      ...episode,
      extension: [{ url: REFERRAL, valueDate: '2024-03-01' }, rightToCare('granted')],
      period: { start: '2024-03-04', end: '2024-09-30' },
    } as Resource,
    expression: 'EpisodeOfCare',
    text: 'norpain-eoc-4',
  },
  {
    name: 'EpisodeOfCare starting before the referral came',
    resource: { ...episode, status: 'active', period: { start: '2024-01-10' } } as Resource,
    expression: 'EpisodeOfCare',
    text: 'norpain-eoc-3',
  },
  {
    name: 'EpisodeOfCare finished without end',
    resource: { ...episode, period: { start: '2024-03-04' } } as Resource,
    expression: 'EpisodeOfCare',
    text: 'norpain-eoc-2',
  },
  {
    name: 'EpisodeOfCare active without start',
    resource: { ...episode, status: 'active', period: undefined } as Resource,
    expression: 'EpisodeOfCare',
    text: 'norpain-eoc-1',
  },
  {
    name: 'EpisodeOfCare without managing unit',
    resource: { ...episode, managingOrganization: undefined } as Resource,
    expression: 'EpisodeOfCare.managingOrganization',
    text: 'Missing required property',
  },
  {
    name: 'EpisodeOfCare whose unit is not given by RESH-id',
    resource: {
      ...episode,
      managingOrganization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.101', value: '974749025' } },
    } as Resource,
    expression: 'EpisodeOfCare.managingOrganization.identifier.system',
    text: 'pattern',
  },
  {
    name: 'EpisodeOfCare whose unit is a reference only',
    resource: { ...episode, managingOrganization: { reference: 'Organization/1' } } as Resource,
    expression: 'EpisodeOfCare.managingOrganization.identifier',
    text: 'Missing required property',
  },
  // QuestionnaireResponse
  {
    name: 'QuestionnaireResponse without questionnaire',
    resource: { ...response, questionnaire: undefined } as Resource,
    expression: 'QuestionnaireResponse.questionnaire',
    text: 'Missing required property',
  },
  {
    name: 'QuestionnaireResponse without subject',
    resource: { ...response, subject: undefined } as Resource,
    expression: 'QuestionnaireResponse.subject',
    text: 'Missing required property',
  },
  {
    name: 'QuestionnaireResponse with status stopped',
    resource: { ...response, status: 'stopped' } as Resource,
    expression: 'QuestionnaireResponse',
    text: 'norpain-qr-1',
  },
  // Consent (reservation)
  {
    name: 'Consent in draft',
    resource: { ...reservation, status: 'draft' } as Resource,
    expression: 'Consent',
    text: 'norpain-res-1',
  },
  {
    name: 'Consent with scope treatment',
    resource: {
      ...reservation,
      scope: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'treatment' }],
      },
    } as Resource,
    expression: 'Consent',
    text: 'norpain-res-2',
  },
  {
    name: 'Consent with another category',
    resource: {
      ...reservation,
      category: [{ coding: [{ system: 'http://loinc.org', code: '64292-6' }] }],
    } as Resource,
    expression: 'Consent',
    text: 'norpain-res-4',
  },
  {
    name: 'Consent that permits',
    resource: { ...reservation, provision: { type: 'permit' } } as Resource,
    expression: 'Consent',
    text: 'norpain-res-5',
  },
  {
    name: 'Consent without provision',
    resource: { ...reservation, provision: undefined } as Resource,
    expression: 'Consent.provision',
    text: 'Missing required property',
  },
  {
    name: 'Consent pointing at a Patient resource',
    resource: { ...reservation, patient: { reference: 'Patient/123' } } as Resource,
    expression: 'Consent.patient.reference',
    text: 'expected 0..0',
  },
  {
    name: 'Consent identifying the person by HPR number',
    resource: {
      ...reservation,
      patient: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.4', value: SYNTHETIC_FNR } },
    } as Resource,
    expression: 'Consent.patient.identifier',
    text: 'norpain-res-3',
  },
  {
    name: 'Consent with a malformed national id',
    resource: { ...reservation, patient: { identifier: { system: FNR, value: '1091559678' } } } as Resource,
    expression: 'Consent.patient.identifier',
    text: 'norpain-res-3',
  },
  {
    name: 'Consent with another legal basis',
    resource: {
      ...reservation,
      policyRule: {
        coding: [
          { system: 'http://hl7.no/fhir/CodeSystem/no-basis-legal-formality-or-basis', code: 'PBRL5-3' },
        ],
      },
    } as Resource,
    expression: 'Consent.policyRule',
    text: 'pattern',
  },
  {
    name: 'Consent without date',
    resource: { ...reservation, dateTime: undefined } as Resource,
    expression: 'Consent.dateTime',
    text: 'Missing required property',
  },
  // ResearchStudy approval
  {
    name: 'ResearchStudy without approved variables',
    resource: {
      ...study,
      extension: (study.extension as { url: string }[]).filter((e) => !e.url.endsWith('approved-variable')),
    } as Resource,
    expression: 'ResearchStudy.extension',
    text: "slice 'approvedVariable'",
  },
  {
    name: 'ResearchStudy without date precision',
    resource: {
      ...study,
      extension: (study.extension as { url: string }[]).filter((e) => !e.url.endsWith('date-precision')),
    } as Resource,
    expression: 'ResearchStudy.extension',
    text: "slice 'datePrecision'",
  },
  {
    name: 'ResearchStudy with date precision hour',
    resource: {
      ...study,
      extension: (study.extension as { url: string }[]).map((e) =>
        e.url.endsWith('date-precision') ? { ...e, valueCode: 'hour' } : e,
      ),
    } as Resource,
    expression: `ResearchStudy.extension[${(study.extension as { url: string }[]).findIndex((e) => e.url.endsWith('date-precision'))}]`,
    text: 'norpain-rs-3',
  },
  {
    name: 'ResearchStudy without approval period end',
    resource: { ...study, period: { start: '2025-01-01' } } as Resource,
    expression: 'ResearchStudy.period.end',
    text: 'Missing required property',
  },
  {
    name: 'ResearchStudy whose approval ends before it starts',
    resource: { ...study, period: { start: '2025-01-01', end: '2024-12-31' } } as Resource,
    expression: 'ResearchStudy',
    text: 'norpain-rs-1',
  },
  {
    name: 'ResearchStudy without case number',
    resource: { ...study, identifier: undefined } as Resource,
    expression: 'ResearchStudy.identifier',
    text: 'Missing required property',
  },
  {
    name: 'ResearchStudy without title',
    resource: { ...study, title: undefined } as Resource,
    expression: 'ResearchStudy.title',
    text: 'Missing required property',
  },
];

describe('accepts conforming resources', () => {
  test.each(accepted)('%s', (_name, resource) => {
    expect(profileIssues(resource).filter((i) => i.severity === 'error')).toEqual([]);
    expect(() => validateAgainstProfile(resource)).not.toThrow();
  });
});

describe('refuses non-conforming resources with 422 and the offending expression', () => {
  test.each(rejected.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const err = rejection(c.resource);
    expect(err.status).toBe(422);
    const issues = err.outcome.issue ?? [];
    expect(issues.every((i) => i.severity === 'error')).toBe(true);
    expect(issues).toContainEqual(
      expect.objectContaining({
        expression: [c.expression],
        details: { text: expect.stringContaining(c.text) },
      }),
    );
    // The OperationOutcome names the profile, carries no internal diagnostics, and never echoes a national id.
    expect(issues[0].details?.text).toContain(
      NORPAIN_PROFILES[c.resource.resourceType as keyof typeof NORPAIN_PROFILES],
    );
    expect(issues.some((i) => i.diagnostics !== undefined)).toBe(false);
    expect(JSON.stringify(err.outcome)).not.toContain(SYNTHETIC_FNR);
  });
});

describe('the pre-parsed profile gives what @medplum/core gives when it parses the profile itself', () => {
  const medplumIssues = (resource: Resource): OperationOutcomeIssue[] => {
    try {
      return validateResource(resource, { profile: profileFor(resource.resourceType) });
    } catch (err) {
      if (err instanceof OperationOutcomeError) {
        return err.outcome.issue ?? [];
      }
      throw err;
    }
  };
  const strip = (issues: OperationOutcomeIssue[]) =>
    issues.map((i) => ({ severity: i.severity, code: i.code, expression: i.expression }));
  test.each([...accepted, ...rejected.map((c): [string, Resource] => [c.name, c.resource])])(
    '%s',
    (_name, resource) => {
      expect(strip(profileIssues(resource))).toEqual(strip(medplumIssues(resource)));
    },
  );
});

describe('ingest stages', () => {
  const ctx = {} as IngestContext;
  const write = (...resources: Resource[]): Write => ({
    transaction: resources.length > 1,
    entries: resources.map((resource) => ({ method: 'POST', resourceType: resource.resourceType, resource })),
  });
  const eprPatient = {
    resourceType: 'Patient',
    identifier: [{ system: FNR, value: SYNTHETIC_FNR }],
    name: [{ family: 'Testesen', given: ['Kari'] }],
    birthDate: '1955-11-10',
  } as Resource;

  test('as received: the EPR Patient with national id passes; the other profiled types are checked', async () => {
    const ok = write(eprPatient, episode, response);
    await expect(Promise.resolve(validateProfilesAsReceived(ok, ctx))).resolves.toBe(ok);
  });

  test('as received: every failing entry is reported, anchored at its Bundle entry', async () => {
    const bad = write(
      eprPatient,
      { ...episode, managingOrganization: undefined } as Resource,
      {
        ...response,
        subject: undefined,
      } as Resource,
    );
    const err = await Promise.resolve()
      .then(() => validateProfilesAsReceived(bad, ctx))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect((err as FhirError).status).toBe(422);
    expect((err as FhirError).outcome.issue?.map((i) => i.expression)).toEqual([
      ['Bundle.entry[1].resource.managingOrganization'],
      ['Bundle.entry[2].resource.subject'],
    ]);
  });

  test('after pseudonymisation: only the Patient is checked, and a national id is refused', async () => {
    const ok = write(patient, { ...response, status: 'stopped' } as Resource);
    await expect(Promise.resolve(validatePseudonymisedProfiles(ok, ctx))).resolves.toBe(ok);
    expect(() => validatePseudonymisedProfiles(write(eprPatient), ctx)).toThrow(FhirError);
  });
});
