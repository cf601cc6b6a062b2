import type { Bundle } from '@medplum/fhirtypes';
import { kindOfBareId } from '../consent/http';
import { errors } from '../fhir/outcomes';
import type { OperationHandler } from '../fhir/classify';
import { parseNationalIdValue } from '../identity/nationalId';
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
    const pid = ctx.principal.pid;
    if (pid === undefined) {
      throw errors.forbidden('Patient/$everything is for the portal, acting for the person in its token.');
    }
    const parsed = parseNationalIdValue(kindOfBareId(pid), pid, { production: deps.production });
    if (!parsed.ok) {
      throw errors.forbidden('The token does not name a valid national id.');
    }
    const person = deps.vault.forAccessRequest(parsed.id, {
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
