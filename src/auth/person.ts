import { kindOfBareId } from '../consent/http';
import { parseNationalIdValue } from '../identity/nationalId';
import type { IdentityVault, VaultPerson } from '../identity/vault/IdentityVault';
import type { Principal } from './principal';

/**
 * The person a portal token acts for, as the registry knows them: the pseudonymous Patient id and the
 * registry pseudonym, looked up from the token's national id (pid) by its keyed hash. The lookup reveals
 * no national id, so it is not a vault read that needs auditing. Cached per principal (one request).
 */
export function personResolver(
  vault: IdentityVault,
  production: boolean,
): (principal: Principal) => VaultPerson | undefined {
  // Only found persons are cached: a portal's first answer can make the person known mid-request.
  const cache = new WeakMap<Principal, VaultPerson>();
  return (principal) => {
    const cached = cache.get(principal);
    if (cached !== undefined) {
      return cached;
    }
    let person: VaultPerson | undefined;
    const pid = principal.pid?.replace(/\s+/g, '');
    if (principal.role === 'portal' && pid !== undefined && /^\d{11}$/.test(pid)) {
      const parsed = parseNationalIdValue(kindOfBareId(pid), pid, { production });
      person = parsed.ok ? vault.find(parsed.id) : undefined;
    }
    if (person !== undefined) cache.set(principal, person);
    return person;
  };
}
