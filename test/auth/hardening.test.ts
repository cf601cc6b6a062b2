import type { Bundle, Resource } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { questionnaire } from './fixtures';

/**
 * Hardening of the HTTP interface: security headers, CORS for the configured portal origins only,
 * per-client rate limits and a limit on failed authentications (429 OperationOutcome with Retry-After),
 * body and Bundle entry limits, and 401 versus 403.
 */
const PORTAL = 'https://portal.example.no';
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    CORS_ORIGINS: PORTAL,
    RATE_LIMIT_PER_MINUTE: '5',
  });
});

afterAll(async () => {
  await server.stop();
});

async function outcome(response: Response): Promise<{ code?: string; text?: string }> {
  const body = (await response.json()) as {
    resourceType: string;
    issue: { code: string; details?: { text?: string } }[];
  };
  expect(body.resourceType).toBe('OperationOutcome');
  return { code: body.issue[0].code, text: body.issue[0].details?.text };
}

test('security headers are set on every answer, and Express does not announce itself', async () => {
  const response = await fetch(`${server.baseUrl}/metadata`);
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
  expect(response.headers.get('strict-transport-security')).toContain('max-age=');
  expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  expect(response.headers.get('x-powered-by')).toBeNull();
});

test('CORS answers the configured portal origin only', async () => {
  const allowed = await fetch(`${server.baseUrl}/metadata`, { headers: { origin: PORTAL } });
  expect(allowed.headers.get('access-control-allow-origin')).toBe(PORTAL);
  const other = await fetch(`${server.baseUrl}/metadata`, { headers: { origin: 'https://evil.example' } });
  expect(other.headers.get('access-control-allow-origin')).toBeNull();
  const preflight = await fetch(`${server.baseUrl}/QuestionnaireResponse`, {
    method: 'OPTIONS',
    headers: {
      origin: PORTAL,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,dpop,content-type',
    },
  });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe(PORTAL);
  expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('dpop');
  const foreign = await fetch(`${server.baseUrl}/QuestionnaireResponse`, {
    method: 'OPTIONS',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
});

test('401 without or with a bad token, 403 with a good token that may not do it; both OperationOutcomes', async () => {
  const anonymous = await fetch(`${server.baseUrl}/Questionnaire`);
  expect(anonymous.status).toBe(401);
  expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
  expect((await outcome(anonymous)).code).toBe('login');
  const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"norpain_role":"registry-admin","sub":"x"}').toString('base64url')}.`;
  const unsigned = await fetch(`${server.baseUrl}/Questionnaire`, {
    headers: { authorization: `Bearer ${none}` },
  });
  expect(unsigned.status).toBe(401);
  const researcher = await server.token('researcher', { clientId: 'status-client' });
  const forbidden = await fetch(`${server.baseUrl}/Observation`, {
    headers: { authorization: `Bearer ${researcher}` },
  });
  expect(forbidden.status).toBe(403);
  expect((await outcome(forbidden)).code).toBe('forbidden');
});

test('a client over its rate limit gets 429 with Retry-After; other clients are not affected', async () => {
  const busy = await server.token('registry-admin', { clientId: 'busy-client' });
  const statuses: number[] = [];
  let last: Response | undefined;
  for (let i = 0; i < 6; i++) {
    last = await fetch(`${server.baseUrl}/Questionnaire`, { headers: { authorization: `Bearer ${busy}` } });
    statuses.push(last.status);
    if (last.status !== 429) await last.text();
  }
  expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
  expect((await outcome(last as Response)).code).toBe('throttled');
  const calm = await server.token('registry-admin', { clientId: 'calm-client' });
  expect(
    (await fetch(`${server.baseUrl}/Questionnaire`, { headers: { authorization: `Bearer ${calm}` } })).status,
  ).toBe(200);
});

test('repeated failed authentications from one address get 429', async () => {
  const guarded = await startTestServer({ AUTH_FAILURES_PER_MINUTE: '3' });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`${guarded.baseUrl}/Questionnaire`, {
        headers: { authorization: 'Bearer not.a.token' },
      });
      statuses.push(response.status);
      await response.text();
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  } finally {
    await guarded.stop();
  }
});

test('oversized bodies get 413; Bundles with too many entries get 413 before anything runs', async () => {
  const fresh = await startTestServer({ MAX_BODY_BYTES: '2kb', MAX_BUNDLE_ENTRIES: '2' });
  try {
    const admin = await fresh.token('registry-admin');
    const headers = { authorization: `Bearer ${admin}`, 'content-type': 'application/fhir+json' };
    const big = await fetch(`${fresh.baseUrl}/Questionnaire`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ ...questionnaire, description: 'x'.repeat(4096) }),
    });
    expect(big.status).toBe(413);
    expect((await outcome(big)).code).toBe('too-long');
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [1, 2, 3].map((n) => ({
        resource: { ...questionnaire, url: `${questionnaire.url}-${n}` } as Resource,
        request: { method: 'POST', url: 'Questionnaire' },
      })),
    };
    const many = await fetch(`${fresh.baseUrl}/`, { method: 'POST', headers, body: JSON.stringify(bundle) });
    expect(many.status).toBe(413);
    expect((await outcome(many)).text).toContain('at most 2');
    const listed = (await (
      await fetch(`${fresh.baseUrl}/Questionnaire?url=${questionnaire.url}-1`, { headers })
    ).json()) as Bundle;
    expect(listed.entry ?? []).toEqual([]);
  } finally {
    await fresh.stop();
  }
});
