import type { JWTPayload } from 'jose';
import { describePidProblem, nationalIdOfPid } from '../identity/nationalId';
import { ROLES, type Principal, type Role } from './principal';

/**
 * Token claims the server reads. pid and hpr use HelseID's claim names so that HelseID access tokens
 * map without translation; role, organisation (RESH) and study are NorPain's own API claims.
 */
export const CLAIMS = {
  role: 'norpain_role',
  organization: 'norpain_resh',
  study: 'norpain_study',
  pid: 'helseid://claims/identity/pid',
  hpr: 'helseid://claims/hpr/hpr_number',
  clientId: 'client_id',
  scope: 'scope',
} as const;

/** Raised when a verified token lacks what its role needs; the message names the claim, not its value. */
export class ClaimError extends Error {
  override name = 'ClaimError';
}

/**
 * Maps verified claims to a Principal, or throws a ClaimError saying which claim is missing or wrong.
 * HelseID names API scopes `<audience>/<scope>`; that prefix is removed for this server's audience.
 * `production` refuses a portal token whose pid is a synthetic test number.
 */
export function principalFromClaims(
  payload: JWTPayload,
  audience: string | undefined,
  production: boolean,
): Principal {
  const role = stringClaim(payload, CLAIMS.role);
  if (role === undefined || !(ROLES as readonly string[]).includes(role)) {
    throw new ClaimError(`token claim ${CLAIMS.role} must be one of ${ROLES.join(', ')}`);
  }
  const clientId = stringClaim(payload, CLAIMS.clientId) ?? payload.sub;
  if (clientId === undefined || clientId === '') {
    throw new ClaimError(`token has neither ${CLAIMS.clientId} nor sub`);
  }
  const principal: Principal = {
    role: role as Role,
    clientId,
    organization: stringClaim(payload, CLAIMS.organization),
    // Without white space, as a national id is read: every later reader compares these digits as they are.
    pid: stringClaim(payload, CLAIMS.pid)?.replace(/\s+/g, ''),
    hpr: stringClaim(payload, CLAIMS.hpr),
    study: stringClaim(payload, CLAIMS.study),
    scopes: scopesOf(payload).map((scope) =>
      audience !== undefined && scope.startsWith(`${audience}/`) ? scope.slice(audience.length + 1) : scope,
    ),
  };
  // Each role acts for someone; a token that does not say for whom cannot be authorised later.
  const needed: Partial<Record<Role, [keyof Principal, string]>> = {
    clinic: ['organization', CLAIMS.organization],
    portal: ['pid', CLAIMS.pid],
    researcher: ['study', CLAIMS.study],
  };
  const need = needed[principal.role];
  if (need !== undefined && principal[need[0]] === undefined) {
    throw new ClaimError(`a ${principal.role} token needs the ${need[1]} claim`);
  }
  // Refused here, once: a pid that names nobody would otherwise read as a person without data on some
  // paths and be refused on others.
  if (principal.role === 'portal' && principal.pid !== undefined) {
    const parsed = nationalIdOfPid(principal.pid, { production });
    if (!parsed.ok) {
      throw new ClaimError(`token claim ${CLAIMS.pid} must be ${describePidProblem(parsed.problem)}`);
    }
  }
  return principal;
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value === 'number') {
    return String(value);
  }
  if (typeof value !== 'string' || value === '') {
    throw new ClaimError(`token claim ${name} must be a non-empty string`);
  }
  return value;
}

/** OAuth scope is space-separated; some issuers (HelseID among them) send an array. */
function scopesOf(payload: JWTPayload): string[] {
  const value = payload[CLAIMS.scope];
  if (value === undefined) {
    return [];
  }
  if (typeof value === 'string') {
    return value.split(' ').filter((s) => s !== '');
  }
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) {
    return value as string[];
  }
  throw new ClaimError(`token claim ${CLAIMS.scope} must be a space-separated string or an array of strings`);
}
