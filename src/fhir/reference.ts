import type { ResourceType } from '@medplum/fhirtypes';
import { isResourceType } from './resourceTypes';

/**
 * THE reference parser (DESIGN §3.1): every `Reference.reference` a client sends is parsed here once, at
 * the door, into one canonical form, or refused with the reason. Exclusion, pseudonymisation, inclusion,
 * indexing, views and erasure work on this parser's output; none of them parses a reference string again.
 *
 * Canonical forms (what `formatReference` writes, and the only forms the stores ever hold):
 * - `Type/id` and `Type/id/_history/vid` (literal; `Type` a FHIR R4 resource type, spelled exactly);
 * - `#id` (a contained resource);
 * - `urn:uuid:<uuid>` (a placeholder for another entry of the same transaction; never stored);
 * - `Type?query` (conditional; resolved to a literal before anything is stored).
 *
 * An absolute URL is accepted only when it points at this server's own FHIR base; it is reduced to the
 * relative form. Everything else is refused rather than guessed at: a type in the wrong case
 * (`patient/1`), a trailing slash, another server's URL, extra path segments, an id FHIR does not allow.
 * A lenient parser here is how a reserved person comes back through an odd spelling.
 */
export type ParsedReference =
  | { kind: 'literal'; resourceType: ResourceType; id: string; version?: string }
  | { kind: 'contained'; id: string }
  | { kind: 'placeholder'; uuid: string }
  | { kind: 'conditional'; resourceType: ResourceType; query: string };

export type ReferenceParse = { ok: true; reference: ParsedReference } | { ok: false; reason: string };

export interface ReferenceParseOptions {
  /** This server's FHIR base(s) as clients see it (e.g. `https://norpain.example.no/fhir`), without a
   * trailing slash: absolute references to it are accepted and made relative. */
  ownBases?: readonly string[];
}

/** FHIR R4 `id`: 1-64 of A-Z a-z 0-9 - . */
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isFhirId(value: string): boolean {
  return ID.test(value);
}

/** A lower-case RFC 4122 UUID, as FHIR requires after `urn:uuid:`. */
export function isLowerCaseUuid(value: string): boolean {
  return UUID.test(value);
}

export function parseReference(text: string, options: ReferenceParseOptions = {}): ReferenceParse {
  if (text.length === 0 || text.length > 4096) {
    return refuse('a reference must be 1 to 4096 characters');
  }
  if (/\s/.test(text)) {
    return refuse('a reference must not contain white space');
  }
  if (text.startsWith('#')) {
    const id = text.slice(1);
    return ID.test(id)
      ? accept({ kind: 'contained', id })
      : refuse('the id after "#" is not a valid contained resource id (1-64 of A-Z, a-z, 0-9, "-", ".")');
  }
  if (text.startsWith('urn:uuid:')) {
    const uuid = text.slice('urn:uuid:'.length);
    return UUID.test(uuid)
      ? accept({ kind: 'placeholder', uuid })
      : refuse('a urn:uuid: reference must hold a lower-case UUID (RFC 4122)');
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) {
    const base = (options.ownBases ?? []).find((b) => text.startsWith(b + '/'));
    if (base === undefined) {
      return refuse(
        'only references to this server are accepted (relative, as Type/id); this one points elsewhere',
      );
    }
    return parseRelative(text.slice(base.length + 1));
  }
  return parseRelative(text);
}

function parseRelative(text: string): ReferenceParse {
  const question = text.indexOf('?');
  if (question >= 0) {
    const type = text.slice(0, question);
    const query = text.slice(question + 1);
    if (!isResourceType(type)) {
      return refuse(typeMessage(type));
    }
    if (query.length === 0 || query.includes('#')) {
      return refuse('a conditional reference needs search parameters after "?" and no fragment');
    }
    return accept({ kind: 'conditional', resourceType: type, query });
  }
  const segments = text.split('/');
  const [type, id, history, version] = segments;
  if (segments.length !== 2 && !(segments.length === 4 && history === '_history')) {
    return refuse(
      'a literal reference has the form Type/id or Type/id/_history/version, without a trailing slash',
    );
  }
  if (!isResourceType(type)) {
    return refuse(typeMessage(type));
  }
  if (!ID.test(id)) {
    return refuse('its id is not a valid resource id (1-64 of A-Z, a-z, 0-9, "-", ".")');
  }
  if (version !== undefined && !ID.test(version)) {
    return refuse('the version after _history/ is not a valid version id');
  }
  return accept({ kind: 'literal', resourceType: type, id, ...(version ? { version } : {}) });
}

/** The canonical text of a parsed reference. */
export function formatReference(reference: ParsedReference): string {
  switch (reference.kind) {
    case 'literal':
      return reference.version === undefined
        ? `${reference.resourceType}/${reference.id}`
        : `${reference.resourceType}/${reference.id}/_history/${reference.version}`;
    case 'contained':
      return `#${reference.id}`;
    case 'placeholder':
      return `urn:uuid:${reference.uuid}`;
    case 'conditional':
      return `${reference.resourceType}?${reference.query}`;
  }
}

/**
 * The identifier a conditional reference names when its query is exactly `identifier=system|value` (one
 * parameter, one token; percent-encoding decoded), the only form by which a person may be referenced by
 * national id. Undefined for any other reference or query.
 */
export function identifierOfConditional(
  reference: ParsedReference,
): { system: string; value: string } | undefined {
  if (reference.kind !== 'conditional') {
    return undefined;
  }
  const params = [...new URLSearchParams(reference.query)];
  if (params.length !== 1 || params[0][0] !== 'identifier') {
    return undefined;
  }
  const token = params[0][1];
  const bar = token.indexOf('|');
  return bar <= 0 || token.includes(',') || bar === token.length - 1
    ? undefined
    : { system: token.slice(0, bar), value: token.slice(bar + 1) };
}

/** `Type/id` of a literal reference, the key under which stores index and erase. */
export function literalKey(reference: { resourceType: string; id: string }): string {
  return `${reference.resourceType}/${reference.id}`;
}

export type LiteralReference = Extract<ParsedReference, { kind: 'literal' }>;

/** The literal a canonical reference text names (with its version, if any); undefined for every other.
 * For references already through the door (stored, or inside the pipeline), which are canonical, for
 * the stores' Location URLs (relative) and for this server's own (with `ownBase`). */
export function literalOf(reference: string, ownBase?: string): LiteralReference | undefined {
  const parsed = parseReference(reference, ownBase === undefined ? {} : { ownBases: [ownBase] });
  return parsed.ok && parsed.reference.kind === 'literal' ? parsed.reference : undefined;
}

/** The inverse of `literalKey`: type and id of a `Type/id` key, by the rules of `parseReference`;
 * undefined for any other text (a version, a type alone, an id FHIR does not allow), which names no
 * resource a store can hold. */
export function parseLiteralKey(key: string): { resourceType: ResourceType; id: string } | undefined {
  const literal = literalOf(key);
  return literal === undefined || literal.version !== undefined
    ? undefined
    : { resourceType: literal.resourceType, id: literal.id };
}

/**
 * The target of a transaction entry's `request.url` as the write path writes it (src/ingest/persist.ts):
 * `Type`, `Type/id` or `Type?query`, type and id by the rules of `parseLiteralKey`; undefined for any
 * other. The query is the stores' to read; it is not checked here.
 */
export function parseEntryUrl(
  url: string,
): { resourceType: ResourceType; id?: string; query?: string } | undefined {
  const question = url.indexOf('?');
  if (question >= 0) {
    const type = url.slice(0, question);
    return isResourceType(type) ? { resourceType: type, query: url.slice(question + 1) } : undefined;
  }
  return isResourceType(url) ? { resourceType: url } : parseLiteralKey(url);
}

/** `Type/id` of a canonical literal reference text (any version of it); undefined for every other (see
 * `literalOf`). */
export function literalKeyOf(reference: string, ownBase?: string): string | undefined {
  const literal = literalOf(reference, ownBase);
  return literal === undefined ? undefined : literalKey(literal);
}

/** Why the type part is refused. The text names only a type FHIR has, never what was sent (which may be
 * anything, a national id too). */
function typeMessage(type: string): string {
  const proper = type.length > 0 ? properCaseOf(type) : undefined;
  return proper !== undefined && proper !== type
    ? `its type is not a FHIR resource type; resource types are case-sensitive (did you mean "${proper}"?)`
    : 'its type (before "/" or "?") is not a FHIR R4 resource type';
}

function properCaseOf(type: string): string | undefined {
  const candidate = type.charAt(0).toUpperCase() + type.slice(1);
  return isResourceType(candidate) ? candidate : undefined;
}

function accept(reference: ParsedReference): ReferenceParse {
  return { ok: true, reference };
}

function refuse(reason: string): ReferenceParse {
  return { ok: false, reason };
}

/** A Reference element found in a resource, with its FHIRPath-like location for error messages. */
export interface ReferenceSite {
  /** The object holding `reference` (a Reference datatype, wherever it stands). */
  node: { reference?: unknown; [key: string]: unknown };
  /** Location relative to the resource, e.g. `QuestionnaireResponse.item[0].answer[1].valueReference`. */
  expression: string;
}

/**
 * Every Reference element in a resource, at any depth: extensions, nested items, answers and contained
 * resources included (contained resources are reported with their own path under `contained[i]`). A
 * Reference is recognised by shape (an object with a string `reference`), which finds them in extensions
 * whose type no schema names.
 */
export function referenceSites(resource: object, root: string): ReferenceSite[] {
  const sites: ReferenceSite[] = [];
  const visit = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, `${path}[${i}]`));
      return;
    }
    if (value === null || typeof value !== 'object') {
      return;
    }
    const node = value as Record<string, unknown>;
    if (typeof node.reference === 'string') {
      sites.push({ node, expression: path });
    }
    for (const key of Object.keys(node)) {
      const child = node[key];
      if (child !== null && typeof child === 'object') {
        visit(child, `${path}.${key}`);
      }
    }
  };
  visit(resource, root);
  return sites;
}
