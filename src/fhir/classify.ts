import type { ResourceType } from '@medplum/fhirtypes';
import type { Role } from '../auth/principal';
import type { Permission } from '../auth/scopes';
import type { FhirResponse } from './http';
import type { InteractionContext } from './interactions';
import { isFhirId } from './reference';
import { isResourceType } from './resourceTypes';

/**
 * Every request under /fhir (and every batch entry) is classified once, here, into one typed
 * interaction that the authorisation matrix (src/auth/matrix.ts), the handler (router.ts,
 * interactions.ts, bundles.ts, and the operation and type handlers, which get it as
 * `OperationRequest.what`), the audit (audit.ts) and the request log all use: none of them looks at
 * the method and path again, so they cannot disagree about what a request is.
 *
 * Operations are one table (`FhirOperation[]`, assembled in src/server.ts): a `$name` row says where the
 * operation is called, which roles may call it with which permission on the type, and its handler; a
 * `type` row hands every interaction on one resource type to its own handler instead of the clinical
 * store (reservations on Consent, the audit log on AuditEvent), authorised by the matrix like any other
 * interaction on that type. Adding an operation is adding one row.
 */

export type FhirInteraction =
  | { kind: 'capabilities' }
  | { kind: 'read'; type: ResourceType; id: string }
  | { kind: 'vread'; type: ResourceType; id: string; versionId: string }
  | { kind: 'search'; type: ResourceType; via: 'get' | 'post' }
  | { kind: 'create'; type: ResourceType }
  | { kind: 'update'; type: ResourceType; id: string }
  | { kind: 'conditional-update'; type: ResourceType }
  | { kind: 'delete'; type: ResourceType; id: string }
  | { kind: 'history'; type?: ResourceType; id?: string }
  /** A batch or transaction Bundle posted to the base; its entries are classified one by one. */
  | { kind: 'bundle' }
  /** `method`: which of the row's `methods` it was called with, for a handler that answers them
   * differently ($stats takes a POST's parameters from its body; a DELETE cancels an export). */
  | ({ kind: 'operation'; operation: OperationRow; method: string } & OperationTarget)
  /** A path or method that names no interaction: answered 404/405 (`status`) with `reason`. `operation`:
   * a known operation called where it is not offered (the matrix still refuses roles it is not for). */
  | {
      kind: 'unknown';
      status: 404 | 405;
      reason: string;
      allow?: string[];
      type?: ResourceType;
      operation?: OperationRow;
    };

/** Where a `$name` operation is called: on the system, on a type, or on an instance of a type. */
export type OperationTarget =
  | { level: 'system'; type?: undefined; id?: undefined }
  | { level: 'type'; type: ResourceType; id?: undefined }
  | { level: 'instance'; type: ResourceType; id: string };

export type Level = OperationTarget['level'];

/** A call of a `$name` operation, as classified. */
export type OperationCall = Extract<FhirInteraction, { kind: 'operation' }>;

/** An interaction on one resource type, as a type handler gets it. */
export type TypeInteraction = Exclude<
  FhirInteraction,
  { kind: 'capabilities' | 'bundle' | 'operation' | 'unknown' }
>;

/** What a handler sees of the request: its classification, and what it carries besides the path. */
export interface OperationRequest<What extends FhirInteraction = FhirInteraction> {
  /** The request's one classification (`classify`): handlers switch on it, never on method or path. */
  what: What;
  params: URLSearchParams;
  header(name: string): string | undefined;
  /** The decoded JSON body (415/400 FhirError when it is not one). */
  body(): unknown;
}

/** Answers an operation call; `undefined` when the handler does not offer it there (404). */
export type OperationHandler = (
  ctx: InteractionContext,
  request: OperationRequest<OperationCall>,
) => Promise<FhirResponse | undefined>;

/** Answers every interaction on its type, refusing (405) those it does not offer. */
export type TypeHandler = (
  ctx: InteractionContext,
  request: OperationRequest<TypeInteraction>,
) => Promise<FhirResponse>;

/** A `$name` operation: where it is called, who may call it and what it needs of the matrix. */
export interface OperationRow {
  name: `$${string}`;
  levels: Level[];
  /** The resource types it is called on (type and instance level); any type when absent. */
  types?: ResourceType[];
  methods: string[];
  roles: Role[];
  /** The permission on the type that the caller's role and scopes must have (src/auth/matrix.ts). */
  permission: Permission;
  /** Media types it answers with besides FHIR JSON, which the request's Accept may ask for (NDJSON). */
  accepts?: string[];
  handle: OperationHandler;
}

/** A handler that answers every interaction on one resource type instead of the clinical store. */
export interface TypeHandlerRow {
  type: ResourceType;
  handle: TypeHandler;
}

export type FhirOperation = OperationRow | TypeHandlerRow;

function isOperationRow(row: FhirOperation): row is OperationRow {
  return 'name' in row;
}

/** The one classification of a request: method and decoded path segments below the base. */
export function classify(
  method: string,
  segments: readonly string[],
  operations: readonly FhirOperation[],
): FhirInteraction {
  const [first, second, third, fourth] = segments;
  const unknown = (reason: string, type?: ResourceType): FhirInteraction => ({
    kind: 'unknown',
    status: 404,
    reason,
    type,
  });
  const methodNotAllowed = (reason: string, allow: string[], type?: ResourceType): FhirInteraction => ({
    kind: 'unknown',
    status: 405,
    reason,
    allow,
    type,
  });
  const last = segments[segments.length - 1];
  if (last?.startsWith('$')) {
    return classifyOperation(method, segments, operations);
  }
  if (first === undefined) {
    return method === 'POST'
      ? { kind: 'bundle' }
      : methodNotAllowed('POST a batch or transaction Bundle to the base.', ['POST']);
  }
  if (first === 'metadata' && segments.length === 1) {
    return method === 'GET'
      ? { kind: 'capabilities' }
      : methodNotAllowed('metadata is read with GET.', ['GET']);
  }
  if (first === '_history' && segments.length === 1) {
    return method === 'GET' ? { kind: 'history' } : methodNotAllowed('History is read with GET.', ['GET']);
  }
  if (!isResourceType(first)) {
    return unknown(segments.length === 1 ? 'Unknown resource type.' : 'No such FHIR endpoint.');
  }
  const type = first;
  if (segments.length > 4) {
    return unknown('No such FHIR endpoint.', type);
  }
  if (second === undefined) {
    switch (method) {
      case 'GET':
        return { kind: 'search', type, via: 'get' };
      case 'POST':
        return { kind: 'create', type };
      case 'PUT':
        return { kind: 'conditional-update', type };
    }
    return methodNotAllowed(`${method} is not allowed on a resource type.`, ['GET', 'POST', 'PUT'], type);
  }
  if (segments.length === 2 && second === '_search') {
    return method === 'POST'
      ? { kind: 'search', type, via: 'post' }
      : methodNotAllowed(`Use POST for ${type}/_search (or GET ${type}?...).`, ['POST'], type);
  }
  if (segments.length === 2 && second === '_history') {
    return method === 'GET'
      ? { kind: 'history', type }
      : methodNotAllowed('History is read with GET.', ['GET'], type);
  }
  if (!isFhirId(second)) {
    return unknown(`That is not a valid resource id or operation of ${type}.`, type);
  }
  const id = second;
  if (third === undefined) {
    switch (method) {
      case 'GET':
        return { kind: 'read', type, id };
      case 'PUT':
        return { kind: 'update', type, id };
      case 'DELETE':
        return { kind: 'delete', type, id };
    }
    return methodNotAllowed(
      `${method} is not allowed on a resource instance.`,
      ['GET', 'PUT', 'DELETE'],
      type,
    );
  }
  if (third !== '_history') {
    return unknown(`No such endpoint below ${type}/[id].`, type);
  }
  if (method !== 'GET') {
    return methodNotAllowed('History is read with GET.', ['GET'], type);
  }
  if (fourth === undefined) {
    return { kind: 'history', type, id };
  }
  return isFhirId(fourth)
    ? { kind: 'vread', type, id, versionId: fourth }
    : unknown('That is not a valid version id.', type);
}

/** `[Type/][id/]$name`, by the operation table; an unknown name is 404 and never echoed. */
function classifyOperation(
  method: string,
  segments: readonly string[],
  operations: readonly FhirOperation[],
): FhirInteraction {
  const name = segments[segments.length - 1];
  const [first, second] = segments;
  const type = segments.length > 1 && isResourceType(first) ? first : undefined;
  const target: OperationTarget | undefined =
    segments.length === 1
      ? { level: 'system' }
      : type === undefined
        ? undefined
        : segments.length === 2
          ? { level: 'type', type }
          : segments.length === 3 && isFhirId(second)
            ? { level: 'instance', type, id: second }
            : undefined;
  const row = operations.filter(isOperationRow).find((r) => r.name === name);
  if (
    row === undefined ||
    target === undefined ||
    !row.levels.includes(target.level) ||
    (type !== undefined && row.types !== undefined && !row.types.includes(type))
  ) {
    return {
      kind: 'unknown',
      status: 404,
      reason: 'No such operation on this endpoint.',
      type,
      operation: row,
    };
  }
  if (!row.methods.includes(method)) {
    return {
      kind: 'unknown',
      status: 405,
      reason: `${row.name} is called with ${row.methods.join(' or ')}.`,
      allow: row.methods,
      type,
      operation: row,
    };
  }
  return { kind: 'operation', operation: row, method, ...target };
}

/** The handler that answers every interaction on a type instead of the store, if the table has one. */
export function typeHandlerOf(
  operations: readonly FhirOperation[],
  type: string | undefined,
): TypeHandlerRow | undefined {
  return operations.find((row): row is TypeHandlerRow => !isOperationRow(row) && row.type === type);
}

/** The route pattern of an interaction, for logs and metrics: no ids, no query, no unknown names. */
export function routeOf(interaction: FhirInteraction): string {
  switch (interaction.kind) {
    case 'capabilities':
      return '/metadata';
    case 'bundle':
      return '/';
    case 'read':
    case 'update':
    case 'delete':
      return `/${interaction.type}/:id`;
    case 'vread':
      return `/${interaction.type}/:id/_history/:vid`;
    case 'search':
      return interaction.via === 'post' ? `/${interaction.type}/_search` : `/${interaction.type}`;
    case 'create':
    case 'conditional-update':
      return `/${interaction.type}`;
    case 'history':
      return [interaction.type, interaction.id === undefined ? undefined : ':id', '_history']
        .filter((part) => part !== undefined)
        .reduce((route, part) => `${route}/${part}`, '');
    case 'operation':
      return [interaction.type, interaction.id === undefined ? undefined : ':id', interaction.operation.name]
        .filter((part) => part !== undefined)
        .reduce((route, part) => `${route}/${part}`, '');
    case 'unknown':
      return interaction.type === undefined ? '/(unknown)' : `/${interaction.type}/(unknown)`;
  }
}
