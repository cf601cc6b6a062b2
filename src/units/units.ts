import fs from 'node:fs';
import type { Organization } from '@medplum/fhirtypes';
import { DEFAULT_UNITS_FILE } from '../config';
import { ConfigError } from '../config/ConfigError';
import type { FhirStore } from '../store/FhirStore';

/** RESH, the register of units in the specialist health service (HL7 Norway no-basis). */
export const RESH_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.4.102';

export interface Unit {
  resh: string;
  name: string;
  alias?: string;
  city?: string;
  /** The regional health authority (helseregion) the unit belongs to: the Nordic dataset reports by it. */
  region?: string;
}

/**
 * Reads the participating units (pain clinics) from the config file. The file is part of the
 * deployment, so a malformed one stops the start with a message naming the file and the entry.
 */
export function readUnits(file: string = DEFAULT_UNITS_FILE): Unit[] {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Units file ${file} cannot be read as JSON (${(err as Error).name})`);
  }
  const list = (json as { units?: unknown }).units;
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(`Units file ${file} must have a non-empty "units" array`);
  }
  const seen = new Set<string>();
  return list.map((entry: unknown, index) => {
    const unit = entry as Partial<Unit>;
    if (typeof unit.resh !== 'string' || !/^\d{1,9}$/.test(unit.resh)) {
      throw new ConfigError(`Units file ${file}: units[${index}].resh must be a string of 1-9 digits`);
    }
    if (typeof unit.name !== 'string' || unit.name.trim() === '') {
      throw new ConfigError(`Units file ${file}: units[${index}].name must be a non-empty string`);
    }
    if (seen.has(unit.resh)) {
      throw new ConfigError(`Units file ${file}: RESH id ${unit.resh} is listed twice`);
    }
    if (unit.region !== undefined && (typeof unit.region !== 'string' || unit.region.trim() === '')) {
      throw new ConfigError(
        `Units file ${file}: units[${index}].region must be a non-empty string when given`,
      );
    }
    seen.add(unit.resh);
    return { resh: unit.resh, name: unit.name, alias: unit.alias, city: unit.city, region: unit.region };
  });
}

/** The unit as the Organization the store holds (no-basis-Organization style RESH identifier). */
function unitOrganization(unit: Unit): Organization {
  const organization: Organization = {
    resourceType: 'Organization',
    identifier: [{ use: 'official', system: RESH_SYSTEM, value: unit.resh }],
    active: true,
    type: [
      {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/organization-type',
            code: 'prov',
            display: 'Healthcare Provider',
          },
        ],
      },
    ],
    name: unit.name,
  };
  if (unit.alias !== undefined) {
    organization.alias = [unit.alias];
  }
  if (unit.city !== undefined) {
    organization.address = [{ city: unit.city, country: 'NO' }];
  }
  return organization;
}

const participating = new Map<string, Set<string>>();

/** Whether a RESH id belongs to a participating unit (of the given units file, by default the repo's). */
export function isParticipatingUnit(resh: string, file: string = DEFAULT_UNITS_FILE): boolean {
  let set = participating.get(file);
  if (set === undefined) {
    set = new Set(readUnits(file).map((unit) => unit.resh));
    participating.set(file, set);
  }
  return set.has(resh);
}

export interface UnitLoadResult {
  created: number;
  updated: number;
  unchanged: number;
}

/**
 * Makes the store hold each unit as an Organization: conditional create on the RESH identifier, and an
 * update only when the config changed the unit, so restarts do not pile up versions.
 */
export async function loadUnits(store: FhirStore, units: Unit[]): Promise<UnitLoadResult> {
  const result: UnitLoadResult = { created: 0, updated: 0, unchanged: 0 };
  for (const unit of units) {
    const wanted = unitOrganization(unit);
    const query = `identifier=${encodeURIComponent(`${RESH_SYSTEM}|${unit.resh}`)}`;
    const { resource, created } = await store.create(wanted, { ifNoneExist: query });
    if (created) {
      result.created++;
    } else if (sameContent(resource, wanted)) {
      result.unchanged++;
    } else {
      await store.update({ ...wanted, id: resource.id as string }, { ifMatch: resource.meta?.versionId });
      result.updated++;
    }
  }
  return result;
}

function sameContent(stored: Organization, wanted: Organization): boolean {
  const { id: _id, meta: _meta, ...content } = stored;
  return JSON.stringify(canonical(content)) === JSON.stringify(canonical(wanted));
}

/** Key order must not make equal resources look different. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(canonical);
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}
