import type { QuestionnaireResponseItem, Resource } from '@medplum/fhirtypes';
import { parseReference } from '../fhir/reference';
import { RESH_SYSTEM } from '../units/units';
import { parseCanonical } from '../validation/questionnaire';
import { isStudyResourceType, type Approval, type DatePrecision, type StudyResourceType } from './approval';
import type { StudyPseudonyms } from './pseudonyms';

/**
 * THE projection of the study view (DESIGN §3.5): a stored resource as a study's researcher sees it. Every
 * read path (read, vread, search matches, `_include`/`_revinclude`, history, export, statistics) goes
 * through this one function, so they cannot disagree about what is shown:
 *
 * - only the approved elements (and of a QuestionnaireResponse its `questionnaire` and the approved
 *   items), plus `resourceType`, `id` and `meta.lastUpdated`;
 * - no free text anywhere (text, display, note, descriptions, string answers), no identifier;
 * - every date cut to the approved precision;
 * - a Patient's birth date replaced by the age band at the approval's start (only with an age band);
 * - ids and references to person data as project pseudonyms; references to definitions (units,
 *   Questionnaires) kept; any other reference left out;
 * - of an approved EpisodeOfCare.managingOrganization, the unit's RESH id when it is a covered unit (the
 *   one identifier shown: a public id of a clinic, which per-unit statistics group by).
 */

export const AGE_BAND_URL = 'https://norpain.no/fhir/StructureDefinition/study-age-band';

/** Keys whose values are free text or identify, wherever they stand. */
const NEVER = new Set([
  'text',
  'display',
  'note',
  'comment',
  'description',
  'div',
  'identifier',
  'valueString',
  'valueMarkdown',
  'valueAttachment',
  'valueUri',
  'valueUrl',
]);
/** Keys whose string values are never dates, even when they look like one. */
const NOT_DATES = new Set(['code', 'system', 'version', 'linkId', 'reference', 'url', 'id', 'unit']);
const DATE = /^\d{4}(-\d{2}(-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?)?)?$/;
/** Types a reference may keep pointing at as they are: definitions without person data. */
const DEFINITIONS = new Set(['Organization', 'Questionnaire']);
const LENGTH: Record<DatePrecision, number> = { year: 4, month: 7, day: 10 };

export interface ProjectionContext {
  approval: Approval;
  pseudonyms: StudyPseudonyms;
}

export function coarsenDate(value: string, precision: DatePrecision): string {
  return value.length > LENGTH[precision] ? value.slice(0, LENGTH[precision]) : value;
}

/** The resource as the study's researcher sees it (see above). */
export function projectResource<T extends Resource>(resource: T, ctx: ProjectionContext): T {
  const type = resource.resourceType;
  if (!isStudyResourceType(type) || resource.id === undefined) {
    throw new Error(`${type} is not a type of the study view`);
  }
  const source = resource as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {
    resourceType: type,
    id: ctx.pseudonyms.id(type, resource.id),
  };
  if (resource.meta?.lastUpdated !== undefined) {
    out.meta = { lastUpdated: resource.meta.lastUpdated };
  }
  Object.assign(out, pick(source, pathTree(ctx.approval.elements.get(type) ?? NONE)));
  if (type === 'QuestionnaireResponse') {
    const questionnaire = source.questionnaire;
    const linkIds =
      typeof questionnaire === 'string'
        ? ctx.approval.items.get(parseCanonical(questionnaire).url)
        : undefined;
    out.questionnaire = questionnaire;
    const items = linkIds
      ? approvedItems(source.item as QuestionnaireResponseItem[] | undefined, linkIds)
      : [];
    if (items.length > 0) out.item = items;
  }
  if (type === 'Patient') {
    const band = ageBand(source.birthDate, ctx.approval);
    if (band !== undefined) out.extension = [band];
  }
  const shown = clean(out, ctx, '') as Record<string, unknown>;
  const unit = type === 'EpisodeOfCare' ? coveredUnit(out.managingOrganization, ctx.approval) : undefined;
  if (unit !== undefined) {
    shown.managingOrganization = { ...(shown.managingOrganization as object | undefined), identifier: unit };
  }
  return shown as T;
}

/** The RESH identifier of an approved managingOrganization, when it names a unit the study covers. */
function coveredUnit(
  organization: unknown,
  approval: Approval,
): { system: string; value: string } | undefined {
  const identifier = (organization as { identifier?: { system?: unknown; value?: unknown } } | undefined)
    ?.identifier;
  return identifier?.system === RESH_SYSTEM &&
    typeof identifier.value === 'string' &&
    approval.units.includes(identifier.value)
    ? { system: RESH_SYSTEM, value: identifier.value }
    : undefined;
}

/** Approved paths as a tree: `statusHistory.period` → statusHistory → period; `true`: the whole value. */
type Tree = Map<string, Tree | true>;

const NONE: readonly string[] = [];
/** Trees made, by the approval's list of paths: each type of a study is compiled once, not per resource. */
const trees = new WeakMap<readonly string[], Tree>();

function pathTree(paths: readonly string[]): Tree {
  const made = trees.get(paths);
  if (made !== undefined) return made;
  const root: Tree = new Map();
  trees.set(paths, root);
  for (const path of paths) {
    const parts = path.split('.');
    let node: Tree = root;
    for (const [i, part] of parts.entries()) {
      const existing = node.get(part);
      if (existing === true) break; // an ancestor is approved whole
      if (i === parts.length - 1) {
        node.set(part, true);
        break;
      }
      const next: Tree = existing ?? new Map<string, Tree | true>();
      node.set(part, next);
      node = next;
    }
  }
  return root;
}

function pick(source: Record<string, unknown>, tree: Tree): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, below] of tree) {
    const value = source[key];
    if (value === undefined) continue;
    if (below === true) {
      out[key] = value;
    } else if (Array.isArray(value)) {
      const picked = value
        .filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null)
        .map((v) => pick(v, below))
        .filter((v) => Object.keys(v).length > 0);
      if (picked.length > 0) out[key] = picked;
    } else if (typeof value === 'object' && value !== null) {
      const picked = pick(value as Record<string, unknown>, below);
      if (Object.keys(picked).length > 0) out[key] = picked;
    }
  }
  return out;
}

const NO_ITEMS: QuestionnaireResponseItem[] = [];

/** Items whose linkId is approved (with all below them), and groups on the way to one. */
function approvedItems(
  items: QuestionnaireResponseItem[] | undefined,
  linkIds: ReadonlySet<string>,
): QuestionnaireResponseItem[] {
  const out: QuestionnaireResponseItem[] = [];
  for (const item of items ?? []) {
    if (linkIds.has(item.linkId ?? '')) {
      out.push(item);
      continue;
    }
    // Most items are questions with nothing below them: nothing is made for those.
    const inner = item.item === undefined ? NO_ITEMS : approvedItems(item.item, linkIds);
    const answers: QuestionnaireResponseItem['answer'] = [];
    for (const answer of item.answer ?? []) {
      const below = answer.item === undefined ? NO_ITEMS : approvedItems(answer.item, linkIds);
      if (below.length > 0) answers.push({ item: below });
    }
    if (inner.length > 0 || answers.length > 0) {
      out.push({
        linkId: item.linkId,
        ...(inner.length > 0 ? { item: inner } : {}),
        ...(answers.length > 0 ? { answer: answers } : {}),
      });
    }
  }
  return out;
}

/** The age band at the approval's start, from the birth date (stored to the month). */
function ageBand(birthDate: unknown, approval: Approval): Record<string, unknown> | undefined {
  if (approval.ageBand === undefined || typeof birthDate !== 'string' || !/^\d{4}/.test(birthDate)) {
    return undefined;
  }
  const [year, month = '01'] = birthDate.split('-');
  const [refYear, refMonth] = approval.period.start.split('-');
  const age = Number(refYear) - Number(year) - (Number(refMonth) < Number(month) ? 1 : 0);
  const low = Math.floor(Math.max(age, 0) / approval.ageBand) * approval.ageBand;
  const years = (value: number) => ({ value, unit: 'a', system: 'http://unitsofmeasure.org', code: 'a' });
  return { url: AGE_BAND_URL, valueRange: { low: years(low), high: years(low + approval.ageBand - 1) } };
}

/** Free text and identifiers out, dates coarsened, references rewritten (see the module comment). */
function clean(value: unknown, ctx: ProjectionContext, key: string): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => clean(v, ctx, key)).filter((v) => v !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (typeof value === 'string') {
    return !NOT_DATES.has(key) && DATE.test(value) ? coarsenDate(value, ctx.approval.datePrecision) : value;
  }
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  // Walked key by key without taking the entries out first: an export cleans millions of objects.
  const out: Record<string, unknown> = {};
  let empty = true;
  for (const k in value) {
    if (NEVER.has(k)) continue;
    const v = (value as Record<string, unknown>)[k];
    if (k === 'reference' && typeof v === 'string') {
      const rewritten = rewriteReference(v, ctx);
      if (rewritten === undefined) return undefined; // a reference the view cannot show: left out whole
      out.reference = rewritten;
      empty = false;
      continue;
    }
    const cleaned = clean(v, ctx, k);
    if (cleaned !== undefined) {
      out[k] = cleaned;
      empty = false;
    }
  }
  return empty ? undefined : out;
}

function rewriteReference(text: string, ctx: ProjectionContext): string | undefined {
  const parsed = parseReference(text);
  if (!parsed.ok || parsed.reference.kind !== 'literal') return undefined;
  const { resourceType, id } = parsed.reference;
  if (DEFINITIONS.has(resourceType)) return `${resourceType}/${id}`;
  return isStudyResourceType(resourceType)
    ? `${resourceType}/${ctx.pseudonyms.id(resourceType as StudyResourceType, id)}`
    : undefined;
}
