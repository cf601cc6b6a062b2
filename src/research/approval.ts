import type { Extension, ResearchStudy } from '@medplum/fhirtypes';
import { clinicalResourceTypes, type ClinicalResourceType } from '../dictionary/dictionary';
import { parseCanonical } from '../validation/questionnaire';

/**
 * A research approval (DESIGN §3.5): a ResearchStudy with the NorPain approval profile
 * (profiles/input/fsh/researchstudy.fsh), read into what the study view needs. Registry staff write it;
 * its variables are checked against the data dictionary on the way in (approvalCheck.ts).
 */

/** The types of a study view: the person data the clinics and the portal send (the data dictionary's). */
export const STUDY_RESOURCE_TYPES = clinicalResourceTypes;

export type StudyResourceType = ClinicalResourceType;

export function isStudyResourceType(type: string): type is StudyResourceType {
  return (STUDY_RESOURCE_TYPES as readonly string[]).includes(type);
}

const EXTENSION = 'https://norpain.no/fhir/StructureDefinition/';
const APPROVAL_EXTENSIONS = {
  variable: `${EXTENSION}approved-variable`,
  datePrecision: `${EXTENSION}date-precision`,
  ageBand: `${EXTENSION}age-band`,
  coveredUnit: `${EXTENSION}covered-unit`,
} as const;

export type DatePrecision = 'year' | 'month' | 'day';

export interface Approval {
  /** The ResearchStudy id (what a researcher token's `norpain_study` names). */
  id: string;
  /** The registry's case number (ResearchStudy.identifier.value). */
  caseNumber: string;
  status: string;
  /** The approval period, as dates (YYYY-MM-DD). */
  period: { start: string; end: string };
  /** Approved resource elements per type: paths below the resource as the data dictionary names them. */
  elements: ReadonlyMap<StudyResourceType, readonly string[]>;
  /** Approved Questionnaire items: the Questionnaire's canonical url (without version) → linkIds. */
  items: ReadonlyMap<string, ReadonlySet<string>>;
  datePrecision: DatePrecision;
  /** Width of the age bands in years; without it no age is given. */
  ageBand?: number;
  /** The covered units, by RESH id. */
  units: readonly string[];
}

/** An approved variable as written: a resource element or a Questionnaire item. */
export type Variable =
  { kind: 'element'; type: string; path: string } | { kind: 'item'; questionnaire: string; linkId: string };

/** `EpisodeOfCare.period` or `<Questionnaire url>#<linkId>`; undefined when it is neither. */
export function parseVariable(text: string): Variable | undefined {
  const hash = text.indexOf('#');
  if (hash > 0) {
    const linkId = text.slice(hash + 1);
    const url = parseCanonical(text.slice(0, hash)).url;
    return linkId === '' || url === '' ? undefined : { kind: 'item', questionnaire: url, linkId };
  }
  const match = /^([A-Z][A-Za-z]+)\.([a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*)$/.exec(text);
  return match ? { kind: 'element', type: match[1], path: match[2] } : undefined;
}

/** The variables of an approval as written, with where each stands (for error expressions). */
export function variablesOf(study: ResearchStudy): { text: string; index: number }[] {
  return (study.extension ?? []).flatMap((extension, index) =>
    extension.url === APPROVAL_EXTENSIONS.variable && typeof extension.valueString === 'string'
      ? [{ text: extension.valueString, index }]
      : [],
  );
}

const withUrl = (study: ResearchStudy, url: string): Extension[] =>
  (study.extension ?? []).filter((e) => e.url === url);

/**
 * The approval a stored ResearchStudy holds, or undefined when it is not one (missing period, precision,
 * units, case number): a study the write path let in always is one, so undefined means "not an approval".
 */
export function parseApproval(study: ResearchStudy): Approval | undefined {
  const start = study.period?.start?.slice(0, 10);
  const end = study.period?.end?.slice(0, 10);
  const precision = withUrl(study, APPROVAL_EXTENSIONS.datePrecision)[0]?.valueCode;
  const units = withUrl(study, APPROVAL_EXTENSIONS.coveredUnit).flatMap((e) =>
    e.valueIdentifier?.value ? [e.valueIdentifier.value] : [],
  );
  const caseNumber = study.identifier?.[0]?.value;
  if (
    study.id === undefined ||
    start === undefined ||
    end === undefined ||
    caseNumber === undefined ||
    units.length === 0 ||
    (precision !== 'year' && precision !== 'month' && precision !== 'day')
  ) {
    return undefined;
  }
  const elements = new Map<StudyResourceType, string[]>();
  const items = new Map<string, Set<string>>();
  for (const { text } of variablesOf(study)) {
    const variable = parseVariable(text);
    if (variable?.kind === 'element' && isStudyResourceType(variable.type)) {
      elements.set(variable.type, [...(elements.get(variable.type) ?? []), variable.path]);
    } else if (variable?.kind === 'item') {
      items.set(
        variable.questionnaire,
        (items.get(variable.questionnaire) ?? new Set()).add(variable.linkId),
      );
    }
  }
  const ageBand = withUrl(study, APPROVAL_EXTENSIONS.ageBand)[0]?.valuePositiveInt;
  return {
    id: study.id,
    caseNumber,
    status: study.status ?? 'unknown',
    period: { start, end },
    elements,
    items,
    datePrecision: precision,
    ageBand,
    units,
  };
}
