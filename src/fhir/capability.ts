import { getAllDataTypes, getSearchParameterDetails, SearchParameterType } from '@medplum/core';
import type {
  CapabilityStatement,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceSearchParam,
  SearchParameter,
} from '@medplum/fhirtypes';
import { supportedSearchParameters } from './search';

/**
 * The CapabilityStatement, derived from what the code actually does: the resource types and search
 * parameters come from the same registry the search layer checks against, so it cannot claim more.
 */

const TYPE_INTERACTIONS: CapabilityStatementRestResource['interaction'] = [
  'read',
  'vread',
  'update',
  'delete',
  'history-instance',
  'history-type',
  'create',
  'search-type',
].map((code) => ({ code: code as 'read' }));

/** Whether _include and _revinclude can follow the parameter: a Reference names a resource of this server,
 * a canonical (QuestionnaireResponse.questionnaire) only a URL, which neither store resolves for them. */
function followsReferences(type: string, param: SearchParameter): boolean {
  return (
    param.type === 'reference' &&
    getSearchParameterDetails(type, param).type === SearchParameterType.REFERENCE
  );
}

export function buildCapabilityStatement(storeKind: string, version: string): CapabilityStatement {
  const types = Object.values(getAllDataTypes())
    .filter((schema) => schema.kind === 'resource' && !['Resource', 'DomainResource'].includes(schema.name))
    .map((schema) => schema.name)
    .sort();
  const params = new Map(
    types.map((type) => [
      type,
      [...supportedSearchParameters(type).entries()].sort(([a], [b]) => a.localeCompare(b)),
    ]),
  );
  // _revinclude=Source:param on a search of T brings in the Sources whose param can point at T.
  const revIncludes = new Map<string, string[]>();
  for (const [source, sourceParams] of params) {
    for (const [code, param] of sourceParams) {
      for (const target of followsReferences(source, param) ? (param.target ?? []) : []) {
        revIncludes.set(target, [...(revIncludes.get(target) ?? []), `${source}:${code}`]);
      }
    }
  }
  const resource = types.map((type): CapabilityStatementRestResource => {
    const typeParams = params.get(type) ?? [];
    return {
      type: type as CapabilityStatementRestResource['type'],
      profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
      interaction: TYPE_INTERACTIONS,
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalRead: 'not-supported',
      conditionalUpdate: true,
      conditionalDelete: 'not-supported',
      searchInclude: typeParams
        .filter(([, p]) => followsReferences(type, p))
        .map(([code]) => `${type}:${code}`),
      searchRevInclude: revIncludes.get(type),
      searchParam: typeParams.map(([code, p]): CapabilityStatementRestResourceSearchParam => ({
        name: code,
        definition: p.url,
        type: p.type,
      })),
    };
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'NorPain',
    kind: 'instance',
    software: { name: 'NorPain FHIR server', version },
    implementation: { description: `NorPain registry FHIR API (${storeKind} store)` },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/json'],
    rest: [
      {
        mode: 'server',
        security: {
          service: [
            {
              coding: [
                { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'OAuth' },
                {
                  system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
                  code: 'SMART-on-FHIR',
                },
              ],
            },
          ],
          description:
            'An access token (JWT, RS256/ES256) is required for every interaction except metadata: "Bearer <token>", ' +
            'or "DPoP <token>" with a DPoP proof for key-bound tokens (cnf.jkt). SMART v2 scopes ' +
            '(system/, user/, patient/ with c r u d s; v1 .read/.write) and the role (clinic, portal, registry-admin, ' +
            'researcher) limit what a token may do; clinics see their own unit, the portal its own person. Every ' +
            'request that reads or changes data is recorded as an AuditEvent (GET AuditEvent for staff and the portal).',
        },
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        searchParam: [
          { name: '_count', type: 'number' },
          { name: '_offset', type: 'number' },
          { name: '_sort', type: 'string' },
          { name: '_total', type: 'token' },
          { name: '_include', type: 'string' },
          { name: '_revinclude', type: 'string' },
          { name: '_elements', type: 'string' },
          { name: '_summary', type: 'token' },
        ],
        operation: [
          { name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' },
          // Staff only (src/identity/merge.ts); R5's definition, the shape R4 servers use for it.
          { name: 'merge', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-merge' },
          // Staff only (src/followup/rates.ts): GET Task/$response-rates?from=YYYY-MM&to=YYYY-MM.
          {
            name: 'response-rates',
            definition: 'https://norpain.no/fhir/OperationDefinition/response-rates',
          },
        ],
      },
    ],
  };
}
