/** Who is calling, as established by authentication. Roles and what they may do: src/auth (issue 6). */
export type Role = 'clinic' | 'portal' | 'registry-admin' | 'researcher';

export const ROLES: readonly Role[] = ['clinic', 'portal', 'registry-admin', 'researcher'];

export interface Principal {
  role: Role;
  /** The OAuth client (token `client_id`, else `sub`). */
  clientId: string;
  /** RESH id of the organisation the client acts for (clinic tokens). */
  organization?: string;
  /** National id of the person the portal acts for, white space removed (src/auth/claims.ts). Never logged,
   * never stored. */
  pid?: string;
  /** HPR number of the health professional, when the token names one. */
  hpr?: string;
  /** SMART v2 scopes granted, e.g. "system/QuestionnaireResponse.c". */
  scopes: string[];
  /** The approved ResearchStudy a researcher token is bound to. */
  study?: string;
}
