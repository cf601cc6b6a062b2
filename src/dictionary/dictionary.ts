import { TASK_IDENTIFIER_SYSTEM } from '../followup/task';
import { NORPAIN_PROFILES } from '../validation/profiles';
import { type CodeSystemEntry, terminology as t } from './terminology';

/**
 * THE data dictionary of the NorPain registry (DESIGN §3.1; read README.md beside this file first). It
 * is an allow-list: the registry stores the resource types listed in `resources` and, of each, only the
 * elements listed, for the reason given. Everything else a sender includes is not stored (and the
 * sender is told so), or the write is refused where the element is one the registry must not receive.
 *
 * Element names are FHIR R4 paths below the resource (`statusHistory.status`); a choice element is
 * named with its type (`onsetDateTime`), so `onsetString` (free text) is not stored. The engine that
 * applies the dictionary is src/identity/policyEngine.ts; it refuses to start if a name here is not a
 * FHIR R4 element.
 */

/** The NorPain EpisodeOfCare profile's extensions (profiles/), which the statistics, the follow-up and the
 * Nordic dataset read. */
export const EPISODE_EXTENSIONS = {
  referralDate: 'https://norpain.no/fhir/StructureDefinition/referral-date',
  rightToCare: 'https://norpain.no/fhir/StructureDefinition/right-to-care',
} as const;

/** How an element is changed on its way into the store; an element without one is stored as sent. */
export type Transform =
  /** Patient.identifier: the national ids become the one registry pseudonym. */
  | 'pseudonym'
  /** A date cut to year and month. */
  | 'year-month'
  /** An address cut to its municipality (kommunenummer), county and country. */
  | 'municipality'
  /** An EPR's business identifier: its value becomes a keyed hash, so a conditional update still finds
   * it; public identifiers of organisations and health personnel are kept as sent. */
  | 'keyed-hash';

export interface ElementEntry {
  /** Why the registry stores it. */
  why: string;
  transform?: Transform;
  /** For a Coding or CodeableConcept: the code systems whose codes are stored here. `questionnaire`:
   * the answer options of the registry's Questionnaire the response answers (checked on validation). */
  codes?: readonly CodeSystemEntry[] | 'questionnaire';
  /** A string or markdown element: stored, with anything that is a national id blanked. Named only where
   * the registry needs the text; everywhere else free text is not stored. */
  freeText?: true;
  /** For a primitive element: the only values stored here; any other is not stored. */
  values?: readonly string[];
  /** For an `extension` element: the extensions stored here, by URL. */
  extensions?: Readonly<Record<string, ExtensionEntry>>;
}

export interface ExtensionEntry {
  why: string;
  /** The value element stored, e.g. `valueDate`. */
  value?: string;
  codes?: readonly CodeSystemEntry[];
  /** Its own extensions (complex extensions), by URL. */
  extensions?: Readonly<Record<string, ExtensionEntry>>;
}

export interface ResourceEntry {
  why: string;
  /** A definition (no person data; written by registry staff only): every FHIR element is stored, free
   * text with national ids blanked. */
  definition?: true;
  /** Written by the server itself (follow-up Tasks), never accepted from a client. */
  serverWritten?: true;
  /** Person data the clinics and the portal send: what a study's view shows (src/research) and what the
   * privacy tests write. */
  clinical?: true;
  elements?: Readonly<Record<string, ElementEntry>>;
}

const diagnosisCodes = [t.icd10, t.icpc2, t.snomed];

/** What every stored resource carries. */
const common: Record<string, ElementEntry> = {
  id: { why: 'the resource id (server-assigned, or the Patient id the identity vault gives the person)' },
  meta: { why: 'version and profile, below' },
};

const businessIdentifier: ElementEntry = {
  why: 'the EPR’s own id of the record, so the EPR can update it (conditional update); stored as a keyed hash',
  transform: 'keyed-hash',
};

const entries = {
  Patient: {
    why: 'the person, under the registry pseudonym only (the national id is kept apart, in the identity vault)',
    clinical: true,
    elements: {
      ...common,
      identifier: { why: 'the registry pseudonym is the only identifier (§3.1)', transform: 'pseudonym' },
      gender: { why: 'an analysis variable' },
      birthDate: {
        why: 'age at referral needs month precision, not the day',
        transform: 'year-month',
      },
      address: {
        why: 'residence by municipality is an analysis variable; anything finer identifies',
        transform: 'municipality',
      },
      deceasedBoolean: { why: 'no follow-up invitation is sent to a person who has died' },
      deceasedDateTime: { why: 'as deceasedBoolean; the month is enough', transform: 'year-month' },
    },
  },
  EpisodeOfCare: {
    why: 'the course of treatment at a pain clinic: the registry’s unit of analysis',
    clinical: true,
    elements: {
      ...common,
      identifier: businessIdentifier,
      extension: {
        why: 'the NorPain profile’s extensions',
        extensions: {
          [EPISODE_EXTENSIONS.referralDate]: {
            why: 'when the referral came: the start of the waiting time',
            value: 'valueDate',
          },
          [EPISODE_EXTENSIONS.rightToCare]: {
            why: 'the right-to-care assessment (pasient- og brukerrettighetsloven § 2-1 b): a quality indicator',
            extensions: {
              decision: { why: 'granted or not', value: 'valueCoding', codes: [t.rightToCare] },
              date: { why: 'when it was decided', value: 'valueDate' },
              deadline: { why: 'the deadline for starting treatment', value: 'valueDate' },
            },
          },
        },
      },
      status: { why: 'whether the episode is planned, active or finished' },
      statusHistory: { why: 'waiting and treatment times' },
      'statusHistory.status': { why: 'as status' },
      'statusHistory.period': { why: 'when each status held' },
      diagnosis: { why: 'the diagnoses the episode treats' },
      'diagnosis.condition': { why: 'the Condition' },
      'diagnosis.role': { why: 'main or secondary diagnosis', codes: [t.diagnosisRole, t.snomed] },
      'diagnosis.rank': { why: 'the order of the diagnoses' },
      patient: { why: 'whose episode (the pseudonymous Patient)' },
      managingOrganization: { why: 'the unit (RESH id): results are reported per clinic' },
      period: { why: 'first consultation and end: waiting time, and the 12-month follow-up' },
    },
  },
  Encounter: {
    why: 'a consultation in the episode: volume of treatment by kind',
    clinical: true,
    elements: {
      ...common,
      identifier: businessIdentifier,
      status: { why: 'whether the consultation took place' },
      class: { why: 'outpatient, video or telephone', codes: [t.actCode] },
      subject: { why: 'whose consultation (the pseudonymous Patient)' },
      episodeOfCare: { why: 'the episode it belongs to' },
      period: { why: 'when' },
      length: { why: 'how long' },
      reasonCode: { why: 'why, as a diagnosis code', codes: diagnosisCodes },
      reasonReference: { why: 'why, as a Condition' },
      diagnosis: { why: 'the diagnoses handled' },
      'diagnosis.condition': { why: 'the Condition' },
      'diagnosis.use': { why: 'its role', codes: [t.diagnosisRole] },
      'diagnosis.rank': { why: 'the order of the diagnoses' },
      serviceProvider: { why: 'the unit (RESH id)' },
      partOf: { why: 'the larger encounter it is part of' },
    },
  },
  Condition: {
    why: 'a diagnosis: the case mix of each clinic',
    clinical: true,
    elements: {
      ...common,
      identifier: businessIdentifier,
      clinicalStatus: { why: 'active or resolved', codes: [t.conditionClinical] },
      verificationStatus: { why: 'confirmed or not', codes: [t.conditionVerification] },
      category: { why: 'problem or encounter diagnosis', codes: [t.conditionCategory, t.snomed] },
      severity: { why: 'severity', codes: [t.snomed] },
      code: { why: 'the diagnosis', codes: diagnosisCodes },
      bodySite: { why: 'where the pain is', codes: [t.snomed] },
      subject: { why: 'whose diagnosis (the pseudonymous Patient)' },
      encounter: { why: 'where it was set' },
      onsetDateTime: { why: 'duration of pain is an analysis variable' },
      onsetAge: { why: 'as onsetDateTime' },
      onsetPeriod: { why: 'as onsetDateTime' },
      abatementDateTime: { why: 'when it ended' },
      abatementAge: { why: 'as abatementDateTime' },
      abatementPeriod: { why: 'as abatementDateTime' },
      recordedDate: { why: 'when it was recorded' },
    },
  },
  Procedure: {
    why: 'a treatment given in the episode (e.g. an interventional procedure or a group programme)',
    clinical: true,
    elements: {
      ...common,
      identifier: businessIdentifier,
      status: { why: 'whether it was done' },
      category: { why: 'kind of treatment', codes: [t.snomed] },
      code: { why: 'the treatment', codes: [t.nkpk, t.snomed] },
      subject: { why: 'whose treatment (the pseudonymous Patient)' },
      encounter: { why: 'the consultation it was given in' },
      performedDateTime: { why: 'when' },
      performedPeriod: { why: 'when' },
      reasonCode: { why: 'why, as a diagnosis code', codes: diagnosisCodes },
      reasonReference: { why: 'why, as a Condition' },
      bodySite: { why: 'where', codes: [t.snomed] },
      outcome: { why: 'the result', codes: [t.snomed] },
    },
  },
  QuestionnaireResponse: {
    why: 'answers to the registry’s Questionnaires (patient-reported and clinician forms)',
    clinical: true,
    elements: {
      ...common,
      identifier: businessIdentifier,
      questionnaire: { why: 'which Questionnaire, pinned to its version by the server' },
      status: { why: 'completed, amended or in progress' },
      subject: { why: 'whose answers (the pseudonymous Patient)' },
      encounter: { why: 'the consultation a clinician form belongs to' },
      authored: { why: 'when it was answered: which time point (baseline, 12 months)' },
      item: { why: 'the answers, by the Questionnaire’s linkIds' },
      'item.linkId': { why: 'which question' },
      'item.item': { why: 'nested questions' },
      'item.answer': { why: 'the answer' },
      // The registry's Questionnaires have no free-text questions: valueString, item.text and the like
      // are not stored. A number, date, yes/no or a coded option is.
      'item.answer.valueBoolean': { why: 'a yes/no answer' },
      'item.answer.valueDecimal': { why: 'a numeric answer or score' },
      'item.answer.valueInteger': { why: 'a numeric answer or score' },
      'item.answer.valueDate': { why: 'a date answer' },
      'item.answer.valueDateTime': { why: 'a date answer' },
      'item.answer.valueTime': { why: 'a time answer' },
      'item.answer.valueCoding': { why: 'a chosen answer option', codes: 'questionnaire' },
      'item.answer.item': { why: 'questions nested below an answer' },
    },
  },
  Provenance: {
    why: 'a correction by registry staff ($correct): what was corrected, when, by which client, and why',
    elements: {
      ...common,
      target: { why: 'the corrected resource and the person’s Patient' },
      recorded: { why: 'when' },
      activity: { why: 'update', codes: [t.dataOperation] },
      reason: { why: 'the reason staff gave', codes: [] },
      'reason.text': {
        why: 'the reason for a correction, written by registry staff, is part of the record the law asks for',
        freeText: true,
      },
      entity: { why: 'the version that was corrected' },
      'entity.role': { why: 'revision' },
      'entity.what': { why: 'the version' },
      agent: { why: 'who corrected it' },
      'agent.type': { why: 'author', codes: [t.participantType] },
      'agent.who': { why: 'the client (its id as a keyed hash)' },
    },
  },
  Task: {
    why: 'a follow-up invitation (helsenorge’s skjemaoppgave): which questionnaire the person is asked to answer, when, and whether they did; written by the server only (src/followup)',
    serverWritten: true,
    elements: {
      ...common,
      identifier: { why: 'episode and time point: one Task per person, time point and episode' },
      status: { why: 'requested, in progress, completed, failed (expired) or cancelled' },
      statusReason: { why: 'why it was cancelled or failed, in the server’s words', freeText: true },
      businessStatus: { why: 'scheduled, invited, reminded, answered, expired: the response rates' },
      intent: { why: 'required by FHIR (order)' },
      code: { why: 'the time point (baseline, 12 months)' },
      focus: { why: 'the Questionnaire to answer' },
      for: { why: 'whom it invites (the pseudonymous Patient)' },
      reasonReference: { why: 'the episode it follows up' },
      executionPeriod: { why: 'when it may be answered: from the due date until it expires' },
      authoredOn: { why: 'when it was scheduled' },
      lastModified: { why: 'when it last changed' },
      input: { why: 'the Questionnaire’s versioned canonical (SDC)' },
      'input.type': { why: 'questionnaire' },
      'input.valueCanonical': { why: 'the canonical, url|version' },
      output: { why: 'the QuestionnaireResponse that answered it' },
      'output.type': { why: 'questionnaire-response' },
      'output.valueReference': { why: 'the response' },
    },
  },
  Questionnaire: {
    why: 'the registry’s forms (definitions, no person data; registry staff only)',
    definition: true,
  },
  ResearchStudy: {
    why: 'an approved research project and its approved variables (definition; registry staff only)',
    definition: true,
  },
  Organization: {
    why: 'the participating units (definition; registry staff only)',
    definition: true,
  },
} satisfies Record<string, ResourceEntry>;

export const resources: Readonly<Record<string, ResourceEntry>> = entries;

/** The types of person data the clinics and the portal send (`clinical` above). */
export type ClinicalResourceType = {
  [K in keyof typeof entries]: (typeof entries)[K] extends { clinical: true } ? K : never;
}[keyof typeof entries];

export const clinicalResourceTypes: readonly ClinicalResourceType[] = Object.entries(entries).flatMap(
  ([type, entry]) => ('clinical' in entry && entry.clinical ? [type as ClinicalResourceType] : []),
);

/**
 * The parts of FHIR's data types that are stored wherever an element of that type is. A Coding keeps
 * its code only if its system is bound to the element; `display`, `CodeableConcept.text`,
 * `Quantity.unit` and `Reference.display` are free text and not stored.
 */
export const dataTypes: Readonly<Record<string, ElementEntry>> = {
  'Meta.versionId': { why: 'set by the server' },
  'Meta.lastUpdated': { why: 'set by the server' },
  'Meta.profile': {
    why: 'the NorPain profile the resource claims (any other URL could carry anything, a phone number too)',
    values: Object.values(NORPAIN_PROFILES),
  },
  'Coding.system': { why: 'the code system, one of those bound to the element' },
  'Coding.code': { why: 'the code' },
  'CodeableConcept.coding': { why: 'the codes' },
  'Period.start': { why: 'start' },
  'Period.end': { why: 'end' },
  'Quantity.value': { why: 'the number' },
  'Quantity.comparator': { why: 'less or more than' },
  'Quantity.system': { why: 'UCUM' },
  'Quantity.code': { why: 'the unit, as a UCUM code' },
  'Age.value': { why: 'the number' },
  'Age.system': { why: 'UCUM' },
  'Age.code': { why: 'the unit, as a UCUM code' },
  'Duration.value': { why: 'the number' },
  'Duration.system': { why: 'UCUM' },
  'Duration.code': { why: 'the unit, as a UCUM code' },
  'Reference.reference': { why: 'what it points at; a person is always the pseudonymous Patient' },
  'Reference.identifier': {
    why: 'a unit by its RESH id (public); other identifiers as keyed hashes',
    transform: 'keyed-hash',
  },
  'Reference.type': { why: 'the type it points at' },
  'Identifier.use': { why: 'usual or official' },
  'Identifier.system': { why: 'whose identifier' },
  'Identifier.value': { why: 'the value (a keyed hash unless public)' },
};

/** Identifier systems that name organisations or health personnel in public registers, or the registry's
 * own follow-up Tasks (episode id and time point): kept as sent, and searched as sent. */
export const publicIdentifierSystems: ReadonlySet<string> = new Set([
  TASK_IDENTIFIER_SYSTEM,
  'urn:oid:2.16.578.1.12.4.1.4.101', // Enhetsregisteret organisasjonsnummer
  'urn:oid:2.16.578.1.12.4.1.4.102', // RESH-id
  'urn:oid:2.16.578.1.12.4.1.4.4', // HPR-nummer
  'http://hl7.no/fhir/NamingSystem/HPR',
]);

/** Address extensions that carry the municipality (kommunenummer), kept by the `municipality` transform. */
export const municipalityExtensionUrls: ReadonlySet<string> = new Set([
  'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode',
]);

/** Address elements kept by the `municipality` transform: none of them is finer than a municipality. */
export const municipalityAddressElements: ReadonlySet<string> = new Set(['district', 'state', 'country']);

/** What replaces a national id found in free text. */
export const redactedNationalIdText = '[fødselsnummer fjernet]';
