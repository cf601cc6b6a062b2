import path from 'node:path';
import type { EpisodeOfCare } from '@medplum/fhirtypes';
import type { ReservationRegister } from '../consent/register';
import { parseReference } from '../fhir/reference';
import { canonicalNationalId } from '../identity/nationalId';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import type { VaultReadContext } from '../identity/vault/audit';
import type { FhirStore } from '../store/FhirStore';
import { scanResources } from '../store/scan';
import type { NprContact } from './nprExtract';

/**
 * Coverage (dekningsgrad) against NPR (DESIGN §9; ../shared/reference/norway-fhir-and-law.md §6): the
 * extract's contacts are linked to the registry at person level through the identity vault, then per
 * participating unit and nationally
 *
 *   coverage = (registry only + both) / (NPR only + registry only + both).
 *
 * Who counts where (docs/npr-extract.md):
 * - NPR side: a person with at least one contact in the year at the unit (nationally: at any
 *   participating unit); contacts at other units are counted in `extract.otherUnits` and left out.
 * - Registry side: a person with an episode at the unit that has started and overlaps the year.
 * - Per unit, linkage is by person *and* unit: someone NPR saw at unit A whom the registry holds only
 *   from unit B is NPR-only at A and registry-only at B (unit A did not register them); nationally the
 *   same person is in both.
 * - A person who has reserved themselves is in neither: the registry may not hold them, so they are not
 *   among those it should hold. They are counted apart (`reserved`, in aggregate only).
 * Every national id of a person links: a changed number or a D-number later replaced by an FNR.
 */
export interface CoverageCounts {
  nprOnly: number;
  registryOnly: number;
  both: number;
  /** NPR persons who have reserved themselves: in neither side of the formula. */
  reserved: number;
  /** (registryOnly + both) / (nprOnly + registryOnly + both), rounded to 4 decimals; null when nobody. */
  coverage: number | null;
}

export interface CoverageReport {
  year: number;
  /** ISO instant the figures were made. */
  made: string;
  units: Record<string, CoverageCounts>;
  national: CoverageCounts;
  extract: {
    rows: number;
    /** Rows used: good rows with a contact in the year at a participating unit. */
    used: number;
    malformed: number;
    malformedReasons: Record<string, number>;
    /** Good rows at units that do not take part in NorPain. */
    otherUnits: number;
    /** Good rows with no contact in the year. */
    otherYears: number;
  };
}

/** Where `norpain coverage` writes a year's figures (JSON, a CoverageReport), and the annual report reads them. */
export function coverageReportPath(dataDir: string, year: number): string {
  return path.join(dataDir, 'reports', `coverage-${year}.json`);
}

export interface CoverageInput {
  year: number;
  contacts: readonly NprContact[];
  extract: { rows: number; malformed: Record<string, number> };
  units: readonly string[];
  store: FhirStore;
  vault: IdentityVault;
  register: ReservationRegister;
  audit: VaultReadContext;
}

export async function computeCoverage(input: CoverageInput): Promise<CoverageReport> {
  const { year } = input;
  const from = `${year}-01-01`;
  const to = `${year}-12-31`;
  const participating = new Set(input.units);
  const registry = await registeredInYear(input.store, from, to, participating);

  // The one vault read: every person with every id they have had, audited once with the count.
  const patientOf = new Map<string, string>();
  for (const person of input.vault.forCoverageLinkage(input.audit)) {
    for (const id of person.ids) {
      patientOf.set(canonicalNationalId(id), person.patientId);
    }
  }

  const npr = new Map<string, Set<string>>();
  const reserved = new Map<string, Set<string>>();
  const reservedCache = new Map<string, boolean>();
  let otherUnits = 0;
  let otherYears = 0;
  let used = 0;
  for (const contact of input.contacts) {
    if (!participating.has(contact.resh)) {
      otherUnits++;
      continue;
    }
    if (contact.date > to || (contact.end ?? contact.date) < from) {
      otherYears++;
      continue;
    }
    used++;
    const canonical = canonicalNationalId(contact.id);
    const patientId = patientOf.get(canonical);
    if (patientId !== undefined) {
      add(npr, contact.resh, patientId);
      continue;
    }
    let isReserved = reservedCache.get(canonical);
    if (isReserved === undefined) {
      isReserved = input.register.activeFor([input.register.hashNationalId(contact.id)]) !== undefined;
      reservedCache.set(canonical, isReserved);
    }
    // Unlinked persons are keyed by their id in memory only; the report holds counts.
    add(isReserved ? reserved : npr, contact.resh, `npr:${canonical}`);
  }
  patientOf.clear();
  reservedCache.clear();

  const units: Record<string, CoverageCounts> = {};
  for (const unit of input.units) {
    units[unit] = counts(
      registry.get(unit) ?? new Set(),
      npr.get(unit) ?? new Set(),
      reserved.get(unit) ?? new Set(),
    );
  }
  const union = (m: Map<string, Set<string>>) => new Set([...m.values()].flatMap((s) => [...s]));
  return {
    year,
    made: new Date().toISOString(),
    units,
    national: counts(union(registry), union(npr), union(reserved)),
    extract: {
      rows: input.extract.rows,
      used,
      malformed: Object.values(input.extract.malformed).reduce((a, b) => a + b, 0),
      malformedReasons: input.extract.malformed,
      otherUnits,
      otherYears,
    },
  };
}

/**
 * The search for the episodes whose period overlaps the year: it ends after the year before (or is open)
 * and starts before the next. gt/lt rather than ge/le, whose FHIR meaning on a Period leaves out one
 * that ends on the year's first day.
 */
export function episodesOverlapping(year: number): string {
  return `EpisodeOfCare?date=gt${year - 1}-12-31&date=lt${year + 1}-01-01`;
}

/** Patient ids with an episode at each participating unit that has started and overlaps [from, to]. */
async function registeredInYear(
  store: FhirStore,
  from: string,
  to: string,
  participating: ReadonlySet<string>,
): Promise<Map<string, Set<string>>> {
  const byUnit = new Map<string, Set<string>>();
  for await (const episode of scanResources<EpisodeOfCare>(store, episodesOverlapping(Number(from.slice(0, 4))))) {
    const unit = episode.managingOrganization?.identifier?.value;
    const start = episode.period?.start?.slice(0, 10);
    const end = episode.period?.end?.slice(0, 10);
    const patient = parseReference(episode.patient?.reference ?? '');
    if (
      unit === undefined ||
      !participating.has(unit) ||
      start === undefined ||
      start > to ||
      (end !== undefined && end < from) ||
      !patient.ok ||
      patient.reference.kind !== 'literal'
    ) {
      continue;
    }
    add(byUnit, unit, patient.reference.id);
  }
  return byUnit;
}

function add(map: Map<string, Set<string>>, unit: string, person: string): void {
  let set = map.get(unit);
  if (!set) {
    set = new Set();
    map.set(unit, set);
  }
  set.add(person);
}

function counts(registry: ReadonlySet<string>, npr: ReadonlySet<string>, reserved: ReadonlySet<string>): CoverageCounts {
  let both = 0;
  for (const person of npr) {
    if (registry.has(person)) {
      both++;
    }
  }
  const nprOnly = npr.size - both;
  const registryOnly = registry.size - both;
  const denominator = nprOnly + registryOnly + both;
  return {
    nprOnly,
    registryOnly,
    both,
    reserved: reserved.size,
    coverage: denominator === 0 ? null : Math.round(((registryOnly + both) / denominator) * 10000) / 10000,
  };
}
