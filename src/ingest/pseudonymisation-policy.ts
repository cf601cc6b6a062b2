/**
 * THE pseudonymisation policy of the NorPain registry (DESIGN §3.1): what happens to every element of
 * every resource on its way into the clinical store. Written as data, in the manner of the Microsoft
 * FHIR anonymiser's configuration, so that this one file is the whole policy; the engine that applies
 * it is src/ingest/pseudonymise.ts.
 *
 * A rule's `path` is either an element path (`Patient.birthDate`; `Patient.*` = every other child of
 * Patient; choice elements without their type suffix, e.g. `Patient.deceased`) or `nodesByType('T')`
 * for every element of FHIR data type T, wherever it occurs (including contained resources, extensions
 * and nested Bundles). The first rule that matches an element decides; an element that no rule matches
 * is kept and its children are examined in turn. Elements unknown to FHIR R4 are removed (fail closed).
 *
 * Methods:
 * - keep: stored as sent (children still examined).
 * - remove: never stored.
 * - pseudonym: the national ids become the one registry pseudonym identifier.
 * - generalise: `year-month` cuts a date to YYYY-MM; `municipality` keeps only the municipality of an
 *   address (kommunenummer extension, district, county, country).
 * - keyed-hash: an Identifier's value is replaced by a keyed HMAC (so a conditional update by that
 *   identifier still finds it: queries are hashed the same way). National person ids found here are
 *   removed instead; public identifiers of organisations and health personnel are kept.
 * - patient-reference: a reference to a Patient (literal, urn:uuid, or logical by national id) is
 *   rewritten to the pseudonymous Patient; the free-text `display` is removed.
 * - redact-national-ids: free text is kept, but anything in it that is a valid national id is blanked.
 */
export type PolicyMethod =
  'keep' | 'remove' | 'pseudonym' | 'generalise' | 'keyed-hash' | 'patient-reference' | 'redact-national-ids';

export interface PolicyRule {
  path: string;
  method: PolicyMethod;
  /** For generalise. */
  to?: 'year-month' | 'municipality';
  /** Why the rule exists, for the reader. */
  why: string;
}

export const pseudonymisationPolicy: readonly PolicyRule[] = [
  // --- The pseudonymous Patient: an allow-list. Nothing else about the person is stored. ---
  {
    path: 'Patient.id',
    method: 'keep',
    why: 'assigned by the vault, not by the client; carries nothing about the person',
  },
  { path: 'Patient.meta', method: 'keep', why: 'security labels and tags drive access rules' },
  {
    path: 'Patient.identifier',
    method: 'pseudonym',
    why: 'the registry pseudonym is the only identifier (§3.1)',
  },
  { path: 'Patient.gender', method: 'keep', why: 'an analysis variable' },
  {
    path: 'Patient.birthDate',
    method: 'generalise',
    to: 'year-month',
    why: 'age at referral needs month precision, not the day',
  },
  {
    path: 'Patient.address',
    method: 'generalise',
    to: 'municipality',
    why: 'residence by municipality is an analysis variable; anything finer identifies',
  },
  {
    path: 'Patient.*',
    method: 'remove',
    why: 'names, telecom, photo, contacts, links, GP, narrative, extensions: not needed, identifying',
  },

  // --- Other people named in clinical resources. ---
  { path: 'RelatedPerson.birthDate', method: 'generalise', to: 'year-month', why: 'identifying when exact' },
  { path: 'Practitioner.birthDate', method: 'remove', why: 'not needed' },
  { path: 'Person.birthDate', method: 'generalise', to: 'year-month', why: 'identifying when exact' },

  // --- Everywhere, by data type. ---
  {
    path: "nodesByType('Narrative')",
    method: 'remove',
    why: 'narrative text repeats names and ids in free form',
  },
  { path: "nodesByType('Annotation')", method: 'remove', why: 'notes are free text written about a person' },
  { path: "nodesByType('HumanName')", method: 'remove', why: 'names are direct identifiers' },
  {
    path: "nodesByType('ContactPoint')",
    method: 'remove',
    why: 'phone numbers and e-mail addresses are direct identifiers',
  },
  {
    path: "nodesByType('Attachment')",
    method: 'remove',
    why: 'photos and scanned documents cannot be checked for identifiers',
  },
  {
    path: "nodesByType('Address')",
    method: 'generalise',
    to: 'municipality',
    why: 'addresses below municipality identify',
  },
  {
    path: "nodesByType('Reference')",
    method: 'patient-reference',
    why: 'data about a person point at the pseudonymous Patient only',
  },
  {
    path: "nodesByType('Identifier')",
    method: 'keyed-hash',
    why: 'EPR business identifiers (episode numbers, MRNs) link back to the record',
  },
  {
    path: "nodesByType('string')",
    method: 'redact-national-ids',
    why: 'free-text answers sometimes contain a fødselsnummer',
  },
  { path: "nodesByType('markdown')", method: 'redact-national-ids', why: 'as string' },
];

/** Identifier systems that name organisations or health personnel in public registers: kept as sent. */
export const publicIdentifierSystems: ReadonlySet<string> = new Set([
  'urn:oid:2.16.578.1.12.4.1.4.101', // Enhetsregisteret organisasjonsnummer
  'urn:oid:2.16.578.1.12.4.1.4.102', // RESH-id
  'urn:oid:2.16.578.1.12.4.1.4.4', // HPR-nummer
  'http://hl7.no/fhir/NamingSystem/HPR',
]);

/** Address extensions that carry the municipality (kommunenummer), kept by `generalise: municipality`. */
export const municipalityExtensionUrls: ReadonlySet<string> = new Set([
  'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode',
]);

/** Address elements kept by `generalise: municipality`: none of them is finer than a municipality. */
export const municipalityAddressElements: ReadonlySet<string> = new Set(['district', 'state', 'country']);

/** What replaces a national id found in free text. */
export const redactedNationalIdText = '[fødselsnummer fjernet]';
