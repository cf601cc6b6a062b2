import type { ResourceType } from '@medplum/fhirtypes';
import { readStripped, RESOURCE_TYPES_FILE } from './definitions';

/**
 * The FHIR R4 resource types by name (146 concrete types; not the abstract Resource and DomainResource),
 * from the list scripts/build-definitions.ts writes beside the stripped definitions. @medplum/core
 * answers the same question only once the definitions are indexed, which costs a command or a store
 * that merely reads references (the audit log's verification, a reference parsed in a worker) 0.7 s and
 * 70 MB; test/fhir/definitions.test.ts checks that both give the same answer.
 */
const RESOURCE_TYPES: ReadonlySet<string> = new Set(
  JSON.parse(readStripped(RESOURCE_TYPES_FILE)) as string[],
);

/** Whether `type` is a FHIR R4 resource type, spelled exactly. */
export function isResourceType(type: string): type is ResourceType {
  return RESOURCE_TYPES.has(type);
}
