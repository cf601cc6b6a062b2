import type { AuditEvent, Bundle, OperationOutcome, Patient, Resource } from '@medplum/fhirtypes';
import { submitPerson, UNIT_A, UNIT_B, type PersonData } from '../auth/fixtures';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { call, FNR_SYSTEM, people, reservation } from './fixtures';

/**
 * Who may reserve and withdraw (issue 11, DESIGN §3.2), one rule in src/auth/matrix.ts: the person
 * through the portal, registry staff with the channel, and a clinic only for a person it registers; only
 * the person and staff withdraw. A clinic's refusal says nothing about the person (same bytes for unknown,
 * reserved and other-unit persons). Every placement and withdrawal is in the person's own access log.
 */
let server: TestServer;
let admin: string;
let clinicA: string;
let clinicB: string;

beforeAll(async () => {
  server = await startTestServer();
  admin = await server.token('registry-admin');
  clinicA = await server.token('clinic', { org: UNIT_A });
  clinicB = await server.token('clinic', { org: UNIT_B });
}, 30_000);

afterAll(async () => {
  await server.stop();
});

async function reservationsOf(fnr: string): Promise<(string | undefined)[]> {
  const found = await call<Bundle>(server, admin, 'GET', `Consent?patient.identifier=${FNR_SYSTEM}|${fnr}`);
  return (found.body.entry ?? []).map((e) => (e.resource as { status?: string }).status);
}

/** POST Consent: a reservation (default) or its withdrawal (status inactive). */
function reserveOrWithdraw<T = Resource>(token: string, ...args: Parameters<typeof reservation>) {
  return call<T>(server, token, 'POST', 'Consent', reservation(...args));
}

async function stillThere(person: PersonData): Promise<boolean> {
  return (await call<Patient>(server, admin, 'GET', `Patient/${person.patient}`)).status === 200;
}

test('a clinic reserving a person it does not register gets 403 and changes nothing; the same bytes for everyone', async () => {
  const [atB, unknown, reserved] = people(11051, 3);
  const personAtB = await submitPerson(server, clinicB, atB, UNIT_B);
  expect((await reserveOrWithdraw(admin, reserved, { channel: 'letter' })).status).toBe(201);

  const refusal = async (fnr: string) => {
    const reply = await reserveOrWithdraw<OperationOutcome>(clinicA, fnr);
    return `${reply.status} ${reply.text}`;
  };
  const forAtB = await refusal(atB);
  expect(forAtB).toMatch(/^403 /);
  expect(forAtB).toContain('only for a person it registers');
  expect(await refusal(unknown)).toBe(forAtB);
  expect(await refusal(reserved)).toBe(forAtB);

  expect(await stillThere(personAtB)).toBe(true);
  expect(await reservationsOf(atB)).toEqual([]);
  expect(await reservationsOf(unknown)).toEqual([]);
  expect(await reservationsOf(reserved)).toEqual(['active']);
});

test('a clinic reserves a person it registers, also one it shares; it may not withdraw', async () => {
  const [own, shared] = people(11052, 2);
  const ownPerson = await submitPerson(server, clinicA, own, UNIT_A);
  await submitPerson(server, clinicB, shared, UNIT_B);
  await submitPerson(server, clinicA, shared, UNIT_A);
  expect((await reserveOrWithdraw(clinicA, own)).status).toBe(201);
  expect(await stillThere(ownPerson)).toBe(false);
  expect((await reserveOrWithdraw(clinicA, shared)).status).toBe(201);

  const withdrawal = await reserveOrWithdraw<OperationOutcome>(clinicA, own, { status: 'inactive' });
  expect(withdrawal.status).toBe(403);
  expect(withdrawal.body.issue[0].details?.text).toBe(
    'Only the person (through the portal) and registry staff may withdraw a reservation.',
  );
  // Also for someone who has no reservation: the refusal comes first and is the same.
  const [stranger] = people(11053, 1);
  const forStranger = await reserveOrWithdraw(clinicA, stranger, { status: 'inactive' });
  expect(forStranger.text).toBe(withdrawal.text);
  expect(await reservationsOf(own)).toEqual(['active']);
});

test('the person withdraws their own through the portal; staff reserve and withdraw with the channel', async () => {
  const [mine, byLetter] = people(11054, 2);
  const portal = await server.token('portal', { pid: mine });
  expect((await reserveOrWithdraw(portal, mine)).status).toBe(201);
  expect((await reserveOrWithdraw(portal, mine, { status: 'inactive' })).status).toBe(200);
  expect(await reservationsOf(mine)).toEqual(['inactive']);

  const other = await reserveOrWithdraw(portal, byLetter, { status: 'inactive' });
  expect(other.status).toBe(403);

  expect((await reserveOrWithdraw(admin, byLetter, { channel: 'letter' })).status).toBe(201);
  const withdrawn = await reserveOrWithdraw(admin, byLetter, { status: 'inactive', channel: 'e-mail' });
  expect(withdrawn.status).toBe(200);
  expect(await reservationsOf(byLetter)).toEqual(['inactive']);
  const noChannel = await reserveOrWithdraw(admin, byLetter, { status: 'inactive' });
  expect(noChannel.status).toBe(422);
});

test("every placement and withdrawal is in the person's own access log, whoever made it", async () => {
  const [fnr, someoneElse] = people(11055, 2);
  const person = await submitPerson(server, clinicA, fnr, UNIT_A);
  const portal = await server.token('portal', { pid: fnr });
  const consentEvents = async (): Promise<string[]> => {
    const log = await call<Bundle<AuditEvent>>(server, portal, 'GET', 'AuditEvent?_count=1000&_sort=date');
    expect(log.status).toBe(200);
    return (log.body.entry ?? [])
      .map((e) => e.resource as AuditEvent)
      .filter((event) => event.entity?.some((e) => e.what?.reference?.startsWith('Consent/')))
      .map((event) => `${event.agent?.[0].role?.[0].coding?.[0].code}:${event.action}:${event.outcome}`);
  };
  // Placed by the clinic (erasing the data), withdrawn by staff, placed and withdrawn by the person.
  expect((await reserveOrWithdraw(clinicA, fnr)).status).toBe(201);
  expect(await stillThere(person)).toBe(false);
  const steps: [string, ReturnType<typeof reservation>][] = [
    [admin, reservation(fnr, { status: 'inactive', channel: 'letter' })],
    [portal, reservation(fnr)],
    [portal, reservation(fnr, { status: 'inactive' })],
  ];
  for (const [token, body] of steps) {
    expect((await call(server, token, 'POST', 'Consent', body)).status).toBeLessThan(300);
  }
  expect(await consentEvents()).toEqual(['clinic:C:0', 'registry-admin:C:0', 'portal:C:0', 'portal:C:0']);
  // Someone else's reservation is not in this person's log.
  expect((await reserveOrWithdraw(admin, someoneElse, { channel: 'letter' })).status).toBe(201);
  expect(await consentEvents()).toHaveLength(4);
});
