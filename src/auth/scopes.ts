/**
 * SMART on FHIR scopes (App Launch v2, with the v1 forms) as a token grants them: what a client may do,
 * before the role and the view narrow it to whose data. Parsed once per token.
 *
 *   v2: `<patient|user|system>/<Type|*>.<c?r?u?d?s?>`, e.g. `system/QuestionnaireResponse.c`, `patient/*.rs`
 *   v1: `<context>/<Type|*>.<read|write|*>` (read = rs, write = cud, * = cruds)
 *
 * HelseID names API scopes `<audience>/<scope>`, and may not allow `/` inside the scope, so
 * `<audience>/<context>.<Type>.<perms>` is read too. Scopes with a query (`?category=…`) narrow a grant in
 * ways this server does not evaluate; they grant nothing rather than too much. Unknown scopes (openid,
 * HelseID's own) are ignored.
 */

/** SMART v2 permissions: create, read, update, delete, search. */
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeContext = 'patient' | 'user' | 'system';

export interface Grant {
  context: ScopeContext;
  /** A resource type, or "*" for all. */
  type: string;
  permissions: ReadonlySet<Permission>;
}

const V1: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
const SCOPE = /^(patient|user|system)[/.]([A-Z][A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)$/;

export function parseScopes(scopes: readonly string[], audience?: string): Grant[] {
  const grants: Grant[] = [];
  for (const raw of scopes) {
    let scope = raw;
    if (audience !== undefined && scope.startsWith(`${audience}/`)) {
      scope = scope.slice(audience.length + 1);
    }
    const match = SCOPE.exec(scope);
    if (!match || match[3] === '') {
      continue;
    }
    const letters = V1[match[3]] ?? match[3];
    grants.push({
      context: match[1] as ScopeContext,
      type: match[2],
      permissions: new Set(letters.split('') as Permission[]),
    });
  }
  return grants;
}

/** Whether some grant allows `permission` on `type` in one of the given launch contexts. */
export function scopesAllow(
  grants: readonly Grant[],
  type: string,
  permission: Permission,
  contexts: readonly ScopeContext[],
): boolean {
  return grants.some(
    (g) =>
      contexts.includes(g.context) && (g.type === '*' || g.type === type) && g.permissions.has(permission),
  );
}
