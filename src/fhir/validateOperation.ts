import type { OperationOutcomeIssue, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { resolveProfile } from '../validation/profiles';
import type { WriteEntry } from '../ingest/write';
import type { OperationRequest, OperationRow } from './classify';
import { errors, issue, operationOutcome } from './outcomes';

/** R4 resource-validation-mode: what the resource is checked for. */
const MODES = { create: 'POST', update: 'PUT', delete: 'DELETE' } as const;
type Mode = keyof typeof MODES;

/**
 * `POST Type/$validate` with the resource, or a Parameters holding it as `resource`, and optionally
 * `mode` (create, update, delete) and `profile` (as parameters or in the query string): runs the ingest
 * pipeline's validation steps and answers every issue of every step, with the validator's severities,
 * in one OperationOutcome; stores nothing. Whoever may create the type may check it.
 * - create (and no mode): the checks a create meets;
 * - update: the same for a PUT of the resource's id, which it must have;
 * - delete: whether the resource (named by its id) may be deleted by the caller.
 * A profile the server cannot use is a 400 (R4); a nominated profile takes the place of the NorPain one.
 */
export const validateOperation: OperationRow = {
  name: '$validate',
  levels: ['type'],
  methods: ['POST'],
  roles: ['clinic', 'portal', 'registry-admin'],
  permission: 'c',
  handle: async (ctx, request) => {
    const { what } = request;
    // Its row offers it at type level only (404 elsewhere); this gives the call its type.
    if (what.level !== 'type') {
      return undefined;
    }
    const { type } = what;
    const body = request.body();
    const parameters =
      (body as Resource).resourceType === 'Parameters' && type !== 'Parameters'
        ? ((body as Parameters).parameter ?? [])
        : undefined;
    const resource = parameters
      ? parameters.find((p) => p.name === 'resource')?.resource
      : (body as Resource);
    if (!resource) {
      throw errors.badRequest('$validate needs the resource, directly or as the "resource" parameter.');
    }
    const mode = modeOf(parameterValue(request, parameters, 'mode'));
    const nominated = parameterValue(request, parameters, 'profile');
    const profile = nominated === undefined ? undefined : resolveProfile(nominated, type);
    const entry: WriteEntry = { method: MODES[mode], resourceType: type };
    const found: OperationOutcomeIssue[] = [];
    if (mode === 'create') {
      entry.resource = resource;
    } else if (resource.id === undefined) {
      if (mode === 'delete') {
        throw errors.badRequest(
          '$validate in delete mode needs the id of the resource to delete: send the resource with its id.',
          'resource.id',
        );
      }
      found.push(
        issue('required', `An update names the ${type} by its id; this resource has none.`, `${type}.id`),
      );
      entry.resource = resource;
    } else {
      entry.id = resource.id;
      if (mode === 'update') entry.resource = resource;
    }
    found.push(
      ...(await ctx.ingest.validate(
        { transaction: false, entries: [entry] },
        { principal: ctx.principal, requestId: ctx.requestId, base: ctx.base },
        { profile },
      )),
    );
    const valid = !found.some((i) => i.severity === 'error' || i.severity === 'fatal');
    const verdict = valid ? [issue('informational', 'The resource is valid.', undefined, 'information')] : [];
    return { status: 200, body: operationOutcome([...verdict, ...found]), headers: {} };
  },
};

/** A parameter given once, in the Parameters body or the query string (R4 allows either). */
function parameterValue(
  request: OperationRequest,
  parameters: ParametersParameter[] | undefined,
  name: string,
): string | undefined {
  const values = [
    ...(parameters ?? [])
      .filter((p) => p.name === name)
      .map((p) => p.valueCode ?? p.valueUri ?? p.valueCanonical ?? p.valueString ?? ''),
    ...request.params.getAll(name),
  ];
  if (values.length > 1) {
    throw errors.badRequest(
      `$validate takes one "${name}" parameter; this request has ${values.length}.`,
      name,
    );
  }
  if (values[0] === '') {
    throw errors.badRequest(`The "${name}" parameter of $validate has no value.`, name);
  }
  return values[0];
}

function modeOf(value: string | undefined): Mode {
  if (value === undefined) {
    return 'create';
  }
  if (!Object.hasOwn(MODES, value)) {
    throw errors.badRequest(
      `$validate's mode is one of create, update or delete (R4 resource-validation-mode).`,
      'mode',
    );
  }
  return value as Mode;
}
