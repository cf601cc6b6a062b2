import { canonicalNationalId, nationalIdOfPid, type NationalId } from '../identity/nationalId';
import type { Pseudonymiser } from '../identity/pseudonym';
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
    const id = nationalIdOfPrincipal(principal, production);
    const person = id === undefined ? undefined : vault.find(id);
    if (person !== undefined) cache.set(principal, person);
    return person;
  };
}

/** The national id a portal token acts for; authentication has refused a portal token whose pid names
 * nobody (src/auth/claims.ts). */
export function nationalIdOfPrincipal(principal: Principal, production: boolean): NationalId | undefined {
  if (principal.role !== 'portal' || principal.pid === undefined) {
    return undefined;
  }
  const parsed = nationalIdOfPid(principal.pid, { production });
  return parsed.ok ? parsed.id : undefined;
}

/**
 * The registry pseudonyms under which a person's entries in the access log are kept: the vault's while
 * the registry holds the person, and the one their national id computes to, which stays the same once a
 * reservation has erased the vault entry. A reservation and its withdrawal are logged under both, so the
 * person finds them in their own access log before and after (DESIGN §3.2, §3.4).
 */
export function auditPseudonymsOf(
  vault: IdentityVault,
  pseudonymiser: Pseudonymiser,
  id: NationalId,
): string[] {
  const computed = pseudonymiser.pseudonym(canonicalNationalId(id));
  const held = vault.find(id)?.pseudonym;
  return held === undefined || held === computed ? [computed] : [held, computed];
}

/** Whose access log a portal token reads: the vault's pseudonym of its person, else the computed one. */
export function auditPseudonymResolver(
  personOf: (principal: Principal) => VaultPerson | undefined,
  pseudonymiser: Pseudonymiser,
  production: boolean,
): (principal: Principal) => string | undefined {
  return (principal) => {
    const held = personOf(principal)?.pseudonym;
    if (held !== undefined) return held;
    const id = nationalIdOfPrincipal(principal, production);
    return id === undefined ? undefined : pseudonymiser.pseudonym(canonicalNationalId(id));
  };
}
