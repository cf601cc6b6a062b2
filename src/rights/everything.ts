import type { Bundle } from '@medplum/fhirtypes';
import { nationalIdOfPrincipal } from '../auth/person';
import { errors } from '../fhir/outcomes';
import type { OperationHandler } from '../fhir/classify';
import type { IdentityVault } from '../identity/vault/IdentityVault';
import { compartmentResources } from './compartment';

/**
 * `GET /fhir/Patient/$everything` for the portal (innsyn, DESIGN §5): the person's own data, found from
 * the national id in the token (`pid`) through the identity vault (an audited access-request read), as a
 * searchset Bundle of the pseudonymous Patient and its compartment. A person the registry does not hold
 * gets an empty Bundle. Other roles use search; the instance form `Patient/<id>/$everything` is not offered.
 */
export function everythingOperation(deps: { vault: IdentityVault; production: boolean }): OperationHandler {
  return async (ctx) => {
    const id = nationalIdOfPrincipal(ctx.principal, deps.production);
    if (id === undefined) {
      throw errors.forbidden('Patient/$everything is for the portal, acting for the person in its token.');
    }
    const person = deps.vault.forAccessRequest(id, {
      actor: ctx.principal.clientId,
      requestId: ctx.requestId,
    });
    const resources = person ? await compartmentResources(ctx.store, person.patientId) : [];
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: resources.length,
      link: [{ relation: 'self', url: `${ctx.base}/Patient/$everything` }],
      entry: resources.map((resource) => ({
        fullUrl: `${ctx.base}/${resource.resourceType}/${resource.id}`,
        resource,
        search: { mode: 'match' },
      })),
    };
    return { status: 200, body: bundle, headers: {} };
  };
}
