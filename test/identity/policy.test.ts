import { getDataType, getResourceTypes } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { preferredSystem } from '../../src/identity/nationalId';
import { PolicyEngine, type PolicyContext } from '../../src/identity/policyEngine';
import { dataDictionary } from '../../src/dictionary';

/**
 * The policy applied to every R4 resource type: each element (to a few levels deep) whose data type
 * carries direct identifiers is filled with recognisable secrets, and none may survive.
 */
loadFhirDefinitions();
const engine = new PolicyEngine(dataDictionary);
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
// What a client may send: Task (the follow-up) is in the dictionary but written by the server only.
const accepted = Object.keys(dataDictionary.resources).filter(
  (t) => !dataDictionary.resources[t].serverWritten,
);
const clinical = accepted.filter((t) => !dataDictionary.resources[t].definition);

describe('the data dictionary on every resource type', () => {
  test('covers all R4 resource types', () => {
    expect(resourceTypes.length).toBeGreaterThan(140);
  });

  test.each(resourceTypes.filter((t) => !accepted.includes(t)))(
    '%s is refused (outside the registry)',
    (type) => {
      expect(() => engine.apply({ resourceType: type, ...fill(type, 2) } as Resource, ctx)).toThrow(
        expect.objectContaining({ status: 422 }),
      );
    },
  );

  test.each(clinical)('%s keeps no direct identifier, and reports what it dropped', (resourceType) => {
    const resource = { resourceType, ...fill(resourceType, 2) } as Resource;
    if (resourceType !== 'Patient' && 'identifier' in resource) {
      (resource as { identifier: unknown }).identifier = [{ system: 'urn:mrn', value: 'MRN-SECRET-1' }];
    }
    const dropped: string[] = [];
    const result = JSON.stringify(
      engine.apply(resource, { ...ctx, notStored: (path) => dropped.push(path) }),
    );
    for (const secret of secrets) {
      expect(result).not.toContain(secret);
      expect(dropped.join()).not.toContain(secret);
    }
    expect(dropped.length).toBeGreaterThan(0);
    if (resourceType !== 'Patient' && JSON.stringify(resource).includes('Patient/clinic-1')) {
      expect(result).toContain('Patient/pseudonymous-1');
      expect(result).not.toContain('Patient/clinic-1');
    }
  });

  test.each(clinical.filter((t) => t !== 'Patient' && dataDictionary.resources[t].elements?.identifier))(
    '%s: a national id identifier is refused',
    (type) => {
      const resource = {
        resourceType: type,
        identifier: [{ system: preferredSystem.fnr, value: FNR_VALUE }],
      };
      const apply = () => engine.apply(resource as Resource, ctx);
      expect(apply).toThrow(expect.objectContaining({ status: 422 }));
    },
  );

  test('contained resources, unknown extensions and free-text answers are not stored', () => {
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
          text: 'Kari Nordmann',
          answer: [
            { valueAttachment: { title: 'attachment-secret' } },
            { valueString: 'Storgata 1' },
            { valueInteger: 3 },
          ],
        },
      ],
    } as Resource;
    const dropped = new Set<string>();
    const result = engine.apply(resource, { ...ctx, notStored: (path) => dropped.add(path) });
    expect(result).toEqual({
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      item: [{ linkId: '1', answer: [{ valueInteger: 3 }] }],
    });
    expect([...dropped].sort()).toEqual([
      'QuestionnaireResponse.contained',
      'QuestionnaireResponse.extension',
      'QuestionnaireResponse.item.answer.valueAttachment',
      'QuestionnaireResponse.item.answer.valueString',
      'QuestionnaireResponse.item.text',
    ]);
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

  test('every name in the dictionary is a FHIR R4 element', () => {
    for (const [type, entry] of Object.entries(dataDictionary.resources)) {
      for (const name of Object.keys(entry.elements ?? {})) {
        let schema = getDataType(type);
        for (const part of name.split('.')) {
          const element =
            schema.elements[part] ??
            Object.entries(schema.elements).find(
              ([n]) => n.endsWith('[x]') && part.startsWith(n.slice(0, -3)),
            )?.[1];
          expect(element).toBeDefined();
          const code = element?.type[0].code as string;
          schema = getDataType(
            code === 'BackboneElement' || code === 'Element'
              ? `${schema.name}${part.charAt(0).toUpperCase()}${part.slice(1)}`
              : code,
          );
        }
      }
    }
  });
});
