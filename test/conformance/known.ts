/**
 * The documented disagreements between HAPI FHIR 8.8's validator (HL7 core 6.7.9) and the server, each
 * with its reason; docs/conformance.md explains each at length. A case marked with one of these may
 * disagree; any other disagreement fails the suite.
 */
export const KNOWN = {
  quantityMinInverted:
    'HAPI 8.8 compares sdc-questionnaire-minQuantity the wrong way round when the units are equal: a value above the minimum is an error, one below it passes',
  noUcum:
    'HAPI 8.8 has no UCUM service in its validator (HAPI-0676): a quantity in another unit than its limit is an error, however it converts',
  maxSizeInclusive:
    'HAPI 8.8 refuses an attachment of exactly maxSize bytes (it requires fewer); maxSize is the largest size allowed',
  maxSizeStated:
    'HAPI 8.8 checks maxSize only against inline data; the server also refuses a stated size over it (an attachment by url)',
  noTerminologyServer:
    'HAPI 8.8 without a terminology server makes a code it cannot check against a SNOMED CT ValueSet an error; the server, like the HL7 validator with a terminology server out of reach, a warning',
  itemTextWarning:
    "Item text that differs from the Questionnaire's is an error for HAPI 8.8; a warning here (the registry never stores item text)",
  containedRefused:
    'The registry takes answers only to its own Questionnaires: a response to a contained Questionnaire is refused here (at `questionnaire`), judged against it by HAPI',
  occursBoundsExclusive:
    'HAPI 8.8 counts questionnaire-minOccurs and maxOccurs as exclusive bounds: exactly minOccurs or maxOccurs answers are an error',
  referenceResourceUnchecked:
    'HAPI 8.8 checks questionnaire-referenceResource only when its validator assumes REST references valid, which its JPA server does not; the server checks it',
  containedValueSetCrash:
    "HAPI 8.8 fails on a Questionnaire's contained ValueSet without a url (a NullPointerException reported as a warning) and checks no membership; the server does",
} as const;

export type Known = keyof typeof KNOWN;
