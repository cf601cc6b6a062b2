import {
  getSearchParameters,
  Operator,
  splitSearchOnComma,
  type Filter,
  type SearchRequest,
} from '@medplum/core';
import type { ResearchStudy, Resource, ResourceType } from '@medplum/fhirtypes';
import type { Principal } from '../auth/principal';
import { errors, isFhirError } from '../fhir/outcomes';
import { isFhirId, parseReference } from '../fhir/reference';
import type { FhirStore, HistoryOptions, HistoryResult, SearchResult } from '../store/FhirStore';
import { scanReferences, scanResources } from '../store/scan';
import { isStudyResourceType, parseApproval, type Approval, type StudyResourceType } from './approval';
import { coarsenDate, projectResource } from './project';
import type { ProjectPseudonyms, StudyPseudonyms } from './pseudonyms';
import { checkResearcherSearch, DATED, periodFilters, searchFilters, typeInView, viewFilters } from './scope';

export type { Approval, StudyResourceType } from './approval';

/**
 * The study view (DESIGN §3.5, §5): what the researcher of one approved study sees of the clinical
 * store. Export and statistics read it through `stream`; the researcher's FHIR reads and searches through
 * the same `Study` (src/research/store.ts). Which resources are in it is scope.ts; how each is shown,
 * project.ts; the ids, pseudonyms.ts.
 */
export interface StudyView {
  readonly study: Approval;
  /** Every resource of `type` in the view, as the researcher sees it, in a stable order, read from the
   * store page by page (memory flat whatever the size). `since`: changed after that instant; `until`:
   * changed at that instant or before (an export's transactionTime); `patients`: only these persons
   * (project pseudonyms). */
  stream(type: StudyResourceType, opts?: StreamOptions): AsyncIterable<Resource>;
}

export interface StreamOptions {
  since?: string;
  until?: string;
  patients?: readonly string[];
}

export interface StudyViewDeps {
  /** The clinical store, unfiltered. */
  store: FhirStore;
  pseudonyms: ProjectPseudonyms;
  /** Patient ids of persons who have reserved and whose erasure is not complete yet: never shown. */
  withheld(): ReadonlySet<string>;
  now?: () => Date;
}

/** The view of the principal's study; throws the 403 OperationOutcome error when the token may not use it. */
export async function openStudyView(principal: Principal, deps: StudyViewDeps): Promise<StudyView> {
  return openStudy(principal, deps);
}

const PAGE = 1000;
/** Persons per store query when a search is held to a list of them. */
const PERSONS_PER_QUERY = 50;
/** Resources a stream checks at once against the reservations and the cohort (one store query). */
const ADMIT = PERSONS_PER_QUERY;
/** What a text that is no project id becomes: no registry resource has this id (theirs are UUIDs), so it
 * matches nothing, as an id of nothing would. */
const NO_SUCH_ID = 'not-in-study';

/** The reference parameter that names the person, per type. */
const PERSON_PARAM: Record<StudyResourceType, string> = {
  Patient: '_id',
  EpisodeOfCare: 'patient',
  Encounter: 'subject',
  Condition: 'subject',
  Procedure: 'subject',
  QuestionnaireResponse: 'subject',
};

/** Types whose persons must be checked against the cohort after the store search (no date of their own). */
const COHORT_CHECKED = new Set<StudyResourceType>(['Patient', 'Condition', 'Procedure']);

export async function openStudy(principal: Principal, deps: StudyViewDeps): Promise<Study> {
  const refuse = (text: string) => errors.forbidden(text);
  if (principal.role !== 'researcher' || principal.study === undefined) {
    throw refuse('The study view is for researcher tokens bound to an approved study (norpain_study).');
  }
  const unknown = refuse(
    "The token's study (norpain_study) is not an approved study of the registry: it is unknown or has been retired.",
  );
  if (!isFhirId(principal.study)) throw unknown;
  let study: ResearchStudy;
  try {
    study = await deps.store.read<ResearchStudy>('ResearchStudy', principal.study);
  } catch (err) {
    if (isFhirError(err) && (err.status === 404 || err.status === 410)) throw unknown;
    throw err;
  }
  const approval = parseApproval(study);
  if (approval === undefined) throw unknown;
  if (approval.status !== 'active') {
    throw refuse(`The token's study is not active (its status is '${approval.status}'); its view is closed.`);
  }
  const today = (deps.now?.() ?? new Date()).toISOString().slice(0, 10);
  if (today < approval.period.start || today > approval.period.end) {
    throw refuse(
      `The token's study is approved from ${approval.period.start} to ${approval.period.end}; its view is closed outside that period.`,
    );
  }
  return new Study(approval, deps, deps.pseudonyms.forStudy(approval.id));
}

/** One study's view, for one request or one export. */
export class Study implements StudyView {
  private readonly cohortCache = new Map<string, boolean>();
  /** Whether cohortCache holds the whole cohort (see primeCohort): a person not in it is outside. */
  private primed = false;

  constructor(
    readonly study: Approval,
    private readonly deps: StudyViewDeps,
    private readonly pseudonyms: StudyPseudonyms,
  ) {}

  async *stream(type: StudyResourceType, opts: StreamOptions = {}): AsyncIterable<Resource> {
    if (!typeInView(this.study, type)) return;
    const filters = viewFilters(this.study, type);
    if (opts.since !== undefined) {
      filters.push({ code: '_lastUpdated', operator: Operator.GREATER_THAN, value: opts.since });
    }
    if (opts.until !== undefined) {
      filters.push({ code: '_lastUpdated', operator: Operator.LESS_THAN_OR_EQUALS, value: opts.until });
    }
    const groups =
      opts.patients === undefined
        ? [filters]
        : chunks(
            opts.patients.flatMap((p) => this.registryIds('Patient', p)),
            PERSONS_PER_QUERY,
          ).map((persons) => [...filters, personFilter(type, persons)]);
    if (opts.patients === undefined && COHORT_CHECKED.has(type)) await this.primeCohort();
    for (const group of groups) {
      let read: Resource[] = [];
      for await (const resource of scanResources(this.deps.store, { resourceType: type, filters: group })) {
        // Admitted and projected a few at a time: a stored QuestionnaireResponse's tree is many times
        // its projection, and a batch of them held across the stream's pauses would fill the heap.
        read.push(resource);
        if (read.length === ADMIT) {
          yield* this.project(await this.admit(read));
          read = [];
        }
      }
      yield* this.project(await this.admit(read));
    }
  }

  /** A researcher's search (ids in it are project ids), answered inside the view. */
  async search(request: SearchRequest): Promise<SearchResult> {
    const type = request.resourceType;
    if (!isStudyResourceType(type)) return { matches: [], included: [], total: 0 };
    // Refused before anything is looked up, also for a type outside the view: the answer is the same.
    checkResearcherSearch(this.study, request);
    if (!typeInView(this.study, type)) return { matches: [], included: [], total: 0 };
    const own = (request.filters ?? []).map((f) => this.translateFilter(type, f));
    const filters = searchFilters(this.study, type, own);
    const result = await this.deps.store.search({ ...request, filters });
    const matches = await this.admit(result.matches);
    const included = await this.inView(result.included);
    const answer: SearchResult = {
      matches: this.project(matches),
      included: this.project(included),
      ...(result.nextOffset !== undefined ? { nextOffset: result.nextOffset } : {}),
    };
    // The store counts before the person check: that count would tell about persons outside the view.
    if (result.total !== undefined && !COHORT_CHECKED.has(type)) answer.total = result.total;
    return answer;
  }

  async read<T extends Resource>(type: ResourceType, projectId: string, versionId?: string): Promise<T> {
    const current = await this.current(type, projectId);
    if (versionId === undefined) return this.project([current])[0] as T;
    let version: Resource;
    try {
      version = await this.deps.store.vread(type, current.id as string, versionId);
    } catch (err) {
      if (isFhirError(err) && err.status < 500) throw hidden(type);
      throw err;
    }
    return this.project([version])[0] as T;
  }

  async history(
    type: ResourceType,
    projectId: string | undefined,
    options: HistoryOptions,
  ): Promise<HistoryResult> {
    if (!isStudyResourceType(type) || !typeInView(this.study, type)) return { entries: [], total: 0 };
    const registryId = projectId === undefined ? undefined : (await this.current(type, projectId)).id;
    const result = await this.deps.store.history(type, registryId, options);
    const ids = [...new Set(result.entries.map((e) => e.id))];
    const visible = new Set<string>(
      registryId !== undefined ? [registryId] : await this.visibleIds(type, ids),
    );
    const entries = [];
    for (const entry of result.entries.filter((e) => visible.has(e.id))) {
      const resource = entry.resource === undefined ? undefined : this.project([entry.resource])[0];
      entries.push({
        ...entry,
        id: this.pseudonyms.id(type, entry.id),
        lastUpdated: coarsenDate(entry.lastUpdated, this.study.datePrecision),
        ...(resource !== undefined ? { resource } : {}),
      });
    }
    return {
      entries,
      total: entries.length,
      ...(result.nextOffset !== undefined ? { nextOffset: result.nextOffset } : {}),
    };
  }

  /** The current version of a resource in the view, by project id; 404 when there is none. */
  private async current(type: ResourceType, projectId: string): Promise<Resource> {
    const registryId = isStudyResourceType(type) ? this.pseudonyms.registryId(type, projectId) : undefined;
    if (registryId === undefined) throw hidden(type);
    let resource: Resource;
    try {
      resource = await this.deps.store.read(type, registryId);
    } catch (err) {
      if (isFhirError(err) && err.status < 500) throw hidden(type);
      throw err;
    }
    if ((await this.inView([resource])).length === 0) throw hidden(type);
    return resource;
  }

  /** Of these stored resources, those in the view (any types; one store query per type). */
  private async inView(resources: readonly Resource[]): Promise<Resource[]> {
    const byType = new Map<StudyResourceType, string[]>();
    for (const r of resources) {
      if (isStudyResourceType(r.resourceType) && r.id !== undefined) {
        byType.set(r.resourceType, [...(byType.get(r.resourceType) ?? []), r.id]);
      }
    }
    const visible = new Set<string>();
    for (const [type, ids] of byType) {
      for (const id of await this.visibleIds(type, ids)) visible.add(`${type}/${id}`);
    }
    return this.admit(resources.filter((r) => visible.has(`${r.resourceType}/${r.id}`)));
  }

  /** Of these registry ids of `type`, those the view's store filters match. */
  private async visibleIds(type: StudyResourceType, ids: readonly string[]): Promise<string[]> {
    if (!typeInView(this.study, type)) return [];
    const found: string[] = [];
    for (const chunk of chunks(ids, PERSONS_PER_QUERY)) {
      const result = await this.deps.store.search({
        resourceType: type,
        filters: [
          ...viewFilters(this.study, type),
          { code: '_id', operator: Operator.EQUALS, value: chunk.join(',') },
        ],
        count: chunk.length,
      });
      found.push(...result.matches.map((r) => r.id as string));
    }
    return found;
  }

  /** The store's matches without withheld persons and, for the undated types, persons outside the cohort. */
  private async admit<T extends Resource>(resources: readonly T[]): Promise<T[]> {
    const withheld = this.deps.withheld();
    const persons = resources.map(personOf);
    const check = [
      ...new Set(
        resources.flatMap((r, i) =>
          COHORT_CHECKED.has(r.resourceType as StudyResourceType) && persons[i] !== undefined
            ? [persons[i] as string]
            : [],
        ),
      ),
    ];
    await this.fillCohort(check);
    return resources.filter((r, i) => {
      const person = persons[i];
      if (person !== undefined && withheld.has(person)) return false;
      if (!COHORT_CHECKED.has(r.resourceType as StudyResourceType)) return true;
      return person !== undefined && this.cohortCache.get(person) === true;
    });
  }

  /**
   * Reads the whole cohort, for a stream of the whole view: the persons the dated resources at the covered
   * units in the period are about, one pass over each dated type's reference index (no resource read),
   * instead of a few persons per store query as the stream meets them. It is the cohort as of this read,
   * as a lazy look-up during the stream would see it.
   */
  private async primeCohort(): Promise<void> {
    if (this.primed) return;
    for (const type of Object.keys(DATED) as StudyResourceType[]) {
      const dated: SearchRequest = { resourceType: type, filters: periodFilters(this.study, type) };
      for await (const target of scanReferences(this.deps.store, dated, PERSON_PARAM[type])) {
        const person = patientIdIn(target);
        if (person !== undefined) this.cohortCache.set(person, true);
      }
    }
    this.primed = true;
  }

  /** Finds which of these persons have a dated resource in the view (the cohort), and remembers it. */
  private async fillCohort(persons: readonly string[]): Promise<void> {
    if (this.primed) return; // everyone in the cohort is known
    let open = persons.filter((p) => !this.cohortCache.has(p));
    for (const type of Object.keys(DATED) as StudyResourceType[]) {
      for (const chunk of chunks(open, PERSONS_PER_QUERY)) {
        for (let offset: number | undefined = 0; offset !== undefined;) {
          const result: SearchResult = await this.deps.store.search({
            resourceType: type,
            filters: [...periodFilters(this.study, type), personFilter(type, chunk)],
            count: PAGE,
            offset,
          });
          for (const r of result.matches) {
            const person = personOf(r);
            if (person !== undefined) this.cohortCache.set(person, true);
          }
          offset = chunk.every((p) => this.cohortCache.has(p)) ? undefined : result.nextOffset;
        }
      }
      open = open.filter((p) => !this.cohortCache.has(p));
    }
    for (const p of open) this.cohortCache.set(p, false);
  }

  /** The resources as the study shows them. */
  private project(resources: readonly Resource[]): Resource[] {
    return resources.map((r) => projectResource(r, { approval: this.study, pseudonyms: this.pseudonyms }));
  }

  /** The registry ids behind a project id: of `type`, or of each study type a bare id could be. */
  private registryIds(type: string, projectId: string): string[] {
    const id = isStudyResourceType(type) ? this.pseudonyms.registryId(type, projectId) : undefined;
    return [id ?? NO_SUCH_ID];
  }

  /** A researcher's filter with project ids turned into registry ids (unknown ones into nothing). */
  private translateFilter(type: StudyResourceType, filter: Filter): Filter {
    if (filter.code === '_id') {
      const values = splitSearchOnComma(filter.value).flatMap((v) => this.registryIds(type, v));
      return { ...filter, value: values.join(',') };
    }
    const param = getSearchParameters(type)?.[filter.code];
    if (param?.type !== 'reference') return filter;
    const targets = (param.target ?? []).filter(isStudyResourceType);
    const values = splitSearchOnComma(filter.value).map((value) => {
      const parsed = parseReference(value);
      if (parsed.ok && parsed.reference.kind === 'literal') {
        const target = parsed.reference.resourceType;
        return isStudyResourceType(target)
          ? `${target}/${this.registryIds(target, parsed.reference.id)[0]}`
          : value;
      }
      if (targets.length === 0) return value; // a canonical or a definition: not ids of this study
      // A bare id: of any study type the parameter points at (each has its own key), so all of them.
      return targets.map((target) => `${target}/${this.registryIds(target, value)[0]}`).join(',');
    });
    return { ...filter, value: values.join(',') };
  }
}

function hidden(type: string) {
  return errors.notFound(`${type} not found.`);
}

/** The Patient id of the person a stored resource is about. */
function personOf(resource: Resource): string | undefined {
  if (resource.resourceType === 'Patient') return resource.id;
  const holder = resource as { subject?: { reference?: string }; patient?: { reference?: string } };
  const text = holder.subject?.reference ?? holder.patient?.reference;
  return text === undefined ? undefined : patientIdIn(text);
}

/** The Patient id a reference names, when it names a Patient. */
function patientIdIn(reference: string): string | undefined {
  const parsed = parseReference(reference);
  return parsed.ok && parsed.reference.kind === 'literal' && parsed.reference.resourceType === 'Patient'
    ? parsed.reference.id
    : undefined;
}

function personFilter(type: StudyResourceType, persons: readonly string[]): Filter {
  const param = PERSON_PARAM[type];
  return {
    code: param,
    operator: Operator.EQUALS,
    value: persons.map((p) => (param === '_id' ? p : `Patient/${p}`)).join(','),
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
