import type { Identifier } from '@medplum/fhirtypes';
import {
  assignerKey,
  nationalIdKindOf,
  parseNationalIdValue,
  sameSystem,
  type NationalId,
  type NationalIdKind,
} from '../identity/nationalId';
import { parseReference } from '../fhir/reference';
import { registryPseudonymSystem } from '../identity/pseudonym';
import { entryLocation, type Write } from '../ingest/write';

/**
 * Which persons a write concerns (DESIGN §3.2), found before pseudonymisation, in every place a write
 * can name a person: a national id in any Identifier (Patient.identifier, Reference.identifier), a
 * conditional reference `Patient?identifier=system|value`, a literal reference `Patient/<id>` to a stored
 * pseudonymous Patient, a registry pseudonym, and the same forms inside conditional queries
 * (If-None-Exist, conditional update). Each finding carries the entry it came from, for the message.
 *
 * Invalid national ids are not reported here: the pseudonymise stage refuses them with a 422 naming the
 * element, and an invalid number cannot belong to a reserved person.
 */
export interface Concerned {
  nationalIds: Finding<NationalId>[];
  patientIds: Finding<string>[];
  pseudonyms: Finding<string>[];
}

export interface Finding<T> {
  value: T;
  /** The entry that names the person: "Bundle.entry[2]" in a transaction, else the resource type. */
  where: string;
}

export function personsConcerned(write: Write): Concerned {
  const found: Concerned = { nationalIds: [], patientIds: [], pseudonyms: [] };
  write.entries.forEach((entry, index) => {
    if (entry.method === 'DELETE' && entry.conditionalQuery === undefined) {
      return; // deleting by id adds nothing about anyone
    }
    const where = entryLocation(write, index) ?? entry.resourceType;
    const add = (kind: keyof Concerned, value: NationalId | string): void => {
      (found[kind] as Finding<NationalId | string>[]).push({ value, where });
    };
    if (entry.resource) {
      walk(entry.resource, (node) => {
        if (typeof node.reference === 'string') {
          fromReference(node.reference, add);
        }
        if (typeof node.value === 'string' && (typeof node.system === 'string' || node.type !== undefined)) {
          fromIdentifier(node as Identifier, add);
        }
      });
    }
    for (const query of [entry.ifNoneExist, entry.conditionalQuery]) {
      if (query !== undefined) {
        fromQuery(query, add);
      }
    }
  });
  return found;
}

type Add = (kind: keyof Concerned, value: NationalId | string) => void;

function walk(value: unknown, visit: (node: Record<string, unknown>) => void): void {
  if (Array.isArray(value)) {
    for (const item of value) {
      walk(item, visit);
    }
  } else if (value !== null && typeof value === 'object') {
    const node = value as Record<string, unknown>;
    visit(node);
    for (const child of Object.values(node)) {
      if (child !== null && typeof child === 'object') {
        walk(child, visit);
      }
    }
  }
}

function fromIdentifier(identifier: Identifier, add: Add): void {
  if (sameSystem(identifier.system, registryPseudonymSystem) && identifier.value) {
    add('pseudonyms', identifier.value);
    return;
  }
  const kind = nationalIdKindOf(identifier);
  if (kind && identifier.value) {
    const id = parse(kind, identifier.value, assignerKey(identifier));
    if (id) {
      add('nationalIds', id);
    }
  }
}

/** References are canonical here: the door (src/ingest/references.ts) parsed every one the client sent. */
function fromReference(reference: string, add: Add): void {
  const parsed = parseReference(reference);
  const target = parsed.ok ? parsed.reference : undefined;
  if (target?.kind === 'literal' && target.resourceType === 'Patient') {
    add('patientIds', target.id);
  } else if (target?.kind === 'conditional' && target.resourceType === 'Patient') {
    fromQuery(target.query, add);
  }
}

/** Tokens `system|value` and literal Patient references in a search query. */
function fromQuery(query: string, add: Add): void {
  for (const [, value] of new URLSearchParams(query)) {
    for (const token of value.split(',')) {
      const parsed = parseReference(token);
      if (parsed.ok && parsed.reference.kind === 'literal') {
        if (parsed.reference.resourceType === 'Patient') {
          add('patientIds', parsed.reference.id);
        }
        continue;
      }
      const bar = token.indexOf('|');
      if (bar > 0) {
        fromIdentifier({ system: token.slice(0, bar), value: token.slice(bar + 1) }, add);
      }
    }
  }
}

function parse(kind: NationalIdKind, value: string, assigner: string | undefined): NationalId | undefined {
  const result = parseNationalIdValue(kind, value, { production: false }, assigner);
  return result.ok ? result.id : undefined;
}
