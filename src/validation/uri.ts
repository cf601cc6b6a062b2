import { isLowerCaseUuid } from '../fhir/reference';

/** An ISO OID in dotted form (no leading zeros in an arc), as it must follow `urn:oid:`. */
const OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;

/**
 * What is wrong with a FHIR `uri` value, by the rules the HL7 validator applies to every uri (its
 * Type_Specific_Checks_DT_URI_* and _UUID_/_OID_ messages): no white space, no bare `uuid:` or `oid:`
 * scheme, and a valid lower-case UUID after `urn:uuid:` and a valid OID after `urn:oid:`. Undefined when
 * the value is fine. @medplum/core's uri pattern (`\S*`) catches only the white space.
 */
export function uriProblem(value: string): string | undefined {
  if (/\s/.test(value)) {
    return `The URI '${value.trim()}' contains white space`;
  }
  if (value.startsWith('uuid:') || value.startsWith('oid:')) {
    return `The URI '${value}' must begin with 'urn:${value.slice(0, value.indexOf(':'))}:'`;
  }
  if (value.startsWith('urn:uuid:') && !isLowerCaseUuid(value.slice('urn:uuid:'.length))) {
    return `The URI '${value}' does not hold a valid lower-case UUID after 'urn:uuid:'`;
  }
  if (value.startsWith('urn:oid:') && !OID.test(value.slice('urn:oid:'.length))) {
    return `The URI '${value}' does not hold a valid OID after 'urn:oid:'`;
  }
  return undefined;
}
