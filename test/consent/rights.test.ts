import type { Bundle, Condition, OperationOutcome, Parameters, Provenance } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { call, FNR_SYSTEM, people, reservation, submission } from './fixtures';

let server: TestServer;
let clinic: string;
let admin: string;
const [mine, someoneElse, stranger] = people(9201, 3);

beforeAll(async () => {
  server = await startTestServer();
  clinic = await server.token('clinic');
  admin = await server.token('registry-admin');
  for (const [fnr, tag] of [
    [mine, 'mine'],
    [someoneElse, 'else'],
  ]) {
    const reply = await call(
      server,
      clinic,
      'POST',
      '',
      submission([{ system: FNR_SYSTEM, value: fnr }], tag, [`${tag}-1`, `${tag}-2`]),
    );
    expect(reply.status).toBe(200);
  }
});

afterAll(async () => {
  await server.stop();
});

async function observationOf(tag: string): Promise<Condition> {
  const found = await call<Bundle<Condition>>(
    server,
    admin,
    'GET',
    `Condition?code=urn:oid:2.16.578.1.12.4.1.1.7110|${tag}&_sort=_id`,
  );
  return found.body.entry?.[0].resource as Condition;
}

test("Patient/$everything gives the portal its own person's data, and nobody else's", async () => {
  const portal = await server.token('portal', { pid: mine });
  const reply = await call<Bundle>(server, portal, 'GET', 'Patient/$everything');
  expect(reply.status).toBe(200);
  const types = (reply.body.entry ?? []).map((e) => e.resource?.resourceType).sort();
  expect(types).toEqual(['Condition', 'Condition', 'EpisodeOfCare', 'Patient']);
  expect(reply.text).toContain('mine-1');
  expect(reply.text).not.toContain('else-1');
  expect(reply.text).not.toContain(mine);

  const unknown = await call<Bundle>(
    server,
    await server.token('portal', { pid: stranger }),
    'GET',
    'Patient/$everything',
  );
  expect(unknown.body.entry).toBeUndefined();
  expect((await call(server, clinic, 'GET', 'Patient/$everything')).status).toBe(403);
});

test('staff correct a resource with $correct; the correction keeps a Provenance with the reason', async () => {
  const before = await observationOf('mine');
  const corrected = { ...before, recordedDate: '2024-05-06' };
  const reply = await call<Parameters>(server, admin, 'POST', `Condition/${before.id}/$correct`, {
    resourceType: 'Parameters',
    parameter: [
      { name: 'resource', resource: corrected },
      { name: 'reason', valueString: 'The patient reported a typing error in the answer' },
    ],
  });
  expect(reply.status).toBe(200);
  const stored = reply.body.parameter?.find((p) => p.name === 'resource')?.resource as Condition;
  const provenance = reply.body.parameter?.find((p) => p.name === 'provenance')?.resource as Provenance;
  expect(stored.recordedDate).toBe('2024-05-06');
  expect(stored.meta?.versionId).not.toBe(before.meta?.versionId);
  expect(provenance.reason?.[0].text).toBe('The patient reported a typing error in the answer');
  expect(provenance.entity?.[0]).toEqual({
    role: 'revision',
    what: { reference: `Condition/${before.id}/_history/${before.meta?.versionId}` },
  });
  expect(provenance.target.map((t) => t.reference)).toEqual([
    `Condition/${before.id}`,
    before.subject?.reference,
  ]);
  const history = await call<Bundle>(server, admin, 'GET', `Condition/${before.id}/_history`);
  expect(history.body.total).toBe(2);

  // The person sees the correction in their own data.
  const portal = await server.token('portal', { pid: mine });
  const everything = await call<Bundle>(server, portal, 'GET', 'Patient/$everything');
  expect(everything.body.entry?.some((e) => e.resource?.resourceType === 'Provenance')).toBe(true);

  // Only staff correct; a reason is required.
  const byClinic = await call(server, clinic, 'POST', `Condition/${before.id}/$correct`, {
    resourceType: 'Parameters',
    parameter: [
      { name: 'resource', resource: corrected },
      { name: 'reason', valueString: 'x' },
    ],
  });
  expect(byClinic.status).toBe(403);
  const noReason = await call<OperationOutcome>(server, admin, 'POST', `Condition/${before.id}/$correct`, {
    resourceType: 'Parameters',
    parameter: [{ name: 'resource', resource: corrected }],
  });
  expect(noReason.status).toBe(400);

  // A reservation erases the correction's Provenance with the rest.
  const receipt = await call<Parameters>(server, portal, 'POST', 'Consent', reservation(mine));
  expect(receipt.status).toBe(201);
  const erasedTypes = receipt.body.parameter
    ?.filter((p) => p.name === 'erased')
    .map((p) => p.part?.find((x) => x.name === 'type')?.valueCode);
  expect(erasedTypes).toContain('Provenance');
  expect((await call<Bundle>(server, admin, 'GET', 'Provenance')).body.entry).toBeUndefined();
});

test("a committed correction whose Provenance the store's answer does not name is a 500 without detail, not the client's fault", async () => {
  const before = await observationOf('else');
  // The store commits the transaction but answers without the entries' locations (a store or proxy
  // that leaves them out): the correction is stored, the client did nothing wrong.
  const store = server.server.store;
  const transaction = store.transaction;
  store.transaction = async (bundle) => {
    const answer = await transaction(bundle);
    return {
      ...answer,
      entry: answer.entry?.map(({ response, ...entry }) => ({
        ...entry,
        response: { status: response?.status ?? '200 OK' },
      })),
    };
  };
  try {
    const reply = await call<OperationOutcome>(server, admin, 'POST', `Condition/${before.id}/$correct`, {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: { ...before, recordedDate: '2024-07-08' } },
        { name: 'reason', valueString: 'The date was entered wrong' },
      ],
    });
    expect(reply.status).toBe(500);
    expect(reply.body.resourceType).toBe('OperationOutcome');
    expect(reply.text).not.toMatch(/Provenance|stored|location/i);
  } finally {
    store.transaction = transaction;
  }
  const after = await observationOf('else');
  expect(after.recordedDate).toBe('2024-07-08');
});
