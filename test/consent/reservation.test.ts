import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Bundle, Consent, Condition, OperationOutcome, Parameters, Patient } from '@medplum/fhirtypes';
import { EmbeddedStore } from '../../src/store/embedded';
import { startTestServer, type TestServer } from '../helpers/testServer';
import {
  ANSWER_SYSTEM,
  answersByTag,
  call,
  DNR_SYSTEM,
  FNR_SYSTEM,
  condition,
  people,
  reservation,
  submission,
} from './fixtures';

let server: TestServer;
let clinic: string;
let admin: string;
const ids = people(9101, 12);
const dnrs = people(9102, 2, 'dnr');

beforeAll(async () => {
  server = await startTestServer();
  clinic = await server.token('clinic');
  admin = await server.token('registry-admin');
});

afterAll(async () => {
  await server.stop();
});

function param(body: Parameters, name: string) {
  return body.parameter?.filter((p) => p.name === name) ?? [];
}

function erasedCounts(body: Parameters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of param(body, 'erased')) {
    const type = p.part?.find((x) => x.name === 'type')?.valueCode as string;
    out[type] = p.part?.find((x) => x.name === 'count')?.valueInteger as number;
  }
  return out;
}

async function submit(fnr: string, tag: string, answers: string[], opts = {}) {
  return call<Bundle>(
    server,
    clinic,
    'POST',
    '',
    submission([{ system: FNR_SYSTEM, value: fnr }], tag, answers, opts),
  );
}

async function patientIdOf(tag: string): Promise<string> {
  const found = await call<Bundle<Condition>>(
    server,
    admin,
    'GET',
    `Condition?code=urn:oid:2.16.578.1.12.4.1.1.7110|${tag}`,
  );
  return found.body.entry?.[0]?.resource?.subject?.reference?.split('/')[1] as string;
}

describe('reserving', () => {
  test('the portal reserves its person: 201, everything erased, a receipt without identifiers', async () => {
    const fnr = ids[0];
    expect((await submit(fnr, 'r0', ['r0-answer-1', 'r0-answer-2'])).status).toBe(200);
    const patientId = await patientIdOf('r0');
    const pseudonym = (await call<Patient>(server, admin, 'GET', `Patient/${patientId}`)).body.identifier?.[0]
      .value as string;
    const portal = await server.token('portal', { pid: fnr });

    const reply = await call<Parameters>(server, portal, 'POST', 'Consent', reservation(fnr));

    expect(reply.status).toBe(201);
    expect(erasedCounts(reply.body)).toEqual({ Patient: 1, EpisodeOfCare: 1, Condition: 2 });
    expect(param(reply.body, 'residual')[0].valueInteger).toBe(0);
    expect(param(reply.body, 'identityDeleted')[0].valueBoolean).toBe(true);
    const consent = param(reply.body, 'reservation')[0].resource as Consent;
    expect(consent.status).toBe('active');
    expect(consent.patient).toBeUndefined();
    for (const secret of [fnr, pseudonym, patientId]) {
      expect(reply.text).not.toContain(secret);
    }
    expect((await call(server, admin, 'GET', `Patient/${patientId}`)).status).toBe(404);
    expect((await call(server, admin, 'GET', `Patient/${patientId}/_history`)).status).toBe(404);
    expect((await answersByTag(server, admin)).get('r0')).toBeUndefined();
  });

  test('every later write about the person is refused with 403, whatever the channel', async () => {
    const fnr = ids[1];
    expect((await submit(fnr, 'r1', ['r1-a'])).status).toBe(200);
    const oldPatient = await patientIdOf('r1');
    expect(
      (await call(server, admin, 'POST', 'Consent', reservation(fnr, { channel: 'letter' }))).status,
    ).toBe(201);

    const single = await call<OperationOutcome>(server, clinic, 'POST', 'Patient', {
      resourceType: 'Patient',
      identifier: [{ system: FNR_SYSTEM, value: fnr }],
    });
    expect(single.status).toBe(403);
    expect(single.body.issue?.[0].details?.text).toMatch(/reserved themselves/);
    expect(single.text).not.toContain(fnr);

    const conditional = await call(server, clinic, 'PUT', `Patient?identifier=${FNR_SYSTEM}|${fnr}`, {
      resourceType: 'Patient',
      identifier: [{ system: FNR_SYSTEM, value: fnr }],
    });
    expect(conditional.status).toBe(403);

    const byIdentifier = await call(
      server,
      clinic,
      'POST',
      'Condition',
      condition('r1', 'r1-b', { identifier: { system: FNR_SYSTEM, value: fnr } }),
    );
    expect(byIdentifier.status).toBe(403);

    const byOldReference = await call(
      server,
      clinic,
      'POST',
      'Condition',
      condition('r1', 'r1-c', { reference: `Patient/${oldPatient}` }),
    );
    expect(byOldReference.status).toBe(403);

    // A transaction with one such entry is refused whole: the other person is not stored either.
    const bundle = submission([{ system: FNR_SYSTEM, value: ids[2] }], 'r2', ['r2-a']);
    bundle.entry?.push({
      resource: condition('r1', 'r1-d', { reference: `Patient?identifier=${FNR_SYSTEM}|${fnr}` }),
      request: { method: 'POST', url: 'Condition' },
    });
    const transaction = await call<OperationOutcome>(server, clinic, 'POST', '', bundle);
    expect(transaction.status).toBe(403);
    expect(transaction.body.issue?.[0].expression).toEqual(['Bundle.entry[3]']);

    // A batch refuses that entry only.
    const batch = await call<Bundle>(server, clinic, 'POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          resource: condition('r1', 'r1-e', { identifier: { system: FNR_SYSTEM, value: fnr } }),
          request: { method: 'POST', url: 'Condition' },
        },
        {
          resource: condition('r2', 'r2-b', { identifier: { system: FNR_SYSTEM, value: ids[2] } }),
          request: { method: 'POST', url: 'Condition' },
        },
      ],
    });
    expect(batch.body.entry?.map((e) => e.response?.status.slice(0, 3))).toEqual(['403', '201']);

    const answers = await answersByTag(server, admin);
    expect(answers.get('r1')).toBeUndefined();
    expect([...(answers.get('r2') ?? [])]).toEqual(['r2-b']);
  });

  test('reserving someone never seen keeps them out', async () => {
    // Registry staff (by letter): a clinic may reserve only a person it registers (test/consent/parties.test.ts).
    const fnr = ids[3];
    const byLetter = reservation(fnr, { channel: 'letter' });
    const reply = await call<Parameters>(server, admin, 'POST', 'Consent', byLetter);
    expect(reply.status).toBe(201);
    expect(erasedCounts(reply.body)).toEqual({});
    expect(param(reply.body, 'identityDeleted')[0].valueBoolean).toBe(false);
    expect((await submit(fnr, 'r3', ['r3-a'])).status).toBe(403);
    // Reserving again is not an error.
    expect((await call(server, admin, 'POST', 'Consent', byLetter)).status).toBe(200);
  });

  test('every id the person has had is kept out, not only the one they reserved with', async () => {
    const [fnr, dnr] = [ids[4], dnrs[0]];
    const both = submission(
      [
        { system: FNR_SYSTEM, value: fnr },
        { system: DNR_SYSTEM, value: dnr },
      ],
      'r4',
      ['r4-a'],
    );
    expect((await call(server, clinic, 'POST', '', both)).status).toBe(200);
    expect(
      (await call(server, admin, 'POST', 'Consent', reservation(fnr, { channel: 'e-mail' }))).status,
    ).toBe(201);
    const byDnr = await call(
      server,
      clinic,
      'POST',
      '',
      submission([{ system: DNR_SYSTEM, value: dnr }], 'r4', ['r4-b']),
    );
    expect(byDnr.status).toBe(403);
    const lookup = await call<Bundle<Consent>>(
      server,
      admin,
      'GET',
      `Consent?patient.identifier=${DNR_SYSTEM}|${dnr}`,
    );
    expect(lookup.body.entry?.map((e) => e.resource?.status)).toEqual(['active']);
  });

  test('who may reserve: the portal only for its own person, never a researcher; staff say the channel', async () => {
    const portal = await server.token('portal', { pid: ids[5] });
    const other = await call<OperationOutcome>(server, portal, 'POST', 'Consent', reservation(ids[6]));
    expect(other.status).toBe(403);
    const researcher = await server.token('researcher');
    expect((await call(server, researcher, 'POST', 'Consent', reservation(ids[6]))).status).toBe(403);
    const noChannel = await call<OperationOutcome>(server, admin, 'POST', 'Consent', reservation(ids[6]));
    expect(noChannel.status).toBe(422);
    expect(noChannel.body.issue?.[0].expression).toEqual(['Consent.extension']);
    const notProfile = await call(server, admin, 'POST', 'Consent', {
      ...reservation(ids[6], { channel: 'letter' }),
      provision: { type: 'permit' },
    });
    expect(notProfile.status).toBe(422);
    const badId = await call(server, clinic, 'POST', 'Consent', reservation('01818040072'));
    expect(badId.status).toBe(422);
    // Nothing of these was recorded.
    const lookup = await call<Bundle>(
      server,
      admin,
      'GET',
      `Consent?patient.identifier=${FNR_SYSTEM}|${ids[6]}`,
    );
    expect(lookup.body.total).toBe(0);
  });

  test('a Consent cannot reach the clinical store another way', async () => {
    const put = await call(server, admin, 'PUT', 'Consent/x1', {
      ...reservation(ids[7], { channel: 'letter' }),
      id: 'x1',
    });
    expect(put.status).toBe(405);
    const inBundle = await call(server, clinic, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: reservation(ids[7]), request: { method: 'POST', url: 'Consent' } }],
    });
    expect(inBundle.status).toBe(422);
  });
});

describe('withdrawing and looking up', () => {
  test('withdrawal lets new data in; erased data do not come back; staff see when, never the id', async () => {
    const fnr = ids[8];
    expect((await submit(fnr, 'w8', ['w8-old'])).status).toBe(200);
    const oldPatient = await patientIdOf('w8');
    const portal = await server.token('portal', { pid: fnr });
    expect((await call(server, portal, 'POST', 'Consent', reservation(fnr))).status).toBe(201);

    const withdrawn = await call<Parameters>(
      server,
      portal,
      'POST',
      'Consent',
      reservation(fnr, { status: 'inactive' }),
    );
    expect(withdrawn.status).toBe(200);
    expect((param(withdrawn.body, 'reservation')[0].resource as Consent).status).toBe('inactive');
    expect(
      (await call(server, portal, 'POST', 'Consent', reservation(fnr, { status: 'inactive' }))).status,
    ).toBe(404);

    expect((await submit(fnr, 'w8', ['w8-new'])).status).toBe(200);
    expect([...((await answersByTag(server, admin)).get('w8') ?? [])]).toEqual(['w8-new']);
    expect(await patientIdOf('w8')).not.toBe(oldPatient);
    // An old reference to the erased Patient stays refused.
    const stale = await call(
      server,
      clinic,
      'POST',
      'Condition',
      condition('w8', 'w8-stale', { reference: `Patient/${oldPatient}` }),
    );
    expect(stale.status).toBe(403);

    const lookup = await call<Bundle<Consent>>(
      server,
      admin,
      'GET',
      `Consent?patient.identifier=${FNR_SYSTEM}|${fnr}`,
    );
    expect(lookup.status).toBe(200);
    expect(lookup.body.entry?.map((e) => e.resource?.status)).toEqual(['inactive']);
    expect(lookup.body.entry?.[0].resource?.dateTime).toBe('2024-05-02T09:00:00+02:00');
    expect(lookup.text).not.toContain(fnr);
    const read = await call<Consent>(server, admin, 'GET', `Consent/${lookup.body.entry?.[0].resource?.id}`);
    expect(read.body.status).toBe('inactive');

    expect((await call(server, admin, 'GET', 'Consent')).status).toBe(400);
    expect((await call(server, admin, 'GET', 'Consent?status=active')).status).toBe(400);
    expect(
      (await call(server, clinic, 'GET', `Consent?patient.identifier=${FNR_SYSTEM}|${fnr}`)).status,
    ).toBe(403);
  });
});

describe('inclusion criteria', () => {
  test('an episode at a unit that does not take part is refused with 422, nothing stored', async () => {
    // Registry staff: a clinic token naming another unit is already refused (403) by authorisation.
    const reply = await call<OperationOutcome>(
      server,
      admin,
      'POST',
      '',
      submission([{ system: FNR_SYSTEM, value: ids[9] }], 'i9', ['i9-a'], { unit: '123456' }),
    );
    expect(reply.status).toBe(422);
    expect(reply.body.issue?.[0].details?.text).toMatch(/participating-unit/);
    expect(reply.body.issue?.[0].expression).toEqual([
      'Bundle.entry[1].resource.managingOrganization.identifier.value',
    ]);
    const outsider = await server.token('clinic', { org: '123456' });
    const fromOutsider = await call<OperationOutcome>(
      server,
      outsider,
      'POST',
      'Condition',
      condition('i9', 'i9-b', { identifier: { system: FNR_SYSTEM, value: ids[9] } }),
    );
    expect(fromOutsider.status).toBe(422);
    expect(fromOutsider.body.issue?.[0].details?.text).toMatch(/participating-unit/);
    expect((await answersByTag(server, admin)).get('i9')).toBeUndefined();
  });

  test('a person under 18 at the start of the episode is refused with 422, nothing stored', async () => {
    const young = await call<OperationOutcome>(
      server,
      clinic,
      'POST',
      '',
      submission([{ system: FNR_SYSTEM, value: ids[10] }], 'i10', ['i10-a'], {
        birthDate: '2006-03-05',
        start: '2024-03-04',
      }),
    );
    expect(young.status).toBe(422);
    expect(young.body.issue?.[0].details?.text).toMatch(/minimum-age/);
    expect((await answersByTag(server, admin)).get('i10')).toBeUndefined();
    // 18 on the day: accepted.
    const adult = await submit(ids[10], 'i10', ['i10-b'], { birthDate: '2006-03-04', start: '2024-03-04' });
    expect(adult.status).toBe(200);
    // A later episode for the stored Patient is checked against the stored birth date.
    const patientId = await patientIdOf('i10');
    const early = await call<OperationOutcome>(server, clinic, 'POST', 'EpisodeOfCare', {
      resourceType: 'EpisodeOfCare',
      extension: [
        { url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: '2019-12-02' },
      ],
      status: 'active',
      patient: { reference: `Patient/${patientId}` },
      managingOrganization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '999001' } },
      period: { start: '2020-01-01' },
    });
    expect(early.status).toBe(422);
    expect(early.body.issue?.[0].expression).toEqual(['EpisodeOfCare.period.start']);
  });

  test('the minimum age is configurable', async () => {
    const other = await startTestServer({ INCLUSION_MIN_AGE: '16' });
    try {
      const token = await other.token('clinic');
      const reply = await call(
        other,
        token,
        'POST',
        '',
        submission([{ system: FNR_SYSTEM, value: ids[11] }], 'i11', ['i11-a'], {
          birthDate: '2007-01-01',
          start: '2024-03-04',
        }),
      );
      expect(reply.status).toBe(200);
    } finally {
      await other.stop();
    }
  });
});

describe('physical erasure', () => {
  test('a trace the erasure cannot reach is reported (503), not hidden; once removed, sending again completes', async () => {
    const fnr = people(9104, 1)[0];
    // A tag of this run only, so that on a shared HAPI server no earlier run's Condition is found.
    const tag = `p2-${randomUUID()}`;
    expect((await submit(fnr, tag, ['p2-a'])).status).toBe(200);
    const patientId = await patientIdOf(tag);
    const pseudonym = (await call<Patient>(server, admin, 'GET', `Patient/${patientId}`)).body.identifier?.[0]
      .value as string;
    // Written past every door, straight into the store: the pseudonym as text, no reference.
    const { resource: stray } = await server.server.store.create({
      resourceType: 'Condition',
      code: { coding: [{ system: 'urn:norpain:test-stray', code: 'stray' }] },
      note: [{ text: `noted for ${pseudonym}` }],
    } as Condition);

    const letter = reservation(fnr, { channel: 'letter' });
    const first = await call<OperationOutcome>(server, admin, 'POST', 'Consent', letter);
    expect(first.status).toBe(503);
    expect(first.body.issue?.[0].details?.text).toMatch(/still holds 1 trace/);
    expect(first.text).not.toContain(pseudonym);
    // The reservation holds meanwhile: nothing more about the person is accepted.
    expect((await submit(fnr, 'p2b', ['p2-b'])).status).toBe(403);

    await server.server.store.eraseResource('Condition', stray.id as string);
    const second = await call<Parameters>(server, admin, 'POST', 'Consent', letter);
    expect(second.status).toBe(200);
    expect(param(second.body, 'residual')[0].valueInteger).toBe(0);
    expect(param(second.body, 'identityDeleted')[0].valueBoolean).toBe(true);
  });

  // The embedded store's files; on HAPI, test/consent/hapi-physical.test.ts scans PostgreSQL's instead.
  const embeddedOnly = process.env.TEST_STORE === 'hapi' ? test.skip : test;
  embeddedOnly(
    'the store files hold no byte of the pseudonym or of an answer unique to the person',
    async () => {
      const fnr = people(9103, 1)[0];
      const unique = 'svar-som-bare-denne-personen-ga-7f3a9c';
      expect((await submit(fnr, 'p1', [unique, `${unique}-2`])).status).toBe(200);
      const patientId = await patientIdOf('p1');
      // Two more that also name the person where no search parameter looks: an extension, a contained
      // resource. The data dictionary keeps neither on a Condition, so both are dropped (each listed as a
      // warning) and nothing of them reaches the store; the erasure finds the Conditions by their subject.
      const about = 'https://norpain.no/fhir/StructureDefinition/test-about';
      const inContained = `${unique}-in-contained`;
      const byExtension = condition('p1x', `${unique}-ext`, { reference: `Patient/${patientId}` });
      (byExtension as Condition).extension = [
        { url: about, valueReference: { reference: `Patient/${patientId}` } },
      ];
      const byContained = condition('p1c', `${unique}-contained`, { reference: `Patient/${patientId}` });
      Object.assign(byContained, {
        contained: [
          {
            resourceType: 'Condition',
            id: 'o',
            code: { coding: [{ system: ANSWER_SYSTEM, code: inContained }] },
            subject: { reference: `Patient/${patientId}` },
          },
        ],
        evidence: [{ detail: [{ reference: '#o' }] }],
      });
      for (const [resource, dropped] of [
        [byExtension, ['Condition.extension']],
        [byContained, ['Condition.contained', 'Condition.evidence']],
      ] as const) {
        const reply = await call<OperationOutcome>(server, clinic, 'POST', 'Condition', resource, {
          prefer: 'return=OperationOutcome',
        });
        expect(reply.status).toBe(201);
        const warned = reply.body.issue
          ?.filter((i) => i.severity === 'warning')
          .map((i) => i.expression?.[0]);
        expect(warned).toEqual(expect.arrayContaining([...dropped]));
      }
      const pseudonym = (await call<Patient>(server, admin, 'GET', `Patient/${patientId}`)).body
        .identifier?.[0].value as string;
      const storeFile = EmbeddedStore.defaultFile(server.dataDir);
      const files = [storeFile, `${storeFile}-wal`];
      const before = files.filter(fs.existsSync).map((f) => fs.readFileSync(f));
      expect(before.some((b) => b.includes(unique) && b.includes(pseudonym))).toBe(true);
      expect(before.some((b) => b.includes(`${unique}-ext`) && b.includes(`${unique}-contained`))).toBe(true);
      expect(before.some((b) => b.includes(about) || b.includes(inContained))).toBe(false);

      expect((await call(server, clinic, 'POST', 'Consent', reservation(fnr))).status).toBe(201);

      for (const file of files.filter(fs.existsSync)) {
        const bytes = fs.readFileSync(file);
        expect(bytes.includes(pseudonym)).toBe(false);
        expect(bytes.includes(unique)).toBe(false);
        expect(bytes.includes(patientId)).toBe(false);
      }
    },
  );
});
