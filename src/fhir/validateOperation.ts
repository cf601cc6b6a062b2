import type { Parameters, Resource } from '@medplum/fhirtypes';
import type { OperationRow } from './classify';
import { errors, isFhirError, issue, operationOutcome } from './outcomes';

/**
 * `POST Type/$validate` with the resource, or a Parameters whose `resource` parameter holds it: runs the
 * ingest pipeline's validation and answers an OperationOutcome; stores nothing. Whoever may create the
 * type may check it.
 */
export const validateOperation: OperationRow = {
  name: '$validate',
  levels: ['type'],
  methods: ['POST'],
  roles: ['clinic', 'portal', 'registry-admin'],
  permission: 'c',
  handle: async (ctx, request) => {
    const type = request.segments[0] as Resource['resourceType'];
    const body = request.body();
    const resource =
      (body as Resource).resourceType === 'Parameters' && type !== 'Parameters'
        ? (body as Parameters).parameter?.find((p) => p.name === 'resource')?.resource
        : (body as Resource);
    if (!resource) {
      throw errors.badRequest('$validate needs the resource, directly or as the "resource" parameter.');
    }
    try {
      await ctx.ingest.validate(
        { transaction: false, entries: [{ method: 'POST', resourceType: type, resource }] },
        { principal: ctx.principal, requestId: ctx.requestId, base: ctx.base },
      );
    } catch (err) {
      if (isFhirError(err) && (err.status === 422 || err.status === 400)) {
        return { status: 200, body: err.outcome, headers: {} };
      }
      throw err;
    }
    return {
      status: 200,
      body: operationOutcome([issue('informational', 'The resource is valid.', undefined, 'information')]),
      headers: {},
    };
  },
};
