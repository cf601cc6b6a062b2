import type {
  Bundle,
  Encounter,
  EpisodeOfCare,
  Identifier,
  OperationOutcome,
  Organization,
  Patient,
  QuestionnaireResponse,
} from '@medplum/fhirtypes';
import { nationalIdSystems, openIdentity, seededRandom, syntheticIdentifier } from '../../src/identity';
import { createLogger } from '../../src/logging/logger';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { clientFor, type Client } from './client';

/**
 * The registry rules as a FHIR client meets them over HTTP: what a Patient must carry and what the server
 * decides for it, references to persons the registry does not know, what is never stored, and searching
 * by national id and by business identifier (translated on the way in to the pseudonym and keyed hashes).
 */
let server: TestServer;
let fhir: Client;
const random = seededRandom(1305);
const EPISODE = 'urn:oid:2.16.578.1.12.4.1.2.999001.episode';
/** What the NorPain EpisodeOfCare profile requires besides status and patient: referral date, unit, start. */
const EPISODE_REQUIRED = {
  extension: [{ url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: '2024-01-15' }],
  managingOrganization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '999001' } },
  period: { start: '2024-03-04' },
};
const QUESTIONNAIRE_URL = 'http://example.org/Questionnaire/registry-test';
/** Every national id this file sends: none may reach a log line, nor come back in a response except where
 * a search's links echo the client's own query (issue 11: links never show the translated query). */
const sentNumbers: string[] = [];
const replies: string[] = [];

/** A response without its Bundles' links (which echo the query as the client sent it). */
function withoutLinks(text: string): string {
  return JSON.stringify(JSON.parse(text), (key, value: unknown) => (key === 'link' ? undefined : value));
}

function person(kind: 'fnr' | 'dnr' | 'fhn' = 'fnr'): Identifier {
  const identifier = syntheticIdentifier(kind, { random });
  sentNumbers.push(identifier.value as string);
  return identifier;
}

const token = (identifier: Identifier, system = identifier.system): string => `${system}|${identifier.value}`;

async function get<T = Bundle>(path: string) {
  const reply = await fhir.get<T>(path);
  replies.push(withoutLinks(reply.text));
  return reply;
}

async function ids(path: string): Promise<(string | undefined)[]> {
  const reply = await get<Bundle>(path);
  expect({ path, status: reply.status }).toEqual({ path, status: 200 });
  return (reply.body.entry ?? []).map((e) => e.resource?.id).sort();
}

async function vaultCount(): Promise<number> {
  const identity = openIdentity({
    env: {},
    production: false,
    dataDir: server.config.dataDir,
    logger: createLogger({ level: 'error', sink: () => undefined }),
  });
  try {
    return identity.vault.count();
  } finally {
    identity.close();
  }
}

beforeAll(async () => {
  server = await startTestServer();
  fhir = await clientFor(server);
});
afterAll(async () => {
  await server.stop();
});

describe('registry rules for Patient', () => {
  test('a Patient without a national id is 422 naming Patient.identifier, and nothing is stored', async () => {
    const before = (await get('Patient?_summary=count')).body.total;
    const reply = await fhir.post<OperationOutcome>('Patient', {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:test:epr', value: '4711' }],
      gender: 'female',
    });
    expect(reply.status).toBe(422);
    expect(reply.body.issue[0].expression).toEqual(['Patient.identifier']);
    expect((await get('Patient?_summary=count')).body.total).toBe(before);
  });

  test('the server chooses the Patient id: a client id is not kept, also not by update-as-create', async () => {
    const fnr = person();
    const posted = await fhir.post<Patient>('Patient', {
      resourceType: 'Patient',
      id: 'epr-1',
      identifier: [fnr],
    });
    expect(posted.status).toBe(201);
    expect(posted.body.id).not.toBe('epr-1');

    const other = person();
    const put = await fhir.put<Patient>('Patient/epr-4711', {
      resourceType: 'Patient',
      id: 'epr-4711',
      identifier: [other],
    });
    expect(put.status).toBe(201);
    expect(put.body.id).not.toBe('epr-4711');
    expect(put.headers.get('location')).toBe(`${server.baseUrl}/Patient/${put.body.id}/_history/1`);
    expect((await fhir.get('Patient/epr-4711')).status).toBe(404);
    expect((await fhir.get('Patient/epr-1')).status).toBe(404);
    expect(await ids(`Patient?identifier=${token(other)}`)).toEqual([put.body.id]);
  });

  test('the same person sent twice is one Patient; the stored Patient holds only the pseudonym', async () => {
    const fnr = person();
    const first = await fhir.post<Patient>('Patient', {
      resourceType: 'Patient',
      identifier: [fnr],
      name: [{ family: 'Testesen', given: ['Tove'] }],
      gender: 'female',
      birthDate: '1975-03-09',
    });
    const second = await fhir.post<Patient>('Patient', { resourceType: 'Patient', identifier: [fnr] });
    expect(first.status).toBe(201);
    expect(first.body.identifier).toEqual([
      expect.objectContaining({ system: 'https://norpain.no/fhir/NamingSystem/registry-pseudonym' }),
    ]);
    expect(first.body.name).toBeUndefined();
    expect(first.body.birthDate).toBe('1975-03');
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    const stored = await get<Patient>(`Patient/${first.body.id}`);
    expect(stored.body.identifier).toEqual(first.body.identifier);
  });

  test('names are never stored, so a name search finds no Patient; on Organization it works', async () => {
    const family = `Navnesen${Date.now().toString(36)}`; // unique per run: the suite also runs on a shared HAPI
    await fhir.post<Patient>('Patient', {
      resourceType: 'Patient',
      identifier: [person()],
      name: [{ family }],
    });
    expect(await ids(`Patient?name=${family}`)).toEqual([]);
    expect(await ids(`Patient?family=${family}`)).toEqual([]);
    const org = await fhir.post<Organization>('Organization', {
      resourceType: 'Organization',
      name: `${family} smerteklinikk`,
    });
    expect(await ids(`Organization?name=${family}`)).toEqual([org.body.id]);
    expect(await ids(`Organization?name:exact=${family} smerteklinikk`)).toEqual([org.body.id]);
  });

  test('a reference to a Patient the registry does not know is 422 naming the reference', async () => {
    const encounter: Encounter = {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      identifier: [{ system: 'urn:test:encounter', value: 'unknown-ref' }],
      subject: { reference: 'Patient/epr-4711' },
    };
    const single = await fhir.post<OperationOutcome>('Encounter', encounter);
    expect(single.status).toBe(422);
    expect(single.body.issue[0].code).toBe('not-found');
    expect(single.body.issue[0].expression).toEqual(['Encounter.subject.reference']);

    const inBundle = await fhir.post<OperationOutcome>('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: {
            resourceType: 'Organization',
            name: 'Ikke lagret',
            identifier: [{ system: 'urn:test:org', value: 'tx' }],
          },
          request: { method: 'POST', url: 'Organization' },
        },
        { resource: encounter, request: { method: 'POST', url: 'Encounter' } },
      ],
    });
    expect(inBundle.status).toBe(422);
    expect(inBundle.body.issue[0].expression).toEqual(['Bundle.entry[1].resource.subject.reference']);
    expect(await ids('Encounter?identifier=urn:test:encounter|unknown-ref')).toEqual([]);
    expect(await ids('Organization?identifier=urn:test:org|tx')).toEqual([]);
  });

  test('a reference by national id links the person; the reference then names the pseudonymous Patient', async () => {
    const fnr = person();
    const created = await fhir.post<Encounter>('Encounter', {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: { identifier: fnr },
    });
    expect(created.status).toBe(201);
    const [patientId] = await ids(`Patient?identifier=${token(fnr)}`);
    expect(created.body.subject).toEqual({ reference: `Patient/${patientId}` });
  });
});

describe('business identifiers are stored as keyed hashes and found by their value', () => {
  let patientId: string;
  const episodes: string[] = [];

  beforeAll(async () => {
    const fnr = person();
    patientId = (await fhir.post<Patient>('Patient', { resourceType: 'Patient', identifier: [fnr] })).body
      .id as string;
    for (const number of ['EP-1', 'EP-2']) {
      const created = await fhir.post<EpisodeOfCare>('EpisodeOfCare', {
        resourceType: 'EpisodeOfCare',
        status: 'active',
        identifier: [{ system: EPISODE, value: number }],
        patient: { reference: `Patient/${patientId}` },
        ...EPISODE_REQUIRED,
      });
      expect(created.status).toBe(201);
      episodes.push(created.body.id as string);
    }
  });

  test('the stored value is an h1- hash, never the value sent', async () => {
    const stored = await get<EpisodeOfCare>(`EpisodeOfCare/${episodes[0]}`);
    expect(stored.body.identifier?.[0].system).toBe(EPISODE);
    expect(stored.body.identifier?.[0].value).toMatch(/^h1-[A-Za-z0-9_-]{43}$/);
    expect(stored.text).not.toContain('EP-1');
  });

  test('identifier=system|value finds it, by GET, POST _search and a batch GET entry', async () => {
    expect(await ids(`EpisodeOfCare?identifier=${EPISODE}|EP-1`)).toEqual([episodes[0]]);
    expect(await ids(`EpisodeOfCare?identifier=${EPISODE}|EP-3`)).toEqual([]);
    expect(await ids(`EpisodeOfCare?identifier=urn:other|EP-1`)).toEqual([]);
    const form = await fhir.request<Bundle>('POST', 'EpisodeOfCare/_search', {
      raw: new URLSearchParams({ identifier: `${EPISODE}|EP-2` }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.body.entry?.map((e) => e.resource?.id)).toEqual([episodes[1]]);
    const batch = await fhir.post<Bundle>('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ request: { method: 'GET', url: `EpisodeOfCare?identifier=${EPISODE}|EP-1` } }],
    });
    expect((batch.body.entry?.[0].resource as Bundle).entry?.map((e) => e.resource?.id)).toEqual([
      episodes[0],
    ]);
  });

  test('the stored hash itself matches; paging links echo the query as sent and can be followed', async () => {
    const stored = await get<EpisodeOfCare>(`EpisodeOfCare/${episodes[0]}`);
    expect(await ids(`EpisodeOfCare?identifier=${EPISODE}|${stored.body.identifier?.[0].value}`)).toEqual([
      episodes[0],
    ]);
    const first = await get(`EpisodeOfCare?identifier=${EPISODE}|EP-1,${EPISODE}|EP-2&_count=1&_sort=_id`);
    const next = first.body.link?.find((l) => l.relation === 'next')?.url;
    expect(next).toBeDefined();
    expect(decodeURIComponent(next ?? '')).toContain(`identifier=${EPISODE}|EP-1,${EPISODE}|EP-2`);
    const second = await get(next ?? '');
    const both = [...(first.body.entry ?? []), ...(second.body.entry ?? [])]
      .map((e) => e.resource?.id)
      .sort();
    expect(both).toEqual([...episodes].sort());
  });

  test('a national id system on a business identifier is refused naming the parameter', async () => {
    const fnr = person();
    const reply = await get<OperationOutcome>(`EpisodeOfCare?identifier=${token(fnr)}`);
    expect(reply.status).toBe(400);
    expect(reply.body.issue[0].expression).toEqual(['identifier']);
    expect(reply.body.issue[0].details?.text).toContain('patient:identifier');
  });
});

describe('search by national id', () => {
  const fnr = person('fnr');
  const dnr = person('dnr');
  const fhn = person('fhn');
  const patients: Record<string, string> = {};
  let responseId: string;
  let episodeId: string;
  let encounterId: string;

  beforeAll(async () => {
    for (const [name, identifier] of Object.entries({ fnr, dnr, fhn })) {
      const reply = await fhir.post<Patient>('Patient', {
        resourceType: 'Patient',
        identifier: [identifier],
      });
      expect(reply.status).toBe(201);
      patients[name] = reply.body.id as string;
    }
    const questionnaire = await fhir.post('Questionnaire', {
      resourceType: 'Questionnaire',
      url: QUESTIONNAIRE_URL,
      version: '1',
      status: 'active',
      item: [{ linkId: 'pain-now', text: 'Pain now (0-10)', type: 'integer' }],
    });
    expect(questionnaire.status).toBe(201);
    const response = await fhir.post<QuestionnaireResponse>('QuestionnaireResponse', {
      resourceType: 'QuestionnaireResponse',
      status: 'completed',
      questionnaire: `${QUESTIONNAIRE_URL}|1`,
      subject: { identifier: fnr },
      item: [{ linkId: 'pain-now', answer: [{ valueInteger: 4 }] }],
    });
    expect(response.status).toBe(201);
    responseId = response.body.id as string;
    episodeId = (
      await fhir.post<EpisodeOfCare>('EpisodeOfCare', {
        resourceType: 'EpisodeOfCare',
        status: 'active',
        patient: { identifier: fnr },
        ...EPISODE_REQUIRED,
      })
    ).body.id as string;
    encounterId = (
      await fhir.post<Encounter>('Encounter', {
        resourceType: 'Encounter',
        status: 'finished',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
        subject: { reference: `Patient/${patients.fnr}` },
        episodeOfCare: [{ reference: `EpisodeOfCare/${episodeId}` }],
      })
    ).body.id as string;
  });

  test('Patient?identifier with every FNR, D-number and FH-number system (OID and URI)', async () => {
    for (const [name, identifier, systems] of [
      ['fnr', fnr, nationalIdSystems.fnr],
      ['dnr', dnr, nationalIdSystems.dnr],
      ['fhn', fhn, nationalIdSystems.fhn],
    ] as const) {
      for (const system of systems) {
        expect(await ids(`Patient?identifier=${token(identifier, system)}`)).toEqual([patients[name]]);
      }
    }
    expect(await ids(`Patient?identifier=${token(fnr)},${token(dnr)}`)).toEqual(
      [patients.fnr, patients.dnr].sort(),
    );
    // A system URI holds characters that must be encoded in a URL; the encoded form is the same search.
    expect(await ids(`Patient?identifier=${encodeURIComponent(token(fhn))}`)).toEqual([patients.fhn]);
  });

  test('resources about the person: subject:Patient.identifier, patient.identifier, :identifier', async () => {
    for (const param of [
      'subject:Patient.identifier',
      'subject.identifier',
      'patient.identifier',
      'subject:identifier',
      'patient:identifier',
    ]) {
      expect(await ids(`QuestionnaireResponse?${param}=${token(fnr)}`)).toEqual([responseId]);
    }
    for (const system of nationalIdSystems.fnr) {
      expect(await ids(`EpisodeOfCare?patient:identifier=${token(fnr, system)}`)).toEqual([episodeId]);
      expect(await ids(`Encounter?subject:Patient.identifier=${token(fnr, system)}`)).toEqual([encounterId]);
    }
    expect(await ids(`Encounter?patient.identifier=${token(dnr)}`)).toEqual([]);
    // Combined with a chain on another type and with _include.
    const withInclude = await get(
      `Encounter?patient:identifier=${token(fnr)}&episode-of-care=EpisodeOfCare/${episodeId}&_include=Encounter:patient`,
    );
    expect(
      withInclude.body.entry?.map((e) => `${e.search?.mode}:${e.resource?.resourceType}/${e.resource?.id}`),
    ).toEqual([`match:Encounter/${encounterId}`, `include:Patient/${patients.fnr}`]);
  });

  test('POST _search and batch GET entries translate the same way', async () => {
    const form = await fhir.request<Bundle>('POST', 'QuestionnaireResponse/_search', {
      raw: new URLSearchParams({ 'subject:Patient.identifier': token(fnr) }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    replies.push(withoutLinks(form.text));
    expect(form.status).toBe(200);
    expect(form.body.entry?.map((e) => e.resource?.id)).toEqual([responseId]);
    const batch = await fhir.post<Bundle>('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: `Patient?identifier=${token(dnr)}` } },
        { request: { method: 'GET', url: `EpisodeOfCare?patient.identifier=${token(fnr)}` } },
        { request: { method: 'GET', url: `Patient?identifier=${nationalIdSystems.fnr[0]}|01010112345` } },
      ],
    });
    replies.push(withoutLinks(batch.text));
    const entries = batch.body.entry ?? [];
    expect(entries.map((e) => e.response?.status.split(' ')[0])).toEqual(['200', '200', '400']);
    expect((entries[0].resource as Bundle).entry?.map((e) => e.resource?.id)).toEqual([patients.dnr]);
    expect((entries[1].resource as Bundle).entry?.map((e) => e.resource?.id)).toEqual([episodeId]);
  });

  test('links echo the query as sent (never the Patient id); no other response part or log line carries a national id', async () => {
    const reply = await get(`QuestionnaireResponse?patient:identifier=${token(fnr)}&_count=1`);
    const self = reply.body.link?.find((l) => l.relation === 'self')?.url ?? '';
    expect(decodeURIComponent(self)).toContain(`patient:identifier=${token(fnr)}`);
    expect(self).not.toContain(patients.fnr);
    expect(await ids(self)).toEqual([responseId]);
    const all = replies.join('\n');
    const logs = JSON.stringify(server.logs);
    for (const number of sentNumbers) {
      expect(all).not.toContain(number);
      expect(logs).not.toContain(number);
    }
  });

  test('an unknown person matches nothing and gets no vault entry', async () => {
    const stranger = syntheticIdentifier('fnr', { random });
    const strangerD = syntheticIdentifier('dnr', { random });
    const before = await vaultCount();
    expect(await ids(`Patient?identifier=${token(stranger)}`)).toEqual([]);
    expect(await ids(`Patient?identifier=${token(strangerD)},${token(fnr)}`)).toEqual([patients.fnr]);
    expect(await ids(`QuestionnaireResponse?subject:Patient.identifier=${token(stranger)}`)).toEqual([]);
    expect(await ids(`EpisodeOfCare?patient:identifier=${token(stranger)}`)).toEqual([]);
    expect(await ids(`Encounter?patient.identifier=${token(strangerD)}`)).toEqual([]);
    expect(await vaultCount()).toBe(before);
  });

  test('an invalid number is 400 naming the parameter, without echoing the number', async () => {
    const valid = fnr.value as string;
    const badCheck = valid.slice(0, 10) + String((Number(valid[10]) + 1) % 10);
    for (const [query, parameter] of [
      [`Patient?identifier=${nationalIdSystems.fnr[0]}|${badCheck}`, 'identifier'],
      [`Patient?identifier=${nationalIdSystems.fnr[1]}|1234`, 'identifier'],
      [`Patient?identifier=${nationalIdSystems.dnr[0]}|${valid}`, 'identifier'],
      [
        `QuestionnaireResponse?subject:Patient.identifier=${nationalIdSystems.fnr[0]}|${badCheck}`,
        'subject:Patient.identifier',
      ],
      [`EpisodeOfCare?patient:identifier=${nationalIdSystems.fnr[0]}|${badCheck}`, 'patient:identifier'],
    ] as const) {
      const reply = await fhir.get<OperationOutcome>(query);
      expect({ query, status: reply.status }).toEqual({ query, status: 400 });
      expect(reply.body.issue[0].expression).toEqual([parameter]);
      expect(reply.text).not.toContain(badCheck);
      expect(reply.text).not.toContain(valid);
      expect(reply.text).not.toContain('1234');
    }
  });

  test('a national id outside an identifier parameter is 400, so it can reach neither store nor link', async () => {
    for (const [query, parameter] of [
      [`Patient?identifier=${fnr.value}`, 'identifier'],
      [`Organization?name=${fnr.value}`, 'name'],
      [`EpisodeOfCare?identifier=${EPISODE}|x&_id=${fnr.value}`, '_id'],
    ] as const) {
      const reply = await fhir.get<OperationOutcome>(query);
      expect({ query, status: reply.status }).toEqual({ query, status: 400 });
      expect(reply.body.issue[0].expression).toEqual([parameter]);
      expect(reply.text).not.toContain(fnr.value);
    }
  });
});

describe('a clinic searches its own patients by national id', () => {
  test('Patient?identifier and EpisodeOfCare?patient:identifier with a clinic token', async () => {
    const clinic = await server.token('clinic');
    const call = async <T>(method: string, path: string, body?: unknown) => {
      const response = await fetch(`${server.baseUrl}/${path}`, {
        method,
        headers: { authorization: `Bearer ${clinic}`, 'content-type': 'application/fhir+json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, text, body: JSON.parse(text) as T };
    };
    const fnr = person();
    const patient = await call<Patient>('POST', 'Patient', { resourceType: 'Patient', identifier: [fnr] });
    expect(patient.status).toBe(201);
    const episode = await call<EpisodeOfCare>('POST', 'EpisodeOfCare', {
      resourceType: 'EpisodeOfCare',
      status: 'active',
      identifier: [{ system: EPISODE, value: 'CLINIC-1' }],
      patient: { identifier: fnr },
      ...EPISODE_REQUIRED,
    });
    expect(episode.status).toBe(201);
    const byPerson = await call<Bundle>('GET', `Patient?identifier=${token(fnr)}`);
    expect(byPerson.body.entry?.map((e) => e.resource?.id)).toEqual([patient.body.id]);
    const episodes = await call<Bundle>('GET', `EpisodeOfCare?patient:identifier=${token(fnr)}`);
    expect(episodes.body.entry?.map((e) => e.resource?.id)).toEqual([episode.body.id]);
    const byNumber = await call<Bundle>('GET', `EpisodeOfCare?identifier=${EPISODE}|CLINIC-1`);
    expect(byNumber.body.entry?.map((e) => e.resource?.id)).toEqual([episode.body.id]);
    for (const reply of [patient, episode, byPerson, episodes]) {
      expect(withoutLinks(reply.text)).not.toContain(fnr.value);
    }
  });
});
