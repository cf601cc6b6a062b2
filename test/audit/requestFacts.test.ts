import type { Bundle } from '@medplum/fhirtypes';
import { AUDIT_SYSTEMS } from '../../src/audit/auditEvent';
import { interactionOf, touchedBy } from '../../src/audit/requestFacts';
import { loadFhirDefinitions } from '../../src/fhir/definitions';
import { classify } from '../../src/fhir/classify';
import { validateOperation } from '../../src/fhir/validateOperation';

beforeAll(() => loadFhirDefinitions());

describe('request facts for the audit entry', () => {
  it('classifies requests as FHIR interactions', () => {
    const cases: [string, string[], string][] = [
      ['GET', ['Condition'], 'search-type'],
      ['POST', ['Condition', '_search'], 'search-type'],
      ['POST', ['Condition'], 'create'],
      ['PUT', ['Condition'], 'update'],
      ['GET', ['Condition', 'c1'], 'read'],
      ['PUT', ['Condition', 'c1'], 'update'],
      ['DELETE', ['Condition', 'c1'], 'delete'],
      ['GET', ['Condition', 'c1', '_history'], 'history-instance'],
      ['GET', ['Condition', 'c1', '_history', '2'], 'vread'],
      ['GET', ['Condition', '_history'], 'history-type'],
      ['GET', ['_history'], 'history-system'],
      ['GET', ['metadata'], 'capabilities'],
      ['POST', [], 'transaction'],
    ];
    for (const [method, segments, interaction] of cases) {
      expect([method, segments, interactionOf(classify(method, segments, [])).interaction]).toEqual([
        method,
        segments,
        interaction,
      ]);
    }
    expect(interactionOf(classify('POST', [], []), 'batch')).toEqual({ interaction: 'batch' });
    expect(interactionOf(classify('POST', ['Patient', '$validate'], [validateOperation]))).toEqual({
      interaction: 'operation',
      operation: '$validate',
    });
    // An operation not in the table is never named (its "name" is client input, e.g. a national id).
    expect(interactionOf(classify('GET', ['Patient', '$01818040071'], [validateOperation]))).toEqual({
      interaction: 'operation',
      operation: 'unknown',
    });
  });

  it('finds the resources and persons in a search Bundle and a transaction response', () => {
    const searchset: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [
        { resource: { resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' }, code: {} } },
        {
          resource: {
            resourceType: 'EpisodeOfCare',
            id: 'e1',
            status: 'active',
            patient: { reference: 'Patient/p2' },
          },
        },
        {
          resource: {
            resourceType: 'Patient',
            id: 'p2',
            identifier: [{ system: AUDIT_SYSTEMS.registryPseudonym, value: '1-B' }],
          },
        },
        { resource: { resourceType: 'OperationOutcome', issue: [] } },
      ],
    };
    expect(touchedBy([searchset])).toEqual({
      resources: ['Condition/c1', 'EpisodeOfCare/e1', 'Patient/p2'],
      patientIds: ['p1', 'p2'],
      pseudonyms: ['1-B'],
    });
    const response: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: [
        { response: { status: '201 Created', location: 'Patient/p3/_history/1' } },
        { response: { status: '201 Created', location: 'Encounter/n1/_history/1' } },
      ],
    };
    expect(touchedBy([response])).toEqual({
      resources: ['Patient/p3', 'Encounter/n1'],
      patientIds: ['p3'],
      pseudonyms: [],
    });
  });
});
