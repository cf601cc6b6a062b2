import { getDataType, getResourceTypes } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { preferredSystem } from '../../src/identity/nationalId';
import { PolicyEngine, type PolicyContext } from '../../src/identity/policyEngine';
import { pseudonymisationPolicy } from '../../src/ingest/pseudonymisation-policy';

/**
 * The policy applied to every R4 resource type: each element (to a few levels deep) whose data type
 * carries direct identifiers is filled with recognisable secrets, and none may survive.
 */
loadFhirDefinitions();
const engine = new PolicyEngine(pseudonymisationPolicy);
const FNR_VALUE = '11835066691';

const ctx: PolicyContext = {
  patientIdentifiers: [{ system: 'https://norpain.no/fhir/NamingSystem/registry-pseudonym', value: '1-x' }],
  rewritePatientReference: (reference) =>
    reference === 'Patient/clinic-1' ? 'Patient/pseudonymous-1' : undefined,
  referenceForNationalId: () => 'Patient/pseudonymous-1',
  hashIdentifier: (_system, value) => `hashed(${value.length})`,
};

const secrets = [
  'Nordmann',
  '98765432',
  'Storgata',
  '7030',
  'note-secret',
  'narrative-secret',
  'attachment-secret',
  'MRN-SECRET',
  FNR_VALUE,
  'display-secret',
];

const samples: Record<string, () => unknown> = {
  HumanName: () => ({ family: 'Nordmann', given: ['Kari'], text: 'Kari Nordmann' }),
  ContactPoint: () => ({ system: 'phone', value: '98765432' }),
  Address: () => ({ line: ['Storgata 1'], postalCode: '7030', city: 'Trondheim', district: 'Trondheim' }),
  Annotation: () => ({ text: 'note-secret' }),
  Narrative: () => ({
    status: 'generated',
    div: '<div xmlns="http://www.w3.org/1999/xhtml">narrative-secret</div>',
  }),
  Attachment: () => ({
    contentType: 'text/plain',
    data: Buffer.from('x').toString('base64'),
    title: 'attachment-secret',
  }),
  Identifier: () => ({ system: 'urn:mrn', value: 'MRN-SECRET-1' }),
  Reference: () => ({ reference: 'Patient/clinic-1', display: 'display-secret' }),
};

function fill(type: string, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const schema = getDataType(type);
  for (const [name, element] of Object.entries(schema.elements)) {
    if (name === 'id' || name === 'extension' || name === 'modifierExtension' || name === 'contained') {
      continue;
    }
    for (const t of element.type) {
      const key = name.endsWith('[x]')
        ? name.slice(0, -3) + t.code.charAt(0).toUpperCase() + t.code.slice(1)
        : name;
      let value: unknown;
      if (samples[t.code]) {
        value = samples[t.code]();
      } else if (depth > 0 && t.code.startsWith(type) && t.code !== type) {
        value = fill(t.code, depth - 1); // a backbone element of this type
      }
      if (value !== undefined) {
        out[key] = element.isArray ? [value] : value;
        if (name.endsWith('[x]')) {
          break;
        }
      }
    }
  }
  return out;
}

const resourceTypes = (getResourceTypes() as string[]).filter(
  (t) => !['Resource', 'DomainResource'].includes(t),
);

describe('the policy on every resource type', () => {
  test('covers all R4 resource types', () => {
    expect(resourceTypes.length).toBeGreaterThan(140);
  });

  test.each(resourceTypes)('%s keeps no direct identifier', (resourceType) => {
    const resource = { resourceType, ...fill(resourceType, 2) } as Resource;
    if (resourceType !== 'Patient' && 'identifier' in resource) {
      (resource as { identifier: unknown }).identifier = [
        { system: 'urn:mrn', value: 'MRN-SECRET-1' },
        { system: preferredSystem.fnr, value: FNR_VALUE },
      ];
    }
    const result = JSON.stringify(engine.apply(resource, ctx));
    for (const secret of secrets) {
      expect(result).not.toContain(secret);
    }
    if (resourceType !== 'Patient' && JSON.stringify(resource).includes('Patient/clinic-1')) {
      expect(result).toContain('Patient/pseudonymous-1');
      expect(result).not.toContain('Patient/clinic-1');
    }
  });

  test('contained resources and extension values are covered too', () => {
    const resource = {
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      contained: [
        { resourceType: 'RelatedPerson', id: 'rp', name: [{ family: 'Nordmann' }], birthDate: '1950-04-03' },
      ],
      extension: [
        { url: 'urn:x', valueHumanName: { family: 'Nordmann' } },
        { url: 'urn:y', valueString: `id ${FNR_VALUE}` },
      ],
      item: [
        {
          linkId: '1',
          answer: [{ valueAttachment: { title: 'attachment-secret' } }, { valueString: 'kept' }],
        },
      ],
    } as Resource;
    const result = engine.apply(resource, ctx) as unknown as Record<string, unknown>;
    const json = JSON.stringify(result);
    for (const secret of secrets) {
      expect(json).not.toContain(secret);
    }
    expect(json).toContain('"birthDate":"1950-04"');
    expect(json).toContain('kept');
  });

  test('unknown elements are removed (fail closed), birth time extension goes with the day', () => {
    const patient = {
      resourceType: 'Patient',
      identifier: [{ system: preferredSystem.fnr, value: FNR_VALUE }],
      birthDate: '1980-01-15',
      _birthDate: {
        extension: [
          {
            url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime',
            valueDateTime: '1980-01-15T10:00:00Z',
          },
        ],
      },
      socialSecurity: FNR_VALUE,
    } as unknown as Resource;
    const result = engine.apply(patient, ctx);
    expect(result).toEqual({
      resourceType: 'Patient',
      identifier: ctx.patientIdentifiers,
      birthDate: '1980-01',
    });
  });
});
