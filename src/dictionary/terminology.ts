/**
 * The code systems the data dictionary binds (src/dictionary/dictionary.ts). A coded element keeps a code
 * only when its system is one of those bound to that element; a code from any other system is not
 * stored. Every system here is a published terminology or a code system of FHIR or NorPain itself: none of
 * them can carry a person's national id, name or address as a code.
 */
export interface CodeSystemEntry {
  url: string;
  /** What it is, for the reader. */
  name: string;
}

const system = (url: string, name: string): CodeSystemEntry => ({ url, name });

export const terminology = {
  icd10: system(
    'urn:oid:2.16.578.1.12.4.1.1.7110',
    'ICD-10 (Volven 7110), the diagnoses of Norwegian hospitals',
  ),
  icpc2: system(
    'urn:oid:2.16.578.1.12.4.1.1.7170',
    'ICPC-2 (Volven 7170), the diagnoses of general practitioners',
  ),
  nkpk: system(
    'urn:oid:2.16.578.1.12.4.1.1.7275',
    'Norsk klinisk prosedyrekodeverk (NCMP, NCSP, NCRP; Volven 7275), the procedures',
  ),
  snomed: system('http://snomed.info/sct', 'SNOMED CT'),
  loinc: system('http://loinc.org', 'LOINC'),
  ucum: system('http://unitsofmeasure.org', 'UCUM units'),
  rightToCare: system(
    'https://norpain.no/fhir/CodeSystem/right-to-care-decision',
    'NorPain: the right-to-care decision',
  ),
  kommunenummer: system(
    'https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle',
    'Kartverket: kommunenummer',
  ),
  kommunenummerOid: system('urn:oid:2.16.578.1.12.4.1.1.3402', 'Kartverket: kommunenummer (Volven 3402)'),
  actCode: system('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'HL7 v3 ActCode (encounter class)'),
  conditionClinical: system(
    'http://terminology.hl7.org/CodeSystem/condition-clinical',
    'FHIR: condition clinical status',
  ),
  conditionVerification: system(
    'http://terminology.hl7.org/CodeSystem/condition-ver-status',
    'FHIR: condition verification status',
  ),
  conditionCategory: system(
    'http://terminology.hl7.org/CodeSystem/condition-category',
    'FHIR: condition category',
  ),
  diagnosisRole: system('http://terminology.hl7.org/CodeSystem/diagnosis-role', 'FHIR: diagnosis role'),
  dataOperation: system(
    'http://terminology.hl7.org/CodeSystem/v3-DataOperation',
    'HL7 v3 DataOperation (what a correction did)',
  ),
  participantType: system(
    'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
    'FHIR: provenance participant type',
  ),
} as const;
