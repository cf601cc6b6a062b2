import { DEFAULT_SCOPES, isValidExpiry, issueDevToken } from '../auth/devTokens';
import { ROLES, type Role } from '../auth/principal';
import { loadConfig } from '../config';
import { parseOptions, UsageError, type CliCommand } from './command';

const USAGE = `norpain token --role ROLE [--org RESH] [--pid FNR] [--study ID] [--hpr N] [--scope S]... [--dpop-jkt=T] [--expires 1h]

Prints an access token signed with the development key under DATA_DIR (created if absent), which a
development server with the same DATA_DIR accepts. Roles: ${ROLES.join(', ')}.
  --org      RESH id of the unit (required for clinic)
  --pid      synthetic national id the portal acts for (required for portal)
  --study    approved ResearchStudy id (required for researcher)
  --hpr      HPR number of the health professional
  --scope    a SMART scope; repeat or space-separate (default per role: ${Object.entries(DEFAULT_SCOPES)
    .map(([role, scopes]) => `${role} ${scopes.join(' ')}`)
    .join('; ')})
  --dpop-jkt bind the token to a DPoP key: its JWK SHA-256 thumbprint (cnf.jkt); requests then need
             "Authorization: DPoP <token>" and a DPoP proof signed by that key. Write it with "=", as
             a thumbprint may begin with "-"
  --expires  lifetime such as 90s, 30m, 1h, 2d (default 1h)`;

const REQUIRED: Partial<Record<Role, 'org' | 'pid' | 'study'>> = {
  clinic: 'org',
  portal: 'pid',
  researcher: 'study',
};

export const tokenCommand: CliCommand = {
  name: 'token',
  summary: 'print a development access token for a role',
  usage: USAGE,
  run: async (args, env) => {
    const values = parseOptions(args, {
      role: { type: 'string' },
      org: { type: 'string' },
      pid: { type: 'string' },
      study: { type: 'string' },
      hpr: { type: 'string' },
      scope: { type: 'string', multiple: true },
      expires: { type: 'string' },
      'client-id': { type: 'string' },
      'dpop-jkt': { type: 'string' },
    });
    const role = values.role;
    if (role === undefined || !(ROLES as readonly string[]).includes(role)) {
      throw new UsageError(`--role must be one of ${ROLES.join(', ')}${role ? `, got "${role}"` : ''}`);
    }
    const required = REQUIRED[role as Role];
    if (required !== undefined && values[required] === undefined) {
      throw new UsageError(`a ${role} token needs --${required}`);
    }
    if (values.expires !== undefined && !isValidExpiry(values.expires)) {
      throw new UsageError(`--expires must look like 90s, 30m, 1h or 2d, got "${values.expires}"`);
    }
    if (values['dpop-jkt'] !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(values['dpop-jkt'])) {
      throw new UsageError('--dpop-jkt must be a JWK SHA-256 thumbprint (43 base64url characters)');
    }
    const config = loadConfig(env);
    if (config.mode === 'production' || !config.auth.useDevKey) {
      throw new UsageError(
        'norpain token issues development tokens only; this configuration trusts another issuer ' +
          '(NODE_ENV=production or AUTH_JWKS_URL/AUTH_PUBLIC_KEY_FILE set)',
      );
    }
    const token = await issueDevToken(config, {
      role: role as Role,
      org: values.org,
      pid: values.pid,
      study: values.study,
      hpr: values.hpr,
      scopes: values.scope?.flatMap((s) => s.split(' ')).filter((s) => s !== ''),
      expiresIn: values.expires,
      clientId: values['client-id'],
      dpopJkt: values['dpop-jkt'],
    });
    process.stdout.write(token + '\n');
    return 0;
  },
};
